/*
 * client: the client actor behind libkvnode.  Owns the private loop the
 * caller's thread drives during each call, the connection to the master,
 * the pool of peer connections (renewed after client.endpoint_max_age,
 * quarantined for client.quarantine after a failure), request rounds with
 * one deadline per public call, and the payload sink that receives GET
 * replies straight into the caller's buffers.
 */
#include "config.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "net/net.h"

void client_set_detail(struct kvn_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof c->detail, fmt, ap);
	va_end(ap);
}

/* ---- the actor ---- */

static struct client_peer *peer_by_proxy(struct kvn_client *c, actor_id proxy)
{
	struct client_peer *p, *tmp;
	HASH_ITER(hh, c->peers, p, tmp)
		if (p->proxy == proxy)
			return p;
	return NULL;
}

static struct client_req *req_by_corr(struct kvn_client *c, uint64_t corr)
{
	struct client_op *op = c->op;
	if (!op)
		return NULL;
	for (uint32_t i = 0; i < op->nreqs; i++)
		if (op->reqs[i]->corr == corr && !op->reqs[i]->done)
			return op->reqs[i];
	return NULL;
}

/* A connection came up: the master's (its node id is in the meta), or a
 * peer's that completed a handshake, which is alive again (restarted) and
 * no longer skipped.  A hung one never gets this far. */
static void client_on_net_up(struct kvn_client *c, struct actor_msg *m)
{
	if (m->src == c->master) {
		struct wire_r r;
		c->master_up = 1;
		/* role, server id (the master's node id), remote address */
		wire_r_init(&r, m->meta, m->meta_len);
		(void)wire_r_u8(&r);
		wire_r_str(&r, c->master_node, sizeof c->master_node);
		if (r.err)
			c->master_node[0] = '\0';
	} else {
		struct client_peer *p = peer_by_proxy(c, m->src);
		if (p)
			p->quarantined_until = 0;
	}
}

/* A connection closed: the master's is reopened by the next call; a peer's
 * that failed is quarantined. */
static void client_on_net_down(struct kvn_client *c, struct actor_msg *m)
{
	if (m->src == c->master) {
		c->master = 0; /* the proxy is gone: the next call reconnects */
		c->master_up = 0;
		if (m->status)
			client_set_detail(c, "master %s: %s", c->conf.client_master, kvn_strerror(m->status));
	} else {
		struct client_peer *p = peer_by_proxy(c, m->src);
		if (p) {
			p->proxy = 0;
			client_local_reset(p); /* its staging region went with it */
			if (m->status && m->status != KVN_ECLOSED)
				client_quarantine(c, p);
		}
	}
}

/* Replies come to the calls' callbacks, not here; anything else is
 * ignored. */
static const struct client_route {
	uint16_t type;
	void (*fn)(struct kvn_client *c, struct actor_msg *m);
} client_routes[] = {
	{ NET_UP, client_on_net_up },
	{ NET_DOWN, client_on_net_down },
};

static int client_dispatch(struct actor *self, struct actor_msg *m)
{
	struct kvn_client *c = actor_state(self);

	for (size_t i = 0; i < sizeof client_routes / sizeof client_routes[0]; i++)
		if (client_routes[i].type == m->type) {
			client_routes[i].fn(c, m);
			break;
		}
	return 0;
}

