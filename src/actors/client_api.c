/*
 * client_api: the public calls of include/kvnode.h.  Each call routes its
 * keys through the master, sends one request per destination peer (all in
 * flight together), and retries what can be retried within its one
 * deadline: ENOSPC re-routes with that node excluded, a failed peer is
 * quarantined and its items re-routed, a "latest" get that raced a newer
 * put re-routes.  Authentication errors and stale generations are final.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/client_int.h"
#include "actors/roles.h"

#define META_BUDGET (60u * 1024u)
/* A route reply item carries node id and address (up to ~220 bytes), so a
 * route request asks for at most this many keys to keep its reply under the
 * 64 KiB metadata limit. */
#define ROUTE_CHUNK 256
#define MAX_EXCLUDE 64

static __thread char last_detail[768];

void kvn_set_last_detail(const char *s)
{
	snprintf(last_detail, sizeof last_detail, "%s", s ? s : "");
}

const char *kvn_last_detail(const struct kvn_client *c)
{
	return c ? c->detail : last_detail;
}

/* ---- op lifecycle ---- */

static void op_begin(struct kvn_client *c, struct client_op *op, struct kvn_item *items, size_t n, int kind)
{
	memset(op, 0, sizeof *op);
	op->items = items;
	op->n = n;
	op->kind = kind;
	op->deadline_ms = kvn_now_ms() + c->conf.client_timeout;
	op->rt = n ? kvn_xcalloc(n, sizeof *op->rt) : NULL;
	op->route_st = n ? kvn_xcalloc(n, sizeof *op->route_st) : NULL;
	op->done = 1;
	c->op = op;
	c->detail[0] = '\0';
	actor_busy_enter(c->self);
}

static void op_end(struct kvn_client *c, struct client_op *op)
{
	client_round_reset(op);
	free(op->reqs);
	free(op->rt);
	free(op->route_st);
	actor_msg_free(op->reply);
	c->op = NULL;
	actor_busy_leave(c->self);
}

static int key_ok(const struct kvn_item *it)
{
	return it->key && it->klen >= 1 && it->klen <= KVN_MAX_KEY;
}

/* ---- route cache ---- */

static struct route_cache_ent *rc_find(struct kvn_client *c, const void *key, size_t klen)
{
	struct route_cache_ent *e;
	HASH_FIND(hh, c->rcache, key, klen, e);
	if (e && e->expires_ms <= kvn_now_ms()) {
		HASH_DEL(c->rcache, e);
		c->nrcache--;
		free(e);
		e = NULL;
	}
	return e;
}

static void rc_drop(struct kvn_client *c, const void *key, size_t klen)
{
	struct route_cache_ent *e;
	HASH_FIND(hh, c->rcache, key, klen, e);
	if (e) {
		HASH_DEL(c->rcache, e);
		c->nrcache--;
		free(e);
	}
}

void client_rcache_clear(struct kvn_client *c)
{
	struct route_cache_ent *e, *tmp;
	HASH_ITER(hh, c->rcache, e, tmp) {
		HASH_DEL(c->rcache, e);
		free(e);
	}
	c->nrcache = 0;
}

static void rc_put(struct kvn_client *c, const void *key, size_t klen, const struct proto_route *rt)
{
	struct route_cache_ent *e;

	if (c->conf.client_route_cache_ttl == 0)
		return;
	rc_drop(c, key, klen);
	if (c->nrcache >= ROUTE_CACHE_MAX)
		client_rcache_clear(c); /* bounded: start over rather than track ages */
	e = kvn_xmalloc(sizeof *e + klen);
	e->expires_ms = kvn_now_ms() + c->conf.client_route_cache_ttl;
	e->rt = *rt;
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	HASH_ADD_KEYPTR(hh, c->rcache, e->key, e->klen, e);
	c->nrcache++;
}

/* ---- routing ---- */

/* ROUTE_GET for items idx[0..n), in chunks that fit a frame.  Fills
 * op->rt / op->route_st.  Returns an error only when the master could not
 * answer at all. */
