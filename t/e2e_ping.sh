#!/bin/bash
# t/e2e_ping.sh: real processes on loopback: the all-in-one node, a client
# ping with the right and the wrong secret, role scoping, separate master
# and peer processes (with a chosen TCP congestion control), secret files
# made on first start, clean shutdown.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port)
write_conf "$TMP/a.conf" "$MP" "$PP"
start aio --config "$TMP/a.conf"
wait_log aio "kvnode ready" 15
ok $? "all-in-one node starts"
is "$(stat -c %a "$TMP/var/peer.secret")" 600 "peer secret created with mode 0600"
is "$(stat -c %a "$TMP/var/client.secret")" 600 "client secret created with mode 0600"
is "$(grep -c 'created .* secret file' "$TMP/aio.log")" 2 "creation said once per file in the log"

wait_until 10 client "$TMP/a.conf" ping
client "$TMP/a.conf" ping
ok $? "ping succeeds with the right secret"
like "$(cat "$TMP/out")" "1 peer\\(s\\) attached" "the master sees its peer"
like "$(cat "$TMP/out")" "rtt [0-9]+ us" "and prints the round trip time"

"$KVNODE" keygen "$TMP/wrong.secret" >/dev/null
"$KVNODE" --role client --config "$TMP/a.conf" --set auth.client_secret_file="$TMP/wrong.secret" ping > "$TMP/out" 2> "$TMP/err"
is $? 3 "a wrong secret fails with exit status 3"
like "$(cat "$TMP/err")" "authentication failed" "with a clear authentication error"
secret_hex=$(grep -v '^#' "$TMP/wrong.secret" | head -1)
ok $(grep -c "$secret_hex" "$TMP/err" "$TMP/aio.log" | awk -F: '{s+=$2} END {print s}') "no secret appears in the error or the log"
like "$(cat "$TMP/aio.log")" "auth: rejected client" "the server logs the refusal with the principal"

# the peer-only secret cannot be used by a client
"$KVNODE" --role client --config "$TMP/a.conf" --set auth.client_secret_file="$TMP/var/peer.secret" ping > "$TMP/out" 2> "$TMP/err"
is $? 3 "the peer secret cannot attach as a client"

# a group-readable secret is refused
cp "$TMP/var/client.secret" "$TMP/loose.secret"; chmod 640 "$TMP/loose.secret"
"$KVNODE" --role client --config "$TMP/a.conf" --set auth.client_secret_file="$TMP/loose.secret" ping > "$TMP/out" 2> "$TMP/err"
ok $(( $? == 0 )) "a group-readable secret file is refused"
like "$(cat "$TMP/err")" "group- or world-accessible" "saying why"

stop aio; is "$STATUS" 0 "SIGTERM stops the node cleanly (exit 0)"
like "$(tail -3 "$TMP/aio.log")" "stopped" "and it says so"

# a congestion control the kernel lacks: refused at start, naming the key
"$KVNODE" --role master,peer --config "$TMP/a.conf" --set node.tcp_congestion=nosuchcc > "$TMP/out" 2> "$TMP/err"
is $? 2 "node.tcp_congestion=nosuchcc: exit 2"
like "$(cat "$TMP/err")" "node.tcp_congestion: 'nosuchcc' is not available" "saying which key and why"
"$KVNODE" --role client --config "$TMP/a.conf" --set client.tcp_congestion=nosuchcc ping > "$TMP/out" 2> "$TMP/err"
is $? 2 "client.tcp_congestion=nosuchcc: the client refuses to start"
like "$(cat "$TMP/err")" "client.tcp_congestion: 'nosuchcc' is not available" "naming its key"

# separate master and peer processes; a peer with the client secret is refused
MP2=$(free_port); PP2=$(free_port); PP3=$(free_port)
write_conf "$TMP/b.conf" "$MP2" "$PP2"
sed -i "s#data_dir = .*#data_dir = $TMP/var2#" "$TMP/b.conf"
start master --role master --config "$TMP/b.conf" --set node.tcp_congestion=reno --set node.tcp_sndbuf=256KiB
wait_log master "kvnode ready" 15
ok $? "master alone starts"
start peer --role peer --config "$TMP/b.conf" --set node.id=peer-b --set node.tcp_congestion=reno \
	--set node.tcp_sndbuf=256KiB
wait_log peer "attached to the master" 15
ok $? "a peer process attaches over TCP"
# node.tcp_congestion: reno is built into every kernel and always allowed
# (the default here is bbr or cubic), so seeing it proves the setting
cc=$(ss -tinH state established "( sport = :$MP2 or dport = :$MP2 )" | grep -cw reno)
is "$cc" 2 "node.tcp_congestion=reno: both ends of the peer's connection use reno"
# node.tcp_sndbuf: the kernel doubles SO_SNDBUF after capping it at wmem_max
wmax=$(cat /proc/sys/net/core/wmem_max)
want=$(( 2 * (262144 < wmax ? 262144 : wmax) ))
tb=$(ss -tmnH state established "( sport = :$MP2 or dport = :$MP2 )" | grep -c "tb$want,")
is "$tb" 2 "node.tcp_sndbuf=256KiB: both ends have a $want-byte send buffer"
start badpeer --role peer --config "$TMP/b.conf" --set node.id=peer-bad --set peer.listen=127.0.0.1:$PP3 \
	--set auth.peer_secret_file="$TMP/var2/client.secret"
wait_log master "auth: rejected peer peer-bad " 10
ok $? "a peer holding only the client secret is refused"
wait_until 10 client "$TMP/b.conf" ping
client "$TMP/b.conf" ping
like "$(cat "$TMP/out")" "1 peer\\(s\\) attached" "only the authenticated peer is attached"
# issue 11 item 20: the refused peer says it is not attached, and why (never
# "ready"), backs off, and logs one line per state change, not per attempt;
# the master's refusal lines are rate-limited
wait_log badpeer "not attached to the master: it refused this peer" 10
ok $? "the refused peer says it is not attached, and why"
grep -q "kvnode ready" "$TMP/badpeer.log"
is $? 1 "and never that it is ready"
sleep 4 # a window to count lines in: an upper bound holds for any speed
n=$(grep -c "not attached to the master:" "$TMP/badpeer.log")
is "$n" 1 "one 'not attached' line for the refused state, not one per attempt"
n=$(wc -l < "$TMP/badpeer.log")
[ "$n" -le 6 ]; ok $? "the refused peer's whole log stays short ($n lines; at most 6)"
n=$(grep -c "rejected peer peer-bad " "$TMP/master.log")
[ "$n" -ge 1 ] && [ "$n" -le 10 ]; ok $? "the master logged the refusal, within its limit of 10 lines per 10 s ($n)"
stop peer KILL; is "$STATUS" 137 "kill -9 the peer"
stop badpeer; is "$STATUS" 0 "the refused peer keeps retrying and stops cleanly"
# given the right secret, the same peer attaches
start goodpeer --role peer --config "$TMP/b.conf" --set node.id=peer-bad --set peer.listen=127.0.0.1:$PP3
wait_log goodpeer "attached to the master" 15
ok $? "the same peer with the right secret attaches"
stop goodpeer; is "$STATUS" 0 "and stops cleanly"
stop master; is "$STATUS" 0 "master stops cleanly"
done_testing
