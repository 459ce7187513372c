#!/bin/bash
# t/queue_cli.sh: the consumer queue from the command line, end to end
# against a real master and a real peer (two processes, so the peer can
# die alone): put --queue [--retain], lease's lines (partition by
# kvn_hash64, commit order, the key's printed form), get --ref of exactly
# that generation, release (consume, --retain, --return), renew, an
# expired lease, a sample whose node died (get --ref: peer unavailable),
# and every bad argument refused with exit 2 before any connection.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port)
write_conf "$TMP/q.conf" "$MP" "$PP"
C="client $TMP/q.conf"
LINE='^lease=[1-9][0-9]* key=[^ ]+ gen=[1-9][0-9]* node=[^ ]+ size=[0-9]+$'

# ---- bad arguments: exit 2, the argument named, nothing dialed ----------------
# (the master is not up yet: a command that connected would exit 4)
bad() { # bad WANT_IN_STDERR ARGS...
	local want=$1
	shift
	$C "$@"
	is $? 2 "client $*: exit 2 before any connection"
	like "$(cat "$TMP/err")" "$want" "  says: $want"
}
bad "--partition '3/3': I must be below N" lease --partition 3/3
bad "--partition 'x': want I/N" lease --partition x
bad "--partition '1/0': N must be 1\.\.1048576" lease --partition 1/0
bad "--partition '-1/4': want I/N" lease --partition -1/4
bad "--partition I/N is required" lease --max 3
bad "--ttl wants a duration" lease --partition 0/4 --ttl 0
bad "--ttl wants a duration" lease --partition 0/4 --ttl soon
bad "--max '0': want 1\.\.1024" lease --partition 0/4 --max 0
bad "--max '1025': want 1\.\.1024" lease --partition 0/4 --max 1025
bad "unexpected argument 'extra'" lease --partition 0/4 extra
bad "'abc' is not a lease id" release abc
bad "'0' is not a lease id" release 0
bad "'-5' is not a lease id" release -5
bad "'18446744073709551616' is not a lease id" release 18446744073709551616
bad "no lease id given" release --retain
bad "--retain and --return exclude each other" release 5 --retain --return
bad "--ttl D is required" renew 5
bad "--ttl wants a duration" renew 5 --ttl 0
bad "'x1' is not a lease id" renew x1 --ttl 1s
bad "--ref 'k': want KEY@GEN" get --ref k
bad "--ref 'k@0': want KEY@GEN" get --ref k@0
bad "--ref '@5': want KEY@GEN" get --ref @5
bad "--ref 'k@5x': want KEY@GEN" get --ref k@5x
bad "unexpected argument 'extra'" get --ref k@5 extra
bad "--retain is for queue samples" put --retain k "$TMP/q.conf"

# ---- a master and a peer --------------------------------------------------------
start m --role master --config "$TMP/q.conf"
wait_log m "kvnode ready" 15
ok $? "master up"
start p --role peer --config "$TMP/q.conf"
wait_until 15 sh -c "'$KVNODE' --role client --config '$TMP/q.conf' ping | grep -q '1 peer'"
ok $? "the peer attached"

# samples, one command each: their commit order is the order below
for k in s0 s1 s2 s3 s4 s5 "s 6"; do
	printf 'value of %s' "$k" > "$TMP/v-$k"
	$C put --queue "$k" "$TMP/v-$k" || echo "# put --queue $k: $(cat "$TMP/err")"
done
$C exists s0 s1 s2 s3 s4 s5 "s 6"
ok $? "put --queue stored seven samples"

