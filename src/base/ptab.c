/*
 * ptab: the growth, insertion and deletion of the open-addressing pointer
 * table (base/ptab.h says why it exists and its layout).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/ptab.h"

/* Grow past 13/16 full: linear probing stays short (about 3 probes for a
 * miss, each one tag byte) and the table averages ~2/3 full. */
#define LOAD_NUM 13
#define LOAD_DEN 16
#define MIN_CAP 16

static uint32_t ent_hash(const struct kvn_ptab *t, const void *e)
{
	return t->hash(e);
}

void kvn_ptab_init(struct kvn_ptab *t, uint32_t (*hash)(const void *e))
{
	memset(t, 0, sizeof *t);
	t->hash = hash;
}

void kvn_ptab_fini(struct kvn_ptab *t)
{
	free(t->v);
	free(t->tag);
	t->v = NULL;
	t->tag = NULL;
	t->cap = t->n = t->grow_at = 0;
}

static void put(struct kvn_ptab *t, void *e, uint32_t h)
{
	size_t i = kvn_ptab_home(t, h);
	while (t->tag[i])
		i = kvn_ptab_next(t, i);
	t->tag[i] = kvn_ptab_tag(h);
	t->v[i] = e;
}

/* By 3/2, not 2: the headroom a table carries is what this module is for. */
static void grow(struct kvn_ptab *t)
{
	struct kvn_ptab o = *t;
	size_t cap = o.cap ? o.cap + o.cap / 2 : MIN_CAP;

	t->cap = cap;
	t->v = kvn_xcalloc(cap, sizeof *t->v);
	t->tag = kvn_xcalloc(cap, 1);
	t->grow_at = cap / LOAD_DEN * LOAD_NUM + cap % LOAD_DEN * LOAD_NUM / LOAD_DEN;
	for (size_t i = 0; i < o.cap; i++)
		if (o.tag[i])
			put(t, o.v[i], ent_hash(t, o.v[i]));
	free(o.v);
	free(o.tag);
}

void kvn_ptab_add(struct kvn_ptab *t, void *e)
{
	if (t->n + 1 > t->grow_at)
		grow(t);
	put(t, e, ent_hash(t, e));
	t->n++;
}

static size_t slot_of(const struct kvn_ptab *t, const void *e)
{
	uint32_t h = ent_hash(t, e);
	KVN_PTAB_FOR(t, h, i)
		if (t->v[i] == e)
			return i;
	kvn_fatal("ptab: entry not in its table");
}

/* distance from a to b going forward around the table */
static size_t dist(const struct kvn_ptab *t, size_t a, size_t b)
{
	return b >= a ? b - a : b + t->cap - a;
}

void kvn_ptab_del(struct kvn_ptab *t, void *e)
{
	size_t i = slot_of(t, e), j = i;

	/* backward shift: move up every later entry of the run whose home is
	 * not between the hole and itself, so no probe meets a gap */
	for (;;) {
		j = kvn_ptab_next(t, j);
		if (!t->tag[j])
			break;
		size_t home = kvn_ptab_home(t, ent_hash(t, t->v[j]));
		if (dist(t, home, j) < dist(t, i, j))
			continue; /* its home lies after the hole: it stays */
		t->tag[i] = t->tag[j];
		t->v[i] = t->v[j];
		i = j;
	}
	t->tag[i] = 0;
	t->v[i] = NULL;
	t->n--;
}

void kvn_ptab_replace(struct kvn_ptab *t, void *old, void *e)
{
	t->v[slot_of(t, old)] = e;
}
