#!/bin/bash
# t/bench_scripts.sh: bench/cpu-per-op.sh (and so bench/lib.sh, which
# bench/vs-peers.sh shares) against a kvnode it starts itself: it runs, its
# table has the kvnode row, the less-tags row and the tag line with numbers
# in them, and bad arguments are refused with a reason.  redis and memcached
# are not needed here; the figures themselves are never asserted.
. "$(dirname "$0")/lib.sh"

S="$SRCDIR/bench/cpu-per-op.sh"
TMPDIR="$TMP" sh "$S" -b "$BUILDDIR" -t kvnode -r 1 get:4KiB >"$TMP/out" 2>"$TMP/err"
ok $? "cpu-per-op: a kvnode get row runs"
row=$(grep -E '^get +4KiB +kvnode ' "$TMP/out")
like "$row" '^get +4KiB +kvnode +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +- *$' \
	"kvnode row: ops/s, server, client and total us (no memcached to divide by)"
# both are read from counters (/proc, the shell's times): zero means unread
echo "$row" | awk '{ exit !($5 > 0) }'
ok $? "the server's CPU per op is above zero"
echo "$row" | awk '{ exit !($6 > 0) }'
ok $? "the client's CPU per op is above zero"
like "$(grep 'kvnode less tags' "$TMP/out")" 'less tags +[0-9.]+ ' "a less-tags row with a total"
like "$(grep 'one frame tag' "$TMP/out")" 'at 4KiB: [0-9.]+ us per side' "the tag's cost per side"
like "$(cat "$TMP/err")" 'targets up: kvnode' "kvnode came up"
is "$(ls "$TMP" | grep -c '^kvn-cpu-per-op')" 0 "its temp dir is removed"

sh "$S" -b "$BUILDDIR" -t "kvnode bogus" >/dev/null 2>"$TMP/err"
is $? 2 "an unknown target: usage error"
like "$(cat "$TMP/err")" "unknown target 'bogus'" "naming it"
sh "$S" -b "$BUILDDIR" mixed:1KiB >/dev/null 2>"$TMP/err"
is $? 2 "a row other than put or get: usage error"
like "$(cat "$TMP/err")" "mixed:1KiB" "naming it"
sh "$S" -b /nonexistent >/dev/null 2>"$TMP/err"
is $? 2 "no kvnode in the build dir: usage error"
done_testing
