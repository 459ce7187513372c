/*
 * t/meta: the master's SQLite store: schema and migrations, durability
 * settings (read back through a second connection, and WAL fsyncs counted
 * by a VFS shim), group commit, object semantics (supersede, delete, lost,
 * full sync), binary keys, the operator views read while a write
 * transaction is open, and the KVN_EDB failure path of each statement.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

#include "base/base.h"
#include "store/store.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
	static char buf[8][512];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
	return p;
}

/* Remove everything a case left in tmpdir (db, -wal, -shm, dirs). */
static void clean_dir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			const char *p = tpath(e->d_name);
			if (unlink(p) != 0)
				rmdir(p);
		}
	closedir(d);
}

/* A fresh database per case. */
static struct meta_db *fresh(const char *name)
{
	struct meta_db *db = NULL;
	char err[512] = "";
	clean_dir();
	if (meta_open(tpath(name), &db, err, sizeof err) != 0)
		kvn_fatal("meta_open %s: %s", name, err);
	return db;
}

static struct meta_db *reopen(const char *name)
{
	struct meta_db *db = NULL;
	char err[512] = "";
	if (meta_open(tpath(name), &db, err, sizeof err) != 0)
		kvn_fatal("meta_open %s: %s", name, err);
	return db;
}

/* ---- a second, independent connection (the operator's sqlite3) ------------- */

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		kvn_fatal("raw open %s: %s", path, c ? sqlite3_errmsg(c) : "?");
	sqlite3_busy_timeout(c, 2000); /* never wait long: tests must not hang */
	return c;
}

static int raw_exec(sqlite3 *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		tap_diag("raw exec '%s': %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	return rc;
}

/* Every row of a query as "c1,c2;c1,c2" (NULL as "NULL"); "ERR: ..." on error. */
static const char *rows(sqlite3 *c, const char *sql)
{
	static char out[16384];
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(c, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(out, sizeof out, "ERR: %s", sqlite3_errmsg(c));
		return out;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (int i = 0; i < sqlite3_column_count(s); i++) {
			const unsigned char *t = sqlite3_column_text(s, i);
			n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "," : (n ? ";" : ""),
					      t ? (const char *)t : "NULL");
			if (n >= sizeof out)
				kvn_fatal("rows: output too long for %s", sql);
		}
	}
	if (rc != SQLITE_DONE)
		snprintf(out, sizeof out, "ERR: %s", sqlite3_errmsg(c));
	sqlite3_finalize(s);
	return out;
}

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

/* ---- helpers over the API ------------------------------------------------- */

static int add_node(struct meta_db *db, const char *id, uint64_t dram_total, uint64_t dram_used)
{
	struct meta_node n = { 0 };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.role, sizeof n.role, "peer");
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:7%s", id);
	n.dram_total = dram_total;
	n.dram_used = dram_used;
	n.disk_total = 5000;
	n.disk_used = 1000;
	n.last_seq = 42;
	n.last_seen_ms = 1234;
	return meta_node_upsert(db, &n);
}

static int put(struct meta_db *db, const char *key, uint64_t gen, const char *node, int tier,
	       uint64_t size)
{
	struct meta_object o = { .key = key, .klen = strlen(key), .gen = gen, .node_id = node,
				 .tier = tier, .size = size };
	return meta_object_put(db, &o);
}

static uint64_t live(struct meta_db *db)
{
	uint64_t n = 0;
	if (meta_count_objects(db, &n) != 0)
		return (uint64_t)-1;
	return n;
}

/* meta_load_objects as a string: "key:gen:node:tier:size:state;..." */
struct dump {
	char s[8192];
	size_t n;
	int64_t last_order;
	int ordered; /* orders strictly increase */
};

static int dump_fn(void *arg, const struct meta_object *o)
{
	struct dump *d = arg;
	char k[64];
	kvn_key_printable(k, sizeof k, o->key, o->klen);
	d->n += (size_t)snprintf(d->s + d->n, sizeof d->s - d->n, "%s%s:%llu:%s:%d:%llu:%s",
				 d->n ? ";" : "", k, (unsigned long long)o->gen, o->node_id, o->tier,
				 (unsigned long long)o->size, o->state);
	if (o->order <= d->last_order)
		d->ordered = 0;
	d->last_order = o->order;
	return d->n + 1200 > sizeof d->s ? 1 : 0; /* full: stop (a prefix is enough) */
}

