/*
 * peer_data: the peer's data path.  PUT payloads are received straight into
 * arena pages (the sink reserves PENDING slots before the bytes arrive), GET
 * replies reference arena pages from evbuffer chains whose cleanup releases
 * the read lease, and EXISTS / REMOVE / DROP_GEN act on the key table.  A
 * reply that depends on the master seeing an event waits in peer.c.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "peer/peer_int.h"
#include "base/base.h"
#include "base/metrics.h"

#define SCRATCH_LEN (64 * 1024)

#define GET_COPY_MAX (16 * 1024) /* values up to this are copied into GET replies */
/* bytes of copies per reply chain: with libevent's chain header, a 64 KiB malloc */
#define COPY_CHAIN (64 * 1024 - 256)
#define PREFETCH_MIN 8            /* GET batches this big prefetch their keys first */

struct lease_ref {
	struct peer_store *st;
	uint64_t lease;
	actor_id conn; /* the requester: a connection's proxy, cut at expiry */
};

static uint64_t ext_bytes(const struct alloc_arena *a, const struct alloc_extent *e)
{
	return (uint64_t)e->npages * alloc_page_size(a);
}

static void iov_push(struct peer_put *pp, int *cap, void *base, size_t len)
{
	if (pp->niov == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		struct iovec *n = realloc(pp->iov, (size_t)*cap * sizeof *n);
		if (!n)
			kvn_fatal("out of memory");
		pp->iov = n;
	}
	pp->iov[pp->niov].iov_base = base;
	pp->iov[pp->niov].iov_len = len;
	pp->niov++;
}

/* Bytes of an item we refuse still arrive: they go to the scratch page. */
void peer_iov_discard(struct peer *p, struct peer_put *pp, int *cap, uint64_t size)
{
	while (size > 0) {
		size_t k = size < SCRATCH_LEN ? (size_t)size : SCRATCH_LEN;
		iov_push(pp, cap, p->scratch, k);
		size -= k;
	}
}

/* The first `size` bytes of a slot's pages, extent by extent. */
void peer_iov_extents(struct peer *p, struct peer_put *pp, int *cap, const struct alloc_extent *ext, int next,
		      uint64_t size)
{
	for (int i = 0; i < next && size > 0; i++) {
		uint64_t len = ext_bytes(p->st->arena, &ext[i]);
		if (len > size)
			len = size;
		iov_push(pp, cap, alloc_addr(p->st->arena, ext[i].page), (size_t)len);
		size -= len;
	}
}

/* XXH3-64 over a value's bytes as they sit in its pages. */
uint64_t peer_iov_sum(const struct iovec *iov, int n)
{
	XXH3_state_t st;

	if (n == 1)
		return kvn_xxh3(iov[0].iov_base, iov[0].iov_len);
	XXH3_64bits_reset(&st);
	for (int i = 0; i < n; i++)
		kvn_xxh3_update(&st, iov[i].iov_base, iov[i].iov_len);
	return XXH3_64bits_digest(&st);
}

/* Per item: key copy and gen, so an abort needs nothing from the frame. */
struct put_key {
	uint64_t gen;
	uint64_t sum;      /* the writer's checksum of the value */
	int iov_lo, iov_n; /* where its bytes land in pp->iov */
	uint16_t klen;
	uint8_t key[WIRE_MAX_KEY];
};
/* put_begin puts the checksum array right after the keys */
_Static_assert(sizeof(struct put_key) % sizeof(uint64_t) == 0, "put_key keeps uint64_t alignment");

void peer_put_free(struct peer_put *pp)
{
	if (!pp)
		return;
	free(pp->status);
	free(pp->iov);
	free(pp);
}

static struct put_key *put_keys(struct peer_put *pp)
{
	return (struct put_key *)(pp + 1);
}

/* ---- grants ---- */

