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
/* The memfd behind the region (a shared mapping of it, sealed against
 * shrink and grow), owned by the arena: what a same-host client maps
 * read-only.  -1 when there is none. */
int alloc_fd(const struct alloc_arena *a);

/* ===== keytab: the peer's per-key state ==================================== 
 *
 * Each key has at most one COMMITTED generation that reads see, any number of
 * PENDING generations being written, and "doomed" generations that were
 * superseded, evicted, expired or removed while something held them (a read
 * lease, an offload or a promotion in flight): their pages are freed, and
 * their disk file reported to the free hook, when the last holder lets go.
 *
 *   FREE -> PENDING --commit--> COMMITTED --supersede/evict/expire/remove--> FREE
 *             \--abort / pending TTL reaper--> FREE
 *
 * A committed generation lives in DRAM (pages), on disk, or both:
 *
 *   DRAM --offload_begin/done(ok)--> DRAM+disk --drop_dram--> disk
 *   disk --promote/promote_done(ok)--> DRAM+disk      (disk_add: restart)
 *
 * Callers refer to slots by (key, gen), never by pointer across an
 * asynchronous step, so a late commit after the reaper finds nothing and is
 * refused instead of touching freed memory.  Every refused transition is
 * counted (keytab_stats.refused) and returns KVN_ESTATE / KVN_ENOTFOUND; the
 * caller logs.  Expiry (keytab_attrs.expires_ms) is judged by now_ms where a
 * call takes one, else by kvn_now_ms() (tests: kvn_clock_virtual).  Not
 * thread-safe: one owner (the peer actor). */

#define KEYTAB_MAX_EXT 64

enum keytab_state { KEYTAB_FREE = 0, KEYTAB_PENDING = 1, KEYTAB_COMMITTED = 2 };
enum keytab_tier { KEYTAB_DRAM = 0, KEYTAB_DISK = 1 };

struct keytab;

/* A generation's attributes, given at keytab_begin / keytab_disk_add and
 * kept with it.  checksum: the writer's xxh3-64 of the value (the table
 * only stores it).  KEYTAB_F_QUEUE: a durable work-queue item: never
 * dropped; it may leave DRAM only for disk (keytab_evict_one refuses it
 * without a disk copy).  expires_ms: monotonic ms after which the value
 * reads as not found (0: never).  KEYTAB_F_RETAIN (only with QUEUE): the
 * sample was put with retain; the table only stores it, so a full sync
 * and tier moves can tell the master. */
#define KEYTAB_F_QUEUE 0x1u
#define KEYTAB_F_RETAIN 0x2u
struct keytab_attrs {
	uint64_t checksum;
	uint32_t flags;
	uint64_t expires_ms;
};

/* Read-only view of one generation, valid until the next keytab call.
 * tier is KEYTAB_DRAM when the bytes are in ext[0..next) (in_dram, or a
 * PENDING slot), else KEYTAB_DISK (next 0, ext NULL: read the file). */
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
	uint64_t checksum;
	uint32_t flags;
	uint64_t expires_ms;
	int in_dram, on_disk; /* committed: where copies are (both after an offload) */
	uint32_t pins;
	int offloading; /* keytab_offload_begin without its done yet */
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
	X(max_gen, "highest generation ever begun (never decreases)")           \
	X(dram_bytes, "arena bytes (whole pages) of committed values in DRAM")  \
	X(disk_keys, "committed generations with a disk copy")                  \
	X(disk_bytes, "value bytes of committed generations with a disk copy")  \
	X(pinned, "committed generations pinned now")                           \
	X(offloading, "generations being written to disk now")                  \
	X(pins, "pins taken (keytab_pin calls that succeeded)")                 \
	X(pin_expired, "pinned generations whose pins ran out (expire_pins)")   \
	X(offloaded, "generations that reached disk (offload_done ok)")         \
	X(dropped_dram, "DRAM copies freed, the disk copy kept (drop_dram)")    \
	X(promoted, "disk generations given DRAM pages again (promote_done)")   \
	X(expired, "generations freed past their expiry (keytab_expire)")
struct keytab_stats {
	KEYTAB_STATS_FIELDS(KVN_STAT_FIELD)
};

struct keytab *keytab_new(struct alloc_arena *a);
/* Frees every slot's pages back to the arena (leases ignored: shutdown). */
void keytab_free(struct keytab *kt);

