/*
 * master_index: the master's in-memory state and the read-side messages.
 * Owns the node table, the key index (key -> node, gen, tier, size, each
 * entry also on its node's list), generation assignment, DROP_GEN batching,
 * placement (ROUTE_PUT) and the ROUTE_GET, STAT and PING replies.  Runs on
 * the master actor's loop only; nothing here touches SQLite.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "master/master_int.h"
#include "base/hashpf.h"

/* Longest exclude list a ROUTE_PUT may carry (more: KVN_EPROTO). */
#define MASTER_MAX_EXCLUDE 64
/* DROP_GEN messages are cut below the metadata limit. */
#define DROP_SPLIT_BYTES (48u * 1024u)
/* Unconfirmed DROP_GEN notices kept per node; beyond, the node is asked
 * for a full sync instead (on_heartbeat). */
#define PDROP_MAX 65536
#define PREFETCH_MIN 8    /* ROUTE_GET batches this big prefetch their keys */
#define PREFETCH_CHUNK 64 /* keys prefetched together */

/* ---- nodes ---- */

struct master_node *master_node_find(struct master *ms, const char *node_id)
{
	struct master_node *n;
	HASH_FIND_STR(ms->nodes, node_id, n);
	return n;
}

struct master_node *master_node_get(struct master *ms, const char *node_id)
{
	struct master_node *n = master_node_find(ms, node_id);
	if (n)
		return n;
	n = kvn_xcalloc(1, sizeof *n);
	snprintf(n->node_id, sizeof n->node_id, "%s", node_id);
	TAILQ_INIT(&n->entries);
	HASH_ADD_STR(ms->nodes, node_id, n);
	return n;
}

void master_node_staging_reset(struct master_staging *s)
{
	free(s->ents);
	free(s->keys);
	memset(s, 0, sizeof *s);
}

void master_node_free_all(struct master *ms)
{
	struct master_node *n, *tmp;
	HASH_ITER(hh, ms->nodes, n, tmp) {
		HASH_DEL(ms->nodes, n);
		master_node_staging_reset(&n->stg);
		master_drops_pending_clear(n);
		wire_w_fini(&n->held_w);
		auth_grant_key_free(n->gkey);
		free(n);
	}
}

/* ---- grants ---- */

/* From the connection the node attached over (both ends derive the same
 * bytes from its session, nothing is sent), or, for an actor of this
 * process, from the process's own secret and the node's boot id. */
void master_node_grant_key(struct master *ms, struct master_node *n, const struct actor_msg *m, uint64_t boot)
{
	uint8_t mat[AUTH_MAC_LEN];
	struct auth_grant_key *g = NULL;
	int rc = net_link_material(actor_loop_of(ms->self), m->src, AUTH_GRANT_LABEL, mat);

	if (rc == KVN_EINVAL)
		rc = auth_grant_local_material(boot, mat);
	if (rc == 0)
		rc = auth_grant_key_new(mat, &g);
	OPENSSL_cleanse(mat, sizeof mat);
	auth_grant_key_free(n->gkey);
	n->gkey = g;
	if (rc)
		log_error("master: node %s: no grant key for this attachment (%s): its puts will be refused",
			  n->node_id, kvn_strerror(rc));
}

void master_node_grant(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen, uint64_t size,
		 struct proto_grant *g)
{
	memset(g, 0, sizeof *g);
	if (!n->gkey)
		return;
	g->expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS;
	g->size = size;
	if (auth_grant_sign(n->gkey, n->node_id, key, klen, gen, size, g->expiry_ms, g->mac) != 0)
		memset(g, 0, sizeof *g);
}

