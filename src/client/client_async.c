/*
 * client_async: async puts (kvn_put_async), kvn_poll, kvn_drain and the
 * drain in kvn_close.  Each async put is a small state machine driven by
 * the client actor's reply callbacks while the caller is inside any call of
 * the client: ROUTE_PUT to the master, then PUT to the peer with the
 * caller's bytes referenced (zero copy), then success, a bounded re-route
 * (as kvn_put: ENOSPC or a lost peer excludes that node), or failure.  As
 * for kvn_put, a first attempt may go to the master with the bytes instead
 * (client.put_via_master, client_via.c); its refusal routes as usual.
 *
 * The caller's buffer is read only while a PUT frame is in flight.  A put
 * is reported only when no frame references its buffer: after the peer's
 * reply (the peer reads the whole payload before answering), after the
 * connection died (its output is dropped with it), or, at the put's
 * deadline, after we cut the connection ourselves.  Success callbacks run
 * only from kvn_poll, kvn_drain and kvn_close, outside the event loop, so a
 * callback may start new puts or make synchronous calls.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

#define AP_MAX_EXCLUDE 16
/* kvn_drain's safety margin past the last deadline: each step of a put is
 * an actor_call whose timer fires at the put's deadline, so this is only
 * ever waited for if that promise broke. */
#define DRAIN_SLACK_MS 2000

struct client_aput {
	TAILQ_ENTRY(client_aput) link;
	kvn_put_done_fn done;
	void *arg;
	const void *val;
	size_t vlen;
	uint64_t checksum; /* of val, computed once at kvn_put_async */
	uint8_t flags; /* PROTO_PUT_* */
	uint64_t deadline_ms;
	uint32_t attempt;
	int master_retried; /* a stale master connection was replaced once */
	int via;            /* the PUT in flight went to the master */
	actor_id mproxy;    /* the master connection the ROUTE_PUT went on */
	int status;
	struct proto_route rt;
	struct client_peer *peer; /* the PUT in flight and the connection it went on */
	actor_id proxy;
	char *exclude[AP_MAX_EXCLUDE];
	uint32_t nexclude;
	int cause; /* why the last node was excluded, if not "no room" */
	uint8_t avoided; /* the last ROUTE_PUT left quarantined peers out */
	uint8_t no_avoid; /* ... and found no room: route with them again */
	/* the master answered "no peer" or "not ready": routed again after a
	 * pause (created on the first one; freed when the put finishes, or
	 * with the client actor) */
	struct actor_timer *pause;
	struct kvn_backoff bo;
	uint16_t klen;
	uint8_t key[];
};

static void aput_free(struct client_aput *ap)
{
	for (uint32_t i = 0; i < ap->nexclude; i++)
		free(ap->exclude[i]);
	free(ap);
}

/* The put is over: no frame references its buffer any more. */
static void aput_finish(struct kvn_client *c, struct client_aput *ap, int status)
{
	TAILQ_REMOVE(&c->aq_flight, ap, link);
	actor_timer_free(ap->pause); /* not armed: the put was in a step */
	ap->pause = NULL;
	/* a connection lost after the put's own deadline (cut for it or for
	 * another put of this client, the master's or the peer's) failed it
	 * for lack of time, whichever step noticed first */
	if ((status == KVN_ECONN || status == KVN_EPEERDOWN || status == KVN_EBUSY) && !c->closing &&
	    kvn_now_ms() >= ap->deadline_ms)
		status = KVN_ETIMEDOUT;
	ap->status = status; /* KVN_ENOSPC: the node tried last had no room */
	if (status == 0) {
		/* our own write: the next get must see it */
		ap->rt.size = ap->vlen;
		client_rc_put(c, ap->key, ap->klen, &ap->rt);
		TAILQ_INSERT_TAIL(&c->aq_done, ap, link);
	} else {
		client_rc_drop(c, ap->key, ap->klen);
		TAILQ_INSERT_TAIL(&c->aq_failed, ap, link);
	}
	c->async_event = 1;
}

static void aput_route(struct kvn_client *c, struct client_aput *ap);

static void aput_wake(struct actor *self, void *arg)
{
	aput_route(actor_state(self), arg);
}