/* Reserve pages for (key, gen) and create a PENDING slot that must be
 * committed or aborted before now_ms + ttl_ms; attrs (NULL: all zero) stay
 * with the generation.  Errors: KVN_EKEYLEN,
 * KVN_EINVAL (gen 0), KVN_ENOSPC (arena full; the table is unchanged),
 * KVN_EEXIST (that gen is already pending or committed: checked first, so a
 * retried begin of the committed gen gets EEXIST), KVN_ESTALE (gen < the
 * committed gen of the key: a newer value is already there).  size 0 gives a
 * slot without extents.  On success *view (optional) describes the slot,
 * whose pages the caller fills through alloc_addr(). */
int keytab_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		 uint64_t now_ms, uint64_t ttl_ms, const struct keytab_attrs *attrs,
		 struct keytab_view *view);
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
/* Set the checksum of the PENDING (key, gen): a slot reserved before its
 * bytes were known (ALLOC_SLOT) gets its writer's checksum with the
 * commit.  Not PENDING: KVN_ESTATE, counted. */
int keytab_set_checksum(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t checksum);
/* The KEYTAB_F_* flags of the PENDING gen (a COMMIT_SLOT names them, the
 * ALLOC_SLOT before it did not).  KVN_ESTATE (counted) when not pending. */
int keytab_set_flags(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint32_t flags);
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
 * KVN_ENOTFOUND: gen 0 and no committed generation or tombstone, or the
 * committed one has expired (also when that gen was asked for).  Marks the
 * key recently used.  keytab_lease, keytab_remove, keytab_pin and the tier
 * calls below answer the same way. */
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

/* Take a read lease on the committed (key, gen) (same errors as lookup), in
 * DRAM or on disk only (view.in_dram 0: read the file).  While any lease is
 * held, the generation's pages are not freed nor its file reported to the
 * free hook, even if it is superseded, evicted, expired or removed.  *lease_id identifies the lease for
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

/* The table's owner will never write a DRAM-only QUEUE item to disk (no
 * disk tier, or offload off): such items are not eviction candidates at
 * all (off the LRU), so a cold end of queue items does not hide the
 * evictable values behind it from keytab_evict_pick.  Either way they are
 * never dropped (keytab_evict_one).  May be called at any time. */
void keytab_set_queue_stays(struct keytab *kt, int on);

/* Evict least-recently-used committed, unleased generations in DRAM until at
 * least `bytes` bytes of pages are free in the arena or nothing more can go
 * (pinned and offloading ones are not candidates; QUEUE items without a disk
 * copy are skipped).  fn (optional) sees each victim before it is freed.
 * Returns bytes freed.  The peer's loop uses keytab_evict_pick instead. */
uint64_t keytab_evict(struct keytab *kt, uint64_t bytes, keytab_slot_fn fn, void *arg);

/* ---- tiers, pins, eviction, expiry (keytab_tier.c) ----
 * gen 0 means "the committed generation" where a call looks a value up
 * (answers as keytab_lookup); the *_done calls need the exact gen. */

/* Called once for each generation with a disk copy when it leaves the table
 * for good (superseded, removed, evicted, expired, or at the last release of
 * a doomed one; never for one still committed, never from keytab_free), so
 * the peer unlinks its file.  fn must not call keytab functions. */
void keytab_set_disk_free_fn(struct keytab *kt, keytab_slot_fn fn, void *arg);

/* Install a committed, disk-only generation (restart: the disk index), with
 * commit semantics: an older committed gen is superseded (doomed while
 * leased).  KVN_EEXIST: that gen is committed or pending here; KVN_ESTALE: a
 * newer gen is committed; KVN_EINVAL gen 0; KVN_EKEYLEN. */
int keytab_disk_add(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		    const struct keytab_attrs *attrs);

/* Start writing a committed in-DRAM gen to disk: the caller copies from
 * view->ext.  Until keytab_offload_done the gen is not a victim and its pages
 * are not freed (even if it is superseded meanwhile: doomed until done).
 * KVN_ESTATE (counted): not in DRAM; KVN_EEXIST: already on disk (drop its
 * DRAM copy instead); KVN_EBUSY: an offload is under way; KVN_EHELD: pinned
 * (a pinned value is not offloaded). */
int keytab_offload_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
			 struct keytab_view *view);
