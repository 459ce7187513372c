#!/bin/bash
# t/emfile.sh: a node out of file descriptors pauses accepting instead of
# spinning.  accept() failing with EMFILE leaves the connection in the
# kernel's backlog, so libevent's listener, with no error callback, warns
# and retries at once: a busy loop that writes a line per turn for as long
# as the process is out of descriptors.  base/accept_guard.c stops
# accepting for a pause and warns once per 10 s.  Here the all-in-one
# node's limit is cut (prlimit) to a few descriptors above what it holds,
# 40 connections arrive at the master's port and 40 at its HTTP endpoint
# (evhttp's own listener), and afterwards the node serves clients and
# /health again.  (t/resp.sh emfile: the same for the RESP gateway.)
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
if ! command -v prlimit > /dev/null || ! command -v curl > /dev/null || ! [ -x "$PY" ]; then
	echo "1..0 # SKIP needs prlimit (util-linux), curl and $PY"
	exit 0
fi
MP=$(free_port); PP=$(free_port); HP=$(free_port)
write_conf "$TMP/n.conf" "$MP" "$PP"
start node --config "$TMP/n.conf" --set master.http=127.0.0.1:$HP
wait_log node "kvnode ready" 15
ok $? "the node starts"
wait_until 10 client "$TMP/n.conf" ping
ok $? "and answers a client"
nfd=$(ls /proc/"$PID_node"/fd | wc -l)
prlimit --pid "$PID_node" --nofile=$((nfd + 4)):$((nfd + 4))
ok $? "its descriptor limit cut to $((nfd + 4)) ($nfd open)"
conns() { # conns PORT: 40 connections held for 2 s
	$PY - "$1" <<'PYEOF'
import socket, sys, time
socks = []
for _ in range(40):
    try:
        socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
    except OSError as e:
        print("connect failed: %s" % e)
        break
time.sleep(2)
for s in socks:
    s.close()
print("opened %d" % len(socks))
PYEOF
}
like "$(conns "$MP" 2>&1)" "opened 40" "40 connections to the master's port (those not accepted wait in the backlog)"
n=$(grep -ci "accept" "$TMP/node.log")
[ "$n" -ge 1 ] && [ "$n" -le 3 ]
ok $? "the failing accept() is warned about 1 to 3 times, not in a loop ($n lines)"
grep -qi "listener 127.0.0.1:$MP: accept failed: Too many open files; not accepting new connections for" "$TMP/node.log"
ok $? "  naming the listener and saying it pauses"
# the monitoring endpoint (evhttp's own listener) the same
like "$(conns "$HP" 2>&1)" "opened 40" "40 connections to master.http"
n=$(grep -ci "master.http: accept failed" "$TMP/node.log")
[ "$n" -ge 1 ] && [ "$n" -le 3 ]
ok $? "  its failing accept() too is warned about 1 to 3 times ($n lines)"
[ "$(grep -ci "accept" "$TMP/node.log")" -le 6 ]
ok $? "  and nothing else floods the log"
prlimit --pid "$PID_node" --nofile=4096:4096
wait_until 15 client "$TMP/n.conf" ping
ok $? "with descriptors back, a client is served again"
wait_until 15 curl -sf "http://127.0.0.1:$HP/health"
ok $? "  and /health answers"
stop node
is "$STATUS" 0 "SIGTERM stops the node with status 0"
done_testing
