/*
 * t/meta: the master's SQLite store as files: schema and migrations,
 * durability settings (read back through a second connection, and WAL
 * fsyncs counted by a VFS shim), reopening, group commit, the KVN_EDB
 * failure path of each statement and the WAL's checkpoints and locks.  The
 * object semantics are t/meta_objects; the shared fixture is t/meta_env.h.
 */
#include "config.h"

#include "meta_env.h"

/* ---- a VFS shim counting fsyncs of WAL files ------------------------------- */

struct shim_file {
	sqlite3_file base;
	sqlite3_file *real;
	int is_wal;
};

static sqlite3_vfs *shim_under;
static sqlite3_vfs shim_vfs;
static int wal_syncs;

#define REAL(f) (((struct shim_file *)(f))->real)
static int shim_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int shim_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int shim_sync(sqlite3_file *f, int flags)
{
	if (((struct shim_file *)f)->is_wal)
		wal_syncs++;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int shim_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int shim_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int shim_reserved(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int shim_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int shim_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int shim_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int shim_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p) { return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p); }
static int shim_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void shim_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int shim_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int shim_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int shim_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods shim_io = {
	3, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock,
	shim_unlock, shim_reserved, shim_fcntl, shim_sector, shim_devchar, shim_shmmap,
	shim_shmlock, shim_shmbarrier, shim_shmunmap, shim_fetch, shim_unfetch,
};

static int shim_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *oflags)
{
	struct shim_file *s = (struct shim_file *)f;
	int rc;
	(void)v;
	s->real = (sqlite3_file *)(s + 1);
	s->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = shim_under->xOpen(shim_under, name, s->real, flags, oflags);
	s->base.pMethods = s->real->pMethods ? &shim_io : NULL;
	return rc;
}

/* Make the shim the default VFS, so meta_open() goes through it. */
static void shim_install(void)
{
	shim_under = sqlite3_vfs_find(NULL);
	shim_vfs = *shim_under;
	shim_vfs.zName = "kvn-test-shim";
	shim_vfs.szOsFile = (int)sizeof(struct shim_file) + shim_under->szOsFile;
	shim_vfs.xOpen = shim_open;
	sqlite3_vfs_register(&shim_vfs, 1);
}

static void shim_remove(void)
{
	sqlite3_vfs_unregister(&shim_vfs);
	sqlite3_vfs_register(shim_under, 1);
}

/* ---- cases ----------------------------------------------------------------- */

static void t_schema(void)
{
	struct meta_db *db = fresh("m.db");
	int v = -1, want = 0;
	DIR *d;
	struct dirent *e;

	/* The compiled-in steps must match sql/ (a step missing from SQL_FILES
	 * would never run). */
	if ((d = opendir(KVN_SRCDIR "/sql"))) {
		while ((e = readdir(d)))
			if (strlen(e->d_name) > 8 && e->d_name[3] == '-' && atoi(e->d_name) > want)
				want = atoi(e->d_name);
		closedir(d);
	}
	ok(want >= 1, "sql/ has migration steps (highest %d)", want);
	is_int(meta_code_version(), want, "code version = highest sql/NNN-*.sql");
	is_int(meta_user_version(db, &v), 0, "user_version readable");
	is_int(v, want, "user_version after open = code version");

	sqlite3 *c = raw_open(tpath("m.db"));
	char wantv[16];
	snprintf(wantv, sizeof wantv, "%d", want);
	is_str(rows(c, "PRAGMA user_version"), wantv, "second connection sees the same version");
	is_str(rows(c, "SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND "
		       "name IN ('nodes','objects','epochs','leases') ORDER BY name"),
	       "epochs,1;leases,1;nodes,1;objects,1", "four STRICT tables");
	is_str(rows(c, "SELECT group_concat(name) FROM pragma_table_info('objects')"),
	       "commit_seq,key,gen,node_id,tier,size,state,committed_ms,qflags,part_hash", "objects columns");
	is_str(rows(c, "SELECT group_concat(name) FROM pragma_table_info('nodes')"),
	       "node_id,role,addr,dram_total,dram_used,disk_total,disk_used,last_seq,last_seen_ms,state",
	       "nodes columns");
	is_str(rows(c, "SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name"),
	       "v_capacity;v_leases;v_objects;v_queue", "views");
	ok(strstr(rows(c, "EXPLAIN QUERY PLAN SELECT gen FROM objects WHERE key = x'01'"), "INDEX"),
	   "a key's rows are found through an index");
	ok(strstr(rows(c, "EXPLAIN QUERY PLAN SELECT 1 FROM objects WHERE node_id = 'a'"),
		  "objects_node"), "a node's rows are found through objects_node");
	ok(strstr(rows(c, "SELECT sql FROM sqlite_schema WHERE name = 'objects'"), "AUTOINCREMENT"),
	   "commit order ids are never reused (AUTOINCREMENT)");
	sqlite3_close(c);
	meta_close(db);
}

