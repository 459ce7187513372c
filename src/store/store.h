/*
 * store: the storage engines, free of actor and wire types (the glue lives in
 * the actors).  Owns the DRAM arena and its page allocator (alloc.c), the
 * peer's per-key table of generations, slots and read leases (keytab.c), and
 * the master's SQLite metadata store (meta.c, schema in sql/).  The peer's
 * disk tier (disk*.c, peer.db) has its own header, store/disk.h.
 */
#ifndef KVN_STORE_H
#define KVN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ===== alloc: DRAM arena + bitmap page allocator ========================== */

struct alloc_arena;

/* A run of consecutive pages. */
struct alloc_extent {
	uint32_t page;
	uint32_t npages;
};

/* One line each (KVN_STAT_FIELD in base/base.h). */
#define ALLOC_STATS_FIELDS(X)                                                   \
	X(total_bytes, "arena size")                                            \
	X(used_bytes, "bytes in allocated pages")                               \
	X(page_size, "bytes per page")                                          \
	X(total_pages, "pages in the arena")                                    \
	X(free_pages, "pages free")                                             \
	X(largest_free_run, "longest run of free pages")                        \
	X(allocs, "successful alloc_pages calls")                               \
	X(frees, "alloc_release calls")                                         \
	X(enospc, "alloc_pages calls refused: no room")                         \
	X(hugepages, "1 if the arena is backed by huge pages")
struct alloc_stats {
	ALLOC_STATS_FIELDS(KVN_STAT_FIELD)
};

/* One mmap region of `size` bytes (a multiple of page_size, a power of two
 * >= 4096), pre-faulted so the first write into it runs at memcpy speed.
 * hugepages: try MAP_HUGETLB, then THP (madvise), then plain pages.
 * KVN_EINVAL bad sizes, KVN_ENOMEM mmap failed. */
int alloc_arena_new(uint64_t size, uint64_t page_size, int hugepages, struct alloc_arena **out);
void alloc_arena_free(struct alloc_arena *a); /* NULL ok */
/* Pages for `bytes` bytes (bytes > 0): one contiguous run when one exists,
 * else up to max_ext runs (the largest free runs, returned in address
 * order).  Returns the number of extents written (>= 1), or KVN_ENOSPC
 * (nothing allocated: no max_ext runs can hold it).  bytes == 0 returns 0. */
int alloc_pages(struct alloc_arena *a, uint64_t bytes, struct alloc_extent *ext, int max_ext);
/* Every page of ext[0..n) must be allocated: releasing a free page (double
 * free) or a page outside the arena is a fatal invariant failure. */
void alloc_release(struct alloc_arena *a, const struct alloc_extent *ext, int n);
void *alloc_addr(const struct alloc_arena *a, uint32_t page);
uint64_t alloc_page_size(const struct alloc_arena *a);
/* Free bytes (free pages * page size), O(1): for eviction loops. */
uint64_t alloc_free_bytes(const struct alloc_arena *a);
void alloc_get_stats(const struct alloc_arena *a, struct alloc_stats *st);
void alloc_stats_each(const struct alloc_stats *st, kvn_stat_fn fn, void *arg);
/* Base address and length of the whole region (RDMA registration). */
void *alloc_base(const struct alloc_arena *a, uint64_t *len);

/* ===== keytab: the peer's per-key state ==================================== 
 *
 * Each key has at most one COMMITTED generation that reads see, any number of
 * PENDING generations being written, and "doomed" generations that were
 * superseded, evicted or removed while a read lease held them (their pages are
 * freed on the last lease release).
 *
 *   FREE -> PENDING --commit--> COMMITTED --supersede/evict/remove--> FREE
 *             \--abort / pending TTL reaper--> FREE
 *
 * Callers refer to slots by (key, gen), never by pointer across an
 * asynchronous step, so a late commit after the reaper finds nothing and is
 * refused instead of touching freed memory.  Every refused transition is
 * counted (keytab_stats.refused) and returns KVN_ESTATE / KVN_ENOTFOUND; the
 * caller logs.  Not thread-safe: one owner (the peer actor). */

#define KEYTAB_MAX_EXT 64

enum keytab_state { KEYTAB_FREE = 0, KEYTAB_PENDING = 1, KEYTAB_COMMITTED = 2 };
enum keytab_tier { KEYTAB_DRAM = 0, KEYTAB_DISK = 1 };

struct keytab;

/* Read-only view of one generation, valid until the next keytab call. */
struct keytab_view {
	const void *key;
	size_t klen;
	uint64_t gen;
	uint64_t size;
	int state;
	int tier;
	uint32_t leases;
	int next;
	const struct alloc_extent *ext;
};

