/*
 * t/ptab: base/ptab.h's open-addressing table against a plain array model,
 * under random adds, deletes and replaces, with hashes this file controls:
 * well spread, a few clusters (long runs that wrap around the end of the
 * table, where backward-shift deletion must keep every run unbroken), and
 * one hash for all (the worst case).  After each step every present entry
 * must be found by its hash and every deleted one must not.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/ptab.h"
#include "tap.h"

enum hmode { H_SPREAD, H_CLUSTER, H_ONE };
static enum hmode mode;

struct ent {
	uint32_t id;
};

static uint32_t hash_of(uint32_t id)
{
	switch (mode) {
	case H_SPREAD:
		return kvn_ptab_hash(kvn_hash64(&id, sizeof id));
	case H_CLUSTER: /* 8 homes, the last ones at the end of the table */
		return 0xffffffffu - (id % 8) * 0x01000000u;
	default:
		return 0xfffffff0u;
	}
}

static uint32_t ent_hash(const void *e)
{
	return hash_of(((const struct ent *)e)->id);
}

static struct ent *find(const struct kvn_ptab *t, uint32_t id)
{
	uint32_t h = hash_of(id);
	KVN_PTAB_FOR(t, h, i) {
		struct ent *e = t->v[i];
		if (t->tag[i] == kvn_ptab_tag(h) && e->id == id)
			return e;
	}
	return NULL;
}

#define N 600

static void run(enum hmode m, int steps)
{
	struct kvn_ptab t;
	struct ent *model[N] = { 0 };
	int bad_find = 0, bad_miss = 0, bad_n = 0, bad_slot = 0;

	mode = m;
	srand(12345 + (unsigned)m);
	kvn_ptab_init(&t, ent_hash);
	for (int s = 0; s < steps; s++) {
		uint32_t id = (uint32_t)(rand() % N);
		int op = rand() % 8;
		if (!model[id]) {
			if (op < 5) { /* adds outnumber deletes: the table grows */
				model[id] = kvn_xmalloc(sizeof *model[id]);
				model[id]->id = id;
				kvn_ptab_add(&t, model[id]);
			}
		} else if (op < 3) {
			kvn_ptab_del(&t, model[id]);
			free(model[id]);
			model[id] = NULL;
		} else if (op == 3) {
			struct ent *e = kvn_xmalloc(sizeof *e);
			e->id = id;
			kvn_ptab_replace(&t, model[id], e);
			free(model[id]);
			model[id] = e;
		}
		if (s % 7 && s != steps - 1)
			continue;
		size_t n = 0;
		for (uint32_t i = 0; i < N; i++) {
			struct ent *f = find(&t, i);
			n += model[i] != NULL;
			bad_find += model[i] && f != model[i];
			bad_miss += !model[i] && f != NULL;
		}
		bad_n += n != t.n;
		size_t used = 0;
		for (size_t i = 0; i < t.cap; i++) {
			used += t.tag[i] != 0;
			bad_slot += (t.tag[i] != 0) != (t.v[i] != NULL);
		}
		bad_n += used != t.n;
	}
	ok(t.n > N / 4, "the table holds entries at the end (%zu, capacity %zu)", t.n, t.cap);
	is_int(bad_find, 0, "every present entry is found, itself");
	is_int(bad_miss, 0, "no deleted entry is found");
	is_int(bad_n, 0, "the count matches the model and the occupied slots");
	is_int(bad_slot, 0, "a slot has a tag exactly when it has an entry");
	ok(t.n <= t.grow_at && t.grow_at < t.cap, "it grows before it is full");
	for (uint32_t i = 0; i < N; i++)
		if (model[i]) {
			kvn_ptab_del(&t, model[i]);
			free(model[i]);
		}
	is_int(t.n, 0, "deleting them all empties it");
	kvn_ptab_fini(&t);
}

static void t_spread(void)
{
	run(H_SPREAD, 20000);
}

static void t_cluster(void)
{
	run(H_CLUSTER, 20000);
}

static void t_one(void)
{
	run(H_ONE, 4000);
}

static void t_empty(void)
{
	struct kvn_ptab t;
	mode = H_SPREAD;
	kvn_ptab_init(&t, ent_hash);
	ok(find(&t, 1) == NULL, "an empty table finds nothing");
	ok(kvn_ptab_peek(&t, hash_of(1)) == NULL, "and peeks at nothing");
	kvn_ptab_prefetch(&t, hash_of(1)); /* must not touch the missing arrays */
	kvn_ptab_fini(&t);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "spread", t_spread }, { "cluster", t_cluster }, { "one_hash", t_one }, { "empty", t_empty }, { NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}
