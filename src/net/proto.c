/*
 * proto: encoders and decoders for the role messages (layouts in proto.h
 * and docs/protocol.md).  Decoders validate counts against the bytes that
 * are actually there before anyone loops over them.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "net/proto.h"
#include "base/base.h"

int proto_finish(struct wire_w *w, struct actor_msg *m)
{
	int rc = wire_w_to_msg(w, m);
	wire_w_fini(w);
	return rc;
}

/* A count claims n items of at least min_item bytes each: refuse a count
 * the remaining metadata cannot hold, before anybody loops over it. */
int proto_check_count(struct wire_r *r, uint32_t n, uint32_t min_item)
{
	if (r->err)
		return r->err;
	if (n > PROTO_MAX_ITEMS || (uint64_t)n * min_item > (uint64_t)(r->len - r->off)) {
		r->err = KVN_EPROTO;
		return KVN_EPROTO;
	}
	return 0;
}

int proto_reply(struct actor *self, const struct actor_msg *req, struct wire_w *w, struct evbuffer *payload,
		int status)
{
	struct actor_msg *r = actor_msg_new(req->type);
	int rc = wire_w_to_msg(w, r);
	if (rc) {
		wire_w_fini(w);
		if (payload)
			evbuffer_free(payload);
		actor_msg_free(r);
		actor_reply_status(self, req, rc);
		return rc;
	}
	r->payload = payload;
	actor_reply(self, req, r, status);
	return 0;
}

/* ---- PING ---- */

int proto_ping_reply_enc(struct actor_msg *m, uint32_t peers, const char *server_id)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u32(&w, peers);
	wire_w_str(&w, server_id);
	return proto_finish(&w, m);
}

int proto_ping_reply_dec(const struct actor_msg *m, uint32_t *peers, char *server_id, size_t cap)
{
	struct wire_r r;
	wire_r_init(&r, m->meta, m->meta_len);
	*peers = wire_r_u32(&r);
	wire_r_str(&r, server_id, cap);
	return wire_r_end(&r);
}

/* ---- node description ---- */

int proto_node_enc(struct actor_msg *m, const struct proto_node *n)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_str(&w, n->node_id);
	wire_w_str(&w, n->addr);
	wire_w_u64(&w, n->boot_id);
	wire_w_u64(&w, n->dram_total);
	wire_w_u64(&w, n->dram_used);
	wire_w_u64(&w, n->disk_total);
	wire_w_u64(&w, n->disk_used);
	wire_w_u64(&w, n->dram_pending);
	wire_w_u64(&w, n->last_seq);
	wire_w_u64(&w, n->keys);
	wire_w_u64(&w, n->max_gen);
	wire_w_u64(&w, n->page_size);
	wire_w_u64(&w, n->dram_evictable);
	wire_w_u8(&w, n->flags);
	return proto_finish(&w, m);
}

int proto_node_dec(const struct actor_msg *m, struct proto_node *n)
{
	struct wire_r r;
	memset(n, 0, sizeof *n);
	wire_r_init(&r, m->meta, m->meta_len);
	wire_r_str(&r, n->node_id, sizeof n->node_id);
	wire_r_str(&r, n->addr, sizeof n->addr);
	n->boot_id = wire_r_u64(&r);
	n->dram_total = wire_r_u64(&r);
	n->dram_used = wire_r_u64(&r);
	n->disk_total = wire_r_u64(&r);
	n->disk_used = wire_r_u64(&r);
	n->dram_pending = wire_r_u64(&r);
	n->last_seq = wire_r_u64(&r);
	n->keys = wire_r_u64(&r);
	n->max_gen = wire_r_u64(&r);
	n->page_size = wire_r_u64(&r);
	n->dram_evictable = wire_r_u64(&r);
	n->flags = wire_r_u8(&r);
	if (!r.err && (n->flags & ~PROTO_NODE_EVICTS))
		return KVN_EPROTO;
	if (!r.err && n->node_id[0] == '\0')
		return KVN_EPROTO;
	if (!r.err && (n->page_size > PROTO_MAX_PAGE || (n->page_size & (n->page_size - 1)) != 0))
		return KVN_EPROTO;
	if (!r.err && n->dram_evictable > n->dram_total)
		return KVN_EPROTO;
	return wire_r_end(&r);
}