# field VALUE-OF NAME LINE: the value of NAME= on a lease line
field() { printf '%s\n' "$2" | sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p; s/^$1=\\([^ ]*\\).*/\\1/p" | head -1; }

# kvn_hash64 (XXH64, seed 0) % 3 == 1 for s1, s3 and "s 6" only (pinned:
# s0 2878291886811832382, s1 7656551529088201825, s2 8947433253485817090,
# s3 8238143418559805077, s4 85394958867099554, s5 7116711584759346483,
# "s 6" 9509121310520578006)
$C lease --partition 1/3 --max 100 --ttl 30s
is $? 0 "lease --partition 1/3 --max 100"
cp "$TMP/out" "$TMP/l1"
is "$(wc -l < "$TMP/l1")" 3 "  three samples of partition 1 of 3"
is "$(grep -Ec "$LINE" "$TMP/l1")" 3 "  every line reads lease=ID key=KEY gen=GEN node=NODE size=BYTES"
is "$(cut -d' ' -f2 "$TMP/l1" | tr '\n' ' ')" "key=s1 key=s3 key=hex:732036 " \
	"  s1, s3, 's 6' (oldest commit first; a key with a space in hex)"
is "$(cut -d' ' -f5 "$TMP/l1" | tr '\n' ' ')" "size=11 size=11 size=12 " "  with their sizes"
L1=$(sed -n 1p "$TMP/l1"); L3=$(sed -n 2p "$TMP/l1"); L6=$(sed -n 3p "$TMP/l1")
ID1=$(field lease "$L1"); ID3=$(field lease "$L3"); ID6=$(field lease "$L6")
G1=$(field gen "$L1"); G6=$(field gen "$L6")
is "$(printf '%s\n' "$ID1" "$ID3" "$ID6" | sort -u | wc -l)" 3 "  three distinct lease ids"

$C get --ref "s1@$G1"
is $? 0 "get --ref s1@GEN"
is "$(cat "$TMP/out")" "value of s1" "  its bytes"
$C get --ref "hex:732036@$G6" -o "$TMP/g6"
is $? 0 "get --ref with the key as lease printed it (hex:...) -o FILE"
is "$(cat "$TMP/g6")" "value of s 6" "  the bytes of 's 6'"
$C get --ref "s1@$((G1 + 1000))"
is $? 8 "get --ref of a generation that does not exist: exit 8"
like "$(cat "$TMP/err")" "stale generation" "  stale generation"

$C lease --partition 1/3 --max 100
is "$?:$(wc -c < "$TMP/out")" "0:0" "lease again: all three are leased: nothing, exit 0"
$C lease --partition 0/3
is "$(wc -l < "$TMP/out")" 1 "  --max defaults to 1"
ID0=$(field lease "$(cat "$TMP/out")")
like "$(cat "$TMP/out")" "key=s2 " "  the oldest of partition 0 of 3 (s2, s5): s2"

# ---- release, renew ---------------------------------------------------------------
$C release "$ID1"
is $? 0 "release ID"
is "$(cat "$TMP/out")" "lease=$ID1 released" "  one line: released"
$C exists s1
is $? 1 "  the sample was consumed: the key is gone"
$C release "$ID1" "$ID0"
is $? 7 "release of an id released already (and a live one): exit 7"
is "$(cat "$TMP/out")" "lease=$ID1 error=KVN_ESTATE
lease=$ID0 released" "  one line per id, the failed one says so"
like "$(cat "$TMP/err")" "release lease=$ID1: refused in current state \\(not a live lease" \
	"  stderr names the id and why"

now_ms=$(($(date +%s%3N)))
$C renew "$ID3" "lease=$ID1" --ttl 1m
is $? 7 "renew a live id and a dead one (lease= form): exit 7"
DL=$(sed -n 1p "$TMP/out" | sed -n 's/.*deadline_ms=\([0-9]*\)$/\1/p')
like "$(sed -n 1p "$TMP/out")" "^lease=$ID3 deadline=[0-9-]+T[0-9:.]+Z deadline_ms=[0-9]+$" "  the live one: its new deadline"
[ "${DL:-0}" -gt $((now_ms + 50000)) ] && [ "${DL:-0}" -lt $((now_ms + 70000)) ]
ok $? "  about a minute from now ($DL, now $now_ms)"
is "$(sed -n 2p "$TMP/out")" "lease=$ID1 error=KVN_ESTATE" "  the dead one: KVN_ESTATE"
like "$(cat "$TMP/err")" "renew lease=$ID1" "  named on stderr"

$C release --return "$ID3"
is "$?:$(cat "$TMP/out")" "0:lease=$ID3 returned" "release --return"
$C lease --partition 1/3 --max 100
is "$(cut -d' ' -f2 "$TMP/out" | tr '\n' ' ')" "key=s3 " "  s3 is back in the queue; 's 6' still leased is not"
ID3B=$(field lease "$(cat "$TMP/out")")
[ -n "$ID3B" ] && [ "$ID3B" != "$ID3" ]
ok $? "  under a new lease id ($ID3, then $ID3B)"
$C release --retain "$ID3B" "$ID6"
is "$?:$(cut -d' ' -f2 "$TMP/out" | tr '\n' ' ')" "0:retained retained " "release --retain of two"
$C get s3
is "$?:$(cat "$TMP/out")" "0:value of s3" "  a retained sample is still readable by key"
$C lease --partition 1/3 --max 100
is "$?:$(wc -c < "$TMP/out")" "0:0" "  and is not leased again"

# ---- retain at put ----------------------------------------------------------------
printf 'kept' > "$TMP/v-r0"
$C put --queue --retain r0 "$TMP/v-r0"
is $? 0 "put --queue --retain"
$C lease --partition 0/1 --max 100 --ttl 1m
is "$(cut -d' ' -f2 "$TMP/out" | tr '\n' ' ')" "key=s0 key=s4 key=s5 key=r0 " \
	"lease --partition 0/1: every sample left, oldest first"
IDS=$(sed -n 's/^lease=\([0-9]*\) .*/\1/p' "$TMP/out" | tr '\n' ' ')
# shellcheck disable=SC2086
$C release $IDS
is "$?:$(grep -c ' released$' "$TMP/out")" "0:4" "release of four ids in one command"
$C get r0
is "$?:$(cat "$TMP/out")" "0:kept" "  the one put with --retain is kept"
$C exists s0
is $? 1 "  the others are consumed"

# ---- keys that print in hex, and back ---------------------------------------------
printf 'bin' > "$TMP/v-b"
$C put --queue $'b\x01' "$TMP/v-b" && $C put --queue "hex:zz" "$TMP/v-b"
is $? 0 "put --queue of a key with a control byte, then of one that starts with hex:"
$C lease --partition 0/1 --max 100
is "$(cut -d' ' -f2 "$TMP/out" | tr '\n' ' ')" "key=hex:6201 key=hex:6865783a7a7a " "  both leased, printed in hex"
HB=$(sed -n 1p "$TMP/out"); HZ=$(sed -n 2p "$TMP/out")
$C get --ref "hex:6201@$(field gen "$HB")"
is "$?:$(cat "$TMP/out")" "0:bin" "  get --ref of the printed form reads the binary key"
$C get --ref "hex:6865783a7a7a@$(field gen "$HZ")"
is "$?:$(cat "$TMP/out")" "0:bin" "  and the key that is literally hex:zz"
$C release "$(field lease "$HB")" "$(field lease "$HZ")"
is $? 0 "  released"

# ---- an expired lease -----------------------------------------------------------
printf 'e' > "$TMP/v-e0"
$C put --queue e0 "$TMP/v-e0"
$C lease --partition 0/1 --ttl 1s
E1=$(field lease "$(cat "$TMP/out")")
like "$(cat "$TMP/out")" "key=e0 " "lease e0 for 1s"
# expired: back in the pool (the master reclaims it within its sweep)
again() { $C lease --partition 0/1 --ttl 30s && grep -q 'key=e0 ' "$TMP/out"; }
wait_until 15 again
ok $? "  after its deadline e0 is leased again"
E2=$(field lease "$(cat "$TMP/out")")
[ -n "$E2" ] && [ "$E2" != "$E1" ]
ok $? "  under a new id ($E1, then $E2)"
$C release "$E1"
is $? 7 "  releasing the expired id: exit 7 (KVN_ESTATE)"
$C release "$E2"
is $? 0 "  the new one releases"

# ---- a sample whose node died ---------------------------------------------------
printf 'doomed' > "$TMP/v-d0"
$C put --queue d0 "$TMP/v-d0"
$C lease --partition 0/1 --ttl 1m
like "$(cat "$TMP/out")" "key=d0 " "lease d0"
GD=$(field gen "$(cat "$TMP/out")")
$C get --ref "d0@$GD"
is "$?:$(cat "$TMP/out")" "0:doomed" "  get --ref while its node lives"
stop p KILL
peerdown() { $C get --ref "d0@$GD"; [ $? = 4 ] && grep -q "peer unavailable" "$TMP/err"; }
wait_until 20 peerdown
ok $? "the node killed: get --ref exits 4, peer unavailable"
like "$(cat "$TMP/err")" "get --ref 'd0@$GD': peer unavailable \(the node holding generation $GD is down" \
	"  saying which ref and why"

stop m
done_testing
