/*
 * conn: one authenticated connection as a proxy actor.  Owns the socket's
 * read state machine (header, metadata, payload straight into the receiver's
 * sink when it has one, tag), the output queue (payload chains are moved, not
 * copied, so a GET's pages go to writev by reference), the attach handshake
 * on frames, per-frame tags, request/reply routing by correlation id, and
 * reconnect with backoff for outgoing connections.
 *
 * Lifetime: a conn lives inside its proxy actor.  conn_fail() never frees it:
 * it closes the socket, marks the conn closed and schedules the actor's
 * destruction on a separate event, so code up the stack may still look at
 * c->state after a failure.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <uthash.h>
#include <xxhash.h>

#include "base/base.h"
#include "base/metrics.h"
#include "net/net_int.h"

struct net_stats net_stats_g;

void net_get_stats(struct net_stats *st)
{
	const struct net_stats *src = &net_stats_g;
	NET_STATS_FIELDS(KVN_STAT_LOAD)
}

void net_stats_each(const struct net_stats *st, kvn_stat_fn fn, void *arg)
{
	NET_STATS_FIELDS(KVN_STAT_VISIT)
}

void net_stat_inc_refused(void)
{
	NSTAT_ADD(conns_refused, 1);
}

void conn_fail(struct conn *c, int err);
void conn_flush(struct conn *c);
static void conn_start_connect(struct conn *c);

const char *conn_who(const struct conn *c)
{
	return c->who[0] ? c->who : "?";
}

/* The node_id is the peer's claim (pre-auth, any printable byte): logs get
 * it only through kvn_str_q (quoted unless plainly a name), so it cannot
 * forge a line or a field. */
void conn_set_node_id(struct conn *c, const char *id)
{
	snprintf(c->node_id, sizeof c->node_id, "%s", id);
	if (c->node_id[0])
		kvn_str_q(c->who, c->node_id);
	else
		c->who[0] = '\0';
}

int conn_log_ok(struct conn *c, uint64_t *suppressed)
{
	if (!c->cnt)
		return kvn_ratelimit_ok(&c->rl, suppressed);
	pthread_mutex_lock(&c->cnt->mu);
	int ok = kvn_ratelimit_ok(&c->cnt->rl, suppressed);
	pthread_mutex_unlock(&c->cnt->mu);
	return ok;
}

const char *conn_supp_text(char out[64], uint64_t n)
{
	if (n)
		snprintf(out, 64, " (%llu similar lines suppressed)", (unsigned long long)n);
	else
		out[0] = '\0';
	return out;
}

void conn_preauth_leave(struct conn *c)
{
	if (!c->cnt)
		return;
	pthread_mutex_lock(&c->cnt->mu);
	if (c->on_pre) {
		TAILQ_REMOVE(&c->cnt->pre, c, pre_link);
		c->cnt->preauth--;
		c->on_pre = 0;
	}
	pthread_mutex_unlock(&c->cnt->mu);
}

/* ---- output ---------------------------------------------------------- */

void conn_arm_timer(struct conn *c, uint64_t ms)
{
	struct timeval tv;
	actor_timeout_tv(ms, &tv); /* never early on the loop's coarse clock */
	evtimer_add(c->timer, &tv);
}

/* Synthesize a reply with `status` to the sender of request m, as if the
 * remote had answered: the caller learns at once instead of at its deadline. */
static void reply_local(actor_id to, uint16_t type, uint64_t corr, int status)
{
	struct actor_msg *r = actor_msg_new(type);
	r->flags = WIRE_F_REPLY;
	r->corr = corr;
	r->status = status;
	if (actor_send(to, r) != 0)
		actor_msg_free(r);
}

void conn_fail_msg(struct actor_msg *m, int err)
{
	if (m->corr && !(m->flags & WIRE_F_REPLY))
		reply_local(m->src, m->type, m->corr, err);
}

static void sweep_inflight(struct conn *c, uint64_t now)
{
	struct inflight *f, *tmp;
	HASH_ITER(hh, c->inflight, f, tmp) {
		if (f->expire_ms <= now) {
			HASH_DEL(c->inflight, f);
			free(f);
		}
	}
}

/* Frame m onto the output queue: header, metadata, payload (chains moved,
 * not copied), tag.  Consumes m's metadata and payload; m itself stays with
 * the caller. */
