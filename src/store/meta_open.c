/*
 * meta_open: opening master.db (DESIGN.md section 6): durable settings (WAL,
 * synchronous=FULL, read back), the forward-only migrations compiled in from
 * sql/NNN-*.sql, the operator views (sql/views.sql, re-created at every
 * open), preparing the statement table, and closing.  The operations on an
 * open store are in meta.c.  The schema part (meta_schema_open) takes its
 * table of SQL files as an argument, so peer.db (disk_index.c) runs the same
 * migration code over its own files.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "store/store.h"
#include "store/meta_int.h"

#define META_BUSY_MS 5000
#define META_VIEWS_FILE "views.sql"

/* Full sync stages the snapshot's (key, gen) here, so "the node's rows not in
 * the snapshot" is one indexed DELETE instead of a scan per row.  Per
 * connection and in memory (temp_store=MEMORY): never on disk. */
static const char meta_sync_ddl[] =
	"CREATE TEMP TABLE meta_sync (key BLOB NOT NULL, gen INTEGER NOT NULL, "
	"PRIMARY KEY (key, gen)) WITHOUT ROWID";

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

int meta_schema_version(const struct meta_sql_file *files)
{
	int v = 0;
	for (const struct meta_sql_file *f = files; f->name; f++)
		if (step_version(f->name) > v)
			v = step_version(f->name);
	return v;
}

int meta_code_version(void)
{
	return meta_schema_version(meta_sql_files);
}

/* Run SQL text once (open time only); on failure log it and fill err. */
static int exec_at(struct meta_db *db, const char *sql, char *err, size_t errlen, const char *file,
		   int line)
{
	if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	meta_seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
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
	meta_seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
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
	/* A bounded WAL (docs/operations.md, "Disk full"): checkpoint every
	 * 1000 pages (SQLite's default, set so it stays so), and truncate the
	 * file back to 4 MiB after a checkpoint, so a burst or an outage that
	 * grew it does not keep the space. */
	{ "PRAGMA wal_autocheckpoint = 1000", "PRAGMA wal_autocheckpoint", "1000" },
	{ "PRAGMA journal_size_limit = 4194304", "PRAGMA journal_size_limit", "4194304" },
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
			return meta_open_fail(db, err, errlen,
					      "%s did not take effect (reads back '%s', want '%s')",
					      open_pragma[i].set ? open_pragma[i].set : open_pragma[i].get,
					      got, open_pragma[i].want);
	}
	return 0;
}

static int read_user_version(struct meta_db *db, int64_t *v, char *err, size_t errlen)
{
	int rc = QUERY1(db, "PRAGMA user_version", v, NULL, 0, err, errlen);
	if (rc == 0)
		return meta_open_fail(db, err, errlen, "PRAGMA user_version returned nothing");
	return rc < 0 ? rc : 0;
}

static int refuse_newer(struct meta_db *db, int64_t have, char *err, size_t errlen)
{
	return meta_open_fail(db, err, errlen,
			      "database schema version %" PRId64 " is newer than this kvnode (%d); upgrade kvnode",
			      have, meta_schema_version(db->files));
}

/* One step in its own transaction that also sets user_version: a crash
 * between steps leaves the database at a well-defined version, never half a
 * step. */
static int migrate_step(struct meta_db *db, const struct meta_sql_file *f, int v, char *err,
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
	if (have > meta_schema_version(db->files)) {
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

	for (const struct meta_sql_file *f = db->files; f->name; f++) {
		int v = step_version(f->name);
		if (v < 0)
			continue; /* views.sql */
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
	const struct meta_sql_file *views = NULL;
	char name[256];
	int rc;

	for (const struct meta_sql_file *f = db->files; f->name; f++)
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
			rc = meta_open_fail(db, err, errlen, "out of memory");
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
		KVN_ASSERT(meta_st_sql[i]);
		if (sqlite3_prepare_v3(db->conn, meta_st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL) != SQLITE_OK) {
			meta_seterr(err, errlen, "%s: %s", db->path, sqlite3_errmsg(db->conn));
			return META_FAIL(db, meta_st_sql[i]);
		}
	}
	return 0;
}

int meta_schema_open(const char *path, const struct meta_sql_file *files, struct meta_db **out,
		     char *err, size_t errlen)
{
	struct meta_db *db;
	int64_t have = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path || !*path || !out) {
		meta_seterr(err, errlen, "%s: invalid arguments", path ? path : "(null)");
		return KVN_EINVAL;
	}
	pthread_once(&sqlite_once, sqlite_setup);
	db = kvn_xcalloc(1, sizeof *db);
	db->path = kvn_xstrdup(path);
	db->files = files;
	kvn_ratelimit_init(&db->fail_rl, 10000, 5);
	rc = sqlite3_open_v2(path, &db->conn,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = meta_open_fail(db, err, errlen, "cannot open: %s",
				    db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->conn, 1);
	sqlite3_busy_timeout(db->conn, META_BUSY_MS);
	/* SQLite falls back to read-only when the file is write-protected; the
	 * master must never run on a store it cannot commit to. */
	if (sqlite3_db_readonly(db->conn, "main") != 0) {
		rc = meta_open_fail(db, err, errlen, "database is read-only");
		goto fail;
	}
	/* Refuse a newer database before touching it (even journal_mode). */
	if ((rc = read_user_version(db, &have, err, errlen)) < 0)
		goto fail;
	if (have > meta_schema_version(files)) {
		rc = refuse_newer(db, have, err, errlen);
		goto fail;
	}
	if ((rc = open_pragmas(db, err, errlen)) < 0 || (rc = migrate(db, have, err, errlen)) < 0 ||
	    (rc = create_views(db, err, errlen)) < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	meta_close(db);
	return rc;
}

int meta_open(const char *path, struct meta_db **out, char *err, size_t errlen)
{
	struct meta_db *db;
	int rc = meta_schema_open(path, meta_sql_files, &db, err, errlen);

	if (out)
		*out = NULL;
	if (rc < 0)
		return rc;
	if ((rc = EXEC(db, meta_sync_ddl, err, errlen)) < 0 || (rc = prepare_all(db, err, errlen)) < 0) {
		meta_close(db);
		return rc;
	}
	*out = db;
	return 0;
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
	meta_st_end(db, ST_USER_VERSION);
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