static void t_durability(void)
{
	struct meta_db *db;
	char sync[16] = "";
	int before;

	shim_install();
	db = fresh("d.db");
	is_int(meta_synchronous(db, sync, sizeof sync), 0, "meta_synchronous");
	is_str(sync, "FULL", "synchronous read back on the connection");
	is_int(meta_synchronous(db, sync, 4), KVN_ERANGE, "small buffer: KVN_ERANGE");

	sqlite3 *c = raw_open(tpath("d.db"));
	is_str(rows(c, "PRAGMA journal_mode"), "wal", "second connection: journal_mode is wal");
	sqlite3_close(c);

	/* synchronous is per connection (a second connection only sees its own),
	 * so check its effect instead: FULL fsyncs the WAL at every commit. */
	ok(add_node(db, "A", 100, 0) == 0, "node");
	before = wal_syncs;
	is_int(put(db, "k", 1, "A", 0, 1), 0, "autocommit put");
	ok(wal_syncs - before >= 1, "an autocommit put fsyncs the WAL (%d)", wal_syncs - before);
	before = wal_syncs;
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof k, "a%d", i);
		put(db, k, 1, "A", 0, 1);
	}
	ok(wal_syncs - before >= 20, "20 autocommit puts: >= 20 fsyncs (%d)", wal_syncs - before);
	before = wal_syncs;
	is_int(meta_begin(db), 0, "begin");
	for (int i = 0; i < 1000; i++) {
		char k[16];
		snprintf(k, sizeof k, "g%d", i);
		if (put(db, k, 1, "A", 0, 1) != 0)
			break;
	}
	is_int(meta_commit(db), 0, "commit");
	ok(wal_syncs - before >= 1 && wal_syncs - before <= 4,
	   "1000 puts in one transaction: 1..4 fsyncs (%d)", wal_syncs - before);
	meta_close(db);

	/* The counter tells FULL from NORMAL: a NORMAL commit does not fsync. */
	c = raw_open(tpath("d.db"));
	raw_exec(c, "PRAGMA synchronous = NORMAL");
	raw_exec(c, "INSERT INTO epochs VALUES (1000, 0)");
	before = wal_syncs;
	raw_exec(c, "INSERT INTO epochs VALUES (1001, 0)");
	is_int(wal_syncs - before, 0, "control: a synchronous=NORMAL commit does not fsync the WAL");
	sqlite3_close(c);
	shim_remove();
}

static void t_refuse_newer(void)
{
	struct meta_db *db = fresh("n.db");
	char err[512] = "", want[600], q[64];
	meta_close(db);

	sqlite3 *c = raw_open(tpath("n.db"));
	snprintf(q, sizeof q, "PRAGMA user_version = %d", meta_code_version() + 1);
	raw_exec(c, q);
	sqlite3_close(c);
	db = (struct meta_db *)1;
	is_int(meta_open(tpath("n.db"), &db, err, sizeof err), KVN_EDB, "newer database refused");
	ok(db == NULL, "*out is NULL on failure");
	snprintf(want, sizeof want,
		 "%s: database schema version %d is newer than this kvnode (%d); upgrade kvnode",
		 tpath("n.db"), meta_code_version() + 1, meta_code_version());
	is_str(err, want, "message names path and both versions");

	/* Refused before anything is changed: a rollback-journal database stays so. */
	c = raw_open(tpath("n2.db"));
	raw_exec(c, "CREATE TABLE t (x); PRAGMA user_version = 99");
	sqlite3_close(c);
	is_int(meta_open(tpath("n2.db"), &db, err, sizeof err), KVN_EDB, "version 99 refused");
	c = raw_open(tpath("n2.db"));
	is_str(rows(c, "PRAGMA journal_mode"), "delete", "refused database left untouched");
	is_str(rows(c, "PRAGMA user_version"), "99", "user_version untouched");
	sqlite3_close(c);
}

