/*
 * conn_read: the input side of a connection.  Owns the read state machine
 * (header, metadata, payload, tag), the staging buffer for small frames, and
 * the direct reads of large payloads straight into the receiver's sink (a
 * PUT lands in arena pages, a GET reply in the caller's buffer) with the tag
 * computed while the bytes are hot in cache.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uthash.h>
#include <xxhash.h>

#include "base/base.h"
#include "base/metrics.h"
#include "net/net_int.h"

#define FILL_FIRST (16 * 1024)

/* Read what the socket has into ibuf.  1 progress, 0 would block, <0 error. */
static int conn_fill(struct conn *c)
{
	ssize_t n;

	if (c->budget == 0)
		return 0; /* level-triggered: the loop calls again */
	if (c->rpos == c->wpos)
		c->rpos = c->wpos = 0;
	else if (c->wpos == IBUF_CAP) {
		memmove(c->ibuf, c->ibuf + c->rpos, c->wpos - c->rpos);
		c->wpos -= c->rpos;
		c->rpos = 0;
	}
	/* Between frames read a small chunk: a large payload behind the header
	 * then goes straight to its sink instead of through this buffer.
	 * After a large frame, just the last one's header and metadata: if
	 * this one is alike, all of its payload goes direct. */
	size_t want = IBUF_CAP - c->wpos;
	if (c->rstate == R_HDR && c->rpos == c->wpos && want > FILL_FIRST)
		want = c->head_hint ? c->head_hint : FILL_FIRST;
	if (c->drained)
		return 0;
	n = read(c->fd, c->ibuf + c->wpos, want);
	if (n > 0) {
		/* a short read emptied the socket: do not ask again (and get
		 * EAGAIN) before epoll says there is more */
		if ((size_t)n < want)
			c->drained = 1;
		c->wpos += (size_t)n;
		c->budget = (uint64_t)n >= c->budget ? 0 : c->budget - (uint64_t)n;
		NSTAT_ADD(bytes_in, (uint64_t)n);
		kvn_metric_bytes_in(c->o.metrics_role, (uint64_t)n);
		return 1;
	}
	if (n == 0)
		return KVN_ECONN;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	return KVN_ECONN;
}

/* Make n contiguous bytes available at ibuf + rpos: 1 yes, 0 not yet, <0. */
static int conn_need(struct conn *c, size_t n)
{
	while (c->wpos - c->rpos < n) {
		if (c->rpos + n > IBUF_CAP) {
			memmove(c->ibuf, c->ibuf + c->rpos, c->wpos - c->rpos);
			c->wpos -= c->rpos;
			c->rpos = 0;
		}
		int rc = conn_fill(c);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

/* Sums of the sink's runs (actor_sink.seg_*): close every run that ends at
 * the iovec the sink has reached, empty runs included. */
static void seg_settle(struct conn *c)
{
	while (c->hseg < c->sink.nseg && c->sidx >= c->hseg_end) {
		c->sink.seg_sum[c->hseg] = XXH3_64bits_digest(c->xs);
		XXH3_64bits_reset(c->xs);
		if (++c->hseg < c->sink.nseg)
			c->hseg_end += c->sink.seg_niov[c->hseg];
		else
			*c->sink.seg_done = 1;
	}
}

/* 0, or KVN_ENOMEM (then no sums: the receiver computes its own). */
static int seg_begin(struct conn *c)
{
	if (!c->xs && !(c->xs = XXH3_createState()))
		return KVN_ENOMEM;
	XXH3_64bits_reset(c->xs);
	c->hseg = 0;
	c->hseg_end = c->sink.seg_niov[0];
	seg_settle(c);
	return 0;
}

static void sink_copy(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->sink.copied)
		*c->sink.copied += n;
	while (n > 0 && c->sidx < c->sink.niov) {
		struct iovec *v = &c->sink.iov[c->sidx];
		size_t room = v->iov_len - c->soff;
		size_t k = n < room ? n : room;
		memcpy((uint8_t *)v->iov_base + c->soff, p, k);
		if (c->sink.nseg)
			kvn_xxh3_update(c->xs, p, k);
		p += k;
		n -= k;
		c->soff += k;
		if (c->soff == v->iov_len) {
			c->sidx++;
			c->soff = 0;
			seg_settle(c);
		}
	}
}

static void consume_payload(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->sess && c->o.integrity == KVN_INTEGRITY_FRAME)
		auth_tag_update(c->tin, p, n);
	if (c->pmode == P_SINK)
		sink_copy(c, p, n);
	else if (c->pmode == P_BUF)
		evbuffer_add(c->pbuf, p, n);
	c->pay_left -= n;
}