/* GET replies land straight in the caller's buffers. */
static int client_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		       struct actor_sink *sink)
{
	struct kvn_client *c = actor_state(self);
	struct client_req *q;
	struct wire_r r;
	struct proto_result res;
	uint32_t n;
	uint64_t total = 0;
	int cap = 0;
	(void)from;

	if (h->type != WIRE_GET || !(h->flags & WIRE_F_REPLY) || (h->flags & WIRE_F_ROUTES))
		return 1;
	q = req_by_corr(c, h->corr);
	if (!q)
		return 1; /* nobody waits: buffered and dropped */
	if (proto_results_open(&r, meta, h->meta_len, &n) != 0 || n != q->n)
		return KVN_EPROTO;
	free(q->iov);
	q->iov = NULL;
	q->niov = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (proto_results_next(&r, &res) != 0)
			return KVN_EPROTO;
		if (res.status != 0 || res.size == 0)
			continue;
		struct kvn_item *it = &q->op->items[q->idx[i]];
		void *dst = NULL;
		if (q->op->alloc_get && !it->val) {
			it->val = malloc(res.size);
			if (it->val)
				it->cap = res.size;
		}
		if (it->val && res.size <= it->cap)
			dst = it->val;
		uint64_t left = res.size;
		while (left > 0) {
			size_t k = dst ? (size_t)left : (left < CLIENT_SCRATCH ? (size_t)left : CLIENT_SCRATCH);
			if (q->niov == cap) {
				cap = cap ? cap * 2 : 8;
				q->iov = realloc(q->iov, (size_t)cap * sizeof *q->iov);
				if (!q->iov)
					kvn_fatal("out of memory");
			}
			q->iov[q->niov].iov_base = dst ? dst : c->scratch;
			q->iov[q->niov].iov_len = k;
			q->niov++;
			left -= k;
		}
		total += res.size;
	}
	if (wire_r_end(&r) != 0 || total != h->payload_len)
		return KVN_EPROTO;
	sink->iov = q->iov;
	sink->niov = q->niov;
	sink->cookie = q;
	sink->copied = &c->stats.bounce_bytes;
	return 0;
}

static const struct actor_ops client_ops = {
	.name = "client",
	.handle = client_dispatch,
	.sink = client_sink,
};

/* ---- connections ---- */

static void fill_net_opts(const struct kvn_client *c, struct net_opts *o)
{
	net_opts_default(o);
	o->connect_timeout_ms = c->conf.client_timeout;
	o->handshake_timeout_ms = c->conf.auth_handshake_timeout;
	o->max_payload = c->conf.node_max_value_size > PROTO_MAX_BATCH_PAYLOAD ? c->conf.node_max_value_size
										  : PROTO_MAX_BATCH_PAYLOAD;
	o->reconnect = 0;
	snprintf(o->tcp_congestion, sizeof o->tcp_congestion, "%s", c->conf.client_tcp_congestion);
	o->tcp_sndbuf = c->conf.client_tcp_sndbuf;
	o->integrity = c->conf.auth_integrity;
}

/* node_id NULL: the master */
static int connect_to(struct kvn_client *c, const char *node_id, const char *addr, actor_id *proxy)
{
	if (c->cx.connect)
		return c->cx.connect(c->cx.arg, c->self, node_id, addr, proxy);
	struct net_creds cr = { .role = AUTH_ROLE_CLIENT, .node_id = c->node_id, .secret = &c->kr.s[0] };
	struct net_opts o;
	fill_net_opts(c, &o);
	return net_connect(c->self, addr, &cr, &o, proxy);
}

int client_connect_addr(struct kvn_client *c, const char *addr, actor_id *proxy)
{
	/* a connector's client has no sockets at all (embedded mode) */
	if (c->cx.connect)
		return KVN_ECONN;
	return connect_to(c, NULL, addr, proxy);
}

struct client_peer *client_peer_get(struct kvn_client *c, const char *node_id, const char *addr)
{
	struct client_peer *p;
	uint64_t now = kvn_now_ms();

	HASH_FIND_STR(c->peers, node_id, p);
	if (!p) {
		p = kvn_xcalloc(1, sizeof *p);
		snprintf(p->node_id, sizeof p->node_id, "%s", node_id);
		HASH_ADD_STR(c->peers, node_id, p);
	}
	/* a same-host connection is not renewed by age: it holds the mapping */
	if (p->proxy && (strcmp(p->addr, addr) != 0 ||
			 (p->inflight == 0 && now - p->opened_ms > c->conf.client_endpoint_max_age &&
			  !client_local_ready(p)))) {
		/* a moved peer, or an old endpoint: replace it at checkout */
		net_close(p->proxy);
		p->proxy = 0;
	}
	if (!p->proxy) {
		client_local_reset(p); /* cut or quarantined: the mapping went with it */
		snprintf(p->addr, sizeof p->addr, "%s", addr);
		if (connect_to(c, node_id, addr, &p->proxy) != 0) {
			p->proxy = 0;
			return NULL;
		}
		p->opened_ms = now;
	}
	return p;
}

