#!/bin/bash
# t/py_lmcache.sh: the LMCache-style connector (python/kvnode/lmcache.py)
# with CPU torch tensors against a real node: t/py/lmcache.py.
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/t/py/lib.sh"
py_setup
py_run "$SRCDIR/t/py/lmcache.py" "$@"
