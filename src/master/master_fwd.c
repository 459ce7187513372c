/*
 * master_fwd: requests a client sends to the master that the peer of the
 * master's own process serves (the all-in-one node).  Owns the GET hand-off
 * (after the index lookups, with the routed generations filled in) and the
 * PUT hand-off (after placement, with new generations; the payload goes
 * straight into that peer's pages through its sink), and the answers when
 * the master cannot hand them off: routes for a GET, "route it yourself"
 * for a PUT, both flagged WIRE_F_ROUTES.
 *
 * Why: ROUTE_GET then GET, or ROUTE_PUT then PUT, is two requests and two
 * replies over two connections, and on these VMs every frame costs a
 * wake-up and softirq work on both ends.  Handed off, it is one of each.
 * The peer answers the client itself: the forwarded message keeps the
 * client's connection as its sender, its correlation id and its role.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"
#include "base/metrics.h"

/* ---- GET ---- */

/* A client may send a GET to the master instead of ROUTE_GET.  When every
 * key routes to a peer that runs in this process, the request goes on to
 * that peer with each item's generation set to the routed one (a get by
 * ref keeps its own), and the peer answers the client itself, on this
 * connection: one round trip and two frames instead of ROUTE_GET, GET and
 * their replies.  The answer is the one ROUTE_GET followed by GET would
 * have given, decided by the same index at the same instant.  Otherwise
 * (a key elsewhere, missing, or on a peer that is down) the reply is the
 * ROUTE_GET answer, flagged WIRE_F_ROUTES, and the client reads from the
 * peers itself. */
int master_on_get(struct master *ms, struct actor_msg *m)
{
	struct proto_item items_s[MASTER_KEYS_STACK], *items = items_s;
	struct master_entry *ents_s[MASTER_KEYS_STACK], **ents = ents_s;
	struct wire_r r;
	uint8_t flags;
	uint32_t n = 0;
	int rc, fwd = 0;

	MASTER_STAT_INC(gets);
	rc = proto_items_open(&r, m->meta, m->meta_len, &flags, &n);
	if (rc == 0 && n > MASTER_KEYS_STACK) {
		items = kvn_xmalloc(n * sizeof *items);
		ents = kvn_xmalloc(n * sizeof *ents);
	}
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = proto_items_next(&r, &items[i]);
	if (rc == 0)
		rc = wire_r_end(&r);
	if (rc) {
		actor_reply_status(ms->self, m, master_route_decode_err(rc));
		goto out;
	}
	master_index_lookup_keys(ms, items, n, ents);
	struct master_node *to = ents[0] ? ents[0]->node : NULL;
	fwd = to && to->local && master_node_usable(to) && master_route_ready(ms, ents[0]);
	for (uint32_t i = 1; i < n && fwd; i++)
		fwd = ents[i] && ents[i]->node == to && master_route_ready(ms, ents[i]);
	if (fwd) {
		for (uint32_t i = 0; i < n; i++)
			if (items[i].gen == 0)
				proto_items_set_gen(m->meta, m->meta_len, &items[i], ents[i]->gen);
		/* src, corr and src_role stay the client's: the peer answers
		 * it, and checks its role as for a GET sent to it directly */
		if (actor_send(to->ref, m) == 0) {
			MASTER_STAT_INC(gets_forwarded);
			/* every key found (else master_route_reply counts) */
			master_route_count(ms, ents, n);
		} else {
			fwd = 0;
			for (uint32_t i = 0; i < n; i++)
				proto_items_set_gen(m->meta, m->meta_len, &items[i], items[i].gen);
		}
	}
	if (!fwd)
		master_route_reply(ms, m, items, ents, n, WIRE_F_ROUTES);
out:
	if (items != items_s) {
		free(items);
		free(ents);
	}
	return fwd ? ACTOR_KEEP : 0;
}

/* ---- PUT ---- */

/* What the master's sink hands back as the frame's cookie: the peer's own
 * cookie and where it lives. */
struct mput {
	actor_id peer;
	void *cookie;
};

/* Place every item of a PUT sent to the master on the peer of this process
 * (as ROUTE_PUT would, reserving room) and write a new generation and its
 * grant per item into meta in place (the client sent zeroed grants).  0 and *to; else KVN_ESTATE (another node, no room,
 * no such peer: the client routes them itself) or the decode error, with
 * nothing reserved. */
