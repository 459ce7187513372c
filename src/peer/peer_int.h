/*
 * peer_int: the peer actor's state, shared by peer.c (dispatch, attach,
 * heartbeat, event outbox, held replies), peer_sync.c (full sync),
 * peer_leave.c (the clean stop),
 * peer_data.c (PUT, GET, EXISTS, REMOVE and the payload sink) and
 * peer_slot.c (the slot protocol and RESOLVE_KEY).
 */
#ifndef KVN_PEER_INT_H
#define KVN_PEER_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "actors/actor.h"
#include "net/proto.h"
#include "peer/peer.h"
#include "auth/auth.h"
#include "base/base.h"
#include "store/store.h"

/* The arena and key table outlive the peer actor while evbuffer chains
 * still reference arena pages (a GET reply being written when the node
 * shuts down): each outstanding read lease holds a reference. */
/* What the last attach line said (one line per change, not per attempt). */
enum peer_link { LINK_NONE = 0, LINK_ATTACHED, LINK_REFUSED, LINK_FAILED };

struct peer_store {
	struct alloc_arena *arena;
	struct keytab *kt;
	uint32_t refs; /* atomic: GET replies' cleanups drop theirs on I/O loops */
	/* Recursive.  The runtime holds it around everything the peer actor
	 * runs (actor_set_lock); connections on the other I/O loops
	 * (peer.io_threads) take it for a PUT's sink and a GET reply's lease
	 * release, the only peer state they touch. */
	pthread_mutex_t mu;
};
void peer_store_put(struct peer_store *st);

/* An event waiting for the master's ack. */
struct peer_event {
	uint64_t seq;
	uint8_t kind;
	uint8_t tier;
	uint8_t flags; /* enum proto_event_flags */
	uint16_t klen;
	uint64_t gen, size;
	TAILQ_ENTRY(peer_event) link;
	uint8_t key[]; /* klen bytes */
};

/* A client request whose reply waits until the master applied (or, for a
 * durable put, committed) the events it produced. */
struct peer_waiter {
	actor_id to;
	uint64_t corr;
	uint16_t type;
	uint64_t seq;    /* wait until acked >= seq */
	uint64_t since_ms;
	uint8_t *meta;   /* the reply's metadata, ready to send */
	uint32_t meta_len;
	TAILQ_ENTRY(peer_waiter) link;
};

/* A PUT whose payload is being received straight into arena pages. */
struct peer_put {
	TAILQ_ENTRY(peer_put) link;
	actor_id from;     /* the connection it arrives on */
	uint64_t started_ms;
	uint32_t n;
	int32_t *status;   /* per item: 0 = pages reserved, else why not */
	struct iovec *iov;
	int niov;
	/* Arriving through a sink: the connection sums each item's bytes as
	 * they land (actor_sink.seg_*); seg_done says it did.  The arrays are
	 * in the put's own block (put_begin), not freed apart. */
	int *seg_niov;
	uint64_t *seg_sum;
	int seg_done;
	int cut; /* the reaper asked its connection (on another loop) to close */
	/* The reaper cut it after its frame had fully arrived (the message
	 * is queued, not yet handled): its slots are aborted, and the handler
	 * answers KVN_ETIMEDOUT and frees it. */
	int reaped;
	/* LOCAL_PUT with PROTO_LOCAL_PUT_PEER_SUM: an item whose writer's sum
	 * is 0 takes the sum of its bytes as stored */
	int peer_sums;
};

struct peer_slots;
struct peer_local;
struct peer_dop;
struct peer_cold;
struct peer_flush;
struct peer_leave_op;

/* Internal messages of the peer actor (never on the wire: >= 0x8000 is
 * refused by the frame decoder). */
enum peer_msg_type {
	PEER_MSG_LEAVE = 0x8300, /* peer_leave -> the actor: start the clean stop */
	/* between the peer and its disk writer (peer_disk.c) */
	PEER_DISK_WRITE = 0x8310,
	PEER_DISK_READ = 0x8311,
	PEER_DISK_REMOVE = 0x8312,
	PEER_DISK_DONE = 0x8313,
};

