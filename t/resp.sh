#!/bin/bash
# t/resp.sh: the RESP gateway (kvnode --role resp) with the Redis tools
# unchanged: redis-cli SET/GET/MGET/DEL (and the value seen by kvnode's own
# client); no AUTH: NOAUTH, a wrong token: WRONGPASS; a bulk over
# node.max_value_size: -ERR, the connection closed, nothing stored;
# connections over resp.max_clients refused; redis-benchmark -t set,get
# -d 4096 -P 16 -n 20000 with 0 errors (the gateway's own error count does
# not move); redis-py incl. its pipelines (t/py/resp_redispy.py); a gateway
# whose cluster is down (gone, or never reached) answers -ERR within
# client.timeout, and stops on SIGTERM with status 0.
#
#   t/resp.sh [CASE...]    (no CASE: all; --list: their names)
. "$(dirname "$0")/lib.sh"

CASES="cli auth bigbulk maxclients emfile benchmark redispy down"
if [ "${1:-}" = --list ]; then
	printf '%s\n' $CASES
	exit 0
fi
PY=/usr/bin/python3

# up: an all-in-one node and a gateway in front of it (max_value_size
# 1MiB and max_clients 128 at the gateway; the cluster keeps its defaults.
# redis-benchmark opens 50 connections per test right after closing the
# previous test's 50, whose ends the workers may not have seen yet)
UP=0
up() {
	[ $UP = 1 ] && return
	UP=1
	local mp pp
	mp=$(free_port); pp=$(free_port); RP=$(free_port)
	write_conf "$TMP/n.conf" "$mp" "$pp" "[resp]" "listen = 127.0.0.1:$RP" "max_clients = 128"
	start node --config "$TMP/n.conf"
	wait_log node "kvnode ready" 15
	ok $? "node up"
	wait_until 10 client "$TMP/n.conf" ping
	start resp --role resp --config "$TMP/n.conf" --set node.max_value_size=1MiB --set resp.max_input=2MiB
	wait_log resp "gateway ready" 15
	ok $? "gateway up on 127.0.0.1:$RP"
	TOK=$("$KVNODE" keygen --resp-token "$TMP/var/client.secret")
	like "$TOK" '^[0-9a-f]{64}$' "keygen --resp-token prints 64 hex digits"
	R="redis-cli -p $RP"
	RA="redis-cli -p $RP -a $TOK --no-auth-warning"
}

# info_stat NAME: a figure of INFO stats
info_stat() { $RA info stats | tr -d '\r' | sed -n "s/^$1://p"; }

case_cli() {
	up
	is "$($R ping)" PONG "PING answers without AUTH"
	is "$($RA set k1 hello)" OK "SET"
	is "$($RA get k1)" hello "GET"
	is "$($RA --raw mset k2 two k3 three)" OK "MSET"
	is "$($RA mget k1 k2 nope k3 | tr '\n' ,)" "hello,two,,three," "MGET, a missing key nil"
	client "$TMP/n.conf" get k2
	is "$(cat "$TMP/out")" two "kvnode's own client sees the value the gateway stored"
	is "$($RA del k1 k2 nope)" 2 "DEL counts the keys removed"
	is "$($RA exists k1 k3)" 1 "EXISTS"
	is "$($RA get k1)" "" "a deleted key is nil"
	is "$($RA set nx1 a NX) $($RA set nx1 b NX) $($RA get nx1)" "OK  a" "SET NX: only the first"
	is "$($RA set xx1 a XX) $($RA set nx1 c XX) $($RA get nx1)" " OK c" "SET XX: only an existing key"
	is "$($RA set ttl1 v PX 300) $($RA strlen ttl1)" "OK 1" "SET PX and STRLEN"
	sleep 1
	is "$($RA get ttl1)" "" "the PX value expired"
	like "$($RA set a b EX 0)" "invalid expire time" "EX 0 refused"
	like "$($RA select 1)" "out of range" "SELECT 1 refused"
	is "$($RA select 0)" OK "SELECT 0"
	like "$($RA info keyspace)" "db0:keys=[0-9]+" "INFO keyspace"
	is "$($RA scan 0 match 'k[0-9]' count 1000 | tail -n +2)" k3 "SCAN MATCH over kvn_list"
	like "$($RA foo)" "unknown command" "an unknown command"
	printf 'HELLO 3 AUTH default %s\r\nGET nope\r\nMGET k3\r\n' "$TOK" | timeout 10 $R > "$TMP/h3" 2>&1
	like "$(tr '\n' ' ' < "$TMP/h3")" "proto 3 .*three" "HELLO 3 AUTH: a map, then RESP3 replies"
	printf 'HELLO 3 AUTH default %s\r\nGET nope\r\nQUIT\r\n' "$TOK" |
		timeout 10 $PY -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])));s.sendall(sys.stdin.buffer.read())