int proto_ack_enc(struct actor_msg *m, const struct proto_ack *a)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u64(&w, a->applied_seq);
	wire_w_u64(&w, a->durable_seq);
	wire_w_u8(&w, a->need_full_sync);
	wire_w_u32(&w, a->epoch);
	return proto_finish(&w, m);
}

int proto_ack_dec(const struct actor_msg *m, struct proto_ack *a)
{
	struct wire_r r;
	wire_r_init(&r, m->meta, m->meta_len);
	a->applied_seq = wire_r_u64(&r);
	a->durable_seq = wire_r_u64(&r);
	a->need_full_sync = wire_r_u8(&r);
	a->epoch = wire_r_u32(&r);
	return wire_r_end(&r);
}

/* ---- events ---- */

void proto_events_begin(struct wire_w *w, const char *node_id, uint64_t boot_id, uint32_t n)
{
	wire_w_str(w, node_id);
	wire_w_u64(w, boot_id);
	wire_w_u32(w, n);
}

void proto_events_add(struct wire_w *w, const struct proto_event *e)
{
	wire_w_u64(w, e->seq);
	wire_w_u8(w, e->kind);
	wire_w_key(w, e->key, e->klen);
	wire_w_u64(w, e->gen);
	wire_w_u8(w, e->tier);
	wire_w_u64(w, e->size);
	wire_w_u8(w, e->flags);
}

#define EVENT_MIN_BYTES (8 + 1 + 3 + 8 + 1 + 8 + 1)

int proto_events_open(struct wire_r *r, const struct actor_msg *m, char *node_id, size_t cap,
		      uint64_t *boot_id, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	wire_r_str(r, node_id, cap);
	*boot_id = wire_r_u64(r);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, EVENT_MIN_BYTES);
}

int proto_events_next(struct wire_r *r, struct proto_event *e)
{
	e->seq = wire_r_u64(r);
	e->kind = wire_r_u8(r);
	e->key = wire_r_key(r, &e->klen);
	e->gen = wire_r_u64(r);
	e->tier = wire_r_u8(r);
	e->size = wire_r_u64(r);
	e->flags = wire_r_u8(r);
	if (!r->err && e->kind != PROTO_EV_ADD && e->kind != PROTO_EV_REMOVE)
		r->err = KVN_EPROTO;
	return r->err;
}

void proto_sync_begin(struct wire_w *w, const struct proto_sync_hdr *h)
{
	wire_w_str(w, h->node_id);
	wire_w_u64(w, h->boot_id);
	wire_w_u64(w, h->seq);
	wire_w_u32(w, h->chunk);
	wire_w_u8(w, h->last);
	wire_w_u32(w, h->n);
}

void proto_sync_add(struct wire_w *w, const struct proto_event *e)
{
	wire_w_key(w, e->key, e->klen);
	wire_w_u64(w, e->gen);
	wire_w_u8(w, e->tier);
	wire_w_u64(w, e->size);
	wire_w_u8(w, e->flags & (PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN));
}

int proto_sync_open(struct wire_r *r, const struct actor_msg *m, struct proto_sync_hdr *h)
{
	wire_r_init(r, m->meta, m->meta_len);
	wire_r_str(r, h->node_id, sizeof h->node_id);
	h->boot_id = wire_r_u64(r);
	h->seq = wire_r_u64(r);
	h->chunk = wire_r_u32(r);
	h->last = wire_r_u8(r);
	h->n = wire_r_u32(r);
	return proto_check_count(r, h->n, 3 + 8 + 1 + 8 + 1);
}

int proto_sync_next(struct wire_r *r, struct proto_event *e)
{
	memset(e, 0, sizeof *e);
	e->kind = PROTO_EV_ADD;
	e->key = wire_r_key(r, &e->klen);
	e->gen = wire_r_u64(r);
	e->tier = wire_r_u8(r);
	e->size = wire_r_u64(r);
	e->flags = wire_r_u8(r);
	if (!r->err && (e->flags & ~(PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN)))
		r->err = KVN_EPROTO;
	return r->err;
}

