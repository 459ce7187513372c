#!/bin/sh
# cpu-per-op.sh: where an op's CPU goes.  Runs the same closed-loop bench
# (`kvnode --role client bench`) against kvnode, redis and memcached and
# reads the CPU time the server process and the bench client used, per op.
# For kvnode it also measures one side's frame tag and one pass of the value
# checksum at the same size (`bench --op tag`, `--op xxh3`) and prints
# kvnode's total less what its integrity mode (-m) pays per op: two tags in
# `frame` mode (sender and receiver), two checksum passes in `header` mode
# (the writer's and the receiver's).
#
# Why: on a machine whose cores the clients and the server share, an op's
# total CPU bounds the throughput.  The ratio of totals says how much of a
# gap to a peer is work kvnode does that the peer does not do, and the
# "less tags" / "less sums" line how much of it the integrity work explains;
# run it with -m frame and -m header for a before/after.  See
# bench/README.md.  POSIX sh + awk only.
set -u

usage() {
	cat <<EOF
usage: bench/cpu-per-op.sh [-b BUILDDIR] [-r REPEATS] [-t "kvnode redis memcached"] [-c CLIENTS]
                          [-m header|frame] [-k] [OP:SIZE[:BATCH] ...]
  -b DIR   build dir holding ./kvnode (default: .)
  -r N     repeat every run N times and report the median (default: 3)
  -t LIST  targets to run (default: "kvnode redis memcached")
  -c N     closed-loop clients (default: 4)
  -m MODE  kvnode's auth.integrity, header or frame (default: header)
  -k       keep the temp dir (configs, server logs, raw lines)
  OP:SIZE[:BATCH]  rows: OP put, get, exists (routed key lookups) or durable
           (kvnode puts with --durable; the peers are not run) at a value size,
           BATCH items per call (default 1); CPU is per item
           (default: get:64KiB put:64KiB get:1MiB put:1MiB)
EOF
}

BUILD=.
REPS=3
TARGETS="kvnode redis memcached"
CLIENTS=4
KV_MODES=header
KEEP=0
DRAM=2GiB
RUN_TIMEOUT=600
READY_TIMEOUT=60
KEYS=64 # few keys: a get run's untimed setup stays small against its timed part

while getopts b:r:t:c:m:kh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	r) REPS=$OPTARG ;;
	t) TARGETS=$OPTARG ;;
	c) CLIENTS=$OPTARG ;;
	m) KV_MODES=$OPTARG ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
ROWS=${*:-get:64KiB put:64KiB get:1MiB put:1MiB}
case $REPS in '' | *[!0-9]* | 0) echo "cpu-per-op: -r needs a positive number" >&2; exit 2 ;; esac
case $CLIENTS in '' | *[!0-9]* | 0) echo "cpu-per-op: -c needs a positive number" >&2; exit 2 ;; esac
for t in $TARGETS; do
	case $t in kvnode | redis | memcached) ;; *) echo "cpu-per-op: unknown target '$t'" >&2; exit 2 ;; esac
done
case $KV_MODES in header | frame) ;; *) echo "cpu-per-op: -m is header or frame, not '$KV_MODES'" >&2; exit 2 ;; esac
for r in $ROWS; do
	okr=0
	case $r in put:?* | get:?* | exists:?* | durable:?*) okr=1 ;; esac
	case $r in *:*:*) case ${r##*:} in '' | *[!0-9]* | 0) okr=0 ;; esac ;; esac
	[ $okr = 1 ] || { echo "cpu-per-op: a row is OP:SIZE[:BATCH] with OP put, get, exists or durable, not '$r'" >&2; exit 2; }
done

ME=cpu-per-op
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RESULTS=$TMP/results.txt
: >"$RESULTS"
FAILED=0
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# Server CPU so far, in clock ticks: user + system of every thread.
proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# child_secs FILE: waited-for children's CPU in seconds, from the output of
# `times` saved in FILE.  `times` itself must run in this shell, not in a
# $(...) or a pipeline: a subshell reports its own children, none.
child_secs() {
	awk 'NR == 2 {
		s = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1] * 60 + a[2] }
		print s }' "$1"
}

