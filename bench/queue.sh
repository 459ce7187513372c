#!/bin/sh
# queue.sh: the consumer queue (issue 15) measured with `kvnode --role client
# bench --op queue`: producers putting samples (KVN_PUT_QUEUE, durable) while
# consumers lease, fetch and release them, for a few shapes (producers,
# consumers, lease batch), each against a baseline of the same producers'
# durable puts alone in the same run, with the master's SQLite commits/s
# read from master.db's WAL index.  One all-in-one node on free loopback
# ports, its data_dir under the temp dir.  POSIX sh + awk only.  See
# bench/README.md ("queue.sh").
set -u

usage() {
	cat <<EOF
usage: bench/queue.sh [-b BUILDDIR] [-r REPEATS] [-s SIZE] [-n COUNT] [-k] [SHAPE...]
  -b DIR    build dir holding ./kvnode (default: .)
  -r N      repeat every shape N times and report the median (default: 3)
  -s SIZE   sample size (default: 4KiB)
  -n COUNT  samples per run (default: 20000)
  -k        keep the temp dir (config, server log, raw JSON lines)
  SHAPE     PRODUCERS:CONSUMERS:BATCH (default: 1:1:1 2:2:16 4:4:64)
EOF
}

BUILD=.
REPS=3
SIZE=4KiB
COUNT=20000
KEEP=0
DRAM=256MiB
RUN_TIMEOUT=600
READY_TIMEOUT=60

while getopts b:r:s:n:kh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	r) REPS=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	n) COUNT=$OPTARG ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
SHAPES=${*:-1:1:1 2:2:16 4:4:64}
case $REPS in '' | *[!0-9]* | 0) echo "queue: -r needs a positive number" >&2; exit 2 ;; esac
case $COUNT in '' | *[!0-9]* | 0) echo "queue: -n needs a positive number" >&2; exit 2 ;; esac
for s in $SHAPES; do
	echo "$s" | grep -Eq '^[1-9][0-9]*:[1-9][0-9]*:[1-9][0-9]*$' ||
		{ echo "queue: shape '$s': expected PRODUCERS:CONSUMERS:BATCH, e.g. 2:2:16" >&2; exit 2; }
done

ME=queue
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

start_kvnode header || { say "queue: kvnode could not be started"; exit 1; }
DB=$TMP/kvdata-header/master.db
say "queue: node up; $(cpu_model)"
RAW=$TMP/raw.jsonl
: >"$RAW"
FAILED=0

for s in $SHAPES; do
	p=${s%%:*} rest=${s#*:}
	c=${rest%%:*} b=${rest#*:}
	r=0
	while [ $r -lt "$REPS" ]; do
		r=$((r + 1))
		say "queue: $SIZE producers=$p consumers=$c batch=$b, run $r of $REPS"
		# shellcheck disable=SC2086
		out=$($TMO $RUN_TIMEOUT $KV_CLIENT bench --op queue --size "$SIZE" --count "$COUNT" --producers "$p" \
			--clients "$c" --batch "$b" --master-db "$DB" --json </dev/null 2>>"$TMP/bench.err")
		rc=$?
		printf '%s %s\n' "$s" "$out" >>"$RAW"
		if [ $rc -ne 0 ] || [ "$(jget "$out" errors)" != 0 ]; then
			say "queue: run failed (exit $rc): $(tail -n 2 "$TMP/bench.err")"
			FAILED=1
		fi
	done
done

printf 'kvnode queue, %s samples, %s per run, median of %s runs; %s\n' "$SIZE" "$COUNT" "$REPS" "$(cpu_model)"
printf '%-9s %10s %9s %9s %9s %9s %10s %8s %10s %10s\n' shape samples/s lease_p50 lease_p99 rel_p50 rel_p99 \
	commits/s per_smpl base_put/s base_cm/s
for s in $SHAPES; do
	grep "^$s " "$RAW" | awk -v shape="$s" "$AWK_MEDIAN"'
		function f(k,   i, v) { i = index($0, "\"" k "\":"); if (!i) return ""
			v = substr($0, i + length(k) + 3); sub(/[,}].*/, "", v); return v == "null" ? "" : v }
		{ sps = sps " " f("samples_per_s"); l50 = l50 " " f("lease_p50_us"); l99 = l99 " " f("lease_p99_us")
		  r50 = r50 " " f("release_p50_us"); r99 = r99 " " f("release_p99_us")
		  cps = cps " " f("commits_per_s"); b = b " " f("baseline_puts_per_s"); bc = bc " " f("baseline_commits_per_s")
		  if (f("commits") != "" && f("ok") > 0) per = per " " f("commits") / f("ok") }
		function us(v) { return v == "" ? "-" : v < 1000 ? sprintf("%.0fus", v) : sprintf("%.1fms", v / 1000) }
		function n(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
		END { printf "%-9s %10s %9s %9s %9s %9s %10s %8s %10s %10s\n", shape, n(median(sps), "%.0f"),
			us(median(l50)), us(median(l99)), us(median(r50)), us(median(r99)), n(median(cps), "%.0f"),
			n(median(per), "%.2f"), n(median(b), "%.0f"), n(median(bc), "%.0f") }'
done
exit $FAILED
