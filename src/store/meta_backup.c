/*
 * meta_backup: a consistent copy of a running master's master.db
 * (`kvnode --role master backup FILE`, docs/operations.md "Backup and
 * restore").  Reads the database through a read-only connection of its own
 * (never creates it, never takes the data_dir's lock: the master keeps
 * running), copies it with SQLite's online backup API inside one read
 * transaction, checks the copy, and publishes it under its name only once it
 * is complete and on disk.  Also the command's argument parsing and
 * report (meta_backup_cmd), so the wiring in kvnode.c stays one call.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"
#include "store/meta_int.h"

/* Pages per backup step: small enough that the deadline is looked at often,
 * large enough that a step is not mostly overhead (4 MiB of 4 KiB pages). */
#define BACKUP_STEP_PAGES 1024
/* How long one SQLite call waits for a lock before our loop looks at the
 * deadline again. */
#define BACKUP_BUSY_MS 100

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Run one statement that returns at most one row; *ival gets its first
 * column.  Retries while the database is busy, until the deadline. */
static int one_row(sqlite3 *db, const char *sql, int64_t *ival, char *text, size_t cap,
		   uint64_t deadline, const char *what, char *err, size_t errlen)
{
	for (;;) {
		sqlite3_stmt *s = NULL;
		int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			if (ival)
				*ival = sqlite3_column_int64(s, 0);
			if (text && cap) {
				const unsigned char *t = sqlite3_column_text(s, 0);
				snprintf(text, cap, "%s", t ? (const char *)t : "");
			}
			rc = SQLITE_DONE;
		}
		sqlite3_finalize(s);
		if (rc == SQLITE_DONE)
			return 0;
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && kvn_now_ms() < deadline) {
			nap_ms(5);
			continue;
		}
		meta_seterr(err, errlen, "%s: %s", what, sqlite3_errmsg(db));
		return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? KVN_ETIMEDOUT : KVN_EDB;
	}
}

/* fsync a file, or with dir != 0 the directory holding it. */
static int sync_path(const char *path, int dir, char *err, size_t errlen)
{
	char buf[4096];
	const char *p = path;
	if (dir) {
		snprintf(buf, sizeof buf, "%s", path);
		p = dirname(buf);
	}
	int fd = open(p, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		meta_seterr(err, errlen, "%s: fsync: %s", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		return KVN_EIO;
	}
	close(fd);
	return 0;
}

/* Copy src into the (empty) database dst inside the read transaction src
 * holds: that transaction's snapshot is the copy, whatever the master
 * commits meanwhile (in WAL mode a reader blocks no writer; it only keeps
 * checkpoints from going past its snapshot until it ends). */
static int copy_pages(sqlite3 *src, sqlite3 *dst, uint64_t deadline, struct meta_backup_info *info,
		      char *err, size_t errlen)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc;

	if (!b) {
		meta_seterr(err, errlen, "backup: %s", sqlite3_errmsg(dst));
		return KVN_EDB;
	}
	for (;;) {
		rc = sqlite3_backup_step(b, BACKUP_STEP_PAGES);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		info->steps++;
		if (kvn_now_ms() >= deadline) {
			rc = SQLITE_BUSY;
			break;
		}
		if (rc != SQLITE_OK)
			nap_ms(5);
	}
	int total = sqlite3_backup_pagecount(b), left = sqlite3_backup_remaining(b);
	info->pages = (uint64_t)total;
	sqlite3_backup_finish(b);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		meta_seterr(err, errlen, "backup: not done before the deadline (%d of %d pages left)", left,
			    total);
		return KVN_ETIMEDOUT;
	}
	meta_seterr(err, errlen, "backup: %s", sqlite3_errstr(rc));
	return KVN_EDB;
}

int meta_backup(const char *src_path, const char *dst_path, uint64_t timeout_ms,
		struct meta_backup_info *info, char *err, size_t errlen)
{
	uint64_t deadline = kvn_now_ms() + timeout_ms;
	char tmp[4096], check[64] = "";
	sqlite3 *src = NULL, *dst = NULL;
	struct stat st;
	int64_t v = 0;
	int rc, fd, made_tmp = 0;

	memset(info, 0, sizeof *info);
	if (lstat(dst_path, &st) == 0) {
		meta_seterr(err, errlen, "%s exists: a backup never overwrites a file; pick a new name", dst_path);
		return KVN_EEXIST;
	}
	if (snprintf(tmp, sizeof tmp, "%s.tmp", dst_path) >= (int)sizeof tmp) {
		meta_seterr(err, errlen, "%s: name too long", dst_path);
		return KVN_EINVAL;
	}
	if (stat(src_path, &st) != 0) {
		meta_seterr(err, errlen, "%s: %s (is node.data_dir the master's?)", src_path, strerror(errno));
		return errno == ENOENT ? KVN_ENOTFOUND : KVN_EIO;
	}
	/* READONLY without CREATE: a wrong data_dir is an error, not a new,
	 * empty database */
	rc = sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		meta_seterr(err, errlen, "%s: cannot open read-only: %s", src_path,
			    src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		rc = KVN_EDB;
		goto out;
	}
	sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
	/* The read transaction: BEGIN alone takes no snapshot, the first read
	 * does.  user_version tells a kvnode master.db from other files. */
	if ((rc = one_row(src, "BEGIN", NULL, NULL, 0, deadline, src_path, err, errlen)) < 0 ||
	    (rc = one_row(src, "PRAGMA user_version", &v, NULL, 0, deadline, src_path, err, errlen)) < 0)
		goto out;
	if (v < 1) {
		meta_seterr(err, errlen, "%s: not a kvnode master.db (schema version %" PRId64 ")", src_path, v);
		rc = KVN_EINVAL;
		goto out;
	}
	info->schema_version = (int)v;
	if ((rc = one_row(src, "SELECT count(*) FROM objects", &v, NULL, 0, deadline, src_path, err,
			  errlen)) < 0)
		goto out;
	info->objects = (uint64_t)v;