static int put_place(struct master *ms, uint8_t *meta, uint32_t meta_len, struct master_node **to)
{
	struct proto_item items_s[MASTER_KEYS_STACK], *items = items_s;
	struct master_node *node = NULL;
	struct wire_r r;
	uint8_t flags;
	uint32_t n = 0, i;
	int rc = proto_items_open(&r, meta, meta_len, &flags, &n);

	if (rc == 0 && n > MASTER_KEYS_STACK)
		items = kvn_xmalloc(n * sizeof *items);
	for (i = 0; i < n && rc == 0; i++)
		rc = proto_items_next(&r, &items[i]);
	/* the client leaves room for the grants, which are written here as
	 * the gens are: the peer checks them as for any PUT */
	struct wire_r gr;
	if (rc == 0 && proto_grants_open(&r, n, &gr) != 1)
		rc = KVN_ESTATE;
	if (rc)
		goto out;
	ms->stamp++; /* no node excluded */
	for (i = 0; i < n; i++) {
		struct master_node *x = NULL;
		if (items[i].size > ms->max_value_size || master_route_place(ms, items[i].size, &x) != 0 || !x->local ||
		    (node && x != node))
			break;
		node = x;
		node->reserved += master_node_footprint(node, items[i].size);
	}
	uint32_t placed = i;
	for (i = 0; i < n && placed == n; i++) {
		uint64_t gen;
		if (master_gen_next(ms, &gen) != 0)
			break; /* the epoch's generations are used up (logged there) */
		proto_items_set_gen(meta, meta_len, &items[i], gen);
		struct proto_grant g;
		master_node_grant(node, items[i].key, items[i].klen, gen, items[i].size, &g);
		proto_grants_set(meta, meta_len, n, i, &g);
	}
	if (placed < n || i < n) {
		while (placed-- > 0)
			node->reserved -= master_node_footprint(node, items[placed].size);
		rc = KVN_ESTATE;
		goto out;
	}
	*to = node;
out:
	if (items != items_s)
		free(items);
	return rc;
}

int master_fwd_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink)
{
	struct master *ms = actor_state(self);
	struct master_node *to;

	if (h->type != WIRE_PUT || (h->flags & WIRE_F_REPLY))
		return 1;
	/* meta is the frame's own buffer, which becomes the message's
	 * (conn_read.c): the generations written here are the ones the peer's
	 * sink and, later, master_on_put see */
	if (put_place(ms, (uint8_t *)meta, h->meta_len, &to) != 0)
		return KVN_ESTATE; /* the payload is read and dropped */
	/* from a connection on another loop too (I/O loops, all-in-one) */
	struct actor *pa = actor_lookup_sink(actor_loop_of(self), to->ref);
	if (!pa || actor_sink_ask(pa, from, h, meta, sink) != 0)
		return KVN_ESTATE; /* not on this loop, or it cannot take them */
	struct mput *mp = kvn_xmalloc(sizeof *mp);
	mp->peer = to->ref;
	mp->cookie = sink->cookie;
	sink->cookie = mp;
	return 0;
}

void master_fwd_sink_abort(struct actor *self, void *cookie)
{
	struct mput *mp = cookie;
	struct actor *pa = actor_lookup_sink(actor_loop_of(self), mp->peer);

	if (pa)
		actor_sink_abort(pa, mp->cookie);
	free(mp);
}

/* A PUT sent to the master.  Its payload went to the peer's pages (the
 * sink), or it has none, or the transport buffered it: the message goes on
 * to the peer, which stores, commits and answers the client once this
 * master applied the event, as for a PUT sent to it.  Otherwise the answer
 * is a reply flagged WIRE_F_ROUTES with no metadata: the client asks
 * ROUTE_PUT and sends the values again. */
int master_on_put(struct master *ms, struct actor_msg *m)
{
	struct mput *mp = m->sink_cookie;
	struct master_node *to;

	MASTER_STAT_INC(puts);
	if (mp) {
		actor_id peer = mp->peer;
		m->sink_cookie = mp->cookie;
		free(mp);
		if (actor_send(peer, m) == 0) {
			MASTER_STAT_INC(puts_forwarded);
			return ACTOR_KEEP;
		}
		struct actor *pa = actor_lookup_local(actor_loop_of(ms->self), peer);
		if (pa)
			actor_sink_abort(pa, m->sink_cookie);
		m->sink_cookie = NULL;
	} else if (!m->sink_err && put_place(ms, m->meta, m->meta_len, &to) == 0) {
		if (actor_send(to->ref, m) == 0) {
			MASTER_STAT_INC(puts_forwarded);
			return ACTOR_KEEP;
		}
	}
	struct actor_msg *r = actor_msg_new(WIRE_PUT);
	r->flags = WIRE_F_ROUTES;
	actor_reply(ms->self, m, r, 0);
	return 0;
}