/* SQLite holds signed 64-bit integers: clamp what a peer reported. */
static uint64_t clamp63(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

uint64_t master_node_footprint(const struct master_node *n, uint64_t size)
{
	/* The arena hands out whole pages: a 100-byte value on 4 KiB pages
	 * takes 4 KiB, and counting its bytes let small puts overbook a full
	 * peer until its next heartbeat (it answered ENOSPC).  page_size is
	 * range-checked on the wire (a power of two up to 1 GiB), sizes are
	 * below 2^63: no overflow. */
	uint64_t p = n->page_size > 1 ? n->page_size : 1;
	return (size + p - 1) & ~(p - 1);
}

uint64_t master_node_free_dram(const struct master_node *n)
{
	/* reported use, corrected by what was indexed or unindexed since
	 * (saturating: the report is the peer's, up to 2^63-1 once clamped) */
	int64_t used;
	if (__builtin_add_overflow((int64_t)clamp63(n->dram_used), n->used_delta, &used))
		used = n->used_delta > 0 ? INT64_MAX : 0;
	if (used < 0)
		used = 0;
	uint64_t busy = (uint64_t)used + n->reserved;
	if (busy < (uint64_t)used) /* overflow: nothing free */
		return 0;
	return n->dram_total > busy ? n->dram_total - busy : 0;
}

void master_node_row(const struct master_node *n, struct meta_node *row)
{
	memset(row, 0, sizeof *row);
	snprintf(row->node_id, sizeof row->node_id, "%s", n->node_id);
	snprintf(row->role, sizeof row->role, "peer");
	snprintf(row->addr, sizeof row->addr, "%s", n->addr);
	row->dram_total = clamp63(n->dram_total);
	row->dram_used = clamp63(n->dram_used);
	row->disk_total = clamp63(n->disk_total);
	row->disk_used = clamp63(n->disk_used);
	row->last_seq = clamp63(n->applied_seq);
	row->last_seen_ms = clamp63(kvn_wall_ms());
	snprintf(row->state, sizeof row->state, "%s", n->dead ? "dead" : "alive");
}

/* ---- index ---- */

static struct master_entry *index_find(struct master *ms, const uint8_t *key, uint16_t klen)
{
	struct master_entry *e;
	HASH_FIND(hh, ms->index, key, klen, e);
	return e;
}

static void entry_unlink_node(struct master *ms, struct master_entry *e)
{
	TAILQ_REMOVE(&e->node->entries, e, nlink);
	e->node->objects--;
	e->node->bytes -= e->size;
	e->node->used_delta -= (int64_t)master_node_footprint(e->node, e->size);
	ms->bytes -= e->size;
}

static void entry_link_node(struct master *ms, struct master_entry *e, struct master_node *node)
{
	e->node = node;
	TAILQ_INSERT_TAIL(&node->entries, e, nlink);
	node->objects++;
	node->bytes += e->size;
	node->used_delta += (int64_t)master_node_footprint(node, e->size);
	ms->bytes += e->size;
}

static void entry_delete(struct master *ms, struct master_entry *e)
{
	entry_unlink_node(ms, e);
	HASH_DEL(ms->index, e);
	ms->objects--;
	free(e);
}

int master_index_add(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen, uint64_t gen,
	       uint8_t tier, uint64_t size, struct master_drops *drops)
{
	struct master_entry *e = index_find(ms, key, klen);

	/* every generation reaching the index passes here (events, snapshots,
	 * master.db): one this master would hand out again stops it until its
	 * epoch is raised */
	master_gen_seen(ms, gen);
	if (!e && (gen < master_floor_take(ms, node, key, klen, gen) || gen < master_floor_removed_take(ms, key, klen, gen))) {
		/* superseded or removed while a node was forgotten: taking it
		 * back would undo an acknowledged put or remove */
		master_drops_add(drops, node, key, klen, gen);
		return MASTER_INDEX_STALE;
	}
	if (!e) {
		e = kvn_xmalloc(sizeof *e + klen);
		memset(e, 0, sizeof *e);
		memcpy(e->key, key, klen);
		e->klen = klen;
		e->gen = gen;
		e->tier = tier;
		e->size = size;
		HASH_ADD_KEYPTR(hh, ms->index, e->key, e->klen, e);
		ms->objects++;
		entry_link_node(ms, e, node);
		return MASTER_INDEX_NEW;
	}
	if (gen > e->gen) {
		/* The peer that held the old generation frees it; a
		 * generation superseded on the same node was already freed by
		 * that node's own commit. */
		if (e->node != node)
			master_drops_add(drops, e->node, key, klen, e->gen);
		entry_unlink_node(ms, e);
		e->gen = gen;
		e->tier = tier;
		e->size = size;
		entry_link_node(ms, e, node);
		return MASTER_INDEX_NEW;
	}
	if (gen == e->gen && e->node == node) {
		/* A tier move (or a repeated snapshot entry). */
		entry_unlink_node(ms, e);
		e->tier = tier;
		e->size = size;
		entry_link_node(ms, e, node);
		return MASTER_INDEX_UPDATED;
	}
	/* Older, or the same generation claimed by a second node: the indexed
	 * one wins and the sender drops its copy. */
	master_drops_add(drops, node, key, klen, gen);
	return MASTER_INDEX_STALE;
}

int master_index_remove(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
		  uint64_t gen)
{
	struct master_entry *e = index_find(ms, key, klen);
	if (!e || e->node != node || e->gen != gen)
		return 0;
	master_floor_raise(ms, key, klen, gen + 1);
	master_floor_removed_note(ms, key, klen, gen + 1);
	entry_delete(ms, e);
	return 1;
}

uint64_t master_index_drop_node(struct master *ms, struct master_node *node)
{
	struct master_entry *e;
	uint64_t n = 0;
	while ((e = TAILQ_FIRST(&node->entries))) {
		master_floor_raise(ms, e->key, e->klen, e->gen); /* the node may bring back only it */
		entry_delete(ms, e);
		n++;
	}
	return n;
}

void master_index_free_all(struct master *ms)
{
	struct master_entry *e, *tmp;
	HASH_ITER(hh, ms->index, e, tmp) {
		HASH_DEL(ms->index, e);
		free(e);
	}
	ms->objects = ms->bytes = 0;
	master_floor_free_all(ms);
	master_floor_removed_free_all(ms);
}

/* ---- DROP_GEN batching ---- */

void master_drops_add(struct master_drops *d, struct master_node *node, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_drop *x = kvn_xmalloc(sizeof *x + klen);
	x->node = node;
	x->gen = gen;
	x->klen = klen;
	memcpy(x->key, key, klen);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		struct master_drop **v = realloc(d->v, d->cap * sizeof *v);
		if (!v)
			kvn_fatal("out of memory");
		d->v = v;
	}
	d->v[d->n++] = x;
}