/* End the offload of gen; ok: the file is durable, the gen is now also on
 * disk (its DRAM copy stays until keytab_drop_dram).  KVN_ESTATE (counted):
 * no offload of that gen is under way, or the gen is no longer committed
 * (superseded, removed, expired meanwhile: it is freed now, the table never
 * marks it on disk, and the caller must delete the file it wrote). */
int keytab_offload_done(struct keytab *kt, const void *key, size_t klen, uint64_t gen, int ok);

/* Free the DRAM pages of a committed gen that also has a disk copy (the
 * offload's second half, or EVICT_KEY of a value on disk).  KVN_EHELD:
 * leased, pinned or being offloaded; KVN_ESTATE (counted): not in DRAM or
 * not on disk. */
int keytab_drop_dram(struct keytab *kt, const void *key, size_t klen, uint64_t gen);

/* Give a disk-only committed gen pages again: the caller copies the file's
 * bytes into view->ext[0..next) (view->in_dram stays 0 until done; reads
 * keep going to the file), then calls keytab_promote_done.  KVN_ENOSPC: no
 * room (nothing changed); KVN_EEXIST: already in DRAM; KVN_EBUSY: a
 * promotion is under way. */
int keytab_promote(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		   struct keytab_view *view);
/* ok: the bytes are in, the gen reads from DRAM (most recently used); !ok:
 * the pages go back.  KVN_ESTATE (counted): no promotion of gen under way,
 * or it is no longer committed (its pages are freed now). */
int keytab_promote_done(struct keytab *kt, const void *key, size_t klen, uint64_t gen, int ok);

/* Pin the committed gen (gen 0: whatever is committed; errors as lookup):
 * it is not evicted, offloaded or dropped from DRAM while pinned.  Pins
 * count up; the deadline is the latest of now_ms + ttl_ms given.  A pin
 * does not keep a value alive: supersede, remove and expiry end it. */
int keytab_pin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
	       uint64_t ttl_ms);
/* One pin less.  KVN_ESTATE (counted): the gen is not pinned. */
int keytab_unpin(struct keytab *kt, const void *key, size_t klen, uint64_t gen);
/* End every pin whose deadline passed (a client that died pinned it):
 * returns how many generations lost their pins (stats.pin_expired).  Walks
 * only the pinned generations. */
int keytab_expire_pins(struct keytab *kt, uint64_t now_ms);

/* A generation keytab_evict_pick proposes; the key is copied, so the victim
 * stays usable across the calls that act on it. */
struct keytab_victim {
	unsigned char key[KVN_MAX_KEY];
	size_t klen;
	uint64_t gen, size;
	int on_disk;
	uint32_t flags;
};
/* Up to max eviction candidates, least recently used first: committed, in
 * DRAM, not leased, pinned, offloading or expired (keytab_expire takes
 * those).  Picking changes nothing but the LRU order: a leased candidate
 * passed over becomes most recently used, so a cold end full of readers
 * does not stall every round.  Bounded: looks at most 4 * max slots (pinned
 * and offloading ones are not on the LRU at all).  QUEUE items are
 * proposed too (victim.flags says so; not those without a disk copy after
 * keytab_set_queue_stays): they may be offloaded, and keytab_evict_one
 * refuses them without a disk copy.  Returns how many. */
size_t keytab_evict_pick(struct keytab *kt, uint64_t now_ms, struct keytab_victim *out, size_t max);
/* Drop a committed in-DRAM gen from the table altogether (it is gone; with
 * a disk copy too, the free hook reports the file).  KVN_EHELD: leased,
 * pinned, offloading, or a QUEUE item without a disk copy (never dropped);
 * KVN_ESTATE (counted): not in DRAM.  Counted in stats.evicted. */
int keytab_evict_one(struct keytab *kt, const void *key, size_t klen, uint64_t gen);

/* Free up to max committed generations past their expiry, earliest first
 * (a min-heap on expires_ms: O(log n) each, nothing else scanned).  fn
 * (optional) sees each before it goes (the peer emits REMOVE); one on disk
 * is also reported to the free hook; one held (leased, offloading) is
 * doomed as on remove.  Returns how many (stats.expired). */
int keytab_expire(struct keytab *kt, uint64_t now_ms, keytab_slot_fn fn, void *arg, size_t max);

/* Page bytes eviction could free from DRAM now, O(1): the committed
 * in-DRAM generations that are not pinned or offloading (leased ones are
 * counted: their leases end within read_lease_ttl).  can_offload 0 (no disk
 * tier): without the DRAM-only QUEUE items, which may leave DRAM only for
 * disk. */