int peer_grants_find(const uint8_t *meta, uint32_t meta_len, struct wire_r *g)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	if (proto_items_open(&r, meta, meta_len, &flags, &n) != 0)
		return KVN_EPROTO;
	for (uint32_t i = 0; i < n; i++)
		if (proto_items_next(&r, &it) != 0)
			return KVN_EPROTO;
	return proto_grants_open(&r, n, g);
}

int peer_grant_check(struct peer *p, const struct proto_item *it, const struct proto_grant *g, uint64_t wall)
{
	const char *why = NULL;
	int rc = KVN_EAUTH;

	if (it->gen == 0 || it->gen > PROTO_GEN_MAX) {
		why = "a generation the master never hands out";
		rc = KVN_EPROTO;
	} else if (!p->gkey) {
		why = "not attached to the master";
	} else if (!g) {
		why = "no grant";
	} else if (g->expiry_ms + PROTO_GRANT_SKEW_MS < wall) {
		why = "grant expired";
	} else if (g->expiry_ms > wall + PROTO_GRANT_TTL_MS + PROTO_GRANT_SKEW_MS) {
		why = "grant expires too late (clocks apart?)";
	} else if (it->size > g->size) {
		why = "larger than the grant's size";
	} else if (auth_grant_check(p->gkey, p->node_id, it->key, it->klen, it->gen, g->size, g->expiry_ms,
				    g->mac) != 0) {
		why = "grant not issued by our master for this key, generation and size";
	} else {
		return 0;
	}
	p->stats.grants_refused++;
	uint64_t suppressed = 0;
	if (kvn_ratelimit_ok(&p->rl_grant, &suppressed)) {
		char key[80];
		kvn_str_quote(key, sizeof key, it->key, it->klen);
		log_warn("refused to store key %s gen %llu: %s (%llu more such lines suppressed)", key,
			 (unsigned long long)it->gen, why, (unsigned long long)suppressed);
	}
	return rc;
}

int peer_put_flags(uint8_t items_flags, uint32_t *kt_flags, uint8_t *ev_flags)
{
	int queue = (items_flags & PROTO_PUT_QUEUE) != 0, retain = (items_flags & PROTO_PUT_RETAIN) != 0;
	int durable = (items_flags & PROTO_PUT_DURABLE) != 0;

	*kt_flags = 0;
	*ev_flags = 0;
	/* a sample the master would hand out before it is in master.db could
	 * be lost by a master crash after a consumer took it; retain means
	 * nothing outside the queue */
	if ((retain && !queue) || (queue && !durable))
		return KVN_EINVAL;
	*kt_flags = (queue ? KEYTAB_F_QUEUE : 0) | (retain ? KEYTAB_F_RETAIN : 0);
	*ev_flags = (uint8_t)((durable ? PROTO_EV_F_DURABLE : 0) | peer_ev_flags(*kt_flags));
	return 0;
}

/* A PENDING slot for one item, with its checksum and expiry.  No room: an
 * eviction round first, then once more (peer_make_room), so a put never
 * fails for room while values can be evicted. */
/* Asked from a connection on another I/O loop: an eviction round sends to
 * the disk writer and arms timers, which only the peer's loop may do, so
 * that PUT is declined (buffered) and reserved again there. */
#define PUT_DECLINE 1

static int put_reserve(struct peer *p, const struct proto_item *it, uint32_t kt_flags, uint64_t now,
		       struct keytab_view *v, int foreign)
{
	struct keytab_attrs at = { .checksum = it->checksum, .flags = kt_flags,
				   .expires_ms = it->ttl_ms ? now + it->ttl_ms : 0 };
	int rc = keytab_begin(p->st->kt, it->key, it->klen, it->gen, it->size, now, p->o.pending_ttl_ms, &at, v);

	if (rc == KVN_ENOSPC && foreign)
		return PUT_DECLINE;
	if (rc == KVN_ENOSPC && (rc = peer_make_room(p, it->size)) == 0)
		rc = keytab_begin(p->st->kt, it->key, it->klen, it->gen, it->size, now, p->o.pending_ttl_ms, &at, v);
	return rc;
}