static const char *dump(struct meta_db *db)
{
	static struct dump d;
	memset(&d, 0, sizeof d);
	d.ordered = 1;
	if (meta_load_objects(db, dump_fn, &d) < 0)
		return "LOAD FAILED";
	if (!d.ordered)
		return "NOT IN COMMIT ORDER";
	return d.s;
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
	       "commit_seq,key,gen,node_id,tier,size,state,committed_ms", "objects columns");
	is_str(rows(c, "SELECT group_concat(name) FROM pragma_table_info('nodes')"),
	       "node_id,role,addr,dram_total,dram_used,disk_total,disk_used,last_seq,last_seen_ms,state",
	       "nodes columns");
	is_str(rows(c, "SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name"),
	       "v_capacity;v_leases;v_objects", "views");
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

/* master.db's floors as "key,gen;key,gen" in key order (meta_load_floors). */
static int floors_fn(void *arg, const void *key, size_t klen, uint64_t gen)
{
	char *out = arg;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "%s%.*s,%llu", n ? ";" : "", (int)klen, (const char *)key,
		 (unsigned long long)gen);
	return 0;
}

static const char *floors(struct meta_db *db)
{
	static char out[512];
	out[0] = '\0';
	if (meta_load_floors(db, floors_fn, out) != 0)
		snprintf(out, sizeof out, "ERR");
	return out;
}

static void t_supersede(void)
{
	struct meta_db *db = fresh("s.db");

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	is_int(put(db, "k", 5, "A", 0, 10), 0, "put gen 5 at A");
	is_int(put(db, "x", 1, "A", 0, 1), 0, "put another key");
	is_int(put(db, "k", 7, "B", 1, 20), 0, "put gen 7 at B");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:1:20:live", "gen 5 superseded, gen 7 last in order");
	is_str(floors(db), "", "a superseded row leaves no floor (the newer row is one)");
	is_int(put(db, "k", 6, "A", 0, 30), 0, "older gen 6: no error");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:1:20:live", "older gen is a no-op");
	is_int(put(db, "k", 7, "B", 0, 20), 0, "same gen again (tier move)");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:0:20:live", "updated in place, order kept");
	is_int(meta_object_del(db, "k", 1, 6), 0, "del of an absent gen: not an error");
	is_int(live(db), 2, "nothing deleted");
	is_int(meta_object_del(db, "k", 1, 7), 0, "del exact gen");
	is_str(dump(db), "x:1:A:0:1:live", "gone");
	is_str(floors(db), "k,8", "the key's last row deleted: its floor is the next gen");
	is_int(meta_floors_clear(db), 0, "floors cleared");
	is_str(floors(db), "", "none left");
	is_int(put(db, "k", 3, "A", 0, 1), 0, "after a delete, any gen may come back");
	is_str(dump(db), "x:1:A:0:1:live;k:3:A:0:1:live", "re-put after delete");
	meta_close(db);
}

static void t_set_state(void)
{
	struct meta_db *db = fresh("l.db");

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	put(db, "a1", 1, "A", 0, 1);
	put(db, "b1", 1, "B", 0, 1);
	put(db, "a2", 1, "A", 1, 1);
	is_int(meta_objects_set_state(db, "A", "lost"), 0, "node A lost");
	is_int(meta_node_set_state(db, "A", "dead"), 0, "node A dead");
	is_int(live(db), 1, "only B's object counts as live");
	is_str(dump(db), "a1:1:A:0:1:lost;b1:1:B:0:1:live;a2:1:A:1:1:lost", "rows kept, marked lost");
	is_int(meta_objects_set_state(db, "A", "live"), 0, "node A back");
	is_int(live(db), 3, "live again");
	is_str(dump(db), "a1:1:A:0:1:live;b1:1:B:0:1:live;a2:1:A:1:1:live", "order unchanged");
	is_int(meta_objects_set_state(db, "A", "gone"), KVN_EINVAL, "bad state refused");
	is_int(meta_node_set_state(db, "A", "zombie"), KVN_EINVAL, "bad node state refused");
	is_int(meta_node_set_state(db, "nobody", "dead"), KVN_ENOTFOUND, "unknown node");
	meta_close(db);
}