void client_quarantine(struct kvn_client *c, struct client_peer *p)
{
	p->quarantined_until = kvn_now_ms() + c->conf.client_quarantine;
	if (p->proxy) {
		net_abort(c->loop, p->proxy, KVN_ECONN);
		p->proxy = 0;
	}
}

int client_is_quarantined(struct kvn_client *c, const char *node_id)
{
	struct client_peer *p;
	HASH_FIND_STR(c->peers, node_id, p);
	return p && p->quarantined_until > kvn_now_ms();
}

/* ---- calls and rounds ---- */

/* The client actor is busy while library code runs on the caller's thread
 * (replies are queued, not run in the middle of it) and idle while the
 * loop runs. */
int client_run(struct kvn_client *c, const int *done, uint64_t deadline_ms)
{
	if (!actor_busy_leave(c->self))
		kvn_fatal("client actor destroyed during a call");
	int rc = actor_loop_run_until(c->loop, done, deadline_ms);
	actor_busy_enter(c->self);
	return rc;
}

void client_run_nonblock(struct kvn_client *c)
{
	if (!actor_busy_leave(c->self))
		kvn_fatal("client actor destroyed during a call");
	event_base_loop(actor_loop_base(c->loop), EVLOOP_NONBLOCK);
	actor_busy_enter(c->self);
}

int client_master_ensure(struct kvn_client *c)
{
	if (c->master)
		return 0;
	int rc = connect_to(c, NULL, c->conf.client_master, &c->master);
	if (rc) {
		c->master = 0;
		client_set_detail(c, "client.master = '%s': %s", c->conf.client_master, kvn_strerror(rc));
	}
	return rc;
}

static int on_master_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct client_op *op = arg;
	(void)self;
	op->reply = reply;
	op->reply_err = err;
	op->mdone = 1;
	return reply ? ACTOR_KEEP : 0;
}

void client_master_drop(struct kvn_client *c, actor_id used)
{
	if (c->master != used)
		return; /* already replaced */
	net_abort(c->loop, used, KVN_ECONN);
	c->master = 0;
	c->master_up = 0;
}

int client_master_call(struct kvn_client *c, struct client_op *op, struct actor_msg *m)
{
	struct actor_msg *again = NULL;
	int rc, retried = 0;

	for (;;) {
		uint64_t now = kvn_now_ms();
		if (now >= op->deadline_ms) {
			actor_msg_free(m);
			actor_msg_free(again);
			return KVN_ETIMEDOUT;
		}
		/* A connection opened before this call may have died while the
		 * caller was idle (nobody ran the loop to notice): such a call
		 * fails with KVN_ECONN at once, so it goes once more on a fresh
		 * connection within the same deadline. */
		int reused = c->master != 0;
		rc = client_master_ensure(c);
		if (rc) {
			actor_msg_free(m);
			actor_msg_free(again);
			return rc;
		}
		if (reused && !retried)
			again = actor_msg_dup(m);
		if (reused && op->once) {
			/* A call that must not be sent twice (LEASE, RELEASE,
			 * RENEW) cannot take the resend below: let the loop
			 * notice a connection that died while we were idle, so
			 * the call goes on a fresh one instead of failing. */
			client_run_nonblock(c);
			client_run_nonblock(c);
			if (!c->master) {
				actor_msg_free(again);
				again = NULL;
				continue; /* nothing was sent: reconnect */
			}
		}
		actor_id used = c->master;
		actor_msg_free(op->reply);
		op->reply = NULL;
		op->reply_err = 0;
		op->mdone = 0;
		rc = actor_call(c->self, used, m, op->deadline_ms - now, on_master_reply, op);
		if (rc) {
			actor_msg_free(m);
			if (rc == KVN_ECLOSED && again) { /* the proxy is gone */
				client_master_drop(c, used);
				m = again;
				again = NULL;
				retried = 1;
				continue;
			}
			actor_msg_free(again);
			return rc;
		}
		client_run(c, &op->mdone, op->deadline_ms + 1000);
		/* the request may have reached the master before the
		 * connection broke: only a call that is safe twice goes again */
		if (op->mdone && !op->reply_err && op->reply->status == KVN_ECONN && again && !op->once) {
			client_master_drop(c, used);
			m = again;
			again = NULL;
			retried = 1;
			continue;
		}
		actor_msg_free(again);
		if (!op->mdone)
			return KVN_ETIMEDOUT; /* not reached: the call's own timer fires first */
		if (op->reply_err)
			return op->reply_err;
		if (op->reply->status == KVN_ECONN && !c->master_up && c->detail[0] == '\0')
			client_set_detail(c, "cannot reach the master at %s", c->conf.client_master);
		return op->reply->status;
	}
}