static int route_get(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n)
{
	uint32_t i = 0;
	while (i < n) {
		uint32_t k = 0, bytes = 16;
		while (i + k < n && k < ROUTE_CHUNK && bytes + 2 + op->items[idx[i + k]].klen < META_BUDGET) {
			bytes += 2 + (uint32_t)op->items[idx[i + k]].klen;
			k++;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new(WIRE_ROUTE_GET);
		wire_w_init(&w);
		proto_keys_begin(&w, k);
		for (uint32_t j = 0; j < k; j++)
			proto_keys_add(&w, op->items[idx[i + j]].key, op->items[idx[i + j]].klen);
		if (wire_w_to_msg(&w, m) != 0) {
			wire_w_fini(&w);
			actor_msg_free(m);
			return KVN_EPROTO;
		}
		int rc = client_master_call(c, op, m);
		if (rc)
			return rc;
		struct wire_r r;
		uint32_t got;
		if (proto_routes_open(&r, op->reply, &got) != 0 || got != k)
			return KVN_EPROTO;
		for (uint32_t j = 0; j < k; j++) {
			struct proto_route *rt = &op->rt[idx[i + j]];
			if (proto_routes_next(&r, rt) != 0)
				return KVN_EPROTO;
			op->route_st[idx[i + j]] = rt->status;
		}
		i += k;
	}
	return 0;
}

static int route_put(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n,
		     const char *const *exclude, uint32_t nexclude)
{
	uint32_t i = 0, exbytes = 0;
	for (uint32_t e = 0; e < nexclude; e++)
		exbytes += 2 + (uint32_t)strlen(exclude[e]);
	while (i < n) {
		uint32_t k = 0, bytes = 16 + exbytes;
		while (i + k < n && k < ROUTE_CHUNK && bytes + 10 + op->items[idx[i + k]].klen < META_BUDGET) {
			bytes += 10 + (uint32_t)op->items[idx[i + k]].klen;
			k++;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT);
		wire_w_init(&w);
		proto_route_put_begin(&w, exclude, nexclude, k);
		for (uint32_t j = 0; j < k; j++) {
			const struct kvn_item *it = &op->items[idx[i + j]];
			proto_route_put_add(&w, it->key, it->klen, it->vlen);
		}
		if (wire_w_to_msg(&w, m) != 0) {
			wire_w_fini(&w);
			actor_msg_free(m);
			return KVN_EPROTO;
		}
		int rc = client_master_call(c, op, m);
		if (rc)
			return rc;
		struct wire_r r;
		uint32_t got;
		if (proto_routes_open(&r, op->reply, &got) != 0 || got != k)
			return KVN_EPROTO;
		for (uint32_t j = 0; j < k; j++) {
			struct proto_route *rt = &op->rt[idx[i + j]];
			if (proto_routes_next(&r, rt) != 0)
				return KVN_EPROTO;
			op->route_st[idx[i + j]] = rt->status;
		}
		i += k;
	}
	return 0;
}

/* ---- sending a round to the peers ---- */

/* Items idx[0..n) that routed to peers: one request per peer (more when a
 * request would exceed the frame limits), all in flight together.  Items
 * whose peer cannot be reached get KVN_ECONN in st[]. */
static void send_round(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *st,
		       uint8_t put_flags)
{
	uint8_t *sent = kvn_xcalloc(n ? n : 1, 1);

	for (uint32_t a = 0; a < n; a++) {
		if (sent[a])
			continue;
		const char *node = op->rt[idx[a]].node_id;
		struct client_peer *p = client_peer_get(c, node, op->rt[idx[a]].addr);
		/* gather this node's items until a frame is full */
		uint32_t *take = kvn_xmalloc(n * sizeof *take), k = 0, bytes = 16;
		uint64_t payload = 0;
		for (uint32_t b = a; b < n; b++) {
			const struct kvn_item *it = &op->items[idx[b]];
			if (sent[b] || strcmp(op->rt[idx[b]].node_id, node) != 0)
				continue;
			uint64_t add = op->kind == WIRE_PUT ? it->vlen : 0;
			if (k > 0 && (bytes + 20 + it->klen > META_BUDGET || k >= PROTO_MAX_ITEMS ||
				      payload + add > PROTO_MAX_BATCH_PAYLOAD))
				continue; /* next request */
			take[k++] = idx[b];
			sent[b] = 1;
			bytes += 20 + (uint32_t)it->klen;
			payload += add;
		}
		if (!p) {
			for (uint32_t j = 0; j < k; j++)
				st[take[j]] = KVN_ECONN;
			free(take);
			continue;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new((uint16_t)op->kind);
		wire_w_init(&w);
		proto_items_begin(&w, put_flags, k);
		for (uint32_t j = 0; j < k; j++) {
			const struct kvn_item *it = &op->items[take[j]];
			proto_items_add(&w, it->key, it->klen, op->rt[take[j]].gen,
					op->kind == WIRE_PUT ? it->vlen : 0);
		}
		if (op->kind == WIRE_PUT) {
			/* zero copy: the frame references the caller's buffers, which
			 * stay valid because we return only after the round ends
			 * (or after cutting the connection at the deadline) */
			m->payload = evbuffer_new();
			for (uint32_t j = 0; j < k; j++) {
				const struct kvn_item *it = &op->items[take[j]];
				if (it->vlen)
					evbuffer_add_reference(m->payload, it->val, it->vlen, NULL, NULL);
			}
		}
		if (wire_w_to_msg(&w, m) != 0) {
			wire_w_fini(&w);
			actor_msg_free(m);
			for (uint32_t j = 0; j < k; j++)
				st[take[j]] = KVN_EPROTO;
			free(take);
			continue;
		}
		uint32_t *mine = kvn_xmalloc(k * sizeof *mine);
		memcpy(mine, take, k * sizeof *mine);
		free(take);
		int rc = client_peer_call(c, op, p, m, mine, k);
		if (rc)
			for (uint32_t j = 0; j < k; j++)
				st[mine[j]] = rc;
	}
	free(sent);
}

/* Read the per-item results of every request of the round into st[] (and
 * the sizes for GET).  Requests that failed as a whole mark their items. */
static void collect_round(struct kvn_client *c, struct client_op *op, int *st)
{
	for (uint32_t i = 0; i < op->nreqs; i++) {
		struct client_req *q = op->reqs[i];
		int whole = 0;
		if (!q->done || q->err)
			whole = q->err ? q->err : KVN_ETIMEDOUT;
		else if (q->reply->status)
			whole = q->reply->status;
		else if (q->reply->sink_err)
			whole = q->reply->sink_err;
		if (whole) {
			for (uint32_t j = 0; j < q->n; j++)
				st[q->idx[j]] = whole;
			if ((whole == KVN_ECONN || whole == KVN_ETIMEDOUT) && q->peer)
				client_quarantine(c, q->peer);
			continue;
		}
		struct wire_r r;
		uint32_t got;
		if (proto_results_open(&r, q->reply->meta, q->reply->meta_len, &got) != 0 || got != q->n) {
			for (uint32_t j = 0; j < q->n; j++)
				st[q->idx[j]] = KVN_EPROTO;
			continue;
		}
		for (uint32_t j = 0; j < q->n; j++) {
			struct proto_result res;
			struct kvn_item *it = &op->items[q->idx[j]];
			if (proto_results_next(&r, &res) != 0) {
				st[q->idx[j]] = KVN_EPROTO;
				continue;
			}
			st[q->idx[j]] = res.status;
			if (op->kind == WIRE_GET && res.status == 0) {
				it->vlen = res.size;
				if (res.size > 0 && (!it->val || res.size > it->cap))
					st[q->idx[j]] = KVN_ERANGE;
				else if (res.size > 0 && !q->reply->sink_cookie && q->reply->payload)
					/* no sink on this path: copy out of the buffer */
					evbuffer_remove(q->reply->payload, it->val, res.size);
			}
			if (op->kind == WIRE_EXISTS && res.status == 0)
				it->exists = 1;
		}
	}
	client_round_reset(op);
}

static int retryable(int st)
{
	return st == KVN_ECONN || st == KVN_ENOSPC || st == KVN_EPEERDOWN || st == KVN_EBUSY;
}

static int first_error(const struct kvn_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].status)
			return items[i].status;
	return 0;
}

