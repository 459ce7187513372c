/*
 * proto_local: the metadata of the same-host path's messages (LOCAL_MAP,
 * LOCAL_GET, LOCAL_RELEASE; LOCAL_PUT is an offset before a PUT's own
 * metadata).  Every field a peer sends is range-checked here before the
 * client uses it to touch memory.
 */
#include "config.h"

#include <string.h>

#include "net/proto.h"

int proto_local_map_enc(struct wire_w *w, const struct proto_local_map *lm)
{
	wire_w_str(w, lm->node_id);
	wire_w_str(w, lm->host);
	wire_w_str(w, lm->sock);
	wire_w_u8(w, lm->local);
	if (lm->local) {
		wire_w_raw(w, lm->token, PROTO_TOKEN_LEN);
		wire_w_u64(w, lm->arena_len);
		wire_w_u64(w, lm->page_size);
		wire_w_u64(w, lm->staging_len);
	}
	return w->err;
}

int proto_local_map_dec(const struct actor_msg *m, struct proto_local_map *lm)
{
	struct wire_r r;
	memset(lm, 0, sizeof *lm);
	wire_r_init(&r, m->meta, m->meta_len);
	wire_r_str(&r, lm->node_id, sizeof lm->node_id);
	wire_r_str(&r, lm->host, sizeof lm->host);
	wire_r_str(&r, lm->sock, sizeof lm->sock);
	lm->local = wire_r_u8(&r);
	if (lm->local == 1) {
		const uint8_t *t = wire_r_raw(&r, PROTO_TOKEN_LEN);
		if (t)
			memcpy(lm->token, t, PROTO_TOKEN_LEN);
		lm->arena_len = wire_r_u64(&r);
		lm->page_size = wire_r_u64(&r);
		lm->staging_len = wire_r_u64(&r);
		if (!r.err && (lm->arena_len == 0 || lm->page_size == 0 || lm->page_size > PROTO_MAX_PAGE ||
			       (lm->page_size & (lm->page_size - 1)) != 0))
			return KVN_EPROTO;
	} else if (lm->local != 0) {
		return KVN_EPROTO;
	}
	return wire_r_end(&r);
}

void proto_local_res_add(struct wire_w *w, const struct proto_local_res *res)
{
	wire_w_u32(w, (uint32_t)res->status);
	wire_w_u8(w, res->how);
	wire_w_u64(w, res->gen);
	wire_w_u64(w, res->size);
	wire_w_u64(w, res->checksum);
	wire_w_u64(w, res->lease_id);
	wire_w_u32(w, res->stamp);
	wire_w_u8(w, res->next);
	for (int i = 0; i < res->next; i++) {
		wire_w_u64(w, res->off[i]);
		wire_w_u64(w, res->len[i]);
	}
}

int proto_local_res_next(struct wire_r *r, struct proto_local_res *res)
{
	uint64_t total = 0;
	res->status = (int32_t)wire_r_u32(r);
	res->how = wire_r_u8(r);
	res->gen = wire_r_u64(r);
	res->size = wire_r_u64(r);
	res->checksum = wire_r_u64(r);
	res->lease_id = wire_r_u64(r);
	res->stamp = wire_r_u32(r);
	res->next = wire_r_u8(r);
	if (r->err)
		return r->err;
	if (res->how > PROTO_LOCAL_GET || res->next > PROTO_LOCAL_MAX_EXT)
		return r->err = KVN_EPROTO;
	for (int i = 0; i < res->next; i++) {
		res->off[i] = wire_r_u64(r);
		res->len[i] = wire_r_u64(r);
		if (res->len[i] > UINT64_MAX - total)
			return r->err = KVN_EPROTO;
		total += res->len[i];
	}
	if (!r->err && res->status == 0 && res->how == PROTO_LOCAL_HERE && total != res->size)
		return r->err = KVN_EPROTO;
	return r->err;
}

void proto_local_release_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

int proto_local_release_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*n = wire_r_u32(r);
	if (!r->err && (*n == 0 || *n > PROTO_MAX_ITEMS || (uint64_t)*n * 8 != (uint64_t)(r->len - r->off)))
		r->err = KVN_EPROTO;
	return r->err;
}
