/*
 * meta_queue: master.db's side of the consumer queue (DESIGN.md section 8,
 * sql/003-queue.sql): lease rows, consuming a sample, the partition counts
 * v_queue reports, the loads and the reconcile at start.  The statements
 * are in meta.c's table; one owner thread, as for the rest of meta.
 */
#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"
#include "store/meta_int.h"

#define BIND(db, id, call)                           \
	do {                                         \
		if ((call) != SQLITE_OK)             \
			return ST_FAIL((db), (id));  \
	} while (0)

static int key_gen_ok(const void *key, size_t klen, uint64_t gen)
{
	return key && klen >= 1 && klen <= KVN_MAX_KEY && gen >= 1 && gen <= (uint64_t)INT64_MAX;
}

static int id_ok(uint64_t v)
{
	return v >= 1 && v <= (uint64_t)INT64_MAX;
}

int meta_lease_put(struct meta_db *db, const struct meta_lease *l)
{
	const enum meta_st id = ST_LEASE_PUT;
	sqlite3_stmt *s;
	int rc;

	if (!db || !l || !id_ok(l->lease_id) || !key_gen_ok(l->key, l->klen, l->gen) || !l->holder ||
	    strlen(l->holder) > 64 || l->part_n < 1 || l->part_i >= l->part_n || !id_ok(l->deadline_ms))
		return KVN_EINVAL;
	s = db->st[id];
	BIND(db, id, sqlite3_bind_int64(s, 1, (int64_t)l->lease_id));
	BIND(db, id, sqlite3_bind_blob(s, 2, l->key, (int)l->klen, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(s, 3, (int64_t)l->gen));
	BIND(db, id, sqlite3_bind_text(s, 4, l->holder, -1, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(s, 5, l->part_i));
	BIND(db, id, sqlite3_bind_int64(s, 6, l->part_n));
	BIND(db, id, sqlite3_bind_int64(s, 7, (int64_t)l->deadline_ms));
	if ((rc = META_ST_RUN(db, id)) < 0)
		return rc;
	return sqlite3_changes(db->conn) > 0;
}

int meta_lease_renew(struct meta_db *db, uint64_t lease_id, uint64_t deadline_ms)
{
	const enum meta_st id = ST_LEASE_RENEW;
	int rc;

	if (!db || !id_ok(lease_id) || !id_ok(deadline_ms))
		return KVN_EINVAL;
	BIND(db, id, sqlite3_bind_int64(db->st[id], 1, (int64_t)lease_id));
	BIND(db, id, sqlite3_bind_int64(db->st[id], 2, (int64_t)deadline_ms));
	if ((rc = META_ST_RUN(db, id)) < 0)
		return rc;
	return sqlite3_changes(db->conn) > 0;
}

int meta_lease_del(struct meta_db *db, uint64_t lease_id)
{
	const enum meta_st id = ST_LEASE_DEL;
	int rc;

	if (!db || !id_ok(lease_id))
		return KVN_EINVAL;
	BIND(db, id, sqlite3_bind_int64(db->st[id], 1, (int64_t)lease_id));
	if ((rc = META_ST_RUN(db, id)) < 0)
		return rc;
	return sqlite3_changes(db->conn) > 0;
}

int meta_sample_consume(struct meta_db *db, uint64_t lease_id, const void *key, size_t klen, uint64_t gen,
			int keep)
{
	enum meta_st id = keep ? ST_OBJ_CONSUME : ST_OBJ_DEL;
	int rc;

	if (!db || !key_gen_ok(key, klen, gen) || (lease_id && !id_ok(lease_id)))
		return KVN_EINVAL;
	/* kept: the lease row goes by hand (deleting the object takes it with
	 * it: ON DELETE CASCADE) */
	if (keep && lease_id && (rc = meta_lease_del(db, lease_id)) < 0)
		return rc;
	BIND(db, id, sqlite3_bind_blob(db->st[id], 1, key, (int)klen, SQLITE_STATIC));
	BIND(db, id, sqlite3_bind_int64(db->st[id], 2, (int64_t)gen));
	if ((rc = META_ST_RUN(db, id)) < 0)
		return rc;
	if (sqlite3_changes(db->conn) == 0)
		return 0; /* gone meanwhile (superseded, removed): nothing consumed */
	id = ST_QUEUE_COUNT;
	BIND(db, id, sqlite3_bind_int64(db->st[id], 1, (int64_t)kvn_hash64(key, klen)));
	if ((rc = META_ST_RUN(db, id)) < 0)
		return rc;
	return 1;
}

int meta_queue_part(struct meta_db *db, uint32_t part_n, uint64_t now_ms, int trim)
{
	int rc;

	if (!db || part_n < 1)
		return KVN_EINVAL;
	BIND(db, ST_QPART_TOUCH, sqlite3_bind_int64(db->st[ST_QPART_TOUCH], 1, part_n));
	BIND(db, ST_QPART_TOUCH, sqlite3_bind_int64(db->st[ST_QPART_TOUCH], 2, (int64_t)now_ms));
	if ((rc = META_ST_RUN(db, ST_QPART_TOUCH)) < 0)
		return rc;
	if (trim && ((rc = META_ST_RUN(db, ST_QPART_TRIM)) < 0 || (rc = META_ST_RUN(db, ST_QCONSUMED_TRIM)) < 0))
		return rc;
	return 0;
}

int meta_queue_parts_load(struct meta_db *db, uint32_t *parts, size_t cap, size_t *n)
{
	const enum meta_st id = ST_QPART_LOAD;
	sqlite3_stmt *s;
	int rc;

	if (!db || !parts || !n)
		return KVN_EINVAL;
	*n = 0;
	s = db->st[id];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(s, 0);
		if (*n < cap && v >= 1 && v <= UINT32_MAX)
			parts[(*n)++] = (uint32_t)v;
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	meta_st_end(db, id);
	return 0;
}

int meta_load_leases(struct meta_db *db, meta_lease_fn fn, void *arg)
{
	const enum meta_st id = ST_LEASE_LOAD;
	sqlite3_stmt *s;
	int rc;

	if (!db || !fn)
		return KVN_EINVAL;
	s = db->st[id];
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct meta_lease l = { 0 };
		l.lease_id = (uint64_t)sqlite3_column_int64(s, 0);
		l.key = sqlite3_column_blob(s, 1);
		l.klen = (size_t)sqlite3_column_bytes(s, 1);
		l.gen = (uint64_t)sqlite3_column_int64(s, 2);
		l.holder = (const char *)sqlite3_column_text(s, 3);
		l.part_i = (uint32_t)sqlite3_column_int64(s, 4);
		l.part_n = (uint32_t)sqlite3_column_int64(s, 5);
		l.deadline_ms = (uint64_t)sqlite3_column_int64(s, 6);
		if (!l.key || !l.holder)
			return ST_FAIL(db, id);
		if ((rc = fn(arg, &l)) != 0) {
			meta_st_end(db, id);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return ST_FAIL(db, id);
	meta_st_end(db, id);
	return 0;
}

int meta_queue_reconcile(struct meta_db *db, uint64_t now_ms, uint64_t *expired, uint64_t *lost)
{
	int rc;

	if (!db)
		return KVN_EINVAL;
	if ((rc = meta_begin(db)) < 0)
		return rc;
	BIND(db, ST_LEASE_EXPIRE, sqlite3_bind_int64(db->st[ST_LEASE_EXPIRE], 1, (int64_t)now_ms));
	if ((rc = META_ST_RUN(db, ST_LEASE_EXPIRE)) < 0)
		goto fail;
	if (expired)
		*expired = (uint64_t)sqlite3_changes(db->conn);
	if ((rc = META_ST_RUN(db, ST_OBJ_DEAD_LOST)) < 0)
		goto fail;
	if (lost)
		*lost = (uint64_t)sqlite3_changes(db->conn);
	return meta_commit(db);
fail:
	(void)meta_rollback(db);
	return rc;
}