int client_master_call_busy(struct kvn_client *c, struct client_op *op, struct actor_msg *m)
{
	struct kvn_backoff bo;
	int rc;

	client_pause_init(&bo);
	for (;;) {
		struct actor_msg *again = actor_msg_dup(m);
		rc = client_master_call(c, op, m);
		if (rc != KVN_EBUSY || client_pause(c, op, &bo) != 0) {
			actor_msg_free(again);
			return rc;
		}
		m = again;
	}
}

static int on_peer_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct client_req *q = arg;
	struct client_op *op = q->op;
	(void)self;

	if (!op) { /* orphaned: the call it belonged to has returned */
		free(q->idx);
		free(q->iov);
		free(q);
		return 0;
	}
	q->done = 1;
	q->reply = reply;
	q->err = err;
	if (q->peer && q->peer->inflight)
		q->peer->inflight--;
	if (--op->pending == 0)
		op->done = 1;
	return reply ? ACTOR_KEEP : 0;
}

int client_peer_call(struct kvn_client *c, struct client_op *op, struct client_peer *p,
		     struct actor_msg *m, uint32_t *idx, uint32_t n)
{
	uint64_t now = kvn_now_ms();
	struct client_req *q;
	int rc;

	if (now >= op->deadline_ms) {
		actor_msg_free(m);
		free(idx);
		return KVN_ETIMEDOUT;
	}
	q = kvn_xcalloc(1, sizeof *q);
	q->op = op;
	q->peer = p;
	q->proxy = p ? p->proxy : c->master;
	q->idx = idx;
	q->n = n;
	rc = actor_call(c->self, q->proxy, m, op->deadline_ms - now, on_peer_reply, q);
	if (rc) {
		actor_msg_free(m);
		free(idx);
		free(q);
		return rc;
	}
	q->corr = actor_last_corr(c->self);
	if (op->nreqs == op->capreqs) {
		op->capreqs = op->capreqs ? op->capreqs * 2 : 8;
		op->reqs = realloc(op->reqs, op->capreqs * sizeof *op->reqs);
		if (!op->reqs)
			kvn_fatal("out of memory");
	}
	op->reqs[op->nreqs++] = q;
	op->pending++;
	op->done = 0;
	if (p)
		p->inflight++;
	return 0;
}

int client_wait_round(struct kvn_client *c, struct client_op *op)
{
	return client_wait_round_until(c, op, op->deadline_ms);
}

uint64_t client_attempt_ms(const struct kvn_client *c)
{
	uint64_t a = c->conf.client_attempt_timeout ? c->conf.client_attempt_timeout : c->conf.client_timeout / 3;
	return a ? a : 1;
}

int client_wait_round_until(struct kvn_client *c, struct client_op *op, uint64_t until_ms)
{
	if (until_ms > op->deadline_ms)
		until_ms = op->deadline_ms;
	op->done = op->pending == 0;
	if (client_run(c, &op->done, until_ms) == 0)
		return 0;
	/* Deadline (of the call or of this attempt): cut every connection
	 * still carrying our bytes (a PUT's payload references the caller's
	 * buffer, a GET reply writes into it), so nothing touches caller
	 * memory after we return; its peer is quarantined, so the next route
	 * of a put leaves it out while another node has room. */
	for (uint32_t i = 0; i < op->nreqs; i++) {
		struct client_req *q = op->reqs[i];
		if (!q->done) {
			net_abort(c->loop, q->proxy, KVN_ETIMEDOUT);
			if (q->peer) {
				q->peer->proxy = 0;
				client_quarantine(c, q->peer);
			} else if (c->master == q->proxy) { /* a GET sent to the master */
				c->master = 0;
				c->master_up = 0;
			}
		}
	}
	/* the cut connections answer at once; give them a moment */
	client_run(c, &op->done, kvn_now_ms() + 50);
	for (uint32_t i = 0; i < op->nreqs; i++)
		if (!op->reqs[i]->done)
			op->reqs[i]->err = KVN_ETIMEDOUT;
	return KVN_ETIMEDOUT;
}