int proto_durable_enc(struct actor_msg *m, uint64_t durable_seq)
{
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u64(&w, durable_seq);
	return proto_finish(&w, m);
}

int proto_durable_dec(const struct actor_msg *m, uint64_t *durable_seq)
{
	struct wire_r r;
	wire_r_init(&r, m->meta, m->meta_len);
	*durable_seq = wire_r_u64(&r);
	return wire_r_end(&r);
}

int proto_durable_fail_enc(struct actor_msg *m, uint64_t durable_seq, uint64_t failed_upto, const char *reason)
{
	char buf[PROTO_REASON_MAX];
	struct wire_w w;
	snprintf(buf, sizeof buf, "%s", reason ? reason : "");
	wire_w_init(&w);
	wire_w_u64(&w, durable_seq);
	wire_w_u64(&w, failed_upto);
	wire_w_str(&w, buf);
	return proto_finish(&w, m);
}

int proto_durable_fail_dec(const struct actor_msg *m, uint64_t *durable_seq, uint64_t *failed_upto,
			   char reason[PROTO_REASON_MAX])
{
	struct wire_r r;
	wire_r_init(&r, m->meta, m->meta_len);
	*durable_seq = wire_r_u64(&r);
	*failed_upto = 0;
	reason[0] = '\0';
	if (r.err == 0 && r.off < r.len) {
		*failed_upto = wire_r_u64(&r);
		wire_r_str(&r, reason, PROTO_REASON_MAX);
	}
	return wire_r_end(&r);
}

/* ---- keys ---- */

void proto_keys_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

void proto_keys_add(struct wire_w *w, const void *key, size_t klen)
{
	wire_w_key(w, key, klen);
}

int proto_keys_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, 3);
}

int proto_keys_next(struct wire_r *r, const uint8_t **key, uint16_t *klen)
{
	*key = wire_r_key(r, klen);
	return r->err;
}

/* ---- ROUTE_PUT ---- */

void proto_route_put_begin(struct wire_w *w, const char *const *exclude, uint32_t nexclude, uint32_t n)
{
	wire_w_u32(w, nexclude);
	for (uint32_t i = 0; i < nexclude; i++)
		wire_w_str(w, exclude[i]);
	wire_w_u32(w, n);
}

void proto_route_put_add(struct wire_w *w, const void *key, size_t klen, uint64_t size)
{
	wire_w_key(w, key, klen);
	wire_w_u64(w, size);
}

int proto_route_put_open(struct wire_r *r, const struct actor_msg *m, char (*ex)[65], uint32_t max,
			 uint32_t *nexclude, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*nexclude = wire_r_u32(r);
	if (!r->err && *nexclude > max)
		r->err = KVN_EPROTO;
	for (uint32_t i = 0; i < *nexclude && !r->err; i++)
		wire_r_str(r, ex[i], 65);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, 3 + 8);
}

int proto_route_put_next(struct wire_r *r, const uint8_t **key, uint16_t *klen, uint64_t *size)
{
	*key = wire_r_key(r, klen);
	*size = wire_r_u64(r);
	return r->err;
}

/* ---- route replies ---- */

void proto_routes_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

/* Fields, not a struct proto_route: the master writes routes straight from
 * its index entries, with no 200-byte struct to clear and copy strings
 * into per key. */
void proto_routes_add(struct wire_w *w, int32_t status, const char *node_id, const char *addr, uint64_t gen,
		      uint8_t tier, uint64_t size)
{
	wire_w_u32(w, (uint32_t)status);
	wire_w_str(w, node_id ? node_id : "");
	wire_w_str(w, addr ? addr : "");
	wire_w_u64(w, gen);
	wire_w_u8(w, tier);
	wire_w_u64(w, size);
}

int proto_routes_open(struct wire_r *r, const struct actor_msg *m, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, 4 + 2 + 2 + 8 + 1 + 8);
}

