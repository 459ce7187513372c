#!/bin/bash
# t/py_install.sh: the two tested ways into the Python package, offline:
# PYTHONPATH=python, and a venv with the system's packages
# (python3 -m venv --system-site-packages) + pip install
# --no-build-isolation ./python with --no-index (PyPI is never asked).
# Each way runs `python3 -m kvnode ping` against a real node.
. "$(dirname "$0")/lib.sh"
. "$SRCDIR/t/py/lib.sh"
py_setup
unset PYTHONPATH

MP=$(free_port); PP=$(free_port)
write_conf "$TMP/a.conf" "$MP" "$PP"
start aio --config "$TMP/a.conf"
wait_log aio "kvnode ready" 15
ok $? "node up"

out=$(cd "$TMP" && PYTHONPATH="$SRCDIR/python" $PYENV "$PY" -m kvnode ping --config "$TMP/a.conf" 2>&1)
ok $? "PYTHONPATH=python: python3 -m kvnode ping"
like "$out" "^pong: .* 1 peer" "prints the round trip: $out"
out=$(cd "$TMP" && env -u KVNODE_LIBRARY PYTHONPATH="$SRCDIR/python" $PYENV "$PY" -c \
	'import kvnode; print(kvnode.library_path)' 2>&1)
if [ "$SRCDIR" = "$BUILDDIR" ]; then
	is "$out" "$BUILDDIR/.libs/libkvnode.so" "without KVNODE_LIBRARY: the build tree's .libs/libkvnode.so beside python/"
else
	skip "out-of-tree build: no .libs beside python/"
fi

if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null || ! "$PY" -m pip --version > /dev/null 2>&1; then
	skip "no python3-venv / pip (Debian: python3-venv)"
	done_testing
fi
if ! "$PY" -c 'import setuptools' 2>/dev/null; then
	skip "no setuptools (Debian: python3-setuptools)"
	done_testing
fi
# pip builds in the directory it is given: a copy, so the source tree stays clean
cp -r "$SRCDIR/python" "$TMP/src"
chmod -R u+w "$TMP/src"
"$PY" -m venv --system-site-packages "$TMP/venv" > "$TMP/venv.log" 2>&1
ok $? "python3 -m venv --system-site-packages"
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$TMP/venv/bin/pip" install --no-index --no-build-isolation \
	"$TMP/src" > "$TMP/pip.log" 2>&1
ok $? "pip install --no-index --no-build-isolation ./python (offline)"
loc=$(cd "$TMP" && $PYENV "$TMP/venv/bin/python" -c 'import kvnode, os; print(os.path.dirname(kvnode.__file__))' 2>&1)
like "$loc" "^$TMP/venv/lib/python3[.0-9]*/site-packages/kvnode$" "the venv imports the installed copy: $loc"
out=$(cd "$TMP" && $PYENV "$TMP/venv/bin/python" -m kvnode ping --config "$TMP/a.conf" 2>&1)
ok $? "venv: python3 -m kvnode ping"
like "$out" "^pong: " "prints the round trip"
out=$(cd "$TMP" && env -u KVNODE_LIBRARY "$TMP/venv/bin/python" -c 'import kvnode' 2>&1)
if [ -e /usr/lib/libkvnode.so.0 ] || [ -e /usr/local/lib/libkvnode.so.0 ] || ldconfig -p 2>/dev/null | grep -q libkvnode.so.0; then
	skip "a libkvnode.so.0 is installed on this system"
else
	like "$out" "set KVNODE_LIBRARY" "no library to find: ImportError saying to set KVNODE_LIBRARY"
fi
stop aio
done_testing
