/*
 * proto: the metadata layout of every role message, in one place, so the
 * sender's encoder and the receiver's decoder cannot drift apart.  Batches
 * are decoded with iterators over the message's own buffer (no copies, no
 * allocation); pointers they return live as long as the message.
 * docs/protocol.md documents the same layouts for humans.
 */
#ifndef KVN_PROTO_H
#define KVN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "actors/actor.h"
#include "net/net.h"

enum proto_event_kind { PROTO_EV_ADD = 1, PROTO_EV_REMOVE = 2 };
/* The items header's flags.  PROTO_ITEMS_SUM: every item also carries
 * the value's checksum and TTL (PUT, ALLOC_SLOT, COMMIT_SLOT); without it
 * items are key, gen, size only (GET, REMOVE, ...).  Other bits: refused. */
enum proto_put_flags {
	PROTO_PUT_DURABLE = 1,
	PROTO_ITEMS_SUM = 2,
	/* PUT / COMMIT_SLOT: the values are samples of the consumer queue
	 * (DESIGN.md section 8): durable, never evicted without a disk copy,
	 * handed out by LEASE.  RETAIN: a RELEASE keeps the value (it stays
	 * readable by key) instead of deleting it. */
	PROTO_PUT_QUEUE = 4,
	PROTO_PUT_RETAIN = 8,
};
#define PROTO_ITEMS_FLAGS (PROTO_PUT_DURABLE | PROTO_ITEMS_SUM | PROTO_PUT_QUEUE | PROTO_PUT_RETAIN)
/* Longest TTL on the wire (a put's expiry, a pin): 10 years in ms. */
#define PROTO_TTL_MAX_MS (10ull * 366 * 24 * 3600 * 1000)

/* Largest payload a batch frame may carry; bigger batches go in rounds. */
#define PROTO_MAX_BATCH_PAYLOAD (256ull << 20)
/* Largest number of items in one batch message. */
#define PROTO_MAX_ITEMS 4096

/* Answer req with the writer's metadata (and payload, taken; NULL for none)
 * and status.  If the writer failed (KVN_ETOOBIG: the answer does not fit a
 * frame), answer that error instead, free the payload and return it so the
 * caller can undo what the answer promised.  The writer is reset either way. */
int proto_reply(struct actor *self, const struct actor_msg *req, struct wire_w *w, struct evbuffer *payload,
		int status);

/* Shared by proto*.c: finish w into m (w is reset either way); refuse a
 * count of n items of at least min_item bytes each that the rest of r
 * cannot hold (KVN_EPROTO, also set in r->err). */
int proto_finish(struct wire_w *w, struct actor_msg *m);
int proto_check_count(struct wire_r *r, uint32_t n, uint32_t min_item);

/* ---- PING ---- */
int proto_ping_reply_enc(struct actor_msg *m, uint32_t peers, const char *server_id);
int proto_ping_reply_dec(const struct actor_msg *m, uint32_t *peers, char *server_id, size_t cap);

/* ---- PEER_ATTACH / HEARTBEAT / PEER_LEAVE requests: a peer describes itself ---- */
struct proto_node {
	char node_id[65];
	char addr[128]; /* where clients reach the peer */
	uint64_t boot_id; /* random per peer process start */
	uint64_t dram_total, dram_used, disk_total, disk_used;
	/* of dram_used above, none: pages of puts still being received
	 * (PENDING slots).  They are reported apart because no event up to
	 * last_seq covers them: counted as used, the ADD event that commits
	 * them would count them a second time at the master. */
	uint64_t dram_pending;
	uint64_t last_seq; /* highest event seq produced */
	uint64_t keys;
	/* Highest generation the peer ever began (0: none).  A master that lost
	 * master.db starts at a low epoch: it raises its epoch durably above
	 * every reported max_gen before it hands out a generation, or a new
	 * put could lose to an older one held here (master_index.c). */
	uint64_t max_gen;
	/* Its arena's page: DRAM is used in whole pages, and placement counts
	 * them (0: unknown, counted in bytes).  0 or a power of two up to
	 * PROTO_MAX_PAGE, else the message is refused. */
	uint64_t page_size;
	/* Of dram_used, bytes the peer could free right now by evicting or
	 * offloading values (0: none, or a peer that does not evict).
	 * Placement counts them as room once no node has free DRAM.  At most
	 * dram_total, else the message is refused. */
	uint64_t dram_evictable;
	/* PROTO_NODE_EVICTS: the peer evicts (peer.evict = lru), so values
	 * committed since this report are evictable too until the next one
	 * says otherwise.  Other bits: refused. */
	uint8_t flags;
};
#define PROTO_NODE_EVICTS 1u
#define PROTO_MAX_PAGE (1ull << 30)
int proto_node_enc(struct actor_msg *m, const struct proto_node *n);
int proto_node_dec(const struct actor_msg *m, struct proto_node *n);

