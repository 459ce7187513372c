/*
 * peer: the peer actor's life with its master.  Owns attaching, heartbeats,
 * the event outbox (every event stays queued until the master acknowledges
 * its seq; a failed send or heartbeat re-ships, nothing drained is dropped),
 * the replies held until their events are acknowledged, and the dispatch
 * of every message the peer actor receives.  The full sync is in
 * peer_sync.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "peer/peer_int.h"
#include "auth/auth.h"
#include "base/base.h"

#define SCRATCH_LEN (64 * 1024)
#define WAITER_MAX 65536
#define WAITER_MAX_AGE_MS (10ull * 60 * 1000)
#define ATTACH_BACKOFF_MAX_MS (30ull * 1000) /* re-attach retries grow to this */


void peer_store_put(struct peer_store *st)
{
	if (st && __atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		keytab_free(st->kt);
		alloc_arena_free(st->arena);
		pthread_mutex_destroy(&st->mu);
		free(st);
	}
}

void peer_fill_node(struct peer *p, struct proto_node *n)
{
	struct keytab_stats ks;
	memset(n, 0, sizeof *n);
	snprintf(n->node_id, sizeof n->node_id, "%s", p->node_id);
	snprintf(n->addr, sizeof n->addr, "%s", p->advertise);
	n->boot_id = p->boot_id;
	n->dram_total = p->o.dram_size;
	n->disk_total = p->disk_on ? p->o.disk_size : 0;
	n->disk_used = p->disk_on ? p->disk_used : 0;
	keytab_get_stats(p->st->kt, &ks);
	uint64_t used = p->o.dram_size - alloc_free_bytes(p->st->arena);
	n->dram_pending = ks.pending_bytes < used ? ks.pending_bytes : used;
	n->dram_used = used - n->dram_pending;
	n->last_seq = p->last_seq;
	n->keys = ks.keys;
	n->max_gen = ks.max_gen;
	n->page_size = alloc_page_size(p->st->arena);
	/* what eviction could free: the master places there when DRAM is
	 * full everywhere; never above the total (the decoder refuses it) */
	n->dram_evictable = peer_evictable(p);
	if (n->dram_evictable > n->dram_used)
		n->dram_evictable = n->dram_used;
	if (p->o.evict == KVN_EVICT_LRU)
		n->flags |= PROTO_NODE_EVICTS;
}

/* ---- held replies ---- */

/* Hold the reply (type, meta) to `to` until the events up to seq are
 * acknowledged (applied, or committed when durable).  Takes meta. */
static void waiter_add(struct peer *p, actor_id to, uint64_t corr, uint16_t type, uint64_t seq, int durable,
		       uint8_t *meta, uint32_t meta_len)
{
	struct peer_waiter *w = kvn_xcalloc(1, sizeof *w);
	w->to = to;
	w->corr = corr;
	w->type = type;
	w->seq = seq;
	w->since_ms = kvn_now_ms();
	w->meta = meta;
	w->meta_len = meta_len;
	if (durable)
		TAILQ_INSERT_TAIL(&p->wait_durable, w, link);
	else
		TAILQ_INSERT_TAIL(&p->wait_applied, w, link);
	p->nwaiters++;
}

void peer_reply_after_ack(struct peer *p, struct actor_msg *m, struct wire_w *w, uint64_t last, int durable)
{
	struct actor_msg tmp = { 0 };

	if (last == 0) {
		proto_reply(p->self, m, w, NULL, 0);
		return;
	}
	if (wire_w_to_msg(w, &tmp) != 0) {
		wire_w_fini(w);
		actor_reply_status(p->self, m, KVN_ENOMEM);
		return;
	}
	waiter_add(p, m->src, m->corr, m->type, last, durable, tmp.meta, tmp.meta_len);
	peer_ship(p);
}

uint64_t peer_overwritten_seq(const struct peer *p, int durable)
{
	uint64_t have = durable && p->durable_seq < p->acked_seq ? p->durable_seq : p->acked_seq;
	return p->last_seq > have ? p->last_seq : 0;
}

