/*
 * meta: the master's SQLite metadata store (DESIGN.md section 6).  Owns the
 * statement table (one prepared statement per operation), the error and
 * statement helpers, input checks, and the operations themselves:
 * transactions, epochs, nodes, objects and the loads.  Opening, migrations
 * and views are in meta_open.c.  One owner thread, so no locking here.
 */
#include "config.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"
#include "store/meta_int.h"

/* One line each, so a logged statement stays on one log line.  Values are
 * always bound, never formatted in, so the log shows no data. */
const char *const meta_st_sql[ST__COUNT] = {
	/* IMMEDIATE takes the write lock up front: a deferred transaction that
	 * read first could fail with SQLITE_BUSY_SNAPSHOT, without retry, if an
	 * operator's connection wrote in between. */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT meta_op",
	[ST_RELEASE] = "RELEASE meta_op",
	[ST_ROLLBACK_TO] = "ROLLBACK TO meta_op",
	[ST_USER_VERSION] = "PRAGMA user_version",
	[ST_EPOCH_NEXT] = "INSERT INTO epochs (epoch, started_ms) "
			  "SELECT coalesce(max(epoch), 0) + 1, ?1 FROM epochs RETURNING epoch",
	[ST_EPOCH_RAISE] = "INSERT INTO epochs (epoch, started_ms) "
			   "SELECT ?1, ?2 WHERE ?1 > (SELECT coalesce(max(epoch), 0) FROM epochs)",
	[ST_NODE_UPSERT] =
		"INSERT INTO nodes (node_id, role, addr, dram_total, dram_used, disk_total, "
		"disk_used, last_seq, last_seen_ms, state) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
		"ON CONFLICT (node_id) DO UPDATE SET role = excluded.role, addr = excluded.addr, "
		"dram_total = excluded.dram_total, dram_used = excluded.dram_used, "
		"disk_total = excluded.disk_total, disk_used = excluded.disk_used, "
		"last_seq = excluded.last_seq, last_seen_ms = excluded.last_seen_ms, "
		"state = excluded.state",
	[ST_NODE_SET_STATE] = "UPDATE nodes SET state = ?2 WHERE node_id = ?1",
	[ST_NODE_LOAD] = "SELECT node_id, role, addr, dram_total, dram_used, disk_total, "
			 "disk_used, last_seq, last_seen_ms, state FROM nodes ORDER BY node_id",
	/* A put is one lookup of the key's newest row, then one write in the
	 * common cases (put_row): no SAVEPOINT, and a plain INSERT, which
	 * costs SQLite about half of an INSERT ... ON CONFLICT DO UPDATE. */
	[ST_OBJ_TOP] = "SELECT gen FROM objects WHERE key = ?1 ORDER BY gen DESC LIMIT 1",
	[ST_OBJ_INSERT] = "INSERT INTO objects (key, gen, node_id, tier, size, state, committed_ms, qflags, "
			  "part_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* An update in place keeps commit_seq (commit order) and committed_ms:
	 * a tier move or a full sync does not make an object newer. */
	[ST_OBJ_UPDATE] = "UPDATE objects SET node_id = ?3, tier = ?4, size = ?5, state = ?6 "
			  "WHERE key = ?1 AND gen = ?2",
	[ST_OBJ_DEL_OLDER] = "DELETE FROM objects WHERE key = ?1 AND gen < ?2",
	[ST_OBJ_DEL] = "DELETE FROM objects WHERE key = ?1 AND gen = ?2",
	[ST_OBJ_SET_STATE] = "UPDATE objects SET state = ?2 WHERE node_id = ?1 AND state <> ?2",
	[ST_OBJ_LOAD] = "SELECT key, gen, node_id, tier, size, state, commit_seq, qflags FROM objects "
			"ORDER BY commit_seq",
	[ST_OBJ_COUNT] = "SELECT count(*) FROM objects WHERE state = 'live'",
	[ST_SYNC_CLEAR] = "DELETE FROM temp.meta_sync",
	[ST_SYNC_ADD] = "INSERT OR IGNORE INTO temp.meta_sync (key, gen) VALUES (?1, ?2)",
	/* a queue sample the node no longer holds is lost, not gone: it
	 * stays counted (v_queue) and comes back if the node does */
	[ST_SYNC_DROP_MISSING] = "DELETE FROM objects WHERE node_id = ?1 AND NOT (qflags & 1) AND NOT EXISTS "
				 "(SELECT 1 FROM temp.meta_sync s "
				 "WHERE s.key = objects.key AND s.gen = objects.gen)",
	[ST_SYNC_LOSE_QUEUE] = "UPDATE objects SET state = 'lost' WHERE node_id = ?1 AND qflags & 1 "
			       "AND state <> 'lost' AND NOT EXISTS (SELECT 1 FROM temp.meta_sync s "
			       "WHERE s.key = objects.key AND s.gen = objects.gen)",
	/* ---- the consumer queue (meta_queue.c) ---- */
	/* only a sample that is durably in the pool on a live node: the
	 * master never hands out a lease master.db could not record */
	[ST_LEASE_PUT] = "INSERT INTO leases (lease_id, key, gen, holder, part_i, part_n, deadline_ms) "
			 "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM objects "
			 "WHERE key = ?2 AND gen = ?3 AND qflags & 1 AND state = 'live') "
			 "ON CONFLICT (key, gen) DO UPDATE SET lease_id = excluded.lease_id, "
			 "holder = excluded.holder, part_i = excluded.part_i, part_n = excluded.part_n, "
			 "deadline_ms = excluded.deadline_ms",
	[ST_LEASE_RENEW] = "UPDATE leases SET deadline_ms = ?2 WHERE lease_id = ?1",
	[ST_LEASE_DEL] = "DELETE FROM leases WHERE lease_id = ?1",
	[ST_OBJ_CONSUME] = "UPDATE objects SET qflags = 4 | (qflags & 2) WHERE key = ?1 AND gen = ?2",
	[ST_QUEUE_COUNT] = "INSERT INTO queue_consumed (part_n, part_i, consumed) SELECT part_n, "
			   "CASE WHEN ?1 >= 0 THEN ?1 % part_n ELSE ((?1 & 9223372036854775807) % part_n "
			   "+ (9223372036854775807 % part_n + 1) % part_n) % part_n END, 1 "
			   "FROM queue_parts WHERE true "
			   "ON CONFLICT (part_n, part_i) DO UPDATE SET consumed = consumed + 1",
	[ST_QPART_TOUCH] = "INSERT INTO queue_parts (part_n, first_ms, last_ms) VALUES (?1, ?2, ?2) "
			   "ON CONFLICT (part_n) DO UPDATE SET last_ms = excluded.last_ms",
	[ST_QPART_TRIM] = "DELETE FROM queue_parts WHERE part_n NOT IN "
			  "(SELECT part_n FROM queue_parts ORDER BY last_ms DESC LIMIT 8)",
	[ST_QCONSUMED_TRIM] = "DELETE FROM queue_consumed WHERE part_n NOT IN (SELECT part_n FROM queue_parts)",
	[ST_QPART_LOAD] = "SELECT part_n FROM queue_parts ORDER BY last_ms DESC LIMIT 8",
	[ST_LEASE_LOAD] = "SELECT lease_id, key, gen, holder, part_i, part_n, deadline_ms FROM leases",
	[ST_LEASE_EXPIRE] = "DELETE FROM leases WHERE deadline_ms <= ?1",
	[ST_OBJ_DEAD_LOST] = "UPDATE objects SET state = 'lost' WHERE state <> 'lost' AND node_id IN "
			     "(SELECT node_id FROM nodes WHERE state = 'dead')",
	/* floors: written by the objects_floor trigger (sql/002-floors.sql) */
	[ST_FLOOR_LOAD] = "SELECT key, gen FROM floors",
	[ST_FLOOR_CLEAR] = "DELETE FROM floors WHERE removed_ms <= ?1",
};

