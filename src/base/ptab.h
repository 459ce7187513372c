/*
 * ptab: a compact open-addressing hash table of pointers, for the tables
 * with one entry per stored key (the peer's key table, the master's
 * index).  uthash costs 56 bytes of handle in every entry plus its bucket
 * array; here the table is one pointer and one tag byte per slot (about 13
 * bytes per entry at the average load), and the entry keeps nothing of
 * the table's: growth and deletion hash the entry's key again through the
 * owner's callback (they read the entry anyway, to find its home slot).
 * Linear probing with backward-shift deletion (no tombstones), a one-byte
 * tag per slot (7 hash bits) so a probe rarely touches an entry that is not
 * the one sought, slot = fastrange(hash, cap) so the capacity grows by 3/2
 * rather than doubling (less headroom).  Written here rather than taken
 * from a library: Debian's hash tables (glib's GHashTable, uthash) keep a
 * hash or a handle per entry on top of the pointer, which is the cost this
 * removes.  The caller owns the entries and compares keys; not
 * thread-safe.
 */
#ifndef KVN_PTAB_H
#define KVN_PTAB_H

#include <stddef.h>
#include <stdint.h>

struct kvn_ptab {
	void **v;     /* cap entries (NULL where tag is 0) */
	uint8_t *tag; /* 0: empty; else 0x80 | 7 bits of the hash */
	size_t cap, n, grow_at;
	uint32_t (*hash)(const void *e); /* the entry's key's kvn_ptab_hash */
};

void kvn_ptab_init(struct kvn_ptab *t, uint32_t (*hash)(const void *e));
/* Frees the table's arrays (not the entries). */
void kvn_ptab_fini(struct kvn_ptab *t);
/* Add e (no entry with its key present). */
void kvn_ptab_add(struct kvn_ptab *t, void *e);
/* Remove e (present); entries may move, so an iteration by slot index
 * must not remove (collect first). */
void kvn_ptab_del(struct kvn_ptab *t, void *e);
/* Put e in old's slot (same key, so same hash). */
void kvn_ptab_replace(struct kvn_ptab *t, void *old, void *e);

static inline uint32_t kvn_ptab_hash(uint64_t h64)
{
	return (uint32_t)(h64 ^ (h64 >> 32));
}

static inline size_t kvn_ptab_home(const struct kvn_ptab *t, uint32_t h)
{
	return (size_t)(((uint64_t)h * t->cap) >> 32);
}

static inline uint8_t kvn_ptab_tag(uint32_t h)
{
	return (uint8_t)(0x80 | (h & 0x7f));
}

static inline size_t kvn_ptab_next(const struct kvn_ptab *t, size_t i)
{
	return i + 1 == t->cap ? 0 : i + 1;
}

/* Probe for hash h: start at KVN_PTAB_FOR(t, h, i) and compare t->v[i]'s key
 * where t->tag[i] == kvn_ptab_tag(h).  The loop ends at an empty slot. */
#define KVN_PTAB_FOR(t, h, i) \
	for (size_t i = (t)->cap ? kvn_ptab_home((t), (h)) : 0; (t)->cap && (t)->tag[i]; i = kvn_ptab_next((t), i))

/* Start loading the slot of hash h (a batch's lookups overlap misses). */
static inline void kvn_ptab_prefetch(const struct kvn_ptab *t, uint32_t h)
{
	if (!t->cap)
		return;
	size_t i = kvn_ptab_home(t, h);
	__builtin_prefetch(&t->tag[i]);
	__builtin_prefetch(&t->v[i]);
}

/* The entry a prefetched probe will probably compare first (a tag match at
 * the home slot), or NULL: prefetch it next. */
static inline void *kvn_ptab_peek(const struct kvn_ptab *t, uint32_t h)
{
	if (!t->cap)
		return NULL;
	size_t i = kvn_ptab_home(t, h);
	return t->tag[i] == kvn_ptab_tag(h) ? t->v[i] : NULL;
}

#endif
