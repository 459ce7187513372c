/*
 * master_index: the master's key index, a plain data structure like
 * store/keytab.c.  Owns the entries (key -> node, gen, tier, size), each
 * also on its node's list so a node's locations go in O(its entries), the
 * totals over them, and the batched lookups of a request's keys.  Whether
 * an ADD may enter (floors, recent removals) is asked of master_floor.c;
 * the generations it displaces are queued in a struct master_drops
 * (master_drops.c).  Runs on the master actor's loop only; nothing here
 * touches SQLite or sends a message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"
#include "base/hashpf.h"

#define PREFETCH_MIN 8    /* ROUTE_GET batches this big prefetch their keys */
#define PREFETCH_CHUNK 64 /* keys prefetched together */

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
	/* only values in DRAM use the DRAM placement counts */
	if (e->tier == KEYTAB_DRAM)
		e->node->used_delta -= (int64_t)master_node_footprint(e->node, e->size);
	ms->bytes -= e->size;
}

static void entry_link_node(struct master *ms, struct master_entry *e, struct master_node *node)
{
	e->node = node;
	TAILQ_INSERT_TAIL(&node->entries, e, nlink);
	node->objects++;
	node->bytes += e->size;
	if (e->tier == KEYTAB_DRAM)
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
