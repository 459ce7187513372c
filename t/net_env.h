/* t/net_env.h: fixtures shared by the tests of authenticated connections:
 * an echo server actor (with a payload sink that splits into two iovecs), a
 * client actor driven by the test, keyrings, and raw-socket frame helpers
 * for men in the middle. */
#ifndef T_NET_ENV_H
#define T_NET_ENV_H

#include <event2/buffer.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"

/* ---- an echo server actor ---- */

struct server {
	int ups, downs;
	int last_role;
	int sunk; /* payload bytes received through the sink */
	/* the sink asks the connection for three run sums: the first iovec,
	 * an empty run, the second iovec */
	int seg_niov[3];
	uint64_t seg_sum[3];
	int seg_done, delivered_seg_done;
	uint8_t sinkbuf[1 << 20];
};

static inline int srv_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink)
{
	struct server *s = actor_state(self);
	static struct iovec iov[2];
	(void)from;
	(void)meta;
	if (h->type != WIRE_PUT || h->payload_len > sizeof s->sinkbuf)
		return 1;
	/* split in two iovecs to exercise scatter reads */
	size_t half = (size_t)h->payload_len / 2;
	iov[0].iov_base = s->sinkbuf;
	iov[0].iov_len = half;
	iov[1].iov_base = s->sinkbuf + half + 7; /* a gap, to prove the split is honoured */
	iov[1].iov_len = (size_t)h->payload_len - half;
	sink->iov = iov;
	sink->niov = 2;
	sink->cookie = s;
	s->seg_niov[0] = 1;
	s->seg_niov[1] = 0;
	s->seg_niov[2] = 1;
	memset(s->seg_sum, 0, sizeof s->seg_sum);
	s->seg_done = 0;
	sink->seg_niov = s->seg_niov;
	sink->seg_sum = s->seg_sum;
	sink->seg_done = &s->seg_done;
	sink->nseg = 3;
	return 0;
}

static inline int srv_handle(struct actor *self, struct actor_msg *m)
{
	struct server *s = actor_state(self);

	if (m->type == NET_UP) {
		s->ups++;
		s->last_role = m->src_role;
		return 0;
	}
	if (m->type == NET_DOWN) {
		s->downs++;
		return 0;
	}
	if (m->type == WIRE_PING) {
		/* echo metadata and payload back */
		struct actor_msg *r = actor_msg_new(WIRE_PING);
		if (m->meta_len) {
			r->meta = m->meta;
			r->meta_len = m->meta_len;
			m->meta = NULL;
		}
		r->payload = m->payload;
		m->payload = NULL;
		actor_reply(self, m, r, 0);
	} else if (m->type == WIRE_PUT) {
		if (m->sink_cookie) {
			s->sunk += (int)m->payload_len;
			s->delivered_seg_done = s->seg_done;
		}
		actor_reply_status(self, m, 0);
	}
	/* WIRE_STAT: never answered (the caller's deadline covers it) */
	return 0;
}

static const struct actor_ops srv_ops = { .name = "srv", .handle = srv_handle, .sink = srv_sink };

/* ---- a client actor driven by the test ---- */

struct client {
	int done, err, status, downs, ups;
	uint64_t meta_v;
	size_t paylen;
	uint8_t payload[4096];
};

static inline int cli_handle(struct actor *self, struct actor_msg *m)
{
	struct client *c = actor_state(self);
	if (m->type == NET_DOWN)
		c->downs++;
	if (m->type == NET_UP)
		c->ups++;
	return 0;
}

static const struct actor_ops cli_ops = { .name = "cli", .handle = cli_handle };

static inline int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct client *c = arg;
	(void)self;
	c->done = 1;
	c->err = err;
	if (reply) {
		c->status = reply->status;
		if (reply->meta_len == 8)
			memcpy(&c->meta_v, reply->meta, 8);
		c->paylen = reply->payload ? evbuffer_get_length(reply->payload) : 0;
		if (c->paylen && c->paylen <= sizeof c->payload)
			evbuffer_copyout(reply->payload, c->payload, c->paylen);
	}
	return 0;
}

