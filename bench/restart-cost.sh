#!/bin/bash
# restart-cost.sh: what a master restart costs (docs/operations.md, "The
# master: one process, a single point of failure").  Starts a master and a
# DRAM-only peer as separate processes in a temp dir, puts N keys of 1 KiB
# through `kvnode --role client bench --op put`, signals the master (KILL or
# TERM), starts it again at once, and prints the milliseconds from the
# signal to its `kvnode ready` line and to the first successful get of a key
# put before (the peer re-synced and keys are routed again).  Every wait has
# a deadline; a get that never succeeds is reported as such.
set -u

usage() {
	cat <<EOF
usage: bench/restart-cost.sh [-b BUILDDIR] [-n KEYS] [-s KILL|TERM] [-k]
  -b DIR   build dir holding ./kvnode (default: .)
  -n N     keys of 1 KiB to put (default: 100000; the peer's arena is 2 GiB of 4 KiB pages)
  -s SIG   how the master is stopped (default: KILL)
  -k       keep the temp dir (configs, logs)
EOF
}

BUILD=. N=100000 SIG=KILL KEEP=0
while getopts b:n:s:kh opt; do
	case $opt in
	b) BUILD=$OPTARG ;;
	n) N=$OPTARG ;;
	s) SIG=$OPTARG ;;
	k) KEEP=1 ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
case $SIG in KILL | TERM) ;; *) usage >&2; exit 2 ;; esac
K=$(cd "$BUILD" && pwd)/kvnode
[ -x "$K" ] || { echo "restart-cost: no kvnode in $BUILD" >&2; exit 2; }
D=$(mktemp -d "${TMPDIR:-/tmp}/kvn-restart-cost.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2> /dev/null; done
	wait 2> /dev/null
	[ "$KEEP" = 1 ] && echo "restart-cost: kept $D" >&2 || rm -rf "$D"
}
trap cleanup EXIT

# a port nobody listens on (bash's /dev/tcp: connect fails = free)
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % 20000))
		(exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null || { echo "$p"; return 0; }
	done
	return 1
}
# wait_for SECONDS CMD...: until CMD succeeds (0) or the time runs out (1)
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@" > /dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.005
	done
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

MP=$(free_port) PP=$(free_port)
cat > "$D/c.conf" << EOF
[node]
data_dir = $D/var
[master]
listen = 127.0.0.1:$MP
[peer]
listen = 127.0.0.1:$PP
master = 127.0.0.1:$MP
dram_size = 2GiB
[client]
master = 127.0.0.1:$MP
EOF
"$K" --role master --config "$D/c.conf" > "$D/master.log" 2>&1 &
M=$!
PIDS="$M"
wait_for 30 grep -q "kvnode ready" "$D/master.log" || { echo "restart-cost: the master did not start" >&2; exit 1; }
"$K" --role peer --config "$D/c.conf" --set node.id=peer-a > "$D/peer.log" 2>&1 &
PIDS="$PIDS $!"
wait_for 30 grep -q "attached to the master" "$D/peer.log" || { echo "restart-cost: the peer did not attach" >&2; exit 1; }
"$K" --role client --config "$D/c.conf" bench --op put --size 1KiB --count "$N" --keys "$N" --batch 64 \
	--clients 2 --keep --prefix bench: > "$D/bench.log" 2>&1 || { cat "$D/bench.log" >&2; exit 1; }
# plain puts reach master.db within master.commit_linger; give it a moment
sleep 1
n=$(sqlite3 "file:$D/var/master.db?mode=ro" 'SELECT count(*) FROM objects' 2> /dev/null || echo '?')
kib=$(du -kc "$D/var"/master.db* | tail -n 1 | cut -f1)

t0=$(date +%s%N)
kill -"$SIG" "$M"
wait "$M" 2> /dev/null
stopped=$(ms_since "$t0")
"$K" --role master --config "$D/c.conf" > "$D/master2.log" 2>&1 &
M=$!
PIDS="$PIDS $M"
if wait_for 120 grep -q "kvnode ready" "$D/master2.log"; then ready="$(ms_since "$t0") ms"; else ready="not within 120 s"; fi
if wait_for 60 "$K" --role client --config "$D/c.conf" get bench:1 -o /dev/null; then
	serving="$(ms_since "$t0") ms"
else
	serving="never within 60 s"
fi
echo "restart-cost: $n objects in master.db ($kib KiB with its WAL); SIG$SIG: stopped in $stopped ms," \
	"ready after $ready, first get of an older key after $serving"
grep -E "objects loaded|full sync applied|DROP_GEN|floors kept" "$D/master2.log" | cut -d' ' -f4- | sed 's/^/  /'