static void tag_iov(struct conn *c, struct iovec *v, int k, size_t n)
{
	if (c->o.integrity != KVN_INTEGRITY_FRAME)
		return;
	for (int i = 0; i < k && n > 0; i++) {
		size_t len = v[i].iov_len < n ? v[i].iov_len : n;
		if (len && c->sess)
			auth_tag_update(c->tin, v[i].iov_base, len);
		n -= len;
	}
}

/* n bytes landed at the sink's position (readv): move past them, summing
 * them for the sink's runs while they are still in cache. */
static void sink_advance(struct conn *c, size_t n)
{
	while (n > 0) {
		size_t room = c->sink.iov[c->sidx].iov_len - c->soff;
		size_t adv = n < room ? n : room;
		if (c->sink.nseg)
			kvn_xxh3_update(c->xs, (uint8_t *)c->sink.iov[c->sidx].iov_base + c->soff, adv);
		c->soff += adv;
		n -= adv;
		if (c->soff == c->sink.iov[c->sidx].iov_len) {
			c->sidx++;
			c->soff = 0;
			seg_settle(c);
		}
	}
}

/* Whether [p, p + len) overlaps any of v[0..k). */
static int iov_overlaps(const struct iovec *v, int k, const uint8_t *p, size_t len)
{
	for (int i = 0; i < k; i++) {
		const uint8_t *b = v[i].iov_base;
		if (p < b + v[i].iov_len && b < p + len)
			return 1;
	}
	return 0;
}

/* Read payload bytes straight from the socket into their destination.
 * When this read can finish the payload, one more iovec takes what follows
 * (the tag, perhaps the next frame) into the empty staging buffer: the
 * frame then ends without a read of its own for 16 bytes. */
