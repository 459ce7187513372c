#!/bin/bash
# t/tier.sh: issue 13 from the outside, through real processes and the CLI:
# a small DRAM tier (8 MiB, 4 KiB pages) written 4x and 10x over with
# values of 64..256 KiB, with and without a disk tier.  What must hold:
#   (a) with a disk tier every value reads back byte for byte, the disk
#       holds at least the values DRAM cannot, and peer.db indexes them;
#   (b) without one (evict = lru) every put succeeds, the oldest values read
#       as not found, the newest back, and no get returns wrong bytes;
#   (c) evict = none: puts fail with "no space" once DRAM is full, and no
#       value stored before is lost;
#   (d) kill -9 of the peer and a restart: every value that reached disk
#       reads back, and an orphan file in the disk tier is removed;
#   (e) SIGTERM: the peer exits 0, its keys answer "not found" within 3 s
#       although master.node_timeout is 60 s, and after a restart (with
#       peer.flush_on_stop) its values come back;
#   (f) put --ttl: readable at once, not found once the TTL has passed;
#   (g) a pinned value survives 10x dram_size of other puts, and goes once
#       unpinned;
#   (h) evict of a pinned value is refused (exit 7, saying so); evict of an
#       unpinned one with a disk tier keeps it readable (from disk).
# Values are random bytes kept in files, so every get is compared with cmp.
. "$(dirname "$0")/lib.sh"

DRAM_B=$((8 << 20))
mkdir -p "$TMP/v"

# cluster NAME SPLIT [extra config lines...]: a master and a peer on fresh
# ports with data_dir $TMP/NAME (a split master: $TMP/NAME-m), master.node_timeout 60 s (so only an
# explicit leave, never the timeout, can make a stopped peer's keys go).
# SPLIT=1: separate master (NAME_m) and peer (NAME_p) processes, so the peer
# can be stopped and restarted alone; 0: one all-in-one process NAME_m.
# The config is $TMP/NAME.conf; the peer's node id is NAME-peer.
cluster() {
	local name=$1 split=$2 mp pp
	shift 2
	mp=$(free_port); pp=$(free_port)
	write_conf "$TMP/$name.conf" "$mp" "$pp" "[master]" "node_timeout = 60s" \
		"[peer]" "dram_size = 8MiB" "page_size = 4KiB" "hugepages = off" "$@"
	sed -i "s#^data_dir = .*#data_dir = $TMP/$name#" "$TMP/$name.conf"
	if [ "$split" = 1 ]; then
		# one process per data_dir ({data_dir}/LOCK): the master keeps
		# master.db and the secrets in NAME-m, the peer its tier in NAME
		printf '[auth]\npeer_secret_file = %s\nclient_secret_file = %s\n' \
			"$TMP/$name-m/peer.secret" "$TMP/$name-m/client.secret" >> "$TMP/$name.conf"
		start "${name}_m" --role master --config "$TMP/$name.conf" --set "node.data_dir=$TMP/$name-m"
		wait_log "${name}_m" "kvnode ready" 15 || return 1
		peer_up "$name" p
	else
		start "${name}_m" --role master,peer --config "$TMP/$name.conf" --set "node.id=$name-peer"
		wait_log "${name}_m" "kvnode ready" 15 || return 1
		wait_until 10 client "$TMP/$name.conf" ping
	fi
}

# peer_up CLUSTER TAG: start the cluster's peer (log CLUSTER_TAG) and wait
# until it is attached.
peer_up() {
	start "$1_$2" --role peer --config "$TMP/$1.conf" --set "node.id=$1-peer"
	wait_log "$1_$2" "attached to the master" 15
}

# mkval KEY I: a value of 64 KiB..256 KiB (page-aligned or not, by I) of
# random bytes in $TMP/v/KEY.
mkval() {
	head -c $((65536 + ($2 * 7919 % 49) * 4096 + ($2 % 5) * 333)) /dev/urandom > "$TMP/v/$1"
}

