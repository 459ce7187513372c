/*
 * master_int: what the files of the master role share: master.c (the actor:
 * start-up, dispatch, the node protocol, liveness), master_node.c (the node
 * table), master_index.c (the key index), master_drops.c (DROP_GEN
 * bookkeeping), master_floor.c (generation floors), master_gen.c
 * (generations and epochs), master_route.c (ROUTE_PUT, ROUTE_GET, STAT,
 * PING), master_sync.c (FULL_SYNC), master_fwd.c (GET/PUT its own peer
 * serves), master_db.c (the writer glue) and dbw.c (the SQLite writer
 * actor).  Not a public header: the master's public face is master.h.
 */
#ifndef KVN_MASTER_INT_H
#define KVN_MASTER_INT_H

#include <stdint.h>
#include <sys/queue.h>

#include "actors/actor.h"
#include "net/proto.h"
#include "master/master.h"
#include "base/base.h"
#include "net/net.h"
#include "store/store.h"
#include "base/ptab.h"

/* Keys come from clients: hash them with the project's xxHash rather than
 * uthash's default Jenkins (faster on long binary keys). */
#undef HASH_FUNCTION
#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = (unsigned)kvn_hash64((keyptr), (keylen)))
#include <uthash.h>

/* ---- internal messages master -> dbw (never on the wire: >= 0x8000 is
 * refused by the frame decoder).  Metadata written with wire_w; layouts in
 * dbw.c and docs/protocol.md ("SQLite writer").  Every one is a request
 * (actor_call) except DBW_SYNC_PART, and dbw replies only after the COMMIT
 * that holds it returned. */
enum dbw_type {
	DBW_NODE = 0x8200,      /* node row upsert */
	DBW_EVENTS = 0x8201,    /* object puts/deletes of one EVENTS batch (+ node row) */
	DBW_SYNC_PART = 0x8202, /* one-way: a slice of a full-sync snapshot */
	DBW_SYNC_END = 0x8203,  /* node row + "replace the node's objects by the parts" */
	DBW_NODE_DEAD = 0x8204, /* node dead: its objects lost, its row dead */
	DBW_PROBE = 0x8205,     /* degraded: checkpoint, node rows, commit now */
	DBW_EPOCH = 0x8206,     /* u32 epoch: record it as the newest (meta_epoch_raise) */
	DBW_FLOORS_CLEAR = 0x8207, /* one-way: empty the floors table (master_floor.c) */
	DBW_QUEUE = 0x8208,     /* consumer-queue operations (master_queue.c); replies per-op results */
};
/* The operations of a DBW_QUEUE request (layouts in dbw.c). */
enum dbw_qop { DBW_Q_LEASE = 1, DBW_Q_RENEW = 2, DBW_Q_RETURN = 3, DBW_Q_CONSUME = 4, DBW_Q_PART = 5 };

enum dbw_op { DBW_OP_PUT = 1, DBW_OP_DEL = 2 };
/* DBW_EVENTS flags: a node row rides along; commit at once (a durable put
 * waits on it, or the master held these operations for the linger already) */
enum dbw_ev_flag { DBW_EV_ROW = 1, DBW_EV_NOW = 2 };

/* Internal messages are split well below WIRE_MAX_META. */
#define DBW_SPLIT_BYTES (48u * 1024u)

/* Node row, in DBW_NODE, DBW_SYNC_END and some DBW_EVENTS (role "peer"). */
void dbw_node_enc(struct wire_w *w, const struct meta_node *n);
int dbw_node_dec(struct wire_r *r, struct meta_node *n);
/* An object operation inside DBW_EVENTS. */
void dbw_op_enc(struct wire_w *w, uint8_t op, const void *key, uint16_t klen, uint64_t gen,
		uint8_t tier, uint64_t size, uint8_t qflags);
/* Spawn the writer on loop l.  On success it owns db (closed by its fini,
 * after committing what is open); on error the caller still owns db. */
/* Tests: destroy the writer as a crash would (the open transaction is not
 * committed). */
