#!/bin/bash
# t/bench_scripts.sh: bench/cpu-per-op.sh and bench/vs-peers.sh (and so
# bench/lib.sh, which they share) against kvnodes they start themselves: they
# run, their tables have the rows, lines and columns they promise (per
# integrity mode, the durable and exists rows, the tag and xxh3 baselines, the
# CPU model) with numbers in them, and bad arguments are refused with a
# reason; likewise bench/mem-per-key.sh's table.  redis and memcached are
# not needed here; the figures themselves are never asserted.
. "$(dirname "$0")/lib.sh"

S="$SRCDIR/bench/cpu-per-op.sh"
V="$SRCDIR/bench/vs-peers.sh"
TMPDIR="$TMP" sh "$S" -b "$BUILDDIR" -t kvnode -r 1 get:4KiB exists:1:8 durable:1KiB:4 >"$TMP/out" 2>"$TMP/err"
ok $? "cpu-per-op: kvnode get, exists and durable rows run"
row=$(grep -E '^get +4KiB +1 +kvnode ' "$TMP/out")
like "$row" '^get +4KiB +1 +kvnode +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +- *$' \
	"kvnode row: ops/s, server, client and total us (no memcached to divide by)"
# both are read from counters (/proc, the shell's times): zero means unread
echo "$row" | awk '{ exit !($6 > 0) }'
ok $? "the server's CPU per op is above zero"
echo "$row" | awk '{ exit !($7 > 0) }'
ok $? "the client's CPU per op is above zero"
like "$(cat "$TMP/out")" 'kvnode integrity mode: header' "the default mode is header, and said"
like "$(cat "$TMP/out")" 'cpu: .*, avx2 (yes|no), avx512f (yes|no)' "the CPU model and its vector flags"
like "$(grep 'kvnode less sums' "$TMP/out" | head -1)" 'less sums +[0-9.]+ ' "header mode: a less-sums row with a total"
is "$(grep -c 'kvnode less tags' "$TMP/out")" 0 "header mode: no less-tags row"
like "$(grep 'one frame tag at 4KiB' "$TMP/out")" 'at 4KiB: [0-9.]+ us per side' "the tag's cost per side"
like "$(grep 'one xxh3 at 4KiB' "$TMP/out")" 'at 4KiB: [0-9.]+ us per pass' "the checksum's cost per pass"
like "$(grep -E '^exists ' "$TMP/out")" '^exists +1 +8 +kvnode +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ ' "an exists row, batch 8"
like "$(grep -E '^durable ' "$TMP/out")" '^durable +1KiB +4 +kvnode +[0-9]+ +[0-9.]+ ' "a durable row, batch 4"
like "$(cat "$TMP/err")" 'targets up: kvnode-header' "kvnode came up in header mode"
like "$(cat "$TMP/err")" 'durable 1KiB batch=4' "the durable row ran with its batch"
is "$(ls "$TMP" | grep -c '^kvn-cpu-per-op')" 0 "its temp dir is removed"

TMPDIR="$TMP" sh "$S" -b "$BUILDDIR" -t kvnode -r 1 -m frame -k put:4KiB >"$TMP/out" 2>"$TMP/err"
ok $? "cpu-per-op -m frame runs"
like "$(grep 'kvnode less tags' "$TMP/out")" 'less tags +[0-9.]+ ' "frame mode: a less-tags row with a total"
like "$(cat "$TMP/out")" 'kvnode integrity mode: frame' "frame mode said"
kept=$(ls -d "$TMP"/kvn-cpu-per-op.* 2>/dev/null | head -1)
like "$(cat "$kept"/kvnode-frame.conf 2>/dev/null)" 'integrity = frame' "the node and the client read integrity = frame from one config"
rm -rf "$kept"

sh "$S" -b "$BUILDDIR" -t "kvnode bogus" >/dev/null 2>"$TMP/err"
is $? 2 "an unknown target: usage error"
like "$(cat "$TMP/err")" "unknown target 'bogus'" "naming it"
sh "$S" -b "$BUILDDIR" mixed:1KiB >/dev/null 2>"$TMP/err"
is $? 2 "a row other than put, get, exists or durable: usage error"
like "$(cat "$TMP/err")" "mixed:1KiB" "naming it"
sh "$S" -b "$BUILDDIR" get:1KiB:0 >/dev/null 2>"$TMP/err"
is $? 2 "a batch of 0: usage error"
like "$(cat "$TMP/err")" "get:1KiB:0" "naming it"
sh "$S" -b "$BUILDDIR" -m crc >/dev/null 2>"$TMP/err"
is $? 2 "an unknown integrity mode: usage error"
like "$(cat "$TMP/err")" "'crc'" "naming it"
sh "$S" -b /nonexistent >/dev/null 2>"$TMP/err"
is $? 2 "no kvnode in the build dir: usage error"