# fill CONF PREFIX BYTES [BATCH]: make and put keys PREFIX0, PREFIX1, ... (8
# per command unless BATCH) until BYTES were written; the keys, oldest
# first, go to $TMP/PREFIX.keys.  PUT_FAIL counts failed put commands,
# PUT_RC is the first failure's exit status (0: none).
fill() {
	local conf=$1 pre=$2 want=$3 batch=${4:-8} i=0 total=0 args=() k
	: > "$TMP/$pre.keys"
	PUT_FAIL=0 PUT_RC=0
	while [ $total -lt "$want" ]; do
		k=$pre$i
		mkval "$k" $i
		total=$((total + $(stat -c %s "$TMP/v/$k")))
		echo "$k" >> "$TMP/$pre.keys"
		args+=("$k" "$TMP/v/$k")
		i=$((i + 1))
		if [ ${#args[@]} -ge $((2 * batch)) ] || [ $total -ge "$want" ]; then
			client "$conf" put "${args[@]}"
			local rc=$?
			if [ $rc -ne 0 ]; then
				PUT_FAIL=$((PUT_FAIL + 1))
				[ $PUT_RC -eq 0 ] && { PUT_RC=$rc; cp "$TMP/err" "$TMP/$pre.put-err"; }
			fi
			args=()
		fi
	done
}

# getcmp CONF KEY: 0 = the key's bytes came back, 1 = not found (exit 1),
# 2 = wrong bytes, 3 = another error (its exit status in GOT).
getcmp() {
	"$KVNODE" --role client --config "$1" get "$2" -o "$TMP/got" > "$TMP/out" 2> "$TMP/err"
	GOT=$?
	case $GOT in
	0) cmp -s "$TMP/got" "$TMP/v/$2" && return 0; return 2 ;;
	1) return 1 ;;
	*) return 3 ;;
	esac
}
is_gone() { getcmp "$1" "$2"; [ $? -eq 1 ]; }
is_back() { getcmp "$1" "$2"; }

# scan CONF KEYFILE: get every key; N_OK, N_NF, N_BAD, N_ERR count the
# outcomes; $TMP/scan.ok and $TMP/scan.nf list the keys read / not found.
scan() {
	local k
	N_OK=0 N_NF=0 N_BAD=0 N_ERR=0 ERR_EXAMPLE=
	: > "$TMP/scan.ok"; : > "$TMP/scan.nf"
	while read -r k; do
		getcmp "$1" "$k"
		case $? in
		0) N_OK=$((N_OK + 1)); echo "$k" >> "$TMP/scan.ok" ;;
		1) N_NF=$((N_NF + 1)); echo "$k" >> "$TMP/scan.nf" ;;
		2) N_BAD=$((N_BAD + 1)) ;;
		*) N_ERR=$((N_ERR + 1)); [ -n "$ERR_EXAMPLE" ] || ERR_EXAMPLE="$k: exit $GOT: $(head -n 1 "$TMP/err")" ;;
		esac
	done < "$2"
}

# Every key of KEYFILE in LISTFILE? (0 / 1)
all_in() { [ -z "$(sort "$1" | comm -23 - <(sort "$2"))" ]; }

# min_on_disk KEYFILE: the fewest of these values that cannot all be in an
# 8 MiB DRAM tier at once (DRAM keeps as many as fit, the smallest first).
min_on_disk() {
	local k
	while read -r k; do stat -c %s "$TMP/v/$k"; done < "$1" | sort -n |
		awk -v cap=$DRAM_B '{ s += $1; if (s <= cap) n++ } END { print NR - n }'
}

# Value files of the disk tier, {disk_dir}/{2 hex}/{keyhash}.g{gen} (gen in
# decimal or hex), not temp files
disk_files() {
	find "$1" -regextype posix-extended -type f -regex '.*/[0-9a-f]{2}/[^/.][^/]*\.g(0x)?[0-9a-f]+' \
		! -name '*tmp*' 2>/dev/null | wc -l
}
enough_files() { [ "$(disk_files "$1")" -ge "$2" ]; }

# ---- (c) evict = none: full means full, and nothing is lost ------------------
cluster n 0 "evict = none" || { ok 1 "(c) node with evict = none starts"; done_testing; }
i=0 nput=0 full_rc=0
: > "$TMP/c.keys"
while [ $i -lt 200 ]; do # 200 x >= 64 KiB is over 12 MiB: more than DRAM
	mkval "c$i" $i
	client "$TMP/n.conf" put "c$i" "$TMP/v/c$i"
	rc=$?
	if [ $rc -ne 0 ]; then full_rc=$rc; cp "$TMP/err" "$TMP/c.err"; break; fi
	echo "c$i" >> "$TMP/c.keys"
	nput=$((nput + 1)) i=$((i + 1))
done
is "$full_rc" 5 "(c) evict = none: a put fails with exit 5 (no space) once DRAM is full"
like "$(cat "$TMP/c.err" 2>/dev/null)" "room|no space" "(c) saying there is no room"
sum=$(while read -r k; do stat -c %s "$TMP/v/$k"; done < "$TMP/c.keys" | awk '{ s += $1 } END { print s + 0 }')
[ "$sum" -gt $((DRAM_B / 2)) ]
ok $? "(c) but only after more than half of dram_size was stored ($nput values, $sum bytes)"
mkval c-more 3
client "$TMP/n.conf" put c-more "$TMP/v/c-more"
is $? 5 "(c) and the next put fails too: nothing was evicted for it"
scan "$TMP/n.conf" "$TMP/c.keys"
is "$N_OK" "$nput" "(c) every value stored before reads back byte for byte"
is "$N_BAD" 0 "(c) no get returns wrong bytes"
stop n_m