static void waiter_send(struct peer *p, struct peer_waiter *w, int status)
{
	struct actor_msg *r = actor_msg_new(w->type);
	r->flags = WIRE_F_REPLY;
	r->corr = w->corr;
	r->status = status;
	r->src = actor_id_of(p->self);
	r->meta = w->meta;
	r->meta_len = w->meta_len;
	w->meta = NULL;
	if (!w->corr || actor_send(w->to, r) != 0)
		actor_msg_free(r);
	free(w->meta);
	free(w);
	p->nwaiters--;
}

static void release_waiters(struct peer *p)
{
	struct peer_waiter *w;
	while ((w = TAILQ_FIRST(&p->wait_applied)) && w->seq <= p->acked_seq) {
		TAILQ_REMOVE(&p->wait_applied, w, link);
		waiter_send(p, w, 0);
	}
	while ((w = TAILQ_FIRST(&p->wait_durable)) && w->seq <= p->durable_seq && w->seq <= p->acked_seq) {
		TAILQ_REMOVE(&p->wait_durable, w, link);
		waiter_send(p, w, 0);
	}
}

/* The master's COMMIT of the events up to upto failed: their durable puts
 * are answered KVN_EDB now, the reason as the reply's metadata (str), not
 * left to time out.  The events stay applied; the master repairs its
 * master.db rows from this node's full sync once it can write again. */
static void fail_durable(struct peer *p, uint64_t upto, const char *why)
{
	struct peer_waiter *w;

	while ((w = TAILQ_FIRST(&p->wait_durable)) && w->seq <= upto) {
		struct wire_w ww;
		TAILQ_REMOVE(&p->wait_durable, w, link);
		free(w->meta);
		w->meta = NULL;
		w->meta_len = 0;
		wire_w_init(&ww);
		wire_w_str(&ww, why[0] ? why : "master.db write failed");
		struct actor_msg tmp = { 0 };
		if (wire_w_to_msg(&ww, &tmp) == 0) {
			w->meta = tmp.meta;
			w->meta_len = tmp.meta_len;
		} else {
			wire_w_fini(&ww);
		}
		p->stats.durable_failed++;
		waiter_send(p, w, KVN_EDB);
	}
}

/* The callers of very old waiters gave up long ago (their deadline is far
 * shorter); a master that stays away must not grow this list forever.  The
 * events themselves stay in the outbox. */
static void expire_waiters(struct peer *p)
{
	uint64_t now = kvn_now_ms();
	uint32_t dropped = 0;
	struct peer_waiter *w;

	for (int q = 0; q < 2; q++) {
		TAILQ_HEAD(, peer_waiter) *h = q ? (void *)&p->wait_durable : (void *)&p->wait_applied;
		while ((w = TAILQ_FIRST(h)) && (now - w->since_ms > WAITER_MAX_AGE_MS || p->nwaiters > WAITER_MAX)) {
			TAILQ_REMOVE(h, w, link);
			waiter_send(p, w, KVN_ETIMEDOUT);
			dropped++;
		}
	}
	if (dropped) {
		p->stats.waiters_dropped += dropped;
		log_warn("%u put/remove repl(ies) still waiting for the master were answered KVN_ETIMEDOUT",
			 dropped);
	}
}

void peer_process_ack(struct peer *p, const struct proto_ack *a)
{
	struct peer_event *e;

	if (a->applied_seq > p->acked_seq)
		p->acked_seq = a->applied_seq > p->last_seq ? p->last_seq : a->applied_seq;
	if (a->durable_seq > p->durable_seq)
		p->durable_seq = a->durable_seq;
	while ((e = TAILQ_FIRST(&p->outbox)) && e->seq <= p->acked_seq) {
		TAILQ_REMOVE(&p->outbox, e, link);
		free(e);
	}
	release_waiters(p);
}

/* ---- outbox ---- */