/* Reply to PEER_ATTACH, HEARTBEAT and EVENTS. */
struct proto_ack {
	uint64_t applied_seq; /* master applied every event <= this */
	uint64_t durable_seq; /* ... and committed every event <= this */
	uint8_t need_full_sync;
	uint32_t epoch;
};
int proto_ack_enc(struct actor_msg *m, const struct proto_ack *a);
int proto_ack_dec(const struct actor_msg *m, struct proto_ack *a);

/* ---- EVENTS (peer -> master) and FULL_SYNC ---- */
struct proto_event {
	uint64_t seq;
	uint8_t kind; /* enum proto_event_kind */
	const uint8_t *key;
	uint16_t klen;
	uint64_t gen;
	uint8_t tier;
	uint64_t size;
	uint8_t flags; /* enum proto_event_flags (FULL_SYNC entries: QUEUE, RETAIN only) */
};
/* An event's flags: the put was durable (the master commits at once), its
 * value is a queue sample, kept on release.  Other bits: the event is
 * refused (master_event_ok). */
enum proto_event_flags { PROTO_EV_F_DURABLE = 1, PROTO_EV_F_QUEUE = 2, PROTO_EV_F_RETAIN = 4 };
#define PROTO_EV_FLAGS (PROTO_EV_F_DURABLE | PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN)
/* Writer: begin with the header, add events, finish into m. */
void proto_events_begin(struct wire_w *w, const char *node_id, uint64_t boot_id, uint32_t n);
void proto_events_add(struct wire_w *w, const struct proto_event *e);
/* Reader: header, then next() n times; end() checks nothing is left. */
int proto_events_open(struct wire_r *r, const struct actor_msg *m, char *node_id, size_t cap,
		      uint64_t *boot_id, uint32_t *n);
int proto_events_next(struct wire_r *r, struct proto_event *e);

/* FULL_SYNC chunk: the snapshot of every committed key, as of event `seq`. */
struct proto_sync_hdr {
	char node_id[65];
	uint64_t boot_id;
	uint64_t seq;
	uint32_t chunk; /* 0, 1, 2, ... */
	uint8_t last;
	uint32_t n;
};
void proto_sync_begin(struct wire_w *w, const struct proto_sync_hdr *h);
/* entries use proto_event with kind/seq ignored, flags QUEUE and RETAIN only */
void proto_sync_add(struct wire_w *w, const struct proto_event *e);
int proto_sync_open(struct wire_r *r, const struct actor_msg *m, struct proto_sync_hdr *h);
int proto_sync_next(struct wire_r *r, struct proto_event *e);

/* DURABLE (one-way master -> peer) */
int proto_durable_enc(struct actor_msg *m, uint64_t durable_seq);
int proto_durable_dec(const struct actor_msg *m, uint64_t *durable_seq);
/* DURABLE that also fails the durable puts of events <= failed_upto (their
 * COMMIT failed; reason: why, <= PROTO_REASON_MAX - 1 bytes, no data).  The
 * decoder takes either form (*failed_upto 0, reason "" for the plain one). */
#define PROTO_REASON_MAX 160
int proto_durable_fail_enc(struct actor_msg *m, uint64_t durable_seq, uint64_t failed_upto, const char *reason);
int proto_durable_fail_dec(const struct actor_msg *m, uint64_t *durable_seq, uint64_t *failed_upto,
			   char reason[PROTO_REASON_MAX]);

/* ---- keys-only batches: ROUTE_GET, EXISTS requests ---- */
void proto_keys_begin(struct wire_w *w, uint32_t n);
void proto_keys_add(struct wire_w *w, const void *key, size_t klen);
int proto_keys_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n);
int proto_keys_next(struct wire_r *r, const uint8_t **key, uint16_t *klen);

/* ---- ROUTE_PUT ---- */
void proto_route_put_begin(struct wire_w *w, const char *const *exclude, uint32_t nexclude, uint32_t n);
void proto_route_put_add(struct wire_w *w, const void *key, size_t klen, uint64_t size);
/* excludes are read into ex[] (up to max; more is an error) */
int proto_route_put_open(struct wire_r *r, const struct actor_msg *m, char (*ex)[65], uint32_t max,
			 uint32_t *nexclude, uint32_t *n);
