/*
 * proto_queue: encoders and decoders of the consumer queue's messages
 * (LEASE, RELEASE, RENEW and their replies; layouts in proto.h and
 * docs/protocol.md, "Consumer leases").  Every field is range-checked
 * here, so the master and the client see only values they may use.
 */
#include "config.h"

#include <string.h>

#include "net/proto.h"
#include "base/base.h"

/* ---- consumer leases ---- */

static int holder_ok(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

int proto_lease_enc(struct actor_msg *m, const struct proto_lease_req *q)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u32(&w, q->part_i);
	wire_w_u32(&w, q->part_n);
	wire_w_u32(&w, q->max);
	wire_w_u64(&w, q->ttl_ms);
	wire_w_str(&w, q->holder);
	return proto_finish(&w, m);
}

int proto_lease_dec(const struct actor_msg *m, struct proto_lease_req *q)
{
	struct wire_r r;
	char holder[PROTO_HOLDER_MAX + 2];
	wire_r_init(&r, m->meta, m->meta_len);
	q->part_i = wire_r_u32(&r);
	q->part_n = wire_r_u32(&r);
	q->max = wire_r_u32(&r);
	q->ttl_ms = wire_r_u64(&r);
	wire_r_str(&r, holder, sizeof holder);
	if (r.err || wire_r_end(&r) != 0)
		return KVN_EPROTO;
	if (q->part_n < 1 || q->part_n > PROTO_PART_MAX || q->part_i >= q->part_n || q->max < 1 ||
	    q->max > PROTO_LEASE_MAX || q->ttl_ms < 1 || q->ttl_ms > PROTO_TTL_MAX_MS ||
	    strlen(holder) > PROTO_HOLDER_MAX || !holder_ok(holder))
		return KVN_EPROTO;
	memcpy(q->holder, holder, strlen(holder) + 1);
	return 0;
}

void proto_lease_reply_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

void proto_lease_reply_add(struct wire_w *w, const struct proto_lease_ref *ref)
{
	wire_w_u64(w, ref->lease_id);
	wire_w_key(w, ref->key, ref->klen);
	wire_w_u64(w, ref->gen);
	wire_w_str(w, ref->node_id);
	wire_w_u64(w, ref->size);
	wire_w_u64(w, ref->deadline_ms);
}

size_t proto_lease_ref_len(uint16_t klen, const char *node_id)
{
	return 8 + 2 + (size_t)klen + 8 + 2 + strlen(node_id) + 8 + 8;
}

#define LEASE_REF_MIN (8 + 3 + 8 + 2 + 8 + 8)

int proto_lease_reply_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*n = wire_r_u32(r);
	if (!r->err && *n > PROTO_LEASE_MAX)
		r->err = KVN_EPROTO;
	return proto_check_count(r, *n, LEASE_REF_MIN);
}

int proto_lease_reply_next(struct wire_r *r, struct proto_lease_ref *ref)
{
	ref->lease_id = wire_r_u64(r);
	ref->key = wire_r_key(r, &ref->klen);
	ref->gen = wire_r_u64(r);
	wire_r_str(r, ref->node_id, sizeof ref->node_id);
	ref->size = wire_r_u64(r);
	ref->deadline_ms = wire_r_u64(r);
	if (!r->err && (ref->lease_id == 0 || ref->gen == 0 || ref->gen > PROTO_GEN_MAX))
		r->err = KVN_EPROTO;
	return r->err;
}

void proto_release_begin(struct wire_w *w, uint8_t flags, uint32_t n)
{
	wire_w_u8(w, flags);
	wire_w_u32(w, n);
}

void proto_renew_begin(struct wire_w *w, uint64_t ttl_ms, uint32_t n)
{
	wire_w_u64(w, ttl_ms);
	wire_w_u32(w, n);
}

void proto_ids_add(struct wire_w *w, uint64_t lease_id)
{
	wire_w_u64(w, lease_id);
}

/* n ids, exactly what is left of the message */
static int ids_check(struct wire_r *r, uint32_t n)
{
	if (!r->err && (n == 0 || n > PROTO_MAX_ITEMS || (uint64_t)n * 8 != (uint64_t)(r->len - r->off)))
		r->err = KVN_EPROTO;
	return r->err;
}

int proto_release_open(struct wire_r *r, const struct actor_msg *m, uint8_t *flags, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*flags = wire_r_u8(r);
	*n = wire_r_u32(r);
	if (!r->err && ((*flags & ~(PROTO_RELEASE_RETAIN | PROTO_RELEASE_RETURN)) ||
			*flags == (PROTO_RELEASE_RETAIN | PROTO_RELEASE_RETURN)))
		r->err = KVN_EPROTO;
	return ids_check(r, *n);
}

int proto_renew_open(struct wire_r *r, const struct actor_msg *m, uint64_t *ttl_ms, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*ttl_ms = wire_r_u64(r);
	*n = wire_r_u32(r);
	if (!r->err && (*ttl_ms < 1 || *ttl_ms > PROTO_TTL_MAX_MS))
		r->err = KVN_EPROTO;
	return ids_check(r, *n);
}

int proto_ids_next(struct wire_r *r, uint64_t *lease_id)
{
	*lease_id = wire_r_u64(r);
	return r->err;
}

void proto_lstat_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

void proto_lstat_add(struct wire_w *w, int32_t status, uint64_t deadline_ms)
{
	wire_w_u32(w, (uint32_t)status);
	wire_w_u64(w, deadline_ms);
}

int proto_lstat_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*n = wire_r_u32(r);
	if (!r->err && (uint64_t)*n * 12 != (uint64_t)(r->len - r->off))
		r->err = KVN_EPROTO;
	return r->err;
}

int proto_lstat_next(struct wire_r *r, int32_t *status, uint64_t *deadline_ms)
{
	*status = (int32_t)wire_r_u32(r);
	*deadline_ms = wire_r_u64(r);
	if (!r->err && (*status > 0 || *status < KVN_ERR_MIN))
		r->err = KVN_EPROTO;
	return r->err;
}