uint64_t peer_event_add(struct peer *p, uint8_t kind, const uint8_t *key, uint16_t klen, uint64_t gen,
			uint8_t tier, uint64_t size, uint8_t flags)
{
	struct peer_event *e = kvn_xmalloc(sizeof *e + klen);
	e->seq = ++p->last_seq;
	e->kind = kind;
	e->tier = tier;
	e->flags = flags;
	e->klen = klen;
	e->gen = gen;
	e->size = size;
	memcpy(e->key, key, klen);
	TAILQ_INSERT_TAIL(&p->outbox, e, link);
	return e->seq;
}

static void peer_attach(struct peer *p);
static void peer_grant_key(struct peer *p);

/* The next attach waits for the backoff's next (jittered, growing) delay. */
void peer_attach_later(struct peer *p)
{
	p->attach_at_ms = kvn_now_ms() + kvn_backoff_next(&p->attach_bo);
}

/* A batch that was not acknowledged goes again after the backoff's next
 * delay (at most a heartbeat: the tick ships it then at the latest). */
static void ship_later(struct peer *p)
{
	p->ship_at_ms = kvn_now_ms() + kvn_backoff_next(&p->ship_bo);
}

/* Not attached, and why: one line when that changes, not one per try. */
static void link_down(struct peer *p, int why)
{
	int state = why == KVN_EAUTH || why == KVN_EVERSION || why == KVN_EPERM ? LINK_REFUSED : LINK_FAILED;

	if (p->link_state == state && p->refused_why == why)
		return;
	p->link_state = state;
	p->refused_why = why;
	if (state == LINK_REFUSED)
		log_warn("not attached to the master: it refused this peer (%s: check auth.peer_secret_file on "
			 "both); retrying with backoff",
			 kvn_strerror(why));
	else
		log_warn("not attached to the master: %s; retrying with backoff", kvn_strerror(why));
}

/* The forbidden behaviour, for the simulation test only (see
 * peer_opts.unsafe_forget_unacked): events drained for a send that failed
 * are dropped, their puts answered, and later events renumbered. */
static void forget_shipped(struct peer *p)
{
	struct peer_event *e, *next;
	struct peer_waiter *w;
	uint64_t lo = p->acked_seq + 1, hi = p->shipped_upto, k;

	if (hi < lo)
		return;
	k = hi - lo + 1;
	for (e = TAILQ_FIRST(&p->outbox); e; e = next) {
		next = TAILQ_NEXT(e, link);
		if (e->seq <= hi) {
			TAILQ_REMOVE(&p->outbox, e, link);
			free(e);
		} else {
			e->seq -= k;
		}
	}
	p->last_seq -= k;
	for (int q = 0; q < 2; q++) {
		TAILQ_HEAD(, peer_waiter) *h = q ? (void *)&p->wait_durable : (void *)&p->wait_applied;
		struct peer_waiter *wn;
		for (w = TAILQ_FIRST(h); w; w = wn) {
			wn = TAILQ_NEXT(w, link);
			if (w->seq <= hi) {
				TAILQ_REMOVE(h, w, link);
				waiter_send(p, w, 0);
			} else {
				w->seq -= k;
			}
		}
	}
}

