#!/bin/sh
# tier.sh: kvnode's tiers (issue 13) measured with `kvnode --role client
# bench`: gets from DRAM against gets of values offloaded to the disk tier,
# puts into free DRAM against puts while eviction (or offload to disk) runs,
# and the disk's own ceiling (dd with O_DIRECT) in the same run, with the
# ratios of kvnode's disk-tier rows to it.
#
# Three all-in-one nodes, each on free loopback ports with its data_dir (and
# so its disk tier) under the temp dir:
#   dram:  peer.dram_size = 8 x DRAM, no disk tier: nothing is evicted;
#   disk:  peer.dram_size = DRAM, a disk tier of 16 x DRAM (offload on-evict),
#          peer.promote_on_hit = off, so a get of an offloaded value is
#          served from its file every time;
#   evict: peer.dram_size = DRAM, no disk tier, evict = lru (a pure cache).
# The disk and evict rows use 4 x DRAM of distinct keys.  POSIX sh + awk
# only.  See bench/README.md ("tier.sh").
set -u

usage() {
	cat <<EOF
usage: bench/tier.sh [-b BUILDDIR] [-d DIR] [-r REPEATS] [-s SIZE] [-m DRAM] [-q] [-k]
  -b DIR   build dir holding ./kvnode (default: .)
  -d DIR   where the nodes' data (and disk tier) and the dd test file go:
           the disk under test (default: \$TMPDIR or /tmp)
  -r N     repeat every run N times and report the median (default: 3)
  -s SIZE  value size, in KiB or MiB (default: 1MiB)
  -m DRAM  peer.dram_size of the disk and evict nodes, in MiB (default: 64MiB)
  -q       quick: an eighth of the items per run (noisier)
  -k       keep the temp dir (configs, server logs, raw JSON lines)
EOF
}

BUILD=.
DIR=${TMPDIR:-/tmp}
REPS=3
SIZE=1MiB
DRAM=64MiB
QUICK=0
KEEP=0
CLIENTS=4
RUN_TIMEOUT=600
READY_TIMEOUT=60

while getopts b:d:r:s:m:qkh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	d) DIR=$OPTARG ;;
	r) REPS=$OPTARG ;;
	s) SIZE=$OPTARG ;;
	m) DRAM=$OPTARG ;;
	q) QUICK=1 ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { usage >&2; exit 2; }
case $REPS in '' | *[!0-9]* | 0) echo "tier: -r needs a positive number" >&2; exit 2 ;; esac
# sizes in bytes: whole KiB or MiB only, so every node size below is exact
bytes() {
	case $1 in
	*KiB) n=${1%KiB} m=1024 ;;
	*MiB) n=${1%MiB} m=1048576 ;;
	*) return 1 ;;
	esac
	case $n in '' | *[!0-9]* | 0*) return 1 ;; esac
	echo $((n * m))
}
S=$(bytes "$SIZE") || { echo "tier: -s '$SIZE': expected a size like 64KiB or 1MiB" >&2; exit 2; }
D=$(bytes "$DRAM") || { echo "tier: -m '$DRAM': expected a size like 8MiB or 64MiB" >&2; exit 2; }
[ $((D % 1048576)) -eq 0 ] && [ "$D" -ge $((4 * 1048576)) ] ||
	{ echo "tier: -m '$DRAM': at least 4MiB, in whole MiB" >&2; exit 2; }
[ $((S * 8)) -le "$D" ] || { echo "tier: -s $SIZE is too large for -m $DRAM (at most DRAM / 8)" >&2; exit 2; }
[ -d "$DIR" ] && [ -w "$DIR" ] || { echo "tier: -d '$DIR': not a writable directory" >&2; exit 2; }

ME=tier
TMPDIR=$DIR
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
have dd || { echo "tier: needs dd(1) from coreutils" >&2; exit 2; }
RESULTS=$TMP/results.txt
: >"$RESULTS"
FAILED=0

KEYS_DRAM=$((D / S))     # the dram rows' keys: DRAM's worth, in 8 x DRAM
KEYS_TIER=$((4 * D / S)) # the tier rows' keys: 4 x DRAM
COUNT=$((4 * KEYS_TIER)) # items per timed run: each key 4 times
[ $QUICK = 1 ] && COUNT=$((COUNT / 8))
[ $COUNT -lt $((CLIENTS * 4)) ] && COUNT=$((CLIENTS * 4))
# the cold get reads every key the offload run wrote: it must write them all
[ $COUNT -lt $KEYS_TIER ] && COUNT=$KEYS_TIER