void dbw_crash(struct actor *self);
int dbw_spawn(struct actor_loop *l, struct meta_db *db, uint32_t mailbox, uint64_t linger_ms, actor_id *out);

/* ---- the master's state ---- */

struct master_node;
struct master_qent;
TAILQ_HEAD(master_qent_list, master_qent);

/* One indexed location: (key -> node, gen, tier, size).  Owned by the
 * index (a base/ptab.h table: no per-entry hash handle, the key inline);
 * linked on its node's list so a
 * node's locations go in O(its entries). */
struct master_entry {
	struct master_node *node;
	TAILQ_ENTRY(master_entry) nlink;
	uint64_t gen, size;
	uint16_t klen;
	uint8_t tier;
	uint8_t syncing; /* its node's full sync is being applied and has not named it yet */
	uint8_t key[];   /* klen bytes (at offset 44: a key of up to 12 bytes keeps it in 64) */
};
TAILQ_HEAD(master_entry_list, master_entry);

/* A full sync being received: entries of chunks 0..next_chunk-1. */
struct master_sync_ent {
	uint64_t gen, size;
	size_t koff; /* into keys */
	uint16_t klen;
	uint8_t tier;
	uint8_t flags; /* PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN */
};
struct master_staging {
	int active;
	uint64_t seq;
	uint32_t next_chunk;
	struct master_sync_ent *ents;
	size_t n, cap;
	uint8_t *keys;
	size_t klen_used, kcap;
};

/* A DROP_GEN notice the node may not have applied yet.  DROP_GEN is
 * one-way: a notice lost on the way (a dropped connection, a full mailbox)
 * would leave the peer a generation the index no longer points at, forever.
 * The node keeps them until its heartbeat shows as many committed keys as
 * the index holds for it (master_drops.c). */
struct master_pdrop {
	UT_hash_handle hh;
	uint16_t klen;
	uint8_t hk[]; /* hash key: 8 bytes of gen, then the key */
};

struct master_node {
	UT_hash_handle hh; /* by node_id */
	char node_id[65];
	char addr[128];
	actor_id ref;     /* m->src of its last PEER_ATTACH: where one-way messages go */
	int local;        /* ref is an actor of this process (no connection):
			   * GETs sent to the master may go on to it */
	uint64_t boot_id; /* 0: loaded from master.db, never attached in this life */
	uint64_t dram_total, dram_used, disk_total, disk_used;
	/* what it could free by eviction or offload, as of its last report
	 * (<= dram_total): room for placement once no node has free DRAM */
	uint64_t dram_evictable;
	int evicts; /* it evicts: what it indexed since the report is evictable too */
	uint64_t reserved; /* DRAM promised by ROUTE_PUT since the last heartbeat */
	/* value bytes indexed (+) and unindexed (-) on the node since its
	 * last reported dram_used, so a remove frees room for the next put at
	 * once instead of at the next heartbeat */
	int64_t used_delta;
	uint64_t applied_seq, durable_seq;
	uint64_t reported_seq; /* last_seq of its last attach or heartbeat (master_view) */
	uint64_t sync_from; /* a requested snapshot covers at least this seq */
	int sync_due;       /* a full sync was asked for and has not been applied */
	uint64_t last_seen_ms; /* kvn_now_ms clock */
	uint64_t persisted_ms; /* last node row sent to dbw (heartbeats are rate-limited) */
	uint64_t objects, bytes;
	/* Bumped whenever the node's persisted state is replaced (new boot,
	 * full sync, death): dbw replies for an older epoch change nothing. */
	uint64_t persist_epoch;
	int attached;  /* a live connection (or in-process ref) */
	int dead;      /* declared dead: no locations, rows lost */
	int left;      /* ... because it said PEER_LEAVE (a clean stop), not by the timeout */
	int live;      /* attached during this master's life with boot_id, not dead since */
	int unsynced;  /* loaded from master.db, neither full-synced in this master's
			* life nor declared dead: it may hold newer generations than
			* the index (master_route_ready) */
	uint64_t page_size; /* its arena page (0/1: count bytes): placement is in pages */
	int db_broken; /* a write of its events failed: only a full sync repairs it */
	uint32_t mark; /* ROUTE_PUT exclude stamp */
	struct master_entry_list entries;
	struct master_staging stg;
	/* Object operations of plain puts held for master.commit_linger while
	 * this is the master's holder, so events arriving one at a time reach
	 * the writer as one request (master_db.c, master_db_ops_commit).  held_epoch: the
	 * persist_epoch they belong to; a newer one (full sync, new boot,
	 * death) supersedes them. */
	struct wire_w held_w;
	uint32_t held_n;
	uint64_t held_seq, held_epoch;
	struct master_pdrop *pdrops; /* DROP_GEN notices not known to be applied */
	uint32_t npdrops;
	int pdrops_lost;       /* some were not kept (limit): only a full sync reconciles */
	/* its locations were dropped (declared dead, or dead in master.db) and
	 * it has not full-synced since: it may hold generations superseded
	 * meanwhile (master_floor.c) */
	int forgot;
	/* signs its ROUTE_PUT grants; made anew by every attachment (and new
	 * connection) from what only this master and that peer share */
	struct auth_grant_key *gkey;
	struct master_qent_list qents; /* queue samples it holds (master_queue.c) */
};