# ---- (b) no disk tier, evict = lru: a pure DRAM cache ---------------------------
cluster l 0 "evict = lru" || { ok 1 "(b) node with evict = lru starts"; done_testing; }
fill "$TMP/l.conf" b $((4 * DRAM_B))
nb=$(wc -l < "$TMP/b.keys")
is "$PUT_FAIL" 0 "(b) evict = lru, no disk tier: every put of 4x dram_size ($nb values) succeeds"
[ "$PUT_FAIL" -eq 0 ] || { echo "#   first failure: exit $PUT_RC:"; head -n 3 "$TMP/b.put-err" | sed 's/^/#     /'; }
scan "$TMP/l.conf" "$TMP/b.keys"
is "$N_BAD" 0 "(b) no get returns wrong bytes"
is "$N_ERR" 0 "(b) every get answers the value or not found${ERR_EXAMPLE:+ ($ERR_EXAMPLE)}"
head -n $((nb / 4)) "$TMP/b.keys" > "$TMP/b.old"
all_in "$TMP/b.old" "$TMP/scan.nf"
ok $? "(b) the oldest quarter ($(wc -l < "$TMP/b.old") values) reads as not found (exit 1)"
# the newest values holding at most half of dram_size: below the low
# watermark however eviction rounds fell
tac "$TMP/b.keys" | while read -r k; do echo "$k $(stat -c %s "$TMP/v/$k")"; done |
	awk -v cap=$((DRAM_B / 2)) '{ s += $2; if (s > cap) exit; print $1 }' > "$TMP/b.new"
all_in "$TMP/b.new" "$TMP/scan.ok"
ok $? "(b) the newest $(wc -l < "$TMP/b.new") values read back byte for byte"
[ "$N_OK" -gt 0 ] && [ "$N_NF" -gt 0 ]
ok $? "(b) some values kept ($N_OK), some evicted ($N_NF)"

# ---- (f) TTL ------------------------------------------------------------------
mkval f1 1
client "$TMP/l.conf" put --ttl 1s f1 "$TMP/v/f1"
ok $? "(f) put --ttl 1s"
is_back "$TMP/l.conf" f1
ok $? "(f) the value reads back at once"
sleep 2.2
is_gone "$TMP/l.conf" f1
ok $? "(f) 2 s later it reads as not found (exit 1; got $GOT)"
client "$TMP/l.conf" put --ttl soon f2 "$TMP/v/f1"
is $? 2 "(f) put --ttl with a bad duration: usage error"

# ---- (g) a pin outlives an eviction storm ------------------------------------------
mkval gpin 2
client "$TMP/l.conf" put gpin "$TMP/v/gpin"
ok $? "(g) put the value to pin"
client "$TMP/l.conf" pin gpin
ok $? "(g) pin it"
fill "$TMP/l.conf" g $((10 * DRAM_B))
is "$PUT_FAIL" 0 "(g) 10x dram_size of other puts ($(wc -l < "$TMP/g.keys") values) all succeed beside the pin"
is_back "$TMP/l.conf" gpin
ok $? "(g) the pinned value still reads back byte for byte"
client "$TMP/l.conf" unpin gpin
ok $? "(g) unpin it"
fill "$TMP/l.conf" g2x $((2 * DRAM_B))
is_gone "$TMP/l.conf" gpin
ok $? "(g) unpinned, it is evicted by the next 2x dram_size (exit 1; got $GOT)"
stop l_m

# ---- (a) a disk tier: 4x dram_size, every value back ---------------------------------
cluster d 1 "disk_size = 256MiB" "flush_on_stop = on" ||
	{ ok 1 "(a) master and peer with a disk tier start"; done_testing; }
fill "$TMP/d.conf" a $((4 * DRAM_B))
na=$(wc -l < "$TMP/a.keys")
is "$PUT_FAIL" 0 "(a) with a disk tier every put of 4x dram_size ($na values) succeeds"
[ "$PUT_FAIL" -eq 0 ] || { echo "#   first failure: exit $PUT_RC:"; head -n 3 "$TMP/a.put-err" | sed 's/^/#     /'; }
need=$(min_on_disk "$TMP/a.keys")
wait_until 5 enough_files "$TMP/d/disk" "$need"
nf=$(disk_files "$TMP/d/disk")
[ "$nf" -ge "$need" ]
ok $? "(a) the disk tier holds at least the $need values DRAM cannot ($nf files)"
scan "$TMP/d.conf" "$TMP/a.keys"
is "$N_OK" "$na" "(a) every value reads back byte for byte${ERR_EXAMPLE:+ ($ERR_EXAMPLE)}"
is "$N_BAD" 0 "(a) no get returns wrong bytes"
[ -f "$TMP/d/peer.db" ]
ok $? "(a) peer.db exists at <data_dir>/peer.db"
if command -v sqlite3 > /dev/null; then
	is "$(sqlite3 "$TMP/d/peer.db" 'pragma journal_mode' 2>&1)" wal "(a) peer.db is in WAL mode"
	uv=$(sqlite3 "$TMP/d/peer.db" 'pragma user_version' 2>&1)
	[ "${uv:-0}" -ge 1 ] 2>/dev/null
	ok $? "(a) peer.db has a schema version (user_version $uv)"
	rows=0
	for t in $(sqlite3 "$TMP/d/peer.db" "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'" 2>/dev/null); do
		r=$(sqlite3 "$TMP/d/peer.db" "select count(*) from \"$t\"" 2>/dev/null)
		[ "${r:-0}" -gt "$rows" ] && rows=$r
	done
	[ "$rows" -ge "$need" ]
	ok $? "(a) sqlite3 lists peer.db rows for the values on disk ($rows rows, at least $need)"
