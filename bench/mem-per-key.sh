#!/bin/sh
# mem-per-key.sh: metadata memory per key.  Starts a master and a peer as
# separate processes (own ports and data dirs under a temp dir), reads each
# one's resident memory, puts N keys of 1-byte values through
# `kvnode --role client bench --op put`, waits until the master indexes all
# of them, reads the memory again and prints bytes per key: the peer's, the
# master's, and master.db's (with its WAL) on disk.
#
# What is counted (honest, not flattering): the whole resident set of each
# process (VmRSS: heap, libraries' pages, stacks, SQLite's cache), less, for
# the peer, the resident part of its DRAM arena mapping (found in
# /proc/PID/smaps as the mapping of peer.dram_size).  The arena is
# allocated and touched at start and a 1-byte value occupies a whole page
# of it: that is capacity, not metadata.  Every other byte the N puts left
# resident counts, allocator slack and hash-table headroom included.
# POSIX sh + awk only.  See bench/README.md.
set -u

usage() {
	cat <<EOF
usage: bench/mem-per-key.sh [-b BUILDDIR] [-n KEYS] [-r REPEATS] [-k]
  -b DIR   build dir holding ./kvnode (default: .)
  -n N     keys to put (default: 500000; the arena holds N pages of 4KiB)
  -r N     repeat on fresh processes N times, print each and the median (default: 3)
  -k       keep the temp dir (configs, logs)
EOF
}

BUILD=.
NKEYS=500000
REPS=3
KEEP=0
READY_TIMEOUT=60
RUN_TIMEOUT=900
PAGE=4096

while getopts b:n:r:kh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	n) NKEYS=$OPTARG ;;
	r) REPS=$OPTARG ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || { echo "mem-per-key: unexpected argument '$1'" >&2; usage >&2; exit 2; }
case $NKEYS in '' | *[!0-9]* | 0) echo "mem-per-key: -n needs a positive number" >&2; exit 2 ;; esac
case $REPS in '' | *[!0-9]* | 0) echo "mem-per-key: -r needs a positive number" >&2; exit 2 ;; esac
# room for every value (a page each) and the bench's ready probe, in MiB
DRAM_MIB=$(((NKEYS * PAGE + 1048575) / 1048576 + 64))
DRAM=${DRAM_MIB}MiB

ME=mem-per-key
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RESULTS=$TMP/results.txt
: >"$RESULTS"

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Resident kB of the peer's arena: the mapping whose size is at least
# peer.dram_size (no other mapping of the peer comes near it).
arena_kb() {
	awk -v want=$((DRAM_MIB * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { insz = 0; next }
		$1 == "Size:" { insz = ($2 >= want) }
		$1 == "Rss:" && insz { s += $2 }
		END { print s + 0 }' "/proc/$1/smaps" 2>/dev/null
}

db_bytes() {
	s=0
	for f in "$1"/master.db "$1"/master.db-wal; do
		[ -f "$f" ] && s=$((s + $(wc -c <"$f")))
	done
	echo $s
}

# The master's object count, from `stat`.
objects() {
	$TMO 10 $CLI stat 2>/dev/null </dev/null | awk '$1 == "objects:" { print $2 }'
}

# start NAME PORTVAR ARGS...: start kvnode, retry on a port taken meanwhile.
start_proc() {
	name=$1
	shift
	"$KV" "$@" >"$TMP/$name.log" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	LAST_PID=$pid
}

wait_log() {
	deadline=$(($(date +%s) + READY_TIMEOUT))
	while [ "$(date +%s)" -lt $deadline ]; do
		grep -q "$2" "$TMP/$1.log" 2>/dev/null && return 0
		alive "$3" || break
		sleep 0.1
	done
	say "$ME: $1 not ready (waited for '$2'); last lines of $TMP/$1.log:"
	tail -n 5 "$TMP/$1.log" >&2
	return 1
}

# Settled RSS: the allocator and the kernel have caught up once two
# readings a second apart agree within 1%.
settle() {
	a=$(rss_kb "$1")
	i=0
	while [ $i -lt 10 ]; do
		sleep 1
		b=$(rss_kb "$1")
		awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d * d <= (b / 100) * (b / 100)) }' && return 0
		a=$b
		i=$((i + 1))
	done
	return 0
}

