/*
 * master_route: the master's read-side and placement messages.  Owns
 * ROUTE_PUT (placement on the node with the most free DRAM, or, when DRAM
 * is full everywhere, the most free disk among nodes that can evict; a generation
 * and a grant per key), ROUTE_GET and the routes reply that master_fwd.c
 * shares, whether a route may be answered yet after a restart, the
 * key hit/miss counters of both, and the STAT and PING replies.  Runs on the master actor's loop only; the state
 * it reads is master_node.c's and master_index.c's.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"
#include "base/metrics.h"

/* Longest exclude list a ROUTE_PUT may carry (more: KVN_EPROTO). */
#define MASTER_MAX_EXCLUDE 64

/* ---- routes after a restart ---- */

int master_route_ready(const struct master *ms, const struct master_entry *e)
{
	/* A put acknowledged by the last master but not yet in master.db may
	 * sit on a node that has not re-synced: any key may have a newer
	 * generation there, or exist there only.  A generation written in this
	 * life (epoch >= own_epoch) is newer than anything such a node held
	 * before, and any newer one this master would have to apply first. */
	return ms->unsynced == 0 || (e && (e->gen >> 32) >= ms->own_epoch);
}

/* ---- ROUTE_PUT ---- */

/* How a candidate is ranked: by free DRAM while the value fits in some
 * node's free DRAM; else by free disk among those whose eviction makes
 * room (their victims go to disk, or are dropped when they have none). */
enum place_pass { PLACE_FREE, PLACE_EVICT };

static int place_fits(const struct master_node *n, enum place_pass pass, uint64_t need, uint64_t *rank)
{
	if (pass == PLACE_FREE) {
		*rank = master_node_free_dram(n);
		return *rank >= need;
	}
	*rank = master_node_free_disk(n);
	return master_node_room(n) >= need;
}

int master_route_place(struct master *ms, uint64_t size, struct master_node **out)
{
	struct master_node *n, *tmp, *best = NULL;
	uint64_t best_rank = 0, rank;
	uint32_t ties = 0;
	int any_attached = 0, any_candidate = 0, any_big = 0;
	enum place_pass pass = PLACE_FREE;

	for (;;) {
		HASH_ITER(hh, ms->nodes, n, tmp) {
			if (!master_node_usable(n))
				continue;
			any_attached = 1;
			if (n->mark == ms->stamp)
				continue;
			any_candidate = 1;
			uint64_t need = master_node_footprint(n, size);
			if (n->dram_total >= need)
				any_big = 1;
			if (!place_fits(n, pass, need, &rank))
				continue;
			if (!best || rank > best_rank) {
				best = n;
				best_rank = rank;
				ties = 1;
			} else if (rank == best_rank) {
				ties++;
			}
		}
		/* with nothing evictable anywhere the second pass finds what the
		 * first did: nothing (today's placement exactly) */
		if (best || pass == PLACE_EVICT || !any_candidate)
			break;
		pass = PLACE_EVICT;
	}
	if (!any_attached)
		return KVN_ENOPEER;
	if (!best)
		return !any_candidate || any_big ? KVN_EFULL : KVN_ETOOBIG;
	if (ties > 1) {
		/* spread equal candidates instead of always the first in hash order */
		uint32_t k = (uint32_t)(ms->rr++ % ties);
		HASH_ITER(hh, ms->nodes, n, tmp) {
			if (!master_node_usable(n) || n->mark == ms->stamp ||
			    !place_fits(n, pass, master_node_footprint(n, size), &rank) || rank != best_rank)
				continue;
			if (k-- == 0) {
				best = n;
				break;
			}
		}
	}
	*out = best;
	return 0;
}

struct put_item {
	const uint8_t *key;
	uint16_t klen;
	uint64_t size;
};

int master_route_decode_err(int rc)
{
	/* a key of a bad length fails the whole decode (the reader stops at
	 * it), so it is reported for the whole request */
	if (rc == KVN_EKEYLEN)
		return KVN_EKEYLEN;
	MASTER_STAT_INC(proto_errors);
	return KVN_EPROTO;
}

