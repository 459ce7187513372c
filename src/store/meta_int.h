/*
 * meta_int: private to src/store/meta*.c.  Owns what meta.c (operations) and
 * meta_open.c (open, migrate, views) share: struct meta_db, the statement ids
 * and their SQL text table (defined in meta.c), and the error and statement
 * helpers with their file:line macros.
 */
#ifndef KVN_META_INT_H
#define KVN_META_INT_H

#include <sqlite3.h>
#include <stddef.h>

enum meta_st {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
	ST_USER_VERSION, ST_EPOCH_NEXT, ST_EPOCH_RAISE,
	ST_NODE_UPSERT, ST_NODE_SET_STATE, ST_NODE_LOAD,
	ST_OBJ_NEWER, ST_OBJ_DEL_OLDER, ST_OBJ_UPSERT, ST_OBJ_DEL, ST_OBJ_SET_STATE,
	ST_OBJ_LOAD, ST_OBJ_COUNT,
	ST_SYNC_CLEAR, ST_SYNC_ADD, ST_SYNC_DROP_MISSING,
	ST_FLOOR_LOAD, ST_FLOOR_CLEAR,
	ST__COUNT
};

/* The SQL of each statement, indexed by enum meta_st (meta.c). */
extern const char *const meta_st_sql[ST__COUNT];

struct meta_db {
	sqlite3 *conn;
	char *path;
	sqlite3_stmt *st[ST__COUNT];
	/* A full disk or a held lock fails every statement the same way, many
	 * times a second: the failure lines are rate-limited, and the last
	 * reason is kept for the writer's replies (meta_last_error). */
	struct kvn_ratelimit fail_rl;
	char last_err[160];
};

void meta_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int meta_open_fail(struct meta_db *db, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int meta_fail_at(struct meta_db *db, const char *sql, const char *file, int line);
#define META_FAIL(db, sql) meta_fail_at((db), (sql), __FILE__, __LINE__)
void meta_st_end(struct meta_db *db, enum meta_st id);
int meta_st_fail_at(struct meta_db *db, enum meta_st id, const char *file, int line);
#define ST_FAIL(db, id) meta_st_fail_at((db), (id), __FILE__, __LINE__)

#endif
