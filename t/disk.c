/*
 * t/disk: the disk tier's storage engine (src/store/disk*.c,
 * docs/disk-tier.md): round trips, refusing bytes that do not match their
 * checksum, quarantine of a damaged value or header, capacity, every
 * injected I/O fault (error, no temp file, no row, counted; read-only after
 * a failed fsync), recovery (temp files, orphans, missing and short files),
 * restart, remove, a newer schema refused, and crash consistency under
 * kill -9 of a writing child.
 */
#include "config.h"

#define _XOPEN_SOURCE_EXTRA 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "tap.h"

#include "base/base.h"
#include "store/disk.h"
#include "store/meta_int.h"

static char root[256];
static char dir[300], dbp[300];
static int ncase;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static void rm_rf(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new directory and peer.db per case. */
static void fresh_paths(void)
{
	snprintf(dir, sizeof dir, "%s/c%d/disk", root, ++ncase);
	snprintf(dbp, sizeof dbp, "%s/c%d/peer.db", root, ncase);
	char up[320];
	snprintf(up, sizeof up, "%s/c%d", root, ncase);
	mkdir(up, 0755);
}

static struct disk_tier *open_tier(uint64_t cap)
{
	struct disk_opts o = { .dir = dir, .db_path = dbp, .capacity = cap };
	struct disk_tier *d = NULL;
	char err[512] = "";
	if (disk_open(&o, &d, err, sizeof err) != 0)
		kvn_fatal("disk_open %s: %s", dir, err);
	return d;
}

static struct disk_tier *fresh(uint64_t cap)
{
	fresh_paths();
	struct disk_tier *d = open_tier(cap);
	is_int(disk_recover(d, NULL, NULL, NULL), 0, "recover an empty tier");
	return d;
}

/* Deterministic bytes of (key, gen). */
static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static struct disk_entry entry(const char *key, uint64_t gen, const void *v, uint64_t size)
{
	return (struct disk_entry){ .key = (const uint8_t *)key, .klen = (uint16_t)strlen(key), .gen = gen,
				    .size = size, .checksum = XXH3_64bits(v, size) };
}

static int put(struct disk_tier *d, const struct disk_entry *e, const void *v)
{
	struct iovec iov = { .iov_base = (void *)v, .iov_len = e->size };
	return disk_write(d, e, &iov, 1);
}

/* Files under dir (recursively) whose name ends with suffix ("" all),
 * excluding quarantine/ unless only that folder is asked for. */
static int count_in(const char *sub, const char *suffix)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "find '%s%s' -type f -name '*%s' %s | wc -l", dir, sub, suffix,
		 *sub ? "" : "-not -path '*/quarantine/*'");
	FILE *f = popen(cmd, "r");
	int n = -1;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}
#define count_files() count_in("", "")
#define count_tmp() count_in("", ".tmp")
#define count_quarantined() count_in("/quarantine", "")

static const char *file_of(const struct disk_entry *e)
{
	static char p[400];
	uint64_t h = XXH3_64bits(e->key, e->klen);
	snprintf(p, sizeof p, "%s/%02x/%016llx.g%016llx", dir, (unsigned)(h >> 56), (unsigned long long)h,
		 (unsigned long long)e->gen);
	return p;
}