static int on_events(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct peer *p = actor_state(self);
	struct proto_ack a;
	(void)arg;

	p->shipping = 0;
	if (err || !reply) {
		/* events stay queued; shipped again after a (growing) delay */
		log_debug("events not acknowledged: %s", kvn_strerror(err));
		ship_later(p);
		if (p->o.unsafe_forget_unacked)
			forget_shipped(p);
		return 0;
	}
	if (reply->status == KVN_ECONN) {
		p->attached = 0;
		if (p->o.unsafe_forget_unacked)
			forget_shipped(p);
		return 0;
	}
	if (reply->status == KVN_EBUSY) {
		/* the master's SQLite writer is behind: keep the events and
		 * ship them again after a (growing) delay, not with every put */
		if (proto_ack_dec(reply, &a) == 0 && !a.need_full_sync)
			peer_process_ack(p, &a);
		ship_later(p);
		return 0;
	}
	if (proto_ack_dec(reply, &a) != 0 || reply->status != 0 || a.need_full_sync) {
		uint64_t suppressed = 0;
		if (reply->status != KVN_ESTATE && !a.need_full_sync && kvn_ratelimit_ok(&p->rl_refused, &suppressed))
			log_warn("master refused events: %s; attaching again with backoff (%llu such lines suppressed)",
				 kvn_strerror(reply->status), (unsigned long long)suppressed);
		p->attached = 0;
		/* not at once: a batch the master keeps refusing must not become
		 * a re-attach and re-ship loop at full speed */
		peer_attach_later(p);
		peer_attach(p);
		return 0;
	}
	kvn_backoff_reset(&p->attach_bo); /* the stream flows */
	kvn_backoff_reset(&p->ship_bo);
	p->ship_at_ms = 0;
	peer_process_ack(p, &a);
	peer_ship(p);
	return 0;
}

void peer_ship(struct peer *p)
{
	struct peer_event *e;
	struct wire_w w;
	uint32_t n = 0, bytes = 0;

	if (!p->attached || p->syncing || p->shipping || TAILQ_EMPTY(&p->outbox) ||
	    (p->ship_at_ms && kvn_now_ms() < p->ship_at_ms))
		return;
	TAILQ_FOREACH(e, &p->outbox, link) {
		bytes += 32u + e->klen;
		if (bytes > PEER_META_BUDGET || n >= PROTO_MAX_ITEMS)
			break;
		n++;
	}
	wire_w_init(&w);
	proto_events_begin(&w, p->node_id, p->boot_id, n);
	e = TAILQ_FIRST(&p->outbox);
	for (uint32_t i = 0; i < n; i++, e = TAILQ_NEXT(e, link)) {
		struct proto_event pe = { .seq = e->seq, .kind = e->kind, .key = e->key, .klen = e->klen,
					  .gen = e->gen, .tier = e->tier, .size = e->size, .flags = e->flags };
		proto_events_add(&w, &pe);
	}
	struct actor_msg *m = actor_msg_new(WIRE_EVENTS);
	if (wire_w_to_msg(&w, m) != 0 ||
	    actor_call(p->self, p->master, m, p->o.call_timeout_ms, on_events, NULL) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return;
	}
	p->shipping = 1;
	p->shipped_upto = TAILQ_FIRST(&p->outbox)->seq + n - 1;
	p->stats.events_shipped += n;
}

/* ---- attach and heartbeat ---- */

static int on_attach(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct peer *p = actor_state(self);
	struct proto_ack a;
	(void)arg;

	p->attaching = 0;
	if (err || !reply || reply->status != 0 || proto_ack_dec(reply, &a) != 0) {
		int why = err ? err : reply ? reply->status : KVN_EPROTO;
		link_down(p, why);
		peer_attach_later(p);
		return 0;
	}
	p->attached = 1;
	p->epoch = a.epoch;
	/* the link is up now (an attach queued before it was could not derive
	 * its key): the same bytes the master derived from its end */
	peer_grant_key(p);
	if (p->link_state != LINK_ATTACHED || a.need_full_sync)
		log_info("attached to the master (epoch %u)%s", a.epoch, a.need_full_sync ? ": full sync" : "");
	p->link_state = LINK_ATTACHED;
	p->refused_why = 0;
	if (TAILQ_EMPTY(&p->outbox))
		kvn_backoff_reset(&p->attach_bo); /* else: once the master takes them */
	if (a.need_full_sync) {
		peer_sync_start(p);
		return 0;
	}
	peer_process_ack(p, &a);
	peer_ship(p);
	return 0;
}

/* The key the master's grants are checked with, for the attachment about
 * to be made: from the link to the master (the master derives the same
 * from its end when the attach arrives), or, for a master of this process,
 * from the process's secret and our boot id. */
