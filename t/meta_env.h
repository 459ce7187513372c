/*
 * t/meta_env.h: the fixture both halves of the master's SQLite store tests
 * share (t/meta: files, schema, durability, failures; t/meta_objects: the
 * object and node semantics): a private temp dir with a fresh database per
 * case, a second raw connection (the operator's sqlite3) and helpers over
 * the meta_* API that print what they read as strings.
 */
#ifndef KVN_T_META_ENV_H
#define KVN_T_META_ENV_H

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

static inline const char *tpath(const char *name)
{
	static char buf[8][512];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
	return p;
}

/* Remove everything a case left in tmpdir (db, -wal, -shm, dirs). */
static inline void clean_dir(void)
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
static inline struct meta_db *fresh(const char *name)
{
	struct meta_db *db = NULL;
	char err[512] = "";
	clean_dir();
	if (meta_open(tpath(name), &db, err, sizeof err) != 0)
		kvn_fatal("meta_open %s: %s", name, err);
	return db;
}

static inline struct meta_db *reopen(const char *name)
{
	struct meta_db *db = NULL;
	char err[512] = "";
	if (meta_open(tpath(name), &db, err, sizeof err) != 0)
		kvn_fatal("meta_open %s: %s", name, err);
	return db;
}

/* ---- a second, independent connection (the operator's sqlite3) ------------- */

static inline sqlite3 *raw_open(const char *path)
{
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		kvn_fatal("raw open %s: %s", path, c ? sqlite3_errmsg(c) : "?");
	sqlite3_busy_timeout(c, 2000); /* never wait long: tests must not hang */
	return c;
}

static inline int raw_exec(sqlite3 *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		tap_diag("raw exec '%s': %s", sql, msg ? msg : "?");
	sqlite3_free(msg);
	return rc;
}

/* Every row of a query as "c1,c2;c1,c2" (NULL as "NULL"); "ERR: ..." on error. */
static inline const char *rows(sqlite3 *c, const char *sql)
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

/* ---- helpers over the API ------------------------------------------------- */

static inline int add_node(struct meta_db *db, const char *id, uint64_t dram_total, uint64_t dram_used)
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

static inline int put(struct meta_db *db, const char *key, uint64_t gen, const char *node, int tier,
		      uint64_t size)
{
	struct meta_object o = { .key = key, .klen = strlen(key), .gen = gen, .node_id = node,
				 .tier = tier, .size = size };
	return meta_object_put(db, &o);
}

static inline uint64_t live(struct meta_db *db)
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

static inline int dump_fn(void *arg, const struct meta_object *o)
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

static inline const char *dump(struct meta_db *db)
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

/* master.db's floors as "key,gen;key,gen" in key order (meta_load_floors). */
static inline int floors_fn(void *arg, const void *key, size_t klen, uint64_t gen)
{
	char *out = arg;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "%s%.*s,%llu", n ? ";" : "", (int)klen, (const char *)key,
		 (unsigned long long)gen);
	return 0;
}

static inline const char *floors(struct meta_db *db)
{
	static char out[512];
	out[0] = '\0';
	if (meta_load_floors(db, floors_fn, out) != 0)
		snprintf(out, sizeof out, "ERR");
	return out;
}

/* meta_load_nodes as a string: "id,role,addr,dram_total,last_seq,state;..." */
static inline int node_fn(void *arg, const struct meta_node *n)
{
	char *out = arg;
	size_t l = strlen(out);
	snprintf(out + l, 256 - l, "%s%s,%s,%s,%llu,%llu,%s", l ? ";" : "", n->node_id, n->role,
		 n->addr, (unsigned long long)n->dram_total, (unsigned long long)n->last_seq, n->state);
	return 0;
}

static inline long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The main of both programs: a temp dir around the cases. */
static inline int meta_env_run(const char *name, const struct tap_test *tests, int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	int rc;

	snprintf(tmpdir, sizeof tmpdir, "%s/kvn-%s-XXXXXX", base && *base ? base : "/tmp", name);
	if (!mkdtemp(tmpdir))
		kvn_fatal("mkdtemp %s: %s", tmpdir, strerror(errno));
	rc = tap_run(tests, argc, argv);
	clean_dir();
	rmdir(tmpdir);
	return rc;
}

#endif