static void t_reopen(void)
{
	struct meta_db *db = fresh("r.db");
	char schema[16384];
	uint32_t e1 = 0, e2 = 0, e3 = 0;
	int v = 0;

	is_int(meta_epoch_next(db, &e1), 0, "epoch_next");
	is_int(e1, 1, "first epoch on a new database is 1");
	is_int(meta_epoch_next(db, &e2), 0, "epoch_next again");
	is_int(e2, 2, "then 2");
	add_node(db, "A", 100, 0);
	put(db, "k1", 5, "A", 0, 10);
	sqlite3 *c = raw_open(tpath("r.db"));
	snprintf(schema, sizeof schema, "%s", rows(c, "SELECT type, name, sql FROM sqlite_schema ORDER BY name"));
	sqlite3_close(c);
	meta_close(db);

	db = reopen("r.db");
	is_int(meta_user_version(db, &v), 0, "reopened");
	is_int(v, meta_code_version(), "same version");
	is_str(dump(db), "k1:5:A:0:10:live", "data kept");
	c = raw_open(tpath("r.db"));
	is_str(rows(c, "SELECT type, name, sql FROM sqlite_schema ORDER BY name"), schema,
	       "schema unchanged by the reopen (no re-migration; views re-created identical)");
	sqlite3_close(c);
	is_int(meta_epoch_next(db, &e3), 0, "epoch_next after reopen");
	is_int(e3, 3, "epochs keep increasing across reopen");
	is_int(meta_begin(db), 0, "begin");
	is_int(meta_epoch_next(db, &e3), KVN_ESTATE, "epoch_next inside a transaction refused");
	is_int(meta_rollback(db), 0, "rollback");
	meta_close(db);
}

static void t_migration_atomic(void)
{
	struct meta_db *db = NULL;
	char err[512] = "";

	clean_dir();
	/* A conflicting table makes step 001 fail half-way. */
	sqlite3 *c = raw_open(tpath("a.db"));
	raw_exec(c, "CREATE TABLE epochs (x)");
	sqlite3_close(c);
	is_int(meta_open(tpath("a.db"), &db, err, sizeof err), KVN_EDB, "failing step: KVN_EDB");
	ok(strstr(err, tpath("a.db")) && strstr(err, "epochs"), "err names the path and cause: %s", err);
	c = raw_open(tpath("a.db"));
	is_str(rows(c, "PRAGMA user_version"), "0", "user_version not advanced");
	is_str(rows(c, "SELECT count(*) FROM sqlite_schema WHERE name = 'nodes'"), "0",
	       "the step's earlier statements were rolled back");
	sqlite3_close(c);
}

static void t_group_commit(void)
{
	struct meta_db *db = fresh("g.db");
	int fails = 0;

	add_node(db, "A", 100, 0);
	is_int(meta_begin(db), 0, "begin");
	for (int i = 0; i < 1000; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%04d", i);
		fails += put(db, k, (uint64_t)i + 1, "A", i % 2, (uint64_t)i) != 0;
	}
	is_int(fails, 0, "1000 puts inside one transaction");
	is_int(meta_commit(db), 0, "commit");
	meta_close(db);

	db = reopen("g.db");
	is_int(live(db), 1000, "all 1000 visible after reopen");
	ok(strncmp(dump(db), "k0000:1:A:0:0:live;k0001:2:A:1:1:live", 37) == 0, "in commit order");
	is_int(meta_begin(db), 0, "begin");
	for (int i = 0; i < 10; i++) {
		char k[16];
		snprintf(k, sizeof k, "r%d", i);
		put(db, k, 1, "A", 0, 1);
	}
	is_int(meta_object_del(db, "k0000", 5, 1), 0, "delete inside the transaction");
	is_int(live(db), 1009, "the transaction sees its own writes");
	is_int(meta_rollback(db), 0, "rollback");
	is_int(live(db), 1000, "rollback leaves nothing");
	is_int(meta_rollback(db), 0, "rollback with nothing open is a no-op");
	meta_close(db);
	db = reopen("g.db");
	is_int(live(db), 1000, "and nothing after reopen either");
	meta_close(db);
}