/* One line each (KVN_STAT_FIELD in base/base.h). */
#define KEYTAB_STATS_FIELDS(X)                                                  \
	X(keys, "keys with a committed generation")                             \
	X(pending, "PENDING slots")                                             \
	X(pending_bytes, "arena bytes (whole pages) the PENDING slots hold")    \
	X(doomed, "superseded/removed, waiting for lease release")              \
	X(leases, "active read leases")                                         \
	X(committed_bytes, "value bytes of committed generations")              \
	X(refused, "refused transitions (late commit, double release, ...)")    \
	X(reaped, "PENDING slots reclaimed by the TTL reaper")                  \
	X(evicted, "committed generations evicted")                             \
	X(lease_expired, "leases released by keytab_expire_leases")             \
	X(tombs, "tombstones of generations the master superseded")             \
	X(max_gen, "highest generation ever begun (never decreases)")
struct keytab_stats {
	KEYTAB_STATS_FIELDS(KVN_STAT_FIELD)
};

struct keytab *keytab_new(struct alloc_arena *a);
/* Frees every slot's pages back to the arena (leases ignored: shutdown). */
void keytab_free(struct keytab *kt);

/* Reserve pages for (key, gen) and create a PENDING slot that must be
 * committed or aborted before now_ms + ttl_ms.  Errors: KVN_EKEYLEN,
 * KVN_EINVAL (gen 0), KVN_ENOSPC (arena full; the table is unchanged),
 * KVN_EEXIST (that gen is already pending or committed: checked first, so a
 * retried begin of the committed gen gets EEXIST), KVN_ESTALE (gen < the
 * committed gen of the key: a newer value is already there).  size 0 gives a
 * slot without extents.  On success *view (optional) describes the slot,
 * whose pages the caller fills through alloc_addr(). */
int keytab_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		 uint64_t now_ms, uint64_t ttl_ms, struct keytab_view *view);
/* PENDING -> COMMITTED.  An older committed generation of the key is
 * superseded: freed at once, or doomed while leased.  *superseded_gen (if not
 * NULL) gets its gen, or 0.  If a newer generation committed meanwhile, this
 * one is overwritten on arrival: freed at once, never visible, and still a
 * success (0; *superseded_gen == gen says so), because a put of an older
 * generation takes its place in the order just before the newer one; an
 * older generation never replaces a newer one.  Not PENDING (reaped,
 * aborted, already committed) or unknown: KVN_ESTATE, counted, nothing
 * changes. */
int keytab_commit(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		  uint64_t *superseded_gen);
/* PENDING -> FREE.  Anything else: KVN_ESTATE, counted. */
int keytab_abort(struct keytab *kt, const void *key, size_t klen, uint64_t gen);
/* Free PENDING slots whose deadline passed (now_ms >= deadline); returns how
 * many.  Also forgets the tombstones whose time is up (not counted in the
 * return value).  For each slot, the optional callback sees the key and gen
 * before the free.  Callbacks (here, evict, foreach) must not call keytab functions. */
typedef void (*keytab_slot_fn)(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size);
int keytab_reap(struct keytab *kt, uint64_t now_ms, keytab_slot_fn fn, void *arg);

/* The committed generation of key (gen == 0: whatever is committed; else
 * exactly that gen).  KVN_ESTALE: a gen was asked for and that gen is not
 * committed here (another is, or none: removed, dropped, evicted, lost in a
 * restart), so the master must be asked what replaced it; for gen 0, a
 * tombstone (keytab_supersede) says the value moved to another node.
 * KVN_ENOTFOUND: gen 0 and no committed generation or tombstone.  Marks the
 * key recently used.  keytab_lease and keytab_remove answer the same way. */
int keytab_lookup(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		  struct keytab_view *view);
/* A key as a batch hands it to keytab_prefetch. */
struct keytab_ref {
	const void *key;
	size_t klen;
};
#define KEYTAB_PREFETCH_MAX 64 /* keys per keytab_prefetch call */
/* The next lookups of a batch will be refs[0..n): prefetch the buckets,
 * chains, keys and committed slots of the first KEYTAB_PREFETCH_MAX of them
 * so the misses overlap (base/hashpf.h).  Only a hint; call it per chunk of
 * a larger batch, right before that chunk's lookups. */
void keytab_prefetch(const struct keytab *kt, const struct keytab_ref *refs, size_t n);