int proto_route_put_next(struct wire_r *r, const uint8_t **key, uint16_t *klen, uint64_t *size);

/* ---- route replies: ROUTE_PUT and ROUTE_GET ---- */
/* The master's grant for one put (ROUTE_PUT answers, then PUT and
 * ALLOC_SLOT items): expiry (the master's wall clock, ms), the size routed
 * (the value stored may be smaller: a client that routes before it knows
 * its exact size) and a truncated MAC over both, the node, the key and the
 * gen (auth_grant_sign).  All zero: none. */
struct proto_grant {
	uint64_t expiry_ms;
	uint64_t size;
	uint8_t mac[16];
};
#define PROTO_GRANT_LEN 32
/* How long a grant is valid after the master issued it (its wall clock),
 * and how far a peer's wall clock may be off the master's: a peer refuses
 * a grant whose expiry is more than SKEW in its past, or more than TTL +
 * SKEW in its future (docs/protocol.md, "Grants"). */
#define PROTO_GRANT_TTL_MS (60ull * 1000)
#define PROTO_GRANT_SKEW_MS (120ull * 1000)
/* Largest generation on the wire: SQLite keeps signed 64-bit integers. */
#define PROTO_GEN_MAX ((uint64_t)INT64_MAX)

struct proto_route {
	int32_t status;
	char node_id[65];
	char addr[128];
	uint64_t gen;
	uint8_t tier;  /* ROUTE_GET only */
	uint64_t size; /* ROUTE_GET only */
	struct proto_grant grant; /* ROUTE_PUT only: read by proto_route_grants_next */
};
void proto_routes_begin(struct wire_w *w, uint32_t n);
/* One route; node_id and addr may be NULL (written as ""). */
void proto_routes_add(struct wire_w *w, int32_t status, const char *node_id, const char *addr, uint64_t gen,
		      uint8_t tier, uint64_t size);
int proto_routes_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n);
int proto_routes_next(struct wire_r *r, struct proto_route *rt);
/* A ROUTE_PUT answer: after its n routes, n grants in the same order (all
 * zero for a refused item). */
void proto_route_grants_add(struct wire_w *w, const struct proto_grant *g);
int proto_route_grants_next(struct wire_r *r, struct proto_grant *g);

/* ---- data path: PUT, GET, REMOVE requests (key, gen[, size]) ---- */
struct proto_item {
	const uint8_t *key;
	uint16_t klen;
	uint64_t gen;
	uint64_t size; /* PUT only */
	/* with PROTO_ITEMS_SUM (else 0): the value's XXH3-64, computed once
	 * by its writer (ALLOC_SLOT: 0, the commit carries it), and its TTL
	 * in ms (0: none; at most PROTO_TTL_MAX_MS) */
	uint64_t checksum;
	uint64_t ttl_ms;
};
/* flags: PROTO_ITEMS_FLAGS bits.  Add every item with proto_items_add
 * when flags lack PROTO_ITEMS_SUM, with proto_items_add_sum when they
 * have it. */
void proto_items_begin(struct wire_w *w, uint8_t flags, uint32_t n);
void proto_items_add(struct wire_w *w, const void *key, size_t klen, uint64_t gen, uint64_t size);
void proto_items_add_sum(struct wire_w *w, const void *key, size_t klen, uint64_t gen, uint64_t size,
			 uint64_t checksum, uint64_t ttl_ms);
int proto_items_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint8_t *flags,
		     uint32_t *n);
/* r: as proto_items_open left it (next reads the header's flags from the
 * start of r's buffer to know the items' layout). */
int proto_items_next(struct wire_r *r, struct proto_item *it);

/* ---- PIN, UNPIN, EVICT_KEY (client -> peer) ----
 * Data-path items (flags 0, gen from the route; 0 = the latest), answered
 * with results.  PIN's items are followed by one u64: the pin's TTL in ms
 * (1..PROTO_TTL_MAX_MS; the peer cuts it to peer.pin_ttl_max).  UNPIN and
 * EVICT_KEY are items alone (peer_items_check decodes them). */
void proto_pin_end(struct wire_w *w, uint64_t ttl_ms);
/* Check a whole PIN request (items, then the TTL, nothing after) and
 * reopen r at its first item: 0, or KVN_EPROTO / KVN_EKEYLEN. */