static void t_errors(void)
{
	struct meta_db *db = NULL;
	char err[512] = "";
	uint64_t n;
	uint32_t e;
	int fd;

	clean_dir();
	is_int(meta_open(tpath("nodir/x.db"), &db, err, sizeof err), KVN_EDB, "non-existent dir");
	ok(strncmp(err, tpath("nodir/x.db"), strlen(tpath("nodir/x.db"))) == 0, "err starts with the path: %s", err);
	fd = open(tpath("junk.db"), O_CREAT | O_WRONLY, 0600);
	ok(fd >= 0 && write(fd, "this is not a database, not at all, no\n", 39) == 39, "junk file");
	close(fd);
	is_int(meta_open(tpath("junk.db"), &db, err, sizeof err), KVN_EDB, "not a database");
	ok(strstr(err, "not a database") != NULL, "err says why: %s", err);
	mkdir(tpath("adir"), 0700);
	is_int(meta_open(tpath("adir"), &db, err, sizeof err), KVN_EDB, "a directory");
	if (geteuid() == 0) {
		tap_skip(2, "running as root: a 0444 file is still writable");
	} else {
		db = fresh("ro.db");
		meta_close(db);
		chmod(tpath("ro.db"), 0444);
		is_int(meta_open(tpath("ro.db"), &db, err, sizeof err), KVN_EDB, "read-only file");
		ok(strstr(err, "read-only") != NULL, "err says read-only: %s", err);
	}

	/* Each statement's failure path, injected by an operator's connection. */
	db = fresh("e.db");
	add_node(db, "A", 100, 0);
	put(db, "k", 1, "A", 0, 1);
	is_int(meta_commit(db), KVN_EDB, "commit without a transaction");
	is_int(meta_begin(db), 0, "begin");
	is_int(meta_begin(db), KVN_EDB, "begin inside a transaction");
	is_int(meta_rollback(db), 0, "rollback");

	sqlite3 *c = raw_open(tpath("e.db"));
	raw_exec(c, "CREATE TRIGGER f1 BEFORE INSERT ON epochs BEGIN SELECT RAISE(ABORT, 'inj'); END;"
		    "CREATE TRIGGER f2 BEFORE INSERT ON nodes BEGIN SELECT RAISE(ABORT, 'inj'); END;"
		    "CREATE TRIGGER f3 BEFORE UPDATE ON nodes BEGIN SELECT RAISE(ABORT, 'inj'); END;"
		    "CREATE TRIGGER f4 BEFORE INSERT ON objects BEGIN SELECT RAISE(ABORT, 'inj'); END;"
		    "CREATE TRIGGER f5 BEFORE UPDATE ON objects BEGIN SELECT RAISE(ABORT, 'inj'); END;");
	is_int(meta_epoch_next(db, &e), KVN_EDB, "epoch_next: insert fails");
	is_int(meta_begin(db), 0, "and no transaction was left open");
	is_int(put(db, "p", 1, "A", 0, 1), KVN_EDB, "put: insert fails inside a group");
	is_int(meta_objects_set_state(db, "A", "lost"), KVN_EDB, "objects_set_state fails");
	is_int(meta_commit(db), 0, "the group commits anyway");
	is_int(add_node(db, "B", 1, 0), KVN_EDB, "node_upsert fails");
	is_int(meta_node_set_state(db, "A", "dead"), KVN_EDB, "node_set_state fails");
	raw_exec(c, "DROP TRIGGER f4; CREATE TRIGGER f6 BEFORE DELETE ON objects "
		    "BEGIN SELECT RAISE(ABORT, 'inj'); END;");
	is_int(put(db, "k", 2, "A", 0, 2), KVN_EDB, "put: superseding delete fails");
	is_str(dump(db), "k:1:A:0:1:live", "the put left nothing half-done");
	/* Inside a group a superseding put is the one case of two writes
	 * (INSERT, then DELETE of the older row): a savepoint undoes both. */
	is_int(meta_begin(db), 0, "begin");
	is_int(put(db, "k", 3, "A", 0, 3), KVN_EDB, "put: superseding delete fails inside a group");
	is_int(put(db, "q", 1, "A", 0, 1), 0, "a new key's put in the same group");
	is_int(put(db, "k", 1, "A", 1, 1), KVN_EDB, "put: update in place fails inside a group");
	is_int(meta_commit(db), 0, "the group commits");
	is_str(dump(db), "k:1:A:0:1:live;q:1:A:0:1:live", "the failed puts undone alone, the other kept");
	is_int(meta_object_del(db, "k", 1, 1), KVN_EDB, "object_del fails");
	raw_exec(c, "DROP TRIGGER f6; ALTER TABLE objects RENAME TO objects_x; "
		    "ALTER TABLE nodes RENAME TO nodes_x");
	is_int(meta_count_objects(db, &n), KVN_EDB, "count: table gone");
	is_str(dump(db), "LOAD FAILED", "load_objects: table gone");
	is_int(meta_load_nodes(db, node_fn, err), KVN_EDB, "load_nodes: table gone");
	raw_exec(c, "ALTER TABLE objects_x RENAME TO objects; ALTER TABLE nodes_x RENAME TO nodes");
	is_int(meta_count_objects(db, &n), 0, "works again once the table is back");
	is_int(n, 2, "count");
	sqlite3_close(c);
	meta_close(db);
}