b=b""
while True:
    d=s.recv(65536)
    if not d: break
    b+=d
sys.stdout.write(repr(b))' "$RP" > "$TMP/h3raw"
	like "$(cat "$TMP/h3raw")" "^b'%7.*_\\\\r\\\\n\+OK" "  on the wire: %7 (a map), _ (RESP3 null), then QUIT's +OK"
}

case_auth() {
	up
	like "$($R get k1)" "^NOAUTH" "without AUTH: NOAUTH"
	like "$($R set k1 x)" "^NOAUTH" "a write too"
	like "$(redis-cli -p "$RP" -a 0123 --no-auth-warning get k1 2>&1 | tr '\n' ' ')" "WRONGPASS.*NOAUTH" \
		"a wrong token: WRONGPASS, and the command after it NOAUTH"
	# another last digit (0, or 1 when it is 0: the same token would pass)
	local other=0
	[ "${TOK: -1}" = 0 ] && other=1
	like "$(redis-cli -p "$RP" -a "${TOK%?}$other" --no-auth-warning get k1 2>&1)" "WRONGPASS" \
		"the token with its last digit changed: WRONGPASS"
	like "$(printf 'AUTH default %s\r\nPING\r\n' "$TOK" | $R)" "OK" "AUTH user token"
	# before AUTH a request is at most 16 KiB (only PING, HELLO, AUTH and
	# QUIT answer): a bigger one is refused from its header and closed,
	# and AUTH pipelined with a big SET lifts the limit for the SET
	$PY - "$RP" "$TOK" > "$TMP/noauth.out" 2>&1 <<'PYEOF'
import socket, sys
def talk(data):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(data)
    reply = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            reply += d
            if reply.count(b"\r\n") >= 2 and not reply.startswith(b"-ERR Protocol"):
                break
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    return reply
print(talk(b"*3\r\n$3\r\nSET\r\n$2\r\nnb\r\n$100000\r\n" + b"x" * 1000).decode().strip())
v = b"y" * 100000
print(talk(b"AUTH %s\r\n*3\r\n$3\r\nSET\r\n$2\r\nnb\r\n$%d\r\n%s\r\n" % (sys.argv[2].encode(), len(v), v)).decode().replace("\r\n", " ").strip())
PYEOF
	like "$(sed -n 1p "$TMP/noauth.out")" "^-ERR Protocol error: unauthenticated request too large" \
		"before AUTH a 100 KB bulk is refused from its header"
	is "$(sed -n 2p "$TMP/noauth.out")" "+OK +OK" "AUTH pipelined with a 100 KB SET: both run"
	is "$($RA strlen nb)" 100000 "  and the value is stored whole"
	! grep -q "$TOK" "$TMP/resp.log"
	ok $? "the token is never logged"
}

case_bigbulk() {
	up
	$PY - "$RP" "$TOK" > "$TMP/big.out" 2>&1 <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"AUTH %s\r\n" % sys.argv[2].encode())
assert s.recv(100) == b"+OK\r\n"
n = 1024 * 1024 + 1
s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % n + b"x" * 65536)
reply = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        reply += d
except ConnectionResetError:
    pass
print(reply.decode().strip())
print("closed")
PYEOF
	like "$(head -1 "$TMP/big.out")" "^-ERR value too large" "a bulk over node.max_value_size: -ERR"
	like "$(tail -1 "$TMP/big.out")" "closed" "and the connection closed"
	is "$($RA exists big)" 0 "nothing stored"
	head -c 1048576 /dev/zero | tr '\0' v > "$TMP/v1m"
	is "$($RA -x set big < "$TMP/v1m")" OK "max_value_size itself is stored"
	is "$($RA strlen big)" 1048576 "  whole"
}

