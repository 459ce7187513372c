#!/bin/bash
# t/backup.sh: `kvnode --role master backup FILE` while the master runs
# under a put workload: the copy passes PRAGMA integrity_check and holds
# every object committed before the backup started; the refusals (FILE or
# FILE.tmp exists, no master.db, not --role master) change nothing; a
# restore (stop the master, put the copy in place of master.db, start it)
# loads exactly the copy and serves the keys put before the backup.
# Separate master and peer processes: the peer (DRAM only) keeps running
# across the master's restore, as when the master's disk is lost, so the
# values are still there to serve (docs/operations.md says what a restore
# gives back and what it cannot).
. "$(dirname "$0")/lib.sh"

command -v sqlite3 > /dev/null || { skip "sqlite3 (the shell) not installed"; done_testing; }
MP=$(free_port); PP=$(free_port)
write_conf "$TMP/c.conf" "$MP" "$PP"
DB="$TMP/var/master.db"
start master --role master --config "$TMP/c.conf"
wait_log master "kvnode ready" 15
ok $? "master starts"
start peer --role peer --config "$TMP/c.conf" --set node.id=peer-a
wait_log peer "attached to the master" 15
ok $? "peer attaches"
C="client $TMP/c.conf"
for i in $(seq 1 50); do printf 'value %s\n' "$i" > "$TMP/v$i"; done
args=""
for i in $(seq 1 50); do args="$args pre$i $TMP/v$i"; done
# shellcheck disable=SC2086
wait_until 10 $C put --durable $args
ok $? "50 durable puts before the workload"

count() { sqlite3 "file:$1?mode=ro" "SELECT count(*) FROM objects" 2>/dev/null; }
has_key() { sqlite3 "file:$1?mode=ro" "SELECT count(*) FROM objects WHERE key = CAST('$2' AS BLOB)"; }

# the workload: durable puts, one process each, until told to stop; each
# key is written to acked only after its put returned (committed)
: > "$TMP/acked"
(
	i=0
	while [ ! -e "$TMP/stop" ]; do
		i=$((i + 1))
		"$KVNODE" --role client --config "$TMP/c.conf" put --durable "w$i" "$TMP/v1" > /dev/null 2>&1 &&
			echo "w$i" >> "$TMP/acked"
	done
) &
LOADER=$!
wait_until 30 sh -c "[ \$(wc -l < '$TMP/acked') -ge 20 ]"
ok $? "the workload runs ($(wc -l < "$TMP/acked") puts acknowledged)"

# what was committed before the backup started
cp "$TMP/acked" "$TMP/acked_before"
n_before=$(count "$DB")
"$KVNODE" --role master --config "$TMP/c.conf" backup "$TMP/copy.db" > "$TMP/out" 2> "$TMP/err"
ok $? "backup while the master runs and the workload puts: $(cat "$TMP/out" "$TMP/err")"
n_after_start=$(wc -l < "$TMP/acked")
test -f "$TMP/copy.db" && ! test -e "$TMP/copy.db.tmp"
ok $? "the copy is in place, no FILE.tmp left"
is "$(stat -c %a "$TMP/copy.db")" 600 "the copy is mode 0600"
is "$(sqlite3 "file:$TMP/copy.db?mode=ro" 'PRAGMA integrity_check')" ok "the copy passes PRAGMA integrity_check"
is "$(sqlite3 "file:$TMP/copy.db?mode=ro" 'PRAGMA journal_mode')" delete \
	"the copy is one file (rollback journal, not WAL)"
n_copy=$(count "$TMP/copy.db")
[ -n "$n_before" ] && [ "${n_copy:-0}" -ge "$n_before" ]
ok $? "the copy holds at least the objects committed before the backup ($n_copy >= $n_before)"
like "$(cat "$TMP/out")" "backup: .*master\.db -> .*copy\.db: $n_copy objects, [0-9]+ pages" \
	"the command says what it copied"
missing=0
for k in $(seq 1 50 | sed 's/^/pre/') $(cat "$TMP/acked_before"); do
	[ "$(has_key "$TMP/copy.db" "$k")" = 1 ] || { missing=$((missing + 1)); echo "# missing: $k"; }
done
is "$missing" 0 "every key acknowledged before the backup started is in the copy ($((50 + $(wc -l < "$TMP/acked_before"))) keys)"
wait_until 30 sh -c "[ \$(wc -l < '$TMP/acked') -gt $n_after_start ]"
ok $? "the workload went on during and after the backup"