int proto_routes_next(struct wire_r *r, struct proto_route *rt)
{
	rt->status = (int32_t)wire_r_u32(r);
	wire_r_str(r, rt->node_id, sizeof rt->node_id);
	wire_r_str(r, rt->addr, sizeof rt->addr);
	rt->gen = wire_r_u64(r);
	rt->tier = wire_r_u8(r);
	rt->size = wire_r_u64(r);
	memset(&rt->grant, 0, sizeof rt->grant);
	if (!r->err && (rt->status > 0 || rt->status < KVN_ERR_MIN || rt->gen > PROTO_GEN_MAX))
		r->err = KVN_EPROTO;
	return r->err;
}

static void grant_w(struct wire_w *w, const struct proto_grant *g)
{
	static const struct proto_grant none;
	if (!g)
		g = &none;
	wire_w_u64(w, g->expiry_ms);
	wire_w_u64(w, g->size);
	wire_w_raw(w, g->mac, sizeof g->mac);
}

static int grant_r(struct wire_r *r, struct proto_grant *g)
{
	g->expiry_ms = wire_r_u64(r);
	g->size = wire_r_u64(r);
	const uint8_t *mac = wire_r_raw(r, sizeof g->mac);
	if (mac)
		memcpy(g->mac, mac, sizeof g->mac);
	else
		memset(g, 0, sizeof *g);
	return r->err;
}

void proto_route_grants_add(struct wire_w *w, const struct proto_grant *g)
{
	grant_w(w, g);
}

int proto_route_grants_next(struct wire_r *r, struct proto_grant *g)
{
	return grant_r(r, g);
}

/* ---- data path items ---- */

void proto_items_begin(struct wire_w *w, uint8_t flags, uint32_t n)
{
	wire_w_u8(w, flags);
	wire_w_u32(w, n);
}

void proto_items_add(struct wire_w *w, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	KVN_ASSERT(w->err || (w->len > 0 && !(w->buf[0] & PROTO_ITEMS_SUM)));
	wire_w_key(w, key, klen);
	wire_w_u64(w, gen);
	wire_w_u64(w, size);
}

void proto_items_add_sum(struct wire_w *w, const void *key, size_t klen, uint64_t gen, uint64_t size,
			 uint64_t checksum, uint64_t ttl_ms)
{
	KVN_ASSERT(w->err || (w->len > 0 && (w->buf[0] & PROTO_ITEMS_SUM)));
	wire_w_key(w, key, klen);
	wire_w_u64(w, gen);
	wire_w_u64(w, size);
	wire_w_u64(w, checksum);
	wire_w_u64(w, ttl_ms);
}

int proto_items_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint8_t *flags,
		     uint32_t *n)
{
	wire_r_init(r, meta, meta_len);
	*flags = wire_r_u8(r);
	*n = wire_r_u32(r);
	if (!r->err && (*n == 0 || (*flags & ~PROTO_ITEMS_FLAGS)))
		r->err = KVN_EPROTO;
	return proto_check_count(r, *n, 3 + 8 + 8 + ((*flags & PROTO_ITEMS_SUM) ? 16 : 0));
}

int proto_items_next(struct wire_r *r, struct proto_item *it)
{
	/* the header proto_items_open read: the layout of every item */
	int sum = r->len > 0 && (r->p[0] & PROTO_ITEMS_SUM);

	it->key = wire_r_key(r, &it->klen);
	it->gen = wire_r_u64(r);
	it->size = wire_r_u64(r);
	it->checksum = sum ? wire_r_u64(r) : 0;
	it->ttl_ms = sum ? wire_r_u64(r) : 0;
	if (!r->err && (it->gen > PROTO_GEN_MAX || it->ttl_ms > PROTO_TTL_MAX_MS))
		r->err = KVN_EPROTO;
	return r->err;
}

void proto_pin_end(struct wire_w *w, uint64_t ttl_ms)
{
	wire_w_u64(w, ttl_ms);
}