int master_on_route_put(struct master *ms, struct actor_msg *m)
{
	char ex[MASTER_MAX_EXCLUDE][65];
	struct put_item *items = NULL;
	struct master_node **placed = NULL;
	uint64_t *gens = NULL;
	struct wire_r r;
	struct wire_w w;
	uint32_t nex = 0, n = 0;
	int rc;

	MASTER_STAT_INC(route_puts);
	rc = proto_route_put_open(&r, m, ex, MASTER_MAX_EXCLUDE, &nex, &n);
	if (rc == 0) {
		items = kvn_xcalloc(n ? n : 1, sizeof *items);
		for (uint32_t i = 0; i < n && rc == 0; i++)
			rc = proto_route_put_next(&r, &items[i].key, &items[i].klen, &items[i].size);
		if (rc == 0)
			rc = wire_r_end(&r);
	}
	if (rc) {
		free(items);
		actor_reply_status(ms->self, m, master_route_decode_err(rc));
		return 0;
	}
	ms->stamp++;
	for (uint32_t i = 0; i < nex; i++) {
		struct master_node *x = master_node_find(ms, ex[i]);
		if (x)
			x->mark = ms->stamp;
	}
	placed = kvn_xcalloc(n ? n : 1, sizeof *placed);
	gens = kvn_xcalloc(n ? n : 1, sizeof *gens);
	wire_w_init(&w);
	proto_routes_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct master_node *node = NULL;
		uint64_t gen = 0;
		int32_t status;

		if (items[i].klen == 0 || items[i].klen > KVN_MAX_KEY)
			status = KVN_EKEYLEN;
		else if (items[i].size > ms->max_value_size)
			status = KVN_ETOOBIG;
		else if ((status = master_route_place(ms, items[i].size, &node)) == 0 &&
			 (status = master_gen_next(ms, &gen)) == 0) {
			node->reserved += master_node_footprint(node, items[i].size);
			placed[i] = node;
			gens[i] = gen;
			proto_routes_add(&w, 0, node->node_id, node->addr, gen, 0, items[i].size);
			continue;
		}
		proto_routes_add(&w, status, NULL, NULL, 0, 0, 0);
	}
	/* then one grant per route: the peer stores only what it names */
	for (uint32_t i = 0; i < n; i++) {
		struct proto_grant g = { 0 };
		if (placed[i])
			master_node_grant(placed[i], items[i].key, items[i].klen, gens[i], items[i].size, &g);
		proto_route_grants_add(&w, &g);
	}
	if (proto_reply(ms->self, m, &w, NULL, 0) != 0) {
		/* the answer does not fit one frame: promise nothing */
		for (uint32_t i = 0; i < n; i++)
			if (placed[i])
				placed[i]->reserved -= master_node_footprint(placed[i], items[i].size);
	}
	free(gens);
	free(placed);
	free(items);
	return 0;
}

/* ---- ROUTE_GET ---- */

void master_route_count(const struct master *ms, struct master_entry *const *ents, uint32_t n)
{
	uint64_t hits = 0, misses = 0;

	/* a key the master cannot answer yet (KVN_EBUSY after a restart) is
	 * asked again: it counts then */
	for (uint32_t i = 0; i < n; i++) {
		if (!master_route_ready(ms, ents[i]))
			continue;
		if (ents[i])
			hits++;
		else
			misses++;
	}
	/* one count for stat (master_stats) and /metrics (the registry) */
	if (hits) {
		MASTER_STAT_ADD(key_hits, hits);
		kvn_metric_hits(KVN_METRIC_MASTER, hits);
	}
	if (misses) {
		MASTER_STAT_ADD(key_misses, misses);
		kvn_metric_misses(KVN_METRIC_MASTER, misses);
	}
}

void master_route_reply(struct master *ms, const struct actor_msg *m, const struct proto_item *items,
			struct master_entry *const *ents, uint32_t n, uint16_t extra_flags)
{
	struct wire_w w;

	master_route_count(ms, ents, n);
	wire_w_init(&w);
	proto_routes_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct master_entry *e = ents[i];
		if (!master_route_ready(ms, e))
			proto_routes_add(&w, KVN_EBUSY, NULL, NULL, 0, 0, 0); /* ask again */
		else if (!e) /* a queue sample whose node is gone says so */
			proto_routes_add(&w, master_queue_miss_status(ms, items[i].key, items[i].klen), NULL, NULL, 0,
					 0, 0);
		else if (!master_node_usable(e->node))
			proto_routes_add(&w, KVN_EPEERDOWN, e->node->node_id, NULL, e->gen, 0, 0);
		else
			proto_routes_add(&w, 0, e->node->node_id, e->node->addr, e->gen, e->tier, e->size);
	}
	struct actor_msg *r = actor_msg_new(m->type);
	if (wire_w_to_msg(&w, r) != 0) {
		/* more routes than a frame holds (clients send at most 256) */
		actor_reply_status(ms->self, m, w.err);
		wire_w_fini(&w);
		actor_msg_free(r);
		return;
	}
	r->flags = extra_flags;
	actor_reply(ms->self, m, r, 0);
}