/* ---- put ---- */

int kvn_batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags)
{
	struct client_op op;
	const char *exclude[MAX_EXCLUDE];
	uint32_t nexclude = 0;
	int *st;
	uint32_t *idx;
	int rc = 0;

	if (!c || (!items && n))
		return KVN_EINVAL;
	op_begin(c, &op, items, n, WIRE_PUT);
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	for (size_t i = 0; i < n; i++) {
		items[i].status = 0;
		if (!key_ok(&items[i]))
			st[i] = KVN_EKEYLEN;
		else if (items[i].vlen > c->conf.node_max_value_size)
			st[i] = KVN_ETOOBIG;
		else if (items[i].vlen && !items[i].val)
			st[i] = KVN_EINVAL;
		else
			st[i] = KVN_EBUSY; /* to do */
	}
	for (uint64_t attempt = 0; attempt <= c->conf.client_retries; attempt++) {
		uint32_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (retryable(st[i]))
				idx[k++] = (uint32_t)i;
		if (k == 0)
			break;
		rc = route_put(c, &op, idx, k, exclude, nexclude);
		if (rc)
			break;
		uint32_t go = 0;
		for (uint32_t j = 0; j < k; j++) {
			st[idx[j]] = op.route_st[idx[j]];
			if (st[idx[j]] == 0)
				idx[go++] = idx[j];
		}
		send_round(c, &op, idx, go, st, (flags & KVN_PUT_DURABLE) ? PROTO_PUT_DURABLE : 0);
		if (client_wait_round(c, &op) == KVN_ETIMEDOUT) {
			collect_round(c, &op, st);
			rc = KVN_ETIMEDOUT;
			break;
		}
		collect_round(c, &op, st);
		/* a node that said ENOSPC or failed is excluded from the next route */
		for (uint32_t j = 0; j < go; j++) {
			int s = st[idx[j]];
			if ((s == KVN_ENOSPC || s == KVN_ECONN) && nexclude < MAX_EXCLUDE) {
				const char *node = op.rt[idx[j]].node_id;
				int dup = 0;
				for (uint32_t e = 0; e < nexclude; e++)
					if (strcmp(exclude[e], node) == 0)
						dup = 1;
				if (!dup)
					exclude[nexclude++] = kvn_xstrdup(node);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		int s = st[i];
		if (s == KVN_EBUSY && rc)
			s = rc;
		if (s == KVN_ENOSPC)
			s = KVN_EFULL; /* every node tried said no room */
		items[i].status = s;
		/* our own write: the next get must see it */
		if (s == 0) {
			op.rt[i].size = items[i].vlen;
			rc_put(c, items[i].key, items[i].klen, &op.rt[i]);
		} else if (key_ok(&items[i])) {
			rc_drop(c, items[i].key, items[i].klen);
		}
	}
	for (uint32_t e = 0; e < nexclude; e++)
		free((char *)exclude[e]);
	free(st);
	free(idx);
	op_end(c, &op);
	return rc && rc != KVN_ETIMEDOUT ? rc : first_error(items, n);
}

int kvn_put(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
	    unsigned flags)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = (void *)val, .vlen = vlen };
	int rc = kvn_batch_put(c, &it, 1, flags);
	return rc ? rc : it.status;
}