int conn_write_msg(struct conn *c, struct actor_msg *m)
{
	struct wire_hdr h;
	uint8_t hraw[WIRE_HDR_LEN], tag[WIRE_TAG_LEN];
	size_t plen = m->payload ? evbuffer_get_length(m->payload) : 0;

	memset(&h, 0, sizeof h);
	h.type = m->type;
	h.flags = (uint8_t)(m->flags & WIRE_F_KNOWN);
	h.status = m->status;
	h.meta_len = m->meta_len;
	h.payload_len = plen;
	h.corr = m->corr;
	if (m->corr && !(m->flags & WIRE_F_REPLY)) {
		struct inflight *f = kvn_xcalloc(1, sizeof *f);
		uint64_t now = kvn_now_ms();
		if (HASH_COUNT(c->inflight) >= INFLIGHT_SWEEP_AT)
			sweep_inflight(c, now);
		f->wire_corr = ++c->next_corr;
		f->type = m->type;
		f->src = m->src;
		f->corr = m->corr;
		f->expire_ms = (m->deadline_ms ? m->deadline_ms : now + 600000) + 1000;
		HASH_ADD(hh, c->inflight, wire_corr, sizeof f->wire_corr, f);
		h.corr = f->wire_corr;
	}
	wire_hdr_encode(&h, hraw);
	if (c->sess) {
		int rc = auth_tag_begin(c->tout, c->sess, AUTH_SEND);
		if (rc)
			return rc;
		auth_tag_update(c->tout, hraw, sizeof hraw);
		if (m->meta_len)
			auth_tag_update(c->tout, m->meta, m->meta_len);
		if (plen && c->o.integrity == KVN_INTEGRITY_FRAME) {
			struct evbuffer_iovec v[64];
			struct evbuffer_ptr pos;
			evbuffer_ptr_set(m->payload, &pos, 0, EVBUFFER_PTR_SET);
			size_t done = 0;
			while (done < plen) {
				int n = evbuffer_peek(m->payload, -1, &pos, v, 64);
				if (n <= 0)
					break;
				if (n > 64)
					n = 64;
				size_t got = 0;
				for (int i = 0; i < n; i++) {
					auth_tag_update(c->tout, v[i].iov_base, v[i].iov_len);
					got += v[i].iov_len;
				}
				done += got;
				if (done < plen)
					evbuffer_ptr_set(m->payload, &pos, done, EVBUFFER_PTR_SET);
			}
		}
		rc = auth_tag_final(c->tout, tag);
		if (rc)
			return rc;
	}
	evbuffer_add(c->out, hraw, sizeof hraw);
	if (m->meta_len)
		evbuffer_add(c->out, m->meta, m->meta_len);
	if (plen)
		evbuffer_add_buffer(c->out, m->payload);
	if (c->sess)
		evbuffer_add(c->out, tag, sizeof tag);
	NSTAT_ADD(frames_out, 1);
	if (c->o.metrics_role && (m->flags & WIRE_F_REPLY))
		kvn_metric_request(c->o.metrics_role, m->type, m->status);
	return 0;
}

static void conn_update_backpressure(struct conn *c)
{
	size_t q = evbuffer_get_length(c->out);
	if (!c->read_paused && q > c->o.max_outq) {
		event_del(c->rev);
		c->read_paused = 1;
	} else if (c->read_paused && q <= c->o.max_outq / 2) {
		event_add(c->rev, NULL);
		c->read_paused = 0;
	}
}

/* Write what c->out holds, from its chains as they are (a GET's pages by
 * reference).  sendmsg with MSG_NOSIGNAL rather than libevent's writev: a
 * peer that died mid-write must give EPIPE here, not a SIGPIPE that kills
 * the program libkvnode is linked into (its signal handlers are not ours
 * to change). */
static ssize_t conn_send_out(struct conn *c)
{
	struct evbuffer_iovec ev[64];
	struct iovec v[64];
	struct msghdr mh;
	int n = evbuffer_peek(c->out, -1, NULL, ev, 64);

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		v[i].iov_base = ev[i].iov_base;
		v[i].iov_len = ev[i].iov_len;
	}
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = v;
	mh.msg_iovlen = (size_t)n;
	ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	if (w > 0)
		evbuffer_drain(c->out, (size_t)w);
	return w;
}