/* Process-wide counters (summed over master instances), read with
 * master_get_stats(). */
#define MASTER_STAT_INC(f) __atomic_add_fetch(&master_stats_g.f, 1, __ATOMIC_RELAXED)
#define MASTER_STAT_ADD(f, v) __atomic_add_fetch(&master_stats_g.f, (v), __ATOMIC_RELAXED)
extern struct master_stats master_stats_g;

struct master {
	struct actor *self;
	actor_id dbw;
	char *server_id;
	uint64_t node_timeout_ms, max_value_size;
	uint32_t epoch;
	uint64_t counter; /* last generation counter handed out in this epoch */
	int gen_exhausted_logged;
	/* A peer may hold generations above this epoch (master.db lost or
	 * replaced): no generation is handed out while epoch_want > epoch, that
	 * is until the raise to epoch_want is committed (master_gen_seen,
	 * master_gen_epoch_raise). */
	uint32_t epoch_want;
	int epoch_raising;  /* a DBW_EPOCH is in flight */
	int epoch_failing;  /* the last raise failed (logged once) */
	int epoch_cap_logged;
	struct actor_timer *epoch_timer; /* retries a failed raise */
	struct kvn_backoff epoch_backoff;
	/* every generation of this epoch or later was handed out by this
	 * master: this start's epoch, moved up past any generation a peer
	 * reported above it (master_gen_seen) */
	uint32_t own_epoch;
	/* nodes with unsynced set: while any, routes of keys not written in
	 * this life answer KVN_EBUSY (master_route_ready) */
	uint32_t unsynced;
	/* per-key generation floors while a node is forgotten (master_floor.c) */
	struct master_floor *floors;
	uint32_t nfloors, forgotten; /* floors removes raised (the capped ones); nodes with forgot set */
	uint64_t floor_all;          /* past the limit: a floor for every key */
	int floor_full_logged;
	int db_floors;               /* master.db may hold floors: empty them when quiet */
	uint64_t db_floor_ms;        /* when the newest of them may have been written */
	uint64_t floor_clear_ms;     /* last DBW_FLOORS_CLEAR sent */
	uint64_t floor_keep_ms;      /* MASTER_FLOOR_KEEP_MS, or the tests' */
	uint32_t floor_max;          /* FLOOR_MAX (master_floor.c), or the tests' */
	/* keys removed lately, with the generation a new entry must reach:
	 * a put granted before the remove may still commit on a slow or
	 * stopped peer and send its ADD after it (master_floor.c) */
	struct master_removed *removed;
	TAILQ_HEAD(, master_removed) removed_fifo;
	uint32_t nremoved;
	uint64_t rr;       /* placement tie rotation */
	uint32_t stamp;    /* exclude-list stamp */
	uint64_t sync_ids; /* DBW_SYNC_* ids */
	struct kvn_ptab index; /* of struct master_entry */
	struct master_node *nodes;
	uint64_t objects, bytes; /* totals over the index */
	uint64_t start_ms;       /* kvn_now_ms at master_start: STAT's uptime */
	/* the listener's accounting (master_set_listener), NULL without one;
	 * written once from another thread: atomic loads */
	struct net_counter *conns;
	struct actor_timer *live_timer;
	uint64_t live_period_ms;
	/* dbw requests not answered yet: past db_max_inflight the writer is
	 * behind, and EVENTS are refused (KVN_EBUSY) before its mailbox fills */
	uint32_t db_inflight, db_max_inflight;
	int db_overloaded;
	uint64_t linger_ms;             /* master.commit_linger */
	struct actor_timer *hold_timer; /* sends the held operations */
	int hold_armed;
	/* the one node whose operations are held (master_db.c, master_db_ops_commit) */
	struct master_node *holder;
	struct kvn_ratelimit rl_event; /* "refused an event" lines */
	/* master.db degraded (a write or COMMIT failed: disk full, I/O, a lock
	 * held): nothing is written but DBW_PROBE, retried with backoff, until
	 * one commits (master_db.c) */
	int db_degraded, db_probing;
	char db_reason[160];
	uint64_t db_degraded_ms; /* since when */
	uint32_t db_failures;    /* failed requests and probes meanwhile */
	struct kvn_backoff db_backoff;
	struct actor_timer *db_probe_timer;
	/* ---- the consumer queue (master_queue.c) ---- */
	struct master_qent *qkeys;    /* every sample, by key */
	struct master_qent *qleases;  /* leased samples, by lease id */
	struct master_qent_list qpool;   /* waiting, in commit order */
	struct master_qent_list qleased; /* leased, soonest deadline first */
	struct master_qent_list qparked; /* not available now: node dead, unsynced, lost */
	uint64_t qorder;       /* last commit order given */
	uint64_t lease_ctr;    /* lease ids: epoch << 32 | counter */
	uint32_t lease_ids_out_logged;
	uint64_t lease_ttl_max_ms;
	uint32_t qparts[8];    /* partition counts used lately, newest first */
	uint32_t nqparts;
	struct actor_timer *qtimer; /* expiry and unparking */
	uint64_t qtimer_at;         /* wall ms it is armed for (0: not armed) */
	uint64_t qparked_check_ms;
};