case_maxclients() {
	up
	$PY - "$RP" "$TOK" > "$TMP/mc.out" 2>&1 <<'PYEOF'
import socket, sys
socks = []
for i in range(128):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(b"PING\r\n")
    assert s.recv(100) == b"+PONG\r\n"
    socks.append(s)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print(s.recv(100).decode().strip())
print("eof" if s.recv(100) == b"" else "open")
socks[0].close()
import time
for i in range(50):
    time.sleep(0.1)
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(b"PING\r\n")
    if s.recv(100) == b"+PONG\r\n":
        print("admitted")
        break
PYEOF
	like "$(sed -n 1p "$TMP/mc.out")" "^-ERR max number of clients reached" "the 129th connection over max_clients 128: -ERR"
	is "$(sed -n 2p "$TMP/mc.out")" eof "  and closed"
	is "$(sed -n 3p "$TMP/mc.out")" admitted "once one closed, a new one is served"
}

# out of descriptors: a gateway that may open only 40 files, and 60
# connections.  accept() fails with EMFILE; libevent alone would warn and
# retry at once, a busy loop flooding the log.  The gateway pauses
# accepting instead (one warning per 10 s), and serves again once the
# connections close.
case_emfile() {
	up
	local p3 pid
	p3=$(free_port)
	: > "$TMP/resp3.log"
	bash -c "ulimit -n 40 && exec '$KVNODE' --role resp --config '$TMP/n.conf' --set resp.listen=127.0.0.1:$p3" \
		> "$TMP/resp3.log" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	PID_resp3=$pid
	wait_log resp3 "gateway ready" 15
	ok $? "a gateway limited to 40 open files starts"
	$PY - "$p3" > "$TMP/emfile.out" 2>&1 <<'PYEOF'
import socket, sys, time
socks = []
for _ in range(60):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
    except OSError as e:
        print("connect failed: %s" % e)
        break
time.sleep(2)  # the gateway meets EMFILE on the connections past its limit
for s in socks:
    s.close()
print("opened %d" % len(socks))
PYEOF
	like "$(cat "$TMP/emfile.out")" "opened 60" "60 connections opened (the kernel's backlog holds those not accepted)"
	local n
	n=$(grep -ci "accept" "$TMP/resp3.log")
	[ "$n" -ge 1 ] && [ "$n" -le 3 ]
	ok $? "the failing accept() is warned about 1 to 3 times, not in a loop ($n lines)"
	grep -qi "accept failed: Too many open files; not accepting new connections for" "$TMP/resp3.log"
	ok $? "  saying why, and that it pauses"
	is "$(wait_until 10 redis-cli -p "$p3" ping && redis-cli -p "$p3" ping)" PONG \
		"once the connections close, the gateway answers again"
	stop resp3
	is "$STATUS" 0 "and SIGTERM stops it with status 0"
}

case_benchmark() {
	up
	local e0 e1
	e0=$(info_stat total_error_replies)
	timeout 120 redis-benchmark -p "$RP" -a "$TOK" -t set,get -d 4096 -P 16 -n 20000 --csv \
		> "$TMP/bench.out" 2>&1
	# it exits non-zero at the first error reply (redis-benchmark 7)
	local rc=$?
	ok $rc "redis-benchmark -t set,get -d 4096 -P 16 -n 20000 completes, status 0"
	[ $rc -eq 0 ] || sed "s/^/#   /" "$TMP/bench.out"
	like "$(grep '^"SET"' "$TMP/bench.out")" '^"SET","[0-9.]+' "  a SET row"
	like "$(grep '^"GET"' "$TMP/bench.out")" '^"GET","[0-9.]+' "  a GET row"
	! grep -qE 'error|ERR |NOAUTH' "$TMP/bench.out"
	ok $? "  no error shown"
	e1=$(info_stat total_error_replies)
	like "$e0" '^[0-9]+$' "  INFO stats counts error replies ($e0)"
	is "$e1" "$e0" "  the gateway sent 0 error replies meanwhile"
	redis-benchmark -p "$RP" -t get -n 10 --csv > "$TMP/bench2.out" 2>&1
	[ $? -ne 0 ] && grep -q "NOAUTH" "$TMP/bench2.out"
	ok $? "without -a the same run fails, showing NOAUTH (so the checks above can fail)"
	like "$(info_stat batched_keys)" "^[1-9]" "pipelined commands went as kvnode batches"
}

