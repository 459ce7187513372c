#!/bin/bash
# t/py_client.sh: the Python package (python/kvnode) against a real node:
# t/py/client.py, whose cases run alone as `t/py_client.sh CASE`.
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/t/py/lib.sh"
py_setup
py_run "$SRCDIR/t/py/client.py" "$@"
