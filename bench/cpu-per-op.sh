#!/bin/sh
# cpu-per-op.sh: where an op's CPU goes.  Runs the same closed-loop bench
# (`kvnode --role client bench`) against kvnode, redis and memcached and
# reads the CPU time the server process and the bench client used, per op.
# For kvnode it also measures one side's frame tag at the same size (`bench
# --op tag`) and prints kvnode's total less the two tags every op pays.
#
# Why: on a machine whose cores the clients and the server share, an op's
# total CPU bounds the throughput.  The ratio of totals says how much of a
# gap to a peer is work kvnode does that the peer does not do, and the
# "less tags" line how much of it the frame tags explain.  See
# bench/README.md.  POSIX sh + awk only.
set -u

usage() {
	cat <<EOF
usage: bench/cpu-per-op.sh [-b BUILDDIR] [-r REPEATS] [-t "kvnode redis memcached"] [-c CLIENTS] [-k] [OP:SIZE ...]
  -b DIR   build dir holding ./kvnode (default: .)
  -r N     repeat every run N times and report the median (default: 3)
  -t LIST  targets to run (default: "kvnode redis memcached")
  -c N     closed-loop clients (default: 4)
  -k       keep the temp dir (configs, server logs, raw lines)
  OP:SIZE  rows, put or get at a size (default: get:64KiB put:64KiB get:1MiB put:1MiB)
EOF
}

BUILD=.
REPS=3
TARGETS="kvnode redis memcached"
CLIENTS=4
KEEP=0
DRAM=2GiB
RUN_TIMEOUT=600
READY_TIMEOUT=60
KEYS=64 # few keys: a get run's untimed setup stays small against its timed part

while getopts b:r:t:c:kh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	r) REPS=$OPTARG ;;
	t) TARGETS=$OPTARG ;;
	c) CLIENTS=$OPTARG ;;
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
for r in $ROWS; do
	case $r in put:?* | get:?*) ;; *) echo "cpu-per-op: a row is OP:SIZE with OP put or get, not '$r'" >&2; exit 2 ;; esac
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

# run TARGET OP SIZE COUNT: one timed run, one result line with the CPU per op.
run() {
	t=$1 op=$2 size=$3 count=$4
	case $t in
	kvnode) cmd="$KV_CLIENT bench --target kvnode"; pid=$KV_PID ;;
	redis) cmd="$KV --role client bench --target redis://$REDIS_ADDR"; pid=$REDIS_PID ;;
	memcached) cmd="$KV --role client bench --target memcached://$MC_ADDR"; pid=$MC_PID ;;
	esac
	s0=$(proc_ticks "$pid")
	times >"$TMP/times0"
	# shellcheck disable=SC2086
	$TMO $RUN_TIMEOUT $cmd --op "$op" --size "$size" --count "$count" --keys $KEYS \
		--clients "$CLIENTS" --json </dev/null >"$TMP/out" 2>>"$TMP/bench.err"
	rc=$?
	times >"$TMP/times1"
	s1=$(proc_ticks "$pid")
	c0=$(child_secs "$TMP/times0") c1=$(child_secs "$TMP/times1")
	out=$(cat "$TMP/out")
	printf '%s %s\n' "$t" "$out" >>"$TMP/raw.jsonl"
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		say "cpu-per-op: $t $op $size failed (exit $rc); last lines of $TMP/bench.err:"
		tail -n 3 "$TMP/bench.err" >&2
		FAILED=1
		echo "$t $op $size - - - FAIL" >>"$RESULTS"
		return
	fi
	ops=$(jget "$out" ops_per_s)
	line=$(awk -v s0="$s0" -v s1="$s1" -v c0="$c0" -v c1="$c1" -v n="$count" -v tck="$TCK" \
		'BEGIN { printf "%.2f %.2f", (s1 - s0) / tck * 1e6 / n, (c1 - c0) * 1e6 / n }')
	echo "$t $op $size $ops $line ok" >>"$RESULTS"
	say "  $t $op $size: $ops ops/s, server/client us per op: $line"
}

start_targets "$TARGETS"