struct peer {
	struct actor *self;
	struct peer_opts o;
	char node_id[65];
	char advertise[128];
	struct peer_store *st;
	actor_id master;
	uint64_t boot_id;
	uint32_t epoch;
	int attached, attaching, syncing;
	/* event outbox: every event stays until the master acknowledges it */
	TAILQ_HEAD(, peer_event) outbox;
	uint64_t last_seq, acked_seq, durable_seq;
	int shipping;
	uint64_t shipped_upto; /* highest seq of the EVENTS call in flight */
	/* replies held for event acks, in seq order */
	TAILQ_HEAD(, peer_waiter) wait_applied, wait_durable;
	uint32_t nwaiters;
	TAILQ_HEAD(, peer_put) receiving;
	struct actor_timer *hb_timer;
	uint8_t *scratch; /* where bytes of refused items go */
	struct peer_stats stats;
	struct peer_slots *slots; /* peer_slot.c; created on first use */
	struct peer_local *local; /* peer_local.c; NULL: no same-host path */
	/* checks the master's grants; made when attaching, from the link to
	 * the master (or this process's secret for an in-process master) */
	struct auth_grant_key *gkey;
	struct kvn_ratelimit rl_grant; /* "refused a put without a grant" lines */
	struct kvn_ratelimit rl_refused; /* "master refused events" lines */
	/* attach retries: exponential with jitter, not before attach_at_ms */
	struct kvn_backoff attach_bo;
	uint64_t attach_at_ms;
	/* events the master did not acknowledge: shipped again not before
	 * ship_at_ms (0: now), delays growing up to a heartbeat */
	struct kvn_backoff ship_bo;
	uint64_t ship_at_ms;
	int link_state;   /* enum peer_link: what the last line said */
	int refused_why;  /* last refusal's error, for the state line */
	struct actor_timer *lease_timer; /* peer_lease_tick, every read_lease_ttl / 4 */
	struct kvn_ratelimit lease_rl;
	/* ---- tiers (peer_tier.c, peer_disk.c, peer_cold.c) ---- */
	struct peer_tier_stats tstats;
	actor_id disk;          /* the disk writer, when disk_on */
	int disk_local;         /* the disk writer shares the peer's loop */
	int disk_on;            /* a disk tier exists */
	int disk_readonly;      /* a write or fsync failed: no more writes */
	int disk_ro_logged, disk_hung;
	uint64_t disk_full_until; /* after ENOSPC, no offload before this */
	uint64_t disk_used;     /* bytes, as the disk writer last said */
	uint64_t disk_token;
	struct peer_dop *disk_ops; /* requests in flight, by token */
	uint32_t disk_inflight;
	uint64_t offload_queued, offload_bytes; /* writes in flight */
	int evicting, evict_armed;
	struct actor_timer *evict_timer, *tier_timer;
	struct kvn_ratelimit evict_rl, disk_rl;
	TAILQ_HEAD(, peer_cold) cold; /* requests held for the disk */
	uint64_t cold_read_bytes;     /* disk reads in flight (peer_cold.c) */
	struct peer_flush *flush;     /* peer.flush_on_stop under way */
	struct peer_leave_op *leave; /* the clean stop (peer_leave.c); NULL: none asked */
	int left; /* PEER_LEAVE sent: never attach again in this process */
};

/* Keep request metadata under the 64 KiB limit (EVENTS, FULL_SYNC). */
#define PEER_META_BUDGET (60u * 1024u)

/* peer.c */
/* This node as PEER_ATTACH, HEARTBEAT and PEER_LEAVE describe it. */
void peer_fill_node(struct peer *p, struct proto_node *n);
/* flags: PROTO_EV_F_* (peer_ev_flags for a tier move of a stored value) */
uint64_t peer_event_add(struct peer *p, uint8_t kind, const uint8_t *key, uint16_t klen, uint64_t gen,
			uint8_t tier, uint64_t size, uint8_t flags);