/* Reserve slots for every item of a PUT; items that cannot be stored get a
 * status and a discard region.  Also used without a sink (payload already
 * buffered, or empty).  Nothing is reserved for an item whose grant from
 * the master does not check (peer_grant_check): the client cannot choose a
 * generation. */
static int put_begin(struct peer *p, const uint8_t *meta, uint32_t meta_len, uint64_t payload_len,
		     int foreign, struct peer_put **out)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t total = 0, now = kvn_now_ms(), wall = kvn_wall_ms();
	int cap = 0;
	struct wire_r gr;
	int has_grants = peer_grants_find(meta, meta_len, &gr);

	if (has_grants < 0 || proto_items_open(&r, meta, meta_len, &flags, &n) != 0)
		return KVN_EPROTO;
	/* every value comes with its writer's checksum: stored without one,
	 * it would fail every reader's check */
	if (!(flags & PROTO_ITEMS_SUM))
		return KVN_EPROTO;
	uint32_t kt_flags;
	uint8_t ev_flags;
	int flags_rc = peer_put_flags(flags, &kt_flags, &ev_flags);
	/* one block: the put, its keys, and the arrays its connection fills
	 * with each item's checksum as the bytes land (peer_sink) */
	struct peer_put *pp = calloc(1, sizeof *pp + (size_t)n * (sizeof(struct put_key) + sizeof(uint64_t) + sizeof(int)));
	if (!pp)
		return KVN_ENOMEM;
	pp->seg_sum = (uint64_t *)(put_keys(pp) + n);
	pp->seg_niov = (int *)(pp->seg_sum + n);
	pp->n = n;
	pp->status = kvn_xcalloc(n, sizeof *pp->status);
	pp->started_ms = now;
	for (uint32_t i = 0; i < n; i++) {
		struct keytab_view v;
		int rc;
		/* sizes must add up to the payload before anything is reserved
		 * or discarded for them: an item claiming 2^63 bytes would
		 * otherwise get a discard iovec per 64 KiB (fuzz_peer) */
		if (proto_items_next(&r, &it) != 0 || it.size > payload_len - total) {
			pp->n = i;
			peer_sink_abort(p->self, pp);
			return KVN_EPROTO;
		}
		memcpy(put_keys(pp)[i].key, it.key, it.klen);
		put_keys(pp)[i].klen = it.klen;
		put_keys(pp)[i].gen = it.gen;
		put_keys(pp)[i].sum = it.checksum;
		put_keys(pp)[i].iov_lo = pp->niov;
		total += it.size;
		struct proto_grant g;
		if (has_grants)
			proto_grants_next(&gr, &g);
		if ((rc = peer_grant_check(p, &it, has_grants ? &g : NULL, wall)) != 0)
			; /* refused: its bytes are discarded */
		else if (flags_rc)
			rc = flags_rc; /* authentic, but not a combination we store */
		else if (it.size > p->o.max_value_size)
			rc = KVN_ETOOBIG;
		else
			rc = put_reserve(p, &it, kt_flags, now, &v, foreign);
		if (rc == PUT_DECLINE) {
			pp->n = i;
			peer_sink_abort(p->self, pp);
			return PUT_DECLINE;
		}
		if (rc == KVN_ESTALE)
			rc = PEER_OVERWRITTEN; /* a newer gen is here: read and drop the bytes, answer 0 */
		pp->status[i] = rc;
		if (rc == 0)
			peer_iov_extents(p, pp, &cap, v.ext, v.next, v.size);
		else
			peer_iov_discard(p, pp, &cap, it.size);
		put_keys(pp)[i].iov_n = pp->niov - put_keys(pp)[i].iov_lo;
	}
	if (r.err || (!has_grants && wire_r_end(&r) != 0) || total != payload_len) {
		peer_sink_abort(p->self, pp);
		return KVN_EPROTO;
	}
	*out = pp;
	return 0;
}

int peer_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
	      struct actor_sink *sink)
{
	struct peer *p = actor_state(self);
	struct peer_put *pp;
	int rc;

