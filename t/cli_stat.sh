#!/bin/bash
# t/cli_stat.sh: the client commands' manners and the cluster's figures.
# Every client command answers --help and -h with its usage on stdout and
# exit 0 without connecting, and refuses an unknown option or a stray
# argument with exit 2; stat's figures after a scripted workload (ops grow
# by the requests sent, the hit ratio is the scripted hits and misses
# exactly, connections by role, human units), a killed peer's usage shown
# as unknown (null in JSON) where it was known before, stat --json parsed
# by a strict checker (t/json_get; itself checked on bad JSON first);
# bench leaves no key behind, --keep leaves them all, --op queue too.
#
#   t/cli_stat.sh [CASE...]    (no CASE: all; --list: their names)
. "$(dirname "$0")/lib.sh"

CASES="help badargs json_get stat dead bench_clean bench_keep bench_queue"
if [ "${1:-}" = --list ]; then
	printf '%s\n' $CASES
	exit 0
fi
JG="$BUILDDIR/t/json_get"
CMDS="ping put get exists rm ls pin unpin evict stat lease release renew bench"

# jget FILE PATH: the JSON text at PATH of the object in FILE
jget() { "$JG" "$2" < "$1"; }

# up NAME [--set ...]: an all-in-one node on free ports; $C_NAME runs its client
up() {
	local name=$1 mp pp
	shift
	mp=$(free_port); pp=$(free_port)
	# a data_dir per case: each starts from an empty master.db
	write_conf "$TMP/$name.conf" "$mp" "$pp" "[node]" "data_dir = $TMP/var-$name"
	start "$name" --config "$TMP/$name.conf" "$@"
	wait_log "$name" "kvnode ready" 15
	ok $? "$name: node up"
	wait_until 10 client "$TMP/$name.conf" ping
	C="client $TMP/$name.conf"
}

# stat_json FILE: stat --json of $C into FILE, checked
stat_json() {
	$C stat --json
	local rc=$?
	cp "$TMP/out" "$1"
	[ $rc -eq 0 ] && "$JG" < "$1" > /dev/null
}

# objects: the master's object count, once the removals of the last
# command are applied (it may trail a remove's answer by an event)
objects() { $C stat --json && jget "$TMP/out" objects; }

case_help() {
	# a client whose master nobody listens on: a command that connected would exit 4
	local p c
	p=$(free_port)
	write_conf "$TMP/nobody.conf" "$p" "$(free_port)"
	for c in $CMDS; do
		for h in --help -h; do
			"$KVNODE" --role client --config "$TMP/nobody.conf" $c $h > "$TMP/out" 2> "$TMP/err"
			is $? 0 "$c $h: exit 0 without connecting"
			like "$(head -1 "$TMP/out")" "^usage: kvnode --role client $c( |$)" "  usage on stdout, naming $c"
			is "$(wc -c < "$TMP/err")" 0 "  nothing on stderr"
		done
	done
	"$KVNODE" --role client --config "$TMP/nobody.conf" put k /dev/null --help > "$TMP/out" 2>&1
	is $? 0 "--help after other arguments: help too"
	"$KVNODE" --help > "$TMP/out" 2>&1
	for c in $CMDS; do
		grep -Eq "^  $c( |$)" "$TMP/out"
		ok $? "kvnode --help lists $c"
	done
}

case_badargs() {
	local p args
	p=$(free_port)
	write_conf "$TMP/nobody.conf" "$p" "$(free_port)"
	# one unknown option (or stray argument) per command; exit 4 would mean it dialed
	while IFS='|' read -r args want; do
		# shellcheck disable=SC2086
		"$KVNODE" --role client --config "$TMP/nobody.conf" $args > "$TMP/out" 2> "$TMP/err"
		is $? 2 "$args: exit 2 before any connection"
		like "$(cat "$TMP/err")" "$want" "  names it ($want)"
		like "$(cat "$TMP/err")" "usage: kvnode --role client ${args%% *}" "  and shows the usage"
	done <<'EOF'
ping extra|unexpected argument 'extra'
ping --bogus|unexpected argument '--bogus'
put --bogus k /dev/null|unexpected option '--bogus'
put k /dev/null --bogus|unexpected option '--bogus'
put k /dev/null --bogus x|unexpected option '--bogus'
get k --bogus|unexpected argument '--bogus'
get k extra|unexpected argument 'extra'
exists k --bogus|unexpected option '--bogus'
rm --bogus k|unexpected option '--bogus'
pin k --bogus|unexpected option '--bogus'
unpin k --bogus|unexpected option '--bogus'
evict --bogus|unexpected option '--bogus'
stat --bogus|unexpected argument '--bogus'
stat --json extra|unexpected argument 'extra'
lease --partition 0/1 --bogus|unexpected argument '--bogus'
release 5 --bogus|unexpected argument '--bogus'
renew 5 --ttl 1s --bogus|unexpected argument '--bogus'
bench --bogus|unknown or ambiguous option '--bogus'
bench --op put --size 1 --count 1 extra|unexpected argument 'extra'
EOF
}