/* The event flags a stored value's KEYTAB_F_* say (QUEUE, RETAIN): its tier
 * moves and its full-sync entry keep the master's queue in step. */
static inline uint8_t peer_ev_flags(uint32_t kt_flags)
{
	return (uint8_t)((kt_flags & KEYTAB_F_QUEUE ? PROTO_EV_F_QUEUE : 0) |
			 (kt_flags & KEYTAB_F_RETAIN ? PROTO_EV_F_RETAIN : 0));
}
void peer_ship(struct peer *p);
/* The master acknowledged events (applied and durable seqs): drop them from
 * the outbox and release the replies that waited for them. */
void peer_process_ack(struct peer *p, const struct proto_ack *a);
/* The next attach waits for the backoff's next (jittered, growing) delay. */
void peer_attach_later(struct peer *p);
/* peer_sync.c: snapshot every committed key at this instant (the actor runs
 * alone, so the snapshot matches last_seq exactly) and ship it in chunks;
 * p->syncing until the master acknowledged the last one (or it failed). */
void peer_sync_start(struct peer *p);
/* A put of an older generation than the one committed here (keytab_begin's
 * KVN_ESTALE, or overwritten on arrival by keytab_commit) succeeds without
 * storing anything: it is ordered just before the newer put.  Its answer
 * must not come before the newer value is visible to every route, so it
 * waits for the events queued so far: the seq to wait for (see
 * peer_reply_after_ack), or 0 when the master has them all already. */
#define PEER_OVERWRITTEN 1 /* put item status inside the peer only: never on the wire */
uint64_t peer_overwritten_seq(const struct peer *p, int durable);
/* Answer the request m with the results in w (taken), once the master has
 * acknowledged the events up to `last` (applied; committed too when
 * durable): read-your-writes for every later ROUTE_GET.  last 0: at once. */
void peer_reply_after_ack(struct peer *p, struct actor_msg *m, struct wire_w *w, uint64_t last, int durable);
/* peer_leave.c: the clean stop.  PEER_MSG_LEAVE starts it; the flush step
 * (peer.flush_on_stop) ends with peer_leave_flushed (status 0, or why the
 * flush stopped short); peer_fini calls peer_leave_fini. */
void peer_on_leave_req(struct peer *p, struct actor_msg *m);
void peer_leave_flushed(struct peer *p, int status);
void peer_leave_fini(struct peer *p);
/* peer_data.c */
/* Where the grants of a PUT or ALLOC_SLOT are: 1 and *g over them, 0 none,
 * KVN_EPROTO when meta does not decode. */
int peer_grants_find(const uint8_t *meta, uint32_t meta_len, struct wire_r *g);
/* Whether an item may be stored: 0, KVN_EAUTH (no, missing, expired or
 * wrong grant) or KVN_EPROTO (a generation the master never hands out).
 * g NULL: none.  Refusals are counted and logged, rate-limited. */
int peer_grant_check(struct peer *p, const struct proto_item *it, const struct proto_grant *g, uint64_t wall);
int peer_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
	      struct actor_sink *sink);
void peer_sink_abort(struct actor *self, void *cookie);
/* Decode every item of a data-path request before any is acted on, so a
 * malformed request changes nothing; on success *r is reopened at the first
 * item, on error the request has been answered. */
int peer_items_check(struct peer *p, struct actor_msg *m, struct wire_r *r, uint8_t *flags, uint32_t *n);
/* A PUT's or COMMIT_SLOT's items-header flags as the KEYTAB_F_* its values
 * get (*kt_flags) and the PROTO_EV_F_* of their ADD events (*ev_flags).
 * KVN_EINVAL: RETAIN without QUEUE, or QUEUE without DURABLE (every item
 * of such a request is refused). */