rep=0
while [ $rep -lt "$REPS" ]; do
	rep=$((rep + 1))
	say "cpu-per-op: round $rep of $REPS"
	for r in $ROWS; do
		op=${r%%:*} size=${r#*:}
		b=$(bytes "$size")
		case $b in '' | - | *[!0-9]*) say "cpu-per-op: bad size '$size'"; exit 2 ;; esac
		# about 6 GB per run, within 2000..100000 items: seconds, not minutes
		count=$((6000000000 / (b > 0 ? b : 1)))
		[ $count -gt 100000 ] && count=100000
		[ $count -lt 2000 ] && count=2000
		for t in $ACTIVE; do run "$t" "$op" "$size" "$count"; done
		out=$($KV --role client bench --op tag --size "$size" --count $((count * 4)) --json 2>>"$TMP/bench.err")
		echo "tag tag $size $(jget "$out" ops_per_s) - - ok" >>"$RESULTS"
	done
done

printf '\nCPU per op: %s clients, median of %s runs, loopback, %s cores, load %s\n' \
	"$CLIENTS" "$REPS" "$(nproc 2>/dev/null || echo '?')" "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v rows="$ROWS" -v active=" $ACTIVE " "$AWK_MEDIAN"'
function m(k, f) { return fail[k] ? "" : median(val[k, f]) }
function num(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
{
	k = $1 SUBSEP $2 SUBSEP $3
	if ($7 != "ok") { fail[k] = 1; next }
	val[k, "ops"] = val[k, "ops"] " " $4; val[k, "srv"] = val[k, "srv"] " " $5; val[k, "cli"] = val[k, "cli"] " " $6
}
END {
	fmt = "%-4s %-6s %-17s %10s %10s %10s %10s %10s\n"
	printf fmt, "op", "size", "target", "ops/s", "server us", "client us", "total us", "vs memc"
	n = split(rows, rs, " ")
	for (i = 1; i <= n; i++) {
		op = rs[i]; sub(/:.*/, "", op); size = rs[i]; sub(/^[^:]*:/, "", size)
		mc = ""
		k = "memcached" SUBSEP op SUBSEP size
		if (m(k, "srv") != "") mc = m(k, "srv") + m(k, "cli")
		tg = m("tag" SUBSEP "tag" SUBSEP size, "ops")
		tag_us = tg != "" && tg > 0 ? 1e6 / tg : ""
		split("kvnode redis memcached", ts, " ")
		for (j = 1; j <= 3; j++) {
			if (index(active, " " ts[j] " ") == 0) continue
			k = ts[j] SUBSEP op SUBSEP size
			if (fail[k]) { printf fmt, op, size, ts[j], "FAIL", "-", "-", "-", "-"; continue }
			s = m(k, "srv"); c = m(k, "cli"); tot = s == "" ? "" : s + c
			printf fmt, op, size, ts[j], num(m(k, "ops"), "%.0f"), num(s, "%.1f"), num(c, "%.1f"),
				num(tot, "%.1f"), tot != "" && mc != "" ? sprintf("%.2fx", tot / mc) : "-"
			if (ts[j] == "kvnode" && tot != "" && tag_us != "")
				printf fmt, "", "", "kvnode less tags", "", "", "", sprintf("%.1f", tot - 2 * tag_us),
					mc != "" ? sprintf("%.2fx", (tot - 2 * tag_us) / mc) : "-"
		}
		if (tag_us != "") printf "     one frame tag at %s: %.1f us per side (bench --op tag)\n", size, tag_us
	}
}' "$RESULTS"
echo
echo "notes: server us = CPU time of the server process (every thread) over the timed"
echo "  run, per op; client us = the bench client's CPU (process start and its small"
echo "  setup included).  'vs memc' divides a total by memcached's: above 1x, kvnode"
echo "  spends more CPU per op.  'less tags' subtracts two frame tags (the sender's"
echo "  and the receiver's) from kvnode's total."
[ $KEEP = 1 ] && echo "  raw JSON lines: $TMP/raw.jsonl"
exit $FAILED