case_redispy() {
	up
	if ! $PY -c 'import redis' 2> /dev/null; then
		skip "redis-py is not installed for $PY (Debian: python3-redis)"
		return
	fi
	$PY "$SRCDIR/t/py/resp_redispy.py" "$RP" "$TOK" > "$TMP/py.out" 2>&1
	ok $? "redis-py: t/py/resp_redispy.py"
	sed 's/^/#   /' "$TMP/py.out"
}

case_down() {
	up
	stop node
	local t0 t1 out
	t0=$(date +%s)
	out=$(timeout 30 $RA get k3 2>&1)
	t1=$(date +%s)
	like "$out" "^ERR kvnode" "a cluster that is down: -ERR"
	[ $((t1 - t0)) -le 12 ]
	ok $? "  within the deadline (client.timeout 5s; took $((t1 - t0)) s)"
	is "$($R ping)" PONG "the gateway still answers PING"
	stop resp
	is "$STATUS" 0 "SIGTERM stops the gateway with status 0"
	# a gateway that never reached its cluster: the first command waits
	# for one connect (client.timeout), then -ERR; later ones at once
	local p2
	p2=$(free_port)
	start resp2 --role resp --config "$TMP/n.conf" --set "resp.listen=127.0.0.1:$p2"
	wait_log resp2 "gateway ready" 15
	ok $? "a gateway whose cluster is down starts"
	t0=$(date +%s)
	out=$(timeout 30 redis-cli -p "$p2" -a "$TOK" --no-auth-warning mget k1 k3 2>&1)
	t1=$(date +%s)
	like "$out" "^ERR kvnode" "  its first MGET: -ERR"
	[ $((t1 - t0)) -le 12 ]
	ok $? "  within the deadline (took $((t1 - t0)) s)"
	like "$(timeout 30 redis-cli -p "$p2" -a "$TOK" --no-auth-warning set k9 v 2>&1)" "^ERR kvnode" "  a SET too"
	# commands keep failing for a while: each worker's pause between
	# connect attempts grows (to 2-4 s)
	for _ in 1 2 3 4 5 6 7 8; do
		timeout 10 redis-cli -p "$p2" -a "$TOK" --no-auth-warning get k9 > /dev/null 2>&1
		timeout 10 redis-cli -p "$p2" -a "$TOK" --no-auth-warning get k9 > /dev/null 2>&1
		sleep 0.4
	done
	# the cluster comes back: the gateway connects again by itself (its
	# pause between attempts backs off to at most 4 s while it is away)
	start node --config "$TMP/n.conf"
	wait_log node "kvnode ready" 15
	ok $? "the cluster is back"
	setk9() { [ "$(timeout 10 redis-cli -p "$p2" -a "$TOK" --no-auth-warning set k9 v 2>&1)" = OK ]; }
	wait_until 20 setk9
	ok $? "  the gateway reaches it again: SET answers OK"
	# each connection goes to the next worker: the ones still pausing
	# after a failure try at once, since one worker has reached the cluster
	local gets=""
	for _ in 1 2 3 4; do
		gets="$gets$(timeout 10 redis-cli -p "$p2" -a "$TOK" --no-auth-warning get k9 2>&1) "
	done
	is "$gets" "v v v v " "  and four GETs on new connections (every worker) read it back at once"
	stop resp2
	stop node
	UP=0
}

for c in ${*:-$CASES}; do
	case " $CASES " in
	*" $c "*) "case_$c" ;;
	*) echo "Bail out! no case '$c' (cases: $CASES)"; exit 1 ;;
	esac
done
if [ $UP = 1 ]; then
	stop resp
	stop node
fi
done_testing