int peer_put_flags(uint8_t items_flags, uint32_t *kt_flags, uint8_t *ev_flags);
void peer_on_put(struct peer *p, struct actor_msg *m);
void peer_on_get(struct peer *p, struct actor_msg *m);
void peer_on_exists(struct peer *p, struct actor_msg *m);
void peer_on_remove(struct peer *p, struct actor_msg *m);
void peer_on_drop_gen(struct peer *p, struct actor_msg *m);
/* Abort receives that have run longer than the pending TTL (their slots
 * would be reaped under the connection's feet), then reap. */
void peer_reap(struct peer *p);
/* Expire read leases past peer.read_lease_ttl: count them and cut the
 * connections their replies are queued on (peer_data.c). */
void peer_lease_tick(struct peer *p);
void peer_put_free(struct peer_put *pp);
/* Lay out a payload's destination in pp->iov (grown as needed): a slot's
 * pages, or the scratch page for bytes that are read and dropped. */
void peer_iov_extents(struct peer *p, struct peer_put *pp, int *cap, const struct alloc_extent *ext, int next,
		      uint64_t size);
void peer_iov_discard(struct peer *p, struct peer_put *pp, int *cap, uint64_t size);
/* XXH3-64 of the bytes in iov[0..n): a value as it arrived (checked
 * against its writer's checksum before it is committed). */
uint64_t peer_iov_sum(const struct iovec *iov, int n);
/* A GET reply being built: per-item results in w, value bytes in payload
 * (peer_data.c; peer_cold.c finishes GETs that waited for the disk). */
struct peer_get_reply {
	struct wire_w w;
	struct evbuffer *payload;
	uint64_t now;
	uint64_t bytes; /* value bytes in payload so far */
	uint64_t room;  /* known free bytes in payload's last chain */
	actor_id conn;  /* the requester: cut if it holds a lease too long */
};
/* One GET item served from DRAM: its result, its bytes added to the reply.
 * A value that is only on disk now answers KVN_EBUSY (asked again). */
struct proto_result peer_get_one(struct peer *p, struct peer_get_reply *gr, const struct proto_item *it,
				 uint32_t items_left);
/* peer_disk.c: the disk writer.  Each request's fn runs exactly once on
 * the peer's loop (KVN_ECLOSED at shutdown), and owns payload (a read's
 * bytes, else NULL). */
typedef void (*peer_disk_done_fn)(struct peer *p, void *arg, int status, struct evbuffer *payload);
/* Open the disk tier (p->o.disk_size > 0), re-index it into the key table
 * (temp files and orphans removed, missing files dropped), and start the
 * disk writer on loop.  0 with no disk tier. */
int peer_disk_open(struct peer *p, struct actor_loop *loop, char *err, size_t errlen);
/* Write the committed value v (its pages must stay held until fn). */
int peer_disk_write(struct peer *p, const struct keytab_view *v, uint64_t expires_wall_ms, peer_disk_done_fn fn,
		    void *arg);
int peer_disk_read(struct peer *p, const struct keytab_view *v, peer_disk_done_fn fn, void *arg);
void peer_disk_remove(struct peer *p, const void *key, size_t klen, uint64_t gen);
void peer_on_disk_done(struct peer *p, struct actor_msg *m);
uint64_t peer_disk_oldest_ms(const struct peer *p, uint64_t now);
void peer_disk_fini(struct peer *p);
/* peer_tier.c */
typedef void (*peer_offload_fn)(struct peer *p, void *arg, int status);
int peer_offload_mode(const struct peer *p); /* enum kvn_offload, never AUTO */
/* Write the committed (key, gen) to disk, then free its DRAM copy; fn (or
 * NULL) hears the outcome.  KVN_EBUSY: the queue is full or the disk is
 * full or hung; KVN_EROFS: read-only. */
int peer_offload(struct peer *p, const uint8_t *key, uint16_t klen, uint64_t gen, peer_offload_fn fn, void *arg);
/* A put committed (key, gen): write through (on-put), check watermarks. */
void peer_tier_committed(struct peer *p, const uint8_t *key, uint16_t klen, uint64_t gen);
/* Schedule an eviction round if DRAM is above the high watermark. */
void peer_tier_kick(struct peer *p);
/* A put found no room for `bytes`: evict now.  0 room made; KVN_EBUSY
 * room is coming (offloads in flight); KVN_ENOSPC nothing evictable. */