# refusals change nothing
sum=$(md5sum < "$TMP/copy.db")
"$KVNODE" --role master --config "$TMP/c.conf" backup "$TMP/copy.db" > "$TMP/out" 2> "$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]
ok $? "backup to an existing FILE is refused (exit $rc)"
like "$(cat "$TMP/err")" "copy\.db exists: a backup never overwrites" "and says why"
is "$(md5sum < "$TMP/copy.db")" "$sum" "the existing file is untouched"
: > "$TMP/two.db.tmp"
"$KVNODE" --role master --config "$TMP/c.conf" backup "$TMP/two.db" > "$TMP/out" 2> "$TMP/err"
[ $? -ne 0 ] && ! test -e "$TMP/two.db" && test -e "$TMP/two.db.tmp"
ok $? "FILE.tmp already there (a backup under way): refused, neither file touched"
like "$(cat "$TMP/err")" "two\.db\.tmp: File exists \(another backup" "and says why"
"$KVNODE" --role master --config "$TMP/c.conf" --set node.data_dir="$TMP/nowhere" backup "$TMP/three.db" \
	> "$TMP/out" 2> "$TMP/err"
rc=$?
[ "$rc" -ne 0 ] && ! test -e "$TMP/nowhere" && ! test -e "$TMP/three.db" && ! test -e "$TMP/three.db.tmp"
ok $? "no master.db in data_dir: refused (exit $rc), nothing created"
like "$(cat "$TMP/err")" "nowhere/master\.db: No such file" "and says which file is missing"
"$KVNODE" --role master,peer --config "$TMP/c.conf" backup "$TMP/four.db" > "$TMP/out" 2> "$TMP/err"
is $? 2 "backup with --role master,peer: usage error"
"$KVNODE" --role master --config "$TMP/c.conf" backup > "$TMP/out" 2> "$TMP/err"
is $? 2 "backup without FILE: usage error"
"$KVNODE" --role master --config "$TMP/c.conf" backup --help > "$TMP/out" 2> "$TMP/err"
ok $? "backup --help: exit 0"
like "$(cat "$TMP/out")" "^usage: kvnode --role master .*backup" "and prints its usage"

# the deadline: a copy of an 80 MiB master.db (the running one's schema
# plus a big table) cannot finish in 1 ms: it stops after its first step
# of 1024 pages, exits 4 (timeout) and leaves neither FILE nor FILE.tmp
mkdir -p "$TMP/big"
sqlite3 "file:$DB?mode=ro" ".backup '$TMP/big/master.db'"
sqlite3 "$TMP/big/master.db" "CREATE TABLE pad (b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL
	SELECT x + 1 FROM c WHERE x < 20000) INSERT INTO pad SELECT randomblob(4000) FROM c;"
"$KVNODE" --role master --config "$TMP/c.conf" --set node.data_dir="$TMP/big" backup --timeout 1ms \
	"$TMP/big.db" > "$TMP/out" 2> "$TMP/err"
rc=$?
is "$rc" 4 "backup --timeout 1ms of an 80 MiB master.db: exit 4 (timeout)"
like "$(cat "$TMP/err")" "not done before the deadline \([0-9]+ of [0-9]+ pages left\)" "and says how far it got"
! test -e "$TMP/big.db" && ! test -e "$TMP/big.db.tmp" && ! test -e "$TMP/big.db.tmp-journal"
ok $? "and leaves no FILE, FILE.tmp or journal"
"$KVNODE" --role master --config "$TMP/c.conf" --set node.data_dir="$TMP/big" backup "$TMP/big.db" \
	> "$TMP/out" 2> "$TMP/err"
ok $? "the same backup with the default deadline: $(cat "$TMP/out" "$TMP/err")"
is "$(sqlite3 "file:$TMP/big.db?mode=ro" 'SELECT count(*) FROM pad')" 20000 "the copy holds the whole table"

touch "$TMP/stop"
wait "$LOADER"

# restore, as docs/operations.md says: stop the master, move master.db and
# its -wal/-shm aside, put the copy in place, start
stop master
is "$STATUS" 0 "master stops"
mkdir "$TMP/old"
mv "$DB" "$DB-wal" "$DB-shm" "$TMP/old/" 2> /dev/null
cp "$TMP/copy.db" "$DB"
start master2 --role master --config "$TMP/c.conf"
wait_log master2 "kvnode ready" 15
ok $? "the master starts on the restored master.db"
like "$(cat "$TMP/master2.log")" "master\.db: epoch [0-9]+, [0-9]+ nodes and $n_copy objects loaded" \
	"it loaded exactly the copy's $n_copy objects"
wait_log master2 "node peer-a (attached|re-attached)" 15
ok $? "the running peer attaches to the restored master"
bad=0
for k in pre1 pre50 $(head -n 3 "$TMP/acked_before"); do
	wait_until 10 $C get "$k" || { bad=$((bad + 1)); echo "# get $k: $(cat "$TMP/err")"; }
done
is "$bad" 0 "keys put before the backup are served after the restore"
$C get pre7
is "$(cat "$TMP/out")" "value 7" "with their values"
printf 'after\n' > "$TMP/va"
$C put --durable pre7 "$TMP/va" && $C get pre7
is "$(cat "$TMP/out")" "after" "a put after the restore supersedes the old value"
is "$(sqlite3 "file:$DB?mode=ro" 'PRAGMA integrity_check')" ok "the restored master.db passes integrity_check in use"
stop master2
stop peer
done_testing