# bytes SIZE: a size with units in bytes, through the bench's own parser.
bytes() {
	out=$($KV --role client bench --op memcpy --size "$1" --count 1 --json 2>/dev/null)
	jget "$out" size
}

# run TARGET OP SIZE BATCH COUNT: one timed run, one result line with the CPU
# per item.  TARGET kvnode-MODE is recorded as kvnode (one mode per run).
run() {
	t=$1 op=$2 size=$3 batch=$4 count=$5
	bop=$op dur=
	if [ "$op" = durable ]; then
		case $t in kvnode-*) bop=put dur=--durable ;; *) return 0 ;; esac
	fi
	case $t in
	# --keep: removing the keys after the run would add to the server's CPU
	kvnode-*) cmd="$KV_CLIENT bench --target kvnode --keep"; pid=$KV_PID; t=kvnode ;;
	redis) cmd="$KV --role client bench --target redis://$REDIS_ADDR"; pid=$REDIS_PID ;;
	memcached) cmd="$KV --role client bench --target memcached://$MC_ADDR"; pid=$MC_PID ;;
	esac
	s0=$(proc_ticks "$pid")
	times >"$TMP/times0"
	# shellcheck disable=SC2086
	$TMO $RUN_TIMEOUT $cmd --op "$bop" $dur --size "$size" --count "$count" --batch "$batch" \
		--keys $(((KEYS > CLIENTS ? KEYS : CLIENTS) * batch)) --clients "$CLIENTS" --json </dev/null >"$TMP/out" 2>>"$TMP/bench.err"
	rc=$?
	times >"$TMP/times1"
	s1=$(proc_ticks "$pid")
	c0=$(child_secs "$TMP/times0") c1=$(child_secs "$TMP/times1")
	out=$(cat "$TMP/out")
	printf '%s %s\n' "$t" "$out" >>"$TMP/raw.jsonl"
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		say "cpu-per-op: $t $op $size batch $batch failed (exit $rc); last lines of $TMP/bench.err:"
		tail -n 3 "$TMP/bench.err" >&2
		FAILED=1
		echo "$t $op:$size:$batch - - - FAIL" >>"$RESULTS"
		return
	fi
	ops=$(jget "$out" ops_per_s)
	line=$(awk -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v n="$count" -v tck="$TCK" \
		'BEGIN { printf "%.2f %.2f", (s1 - s0) / tck * 1e6 / n, (c1 - c0) * 1e6 / n }')
	echo "$t $op:$size:$batch $ops $line ok" >>"$RESULTS"
	say "  $t $op $size batch=$batch: $ops ops/s, server/client us per item: $line"
}

start_targets "$TARGETS"

rep=0
while [ $rep -lt "$REPS" ]; do
	rep=$((rep + 1))
	say "cpu-per-op: round $rep of $REPS"
	for r in $ROWS; do
		op=${r%%:*} size=${r#*:} batch=1
		case $size in *:*) batch=${size#*:} size=${size%%:*} ;; esac
		b=$(bytes "$size")
		case $b in '' | - | *[!0-9]*) say "cpu-per-op: bad size '$size'"; exit 2 ;; esac
		# about 6 GB per run, within 2000..100000 items: seconds, not minutes
		count=$((6000000000 / (b > 0 ? b : 1)))
		[ $count -gt 100000 ] && count=100000
		[ $count -lt 2000 ] && count=2000
		# lookups and durable puts move little: enough items for a second or
		# more, so the 10 ms CPU ticks stay small against the run
		case $op in
		exists) count=$((batch > 1 ? 1000000 : 100000)) ;;
		durable) count=$((batch > 1 ? 100000 : 5000)) ;;
		esac
		for t in $ACTIVE; do run "$t" "$op" "$size" "$batch" "$count"; done
		for l in tag xxh3; do
			out=$($KV --role client bench --op $l --size "$size" --count $((count * 4)) --json 2>>"$TMP/bench.err")
			echo "$l $l:$size:1 $(jget "$out" ops_per_s) - - ok" >>"$RESULTS"
		done
	done
done

