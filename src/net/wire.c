/*
 * wire: the frame header codec and the metadata writer/reader.  Pure
 * functions over byte buffers; every length is validated before anything is
 * allocated, so a hostile peer can make us refuse a frame but never allocate
 * for it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "net/net.h"

static const struct {
	int type;
	const char *name;
} type_names[] = {
	{ WIRE_HELLO, "HELLO" },
	{ WIRE_CHALLENGE, "CHALLENGE" },
	{ WIRE_PROOF, "PROOF" },
	{ WIRE_ACCEPT, "ACCEPT" },
	{ WIRE_REJECT, "REJECT" },
	{ WIRE_PING, "PING" },
	{ WIRE_PEER_ATTACH, "PEER_ATTACH" },
	{ WIRE_HEARTBEAT, "HEARTBEAT" },
	{ WIRE_EVENTS, "EVENTS" },
	{ WIRE_FULL_SYNC, "FULL_SYNC" },
	{ WIRE_ROUTE_PUT, "ROUTE_PUT" },
	{ WIRE_ROUTE_GET, "ROUTE_GET" },
	{ WIRE_STAT, "STAT" },
	{ WIRE_DURABLE, "DURABLE" },
	{ WIRE_PEER_LEAVE, "PEER_LEAVE" },
	{ WIRE_LEASE, "LEASE" },
	{ WIRE_RELEASE, "RELEASE" },
	{ WIRE_RENEW, "RENEW" },
	{ WIRE_LIST, "LIST" },
	{ WIRE_PUT, "PUT" },
	{ WIRE_GET, "GET" },
	{ WIRE_EXISTS, "EXISTS" },
	{ WIRE_REMOVE, "REMOVE" },
	{ WIRE_DROP_GEN, "DROP_GEN" },
	{ WIRE_ALLOC_SLOT, "ALLOC_SLOT" },
	{ WIRE_COMMIT_SLOT, "COMMIT_SLOT" },
	{ WIRE_ABORT_SLOT, "ABORT_SLOT" },
	{ WIRE_RESOLVE_KEY, "RESOLVE_KEY" },
	{ WIRE_PIN, "PIN" },
	{ WIRE_UNPIN, "UNPIN" },
	{ WIRE_EVICT_KEY, "EVICT_KEY" },
	{ WIRE_LOCAL_MAP, "LOCAL_MAP" },
	{ WIRE_LOCAL_GET, "LOCAL_GET" },
	{ WIRE_LOCAL_RELEASE, "LOCAL_RELEASE" },
	{ WIRE_LOCAL_PUT, "LOCAL_PUT" },
	{ NET_UP, "NET_UP" },
	{ NET_DOWN, "NET_DOWN" },
};

const char *wire_type_name(int type)
{
	for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return "UNKNOWN";
}

int wire_type_known(int type)
{
	if (type <= 0 || type > WIRE_TYPE_MAX_WIRE)
		return 0;
	return strcmp(wire_type_name(type), "UNKNOWN") != 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

/* Layout: magic u32 | version u8 | flags u8 | type u16 | meta_len u32 |
 * status i32 | payload_len u64 | corr u64 */
void wire_hdr_encode(const struct wire_hdr *h, uint8_t out[WIRE_HDR_LEN])
{
	put32(out, WIRE_MAGIC);
	out[4] = WIRE_VERSION;
	out[5] = h->flags;
	put16(out + 6, h->type);
	put32(out + 8, h->meta_len);
	put32(out + 12, (uint32_t)h->status);
	put64(out + 16, h->payload_len);
	put64(out + 24, h->corr);
}

int wire_hdr_decode(const uint8_t in[WIRE_HDR_LEN], uint64_t max_payload, struct wire_hdr *h)
{
	h->magic = get32(in);
	h->version = in[4];
	h->flags = in[5];
	h->type = get16(in + 6);
	h->meta_len = get32(in + 8);
	h->status = (int32_t)get32(in + 12);
	h->payload_len = get64(in + 16);
	h->corr = get64(in + 24);
	if (h->magic != WIRE_MAGIC)
		return KVN_EPROTO;
	if (h->version != WIRE_VERSION)
		return KVN_EVERSION;
	if (!wire_type_known(h->type))
		return KVN_EPROTO;
	if ((h->flags & ~WIRE_F_KNOWN) || ((h->flags & WIRE_F_ROUTES) && !(h->flags & WIRE_F_REPLY)))
		return KVN_EPROTO;
	if (h->status > 0 || h->status < KVN_ERR_MIN)
		return KVN_EPROTO;
	if (h->meta_len > WIRE_MAX_META || h->payload_len > max_payload)
		return KVN_ETOOBIG;
	return 0;
}

/* ---- writer ---- */

