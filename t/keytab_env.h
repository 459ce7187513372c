/*
 * t/keytab_env.h: what t/keytab and t/keytab_model share: an arena of test
 * pages, its used-page count, a key table's stats, and the byte pattern that
 * proves a view reads its own generation's bytes.
 */
#ifndef KVN_T_KEYTAB_ENV_H
#define KVN_T_KEYTAB_ENV_H

#include "base/base.h"
#include "store/store.h"

#define PS 4096u

static inline struct alloc_arena *arena(uint64_t pages)
{
	struct alloc_arena *a = NULL;
	int rc = alloc_arena_new(pages * PS, PS, 0, &a);
	if (rc || !a)
		kvn_fatal("alloc_arena_new: %d", rc);
	return a;
}

static inline uint64_t used_pages(const struct alloc_arena *a)
{
	struct alloc_stats st;
	alloc_get_stats(a, &st);
	return st.total_pages - st.free_pages;
}

static inline struct keytab_stats kstats(const struct keytab *kt)
{
	struct keytab_stats st;
	keytab_get_stats(kt, &st);
	return st;
}

#define K(s) (s), strlen(s)

/* Fill the view's pages with bytes derived from (seed, offset), or (verify)
 * check that they are still there. */
static inline int pattern(struct alloc_arena *a, const struct keytab_view *v, uint8_t seed, int verify)
{
	uint64_t off = 0;
	for (int i = 0; i < v->next; i++) {
		uint8_t *p = alloc_addr(a, v->ext[i].page);
		uint64_t n = (uint64_t)v->ext[i].npages * PS;
		for (uint64_t j = 0; j < n && off < v->size; j++, off++) {
			uint8_t b = (uint8_t)(seed + off * 7 + (off >> 12));
			if (!verify)
				p[j] = b;
			else if (p[j] != b)
				return 0;
		}
	}
	return off == v->size;
}
#define fill(a, v, seed) pattern((a), (v), (seed), 0)
#define check(a, v, seed) pattern((a), (v), (seed), 1)

#endif
