#!/bin/bash
# t/docs.sh: every command in README.md and docs/*.md does what the docs
# say.  The commands are extracted from the docs (the lines of ```sh
# blocks, and inline `...` spans that start with kvnode, ./kvnode,
# sqlite3, make, ./bootstrap or chmod); below, each one is run as written
# (placeholders and ports substituted, loopback only) against real nodes in
# a temp dir, its exit status checked, and the SQL queries run with the
# sqlite3 shell against a real master.db (and peer.db).  The list of checks is proved
# complete: a command in the docs that no check covers, or a check whose
# command left the docs, fails the test.  Also: no file of the repository
# refers to the shared/ directory next to it (a clone does not have it).
. "$(dirname "$0")/lib.sh"

DOCS="$SRCDIR/README.md $(ls "$SRCDIR"/docs/*.md)"

# ---- the commands in the docs ------------------------------------------------
extract() {
	perl -0777 -ne '
		while (/^[ \t]*```sh\n(.*?)^[ \t]*```/msg) {
			for (split /\n/, $1) {
				next if /^\s*(#|$)/;
				s/\s+#\s.*$//;
				s/\s+$//;
				print "$_\n";
			}
		}
		s/^[ \t]*```.*?^[ \t]*```//msg;
		while (/`([^`]+)`/g) {
			my $c = $1;
			$c =~ s/\s+/ /g;
			print "$c\n" if $c =~ m{^(\./)?kvnode |^sqlite3 |^make( |$)|^\./bootstrap |^chmod };
		}
	' $DOCS | sort -u
}
extract > "$TMP/doc-commands"
ok $(( $(wc -l < "$TMP/doc-commands") < 10 )) "commands found in the docs: $(wc -l < "$TMP/doc-commands")"
: > "$TMP/covered"

# covered CMD: this check stands for the docs' command CMD
covered() { printf '%s\n' "$1" >> "$TMP/covered"; }

# ---- a work dir laid out like the top of the repository ------------------------
W=$TMP/w
mkdir -p "$W/etc" "$W/bin"
ln -s "$KVNODE" "$W/kvnode"
ln -s "$KVNODE" "$W/bin/kvnode"
export PATH="$W/bin:$PATH"
# Ports below the ephemeral range: the many connections of the tests that
# run beside this one can never hold them as their local ends.
EPH=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port() {
	local p
	for _ in $(seq 1 50); do
		p=$(free_port)
		[ "$p" -lt "$EPH" ] && { echo "$p"; return; }
	done
	echo "$p"
}
MP=$(port); PP=$(port)
# the shipped config, on free loopback ports and with a small arena
# (its HTTP endpoints too, each call on ports of its own)
shipped_conf() { # shipped_conf FILE MASTER_PORT PEER_PORT
	sed -e "s/127\.0\.0\.1:7400/127.0.0.1:$2/g" -e "s/127\.0\.0\.1:7401/127.0.0.1:$3/g" \
		-e "s/127\.0\.0\.1:7480/127.0.0.1:$(port)/g" -e "s/127\.0\.0\.1:7481/127.0.0.1:$(port)/g" \
		-e 's/^dram_size = .*/dram_size = 64MiB/' -e 's/^hugepages = .*/hugepages = off/' \
		"$SRCDIR/etc/kvnode.conf" > "$1"
}
shipped_conf "$W/etc/kvnode.conf" "$MP" "$PP"
grep -q "127.0.0.1:$MP" "$W/etc/kvnode.conf"
ok $? "the shipped etc/kvnode.conf, on free ports"
# ... with a disk tier, so the docs' peer.db queries and evict (which
# offloads to it) run against a real one
sed -i 's/^disk_size = .*/disk_size = 64MiB/' "$W/etc/kvnode.conf"
grep -q '^disk_size = 64MiB$' "$W/etc/kvnode.conf"
ok $? "  and a 64 MiB disk tier"

# doc_run WANT CMD [AS]: run CMD (or AS, CMD with its placeholders filled
# in) in DIR (default $W); its exit status must be WANT
doc_run() {
	local want=$1 cmd=$2 as=${3:-$2}
	covered "$cmd"
	(cd "${DIR:-$W}" && eval "$as") > "$TMP/out" 2> "$TMP/err"
	local st=$?
	is "$st" "$want" "docs: '$cmd' exits $want"
	[ "$st" = "$want" ] || sed 's/^/#   /' "$TMP/err" | head -5
}

# doc_sql CMD: a sqlite3 command: exit 0, nothing on stderr
doc_sql() {
	doc_run 0 "$1"
	[ ! -s "$TMP/err" ]
	ok $? "  and sqlite3 reported no error"
}

# doc_server NAME CMD [AS]: start a node as the docs say (in DIR), wait for
# "kvnode ready" (READY=pattern: another line, e.g. a peer's attach)
doc_server() {
	local name=$1 cmd=$2 as=${3:-$2} ready=${READY:-kvnode ready}
	covered "$cmd"
	(cd "${DIR:-$W}" && eval "exec $as") > "$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS="$PIDS $pid"
	eval "PID_$name=$pid"
	wait_log "$name" "$ready" 20
	ok $? "docs: '$cmd' starts a node"
}

# doc_stop NAME: SIGTERM stops it with status 0 (docs/operations.md)
doc_stop() {
	stop "$1" TERM
	is "$STATUS" 0 "  SIGTERM stops it with status 0"
}

# doc_not_run CMD WHY: covered on purpose without running it
doc_not_run() {
	covered "$1"
	ok 0 "docs: '$1' not run here: $2"
}

# ---- the all-in-one node and the client commands --------------------------------
doc_server aio "./kvnode --role master,peer --config etc/kvnode.conf"
covered 'kvnode ready: ...'
like "$(cat "$TMP/aio.log")" "kvnode ready: " "docs: the node logs 'kvnode ready: ...'"
is "$(stat -c %a "$W/var/client.secret")" 600 "the first start made var/client.secret, mode 0600 (README)"
wait_until 15 sh -c "cd '$W' && ./kvnode --role client ping > /dev/null 2>&1"

head -c 100000 /dev/urandom > "$W/some.bin"
doc_run 0 "./kvnode --role client ping"
like "$(cat "$TMP/out")" "1 peer\\(s\\) attached" "  and sees the peer"
doc_run 0 "./kvnode --role client put k1 ./some.bin"
doc_run 0 "./kvnode --role client get k1 -o copy.bin"
cmp -s "$W/some.bin" "$W/copy.bin"
ok $? "  copy.bin holds what was put"
doc_run 0 "./kvnode --role client exists k1"
(cd "$W" && ./kvnode --role client exists nope) > /dev/null 2>&1
is $? 1 "  exists exits 1 for a key that does not exist, as the comment says"
echo "value" | (cd "$W" && ./kvnode --role client put k2 - > /dev/null 2>&1)
is $? 0 "  put with - reads stdin, as the comment says"
doc_run 0 "./kvnode --role client stat"
like "$(cat "$TMP/out")" "objects: 2" "  and counts the objects"
like "$(cat "$TMP/out")" "^ops: [1-9][0-9]* " "  with the master's ops, as the comment says"
like "$(cat "$TMP/out")" "^hit ratio: [0-9.]+% " "  and its hit ratio (the get and exists above looked keys up)"
doc_run 0 "./kvnode --role client stat --json"
"$BUILDDIR/t/json_get" objects < "$TMP/out" > "$TMP/objs"
is "$? $(cat "$TMP/objs")" "0 2" "  one JSON object (t/json_get parses it) counting the objects"

# the HTTP endpoints (README.md, docs/monitoring.md), on the ports
# shipped_conf gave master.http and peer.http
http_port() { # http_port master|peer: that section's http port in the config
	awk -v s="[$1]" '$0 == s { in_s = 1; next } /^\[/ { in_s = 0 }
		in_s && /^http = / { sub(/.*:/, ""); print; exit }' "$W/etc/kvnode.conf"
}
MH=$(http_port master); PH=$(http_port peer)
doc_run 0 "curl -s localhost:7480/metrics" "curl -sf 127.0.0.1:$MH/metrics"
# a get through the master counts as GET; over the same-host path (the
# default on the peer's host) the master only routes it: ROUTE_GET
like "$(cat "$TMP/out")" "kvnode_requests_total\{role=\"master\",op=\"(ROUTE_)?GET\",result=\"ok\"\} [1-9]" \
	"  the master's metrics count the gets above"
doc_run 0 "curl -s localhost:7480/health" "curl -sf 127.0.0.1:$MH/health"
is "$(cat "$TMP/out")" ok "  the master is healthy"
doc_run 0 "curl -s localhost:7481/health" "curl -sf 127.0.0.1:$PH/health"
is "$(cat "$TMP/out")" ok "  the peer is healthy"
doc_run 0 "curl -s localhost:7480/status.json" "curl -sf 127.0.0.1:$MH/status.json"
like "$(cat "$TMP/out")" '"nodes":\[\{"id":' "  the node table, as JSON"

# the SQL, against this node's master.db and peer.db while it runs
while IFS= read -r q; do
	doc_sql "$q"
done < <(grep '^sqlite3 ' "$TMP/doc-commands" | grep -v ' /srv/backup/')
# the master commits what its peers report to master.db in the background: a
# loaded machine may show the put a moment after the client heard back
wait_until 10 sh -c "cd '$W' && sqlite3 var/master.db 'select * from v_objects' | grep -q '^k1|'"
like "$(cd "$W" && sqlite3 var/master.db 'select * from v_objects order by commit_seq desc limit 20')" \
	"k1" "  the objects query lists the key put"

# install and backup (docs/operations.md): the config check, and a backup of
# this running node's master.db, checked as the docs show
doc_run 0 "kvnode --config /etc/kvnode/kvnode.conf --check" "kvnode --config etc/kvnode.conf --check"
doc_run 0 "kvnode --check"
like "$(cat "$TMP/out")" "configuration OK: etc/kvnode.conf" "  it checks etc/kvnode.conf when there"
doc_run 0 'kvnode --role master --config /etc/kvnode/kvnode.conf backup /srv/backup/master-$(date +%F-%H%M).db' \
	'kvnode --role master --config etc/kvnode.conf backup master-$(date +%F-%H%M).db'
like "$(cat "$TMP/out")" "^backup: /.*/var/master\.db -> master-[0-9-]+\.db: [0-9]+ objects" "  and says what it copied"
doc_run 0 "sqlite3 /srv/backup/master-...db 'PRAGMA integrity_check'" "sqlite3 master-*.db 'PRAGMA integrity_check'"
is "$(cat "$TMP/out")" ok "  the copy: ok, as the comment says"
doc_not_run "./configure --prefix=/usr --sysconfdir=/etc && make && sudo make install" \
	"installs into the system; t/install.sh checks a DESTDIR install"
doc_not_run "sudoedit /etc/kvnode/kvnode.conf" "an editor"
for u in "enable --now kvnode-master.service" "enable --now kvnode-peer.service" "reload kvnode-master.service"; do
	doc_not_run "sudo systemctl $u" "systemd units: t/install.sh runs systemd-analyze verify on them"
done
doc_not_run "kvnode --role master|peer --config {sysconfdir}/kvnode/kvnode.conf" \
	"the units' ExecStart: t/install.sh checks it"

doc_run 0 "./kvnode --role client rm k1"
doc_run 0 "./kvnode --role client put --ttl 1h k3 ./some.bin"
(cd "$W" && ./kvnode --role client exists k3) > /dev/null 2>&1
is $? 0 "  put --ttl stored it"
doc_run 0 "./kvnode --role client pin --ttl 10m k3"
(cd "$W" && ./kvnode --role client evict k3) > /dev/null 2> "$TMP/err"
is $? 7 "  evict of a pinned value exits 7"
like "$(cat "$TMP/err")" "value is pinned or leased" "  saying it is pinned or leased, as the comment says"
doc_run 0 "./kvnode --role client unpin k3"
doc_run 0 "./kvnode --role client evict k3"
(cd "$W" && ./kvnode --role client get k3 -o k3.bin) > /dev/null 2>&1
is $? 0 "  an evicted value is read back from the disk tier"
cmp -s "$W/some.bin" "$W/k3.bin"
ok $? "  byte for byte"
like "$(cd "$W" && sqlite3 var/peer.db 'select * from v_disk')" "k3" "  and peer.db's v_disk lists it"
(cd "$W" && ./kvnode --role client exists k1) > /dev/null 2>&1
is $? 1 "  rm removed it"
# the consumer queue (docs/operations.md, "Client commands")
doc_run 0 "./kvnode --role client put --queue img/000042 ./some.bin"
doc_run 0 "./kvnode --role client lease --partition 0/1 --max 8 --ttl 1m"
like "$(cat "$TMP/out")" "^lease=[1-9][0-9]* key=img/000042 gen=[1-9][0-9]* node=[^ ]+ size=100000$" \
	"  one line: lease=ID key=KEY gen=GEN node=NODE size=BYTES"
QID=$(sed -n 's/^lease=\([0-9]*\) .*/\1/p' "$TMP/out"); QGEN=$(sed -n 's/.* gen=\([0-9]*\) .*/\1/p' "$TMP/out")
doc_run 0 "./kvnode --role client get --ref img/000042@GEN -o sample.bin" \
	"./kvnode --role client get --ref img/000042@$QGEN -o sample.bin"
cmp -s "$W/some.bin" "$W/sample.bin"
ok $? "  sample.bin holds the sample"
doc_run 0 "./kvnode --role client release LEASE_ID" "./kvnode --role client release $QID"
(cd "$W" && ./kvnode --role client exists img/000042) > /dev/null 2>&1
is $? 1 "  released: consumed, the value is deleted, as the comment says"
doc_run 0 "./kvnode --role client bench --op get --size 1MiB --count 2000 --clients 4" \
	"./kvnode --role client bench --op get --size 1MiB --count 40 --clients 4"
doc_run 0 "kvnode --role client bench --op tag --size S" "kvnode --role client bench --op tag --size 64KiB --count 100"
doc_run 0 "kvnode bench" "kvnode --role client bench --help" # a name for the command above
doc_run 2 "kvnode --role client"                                # the role, with no command: usage

# the C library as README.md shows it: installed into a private DESTDIR
# (t/install.sh checks the tree), README's program built with its pkg-config
# line (PKG_CONFIG_SYSROOT_DIR puts the DESTDIR before every -I and -L) and
# run in this directory against this node
DEST=$TMP/dest
doc_run 0 "make install" "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C '$BUILDDIR' install DESTDIR='$DEST'"
LIBDIR=$(PKG_CONFIG_PATH="$BUILDDIR" pkg-config --variable=libdir kvnode)
perl -0777 -ne 'print $1 if /^```c\n(.*?)^```/ms' "$SRCDIR/README.md" > "$W/app.c"
doc_run 0 'cc -o app app.c $(pkg-config --cflags --libs kvnode)' \
	"export PKG_CONFIG_PATH='$DEST$LIBDIR/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$DEST'; cc ${KVN_SAN_CFLAGS:-} -o app app.c \$(pkg-config --cflags --libs kvnode)"
(cd "$W" && LD_LIBRARY_PATH="$DEST$LIBDIR" ./app) > "$TMP/out" 2> "$TMP/err"
is "$(cat "$TMP/out")" hello "  README's program puts and gets 'hello' through the installed library"

# the consumer queue as docs/queue.md shows it: producers, a consumer's
# round from the shell, and its C consumer loop built against the installed
# library (the queue is empty here: docs/operations.md's round consumed its sample)
doc_run 0 "./kvnode --role client put --queue sample/0 ./some.bin"
doc_run 0 "./kvnode --role client put --queue --retain sample/1 ./some.bin"
(cd "$W" && ./kvnode --role client put --queue sample/2 ./some.bin) > /dev/null 2>&1
is $? 0 "  and a third sample"
doc_run 0 "./kvnode --role client lease --partition 0/1 --max 10 --ttl 30s"
is "$(grep -c '^lease=[1-9][0-9]* key=sample/[012] gen=[1-9][0-9]* node=[^ ]* size=100000$' "$TMP/out")" 3 \
	"  one line per ref: lease=<id> key=<key> gen=<gen> node=<node> size=<bytes>"
is "$(sed -n 's/.* key=\([^ ]*\) .*/\1/p' "$TMP/out" | tr '\n' ' ')" "sample/0 sample/1 sample/2 " "  oldest commit first"
qid() { sed -n "s/^lease=\([0-9]*\) key=sample\/$1 .*/\1/p" "$TMP/lease"; }
cp "$TMP/out" "$TMP/lease"
QGEN0=$(sed -n 's/.* key=sample\/0 gen=\([0-9]*\) .*/\1/p' "$TMP/lease")
doc_run 0 "./kvnode --role client get --ref sample/0@GEN -o sample.bin" \
	"./kvnode --role client get --ref sample/0@$QGEN0 -o sample.bin"
cmp -s "$W/some.bin" "$W/sample.bin"
ok $? "  sample.bin holds the sample"
doc_run 0 "./kvnode --role client renew LEASE_ID --ttl 1m" "./kvnode --role client renew $(qid 0) --ttl 1m"
like "$(cat "$TMP/out")" "^lease=$(qid 0) deadline=" "  renew prints the new deadline"
doc_run 0 "./kvnode --role client release LEASE_ID" "./kvnode --role client release $(qid 0)"
(cd "$W" && ./kvnode --role client exists sample/0) > /dev/null 2>&1
is $? 1 "  consumed: deleted, as the comment says"
(cd "$W" && ./kvnode --role client release "$(qid 0)") > /dev/null 2>&1
is $? 7 "  a second release of the lease exits 7 (KVN_ESTATE), as docs/queue.md says"
doc_run 0 "./kvnode --role client release --retain LEASE_ID" "./kvnode --role client release --retain $(qid 2)"
(cd "$W" && ./kvnode --role client exists sample/2) > /dev/null 2>&1
is $? 0 "  released with --retain: the value is kept"
doc_run 0 "./kvnode --role client release --return LEASE_ID" "./kvnode --role client release --return $(qid 1)"
(cd "$W" && ./kvnode --role client lease --partition 0/1 --max 10) > "$TMP/out" 2>&1
like "$(cat "$TMP/out")" "^lease=[0-9]* key=sample/1 " "  returned: the next lease hands it out again (and only it)"
is "$(wc -l < "$TMP/out")" 1 "  one sample waiting"
(cd "$W" && ./kvnode --role client release "$(sed -n 's/^lease=\([0-9]*\) .*/\1/p' "$TMP/out")") > /dev/null 2>&1
is $? 0 "  released"
(cd "$W" && ./kvnode --role client exists sample/1) > /dev/null 2>&1
is $? 0 "  put with --retain: kept when consumed"
perl -0777 -ne 'print $1 if /^```c\n(#include.*?int main.*?)^```/ms' "$SRCDIR/docs/queue.md" > "$W/consumer.c"
(cd "$W" && eval "cc ${KVN_SAN_CFLAGS:-} -o consumer consumer.c \$(PKG_CONFIG_PATH='$DEST$LIBDIR/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$DEST' pkg-config --cflags --libs kvnode)") > "$TMP/out" 2>&1
ok $? "docs/queue.md's consumer loop builds against the installed library"
for i in 0 1 2; do
	(cd "$W" && ./kvnode --role client put --queue c/$i ./some.bin) > /dev/null 2>&1
done
(cd "$W" && LD_LIBRARY_PATH="$DEST$LIBDIR" timeout 30 ./consumer 0 1) > "$TMP/out" 2> "$TMP/err"
is $? 0 "  and runs: partition 0 of 1 until the queue stays empty"
is "$(tr '\n' ' ' < "$TMP/out")" "c/0 100000 c/1 100000 c/2 100000 " "  it consumed the three samples, in commit order"
(cd "$W" && ./kvnode --role client exists c/0) > /dev/null 2>&1
is $? 1 "  and released them: deleted"
doc_run 0 "kvnode bench --op queue" "kvnode --role client bench --op queue --size 1KiB --count 50 --clients 2 --batch 8"
like "$(cat "$TMP/out")" "samples/s end to end" "  bench --op queue reports samples/s"
# the RESP gateway in front of it (docs/operations.md; t/resp.sh tests it)
RP=$(free_port)
READY="gateway ready" doc_server resp "kvnode --role resp --config FILE" \
	"kvnode --role resp --config etc/kvnode.conf --set resp.listen=127.0.0.1:$RP"
doc_run 0 "kvnode keygen --resp-token CLIENT_SECRET_FILE" "kvnode keygen --resp-token var/client.secret"
like "$(cat "$TMP/out")" '^[0-9a-f]{64}$' "  it prints the gateway's AUTH token"
# docs/clients.md: the same gateway (started above as written there, with
# resp.listen moved off 6380), its token, redis-cli and redis-benchmark
covered "kvnode --role resp --config etc/kvnode.conf"
doc_run 0 'TOKEN=$(kvnode keygen --resp-token var/client.secret)'
TOKEN=$(cd "$W" && kvnode keygen --resp-token var/client.secret)
if command -v redis-cli > /dev/null && command -v redis-benchmark > /dev/null; then
	doc_run 0 'redis-cli -p 6380 -a "$TOKEN" --no-auth-warning set greeting hello' \
		"redis-cli -p $RP -a '$TOKEN' --no-auth-warning set greeting hello"
	is "$(cat "$TMP/out")" OK "  the gateway answers OK"
	doc_run 0 'redis-cli -p 6380 -a "$TOKEN" --no-auth-warning get greeting' \
		"redis-cli -p $RP -a '$TOKEN' --no-auth-warning get greeting"
	is "$(cat "$TMP/out")" hello "  and reads the value back"
	doc_run 0 'redis-benchmark -p 6380 -a "$TOKEN" -t set,get -d 4096 -P 16 -n 20000 -q' \
		"timeout 120 redis-benchmark -p $RP -a '$TOKEN' -t set,get -d 4096 -P 16 -n 20000 -q"
	is "$(tr '\r' '\n' < "$TMP/out" | grep -cE '^(SET|GET): [0-9.]+ requests per second')" 2 "  it reports SET and GET throughput"
else
	for c in 'redis-cli -p 6380 -a "$TOKEN" --no-auth-warning set greeting hello' \
		'redis-cli -p 6380 -a "$TOKEN" --no-auth-warning get greeting' \
		'redis-benchmark -p 6380 -a "$TOKEN" -t set,get -d 4096 -P 16 -n 20000 -q'; do
		doc_not_run "$c" "redis-tools is not installed"
	done
	(cd "$W" && ./kvnode --role client put greeting - <<< hello) > /dev/null 2>&1
fi
# docs/clients.md's C program lists keys by prefix through the installed library
perl -0777 -ne 'print $1 if /^```c\n(.*?)^```/ms' "$SRCDIR/docs/clients.md" > "$W/ls.c"
(cd "$W" && eval "cc ${KVN_SAN_CFLAGS:-} -o ls ls.c \$(PKG_CONFIG_PATH='$DEST$LIBDIR/pkgconfig' PKG_CONFIG_SYSROOT_DIR='$DEST' pkg-config --cflags --libs kvnode)") > "$TMP/out" 2>&1
ok $? "docs/clients.md's kvn_list program builds against the installed library"
(cd "$W" && LD_LIBRARY_PATH="$DEST$LIBDIR" timeout 30 ./ls greet) > "$TMP/out" 2> "$TMP/err"
is $? 0 "  and runs"
like "$(cat "$TMP/out")" "^greeting [0-9]+$" "  it lists the key put through the gateway"
doc_run 0 "kvnode --role client ls --prefix P" "./kvnode --role client ls --prefix greet"
is "$(cat "$TMP/out")" greeting "  the CLI lists the same"
doc_stop resp
doc_stop aio

# the same node, as README.md and docs/architecture.md spell it
doc_server aio2 "kvnode --role master,peer --config etc/kvnode.conf"
doc_stop aio2
doc_server aio3 "kvnode --role master,peer"
doc_stop aio3

# ---- secrets (docs/operations.md) -----------------------------------------------
doc_run 0 "kvnode keygen FILE" "kvnode keygen k.secret"
doc_run 0 "kvnode keygen --rotate FILE" "kvnode keygen --rotate k.secret"
is "$(grep -c '^[0-9a-f]\{64\}$' "$W/k.secret")" 2 "  the file holds two secrets"
chmod 644 "$W/k.secret"
doc_run 0 "chmod 600 FILE" "chmod 600 k.secret"
is "$(stat -c %a "$W/k.secret")" 600 "  mode 600"

# ---- exit codes (docs/operations.md): a refused secret file is 3 ----------------
cli() { (cd "$W" && ./kvnode --role client "$@") > "$TMP/out" 2> "$TMP/err"; }
cli --set auth.client_secret_file="$W/missing.secret" ping
is $? 3 "a missing secret file exits 3"
like "$(cat "$TMP/err")" "no connection attempted" "  and does not claim a connection failed"
like "$(cat "$TMP/err")" "missing.secret: cannot open" "  naming the file and why"
: > "$W/empty.secret"; chmod 600 "$W/empty.secret"
cli --set auth.client_secret_file="$W/empty.secret" ping
is $? 3 "an empty secret file exits 3"
cp "$W/k.secret" "$W/open.secret"; chmod 644 "$W/open.secret"
cli --set auth.client_secret_file="$W/open.secret" ping
is $? 3 "a group-readable secret file exits 3"
chmod 000 "$W/open.secret"
if [ "$(id -u)" != 0 ]; then
	cli --set auth.client_secret_file="$W/open.secret" ping
	is $? 3 "an unreadable secret file exits 3"
else
	skip "root reads any file"
fi
cli --set auth.client_secret_file="$W" ping
is $? 3 "a directory as the secret file exits 3"
# the table in docs/operations.md says so, and src/base/err.c agrees
grep -q '^| 3 | authentication failed, or a secret file refused |$' "$SRCDIR/docs/operations.md"
ok $? "docs/operations.md: 3 is 'authentication failed, or a secret file refused'"

# ---- a cluster, as docs/operations.md spells it ----------------------------------
O=$TMP/ops
mkdir -p "$O"
ln -s "$KVNODE" "$O/kvnode"
OMP=$(port); OPP=$(port)
write_conf "$O/master.conf" "$OMP" "$OPP" "[node]" "data_dir = $O/var-m"
write_conf "$O/peer.conf" "$OMP" "$OPP" "[node]" "data_dir = $O/var-p" "[auth]" \
	"peer_secret_file = $O/var-m/peer.secret" "client_secret_file = $O/var-m/client.secret"
DIR=$O doc_server om "./kvnode --role master --config master.conf"
READY="^[^ ]+ INFO  \[[a-z]+\] attached to the master" DIR=$O doc_server op "./kvnode --role peer --config peer.conf"
covered 'kvnode started: ...; not attached to the master at ... yet'
like "$(cat "$TMP/op.log")" "kvnode started: .*; not attached to the master at .* yet" \
	"docs: a peer of a remote master logs 'kvnode started: ...; not attached ... yet' first"
wait_until 15 sh -c "'$KVNODE' --role client --config '$O/master.conf' ping | grep -q '1 peer'"
ok $? "  the peer attaches to the master"
doc_stop op
doc_stop om

# ---- a cluster on several hosts, as README.md spells it -------------------------
# t/cluster_netns.sh runs it as written across network namespaces (as root);
# it reads the commands from the README as this test does and names them here
n=0
while IFS= read -r cmd; do
	doc_not_run "$cmd" "run across network namespaces by t/cluster_netns.sh"
	n=$((n + 1))
done < <(bash "$SRCDIR/t/cluster_netns.sh" --commands)
ok $((n < 8)) "t/cluster_netns.sh runs the README's cluster commands ($n)"

# ---- build commands: not run inside make check; the targets exist ----------------
make -n -C "$BUILDDIR" regen-config > /dev/null 2>&1
ok $? "docs: 'make regen-config' is a target"
covered "make regen-config"
doc_run 0 "kvnode --print-config example|markdown" \
	"kvnode --print-config example > /dev/null && kvnode --print-config markdown > /dev/null"
doc_not_run "make" "the build itself"
doc_not_run "make check" "the suite this test is part of"
for tgt in check-long distcheck fuzz fuzz-short; do
	make -n -C "$BUILDDIR" $tgt > /dev/null 2>&1
	ok $? "docs: 'make $tgt' is a target"
	doc_not_run "make $tgt" "long runs and fuzzing: check-long and CI run them"
done
for w in run test; do
	grep -q "^$w)" "$SRCDIR/bootstrap"
	ok $? "bootstrap has the '$w' command"
	doc_not_run "./bootstrap $w" "installs packages and builds"
done

# ---- every command in the docs is covered, and every check is still in the docs ---
sort -u "$TMP/covered" > "$TMP/covered.s"
missing=$(comm -23 "$TMP/doc-commands" "$TMP/covered.s")
stale=$(comm -13 "$TMP/doc-commands" "$TMP/covered.s")
is "$missing" "" "every command in the docs is checked here"
is "$stale" "" "every command checked here is still in the docs"

# ---- no reference to the shared/ directory beside the repository ----------------
PAT='[.][.]/shared'
refs=$(cd "$SRCDIR" && grep -rlI --exclude-dir=.git --exclude='*.log' --exclude='*.trs' "$PAT" . 2>/dev/null)
is "$refs" "" "no file of the repository refers to the shared/ directory beside it"
[ -f "$SRCDIR/docs/design.md" ]
ok $? "the design is in docs/design.md"
# "DESIGN.md section N" in comments means docs/design.md section N: it must exist
bad=""
for n in $(cd "$SRCDIR" && grep -rhoI --exclude-dir=.git -E 'DESIGN\.md sections? [0-9]+( and [0-9]+)?' . |
	grep -oE '[0-9]+' | sort -un); do
	grep -q "^## $n\. " "$SRCDIR/docs/design.md" || bad="$bad $n"
done
is "$bad" "" "every 'DESIGN.md section N' cited has a section N in docs/design.md"

done_testing