void master_drops_fini(struct master_drops *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
	memset(d, 0, sizeof *d);
}

/* Send v[0..n) (all for one node) as one DROP_GEN.  Returns items not
 * delivered. */
static size_t drop_send_one(struct master *ms, struct master_node *node, struct master_drop **v, size_t n)
{
	struct actor_msg *m = actor_msg_new(WIRE_DROP_GEN);
	struct wire_w w;

	m->src = actor_id_of(ms->self); /* an in-process peer checks it (send_durable) */

	wire_w_init(&w);
	proto_items_begin(&w, 0, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		proto_items_add(&w, v[i]->key, v[i]->klen, v[i]->gen, 0);
	if (wire_w_to_msg(&w, m) != 0 || actor_send(node->ref, m) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return n;
	}
	return 0;
}

/* By node id, not by pointer: the order of the sends is then the same in
 * every run, which a seeded simulation needs to replay. */
static int drop_cmp(const void *a, const void *b)
{
	const struct master_drop *x = *(struct master_drop *const *)a, *y = *(struct master_drop *const *)b;
	return strcmp(x->node->node_id, y->node->node_id);
}

/* ---- unconfirmed DROP_GEN notices ---- */

static size_t pdrop_hk(uint8_t *hk, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	memcpy(hk, &gen, 8);
	memcpy(hk + 8, key, klen);
	return 8u + klen;
}

int master_drops_pending_has(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	uint8_t hk[8 + KVN_MAX_KEY];
	struct master_pdrop *d;
	size_t len;

	if (!n->pdrops || klen > KVN_MAX_KEY)
		return 0;
	len = pdrop_hk(hk, key, klen, gen);
	HASH_FIND(hh, n->pdrops, hk, len, d);
	return d != NULL;
}

static void pending_add(struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_pdrop *d;

	if (klen > KVN_MAX_KEY || master_drops_pending_has(n, key, klen, gen))
		return;
	if (n->npdrops >= PDROP_MAX) {
		n->pdrops_lost = 1;
		return;
	}
	d = kvn_xmalloc(sizeof *d + 8u + klen);
	memset(d, 0, sizeof *d);
	d->klen = klen;
	pdrop_hk(d->hk, key, klen, gen);
	HASH_ADD_KEYPTR(hh, n->pdrops, d->hk, 8u + klen, d);
	n->npdrops++;
}

void master_drops_pending_clear(struct master_node *n)
{
	struct master_pdrop *d, *tmp;
	HASH_ITER(hh, n->pdrops, d, tmp) {
		HASH_DEL(n->pdrops, d);
		free(d);
	}
	n->npdrops = 0;
	n->pdrops_lost = 0;
}

void master_drops_pending_resend(struct master *ms, struct master_node *n)
{
	struct master_drops again = { 0 };
	struct master_pdrop *d, *tmp;

	HASH_ITER(hh, n->pdrops, d, tmp) {
		uint64_t gen;
		memcpy(&gen, d->hk, 8);
		master_drops_add(&again, n, d->hk + 8, d->klen, gen);
	}
	master_drops_send(ms, &again); /* already kept: adding again is a no-op */
}

void master_drops_send(struct master *ms, struct master_drops *d)
{
	size_t failed = 0;
	const struct master_node *first_failed = NULL;

	if (d->n == 0)
		return;
	/* stable enough: qsort is not stable, but order within a node does
	 * not matter (each item names its own generation) */
	qsort(d->v, d->n, sizeof *d->v, drop_cmp);
	/* kept until the node's heartbeat shows it applied them: a notice
	 * that does not arrive is sent again */
	for (size_t i = 0; i < d->n; i++)
		pending_add(d->v[i]->node, d->v[i]->key, d->v[i]->klen, d->v[i]->gen);
	for (size_t i = 0; i < d->n;) {
		struct master_node *node = d->v[i]->node;
		size_t j = i, bytes = 5;
		while (j < d->n && d->v[j]->node == node && j - i < PROTO_MAX_ITEMS &&
		       bytes + 18u + d->v[j]->klen <= DROP_SPLIT_BYTES) {
			bytes += 18u + d->v[j]->klen;
			j++;
		}
		size_t f = drop_send_one(ms, node, d->v + i, j - i);
		if (f && !first_failed)
			first_failed = node;
		failed += f;
		MASTER_STAT_ADD(drops_sent, (j - i) - f);
		i = j;
	}
	if (failed) {
		/* the node's disconnection or full mailbox: its next full sync
		 * reconciles (the index no longer points at those gens) */
		MASTER_STAT_ADD(drops_failed, failed);
		log_warn("master: %zu DROP_GEN notices undeliverable (first to node %s)", failed,
			 KVN_Q(first_failed->node_id));
	}
	master_drops_fini(d);
}

void master_drops_stale_add(struct master_stale *s, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	if (s->n++ == 0) {
		kvn_key_printable(s->first, sizeof s->first, key, klen);
		s->first_gen = gen;
	}
}

void master_drops_stale_log(const struct master_stale *s, const struct master_node *n, const char *what)
{
	if (s->n)
		log_warn("master: node %s: %u stale %s entries answered with DROP_GEN (first %s gen %" PRIu64 ")",
			 KVN_Q(n->node_id), s->n, what, s->first, s->first_gen);
}


/* ---- generations ---- */

int master_gen_next(struct master *ms, uint64_t *gen)
{
	if (ms->epoch_want > ms->epoch)
		return KVN_EBUSY; /* a peer holds newer generations: raising the epoch */
	if (ms->counter >= UINT32_MAX) {
		if (!ms->gen_exhausted_logged) {
			log_error("master: generation counter of epoch %u exhausted (2^32 puts since this "
				  "master started): ROUTE_PUT refused with KVN_EBUSY; restart the master "
				  "to open a new epoch",
				  ms->epoch);
			ms->gen_exhausted_logged = 1;
		}
		return KVN_EBUSY;
	}
	*gen = ((uint64_t)ms->epoch << 32) | ++ms->counter;
	return 0;
}

void master_gen_seen(struct master *ms, uint64_t gen)
{
	/* the next generation this master would hand out (past the counter's
	 * end: the next epoch's first) */
	uint64_t next = ((uint64_t)ms->epoch << 32) + ms->counter + 1;
	uint64_t e = gen >> 32;

	if (gen < next || e < ms->epoch_want)
		return; /* older than ours, or a raise above it is already due */
	if (e >= INT32_MAX) {
		/* epochs stop at 2^31-1 (gens fit SQLite's int64): no master
		 * handed this out; putting it ahead of every later put is not
		 * worth stopping generations for good */
		if (!ms->epoch_cap_logged)
			log_error("master: a peer holds generation %#" PRIx64 ", beyond the last epoch: not honoured",
				  gen);
		ms->epoch_cap_logged = 1;
		ms->own_epoch = UINT32_MAX; /* nothing can be told apart from it */
		return;
	}
	log_warn("master: a peer holds generation %#" PRIx64 " (epoch %" PRIu64 ", this master's is %u: master.db "
		 "lost or replaced?): no generation handed out until epoch %" PRIu64 " is committed",
		 gen, e, ms->epoch, e + 1);
	ms->epoch_want = (uint32_t)e + 1;
	/* a foreign generation at or above our epochs: only the raised ones
	 * are surely ours (master_route_ready) */
	ms->own_epoch = ms->epoch_want;
	master_gen_epoch_raise(ms);
}

/* ---- routes after a restart ---- */

void master_node_synced(struct master *ms, struct master_node *n)
{
	if (!n->unsynced)
		return;
	n->unsynced = 0;
	if (--ms->unsynced == 0) {
		log_info("master: every node known in master.db has re-synced or timed out: every key is routed");
		master_floor_prune(ms);
	}
}

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

int master_node_usable(const struct master_node *n)
{
	return n->attached && !n->dead;
}

int master_route_place(struct master *ms, uint64_t size, struct master_node **out)
{
	struct master_node *n, *tmp, *best = NULL;
	uint64_t best_free = 0;
	uint32_t ties = 0;
	int any_attached = 0, any_candidate = 0, any_big = 0;

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
		uint64_t f = master_node_free_dram(n);
		if (f < need)
			continue;
		if (!best || f > best_free) {
			best = n;
			best_free = f;
			ties = 1;
		} else if (f == best_free) {
			ties++;
		}
	}
	if (!any_attached)
		return KVN_ENOPEER;
	if (!best)
		return !any_candidate || any_big ? KVN_EFULL : KVN_ETOOBIG;
	if (ties > 1) {
		/* spread equal candidates instead of always the first in hash order */
		uint32_t k = (uint32_t)(ms->rr++ % ties);
		HASH_ITER(hh, ms->nodes, n, tmp) {
			if (!master_node_usable(n) || n->mark == ms->stamp || master_node_free_dram(n) != best_free)
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

void master_on_route_put(struct master *ms, const struct actor_msg *m)
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
		return;
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
}

/* ---- ROUTE_GET ---- */

/* A batch starts each chunk's cache misses together, right before its
 * lookups. */
void master_index_lookup_keys(struct master *ms, const struct proto_item *items, uint32_t n, struct master_entry **ents)
{
	struct kvn_pf *pf = NULL;

	if (n >= PREFETCH_MIN) {
		pf = kvn_xmalloc(n * sizeof *pf);
		for (uint32_t i = 0; i < n; i++)
			pf[i].hv = kvn_hash_ut(items[i].key, items[i].klen);
	}
	for (uint32_t i = 0; i < n; i++) {
		if (pf && i % PREFETCH_CHUNK == 0)
			kvn_hash_prefetch_batch(ms->index ? ms->index->hh.tbl : NULL, pf + i,
						n - i < PREFETCH_CHUNK ? n - i : PREFETCH_CHUNK);
		ents[i] = index_find(ms, items[i].key, items[i].klen);
	}
	free(pf);
}

void master_route_reply(struct master *ms, const struct actor_msg *m, struct master_entry *const *ents, uint32_t n,
			 uint16_t extra_flags)
{
	struct wire_w w;

	wire_w_init(&w);
	proto_routes_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct master_entry *e = ents[i];
		if (!master_route_ready(ms, e))
			proto_routes_add(&w, KVN_EBUSY, NULL, NULL, 0, 0, 0); /* ask again */
		else if (!e)
			proto_routes_add(&w, KVN_ENOTFOUND, NULL, NULL, 0, 0, 0);
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

void master_on_route_get(struct master *ms, const struct actor_msg *m)
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
		master_route_reply(ms, m, ents, n, 0);
	}
	if (items != items_s) {
		free(items);
		free(ents);
	}
}

/* ---- STAT, PING ---- */

void master_on_stat(struct master *ms, const struct actor_msg *m)
{
	struct master_node *n, *tmp;
	struct wire_w w;

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
	proto_reply(ms->self, m, &w, NULL, 0);
}

void master_on_ping(struct master *ms, const struct actor_msg *m)
{
	struct master_node *n, *tmp;
	uint32_t peers = 0;

	HASH_ITER(hh, ms->nodes, n, tmp)
		peers += (uint32_t)master_node_usable(n);
	struct actor_msg *rep = actor_msg_new(WIRE_PING);
	if (proto_ping_reply_enc(rep, peers, ms->server_id) != 0) {
		actor_msg_free(rep);
		actor_reply_status(ms->self, m, KVN_EPROTO);
		return;
	}
	actor_reply(ms->self, m, rep, 0);
}