/* ---- get / exists / remove: route, then ask the peers ---- */

static int get_like(struct kvn_client *c, struct kvn_item *items, size_t n, int kind, int alloc)
{
	struct client_op op;
	int *st;
	uint32_t *idx;
	int rc = 0;

	if (!c || (!items && n))
		return KVN_EINVAL;
	op_begin(c, &op, items, n, kind);
	op.alloc_get = alloc;
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	uint32_t *tmpidx = kvn_xcalloc(n ? n : 1, sizeof *tmpidx);
	uint8_t *cached = kvn_xcalloc(n ? n : 1, 1);
	for (size_t i = 0; i < n; i++) {
		items[i].status = 0;
		items[i].exists = 0;
		if (kind == WIRE_GET && alloc)
			items[i].val = NULL;
		st[i] = key_ok(&items[i]) ? KVN_EBUSY : KVN_EKEYLEN;
	}
	for (uint64_t attempt = 0; attempt <= c->conf.client_retries; attempt++) {
		uint32_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (st[i] == KVN_EBUSY || st[i] == KVN_ECONN || st[i] == KVN_ESTALE)
				idx[k++] = (uint32_t)i;
		if (k == 0)
			break;
		/* gets may reuse a remembered route; anything else asks the master */
		uint32_t miss = 0;
		for (uint32_t j = 0; j < k; j++) {
			struct route_cache_ent *e = NULL;
			if (kind == WIRE_GET && c->conf.client_route_cache_ttl)
				e = rc_find(c, items[idx[j]].key, items[idx[j]].klen);
			else if (kind == WIRE_REMOVE)
				rc_drop(c, items[idx[j]].key, items[idx[j]].klen);
			cached[idx[j]] = e != NULL;
			if (e) {
				op.rt[idx[j]] = e->rt;
				op.route_st[idx[j]] = 0;
			} else {
				tmpidx[miss++] = idx[j];
			}
		}
		if (miss) {
			rc = route_get(c, &op, tmpidx, miss);
			if (rc)
				break;
			for (uint32_t j = 0; j < miss; j++)
				if (kind == WIRE_GET && op.route_st[tmpidx[j]] == 0)
					rc_put(c, items[tmpidx[j]].key, items[tmpidx[j]].klen, &op.rt[tmpidx[j]]);
		}
		uint32_t go = 0;
		for (uint32_t j = 0; j < k; j++) {
			st[idx[j]] = op.route_st[idx[j]];
			if (st[idx[j]] == 0)
				idx[go++] = idx[j];
		}
		if (kind == WIRE_EXISTS) {
			/* the master is the authority: an acknowledged put is in its
			 * index before the put returns */
			for (uint32_t j = 0; j < go; j++)
				items[idx[j]].exists = 1;
			break;
		}
		send_round(c, &op, idx, go, st, 0);
		if (client_wait_round(c, &op) == KVN_ETIMEDOUT) {
			collect_round(c, &op, st);
			rc = KVN_ETIMEDOUT;
			break;
		}
		collect_round(c, &op, st);
		/* ESTALE: a newer generation committed between route and read
		 * (re-route: this is a "latest" get, not a get by ref).  A failed
		 * remembered route is forgotten and asked for again. */
		int again = 0;
		for (uint32_t j = 0; j < go; j++) {
			int s = st[idx[j]];
			if (cached[idx[j]] && s != 0) {
				/* a remembered route went bad: forget it, ask the master */
				rc_drop(c, items[idx[j]].key, items[idx[j]].klen);
				if (s == KVN_ENOTFOUND || s == KVN_EPEERDOWN || s == KVN_ETIMEDOUT)
					st[idx[j]] = KVN_EBUSY;
			}
			if (st[idx[j]] == KVN_ESTALE || st[idx[j]] == KVN_ECONN || st[idx[j]] == KVN_EBUSY)
				again = 1;
		}
		if (!again)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		int s = st[i];
		if (s == KVN_EBUSY)
			s = rc ? rc : KVN_ETIMEDOUT;
		if (kind == WIRE_EXISTS && s == KVN_ENOTFOUND)
			s = 0; /* "no" is an answer, not an error */
		items[i].status = s;
		if (alloc && s != 0) {
			free(items[i].val);
			items[i].val = NULL;
		}
	}
	free(st);
	free(idx);
	free(tmpidx);
	free(cached);
	op_end(c, &op);
	return rc && rc != KVN_ETIMEDOUT ? rc : first_error(items, n);
}