/* Pending one-way DROP_GEN notices of one batch, grouped per node when
 * sent. */
struct master_drop {
	struct master_node *node;
	uint64_t gen;
	uint16_t klen;
	uint8_t key[];
};
struct master_drops {
	struct master_drop **v;
	size_t n, cap;
};

/* Stale entries of one batch, for one summary line instead of one per
 * key. */
struct master_stale {
	uint32_t n;
	char first[80]; /* kvn_key_printable of the first key */
	uint64_t first_gen;
};

/* Naming: every non-static function is master_<part>_<verb>, <part> the
 * file it lives in (master_node_* in master_node.c, master_db_* in
 * master_db.c, ...); master.c's own are plain master_<verb>; message
 * handlers, wherever they live, are master_on_<message> and are reached
 * only through master.c's dispatch table; dbw.c's are dbw_*. */

/* ---- master.c: replies, event checks ---- */
/* Reply with proto_ack (n NULL: zeros) and status. */
void master_reply_ack(struct master *ms, const struct actor_msg *req, const struct master_node *n, int need_sync,
		      int status);
void master_reply_proto_err(struct master *ms, const struct actor_msg *req);
/* Not a peer (nor in-process): answers KVN_EPERM and returns 1. */
int master_deny(struct master *ms, const struct actor_msg *req);
/* ADD/REMOVE/snapshot entry fields SQLite can store (gen 1..2^63-1, ...). */
int master_event_ok(const struct proto_event *e);