int master_on_route_get(struct master *ms, struct actor_msg *m)
{
	struct proto_item items_s[MASTER_KEYS_STACK], *items = items_s;
	struct master_entry *ents_s[MASTER_KEYS_STACK], **ents = ents_s;
	struct wire_r r;
	uint32_t n = 0;
	int rc;

	MASTER_STAT_INC(route_gets);
	/* validate everything first: a malformed request gets no partial answer */
	rc = proto_keys_open(&r, m, &n);
	if (rc == 0 && n > MASTER_KEYS_STACK) {
		items = kvn_xmalloc(n * sizeof *items);
		ents = kvn_xmalloc(n * sizeof *ents);
	}
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = proto_keys_next(&r, &items[i].key, &items[i].klen);
	if (rc == 0)
		rc = wire_r_end(&r);
	if (rc) {
		actor_reply_status(ms->self, m, master_route_decode_err(rc));
	} else {
		master_index_lookup_keys(ms, items, n, ents);
		master_route_reply(ms, m, items, ents, n, 0);
	}
	if (items != items_s) {
		free(items);
		free(ents);
	}
	return 0;
}

/* ---- STAT, PING ---- */

int master_on_stat(struct master *ms, struct actor_msg *m)
{
	struct master_node *n, *tmp;
	struct wire_w w;

	struct master_stats st;
	struct proto_stat_master sm = { 0 };
	struct net_counter *cnt = __atomic_load_n(&ms->conns, __ATOMIC_ACQUIRE);

	wire_w_init(&w);
	proto_stat_begin(&w, ms->objects, ms->bytes, HASH_COUNT(ms->nodes));
	HASH_ITER(hh, ms->nodes, n, tmp) {
		struct proto_stat_node sn = { 0 };
		snprintf(sn.node_id, sizeof sn.node_id, "%s", n->node_id);
		snprintf(sn.addr, sizeof sn.addr, "%s", n->addr);
		sn.alive = (uint8_t)master_node_usable(n);
		sn.dram_total = n->dram_total;
		sn.dram_used = n->dram_used;
		sn.disk_total = n->disk_total;
		sn.disk_used = n->disk_used;
		sn.objects = n->objects;
		proto_stat_add(&w, &sn);
	}
	master_get_stats(&st);
	sm.uptime_ms = kvn_now_ms() - ms->start_ms;
	snprintf(sm.version, sizeof sm.version, "%s", PACKAGE_VERSION);
	sm.requests = st.requests;
	sm.key_hits = st.key_hits;
	sm.key_misses = st.key_misses;
	if (cnt) {
		struct net_conn_count cc;
		net_counter_read(cnt, &cc);
		sm.conns_known = 1;
		sm.conns_open = cc.open;
		sm.conns_masters = cc.masters;
		sm.conns_peers = cc.peers;
		sm.conns_clients = cc.clients;
		sm.conns_handshake = cc.handshake;
	}
	proto_stat_master_add(&w, &sm);
	proto_reply(ms->self, m, &w, NULL, 0);
	return 0;
}

void master_set_listener(struct actor *master, struct net_listener *l)
{
	struct master *ms = actor_state(master);
	struct net_counter *cnt = net_listener_counter(l);
	struct net_counter *old = __atomic_exchange_n(&ms->conns, cnt, __ATOMIC_ACQ_REL);

	net_counter_put(old);
}

int master_on_ping(struct master *ms, struct actor_msg *m)
{
	struct master_node *n, *tmp;
	uint32_t peers = 0;

	HASH_ITER(hh, ms->nodes, n, tmp)
		peers += (uint32_t)master_node_usable(n);
	struct actor_msg *rep = actor_msg_new(WIRE_PING);
	if (proto_ping_reply_enc(rep, peers, ms->server_id) != 0) {
		actor_msg_free(rep);
		actor_reply_status(ms->self, m, KVN_EPROTO);
		return 0;
	}
	actor_reply(ms->self, m, rep, 0);
	return 0;
}
