/*
 * meta: the master's SQLite metadata store (DESIGN.md section 6).  Owns the
 * connection to master.db: opening it durably (WAL, synchronous=FULL read
 * back), the forward-only migrations compiled in from sql/NNN-*.sql, the
 * operator views (sql/views.sql, re-created at every open), and one prepared
 * statement per operation.  One owner thread, so no locking here.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "store/store.h"

/* Built from SQL_FILES by build-aux/sql2c.sh (src/store/sql_gen.c), in the
 * listed order, terminated by { NULL, NULL }. */
struct kvn_sql_file {
	const char *name;
	const char *text;
};
extern const struct kvn_sql_file kvn_sql_files[];

#define META_BUSY_MS 5000
#define META_VIEWS_FILE "views.sql"

enum meta_st {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_USER_VERSION, ST_EPOCH_NEXT,
	ST_NODE_UPSERT, ST_NODE_SET_STATE, ST_NODE_LOAD,
	ST_OBJ_NEWER, ST_OBJ_DEL_OLDER, ST_OBJ_UPSERT, ST_OBJ_DEL, ST_OBJ_SET_STATE,
	ST_OBJ_LOAD, ST_OBJ_COUNT,
	ST_SYNC_CLEAR, ST_SYNC_ADD, ST_SYNC_DROP_MISSING,
	ST__COUNT
};

/* One line each, so a logged statement stays on one log line.  Values are
 * always bound, never formatted in, so the log shows no data. */
static const char *const st_sql[ST__COUNT] = {
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
	[ST_OBJ_NEWER] = "SELECT 1 FROM objects WHERE key = ?1 AND gen > ?2 LIMIT 1",
	[ST_OBJ_DEL_OLDER] = "DELETE FROM objects WHERE key = ?1 AND gen < ?2",
	/* An update in place keeps commit_seq (commit order) and committed_ms:
	 * a tier move or a full sync does not make an object newer. */
	[ST_OBJ_UPSERT] = "INSERT INTO objects (key, gen, node_id, tier, size, state, committed_ms) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
			  "ON CONFLICT (key, gen) DO UPDATE SET node_id = excluded.node_id, "
			  "tier = excluded.tier, size = excluded.size, state = excluded.state",
	[ST_OBJ_DEL] = "DELETE FROM objects WHERE key = ?1 AND gen = ?2",
	[ST_OBJ_SET_STATE] = "UPDATE objects SET state = ?2 WHERE node_id = ?1 AND state <> ?2",
	[ST_OBJ_LOAD] = "SELECT key, gen, node_id, tier, size, state, commit_seq FROM objects "
			"ORDER BY commit_seq",
	[ST_OBJ_COUNT] = "SELECT count(*) FROM objects WHERE state = 'live'",
	[ST_SYNC_CLEAR] = "DELETE FROM temp.meta_sync",
	[ST_SYNC_ADD] = "INSERT OR IGNORE INTO temp.meta_sync (key, gen) VALUES (?1, ?2)",
	[ST_SYNC_DROP_MISSING] = "DELETE FROM objects WHERE node_id = ?1 AND NOT EXISTS "
				 "(SELECT 1 FROM temp.meta_sync s "
				 "WHERE s.key = objects.key AND s.gen = objects.gen)",
};

/* Full sync stages the snapshot's (key, gen) here, so "the node's rows not in
 * the snapshot" is one indexed DELETE instead of a scan per row.  Per
 * connection and in memory (temp_store=MEMORY): never on disk. */
static const char meta_sync_ddl[] =
	"CREATE TEMP TABLE meta_sync (key BLOB NOT NULL, gen INTEGER NOT NULL, "
	"PRIMARY KEY (key, gen)) WITHOUT ROWID";

struct meta_db {
	sqlite3 *conn;
	char *path;
	sqlite3_stmt *st[ST__COUNT];
};