case_json_get() {
	# the checker the other cases trust: it must refuse what is not JSON
	local bad good
	while IFS= read -r bad; do
		printf '%s' "$bad" | "$JG" > /dev/null 2>&1
		is $? 1 "json_get refuses: $bad"
	done <<'EOF'
{"a":1,}
{"a":01}
{"a":"x	y"}
{"a":"\q"}
{"a":tru}
{"a":1} {}
[1,2]
{"a":.5}
{"a":"\u12"}
EOF
	good='{"a":{"b":[1,{"c":"x\"y"}],"d":null},"e":-1.5e3,"f":true}'
	is "$(printf '%s' "$good" | "$JG" a.b.1.c)" '"x\"y"' "json_get: a nested string"
	is "$(printf '%s' "$good" | "$JG" a.d e f)" "$(printf 'null\n-1.5e3\ntrue')" "  null, a number, a bool"
	printf '%s' "$good" | "$JG" a.z > /dev/null
	is $? 3 "  a path that is not there: exit 3"
}

case_stat() {
	up st
	head -c 300000 /dev/urandom > "$TMP/v300k"
	$C put k1 "$TMP/v300k" && $C put k2 "$TMP/v300k"
	ok $? "two puts"
	stat_json "$TMP/s0.json"
	ok $? "stat --json: exit 0, one valid JSON object"
	local f
	for f in version uptime_ms objects bytes ops hits misses hit_ratio connections.open \
		connections.peers connections.clients connections.handshake nodes_total nodes.0.node_id \
		nodes.0.addr nodes.0.alive nodes.0.dram_used nodes.0.dram_total nodes.0.disk_used \
		nodes.0.disk_total nodes.0.objects; do
		[ -n "$(jget "$TMP/s0.json" $f)" ]
		ok $? "  has $f"
	done
	like "$(jget "$TMP/s0.json" version)" '^"[0-9]+\.[0-9]+' "  version is the package's"
	is "$(jget "$TMP/s0.json" objects)" 2 "  objects: the two keys"
	is "$(jget "$TMP/s0.json" bytes)" 600000 "  bytes: their values"
	is "$(jget "$TMP/s0.json" nodes_total)" 1 "  one node"
	is "$(jget "$TMP/s0.json" nodes.0.alive)" true "  alive"
	is "$(jget "$TMP/s0.json" nodes.0.dram_total)" $((128 << 20)) "  its DRAM: peer.dram_size"
	is "$(jget "$TMP/s0.json" connections.clients)" 1 "  one client connection: stat's own"
	is "$(jget "$TMP/s0.json" connections.peers)" 0 "  no peer connection (the peer is in-process)"

	# the scripted mix: 3 keys found, 3 not, over gets and one exists of 3
	# keys; every command is its connect's PING and one request
	local h0 m0 o0 u0
	h0=$(jget "$TMP/s0.json" hits) m0=$(jget "$TMP/s0.json" misses) o0=$(jget "$TMP/s0.json" ops)
	u0=$(jget "$TMP/s0.json" uptime_ms)
	$C get k1 -o /dev/null; $C get k2 -o /dev/null
	$C get nope1
	is $? 1 "get of a missing key exits 1"
	$C exists k1 nope2 nope3
	is $? 1 "exists of two missing keys exits 1"
	sleep 1
	stat_json "$TMP/s1.json"
	ok $? "stat --json again"
	is $(( $(jget "$TMP/s1.json" hits) - h0 )) 3 "hits grew by the 3 keys found"
	is $(( $(jget "$TMP/s1.json" misses) - m0 )) 3 "misses grew by the 3 keys not found"
	# 4 commands and this stat: 5 connects' PINGs + 5 requests
	is $(( $(jget "$TMP/s1.json" ops) - o0 )) 10 "ops grew by the 10 requests sent (one per message)"
	ok $(( $(jget "$TMP/s1.json" uptime_ms) - u0 >= 1000 ? 0 : 1 )) "uptime_ms grew by the second slept"
	local hits misses
	hits=$(jget "$TMP/s1.json" hits) misses=$(jget "$TMP/s1.json" misses)
	is "$(jget "$TMP/s1.json" hit_ratio)" "$(awk -v h="$hits" -v m="$misses" 'BEGIN { printf "%.4f", h / (h + m) }')" \
		"hit_ratio is hits / (hits + misses)"

	# the human form: units a person reads
	$C stat
	ok $? "stat"
	like "$(cat "$TMP/out")" "^version: [0-9]" "  version line"
	like "$(cat "$TMP/out")" "uptime: [0-9]+s" "  uptime line"
	like "$(cat "$TMP/out")" "objects: 2 \(586 KiB\)" "  objects and their bytes in KiB"
	like "$(cat "$TMP/out")" "hit ratio: [0-9.]+% \($hits hits, $misses misses\)" "  hit ratio with its counts"
	like "$(cat "$TMP/out")" "connections: 1 \(0 peers, 1 client; 0 in handshake\)" "  connections by role"
	like "$(cat "$TMP/out")" "dram used +dram total +disk used +disk total +objects" "  the table's columns"
	like "$(cat "$TMP/out")" " yes +[0-9.]+ (B|KiB|MiB) +128 MiB +0 B +0 B +2$" "  the node's row: 128 MiB, not 131072 KiB"
	stop st
}

