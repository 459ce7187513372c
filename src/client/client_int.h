/*
 * client_int: the client library's internals, shared by client.c (the
 * client actor, its connections to the master and the peers, quarantine,
 * request rounds with deadlines), client_round.c (op lifecycle, route cache,
 * routing, rounds of peer requests), client_api.c (the synchronous public
 * calls of include/kvnode.h, get by generation included), client_async.c
 * (async puts, kvn_poll, the drain at close), client_slot.c (the slot
 * protocol and resolve), client_via.c (gets and puts sent to the master),
 * client_queue.c (a put's queue flags; lease, release, renew) and
 * client_stats.c (the counters and what tests read of a client).
 */
#ifndef KVN_CLIENT_INT_H
#define KVN_CLIENT_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <uthash.h>
#include <xxhash.h>

#include "actors/actor.h"
#include "net/proto.h"
#include "auth/auth.h"
#include "base/base.h"
#include "client/client.h"
#include "kvnode.h"

#define CLIENT_SCRATCH (64 * 1024)
/* Every flag kvn_put and its kin know; any other is refused (KVN_EINVAL). */
#define CLIENT_PUT_FLAGS ((unsigned)(KVN_PUT_DURABLE | KVN_PUT_QUEUE | KVN_PUT_RETAIN))
/* Request metadata is kept under this (the limit is 64 KiB). */
#define META_BUDGET (60u * 1024u)
/* A route reply item carries node id and address (up to ~220 bytes), so a
 * request answered with routes (ROUTE_GET, ROUTE_PUT, a GET to the master)
 * names at most this many keys, keeping its reply under the limit. */
#define ROUTE_CHUNK 256

struct client_local; /* client_local.c: the same-host path to one peer */

/* A connection to one peer, by node id. */
struct client_peer {
	char node_id[65];
	char addr[128];
	actor_id proxy; /* 0: not connected */
	uint64_t opened_ms;
	uint64_t quarantined_until;
	uint32_t inflight;
	struct client_local *local; /* NULL until client.local = auto probed it */
	UT_hash_handle hh;
};

/* One request of a round: the items (indices into the op) it carries. */
struct client_req {
	struct client_op *op;
	actor_id proxy;
	struct client_peer *peer; /* NULL for the master */
	uint64_t corr;
	uint32_t *idx;
	uint32_t n;
	int done;
	struct actor_msg *reply; /* kept until the round is reset */
	int err;                 /* no reply: why */
	struct iovec *iov;       /* GET: where reply bytes go */
	int niov;
	int local;               /* a LOCAL_GET: the bytes are read from the arena */
};

/* What a public call is doing right now; one at a time per client. */
struct client_op {
	struct kvn_item *items;
	size_t n;
	int kind;        /* WIRE_PUT, WIRE_GET, ... */
	int *route_st;   /* per item: route status */
	struct proto_route *rt;
	uint64_t deadline_ms;
	struct client_req **reqs;
	uint32_t nreqs, capreqs, pending;
	int done;
	int alloc_get;   /* kvn_get_alloc semantics for items with val == NULL */
	const uint8_t *alloc_mine; /* alloc_get: per item, whether the buffer is ours */
	/* optional, per item, owned by the op (client_op_end frees): every
	 * result of the round (gen, size), and ALLOC_SLOT's results */
	struct proto_result *res;
	struct proto_slot_result *sres;
	/* get by generation: the exact gen per item (0: latest) */
	const uint64_t *want_gen;
	/* PUT, COMMIT_SLOT: per item, the value's XXH3-64, computed once per
	 * call (owned by the caller of client_op_begin; NULL: all 0) */
	uint64_t *sums;
	/* NULL: sums[] is complete.  Else per item whether sums[i] is known
	 * yet: a put computes each sum when it first needs it, so a value
	 * staged for a same-host peer is summed while it is copied (in cache) */
	uint8_t *sum_known;
	/* PUT: every item's TTL in ms (0: none); PIN: the pins' TTL */
	uint64_t ttl_ms;
	/* master-only calls (PING, STAT, ROUTE_*): the reply kept for the caller;
	 * mdone apart from done, because a speculative GET round
	 * (client_api.c) is in flight while the route call waits */
	struct actor_msg *reply;
	int reply_err;
	int mdone;
	/* LEASE, RELEASE, RENEW: not idempotent, so client_master_call sends
	 * the request at most once (again only when it surely never left) */
	int once;
	/* GET over the same-host path: per item, read it with a GET instead
	 * (not in DRAM there, or its copy failed the checksum); nredo counts
	 * the items marked since client_local_redo last looked */
	uint8_t *nolocal;
	uint32_t nredo;
};

