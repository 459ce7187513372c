/*
 * hashpf: batch prefetch for uthash tables.  A lookup in a large table is a
 * chain of dependent cache misses: the bucket, then each entry of its chain
 * (uthash lets chains average two to four entries: it grows on the longest
 * chain, not on a load factor), then the key bytes.  Walking a whole batch
 * one hop at a time, prefetching the next hop of every key before following
 * any, lets those misses overlap; the lookups that follow then mostly hit.
 * Only a hint: every read here is one uthash's own lookup would make.
 * Include after uthash.h and the file's own HASH_FUNCTION, so the hash is
 * the table's.
 */
#ifndef KVN_HASHPF_H
#define KVN_HASHPF_H

#include <uthash.h>

/* always_inline: GCC's IPA pass finds a helper that only prefetches to be
 * free of side effects and deletes calls to it (seen in master_index.c,
 * whose batch prefetch compiled to nothing).  Inlined before that pass, the
 * prefetches stay in the caller's body. */
#define KVN_PF_INLINE static inline __attribute__((always_inline))

/* Chain entries followed past the head.  uthash's load factor swings
 * between about 2 and 4 as it doubles; with xxhash keys 5 hops reach 95% of
 * keys at load 4 (8192 keys: 81% at 3) and 99.7% at load 2 (65536 keys).
 * The rest just miss as before. */
#define KVN_PF_HOPS 5

/* One key of a batch prefetch.  Set hv; the walk uses h (NULL once it
 * ended); hit is the entry whose hash matched (probably the key's, unless
 * hashes collide), or NULL if none did within KVN_PF_HOPS hops. */
struct kvn_pf {
	unsigned hv;
	const UT_hash_handle *h, *hit;
};

/* The key's hash as the including file's uthash computes it. */
KVN_PF_INLINE unsigned kvn_hash_ut(const void *key, size_t klen)
{
	unsigned hv;
	HASH_VALUE(key, (unsigned)klen, hv);
	return hv;
}

/* Prefetch the buckets, chains and key bytes of pf[0..n) (their hv set) in
 * hops over the whole batch.  tbl may be NULL (an empty table).  Keep n to a
 * few dozen: a hop's lines must still be in L1 when the next hop reads them. */
KVN_PF_INLINE void kvn_hash_prefetch_batch(const UT_hash_table *tbl, struct kvn_pf *pf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pf[i].h = pf[i].hit = NULL;
	if (!tbl)
		return;
	for (i = 0; i < n; i++)
		__builtin_prefetch(&tbl->buckets[pf[i].hv & (tbl->num_buckets - 1u)]);
	for (i = 0; i < n; i++) {
		pf[i].h = tbl->buckets[pf[i].hv & (tbl->num_buckets - 1u)].hh_head;
		if (pf[i].h)
			__builtin_prefetch(pf[i].h);
	}
	for (int hop = 0; hop <= KVN_PF_HOPS; hop++) {
		for (i = 0; i < n; i++) {
			const UT_hash_handle *h = pf[i].h;
			if (!h)
				continue;
			if (h->hashv == pf[i].hv) {
				/* the key compare reads the bytes behind the handle */
				__builtin_prefetch(h->key);
				pf[i].hit = h;
				pf[i].h = NULL;
				continue;
			}
			/* past the last hop the walk gives up: h NULL either way */
			pf[i].h = hop < KVN_PF_HOPS ? h->hh_next : NULL;
			if (pf[i].h)
				__builtin_prefetch(pf[i].h);
		}
	}
}

#endif
