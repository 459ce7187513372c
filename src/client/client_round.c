/*
 * client_round: the machinery every public call of the client library is
 * built on.  Owns the op lifecycle (one synchronous call at a time, one
 * deadline), the route cache (client.route_cache_ttl), routing through the
 * master in chunks that fit a frame (ROUTE_GET, ROUTE_PUT), and rounds of
 * peer requests: one request per destination peer, all in flight together,
 * for every data-path kind (PUT, GET, EXISTS, REMOVE and the slot protocol's
 * ALLOC_SLOT, COMMIT_SLOT, ABORT_SLOT, RESOLVE_KEY), and the collection of
 * their per-item results.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"



/* ---- op lifecycle ---- */

void client_op_begin(struct kvn_client *c, struct client_op *op, struct kvn_item *items, size_t n, int kind)
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

void client_op_end(struct kvn_client *c, struct client_op *op)
{
	client_round_reset(op);
	free(op->reqs);
	free(op->rt);
	free(op->route_st);
	free(op->res);
	free(op->sres);
	free(op->nolocal);
	actor_msg_free(op->reply);
	c->op = NULL;
	actor_busy_leave(c->self);
}

int client_key_ok(const struct kvn_item *it)
{
	return it->key && it->klen >= 1 && it->klen <= KVN_MAX_KEY;
}

/* ---- route cache ---- */

struct route_cache_ent *client_rc_find(struct kvn_client *c, const void *key, size_t klen)
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

void client_rc_drop(struct kvn_client *c, const void *key, size_t klen)
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