/* client_round.c: a route answer named rt's node (tracks the sole peer). */
void client_note_node(struct kvn_client *c, const struct proto_route *rt);
/* The peer a get may speculate on: 1 with *rt filled (gen 0), or 0. */
int client_spec_target(struct kvn_client *c, struct proto_route *rt);

/* A remembered route (client.route_cache_ttl), keyed by the key bytes. */
struct route_cache_ent {
	uint64_t expires_ms;
	struct proto_route rt;
	UT_hash_handle hh;
	uint16_t klen;
	uint8_t key[];
};
#define ROUTE_CACHE_MAX 65536

/* An async put (client_async.c). */
struct client_aput;
TAILQ_HEAD(client_aput_q, client_aput);

struct kvn_client {
	struct kvn_conf conf;
	struct actor_loop *loop;
	struct actor *self;
	struct auth_keyring kr;
	char node_id[65];
	actor_id master;
	int master_up;
	char master_node[65]; /* the master's node id (its NET_UP), "" until known */
	int via_get_refused;  /* the master answered a GET with KVN_EPROTO: an older
			       * master; gets ask ROUTE_GET from then on */
	int via_put_refused;  /* the same for a PUT: puts ask ROUTE_PUT */
	struct client_peer *peers;
	struct client_op *op;
	uint8_t *scratch;
	struct route_cache_ent *rcache;
	uint32_t nrcache;
	/* the peers route answers have named, up to two: while there is one,
	 * gets may speculate on it (client.speculative_get) */
	struct proto_route sole;
	int nseen;
	struct client_stats stats; /* client.h: CLIENT_STATS_FIELDS */
	char detail[768];
	/* async puts: in flight, succeeded (callback not yet run), failed
	 * (not yet taken by kvn_poll_failures); all three count toward
	 * KVN_ASYNC_MAX */
	struct client_aput_q aq_flight, aq_done, aq_failed;
	uint32_t naput;
	int async_event;   /* an async put finished: kvn_poll stops waiting */
	int in_callback;   /* a completion callback runs: no kvn_poll/drain inside */
	int closing;       /* kvn_close: callbacks of cut calls retry nothing */
	/* submissions and their progress thread (client_submit.c); NULL until
	 * the first kvn_fd or submit */
	struct client_subq *sub;
	/* tests only (t/race): run in a get between its route and its read,
	 * the window in which a concurrent put can move the key */
	client_routed_fn test_routed;
	void *test_routed_arg;
	/* how the connections are opened: cx.connect NULL is TCP (net_connect) */
	struct client_connector cx;
	/* the same-host path: its failure lines; tests only: a hook between a
	 * local get's lease and its copy, and a pretended host id */
	struct kvn_ratelimit local_rl;
	client_local_copy_fn test_local_copy;
	void *test_local_copy_arg;
	char test_host[48];
};

/* client.c */
/* Connect to the master if not connected: 0 or the error (detail set). */
int client_master_ensure(struct kvn_client *c);
/* Takes ownership of conf's strings (conf is zeroed). */
int client_open(struct kvn_conf *conf, struct kvn_client **out);
/* The same with a connector (cx NULL: TCP); cx->release runs on failure. */
int client_open_with(struct kvn_conf *conf, const struct client_connector *cx, struct kvn_client **out);
void client_free(struct kvn_client *c);
/* Forget the master connection `used` (cut it) if it is still the
 * current one: the next call reconnects. */
