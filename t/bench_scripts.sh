#!/bin/bash
# t/bench_scripts.sh: bench/cpu-per-op.sh (and so bench/lib.sh, which
# bench/vs-peers.sh shares) against a kvnode it starts itself: it runs, its
# table has the kvnode row, the less-tags row and the tag line with numbers
# in them, and bad arguments are refused with a reason; likewise
# bench/mem-per-key.sh's table.  redis and memcached
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
# bench/mem-per-key.sh: a small run prints the three rows with numbers
# (never asserted: RSS at 2000 keys is mostly noise), bad options are refused
M="$SRCDIR/bench/mem-per-key.sh"
TMPDIR="$TMP" sh "$M" -b "$BUILDDIR" -n 2000 -r 1 >"$TMP/out" 2>"$TMP/err"
ok $? "mem-per-key: a 2000-key run finishes"
like "$(grep '^peer ' "$TMP/out")" '^peer +-?[0-9.]+$' "a peer row with a number"
like "$(grep '^master ' "$TMP/out")" '^master +-?[0-9.]+$' "a master row with a number"
like "$(grep '^master.db ' "$TMP/out")" '^master.db +-?[0-9.]+$' "a master.db row with a number"
like "$(cat "$TMP/err")" 'run 1: peer .* B/key' "the run's own line"
is "$(ls "$TMP" | grep -c '^kvn-mem-per-key')" 0 "its temp dir is removed"
sh "$M" -b "$BUILDDIR" -n 0 >/dev/null 2>"$TMP/err"
is $? 2 "mem-per-key -n 0: usage error"
like "$(cat "$TMP/err")" "-n needs a positive number" "saying why"
sh "$M" -b "$BUILDDIR" extra >/dev/null 2>"$TMP/err"
is $? 2 "mem-per-key with an argument: usage error"
like "$(cat "$TMP/err")" "unexpected argument 'extra'" "naming it"
sh "$M" -b /nonexistent >/dev/null 2>"$TMP/err"
is $? 2 "mem-per-key without kvnode in the build dir: usage error"
done_testing