uint64_t keytab_evictable_bytes(const struct keytab *kt, int can_offload);

/* Visit every committed generation (full sync snapshot), expired ones too
 * until keytab_expire takes them.  fn must not call keytab functions. */
void keytab_foreach(struct keytab *kt, keytab_slot_fn fn, void *arg);
/* The same with each generation's view (tier, checksum, flags: a full sync
 * of a node with a disk tier reports where each value is). */
typedef void (*keytab_view_fn)(void *arg, const struct keytab_view *v);
void keytab_foreach_view(struct keytab *kt, keytab_view_fn fn, void *arg);
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
	/* META_Q_* (objects.qflags, sql/003-queue.sql): written by an insert
	 * (an update in place keeps the row's), filled on load */
	uint8_t qflags;
};
/* objects.qflags: in the consumer queue's pool (waiting or leased); kept
 * on release; consumed and kept (out of the pool). */
enum { META_Q_POOL = 1, META_Q_RETAIN = 2, META_Q_CONSUMED = 4 };

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
/* Delete the floors whose last row went at or before before_ms (wall
 * clock; UINT64_MAX... any value up to INT64_MAX: all of them). */
int meta_floors_clear(struct meta_db *db, uint64_t before_ms);
int meta_load_nodes(struct meta_db *db, meta_node_fn fn, void *arg);

/* ---- the consumer queue (meta_queue.c, sql/003-queue.sql) ---- */
struct meta_lease {
	uint64_t lease_id;
	const void *key;
	size_t klen;
	uint64_t gen;
	const char *holder; /* <= 64 bytes */
	uint32_t part_i, part_n;
	uint64_t deadline_ms; /* wall clock */
};
/* Write a lease row (replacing an expired one of the same sample): 1, or 0
 * when the sample is not durably in the pool on a live node (nothing
 * written), or an error. */
int meta_lease_put(struct meta_db *db, const struct meta_lease *l);
/* 1 done, 0 no such lease row, or an error. */
int meta_lease_renew(struct meta_db *db, uint64_t lease_id, uint64_t deadline_ms);
int meta_lease_del(struct meta_db *db, uint64_t lease_id);
/* A sample consumed: its row deleted (its lease with it), or with keep
 * marked consumed and its lease row (lease_id, 0: none) deleted; counted
 * in queue_consumed.  1 done, 0 the row was gone already, or an error. */
int meta_sample_consume(struct meta_db *db, uint64_t lease_id, const void *key, size_t klen, uint64_t gen,
			int keep);
/* A partition count in use (queue_parts); trim: keep only the 8 most
 * recent counts. */
int meta_queue_part(struct meta_db *db, uint32_t part_n, uint64_t now_ms, int trim);
/* The recent partition counts, newest first. */
int meta_queue_parts_load(struct meta_db *db, uint32_t *parts, size_t cap, size_t *n);
typedef int (*meta_lease_fn)(void *arg, const struct meta_lease *l);
int meta_load_leases(struct meta_db *db, meta_lease_fn fn, void *arg);
/* At master start, in a transaction of its own: drop the leases past their
 * deadline and mark lost the objects of nodes recorded dead. */
int meta_queue_reconcile(struct meta_db *db, uint64_t now_ms, uint64_t *expired, uint64_t *lost);
int meta_count_objects(struct meta_db *db, uint64_t *n);

/* ---- backup (meta_backup.c) ---- */
struct meta_backup_info {
	uint64_t objects; /* rows of objects in the copy */
	uint64_t pages, bytes;
	int steps, schema_version;
};
/* A consistent copy of the database at src (a running master's master.db)
 * into the new file dst, within timeout_ms: read-only on src (never created;
 * KVN_ENOTFOUND when missing), written as dst.tmp, checked, fsynced and
 * linked to dst.  KVN_EEXIST when dst (or dst.tmp) exists: nothing is
 * overwritten.  err gets the reason on failure. */
int meta_backup(const char *src, const char *dst, uint64_t timeout_ms, struct meta_backup_info *info,
		char *err, size_t errlen);
/* `kvnode --role master backup [--timeout D] FILE` (argv[0] is "backup"):
 * parses, backs up {data_dir}/master.db, reports; returns the exit status. */
int meta_backup_cmd(int argc, char **argv, const char *data_dir);

#endif
