#!/bin/bash
# t/io_threads.sh: a peer whose connections are spread over I/O loops
# (peer.io_threads = 4), from the outside.  What must hold: it says so at
# start; 8 concurrent clients put, get and mix (batches of 4) 64 KiB values
# with every value's stamps checked by the bench; clients killed (-9) in the
# middle of 1 MiB puts and gets leave it serving and its log clean; SIGTERM
# stops it with exit 0.  peer.io_threads = 1 keeps every
# connection on the peer's loop (no such line).
. "$(dirname "$0")/lib.sh"

mp=$(free_port); pp=$(free_port)
write_conf "$TMP/c.conf" "$mp" "$pp" "[peer]" "io_threads = 4" "pending_ttl = 2s"
start node --config "$TMP/c.conf"
wait_log node "kvnode ready" 15
ok $? "node up"
grep -q "connections spread over 4 I/O loops" "$TMP/node.log"
ok $? "the peer says its connections are spread over 4 I/O loops"

B="bench --size 64KiB --keys 256 --clients 8 --batch 4"
client "$TMP/c.conf" $B --op put --count 8000 --keep --prefix io-
ok $? "8 clients put 8000 x 64 KiB ($(head -1 "$TMP/out"))"
client "$TMP/c.conf" $B --op get --count 8000 --no-populate --prefix io-
ok $? "and get them back, every stamp checked ($(head -1 "$TMP/out"))"
client "$TMP/c.conf" $B --op mixed --count 8000 --no-populate --prefix io-
ok $? "mixed puts and gets ($(head -1 "$TMP/out"))"

# clients that die mid-transfer, on whichever loops their connections got
for op in put get; do
	"$KVNODE" --role client --config "$TMP/c.conf" bench --op $op --size 1MiB --keys 16 \
		--clients 6 --count 100000 > "$TMP/kill-$op.out" 2>&1 &
	kpid=$!
	sleep 1
	kill -9 $kpid 2>/dev/null
	wait $kpid 2>/dev/null
done
printf 'after' > "$TMP/v"
client "$TMP/c.conf" put io/after "$TMP/v"
ok $? "after clients killed mid-transfer, a put succeeds"
client "$TMP/c.conf" get io/after -o "$TMP/got"
ok $? "and its get"
cmp -s "$TMP/v" "$TMP/got"
ok $? "byte for byte"
grep -Eq "ERROR|assert|AddressSanitizer" "$TMP/node.log"
is $? 1 "no error in the node's log"
stop node
is "$STATUS" 0 "SIGTERM: exit 0"

write_conf "$TMP/one.conf" "$(free_port)" "$(free_port)" "[node]" "data_dir = $TMP/var1" "[peer]" "io_threads = 1"
start one --config "$TMP/one.conf"
wait_log one "kvnode ready" 15
ok $? "a node with peer.io_threads = 1 up"
client "$TMP/one.conf" bench --op put --size 4KiB --count 2000 --clients 4
ok $? "serves"
grep -q "I/O loops" "$TMP/one.log"
is $? 1 "and keeps every connection on the peer's loop (no spread line)"
stop one
is "$STATUS" 0 "exit 0"
done_testing