int proto_pin_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n, uint64_t *ttl_ms);
/* Rewrite a decoded item's gen in place in the metadata it was read from
 * (meta, which the caller owns): how the master fills in the routed
 * generation of a GET it forwards to its own peer (master_index.c). */
void proto_items_set_gen(uint8_t *meta, uint32_t meta_len, const struct proto_item *it, uint64_t gen);

/* PUT and ALLOC_SLOT: after the n items, n grants (PROTO_GRANT_LEN bytes
 * each, in item order).  With the reader just past the last item:
 * proto_grants_open says 1 and leaves *g over the grants, 0 when there are
 * none (every item is then refused), or KVN_EPROTO for anything else. */
void proto_grants_add(struct wire_w *w, const struct proto_grant *g);
int proto_grants_open(const struct wire_r *r, uint32_t n, struct wire_r *g);
int proto_grants_next(struct wire_r *g, struct proto_grant *out);
/* Write grant i of n in place (meta has its grants: the master fills them
 * in for a PUT it hands to its own peer). */
void proto_grants_set(uint8_t *meta, uint32_t meta_len, uint32_t n, uint32_t i, const struct proto_grant *g);

/* ---- data path replies: per item status, gen, size, checksum ---- */
struct proto_result {
	int32_t status;
	uint64_t gen;
	uint64_t size;
	/* GET: the XXH3-64 of the bytes sent for this item, which the client
	 * checks before it hands them over; other replies: the stored
	 * value's, or 0 */
	uint64_t checksum;
};
/* Bytes of one result on the wire (status, gen, size, checksum). */
#define PROTO_RESULT_LEN (4 + 8 + 8 + 8)
void proto_results_begin(struct wire_w *w, uint32_t n);
void proto_results_add(struct wire_w *w, const struct proto_result *res);
int proto_results_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n);
int proto_results_next(struct wire_r *r, struct proto_result *res);

/* ---- ALLOC_SLOT reply: per item status, gen and where to write ----
 * The requests of the slot protocol reuse the layouts above: ALLOC_SLOT,
 * COMMIT_SLOT and ABORT_SLOT are data-path items (COMMIT_SLOT with the
 * values as payload over TCP), RESOLVE_KEY is a keys-only batch answered
 * with results.  addr and rkey name the slot's pages for an RDMA write;
 * over TCP both are 0. */
struct proto_slot_result {
	int32_t status;
	uint64_t gen;
	uint64_t addr;
	uint32_t rkey;
};
void proto_slots_begin(struct wire_w *w, uint32_t n);
void proto_slots_add(struct wire_w *w, const struct proto_slot_result *s);
int proto_slots_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n);
int proto_slots_next(struct wire_r *r, struct proto_slot_result *s);

/* ---- consumer leases: LEASE, RELEASE, RENEW (client -> master) ----
 * DESIGN.md section 8, docs/protocol.md ("Consumer leases").
 *   LEASE   = u32 part_i, u32 part_n, u32 max, u64 ttl_ms, str holder
 *   reply   = u32 n, n x {u64 lease_id, key, u64 gen, str node_id,
 *             u64 size, u64 deadline_ms}
 *   RELEASE = u8 flags (PROTO_RELEASE_*), u32 n, n x u64 lease_id
 *   RENEW   = u64 ttl_ms, u32 n, n x u64 lease_id
 *   replies = u32 n, n x {i32 status, u64 deadline_ms (RENEW: the new
 *             deadline; RELEASE: 0)}
 * Decoders range-check every field: part_n 1..PROTO_PART_MAX, part_i <
 * part_n, max 1..PROTO_LEASE_MAX, ttl 1..PROTO_TTL_MAX_MS, holder at most
 * PROTO_HOLDER_MAX bytes of printable ASCII, n 1..PROTO_MAX_ITEMS, lease
 * ids non-zero; anything else is KVN_EPROTO. */
#define PROTO_PART_MAX (1u << 20)
#define PROTO_LEASE_MAX 1024u
#define PROTO_HOLDER_MAX 64
/* RELEASE flags: RETAIN keeps the values (as if put with retain); RETURN
 * gives the samples back to the pool unconsumed (the lease just ends). */