/* Take a read lease on the committed (key, gen) (same errors as lookup).
 * While any lease is held, the generation's pages are not freed, even if it is
 * superseded, evicted or removed.  *lease_id identifies the lease for
 * release; deadline is now_ms + ttl_ms. */
int keytab_lease(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		 uint64_t ttl_ms, uint64_t *lease_id, struct keytab_view *view);
/* Release once.  A second release of the same id, or an unknown id: KVN_ESTATE,
 * counted, nothing changes.  Frees the generation's pages if it was doomed and
 * this was its last lease. */
int keytab_release(struct keytab *kt, uint64_t lease_id);
/* Leases whose deadline passed (e.g. a pin never unpinned): released and
 * counted (stats.lease_expired); returns how many.  A later release of such an
 * id is refused (KVN_ESTATE); lease ids are never reused.  A lease with an
 * owner (keytab_lease_hold) is counted but kept until its release: see
 * keytab_expire_leases_fn. */
int keytab_expire_leases(struct keytab *kt, uint64_t now_ms);
/* Mark lease_id as referenced by an in-flight write (owner: the reference's
 * cookie, not NULL): its pages are never freed before keytab_release, even
 * past its deadline.  KVN_ESTATE for an unknown id. */
int keytab_lease_hold(struct keytab *kt, uint64_t lease_id, void *owner);
/* As keytab_expire_leases; each held lease that just expired is reported
 * once to fn (lease id, owner) after the walk, so its owner can end the
 * write (its cleanup then releases the lease and frees the pages).  fn may
 * release leases. */
typedef void (*keytab_expired_fn)(void *arg, uint64_t lease_id, void *owner);
int keytab_expire_leases_fn(struct keytab *kt, uint64_t now_ms, keytab_expired_fn fn, void *arg);

/* Remove the committed generation (gen == 0: whatever is committed; else only
 * if it is that gen, KVN_ESTALE otherwise).  Freed now or doomed while
 * leased.  *removed_gen (optional) gets the gen removed. */
int keytab_remove(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t *removed_gen);

/* The master saw a newer generation of the key on another node (DROP_GEN):
 * free the committed gen (now, or doomed while leased) and leave a tombstone
 * for ttl_ms (until keytab_reap after that), so a get or remove routed to gen
 * before the move answers KVN_ESTALE (re-route) rather than KVN_ENOTFOUND
 * (which would read as "removed").  A later commit of a newer generation or
 * a keytab_remove ends the tombstone; at most KEYTAB_TOMB_MAX are kept (the
 * oldest goes first).  0: freed; KVN_ENOTFOUND: gen was not committed here
 * (the tombstone is set anyway); KVN_ESTALE: a newer gen is committed here
 * (nothing changes); KVN_EINVAL gen 0; KVN_EKEYLEN. */
#define KEYTAB_TOMB_MAX 16384 /* bounds their memory: a key entry each */
int keytab_supersede(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		     uint64_t ttl_ms);

/* Evict least-recently-used committed, unleased generations until at least
 * `bytes` bytes of pages are free in the arena or nothing more can go.  fn
 * (optional) sees each victim before it is freed.  Returns bytes freed. */
uint64_t keytab_evict(struct keytab *kt, uint64_t bytes, keytab_slot_fn fn, void *arg);

/* Visit every committed generation (full sync snapshot). */
void keytab_foreach(struct keytab *kt, keytab_slot_fn fn, void *arg);
void keytab_get_stats(const struct keytab *kt, struct keytab_stats *st);
void keytab_stats_each(const struct keytab_stats *st, kvn_stat_fn fn, void *arg);

/* ===== meta: the master's SQLite store ===================================== 
 *
 * One connection, one owner thread (the db actor).  Opened with WAL,
 * synchronous=FULL (read back and checked), foreign_keys=ON, a busy timeout;
 * migrated forward from sql/NNN-*.sql (compiled in), refusing a database whose
 * user_version is newer than the code; every statement prepared once. */

struct meta_db;

struct meta_node {
	char node_id[65];
	char role[16];
	char addr[128];
	uint64_t dram_total, dram_used, disk_total, disk_used;
	uint64_t last_seq;
	uint64_t last_seen_ms;
	char state[16]; /* "alive" | "dead" */
};

/* gen and sizes must fit SQLite's signed 64 bits (<= INT64_MAX): KVN_EINVAL
 * otherwise. */
struct meta_object {
	const void *key;
	size_t klen;
	uint64_t gen;
	const char *node_id;
	int tier;   /* enum keytab_tier */
	uint64_t size;
	const char *state; /* "live" | "lost"; NULL on put means "live" */
	int64_t order; /* rowid: commit order (filled on load) */
};