/* A failing writer's reason, the checkpoint that gives a grown WAL's
 * space back, and a held lock seen as busy, not as an error. */
static void t_wal(void)
{
	struct meta_db *db = fresh("w.db");
	char wal[600];

	snprintf(wal, sizeof wal, "%s-wal", tpath("w.db"));
	is_str(meta_last_error(db), "no error", "no failure yet");
	add_node(db, "A", 100, 0);
	is_int(meta_begin(db), 0, "begin");
	for (int i = 0; i < 20000; i++) {
		char k[24];
		snprintf(k, sizeof k, "wal-%d", i);
		if (put(db, k, 1, "A", 0, 1) != 0)
			break;
	}
	is_int(meta_commit(db), 0, "one large transaction");
	ok(file_size(wal) > 1 << 20, "the WAL grew (%lld bytes)", file_size(wal));
	is_int(meta_checkpoint(db), 0, "wal_checkpoint(TRUNCATE)");
	is_int(file_size(wal), 0, "the WAL is empty again");

	sqlite3 *c = raw_open(tpath("w.db"));
	raw_exec(c, "BEGIN IMMEDIATE");
	meta_set_busy_timeout(db, 20);
	is_int(meta_begin(db), KVN_EDB, "BEGIN while another connection holds the write lock");
	ok(strstr(meta_last_error(db), "locked") != NULL, "the reason: %s", meta_last_error(db));
	is_int(meta_checkpoint(db), KVN_EBUSY, "a checkpoint then is busy, not an error");
	raw_exec(c, "ROLLBACK");
	sqlite3_close(c);
	is_int(meta_begin(db), 0, "BEGIN once the lock is released");
	is_int(meta_checkpoint(db), KVN_ESTATE, "no checkpoint inside a transaction");
	is_int(meta_rollback(db), 0, "rollback");
	meta_close(db);
}

static const struct tap_test tests[] = {
	{ "schema", t_schema },
	{ "durability", t_durability },
	{ "refuse_newer", t_refuse_newer },
	{ "reopen", t_reopen },
	{ "migration_atomic", t_migration_atomic },
	{ "group_commit", t_group_commit },
	{ "errors", t_errors },
	{ "wal", t_wal },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return meta_env_run("meta", tests, argc, argv);
}
