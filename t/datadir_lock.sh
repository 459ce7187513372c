#!/bin/bash
# t/datadir_lock.sh: one master and one peer per node.data_dir.  A second
# master on a data_dir whose master runs exits at once with a clear message
# and changes nothing in it (before, it bumped the running master's epoch in
# master.db, then failed on its port); so does a second peer.  A master and
# a peer as separate processes share one data_dir; a lock dies with its
# process, also after kill -9.
. "$(dirname "$0")/lib.sh"

MP=$(free_port); PP=$(free_port); MP2=$(free_port); PP2=$(free_port)
write_conf "$TMP/c.conf" "$MP" "$PP"
start master --role master --config "$TMP/c.conf"
wait_log master "kvnode ready" 15
ok $? "the master starts"
epochs() { sqlite3 "$TMP/var/master.db" 'select count(*) || ":" || max(epoch) from epochs'; }
before=$(epochs)

start master2 --role master --config "$TMP/c.conf" --set master.listen=127.0.0.1:$MP2
wait_log master2 "already has a running master" 10
ok $? "a second master on the same data_dir says the data_dir has a running master"
stop master2 KILL
isnt_zero() { [ "$1" -ne 0 ]; }
isnt_zero "$STATUS"; ok $? "and exits non-zero (status $STATUS)"
like "$(cat "$TMP/master2.log")" "pid $(eval echo \$PID_master)" "naming the running master's pid"
like "$(cat "$TMP/master2.log")" "nothing was changed" "and that nothing was changed"
is "$(epochs)" "$before" "master.db's epochs are as the running master left them"
[ ! -e "$TMP/var/peer.db" ]; ok $? "and it created nothing else there"

start peer --role peer --config "$TMP/c.conf" --set node.id=peer-a --set peer.disk_size=32MiB
wait_log peer "attached to the master" 15
ok $? "a peer process with a disk tier on the same data_dir as the master starts and attaches"
start peer2 --role peer --config "$TMP/c.conf" --set node.id=peer-b --set peer.listen=127.0.0.1:$PP2 \
	--set peer.disk_size=32MiB
wait_log peer2 "already has a running peer" 10
ok $? "a second peer with a disk tier on that data_dir (its peer.db, its disk/) is refused"
stop peer2 KILL
isnt_zero "$STATUS"; ok $? "and exits non-zero"
start peer3 --role peer --config "$TMP/c.conf" --set node.id=peer-c --set peer.listen=127.0.0.1:$PP2
wait_log peer3 "attached to the master" 15
ok $? "a peer without a disk tier keeps nothing there: it may share the data_dir"
C="client $TMP/c.conf"
printf 'v\n' > "$TMP/v"
wait_until 10 $C put k1 "$TMP/v"
ok $? "the running master and peer still serve"

stop master KILL
start master3 --role master --config "$TMP/c.conf"
wait_log master3 "kvnode ready" 15
ok $? "after kill -9 of the master its lock is gone: a new master starts"
stop peer TERM
stop peer3 TERM
stop master3 TERM
is "$STATUS" 0 "and stops cleanly"
done_testing