void conn_flush(struct conn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		ssize_t n = conn_send_out(c);
		if (n > 0) {
			NSTAT_ADD(bytes_out, (uint64_t)n);
			kvn_metric_bytes_out(c->o.metrics_role, (uint64_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		conn_fail(c, KVN_ECONN);
		return;
	}
	if (evbuffer_get_length(c->out) > 0) {
		struct timeval tv;
		actor_timeout_tv(c->o.write_timeout_ms, &tv);
		event_add(c->wev, &tv);
	} else {
		event_del(c->wev);
		if (c->flush_then_close) {
			conn_fail(c, KVN_ECLOSED);
			return;
		}
	}
	conn_update_backpressure(c);
}

/* Write a handshake frame (never tagged). */
void conn_send_hs(struct conn *c, uint16_t type, struct wire_w *w, int status)
{
	struct actor_msg *m = actor_msg_new(type);
	if (w && wire_w_to_msg(w, m) != 0) {
		actor_msg_free(m);
		conn_fail(c, KVN_EPROTO);
		return;
	}
	m->status = status;
	conn_write_msg(c, m);
	actor_msg_free(m);
}

/* ---- connection end ------------------------------------------------------ */

void conn_abort_sink(struct conn *c)
{
	if (c->rstate >= R_PAY && c->pmode == P_SINK && c->sink.cookie) {
		struct actor *a = actor_lookup_sink(actor_loop_of(c->self), c->pdst);
		if (a)
			actor_sink_abort(a, c->sink.cookie);
	}
	c->sink.cookie = NULL;
}

void conn_reset_frame(struct conn *c)
{
	free(c->meta);
	c->meta = NULL;
	if (c->pbuf) {
		evbuffer_free(c->pbuf);
		c->pbuf = NULL;
	}
	memset(&c->sink, 0, sizeof c->sink);
	c->rstate = R_HDR;
	c->pmode = P_BUF;
	c->pay_left = 0;
	c->sidx = 0;
	c->soff = 0;
	c->sink_err = 0;
}

static void teardown_io(struct conn *c)
{
	conn_preauth_leave(c);
	conn_abort_sink(c);
	conn_reset_frame(c);
	if (c->rev)
		event_del(c->rev);
	if (c->wev)
		event_del(c->wev);
	if (c->timer)
		evtimer_del(c->timer);
	if (c->rev) {
		event_free(c->rev);
		c->rev = NULL;
	}
	if (c->wev) {
		event_free(c->wev);
		c->wev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		NSTAT_ADD(conns_open, (uint64_t)-1);
	}
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	c->rpos = c->wpos = 0;
	c->read_paused = 0;
	auth_session_free(c->sess);
	c->sess = NULL;
	auth_hs_fini(&c->hs);
	memset(&c->hs, 0, sizeof c->hs);
}

/* reply_local may run the caller's reply handler at once (direct
 * dispatch), and that handler may act on this connection again (a client
 * quarantines the peer: conn_fail).  So the table is detached before the
 * first reply: whatever runs meanwhile never sees, frees or adds to the
 * entries we are walking. */
static void fail_inflight(struct conn *c, int err)
{
	struct inflight *all = c->inflight, *f, *tmp;

	c->inflight = NULL;
	HASH_ITER(hh, all, f, tmp) {
		HASH_DEL(all, f);
		reply_local(f->src, f->type, f->corr, err);
		free(f);
	}
}

static void fail_queued(struct conn *c, int err)
{
	struct actor_msg *m;
	while ((m = TAILQ_FIRST(&c->queued))) {
		TAILQ_REMOVE(&c->queued, m, link);
		conn_fail_msg(m, err);
		actor_msg_free(m);
	}
	c->nqueued = 0;
}

void conn_notify_owner(struct conn *c, uint16_t type, int status)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;

	wire_w_init(&w);
	wire_w_u8(&w, (uint8_t)(c->outgoing ? 0 : c->role));
	wire_w_str(&w, c->outgoing ? c->server_id : c->node_id);
	wire_w_str(&w, c->remote);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->status = status;
	m->src = actor_id_of(c->self);
	m->src_role = (uint8_t)(c->outgoing ? AUTH_ROLE_MASTER : c->role);
	if (actor_send(c->owner, m) != 0)
		actor_msg_free(m);
}

void conn_fail(struct conn *c, int err)
{
	int was_up = c->state == C_UP;

	if (c->state == C_CLOSED || c->state == C_DOWN || c->failing)
		return;
	c->failing = 1; /* the replies below may call back into conn_fail */
	teardown_io(c);
	fail_inflight(c, err == KVN_ECLOSED ? KVN_ECONN : err);
	if (c->outgoing || was_up)
		conn_notify_owner(c, NET_DOWN, err);
	/* A refused attach will not fix itself by waiting: callers learn now. */
	if (err == KVN_EAUTH || err == KVN_EVERSION)
		fail_queued(c, err);
	if (c->outgoing && c->o.reconnect && !c->closing) {
		if (!c->down_logged) {
			log_info("connection to %s: %s; reconnecting with backoff", c->addr, kvn_strerror(err));
			c->down_logged = 1;
		}
		c->state = C_DOWN;
		c->failing = 0;
		/* jittered: peers that lost their master together do not come
		 * back in lock-step */
		conn_arm_timer(c, kvn_backoff_next(&c->backoff));
		return;
	}
	c->state = C_CLOSED;
	c->failing = 0;
	fail_queued(c, err == KVN_ECLOSED ? KVN_ECONN : err);
	event_active(c->reap, 0, 0);
}

static void conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	actor_destroy(c->self); /* runs conn_fini, which frees c */
}

