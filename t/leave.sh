#!/bin/bash
# t/leave.sh: a peer stopped on purpose (SIGTERM) tells the master it
# leaves (PEER_LEAVE), so gets of its keys answer "not found" at once
# instead of "peer unavailable" until master.node_timeout (60 s here); a
# peer killed with -9 still waits for the timeout; a restarted peer attaches
# again.  Separate master and peer processes over TCP.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port); PP2=$(free_port)
write_conf "$TMP/c.conf" "$MP" "$PP"
sed -i "s#^node_timeout = .*#node_timeout = 60s#" "$TMP/c.conf"
start master --role master --config "$TMP/c.conf"
wait_log master "kvnode ready" 15
ok $? "master alone starts (node_timeout 60s)"
start peer --role peer --config "$TMP/c.conf" --set node.id=peer-a
wait_log peer "attached to the master" 15
ok $? "peer-a attaches"
C="client $TMP/c.conf"
printf 'one\n' > "$TMP/v"
wait_until 10 $C put k1 "$TMP/v"
ok $? "put k1"
$C put k2 "$TMP/v" k3 "$TMP/v"
ok $? "put k2 k3"
$C get k1
is "$(cat "$TMP/out")" "one" "k1 reads back"

# SIGTERM: the peer leaves, then stops
t0=$(date +%s%N)
stop peer TERM
t1=$(date +%s%N)
is "$STATUS" 0 "the peer exits 0 on SIGTERM"
grep -q "left the master" "$TMP/peer.log"
ok $? "the peer says it left the master"
grep -q "node peer-a left on purpose" "$TMP/master.log"
ok $? "the master logs that peer-a left on purpose"
# a correctness deadline, not a speed claim: far below node_timeout
[ $(( (t1 - t0) / 1000000 )) -lt 10000 ]; ok $? "the peer stopped within 10 s ($(( (t1 - t0) / 1000000 )) ms)"
t0=$(date +%s%N)
$C get k1
rc=$?
t1=$(date +%s%N)
is "$rc" 1 "get of k1 right after: not found (exit 1), not 'peer unavailable'"
like "$(cat "$TMP/err")" "key not found" "with the not-found message"
[ $(( (t1 - t0) / 1000000 )) -lt 10000 ]; ok $? "answered well before node_timeout ($(( (t1 - t0) / 1000000 )) ms)"
$C exists k2 k3
is $? 1 "its other keys are gone from routing too"

# the same node restarted attaches again (a full sync, as after a death)
start peer2 --role peer --config "$TMP/c.conf" --set node.id=peer-a
wait_log peer2 "attached to the master" 15
ok $? "peer-a restarted attaches again"
wait_log master "node peer-a attached \\(it left on purpose\\)" 10
ok $? "the master says it had left"
wait_until 10 $C put k4 "$TMP/v"
ok $? "puts go to it again"
$C get k4
is "$(cat "$TMP/out")" "one" "and read back"

# kill -9 is not a leave: its keys answer 'peer unavailable' until the timeout
stop peer2 KILL
is "$STATUS" 137 "kill -9 the restarted peer"
$C get k4
rc=$?
like "$(cat "$TMP/err")" "unavailable" "after kill -9 a get says the peer is unavailable (exit $rc), no leave"
grep -q "left the master" "$TMP/peer2.log"
is $? 1 "and the killed peer said nothing of leaving"

# a master that does not answer (stopped): the leave waits peer.stop_timeout
PP4=$(free_port); PP5=$(free_port)
start peer4 --role peer --config "$TMP/c.conf" --set node.id=peer-d --set peer.listen=127.0.0.1:$PP4 \
	--set peer.stop_timeout=1s
start peer5 --role peer --config "$TMP/c.conf" --set node.id=peer-e --set peer.listen=127.0.0.1:$PP5 \
	--set peer.stop_timeout=60s
wait_log peer4 "attached to the master" 15 && wait_log peer5 "attached to the master" 15
ok $? "two more peers attach"
kill -STOP "$PID_master"
# stopped for real before the peer asks it anything (kill returns before
# every thread of the master has stopped)
wait_until 5 sh -c "ps -o stat= -p $PID_master | grep -q '^T'"
t0=$(date +%s%N)
stop peer4 TERM
t1=$(date +%s%N)
is "$STATUS" 0 "with the master stopped (SIGSTOP), SIGTERM still ends in exit 0"
grep -q "leave not acknowledged within 1s (peer.stop_timeout)" "$TMP/peer4.log"
ok $? "saying the leave was not acknowledged within peer.stop_timeout"
ms=$(( (t1 - t0) / 1000000 ))
[ "$ms" -ge 900 ] && [ "$ms" -lt 10000 ]; ok $? "after waiting for it ($ms ms)"
kill -TERM "$PID_peer5"
wait_log peer5 "telling the master this peer leaves" 5
ok $? "the first SIGTERM starts the leave"
t0=$(date +%s%N)
stop peer5 TERM
t1=$(date +%s%N)
is "$STATUS" 0 "a second SIGTERM stops it, exit 0"
grep -q "SIGTERM again: stopping at once" "$TMP/peer5.log"
ok $? "saying it stops at once"
[ $(( (t1 - t0) / 1000000 )) -lt 10000 ]; ok $? "without waiting for its 60s stop_timeout"
kill -CONT "$PID_master"

# with no master left to tell, a peer stops at once
start peer3 --role peer --config "$TMP/c.conf" --set node.id=peer-c --set peer.listen=127.0.0.1:$PP2
wait_log peer3 "attached to the master" 15
ok $? "a third peer attaches"
stop master
is "$STATUS" 0 "master stops cleanly"
t0=$(date +%s%N)
stop peer3 TERM
t1=$(date +%s%N)
is "$STATUS" 0 "a peer whose master is gone exits 0 on SIGTERM"
grep -q "leave not acknowledged" "$TMP/peer3.log"
ok $? "saying the leave was not acknowledged"
[ $(( (t1 - t0) / 1000000 )) -lt 5000 ]; ok $? "without waiting for peer.stop_timeout ($(( (t1 - t0) / 1000000 )) ms)"
done_testing