run_once() {
	rep=$1
	dir=$TMP/r$rep
	mkdir -p "$dir/m" "$dir/p"
	pick_port && mp=$PORT && pick_port && pp=$PORT || return 1
	conf=$dir/kvnode.conf
	cat >"$conf" <<EOF
[node]
data_dir = $dir/m
[master]
listen = 127.0.0.1:$mp
http =
[peer]
listen = 127.0.0.1:$pp
http =
master = 127.0.0.1:$mp
dram_size = $DRAM
# every key must stay (an evicted key would leave both tables)
evict = none
[client]
master = 127.0.0.1:$mp
EOF
	start_proc "master$rep" --role master --config "$conf"
	mpid=$LAST_PID
	wait_log "master$rep" "kvnode ready" "$mpid" || return 1
	start_proc "peer$rep" --role peer --config "$conf" --set "node.data_dir=$dir/p" \
		--set "auth.peer_secret_file=$dir/m/peer.secret" --set "auth.client_secret_file=$dir/m/client.secret"
	ppid=$LAST_PID
	wait_log "peer$rep" "attached to the master (epoch" "$ppid" || return 1
	CLI="$KV --role client --config $conf"
	settle "$ppid"
	settle "$mpid"
	p0=$(rss_kb "$ppid") a0=$(arena_kb "$ppid") m0=$(rss_kb "$mpid") d0=$(db_bytes "$dir/m")
	# shellcheck disable=SC2086
	$TMO $RUN_TIMEOUT $CLI bench --target kvnode --op put --size 1B --count "$NKEYS" --keys "$NKEYS" \
		--batch 64 --clients 1 --keep --json </dev/null >"$dir/bench.out" 2>"$dir/bench.err" || {
		say "$ME: the bench failed; last lines of $dir/bench.err:"
		tail -n 3 "$dir/bench.err" >&2
		return 1
	}
	# the master indexes the peer's events after the puts return
	deadline=$(($(date +%s) + 120))
	# (the bench may add a probe key of its own: at least N)
	while o=$(objects); [ "${o:-0}" -lt "$NKEYS" ] && [ "$(date +%s)" -lt $deadline ]; do sleep 0.5; done
	[ "${o:-0}" -ge "$NKEYS" ] || { say "$ME: the master indexes ${o:-?} objects, not $NKEYS"; return 1; }
	settle "$ppid"
	settle "$mpid"
	sleep 2 # the writer's linger: the last commit reaches master.db
	p1=$(rss_kb "$ppid") a1=$(arena_kb "$ppid") m1=$(rss_kb "$mpid") d1=$(db_bytes "$dir/m")
	line=$(awk -v n="$NKEYS" -v p0="$p0" -v p1="$p1" -v a0="$a0" -v a1="$a1" -v m0="$m0" -v m1="$m1" \
		-v d0="$d0" -v d1="$d1" 'BEGIN {
		printf "%.1f %.1f %.1f %d %d", ((p1 - a1) - (p0 - a0)) * 1024 / n, (m1 - m0) * 1024 / n,
			(d1 - d0) / n, a0, a1 }')
	echo "$line" >>"$RESULTS"
	set -- $line
	say "  run $rep: peer $1 B/key, master $2 B/key, master.db $3 B/key (peer arena resident: $4 -> $5 kB)"
	stop_pid "$ppid"
	stop_pid "$mpid"
	[ $KEEP = 1 ] || rm -rf "$dir"
	return 0
}

rep=0
FAILED=0
while [ $rep -lt "$REPS" ]; do
	rep=$((rep + 1))
	run_once $rep || { FAILED=1; break; }
done

printf '\nmetadata per key: %s keys of 1 byte, bench put --batch 64, median of %s runs\n' "$NKEYS" \
	"$(wc -l <"$RESULTS" | tr -d ' ')"
awk "$AWK_MEDIAN"'
{ p = p " " $1; m = m " " $2; d = d " " $3 }
END {
	if (NR == 0) { print "no run finished"; exit }
	printf "%-10s %10s\n", "process", "B/key"
	printf "%-10s %10.1f\n", "peer", median(p)
	printf "%-10s %10.1f\n", "master", median(m)
	printf "%-10s %10.1f\n", "master.db", median(d)
}' "$RESULTS"
echo
echo "notes: B/key = (resident set after - before) / keys.  peer: VmRSS less the"
echo "  resident part of its DRAM arena (allocated and touched at start; a value"
echo "  takes a whole page of it: capacity, not metadata).  master: VmRSS."
echo "  master.db: master.db + master.db-wal bytes on disk."
exit $FAILED