static int rows(void)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int n = -1;
	if (sqlite3_open_v2(dbp, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM v_disk", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return n;
}

/* ---- cases --------------------------------------------------------------------- */

static void t_roundtrip(void)
{
	static const uint64_t sizes[] = { 0, 1, 4095, 4096, 1 << 20 };
	struct disk_tier *d = fresh(64 << 20);
	uint8_t *v = malloc(1 << 20), *got = malloc(1 << 20);
	uint64_t used = 0;
	struct disk_stats st;

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char key[32];
		snprintf(key, sizeof key, "size-%llu", (unsigned long long)sizes[i]);
		fill(v, sizes[i], i);
		struct disk_entry e = entry(key, 7 + i, v, sizes[i]);
		e.expires_wall_ms = 1234;
		e.flags = DISK_F_QUEUE;
		is_int(put(d, &e, v), 0, "write %llu bytes", (unsigned long long)sizes[i]);
		used += disk_file_bytes(e.klen, e.size);
		struct stat sb;
		ok(stat(file_of(&e), &sb) == 0 && (uint64_t)sb.st_size == disk_file_bytes(e.klen, e.size),
		   "file %s holds header + value", file_of(&e) + strlen(dir));
		memset(got, 0xEE, 1 << 20);
		is_int(disk_read(d, &e, got), 0, "read %llu bytes", (unsigned long long)sizes[i]);
		ok(memcmp(got, v, sizes[i]) == 0, "same bytes");
	}
	/* multi-iov: 1 MiB in 100 pieces of varied length, some empty (more
	 * pieces than the I/O shim's window of 64) */
	fill(v, 1 << 20, 99);
	struct iovec iov[100];
	size_t off = 0;
	for (int i = 0; i < 100; i++) {
		size_t n = i % 7 == 0 ? 0 : (i == 99 ? (1u << 20) - off : 10000 + (size_t)i * 37);
		iov[i] = (struct iovec){ .iov_base = v + off, .iov_len = n };
		off += n;
	}
	struct disk_entry e = entry("multi", 1, v, 1 << 20);
	is_int(disk_write(d, &e, iov, 100), 0, "write 1 MiB from 100 iovs");
	used += disk_file_bytes(e.klen, e.size);
	is_int(disk_read(d, &e, got), 0, "read it");
	ok(memcmp(got, v, 1 << 20) == 0, "same bytes");
	is_int(disk_used_bytes(d), used, "used bytes = headers + values");
	disk_get_stats(d, &st);
	is_int(st.writes, 6, "writes counted");
	is_int(st.reads, 6, "reads counted");
	is_int(st.files, 6, "files counted");
	is_int(st.write_bytes, 0 + 1 + 4095 + 4096 + 2 * (1 << 20), "write bytes counted");
	is_int(rows(), 6, "peer.db has a row each (v_disk)");
	is_int(count_tmp(), 0, "no temp file left");
	free(v);
	free(got);
	disk_close(d);
}

static void t_bad_checksum(void)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[1000];
	struct disk_stats st;
	fill(v, sizeof v, 1);
	struct disk_entry e = entry("k", 1, v, sizeof v);
	e.checksum ^= 1;
	is_int(put(d, &e, v), KVN_ECORRUPT, "bytes not matching the checksum are refused");
	e.checksum ^= 1;
	e.size--;
	is_int(put(d, &e, v), KVN_ECORRUPT, "nor a size other than the iov's");
	is_int(count_files(), 0, "nothing on disk");
	is_int(rows(), 0, "no row");
	is_int(disk_used_bytes(d), 0, "nothing used");
	disk_get_stats(d, &st);
	is_int(st.checksum_errors, 2, "counted");
	is_int(st.writes, 0, "no write counted");
	disk_close(d);
}

/* Write, damage the byte at `at` of the file, read. */
static void damage(const char *what, long at_from_value)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[5000], got[5000];
	struct disk_stats st;
	fill(v, sizeof v, 3);
	struct disk_entry e = entry("damaged", 9, v, sizeof v);
	is_int(put(d, &e, v), 0, "%s: written", what);
	long off = (long)disk_file_bytes(e.klen, 0) + at_from_value;
	int fd = open(file_of(&e), O_RDWR);
	uint8_t b = 0;
	ok(fd >= 0 && pread(fd, &b, 1, off) == 1, "%s: byte %ld read", what, off);
	b ^= 0x40;
	ok(pwrite(fd, &b, 1, off) == 1, "%s: byte flipped", what);
	close(fd);
	memset(got, 0x55, sizeof got);
	is_int(disk_read(d, &e, got), KVN_ECORRUPT, "%s: read answers KVN_ECORRUPT", what);
	uint8_t zero[5000] = { 0 };
	ok(memcmp(got, zero, sizeof got) == 0, "%s: no stale bytes left in the buffer", what);
	ok(access(file_of(&e), F_OK) != 0, "%s: the file left the tier", what);
	is_int(count_quarantined(), 1, "%s: and is in quarantine/", what);
	is_int(rows(), 0, "%s: its row is gone", what);
	is_int(disk_used_bytes(d), 0, "%s: its bytes are no longer used", what);
	disk_get_stats(d, &st);
	is_int(st.checksum_errors, 1, "%s: checksum error counted", what);
	is_int(st.quarantined, 1, "%s: quarantine counted", what);
	is_int(disk_read(d, &e, got), KVN_ENOTFOUND, "%s: read again: not found", what);
	disk_close(d);
}

