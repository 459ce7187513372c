#!/bin/bash
# t/each_case.sh: every case of every unit test program runs alone.  For
# each program (the arguments, or every t/NAME built from a t/NAME.c with a
# table of struct tap_test), `t/NAME --list` names its cases and `t/NAME CASE` runs one
# of them in a fresh process: a case that leans on state an earlier case
# left (a fixture, a started node, a counter) fails here although the whole
# program passes.  A case fails on a non-zero exit, a "not ok" or
# "Bail out!" line, or no assertion at all.  Prints TAP (one line per case)
# so both `make check-long` and prove read it.
#
#   t/each_case.sh [t/PROG ...]
#   KVN_EACH_TIMEOUT=SECONDS  per case (default 200)
#   KVN_EACH_KEEP=DIR         keep every case's output in DIR
set -u

BUILDDIR=${KVN_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
SRCDIR=${KVN_SRCDIR:-$BUILDDIR}
export KVN_BUILDDIR=$BUILDDIR KVN_SRCDIR=$SRCDIR
TIMEOUT=${KVN_EACH_TIMEOUT:-200}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/kvn-each.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
trap 'exit 1' INT TERM

progs=("$@")
if [ ${#progs[@]} -eq 0 ]; then
	for src in "$SRCDIR"/t/*.c; do
		name=$(basename "$src" .c)
		grep -q 'struct tap_test' "$src" || continue
		[ -x "$BUILDDIR/t/$name" ] && progs+=("t/$name")
	done
fi

n=0
failed=0
t_begin=$(date +%s)
for prog in "${progs[@]}"; do
	case $prog in /*) exe=$prog ;; *) exe=$BUILDDIR/$prog ;; esac
	name=${prog#"$BUILDDIR"/}
	if ! cases=$(cd "$BUILDDIR" && "$exe" --list 2>"$OUT/list.err") || [ -z "$cases" ]; then
		n=$((n + 1))
		failed=$((failed + 1))
		echo "not ok $n - $name --list: no cases"
		sed 's/^/#   /' "$OUT/list.err"
		continue
	fi
	for c in $cases; do
		n=$((n + 1))
		log="$OUT/$(basename "$name").$c.log"
		t0=$(date +%s)
		# setsid: a case that signals its own process group (kill(0, ...)
		# with a pid it never got, run alone) stops itself, not timeout
		(cd "$BUILDDIR" && timeout -k 10 "$TIMEOUT" setsid -w "$exe" "$c") >"$log" 2>&1
		rc=$?
		secs=$(($(date +%s) - t0))
		why=""
		if [ $rc -ne 0 ]; then
			why="exit $rc"
		elif grep -q '^not ok\|^Bail out!' "$log"; then
			why="a 'not ok' line"
		elif ! grep -q '^ok ' "$log"; then
			why="no assertion ran"
		fi
		if [ -z "$why" ]; then
			echo "ok $n - $name $c (${secs} s)"
		else
			failed=$((failed + 1))
			echo "not ok $n - $name $c alone: $why (${secs} s)"
			grep -n '^not ok\|^Bail out!\|^#' "$log" | head -n 20 | sed 's/^/#   /'
			tail -n 5 "$log" | sed 's/^/#   | /'
		fi
		if [ -n "${KVN_EACH_KEEP:-}" ]; then
			mkdir -p "$KVN_EACH_KEEP" && cp "$log" "$KVN_EACH_KEEP/"
		fi
	done
done
echo "1..$n"
echo "# $n cases alone, $failed failed, $(($(date +%s) - t_begin)) s"
[ $failed -eq 0 ]
