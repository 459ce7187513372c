/*
 * disk_index: peer.db, the disk tier's index (one row per file; schema in
 * sql/peer/, applied by meta_schema_open with the master's migration code).
 * Owns the connection and its statements, prepared once at open.  Each
 * change is one autocommit statement: its own transaction, durable at
 * return (synchronous=FULL, read back by meta_schema_open).
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/disk_int.h"
#include "store/store.h"
#include "store/meta_int.h"

enum ix_st { IX_PUT, IX_GET, IX_DEL, IX_SCAN, IX__COUNT };

static const char *const ix_sql[IX__COUNT] = {
	[IX_PUT] = "INSERT OR REPLACE INTO disk_files "
		   "(key, gen, size, checksum, expires_wall_ms, flags, file) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[IX_GET] = "SELECT size, checksum, expires_wall_ms, flags FROM disk_files WHERE key = ? AND gen = ?",
	[IX_DEL] = "DELETE FROM disk_files WHERE key = ? AND gen = ?",
	[IX_SCAN] = "SELECT key, gen, size, checksum, expires_wall_ms, flags, file FROM disk_files "
		    "ORDER BY key, gen",
};

struct disk_index {
	struct meta_db *db;
	sqlite3_stmt *st[IX__COUNT];
};

/* SQLite integers are signed 64-bit: uint64 values (gen, checksum) are
 * stored as their two's-complement int64 and read back the same way. */
#define I64(u) ((sqlite3_int64)(u))
#define U64(i) ((uint64_t)(i))

int disk_index_open(const char *path, struct disk_index **out, char *err, size_t errlen)
{
	struct disk_index *ix = kvn_xcalloc(1, sizeof *ix);
	int rc = meta_schema_open(path, disk_sql_files, &ix->db, err, errlen);

	*out = NULL;
	if (rc < 0) {
		free(ix);
		return rc;
	}
	for (int i = 0; i < IX__COUNT; i++)
		if (sqlite3_prepare_v3(ix->db->conn, ix_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->st[i],
				       NULL) != SQLITE_OK) {
			meta_seterr(err, errlen, "%s: %s", path, sqlite3_errmsg(ix->db->conn));
			rc = META_FAIL(ix->db, ix_sql[i]);
			disk_index_close(ix);
			return rc;
		}
	*out = ix;
	return 0;
}

void disk_index_close(struct disk_index *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < IX__COUNT; i++)
		sqlite3_finalize(ix->st[i]);
	meta_close(ix->db);
	free(ix);
}

/* Reset a statement after use (its bindings too: a blob bound with
 * SQLITE_STATIC must not outlive the caller's buffer). */
static void st_end(struct disk_index *ix, enum ix_st id)
{
	sqlite3_reset(ix->st[id]);
	sqlite3_clear_bindings(ix->st[id]);
}

static int st_fail(struct disk_index *ix, enum ix_st id, int line)
{
	int rc = meta_fail_at(ix->db, ix_sql[id], __FILE__, line);
	st_end(ix, id);
	return rc;
}
#define IX_FAIL(ix, id) st_fail((ix), (id), __LINE__)

static int bind_key(sqlite3_stmt *s, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	if (sqlite3_bind_blob(s, 1, key, klen, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 2, I64(gen)) != SQLITE_OK)
		return -1;
	return 0;
}

int disk_index_put(struct disk_index *ix, const struct disk_entry *e, const char *file)
{
	sqlite3_stmt *s = ix->st[IX_PUT];
	if (bind_key(s, e->key, e->klen, e->gen) < 0 || sqlite3_bind_int64(s, 3, I64(e->size)) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 4, I64(e->checksum)) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 5, I64(e->expires_wall_ms)) != SQLITE_OK ||
	    sqlite3_bind_int64(s, 6, e->flags) != SQLITE_OK ||
	    sqlite3_bind_text(s, 7, file, -1, SQLITE_STATIC) != SQLITE_OK || sqlite3_step(s) != SQLITE_DONE)
		return IX_FAIL(ix, IX_PUT);
	st_end(ix, IX_PUT);
	return 0;
}

int disk_index_get(struct disk_index *ix, const uint8_t *key, uint16_t klen, uint64_t gen,
		   struct disk_entry *e)
{
	sqlite3_stmt *s = ix->st[IX_GET];
	int rc;
	if (bind_key(s, key, klen, gen) < 0)
		return IX_FAIL(ix, IX_GET);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		e->klen = klen;
		e->gen = gen;
		e->size = U64(sqlite3_column_int64(s, 0));
		e->checksum = U64(sqlite3_column_int64(s, 1));
		e->expires_wall_ms = U64(sqlite3_column_int64(s, 2));
		e->flags = (uint32_t)sqlite3_column_int64(s, 3);
		st_end(ix, IX_GET);
		return 1;
	}
	if (rc != SQLITE_DONE)
		return IX_FAIL(ix, IX_GET);
	st_end(ix, IX_GET);
	return 0;
}

int disk_index_del(struct disk_index *ix, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	sqlite3_stmt *s = ix->st[IX_DEL];
	if (bind_key(s, key, klen, gen) < 0 || sqlite3_step(s) != SQLITE_DONE)
		return IX_FAIL(ix, IX_DEL);
	st_end(ix, IX_DEL);
	return 0;
}

int disk_index_scan(struct disk_index *ix, disk_row_fn fn, void *arg)
{
	sqlite3_stmt *s = ix->st[IX_SCAN];
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *file = sqlite3_column_text(s, 6);
		int klen = sqlite3_column_bytes(s, 0);
		struct disk_entry e = {
			.key = sqlite3_column_blob(s, 0),
			.klen = (uint16_t)klen,
			.gen = U64(sqlite3_column_int64(s, 1)),
			.size = U64(sqlite3_column_int64(s, 2)),
			.checksum = U64(sqlite3_column_int64(s, 3)),
			.expires_wall_ms = U64(sqlite3_column_int64(s, 4)),
			.flags = (uint32_t)sqlite3_column_int64(s, 5),
		};
		if (klen < 1 || klen > KVN_MAX_KEY || !file || !e.key) {
			/* Only a hand-edited database gets here: skip the row
			 * (recovery then removes its file as an orphan). */
			log_warn("disk: %s: skipping a row with a bad key or file", ix->db->path);
			continue;
		}
		if ((rc = fn(arg, &e, (const char *)file)) != 0) {
			st_end(ix, IX_SCAN);
			return rc;
		}
	}
	if (rc != SQLITE_DONE)
		return IX_FAIL(ix, IX_SCAN);
	st_end(ix, IX_SCAN);
	return 0;
}
