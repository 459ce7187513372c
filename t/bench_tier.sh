#!/bin/bash
# t/bench_tier.sh: bench/tier.sh with a tiny setting (64 KiB values, an
# 8 MiB DRAM tier, one round, an eighth of the items) against the nodes it
# starts itself: it runs and exits 0, every kvnode row and both dd rows
# have numbers, the ratio columns are filled, its temp dir is removed, and
# bad arguments are refused with a reason.  The figures are never asserted.
. "$(dirname "$0")/lib.sh"

S="$SRCDIR/bench/tier.sh"
TMPDIR="$TMP" sh "$S" -b "$BUILDDIR" -d "$TMP" -r 1 -q -s 64KiB -m 8MiB >"$TMP/out" 2>"$TMP/err"
rc=$?
ok $rc "tier.sh runs and exits 0 (every run without errors)"
[ $rc -eq 0 ] || tail -n 5 "$TMP/err" | sed 's/^/#   /'
for r in get-dram get-disk put-dram put-evict put-offload; do
	like "$(grep -E "^$r " "$TMP/out")" "^$r .* [0-9]+\.[0-9] +[0-9]+ +[0-9.]+(us|ms|s) " "row $r: MB/s, ops/s and p99"
done
for r in dd-write dd-read; do
	like "$(grep -E "^$r " "$TMP/out")" "^$r .* [0-9]+\.[0-9] +- +- " "row $r: MB/s"
done
like "$(grep -E '^get-disk ' "$TMP/out")" "[0-9.]+x of get-dram, [0-9.]+x of dd read" "get-disk: its ratios to DRAM gets and to dd"
like "$(grep -E '^put-offload ' "$TMP/out")" "[0-9.]+x of put-dram, [0-9.]+x of dd write" "put-offload: its ratios"
is "$(ls "$TMP" | grep -c '^kvn-tier')" 0 "its temp dir is removed"

sh "$S" -b "$BUILDDIR" -r 0 >/dev/null 2>"$TMP/err"
is $? 2 "-r 0: usage error"
sh "$S" -b "$BUILDDIR" -s 3GB >/dev/null 2>"$TMP/err"
is $? 2 "-s 3GB: usage error"
like "$(cat "$TMP/err")" "-s '3GB'" "naming it"
sh "$S" -b "$BUILDDIR" -s 4MiB -m 8MiB >/dev/null 2>"$TMP/err"
is $? 2 "a value over DRAM / 8: usage error"
sh "$S" -b "$BUILDDIR" -d "$TMP/nonexistent" >/dev/null 2>"$TMP/err"
is $? 2 "-d with a missing directory: usage error"
sh "$S" -b /nonexistent >/dev/null 2>"$TMP/err"
is $? 2 "no kvnode in the build dir: usage error"
done_testing