/* ---- errors --------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
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
static int open_fail(struct meta_db *db, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int open_fail(struct meta_db *db, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	seterr(err, errlen, "%s: %s", db->path, msg);
	log_error("meta: %s: %s", db->path, msg);
	return KVN_EDB;
}

/* The one place SQLite failures are logged: the SQL (placeholders only, never
 * values), SQLite's message and code, and the caller's file:line. */
static int meta_fail_at(struct meta_db *db, const char *sql, const char *file, int line)
{
	log_error("meta: %s: %s (sqlite %d) in: %s [%s:%d]", db->path, sqlite3_errmsg(db->conn),
		  sqlite3_extended_errcode(db->conn), sql, file, line);
	return KVN_EDB;
}
#define META_FAIL(db, sql) meta_fail_at((db), (sql), __FILE__, __LINE__)

/* Statements are kept reset and unbound between uses: a statement left
 * mid-step would pin a WAL read snapshot (blocking checkpoints), and a stale
 * binding would point into a caller's freed buffer. */
static void st_end(struct meta_db *db, enum meta_st id)
{
	sqlite3_reset(db->st[id]);
	sqlite3_clear_bindings(db->st[id]);
}

static int st_fail_at(struct meta_db *db, enum meta_st id, const char *file, int line)
{
	int rc = meta_fail_at(db, st_sql[id], file, line);
	st_end(db, id);
	return rc;
}
#define ST_FAIL(db, id) st_fail_at((db), (id), __FILE__, __LINE__)

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
		return st_fail_at(db, id, file, line);
	st_end(db, id);
	return 0;
}
#define ST_RUN(db, id) st_run_at((db), (id), __FILE__, __LINE__)

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

/* ---- open, migrate, views ------------------------------------------------------ */

/* "NNN-name.sql" -> NNN; anything else -> -1. */
static int step_version(const char *name)
{
	size_t n = strlen(name);
	if (n < 9 || name[3] != '-' || strcmp(name + n - 4, ".sql") != 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (name[i] < '0' || name[i] > '9')
			return -1;
	return (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
}

int meta_code_version(void)
{
	int v = 0;
	for (const struct kvn_sql_file *f = kvn_sql_files; f->name; f++)
		if (step_version(f->name) > v)
			v = step_version(f->name);
	return v;
}

/* Run SQL text once (open time only); on failure log it and fill err. */
static int exec_at(struct meta_db *db, const char *sql, char *err, size_t errlen, const char *file,
		   int line)
{
	if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
	return meta_fail_at(db, sql, file, line);
}
#define EXEC(db, sql, err, errlen) exec_at((db), (sql), (err), (errlen), __FILE__, __LINE__)

/* One-row query (a pragma, a lookup) prepared now: a prepared PRAGMA
 * synchronous reports the value at prepare time, not the current one, so
 * read-backs must not come from the statement table.  Returns 1 and fills
 * *ival and/or text if a row came back, 0 if none, or KVN_EDB. */
static int query1_at(struct meta_db *db, const char *sql, int64_t *ival, char *text, size_t cap,
		     char *err, size_t errlen, const char *file, int line)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db->conn, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(s, 0);
			if (ival)
				*ival = sqlite3_column_int64(s, 0);
			if (text && cap)
				snprintf(text, cap, "%s", t ? (const char *)t : "");
			sqlite3_finalize(s);
			return 1;
		}
		if (rc == SQLITE_DONE) {
			sqlite3_finalize(s);
			return 0;
		}
	}
	seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
	rc = meta_fail_at(db, sql, file, line);
	sqlite3_finalize(s);
	return rc;
}
#define QUERY1(db, sql, ival, text, cap, err, errlen) \
	query1_at((db), (sql), (ival), (text), (cap), (err), (errlen), __FILE__, __LINE__)

/* Each setting is read back: SQLite ignores a value it cannot apply.
 * WAL: operators' readers never block the writer, and a commit is one append
 * to the log.  FULL: in WAL mode NORMAL fsyncs only at checkpoints, so the
 * last commits can vanish on power loss, and a durable put is acknowledged
 * only after COMMIT returned (DESIGN.md section 2 step 4).  Foreign keys
 * keep objects on known nodes and end a lease with its object. */
