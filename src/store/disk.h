/*
 * disk: the peer's disk tier as a synchronous storage engine (issue 13,
 * docs/disk-tier.md): one file per (key, generation) under a directory,
 * indexed by peer.db (SQLite).  Owns the file layout and header, durable
 * writes (temp, fsync, rename, directory fsync, then the index row),
 * verified reads with quarantine, removal, start-up recovery, capacity
 * accounting, counters and an I/O shim with fault injection for tests.
 * No actor or wire types: the peer's disk-writer actor calls it from one
 * thread.  Not thread-safe: one owner thread per struct disk_tier.
 */
#ifndef KVN_DISK_H
#define KVN_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/base.h"

struct disk_tier;

struct disk_opts {
	const char *dir;     /* the tier's directory (created, with parents) */
	const char *db_path; /* peer.db; may be inside dir */
	uint64_t capacity;   /* bytes of files (header + value) allowed; > 0 */
};

#define DISK_F_QUEUE 1u /* a durable work-queue item (never dropped) */
#define DISK_F_RETAIN 2u /* with QUEUE: kept on release (put with retain) */

/* One generation of a key.  key points at klen bytes (1..KVN_MAX_KEY) owned
 * by the caller (by the tier for the duration of a disk_recover callback). */
struct disk_entry {
	const uint8_t *key;
	uint16_t klen;
	uint64_t gen, size, checksum; /* checksum: XXH3_64bits of the value */
	uint64_t expires_wall_ms;     /* 0: none */
	uint32_t flags;               /* DISK_F_* */
};

/* mkdir -p dir (and dir/quarantine), open or create peer.db and migrate it
 * (refusing a schema newer than the code).  used_bytes is 0 until
 * disk_recover.  KVN_EINVAL (bad opts), KVN_EIO (a directory), KVN_EDB
 * (peer.db); err names the path and the reason. */
int disk_open(const struct disk_opts *o, struct disk_tier **out, char *err, size_t errlen);
void disk_close(struct disk_tier *d); /* NULL ok */

struct disk_recovery {
	uint64_t entries, bytes;  /* good entries reported; their value bytes */
	uint64_t temp_removed;    /* leftover temp files of interrupted writes */
	uint64_t orphans_removed; /* data files with no row */
	uint64_t missing;         /* rows whose file was gone (row dropped) */
	uint64_t size_mismatch;   /* rows whose file had another size (both dropped) */
};
/* Called once per good entry; e and e->key are valid during the call only.
 * Return 0 to go on, or a negative KVN_E* to stop recovery with it. */
typedef int (*disk_entry_fn)(void *arg, const struct disk_entry *e);
/* Once, right after disk_open: remove temp files, check every indexed file
 * exists and its size matches (else drop the row, counted), remove data
 * files with no row (orphans, counted), sets used_bytes, and call fn (may be
 * NULL) for each good entry.  rep may be NULL.  0, fn's error, KVN_EDB or
 * KVN_EIO (a directory could not be read). */
int disk_recover(struct disk_tier *d, disk_entry_fn fn, void *arg, struct disk_recovery *rep);

/* Write a whole generation: iov (niov >= 0 pieces, e->size bytes in all)
 * into a temp file beside its target, header first, fsync, rename, fsync
 * the directory (and the tier's directory when the 2-hex folder was just
 * created), then the peer.db row in its own transaction (synchronous=FULL).
 * 0 only when all of that succeeded.  Before writing anything, the XXH3 of
 * the iov must equal e->checksum and its length e->size: else KVN_ECORRUPT
 * and nothing written.  KVN_ENOSPC: capacity would be exceeded, or the file
 * system said ENOSPC (temp removed).  KVN_EIO: open, write, rename or
 * directory fsync failed (temp removed, counted, nothing indexed).  A failed
 * fsync is KVN_EIO and makes the tier read-only until disk_close: later
 * writes answer KVN_EROFS, reads and removes still work.  KVN_EDB: the row
 * could not be written (file removed).  Writing an existing (key, gen)
 * again replaces it: its row goes first, so a crash in between loses the
 * entry (an orphan file, removed at recovery) but never mixes the two. */
int disk_write(struct disk_tier *d, const struct disk_entry *e, const struct iovec *iov, int niov);

/* Read e->size bytes of (e->key, e->gen) into buf (e is what disk_recover
 * reported or what was written).  The header must match e (magic, version,
 * key, gen, size, checksum) and the XXH3 of the bytes e->checksum: on a
 * mismatch the file moves to {dir}/quarantine/, its row is deleted, it is
 * counted, buf is zeroed and the answer is KVN_ECORRUPT (never wrong
 * bytes).  KVN_ENOTFOUND: no file.  KVN_EIO: the read failed (the file
 * stays: the error may be transient). */
int disk_read(struct disk_tier *d, const struct disk_entry *e, void *buf);

/* Unlink the file and delete its row; an absent entry is 0.  KVN_EIO
 * (unlink failed), KVN_EDB. */
int disk_remove(struct disk_tier *d, const uint8_t *key, uint16_t klen, uint64_t gen);

int disk_readonly(const struct disk_tier *d);
uint64_t disk_used_bytes(const struct disk_tier *d); /* header + value bytes of indexed files */
uint64_t disk_capacity(const struct disk_tier *d);
/* Bytes a file holding a value of `size` bytes under a klen-byte key takes
 * against the capacity. */
uint64_t disk_file_bytes(uint16_t klen, uint64_t size);

/* One line each (KVN_STAT_FIELD in base/base.h). */
#define DISK_STATS_FIELDS(X)                                                    \
	X(files, "files indexed")                                               \
	X(used_bytes, "bytes of indexed files (headers + values)")              \
	X(capacity, "bytes allowed (peer.disk_size)")                           \
	X(writes, "disk_write calls that succeeded")                            \
	X(write_bytes, "value bytes written by them")                           \
	X(reads, "disk_read calls that succeeded")                              \
	X(read_bytes, "value bytes read by them")                               \
	X(removes, "files removed by disk_remove")                              \
	X(write_errors, "disk_write calls failed by an I/O error (any step)")   \
	X(fsync_errors, "file fsyncs that failed (the tier went read-only)")    \
	X(rename_errors, "renames that failed")                                 \
	X(dirsync_errors, "directory fsyncs that failed")                       \
	X(read_errors, "disk_read calls failed by an I/O error")                \
	X(enospc, "writes refused: capacity or a full file system")             \
	X(checksum_errors, "values refused: bytes or header not as written")    \
	X(quarantined, "files moved to quarantine/")                            \
	X(readonly, "1 once a failed fsync made the tier read-only")
struct disk_stats {
	DISK_STATS_FIELDS(KVN_STAT_FIELD)
};
void disk_get_stats(const struct disk_tier *d, struct disk_stats *st);
void disk_stats_each(const struct disk_stats *st, kvn_stat_fn fn, void *arg);

/* Fault injection for tests: the next `skip` calls of op succeed, then
 * `count` calls fail with errno err (EIO, ENOSPC, ...); count 0 clears. */
enum disk_op {
	DISK_OP_OPEN,    /* open of a data or temp file */
	DISK_OP_WRITE,   /* one writev of a temp file */
	DISK_OP_FSYNC,   /* fsync of a temp file */
	DISK_OP_RENAME,  /* temp -> final name, and final -> quarantine/ */
	DISK_OP_DIRSYNC, /* fsync of a directory */
	DISK_OP_READ,    /* one pread of a data file */
	DISK_OP_MAX
};
void disk_fault_set(struct disk_tier *d, enum disk_op op, uint32_t skip, uint32_t count, int err);

#endif