enum proto_release_flags { PROTO_RELEASE_RETAIN = 1, PROTO_RELEASE_RETURN = 2 };
struct proto_lease_req {
	uint32_t part_i, part_n, max;
	uint64_t ttl_ms;
	char holder[PROTO_HOLDER_MAX + 1];
};
int proto_lease_enc(struct actor_msg *m, const struct proto_lease_req *q);
int proto_lease_dec(const struct actor_msg *m, struct proto_lease_req *q);
struct proto_lease_ref {
	uint64_t lease_id;
	const uint8_t *key; /* into the message (decoder) */
	uint16_t klen;
	uint64_t gen;
	char node_id[65];
	uint64_t size;
	uint64_t deadline_ms; /* the master's wall clock, ms */
};
void proto_lease_reply_begin(struct wire_w *w, uint32_t n);
void proto_lease_reply_add(struct wire_w *w, const struct proto_lease_ref *ref);
/* Bytes one ref takes in the reply (to stay under WIRE_MAX_META). */
size_t proto_lease_ref_len(uint16_t klen, const char *node_id);
int proto_lease_reply_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n);
int proto_lease_reply_next(struct wire_r *r, struct proto_lease_ref *ref);
/* RELEASE (ttl_ms unused) and RENEW (flags unused): the ids are read from
 * the message with proto_ids_next after _open. */
void proto_release_begin(struct wire_w *w, uint8_t flags, uint32_t n);
void proto_renew_begin(struct wire_w *w, uint64_t ttl_ms, uint32_t n);
void proto_ids_add(struct wire_w *w, uint64_t lease_id);
int proto_release_open(struct wire_r *r, const struct actor_msg *m, uint8_t *flags, uint32_t *n);
int proto_renew_open(struct wire_r *r, const struct actor_msg *m, uint64_t *ttl_ms, uint32_t *n);
int proto_ids_next(struct wire_r *r, uint64_t *lease_id);
/* The RELEASE and RENEW reply. */
void proto_lstat_begin(struct wire_w *w, uint32_t n);
void proto_lstat_add(struct wire_w *w, int32_t status, uint64_t deadline_ms);
int proto_lstat_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n);
int proto_lstat_next(struct wire_r *r, int32_t *status, uint64_t *deadline_ms);

/* ---- LIST (client -> master; proto_list.c, docs/protocol.md "LIST") ----
 *   LIST  = u64 cursor, u32 max, bytes prefix (u32 length, 0..WIRE_MAX_KEY)
 *   reply = u64 next, u32 n, n x {key, u64 size, u64 gen}
 * A cursor is a 32-bit index hash (kvn_ptab_hash of the key's kvn_hash64):
 * the page holds the index's keys with cursor <= hash < next that start
 * with prefix; next = PROTO_LIST_END (2^32) when nothing is left.  The
 * decoders refuse (KVN_EPROTO) a cursor over 2^32 - 1, max outside
 * 1..PROTO_LIST_MAX, next outside cursor + 1..PROTO_LIST_END (the reply
 * decoder checks next >= 1; the caller compares with its cursor), a bad
 * key or a generation over PROTO_GEN_MAX. */
#define PROTO_LIST_MAX 10000u
#define PROTO_LIST_END (1ull << 32)
#define PROTO_LIST_HDR_LEN (8 + 4)
struct proto_list_req {
	uint64_t cursor;
	uint32_t max;
	const uint8_t *prefix; /* plen bytes (decoder: into the message) */
	uint32_t plen;
};
int proto_list_enc(struct actor_msg *m, const struct proto_list_req *q);
int proto_list_dec(const struct actor_msg *m, struct proto_list_req *q);
struct proto_list_ent {
	const uint8_t *key; /* into the message (decoder) */
	uint16_t klen;
	uint64_t size, gen;
};
/* Bytes one entry takes in the reply (to stay under WIRE_MAX_META). */
static inline size_t proto_list_ent_len(uint16_t klen)
{
	return 2 + (size_t)klen + 8 + 8;
}
void proto_list_reply_begin(struct wire_w *w, uint64_t next, uint32_t n);
void proto_list_reply_add(struct wire_w *w, const struct proto_list_ent *e);
int proto_list_reply_open(struct wire_r *r, const struct actor_msg *m, uint64_t *next, uint32_t *n);
int proto_list_reply_next(struct wire_r *r, struct proto_list_ent *e);

/* ---- same-host path (proto_local.c; docs/protocol.md, "Same-host path") ----
 * LOCAL_MAP: no metadata.  Reply: str node_id, str host (the kernel's
 * boot_id), str socket path ("" when the peer has none), u8 local (this
 * connection is on that socket), then with local: the map token, u64
 * arena_len, u64 page_size, u64 staging_len. */