/* The master answered status (KVN_ENOPEER: no peer attached yet, right
 * after its start; KVN_EBUSY: not ready): route again after a pause, as
 * kvn_put does, or give up when too little of the deadline is left. */
static void aput_pause(struct kvn_client *c, struct client_aput *ap, int status)
{
	uint64_t now = kvn_now_ms(), d;

	if (!ap->pause) {
		ap->pause = actor_timer_new(c->self, aput_wake, ap);
		client_pause_init(&ap->bo);
	}
	d = kvn_backoff_next(&ap->bo);
	if (!c->closing && now < ap->deadline_ms && d > (ap->deadline_ms - now) / 2)
		d = (ap->deadline_ms - now) / 2;
	if (c->closing || now >= ap->deadline_ms || d < CLIENT_PAUSE_MIN_MS / 2) {
		aput_finish(c, ap, status == KVN_EBUSY ? KVN_ETIMEDOUT : status);
		return;
	}
	actor_timer_arm(ap->pause, d);
}

/* Try again through the master, or give up with status. */
static void aput_retry(struct kvn_client *c, struct client_aput *ap, int status)
{
	/* KVN_ETIMEDOUT here is one attempt's limit (on_put), not the deadline */
	int again = client_retryable(status) || status == KVN_ETIMEDOUT;

	if (again && !c->closing && kvn_now_ms() >= ap->deadline_ms) {
		aput_finish(c, ap, KVN_ETIMEDOUT); /* it would go on, but its time is up */
		return;
	}
	if (!again || ap->attempt >= c->conf.client_retries || c->closing) {
		aput_finish(c, ap, status);
		return;
	}
	ap->attempt++;
	if (status != KVN_ENOSPC && status != KVN_EBUSY)
		ap->cause = status;
	if ((status == KVN_ENOSPC || status == KVN_ECONN || status == KVN_ETIMEDOUT) &&
	    ap->nexclude < AP_MAX_EXCLUDE) {
		int dup = 0;
		for (uint32_t i = 0; i < ap->nexclude; i++)
			if (strcmp(ap->exclude[i], ap->rt.node_id) == 0)
				dup = 1;
		if (!dup && ap->rt.node_id[0])
			ap->exclude[ap->nexclude++] = kvn_xstrdup(ap->rt.node_id);
	}
	aput_route(c, ap);
}

static int on_put(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct kvn_client *c = actor_state(self);
	struct client_aput *ap = arg;
	struct client_peer *p = ap->peer;
	int st;

	int via = ap->via;

	ap->peer = NULL;
	ap->via = 0;
	if (p && p->inflight)
		p->inflight--;
	if (err == KVN_ETIMEDOUT && p && !via && kvn_now_ms() < ap->deadline_ms && !c->closing) {
		/* the attempt's limit, not the put's deadline: that peer is cut
		 * (nothing may read the buffer after we move on), quarantined and
		 * left out of the next route */
		net_abort(c->loop, ap->proxy, KVN_ETIMEDOUT);
		if (p->proxy == ap->proxy) {
			p->proxy = 0;
			client_quarantine(c, p);
		}
		aput_retry(c, ap, KVN_ETIMEDOUT);
		return 0;
	}
	if (err) {
		if (err == KVN_ETIMEDOUT && (p || via)) {
			/* our deadline, with the frame maybe still queued: cut the
			 * connection so nothing reads the buffer after we report */
			net_abort(c->loop, ap->proxy, KVN_ETIMEDOUT);
			if (via) {
				client_master_drop(c, ap->proxy);
			} else if (p->proxy == ap->proxy) {
				p->proxy = 0;
				client_quarantine(c, p);
			}
		}
		aput_finish(c, ap, err);
		return 0;
	}
	if (via && (reply->status || (reply->flags & WIRE_F_ROUTES))) {
		/* not taken (or an older master, or the connection failed): the
		 * bytes are not in flight any more; route it as usual, this
		 * still being the first attempt */
		if (reply->status == KVN_EPROTO)
			c->via_put_refused = 1;
		aput_route(c, ap);
		return 0;
	}
	st = reply->status ? reply->status : reply->sink_err;
	if (st == KVN_ETIMEDOUT && kvn_now_ms() < ap->deadline_ms)
		st = KVN_ECONN; /* another call's deadline cut the connection */
	if (st == 0) {
		struct wire_r r;
		struct proto_result res;
		uint32_t n;
		if (proto_results_open(&r, reply->meta, reply->meta_len, &n) != 0 || n != 1 ||
		    proto_results_next(&r, &res) != 0) {
			st = KVN_EPROTO;
		} else {
			st = res.status;
			if (via && st == 0) {
				ap->rt.gen = res.gen; /* the master chose it */
				c->stats.via_put_stored++;
			}
		}
	} else if (st == KVN_ECONN && p && (p->proxy == ap->proxy || p->proxy == 0)) {
		/* that connection failed (not a newer one to the same peer) */
		client_quarantine(c, p);
	}
	if (st == 0)
		aput_finish(c, ap, 0);
	else
		aput_retry(c, ap, st);
	return 0;
}