/* ---- master_node.c: the node table ---- */
struct master_node *master_node_find(struct master *ms, const char *node_id);
/* Find or create (not attached, no boot). */
struct master_node *master_node_get(struct master *ms, const char *node_id);
void master_node_free_all(struct master *ms);
void master_node_staging_reset(struct master_staging *s);
/* Make n's grant key for the attachment m arrived on (boot: the node's). */
void master_node_grant_key(struct master *ms, struct master_node *n, const struct actor_msg *m, uint64_t boot);
/* The grant for one put routed to n; all zero when n has no key. */
void master_node_grant(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen, uint64_t size,
		       struct proto_grant *g);
/* DRAM `size` bytes take on n: whole pages of its arena. */
uint64_t master_node_footprint(const struct master_node *n, uint64_t size);
/* Free DRAM that ROUTE_PUT may still promise (never below 0). */
uint64_t master_node_free_dram(const struct master_node *n);
/* Free DRAM plus what it could evict (dram_evictable), less the same use
 * and reservations (never below 0): the room it has once eviction runs. */
uint64_t master_node_room(const struct master_node *n);
/* Free disk (disk_total - disk_used, never below 0). */
uint64_t master_node_free_disk(const struct master_node *n);
/* Fill a node row for dbw. */
void master_node_row(const struct master_node *n, struct meta_node *row);
/* attached and not declared dead */
int master_node_usable(const struct master_node *n);
/* The node full-synced or was declared dead: it no longer holds back the
 * routes of older keys (master_route_ready). */
void master_node_synced(struct master *ms, struct master_node *n);

/* ---- master_index.c: the key index ---- */
enum { MASTER_INDEX_STALE = 0, MASTER_INDEX_NEW = 1, MASTER_INDEX_UPDATED = 2 };
/* Apply ADD{key, gen, tier, size} from node: MASTER_INDEX_NEW (indexed; an
 * older generation on another node was queued in drops),
 * MASTER_INDEX_UPDATED (same generation on the same node: tier or size
 * changed), MASTER_INDEX_STALE (a newer or equal generation is indexed
 * elsewhere: a DROP_GEN for this one back to node was queued; nothing
 * indexed). */
int master_index_add(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen, uint64_t gen,
		     uint8_t tier, uint64_t size, struct master_drops *drops);
/* REMOVE: only exactly (key, gen) on node.  1 removed, 0 not. */
int master_index_remove(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
			uint64_t gen);
/* Drop every location of node; returns how many. */
uint64_t master_index_drop_node(struct master *ms, struct master_node *node);
/* A full sync of node replaces its locations: _begin marks them, _one
 * applies one snapshot entry (a marked location of the same key on node is
 * confirmed in place when the entry is not older; otherwise as
 * master_index_add, except that a confirmation answers MASTER_INDEX_NEW as
 * a re-added location would), _end drops the locations still marked, with
 * their floors, and returns how many.  Only what the snapshot no longer
 * holds raises a floor, so a node of any size re-syncs within FLOOR_MAX. */
void master_index_sync_begin(struct master *ms, struct master_node *node);
int master_index_sync_one(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
			  uint64_t gen, uint8_t tier, uint64_t size, struct master_drops *drops);
uint64_t master_index_sync_end(struct master *ms, struct master_node *node);
void master_index_free_all(struct master *ms);
/* The index's hash of an entry (kvn_ptab_init). */
uint32_t master_index_hash(const void *e);
/* The entry of key, or NULL. */
struct master_entry *master_index_find(const struct master *ms, const uint8_t *key, uint16_t klen);
/* The index entries of items[0..n)'s keys into ents[] (NULL: not
 * indexed). */
void master_index_lookup_keys(struct master *ms, const struct proto_item *items, uint32_t n,
			      struct master_entry **ents);

/* ---- master_drops.c: DROP_GEN bookkeeping ---- */
void master_drops_add(struct master_drops *d, struct master_node *node, const uint8_t *key, uint16_t klen,
		      uint64_t gen);
/* Send the queued DROP_GEN notices, one message (or a few, if large) per
 * node, and empty d. */