static void t_replace_node(void)
{
	struct meta_db *db = fresh("f.db");
	sqlite3 *c;

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	put(db, "k1", 1, "A", 0, 1);
	put(db, "k2", 1, "A", 0, 2);
	put(db, "k4", 1, "B", 0, 4);
	put(db, "k3", 1, "A", 0, 3);
	put(db, "old", 9, "B", 0, 9); /* superseded at B while A still held gen 8 */
	meta_objects_set_state(db, "A", "lost");

	struct meta_object snap[] = {
		{ .key = "k5", .klen = 2, .gen = 1, .tier = 0, .size = 5 },
		{ .key = "k2", .klen = 2, .gen = 1, .tier = 1, .size = 2 },
		{ .key = "old", .klen = 3, .gen = 8, .node_id = "A", .tier = 0, .size = 8 },
	};
	is_int(meta_begin(db), 0, "begin");
	is_int(meta_objects_replace_node(db, "A", snap, 3), 0, "full sync of A");
	is_int(meta_commit(db), 0, "commit");
	is_str(dump(db), "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live",
	       "A = snapshot (k2 kept its order), B untouched, superseded gen not resurrected");
	is_str(floors(db), "k1,2;k3,2", "the rows A no longer holds leave floors");

	snap[2].node_id = "B";
	is_int(meta_objects_replace_node(db, "A", snap, 3), KVN_EINVAL, "row naming another node");
	is_int(meta_objects_replace_node(db, "A", NULL, 1), KVN_EINVAL, "NULL set with n > 0");

	/* A failure half-way (the second row) undoes the whole call. */
	c = raw_open(tpath("f.db"));
	raw_exec(c, "CREATE TRIGGER boom BEFORE INSERT ON objects WHEN NEW.gen = 999 "
		    "BEGIN SELECT RAISE(ABORT, 'injected'); END");
	struct meta_object bad[] = {
		{ .key = "k6", .klen = 2, .gen = 1, .tier = 0, .size = 6 },
		{ .key = "k7", .klen = 2, .gen = 999, .tier = 0, .size = 7 },
	};
	is_int(meta_objects_replace_node(db, "A", bad, 2), KVN_EDB, "failing row: KVN_EDB");
	is_str(dump(db), "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live",
	       "nothing of the failed sync applied (autocommit)");
	is_int(meta_begin(db), 0, "begin");
	is_int(put(db, "k8", 1, "B", 0, 8), 0, "put in the group");
	is_int(meta_objects_replace_node(db, "A", bad, 2), KVN_EDB, "failing sync inside a group");
	is_int(meta_commit(db), 0, "the group still commits");
	is_str(dump(db),
	       "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live;k8:1:B:0:8:live",
	       "the group's other writes kept, the failed sync undone");
	raw_exec(c, "DROP TRIGGER boom");
	sqlite3_close(c);
	is_int(meta_objects_replace_node(db, "A", NULL, 0), 0, "empty snapshot");
	is_str(dump(db), "k4:1:B:0:4:live;old:9:B:0:9:live;k8:1:B:0:8:live", "A now holds nothing");
	meta_close(db);
}

static void t_binary_keys(void)
{
	struct meta_db *db = fresh("b.db");
	const char k1[] = { 'a', 0, 'b', 0 }, k2[] = { 'a', 0, 'c' }, k3[] = { 'a' };
	struct meta_object o = { .key = k1, .klen = sizeof k1, .gen = 1, .node_id = "A", .size = 1 };

	add_node(db, "A", 100, 0);
	is_int(meta_object_put(db, &o), 0, "key with NUL bytes");
	o.key = k2, o.klen = sizeof k2;
	is_int(meta_object_put(db, &o), 0, "same prefix up to a NUL, different key");
	o.key = k3, o.klen = sizeof k3;
	is_int(meta_object_put(db, &o), 0, "the prefix alone");
	is_int(live(db), 3, "three distinct keys (no truncation at NUL)");
	is_str(dump(db), "hex:61006200:1:A:0:1:live;hex:610063:1:A:0:1:live;a:1:A:0:1:live",
	       "bytes round-trip exactly");
	is_int(meta_object_del(db, k1, sizeof k1, 1), 0, "delete by binary key");
	is_str(dump(db), "hex:610063:1:A:0:1:live;a:1:A:0:1:live", "only that key went");
	meta_close(db);
}