/* The PUT of ap with generation gen: NULL and *rc when it cannot be
 * encoded. */
static struct actor_msg *aput_msg(struct client_aput *ap, uint64_t gen, const struct proto_grant *g, int *rc)
{
	struct actor_msg *m = actor_msg_new(WIRE_PUT);
	struct wire_w w;

	wire_w_init(&w);
	proto_items_begin(&w, ap->flags | PROTO_ITEMS_SUM, 1);
	proto_items_add_sum(&w, ap->key, ap->klen, gen, ap->vlen, ap->checksum, 0);
	proto_grants_add(&w, g); /* NULL: room the master fills in */
	if ((*rc = wire_w_to_msg(&w, m)) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return NULL;
	}
	/* zero copy: the caller keeps the buffer valid until we report */
	m->payload = evbuffer_new();
	if (!m->payload)
		kvn_fatal("out of memory");
	if (ap->vlen)
		evbuffer_add_reference(m->payload, ap->val, ap->vlen, NULL, NULL);
	return m;
}

static void aput_send(struct kvn_client *c, struct client_aput *ap)
{
	uint64_t now = kvn_now_ms();
	int rc;

	if (c->closing || now >= ap->deadline_ms) {
		aput_finish(c, ap, c->closing ? KVN_ECLOSED : KVN_ETIMEDOUT);
		return;
	}
	struct client_peer *p = client_peer_get(c, ap->rt.node_id, ap->rt.addr);
	if (!p) {
		aput_retry(c, ap, KVN_ECONN);
		return;
	}
	struct actor_msg *m = aput_msg(ap, ap->rt.gen, &ap->rt.grant, &rc);
	if (!m) {
		aput_finish(c, ap, rc);
		return;
	}
	ap->peer = p;
	ap->proxy = p->proxy;
	p->inflight++;
	/* one attempt may not spend the whole deadline on a peer that does not
	 * answer (hung, stopped): as kvn_put, client.attempt_timeout, except
	 * for the last attempt the retries allow */
	uint64_t wait = ap->deadline_ms - now;
	if (ap->attempt < c->conf.client_retries && client_attempt_ms(c) < wait)
		wait = client_attempt_ms(c);
	rc = actor_call(c->self, p->proxy, m, wait, on_put, ap);
	if (rc) {
		/* not sent: the message (and its reference) is still ours */
		actor_msg_free(m);
		p->inflight--;
		ap->peer = NULL;
		aput_retry(c, ap, KVN_ECONN);
	}
}

/* The first attempt, through the master (client_via.c): the PUT with the
 * bytes goes there; the master places it on its own peer or refuses. */
static void aput_send_via(struct kvn_client *c, struct client_aput *ap)
{
	uint64_t now = kvn_now_ms();
	int rc;

	if ((rc = client_master_ensure(c)) != 0) {
		aput_finish(c, ap, rc);
		return;
	}
	struct actor_msg *m = aput_msg(ap, 0, NULL, &rc); /* gen 0: the master picks it */
	if (!m) {
		aput_finish(c, ap, rc);
		return;
	}
	ap->rt = c->sole; /* the master's node: an ENOSPC from it excludes it */
	ap->rt.status = 0;
	ap->via = 1;
	ap->proxy = c->master;
	ap->mproxy = c->master;
	rc = actor_call(c->self, c->master, m, ap->deadline_ms - now, on_put, ap);
	if (rc) {
		actor_msg_free(m);
		ap->via = 0;
		aput_route(c, ap);
		return;
	}
	c->stats.via_put_sent++;
}