int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_GET, 0);
}

int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_EXISTS, 0);
}

int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_REMOVE, 0);
}

int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = buf, .cap = cap };
	int rc = get_like(c, &it, 1, WIRE_GET, 0);
	if (vlen)
		*vlen = it.vlen;
	return rc ? rc : it.status;
}

int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = get_like(c, &it, 1, WIRE_GET, 1);
	if (rc == 0 && it.status == 0) {
		if (!it.val)
			it.val = malloc(1); /* an empty value is still a value */
		*val = it.val;
		if (vlen)
			*vlen = it.vlen;
		return 0;
	}
	free(it.val);
	return rc ? rc : it.status;
}

int kvn_exists(struct kvn_client *c, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = get_like(c, &it, 1, WIRE_EXISTS, 0);
	if (rc)
		return rc;
	return it.status ? it.status : it.exists;
}

int kvn_remove(struct kvn_client *c, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = get_like(c, &it, 1, WIRE_REMOVE, 0);
	return rc ? rc : it.status;
}

int kvn_exists_prefix(struct kvn_client *c, const struct kvn_item *keys, size_t n, size_t *count)
{
	struct kvn_item *copy;
	int rc;

	if (!c || !count || (!keys && n))
		return KVN_EINVAL;
	copy = kvn_xcalloc(n ? n : 1, sizeof *copy);
	for (size_t i = 0; i < n; i++) {
		copy[i].key = keys[i].key;
		copy[i].klen = keys[i].klen;
	}
	rc = get_like(c, copy, n, WIRE_EXISTS, 0);
	*count = 0;
	if (rc == 0 || rc == KVN_EKEYLEN)
		while (*count < n && copy[*count].status == 0 && copy[*count].exists)
			(*count)++;
	free(copy);
	return rc == KVN_EKEYLEN ? 0 : rc;
}