else
	skip "sqlite3 shell not installed: peer.db not inspected"
fi

# ---- (h) evict by request ------------------------------------------------------------
hk=$(tail -n 1 "$TMP/a.keys")
client "$TMP/d.conf" pin "$hk"
ok $? "(h) pin $hk"
client "$TMP/d.conf" evict "$hk"
is $? 7 "(h) evict of a pinned value is refused (exit 7)"
like "$(cat "$TMP/err")" "pinned" "(h) saying it is pinned"
is_back "$TMP/d.conf" "$hk"
ok $? "(h) and it still reads back"
client "$TMP/d.conf" unpin "$hk"
ok $? "(h) unpin"
client "$TMP/d.conf" evict "$hk"
ok $? "(h) evict of the unpinned value succeeds"
is_back "$TMP/d.conf" "$hk"
ok $? "(h) with a disk tier it still reads back byte for byte (from disk)"
client "$TMP/d.conf" evict no-such-key
is $? 1 "(h) evict of a missing key: exit 1"

# ---- (d) kill -9 and restart: what reached disk comes back ---------------------------
head -n $((na / 4)) "$TMP/a.keys" > "$TMP/a.old"
client "$TMP/d.conf" evict $(cat "$TMP/a.old")
ok $? "(d) evict the oldest quarter ($(wc -l < "$TMP/a.old") values) to disk"
# settle: the disk writer done (the file count still for 1 s, 15 s at most)
prev=-1; nf=$(disk_files "$TMP/d/disk")
for i in $(seq 1 15); do
	[ "$nf" = "$prev" ] && break
	prev=$nf; sleep 1; nf=$(disk_files "$TMP/d/disk")
done
# a file that is not the peer's: the restart must remove it (an orphan)
mkdir -p "$TMP/d/disk/ab"
head -c 5000 /dev/urandom > "$TMP/d/disk/ab/00000000000000ab.g0000000000000007"
stop d_p KILL
is "$STATUS" 137 "(d) kill -9 the peer ($nf value files on disk)"
peer_up d p2
ok $? "(d) the peer restarts on the same data_dir and attaches"
wait_until 15 is_back "$TMP/d.conf" "$(head -n 1 "$TMP/a.old")"
scan "$TMP/d.conf" "$TMP/a.keys"
all_in "$TMP/a.old" "$TMP/scan.ok"
ok $? "(d) every evicted value reads back byte for byte${ERR_EXAMPLE:+ ($ERR_EXAMPLE)}"
[ "$N_OK" -ge "$nf" ]
ok $? "(d) as many values read back ($N_OK) as were files on disk ($nf)"
is "$N_BAD" 0 "(d) no get returns wrong bytes"
[ ! -e "$TMP/d/disk/ab/00000000000000ab.g0000000000000007" ]
ok $? "(d) the orphan file is removed"

# ---- (e) SIGTERM: leave at once, come back with the values -----------------------------
mkval e1 5
client "$TMP/d.conf" put e1 "$TMP/v/e1"
ok $? "(e) put a value that lives only in DRAM"
stop d_p2 TERM
is "$STATUS" 0 "(e) SIGTERM: the peer exits 0"
wait_until 3 is_gone "$TMP/d.conf" e1
ok $? "(e) its key answers not found within 3 s (master.node_timeout is 60 s; last exit $GOT)"
is_gone "$TMP/d.conf" "$(head -n 1 "$TMP/a.old")"
ok $? "(e) and so does a key it held on disk (exit $GOT)"
peer_up d p3
ok $? "(e) the peer restarts"
wait_until 15 is_back "$TMP/d.conf" e1
ok $? "(e) with peer.flush_on_stop the DRAM-only value came back"
scan "$TMP/d.conf" "$TMP/a.old"
is "$N_OK" "$(wc -l < "$TMP/a.old")" "(e) and the values on disk too"
stop d_p3
stop d_m
done_testing
