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
	ST_OBJ_TOP, ST_OBJ_INSERT, ST_OBJ_UPDATE, ST_OBJ_DEL_OLDER, ST_OBJ_DEL, ST_OBJ_SET_STATE,
	ST_OBJ_LOAD, ST_OBJ_COUNT,
	ST_SYNC_CLEAR, ST_SYNC_ADD, ST_SYNC_DROP_MISSING, ST_SYNC_LOSE_QUEUE,
	ST_LEASE_PUT, ST_LEASE_RENEW, ST_LEASE_DEL, ST_OBJ_CONSUME, ST_QUEUE_COUNT,
	ST_QPART_TOUCH, ST_QPART_TRIM, ST_QCONSUMED_TRIM, ST_QPART_LOAD, ST_LEASE_LOAD,
	ST_LEASE_EXPIRE, ST_OBJ_DEAD_LOST,
	ST_FLOOR_LOAD, ST_FLOOR_CLEAR,
	ST__COUNT
};

/* The SQL of each statement, indexed by enum meta_st (meta.c). */
extern const char *const meta_st_sql[ST__COUNT];

/* Built by build-aux/sql2c.sh (src/store/sql_gen.c) from SQL_FILES
 * (meta_sql_files: master.db) and PEER_SQL_FILES (disk_sql_files: peer.db),
 * each in the listed order and terminated by { NULL, NULL }. */
struct meta_sql_file {
	const char *name;
	const char *text;
};
extern const struct meta_sql_file meta_sql_files[];
extern const struct meta_sql_file disk_sql_files[];

struct meta_db {
	sqlite3 *conn;
	char *path;
	const struct meta_sql_file *files; /* the schema this database follows */
	sqlite3_stmt *st[ST__COUNT];
	/* A full disk or a held lock fails every statement the same way, many
	 * times a second: the failure lines are rate-limited, and the last
	 * reason is kept for the writer's replies (meta_last_error). */
	struct kvn_ratelimit fail_rl;
	char last_err[160];
};

/* The highest NNN of files' NNN-*.sql steps. */
int meta_schema_version(const struct meta_sql_file *files);
/* Open (create) the SQLite file at path with the durable settings (WAL,
 * synchronous=FULL, read back), refuse a schema newer than files, apply the
 * missing NNN-*.sql steps of files and re-create the views of its
 * views.sql.  No statements are prepared (db->st stays empty): meta_open
 * adds the master's; peer.db (disk_index.c) prepares its own.  Close with
 * meta_close.  err names path and the reason. */
int meta_schema_open(const char *path, const struct meta_sql_file *files, struct meta_db **out,
		     char *err, size_t errlen);
void meta_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int meta_open_fail(struct meta_db *db, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int meta_fail_at(struct meta_db *db, const char *sql, const char *file, int line);
#define META_FAIL(db, sql) meta_fail_at((db), (sql), __FILE__, __LINE__)
void meta_st_end(struct meta_db *db, enum meta_st id);
int meta_st_fail_at(struct meta_db *db, enum meta_st id, const char *file, int line);
#define ST_FAIL(db, id) meta_st_fail_at((db), (id), __FILE__, __LINE__)
/* Run a bound statement to its end (meta.c): 0 or KVN_EDB. */
int meta_st_run_at(struct meta_db *db, enum meta_st id, const char *file, int line);
#define META_ST_RUN(db, id) meta_st_run_at((db), (id), __FILE__, __LINE__)

#endif