	if (h->type == WIRE_COMMIT_SLOT && !(h->flags & WIRE_F_REPLY))
		return peer_slot_sink(self, from, h, meta, sink);
	if (h->type == WIRE_LOCAL_PUT && !(h->flags & WIRE_F_REPLY))
		return peer_local_sink(self, from, h, meta, sink);
	if (h->type != WIRE_PUT || (h->flags & WIRE_F_REPLY))
		return 1;
	rc = put_begin(p, meta, h->meta_len, h->payload_len, !actor_loop_on_thread(actor_loop_of(self)), &pp);
	if (rc)
		return rc; /* PUT_DECLINE is actor_ops.sink's 1: buffered */
	pp->from = from;
	TAILQ_INSERT_TAIL(&p->receiving, pp, link);
	sink->iov = pp->iov;
	sink->niov = pp->niov;
	sink->cookie = pp;
	/* the connection sums each item as its bytes land, in cache */
	if (pp->n) {
		for (uint32_t i = 0; i < pp->n; i++)
			pp->seg_niov[i] = put_keys(pp)[i].iov_n;
		sink->seg_niov = pp->seg_niov;
		sink->seg_sum = pp->seg_sum;
		sink->seg_done = &pp->seg_done;
		sink->nseg = (int)pp->n;
	}
	return 0;
}

/* The frame failed (bad tag, connection lost) or was never delivered: give
 * the reserved slots back. */
void peer_sink_abort(struct actor *self, void *cookie)
{
	struct peer *p = actor_state(self);
	struct peer_put *pp = cookie, *q;

	if (peer_slot_sink_abort(p, cookie))
		return; /* a COMMIT_SLOT's receive */
	TAILQ_FOREACH(q, &p->receiving, link)
		if (q == pp) {
			TAILQ_REMOVE(&p->receiving, pp, link);
			break;
		}
	for (uint32_t i = 0; i < pp->n; i++)
		if (pp->status[i] == 0)
			keytab_abort(p->st->kt, put_keys(pp)[i].key, put_keys(pp)[i].klen, put_keys(pp)[i].gen);
	peer_put_free(pp);
}

/* Copy a buffered payload into the reserved pages (transports without a
 * sink, e.g. the simulated network). */
static void put_copy_in(struct peer *p, struct peer_put *pp, struct evbuffer *payload)
{
	for (int i = 0; i < pp->niov; i++)
		evbuffer_remove(payload, pp->iov[i].iov_base, pp->iov[i].iov_len);
}

