/*
 * hashpf: batch prefetch for uthash tables.  A batch of lookups in a large
 * table is a chain of cache misses (bucket, then entry), each waited for in
 * turn.  Hashing every key of the batch first and prefetching its bucket,
 * then each bucket's first entry, lets those misses overlap; the lookups
 * that follow then mostly hit.  Only a hint: nothing is read that uthash
 * does not read itself.  Include after uthash.h and the file's own
 * HASH_FUNCTION, so the hash is the table's.
 */
#ifndef KVN_HASHPF_H
#define KVN_HASHPF_H

#include <uthash.h>

/* always_inline: GCC's IPA pass finds a helper that only prefetches to be
 * free of side effects and deletes calls to it (seen in master_index.c,
 * whose batch prefetch compiled to nothing).  Inlined before that pass, the
 * prefetches stay in the caller's body. */
#define KVN_PF_INLINE static inline __attribute__((always_inline))

/* The key's hash as the including file's uthash computes it. */
KVN_PF_INLINE unsigned kvn_hash_ut(const void *key, size_t klen)
{
	unsigned hv;
	HASH_VALUE(key, (unsigned)klen, hv);
	return hv;
}

/* stage 0: the bucket of hv; stage 1 (after stage 0 for the whole batch):
 * the first entry of that bucket.  tbl may be NULL (an empty table). */
KVN_PF_INLINE void kvn_hash_prefetch(const UT_hash_table *tbl, unsigned hv, int stage)
{
	const UT_hash_bucket *b;

	if (!tbl)
		return;
	b = &tbl->buckets[hv & (tbl->num_buckets - 1u)];
	if (stage == 0)
		__builtin_prefetch(b);
	else if (b->hh_head)
		__builtin_prefetch(b->hh_head);
}

/* Both stages for a batch whose hashes are in hv[0..n). */
KVN_PF_INLINE void kvn_hash_prefetch_batch(const UT_hash_table *tbl, const unsigned *hv, size_t n)
{
	for (int stage = 0; stage < 2; stage++)
		for (size_t i = 0; i < n; i++)
			kvn_hash_prefetch(tbl, hv[i], stage);
}

#endif
