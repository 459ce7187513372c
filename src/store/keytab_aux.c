/*
 * keytab_aux: the key table's attribute records and its expiry heap.  A
 * struct kt_aux holds what few slots use (a pending or tombstone deadline,
 * an expiry, pins, the heap position), so the common committed slot does
 * not carry them (keytab_int.h).  Records come from chunks that never move
 * (pinned records are linked through them), reused through a free list.
 * The heap is a min-heap on expires_ms of the committed slots that have
 * one, drained in order by keytab_expire (keytab_tier.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store/keytab_int.h"

struct kt_aux *keytab_i_aux_get(struct keytab *kt, struct kt_slot *s)
{
	struct kt_aux *a;

	if (s->aux)
		return kt_aux(kt, s);
	if (!kt->aux_free) {
		uint32_t base = kt->naux_chunks * KT_AUX_CHUNK;
		if (kt->naux_chunks >= UINT32_MAX / KT_AUX_CHUNK - 1)
			kvn_fatal("keytab: too many attribute records");
		kt->auxc = realloc(kt->auxc, (kt->naux_chunks + 1) * sizeof *kt->auxc);
		if (!kt->auxc)
			kvn_fatal("out of memory");
		a = kvn_xcalloc(KT_AUX_CHUNK, sizeof *a);
		kt->auxc[kt->naux_chunks++] = a;
		/* ids are 1 + index; thread the chunk onto the free list */
		for (uint32_t i = KT_AUX_CHUNK; i-- > 0;) {
			a[i].heap = kt->aux_free;
			kt->aux_free = base + i + 1;
		}
	}
	s->aux = kt->aux_free;
	a = kt_aux(kt, s);
	kt->aux_free = a->heap;
	memset(a, 0, sizeof *a);
	a->s = s;
	kt_list_init(&a->plink);
	return a;
}

void keytab_i_aux_put(struct keytab *kt, struct kt_slot *s)
{
	struct kt_aux *a = kt_aux(kt, s);

	if (!a)
		return;
	KVN_ASSERT(!a->pins && !a->heap);
	a->s = NULL;
	a->heap = kt->aux_free;
	kt->aux_free = s->aux;
	s->aux = 0;
}

void keytab_i_aux_trim(struct keytab *kt, struct kt_slot *s)
{
	const struct kt_aux *a = kt_aux(kt, s);

	if (!a || s->state == KEYTAB_PENDING || s->state == SLOT_TOMB || a->expires_ms || a->pins || a->heap)
		return;
	keytab_i_aux_put(kt, s);
}

void keytab_i_aux_fini(struct keytab *kt)
{
	for (uint32_t i = 0; i < kt->naux_chunks; i++)
		free(kt->auxc[i]);
	free(kt->auxc);
	kt->auxc = NULL;
	kt->naux_chunks = kt->aux_free = 0;
}

/* ---- expiry heap: committed slots with an expiry, earliest on top ------- */

static uint64_t exp_of(const struct keytab *kt, size_t i)
{
	return kt_aux(kt, kt->heap[i])->expires_ms;
}

static void heap_set(struct keytab *kt, size_t i, struct kt_slot *s)
{
	kt->heap[i] = s;
	kt_aux(kt, s)->heap = (uint32_t)(i + 1);
}

static void heap_up(struct keytab *kt, size_t i)
{
	struct kt_slot *s = kt->heap[i];
	uint64_t e = kt_aux(kt, s)->expires_ms;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (exp_of(kt, p) <= e)
			break;
		heap_set(kt, i, kt->heap[p]);
		i = p;
	}
	heap_set(kt, i, s);
}

static void heap_down(struct keytab *kt, size_t i)
{
	struct kt_slot *s = kt->heap[i];
	uint64_t e = kt_aux(kt, s)->expires_ms;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= kt->nheap)
			break;
		if (c + 1 < kt->nheap && exp_of(kt, c + 1) < exp_of(kt, c))
			c++;
		if (e <= exp_of(kt, c))
			break;
		heap_set(kt, i, kt->heap[c]);
		i = c;
	}
	heap_set(kt, i, s);
}

void keytab_i_heap_add(struct keytab *kt, struct kt_slot *s)
{
	if (!kt_expires(kt, s))
		return;
	if (kt->nheap == kt->capheap) {
		kt->capheap = kt->capheap ? kt->capheap * 2 : 64;
		kt->heap = realloc(kt->heap, kt->capheap * sizeof *kt->heap);
		if (!kt->heap)
			kvn_fatal("out of memory");
	}
	kt->heap[kt->nheap++] = s;
	heap_up(kt, kt->nheap - 1);
}

void keytab_i_heap_del(struct keytab *kt, struct kt_slot *s)
{
	struct kt_aux *a = kt_aux(kt, s);

	if (!a || !a->heap)
		return;
	size_t i = a->heap - 1;
	a->heap = 0;
	struct kt_slot *last = kt->heap[--kt->nheap];
	if (last == s)
		return;
	kt->heap[i] = last;
	heap_up(kt, i);
	heap_down(kt, kt_aux(kt, last)->heap - 1);
}
