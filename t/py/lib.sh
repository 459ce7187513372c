# t/py/lib.sh: run a t/py/*.py test under Debian's /usr/bin/python3 (which
# sees python3-cffi, -numpy, -torch), with the package from the source tree
# and the library from the build tree.  Sourced by the t/py_*.sh wrappers,
# after t/lib.sh (its TMP, watchdog and cleanup).
PY=${KVN_PYTHON:-/usr/bin/python3}
py_setup() {
	if ! [ -x "$PY" ]; then echo "1..0 # SKIP $PY not found (Debian: python3)"; exit 0; fi
	if ! "$PY" -c 'import cffi' 2>/dev/null; then
		echo "1..0 # SKIP $PY has no cffi (Debian: python3-cffi)"; exit 0
	fi
	export PYTHONPATH="$SRCDIR/python:$SRCDIR/t/py" KVNODE_LIBRARY="$BUILDDIR/.libs/libkvnode.so"
	export TMP KVN_BUILDDIR="$BUILDDIR" KVN_SRCDIR="$SRCDIR" PYTHONDONTWRITEBYTECODE=1
	# An ASan build's library needs its runtime loaded first into the
	# interpreter, which is not instrumented (its leaks are not ours: leak
	# detection off, last, since a later option wins over an earlier one).
	# Only into the interpreter: $PYENV prefixes its commands (preloaded
	# into the shell's own tools, pkill among them, it hangs them)
	PYENV=
	case "${KVN_SAN_CFLAGS:-}" in *sanitize=*)
		PYENV="env LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so) ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
		# the nodes a script starts keep the suite's own options (kvtest.py)
		export KVN_NODE_ASAN_OPTIONS="${ASAN_OPTIONS:-}"
		;;
	esac
}
# py_run SCRIPT ARGS...: run it in the background (so the watchdog's TERM
# is handled at once) and exit with its status; its output is the TAP
py_run() {
	$PYENV "$PY" "$@" &
	local pid=$!
	PIDS="$PIDS $pid"
	wait "$pid"
	exit $?
}