void wire_w_init(struct wire_w *w)
{
	memset(w, 0, sizeof *w);
}

void wire_w_fini(struct wire_w *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

static uint8_t *w_room(struct wire_w *w, uint32_t n)
{
	if (w->err)
		return NULL;
	if ((uint64_t)w->len + n > WIRE_MAX_META) {
		w->err = KVN_ETOOBIG;
		return NULL;
	}
	if (w->len + n > w->cap) {
		uint32_t cap = w->cap ? w->cap : 64;
		while (cap < w->len + n)
			cap *= 2;
		if (cap > WIRE_MAX_META)
			cap = WIRE_MAX_META;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->err = KVN_ENOMEM;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	if (n == 0)
		return NULL; /* nothing to write, and w->buf may still be NULL: no arithmetic on it */
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void wire_w_u8(struct wire_w *w, uint8_t v)
{
	uint8_t *p = w_room(w, 1);
	if (p)
		*p = v;
}

void wire_w_u16(struct wire_w *w, uint16_t v)
{
	uint8_t *p = w_room(w, 2);
	if (p)
		put16(p, v);
}

void wire_w_u32(struct wire_w *w, uint32_t v)
{
	uint8_t *p = w_room(w, 4);
	if (p)
		put32(p, v);
}

void wire_w_u64(struct wire_w *w, uint64_t v)
{
	uint8_t *p = w_room(w, 8);
	if (p)
		put64(p, v);
}

void wire_w_raw(struct wire_w *w, const void *src, uint32_t n)
{
	uint8_t *p = w_room(w, n);
	if (p && n)
		memcpy(p, src, n);
}

void wire_w_bytes(struct wire_w *w, const void *src, uint32_t n)
{
	wire_w_u32(w, n);
	wire_w_raw(w, src, n);
}

void wire_w_str(struct wire_w *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > 0xffff) {
		if (!w->err)
			w->err = KVN_EINVAL;
		return;
	}
	wire_w_u16(w, (uint16_t)n);
	wire_w_raw(w, s, (uint32_t)n);
}

void wire_w_key(struct wire_w *w, const void *k, size_t n)
{
	if (n == 0 || n > WIRE_MAX_KEY) {
		if (!w->err)
			w->err = KVN_EKEYLEN;
		return;
	}
	wire_w_u16(w, (uint16_t)n);
	wire_w_raw(w, k, (uint32_t)n);
}

int wire_w_to_msg(struct wire_w *w, struct actor_msg *m)
{
	if (w->err)
		return w->err;
	free(m->meta);
	m->meta = w->buf;
	m->meta_len = w->len;
	memset(w, 0, sizeof *w);
	return 0;
}

/* ---- reader ---- */

void wire_r_init(struct wire_r *r, const void *p, uint32_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

static const uint8_t *r_take(struct wire_r *r, uint32_t n)
{
	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = KVN_EPROTO;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t wire_r_u8(struct wire_r *r)
{
	const uint8_t *p = r_take(r, 1);
	return p ? *p : 0;
}

uint16_t wire_r_u16(struct wire_r *r)
{
	const uint8_t *p = r_take(r, 2);
	return p ? get16(p) : 0;
}

uint32_t wire_r_u32(struct wire_r *r)
{
	const uint8_t *p = r_take(r, 4);
	return p ? get32(p) : 0;
}

uint64_t wire_r_u64(struct wire_r *r)
{
	const uint8_t *p = r_take(r, 8);
	return p ? get64(p) : 0;
}

const uint8_t *wire_r_raw(struct wire_r *r, uint32_t n)
{
	return r_take(r, n);
}

const uint8_t *wire_r_bytes(struct wire_r *r, uint32_t max, uint32_t *n)
{
	uint32_t len = wire_r_u32(r);
	if (r->err)
		return NULL;
	if (len > max) {
		r->err = KVN_EPROTO;
		return NULL;
	}
	*n = len;
	return r_take(r, len);
}

void wire_r_str(struct wire_r *r, char *out, size_t cap)
{
	uint16_t n = wire_r_u16(r);
	const uint8_t *p = r_take(r, n);

	out[0] = '\0';
	if (!p)
		return;
	if ((size_t)n >= cap || memchr(p, '\0', n)) {
		r->err = KVN_EPROTO;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

const uint8_t *wire_r_key(struct wire_r *r, uint16_t *n)
{
	uint16_t len = wire_r_u16(r);
	if (r->err)
		return NULL;
	if (len == 0 || len > WIRE_MAX_KEY) {
		r->err = KVN_EKEYLEN;
		return NULL;
	}
	*n = len;
	return r_take(r, len);
}

int wire_r_end(const struct wire_r *r)
{
	if (r->err)
		return r->err;
	return r->off == r->len ? 0 : KVN_EPROTO;
}