case_dead() {
	local mp pp1 pp2 i dead
	mp=$(free_port); pp1=$(free_port); pp2=$(free_port)
	write_conf "$TMP/d.conf" "$mp" "$pp1" "[node]" "data_dir = $TMP/var-dead"
	C="client $TMP/d.conf"
	start m --role master --config "$TMP/d.conf"
	wait_log m "kvnode ready" 15
	ok $? "master up"
	start p1 --role peer --config "$TMP/d.conf" --set node.id=p1 --set "peer.listen=127.0.0.1:$pp1"
	start p2 --role peer --config "$TMP/d.conf" --set node.id=p2 --set "peer.listen=127.0.0.1:$pp2" \
		--set peer.dram_size=96MiB
	wait_log p1 "attached to the master" 15 && wait_log p2 "attached to the master" 15
	ok $? "two peers attached"
	wait_until 10 sh -c "'$KVNODE' --role client --config '$TMP/d.conf' stat --json | '$JG' connections.peers | grep -qx 2"
	stat_json "$TMP/d0.json"
	ok $? "stat --json"
	is "$(jget "$TMP/d0.json" connections.peers)" 2 "  two peer connections"
	$C stat
	like "$(grep '^p2 ' "$TMP/out")" "^p2 +127\.0\.0\.1:$pp2 +yes +[0-9.]+ (B|KiB|MiB) +96 MiB " \
		"  p2 alive, its DRAM known: 96 MiB"

	stop p2 KILL
	wait_until 15 sh -c "'$KVNODE' --role client --config '$TMP/d.conf' stat | grep -Eq '^p2 .* no '"
	ok $? "p2 killed: stat says it is not alive"
	$C stat
	ok $? "stat exits 0 with a node down"
	like "$(grep '^p2 ' "$TMP/out")" "^p2 +[^ ]+ +no +unknown +unknown +unknown +unknown +unknown$" \
		"  its usage unknown, not its last figures"
	like "$(grep '^p1 ' "$TMP/out")" "^p1 +[^ ]+ +yes +[0-9.]+ (B|KiB|MiB) +128 MiB" "  p1's still known"
	like "$(cat "$TMP/out")" "nodes: 2 \(1 alive\)" "  2 nodes, 1 alive"
	stat_json "$TMP/d1.json"
	ok $? "stat --json with a node down: valid"
	dead=
	for i in 0 1; do
		[ "$(jget "$TMP/d1.json" nodes.$i.node_id)" = '"p2"' ] && dead=$i
	done
	ok $([ -n "$dead" ]; echo $?) "  lists p2"
	for f in alive dram_used dram_total disk_used disk_total objects; do
		want=null
		[ $f = alive ] && want=false
		is "$(jget "$TMP/d1.json" nodes.${dead:-0}.$f)" $want "  p2's $f: $want"
	done
	wait_until 10 sh -c "'$KVNODE' --role client --config '$TMP/d.conf' stat --json | '$JG' connections.peers | grep -qx 1"
	ok $? "  one peer connection left"
	stop p1
	stop m
}