static int read_direct(struct conn *c)
{
	struct iovec v[17];
	struct evbuffer_iovec ev[2];
	int k = 0;
	uint64_t want = c->pay_left < c->budget ? c->pay_left : c->budget;
	ssize_t n;

	if (want == 0 || c->drained)
		return 0;
	if (c->pmode == P_SINK) {
		uint64_t left = want;
		size_t off = c->soff;
		for (int i = c->sidx; i < c->sink.niov && k < 16 && left > 0; i++, off = 0) {
			size_t len = c->sink.iov[i].iov_len - off;
			if (len > left)
				len = (size_t)left;
			uint8_t *base = (uint8_t *)c->sink.iov[i].iov_base + off;
			/* Discarded bytes share one scratch buffer: the tag is
			 * computed after readv returns, so one read never fills
			 * the same memory twice (the later bytes would hide the
			 * earlier ones from the tag). */
			if (iov_overlaps(v, k, base, len))
				break;
			v[k].iov_base = base;
			v[k].iov_len = len;
			left -= len;
			k++;
		}
	} else {
		if (want > (4u << 20))
			want = 4u << 20;
		int ne = evbuffer_reserve_space(c->pbuf, (ev_ssize_t)want, ev, 2);
		if (ne <= 0)
			return KVN_ENOMEM;
		uint64_t left = want;
		for (int i = 0; i < ne && left > 0; i++) {
			size_t len = ev[i].iov_len < left ? ev[i].iov_len : (size_t)left;
			v[k].iov_base = ev[i].iov_base;
			v[k].iov_len = len;
			left -= len;
			k++;
		}
	}
	size_t asked = 0;
	for (int i = 0; i < k; i++)
		asked += v[i].iov_len;
	int tail = 0; /* the staging-buffer iovec was added */
	if (asked == c->pay_left && c->rpos == c->wpos) {
		/* called only with the staging buffer drained */
		c->rpos = c->wpos = 0;
		v[k].iov_base = c->ibuf;
		v[k].iov_len = FILL_FIRST;
		k++;
		tail = 1;
	}
	n = readv(c->fd, v, k);
	if (n <= 0) {
		if (c->pmode == P_BUF)
			evbuffer_commit_space(c->pbuf, ev, 0);
		if (n == 0)
			return KVN_ECONN;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		return KVN_ECONN;
	}
	NSTAT_ADD(bytes_in, (uint64_t)n);
	kvn_metric_bytes_in(c->o.metrics_role, (uint64_t)n);
	c->budget = (uint64_t)n >= c->budget ? 0 : c->budget - (uint64_t)n;
	if ((size_t)n < asked + (tail ? FILL_FIRST : 0))
		c->drained = 1;
	if (tail) {
		k--; /* the payload's iovecs only, from here on */
		if ((size_t)n > asked) {
			c->wpos = (size_t)n - asked; /* the tag and what follows: parsed next */
			n = (ssize_t)asked;
		}
	}
	tag_iov(c, v, k, (size_t)n);
	if (c->pmode == P_SINK) {
		sink_advance(c, (size_t)n);
	} else {
		size_t left = (size_t)n;
		int used = 0;
		for (int i = 0; i < k; i++) {
			ev[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
			left -= ev[i].iov_len;
			if (ev[i].iov_len)
				used = i + 1;
		}
		evbuffer_commit_space(c->pbuf, ev, used);
	}
	c->pay_left -= (uint64_t)n;
	return 1;
}

/* The header and metadata are in: decide where the payload goes. */
static void payload_begin(struct conn *c)
{
	actor_id dst = c->owner;

	struct actor_frame h = { .type = c->h.type, .flags = c->h.flags, .meta_len = c->h.meta_len,
				 .payload_len = c->h.payload_len, .corr = c->h.corr };

	if (c->h.flags & WIRE_F_REPLY) {
		struct inflight *f;
		HASH_FIND(hh, c->inflight, &c->h.corr, sizeof c->h.corr, f);
		dst = f ? f->src : 0;
		if (f)
			h.corr = f->corr; /* the sink sees the caller's own corr */
	}
	c->pdst = dst;
	c->pmode = P_BUF;
	if (c->h.payload_len == 0)
		return;
	if (!dst) {
		c->pmode = P_DISCARD; /* late reply: nobody waits for these bytes */
		return;
	}
	struct actor *a = actor_lookup_sink(actor_loop_of(c->self), dst);
	if (a) {
		int rc = actor_sink_ask(a, actor_id_of(c->self), &h, c->meta, &c->sink);
		if (rc == 0) {
			uint64_t total = 0;
			for (int i = 0; i < c->sink.niov; i++)
				total += c->sink.iov[i].iov_len;
			if (total == c->h.payload_len) {
				c->pmode = P_SINK;
				if (c->sink.nseg < 0 || (c->sink.nseg > 0 && (!c->sink.seg_niov || !c->sink.seg_sum ||
									     !c->sink.seg_done || seg_begin(c) != 0)))
					c->sink.nseg = 0; /* no sums: the receiver hashes the bytes itself */
				return;
			}
			log_error("%s: sink of %llu bytes for a %llu-byte payload: discarding", actor_name(a),
				  (unsigned long long)total, (unsigned long long)c->h.payload_len);
			actor_sink_abort(a, c->sink.cookie);
			memset(&c->sink, 0, sizeof c->sink);
			c->pmode = P_DISCARD;
			c->sink_err = KVN_EIO;
			return;
		}
		if (rc < 0) {
			c->pmode = P_DISCARD;
			c->sink_err = rc;
			return;
		}
	}
	c->pbuf = evbuffer_new();
	if (!c->pbuf)
		kvn_fatal("out of memory");
}

/* A LOCAL_PUT (no payload: its values lie in the client's staging region,
 * mapped here): ask the receiver's sink hook for the pages it reserves and
 * where the bytes are, and copy them on this loop, summing each value in
 * cache, as a TCP payload lands; the receiver's loop only commits.  A sink
 * that declines leaves the copy to the receiver; a refusal is delivered as
 * sink_err.  Runs after the tag check: the metadata naming the bytes is
 * authenticated. */
#define LOCAL_COPY_CHUNK (64u * 1024u)
static void local_put_copy(struct conn *c)
{
	if (c->h.type != WIRE_LOCAL_PUT || (c->h.flags & WIRE_F_REPLY) || c->h.payload_len || !c->pdst)
		return;
	struct actor *a = actor_lookup_sink(actor_loop_of(c->self), c->pdst);
	if (!a)
		return;
	struct actor_frame h = { .type = c->h.type, .flags = c->h.flags, .meta_len = c->h.meta_len,
				 .payload_len = 0, .corr = c->h.corr };
	int rc = actor_sink_ask(a, actor_id_of(c->self), &h, c->meta, &c->sink);
	if (rc == 1)
		return;
	if (rc == 0 && !c->sink.src) {
		actor_sink_abort(a, c->sink.cookie);
		rc = KVN_EIO;
	}
	if (rc) {
		memset(&c->sink, 0, sizeof c->sink);
		c->sink_err = rc;
		return;
	}
	uint64_t total = 0;
	for (int i = 0; i < c->sink.niov; i++)
		total += c->sink.iov[i].iov_len;
	c->pmode = P_SINK;
	if (c->sink.nseg < 0 ||
	    (c->sink.nseg > 0 && (!c->sink.seg_niov || !c->sink.seg_sum || !c->sink.seg_done || seg_begin(c) != 0)))
		c->sink.nseg = 0; /* no sums: the receiver hashes the bytes itself */
	/* the source is the client's to write even now: each value's sum is
	 * taken from the pages just written (64 KiB at a time, in cache), so
	 * it always describes the bytes stored, never a changed source */
	const uint8_t *src = c->sink.src;
	for (size_t left = (size_t)total; left > 0 && c->sidx < c->sink.niov;) {
		struct iovec *v = &c->sink.iov[c->sidx];
		size_t k = v->iov_len - c->soff;
		if (k > LOCAL_COPY_CHUNK)
			k = LOCAL_COPY_CHUNK;
		if (k > left)
			k = left;
		uint8_t *dst = (uint8_t *)v->iov_base + c->soff;
		memcpy(dst, src, k);
		if (c->sink.nseg)
			kvn_xxh3_update(c->xs, dst, k);
		src += k;
		left -= k;
		c->soff += k;
		if (c->soff == v->iov_len) {
			c->sidx++;
			c->soff = 0;
			seg_settle(c);
		}
	}
}

static void deliver(struct conn *c)
{
	local_put_copy(c);
	struct actor_msg *m = actor_msg_new(c->h.type);
	actor_id dst = c->pdst;
	uint64_t corr = c->h.corr;

	if (c->h.flags & WIRE_F_REPLY) {
		struct inflight *f;
		HASH_FIND(hh, c->inflight, &c->h.corr, sizeof c->h.corr, f);
		if (!f || f->src != dst) {
			/* the caller's entry expired: drop, as the runtime drops late replies */
			conn_abort_sink(c);
			actor_msg_free(m);
			conn_reset_frame(c);
			return;
		}
		corr = f->corr;
		HASH_DEL(c->inflight, f);
		free(f);
	}
	m->flags = c->h.flags;
	m->status = c->h.status;
	m->corr = corr;
	m->src = actor_id_of(c->self);
	m->src_role = (uint8_t)(c->outgoing ? AUTH_ROLE_MASTER : c->role);
	m->meta = c->meta;
	m->meta_len = c->h.meta_len;
	c->meta = NULL;
	m->payload_len = c->h.payload_len;
	m->sink_err = c->sink_err;
	if (c->pmode == P_SINK)
		m->sink_cookie = c->sink.cookie;
	else if (c->pbuf) {
		m->payload = c->pbuf;
		c->pbuf = NULL;
	}
	NSTAT_ADD(frames_in, 1);
	int rc = actor_send(dst, m);
	if (rc) {
		if (m->sink_cookie) {
			struct actor *a = actor_lookup_sink(actor_loop_of(c->self), dst);
			if (a)
				actor_sink_abort(a, m->sink_cookie);
		}
		if (!(m->flags & WIRE_F_REPLY) && m->corr) {
			/* tell the remote now rather than let it wait for its deadline */
			struct actor_msg *r = actor_msg_new(m->type);
			r->flags = WIRE_F_REPLY;
			r->corr = m->corr;
			r->status = rc;
			conn_write_msg(c, r);
			actor_msg_free(r);
		}
		actor_msg_free(m);
	}
	memset(&c->sink, 0, sizeof c->sink);
	conn_reset_frame(c);
}

static int is_handshake_type(int t)
{
	return t >= WIRE_HELLO && t <= WIRE_REJECT;
}

/* Parse as many frames as the socket has.  <0: the connection must end. */
static int conn_read_frames(struct conn *c)
{
	int rc;

	for (;;) {
		if (c->state == C_CLOSED || c->state == C_DOWN || c->flush_then_close)
			return 0;
		switch (c->rstate) {
		case R_HDR:
			rc = conn_need(c, WIRE_HDR_LEN);
			if (rc <= 0)
				return rc;
			memcpy(c->hraw, c->ibuf + c->rpos, WIRE_HDR_LEN);
			c->rpos += WIRE_HDR_LEN;
			rc = wire_hdr_decode(c->hraw, c->o.max_payload, &c->h);
			if (rc) {
				uint64_t supp = 0;
				NSTAT_ADD(proto_err, 1);
				if (conn_log_ok(c, &supp))
					log_warn("net: bad frame header from %s (%s): %s; closing%s", c->remote,
						 conn_who(c), kvn_strerror(rc), CONN_SUPP(supp));
				if (c->state != C_UP && rc == KVN_EVERSION && !c->outgoing) {
					conn_send_hs(c, WIRE_REJECT, NULL, KVN_EVERSION);
					c->closing = 1;
					c->flush_then_close = 1;
					conn_flush(c);
					return 0;
				}
				return rc;
			}
			if (c->state != C_UP && !is_handshake_type(c->h.type)) {
				uint64_t supp = 0;
				NSTAT_ADD(auth_fail, 1);
				if (conn_log_ok(c, &supp))
					log_warn("auth: unauthenticated %s from %s: closing%s",
						 wire_type_name(c->h.type), c->remote, CONN_SUPP(supp));
				return KVN_EAUTH;
			}
			if (c->state == C_UP && is_handshake_type(c->h.type)) {
				NSTAT_ADD(proto_err, 1);
				return KVN_EPROTO;
			}
			if (c->sess) {
				rc = auth_tag_begin(c->tin, c->sess, AUTH_RECV);
				if (rc)
					return rc;
				auth_tag_update(c->tin, c->hraw, WIRE_HDR_LEN);
			}
			c->rstate = R_META;
			/* fall through */
		case R_META:
			if (c->h.meta_len) {
				rc = conn_need(c, c->h.meta_len);
				if (rc <= 0)
					return rc;
				c->meta = kvn_xmalloc(c->h.meta_len);
				memcpy(c->meta, c->ibuf + c->rpos, c->h.meta_len);
				c->rpos += c->h.meta_len;
				if (c->sess)
					auth_tag_update(c->tin, c->meta, c->h.meta_len);
			}
			if (c->state == C_UP)
				payload_begin(c);
			else if (c->h.payload_len) {
				NSTAT_ADD(proto_err, 1);
				return KVN_EPROTO;
			}
			c->pay_left = c->h.payload_len;
			c->head_hint = c->pmode != P_DISCARD && c->pay_left >= DIRECT_MIN + FILL_FIRST &&
					       c->h.meta_len <= FILL_FIRST - WIRE_HDR_LEN
					       ? WIRE_HDR_LEN + c->h.meta_len
					       : 0;
			c->rstate = R_PAY;
			/* fall through */
		case R_PAY:
			while (c->pay_left > 0) {
				size_t avail = c->wpos - c->rpos;
				if (avail) {
					size_t n = avail < c->pay_left ? avail : (size_t)c->pay_left;
					consume_payload(c, c->ibuf + c->rpos, n);
					c->rpos += n;
					continue;
				}
				if (c->pmode != P_DISCARD && c->pay_left >= DIRECT_MIN)
					rc = read_direct(c);
				else
					rc = conn_fill(c);
				if (rc <= 0)
					return rc;
			}
			c->rstate = R_TAG;
			/* fall through */
		case R_TAG:
			if (c->sess) {
				rc = conn_need(c, WIRE_TAG_LEN);
				if (rc <= 0)
					return rc;
				rc = auth_tag_verify(c->tin, c->ibuf + c->rpos);
				c->rpos += WIRE_TAG_LEN;
				if (rc) {
					uint64_t supp = 0;
					NSTAT_ADD(auth_fail, 1);
					if (conn_log_ok(c, &supp))
						log_warn("auth: bad tag on a %s frame from %s (%s %s): closing%s",
							 wire_type_name(c->h.type), c->remote,
							 auth_role_name(c->role), conn_who(c), CONN_SUPP(supp));
					return KVN_EAUTH;
				}
			}
			if (c->state == C_UP) {
				deliver(c);
			} else {
				int outgoing = c->outgoing;
				if (outgoing)
					conn_hs_client(c);
				else
					conn_hs_server(c);
				/* the handshake may have ended the connection */
				if (c->state == C_CLOSED || c->state == C_DOWN)
					return 0;
				conn_reset_frame(c);
			}
			break;
		}
	}
}

void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	/* busy: replies sent to us while we parse are queued, then written
	 * when we leave (no extra loop iteration) */
	actor_busy_enter(c->self);
	c->budget = READ_BUDGET;
	c->drained = 0;
	int rc = conn_read_frames(c);
	if (rc < 0)
		conn_fail(c, rc);
	actor_busy_leave(c->self);
}

