/*
 * master_index: the master's key index, a plain data structure like
 * store/keytab.c.  Owns the entries (key -> node, gen, tier, size), each
 * also on its node's list so a node's locations go in O(its entries), the
 * totals over them, and the batched lookups of a request's keys.  Whether
 * an ADD may enter (floors, recent removals) is asked of master_floor.c;
 * the generations it displaces are queued in a struct master_drops
 * (master_drops.c).  The table is a base/ptab.h open-addressing table of
 * entry pointers with the key inline in the entry (uthash's 56-byte handle
 * and bucket array were most of the master's memory per key).  Runs on the
 * master actor's loop only; nothing here touches SQLite or sends a
 * message.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

#define PREFETCH_MIN 8    /* ROUTE_GET batches this big prefetch their keys */
#define PREFETCH_CHUNK 64 /* keys prefetched together */

/* ---- index ---- */

static uint32_t key_hash(const uint8_t *key, uint16_t klen)
{
	return kvn_ptab_hash(kvn_hash64(key, klen));
}

uint32_t master_index_hash(const void *p)
{
	const struct master_entry *e = p;
	return key_hash(e->key, e->klen);
}

static struct master_entry *find_h(const struct master *ms, const uint8_t *key, uint16_t klen, uint32_t h)
{
	uint8_t tag = kvn_ptab_tag(h);
	KVN_PTAB_FOR(&ms->index, h, i) {
		struct master_entry *e = ms->index.v[i];
		if (ms->index.tag[i] == tag && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	}
	return NULL;
}

struct master_entry *master_index_find(const struct master *ms, const uint8_t *key, uint16_t klen)
{
	return find_h(ms, key, klen, key_hash(key, klen));
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
	kvn_ptab_del(&ms->index, e);
	ms->objects--;
	free(e);
}

int master_index_add(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen, uint64_t gen,
		     uint8_t tier, uint64_t size, struct master_drops *drops)
{
	struct master_entry *e = master_index_find(ms, key, klen);

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
		e = kvn_xmalloc(offsetof(struct master_entry, key) + klen);
		memset(e, 0, offsetof(struct master_entry, key));
		memcpy(e->key, key, klen);
		e->klen = klen;
		e->gen = gen;
		e->tier = tier;
		e->size = size;
		kvn_ptab_add(&ms->index, e);
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
	struct master_entry *e = master_index_find(ms, key, klen);
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
		master_floor_raise_location(ms, e->key, e->klen, e->gen); /* the node may bring back only it */
		entry_delete(ms, e);
		n++;
	}
	return n;
}

/* Before these three, sync_apply dropped every location first and indexed
 * the snapshot after: each dropped location raised a floor (the node is
 * unsynced, so floors are kept), and a node holding more than FLOOR_MAX
 * keys reached the cap, whose one floor for every key then refused the
 * node's own snapshot: a master restart with ~260k keys told its peer to
 * drop nearly all of them (bench/restart-cost.sh -n 300000). */
void master_index_sync_begin(struct master *ms, struct master_node *node)
{
	struct master_entry *e;
	(void)ms;
	TAILQ_FOREACH(e, &node->entries, nlink)
		e->syncing = 1;
}

int master_index_sync_one(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
			  uint64_t gen, uint8_t tier, uint64_t size, struct master_drops *drops)
{
	struct master_entry *e = master_index_find(ms, key, klen);

	if (!e || e->node != node || !e->syncing)
		return master_index_add(ms, node, key, klen, gen, tier, size, drops);
	master_gen_seen(ms, gen);
	if (gen < e->gen || gen < master_floor_removed_take(ms, key, klen, gen)) {
		/* older than the location it replaces (the floor that location
		 * would have raised): refused; the location stays marked and
		 * goes with its floor at _end */
		master_drops_add(drops, node, key, klen, gen);
		return MASTER_INDEX_STALE;
	}
	e->syncing = 0;
	entry_unlink_node(ms, e);
	e->gen = gen;
	e->tier = tier;
	e->size = size;
	entry_link_node(ms, e, node);
	return MASTER_INDEX_NEW;
}

uint64_t master_index_sync_end(struct master *ms, struct master_node *node)
{
	struct master_entry *e, *next;
	uint64_t n = 0;

	for (e = TAILQ_FIRST(&node->entries); e; e = next) {
		next = TAILQ_NEXT(e, nlink);
		if (!e->syncing)
			continue;
		master_floor_raise_location(ms, e->key, e->klen, e->gen); /* the node may bring back only it */
		entry_delete(ms, e);
		n++;
	}
	return n;
}

void master_index_free_all(struct master *ms)
{
	for (size_t i = 0; i < ms->index.cap; i++)
		free(ms->index.v[i]);
	kvn_ptab_fini(&ms->index);
	ms->objects = ms->bytes = 0;
	master_floor_free_all(ms);
	master_floor_removed_free_all(ms);
}

/* A batch starts each chunk's cache misses together, right before its
 * lookups: the slots first, then the entries they probably hold. */
void master_index_lookup_keys(struct master *ms, const struct proto_item *items, uint32_t n, struct master_entry **ents)
{
	uint32_t hs[PREFETCH_CHUNK];

	for (uint32_t c = 0; c < n; c += PREFETCH_CHUNK) {
		uint32_t m = n - c < PREFETCH_CHUNK ? n - c : PREFETCH_CHUNK;
		for (uint32_t i = 0; i < m; i++) {
			hs[i] = key_hash(items[c + i].key, items[c + i].klen);
			if (n >= PREFETCH_MIN)
				kvn_ptab_prefetch(&ms->index, hs[i]);
		}
		if (n >= PREFETCH_MIN)
			for (uint32_t i = 0; i < m; i++) {
				const void *e = kvn_ptab_peek(&ms->index, hs[i]);
				if (e)
					__builtin_prefetch(e);
			}
		for (uint32_t i = 0; i < m; i++)
			ents[c + i] = find_h(ms, items[c + i].key, items[c + i].klen, hs[i]);
	}
}