void client_rc_put(struct kvn_client *c, const void *key, size_t klen, const struct proto_route *rt)
{
	struct route_cache_ent *e;

	if (c->conf.client_route_cache_ttl == 0)
		return;
	client_rc_drop(c, key, klen);
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

/* ---- the sole peer (speculative gets) ---- */

void client_note_node(struct kvn_client *c, const struct proto_route *rt)
{
	if (c->nseen == 0 || (c->nseen == 1 && strcmp(c->sole.node_id, rt->node_id) == 0)) {
		/* the same node may come back on another address */
		c->sole = *rt;
		c->nseen = 1;
	} else {
		c->nseen = 2; /* for good: a second node makes every guess a coin toss */
	}
}

int client_spec_target(struct kvn_client *c, struct proto_route *rt)
{
	if (!c->conf.client_speculative_get || c->nseen != 1 || client_is_quarantined(c, c->sole.node_id))
		return 0;
	*rt = c->sole;
	rt->status = 0;
	rt->gen = 0; /* latest: the route answer says which generation counts */
	return 1;
}

/* ---- routing ---- */

/* ROUTE_GET or ROUTE_PUT for items idx[0..n), in chunks whose request and
 * reply both fit a frame.  Fills op->rt / op->route_st.  Returns an error
 * only when the master could not answer at all. */
static int route_chunks(struct kvn_client *c, struct client_op *op, uint16_t type, const uint32_t *idx,
			uint32_t n, const char *const *exclude, uint32_t nexclude)
{
	uint32_t i = 0, fixed = 16, per = type == WIRE_ROUTE_PUT ? 10 : 2;

	for (uint32_t e = 0; e < nexclude; e++)
		fixed += 2 + (uint32_t)strlen(exclude[e]);
	while (i < n) {
		uint32_t k = 0, bytes = fixed;
		while (i + k < n && k < ROUTE_CHUNK && bytes + per + op->items[idx[i + k]].klen < META_BUDGET) {
			bytes += per + (uint32_t)op->items[idx[i + k]].klen;
			k++;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new(type);
		wire_w_init(&w);
		if (type == WIRE_ROUTE_PUT)
			proto_route_put_begin(&w, exclude, nexclude, k);
		else
			proto_keys_begin(&w, k);
		for (uint32_t j = 0; j < k; j++) {
			const struct kvn_item *it = &op->items[idx[i + j]];
			if (type == WIRE_ROUTE_PUT)
				proto_route_put_add(&w, it->key, it->klen, it->vlen);
			else
				proto_keys_add(&w, it->key, it->klen);
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
			if (rt->status == 0)
				client_note_node(c, rt);
		}
		/* a ROUTE_PUT answer ends with each item's grant, which its
		 * PUT or ALLOC_SLOT carries to the peer */
		for (uint32_t j = 0; j < k && type == WIRE_ROUTE_PUT; j++)
			if (proto_route_grants_next(&r, &op->rt[idx[i + j]].grant) != 0)
				return KVN_EPROTO;
		i += k;
	}
	return 0;
}

int client_route_get(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n)
{
	return route_chunks(c, op, WIRE_ROUTE_GET, idx, n, NULL, 0);
}

int client_route_put(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n,
		     const char *const *exclude, uint32_t nexclude)
{
	return route_chunks(c, op, WIRE_ROUTE_PUT, idx, n, exclude, nexclude);
}

/* ---- sending a round to the peers ---- */

/* Kinds whose items carry the value's bytes as the frame's payload. */
static int with_payload(int kind)
{
	return kind == WIRE_PUT || kind == WIRE_COMMIT_SLOT;
}

/* Kinds whose items say a size (the value's, or the slot's to reserve). */
static int with_size(int kind)
{
	return kind == WIRE_PUT || kind == WIRE_COMMIT_SLOT || kind == WIRE_ALLOC_SLOT;
}

/* Kinds that store a new generation: their items carry the master's grant. */
static int with_grant(int kind)
{
	return kind == WIRE_PUT || kind == WIRE_ALLOC_SLOT;
}

void client_items_begin(struct wire_w *w, const struct client_op *op, uint8_t put_flags, uint32_t k)
{
	proto_items_begin(w, with_size(op->kind) ? put_flags | PROTO_ITEMS_SUM : put_flags, k);
}

void client_item_add(struct wire_w *w, const struct client_op *op, uint32_t i, uint64_t gen)
{
	const struct kvn_item *it = &op->items[i];

	if (with_size(op->kind) && op->sum_known && !op->sum_known[i]) {
		op->sums[i] = kvn_xxh3(it->val, it->vlen);
		op->sum_known[i] = 1;
	}
	if (with_size(op->kind))
		proto_items_add_sum(w, it->key, it->klen, gen, it->vlen, op->sums ? op->sums[i] : 0, op->ttl_ms);
	else
		proto_items_add(w, it->key, it->klen, gen, 0);
}

uint64_t *client_sums(const struct kvn_item *items, size_t n)
{
	uint64_t *sums = kvn_xcalloc(n ? n : 1, sizeof *sums);

	for (size_t i = 0; i < n; i++)
		if (items[i].val || !items[i].vlen)
			sums[i] = kvn_xxh3(items[i].val, items[i].vlen);
	return sums;
}

/* Items idx[0..n) that routed to peers: one request per peer (more when a
 * request would exceed the frame limits), all in flight together.  Items
 * whose peer cannot be reached get KVN_ECONN in st[]. */
void client_send_round(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *st,
		       uint8_t put_flags)
{
	uint8_t *sent = kvn_xcalloc(n ? n : 1, 1);

	client_local_round_start(c);
	for (uint32_t a = 0; a < n; a++) {
		if (sent[a])
			continue;
		const char *node = op->rt[idx[a]].node_id;
		struct client_peer *p = client_peer_get(c, node, op->rt[idx[a]].addr);
		if (p) {
			client_local_probe(c, op, p);
			if (!p->proxy)
				p = NULL; /* the probe saw the connection fail: KVN_ECONN below */
		}
		/* a get from a same-host peer reads the arena, except items sent
		 * back to the GET path (not in DRAM there, a failed copy) */
		int lget = p && op->kind == WIRE_GET && client_local_ready(p) && !(op->nolocal && op->nolocal[idx[a]]);
		/* gather this node's items until a frame is full */
		uint32_t *take = kvn_xmalloc(n * sizeof *take), k = 0, bytes = 16;
		/* an item's bytes in the request or in its result, whichever
		 * is more: a request under the budget has a reply under it */
		uint32_t per = PROTO_RESULT_LEN + (with_size(op->kind) ? 16 : 0) +
			       (with_grant(op->kind) ? PROTO_GRANT_LEN : 0);
		uint64_t payload = 0;
		for (uint32_t b = a; b < n; b++) {
			const struct kvn_item *it = &op->items[idx[b]];
			if (sent[b] || strcmp(op->rt[idx[b]].node_id, node) != 0)
				continue;
			if (lget != (p && op->kind == WIRE_GET && client_local_ready(p) &&
				     !(op->nolocal && op->nolocal[idx[b]])))
				continue; /* the other kind of request */
			/* a GET reply's bytes count too (the routed size): no
			 * reply exceeds the limit, however large the batch */
			uint64_t add = with_payload(op->kind) ? it->vlen
				       : op->kind == WIRE_GET ? op->rt[idx[b]].size : 0;
			if (k > 0 && (bytes + per + it->klen > META_BUDGET || k >= PROTO_MAX_ITEMS ||
				      payload + add > PROTO_MAX_BATCH_PAYLOAD))
				continue; /* next request */
			take[k++] = idx[b];
			sent[b] = 1;
			bytes += per + (uint32_t)it->klen;
			payload += add;
		}
		if (!p) {
			for (uint32_t j = 0; j < k; j++)
				st[take[j]] = KVN_ECONN;
			free(take);
			continue;
		}
		struct wire_w w;
		uint64_t soff = 0;
		/* a put to a same-host peer writes its values into the staging
		 * region and sends only where they are */
		int lput = op->kind == WIRE_PUT && client_local_stage(p, op, take, k, &soff);
		struct actor_msg *m = actor_msg_new((uint16_t)(lget ? WIRE_LOCAL_GET : lput ? WIRE_LOCAL_PUT : op->kind));
		wire_w_init(&w);
		if (op->kind == WIRE_RESOLVE_KEY) {
			proto_keys_begin(&w, k);
			for (uint32_t j = 0; j < k; j++)
				proto_keys_add(&w, op->items[take[j]].key, op->items[take[j]].klen);
		} else {
			client_items_begin(&w, op, put_flags, k);
			for (uint32_t j = 0; j < k; j++)
				client_item_add(&w, op, take[j], op->rt[take[j]].gen);
			if (lput)
				client_local_sums_reset(op, take, k);
			for (uint32_t j = 0; j < k && with_grant(op->kind); j++)
				proto_grants_add(&w, &op->rt[take[j]].grant);
			if (op->kind == WIRE_PIN)
				proto_pin_end(&w, op->ttl_ms);
		}
		if (lput) {
			/* LOCAL_PUT: the staging offset, then the PUT's metadata */
			struct wire_w lw;
			wire_w_init(&lw);
			wire_w_u64(&lw, soff);
			wire_w_raw(&lw, w.buf, w.len);
			if (w.err)
				lw.err = w.err;
			wire_w_fini(&w);
			w = lw;
			c->stats.local_puts += k;
		}
		if (with_payload(op->kind) && !lput) {
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
		int rc = client_peer_call(c, op, p, m, mine, k); /* takes mine, even on error */
		if (rc)
			for (uint32_t j = 0; j < k; j++)
				st[take[j]] = rc;
		else
			op->reqs[op->nreqs - 1]->local = lget;
		free(take);
	}
	free(sent);
}

/* ALLOC_SLOT replies: per item status, gen, addr, rkey into op->sres. */
static void collect_slots(struct client_op *op, struct client_req *q, int *st)
{
	struct wire_r r;
	uint32_t got;
	if (proto_slots_open(&r, q->reply->meta, q->reply->meta_len, &got) != 0 || got != q->n) {
		for (uint32_t j = 0; j < q->n; j++)
			st[q->idx[j]] = KVN_EPROTO;
		return;
	}
	for (uint32_t j = 0; j < q->n; j++) {
		struct proto_slot_result s;
		if (proto_slots_next(&r, &s) != 0) {
			st[q->idx[j]] = KVN_EPROTO;
			continue;
		}
		st[q->idx[j]] = s.status;
		if (op->sres)
			op->sres[q->idx[j]] = s;
	}
}

/* A durable put whose master.db COMMIT failed: the peer's reply carries
 * the reason (str); it becomes the call's detail, quoted (peer-supplied). */
static void edb_detail(struct kvn_client *c, const struct actor_msg *reply)
{
	char why[160], q[200];
	struct wire_r r;
	wire_r_init(&r, reply->meta, reply->meta_len);
	wire_r_str(&r, why, sizeof why);
	if (wire_r_end(&r) != 0)
		return;
	kvn_str_quote(q, sizeof q, why, strlen(why));
	client_set_detail(c, "master.db: %s", q);
}

/* Read one request's per-item results into st[] (and the sizes for GET;
 * every result into op->res when the caller asked).  A request that failed
 * as a whole marks its items. */
void client_collect_req(struct kvn_client *c, struct client_op *op, struct client_req *q, int *st)
{
	int whole = 0;

	if (!q->done || q->err)
		whole = q->err ? q->err : KVN_ETIMEDOUT;
	else if (q->reply->status)
		whole = q->reply->status;
	else if (q->reply->sink_err)
		whole = q->reply->sink_err;
	if (whole) {
		if (whole == KVN_EDB && q->done && !q->err && q->reply->meta_len)
			edb_detail(c, q->reply);
		for (uint32_t j = 0; j < q->n; j++)
			st[q->idx[j]] = whole;
		if ((whole == KVN_ECONN || whole == KVN_ETIMEDOUT) && q->peer)
			client_quarantine(c, q->peer);
		return;
	}
	if (op->kind == WIRE_ALLOC_SLOT) {
		collect_slots(op, q, st);
		return;
	}
	if (q->local) {
		client_local_collect_get(c, op, q, st);
		return;
	}
	struct wire_r r;
	uint32_t got;
	if (proto_results_open(&r, q->reply->meta, q->reply->meta_len, &got) != 0 || got != q->n) {
		for (uint32_t j = 0; j < q->n; j++)
			st[q->idx[j]] = KVN_EPROTO;
		return;
	}
	for (uint32_t j = 0; j < q->n; j++) {
		struct proto_result res;
		struct kvn_item *it = &op->items[q->idx[j]];
		if (proto_results_next(&r, &res) != 0) {
			st[q->idx[j]] = KVN_EPROTO;
			continue;
		}
		st[q->idx[j]] = res.status;
		if (op->res)
			op->res[q->idx[j]] = res;
		if (op->kind == WIRE_GET && res.status == 0) {
			it->vlen = res.size;
			/* no sink (an in-process link): malloc here what the
			 * sink would have for kvn_get_alloc / kvn_batch_get */
			if (op->alloc_get && !it->val && res.size > 0 && !q->reply->sink_cookie) {
				it->val = kvn_xmalloc(res.size);
				it->cap = res.size;
			}
			if (res.size > 0 && (!it->val || res.size > it->cap))
				st[q->idx[j]] = KVN_ERANGE;
			else if (res.size > 0 && !q->reply->sink_cookie && q->reply->payload) {
				/* no sink on this path: copy out of the buffer */
				evbuffer_remove(q->reply->payload, it->val, res.size);
				c->stats.bounce_bytes += res.size;
			}
			/* the bytes are handed over only if they are the ones
			 * written; the buffer keeps them either way */
			if (st[q->idx[j]] == 0 && kvn_xxh3(it->val, res.size) != res.checksum) {
				st[q->idx[j]] = KVN_ECORRUPT;
				c->stats.corrupt_gets++;
				client_set_detail(c, "checksum mismatch in a value read from node %s",
						  q->peer ? q->peer->node_id : "(via the master)");
			}
		}
		if (op->kind == WIRE_EXISTS && res.status == 0)
			it->exists = 1;
	}
}

/* Every request of the round, then reset it. */
void client_collect_round(struct kvn_client *c, struct client_op *op, int *st)
{
	for (uint32_t i = 0; i < op->nreqs; i++)
		client_collect_req(c, op, op->reqs[i], st);
	client_round_reset(op);
}

/* ---- waiting for the master ---- */

int client_route_wait(int st)
{
	return st == KVN_ENOPEER || st == KVN_EBUSY;
}

void client_pause_init(struct kvn_backoff *bo)
{
	kvn_backoff_init(bo, CLIENT_PAUSE_MIN_MS, CLIENT_PAUSE_MAX_MS);
}

int client_pause(struct kvn_client *c, struct client_op *op, struct kvn_backoff *bo)
{
	uint64_t now = kvn_now_ms(), d = kvn_backoff_next(bo);
	int never = 0;

	if (now >= op->deadline_ms)
		return KVN_ETIMEDOUT;
	/* leave half of what is left for the next try itself */
	if (d > (op->deadline_ms - now) / 2)
		d = (op->deadline_ms - now) / 2;
	if (d < CLIENT_PAUSE_MIN_MS / 2)
		return KVN_ETIMEDOUT;
	(void)client_run(c, &never, now + d);
	return 0;
}

/* ---- the put loop (kvn_batch_put, kvn_alloc_slots) ---- */

#define MAX_EXCLUDE 64

/* Add node to list[*n] (at most MAX_EXCLUDE, no duplicates); 1 if added. */
static int node_list_add(const char **list, uint32_t *n, const char *node)
{
	for (uint32_t e = 0; e < *n; e++)
		if (strcmp(list[e], node) == 0)
			return 0;
	if (*n == MAX_EXCLUDE)
		return 0;
	list[(*n)++] = node;
	return 1;
}

/* ROUTE_PUT for idx[0..n) with the nodes that refused (exclude) and, while
 * another node has room, the ones to avoid: quarantined peers (one that
 * just failed or hung) and those this call gave up on (avoid[0..navoid):
 * an attempt got no answer).  Items the master then finds no room for are
 * routed again without the avoided nodes, so avoiding one never makes a
 * put fail with "no room". */
static int route_put_avoiding(struct kvn_client *c, struct client_op *op, uint32_t *idx, uint32_t n,
			      const char *const *exclude, uint32_t nexclude, const char *const *avoid,
			      uint32_t navoid)
{
	const char *all[MAX_EXCLUDE];
	uint32_t nall = 0, nq = 0;
	struct client_peer *p, *tmp;
	int rc;

	for (uint32_t e = 0; e < nexclude; e++)
		all[nall++] = exclude[e];
	for (uint32_t e = 0; e < navoid; e++)
		nq += (uint32_t)node_list_add(all, &nall, avoid[e]);
	HASH_ITER(hh, c->peers, p, tmp) {
		if (client_is_quarantined(c, p->node_id))
			nq += (uint32_t)node_list_add(all, &nall, p->node_id);
	}
	rc = client_route_put(c, op, idx, n, all, nall);
	if (rc || nq == 0)
		return rc;
	uint32_t k = 0, *again = kvn_xmalloc((n ? n : 1) * sizeof *again);
	for (uint32_t j = 0; j < n; j++)
		if (op->route_st[idx[j]] == KVN_EFULL || op->route_st[idx[j]] == KVN_ENOSPC)
			again[k++] = idx[j];
	if (k)
		rc = client_route_put(c, op, again, k, exclude, nexclude);
	free(again);
	return rc;
}

int client_put_rounds(struct kvn_client *c, struct client_op *op, int *st, uint8_t put_flags)
{
	const char *exclude[MAX_EXCLUDE], *avoid[MAX_EXCLUDE];
	uint32_t nexclude = 0, navoid = 0;
	size_t n = op->n;
	uint32_t *idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	/* per item, why a node it was sent to was excluded, other than "no
	 * room" (KVN_ECONN, ...): when the master then finds no node left it
	 * answers KVN_EFULL, but the cluster is not known to be full, so the
	 * item reports this instead */
	int *cause = kvn_xcalloc(n ? n : 1, sizeof *cause);
	uint8_t *fin = kvn_xcalloc(n ? n : 1, 1); /* that cause is its answer */
	int any_cause = 0; /* the last of them, any item: the exclusions are shared */
	struct kvn_backoff bo;
	int rc = 0, via_tried = 0;

	client_pause_init(&bo);
	/* A round the master answered "no peer" or "not ready" for (right
	 * after its start: no peer attached yet, an epoch raise not committed)
	 * does not count as an attempt: the next one comes after a pause, and
	 * the deadline bounds them. */
	for (uint64_t attempt = 0; attempt <= c->conf.client_retries;) {
		uint32_t k = 0;
		for (size_t i = 0; i < n; i++)
			if ((client_retryable(st[i]) || st[i] == KVN_ETIMEDOUT /* an attempt's limit */ ||
			     st[i] == KVN_ENOPEER) && !fin[i]) {
				if (st[i] != KVN_EBUSY && st[i] != KVN_ENOSPC && st[i] != KVN_ENOPEER)
					cause[i] = any_cause = st[i]; /* this attempt excludes that node */
				idx[k++] = (uint32_t)i;
			}
		if (k == 0)
			break;
		if (!via_tried && op->kind == WIRE_PUT && client_put_via_wanted(c)) {
			/* through the master; what it did not take goes on below */
			int refused = 0;
			via_tried = 1;
			k = client_put_via_master(c, op, idx, k, st, put_flags, &refused);
			if (refused && nexclude < MAX_EXCLUDE)
				exclude[nexclude++] = kvn_xstrdup(c->master_node);
			if (k == 0) {
				attempt++;
				continue;
			}
		}
		rc = route_put_avoiding(c, op, idx, k, exclude, nexclude, avoid, navoid);
		if (rc)
			break;
		uint32_t go = 0;
		int wait = 0;
		for (uint32_t j = 0; j < k; j++) {
			st[idx[j]] = op->route_st[idx[j]];
			if (st[idx[j]] == KVN_EFULL && any_cause) {
				st[idx[j]] = cause[idx[j]] ? cause[idx[j]] : any_cause;
				fin[idx[j]] = 1;
			}
			wait |= client_route_wait(st[idx[j]]);
			if (st[idx[j]] == 0)
				idx[go++] = idx[j];
		}
		if (go)
			attempt++;
		client_send_round(c, op, idx, go, st, put_flags);
		/* One attempt may not spend the whole deadline on a peer that
		 * does not answer (hung, stopped): after client.attempt_timeout
		 * its connection is cut and the peer quarantined, and the items
		 * go to another node.  The last attempt waits to the deadline. */
		uint64_t until = op->deadline_ms, limit = kvn_now_ms() + client_attempt_ms(c);
		/* attempt already counts this round (when it reached a peer) */
		if (attempt <= c->conf.client_retries && go && limit < until)
			until = limit;
		int wrc = client_wait_round_until(c, op, until);
		client_collect_round(c, op, st);
		if (wrc == KVN_ETIMEDOUT && kvn_now_ms() >= op->deadline_ms) {
			rc = KVN_ETIMEDOUT;
			break;
		}
		/* a peer answered KVN_EBUSY: it is making room (values on their
		 * way to its disk tier); again after a pause, within the
		 * deadline, without counting an attempt */
		int busy = 0;
		for (uint32_t j = 0; j < go; j++)
			busy |= st[idx[j]] == KVN_EBUSY;
		if (busy) {
			wait = 1;
			if (attempt > 0)
				attempt--;
		}
		/* a node that said ENOSPC or failed is excluded from the next route */
		for (uint32_t j = 0; j < go; j++) {
			int s = st[idx[j]];
			if ((s == KVN_ENOSPC || s == KVN_ECONN) && nexclude < MAX_EXCLUDE) {
				const char *node = op->rt[idx[j]].node_id;
				int dup = 0;
				for (uint32_t e = 0; e < nexclude; e++)
					if (strcmp(exclude[e], node) == 0)
						dup = 1;
				if (!dup)
					exclude[nexclude++] = kvn_xstrdup(node);
			}
			/* no answer within the attempt: avoided for this call even
			 * with client.quarantine off */
			if (s == KVN_ETIMEDOUT) {
				char *node = kvn_xstrdup(op->rt[idx[j]].node_id);
				if (!node_list_add(avoid, &navoid, node))
					free(node);
			}
		}
		if (wait && (rc = client_pause(c, op, &bo)) != 0)
			break;
	}
	for (uint32_t e = 0; e < nexclude; e++)
		free((char *)exclude[e]);
	free(fin);
	free(cause);
	for (uint32_t e = 0; e < navoid; e++)
		free((char *)avoid[e]);
	free(idx);
	return rc;
}

int client_retryable(int st)
{
	/* KVN_ENOPEER is not here: a put loop waits for a peer (a master just
	 * started), a get has nothing to wait for */
	return st == KVN_ECONN || st == KVN_ENOSPC || st == KVN_EPEERDOWN || st == KVN_EBUSY;
}

int client_first_error(const struct kvn_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].status)
			return items[i].status;
	return 0;
}