static void conn_write_io(struct conn *c, short what)
{
	if (c->state == C_CONNECTING) {
		if (what & EV_TIMEOUT) {
			conn_fail(c, KVN_ETIMEDOUT);
			return;
		}
		int rc = tcp_connect_result(c->fd);
		if (rc) {
			conn_fail(c, rc);
			return;
		}
		event_del(c->wev);
		event_add(c->rev, NULL);
		conn_start_handshake(c);
		return;
	}
	if (what & EV_TIMEOUT) {
		uint64_t supp = 0;
		if (conn_log_ok(c, &supp))
			log_warn("net: %s (%s) made no write progress in %llu ms: closing%s", c->remote,
				 conn_who(c), (unsigned long long)c->o.write_timeout_ms, CONN_SUPP(supp));
		conn_fail(c, KVN_ETIMEDOUT);
		return;
	}
	conn_flush(c);
}

static void conn_timer_io(struct conn *c)
{

	if (c->state == C_DOWN) {
		conn_start_connect(c);
		return;
	}
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
		if (!c->outgoing) {
			uint64_t supp = 0;
			NSTAT_ADD(auth_fail, 1);
			if (conn_log_ok(c, &supp))
				log_warn("auth: %s did not authenticate within %llu ms: closing%s", c->remote,
					 (unsigned long long)c->o.handshake_timeout_ms, CONN_SUPP(supp));
		}
		conn_fail(c, KVN_ETIMEDOUT);
	} else if (c->flush_then_close) {
		conn_fail(c, KVN_ECLOSED);
	}
}

/* fd and timer callbacks run as the connection actor (busy), like a handler */
static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	actor_busy_enter(c->self);
	conn_write_io(c, what);
	actor_busy_leave(c->self);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	actor_busy_enter(c->self);
	conn_timer_io(c);
	actor_busy_leave(c->self);
}

/* ---- the proxy actor ------------------------------------------------------ */

static int conn_handle(struct actor *self, struct actor_msg *m)
{
	struct conn *c = actor_state(self);

	if (m->type == NET_CLOSE) {
		c->closing = 1;
		if (m->status) {
			/* net_abort from another loop: now, with its reason */
			if (c->state == C_DOWN)
				c->state = C_HANDSHAKE;
			conn_fail(c, m->status);
			return 0;
		}
		if (c->state == C_UP && evbuffer_get_length(c->out) > 0) {
			c->flush_then_close = 1;
			conn_arm_timer(c, c->o.write_timeout_ms);
			return 0;
		}
		if (c->state == C_DOWN) {
			c->state = C_HANDSHAKE; /* so conn_fail runs its course */
		}
		conn_fail(c, KVN_ECLOSED);
		return 0;
	}
	if (m->type >= WIRE_INTERNAL) {
		actor_msg_free(m);
		return ACTOR_KEEP;
	}
	if (c->state == C_UP && !c->flush_then_close) {
		if (conn_write_msg(c, m) != 0)
			conn_fail_msg(m, KVN_EPROTO);
		conn_flush(c);
		return 0;
	}
	if (c->outgoing && !c->closing && (c->state == C_CONNECTING || c->state == C_HANDSHAKE ||
					    c->state == C_DOWN)) {
		if (c->nqueued >= c->o.max_queued) {
			conn_fail_msg(m, KVN_EBUSY);
			return 0;
		}
		TAILQ_INSERT_TAIL(&c->queued, m, link);
		c->nqueued++;
		return ACTOR_KEEP;
	}
	conn_fail_msg(m, KVN_ECONN);
	return 0;
}

