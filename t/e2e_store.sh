#!/bin/bash
# t/e2e_store.sh: the data commands of the CLI through a real all-in-one
# node, their exit codes, and an operator reading master.db's views with
# the sqlite3 shell while the node runs.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port)
write_conf "$TMP/a.conf" "$MP" "$PP" "[node]" "max_value_size = 4MiB"
start aio --config "$TMP/a.conf"
wait_log aio "kvnode ready" 15
ok $? "node up"
wait_until 10 client "$TMP/a.conf" ping
C="client $TMP/a.conf"

head -c 3000000 /dev/urandom > "$TMP/v1"
printf 'hello\n' > "$TMP/v2"
: > "$TMP/empty"
$C put k1 "$TMP/v1" k2 "$TMP/v2" empty "$TMP/empty"
ok $? "put three keys in one command (a batch)"
$C get k1 -o "$TMP/g1"
ok $? "get -o FILE"
cmp -s "$TMP/v1" "$TMP/g1"
ok $? "3 MB value comes back byte for byte"
$C get k2
is "$(cat "$TMP/out")" "hello" "get to standard output"
$C get empty
ok $? "an empty value is a value"
is "$(stat -c %s "$TMP/out")" 0 "and is empty"
printf 'from stdin' | "$KVNODE" --role client --config "$TMP/a.conf" put k3 - > "$TMP/out" 2> "$TMP/err"
ok $? "put KEY - reads standard input"
$C get k3
is "$(cat "$TMP/out")" "from stdin" "the stdin value"

$C exists k1
is $? 0 "exists: 0 when the key exists"
$C exists nope
is $? 1 "exists: 1 when it does not"
$C exists k1 nope k2
is $? 1 "exists with several keys: 1 if one is missing"
like "$(cat "$TMP/out")" "nope: no" "and says which"
$C rm k2
ok $? "rm"
$C get k2
is $? 1 "get of a removed key: exit 1"
like "$(cat "$TMP/err")" "key not found" "with a clear message"
$C rm k2
is $? 1 "rm of a missing key: exit 1"

long=$(head -c 1100 /dev/zero | tr '\0' k)
$C put "$long" "$TMP/v2"
is $? 6 "a 1100-byte key: exit 6"
like "$(cat "$TMP/err")" "key length" "saying the key length is out of range"
head -c 5000000 /dev/zero > "$TMP/big"
$C put big "$TMP/big"
is $? 6 "a value over node.max_value_size: exit 6"
$C put k4 "$TMP/does-not-exist"
ok $(( $? == 0 )) "a missing input file fails"
like "$(cat "$TMP/err")" "does-not-exist" "naming the file"

$C put --durable d1 "$TMP/v2"
ok $? "put --durable"
rows=$(sqlite3 "$TMP/var/master.db" "select count(*) from v_objects where key = 'd1' and state = 'live'")
is "$rows" 1 "sqlite3 sees the durable put in v_objects while the node runs"
cap=$(sqlite3 "$TMP/var/master.db" "select count(*) from v_capacity where state = 'alive'")
is "$cap" 1 "v_capacity lists the live node"
sqlite3 "$TMP/var/master.db" "select * from v_leases" > /dev/null
ok $? "v_leases is queryable"

$C stat
ok $? "stat"
like "$(cat "$TMP/out")" "objects: [1-9]" "stat counts objects"
like "$(cat "$TMP/out")" "yes" "and shows the node alive"

stop aio
is "$STATUS" 0 "clean shutdown"
$C ping
is $? 4 "ping with the node down: exit 4 (unreachable)"
done_testing