static void peer_grant_key(struct peer *p)
{
	uint8_t mat[AUTH_MAC_LEN];
	struct auth_grant_key *g = NULL;
	int rc = net_link_material(actor_loop_of(p->self), p->master, AUTH_GRANT_LABEL, mat);

	if (rc == KVN_EINVAL)
		rc = auth_grant_local_material(p->boot_id, mat);
	if (rc == 0)
		rc = auth_grant_key_new(mat, &g);
	OPENSSL_cleanse(mat, sizeof mat);
	auth_grant_key_free(p->gkey);
	p->gkey = g; /* NULL (no link yet): every put is refused until attached */
	if (rc)
		log_debug("no grant key yet: %s", kvn_strerror(rc));
}

static void peer_attach(struct peer *p)
{
	struct proto_node n;
	struct actor_msg *m;

	if (p->attaching || p->syncing || !p->master || p->left || kvn_now_ms() < p->attach_at_ms)
		return;
	peer_grant_key(p); /* grants of an earlier attachment stop working */
	p->stats.attach_tries++;
	peer_fill_node(p, &n);
	m = actor_msg_new(WIRE_PEER_ATTACH);
	if (proto_node_enc(m, &n) != 0 ||
	    actor_call(p->self, p->master, m, p->o.call_timeout_ms, on_attach, NULL) != 0) {
		actor_msg_free(m);
		return;
	}
	p->attaching = 1;
}

static int on_heartbeat(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct peer *p = actor_state(self);
	struct proto_ack a;
	(void)arg;

	if (err || !reply || reply->status != 0 || proto_ack_dec(reply, &a) != 0)
		return 0; /* the next tick tries again; events stay queued */
	if (a.need_full_sync) {
		p->attached = 0;
		peer_attach(p);
		return 0;
	}
	peer_process_ack(p, &a);
	return 0;
}

static void heartbeat_tick(struct actor *self, void *arg)
{
	struct peer *p = actor_state(self);
	(void)arg;

	peer_reap(p);
	peer_slot_tick(p);
	expire_waiters(p);
	if (!p->attached) {
		peer_attach(p);
	} else if (!p->syncing) {
		struct proto_node n;
		struct actor_msg *m = actor_msg_new(WIRE_HEARTBEAT);
		peer_fill_node(p, &n);
		if (proto_node_enc(m, &n) != 0 ||
		    actor_call(p->self, p->master, m, p->o.call_timeout_ms, on_heartbeat, NULL) != 0)
			actor_msg_free(m);
		peer_ship(p);
	}
	actor_timer_arm(p->hb_timer, p->o.heartbeat_ms);
}

/* Read leases past peer.read_lease_ttl (peer_data.c): checked four times
 * per TTL, so one is held at most 1.25 x the TTL (and at least every 1 s). */
static uint64_t lease_period(const struct peer *p)
{
	uint64_t t = p->o.read_lease_ttl_ms / 4;
	return t < 25 ? 25 : t > 1000 ? 1000 : t;
}

static void lease_tick(struct actor *self, void *arg)
{
	struct peer *p = actor_state(self);
	(void)arg;
	peer_lease_tick(p);
	actor_timer_arm(p->lease_timer, lease_period(p));
}

/* ---- the actor: messages from the master ---- */

static void peer_on_net_up(struct peer *p, struct actor_msg *m)
{
	(void)m;
	peer_attach(p);
}

static void peer_on_net_down(struct peer *p, struct actor_msg *m)
{
	p->attached = 0;
	p->shipping = 0;
	link_down(p, m->status ? m->status : KVN_ECONN);
}

/* The master's writer committed (or failed to commit) events. */
static void peer_on_durable(struct peer *p, struct actor_msg *m)
{
	uint64_t d, failed;
	char why[PROTO_REASON_MAX];

	if (proto_durable_fail_dec(m, &d, &failed, why) != 0)
		return;
	if (d > p->durable_seq) {
		p->durable_seq = d;
		release_waiters(p);
	}
	if (failed)
		fail_durable(p, failed, why);
}