static void t_flip_value(void)
{
	damage("value", 4321);
}

static void t_flip_header(void)
{
	damage("header gen", -(long)disk_file_bytes(7, 0) + 16); /* the gen field */
	damage("header checksum", -3);                           /* the header's own checksum */
}

static void t_capacity(void)
{
	uint8_t v[1000];
	fill(v, sizeof v, 5);
	uint64_t fb = disk_file_bytes(2, sizeof v);
	struct disk_tier *d = fresh(3 * fb);
	struct disk_entry e[4];
	char keys[4][3] = { "k0", "k1", "k2", "k3" };
	struct disk_stats st;
	for (int i = 0; i < 4; i++)
		e[i] = entry(keys[i], 1, v, sizeof v);
	for (int i = 0; i < 3; i++)
		is_int(put(d, &e[i], v), 0, "write %d fits", i);
	is_int(disk_used_bytes(d), disk_capacity(d), "full");
	is_int(put(d, &e[3], v), KVN_ENOSPC, "the next one does not");
	ok(access(file_of(&e[3]), F_OK) != 0 && count_tmp() == 0, "and left nothing");
	is_int(put(d, &e[1], v), 0, "rewriting an existing (key, gen) needs no more room");
	is_int(disk_remove(d, e[0].key, e[0].klen, 1), 0, "remove one");
	is_int(put(d, &e[3], v), 0, "now it fits");
	disk_get_stats(d, &st);
	is_int(st.enospc, 1, "refusal counted");
	is_int(st.files, 3, "three files");
	disk_close(d);
}

struct fault_case {
	const char *name;
	enum disk_op op;
	uint32_t skip;
	int err, want;
};

static void t_faults(void)
{
	static const struct fault_case fc[] = {
		{ "open EIO", DISK_OP_OPEN, 0, EIO, KVN_EIO },
		{ "write EIO", DISK_OP_WRITE, 0, EIO, KVN_EIO },
		{ "write ENOSPC", DISK_OP_WRITE, 0, ENOSPC, KVN_ENOSPC },
		{ "rename EIO", DISK_OP_RENAME, 0, EIO, KVN_EIO },
		{ "dirsync EIO", DISK_OP_DIRSYNC, 0, EIO, KVN_EIO },
		{ "parent dirsync EIO", DISK_OP_DIRSYNC, 1, EIO, KVN_EIO },
		{ "fsync EIO", DISK_OP_FSYNC, 0, EIO, KVN_EIO },
	};
	uint8_t v[3000], got[3000];
	fill(v, sizeof v, 11);

	for (size_t i = 0; i < sizeof fc / sizeof fc[0]; i++) {
		const struct fault_case *c = &fc[i];
		struct disk_tier *d = fresh(1 << 20);
		struct disk_stats st;
		/* an entry written before, in another folder than "victim"'s */
		struct disk_entry pre = entry("before", 1, v, sizeof v);
		struct disk_entry e = entry("victim", 2, v, sizeof v);
		is_int(put(d, &pre, v), 0, "%s: an earlier write", c->name);
		disk_fault_set(d, c->op, c->skip, 1, c->err);
		is_int(put(d, &e, v), c->want, "%s: the write fails", c->name);
		is_int(count_tmp(), 0, "%s: no temp file", c->name);
		ok(access(file_of(&e), F_OK) != 0, "%s: no data file", c->name);
		is_int(rows(), 1, "%s: no row (only the earlier one)", c->name);
		is_int(disk_used_bytes(d), disk_file_bytes(pre.klen, pre.size), "%s: not accounted", c->name);
		disk_get_stats(d, &st);
		if (c->want == KVN_ENOSPC)
			is_int(st.enospc, 1, "%s: counted as enospc", c->name);
		else
			is_int(st.write_errors, 1, "%s: counted as a write error", c->name);
		if (c->op == DISK_OP_FSYNC) {
			is_int(st.fsync_errors, 1, "%s: fsync error counted", c->name);
			ok(disk_readonly(d) && st.readonly == 1, "%s: the tier is read-only", c->name);
			is_int(put(d, &e, v), KVN_EROFS, "%s: later writes: KVN_EROFS", c->name);
			is_int(disk_read(d, &pre, got), 0, "%s: reads still work", c->name);
			ok(memcmp(got, v, sizeof v) == 0, "%s: same bytes", c->name);
			disk_close(d);
			d = open_tier(1 << 20);
			ok(!disk_readonly(d), "%s: a restart clears it", c->name);
		} else {
			is_int(st.fsync_errors, 0, "%s: no fsync error", c->name);
			if (c->op == DISK_OP_RENAME)
				is_int(st.rename_errors, 1, "%s: rename error counted", c->name);
			if (c->op == DISK_OP_DIRSYNC)
				is_int(st.dirsync_errors, 1, "%s: dirsync error counted", c->name);
			ok(!disk_readonly(d), "%s: not read-only", c->name);
			is_int(put(d, &e, v), 0, "%s: the next write succeeds", c->name);
			is_int(disk_read(d, &e, got), 0, "%s: and reads back", c->name);
		}
		disk_close(d);
	}
}