# start_node NAME --set KEY=VALUE...: an all-in-one node with data_dir
# $TMP/NAME; its client command goes to CLIENT_NAME.
start_node() {
	name=$1
	shift
	try=0
	while [ $try -lt 5 ]; do
		try=$((try + 1))
		pick_port && mp=$PORT && pick_port && pp=$PORT || return 1
		conf=$TMP/$name.conf
		mkdir -p "$TMP/$name"
		cat >"$conf" <<EOF
[node]
data_dir = $TMP/$name
max_value_size = 64MiB
[master]
listen = 127.0.0.1:$mp
http =
[peer]
listen = 127.0.0.1:$pp
http =
master = 127.0.0.1:$mp
hugepages = off
[client]
master = 127.0.0.1:$mp
EOF
		"$KV" --role master,peer --config "$conf" "$@" >"$TMP/$name.log" 2>&1 &
		pid=$!
		PIDS="$PIDS $pid"
		eval "CLIENT_$name=\"\$KV --role client --config \$conf\""
		# shellcheck disable=SC2086
		wait_ready "$name" "$pid" "$TMP/$name.log" kvnode "$KV" --role client --config "$conf" && return 0
		stop_pid "$pid"
		grep -qi 'in use' "$TMP/$name.log" || return 1
	done
	return 1
}

# run ROW NODE OP KEYS [BENCH ARGS]: one bench run, one result line "ROW MB/s
# ops/s p99 status".
run() {
	row=$1 node=$2 op=$3 keys=$4
	shift 4
	eval "cmd=\$CLIENT_$node"
	# shellcheck disable=SC2086
	out=$($TMO $RUN_TIMEOUT $cmd bench --target kvnode --op "$op" --size "$S" --count "$COUNT" \
		--clients "$CLIENTS" --keys "$keys" --json "$@" </dev/null 2>>"$TMP/bench.err")
	rc=$?
	printf '%s %s\n' "$row" "$out" >>"$TMP/raw.jsonl"
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		say "tier: $row failed (exit $rc); last lines of $TMP/bench.err:"
		tail -n 3 "$TMP/bench.err" >&2
		FAILED=1
		status=FAIL
	else
		status=ok
	fi
	gbs=$(jget "$out" gb_per_s)
	mbs=$(awk -v g="$gbs" 'BEGIN { if (g == "-" || g == "") print "-"; else printf "%.1f", g * 1000 }')
	echo "$row $mbs $(jget "$out" ops_per_s) $(jget "$out" p99_us) $status" >>"$RESULTS"
	say "  $row: $mbs MB/s $(jget "$out" ops_per_s) ops/s p99 $(jget "$out" p99_us)us errors=$(jget "$out" errors)"
}

# dd_mbs ROW ARGS...: one dd run; "ROW MB/s - - ok|FAIL" from its byte count
# and seconds (not its rounded, unit-switching rate).
dd_mbs() {
	row=$1
	shift
	if $TMO 300 dd "$@" >"$TMP/dd.out" 2>&1; then
		mbs=$(awk '/ copied, / { b = $1; s = $0; sub(/.* copied, /, "", s); sub(/ s,.*/, "", s)
			if (s + 0 > 0) printf "%.1f", b / s / 1e6 }' "$TMP/dd.out")
		st=ok
	else
		mbs= st=FAIL
		say "tier: dd $* failed: $(tail -n 1 "$TMP/dd.out")"
		FAILED=1
	fi
	echo "$row ${mbs:--} - - $st" >>"$RESULTS"
	say "  $row: ${mbs:--} MB/s"
}

DD_MB=$((16 * D / 1048576)) # the dd file: as much as the disk tier holds
[ $DD_MB -gt 1024 ] && DD_MB=1024

# ---- start the nodes ------------------------------------------------------------
say "tier: values of $SIZE, DRAM tier $DRAM, $COUNT items per run, data under $TMP"
start_node dram --set "peer.dram_size=$((8 * D / 1048576))MiB" ||
	{ say "tier: the dram node did not start"; exit 1; }
start_node disk --set "peer.dram_size=$((D / 1048576))MiB" --set "peer.disk_size=$((16 * D / 1048576))MiB" \
	--set peer.offload=on-evict --set peer.promote_on_hit=off ||
	{ say "tier: the disk node did not start (does this kvnode have a disk tier?)"; exit 1; }
start_node evict --set "peer.dram_size=$((D / 1048576))MiB" --set peer.evict=lru --set peer.offload=off ||
	{ say "tier: the evict node did not start"; exit 1; }