/* ---- dispatch ---- */

/* Who may send a message type: the master (anything else from another
 * sender, replies included, is ignored) or a data-path requester (a client,
 * or this process's master forwarding; replies ignored, other roles are
 * answered KVN_EAUTH). */
enum peer_from { PEER_FROM_MASTER, PEER_FROM_REQUESTER, PEER_FROM_DISK };

static const struct peer_route {
	uint16_t type;
	uint8_t from;
	void (*fn)(struct peer *p, struct actor_msg *m);
} peer_routes[] = {
	{ NET_UP, PEER_FROM_MASTER, peer_on_net_up },
	{ NET_DOWN, PEER_FROM_MASTER, peer_on_net_down },
	{ WIRE_DROP_GEN, PEER_FROM_MASTER, peer_on_drop_gen },
	{ WIRE_DURABLE, PEER_FROM_MASTER, peer_on_durable },
	{ PEER_DISK_DONE, PEER_FROM_DISK, peer_on_disk_done },
	{ WIRE_PUT, PEER_FROM_REQUESTER, peer_on_put },
	{ WIRE_GET, PEER_FROM_REQUESTER, peer_on_get },
	{ WIRE_EXISTS, PEER_FROM_REQUESTER, peer_on_exists },
	{ WIRE_REMOVE, PEER_FROM_REQUESTER, peer_on_remove },
	{ WIRE_ALLOC_SLOT, PEER_FROM_REQUESTER, peer_on_alloc_slot },
	{ WIRE_COMMIT_SLOT, PEER_FROM_REQUESTER, peer_on_commit_slot },
	{ WIRE_ABORT_SLOT, PEER_FROM_REQUESTER, peer_on_abort_slot },
	{ WIRE_RESOLVE_KEY, PEER_FROM_REQUESTER, peer_on_resolve_key },
	{ WIRE_PIN, PEER_FROM_REQUESTER, peer_on_pin },
	{ WIRE_UNPIN, PEER_FROM_REQUESTER, peer_on_unpin },
	{ WIRE_EVICT_KEY, PEER_FROM_REQUESTER, peer_on_evict_key },
	{ WIRE_LOCAL_MAP, PEER_FROM_REQUESTER, peer_on_local_map },
	{ WIRE_LOCAL_GET, PEER_FROM_REQUESTER, peer_on_local_get },
	{ WIRE_LOCAL_RELEASE, PEER_FROM_REQUESTER, peer_on_local_release },
	{ WIRE_LOCAL_PUT, PEER_FROM_REQUESTER, peer_on_local_put },
	{ PEER_MSG_LEAVE, PEER_FROM_REQUESTER, peer_on_leave_req }, /* internal role only */
};

static const struct peer_route *route_of(uint16_t type)
{
	for (size_t i = 0; i < sizeof peer_routes / sizeof peer_routes[0]; i++)
		if (peer_routes[i].type == type)
			return &peer_routes[i];
	return NULL;
}

static int from_master(const struct peer *p, const struct actor_msg *m)
{
	return m->src == p->master;
}

static int data_role_ok(const struct actor_msg *m)
{
	return m->src_role == AUTH_ROLE_CLIENT || m->src_role == AUTH_ROLE_INTERNAL;
}

static int peer_dispatch(struct actor *self, struct actor_msg *m)
{
	struct peer *p = actor_state(self);
	const struct peer_route *r = route_of(m->type);

	if (r && r->from == PEER_FROM_MASTER) {
		if (from_master(p, m))
			r->fn(p, m);
		else if (m->type == NET_UP || m->type == NET_DOWN)
			peer_local_net(p, m); /* a client's connection */
		return 0;
	}
	if (r && r->from == PEER_FROM_DISK) {
		if (p->disk_on && m->src == p->disk && m->src_role == AUTH_ROLE_INTERNAL)
			r->fn(p, m);
		return 0;
	}
	if (m->flags & WIRE_F_REPLY)
		return 0;
	if (!data_role_ok(m)) {
		if (m->sink_cookie)
			peer_sink_abort(self, m->sink_cookie);
		actor_reply_status(self, m, KVN_EAUTH);
		return 0;
	}
	if (r)
		r->fn(p, m);
	else
		actor_reply_status(self, m, KVN_EPROTO);
	return 0;
}

