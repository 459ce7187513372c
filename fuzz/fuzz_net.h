/*
 * fuzz_net.h: what fuzz_wire and fuzz_handshake share (header-only): the
 * secret and policy both sides know, a byte buffer, frames written as the
 * wire carries them (header | metadata | payload | tag under a session),
 * a socket end the harness plays, and the pump that runs the connection's
 * loop on this thread without ever blocking.
 */
#ifndef KVN_FUZZ_NET_H
#define KVN_FUZZ_NET_H

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"

#include "actors/actor.h"
#include "auth/auth.h"
#include "net/net_int.h"

static struct auth_secret fn_secret;
static struct auth_keyring fn_ring;
static struct auth_policy fn_pol;

static inline void fn_init_auth(void)
{
	for (int i = 0; i < 32; i++)
		fn_secret.key[i] = (uint8_t)(0x5a ^ i);
	fn_secret.len = 32;
	fn_ring.s[0] = fn_secret;
	fn_ring.n = 1;
	fn_pol.peer = &fn_ring;
	fn_pol.client = &fn_ring;
	snprintf(fn_pol.server_id, sizeof fn_pol.server_id, "fz-server");
}

struct fn_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void fn_add(struct fn_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			kvn_fatal("out of memory");
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static inline void fn_free(struct fn_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* One frame into b.  With a session, tagged under its send key (t is the
 * sender's tag context) as integrity mode header tags (the harnesses' conns
 * use net_opts_default: header, over the header and metadata only);
 * corrupt flips a bit of the tag. */
static inline void fn_frame(struct fn_buf *b, const struct wire_hdr *h, const uint8_t *meta, uint32_t mlen,
			    const uint8_t *pay, uint64_t plen, struct auth_session *s, struct auth_tag *t,
			    int corrupt)
{
	uint8_t raw[WIRE_HDR_LEN], tag[WIRE_TAG_LEN];
	wire_hdr_encode(h, raw);
	fn_add(b, raw, sizeof raw);
	fn_add(b, meta, mlen);
	fn_add(b, pay, (size_t)plen);
	if (s) {
		if (auth_tag_begin(t, s, AUTH_SEND) != 0)
			kvn_fatal("auth_tag_begin");
		auth_tag_update(t, raw, sizeof raw);
		auth_tag_update(t, meta, mlen);
		if (auth_tag_final(t, tag) != 0)
			kvn_fatal("auth_tag_final");
		if (corrupt)
			tag[corrupt % WIRE_TAG_LEN] ^= (uint8_t)(1u << (corrupt % 8));
		fn_add(b, tag, sizeof tag);
	}
}

/* Run everything the loop has to do now, without blocking. */
static inline void fn_pump(struct actor_loop *l)
{
	struct event_base *base = actor_loop_base(l);
	for (int i = 0; i < 4; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0 && i >= 1)
			break;
	}
}

/* Read what fd has (nonblocking) into b (NULL: discard).  0: EOF or error. */
static inline int fn_drain(int fd, struct fn_buf *b)
{
	uint8_t tmp[16384];
	for (;;) {
		ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
		if (n > 0) {
			if (b)
				fn_add(b, tmp, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 1;
		return 0;
	}
}

/* Write all of p (pumping the loop while the socket is full).  0 ok, -1
 * the other end is gone or stopped reading. */
static inline int fn_write(struct actor_loop *l, int fd, const uint8_t *p, size_t n)
{
	int idle = 0;
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			idle = 0;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		fn_pump(l);
		fn_drain(fd, NULL); /* its replies must not fill the other direction */
		if (++idle > 200)
			return -1; /* it stopped reading (paused, or closing): give up */
	}
	return 0;
}

/* A whole frame from the bytes in b (consumed from the front): 1 got one
 * (h, meta copied into mbuf up to cap), 0 not yet, -1 undecodable. */
static inline int fn_take_frame(struct fn_buf *b, struct wire_hdr *h, uint8_t *mbuf, size_t cap,
				size_t tag_len)
{
	if (b->len < WIRE_HDR_LEN)
		return 0;
	if (wire_hdr_decode(b->p, 1 << 20, h) != 0)
		return -1;
	size_t need = WIRE_HDR_LEN + h->meta_len + (size_t)h->payload_len + tag_len;
	if (b->len < need)
		return 0;
	if (h->meta_len > cap)
		return -1;
	memcpy(mbuf, b->p + WIRE_HDR_LEN, h->meta_len);
	memmove(b->p, b->p + need, b->len - need);
	b->len -= need;
	return 1;
}

/* Pump and read until a whole frame arrived on fd (bounded). */
static inline int fn_read_frame(struct actor_loop *l, int fd, struct fn_buf *in, struct wire_hdr *h,
				uint8_t *mbuf, size_t cap)
{
	for (int i = 0; i < 400; i++) {
		int rc = fn_take_frame(in, h, mbuf, cap, 0);
		if (rc)
			return rc;
		fn_pump(l);
		if (!fn_drain(fd, in)) {
			rc = fn_take_frame(in, h, mbuf, cap, 0);
			return rc ? rc : -1;
		}
		if (i > 20) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			poll(&pf, 1, 1);
		}
	}
	return -1;
}

#endif