/* ---- errors --------------------------------------------------------------- */

void meta_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* An open-time failure that is not a failed statement: log it and give the
 * caller the same "PATH: reason" text.  Returns KVN_EDB. */
int meta_open_fail(struct meta_db *db, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	meta_seterr(err, errlen, "%s: %s", db->path, msg);
	log_error("meta: %s: %s", db->path, msg);
	return KVN_EDB;
}

/* The one place SQLite failures are logged: the SQL (placeholders only, never
 * values), SQLite's message and code, and the caller's file:line. */
int meta_fail_at(struct meta_db *db, const char *sql, const char *file, int line)
{
	uint64_t suppressed = 0;
	snprintf(db->last_err, sizeof db->last_err, "%s (sqlite %d)", sqlite3_errmsg(db->conn),
		 sqlite3_extended_errcode(db->conn));
	if (!kvn_ratelimit_ok(&db->fail_rl, &suppressed))
		return KVN_EDB;
	if (suppressed)
		log_error("meta: %s: %s in: %s [%s:%d] (%" PRIu64 " more failures not logged)", db->path,
			  db->last_err, sql, file, line, suppressed);
	else
		log_error("meta: %s: %s in: %s [%s:%d]", db->path, db->last_err, sql, file, line);
	return KVN_EDB;
}