static void peer_fini(struct actor *self)
{
	struct peer *p = actor_state(self);
	struct peer_event *e;
	struct peer_waiter *w;
	struct peer_put *pp;

	while ((pp = TAILQ_FIRST(&p->receiving)))
		peer_sink_abort(self, pp);
	peer_slot_fini(p);
	peer_local_fini(p);
	peer_tier_fini(p);
	peer_leave_fini(p);
	while ((e = TAILQ_FIRST(&p->outbox))) {
		TAILQ_REMOVE(&p->outbox, e, link);
		free(e);
	}
	for (int q = 0; q < 2; q++) {
		TAILQ_HEAD(, peer_waiter) *h = q ? (void *)&p->wait_durable : (void *)&p->wait_applied;
		while ((w = TAILQ_FIRST(h))) {
			TAILQ_REMOVE(h, w, link);
			waiter_send(p, w, KVN_ECLOSED);
		}
	}
	peer_store_put(p->st);
	auth_grant_key_free(p->gkey);
	free(p->scratch);
	free((char *)p->o.node_id);
	free((char *)p->o.advertise);
	free((char *)p->o.disk_dir);
	free((char *)p->o.disk_db);
	free(p);
}

static const struct actor_ops peer_ops = {
	.name = "peer",
	.handle = peer_dispatch,
	.sink = peer_sink,
	.sink_abort = peer_sink_abort,
	.fini = peer_fini,
};

int peer_start(struct actor_loop *loop, const struct peer_opts *o, struct actor **out, char *err,
	       size_t errlen)
{
	struct peer *p = kvn_xcalloc(1, sizeof *p);
	int rc;

	p->o = *o;
	p->o.node_id = kvn_xstrdup(o->node_id);
	p->o.advertise = kvn_xstrdup(o->advertise);
	p->o.disk_dir = o->disk_dir ? kvn_xstrdup(o->disk_dir) : NULL;
	p->o.disk_db = o->disk_db ? kvn_xstrdup(o->disk_db) : NULL;
	TAILQ_INIT(&p->cold);
	snprintf(p->node_id, sizeof p->node_id, "%s", o->node_id);
	snprintf(p->advertise, sizeof p->advertise, "%s", o->advertise);
	TAILQ_INIT(&p->outbox);
	TAILQ_INIT(&p->wait_applied);
	TAILQ_INIT(&p->wait_durable);
	TAILQ_INIT(&p->receiving);
	kvn_ratelimit_init(&p->rl_grant, 10000, 3);
	kvn_ratelimit_init(&p->rl_refused, 10000, 1);
	kvn_backoff_init(&p->attach_bo, o->heartbeat_ms ? o->heartbeat_ms : 100, ATTACH_BACKOFF_MAX_MS);
	kvn_backoff_init(&p->ship_bo, 10, o->heartbeat_ms ? o->heartbeat_ms : 100);
	p->st = kvn_xcalloc(1, sizeof *p->st);
	p->st->refs = 1;
	{
		pthread_mutexattr_t ma;
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&p->st->mu, &ma);
		pthread_mutexattr_destroy(&ma);
	}
	rc = alloc_arena_new(o->dram_size, o->page_size, o->hugepages, &p->st->arena);
	if (rc) {
		snprintf(err, errlen, "peer.dram_size: cannot map a %llu-byte arena: %s",
			 (unsigned long long)o->dram_size, kvn_strerror(rc));
		pthread_mutex_destroy(&p->st->mu);
		free(p->st);
		free((char *)p->o.node_id);
		free((char *)p->o.advertise);
		free((char *)p->o.disk_dir);
		free((char *)p->o.disk_db);
		free(p);
		return rc;
	}
	p->st->kt = keytab_new(p->st->arena);
	p->scratch = kvn_xmalloc(SCRATCH_LEN);
	kvn_random(&p->boot_id, sizeof p->boot_id);
	rc = actor_spawn(loop, &peer_ops, p, o->mailbox, &p->self);
	if (rc == 0)
		actor_set_lock(p->self, &p->st->mu);
	if (rc) {
		snprintf(err, errlen, "cannot start the peer actor: %s", kvn_strerror(rc));
		peer_store_put(p->st);
		free(p->scratch);
		free((char *)p->o.node_id);
		free((char *)p->o.advertise);
		free((char *)p->o.disk_dir);
		free((char *)p->o.disk_db);
		free(p);
		return rc;
	}
	rc = peer_tier_start(p, err, errlen);
	if (rc) {
		actor_destroy(p->self); /* fini frees the rest */
		return rc;
	}
	p->hb_timer = actor_timer_new(p->self, heartbeat_tick, NULL);
	actor_timer_arm(p->hb_timer, 0);
	kvn_ratelimit_init(&p->lease_rl, 10000, 3);
	if (p->o.read_lease_ttl_ms) {
		p->lease_timer = actor_timer_new(p->self, lease_tick, NULL);
		actor_timer_arm(p->lease_timer, lease_period(p));
	}
	*out = p->self;
	return 0;
}

