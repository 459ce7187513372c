/*
 * keytab_int.h: what keytab.c (keys, generations, tombstones),
 * keytab_lease.c, keytab_tier.c (tiers, pins, eviction, expiry) and
 * keytab_aux.c (attribute records, the expiry heap) share: the slot and
 * attribute structures, the key groups, the lists, and the few transitions
 * they all drive.  Not for use outside src/store/keytab*.c.
 */
#ifndef KVN_KEYTAB_INT_H
#define KVN_KEYTAB_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "store/store.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = (unsigned)kvn_hash64((keyptr), (keylen)))
#define uthash_fatal(msg) kvn_fatal("keytab: %s", (msg))
#include <uthash.h>

#include "base/ptab.h"

/* Internal states beyond the public enum: the key no longer sees the slot,
 * only its leases (or an offload / promotion in flight) keep it; and a
 * tombstone (keytab_supersede), a slot without pages that remembers for a
 * while that the key's value moved rather than went away. */
#define SLOT_DOOMED 3
#define SLOT_TOMB 4

struct kt_link {
	struct kt_link *prev, *next;
};

/* Where a slot's link is: exactly one of these lists. */
enum { ON_NONE = 0, ON_PENDING, ON_LRU, ON_OFFLRU, ON_DOOMED, ON_TOMBS };

/* One generation of a key, with the key bytes inline: the slots of a key
 * (its committed generation, pending ones, doomed ones, its tombstone) form
 * a group, singly linked through knext from the group's head, the one
 * slot kt->keys holds; a committed slot is always its group's head.  A
 * committed key with a one-extent value is this one allocation (96 bytes of
 * malloc for a key of up to 16 bytes): the rarely used attributes (pending and
 * tombstone deadlines, expiry, pins, the expiry heap position) live in a
 * struct kt_aux only the slots that use them have. */
struct kt_slot {
	struct kt_link link;  /* see `on` */
	struct kt_slot *knext; /* next slot of the key's group */
	uint64_t gen, size;
	uint64_t checksum;
	union {
		struct alloc_extent one;   /* cap <= 1 */
		struct alloc_extent *many; /* cap > 1: malloc'd */
	} x;
	uint32_t leases;
	uint32_t aux; /* 1 + id of its struct kt_aux, or 0 */
	uint16_t flags; /* keytab_attrs.flags: the KEYTAB_F_* bits fit in 16 */
	uint16_t klen;
	uint8_t next, cap; /* extents used, room for (KEYTAB_MAX_EXT fits) */
	uint8_t state : 3, on : 3, in_dram : 1, on_disk : 1;
	uint8_t offloading : 1, promoting : 1, head : 1, grouped : 1;
	unsigned char key[];
};

/* Attributes few slots have.  Allocated from chunks that never move (the
 * pinned list links through them), found by id. */
struct kt_aux {
	struct kt_link plink; /* on kt->pinned while pins > 0 */
	struct kt_slot *s;    /* NULL: free */
	uint64_t deadline;    /* PENDING: commit or abort before; TOMB: forgotten at */
	uint64_t expires_ms;
	uint64_t pin_deadline;
	uint32_t pins;
	uint32_t heap; /* 1 + index in kt->heap while on it, else 0; free: next free id */
};
#define KT_AUX_CHUNK 256

struct kt_lease {
	UT_hash_handle hh;
	uint64_t id;
	uint64_t deadline;
	struct kt_slot *slot;
	void *owner; /* keytab_lease_hold: an in-flight write references the pages */
	int expired; /* held past its deadline: counted and reported once */
};

struct keytab {
	struct alloc_arena *arena;
	struct kvn_ptab keys; /* group heads (struct kt_slot) */
	struct kt_lease *leases;
	struct kt_link lru;    /* evictable candidates; head.next = most recently used */
	struct kt_link offlru; /* committed but not a candidate: disk-only, pinned, offloading */
	struct kt_link pending;
	struct kt_link doomed;
	struct kt_link tombs;  /* tombstone slots, oldest first */
	struct kt_link pinned; /* struct kt_aux of slots with pins, through plink */
	struct kt_slot **heap; /* committed slots with an expiry, min-heap on expires_ms */
	size_t nheap, capheap;
	struct kt_aux **auxc; /* chunks of KT_AUX_CHUNK */
	uint32_t naux_chunks, aux_free;
	uint64_t lru_bytes, lru_qbytes; /* page bytes on the LRU; of them, DRAM-only QUEUE items */
	keytab_slot_fn disk_free_fn;
	void *disk_free_arg;
	int closing; /* keytab_free: the free hook stays quiet */
	/* keytab_set_queue_stays: DRAM-only QUEUE items are not candidates */
	int queue_stays;
	uint64_t last_lease_id; /* ids are never reused, so a stale id stays unknown */
	struct keytab_stats st;
};

#define LINK_SLOT(l) ((struct kt_slot *)((char *)(l) - offsetof(struct kt_slot, link)))
#define PLINK_AUX(l) ((struct kt_aux *)((char *)(l) - offsetof(struct kt_aux, plink)))

