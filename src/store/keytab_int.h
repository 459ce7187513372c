/*
 * keytab_int.h: what keytab.c (keys, generations, leases, tombstones) and
 * keytab_tier.c (tiers, pins, eviction, expiry) share: the slot and key
 * structures, the lists, and the few transitions both sides drive.  Not for
 * use outside src/store/keytab*.c.
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

/* Internal state beyond the public enum: the key no longer sees the slot,
 * only its leases (or an offload / promotion in flight) keep it. */
#define SLOT_DOOMED 3

struct kt_link {
	struct kt_link *prev, *next;
};

struct kt_key;

/* Where a slot's link is: exactly one of these lists. */
enum { ON_NONE = 0, ON_PENDING, ON_LRU, ON_OFFLRU, ON_DOOMED };

struct kt_slot {
	struct kt_link link;   /* see `on` */
	struct kt_link plink;  /* on kt->pinned while pins > 0 */
	struct kt_key *k;      /* the key entry, kept while doomed too */
	struct kt_slot *knext; /* the key's pending slots, or its doomed ones */
	uint64_t gen, size, deadline;
	uint64_t checksum, expires_ms, pin_deadline;
	uint64_t pbytes;          /* bytes of the pages held (ext[0..next)) */
	struct alloc_extent *ext; /* inl, or malloc'd by a promotion needing more */
	uint32_t leases, pins, flags;
	uint32_t heap; /* 1 + index in kt->heap while on it (committed with expiry), else 0 */
	int state, next, cap;
	uint8_t on, in_dram, on_disk, offloading, promoting;
	struct alloc_extent inl[]; /* cap entries */
};

struct kt_key {
	UT_hash_handle hh;
	struct kt_slot *committed;
	struct kt_slot *pending; /* singly linked through knext; usually 0 or 1 */
	struct kt_slot *doomed;  /* likewise: offload_done / promote_done find them */
	/* tombstone: the master superseded generations up to tomb_gen (a newer
	 * one lives elsewhere); 0 = none.  On kt->tombs while set. */
	uint64_t tomb_gen, tomb_deadline;
	struct kt_link tomb_link;
	size_t klen;
	unsigned char key[];
};

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
	struct kt_key *keys;
	struct kt_lease *leases;
	struct kt_link lru;    /* evictable candidates; head.next = most recently used */
	struct kt_link offlru; /* committed but not a candidate: disk-only, pinned, offloading */
	struct kt_link pending;
	struct kt_link doomed;
	struct kt_link tombs;  /* tombstoned keys, oldest first */
	struct kt_link pinned; /* slots with pins, through plink */
	struct kt_slot **heap; /* committed slots with an expiry, min-heap on expires_ms */
	size_t nheap, capheap;
	uint64_t lru_bytes, lru_qbytes; /* page bytes on the LRU; of them, DRAM-only QUEUE items */
	keytab_slot_fn disk_free_fn;
	void *disk_free_arg;
	int closing; /* keytab_free: the free hook stays quiet */
	uint64_t last_lease_id; /* ids are never reused, so a stale id stays unknown */
	struct keytab_stats st;
};

#define LINK_SLOT(l) ((struct kt_slot *)((char *)(l) - offsetof(struct kt_slot, link)))
#define PLINK_SLOT(l) ((struct kt_slot *)((char *)(l) - offsetof(struct kt_slot, plink)))
#define LINK_KEY(l) ((struct kt_key *)((char *)(l) - offsetof(struct kt_key, tomb_link)))

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

static inline int kt_expired(const struct kt_slot *s, uint64_t now_ms)
{
	return s->expires_ms && now_ms >= s->expires_ms;
}

static inline uint64_t kt_deadline_of(uint64_t now_ms, uint64_t ttl_ms)
{
	return ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
}

int keytab_i_check_key(const void *key, size_t klen);
struct kt_key *keytab_i_key_find(struct keytab *kt, const void *key, size_t klen);
struct kt_key *keytab_i_key_add(struct keytab *kt, const void *key, size_t klen);
void keytab_i_key_drop(struct keytab *kt, struct kt_key *k);
void keytab_i_tomb_clear(struct keytab *kt, struct kt_key *k);
/* The committed slot of key for gen (0 = any), as lookup answers; *now is
 * the time expiry is judged by, NULL: kvn_now_ms() when it matters. */
int keytab_i_get(struct keytab *kt, const void *key, size_t klen, uint64_t gen, const uint64_t *now,
		 struct kt_slot **out);
/* Put a committed slot on the list its state calls for (LRU head or not). */
void keytab_i_place(struct keytab *kt, struct kt_slot *s);
void keytab_i_unplace(struct keytab *kt, struct kt_slot *s);
void keytab_i_touch(struct keytab *kt, struct kt_slot *s);
/* The committed slot leaves its key: freed now, or doomed while held. */
void keytab_i_retire(struct keytab *kt, struct kt_slot *s);
/* A doomed slot whose last holder just let go is freed (and its key
 * entry dropped if nothing else refers to it). */
void keytab_i_doomed_check(struct keytab *kt, struct kt_slot *s);
void keytab_i_release_pages(struct keytab *kt, struct kt_slot *s);
void keytab_i_heap_add(struct keytab *kt, struct kt_slot *s);
void keytab_i_view(struct keytab_view *v, const struct kt_slot *s);
/* A slot without pages (disk_add) or with `cap` inline extent entries. */
struct kt_slot *keytab_i_slot_new(int cap);
void keytab_i_set_attrs(struct kt_slot *s, const struct keytab_attrs *attrs);

#endif