static const struct {
	const char *set, *get, *want;
} open_pragma[] = {
	{ NULL, "PRAGMA journal_mode = WAL", "wal" }, /* answers with the mode */
	{ "PRAGMA synchronous = FULL", "PRAGMA synchronous", "2" },
	{ "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", "1" },
	{ "PRAGMA temp_store = MEMORY", "PRAGMA temp_store", "2" },
};

static int open_pragmas(struct meta_db *db, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof open_pragma / sizeof open_pragma[0]; i++) {
		char got[32] = "";
		int rc;
		if (open_pragma[i].set && (rc = EXEC(db, open_pragma[i].set, err, errlen)) < 0)
			return rc;
		rc = QUERY1(db, open_pragma[i].get, NULL, got, sizeof got, err, errlen);
		if (rc < 0)
			return rc;
		if (strcasecmp(got, open_pragma[i].want) != 0)
			return open_fail(db, err, errlen, "%s did not take effect (reads back '%s', want '%s')",
					 open_pragma[i].set ? open_pragma[i].set : open_pragma[i].get,
					 got, open_pragma[i].want);
	}
	return 0;
}

static int read_user_version(struct meta_db *db, int64_t *v, char *err, size_t errlen)
{
	int rc = QUERY1(db, "PRAGMA user_version", v, NULL, 0, err, errlen);
	if (rc == 0)
		return open_fail(db, err, errlen, "PRAGMA user_version returned nothing");
	return rc < 0 ? rc : 0;
}

static int refuse_newer(struct meta_db *db, int64_t have, char *err, size_t errlen)
{
	return open_fail(db, err, errlen,
			 "database schema version %" PRId64 " is newer than this kvnode (%d); upgrade kvnode",
			 have, meta_code_version());
}

/* One step in its own transaction that also sets user_version: a crash
 * between steps leaves the database at a well-defined version, never half a
 * step. */
