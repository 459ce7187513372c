#!/bin/bash
# t/cli_ls.sh: `kvnode --role client ls [--prefix P] [--max N]`: its usage
# errors (exit 2, before any connection), then against a node: every key
# once, one per line, a key with a space as hex:..., --prefix (also given as
# hex:), --max, a prefix nothing has (no line, exit 0), and a stopped
# master (exit status of the error, said on stderr).
. "$(dirname "$0")/lib.sh"

for args in "ls --max" "ls --max 0" "ls --max x" "ls --max -3" "ls --prefix" "ls extra" "ls --bogus"; do
	# shellcheck disable=SC2086
	"$KVNODE" --role client --set client.master=127.0.0.1:1 $args > "$TMP/out" 2>&1
	is $? 2 "client $args: usage, exit 2 (before any connection)"
	like "$(cat "$TMP/out")" "usage: kvnode --role client ls" "  and says how"
done
"$KVNODE" --role client ls --help > "$TMP/out" 2>&1
ok $? "ls --help exits 0"
like "$(cat "$TMP/out")" "--prefix P" "  and names its options"

mp=$(free_port); pp=$(free_port)
write_conf "$TMP/n.conf" "$mp" "$pp"
start n --config "$TMP/n.conf"
wait_log n "kvnode ready" 15
ok $? "node up"
wait_until 10 client "$TMP/n.conf" ping
printf 'v' > "$TMP/v"
args=""
for i in $(seq 1 40); do args="$args a/$i $TMP/v"; done
for i in $(seq 1 25); do args="$args b/$i $TMP/v"; done
client "$TMP/n.conf" put $args
ok $? "65 keys put"
client "$TMP/n.conf" put "a b" "$TMP/v"
ok $? "a key with a space put ('a b')"

client "$TMP/n.conf" ls
ok $? "ls exits 0"
is "$(wc -l < "$TMP/out")" 66 "66 lines"
is "$(sort "$TMP/out" | uniq -d | wc -l)" 0 "no key twice"
is "$(grep -c '^a/' "$TMP/out")" 40 "every a/ key"
is "$(grep -cx 'hex:612062' "$TMP/out")" 1 "the key with a space as hex:612062"
client "$TMP/n.conf" ls --prefix b/
is "$(sort "$TMP/out" | tr '\n' ' ')" "$(for i in $(seq 1 25); do echo "b/$i"; done | sort | tr '\n' ' ')" \
	"--prefix b/: exactly the b/ keys"
client "$TMP/n.conf" ls --prefix hex:6120
is "$(cat "$TMP/out")" "hex:612062" "--prefix hex:6120 ('a '): that key alone"
client "$TMP/n.conf" ls --max 5
is "$(wc -l < "$TMP/out")" 5 "--max 5: 5 lines"
client "$TMP/n.conf" ls --prefix zz/
rc=$?
ok $(( rc != 0 || $(wc -c < "$TMP/out") != 0 )) "--prefix nothing has: no line, exit 0"
stop n KILL
client "$TMP/n.conf" --set client.timeout=1s ls
rc=$?
ok $(( rc == 0 || rc == 2 )) "with the node gone: an error exit ($rc), not 0 or usage"
like "$(cat "$TMP/err")" "^kvnode: " "  said on stderr"
done_testing