static void t_read_fault(void)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[3000], got[3000];
	struct disk_stats st;
	fill(v, sizeof v, 12);
	struct disk_entry e = entry("r", 1, v, sizeof v);
	is_int(put(d, &e, v), 0, "written");
	disk_fault_set(d, DISK_OP_READ, 1, 1, EIO); /* the header reads, the value fails */
	is_int(disk_read(d, &e, got), KVN_EIO, "a failed read is KVN_EIO");
	disk_get_stats(d, &st);
	is_int(st.read_errors, 1, "counted");
	is_int(st.quarantined, 0, "the file is not quarantined (the error may pass)");
	is_int(disk_read(d, &e, got), 0, "the next read works");
	ok(memcmp(got, v, sizeof v) == 0, "same bytes");
	disk_close(d);
}

struct seen {
	int n;
	struct disk_entry e[64];
	uint8_t keys[64][32];
};

static int collect(void *arg, const struct disk_entry *e)
{
	struct seen *s = arg;
	if (s->n >= 64)
		return KVN_ERANGE;
	s->e[s->n] = *e;
	memcpy(s->keys[s->n], e->key, e->klen);
	s->e[s->n].key = s->keys[s->n];
	s->n++;
	return 0;
}

static void t_recovery(void)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[2000];
	struct disk_recovery rep;
	struct seen s = { 0 };
	fill(v, sizeof v, 13);
	struct disk_entry good = entry("good", 0xFFFFFFFFFFFFFFF0ull, v, sizeof v);
	good.expires_wall_ms = 1700000000123ull;
	good.flags = DISK_F_QUEUE;
	struct disk_entry gone = entry("gone", 2, v, 100);
	struct disk_entry shrunk = entry("shrunk", 3, v, 500);
	struct disk_entry orphan = entry("orphan", 4, v, 10);
	is_int(put(d, &good, v), 0, "write good");
	is_int(put(d, &gone, v), 0, "write gone");
	is_int(put(d, &shrunk, v), 0, "write shrunk");
	is_int(put(d, &orphan, v), 0, "write orphan");
	disk_close(d);

	/* the damage a crash (or an operator) leaves */
	ok(unlink(file_of(&gone)) == 0, "remove gone's file");
	ok(truncate(file_of(&shrunk), 100) == 0, "truncate shrunk's file");
	char tmp[450];
	snprintf(tmp, sizeof tmp, "%s.tmp", file_of(&good));
	int fd = open(tmp, O_CREAT | O_WRONLY, 0644);
	ok(fd >= 0 && write(fd, "torn", 4) == 4, "a leftover temp file");
	close(fd);
	sqlite3 *db;
	ok(sqlite3_open(dbp, &db) == SQLITE_OK &&
		   sqlite3_exec(db, "DELETE FROM disk_files WHERE key = CAST('orphan' AS BLOB)", NULL, NULL, NULL) ==
			   SQLITE_OK &&
		   sqlite3_changes(db) == 1,
	   "orphan's row deleted by hand");
	sqlite3_close(db);
	char other[450];
	snprintf(other, sizeof other, "%s/notes.txt", dir);
	fd = open(other, O_CREAT | O_WRONLY, 0644);
	close(fd);

	d = open_tier(1 << 20);
	is_int(disk_recover(d, collect, &s, &rep), 0, "recover");
	is_int(rep.entries, 1, "one good entry");
	is_int(rep.bytes, sizeof v, "its bytes");
	is_int(rep.temp_removed, 1, "temp file removed");
	is_int(rep.orphans_removed, 1, "orphan removed");
	is_int(rep.missing, 1, "missing file's row dropped");
	is_int(rep.size_mismatch, 1, "short file's row dropped");
	is_int(s.n, 1, "fn called once");
	ok(s.e[0].klen == 4 && memcmp(s.e[0].key, "good", 4) == 0, "with the key");
	ok(s.e[0].gen == good.gen && s.e[0].size == good.size && s.e[0].checksum == good.checksum,
	   "gen, size and checksum");
	ok(s.e[0].expires_wall_ms == good.expires_wall_ms && s.e[0].flags == DISK_F_QUEUE,
	   "expiry and flags");
	is_int(count_files(), 2, "only good's file and the operator's notes remain");
	ok(access(other, F_OK) == 0, "a file that is not the tier's is left alone");
	is_int(rows(), 1, "one row");
	is_int(disk_used_bytes(d), disk_file_bytes(4, sizeof v), "used bytes rebuilt");
	uint8_t got[2000];
	is_int(disk_read(d, &s.e[0], got), 0, "the good entry reads");
	ok(memcmp(got, v, sizeof v) == 0, "same bytes");
	disk_close(d);
}

