/*
 * client_via: gets and puts sent to the master (client.get_via_master,
 * client.put_via_master), which hands them to the peer of its own process
 * (master_fwd.c).  Owns when to do so, the requests, and reading the two
 * kinds of answer: the peer's own (the bytes, the stored generations) or,
 * flagged WIRE_F_ROUTES, the master's refusal to hand them off (for a get
 * the routes, after which the caller reads from the peers as after
 * ROUTE_GET; for a put nothing, and the caller routes it with ROUTE_PUT).
 *
 * Why: on an all-in-one node a get was ROUTE_GET to the master and GET to
 * the peer, a put ROUTE_PUT and PUT: two requests and two replies over two
 * connections, and on these VMs every frame costs a wake-up and softirq
 * work on both sides.  Through the master it is one request and one reply.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "net/net.h"

/* m with w's metadata, for items idx[0..k), as a request of op's round to
 * the master.  Takes m and w either way; 0 when it went. */
static int master_send(struct kvn_client *c, struct client_op *op, struct actor_msg *m, struct wire_w *w,
		       const uint32_t *idx, uint32_t k)
{
	if (wire_w_to_msg(w, m) != 0) {
		wire_w_fini(w);
		actor_msg_free(m);
		return KVN_EPROTO;
	}
	uint32_t *mine = kvn_xmalloc(k * sizeof *mine);
	memcpy(mine, idx, k * sizeof *mine);
	return client_peer_call(c, op, NULL, m, mine, k);
}

/* client.local_min_size, or 0 in embedded mode: there the same-host path
 * has no socket and so no round trip to save. */
static uint64_t via_min(const struct kvn_client *c)
{
	return c->cx.connect ? 0 : c->conf.client_local_min_size;
}

/* While the same-host path is preferred, only values below
 * client.local_min_size go through the master: one round trip beats the
 * same-host path's two (route, then the peer's socket) for small values,
 * while large ones gain more from shared memory than the hop costs. */
int client_via_small(struct kvn_client *c, size_t len)
{
	return !client_local_preferred(c) || len < via_min(c);
}

/* A get's size is the caller's buffer; a buffer the library allocates
 * could hold anything, so that get takes the same-host path. */
static int get_small(struct kvn_client *c, const struct kvn_item *it)
{
	return client_via_small(c, it->val ? it->cap : SIZE_MAX);
}

int client_get_via_wanted(struct kvn_client *c, const struct client_op *op, const uint32_t *idx, uint32_t n)
{
	uint32_t j = 0;

	struct proto_route rt;

	if (!c->conf.client_get_via_master || c->via_get_refused ||
	    (client_local_preferred(c) && !via_min(c)))
		return 0;
	/* Speculating on a peer of another node is one round trip already;
	 * through the master it would be two.  A master whose node id is not
	 * known yet counts as another node. */
	if (client_spec_target(c, &rt) && strcmp(rt.node_id, c->master_node) != 0)
		return 0;
	while (j < n && !get_small(c, &op->items[idx[j]]))
		j++;
	return j < n; /* none small: the same-host path, with speculation */
}

/* The master's routes for q's items into op->rt / op->route_st. */
static void take_routes(struct kvn_client *c, struct client_op *op, const struct client_req *q)
{
	struct wire_r r;
	uint32_t got;

	if (proto_routes_open(&r, q->reply, &got) != 0 || got != q->n)
		return; /* left KVN_EBUSY: asked again with ROUTE_GET */
	for (uint32_t j = 0; j < q->n; j++) {
		struct proto_route rt;
		if (proto_routes_next(&r, &rt) != 0)
			return;
		op->rt[q->idx[j]] = rt;
		op->route_st[q->idx[j]] = rt.status;
		if (rt.status == 0)
			client_note_node(c, &rt);
	}
}

