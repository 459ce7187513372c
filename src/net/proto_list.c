/*
 * proto_list: the encoders and decoders of LIST, the client's cursor
 * listing of the master's index (layouts in proto.h and docs/protocol.md,
 * "LIST").  Every field is range-checked here, so neither the master nor
 * the client loops over a count or trusts a cursor the bytes do not back.
 */
#include "config.h"

#include <string.h>

#include "net/proto.h"
#include "base/base.h"

int proto_list_enc(struct actor_msg *m, const struct proto_list_req *q)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u64(&w, q->cursor);
	wire_w_u32(&w, q->max);
	wire_w_bytes(&w, q->prefix, q->plen);
	return proto_finish(&w, m);
}

int proto_list_dec(const struct actor_msg *m, struct proto_list_req *q)
{
	struct wire_r r;
	memset(q, 0, sizeof *q);
	wire_r_init(&r, m->meta, m->meta_len);
	q->cursor = wire_r_u64(&r);
	q->max = wire_r_u32(&r);
	q->prefix = wire_r_bytes(&r, WIRE_MAX_KEY, &q->plen);
	if (r.err || wire_r_end(&r) != 0)
		return KVN_EPROTO;
	if (q->cursor >= PROTO_LIST_END || q->max < 1 || q->max > PROTO_LIST_MAX)
		return KVN_EPROTO;
	return 0;
}

void proto_list_reply_begin(struct wire_w *w, uint64_t next, uint32_t n)
{
	wire_w_u64(w, next);
	wire_w_u32(w, n);
}

void proto_list_reply_add(struct wire_w *w, const struct proto_list_ent *e)
{
	wire_w_key(w, e->key, e->klen);
	wire_w_u64(w, e->size);
	wire_w_u64(w, e->gen);
}

int proto_list_reply_open(struct wire_r *r, const struct actor_msg *m, uint64_t *next, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*next = wire_r_u64(r);
	*n = wire_r_u32(r);
	if (r->err)
		return r->err;
	/* not proto_check_count: a page may hold more than PROTO_MAX_ITEMS
	 * short keys; the bytes present bound the count */
	if (*next < 1 || *next > PROTO_LIST_END ||
	    (uint64_t)*n * proto_list_ent_len(1) > (uint64_t)(r->len - r->off)) {
		r->err = KVN_EPROTO;
		return KVN_EPROTO;
	}
	return 0;
}

int proto_list_reply_next(struct wire_r *r, struct proto_list_ent *e)
{
	e->key = wire_r_key(r, &e->klen);
	e->size = wire_r_u64(r);
	e->gen = wire_r_u64(r);
	if (!r->err && e->gen > PROTO_GEN_MAX)
		r->err = KVN_EPROTO;
	return r->err;
}
