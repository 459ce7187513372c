#!/bin/bash
# t/py_abi.sh: the Python package's cffi declarations agree with
# include/kvnode.h (struct layouts, prototypes, constants): t/py/abi.py.
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/t/py/lib.sh"
py_setup
py_run "$SRCDIR/t/py/abi.py" "$@"