void client_get_via_master(struct kvn_client *c, struct client_op *op, const uint32_t *all, uint32_t nall, int *sst,
		      uint8_t *served, int *again)
{
	uint32_t *idx = kvn_xmalloc((nall ? nall : 1) * sizeof *idx), n = 0;

	for (uint32_t j = 0; j < nall; j++) {
		op->route_st[all[j]] = KVN_EBUSY; /* no answer yet */
		served[all[j]] = 0;
		if (get_small(c, &op->items[all[j]]))
			idx[n++] = all[j]; /* the others: ROUTE_GET */
	}
	if (n == 0 || client_master_ensure(c) != 0) {
		free(idx);
		return; /* ROUTE_GET tries again and reports it */
	}
	for (uint32_t i = 0; i < n;) {
		uint32_t k = 0, bytes = 16;
		while (i + k < n && k < ROUTE_CHUNK && bytes + 20 + op->items[idx[i + k]].klen < META_BUDGET) {
			bytes += 20 + (uint32_t)op->items[idx[i + k]].klen;
			k++;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new(WIRE_GET);
		wire_w_init(&w);
		proto_items_begin(&w, 0, k);
		for (uint32_t j = 0; j < k; j++) {
			const struct kvn_item *it = &op->items[idx[i + j]];
			proto_items_add(&w, it->key, it->klen, op->want_gen ? op->want_gen[idx[i + j]] : 0, 0);
		}
		if (master_send(c, op, m, &w, idx + i, k) != 0)
			break; /* the rest go by ROUTE_GET */
		c->stats.via_get_sent += k;
		i += k;
	}
	(void)client_wait_round(c, op); /* a timed-out request fails as a whole */
	for (uint32_t i = 0; i < op->nreqs; i++) {
		struct client_req *q = op->reqs[i];
		if (!q->done || q->err)
			continue; /* no answer: ROUTE_GET */
		if (q->reply->status == KVN_EPROTO) {
			c->via_get_refused = 1; /* a master that does not take GET */
			continue;
		}
		if (q->reply->status)
			continue;
		if (q->reply->flags & WIRE_F_ROUTES) {
			take_routes(c, op, q);
			continue;
		}
		/* the peer's own answer: final per item as after ROUTE_GET and
		 * GET, and asked again for the same reasons */
		client_collect_req(c, op, q, sst);
		for (uint32_t j = 0; j < q->n; j++) {
			uint32_t it = q->idx[j];
			int s = sst[it];
			served[it] = 1;
			op->route_st[it] = 0;
			if (s == 0)
				c->stats.via_get_served++;
			if (s == KVN_EBUSY || (s == KVN_ESTALE && !op->want_gen))
				*again = 1;
		}
	}
	client_round_reset(op);
	free(idx);
}

/* ---- puts ---- */

int client_put_via_wanted(struct kvn_client *c)
{
	/* A put's payload travels whole before the master decides, so send it
	 * there only while every route seen named the master's own node; a
	 * refusal routes with ROUTE_PUT, whose answer may name a second node
	 * and end this for good (client_note_node). */
	return c->conf.client_put_via_master && !c->via_put_refused &&
	       (!client_local_preferred(c) || via_min(c)) &&
	       c->nseen == 1 && c->master_node[0] &&
	       strcmp(c->sole.node_id, c->master_node) == 0 && !client_is_quarantined(c, c->sole.node_id);
}

uint32_t client_put_via_master(struct kvn_client *c, struct client_op *op, uint32_t *idx, uint32_t n, int *st,
			       uint8_t put_flags, int *refused_here)
{
	uint8_t *answered = kvn_xcalloc(op->n ? op->n : 1, 1);
	uint32_t left = 0;

	/* only the small values; the others keep their place for ROUTE_PUT */
	uint32_t *all = idx, nall = n;
	idx = kvn_xmalloc((nall ? nall : 1) * sizeof *idx);
	n = 0;
	for (uint32_t j = 0; j < nall; j++)
		if (client_via_small(c, op->items[all[j]].vlen))
			idx[n++] = all[j];
	if (n == 0 || client_master_ensure(c) != 0)
		goto out;
	for (uint32_t i = 0; i < n;) {
		/* as client_send_round: a frame's worth of items */
		uint32_t k = 0, bytes = 16;
		uint64_t payload = 0;
		while (i + k < n) {
			const struct kvn_item *it = &op->items[idx[i + k]];
			uint32_t per = PROTO_RESULT_LEN + 16 + PROTO_GRANT_LEN;
			if (k > 0 && (bytes + per + it->klen > META_BUDGET || k >= PROTO_MAX_ITEMS ||
				      payload + it->vlen > PROTO_MAX_BATCH_PAYLOAD))
				break;
			bytes += per + (uint32_t)it->klen;
			payload += it->vlen;
			k++;
		}
		struct wire_w w;
		struct actor_msg *m = actor_msg_new(WIRE_PUT);
		wire_w_init(&w);
		client_items_begin(&w, op, put_flags, k);
		m->payload = evbuffer_new();
		for (uint32_t j = 0; j < k; j++) {
			const struct kvn_item *it = &op->items[idx[i + j]];
			client_item_add(&w, op, idx[i + j], 0);
			/* zero copy, as client_send_round */
			if (it->vlen)
				evbuffer_add_reference(m->payload, it->val, it->vlen, NULL, NULL);
		}
		/* room for the grants the master writes in with the gens */
		for (uint32_t j = 0; j < k; j++)
			proto_grants_add(&w, NULL);
		if (master_send(c, op, m, &w, idx + i, k) != 0)
			break; /* the rest go by ROUTE_PUT */
		c->stats.via_put_sent += k;
		i += k;
	}
	(void)client_wait_round(c, op); /* a timed-out request fails as a whole */
	if (!op->res)
		op->res = kvn_xcalloc(op->n, sizeof *op->res);
	for (uint32_t r = 0; r < op->nreqs; r++) {
		struct client_req *q = op->reqs[r];
		if (!q->done || q->err)
			continue; /* no answer: ROUTE_PUT (the peer ignores a
				   * generation it never committed) */
		if (q->reply->status == KVN_EPROTO) {
			c->via_put_refused = 1; /* a master that does not take PUT */
			continue;
		}
		if (q->reply->status || (q->reply->flags & WIRE_F_ROUTES))
			continue;
		client_collect_req(c, op, q, st);
		for (uint32_t j = 0; j < q->n; j++) {
			uint32_t it = q->idx[j];
			answered[it] = 1;
			op->rt[it] = c->sole; /* the master's node: its peer stored it */
			op->rt[it].status = 0;
			op->rt[it].gen = op->res[it].gen;
			if (st[it] == 0)
				c->stats.via_put_stored++;
			if (st[it] == KVN_ENOSPC || st[it] == KVN_ECONN)
				*refused_here = 1;
		}
	}
	client_round_reset(op);
out:
	for (uint32_t j = 0; j < nall; j++)
		if (!answered[all[j]]) {
			st[all[j]] = KVN_EBUSY;
			all[left++] = all[j];
		}
	free(idx);
	free(answered);
	return left;
}
