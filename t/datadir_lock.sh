#!/bin/bash
# t/datadir_lock.sh: one process per node.data_dir, and the files of a
# node.  The process that opens anything in a data_dir (a master, a peer
# with a disk tier) holds {data_dir}/LOCK; a second one on it exits at once
# with a clear message (the dir, the holder's pid) and changes nothing in it
# (before, a second master bumped the running one's epoch in master.db, then
# failed on its port).  A peer without a disk tier keeps nothing there and
# may share it.  A lock dies with its process, also after kill -9.
# node.pid_file: written once the lock is held, a stale one replaced,
# removed on a clean exit.  Relative paths in a config file start at the
# file's directory, wherever kvnode is started from.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port); MP2=$(free_port); PP2=$(free_port); PP3=$(free_port)
write_conf "$TMP/c.conf" "$MP" "$PP" "[node]" "pid_file = $TMP/m.pid"
start master --role master --config "$TMP/c.conf"
wait_log master "kvnode ready" 15
ok $? "the master starts"
[ -f "$TMP/var/LOCK" ] && [ ! -e "$TMP/var/master.lock" ]
ok $? "it holds {data_dir}/LOCK (no master.lock any more)"
is "$(cat "$TMP/m.pid" 2>/dev/null)" "$PID_master" "node.pid_file holds its pid"
epochs() { sqlite3 "$TMP/var/master.db" 'select count(*) || ":" || max(epoch) from epochs'; }
before=$(epochs)

start master2 --role master --config "$TMP/c.conf" --set master.listen=127.0.0.1:$MP2 \
	--set node.pid_file="$TMP/m2.pid"
wait_log master2 "is in use by another kvnode process" 10
ok $? "a second master on the same data_dir says the data_dir is in use"
stop master2 KILL
isnt_zero() { [ "$1" -ne 0 ]; }
isnt_zero "$STATUS"; ok $? "and exits non-zero (status $STATUS)"
like "$(cat "$TMP/master2.log")" "node.data_dir = '$TMP/var'" "naming the data_dir"
like "$(cat "$TMP/master2.log")" "pid $PID_master\\b" "and the running master's pid"
like "$(cat "$TMP/master2.log")" "nothing was changed" "and that nothing was changed"
is "$(epochs)" "$before" "master.db's epochs are as the running master left them"
[ ! -e "$TMP/var/peer.db" ] && [ ! -e "$TMP/m2.pid" ]
ok $? "and it created nothing else (no peer.db, no pid file)"

start peer0 --role peer --config "$TMP/c.conf" --set node.id=peer-0 --set peer.disk_size=32MiB
wait_log peer0 "is in use by another kvnode process" 10
ok $? "a peer with a disk tier on the master's data_dir is refused too (one process per data_dir)"
stop peer0 KILL
isnt_zero "$STATUS"; ok $? "and exits non-zero"
[ ! -e "$TMP/var/peer.db" ] && [ ! -e "$TMP/var/disk" ]
ok $? "without making peer.db or disk/"

# a peer with a disk tier on a data_dir of its own, with the master's secrets
# (and no pid file: the config names the master's, which a live process holds)
PSEC=(--set node.pid_file= --set auth.peer_secret_file="$TMP/var/peer.secret" --set auth.client_secret_file="$TMP/var/client.secret")
start peer --role peer --config "$TMP/c.conf" --set node.id=peer-a --set peer.disk_size=32MiB \
	--set node.data_dir="$TMP/var-p" "${PSEC[@]}"
wait_log peer "attached to the master" 15
ok $? "a peer process with a disk tier on its own data_dir starts and attaches"
start peer2 --role peer --config "$TMP/c.conf" --set node.id=peer-b --set peer.listen=127.0.0.1:$PP2 \
	--set peer.disk_size=32MiB --set node.data_dir="$TMP/var-p" "${PSEC[@]}"
wait_log peer2 "is in use by another kvnode process \\(pid $PID_peer\\)" 10
ok $? "a second peer with a disk tier on that data_dir is refused, naming the first"
stop peer2 KILL
isnt_zero "$STATUS"; ok $? "and exits non-zero"
start peer3 --role peer --config "$TMP/c.conf" --set node.pid_file= --set node.id=peer-c --set peer.listen=127.0.0.1:$PP3
wait_log peer3 "attached to the master" 15
ok $? "a peer without a disk tier keeps nothing there: it may share the master's data_dir"
C="client $TMP/c.conf"
printf 'v\n' > "$TMP/v"
wait_until 10 $C put k1 "$TMP/v"
ok $? "the running master and peers still serve"

stop master KILL
[ -f "$TMP/m.pid" ]; ok $? "kill -9 leaves the pid file behind"
start master3 --role master --config "$TMP/c.conf"
wait_log master3 "kvnode ready" 15
ok $? "after kill -9 of the master its lock is gone: a new master starts"
is "$(cat "$TMP/m.pid" 2>/dev/null)" "$PID_master3" "and replaces the stale pid file with its pid"
start peer4 --role peer --config "$TMP/c.conf" --set node.id=peer-d --set peer.listen=127.0.0.1:$PP2
wait_log peer4 "node.pid_file = '$TMP/m.pid' names a running process \\(pid $PID_master3\\)" 10
ok $? "a process given a pid file that names a live process refuses to start"
stop peer4 KILL
is "$(cat "$TMP/m.pid" 2>/dev/null)" "$PID_master3" "and leaves the file alone"
stop peer TERM
stop peer3 TERM
stop master3 TERM
is "$STATUS" 0 "and stops cleanly"
[ ! -e "$TMP/m.pid" ]; ok $? "removing its pid file"

# ---- paths relative to the config file ----------------------------------------
mkdir -p "$TMP/site/etc"
write_conf "$TMP/site/etc/kv.conf" "$(free_port)" "$(free_port)" "[node]" "data_dir = ../data" \
	"pid_file = run/kv.pid" "log = kv.log"
mkdir -p "$TMP/site/etc/run"
( cd / && exec "$KVNODE" --config "$TMP/site/etc/kv.conf" ) > "$TMP/site.log" 2>&1 &
PIDS="$PIDS $!"; PID_site=$!
wait_until 15 grep -q "kvnode ready" "$TMP/site/etc/kv.log"
ok $? "started from /, with node.log = kv.log it logs to the file next to the config"
[ -f "$TMP/site/data/master.db" ] && [ -f "$TMP/site/data/LOCK" ] && [ -f "$TMP/site/data/client.secret" ]
ok $? "data_dir = ../data is the data/ beside etc/, not /data"
is "$(cat "$TMP/site/etc/run/kv.pid" 2>/dev/null)" "$PID_site" "pid_file = run/kv.pid is etc/run/kv.pid"
[ ! -s "$TMP/site.log" ]; ok $? "nothing on stderr once the log file is open"
stop site TERM
is "$STATUS" 0 "it stops cleanly"
start badlog --config "$TMP/site/etc/kv.conf" --set node.log="$TMP/no/such/dir/kv.log"
wait_log badlog "node.log" 10
stop badlog KILL
is "$STATUS" 2 "a node.log that cannot be opened: exit 2"
like "$(cat "$TMP/badlog.log")" "node.log = '$TMP/no/such/dir/kv.log': cannot open" "naming the key and the file"
done_testing