/* err gets "PATH: reason" on failure. */
int meta_open(const char *path, struct meta_db **out, char *err, size_t errlen);
void meta_close(struct meta_db *db); /* NULL ok */
int meta_user_version(struct meta_db *db, int *version);
int meta_code_version(void);
/* "FULL" etc., read back from the connection (tests check it). */
int meta_synchronous(struct meta_db *db, char *out, size_t cap);

/* Group commit: callers bracket many writes in one transaction.  Every write
 * below is atomic on its own: inside a transaction a failed call is undone
 * (savepoint) and the rest of the group still commits.  A failed COMMIT
 * rolls back (nothing of the group is stored); rollback with nothing open is
 * a no-op. */
int meta_begin(struct meta_db *db);
int meta_commit(struct meta_db *db);
int meta_rollback(struct meta_db *db);
/* Why the last statement failed ("database or disk is full (sqlite 13)"):
 * for error replies; "no error" if none did.  Never holds data. */
const char *meta_last_error(const struct meta_db *db);
/* How long a statement waits for another connection's lock (an operator's
 * BEGIN IMMEDIATE) before failing with "database is locked". */
void meta_set_busy_timeout(struct meta_db *db, uint32_t ms);
/* PRAGMA wal_checkpoint(TRUNCATE) outside a transaction: 0 when the WAL was
 * checkpointed and truncated, KVN_EBUSY when a reader or writer kept it
 * from completing, KVN_EDB on error (disk full, I/O). */
int meta_checkpoint(struct meta_db *db);

/* Durably allocate the next generation epoch (its own transaction: call
 * outside begin/commit, else KVN_ESTATE).  The first call on a new database
 * returns 1; epochs stop at 2^31-1 so gens stay below 2^63. */
int meta_epoch_next(struct meta_db *db, uint32_t *epoch);
/* Record exactly `epoch` (1..2^31-1) as the newest epoch: KVN_ESTATE when
 * it is not above every recorded one.  Inside a transaction it is durable
 * with that transaction's COMMIT (the master raises its epoch above a
 * generation a peer reported, through the SQLite writer). */
int meta_epoch_raise(struct meta_db *db, uint32_t epoch);
int meta_node_upsert(struct meta_db *db, const struct meta_node *n);
/* KVN_ENOTFOUND if the node was never upserted. */
int meta_node_set_state(struct meta_db *db, const char *node_id, const char *state);
/* Record committed (key, gen) at node; deletes any older generation rows of
 * the key (superseded).  An existing newer generation makes this a no-op.
 * The same (key, gen) again updates node, tier, size and state in place
 * (commit order kept: a tier move).  The node must have been upserted first
 * (foreign key): KVN_EDB otherwise. */
int meta_object_put(struct meta_db *db, const struct meta_object *o);
/* Delete exactly (key, gen); absent is not an error. */
int meta_object_del(struct meta_db *db, const void *key, size_t klen, uint64_t gen);
/* Mark every live object of node lost (node declared dead) / live again. */
int meta_objects_set_state(struct meta_db *db, const char *node_id, const char *state);
/* Replace the node's objects (live or lost) by exactly the given set (full
 * sync); objs[i].node_id is NULL or node_id.  Rows kept keep their commit
 * order; each row goes through put semantics, so a generation superseded
 * elsewhere meanwhile is not resurrected. */
int meta_objects_replace_node(struct meta_db *db, const char *node_id,
			      const struct meta_object *objs, size_t n);
typedef int (*meta_object_fn)(void *arg, const struct meta_object *o);
typedef int (*meta_node_fn)(void *arg, const struct meta_node *n);
/* Visit in commit order (lost rows too); a non-zero return from fn stops and
 * is returned.  Pointers in *o (*n) are valid only during fn, which must not
 * call back into meta. */
int meta_load_objects(struct meta_db *db, meta_object_fn fn, void *arg);
/* Generation floors (sql/002-floors.sql): each (key, lowest generation the
 * master may index again) left by the last row of a key; empty the table
 * (the master knows no node holds an older generation it does not index). */
typedef int (*meta_floor_fn)(void *arg, const void *key, size_t klen, uint64_t gen);
int meta_load_floors(struct meta_db *db, meta_floor_fn fn, void *arg);
int meta_floors_clear(struct meta_db *db);
int meta_load_nodes(struct meta_db *db, meta_node_fn fn, void *arg);
int meta_count_objects(struct meta_db *db, uint64_t *n);

#endif