rep=0
while [ $rep -lt "$REPS" ]; do
	rep=$((rep + 1))
	say "tier: round $rep of $REPS"
	run get-dram dram get $KEYS_DRAM
	run put-dram dram put $KEYS_DRAM
	run put-evict evict put $KEYS_TIER
	# the offload run leaves 4x DRAM of keys on the disk node, 3/4 of them
	# on disk; the cold get reads those (no untimed put and read-back
	# first), after the page cache was dropped when this user may
	run put-offload disk put $KEYS_TIER --keep --prefix tier-offload-
	sleep 1 # the last offloads land
	COLD=warm
	if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then COLD=cold; fi
	run get-disk disk get $KEYS_TIER --no-populate --prefix tier-offload-
	dd_mbs dd-write if=/dev/zero of="$TMP/ddtest" bs=1M count=$DD_MB oflag=direct conv=fsync
	dd_mbs dd-read if="$TMP/ddtest" of=/dev/null bs=1M iflag=direct
	rm -f "$TMP/ddtest"
done

# ---- the table ----------------------------------------------------------------
fs=$(df -PT "$TMP" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
printf '\nkvnode tiers: %s values, %s clients, DRAM tier %s, median of %s runs, %s cores, load %s\n' \
	"$SIZE" "$CLIENTS" "$DRAM" "$REPS" "$(nproc 2>/dev/null || echo '?')" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'disk under test: %s (%s)\n' "$DIR" "${fs:-?}"
awk -v keys_dram=$KEYS_DRAM -v keys_tier=$KEYS_TIER -v cold="${COLD:-warm}" "$AWK_MEDIAN"'
{
	if ($5 != "ok") fail[$1] = 1
	else { mb[$1] = mb[$1] " " $2; ops[$1] = ops[$1] " " $3; p99[$1] = p99[$1] " " $4 }
}
function cell(r, a) { return fail[r] ? "FAIL" : (r in a) ? median(a[r]) : "-" }
function lat(v) {
	if (v == "FAIL" || v == "-") return v
	return v < 1000 ? sprintf("%.0fus", v) : v < 1e6 ? sprintf("%.1fms", v / 1000) : sprintf("%.2fs", v / 1e6)
}
function ratio(a, b,   x, y) {
	x = cell(a, mb); y = cell(b, mb)
	if (x == "FAIL" || y == "FAIL" || x == "-" || y == "-" || y + 0 == 0) return "-"
	return sprintf("%.2fx", x / y)
}
function row(r, what, vs,   m, o) {
	m = cell(r, mb); o = cell(r, ops)
	printf "%-12s %-48s %10s %10s %9s   %s\n", r, what, m == "FAIL" || m == "-" ? m : sprintf("%.1f", m),
		o == "FAIL" || o == "-" ? o : sprintf("%.0f", o), lat(cell(r, p99)), vs
}
END {
	printf "%-12s %-48s %10s %10s %9s   %s\n", "row", "what", "MB/s", "ops/s", "p99", "vs"
	row("get-dram", "get, values in DRAM (" keys_dram " keys)", "")
	row("get-disk", "get, offloaded values, " cold " cache (" keys_tier " keys)", ratio("get-disk", "get-dram") " of get-dram, " ratio("get-disk", "dd-read") " of dd read")
	row("put-dram", "put, free DRAM (" keys_dram " keys)", "")
	row("put-evict", "put while LRU evicts, no disk tier (4x DRAM)", ratio("put-evict", "put-dram") " of put-dram")
	row("put-offload", "put while offloading to disk (4x DRAM)", ratio("put-offload", "put-dram") " of put-dram, " ratio("put-offload", "dd-write") " of dd write")
	row("dd-write", "dd of=FILE bs=1M oflag=direct conv=fsync", "")
	row("dd-read", "dd if=FILE bs=1M iflag=direct", "")
}' "$RESULTS"
echo
echo "notes: MB/s = 10^6 value bytes per second; p99 per call.  get-disk reads the"
echo "  keys the put-offload run left (3/4 of them offloaded) with --no-populate; with"
echo "  promote_on_hit off every get of an offloaded value reads its file.  'cold': the"
echo "  page cache was dropped first (root only), so the files come from the device;"
echo "  'warm': they may come from the page cache.  dd-read is the device (O_DIRECT)."
echo "  FAIL = a run exited non-zero or reported errors (wrong bytes included)."
[ $KEEP = 1 ] && echo "  raw JSON lines: $TMP/raw.jsonl"
exit $FAILED