void peer_on_put(struct peer *p, struct actor_msg *m)
{
	struct peer_put *pp = m->sink_cookie;
	struct wire_w w;
	uint64_t last = 0;
	int durable = 0;
	uint32_t kt_flags = 0;
	uint8_t ev_flags = 0;

	if (m->sink_err) {
		actor_reply_status(p->self, m, m->sink_err);
		return;
	}
	if (pp && pp->reaped) {
		peer_put_free(pp);
		actor_reply_status(p->self, m, KVN_ETIMEDOUT);
		return;
	}
	if (!pp) {
		int rc = put_begin(p, m->meta, m->meta_len, m->payload_len, 0, &pp);
		if (rc) {
			actor_reply_status(p->self, m, rc);
			return;
		}
		if (m->payload)
			put_copy_in(p, pp, m->payload);
	} else {
		TAILQ_REMOVE(&p->receiving, pp, link);
	}
	/* put_begin decoded the header (a bad combination refused every item) */
	if (m->meta_len >= 1 && peer_put_flags(m->meta[0], &kt_flags, &ev_flags) == 0)
		durable = (ev_flags & PROTO_EV_F_DURABLE) != 0;
	wire_w_init(&w);
	proto_results_begin(&w, pp->n);
	for (uint32_t i = 0; i < pp->n; i++) {
		struct put_key *k = &put_keys(pp)[i];
		struct proto_result res = { .status = pp->status[i], .gen = k->gen };
		uint64_t gone = 0;
		/* an empty value has no iovec (pp->iov may be NULL) */
		uint64_t got = res.status != 0 ? 0
			       : pp->seg_done ? pp->seg_sum[i]
					      : peer_iov_sum(k->iov_n ? pp->iov + k->iov_lo : NULL, k->iov_n);
		if (res.status == 0 && pp->peer_sums && k->sum == 0) {
			k->sum = got; /* a same-host writer's: the bytes as stored */
			(void)keytab_set_checksum(p->st->kt, k->key, k->klen, k->gen, got);
		}
		if (res.status == 0 && got != k->sum) {
			/* the bytes that arrived are not the writer's: never
			 * stored, never served (the checksum travels in the
			 * authenticated metadata, the bytes may not) */
			keytab_abort(p->st->kt, k->key, k->klen, k->gen);
			res.status = KVN_ECORRUPT;
			p->stats.put_corrupt++;
		}
		if (res.status == 0) {
			struct keytab_view v;
			res.status = keytab_commit(p->st->kt, k->key, k->klen, k->gen, &gone);
			if (res.status == 0 && gone == k->gen)
				res.status = PEER_OVERWRITTEN;
			else if (res.status == 0 && keytab_lookup(p->st->kt, k->key, k->klen, k->gen, &v) == 0) {
				res.size = v.size;
				last = peer_event_add(p, PROTO_EV_ADD, k->key, k->klen, k->gen, KEYTAB_DRAM, v.size,
						      ev_flags);
				p->stats.puts++;
				p->stats.put_bytes += v.size;
				peer_tier_committed(p, k->key, k->klen, k->gen);
			}
		}
		if (res.status == PEER_OVERWRITTEN) {
			uint64_t seq = peer_overwritten_seq(p, durable);
			res.status = 0;
			if (seq > last)
				last = seq;
		}
		proto_results_add(&w, &res);
	}
	peer_put_free(pp);
	peer_reply_after_ack(p, m, &w, last, durable);
}

static void lease_cleanup(const void *data, size_t len, void *extra)
{
	struct lease_ref *lr = extra;
	(void)data;
	(void)len;
	/* on whichever loop wrote the reply out (peer.io_threads) */
	pthread_mutex_lock(&lr->st->mu);
	keytab_release(lr->st->kt, lr->lease);
	pthread_mutex_unlock(&lr->st->mu);
	peer_store_put(lr->st);
	free(lr);
}

/* ---- read leases past peer.read_lease_ttl ----
 *
 * A GET reply's pages are sent by reference under a read lease, released
 * by the reference's cleanup once the bytes have left.  A reader that stops
 * reading kept it (and a superseded generation's pages) until the
 * connection's 30 s write timeout; peer.read_lease_ttl did nothing.  Now a
 * peer timer expires leases past their deadline: counted, and the
 * connection the reply is queued on is cut, which drops its output and so
 * runs the cleanup that releases the lease and frees the pages.  Never
 * before: the keytab keeps a held lease's pages until that release, so no
 * page under an in-flight write is handed to another put.  An in-process
 * requester's reply is not on a connection; its lease ends when the reply
 * is freed. */

static void lease_expired(void *arg, uint64_t lease_id, void *owner)
{
	struct peer *p = arg;
	struct lease_ref *lr = owner;
	if (peer_local_expired(p, lease_id, owner))
		return; /* a same-host client's lease: stamped, then released */
	/* synchronous: lr may be freed by this (the cleanup) */
	net_abort(actor_loop_of(p->self), lr->conn, KVN_ETIMEDOUT);
}

void peer_lease_tick(struct peer *p)
{
	uint64_t suppressed = 0;
	int n = keytab_expire_leases_fn(p->st->kt, kvn_now_ms(), lease_expired, p);

	if (n <= 0)
		return;
	p->stats.leases_expired += (uint64_t)n;
	if (kvn_ratelimit_ok(&p->lease_rl, &suppressed))
		log_warn("%d read lease(s) held past peer.read_lease_ttl (%llu ms): ended (TCP: connection cut; "
			 "same-host: stamp changed), pages freed (%llu expired in all)",
			 n, (unsigned long long)p->o.read_lease_ttl_ms, (unsigned long long)p->stats.leases_expired);
}