int peer_make_room(struct peer *p, uint64_t bytes);
/* Bytes this peer could free now by eviction or offload (heartbeat). */
uint64_t peer_evictable(const struct peer *p);
/* Defaults for zero options, the disk tier (peer_disk_open), timers. */
int peer_tier_start(struct peer *p, char *err, size_t errlen);
void peer_tier_fini(struct peer *p);
/* peer.flush_on_stop: write every DRAM-only value to disk, then call
 * peer_leave_flushed (deadline: nothing new starts after it).  0: nothing
 * to do (no disk tier, flush_on_stop off), the caller goes on. */
int peer_tier_flush(struct peer *p, uint64_t deadline_ms);
void peer_on_pin(struct peer *p, struct actor_msg *m);
void peer_on_unpin(struct peer *p, struct actor_msg *m);
/* peer_cold.c: 1 when the GET m waits for the disk (answered later), 0
 * when every item is served now. */
int peer_get_cold(struct peer *p, struct actor_msg *m);
void peer_on_evict_key(struct peer *p, struct actor_msg *m);
/* Answer held requests past their deadline (KVN_ETIMEDOUT). */
void peer_cold_tick(struct peer *p, uint64_t now);
/* peer_slot.c: ALLOC_SLOT, COMMIT_SLOT, ABORT_SLOT, RESOLVE_KEY */
void peer_on_alloc_slot(struct peer *p, struct actor_msg *m);
void peer_on_commit_slot(struct peer *p, struct actor_msg *m);
void peer_on_abort_slot(struct peer *p, struct actor_msg *m);
void peer_on_resolve_key(struct peer *p, struct actor_msg *m);
/* The COMMIT_SLOT payload sink (peer_sink hands COMMIT_SLOT frames here). */
int peer_slot_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		   struct actor_sink *sink);
/* 1 when cookie was a COMMIT_SLOT receive (now aborted; its slots stay
 * reserved), 0 when it is not ours (peer_sink_abort asks first). */
int peer_slot_sink_abort(struct peer *p, void *cookie);
/* Each heartbeat: forget reservations past their deadline (the key table's
 * reaper frees them) and log one aggregated warning for the transitions
 * refused since the last tick. */
void peer_slot_tick(struct peer *p);
/* The slot counters (zero before the first slot message). */
void peer_slot_get_stats(const struct peer *p, struct peer_slot_stats *st);
/* peer_fini: after every receive was aborted. */
void peer_slot_fini(struct peer *p);
/* peer_local.c: the same-host path.  NET_UP / NET_DOWN of client
 * connections (those on the Unix socket become local ones); the four
 * LOCAL_* requests; teardown (every local lease released). */
void peer_local_net(struct peer *p, struct actor_msg *m);
void peer_on_local_map(struct peer *p, struct actor_msg *m);
void peer_on_local_get(struct peer *p, struct actor_msg *m);
void peer_on_local_release(struct peer *p, struct actor_msg *m);
void peer_on_local_put(struct peer *p, struct actor_msg *m);
void peer_local_fini(struct peer *p);
/* The keytab's lease tick found lease_id past its deadline with owner:
 * when that is a local lease (owner p->local), its stamp is changed and
 * then it is released (its pages may be reused from here on): 1.  0 when
 * the lease is not a local one. */
int peer_local_expired(struct peer *p, uint64_t lease_id, void *owner);
/* The sink of a LOCAL_PUT (peer_sink): the PUT's pages reserved as for a
 * PUT payload and sink->src pointing at the values in the connection's
 * staging region, so the connection's loop does the copy.  1 (declined:
 * the handler copies, or answers the error) for anything it cannot
 * check here. */
int peer_local_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink);

#endif