	/* O_EXCL: a FILE.tmp already there is another backup under way, or one
	 * that was interrupted; either way not ours to remove */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		meta_seterr(err, errlen, "%s: %s%s", tmp, strerror(errno),
			    errno == EEXIST ? " (another backup is writing it, or one was interrupted: "
					      "remove it if none runs)" : "");
		rc = errno == EEXIST ? KVN_EEXIST : KVN_EIO;
		goto out;
	}
	close(fd);
	made_tmp = 1;
	rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		meta_seterr(err, errlen, "%s: %s", tmp, dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		rc = KVN_EDB;
		goto out;
	}
	if ((rc = copy_pages(src, dst, deadline, info, err, errlen)) < 0)
		goto out;
	/* the snapshot is copied: let the master's checkpoints proceed */
	sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
	/* The pages carry master.db's WAL flag; a rollback journal makes the
	 * copy one self-contained file that a reader opens without creating
	 * -wal and -shm beside it.  The master turns WAL on again when it
	 * opens a restored copy. */
	if ((rc = one_row(dst, "PRAGMA journal_mode = DELETE", NULL, check, sizeof check, deadline, tmp, err,
			  errlen)) < 0)
		goto out;
	if ((rc = one_row(dst, "PRAGMA quick_check", NULL, check, sizeof check, deadline, tmp, err, errlen)) < 0)
		goto out;
	if (strcmp(check, "ok") != 0) {
		meta_seterr(err, errlen, "%s: the copy fails PRAGMA quick_check: %s", tmp, check);
		rc = KVN_ECORRUPT;
		goto out;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		meta_seterr(err, errlen, "%s: close: %s", tmp, sqlite3_errmsg(dst));
		rc = KVN_EDB;
		goto out;
	}
	dst = NULL;
	if ((rc = sync_path(tmp, 0, err, errlen)) < 0)
		goto out;
	if (stat(tmp, &st) == 0)
		info->bytes = (uint64_t)st.st_size;
	/* link + unlink, not rename: link fails if FILE appeared meanwhile,
	 * where rename would replace it */
	if (link(tmp, dst_path) != 0) {
		meta_seterr(err, errlen, "%s: %s", dst_path, strerror(errno));
		rc = errno == EEXIST ? KVN_EEXIST : KVN_EIO;
		goto out;
	}
	unlink(tmp);
	made_tmp = 0;
	rc = sync_path(dst_path, 1, err, errlen);
out:
	if (dst)
		sqlite3_close(dst);
	if (src)
		sqlite3_close(src); /* ends the read transaction if still open */
	if (made_tmp) {
		unlink(tmp);
		snprintf(tmp + strlen(tmp), sizeof tmp - strlen(tmp), "-journal");
		unlink(tmp);
	}
	return rc;
}

/* ---- the command ---- */

static const char backup_usage[] =
	"usage: kvnode --role master [--config FILE] backup [--timeout D] FILE\n"
	"Copies {node.data_dir}/master.db, consistent at one moment, to FILE while the master\n"
	"runs (SQLite's online backup; read-only on master.db).  FILE must not exist; it is\n"
	"written as FILE.tmp, checked, fsynced, then renamed.  --timeout: give up after D\n"
	"(default 60s).  Restore: docs/operations.md, \"Backup and restore\".\n";

int meta_backup_cmd(int argc, char **argv, const char *data_dir)
{
	struct meta_backup_info info;
	char src[4096], err[1024] = "";
	const char *path = NULL, *why = NULL;
	uint64_t timeout_ms = 60000, t0;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(backup_usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			if (kvn_parse_duration_ms(argv[++i], &timeout_ms, &why) != 0 || timeout_ms == 0) {
				fprintf(stderr, "kvnode: backup: --timeout '%s': %s\n", argv[i],
					why ? why : "must be above 0");
				return 2;
			}
		} else if (argv[i][0] == '-' || path) {
			fputs(backup_usage, stderr);
			return 2;
		} else
			path = argv[i];
	}
	if (!path) {
		fputs(backup_usage, stderr);
		return 2;
	}
	if (snprintf(src, sizeof src, "%s/master.db", data_dir) >= (int)sizeof src) {
		fprintf(stderr, "kvnode: backup: node.data_dir too long\n");
		return 2;
	}
	t0 = kvn_now_ms();
	rc = meta_backup(src, path, timeout_ms, &info, err, sizeof err);
	if (rc) {
		fprintf(stderr, "kvnode: backup: %s\n", err[0] ? err : kvn_strerror(rc));
		return kvn_err_exit_code(rc);
	}
	printf("backup: %s -> %s: %" PRIu64 " objects, %" PRIu64 " pages, %" PRIu64
	       " bytes, schema version %d, %" PRIu64 " ms\n",
	       src, path, info.objects, info.pages, info.bytes, info.schema_version, kvn_now_ms() - t0);
	return 0;
}
