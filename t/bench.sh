#!/bin/bash
# t/bench.sh: `kvnode bench` against a real all-in-one node: every op with
# several clients (concurrent setup and settle included), the JSON fields
# tools parse, the settle's durable markers in master.db, and clear errors
# for bad arguments and an unreachable target.  Correctness only: speed is
# measured by bench/vs-peers.sh, never asserted here.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port)
write_conf "$TMP/b.conf" "$MP" "$PP"
start aio --config "$TMP/b.conf"
wait_log aio "kvnode ready" 15
ok $? "node up"
wait_until 10 client "$TMP/b.conf" ping
C="client $TMP/b.conf"

# field FILE NAME: the JSON value of NAME in the one-line object in FILE
field() { sed -n "s/.*\"$2\":\\(\"[^\"]*\"\\|[^,}]*\\).*/\\1/p" "$1"; }

# run_ok DESC ARGS...: a bench run that must succeed, with every item ok
run_ok() {
	local desc=$1
	shift
	$C bench --json "$@"
	ok $? "$desc: exit 0"
	is "$(field "$TMP/out" errors)" 0 "$desc: no errors"
	is "$(field "$TMP/out" ok)" "$(field "$TMP/out" count)" "$desc: every item ok"
}

run_ok "put, 4 clients" --op put --size 4KiB --count 200 --clients 4
for f in op size count clients batch ops_per_s gb_per_s p50_us p99_us p999_us; do
	[ -n "$(field "$TMP/out" $f)" ]
	ok $? "JSON has $f"
done
is "$(field "$TMP/out" op)" '"put"' "op is put"
is "$(field "$TMP/out" clients)" 4 "clients is 4"
is "$(field "$TMP/out" size)" 4096 "size in bytes"
like "$(field "$TMP/out" ops_per_s)" '^[0-9.]+$' "ops_per_s is a number"

# Concurrent settles used to race on one marker key (KVN_ESTALE): one key
# per client now, each a durable put, so master.db holds all four (with
# --keep: a run removes its markers with its keys at the end).
$C bench --json --op put --size 4KiB --count 8 --clients 4 --keep --prefix settle-t-
ok $? "put, 4 clients, --keep"
rows=$(sqlite3 "$TMP/var/master.db" "select count(distinct key) from v_objects where cast(key as text) like 'settle-t-settle-%' and state = 'live'")
is "$rows" 4 "each client's settle marker is committed in master.db"
$C rm settle-t-settle-0 settle-t-settle-1 settle-t-settle-2 settle-t-settle-3 \
	settle-t-0 settle-t-1 settle-t-2 settle-t-3 settle-t-4 settle-t-5 settle-t-6 settle-t-7
ok $? "  and its keys, all there, removed by hand"

run_ok "get, batch 8, 4 clients" --op get --size 1KiB --count 256 --batch 8 --clients 4
is "$(field "$TMP/out" batch)" 8 "batch is 8"
is "$(field "$TMP/out" gets)" 256 "256 gets"
run_ok "mixed, 2 clients" --op mixed --size 100 --count 200 --clients 2
run_ok "durable put" --op put --size 64KiB --count 20 --clients 2 --durable
is "$(field "$TMP/out" durable)" true "durable reported"
run_ok "get of 1 MiB values" --op get --size 1MiB --count 8 --clients 2
# --no-populate: gets of keys an earlier put run wrote (--keep, --prefix),
# still checked
run_ok "put 16 keys of 4 KiB" --op put --size 4KiB --count 16 --keys 16 --keep --prefix np-
run_ok "get them without populating" --op get --size 4KiB --count 32 --keys 16 --no-populate --prefix np-
$C bench --op get --size 4KiB --count 4 --keys 4 --no-populate --prefix np- --target kvnode --json >"$TMP/out" 2>"$TMP/err" </dev/null
is $? 0 "a subset of them too"
$C exists np-0 np-15
is $? 0 "a --no-populate run removes none of the keys it read"
$C bench --op get --size 8KiB --count 4 --keys 4 --no-populate --prefix np- >"$TMP/out" 2>"$TMP/err" </dev/null
ok $(( $? == 0 )) "another size than was put: the stamps do not match, an error"
$C bench --op put --size 4KiB --count 4 --no-populate --prefix np-
is $? 2 "--no-populate with put: usage error"
$C bench --op get --size 4KiB --count 4 --no-populate
is $? 2 "--no-populate without --prefix: usage error"
like "$(cat "$TMP/err")" "--prefix" "  naming it"