/* ---- master-only calls ---- */

int kvn_ping(struct kvn_client *c, uint64_t *rtt_us, uint32_t *peers)
{
	struct client_op op;
	char server_id[65];
	uint32_t np = 0;
	int rc;

	if (!c)
		return KVN_EINVAL;
	op_begin(c, &op, NULL, 0, WIRE_PING);
	uint64_t t0 = kvn_now_ns();
	rc = client_master_call(c, &op, actor_msg_new(WIRE_PING));
	uint64_t t1 = kvn_now_ns();
	if (rc == 0 && proto_ping_reply_dec(op.reply, &np, server_id, sizeof server_id) != 0)
		rc = KVN_EPROTO;
	if (rc == 0) {
		if (rtt_us)
			*rtt_us = (t1 - t0) / 1000;
		if (peers)
			*peers = np;
	}
	op_end(c, &op);
	return rc;
}

int kvn_stat(struct kvn_client *c, struct kvn_node_stat *nodes, size_t cap, size_t *n, uint64_t *objects)
{
	struct client_op op;
	struct wire_r r;
	uint64_t objs = 0, bytes = 0;
	uint32_t count = 0;
	int rc;

	if (!c)
		return KVN_EINVAL;
	op_begin(c, &op, NULL, 0, WIRE_STAT);
	rc = client_master_call(c, &op, actor_msg_new(WIRE_STAT));
	if (rc == 0 && proto_stat_open(&r, op.reply, &objs, &bytes, &count) != 0)
		rc = KVN_EPROTO;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct proto_stat_node sn;
		if (proto_stat_next(&r, &sn) != 0) {
			rc = KVN_EPROTO;
			break;
		}
		if (i < cap && nodes) {
			struct kvn_node_stat *o = &nodes[i];
			memset(o, 0, sizeof *o);
			snprintf(o->node_id, sizeof o->node_id, "%s", sn.node_id);
			snprintf(o->addr, sizeof o->addr, "%s", sn.addr);
			o->alive = sn.alive;
			o->dram_total = sn.dram_total;
			o->dram_used = sn.dram_used;
			o->disk_total = sn.disk_total;
			o->disk_used = sn.disk_used;
			o->objects = sn.objects;
		}
	}
	if (rc == 0) {
		if (n)
			*n = count;
		if (objects)
			*objects = objs;
	}
	op_end(c, &op);
	return rc;
}

/* ---- connect / close ---- */

int kvn_connect_conf(struct kvn_conf *conf, struct kvn_client **out)
{
	struct kvn_client *c;
	int rc = client_open(conf, &c);
	if (rc)
		return rc;
	rc = kvn_ping(c, NULL, NULL);
	if (rc) {
		kvn_set_last_detail(c->detail[0] ? c->detail : kvn_strerror(rc));
		client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int kvn_connect(const struct kvn_options *opt, struct kvn_client **out)
{
	struct kvn_conf conf;
	char err[512];
	const char *path = NULL;
	int rc;

	if (!out)
		return KVN_EINVAL;
	kvn_conf_init(&conf);
	if (opt && opt->config_path)
		path = opt->config_path;
	else if (access("etc/kvnode.conf", R_OK) == 0)
		path = "etc/kvnode.conf";
	if (path && (rc = kvn_conf_load(&conf, path, err, sizeof err)) != 0)
		goto fail;
#define OVERRIDE(field, key)                                                              \
	if (opt && opt->field) {                                                          \
		char a_[600];                                                             \
		snprintf(a_, sizeof a_, "%s=%s", key, opt->field);                         \
		if ((rc = kvn_conf_set(&conf, a_, err, sizeof err)) != 0)                  \
			goto fail;                                                        \
	}
	OVERRIDE(master, "client.master")
	OVERRIDE(secret_file, "auth.client_secret_file")
#undef OVERRIDE
	if (opt && opt->timeout_ms)
		conf.client_timeout = opt->timeout_ms;
	if ((rc = kvn_conf_finalize(&conf, err, sizeof err)) != 0)
		goto fail;
	return kvn_connect_conf(&conf, out);
fail:
	kvn_set_last_detail(err);
	kvn_conf_fini(&conf);
	return KVN_ECONFIG;
}

void kvn_close(struct kvn_client *c)
{
	/* Calls are synchronous: nothing of the caller's is in flight here. */
	client_free(c);
}