static void conn_fini(struct actor *self)
{
	struct conn *c = actor_state(self);

	teardown_io(c);
	fail_inflight(c, KVN_ECONN);
	fail_queued(c, KVN_ECLOSED);
	if (c->timer)
		event_free(c->timer);
	evbuffer_free(c->out);
	free(c->ibuf);
	XXH3_freeState(c->xs);
	auth_tag_free(c->tin);
	auth_tag_free(c->tout);
	if (c->reap)
		event_free(c->reap);
	OPENSSL_cleanse(&c->secret, sizeof c->secret);
	conn_link_withdraw(c);
	if (c->cnt) {
		conn_preauth_leave(c);
		if (c->counted) {
			pthread_mutex_lock(&c->cnt->mu);
			c->cnt->open--;
			if (c->role <= AUTH_ROLE_INTERNAL)
				c->cnt->open_by_role[c->role]--;
			pthread_mutex_unlock(&c->cnt->mu);
			kvn_metric_conn_open(c->o.metrics_role, c->role, -1);
		}
		net_counter_put(c->cnt);
	}
	free(c);
}

static const struct actor_ops conn_ops = {
	.name = "conn",
	.handle = conn_handle,
	.fini = conn_fini,
	.wants_replies = 1,
};

struct conn *conn_of(struct actor *a)
{
	return a && actor_ops_of(a) == &conn_ops ? actor_state(a) : NULL;
}

static struct conn *conn_new(struct actor *owner, const struct net_opts *o)
{
	struct conn *c = kvn_xcalloc(1, sizeof *c);
	c->owner = actor_id_of(owner);
	c->fd = -1;
	if (o)
		c->o = *o;
	else
		net_opts_default(&c->o);
	c->out = evbuffer_new();
	c->ibuf = kvn_xmalloc(IBUF_CAP);
	c->tin = auth_tag_new();
	c->tout = auth_tag_new();
	if (!c->out || !c->tin || !c->tout)
		kvn_fatal("out of memory");
	TAILQ_INIT(&c->queued);
	kvn_backoff_init(&c->backoff, c->o.backoff_min_ms, c->o.backoff_max_ms);
	kvn_ratelimit_init(&c->rl, NET_WARN_INTERVAL_MS, NET_WARN_BURST);
	return c;
}

static void conn_free_unspawned(struct conn *c)
{
	if (c->timer)
		event_free(c->timer);
	evbuffer_free(c->out);
	free(c->ibuf);
	auth_tag_free(c->tin);
	auth_tag_free(c->tout);
	free(c);
}

static void conn_start_connect(struct conn *c)
{
	int fd, rc;
	struct event_base *base = actor_base(c->self);

	rc = tcp_connect_start(c->addr, &c->o, &fd);
	c->state = C_CONNECTING;
	if (rc) {
		conn_fail(c, rc);
		return;
	}
	c->fd = fd;
	NSTAT_ADD(conns_open, 1);
	snprintf(c->remote, sizeof c->remote, "%s", c->addr);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	if (!c->rev || !c->wev)
		kvn_fatal("out of memory");
	struct timeval tv;
	actor_timeout_tv(c->o.connect_timeout_ms, &tv);
	event_add(c->wev, &tv);
	/* connect + handshake must finish within both timeouts together */
	conn_arm_timer(c, c->o.connect_timeout_ms + c->o.handshake_timeout_ms);
}

