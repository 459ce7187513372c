/*
 * disk: the disk tier's files (docs/disk-tier.md): opening the tier, the
 * file name and header, durable writes, verified reads, quarantine,
 * removal, capacity and counters.  Start-up recovery is disk_recover.c,
 * the index disk_index.c, the system calls disk_io.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/base.h"
#include "store/disk_int.h"

/* ---- names, header --------------------------------------------------------- */

void disk_file_name(const uint8_t *key, uint16_t klen, uint64_t gen, char *name)
{
	uint64_t h = XXH3_64bits(key, klen);
	snprintf(name, DISK_NAME_MAX, "%02x/%016" PRIx64 ".g%016" PRIx64, (unsigned)(h >> 56), h, gen);
}

uint64_t disk_file_bytes(uint16_t klen, uint64_t size)
{
	return DISK_HDR_LEN(klen) + size;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The header of e into h (DISK_HDR_LEN(e->klen) bytes); the value follows
 * at once (value_off = header length: no padding, see docs/disk-tier.md). */
static uint32_t hdr_encode(const struct disk_entry *e, uint8_t *h)
{
	uint32_t len = DISK_HDR_LEN(e->klen);
	memcpy(h, DISK_MAGIC, 4);
	put16(h + 4, DISK_VERSION);
	put16(h + 6, e->klen);
	put32(h + 8, len);
	put32(h + 12, e->flags);
	put64(h + 16, e->gen);
	put64(h + 24, e->size);
	put64(h + 32, e->checksum);
	put64(h + 40, e->expires_wall_ms);
	memcpy(h + DISK_HDR_FIXED, e->key, e->klen);
	put64(h + len - 8, XXH3_64bits(h, len - 8));
	return len;
}

/* Does header h (hlen bytes read) describe e, in a file of fsize bytes?
 * Returns the value's offset, or 0 (never a valid offset) when not. */
static uint32_t hdr_check(const struct disk_entry *e, const uint8_t *h, size_t hlen, uint64_t fsize)
{
	uint32_t len = DISK_HDR_LEN(e->klen), off;
	if (hlen < len || memcmp(h, DISK_MAGIC, 4) != 0 || get16(h + 4) != DISK_VERSION ||
	    get16(h + 6) != e->klen || get64(h + len - 8) != XXH3_64bits(h, len - 8))
		return 0; /* not ours, another version, or torn */
	off = get32(h + 8);
	if (off < len || memcmp(h + DISK_HDR_FIXED, e->key, e->klen) != 0 || get64(h + 16) != e->gen ||
	    get64(h + 24) != e->size || get64(h + 32) != e->checksum || (uint64_t)off + e->size != fsize)
		return 0;
	return off;
}

/* ---- open, close, small accessors ------------------------------------------ */

void disk_log_err(struct disk_tier *d, const char *fmt, ...)
{
	char msg[512];
	uint64_t suppressed = 0;
	va_list ap;
	if (!kvn_ratelimit_ok(&d->err_rl, &suppressed))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (suppressed)
		log_error("disk: %s: %s (%" PRIu64 " more errors not logged)", d->dir, msg, suppressed);
	else
		log_error("disk: %s: %s", d->dir, msg);
}

/* mkdir -p */
static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof p)
		return -ENAMETOOLONG;
	memcpy(p, path, n + 1);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int disk_open(const struct disk_opts *o, struct disk_tier **out, char *err, size_t errlen)
{
	struct disk_tier *d;
	char q[PATH_MAX];
	int rc;

	if (out)
		*out = NULL;
	if (!o || !out || !o->dir || !*o->dir || !o->db_path || !*o->db_path || o->capacity == 0 ||
	    strlen(o->dir) + DISK_NAME_MAX + 64 > PATH_MAX) {
		snprintf(err, errlen, "%s: invalid disk tier options (dir, db_path, capacity > 0)",
			 o && o->dir ? o->dir : "(null)");
		return KVN_EINVAL;
	}
	snprintf(q, sizeof q, "%s/" DISK_QUARANTINE, o->dir);
	if ((rc = mkdirs(q)) < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", q, strerror(-rc));
		return KVN_EIO;
	}
	d = kvn_xcalloc(1, sizeof *d);
	d->dir = kvn_xstrdup(o->dir);
	d->capacity = o->capacity;
	kvn_ratelimit_init(&d->err_rl, 10000, 5);
	if ((rc = disk_index_open(o->db_path, &d->ix, err, errlen)) < 0) {
		disk_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

void disk_close(struct disk_tier *d)
{
	if (!d)
		return;
	disk_index_close(d->ix);
	free(d->dir);
	free(d);
}

int disk_readonly(const struct disk_tier *d)
{
	return d->readonly;
}

uint64_t disk_used_bytes(const struct disk_tier *d)
{
	return d->st.used_bytes;
}

uint64_t disk_capacity(const struct disk_tier *d)
{
	return d->capacity;
}

void disk_get_stats(const struct disk_tier *d, struct disk_stats *st)
{
	*st = d->st;
	st->capacity = d->capacity;
	st->readonly = (uint64_t)d->readonly;
}

void disk_stats_each(const struct disk_stats *st, kvn_stat_fn fn, void *arg)
{
	DISK_STATS_FIELDS(KVN_STAT_VISIT)
}

static int bad_key(const uint8_t *key, uint16_t klen)
{
	return !key || klen == 0 || klen > KVN_MAX_KEY;
}

/* Forget the row's bytes (it was just deleted). */
static void unaccount(struct disk_tier *d, uint16_t klen, uint64_t size)
{
	uint64_t b = disk_file_bytes(klen, size);
	d->st.used_bytes = d->st.used_bytes > b ? d->st.used_bytes - b : 0;
	if (d->st.files)
		d->st.files--;
}

/* ---- write ------------------------------------------------------------------ */

/* Does the iov hold exactly e->size bytes whose XXH3 is e->checksum? */
static int iov_matches(const struct disk_entry *e, const struct iovec *iov, int niov)
{
	XXH3_state_t *s = XXH3_createState();
	uint64_t total = 0, h;
	KVN_ASSERT(s);
	XXH3_64bits_reset(s);
	for (int i = 0; i < niov; i++) {
		if (iov[i].iov_len == 0)
			continue;
		kvn_xxh3_update(s, iov[i].iov_base, iov[i].iov_len);
		total += iov[i].iov_len;
	}
	h = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	return total == e->size && h == e->checksum;
}

/* A failed step's errno as the answer: a full file system is ENOSPC (the
 * caller stops offloading), anything else EIO. */
static int io_err(struct disk_tier *d, int neg_errno)
{
	if (neg_errno == -ENOSPC) {
		d->st.enospc++;
		return KVN_ENOSPC;
	}
	d->st.write_errors++;
	return KVN_EIO;
}

/* Steps 1-4 of docs/disk-tier.md: temp file, header + value, fsync, rename,
 * directory fsync(s).  On failure nothing is left under tmp or final. */
static int write_file(struct disk_tier *d, const struct disk_entry *e, const struct iovec *iov,
		      int niov, const char *sub, int new_sub, const char *tmp, const char *final)
{
	uint8_t hdr[DISK_HDR_MAX];
	struct iovec small[9], *v = small;
	int fd, rc;

	if (niov + 1 > (int)(sizeof small / sizeof small[0]))
		v = kvn_xmalloc((size_t)(niov + 1) * sizeof *v);
	v[0] = (struct iovec){ .iov_base = hdr, .iov_len = hdr_encode(e, hdr) };
	if (niov > 0)
		memcpy(v + 1, iov, (size_t)niov * sizeof *v);

	fd = disk_io_open(&d->io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		disk_log_err(d, "%s: open: %s", tmp, strerror(-fd));
		rc = io_err(d, fd);
		goto out;
	}
	if ((rc = disk_io_writev(&d->io, fd, v, niov + 1)) < 0) {
		disk_log_err(d, "%s: write: %s", tmp, strerror(-rc));
		close(fd);
		unlink(tmp);
		rc = io_err(d, rc);
		goto out;
	}
	/* After a failed fsync the kernel may have marked the dirty pages clean
	 * and dropped them: no later fsync reports the loss, so nothing this
	 * tier writes can be trusted any more (PostgreSQL's fsyncgate). */
	if ((rc = disk_io_fsync(&d->io, fd)) < 0) {
		log_error("disk: %s: fsync: %s: the disk tier is read-only until restart", tmp,
			  strerror(-rc));
		close(fd);
		unlink(tmp);
		d->readonly = 1;
		d->st.fsync_errors++;
		d->st.write_errors++;
		rc = KVN_EIO;
		goto out;
	}
	if (close(fd) < 0) {
		rc = -errno;
		disk_log_err(d, "%s: close: %s", tmp, strerror(-rc));
		unlink(tmp);
		rc = io_err(d, rc);
		goto out;
	}
	if ((rc = disk_io_rename(&d->io, tmp, final)) < 0) {
		disk_log_err(d, "%s: rename: %s", tmp, strerror(-rc));
		unlink(tmp);
		d->st.rename_errors++;
		rc = io_err(d, rc);
		goto out;
	}
	/* The rename is durable only once its directory is; a new 2-hex folder
	 * is itself an entry of the tier's directory. */
	const char *which = sub;
	if ((rc = disk_io_dirsync(&d->io, sub)) < 0 ||
	    (new_sub && (rc = disk_io_dirsync(&d->io, which = d->dir)) < 0)) {
		disk_log_err(d, "%s: directory fsync: %s", which, strerror(-rc));
		unlink(final);
		d->st.dirsync_errors++;
		rc = io_err(d, rc);
		goto out;
	}
	rc = 0;
out:
	if (v != small)
		free(v);
	return rc;
}

int disk_write(struct disk_tier *d, const struct disk_entry *e, const struct iovec *iov, int niov)
{
	char name[DISK_NAME_MAX], sub[PATH_MAX], final[PATH_MAX], tmp[PATH_MAX];
	struct disk_entry old;
	uint64_t need, have;
	int rc, found, new_sub = 0;

	if (!d || !e || bad_key(e->key, e->klen) || niov < 0 || (niov > 0 && !iov))
		return KVN_EINVAL;
	if (d->readonly)
		return KVN_EROFS;
	if (!iov_matches(e, iov, niov)) {
		d->st.checksum_errors++;
		disk_log_err(d, "refusing to write a value whose bytes do not match its size and checksum");
		return KVN_ECORRUPT;
	}
	disk_file_name(e->key, e->klen, e->gen, name);
	snprintf(sub, sizeof sub, "%s/%.2s", d->dir, name);
	snprintf(final, sizeof final, "%s/%s", d->dir, name);
	if (snprintf(tmp, sizeof tmp, "%s" DISK_TMP_SUFFIX, final) >= (int)sizeof tmp)
		return KVN_EINVAL; /* disk_open checked the length of dir */

	if ((found = disk_index_get(d->ix, e->key, e->klen, e->gen, &old)) < 0)
		return found;
	need = disk_file_bytes(e->klen, e->size);
	have = d->st.used_bytes - (found ? disk_file_bytes(e->klen, old.size) : 0);
	if (need > d->capacity || have > d->capacity - need) {
		d->st.enospc++;
		return KVN_ENOSPC;
	}
	if (mkdir(sub, 0755) == 0)
		new_sub = 1;
	else if (errno != EEXIST) {
		disk_log_err(d, "%s: mkdir: %s", sub, strerror(errno));
		return io_err(d, -errno);
	}
	/* Replacing: the old row goes first, so a crash before the new row
	 * leaves an orphan (removed at recovery), never a row describing the
	 * other file's bytes. */
	if (found) {
		if ((rc = disk_index_del(d->ix, e->key, e->klen, e->gen)) < 0)
			return rc;
		unaccount(d, e->klen, old.size);
	}
	if ((rc = write_file(d, e, iov, niov, sub, new_sub, tmp, final)) < 0) {
		if (found)
			unlink(final); /* the old file, if the rename did not replace it */
		return rc;
	}
	if ((rc = disk_index_put(d->ix, e, name)) < 0) {
		unlink(final);
		return rc;
	}
	d->st.used_bytes += need;
	d->st.files++;
	d->st.writes++;
	d->st.write_bytes += e->size;
	return 0;
}

/* ---- read, quarantine, remove ------------------------------------------------ */

/* Move a file that failed its checks out of the tier (kept for a post
 * mortem, never read again) and forget its row. */
static void quarantine(struct disk_tier *d, const struct disk_entry *e, const char *name,
		       const char *path)
{
	char q[PATH_MAX];
	struct disk_entry row;
	int rc;

	snprintf(q, sizeof q, "%s/" DISK_QUARANTINE "/%s.%" PRIu64 ".%" PRIu64, d->dir, name + 3,
		 kvn_wall_ms(), ++d->qseq);
	if ((rc = disk_io_rename(&d->io, path, q)) < 0) {
		disk_log_err(d, "%s: cannot quarantine (%s): removing it", path, strerror(-rc));
		unlink(path);
	} else {
		d->st.quarantined++;
	}
	if (disk_index_get(d->ix, e->key, e->klen, e->gen, &row) == 1 &&
	    disk_index_del(d->ix, e->key, e->klen, e->gen) == 0)
		unaccount(d, e->klen, row.size);
}

int disk_read(struct disk_tier *d, const struct disk_entry *e, void *buf)
{
	char name[DISK_NAME_MAX], path[PATH_MAX];
	uint8_t hdr[DISK_HDR_MAX];
	struct stat sb;
	ssize_t n;
	uint32_t off;
	int fd;

	if (!d || !e || bad_key(e->key, e->klen) || (!buf && e->size > 0))
		return KVN_EINVAL;
	disk_file_name(e->key, e->klen, e->gen, name);
	snprintf(path, sizeof path, "%s/%s", d->dir, name);
	fd = disk_io_open(&d->io, path, O_RDONLY, 0);
	if (fd == -ENOENT)
		return KVN_ENOTFOUND;
	if (fd < 0) {
		disk_log_err(d, "%s: open: %s", path, strerror(-fd));
		d->st.read_errors++;
		return KVN_EIO;
	}
	if (fstat(fd, &sb) < 0) {
		disk_log_err(d, "%s: fstat: %s", path, strerror(errno));
		goto eio;
	}
	n = disk_io_pread(&d->io, fd, hdr, DISK_HDR_LEN(e->klen), 0);
	if (n < 0) {
		disk_log_err(d, "%s: read: %s", path, strerror((int)-n));
		goto eio;
	}
	if ((off = hdr_check(e, hdr, (size_t)n, (uint64_t)sb.st_size)) == 0) {
		disk_log_err(d, "%s: header does not match (torn, overwritten or not this entry)", path);
		goto corrupt;
	}
	n = e->size ? disk_io_pread(&d->io, fd, buf, e->size, off) : 0;
	if (n < 0) {
		disk_log_err(d, "%s: read: %s", path, strerror((int)-n));
		goto eio;
	}
	if ((uint64_t)n != e->size || kvn_xxh3(buf, e->size) != e->checksum) {
		disk_log_err(d, "%s: value checksum mismatch", path);
		goto corrupt;
	}
	close(fd);
	d->st.reads++;
	d->st.read_bytes += e->size;
	return 0;
eio:
	close(fd);
	d->st.read_errors++;
	return KVN_EIO;
corrupt:
	close(fd);
	if (e->size)
		memset(buf, 0, e->size);
	d->st.checksum_errors++;
	quarantine(d, e, name, path);
	return KVN_ECORRUPT;
}

int disk_remove(struct disk_tier *d, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	char name[DISK_NAME_MAX], path[PATH_MAX];
	struct disk_entry row;
	int found, rc;

	if (!d || bad_key(key, klen))
		return KVN_EINVAL;
	/* Row first (the reverse of a write): once it is gone the file is an
	 * orphan, removed at recovery even if the unlink below is lost. */
	if ((found = disk_index_get(d->ix, key, klen, gen, &row)) < 0)
		return found;
	if (found) {
		if ((rc = disk_index_del(d->ix, key, klen, gen)) < 0)
			return rc;
		unaccount(d, klen, row.size);
		d->st.removes++;
	}
	disk_file_name(key, klen, gen, name);
	snprintf(path, sizeof path, "%s/%s", d->dir, name);
	if (unlink(path) < 0 && errno != ENOENT) {
		disk_log_err(d, "%s: unlink: %s", path, strerror(errno));
		return KVN_EIO;
	}
	return 0;
}