int proto_pin_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n, uint64_t *ttl_ms)
{
	struct proto_item it;
	uint8_t flags;

	*ttl_ms = 0;
	if (proto_items_open(r, meta, meta_len, &flags, n) != 0)
		return r->err;
	if (flags != 0)
		return KVN_EPROTO;
	for (uint32_t i = 0; i < *n; i++)
		if (proto_items_next(r, &it) != 0)
			return r->err;
	uint64_t ttl = wire_r_u64(r);
	int rc = wire_r_end(r);
	if (rc)
		return rc;
	if (ttl == 0 || ttl > PROTO_TTL_MAX_MS)
		return KVN_EPROTO;
	*ttl_ms = ttl;
	return proto_items_open(r, meta, meta_len, &flags, n);
}

void proto_grants_add(struct wire_w *w, const struct proto_grant *g)
{
	grant_w(w, g);
}

int proto_grants_open(const struct wire_r *r, uint32_t n, struct wire_r *g)
{
	if (r->err)
		return r->err;
	uint32_t left = r->len - r->off;
	if (left == 0)
		return 0;
	if ((uint64_t)left != (uint64_t)n * PROTO_GRANT_LEN)
		return KVN_EPROTO;
	wire_r_init(g, r->p + r->off, left);
	return 1;
}

int proto_grants_next(struct wire_r *g, struct proto_grant *out)
{
	return grant_r(g, out);
}

void proto_grants_set(uint8_t *meta, uint32_t meta_len, uint32_t n, uint32_t i, const struct proto_grant *g)
{
	size_t off = (size_t)meta_len - (size_t)(n - i) * PROTO_GRANT_LEN;

	KVN_ASSERT(i < n && (size_t)n * PROTO_GRANT_LEN <= meta_len);
	for (int b = 0; b < 8; b++) {
		meta[off + (size_t)b] = (uint8_t)(g->expiry_ms >> (8 * b));
		meta[off + 8 + (size_t)b] = (uint8_t)(g->size >> (8 * b));
	}
	memcpy(meta + off + 16, g->mac, sizeof g->mac);
}

void proto_items_set_gen(uint8_t *meta, uint32_t meta_len, const struct proto_item *it, uint64_t gen)
{
	/* the layout proto_items_add writes: key bytes, then gen (u64 LE) */
	size_t off = (size_t)(it->key - meta) + it->klen;

	KVN_ASSERT(it->key >= meta && off + 8 <= meta_len);
	for (int i = 0; i < 8; i++)
		meta[off + (size_t)i] = (uint8_t)(gen >> (8 * i));
}

void proto_results_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

void proto_results_add(struct wire_w *w, const struct proto_result *res)
{
	wire_w_u32(w, (uint32_t)res->status);
	wire_w_u64(w, res->gen);
	wire_w_u64(w, res->size);
	wire_w_u64(w, res->checksum);
}

int proto_results_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n)
{
	wire_r_init(r, meta, meta_len);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, PROTO_RESULT_LEN);
}

int proto_results_next(struct wire_r *r, struct proto_result *res)
{
	res->status = (int32_t)wire_r_u32(r);
	res->gen = wire_r_u64(r);
	res->size = wire_r_u64(r);
	res->checksum = wire_r_u64(r);
	if (!r->err && (res->status > 0 || res->status < KVN_ERR_MIN || res->gen > PROTO_GEN_MAX))
		r->err = KVN_EPROTO;
	return r->err;
}

/* ---- slot results ---- */

void proto_slots_begin(struct wire_w *w, uint32_t n)
{
	wire_w_u32(w, n);
}

void proto_slots_add(struct wire_w *w, const struct proto_slot_result *s)
{
	wire_w_u32(w, (uint32_t)s->status);
	wire_w_u64(w, s->gen);
	wire_w_u64(w, s->addr);
	wire_w_u32(w, s->rkey);
}

int proto_slots_open(struct wire_r *r, const uint8_t *meta, uint32_t meta_len, uint32_t *n)
{
	wire_r_init(r, meta, meta_len);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, 4 + 8 + 8 + 4);
}

int proto_slots_next(struct wire_r *r, struct proto_slot_result *s)
{
	s->status = (int32_t)wire_r_u32(r);
	s->gen = wire_r_u64(r);
	s->addr = wire_r_u64(r);
	s->rkey = wire_r_u32(r);
	if (!r->err && (s->status > 0 || s->status < KVN_ERR_MIN || s->gen > PROTO_GEN_MAX))
		r->err = KVN_EPROTO;
	return r->err;
}