void client_master_drop(struct kvn_client *c, actor_id used);
/* Call the master with m (taken) and wait for the reply until the op's
 * deadline: 0 with op->reply set, or an error.  A connection that died
 * while the client was idle is replaced once within the deadline. */
int client_master_call(struct kvn_client *c, struct client_op *op, struct actor_msg *m);
/* As client_master_call, and a whole-call KVN_EBUSY (the master did
 * nothing: a queue full, nodes not re-synced yet) is asked again after a
 * pause with jitter, within the op's deadline. */
int client_master_call_busy(struct kvn_client *c, struct client_op *op, struct actor_msg *m);
/* The peer connection for (node_id, addr), opening or renewing it. */
struct client_peer *client_peer_get(struct kvn_client *c, const char *node_id, const char *addr);
void client_quarantine(struct kvn_client *c, struct client_peer *p);
int client_is_quarantined(struct kvn_client *c, const char *node_id);
/* Send a request for the items idx[0..n) of op to peer (NULL: the master,
 * which must be connected); the reply lands in the req.  Takes m and idx. */
int client_peer_call(struct kvn_client *c, struct client_op *op, struct client_peer *p,
		     struct actor_msg *m, uint32_t *idx, uint32_t n);
/* Drive the loop until every request of the round answered or the
 * deadline passed; on timeout, cuts the connections still in use so no
 * caller buffer is touched after we return. */
int client_wait_round(struct kvn_client *c, struct client_op *op);
/* The same, but give up at until_ms (capped by the deadline) as at the
 * deadline: one attempt's limit (client_attempt_ms). */