#define PROTO_HOST_MAX 48
#define PROTO_SOCK_MAX 108
#define PROTO_TOKEN_LEN 32
struct proto_local_map {
	char node_id[65];
	char host[PROTO_HOST_MAX];
	char sock[PROTO_SOCK_MAX];
	uint8_t local;
	uint8_t token[PROTO_TOKEN_LEN];
	uint64_t arena_len, page_size, staging_len;
};
int proto_local_map_enc(struct wire_w *w, const struct proto_local_map *lm);
int proto_local_map_dec(const struct actor_msg *m, struct proto_local_map *lm);
/* LOCAL_GET: data-path items (flags 0) as GET.  Reply: u32 n, n x {i32
 * status, u8 how, u64 gen, u64 size, u64 checksum, u64 lease_id, u32
 * stamp, u8 next, next x {u64 off, u64 len}}.  stamp: the lease's slot in
 * the connection's stamp region (net/xfer.h, "lease stamps").  how PROTO_LOCAL_HERE: read the extents of
 * the arena, whose lengths add up to size; PROTO_LOCAL_GET: not in DRAM
 * here, read it with a GET (status 0, nothing leased). */
#define PROTO_LOCAL_MAX_EXT 64
enum proto_local_how { PROTO_LOCAL_HERE = 0, PROTO_LOCAL_GET = 1 };
struct proto_local_res {
	int32_t status;
	uint8_t how;
	uint64_t gen, size, checksum, lease_id;
	uint32_t stamp;
	uint8_t next;
	uint64_t off[PROTO_LOCAL_MAX_EXT], len[PROTO_LOCAL_MAX_EXT];
};
void proto_local_res_add(struct wire_w *w, const struct proto_local_res *res);
/* Range-checked: how known, next <= PROTO_LOCAL_MAX_EXT, extents summing
 * to size for a HERE answer (status 0). */
int proto_local_res_next(struct wire_r *r, struct proto_local_res *res);
/* LOCAL_RELEASE (one-way): u32 n (1..PROTO_MAX_ITEMS), n x u64 lease_id
 * (proto_ids_add / proto_ids_next). */
void proto_local_release_begin(struct wire_w *w, uint32_t n);
int proto_local_release_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n);
/* LOCAL_PUT: u64 offset into the connection's staging region, then a PUT's
 * metadata; the values lie back to back from that offset, no payload.
 * Bit 63 of the offset (PROTO_LOCAL_PUT_PEER_SUM): items whose checksum is
 * 0 take the XXH3-64 the peer computes over the bytes as it stores them
 * (the client did not hash them: a memcpy on one host needs no network
 * checksum). */
#define PROTO_LOCAL_PUT_HDR 8
#define PROTO_LOCAL_PUT_PEER_SUM (1ull << 63)

/* ---- STAT reply ---- */
struct proto_stat_node {
	char node_id[65];
	char addr[128];
	uint8_t alive;
	uint64_t dram_total, dram_used, disk_total, disk_used, objects;
};
void proto_stat_begin(struct wire_w *w, uint64_t objects, uint64_t bytes, uint32_t n);
void proto_stat_add(struct wire_w *w, const struct proto_stat_node *sn);
int proto_stat_open(struct wire_r *r, const struct actor_msg *m, uint64_t *objects, uint64_t *bytes,
		    uint32_t *n);
int proto_stat_next(struct wire_r *r, struct proto_stat_node *sn);
/* After the nodes (WIRE_VERSION 5): the master's own figures.  requests,
 * key_hits, key_misses: its MASTER_STATS_FIELDS counters of the same names.
 * conns_known 0: no listener to count (an in-process master), the counts
 * are 0. */
#define PROTO_VERSION_MAX 32              /* version string, NUL included */
#define PROTO_UPTIME_MAX_MS (1000ull * 366 * 24 * 3600 * 1000) /* 1000 years */
#define PROTO_CONNS_MAX (1u << 24)
struct proto_stat_master {
	uint64_t uptime_ms;
	char version[PROTO_VERSION_MAX]; /* printable ASCII, not empty */
	uint64_t requests, key_hits, key_misses;
	uint8_t conns_known;
	/* masters + peers + clients <= open; each <= PROTO_CONNS_MAX */
	uint32_t conns_open, conns_masters, conns_peers, conns_clients, conns_handshake;
};
void proto_stat_master_add(struct wire_w *w, const struct proto_stat_master *sm);
/* Once every node was read: the master's figures, each range-checked, and
 * the end of the message.  0 or KVN_EPROTO. */
int proto_stat_master_read(struct wire_r *r, struct proto_stat_master *sm);

#endif