/* ---- GET ---- */


/* A batch: each chunk's cache misses start together, right before the
 * chunk's lookups (keytab_prefetch).  The keys of every item, or NULL for
 * a small request.  r is reopened at the first item. */
static struct keytab_ref *get_prefetch_keys(struct actor_msg *m, struct wire_r *r, uint32_t n)
{
	struct keytab_ref *refs;
	struct proto_item it;
	uint8_t flags;

	if (n < PREFETCH_MIN)
		return NULL;
	refs = kvn_xmalloc(n * sizeof *refs);
	for (uint32_t i = 0; i < n; i++) {
		proto_items_next(r, &it); /* checked by peer_items_check */
		refs[i].key = it.key;
		refs[i].klen = it.klen;
	}
	(void)proto_items_open(r, m->meta, m->meta_len, &flags, &n); /* checked */
	return refs;
}

/* Small values are copied into the reply: committed generations never
 * change, and a copy costs less than a lease, a reference chain and its
 * cleanup (measured on 4 KiB batches).  evbuffer_add alone grows a chain
 * per value (libevent's automatic chains stop at 4 KiB): a malloc per
 * 4 KiB value.  So one chain is made for the copies still to come (items_left
 * of them, this one's size each), up to COPY_CHAIN. */
static void get_copy_value(struct peer *p, struct peer_get_reply *gr, const struct keytab_view *v, uint32_t items_left)
{
	uint64_t left = v->size;

	if (v->size > gr->room) {
		uint64_t want = (uint64_t)items_left * v->size;
		if (want > COPY_CHAIN)
			want = COPY_CHAIN;
		if (want < v->size)
			want = v->size;
		if (evbuffer_expand(gr->payload, (size_t)want) != 0)
			kvn_fatal("out of memory");
		gr->room = want;
	}
	gr->room -= v->size;
	for (int e = 0; e < v->next && left > 0; e++) {
		uint64_t len = ext_bytes(p->st->arena, &v->ext[e]);
		if (len > left)
			len = left;
		left -= len;
		evbuffer_add(gr->payload, alloc_addr(p->st->arena, v->ext[e].page), (size_t)len);
	}
}

/* Larger values are sent from the pages by reference under a read lease
 * that lasts until the bytes have left: the last chain's cleanup releases
 * it, and a connection that stops draining is cut once the lease is past
 * peer.read_lease_ttl (peer_lease_tick), which frees the chains. */
static void get_ref_value(struct peer *p, struct peer_get_reply *gr, const struct keytab_view *v, uint64_t lease)
{
	uint64_t left = v->size;

	gr->room = 0; /* the reference chains come last now */
	for (int e = 0; e < v->next && left > 0; e++) {
		uint64_t len = ext_bytes(p->st->arena, &v->ext[e]);
		const void *src = alloc_addr(p->st->arena, v->ext[e].page);
		struct lease_ref *lr = NULL;
		if (len > left)
			len = left;
		left -= len;
		if (left == 0) {
			lr = kvn_xmalloc(sizeof *lr);
			lr->st = p->st;
			lr->lease = lease;
			lr->conn = gr->conn;
			__atomic_add_fetch(&p->st->refs, 1, __ATOMIC_RELAXED);
			/* past read_lease_ttl the pages stay until this
			 * reference's cleanup (peer_lease_tick) */
			(void)keytab_lease_hold(p->st->kt, lease, lr);
		}
		evbuffer_add_reference(gr->payload, src, (size_t)len, lr ? lease_cleanup : NULL, lr);
	}
}