case_bench_clean() {
	up bc
	local o0 o1
	o0=$(objects)
	$C bench --op put --size 1KiB --count 300 --clients 3 --batch 4 --json
	ok $? "bench put: exit 0"
	local prefix
	prefix=$(jget "$TMP/out" prefix | tr -d '"')
	like "$prefix" "^bench-[A-Za-z0-9.-]+-[0-9]+-$" "  its prefix: bench-HOST-PID-"
	is "$(jget "$TMP/out" kept)" false "  kept: false"
	is "$(jget "$TMP/out" removed)" 303 "  removed its 300 keys and 3 settle markers"
	is "$(jget "$TMP/out" remove_failed)" 0 "  none failed"
	$C exists "${prefix}0" "${prefix}299" "${prefix}settle-0"
	is $? 1 "  its keys are gone"
	wait_until 10 sh -c "[ \"\$('$KVNODE' --role client --config '$TMP/bc.conf' stat --json | '$JG' objects)\" = $o0 ]"
	ok $? "  the master's object count is back to $o0"
	$C bench --op get --size 4KiB --count 100 --clients 2 --batch 8
	ok $? "bench get"
	like "$(cat "$TMP/out")" "keys bench-[^ ]+-\*: 102 removed" "  says it removed its 100 keys and 2 markers"
	# a key of the user's is never touched: not even one named like the old bench keys
	echo mine > "$TMP/mine"
	$C put bench:0 "$TMP/mine"
	$C bench --op mixed --size 100 --count 50 --keys 10 --json
	ok $? "bench mixed"
	$C get bench:0
	is "$(cat "$TMP/out")" mine "  the user's key bench:0 is untouched"
	stop bc
}

case_bench_keep() {
	up bk
	local o0
	o0=$(objects)
	$C bench --op put --size 1KiB --count 40 --clients 2 --keep --json
	ok $? "bench put --keep: exit 0"
	local prefix
	prefix=$(jget "$TMP/out" prefix | tr -d '"')
	is "$(jget "$TMP/out" kept)" true "  kept: true"
	is "$(jget "$TMP/out" removed)" 0 "  removed nothing"
	$C exists "${prefix}0" "${prefix}39" "${prefix}settle-0" "${prefix}settle-1"
	is $? 0 "  its 40 keys and 2 markers are there"
	is "$(objects)" $((o0 + 42)) "  the master counts 42 more objects"
	# a later run reads them by their prefix, and removes none
	$C bench --op get --size 1KiB --count 40 --keys 40 --no-populate --prefix "$prefix" --json
	ok $? "bench get --no-populate --prefix of them"
	is "$(jget "$TMP/out" kept)" true "  kept: an earlier run's keys"
	$C exists "${prefix}0" "${prefix}39"
	is $? 0 "  still there"
	$C bench --op put --size 1KiB --count 10 --prefix "my-run." --keep --json
	ok $? "bench --prefix my-run."
	$C exists my-run.0 my-run.9
	is $? 0 "  its keys are my-run.<i>"
	$C bench --op put --size 1 --count 1 --prefix 'bad prefix'
	is $? 2 "a prefix with a space: usage error"
	stop bk
}

case_bench_queue() {
	up bq
	local o0
	o0=$(objects)
	$C bench --op queue --size 1KiB --count 60 --producers 2 --clients 2 --batch 4 --json
	ok $? "bench --op queue: exit 0"
	is "$(jget "$TMP/out" consumed)" 60 "  every sample consumed"
	is "$(jget "$TMP/out" removed)" 60 "  the baseline's 60 keys removed"
	is "$(jget "$TMP/out" remove_failed)" 0 "  none failed"
	wait_until 10 sh -c "[ \"\$('$KVNODE' --role client --config '$TMP/bq.conf' stat --json | '$JG' objects)\" = $o0 ]"
	ok $? "  the master's object count is back to $o0"
	$C bench --op queue --size 1KiB --count 20 --keep --json
	ok $? "bench --op queue --keep"
	is "$(jget "$TMP/out" kept)" true "  kept: true"
	is "$(objects)" $((o0 + 20)) "  the baseline's 20 keys stay (the samples are consumed)"
	stop bq
}

for c in ${*:-$CASES}; do
	case " $CASES " in
	*" $c "*) "case_$c" ;;
	*) echo "Bail out! no case '$c' (cases: $CASES)"; exit 1 ;;
	esac
done
done_testing