int client_wait_round_until(struct kvn_client *c, struct client_op *op, uint64_t until_ms);
/* client.attempt_timeout, or its default: a third of client.timeout. */
uint64_t client_attempt_ms(const struct kvn_client *c);
void client_round_reset(struct client_op *op);
/* Run the loop (the client actor idle meanwhile) until *done or deadline. */
int client_run(struct kvn_client *c, const int *done, uint64_t deadline_ms);
void client_set_detail(struct kvn_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run the loop once without waiting (kvn_poll with timeout 0). */
void client_run_nonblock(struct kvn_client *c);

/* A new connection on addr for this client (TCP, or unix:/path). */
int client_connect_addr(struct kvn_client *c, const char *addr, actor_id *proxy);

/* client_local.c: the same-host path (client.local = auto) */
/* Find out whether p is on this host and switch its connection to the
 * peer's Unix socket with the arena mapped (synchronous, bounded by the
 * op's deadline; a failure falls back to TCP with one log line). */
void client_local_probe(struct kvn_client *c, struct client_op *op, struct client_peer *p);
int client_local_ready(const struct client_peer *p);
/* Whether calls should go to the peers themselves rather than through the
 * master (client.get_via_master, put_via_master): a peer may be, or is,
 * reached over the same-host path.  Until a route named a peer, yes: the
 * route is what lets the client find out. */
int client_local_preferred(struct kvn_client *c);
/* p's connection is gone (its staging region with it): unmap, probe again
 * on the next one.  _free: p is going away. */
void client_local_reset(struct client_peer *p);
void client_local_free(struct client_peer *p);
/* Each send round reuses staging regions from their start. */
void client_local_round_start(struct kvn_client *c);
/* Copy the values of items take[0..k) into p's staging region: 1 with *off
 * where they start, 0 when p has none or they do not fit (send them as
 * payload). */
int client_local_stage(struct client_peer *p, struct client_op *op, const uint32_t *take, uint32_t k,
		       uint64_t *off);
/* After a LOCAL_PUT's metadata is written: the items staged without a sum
 * (the peer computes it) are unknown again, for a retry over TCP. */
void client_local_sums_reset(struct client_op *op, const uint32_t *take, uint32_t k);
/* A LOCAL_GET reply: copy each value from the arena, check it, release
 * the leases (one one-way frame). */
void client_local_collect_get(struct kvn_client *c, struct client_op *op, struct client_req *q, int *st);
uint32_t client_local_redo(struct client_op *op, const uint32_t *idx, uint32_t n, const int *st, uint32_t *out);

/* client_round.c */
/* Start a synchronous call on items[0..n) (the client's one current op)
 * with the client.timeout deadline; the client actor is busy until
 * client_op_end, which frees what the op owns. */
void client_op_begin(struct kvn_client *c, struct client_op *op, struct kvn_item *items, size_t n, int kind);
void client_op_end(struct kvn_client *c, struct client_op *op);
int client_key_ok(const struct kvn_item *it);
/* Route cache: find (NULL when absent or expired), remember our own
 * write, forget. */
struct route_cache_ent *client_rc_find(struct kvn_client *c, const void *key, size_t klen);
void client_rc_put(struct kvn_client *c, const void *key, size_t klen, const struct proto_route *rt);
void client_rc_drop(struct kvn_client *c, const void *key, size_t klen);
void client_rcache_clear(struct kvn_client *c);
/* Route items idx[0..n) through the master: op->rt / op->route_st.  An
 * error only when the master could not answer at all. */
int client_route_get(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n);
int client_route_put(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n,
		     const char *const *exclude, uint32_t nexclude);
/* One request of op->kind per destination (op->rt[i].node_id/addr/gen) for
 * items idx[0..n); unreachable peers mark st[] KVN_ECONN.  PUT and
 * COMMIT_SLOT reference the items' bytes (zero copy). */
void client_send_round(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *st,
		       uint8_t put_flags);
/* The items header of a request of op->kind, and item i of op with
 * generation gen: PUT and the slot kinds carry size, checksum and TTL
 * (PROTO_ITEMS_SUM), the others key and gen alone. */
void client_items_begin(struct wire_w *w, const struct client_op *op, uint8_t put_flags, uint32_t k);
void client_item_add(struct wire_w *w, const struct client_op *op, uint32_t i, uint64_t gen);
/* XXH3-64 of each item's value into a new array (the caller frees). */
uint64_t *client_sums(const struct kvn_item *items, size_t n);
/* Per-item results of the round into st[] (and op->res/op->sres).  A GET
 * whose bytes do not match their checksum gets KVN_ECORRUPT (counted). */
void client_collect_round(struct kvn_client *c, struct client_op *op, int *st);
/* The same for one request of the round (the round is not reset). */
void client_collect_req(struct kvn_client *c, struct client_op *op, struct client_req *q, int *st);
/* The put loop: items whose st[] is retryable (KVN_EBUSY = to do) are
 * routed with ROUTE_PUT and sent as op->kind; a node that answered ENOSPC
 * or failed is excluded from the next route; one attempt waits at most
 * client_attempt_ms (but the last, which waits to the deadline), and a node
 * that gave no answer, like a quarantined one, is left out of the next
 * route while another node has room; bounded by client.retries and the
 * deadline.  op->rt keeps each item's last route.  Returns what
 * stopped it early (master unreachable, KVN_ETIMEDOUT) or 0. */
int client_put_rounds(struct kvn_client *c, struct client_op *op, int *st, uint8_t put_flags);
/* ECONN, ENOSPC, EPEERDOWN, EBUSY: worth a re-route. */
int client_retryable(int st);
/* A route status that says "ask the master again after a pause": no peer
 * attached yet (KVN_ENOPEER, puts) or the master is not ready for that key
 * (KVN_EBUSY: right after its start, docs/protocol.md). */
int client_route_wait(int st);
/* Pauses between such tries: jittered, doubling, within the op's deadline. */
#define CLIENT_PAUSE_MIN_MS 10
#define CLIENT_PAUSE_MAX_MS 500
void client_pause_init(struct kvn_backoff *bo);
/* Wait the next step of bo (at most half of what is left of the op's
 * deadline): 0, or KVN_ETIMEDOUT when too little is left to try again. */
int client_pause(struct kvn_client *c, struct client_op *op, struct kvn_backoff *bo);
int client_first_error(const struct kvn_item *items, size_t n);

/* client_via.c */
/* 1 when a value of len bytes may go through the master: always, unless
 * the same-host path is preferred and len >= client.local_min_size. */
int client_via_small(struct kvn_client *c, size_t len);
/* Whether some of the get items idx[0..n) of op go to the master
 * (client.get_via_master), rather than speculating on a sole peer of
 * another node or taking the same-host path. */
int client_get_via_wanted(struct kvn_client *c, const struct client_op *op, const uint32_t *idx, uint32_t n);
/* GET items idx[0..n) through the master (those client_via_small lets go;
 * the others as "no answer").  Per item, one of: served[i] set
 * and sst[i] its final status (the bytes are in the item); op->rt and
 * op->route_st filled from the master's routes; or route_st KVN_EBUSY: no
 * answer, route it with ROUTE_GET.  *again is set when some served item
 * must be asked for again (KVN_ESTALE for a latest get, KVN_EBUSY). */
void client_get_via_master(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *sst,
		      uint8_t *served, int *again);
/* Whether a put of this client goes to the master (client.put_via_master):
 * every route it has seen named the master's own node. */
int client_put_via_wanted(struct kvn_client *c);
/* PUT items idx[0..n) to the master (see master_fwd.c).  Items the peer of
 * the master's process answered get their status in st[] (and op->rt: the
 * node, the gen); the others are moved to the front of idx and counted in
 * the return value: route them with ROUTE_PUT.  *refused_here is set when
 * an answered item says KVN_ENOSPC or KVN_ECONN (exclude that node). */
uint32_t client_put_via_master(struct kvn_client *c, struct client_op *op, uint32_t *idx, uint32_t n, int *st,
			       uint8_t put_flags, int *refused_here);

/* client_queue.c */
/* A put's flags (enum kvn_put_flags) as the items header's PROTO_PUT_*:
 * 0 with *wire set, or KVN_EINVAL for a bit outside CLIENT_PUT_FLAGS or
 * KVN_PUT_RETAIN without KVN_PUT_QUEUE.  A queue put is durable. */
int client_put_wire_flags(unsigned flags, uint8_t *wire);

/* client_async.c */
/* kvn_close: wait for every async put (bounded by their deadlines), run
 * the success callbacks, then drop what is left. */
void client_async_close(struct kvn_client *c);
/* client_free, after the loop is gone: free every async put record. */
void client_async_fini(struct kvn_client *c);
/* client_submit.c */
/* kvn_close: wait for every submission (bounded by their deadlines), stop
 * the progress thread, drop completions not reaped. */
void client_submit_close(struct kvn_client *c);
/* Add the counters of c's submissions (its internal client's, as of its
 * last finished submission) to st. */
struct client_stats;
void client_submit_stats_add(const struct kvn_client *c, struct client_stats *st);
/* client_api.c */
/* Thread-local detail for failures before a client exists (kvn_connect). */
void client_set_last_detail(const char *s);
/* The rounds of a get-like call of kind (WIRE_GET, EXISTS, REMOVE, PIN,
 * UNPIN, EVICT_KEY) over items: route with ROUTE_GET, one request per
 * destination peer, re-route what raced a put.  alloc: kvn_batch_get's
 * malloc'd buffers; want_gen: get by generation (or NULL); ttl_ms: PIN's.
 * Returns 0 or the first item error (per item in items[i].status). */
int client_get_like(struct kvn_client *c, struct kvn_item *items, size_t n, int kind, int alloc,
		    const uint64_t *want_gen, uint64_t ttl_ms);

#endif
