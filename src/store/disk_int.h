/*
 * disk_int: private to src/store/disk*.c.  Owns struct disk_tier, the file
 * header's layout constants, the I/O shim (disk_io.c: each system call the
 * tier makes on data files, with injectable faults) and the peer.db index
 * (disk_index.c).
 */
#ifndef KVN_DISK_INT_H
#define KVN_DISK_INT_H

#include <sys/types.h>

#include "store/disk.h"

/* ---- file header (docs/disk-tier.md, "File format"); little-endian ------ */
#define DISK_MAGIC "KVDT"
#define DISK_VERSION 1
#define DISK_HDR_FIXED 48u /* magic .. expires_wall_ms, then the key */
/* fixed part + key + the header's own XXH3 */
#define DISK_HDR_LEN(klen) (DISK_HDR_FIXED + (uint32_t)(klen) + 8u)
#define DISK_HDR_MAX DISK_HDR_LEN(KVN_MAX_KEY)
#define DISK_QUARANTINE "quarantine"
#define DISK_TMP_SUFFIX ".tmp"
/* "{2 hex}/{16 hex}.g{16 hex}" + ".tmp" + NUL */
#define DISK_NAME_MAX (2 + 1 + 16 + 2 + 16 + 4 + 1)

/* ---- I/O shim (disk_io.c) ------------------------------------------------ */
struct disk_fault {
	uint32_t skip, count;
	int err;
};
struct disk_io {
	struct disk_fault f[DISK_OP_MAX];
};
/* Each returns >= 0 on success or -errno (an injected fault or the
 * system's).  Loops over EINTR and short transfers. */
int disk_io_open(struct disk_io *io, const char *path, int flags, mode_t mode); /* fd */
int disk_io_writev(struct disk_io *io, int fd, const struct iovec *iov, int niov);
int disk_io_fsync(struct disk_io *io, int fd);
int disk_io_rename(struct disk_io *io, const char *from, const char *to);
int disk_io_dirsync(struct disk_io *io, const char *dir);
/* Up to len bytes at off; the count read (short only at end of file). */
ssize_t disk_io_pread(struct disk_io *io, int fd, void *buf, size_t len, uint64_t off);

/* ---- peer.db (disk_index.c) ---------------------------------------------- */
struct disk_index;
int disk_index_open(const char *path, struct disk_index **out, char *err, size_t errlen);
void disk_index_close(struct disk_index *ix);
/* Insert or replace the row of (e->key, e->gen), naming file. */
int disk_index_put(struct disk_index *ix, const struct disk_entry *e, const char *file);
/* 1 and *e filled (e->key left as given), 0 absent, or KVN_EDB. */
int disk_index_get(struct disk_index *ix, const uint8_t *key, uint16_t klen, uint64_t gen,
		   struct disk_entry *e);
int disk_index_del(struct disk_index *ix, const uint8_t *key, uint16_t klen, uint64_t gen);
/* Every row, in key order; fn's nonzero return stops the scan with it. */
typedef int (*disk_row_fn)(void *arg, const struct disk_entry *e, const char *file);
int disk_index_scan(struct disk_index *ix, disk_row_fn fn, void *arg);

/* ---- the tier ------------------------------------------------------------ */
struct disk_tier {
	char *dir;
	struct disk_index *ix;
	uint64_t capacity;
	int readonly;
	uint64_t qseq; /* makes quarantine/ names unique */
	struct disk_stats st;
	struct disk_io io;
	struct kvn_ratelimit err_rl; /* error lines: one bad disk fails every write */
};

/* "{2 hex}/{16 hex}.g{16 hex}" of (key, gen) into name (DISK_NAME_MAX). */
void disk_file_name(const uint8_t *key, uint16_t klen, uint64_t gen, char *name);
/* A rate-limited error line about the tier. */
void disk_log_err(struct disk_tier *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