# vs-peers: one node per mode, a line per TCP mode in every row, the
# same-host node in its own column
TMPDIR="$TMP" sh "$V" -b "$BUILDDIR" -t kvnode -r 1 -q >"$TMP/out" 2>"$TMP/err"
ok $? "vs-peers -q with kvnode in its three modes runs"
like "$(cat "$TMP/err")" 'targets up: kvnode-header kvnode-frame kvnode-local' "a node per mode came up"
like "$(cat "$TMP/out")" 'kvnode modes: header frame local' "the modes are said"
like "$(cat "$TMP/out")" 'cpu: .*, avx2 (yes|no), avx512f (yes|no)' "the CPU model and its vector flags"
for m in header frame; do
	like "$(grep -E "^put +64KiB +1 +$m " "$TMP/out")" \
		"^put +64KiB +1 +$m +\\| [0-9.]+ GB/s +[0-9.]+ GB/s +- +- +\\| - +- +- +[0-9.]+x +\\| [0-9.]+[mu]?s +[0-9.]+[mu]?s " \
		"put 64KiB, $m: GB/s and p99 of TCP and local, their ratio, no peers"
	like "$(grep -E "^durable +4KiB +64 +$m " "$TMP/out")" "^durable +4KiB +64 +$m +\\| [0-9]+k op/s +[0-9]+k op/s " "the durable row, $m"
	like "$(grep -E "^exists +1B +64 +$m " "$TMP/out")" "^exists +1B +64 +$m +\\| [0-9]+k op/s +[0-9]+k op/s " "the exists row, $m"
done
is "$(grep -cE '^(put|get|durable|exists) ' "$TMP/out")" 24 "12 rows, a line per TCP mode each"
is "$(grep -cE '^(put|get|durable|exists) +[^ ]+ +[^ ]+ +local ' "$TMP/out")" 0 "local is a column, not a line"
like "$(cat "$TMP/out")" 'kv-local get 1MiB / memcpy 1MiB \(1 thread\): [0-9.]+x warm, [0-9.]+x cold' "local get against memcpy, 1 MiB"
like "$(cat "$TMP/out")" 'kv-local get 16MiB / memcpy 16MiB \(1 thread\): [0-9.]+x warm, [0-9.]+x cold' "and 16 MiB"
like "$(cat "$TMP/out")" '  memcpy 1MiB +[0-9.]+ GB/s cold \(from 256 MiB of buffers\)' "the cold memcpy baseline"
for sz in 4KiB 64KiB 1MiB 16MiB; do
	like "$(grep -E "^  $sz +\\|" "$TMP/out")" "^  $sz +\\| [0-9.]+ GB/s, p99 [0-9.]+[mu]?s +\\| [0-9.]+ GB/s, p99 [0-9.]+[mu]?s" \
		"tag and xxh3 baselines at $sz"
done
is "$(ls "$TMP" | grep -c '^kvn-vs-peers')" 0 "its temp dir is removed"
# redis-benchmark against the RESP gateway (redis-server is not run here)
if command -v redis-benchmark > /dev/null; then
	for t in SET GET; do
		like "$(grep -E "^  $t +\|" "$TMP/out")" "^  $t +\| - +\| [0-9]+ req/s +\| -$" \
			"the redis-benchmark table: the gateway's $t, no redis-server, no ratio"
	done
else
	skip "redis-benchmark is not installed (redis-tools): no gateway table"
fi

sh "$V" -b "$BUILDDIR" -m "header crc" >/dev/null 2>"$TMP/err"
is $? 2 "vs-peers: an unknown integrity mode: usage error"
like "$(cat "$TMP/err")" "'crc'" "naming it"
sh "$V" -b "$BUILDDIR" -r 0 >/dev/null 2>"$TMP/err"
is $? 2 "vs-peers -r 0: usage error"
sh "$V" -b "$BUILDDIR" -t "kvnode bogus" >/dev/null 2>"$TMP/err"
is $? 2 "vs-peers: an unknown target: usage error"

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
# bench/restart-cost.sh (docs/operations.md): a small run restarts the
# master and a key put before is served again
R="$SRCDIR/bench/restart-cost.sh"
TMPDIR="$TMP" bash "$R" -b "$BUILDDIR" -n 2000 > "$TMP/out" 2> "$TMP/err"
ok $? "restart-cost: a 2000-key run finishes"
like "$(head -n 1 "$TMP/out")" "^restart-cost: 2002 objects in master\.db .*; SIGKILL: stopped in [0-9]+ ms, ready after [0-9]+ ms, first get of an older key after [0-9]+ ms$" \
	"restart-cost: its line, with a get served after the restart"
like "$(cat "$TMP/out")" "2002 objects loaded" "restart-cost: the restarted master loaded them all"
is "$(ls "$TMP" | grep -c '^kvn-restart-cost')" 0 "restart-cost: its temp dir is removed"
done_testing