static int migrate_step(struct meta_db *db, const struct kvn_sql_file *f, int v, char *err,
			size_t errlen)
{
	char setv[64];
	int64_t have = 0;
	int rc;

	if ((rc = EXEC(db, "BEGIN IMMEDIATE", err, errlen)) < 0)
		return rc;
	/* Re-read under the write lock: another process may have migrated. */
	if ((rc = read_user_version(db, &have, err, errlen)) < 0)
		goto rollback;
	if (have > meta_code_version()) {
		rc = refuse_newer(db, have, err, errlen);
		goto rollback;
	}
	if (have < v) {
		snprintf(setv, sizeof setv, "PRAGMA user_version = %d", v);
		if ((rc = EXEC(db, f->text, err, errlen)) < 0 || (rc = EXEC(db, setv, err, errlen)) < 0)
			goto rollback;
		log_info("meta: %s: migrated to schema version %d (%s)", db->path, v, f->name);
	}
	if ((rc = EXEC(db, "COMMIT", err, errlen)) == 0)
		return 0;
rollback:
	if (!sqlite3_get_autocommit(db->conn))
		sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Apply, in order, each step newer than the database's version `start`. */
static int migrate(struct meta_db *db, int64_t start, char *err, size_t errlen)
{
	int prev = 0, rc;

	for (const struct kvn_sql_file *f = kvn_sql_files; f->name; f++) {
		int v = step_version(f->name);
		if (v < 0)
			continue; /* views.sql, or another store's file (peer.db) */
		KVN_ASSERT(v > prev); /* SQL_FILES lists the steps in order */
		prev = v;
		if (v > start && (rc = migrate_step(db, f, v, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* Process-wide SQLite settings, before the library initializes.  Memory
 * statistics off: with them on, every SQLite malloc and free takes a global
 * mutex just to keep counters nobody here reads; perf on 4 KiB batch-64
 * puts showed pthread_mutex_lock/unlock at 6% of the writer thread.  If
 * SQLite was initialized already (an embedding program), the call is
 * refused and nothing changes. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Views are code, not schema: drop every v_* view (one removed from
 * views.sql goes too) and create the current ones, in one transaction, so a
 * reader never sees a half-built set. */
static int create_views(struct meta_db *db, char *err, size_t errlen)
{
	const struct kvn_sql_file *views = NULL;
	char name[256];
	int rc;

	for (const struct kvn_sql_file *f = kvn_sql_files; f->name; f++)
		if (strcmp(f->name, META_VIEWS_FILE) == 0)
			views = f;
	if ((rc = EXEC(db, "BEGIN IMMEDIATE", err, errlen)) < 0)
		return rc;
	for (;;) {
		rc = QUERY1(db, "SELECT name FROM sqlite_schema WHERE type = 'view' "
			    "AND name LIKE 'v\\_%' ESCAPE '\\' LIMIT 1",
			    NULL, name, sizeof name, err, errlen);
		if (rc <= 0)
			break;
		char *drop = sqlite3_mprintf("DROP VIEW \"%w\"", name);
		if (!drop) {
			rc = open_fail(db, err, errlen, "out of memory");
			break;
		}
		rc = EXEC(db, drop, err, errlen);
		sqlite3_free(drop);
		if (rc < 0)
			break;
	}
	if (rc == 0 && views)
		rc = EXEC(db, views->text, err, errlen);
	if (rc == 0)
		rc = EXEC(db, "COMMIT", err, errlen);
	if (rc < 0 && !sqlite3_get_autocommit(db->conn))
		sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int prepare_all(struct meta_db *db, char *err, size_t errlen)
{
	for (int i = 0; i < ST__COUNT; i++) {
		KVN_ASSERT(st_sql[i]);
		if (sqlite3_prepare_v3(db->conn, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL) != SQLITE_OK) {
			seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
			return META_FAIL(db, st_sql[i]);
		}
	}
	return 0;
}

int meta_open(const char *path, struct meta_db **out, char *err, size_t errlen)
{
	struct meta_db *db;
	int64_t have = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path || !*path || !out) {
		seterr(err, errlen, "%s: invalid arguments", path ? path : "(null)");
		return KVN_EINVAL;
	}
	pthread_once(&sqlite_once, sqlite_setup);
	db = kvn_xcalloc(1, sizeof *db);
	db->path = kvn_xstrdup(path);
	rc = sqlite3_open_v2(path, &db->conn,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = open_fail(db, err, errlen, "cannot open: %s",
			       db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->conn, 1);
	sqlite3_busy_timeout(db->conn, META_BUSY_MS);
	/* SQLite falls back to read-only when the file is write-protected; the
	 * master must never run on a store it cannot commit to. */
	if (sqlite3_db_readonly(db->conn, "main") != 0) {
		rc = open_fail(db, err, errlen, "database is read-only");
		goto fail;
	}
	/* Refuse a newer database before touching it (even journal_mode). */
	if ((rc = read_user_version(db, &have, err, errlen)) < 0)
		goto fail;
	if (have > meta_code_version()) {
		rc = refuse_newer(db, have, err, errlen);
		goto fail;
	}
	if ((rc = open_pragmas(db, err, errlen)) < 0 || (rc = migrate(db, have, err, errlen)) < 0 ||
	    (rc = create_views(db, err, errlen)) < 0 || (rc = EXEC(db, meta_sync_ddl, err, errlen)) < 0 ||
	    (rc = prepare_all(db, err, errlen)) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	meta_close(db);
	return rc;
}

void meta_close(struct meta_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(db->st[i]);
	if (db->conn) {
		if (!sqlite3_get_autocommit(db->conn))
			log_warn("meta: %s: closed inside a transaction: rolled back", db->path);
		if (sqlite3_close(db->conn) != SQLITE_OK)
			log_error("meta: %s: close: %s", db->path, sqlite3_errmsg(db->conn));
	}
	free(db->path);
	free(db);
}

int meta_user_version(struct meta_db *db, int *version)
{
	sqlite3_stmt *s;
	if (!db || !version)
		return KVN_EINVAL;
	s = db->st[ST_USER_VERSION];
	if (sqlite3_step(s) != SQLITE_ROW)
		return ST_FAIL(db, ST_USER_VERSION);
	*version = sqlite3_column_int(s, 0);
	st_end(db, ST_USER_VERSION);
	return 0;
}

int meta_synchronous(struct meta_db *db, char *out, size_t cap)
{
	static const char *const names[] = { "OFF", "NORMAL", "FULL", "EXTRA" };
	int64_t v = -1;
	int rc;

	if (!db || !out || cap == 0)
		return KVN_EINVAL;
	rc = QUERY1(db, "PRAGMA synchronous", &v, NULL, 0, NULL, 0);
	if (rc < 0)
		return rc;
	if (rc == 0 || v < 0 || v > 3)
		return KVN_EDB;
	if (strlen(names[v]) >= cap)
		return KVN_ERANGE;
	memcpy(out, names[v], strlen(names[v]) + 1);
	return 0;
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
		st_end(db, ST_EPOCH_NEXT); /* completes the insert */
	}
	if ((rc = op_end(db, own, rc)) < 0)
		return rc;
	KVN_ASSERT(e >= 1 && e <= INT32_MAX); /* the table's CHECK */
	*epoch = (uint32_t)e;
	return 0;
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

/* The body of a put (checked input, inside op_begin/op_end). */
static int put_row(struct meta_db *db, const struct meta_object *o, const char *node_id, int64_t now)
{
	sqlite3_stmt *s = db->st[ST_OBJ_NEWER];
	int rc;

	if ((rc = bind_key_gen(db, ST_OBJ_NEWER, o->key, o->klen, o->gen)) < 0)
		return rc;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ST_FAIL(db, ST_OBJ_NEWER);
	st_end(db, ST_OBJ_NEWER);
	if (rc == SQLITE_ROW)
		return 0; /* a newer generation is committed: this one is history */

	if ((rc = bind_key_gen(db, ST_OBJ_DEL_OLDER, o->key, o->klen, o->gen)) < 0 ||
	    (rc = ST_RUN(db, ST_OBJ_DEL_OLDER)) < 0)
		return rc;

	const enum meta_st id = ST_OBJ_UPSERT;
	s = db->st[id];
	if ((rc = bind_key_gen(db, id, o->key, o->klen, o->gen)) < 0)
		return rc;
	BIND(db, id, sqlite3_bind_text(s, 3, node_id, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int(s, 4, o->tier));
	BIND(db, id, sqlite3_bind_int64(s, 5, (int64_t)o->size));
	BIND(db, id, sqlite3_bind_text(s, 6, o->state ? o->state : "live", -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(s, 7, now));
	return ST_RUN(db, id);
}

int meta_object_put(struct meta_db *db, const struct meta_object *o)
{
	int own, rc;

	if (!db || !o)
		return KVN_EINVAL;
	if ((rc = obj_check(o, NULL)) < 0)
		return rc;
	if ((rc = op_begin(db, &own)) < 0)
		return rc;
	rc = put_row(db, o, o->node_id, (int64_t)kvn_wall_ms());
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
	/* Each snapshot row goes through put semantics: a generation that was
	 * superseded elsewhere while the node still held it stays gone. */
	for (size_t i = 0; i < n; i++)
		if ((rc = put_row(db, &objs[i], node_id, now)) < 0)
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
		if (!o.key || !o.node_id || !o.state) /* NULL here means out of memory */
			return ST_FAIL(db, id);
		if ((rc = fn(arg, &o)) != 0) {
			st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	st_end(db, id);
	return 0;
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
			st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	st_end(db, id);
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
	st_end(db, ST_OBJ_COUNT);
	return 0;
}