static inline void kt_list_init(struct kt_link *h)
{
	h->prev = h->next = h;
}

static inline void kt_list_push_head(struct kt_link *h, struct kt_link *l)
{
	l->prev = h;
	l->next = h->next;
	h->next->prev = l;
	h->next = l;
}

static inline void kt_list_unlink(struct kt_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static inline struct kt_aux *kt_aux(const struct keytab *kt, const struct kt_slot *s)
{
	if (!s->aux)
		return NULL;
	uint32_t id = s->aux - 1;
	return &kt->auxc[id / KT_AUX_CHUNK][id % KT_AUX_CHUNK];
}

static inline uint64_t kt_expires(const struct keytab *kt, const struct kt_slot *s)
{
	const struct kt_aux *a = kt_aux(kt, s);
	return a ? a->expires_ms : 0;
}

static inline uint32_t kt_pins(const struct keytab *kt, const struct kt_slot *s)
{
	const struct kt_aux *a = kt_aux(kt, s);
	return a ? a->pins : 0;
}

static inline const struct alloc_extent *kt_ext(const struct kt_slot *s)
{
	return s->cap <= 1 ? &s->x.one : s->x.many;
}

static inline struct alloc_extent *kt_ext_mut(struct kt_slot *s)
{
	return s->cap <= 1 ? &s->x.one : s->x.many;
}

static inline int kt_expired(const struct keytab *kt, const struct kt_slot *s, uint64_t now_ms)
{
	uint64_t e = kt_expires(kt, s);
	return e && now_ms >= e;
}

static inline uint64_t kt_deadline_of(uint64_t now_ms, uint64_t ttl_ms)
{
	return ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
}

int keytab_i_check_key(const void *key, size_t klen);
uint32_t keytab_i_hash(const void *key, size_t klen);
uint32_t keytab_i_slot_hash(const void *s); /* the table's (kvn_ptab_init) */
/* The head of key's group (its committed slot if it has one), or NULL. */
struct kt_slot *keytab_i_find(const struct keytab *kt, const void *key, size_t klen, uint32_t h);
static inline struct kt_slot *kt_committed(struct kt_slot *head)
{
	return head && head->state == KEYTAB_COMMITTED ? head : NULL;
}
/* The group's tombstone, or NULL. */
struct kt_slot *keytab_i_tomb(struct kt_slot *head);
/* Forget a tombstone (expired, pushed out, or the key was removed). */
void keytab_i_tomb_free(struct keytab *kt, struct kt_slot *t);
/* Join s to its key's group (as its head: a committed slot). */
void keytab_i_group_add(struct keytab *kt, struct kt_slot *s, int as_head);
void keytab_i_make_head(struct keytab *kt, struct kt_slot *s);
/* The committed slot of key for gen (0 = any), as lookup answers; *now is
 * the time expiry is judged by, NULL: kvn_now_ms() when it matters. */
int keytab_i_get(struct keytab *kt, const void *key, size_t klen, uint64_t gen, const uint64_t *now,
		 struct kt_slot **out);
/* Put a committed slot on the list its state calls for (LRU head or not). */
void keytab_i_place(struct keytab *kt, struct kt_slot *s);
void keytab_i_unplace(struct keytab *kt, struct kt_slot *s);
void keytab_i_touch(struct keytab *kt, struct kt_slot *s);
/* The committed slot leaves its key: freed now (s is gone), or doomed while
 * held (it stays in its group). */
void keytab_i_retire(struct keytab *kt, struct kt_slot *s);
/* A doomed slot whose last holder just let go is freed. */
void keytab_i_doomed_check(struct keytab *kt, struct kt_slot *s);
void keytab_i_release_pages(struct keytab *kt, struct kt_slot *s);
uint64_t keytab_i_pbytes(const struct keytab *kt, const struct kt_slot *s);
void keytab_i_heap_add(struct keytab *kt, struct kt_slot *s);
void keytab_i_view(const struct keytab *kt, struct keytab_view *v, const struct kt_slot *s);
/* A slot of key without pages (disk_add, a tombstone) or with room for
 * `cap` extents; not in a group yet. */
struct kt_slot *keytab_i_slot_new(const void *key, size_t klen, int cap);
void keytab_i_set_attrs(struct keytab *kt, struct kt_slot *s, const struct keytab_attrs *attrs);
/* s's attributes record, made if it has none; dropped again when nothing
 * in it is in use. */
struct kt_aux *keytab_i_aux_get(struct keytab *kt, struct kt_slot *s);
void keytab_i_aux_trim(struct keytab *kt, struct kt_slot *s);
/* The slot goes away: its record too (off the heap and unpinned already). */
void keytab_i_aux_put(struct keytab *kt, struct kt_slot *s);
void keytab_i_aux_fini(struct keytab *kt);
void keytab_i_heap_del(struct keytab *kt, struct kt_slot *s);

#endif