/* One item: its result, its bytes added to the reply. */
struct proto_result peer_get_one(struct peer *p, struct peer_get_reply *gr, const struct proto_item *it,
				 uint32_t items_left)
{
	struct proto_result res = { 0 };
	struct keytab_view v;
	uint64_t lease = 0;

	res.status = keytab_lookup(p->st->kt, it->key, it->klen, it->gen, &v);
	if (res.status == 0 && !v.in_dram) {
		/* only on disk (evicted since the request was looked at): the
		 * client asks again, and peer_get_cold reads it then */
		res.status = KVN_EBUSY;
		return res;
	}
	if (res.status == 0 && gr->bytes > 0 && v.size > PROTO_MAX_BATCH_PAYLOAD - gr->bytes) {
		/* this value would take the reply past the frame limit (the
		 * first one always fits: values are at most max_value_size,
		 * which the clients' limit covers): the client asks for it
		 * again in another request */
		res.status = KVN_EBUSY;
		return res;
	}
	if (res.status == 0 && v.size > GET_COPY_MAX)
		res.status = keytab_lease(p->st->kt, it->key, it->klen, it->gen, gr->now, p->o.read_lease_ttl_ms,
					  &lease, &v);
	if (res.status == KVN_ENOTFOUND)
		kvn_metric_misses(KVN_METRIC_PEER, 1);
	if (res.status != 0)
		return res;
	res.gen = v.gen;
	res.size = v.size;
	/* the writer's checksum, stored with the value: the client checks
	 * the bytes against it, so a page changed in DRAM is caught too */
	res.checksum = v.checksum;
	if (v.size <= GET_COPY_MAX)
		get_copy_value(p, gr, &v, items_left);
	else
		get_ref_value(p, gr, &v, lease);
	gr->bytes += v.size;
	p->stats.gets++;
	p->stats.get_bytes += v.size;
	kvn_metric_hits(KVN_METRIC_PEER, 1);
	return res;
}

void peer_on_get(struct peer *p, struct actor_msg *m)
{
	struct peer_get_reply gr = { .now = kvn_now_ms(), .conn = m->src };
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	struct keytab_ref *refs;

	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	if (peer_get_cold(p, m))
		return; /* values on disk: answered once they are read */
	refs = get_prefetch_keys(m, &r, n);
	gr.payload = evbuffer_new();
	if (!gr.payload)
		kvn_fatal("out of memory");
	wire_w_init(&gr.w);
	proto_results_begin(&gr.w, n);
	for (uint32_t i = 0; i < n; i++) {
		proto_items_next(&r, &it); /* checked above */
		if (refs && i % KEYTAB_PREFETCH_MAX == 0)
			keytab_prefetch(p->st->kt, refs + i, n - i);
		struct proto_result res = peer_get_one(p, &gr, &it, n - i);
		proto_results_add(&gr.w, &res);
	}
	free(refs);
	proto_reply(p->self, m, &gr.w, gr.payload, 0);
}

/* Decode every item of m before any is acted on: a malformed request
 * changes nothing.  On success *r is reopened at the first item; on error
 * the request has been answered. */
int peer_items_check(struct peer *p, struct actor_msg *m, struct wire_r *r, uint8_t *flags, uint32_t *n)
{
	struct proto_item it;

	if (proto_items_open(r, m->meta, m->meta_len, flags, n) != 0) {
		actor_reply_status(p->self, m, KVN_EPROTO);
		return -1;
	}
	for (uint32_t i = 0; i < *n; i++)
		proto_items_next(r, &it);
	struct wire_r g;
	if (wire_r_end(r) != 0 &&
	    !(m->type == WIRE_ALLOC_SLOT && !r->err && proto_grants_open(r, *n, &g) == 1)) {
		actor_reply_status(p->self, m, r->err == KVN_EKEYLEN ? KVN_EKEYLEN : KVN_EPROTO);
		return -1;
	}
	proto_items_open(r, m->meta, m->meta_len, flags, n);
	return 0;
}

void peer_on_exists(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		struct keytab_view v;
		struct proto_result res = { 0 };
		res.status = keytab_lookup(p->st->kt, it.key, it.klen, it.gen, &v);
		if (res.status == 0) {
			res.gen = v.gen;
			res.size = v.size;
		}
		proto_results_add(&w, &res);
	}
	proto_reply(p->self, m, &w, NULL, 0);
}