static void t_restart(void)
{
	struct disk_tier *d = fresh(64 << 20);
	enum { N = 50 };
	static uint8_t v[N][3000];
	char key[N][16];
	struct disk_entry e[N];
	for (int i = 0; i < N; i++) {
		snprintf(key[i], sizeof key[i], "key%d", i);
		size_t n = (size_t)(i * 59) % sizeof v[i];
		fill(v[i], n, (uint64_t)i);
		e[i] = entry(key[i], (uint64_t)i + 1, v[i], n);
		is_int(put(d, &e[i], v[i]), 0, "write %d", i);
	}
	uint64_t used = disk_used_bytes(d);
	disk_close(d);
	d = open_tier(64 << 20);
	struct seen s = { 0 };
	struct disk_recovery rep;
	is_int(disk_recover(d, collect, &s, &rep), 0, "recover after close");
	is_int(rep.entries, N, "every entry back");
	is_int(rep.orphans_removed + rep.missing + rep.size_mismatch + rep.temp_removed, 0, "nothing dropped");
	is_int(disk_used_bytes(d), used, "same used bytes");
	int good = 0;
	for (int i = 0; i < s.n; i++) {
		int k = atoi((const char *)s.keys[i] + 3);
		uint8_t got[3000];
		if (k >= 0 && k < N && s.e[i].gen == e[k].gen && s.e[i].size == e[k].size &&
		    disk_read(d, &s.e[i], got) == 0 && memcmp(got, v[k], e[k].size) == 0)
			good++;
	}
	is_int(good, N, "each reads back byte for byte");
	disk_close(d);
}

static void t_remove(void)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[100], got[100];
	struct disk_stats st;
	fill(v, sizeof v, 14);
	struct disk_entry e = entry("rm", 5, v, sizeof v);
	is_int(put(d, &e, v), 0, "written");
	is_int(disk_remove(d, e.key, e.klen, 5), 0, "removed");
	is_int(disk_read(d, &e, got), KVN_ENOTFOUND, "reads as not found");
	ok(access(file_of(&e), F_OK) != 0, "file gone");
	is_int(rows(), 0, "row gone");
	is_int(disk_used_bytes(d), 0, "bytes freed");
	is_int(disk_remove(d, e.key, e.klen, 5), 0, "removing an absent entry is 0");
	is_int(disk_remove(d, e.key, e.klen, 6), 0, "so is another gen");
	disk_get_stats(d, &st);
	is_int(st.removes, 1, "one remove counted");
	disk_close(d);
}