static int on_route(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct kvn_client *c = actor_state(self);
	struct client_aput *ap = arg;
	struct wire_r r;
	uint32_t n;

	if (err) {
		aput_finish(c, ap, err);
		return 0;
	}
	if (reply->status == KVN_ECONN && !ap->master_retried && !c->closing) {
		/* the connection may have died while the client was idle:
		 * once more on a fresh one, as client_master_call does */
		ap->master_retried = 1;
		client_master_drop(c, ap->mproxy);
		aput_route(c, ap);
		return 0;
	}
	if (reply->status) {
		/* the master could not answer at all: final, as for kvn_put */
		aput_finish(c, ap, reply->status);
		return 0;
	}
	if (proto_routes_open(&r, reply, &n) != 0 || n != 1 || proto_routes_next(&r, &ap->rt) != 0 ||
	    proto_route_grants_next(&r, &ap->rt.grant) != 0) {
		aput_finish(c, ap, KVN_EPROTO);
		return 0;
	}
	if (client_route_wait(ap->rt.status)) {
		aput_pause(c, ap, ap->rt.status);
		return 0;
	}
	if (ap->rt.status == KVN_EFULL && ap->avoided && !ap->no_avoid) {
		ap->no_avoid = 1; /* no room but on quarantined peers: try them */
		aput_route(c, ap);
		return 0;
	}
	if (ap->rt.status == KVN_EFULL && ap->cause) {
		/* every node left is excluded, one of them for no lack of room:
		 * the cluster is not known to be full, that failure is the news */
		aput_finish(c, ap, ap->cause);
		return 0;
	}
	if (ap->rt.status) {
		aput_retry(c, ap, ap->rt.status);
		return 0;
	}
	aput_send(c, ap);
	return 0;
}

static void aput_route(struct kvn_client *c, struct client_aput *ap)
{
	uint64_t now = kvn_now_ms();
	struct wire_w w;
	int rc;

	if (c->closing || now >= ap->deadline_ms) {
		aput_finish(c, ap, c->closing ? KVN_ECLOSED : KVN_ETIMEDOUT);
		return;
	}
	if ((rc = client_master_ensure(c)) != 0) {
		aput_finish(c, ap, rc);
		return;
	}
	/* quarantined peers (one that just failed or hung) are left out too
	 * while another node has room: on "no room" the put is routed again
	 * with them (on_route) */
	const char *ex[AP_MAX_EXCLUDE * 2];
	uint32_t nex = 0;
	struct client_peer *q, *qtmp;
	for (uint32_t i = 0; i < ap->nexclude; i++)
		ex[nex++] = ap->exclude[i];
	ap->avoided = 0;
	if (!ap->no_avoid)
		HASH_ITER(hh, c->peers, q, qtmp) {
			if (nex < AP_MAX_EXCLUDE * 2 && client_is_quarantined(c, q->node_id)) {
				ex[nex++] = q->node_id;
				ap->avoided = 1;
			}
		}
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT);
	wire_w_init(&w);
	proto_route_put_begin(&w, ex, nex, 1);
	proto_route_put_add(&w, ap->key, ap->klen, ap->vlen);
	if ((rc = wire_w_to_msg(&w, m)) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		aput_finish(c, ap, rc);
		return;
	}
	ap->mproxy = c->master;
	rc = actor_call(c->self, c->master, m, ap->deadline_ms - now, on_route, ap);
	if (rc) {
		actor_msg_free(m);
		aput_finish(c, ap, rc);
	}
}

/* ---- public ---- */