void peer_on_remove(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t last = 0;

	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		struct proto_result res = { 0 };
		uint64_t removed = 0;
		res.status = keytab_remove(p->st->kt, it.key, it.klen, it.gen, &removed);
		if (res.status == 0) {
			res.gen = removed;
			last = peer_event_add(p, PROTO_EV_REMOVE, it.key, it.klen, removed, KEYTAB_DRAM, 0, 0);
			p->stats.removes++;
		}
		proto_results_add(&w, &res);
	}
	peer_reply_after_ack(p, m, &w, last, 0);
}

/* The master saw a newer generation elsewhere: free ours.  Not an event:
 * the master's index has already moved on.  A tombstone remembers the move
 * for peer.read_lease_ttl (the longest a get in flight is waited for), so a
 * get or remove routed here before the move answers KVN_ESTALE and the
 * client re-routes, instead of KVN_ENOTFOUND, which reads as "removed". */
void peer_on_drop_gen(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n, dropped = 0;
	uint64_t now = kvn_now_ms();

	if (proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0)
		return;
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++)
		if (it.gen && keytab_supersede(p->st->kt, it.key, it.klen, it.gen, now, p->o.read_lease_ttl_ms) == 0)
			dropped++;
	if (dropped)
		log_debug("dropped %u superseded generation(s) at the master's request", dropped);
}

void peer_reap(struct peer *p)
{
	uint64_t now = kvn_now_ms();
	struct peer_put *pp, *next;
	uint32_t aborted = 0;
	int cutting = 0;

	/* A receive that outlives the pending TTL would have its slots reaped
	 * while the connection still writes into their pages: cut it first.
	 * A connection on another I/O loop is cut by message: until its loop
	 * has aborted the receive (sink_abort, under our lock) or delivered it,
	 * its pages stay reserved and nothing is reaped (next tick). */
	for (pp = TAILQ_FIRST(&p->receiving); pp && now - pp->started_ms >= p->o.pending_ttl_ms; pp = next) {
		next = TAILQ_NEXT(pp, link);
		int local = actor_lookup_local(actor_loop_of(p->self), pp->from) != NULL;
		if (!local && pp->cut) {
			cutting = 1;
			continue;
		}
		int rc = net_abort(actor_loop_of(p->self), pp->from, KVN_ETIMEDOUT);
		if (!local && rc == 0) {
			pp->cut = 1;
			cutting = 1;
			aborted++;
			continue;
		}
		/* cut here and now, or its connection is gone: nobody writes
		 * into its pages any more */
		struct peer_put *q;
		TAILQ_FOREACH(q, &p->receiving, link)
			if (q == pp)
				break; /* pointers only: pp may have been freed */
		if (q) {
			/* Still here: the connection had finished this frame and
			 * its message waits in our mailbox, which still points at
			 * pp.  Give the slots back; the handler frees pp. */
			TAILQ_REMOVE(&p->receiving, pp, link);
			for (uint32_t i = 0; i < pp->n; i++)
				if (pp->status[i] == 0) {
					keytab_abort(p->st->kt, put_keys(pp)[i].key, put_keys(pp)[i].klen,
						     put_keys(pp)[i].gen);
					pp->status[i] = KVN_ETIMEDOUT;
				}
			pp->reaped = 1;
		}
		aborted++;
	}
	if (aborted) {
		p->stats.receive_aborted += aborted;
		log_warn("cut %u connection(s) whose PUT payload took longer than peer.pending_ttl", aborted);
	}
	if (cutting) {
		log_debug("reaper: a cut receive on another loop has not ended yet: nothing reaped");
		return;
	}
	int reaped = keytab_reap(p->st->kt, now, NULL, NULL);
	if (reaped > 0)
		log_info("reclaimed %d pending slot(s) not committed within peer.pending_ttl", reaped);
}