static void t_newer_schema(void)
{
	struct disk_tier *d = fresh(1 << 20);
	disk_close(d);
	sqlite3 *db;
	sqlite3_stmt *s;
	int want = 0, have = -1;
	char mode[16] = "";
	DIR *sd;
	struct dirent *de;

	/* every step in sql/peer/ is compiled in (PEER_SQL_FILES) and applied */
	if ((sd = opendir(KVN_SRCDIR "/sql/peer"))) {
		while ((de = readdir(sd)))
			if (strlen(de->d_name) > 8 && de->d_name[3] == '-' && atoi(de->d_name) > want)
				want = atoi(de->d_name);
		closedir(sd);
	}
	ok(want >= 1, "sql/peer/ has migration steps (highest %d)", want);
	is_int(meta_schema_version(disk_sql_files), want, "code version = highest sql/peer/NNN-*.sql");
	ok(sqlite3_open(dbp, &db) == SQLITE_OK, "peer.db opens");
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			have = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	is_int(have, want, "user_version = code version");
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	}
	is_str(mode, "wal", "peer.db is in WAL mode");
	ok(sqlite3_exec(db, "SELECT * FROM v_disk_totals", NULL, NULL, NULL) == SQLITE_OK, "v_disk_totals exists");
	ok(sqlite3_exec(db, "SELECT * FROM objects", NULL, NULL, NULL) != SQLITE_OK,
	   "none of master.db's tables");
	sqlite3_close(db);
	ok(sqlite3_open(dbp, &db) == SQLITE_OK &&
		   sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL) == SQLITE_OK,
	   "peer.db claims schema 999");
	sqlite3_close(db);
	struct disk_opts o = { .dir = dir, .db_path = dbp, .capacity = 1 << 20 };
	char err[512] = "";
	d = NULL;
	is_int(disk_open(&o, &d, err, sizeof err), KVN_EDB, "refused");
	ok(d == NULL, "no tier");
	ok(strstr(err, dbp) && strstr(err, "999") && strstr(err, "newer"), "the error says why: %s", err);

	o.capacity = 0;
	is_int(disk_open(&o, &d, err, sizeof err), KVN_EINVAL, "capacity 0 is refused");
}

static void t_bad_args(void)
{
	struct disk_tier *d = fresh(1 << 20);
	uint8_t v[10] = { 0 }, key[KVN_MAX_KEY + 1];
	memset(key, 'k', sizeof key);
	struct disk_entry e = entry("k", 1, v, sizeof v);
	e.klen = 0;
	is_int(put(d, &e, v), KVN_EINVAL, "an empty key is refused");
	is_int(disk_read(d, &e, v), KVN_EINVAL, "by read too");
	e.key = key;
	e.klen = KVN_MAX_KEY + 1;
	is_int(put(d, &e, v), KVN_EINVAL, "so is a key over KVN_MAX_KEY");
	e.klen = KVN_MAX_KEY;
	uint8_t got[10];
	is_int(put(d, &e, v), 0, "a key of KVN_MAX_KEY bytes is fine");
	is_int(disk_read(d, &e, got), 0, "and reads back");
	is_int(disk_write(d, &e, NULL, 1), KVN_EINVAL, "a NULL iov is refused");
	is_int(disk_remove(d, NULL, 1, 1), KVN_EINVAL, "remove of a NULL key is refused");
	disk_close(d);
	disk_close(NULL); /* must not crash */
}

static void t_stats_each(void)
{
	struct disk_tier *d = fresh(12345);
	struct disk_stats st;
	char buf[4096];
	struct kvn_stat_text t = { .buf = buf, .cap = sizeof buf };
	disk_get_stats(d, &st);
	disk_stats_each(&st, kvn_stat_sprint, &t);
	is_int(t.rc, 0, "fits");
	ok(strncmp(buf, "files 0\n", 8) == 0, "first line: files");
	ok(strstr(buf, "capacity 12345\n") != NULL, "capacity shown");
	ok(strstr(buf, "\nreadonly 0\n") != NULL, "last: readonly");
	disk_close(d);
}

/* ---- crash consistency ----------------------------------------------------------- */

/* The child's writes: entry i is key "c{i%13}" gen i with a size derived
 * from i and bytes from (i, run), the run number in the first 8 bytes, so
 * the parent can check anything recovery reports.  Each run starts again
 * at i = 1: it rewrites the (key, gen)s of earlier runs with other bytes of
 * the same size, which is what a row surviving beside the new file would
 * get wrong. */
static size_t crash_size(uint64_t gen)
{
	return (size_t)((gen * 2654435761u) % 20000);
}