int net_connect(struct actor *owner, const char *addr, const struct net_creds *cr,
		const struct net_opts *o, actor_id *proxy)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct conn *c;
	struct actor *a;
	int rc;

	if (!owner || !addr || !cr || !cr->secret || !cr->node_id || strlen(addr) >= sizeof c->addr)
		return KVN_EINVAL;
	if (tcp_resolve(addr, 0, &ss, &len) != 0)
		return KVN_EINVAL;
	c = conn_new(owner, o);
	c->outgoing = 1;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	snprintf(c->remote, sizeof c->remote, "%s", addr);
	c->role = cr->role;
	conn_set_node_id(c, cr->node_id);
	c->secret = *cr->secret;
	c->ring = cr->ring;
	rc = actor_spawn(actor_loop_of(owner), &conn_ops, c, 1u << 16, &a);
	if (rc) {
		conn_free_unspawned(c);
		return rc;
	}
	c->self = a;
	c->timer = evtimer_new(actor_base(owner), conn_timer_cb, c);
	c->reap = event_new(actor_base(owner), -1, 0, conn_reap_cb, c);
	if (!c->timer || !c->reap)
		kvn_fatal("out of memory");
	*proxy = actor_id_of(a);
	conn_start_connect(c);
	return 0;
}

int net_abort(struct actor_loop *loop, actor_id proxy, int err)
{
	struct actor *a = actor_lookup_local(loop, proxy);
	if (!a || !conn_of(a)) {
		/* a connection on another loop (net_opts.spread), or a proxy
		 * that is no connection (an in-process link, src/embed/): it
		 * closes itself when the message arrives */
		struct actor_msg *m = actor_msg_new(NET_CLOSE);
		m->status = err ? err : KVN_ECLOSED;
		if (actor_send(proxy, m) != 0) {
			actor_msg_free(m);
			return KVN_ECLOSED;
		}
		return 0;
	}
	struct conn *c = conn_of(a);
	c->closing = 1;
	conn_fail(c, err);
	return 0;
}

void net_close(actor_id proxy)
{
	struct actor_msg *m = actor_msg_new(NET_CLOSE);
	if (actor_send(proxy, m) != 0)
		actor_msg_free(m);
}

int conn_accept(struct actor *owner, int fd, const char *remote, const struct auth_policy *pol,
		const struct net_opts *o, struct net_counter *cnt)
{
	return conn_accept_on(actor_loop_of(owner), owner, fd, remote, pol, o, cnt);
}

int conn_accept_on(struct actor_loop *loop, struct actor *owner, int fd, const char *remote,
		   const struct auth_policy *pol, const struct net_opts *o, struct net_counter *cnt)
{
	struct conn *c = conn_new(owner, o);
	struct actor *a;
	struct event_base *base = actor_loop_base(loop);
	int rc;

	evutil_make_socket_nonblocking(fd);
	c->fd = fd;
	c->pol = pol;
	c->state = C_HANDSHAKE;
	snprintf(c->remote, sizeof c->remote, "%s", remote);
	rc = actor_spawn(loop, &conn_ops, c, 1u << 16, &a);
	if (rc) {
		c->fd = -1;
		conn_free_unspawned(c);
		return rc;
	}
	c->self = a;
	c->owner_elsewhere = loop != actor_loop_of(owner);
	{
		const char *colon = strrchr(c->remote, ':');
		c->src_len = colon ? (size_t)(colon - c->remote) : strlen(c->remote);
	}
	c->cnt = cnt;
	NSTAT_ADD(conns_open, 1);
	NSTAT_ADD(conns_accepted, 1);
	kvn_metric_conn_accepted(c->o.metrics_role);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->reap = event_new(base, -1, 0, conn_reap_cb, c);
	if (!c->rev || !c->wev || !c->timer || !c->reap)
		kvn_fatal("out of memory");
	conn_arm_timer(c, c->o.handshake_timeout_ms);
	/* The listener may run on another loop than `loop` (net_opts.spread):
	 * from the event_add on, the connection is its loop's, and whatever it
	 * or an evictor does to the pool waits for cnt->mu, held until we are
	 * done with it here. */
	pthread_mutex_lock(&cnt->mu);
	cnt->refs++;
	/* not counted against max_connections until it authenticates (conn_up) */
	TAILQ_INSERT_TAIL(&cnt->pre, c, pre_link);
	cnt->preauth++;
	c->on_pre = 1;
	event_add(c->rev, NULL);
	pthread_mutex_unlock(&cnt->mu);
	return 0;
}