void master_drops_send(struct master *ms, struct master_drops *d);
void master_drops_fini(struct master_drops *d);
/* The node's unconfirmed DROP_GEN notices: is (key, gen) one of them (such
 * a generation is never indexed for the node again); forget them all (the
 * node's keys and the index agree, or a new boot); send them all again. */
int master_drops_pending_has(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen);
void master_drops_pending_clear(struct master_node *n);
void master_drops_pending_resend(struct master *ms, struct master_node *n);
void master_drops_stale_add(struct master_stale *s, const uint8_t *key, uint16_t klen, uint64_t gen);
/* One warning for the batch (nothing if none). */
void master_drops_stale_log(const struct master_stale *s, const struct master_node *n, const char *what);

/* ---- master_floor.c: generation floors, recent removals ---- */
/* Raise key's floor to gen (kept only while some node is forgotten or
 * unsynced); the floor a new entry of key at gen must reach (the floor goes
 * when gen reaches it); free them all; free them once no node needs them.
 * A node's locations were dropped (forget) or replaced by its full sync
 * (recalled). */
struct master_floor;
void master_floor_raise(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
/* The same for the location a node held (its locations dropped, a lost
 * row loaded): such a floor stands in for an index entry or a master.db
 * row, one for one, so it is not held to the cap that bounds the floors
 * removes add (FLOOR_MAX): past the cap one floor for every key would
 * refuse the node's own current generations when it comes back. */
void master_floor_raise_location(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
uint64_t master_floor_take(struct master *ms, const struct master_node *node, const uint8_t *key, uint16_t klen,
			   uint64_t gen);
void master_floor_free_all(struct master *ms);
void master_floor_prune(struct master *ms);
void master_floor_forget(struct master *ms, struct master_node *n);
void master_floor_recalled(struct master *ms, struct master_node *n);
/* Master.db's floors: one loaded at start; a heartbeat or a full sync may
 * have made every floor needless. */
int master_floor_load(void *arg, const void *key, size_t klen, uint64_t gen);
void master_floor_db_check(struct master *ms);
/* A write that may leave a floor in master.db went to the writer. */
void master_floor_db_note(struct master *ms);
/* master.db's floors are kept this long after their key's last row went
 * (a node's own removal may not be durable on its disk yet), and emptied
 * at most this often. */
#define MASTER_FLOOR_KEEP_MS (10ull * 60 * 1000)
#define MASTER_FLOOR_CLEAR_EVERY_MS (10ull * 1000)
/* A key removed at gen: for MREMOVED_MS an ADD of it below gen + 1 with no
 * entry is stale (master_floor_removed_take says the floor, and forgets it
 * once a new entry reaches it).  Expired ones go in
 * master_floor_removed_prune; all in _free_all. */
struct master_removed;
void master_floor_removed_note(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
uint64_t master_floor_removed_take(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
void master_floor_removed_prune(struct master *ms);
void master_floor_removed_free_all(struct master *ms);

/* ---- master_gen.c: generations and epochs ---- */
/* Generation for a new put: 0 or KVN_EBUSY (counter exhausted, or an
 * epoch raise not committed yet). */
int master_gen_next(struct master *ms, uint64_t *gen);
/* A generation a peer holds (reported at attach, in an event or a
 * snapshot): if it is not below the next one this master would hand out,
 * generations stop until the epoch is raised above it. */
void master_gen_seen(struct master *ms, uint64_t gen);
/* Send the epoch raise to the writer (if one is due and none is in
 * flight); its commit resumes generations.  The tick retries it. */
void master_gen_epoch_raise(struct master *ms);
void master_gen_epoch_tick(struct actor *self, void *arg);

/* ---- master_db.c: the writer glue ---- */
/* The writer is too far behind: answers KVN_EBUSY with n's ack, returns 1. */
int master_db_behind(struct master *ms, const struct actor_msg *m, const struct master_node *n);
/* A dbw request not answered within this is treated as failed (the node
 * then has to full-sync): longer than SQLite's busy timeout plus a slow
 * fsync, short enough that a wedged disk is noticed. */
#define MASTER_DB_TIMEOUT_MS 30000
enum master_persist_kind { MASTER_P_NODE, MASTER_P_EVENTS, MASTER_P_SYNC, MASTER_P_DEAD, MASTER_P_PROBE };
/* n's ack asks for a full sync because a write of its events failed: not
 * while master.db is degraded (the sync's own write would fail too, and
 * the node would re-sync in a loop); once it has recovered. */
int master_db_resync_due(const struct master *ms, const struct master_node *n);
/* Send req (taken) to dbw as a call.  Once committed, events/sync with a
 * non-zero seq advance n's durable_seq and send DURABLE; a failure of an
 * events/sync write (or of the send) makes n need a full sync. */
void master_db_call(struct master *ms, struct actor_msg *req, enum master_persist_kind kind,
		    const struct master_node *n, uint64_t seq);
/* A write for n's current state could not be handed over: as a failure. */
void master_db_failed(struct master *ms, const struct master_node *n, int rc);
/* Heartbeats and event batches refresh the node row (usage, last seq, last
 * seen) at most this often; attach, death and full sync always write it. */
#define MASTER_ROW_PERSIST_MS 10000
/* The node's row, to the writer. */
void master_db_persist_node(struct master *ms, struct master_node *n);
/* Object operations of one batch, cut into DBW_EVENTS requests below the
 * metadata limit.  Only the last request of a batch carries its seq: dbw
 * answers in order, so its commit covers the earlier ones.  The node row
 * rides along only every MASTER_ROW_PERSIST_MS: objects need it to exist
 * (attach wrote it), not to be fresh, and it would double the statements of
 * a one-event batch. */
struct master_opbuf {
	struct wire_w w;
	uint32_t n;
	uint8_t now; /* commit at once: a durable put's event is in it */
};

/* Add one object operation of n to ob (a full ob goes to the writer). */
void master_db_ops_add(struct master *ms, struct master_node *n, struct master_opbuf *ob, uint8_t op,
		       const uint8_t *key, uint16_t klen, uint64_t gen, uint8_t tier, uint64_t size, uint8_t qflags);
/* A batch's operations (applied up to seq): to the writer now (ob->now, or
 * no linger), or held for master.commit_linger. */
void master_db_ops_commit(struct master *ms, struct master_node *n, struct master_opbuf *ob, uint64_t seq);
/* Send the held operations now: a writer request that does not go through
 * master_db_call (the queue's) keeps the writer in the master's order. */
void master_db_hold_flush(struct master *ms);
/* ms->hold_timer's callback: the held operations go. */
void master_db_hold_tick(struct actor *self, void *arg);
/* The master is being destroyed: held operations go one-way. */
void master_db_ops_at_exit(struct master *ms);

/* ---- master_route.c: ROUTE_PUT, ROUTE_GET, STAT, PING ---- */
/* May a route for this index entry (NULL: not indexed) be answered now?
 * Not while a node known in master.db has not re-synced, unless the entry
 * was written in this master's life (docs/architecture.md, "Restart"). */
int master_route_ready(const struct master *ms, const struct master_entry *e);
/* Pick the node for `size` bytes among usable nodes not marked with
 * ms->stamp: the most free DRAM among those where it fits; when it fits in
 * none's free DRAM, the most free disk among those whose evictable bytes
 * make room (master_node_room: its eviction moves values to disk or drops
 * them); ties rotate.  0 and *out, or the reason none fits (KVN_ENOPEER,
 * KVN_EFULL, KVN_ETOOBIG). */
int master_route_place(struct master *ms, uint64_t size, struct master_node **out);
/* A request that did not decode: KVN_EKEYLEN or KVN_EPROTO (counted). */
int master_route_decode_err(int rc);
/* Requests of up to this many keys keep their per-key arrays on the stack
 * (one key per get is the common case). */
#define MASTER_KEYS_STACK 16
/* Count the keys of a ROUTE_GET or GET into key_hits / key_misses. */
void master_route_count(const struct master *ms, struct master_entry *const *ents, uint32_t n);
/* The ROUTE_GET answer for looked-up keys items[i] (entries ents[i]), as
 * a reply to m (of m's type, with extra_flags); counts them. */
void master_route_reply(struct master *ms, const struct actor_msg *m, const struct proto_item *items,
			struct master_entry *const *ents, uint32_t n, uint16_t extra_flags);
/* Handlers (master.c's dispatch table): 0, the runtime frees m. */
int master_on_route_put(struct master *ms, struct actor_msg *m);
int master_on_route_get(struct master *ms, struct actor_msg *m);
int master_on_stat(struct master *ms, struct actor_msg *m);
int master_on_ping(struct master *ms, struct actor_msg *m);

/* ---- master_queue.c: the consumer queue (DESIGN.md section 8) ---- */
/* An ADD (event, snapshot entry, or a row loaded at start) was indexed as
 * NEW or UPDATED for node: a sample of an older generation of the key is
 * superseded; with PROTO_EV_F_QUEUE (flags) a new sample joins the pool. */
void master_queue_on_add(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
			 uint64_t gen, uint8_t flags, uint64_t size);
/* (key, gen) was removed (a REMOVE event): its sample, if any, is gone. */
void master_queue_on_remove(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
/* The objects.qflags (META_Q_*, 0: not a sample) a write of (key, gen)'s
 * row carries (an event's put, a full sync's rows), or -1: a RELEASE is
 * deleting that row right now, and writing it would insert it again after
 * the delete (a consumed sample back in master.db): do not write it. */
int master_queue_row(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen);
/* A route miss: KVN_EPEERDOWN when key is a sample whose node is dead or
 * gone, else KVN_ENOTFOUND. */
int master_queue_miss_status(struct master *ms, const uint8_t *key, uint16_t klen);
/* Start: rows of master.db (objects with qflags, then leases). */
void master_queue_load_object(struct master *ms, const struct meta_object *o);
int master_queue_load_lease(void *arg, const struct meta_lease *l);
void master_queue_init(struct master *ms, const struct master_opts *o, const uint32_t *parts, size_t nparts);
void master_queue_start(struct master *ms); /* the actor exists: timers */
/* One line: what the start loaded and what its reconcile did. */
void master_queue_log_loaded(struct master *ms, uint64_t expired, uint64_t lost);
void master_queue_free_all(struct master *ms);
int master_on_lease(struct master *ms, struct actor_msg *m);
int master_on_release(struct master *ms, struct actor_msg *m);
int master_on_renew(struct master *ms, struct actor_msg *m);

/* ---- master_list.c ---- */
/* LIST (master.c's dispatch table): one page of the index from a cursor. */
int master_on_list(struct master *ms, struct actor_msg *m);
/* The page of index t that q asks for (master_list.c says how): its
 * entries in *out (sorted by index hash; one allocation the caller frees,
 * also for none), their number and the hash the range ends at (2^32: the
 * end).  0, or KVN_ETOOBIG when the entries of one hash do not fit a
 * reply.  Reads t only. */
int master_list_page(const struct kvn_ptab *t, const struct proto_list_req *q, const struct master_entry ***out,
		     size_t *n, uint64_t *next);

/* ---- master_sync.c ---- */
/* FULL_SYNC (master.c's dispatch table): 0, the runtime frees m. */
int master_on_full_sync(struct master *ms, struct actor_msg *m);

/* ---- master_fwd.c: requests sent to the master that the peer of its own
 * process serves.  Each returns ACTOR_KEEP when m went on to that peer, 0
 * when the master answered it. ---- */
int master_on_get(struct master *ms, struct actor_msg *m);
int master_on_put(struct master *ms, struct actor_msg *m);
/* The master's payload sink (actor_ops.sink): a PUT's payload goes straight
 * into that peer's pages. */
int master_fwd_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink);
void master_fwd_sink_abort(struct actor *self, void *cookie);

#endif