static void crash_fill(uint8_t *v, uint64_t gen, uint64_t run)
{
	size_t n = crash_size(gen);
	fill(v, n, gen * 1000 + run);
	if (n >= 8)
		memcpy(v, &run, 8);
	else
		fill(v, n, gen);
}

static void crash_child(uint64_t run)
{
	struct disk_tier *d = open_tier(1ull << 30);
	static uint8_t v[20000];
	disk_recover(d, NULL, NULL, NULL);
	for (uint64_t i = 1;; i++) {
		char key[16];
		snprintf(key, sizeof key, "c%u", (unsigned)(i % 13));
		size_t n = crash_size(i);
		crash_fill(v, i, run);
		struct disk_entry e = entry(key, i, v, n);
		if (put(d, &e, v) != 0)
			_exit(3);
		if (i % 5 == 0)
			disk_remove(d, e.key, e.klen, i - 3);
	}
}

struct crash_check {
	struct disk_tier *d;
	uint64_t runs;
	int entries, bad;
};

static int crash_verify(void *arg, const struct disk_entry *e)
{
	struct crash_check *c = arg;
	static uint8_t got[20000], want[20000];
	char key[16];
	snprintf(key, sizeof key, "c%u", (unsigned)(e->gen % 13));
	size_t n = crash_size(e->gen);
	uint64_t run = 0;
	int rc = KVN_EINVAL;
	c->entries++;
	if (e->size == n && (rc = disk_read(c->d, e, got)) == 0 && n >= 8)
		memcpy(&run, got, 8);
	crash_fill(want, e->gen, run);
	if (e->klen != strlen(key) || memcmp(e->key, key, e->klen) != 0 || e->size != n || rc != 0 ||
	    run > c->runs || e->checksum != XXH3_64bits(want, n) || memcmp(got, want, n) != 0) {
		tap_diag("entry gen %llu does not read back", (unsigned long long)e->gen);
		c->bad++;
	}
	return 0;
}

static void t_crash(void)
{
	unsigned seed = (unsigned)time(NULL);
	const char *env = getenv("KVN_DISK_SEED");
	int iters = 30, total = 0, bad = 0, recovered_ok = 1;
	if (env)
		seed = (unsigned)strtoul(env, NULL, 10);
	tap_diag("seed %u (KVN_DISK_SEED replays it)", seed);
	srand(seed);
	fresh_paths();
	for (int it = 0; it < iters; it++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			crash_child((uint64_t)it);
			_exit(0);
		}
		usleep(5000 + (unsigned)(rand() % 40000));
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status))
			bad++, tap_diag("iteration %d: the child ended by itself (status %d)", it, status);
		struct disk_tier *d = open_tier(1ull << 30);
		struct crash_check c = { .d = d, .runs = (uint64_t)it };
		struct disk_recovery rep;
		if (disk_recover(d, crash_verify, &c, &rep) != 0)
			recovered_ok = 0;
		total += c.entries;
		bad += c.bad;
		disk_close(d);
	}
	ok(recovered_ok, "every recovery succeeded");
	ok(total > 0, "recoveries reported entries (%d over %d kills)", total, iters);
	is_int(bad, 0, "every reported entry read back byte for byte");
	is_int(count_tmp(), 0, "no temp file left after the last recovery");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "roundtrip", t_roundtrip },
		{ "bad_checksum", t_bad_checksum },
		{ "flip_value", t_flip_value },
		{ "flip_header", t_flip_header },
		{ "capacity", t_capacity },
		{ "faults", t_faults },
		{ "read_fault", t_read_fault },
		{ "recovery", t_recovery },
		{ "restart", t_restart },
		{ "remove", t_remove },
		{ "newer_schema", t_newer_schema },
		{ "stats_each", t_stats_each },
		{ "bad_args", t_bad_args },
		{ "crash", t_crash },
		{ NULL, NULL },
	};
	const char *t = getenv("TMPDIR");
	int rc;
	snprintf(root, sizeof root, "%s/kvn-disk-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(root))
		kvn_fatal("mkdtemp %s: %s", root, strerror(errno));
	kvn_log_set_level(KVN_LOG_WARN);
	rc = tap_run(tests, argc, argv);
	rm_rf(root);
	return rc;
}
