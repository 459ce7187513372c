/*
 * disk_recover: bringing the disk tier back at start (issue 13 item 8,
 * docs/disk-tier.md "Recovery"): check each peer.db row against its file,
 * drop rows whose file is gone or of another size, remove temp files of
 * interrupted writes and data files no row names (orphans: a write that
 * died between rename and row, or a remove between row and unlink), and
 * hand every good entry to the caller, who rebuilds its key table.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "store/disk_int.h"

struct row {
	uint8_t *key;
	struct disk_entry e;
	char file[DISK_NAME_MAX];
};

struct rows {
	struct row *v;
	size_t n, cap;
};

static int collect(void *arg, const struct disk_entry *e, const char *file)
{
	struct rows *r = arg;
	struct row *x;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		struct row *nv = realloc(r->v, r->cap * sizeof *r->v);
		if (!nv)
			return KVN_ENOMEM;
		r->v = nv;
	}
	x = &r->v[r->n++];
	x->e = *e;
	x->key = kvn_xmalloc(e->klen);
	memcpy(x->key, e->key, e->klen);
	x->e.key = x->key;
	snprintf(x->file, sizeof x->file, "%s", file);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* "{16 hex}.g{16 hex}": a data file's name inside its 2-hex folder */
static int is_data_name(const char *s)
{
	return strlen(s) == 34 && is_hex(s, 16) && s[16] == '.' && s[17] == 'g' && is_hex(s + 18, 16);
}

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Remove temp files and orphans from every 2-hex folder; good[0..ngood) are
 * the sorted names ("hh/...") that rows keep. */
static int sweep(struct disk_tier *d, char **good, size_t ngood, struct disk_recovery *rep)
{
	DIR *top = opendir(d->dir), *sd;
	struct dirent *t, *f;
	/* rel holds any two directory entries' names (the tier's are much shorter,
	 * but a foreign file's name can be 255 bytes: no truncation) */
	char path[PATH_MAX], rel[2 * 256 + 2];

	if (!top) {
		disk_log_err(d, "opendir: %s", strerror(errno));
		return KVN_EIO;
	}
	while ((t = readdir(top))) {
		if (strlen(t->d_name) != 2 || !is_hex(t->d_name, 2))
			continue;
		snprintf(path, sizeof path, "%s/%s", d->dir, t->d_name);
		if (!(sd = opendir(path)))
			continue; /* a file named like a folder: not ours */
		while ((f = readdir(sd))) {
			int tmp = has_suffix(f->d_name, DISK_TMP_SUFFIX);
			if (!tmp && !is_data_name(f->d_name))
				continue; /* not ours: leave it */
			snprintf(rel, sizeof rel, "%s/%s", t->d_name, f->d_name);
			if (!tmp) {
				const char *key = rel;
				if (ngood && bsearch(&key, good, ngood, sizeof *good, cmp_name))
					continue;
			}
			snprintf(path, sizeof path, "%s/%s", d->dir, rel);
			if (unlink(path) < 0 && errno != ENOENT) {
				disk_log_err(d, "%s: unlink: %s", path, strerror(errno));
				continue;
			}
			if (tmp)
				rep->temp_removed++;
			else
				rep->orphans_removed++;
		}
		closedir(sd);
	}
	closedir(top);
	return 0;
}

int disk_recover(struct disk_tier *d, disk_entry_fn fn, void *arg, struct disk_recovery *rep)
{
	struct disk_recovery local;
	struct rows r = { 0 };
	char **good = NULL, path[PATH_MAX], want[DISK_NAME_MAX];
	size_t ngood = 0;
	int rc;

	if (!d)
		return KVN_EINVAL;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof *rep);
	d->st.used_bytes = 0;
	d->st.files = 0;
	/* Rows first, into memory: deleting from a table being scanned is
	 * undefined in SQLite. */
	if ((rc = disk_index_scan(d->ix, collect, &r)) < 0)
		goto out;
	good = kvn_xcalloc(r.n ? r.n : 1, sizeof *good);
	for (size_t i = 0; i < r.n; i++) {
		struct row *x = &r.v[i];
		struct stat sb;
		int missing;

		disk_file_name(x->key, x->e.klen, x->e.gen, want);
		snprintf(path, sizeof path, "%s/%s", d->dir, want);
		missing = strcmp(want, x->file) != 0; /* a row naming another file */
		if (!missing && stat(path, &sb) < 0) {
			if (errno != ENOENT) {
				disk_log_err(d, "%s: stat: %s", path, strerror(errno));
				rc = KVN_EIO;
				goto out;
			}
			missing = 1;
		}
		if (missing || (uint64_t)sb.st_size != disk_file_bytes(x->e.klen, x->e.size)) {
			if ((rc = disk_index_del(d->ix, x->key, x->e.klen, x->e.gen)) < 0)
				goto out;
			if (missing) {
				rep->missing++;
			} else {
				/* Not the file the row describes: it can never
				 * be read, so it goes too. */
				unlink(path);
				rep->size_mismatch++;
			}
			continue;
		}
		good[ngood++] = x->file;
		d->st.used_bytes += (uint64_t)sb.st_size;
		d->st.files++;
		rep->entries++;
		rep->bytes += x->e.size;
		if (fn && (rc = fn(arg, &x->e)) != 0)
			goto out;
	}
	qsort(good, ngood, sizeof *good, cmp_name);
	rc = sweep(d, good, ngood, rep);
	if (rep->missing || rep->size_mismatch || rep->orphans_removed)
		log_warn("disk: %s: recovery: %llu rows without their file, %llu of the wrong size dropped; "
			 "%llu orphan files removed",
			 d->dir, (unsigned long long)rep->missing, (unsigned long long)rep->size_mismatch,
			 (unsigned long long)rep->orphans_removed);
	log_info("disk: %s: recovered %llu entries (%llu value bytes), %llu temp files removed", d->dir,
		 (unsigned long long)rep->entries, (unsigned long long)rep->bytes,
		 (unsigned long long)rep->temp_removed);
out:
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i].key);
	free(r.v);
	free(good);
	return rc;
}