int kvn_put_async(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		  unsigned flags, kvn_put_done_fn done, void *arg)
{
	uint8_t wire_flags;

	if (!c || !key || client_put_wire_flags(flags, &wire_flags) != 0)
		return KVN_EINVAL;
	if (klen < 1 || klen > KVN_MAX_KEY)
		return KVN_EKEYLEN;
	if (vlen && !val)
		return KVN_EINVAL;
	if (vlen > c->conf.node_max_value_size)
		return KVN_ETOOBIG;
	if (c->closing)
		return KVN_ECLOSED;
	if (c->naput >= KVN_ASYNC_MAX)
		return KVN_EBUSY;
	struct client_aput *ap = kvn_xcalloc(1, sizeof *ap + klen);
	ap->done = done;
	ap->arg = arg;
	ap->val = val;
	ap->vlen = vlen;
	ap->checksum = kvn_xxh3(val, vlen);
	ap->flags = wire_flags;
	ap->deadline_ms = kvn_now_ms() + c->conf.client_timeout;
	ap->klen = (uint16_t)klen;
	memcpy(ap->key, key, klen);
	TAILQ_INSERT_TAIL(&c->aq_flight, ap, link);
	c->naput++;
	/* replies that arrive meanwhile wait in the mailbox */
	actor_busy_enter(c->self);
	if (client_put_via_wanted(c) && client_via_small(c, vlen))
		aput_send_via(c, ap);
	else
		aput_route(c, ap);
	actor_busy_leave(c->self);
	return 0;
}

/* Run the success callbacks of every put that has one due. */
static int deliver(struct kvn_client *c)
{
	struct client_aput *ap;
	int n = 0;

	while ((ap = TAILQ_FIRST(&c->aq_done))) {
		TAILQ_REMOVE(&c->aq_done, ap, link);
		c->naput--;
		if (ap->done) {
			c->in_callback++;
			ap->done(ap->arg, 0);
			c->in_callback--;
			n++; /* callbacks that ran: a put without one is not counted */
		}
		aput_free(ap);
	}
	return n;
}

int kvn_poll(struct kvn_client *c, uint64_t timeout_ms)
{
	if (!c)
		return KVN_EINVAL;
	if (c->in_callback)
		return KVN_EBUSY;
	actor_busy_enter(c->self);
	c->async_event = 0;
	if (TAILQ_EMPTY(&c->aq_done) && !TAILQ_EMPTY(&c->aq_flight) && timeout_ms > 0) {
		uint64_t now = kvn_now_ms();
		client_run(c, &c->async_event, timeout_ms > UINT64_MAX - now ? UINT64_MAX : now + timeout_ms);
	} else if (!TAILQ_EMPTY(&c->aq_flight)) {
		client_run_nonblock(c);
	}
	actor_busy_leave(c->self);
	return deliver(c);
}

int kvn_drain(struct kvn_client *c)
{
	int total = 0;

	if (!c)
		return KVN_EINVAL;
	if (c->in_callback)
		return KVN_EBUSY;
	while (!TAILQ_EMPTY(&c->aq_flight)) {
		uint64_t until = 0;
		struct client_aput *ap;
		TAILQ_FOREACH(ap, &c->aq_flight, link)
			if (ap->deadline_ms > until)
				until = ap->deadline_ms;
		until += DRAIN_SLACK_MS;
		if (kvn_now_ms() >= until) {
			log_warn("%u async put(s) still in flight past their deadline; closing anyway",
				 (unsigned)c->naput);
			break;
		}
		actor_busy_enter(c->self);
		c->async_event = 0;
		client_run(c, &c->async_event, until);
		actor_busy_leave(c->self);
		total += deliver(c);
	}
	return total + deliver(c);
}

size_t kvn_poll_failures(struct kvn_client *c, struct kvn_put_failure *out, size_t cap)
{
	struct client_aput *ap;
	size_t n = 0;

	if (!c || !out)
		return 0;
	while (n < cap && (ap = TAILQ_FIRST(&c->aq_failed))) {
		TAILQ_REMOVE(&c->aq_failed, ap, link);
		c->naput--;
		out[n].arg = ap->arg;
		out[n].status = ap->status;
		aput_free(ap);
		n++;
	}
	return n;
}

size_t kvn_async_pending(const struct kvn_client *c)
{
	return c ? c->naput : 0;
}

void client_async_close(struct kvn_client *c)
{
	if (!c->in_callback)
		kvn_drain(c);
	/* from here on, a call cut by the teardown ends its put as failed */
	c->closing = 1;
}

void client_async_fini(struct kvn_client *c)
{
	struct client_aput_q *qs[] = { &c->aq_flight, &c->aq_done, &c->aq_failed };
	struct client_aput *ap;

	for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
		while ((ap = TAILQ_FIRST(qs[i]))) {
			TAILQ_REMOVE(qs[i], ap, link);
			aput_free(ap);
		}
	c->naput = 0;
}