# exists: routed key lookups of keys the setup put; a key that is not there
# is an error, not a fast "no"
run_ok "exists, batch 8, 4 clients" --op exists --count 256 --batch 8 --clients 4
is "$(field "$TMP/out" op)" '"exists"' "op is exists"
is "$(field "$TMP/out" exists)" 256 "256 exists calls counted"
is "$(field "$TMP/out" size)" 1 "exists: --size defaults to 1 byte"
is "$(field "$TMP/out" gb_per_s)" 0.0000 "exists moves no value bytes"
run_ok "exists, one at a time, 4 KiB values" --op exists --size 4KiB --count 20 --clients 2
$C bench --op exists --count 4 --keys 4 --no-populate --prefix np-
is $? 0 "exists --no-populate of keys that are there"
$C bench --op exists --count 4 --keys 1000000 --clients 2 --no-populate --prefix np-
ok $(( $? == 0 )) "exists --no-populate of keys that are not there: an error"
like "$(cat "$TMP/err")" "np-500000.*does not exist" "naming the key"
$C bench --op exists
is $? 2 "exists without --count: usage error"

# The local baselines: no server is asked (the target is named "local");
# tag computes a real frame tag per item, and a failed one is an error;
# xxh3 one XXH3-64 per item.
for op in memcpy tag xxh3; do
	run_ok "$op, batch 4, 2 clients" --op $op --size 64KiB --count 64 --batch 4 --clients 2
	is "$(field "$TMP/out" target)" '"local"' "$op: target is local"
	is "$(field "$TMP/out" op)" "\"$op\"" "$op: op reported"
	like "$(field "$TMP/out" gb_per_s)" '^[0-9.]*[1-9][0-9.]*$' "$op: GB/s is a positive number"
done

$C bench --op nope
is $? 2 "an unknown op: usage error"
like "$(cat "$TMP/err")" "op" "naming the option"
$C bench --op get --size 1KiB --count 8 --batch 4 --clients 2 --keys 4
is $? 2 "fewer keys than clients x batch: usage error"
like "$(cat "$TMP/err")" "keys" "saying so"
$C bench --op get --size 1KiB --count 4 --target memcached://127.0.0.1:1 --timeout 2s
ok $(( $? == 0 )) "an unreachable target fails"
like "$(cat "$TMP/err")" "127.0.0.1:1" "naming the address"

# --op queue: producers put samples with KVN_PUT_QUEUE while consumers
# lease, fetch (every byte checked) and release them; the master's commits
# come from master.db's WAL index (--master-db), the baseline is durable
# puts alone
run_ok "queue, 2 producers, 2 consumers, batch 8" --op queue --size 4KiB --count 300 --producers 2 \
	--clients 2 --batch 8 --master-db "$TMP/var/master.db"
for f in samples_per_s put_p50_us lease_p50_us lease_p99_us get_p50_us release_p50_us release_p99_us \
	lease_calls commits commits_per_s baseline_puts_per_s baseline_commits_per_s; do
	like "$(field "$TMP/out" $f)" '^[0-9.]+$' "queue: JSON has $f, a number"
done
is "$(field "$TMP/out" op)" '"queue"' "op is queue"
is "$(field "$TMP/out" producers)" 2 "2 producers"
like "$(field "$TMP/out" commits)" '^[1-9][0-9]*$' "the master's commits were counted"
is "$(sqlite3 "$TMP/var/master.db" 'select count(*) from objects where qflags & 1')" 0 \
	"every sample was consumed: none left in the queue"
is "$(sqlite3 "$TMP/var/master.db" "select count(*) from objects where cast(key as text) like 'bench-%'")" 0 \
	"the baseline's keys were removed"
is "$(field "$TMP/out" remove_failed)" 0 "  none failed"
run_ok "queue without --master-db or baseline" --op queue --size 100 --count 50 --no-baseline
is "$(field "$TMP/out" commits)" null "no --master-db: commits not reported"
is "$(field "$TMP/out" baseline_puts_per_s)" null "--no-baseline: no baseline"
$C bench --op queue --size 1KiB --count 40 --clients 3 --batch 4 </dev/null
is $? 0 "queue, the human report"
like "$(cat "$TMP/out")" "samples/s end to end" "says samples/s end to end"
like "$(cat "$TMP/out")" "master.db commits/s: not measured" "and that commits were not measured"
like "$(cat "$TMP/out")" "baseline: durable puts alone" "and the baseline"
$C bench --op queue --size 1KiB --count 4 --master-db "$TMP/nope.db"
ok $(( $? == 0 )) "--master-db of a file that is not there: an error"
like "$(cat "$TMP/err")" "nope.db-shm" "naming it"
for bad in "--op put --size 1KiB --count 4 --producers 2" "--op queue --size 1KiB --count 4 --batch 2000" \
	"--op queue --size 1KiB --count 4 --durable" "--op queue --size 1KiB --count 4 --target redis://127.0.0.1:1"; do
	$C bench $bad
	is $? 2 "bench $bad: usage error"
done

stop aio
is "$STATUS" 0 "node stops cleanly"
done_testing