static inline void make_ring(struct auth_keyring *kr, uint8_t fill)
{
	memset(kr, 0, sizeof *kr);
	kr->n = 1;
	kr->s[0].len = 32;
	memset(kr->s[0].key, fill, 32);
	kr->s[0].key[0] = 0x42; /* not all equal bytes */
}

struct cli_fix {
	struct actor_loop *loop;
	struct actor *a;
	struct client st;
	actor_id proxy;
};

/* A client actor on its own loop with a proxy to 127.0.0.1:port in
 * integrity mode `integrity` (enum kvn_integrity). */
static inline void cli_open_mode(struct cli_fix *f, uint16_t port, int role, const struct auth_secret *k,
				 int integrity)
{
	char addr[64];
	struct net_creds cr = { .role = role, .node_id = "t-client", .secret = k };
	struct net_opts o;

	memset(f, 0, sizeof *f);
	f->loop = actor_loop_new("t-cli");
	actor_spawn(f->loop, &cli_ops, &f->st, 1024, &f->a);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	net_opts_default(&o);
	o.connect_timeout_ms = 1000;
	o.handshake_timeout_ms = 1000;
	o.integrity = integrity;
	if (net_connect(f->a, addr, &cr, &o, &f->proxy) != 0)
		kvn_fatal("net_connect");
}

static inline void cli_open(struct cli_fix *f, uint16_t port, int role, const struct auth_secret *k)
{
	cli_open_mode(f, port, role, k, KVN_INTEGRITY_HEADER);
}

/* A PING with an 8-byte value and an optional payload; waits for the outcome. */
static inline int ping(struct cli_fix *f, uint64_t v, const void *pay, size_t plen, uint64_t timeout_ms)
{
	struct actor_msg *m = actor_msg_new(WIRE_PING);
	m->meta = kvn_xmalloc(8);
	memcpy(m->meta, &v, 8);
	m->meta_len = 8;
	if (plen) {
		m->payload = evbuffer_new();
		evbuffer_add(m->payload, pay, plen);
	}
	f->st.done = 0;
	f->st.err = 0;
	f->st.status = 0;
	f->st.meta_v = 0;
	f->st.paylen = 0;
	if (actor_call(f->a, f->proxy, m, timeout_ms, on_reply, &f->st) != 0) {
		actor_msg_free(m);
		return KVN_EINVAL;
	}
	actor_loop_run_until(f->loop, &f->st.done, kvn_now_ms() + timeout_ms + 2000);
	if (!f->st.done)
		return 1000; /* the runtime broke its exactly-once promise */
	return f->st.err ? f->st.err : f->st.status;
}

static inline void cli_close(struct cli_fix *f)
{
	actor_loop_free(f->loop);
}

static inline void settle(struct cli_fix *f, int ms)
{
	int never = 0;
	actor_loop_run_until(f->loop, &never, kvn_now_ms() + (uint64_t)ms);
}

static inline int read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 3000) <= 0)
			return -1;
		ssize_t r = read(fd, p + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static inline int write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Read one frame (tagged when after_hs) into buf; returns its length. */
static inline ssize_t read_frame(int fd, uint8_t *buf, size_t cap, int tagged)
{
	struct wire_hdr h;
	if (read_full(fd, buf, WIRE_HDR_LEN) != 0)
		return -1;
	if (wire_hdr_decode(buf, 1 << 20, &h) != 0)
		return -1;
	size_t n = WIRE_HDR_LEN + h.meta_len + (size_t)h.payload_len + (tagged ? WIRE_TAG_LEN : 0);
	if (n > cap || read_full(fd, buf + WIRE_HDR_LEN, n - WIRE_HDR_LEN) != 0)
		return -1;
	return (ssize_t)n;
}

static inline int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