/* ---- STAT ---- */

void proto_stat_begin(struct wire_w *w, uint64_t objects, uint64_t bytes, uint32_t n)
{
	wire_w_u64(w, objects);
	wire_w_u64(w, bytes);
	wire_w_u32(w, n);
}

void proto_stat_add(struct wire_w *w, const struct proto_stat_node *sn)
{
	wire_w_str(w, sn->node_id);
	wire_w_str(w, sn->addr);
	wire_w_u8(w, sn->alive);
	wire_w_u64(w, sn->dram_total);
	wire_w_u64(w, sn->dram_used);
	wire_w_u64(w, sn->disk_total);
	wire_w_u64(w, sn->disk_used);
	wire_w_u64(w, sn->objects);
}

int proto_stat_open(struct wire_r *r, const struct actor_msg *m, uint64_t *objects, uint64_t *bytes,
		    uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	*objects = wire_r_u64(r);
	*bytes = wire_r_u64(r);
	*n = wire_r_u32(r);
	return proto_check_count(r, *n, 2 + 2 + 1 + 5 * 8);
}

int proto_stat_next(struct wire_r *r, struct proto_stat_node *sn)
{
	wire_r_str(r, sn->node_id, sizeof sn->node_id);
	wire_r_str(r, sn->addr, sizeof sn->addr);
	sn->alive = wire_r_u8(r);
	sn->dram_total = wire_r_u64(r);
	sn->dram_used = wire_r_u64(r);
	sn->disk_total = wire_r_u64(r);
	sn->disk_used = wire_r_u64(r);
	sn->objects = wire_r_u64(r);
	if (!r->err && sn->alive > 1)
		r->err = KVN_EPROTO;
	return r->err;
}

void proto_stat_master_add(struct wire_w *w, const struct proto_stat_master *sm)
{
	wire_w_u64(w, sm->uptime_ms);
	wire_w_str(w, sm->version);
	wire_w_u64(w, sm->requests);
	wire_w_u64(w, sm->key_hits);
	wire_w_u64(w, sm->key_misses);
	wire_w_u8(w, sm->conns_known);
	wire_w_u32(w, sm->conns_open);
	wire_w_u32(w, sm->conns_masters);
	wire_w_u32(w, sm->conns_peers);
	wire_w_u32(w, sm->conns_clients);
	wire_w_u32(w, sm->conns_handshake);
}

int proto_stat_master_read(struct wire_r *r, struct proto_stat_master *sm)
{
	memset(sm, 0, sizeof *sm);
	sm->uptime_ms = wire_r_u64(r);
	wire_r_str(r, sm->version, sizeof sm->version);
	sm->requests = wire_r_u64(r);
	sm->key_hits = wire_r_u64(r);
	sm->key_misses = wire_r_u64(r);
	sm->conns_known = wire_r_u8(r);
	sm->conns_open = wire_r_u32(r);
	sm->conns_masters = wire_r_u32(r);
	sm->conns_peers = wire_r_u32(r);
	sm->conns_clients = wire_r_u32(r);
	sm->conns_handshake = wire_r_u32(r);
	if (wire_r_end(r) != 0)
		return r->err ? r->err : KVN_EPROTO;
	int bad = sm->uptime_ms > PROTO_UPTIME_MAX_MS || sm->version[0] == '\0' || sm->conns_known > 1 ||
		  sm->key_hits > UINT64_MAX - sm->key_misses;
	for (const char *p = sm->version; *p && !bad; p++)
		bad = *p < 0x20 || *p > 0x7e;
	const uint32_t c[] = { sm->conns_open, sm->conns_masters, sm->conns_peers, sm->conns_clients,
			       sm->conns_handshake };
	for (size_t i = 0; i < sizeof c / sizeof c[0] && !bad; i++)
		bad = c[i] > PROTO_CONNS_MAX || (!sm->conns_known && c[i] != 0);
	if (!bad && (uint64_t)sm->conns_masters + sm->conns_peers + sm->conns_clients > sm->conns_open)
		bad = 1;
	return bad ? KVN_EPROTO : 0;
}