const char *meta_last_error(const struct meta_db *db)
{
	return db && db->last_err[0] ? db->last_err : "no error";
}

/* Statements are kept reset and unbound between uses: a statement left
 * mid-step would pin a WAL read snapshot (blocking checkpoints), and a stale
 * binding would point into a caller's freed buffer. */
void meta_st_end(struct meta_db *db, enum meta_st id)
{
	sqlite3_reset(db->st[id]);
	sqlite3_clear_bindings(db->st[id]);
}

int meta_st_fail_at(struct meta_db *db, enum meta_st id, const char *file, int line)
{
	int rc = meta_fail_at(db, meta_st_sql[id], file, line);
	meta_st_end(db, id);
	return rc;
}

/* Bind or fail the call (logged with the statement). */
#define BIND(db, id, call)                           \
	do {                                         \
		if ((call) != SQLITE_OK)             \
			return ST_FAIL((db), (id));  \
	} while (0)

/* Step a statement to completion, ignoring rows. */
static int st_run_at(struct meta_db *db, enum meta_st id, const char *file, int line)
{
	int rc;
	while ((rc = sqlite3_step(db->st[id])) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		return meta_st_fail_at(db, id, file, line);
	meta_st_end(db, id);
	return 0;
}
#define ST_RUN(db, id) st_run_at((db), (id), __FILE__, __LINE__)

int meta_st_run_at(struct meta_db *db, enum meta_st id, const char *file, int line)
{
	return st_run_at(db, id, file, line);
}

/* ---- input checks ---------------------------------------------------------- */

/* SQLite integers are signed 64-bit; larger values would wrap negative. */
static int u64_ok(uint64_t v)
{
	return v <= (uint64_t)INT64_MAX;
}

/* A NUL-terminated string of 1..max bytes inside a fixed field. */
static int field_ok(const char *s, size_t cap, int allow_empty)
{
	size_t n = strnlen(s, cap);
	return n < cap && (allow_empty || n > 0);
}

static int key_check(const void *key, size_t klen)
{
	return !key || klen == 0 || klen > KVN_MAX_KEY ? KVN_EKEYLEN : 0;
}

static int gen_ok(uint64_t gen)
{
	return gen >= 1 && u64_ok(gen);
}

static int obj_state_ok(const char *s)
{
	return s && (strcmp(s, "live") == 0 || strcmp(s, "lost") == 0);
}

static int node_id_ok(const char *s)
{
	return s && field_ok(s, sizeof ((struct meta_node *)0)->node_id, 0);
}

/* node_id: NULL means "the node being synced" (replace_node). */
static int obj_check(const struct meta_object *o, const char *node_id)
{
	int rc = key_check(o->key, o->klen);
	if (rc)
		return rc;
	if (!gen_ok(o->gen) || !u64_ok(o->size) || (o->tier != KEYTAB_DRAM && o->tier != KEYTAB_DISK))
		return KVN_EINVAL;
	if (o->state && !obj_state_ok(o->state))
		return KVN_EINVAL;
	if (o->qflags & ~(META_Q_POOL | META_Q_RETAIN | META_Q_CONSUMED))
		return KVN_EINVAL;
	if (node_id) {
		if (o->node_id && strcmp(o->node_id, node_id) != 0)
			return KVN_EINVAL;
	} else if (!node_id_ok(o->node_id)) {
		return KVN_EINVAL;
	}
	return 0;
}

/* ---- atomic multi-statement writes ----------------------------------------- */

/* A write of several statements must be all-or-nothing.  Inside the caller's
 * transaction it runs under a savepoint, so a failure undoes only this call
 * and the caller's group commit goes on; in autocommit mode it is its own
 * transaction. */
static int op_begin(struct meta_db *db, int *own)
{
	*own = sqlite3_get_autocommit(db->conn);
	return ST_RUN(db, *own ? ST_BEGIN : ST_SAVEPOINT);
}

static int op_end(struct meta_db *db, int own, int rc)
{
	if (rc == 0) {
		rc = ST_RUN(db, own ? ST_COMMIT : ST_RELEASE);
		if (rc == 0)
			return 0;
	}
	if (own) {
		if (!sqlite3_get_autocommit(db->conn))
			(void)ST_RUN(db, ST_ROLLBACK);
	} else {
		(void)ST_RUN(db, ST_ROLLBACK_TO);
		(void)ST_RUN(db, ST_RELEASE);
	}
	return rc;
}

/* ---- transactions ------------------------------------------------------------ */

int meta_begin(struct meta_db *db)
{
	if (!db)
		return KVN_EINVAL;
	return ST_RUN(db, ST_BEGIN);
}

int meta_commit(struct meta_db *db)
{
	int rc;
	if (!db)
		return KVN_EINVAL;
	rc = ST_RUN(db, ST_COMMIT);
	/* A failed COMMIT (busy, I/O) may leave the transaction open; end it so
	 * the caller's next group starts clean.  Nothing of it was stored. */
	if (rc < 0 && !sqlite3_get_autocommit(db->conn))
		(void)ST_RUN(db, ST_ROLLBACK);
	return rc;
}

int meta_rollback(struct meta_db *db)
{
	if (!db)
		return KVN_EINVAL;
	if (sqlite3_get_autocommit(db->conn))
		return 0; /* nothing open (or SQLite already rolled back) */
	return ST_RUN(db, ST_ROLLBACK);
}

void meta_set_busy_timeout(struct meta_db *db, uint32_t ms)
{
	if (db)
		sqlite3_busy_timeout(db->conn, (int)(ms > INT32_MAX ? INT32_MAX : ms));
}

int meta_checkpoint(struct meta_db *db)
{
	int busy = 0, rc;

	if (!db)
		return KVN_EINVAL;
	if (!sqlite3_get_autocommit(db->conn))
		return KVN_ESTATE;
	rc = sqlite3_wal_checkpoint_v2(db->conn, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (rc == SQLITE_BUSY)
		busy = 1;
	else if (rc != SQLITE_OK)
		return META_FAIL(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	return busy ? KVN_EBUSY : 0;
}

/* ---- epochs and nodes --------------------------------------------------------- */

int meta_epoch_next(struct meta_db *db, uint32_t *epoch)
{
	sqlite3_stmt *s;
	int64_t e = 0;
	int own, rc;

	if (!db || !epoch)
		return KVN_EINVAL;
	/* Its own COMMIT makes the epoch durable before any gen uses it; inside
	 * a caller's transaction it would wait for the caller's COMMIT. */
	if (!sqlite3_get_autocommit(db->conn)) {
		log_error("meta: %s: epoch_next called inside a transaction", db->path);
		return KVN_ESTATE;
	}
	if ((rc = op_begin(db, &own)) < 0)
		return rc;
	s = db->st[ST_EPOCH_NEXT];
	if (sqlite3_bind_int64(s, 1, (int64_t)kvn_wall_ms()) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		rc = ST_FAIL(db, ST_EPOCH_NEXT);
	} else {
		e = sqlite3_column_int64(s, 0);
		meta_st_end(db, ST_EPOCH_NEXT); /* completes the insert */
	}
	if ((rc = op_end(db, own, rc)) < 0)
		return rc;
	KVN_ASSERT(e >= 1 && e <= INT32_MAX); /* the table's CHECK */
	*epoch = (uint32_t)e;
	return 0;
}

int meta_epoch_raise(struct meta_db *db, uint32_t epoch)
{
	sqlite3_stmt *s;

	if (!db || epoch < 1 || epoch > INT32_MAX)
		return KVN_EINVAL;
	/* one statement: atomic alone, and inside the writer's group it
	 * becomes durable with that group's COMMIT */
	s = db->st[ST_EPOCH_RAISE];
	BIND(db, ST_EPOCH_RAISE, sqlite3_bind_int64(s, 1, (int64_t)epoch));
	BIND(db, ST_EPOCH_RAISE, sqlite3_bind_int64(s, 2, (int64_t)kvn_wall_ms()));
	if (sqlite3_step(s) != SQLITE_DONE)
		return ST_FAIL(db, ST_EPOCH_RAISE);
	meta_st_end(db, ST_EPOCH_RAISE);
	return sqlite3_changes(db->conn) == 1 ? 0 : KVN_ESTATE;
}

static int node_state_ok(const char *s)
{
	return strcmp(s, "alive") == 0 || strcmp(s, "dead") == 0;
}

int meta_node_upsert(struct meta_db *db, const struct meta_node *n)
{
	const enum meta_st id = ST_NODE_UPSERT;
	sqlite3_stmt *s;
	const char *state;

	if (!db || !n || !node_id_ok(n->node_id) || !field_ok(n->role, sizeof n->role, 1) ||
	    !field_ok(n->addr, sizeof n->addr, 1) || !field_ok(n->state, sizeof n->state, 1))
		return KVN_EINVAL;
	state = n->state[0] ? n->state : "alive";
	if (!node_state_ok(state) || !u64_ok(n->dram_total) || !u64_ok(n->dram_used) ||
	    !u64_ok(n->disk_total) || !u64_ok(n->disk_used) || !u64_ok(n->last_seq) ||
	    !u64_ok(n->last_seen_ms))
		return KVN_EINVAL;
	s = db->st[id];
	BIND(db, id, sqlite3_bind_text(s, 1, n->node_id, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_text(s, 2, n->role, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_text(s, 3, n->addr, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(s, 4, (int64_t)n->dram_total));
	BIND(db, id, sqlite3_bind_int64(s, 5, (int64_t)n->dram_used));
	BIND(db, id, sqlite3_bind_int64(s, 6, (int64_t)n->disk_total));
	BIND(db, id, sqlite3_bind_int64(s, 7, (int64_t)n->disk_used));
	BIND(db, id, sqlite3_bind_int64(s, 8, (int64_t)n->last_seq));
	BIND(db, id, sqlite3_bind_int64(s, 9, (int64_t)n->last_seen_ms));
	BIND(db, id, sqlite3_bind_text(s, 10, state, -1, SQLITE_STATIC));
	return ST_RUN(db, id);
}

int meta_node_set_state(struct meta_db *db, const char *node_id, const char *state)
{
	const enum meta_st id = ST_NODE_SET_STATE;
	int rc;

	if (!db || !node_id_ok(node_id) || !state || !node_state_ok(state))
		return KVN_EINVAL;
	BIND(db, id, sqlite3_bind_text(db->st[id], 1, node_id, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_text(db->st[id], 2, state, -1, SQLITE_STATIC));
	if ((rc = ST_RUN(db, id)) < 0)
		return rc;
	return sqlite3_changes(db->conn) > 0 ? 0 : KVN_ENOTFOUND;
}

/* ---- objects ------------------------------------------------------------------ */

static int bind_key_gen(struct meta_db *db, enum meta_st id, const void *key, size_t klen, uint64_t gen)
{
	BIND(db, id, sqlite3_bind_blob(db->st[id], 1, key, (int)klen, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(db->st[id], 2, (int64_t)gen));
	return 0;
}

/* Bind the columns of ST_OBJ_INSERT or ST_OBJ_UPDATE (same numbering) and
 * run it. */
static int row_write(struct meta_db *db, enum meta_st id, const struct meta_object *o,
		     const char *node_id, int64_t now)
{
	sqlite3_stmt *s = db->st[id];
	int rc;

	if ((rc = bind_key_gen(db, id, o->key, o->klen, o->gen)) < 0)
		return rc;
	BIND(db, id, sqlite3_bind_text(s, 3, node_id, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int(s, 4, o->tier));
	BIND(db, id, sqlite3_bind_int64(s, 5, (int64_t)o->size));
	BIND(db, id, sqlite3_bind_text(s, 6, o->state ? o->state : "live", -1, SQLITE_STATIC));
	if (id == ST_OBJ_INSERT) {
		BIND(db, id, sqlite3_bind_int64(s, 7, now));
		BIND(db, id, sqlite3_bind_int(s, 8, o->qflags));
		if (o->qflags)
			BIND(db, id, sqlite3_bind_int64(s, 9, (int64_t)kvn_hash64(o->key, o->klen)));
		else
			BIND(db, id, sqlite3_bind_null(s, 9));
	}
	return ST_RUN(db, id);
}

/* The body of a put (checked input, inside a transaction).  A key has at
 * most one row (every put deletes the older ones), so its newest row says
 * which case this is:
 *  - none: a plain INSERT, one statement, so atomic alone;
 *  - newer: a newer generation is committed, this one is history: no-op;
 *  - the same gen: an update in place (a tier move, a full sync);
 *  - older: INSERT, then DELETE of the older rows (in that order: the key
 *    keeps a row, so the objects_floor trigger writes no floor for them).
 *    Two statements: when guard is set (inside the caller's group) they
 *    run under a savepoint, so a failure undoes both and the group goes
 *    on.  replace_node, atomic as a whole already, passes guard 0.
 * Measured (docs/metadata.md): a new key's put went from five statements
 * (SAVEPOINT, SELECT newer, UPSERT, DELETE older, RELEASE) to two. */
static int put_row(struct meta_db *db, const struct meta_object *o, const char *node_id, int64_t now,
		   int guard)
{
	sqlite3_stmt *s = db->st[ST_OBJ_TOP];
	int64_t top = 0;
	int own = 0, rc;

	BIND(db, ST_OBJ_TOP, sqlite3_bind_blob(s, 1, o->key, (int)o->klen, SQLITE_STATIC));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		top = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		return ST_FAIL(db, ST_OBJ_TOP);
	meta_st_end(db, ST_OBJ_TOP);
	if (rc == SQLITE_DONE)
		return row_write(db, ST_OBJ_INSERT, o, node_id, now);
	if (top > (int64_t)o->gen)
		return 0;
	if (top == (int64_t)o->gen)
		return row_write(db, ST_OBJ_UPDATE, o, node_id, now);
	if (guard && (rc = op_begin(db, &own)) < 0)
		return rc;
	rc = row_write(db, ST_OBJ_INSERT, o, node_id, now);
	if (rc == 0 && (rc = bind_key_gen(db, ST_OBJ_DEL_OLDER, o->key, o->klen, o->gen)) == 0)
		rc = ST_RUN(db, ST_OBJ_DEL_OLDER);
	return guard ? op_end(db, own, rc) : rc;
}

int meta_object_put(struct meta_db *db, const struct meta_object *o)
{
	int own, rc;

	if (!db || !o)
		return KVN_EINVAL;
	if ((rc = obj_check(o, NULL)) < 0)
		return rc;
	/* Inside the writer's group: no savepoint unless put_row needs two
	 * writes.  Alone (autocommit): its own transaction, so the lookup and
	 * the write see the same state. */
	if (!sqlite3_get_autocommit(db->conn))
		return put_row(db, o, o->node_id, (int64_t)kvn_wall_ms(), 1);
	if ((rc = op_begin(db, &own)) < 0)
		return rc;
	rc = put_row(db, o, o->node_id, (int64_t)kvn_wall_ms(), 0);
	return op_end(db, own, rc);
}

int meta_object_del(struct meta_db *db, const void *key, size_t klen, uint64_t gen)
{
	int rc;

	if (!db)
		return KVN_EINVAL;
	if ((rc = key_check(key, klen)) < 0)
		return rc;
	if (!gen_ok(gen))
		return KVN_EINVAL;
	if ((rc = bind_key_gen(db, ST_OBJ_DEL, key, klen, gen)) < 0)
		return rc;
	return ST_RUN(db, ST_OBJ_DEL);
}

int meta_objects_set_state(struct meta_db *db, const char *node_id, const char *state)
{
	const enum meta_st id = ST_OBJ_SET_STATE;

	if (!db || !node_id_ok(node_id) || !obj_state_ok(state))
		return KVN_EINVAL;
	BIND(db, id, sqlite3_bind_text(db->st[id], 1, node_id, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_text(db->st[id], 2, state, -1, SQLITE_STATIC));
	return ST_RUN(db, id);
}

int meta_objects_replace_node(struct meta_db *db, const char *node_id,
			      const struct meta_object *objs, size_t n)
{
	int64_t now = (int64_t)kvn_wall_ms();
	int own, rc;

	if (!db || !node_id_ok(node_id) || (n > 0 && !objs))
		return KVN_EINVAL;
	/* Check everything before writing anything. */
	for (size_t i = 0; i < n; i++)
		if ((rc = obj_check(&objs[i], node_id)) < 0)
			return rc;
	if ((rc = op_begin(db, &own)) < 0)
		return rc;
	if ((rc = ST_RUN(db, ST_SYNC_CLEAR)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if ((rc = bind_key_gen(db, ST_SYNC_ADD, objs[i].key, objs[i].klen, objs[i].gen)) < 0 ||
		    (rc = ST_RUN(db, ST_SYNC_ADD)) < 0)
			goto out;
	if (sqlite3_bind_text(db->st[ST_SYNC_DROP_MISSING], 1, node_id, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = ST_FAIL(db, ST_SYNC_DROP_MISSING);
		goto out;
	}
	if ((rc = ST_RUN(db, ST_SYNC_DROP_MISSING)) < 0)
		goto out;
	if (sqlite3_bind_text(db->st[ST_SYNC_LOSE_QUEUE], 1, node_id, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = ST_FAIL(db, ST_SYNC_LOSE_QUEUE);
		goto out;
	}
	if ((rc = ST_RUN(db, ST_SYNC_LOSE_QUEUE)) < 0)
		goto out;
	/* Each snapshot row goes through put semantics: a generation that was
	 * superseded elsewhere while the node still held it stays gone. */
	for (size_t i = 0; i < n; i++)
		if ((rc = put_row(db, &objs[i], node_id, now, 0)) < 0)
			goto out;
	rc = ST_RUN(db, ST_SYNC_CLEAR);
out:
	return op_end(db, own, rc);
}

/* ---- loads ---------------------------------------------------------------------- */

int meta_load_objects(struct meta_db *db, meta_object_fn fn, void *arg)
{
	const enum meta_st id = ST_OBJ_LOAD;
	sqlite3_stmt *s;
	int rc;

	if (!db || !fn)
		return KVN_EINVAL;
	s = db->st[id];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct meta_object o = { 0 };
		o.key = sqlite3_column_blob(s, 0);
		o.klen = (size_t)sqlite3_column_bytes(s, 0);
		o.gen = (uint64_t)sqlite3_column_int64(s, 1);
		o.node_id = (const char *)sqlite3_column_text(s, 2);
		o.tier = sqlite3_column_int(s, 3);
		o.size = (uint64_t)sqlite3_column_int64(s, 4);
		o.state = (const char *)sqlite3_column_text(s, 5);
		o.order = sqlite3_column_int64(s, 6);
		o.qflags = (uint8_t)sqlite3_column_int(s, 7);
		if (!o.key || !o.node_id || !o.state) /* NULL here means out of memory */
			return ST_FAIL(db, id);
		if ((rc = fn(arg, &o)) != 0) {
			meta_st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	meta_st_end(db, id);
	return 0;
}

int meta_load_floors(struct meta_db *db, meta_floor_fn fn, void *arg)
{
	const enum meta_st id = ST_FLOOR_LOAD;
	sqlite3_stmt *s;
	int rc;

	if (!db || !fn)
		return KVN_EINVAL;
	s = db->st[id];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *key = sqlite3_column_blob(s, 0);
		size_t klen = (size_t)sqlite3_column_bytes(s, 0);
		if (!key)
			return ST_FAIL(db, id);
		if ((rc = fn(arg, key, klen, (uint64_t)sqlite3_column_int64(s, 1))) != 0) {
			meta_st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	meta_st_end(db, id);
	return 0;
}

int meta_floors_clear(struct meta_db *db, uint64_t before_ms)
{
	if (!db || before_ms > (uint64_t)INT64_MAX)
		return KVN_EINVAL;
	BIND(db, ST_FLOOR_CLEAR, sqlite3_bind_int64(db->st[ST_FLOOR_CLEAR], 1, (int64_t)before_ms));
	return ST_RUN(db, ST_FLOOR_CLEAR);
}

static void col_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(out, cap, "%s", t ? (const char *)t : "");
}

int meta_load_nodes(struct meta_db *db, meta_node_fn fn, void *arg)
{
	const enum meta_st id = ST_NODE_LOAD;
	sqlite3_stmt *s;
	int rc;

	if (!db || !fn)
		return KVN_EINVAL;
	s = db->st[id];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct meta_node n = { 0 };
		/* The schema's CHECKs bound the lengths, so nothing truncates. */
		col_text(s, 0, n.node_id, sizeof n.node_id);
		col_text(s, 1, n.role, sizeof n.role);
		col_text(s, 2, n.addr, sizeof n.addr);
		n.dram_total = (uint64_t)sqlite3_column_int64(s, 3);
		n.dram_used = (uint64_t)sqlite3_column_int64(s, 4);
		n.disk_total = (uint64_t)sqlite3_column_int64(s, 5);
		n.disk_used = (uint64_t)sqlite3_column_int64(s, 6);
		n.last_seq = (uint64_t)sqlite3_column_int64(s, 7);
		n.last_seen_ms = (uint64_t)sqlite3_column_int64(s, 8);
		col_text(s, 9, n.state, sizeof n.state);
		if ((rc = fn(arg, &n)) != 0) {
			meta_st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	meta_st_end(db, id);
	return 0;
}

int meta_count_objects(struct meta_db *db, uint64_t *n)
{
	sqlite3_stmt *s;

	if (!db || !n)
		return KVN_EINVAL;
	s = db->st[ST_OBJ_COUNT];
	if (sqlite3_step(s) != SQLITE_ROW)
		return ST_FAIL(db, ST_OBJ_COUNT);
	*n = (uint64_t)sqlite3_column_int64(s, 0);
	meta_st_end(db, ST_OBJ_COUNT);
	return 0;
}