static void t_views(void)
{
	struct meta_db *db = fresh("v.db");
	const char bin[] = { 'z', 0, (char)0xff };
	struct meta_object o = { .key = bin, .klen = sizeof bin, .gen = 3, .node_id = "B", .size = 7 };
	sqlite3 *c;

	add_node(db, "A", 1000, 300);
	add_node(db, "B", 100, 200); /* over-used: free shows 0, never negative */
	put(db, "k1", 5, "A", 0, 10);
	put(db, "hex:00", 1, "A", 1, 20);
	meta_object_put(db, &o);
	put(db, "lostkey", 1, "B", 0, 1000);
	c = raw_open(tpath("v.db"));
	raw_exec(c, "INSERT INTO leases VALUES (CAST('k1' AS BLOB), 5, 'trainer-1', 0, 4, 1), "
		    "(x'7a00ff', 3, 'trainer-2', 3, 4, 9000000000000)");
	meta_begin(db);
	meta_objects_set_state(db, "B", "lost");
	meta_node_set_state(db, "B", "dead");
	put(db, "uncommitted", 1, "A", 0, 1);

	/* The operator's view while kvnode holds an open write transaction. */
	is_str(rows(c, "SELECT * FROM v_capacity"),
	       "A,alive,1000,300,700,5000,1000,4000,2,30;B,alive,100,200,0,5000,1000,4000,2,1007",
	       "v_capacity: committed state only, reader not blocked");
	is_str(rows(c, "SELECT key, gen, node_id, tier, size, state FROM v_objects"),
	       "k1,5,A,dram,10,live;hex:6865783a3030,1,A,disk,20,live;hex:7a00ff,3,B,dram,7,live;"
	       "lostkey,1,B,dram,1000,live",
	       "v_objects: printable keys as text, others (and 'hex:...') as hex, commit order");
	is_str(rows(c, "SELECT key, gen, holder, part_i, part_n, deadline_ms, expired FROM v_leases"),
	       "k1,5,trainer-1,0,4,1,1;hex:7a00ff,3,trainer-2,3,4,9000000000000,0", "v_leases");
	is_int(meta_commit(db), 0, "commit");
	is_str(rows(c, "SELECT node_id, state, live_objects, live_bytes FROM v_capacity"),
	       "A,alive,3,31;B,dead,0,0", "after commit: B dead, its objects lost");
	is_str(rows(c, "SELECT key, state FROM v_objects WHERE node_id = 'B'"),
	       "hex:7a00ff,lost;lostkey,lost", "lost rows still listed");

	/* Deleting an object ends its lease (foreign key, ON DELETE CASCADE). */
	is_int(meta_object_del(db, "k1", 2, 5), 0, "delete a leased object");
	is_str(rows(c, "SELECT key FROM v_leases"), "hex:7a00ff", "its lease went with it");
	sqlite3_close(c);
	meta_close(db);
}

static void t_inputs(void)
{
	struct meta_db *db = fresh("i.db");
	struct meta_node n = { 0 };
	char big[KVN_MAX_KEY + 1];
	uint32_t e;

	memset(big, 'x', sizeof big);
	add_node(db, "A", 100, 0);
	is_int(put(db, "k", 1, "nobody", 0, 1), KVN_EDB, "unknown node: foreign key refuses");
	is_int(put(db, "", 1, "A", 0, 1), KVN_EKEYLEN, "empty key");
	struct meta_object o = { .key = big, .klen = sizeof big, .gen = 1, .node_id = "A" };
	is_int(meta_object_put(db, &o), KVN_EKEYLEN, "key longer than KVN_MAX_KEY");
	o.klen = KVN_MAX_KEY;
	is_int(meta_object_put(db, &o), 0, "key of exactly KVN_MAX_KEY");
	is_int(put(db, "k", 0, "A", 0, 1), KVN_EINVAL, "gen 0");
	is_int(put(db, "k", (uint64_t)INT64_MAX + 1, "A", 0, 1), KVN_EINVAL, "gen beyond 2^63-1");
	is_int(put(db, "k", 1, "A", 2, 1), KVN_EINVAL, "tier 2");
	is_int(put(db, "k", 1, NULL, 0, 1), KVN_EINVAL, "no node");
	o.klen = 1, o.state = "dead";
	is_int(meta_object_put(db, &o), KVN_EINVAL, "bad object state");
	is_int(meta_object_del(db, "k", 0, 1), KVN_EKEYLEN, "del: empty key");
	is_int(meta_object_del(db, "k", 1, 0), KVN_EINVAL, "del: gen 0");
	memset(n.node_id, 'n', sizeof n.node_id); /* no terminator */
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "unterminated node id");
	n.node_id[0] = '\0';
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "empty node id");
	snprintf(n.node_id, sizeof n.node_id, "C");
	n.dram_total = UINT64_MAX;
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "capacity beyond 2^63-1");
	n.dram_total = 1;
	is_int(meta_node_upsert(db, &n), 0, "empty state means alive");
	is_int(meta_epoch_next(NULL, &e), KVN_EINVAL, "NULL db");
	is_int(meta_count_objects(db, NULL), KVN_EINVAL, "NULL out");
	is_int(meta_load_objects(db, NULL, NULL), KVN_EINVAL, "NULL callback");
	is_int(meta_open(NULL, NULL, NULL, 0), KVN_EINVAL, "meta_open(NULL)");
	meta_close(NULL);
	meta_close(db);
}