printf '\nCPU per op: %s clients, median of %s runs, loopback, %s cores, load %s\n' \
	"$CLIENTS" "$REPS" "$(nproc 2>/dev/null || echo '?')" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'cpu: %s\n' "$(cpu_model)"
printf 'kvnode integrity mode: %s\n' "$KV_MODES"
ACT=$(printf '%s\n' "$ACTIVE" | sed 's/kvnode-[a-z]*/kvnode/')
awk -v rows="$ROWS" -v active=" $ACT " -v mode="$KV_MODES" "$AWK_MEDIAN"'
function m(k, f) { return fail[k] ? "" : median(val[k, f]) }
function num(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
function us(l, sz,   v) { v = m(l SUBSEP l ":" sz ":1", "ops"); return v != "" && v > 0 ? 1e6 / v : "" }
{
	k = $1 SUBSEP $2
	if ($6 != "ok") { fail[k] = 1; next }
	val[k, "ops"] = val[k, "ops"] " " $3; val[k, "srv"] = val[k, "srv"] " " $4; val[k, "cli"] = val[k, "cli"] " " $5
}
END {
	fmt = "%-7s %-6s %-5s %-17s %10s %10s %10s %10s %10s\n"
	printf fmt, "op", "size", "batch", "target", "ops/s", "server us", "client us", "total us", "vs memc"
	n = split(rows, rs, " ")
	for (i = 1; i <= n; i++) {
		op = rs[i]; sub(/:.*/, "", op); size = rs[i]; sub(/^[^:]*:/, "", size); batch = 1
		if (index(size, ":")) { batch = size; sub(/^[^:]*:/, "", batch); sub(/:.*/, "", size) }
		row = op ":" size ":" batch
		mc = ""
		k = "memcached" SUBSEP row
		if (m(k, "srv") != "") mc = m(k, "srv") + m(k, "cli")
		tag_us = us("tag", size); sum_us = us("xxh3", size)
		# what the mode pays per op on top of the request: two tags (frame)
		# or two checksum passes (header); a lookup moves no value
		less = mode == "frame" ? tag_us : sum_us
		split("kvnode redis memcached", ts, " ")
		for (j = 1; j <= 3; j++) {
			if (index(active, " " ts[j] " ") == 0) continue
			if (op == "durable" && ts[j] != "kvnode") continue
			k = ts[j] SUBSEP row
			if (fail[k]) { printf fmt, op, size, batch, ts[j], "FAIL", "-", "-", "-", "-"; continue }
			s = m(k, "srv"); c = m(k, "cli"); tot = s == "" ? "" : s + c
			printf fmt, op, size, batch, ts[j], num(m(k, "ops"), "%.0f"), num(s, "%.1f"), num(c, "%.1f"),
				num(tot, "%.1f"), tot != "" && mc != "" ? sprintf("%.2fx", tot / mc) : "-"
			if (ts[j] == "kvnode" && op != "exists" && tot != "" && less != "")
				printf fmt, "", "", "", mode == "frame" ? "kvnode less tags" : "kvnode less sums", "", "", "",
					sprintf("%.1f", tot - 2 * less), mc != "" ? sprintf("%.2fx", (tot - 2 * less) / mc) : "-"
		}
		if (tag_us != "") printf "     one frame tag at %s: %.1f us per side (bench --op tag)\n", size, tag_us
		if (sum_us != "") printf "     one xxh3 at %s: %.1f us per pass (bench --op xxh3)\n", size, sum_us
	}
}' "$RESULTS"
echo
echo "notes: server us = CPU time of the server process (every thread) over the timed"
echo "  run, per item; client us = the bench client's CPU (process start and its"
echo "  setup included: populate and verify for get and exists).  'vs memc' divides a"
echo "  total by memcached's: above 1x, kvnode spends more CPU per item.  'less tags'"
echo "  (-m frame) subtracts two frame tags (the sender's and the receiver's) from"
echo "  kvnode's total; 'less sums' (-m header) two xxh3 passes (the writer's and"
echo "  the receiver's).  durable rows run kvnode only."
[ $KEEP = 1 ] && echo "  raw JSON lines: $TMP/raw.jsonl"
exit $FAILED
