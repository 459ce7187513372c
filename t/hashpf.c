/*
 * t/hashpf: the batch prefetch walk of base/hashpf.h on real uthash tables
 * whose hash this file controls: distinct hashes (every reachable key is
 * found, at its own entry), one shared hash (the walk stops at the chain's
 * head), and one long chain of distinct hashes in a single bucket (a missing
 * key walks KVN_PF_HOPS entries past the head and gives up).  Prefetches
 * cannot be observed; what can go wrong is the walk itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

enum hmode { H_DISTINCT, H_SAME, H_ONE_BUCKET };
static enum hmode mode;

/* Keys are "k<i>"; the hash is a function of i chosen by mode. */
static unsigned test_hash(const void *key, size_t klen)
{
	char buf[16];
	size_t n = klen < sizeof buf - 1 ? klen : sizeof buf - 1;
	memcpy(buf, key, n);
	buf[n] = 0;
	unsigned i = (unsigned)strtoul(buf + 1, NULL, 10);
	switch (mode) {
	case H_DISTINCT:
		return i * 2654435761u; /* odd multiplier: a bijection */
	case H_SAME:
		return 7;
	default:
		return (i + 1) << 24; /* distinct, but one bucket below 2^24 buckets */
	}
}

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = test_hash((keyptr), (keylen)))
#include <uthash.h>

#include "base/hashpf.h"

struct ent {
	UT_hash_handle hh;
	char key[16];
};

static struct ent *table(unsigned n)
{
	struct ent *head = NULL;
	for (unsigned i = 0; i < n; i++) {
		struct ent *e = calloc(1, sizeof *e);
		if (!e)
			abort();
		snprintf(e->key, sizeof e->key, "k%u", i);
		HASH_ADD(hh, head, key, strlen(e->key), e);
	}
	return head;
}

static void table_free(struct ent *head)
{
	struct ent *e, *tmp;
	HASH_ITER(hh, head, e, tmp) {
		HASH_DEL(head, e);
		free(e);
	}
}

/* Entries ahead of e in its bucket's chain. */
static unsigned chain_pos(const struct ent *head, const struct ent *e)
{
	const UT_hash_table *t = head->hh.tbl;
	const UT_hash_handle *h = t->buckets[e->hh.hashv & (t->num_buckets - 1u)].hh_head;
	unsigned pos = 0;
	while (h && h != &e->hh) {
		h = h->hh_next;
		pos++;
	}
	return pos;
}

static void fill(struct kvn_pf *pf, const unsigned *ids, size_t n)
{
	char k[16];
	for (size_t j = 0; j < n; j++) {
		snprintf(k, sizeof k, "k%u", ids[j]);
		pf[j].hv = kvn_hash_ut(k, strlen(k));
	}
}

static void t_empty(void)
{
	struct kvn_pf pf[3];
	unsigned ids[3] = { 1, 2, 3 };

	mode = H_DISTINCT;
	fill(pf, ids, 3);
	pf[0].h = pf[0].hit = (const void *)pf; /* stale state is cleared */
	kvn_hash_prefetch_batch(NULL, pf, 3);
	ok(!pf[0].h && !pf[0].hit && !pf[1].hit && !pf[2].hit, "no table: no hits, no walk left");
}

static void t_distinct(void)
{
	enum { N = 5000, B = 64 };
	struct kvn_pf pf[B];
	unsigned ids[B];
	int right = 1, reachable_found = 1, deep = 0, missing_none = 1;

	mode = H_DISTINCT;
	struct ent *head = table(N);
	for (unsigned j = 0; j < B; j++)
		ids[j] = (j * 7919u) % N;
	fill(pf, ids, B);
	kvn_hash_prefetch_batch(head->hh.tbl, pf, B);
	for (unsigned j = 0; j < B; j++) {
		struct ent *e;
		char k[16];
		snprintf(k, sizeof k, "k%u", ids[j]);
		HASH_FIND_STR(head, k, e);
		if (pf[j].hit && pf[j].hit != &e->hh)
			right = 0;
		if (chain_pos(head, e) <= KVN_PF_HOPS && !pf[j].hit)
			reachable_found = 0;
		deep += chain_pos(head, e) > KVN_PF_HOPS;
		if (pf[j].h)
			right = 0; /* every walk ended */
	}
	ok(right, "every hit is the key's own entry, and every walk ended");
	ok(reachable_found, "every key within %d hops of its bucket's head is found", KVN_PF_HOPS);
	tap_diag("%d of %d keys sat deeper than that", deep, B);

	for (unsigned j = 0; j < B; j++)
		ids[j] = N + j; /* not in the table */
	fill(pf, ids, B);
	kvn_hash_prefetch_batch(head->hh.tbl, pf, B);
	for (unsigned j = 0; j < B; j++)
		if (pf[j].hit || pf[j].h)
			missing_none = 0;
	ok(missing_none, "missing keys: no hit");
	table_free(head);
}

static void t_same_hash(void)
{
	enum { N = 40 };
	struct kvn_pf pf[N];
	unsigned ids[N];
	int at_head = 1;

	mode = H_SAME;
	struct ent *head = table(N);
	const UT_hash_table *t = head->hh.tbl;
	const UT_hash_handle *first = t->buckets[7u & (t->num_buckets - 1u)].hh_head;
	for (unsigned j = 0; j < N; j++)
		ids[j] = j;
	fill(pf, ids, N);
	kvn_hash_prefetch_batch(t, pf, N);
	for (unsigned j = 0; j < N; j++)
		if (pf[j].hit != first || pf[j].h)
			at_head = 0;
	ok(at_head, "one hash for all %d keys: each walk stops at the chain's head", N);
	table_free(head);
}

static void t_one_bucket(void)
{
	enum { N = 40 };
	struct kvn_pf pf[2];
	unsigned ids[2] = { N + 5, 3 };

	mode = H_ONE_BUCKET;
	struct ent *head = table(N);
	const UT_hash_table *t = head->hh.tbl;
	unsigned longest = 0;
	for (unsigned b = 0; b < t->num_buckets; b++)
		if (t->buckets[b].count > longest)
			longest = t->buckets[b].count;
	is_int(longest, N, "all %d keys share one bucket", N);
	fill(pf, ids, 2);
	kvn_hash_prefetch_batch(t, pf, 2);
	ok(!pf[0].hit && !pf[0].h, "a missing key gives up after %d hops", KVN_PF_HOPS);
	struct ent *e;
	HASH_FIND_STR(head, "k3", e);
	unsigned pos = chain_pos(head, e);
	if (pos <= KVN_PF_HOPS)
		ok(pf[1].hit == &e->hh, "k3, %u entries down the chain, is found", pos);
	else
		ok(!pf[1].hit && !pf[1].h, "k3, %u entries down the chain, is past the walk", pos);
	table_free(head);
}

static const struct tap_test tests[] = {
	{ "empty", t_empty },
	{ "distinct", t_distinct },
	{ "same_hash", t_same_hash },
	{ "one_bucket", t_one_bucket },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return tap_run(tests, argc, argv);
}