/* Stop after n rows: the callback's value comes back, and the statement is
 * reset (a later load starts from the beginning). */
static int stop_fn(void *arg, const struct meta_object *o)
{
	(void)o;
	return --*(int *)arg == 0 ? 77 : 0;
}

static int node_fn(void *arg, const struct meta_node *n)
{
	char *out = arg;
	size_t l = strlen(out);
	snprintf(out + l, 256 - l, "%s%s,%s,%s,%llu,%llu,%s", l ? ";" : "", n->node_id, n->role,
		 n->addr, (unsigned long long)n->dram_total, (unsigned long long)n->last_seq, n->state);
	return 0;
}

static void t_loads(void)
{
	struct meta_db *db = fresh("o.db");
	char nodes[256] = "";
	int left = 2;

	add_node(db, "B", 100, 0);
	add_node(db, "A", 200, 0);
	add_node(db, "A", 300, 0); /* upsert */
	put(db, "k3", 1, "A", 0, 1);
	put(db, "k1", 1, "A", 0, 1);
	put(db, "k2", 1, "B", 0, 1);
	put(db, "k1", 2, "B", 0, 1);
	is_str(dump(db), "k3:1:A:0:1:live;k2:1:B:0:1:live;k1:2:B:0:1:live",
	       "load order = commit order (a re-put moves to the end)");
	is_int(meta_load_objects(db, stop_fn, &left), 77, "callback's non-zero return stops the load");
	is_str(dump(db), "k3:1:A:0:1:live;k2:1:B:0:1:live;k1:2:B:0:1:live", "next load starts over");
	is_int(meta_load_nodes(db, node_fn, nodes), 0, "load nodes");
	is_str(nodes, "A,peer,127.0.0.1:7A,300,42,alive;B,peer,127.0.0.1:7B,100,42,alive",
	       "nodes round-trip, upsert replaced");
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
	is_int(meta_object_del(db, "k", 1, 1), KVN_EDB, "object_del fails");
	raw_exec(c, "DROP TRIGGER f6; ALTER TABLE objects RENAME TO objects_x; "
		    "ALTER TABLE nodes RENAME TO nodes_x");
	is_int(meta_count_objects(db, &n), KVN_EDB, "count: table gone");
	is_str(dump(db), "LOAD FAILED", "load_objects: table gone");
	is_int(meta_load_nodes(db, node_fn, err), KVN_EDB, "load_nodes: table gone");
	raw_exec(c, "ALTER TABLE objects_x RENAME TO objects; ALTER TABLE nodes_x RENAME TO nodes");
	is_int(meta_count_objects(db, &n), 0, "works again once the table is back");
	is_int(n, 1, "count");
	sqlite3_close(c);
	meta_close(db);
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
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
	{ "supersede", t_supersede },
	{ "set_state", t_set_state },
	{ "replace_node", t_replace_node },
	{ "binary_keys", t_binary_keys },
	{ "views", t_views },
	{ "inputs", t_inputs },
	{ "loads", t_loads },
	{ "errors", t_errors },
	{ "wal", t_wal },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	int rc;

	snprintf(tmpdir, sizeof tmpdir, "%s/kvn-meta-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		kvn_fatal("mkdtemp %s: %s", tmpdir, strerror(errno));
	rc = tap_run(tests, argc, argv);
	clean_dir();
	rmdir(tmpdir);
	return rc;
}