void peer_dump(struct actor *peer, peer_dump_fn fn, void *arg)
{
	struct peer *p = actor_state(peer);
	keytab_foreach(p->st->kt, fn, arg);
}

int peer_flip_byte(struct actor *peer, const void *key, size_t klen)
{
	struct peer *p = actor_state(peer);
	struct keytab_view v;
	int rc = keytab_lookup(p->st->kt, key, klen, 0, &v);

	if (rc)
		return rc;
	if (!v.in_dram || v.next < 1 || v.size == 0)
		return KVN_ESTATE;
	((uint8_t *)alloc_addr(p->st->arena, v.ext[0].page))[0] ^= 0x01;
	return 0;
}

pthread_mutex_t *peer_lock(struct actor *peer)
{
	struct peer *p = actor_state(peer);
	return &p->st->mu;
}

void peer_keytab_stats(struct actor *peer, struct keytab_stats *st)
{
	struct peer *p = actor_state(peer);
	keytab_get_stats(p->st->kt, st);
}

void peer_set_master(struct actor *peer, actor_id master)
{
	struct peer *p = actor_state(peer);
	p->master = master;
}

void peer_opts_from_conf(struct peer_opts *po, const struct kvn_conf *c)
{
	memset(po, 0, sizeof *po);
	po->node_id = c->node_id;
	po->advertise = c->peer_advertise;
	po->dram_size = c->peer_dram_size;
	po->page_size = c->peer_page_size;
	po->hugepages = c->peer_hugepages;
	po->heartbeat_ms = c->peer_heartbeat_interval;
	po->pending_ttl_ms = c->peer_pending_ttl;
	po->read_lease_ttl_ms = c->peer_read_lease_ttl;
	po->max_value_size = c->node_max_value_size;
	po->mailbox = (uint32_t)c->node_mailbox_size;
	po->call_timeout_ms = c->client_timeout;
	po->evict = c->peer_evict;
	po->offload = c->peer_offload;
	po->force_evict = c->peer_force_evict;
	po->promote_on_hit = c->peer_promote_on_hit;
	po->high_watermark = c->peer_high_watermark;
	po->low_watermark = c->peer_low_watermark;
	po->evict_batch = c->peer_evict_batch;
	po->offload_queue_limit = c->peer_offload_queue_limit;
	po->pin_ttl_max_ms = c->peer_pin_ttl_max;
	po->disk_size = c->peer_disk_size;
	po->flush_on_stop = c->peer_flush_on_stop;
}