void client_round_reset(struct client_op *op)
{
	for (uint32_t i = 0; i < op->nreqs; i++) {
		struct client_req *q = op->reqs[i];
		if (q->done) {
			actor_msg_free(q->reply);
			free(q->idx);
			free(q->iov);
			free(q);
		} else {
			q->op = NULL; /* its callback frees it */
		}
	}
	op->nreqs = 0;
	op->pending = 0;
	op->done = 1;
}

/* ---- open / free ---- */

int client_open(struct kvn_conf *conf, struct kvn_client **out)
{
	return client_open_with(conf, NULL, out);
}

int client_open_with(struct kvn_conf *conf, const struct client_connector *cx, struct kvn_client **out)
{
	struct kvn_client *c = kvn_xcalloc(1, sizeof *c);
	char err[512], host[64];
	int rc;

	c->conf = *conf;
	memset(conf, 0, sizeof *conf); /* the client owns the strings now */
	if (cx)
		c->cx = *cx;
	if (c->cx.connect) {
		/* no socket, no handshake: nothing to authenticate with */
	} else if (net_check_congestion(c->conf.client_tcp_congestion, err, sizeof err) != 0) {
		snprintf(c->detail, sizeof c->detail, "client.tcp_congestion: %s", err);
		client_set_last_detail(c->detail);
		kvn_conf_fini(&c->conf);
		free(c);
		return KVN_ECONFIG;
	}
	rc = c->cx.connect ? 0 : auth_keyring_load(&c->kr, c->conf.auth_client_secret_file, err, sizeof err);
	if (rc) {
		snprintf(c->detail, sizeof c->detail, "auth.client_secret_file: %s", err);
		client_set_last_detail(c->detail);
		kvn_conf_fini(&c->conf);
		free(c);
		/* missing, unreadable, too open or no valid secret: the client
		 * cannot authenticate (CLI exit 3, docs/operations.md) */
		return KVN_EAUTH;
	}
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "client");
	host[sizeof host - 1] = '\0';
	snprintf(c->node_id, sizeof c->node_id, "client-%.40s-%ld", host, (long)getpid());
	for (char *p = c->node_id; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '_';
	c->scratch = kvn_xmalloc(CLIENT_SCRATCH);
	kvn_ratelimit_init(&c->local_rl, 60000, 1);
	TAILQ_INIT(&c->aq_flight);
	TAILQ_INIT(&c->aq_done);
	TAILQ_INIT(&c->aq_failed);
	c->loop = actor_loop_new("client");
	actor_loop_adopt(c->loop);
	rc = actor_spawn(c->loop, &client_ops, c, 1u << 16, &c->self);
	if (rc) {
		client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void client_free(struct kvn_client *c)
{
	struct client_peer *p, *tmp;

	if (!c)
		return;
	actor_busy_enter(c->self);
	if (c->master)
		net_abort(c->loop, c->master, KVN_ECLOSED);
	HASH_ITER(hh, c->peers, p, tmp) {
		if (p->proxy)
			net_abort(c->loop, p->proxy, KVN_ECLOSED);
	}
	actor_busy_leave(c->self);
	/* let the cut connections finish their teardown events */
	int never = 0;
	actor_loop_run_until(c->loop, &never, kvn_now_ms() + 1);
	actor_loop_free(c->loop);
	client_async_fini(c); /* records of puts the teardown ended */
	HASH_ITER(hh, c->peers, p, tmp) {
		HASH_DEL(c->peers, p);
		client_local_free(p);
		free(p);
	}
	client_rcache_clear(c);
	auth_keyring_wipe(&c->kr);
	kvn_conf_fini(&c->conf);
	free(c->scratch);
	if (c->cx.release)
		c->cx.release(c->cx.arg);
	free(c);
}
