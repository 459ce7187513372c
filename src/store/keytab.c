/*
 * keytab: the peer's per-key state.  Owns the key entries (uthash on the
 * binary key), the slots of every generation with their arena extents, the
 * read leases (uthash on the lease id), the LRU list of committed slots, the
 * pending list the TTL reaper scans, and the doomed list of generations that
 * lost their key while a lease held them.  A slot's pages go back to the arena
 * exactly once: when it is aborted, reaped, overwritten on arrival (a newer
 * generation committed first), or when it leaves the committed state
 * (supersede, remove, evict) with no lease on it, or else at its last lease
 * release.  Also the tombstones of generations the master superseded
 * (keytab_supersede): a key entry with no generation that remembers, for a
 * while, that its value moved rather than went away.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = (unsigned)kvn_hash64((keyptr), (keylen)))
#define uthash_fatal(msg) kvn_fatal("keytab: %s", (msg))
#include <uthash.h>

#include "base/hashpf.h"

/* Internal state beyond the public enum: the key no longer sees the slot,
 * only its leases keep it. */
#define SLOT_DOOMED 3

struct kt_link {
	struct kt_link *prev, *next;
};

struct kt_key;

struct kt_slot {
	struct kt_link link;   /* on exactly one list: lru, pending or doomed */
	struct kt_key *k;      /* NULL once doomed */
	struct kt_slot *knext; /* the key's pending slots */
	uint64_t gen, size, deadline;
	uint32_t leases;
	int state;
	int next;
	struct alloc_extent ext[]; /* next entries */
};

struct kt_key {
	UT_hash_handle hh;
	struct kt_slot *committed;
	struct kt_slot *pending; /* singly linked through knext; usually 0 or 1 */
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
	struct kt_link lru; /* head.next = most recently used */
	struct kt_link pending;
	struct kt_link doomed;
	struct kt_link tombs; /* tombstoned keys, oldest first */
	uint64_t last_lease_id; /* ids are never reused, so a stale id stays unknown */
	struct keytab_stats st;
};

#define LINK_SLOT(l) ((struct kt_slot *)((char *)(l) - offsetof(struct kt_slot, link)))
#define LINK_KEY(l) ((struct kt_key *)((char *)(l) - offsetof(struct kt_key, tomb_link)))

/* ---- lists -------------------------------------------------------------- */

static void list_init(struct kt_link *h)
{
	h->prev = h->next = h;
}

static void list_push_head(struct kt_link *h, struct kt_link *l)
{
	l->prev = h;
	l->next = h->next;
	h->next->prev = l;
	h->next = l;
}

static void list_unlink(struct kt_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

/* ---- helpers ------------------------------------------------------------ */

static int check_key(const void *key, size_t klen)
{
	if (klen == 0 || klen > KVN_MAX_KEY)
		return KVN_EKEYLEN;
	return key ? 0 : KVN_EINVAL;
}

static struct kt_key *key_find(struct keytab *kt, const void *key, size_t klen)
{
	struct kt_key *k = NULL;
	HASH_FIND(hh, kt->keys, key, klen, k);
	return k;
}

/* A new, empty entry for key (the caller found none). */
static struct kt_key *key_add(struct keytab *kt, const void *key, size_t klen)
{
	struct kt_key *k = kvn_xmalloc(sizeof *k + klen);
	memset(k, 0, sizeof *k);
	k->klen = klen;
	memcpy(k->key, key, klen);
	HASH_ADD_KEYPTR(hh, kt->keys, k->key, k->klen, k);
	return k;
}

/* Drop the key entry once no generation and no tombstone refers to it. */
static void key_maybe_drop(struct keytab *kt, struct kt_key *k)
{
	if (k->committed || k->pending || k->tomb_gen)
		return;
	HASH_DELETE(hh, kt->keys, k);
	free(k);
}

/* Forget k's tombstone (expired, pushed out, or the key was removed). */
static void tomb_clear(struct keytab *kt, struct kt_key *k)
{
	if (!k->tomb_gen)
		return;
	list_unlink(&k->tomb_link);
	k->tomb_gen = 0;
	k->tomb_deadline = 0;
	kt->st.tombs--;
}

static uint64_t slot_page_bytes(const struct keytab *kt, const struct kt_slot *s)
{
	uint64_t pages = 0;
	for (int i = 0; i < s->next; i++)
		pages += s->ext[i].npages;
	return pages * alloc_page_size(kt->arena);
}

/* The one place a slot's pages go back to the arena. */
static void slot_free(struct keytab *kt, struct kt_slot *s)
{
	alloc_release(kt->arena, s->ext, s->next);
	free(s);
}

static void fill_view(struct keytab_view *v, const struct kt_slot *s)
{
	if (!v)
		return;
	v->key = s->k ? s->k->key : NULL;
	v->klen = s->k ? s->k->klen : 0;
	v->gen = s->gen;
	v->size = s->size;
	v->state = s->state;
	v->tier = KEYTAB_DRAM;
	v->leases = s->leases;
	v->next = s->next;
	v->ext = s->ext;
}

static uint64_t deadline_of(uint64_t now_ms, uint64_t ttl_ms)
{
	return ttl_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + ttl_ms;
}

/* Unlink the PENDING slot (key, gen) from its key and the pending list;
 * NULL if there is none. */
static struct kt_slot *pending_take(struct keytab *kt, struct kt_key *k, uint64_t gen)
{
	for (struct kt_slot **pp = &k->pending; *pp; pp = &(*pp)->knext) {
		struct kt_slot *s = *pp;
		if (s->gen != gen)
			continue;
		*pp = s->knext;
		s->knext = NULL;
		list_unlink(&s->link);
		kt->st.pending--;
		kt->st.pending_bytes -= slot_page_bytes(kt, s);
		return s;
	}
	return NULL;
}

/* The committed slot leaves its key (supersede, remove, evict): freed now,
 * or doomed until its last lease is released.  The caller then drops the key
 * entry if nothing else refers to it. */
static void committed_retire(struct keytab *kt, struct kt_slot *s)
{
	KVN_ASSERT(s->state == KEYTAB_COMMITTED && s->k && s->k->committed == s);
	list_unlink(&s->link);
	s->k->committed = NULL;
	s->k = NULL;
	kt->st.keys--;
	kt->st.committed_bytes -= s->size;
	if (s->leases == 0) {
		slot_free(kt, s);
		return;
	}
	s->state = SLOT_DOOMED;
	list_push_head(&kt->doomed, &s->link);
	kt->st.doomed++;
}

/* The committed slot of key, checked against gen (0 = any).  With no
 * committed generation, a tombstone covering gen (or any, for gen 0) answers
 * KVN_ESTALE: the value moved to another node, it was not removed. */
static int committed_get(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
			 struct kt_slot **out)
{
	int rc = check_key(key, klen);
	if (rc)
		return rc;
	struct kt_key *k = key_find(kt, key, klen);
	if (k && !k->committed && k->tomb_gen && (gen == 0 || gen <= k->tomb_gen))
		return KVN_ESTALE;
	/* Asked for one generation this peer does not hold at all: the master
	 * routed it here, so it lived here or was about to.  Gone since (a
	 * remove, a drop, a restart of this peer that lost it), the master
	 * knows what, if anything, replaced it: "superseded" sends the client
	 * back to it, where "not found" would be final while a newer
	 * generation may live elsewhere (t/sim found it: a get routed here
	 * across this peer's crash and restart). */
	if (!k || !k->committed)
		return gen ? KVN_ESTALE : KVN_ENOTFOUND;
	if (gen && k->committed->gen != gen)
		return KVN_ESTALE;
	*out = k->committed;
	return 0;
}

static void lease_drop(struct keytab *kt, struct kt_lease *l)
{
	struct kt_slot *s = l->slot;

	HASH_DELETE(hh, kt->leases, l);
	free(l);
	kt->st.leases--;
	KVN_ASSERT(s->leases > 0);
	if (--s->leases == 0 && s->state == SLOT_DOOMED) {
		list_unlink(&s->link);
		kt->st.doomed--;
		slot_free(kt, s);
	}
}

/* ---- public ------------------------------------------------------------- */

struct keytab *keytab_new(struct alloc_arena *a)
{
	if (!a)
		return NULL;
	struct keytab *kt = kvn_xcalloc(1, sizeof *kt);
	kt->arena = a;
	list_init(&kt->lru);
	list_init(&kt->pending);
	list_init(&kt->doomed);
	list_init(&kt->tombs);
	return kt;
}

static void list_free_all(struct keytab *kt, struct kt_link *h)
{
	while (h->next != h) {
		struct kt_slot *s = LINK_SLOT(h->next);
		list_unlink(&s->link);
		slot_free(kt, s);
	}
}

void keytab_free(struct keytab *kt)
{
	struct kt_lease *l, *ltmp;
	struct kt_key *k, *ktmp;

	if (!kt)
		return;
	list_free_all(kt, &kt->lru);
	list_free_all(kt, &kt->pending);
	list_free_all(kt, &kt->doomed);
	HASH_ITER(hh, kt->leases, l, ltmp)
	{
		HASH_DELETE(hh, kt->leases, l);
		free(l);
	}
	HASH_ITER(hh, kt->keys, k, ktmp)
	{
		HASH_DELETE(hh, kt->keys, k);
		free(k);
	}
	free(kt);
}

int keytab_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		 uint64_t now_ms, uint64_t ttl_ms, struct keytab_view *view)
{
	struct alloc_extent ext[KEYTAB_MAX_EXT];
	struct kt_key *k;
	struct kt_slot *s;
	int rc, n;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = check_key(key, klen)))
		return rc;
	if (gen == 0) /* 0 means "any generation" everywhere else */
		return KVN_EINVAL;
	k = key_find(kt, key, klen);
	if (k) {
		if (k->committed && k->committed->gen == gen)
			return KVN_EEXIST;
		for (s = k->pending; s; s = s->knext)
			if (s->gen == gen)
				return KVN_EEXIST;
		if (k->committed && k->committed->gen > gen)
			return KVN_ESTALE;
	}
	/* pages first: on ENOSPC nothing in the table has changed */
	n = alloc_pages(kt->arena, size, ext, KEYTAB_MAX_EXT);
	if (n < 0)
		return n;
	s = kvn_xmalloc(sizeof *s + (size_t)n * sizeof s->ext[0]);
	memset(s, 0, sizeof *s);
	memcpy(s->ext, ext, (size_t)n * sizeof ext[0]);
	s->next = n;
	s->gen = gen;
	s->size = size;
	s->deadline = deadline_of(now_ms, ttl_ms);
	s->state = KEYTAB_PENDING;
	if (!k) {
		k = key_add(kt, key, klen);
	}
	s->k = k;
	s->knext = k->pending;
	k->pending = s;
	list_push_head(&kt->pending, &s->link);
	kt->st.pending++;
	kt->st.pending_bytes += slot_page_bytes(kt, s);
	/* every generation this table can hold entered here: a running max
	 * the peer reports when it attaches (a master that lost master.db
	 * must hand out newer ones) */
	if (gen > kt->st.max_gen)
		kt->st.max_gen = gen;
	fill_view(view, s);
	return 0;
}

int keytab_commit(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		  uint64_t *superseded_gen)
{
	struct kt_key *k;
	struct kt_slot *s, *old;
	int rc;

	if (superseded_gen)
		*superseded_gen = 0;
	if (!kt)
		return KVN_EINVAL;
	if ((rc = check_key(key, klen)))
		return rc;
	k = key_find(kt, key, klen);
	s = k ? pending_take(kt, k, gen) : NULL;
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	old = k->committed;
	if (old && old->gen > gen) {
		/* A newer put committed first: this one is overwritten on
		 * arrival (it takes its place in the order just before the
		 * newer one) and never becomes visible. */
		slot_free(kt, s);
		if (superseded_gen)
			*superseded_gen = gen;
		return 0;
	}
	KVN_ASSERT(!old || old->gen != gen); /* begin refuses a duplicate gen */
	if (old) {
		if (superseded_gen)
			*superseded_gen = old->gen;
		committed_retire(kt, old);
	}
	s->state = KEYTAB_COMMITTED;
	k->committed = s;
	if (k->tomb_gen && k->tomb_gen < gen)
		tomb_clear(kt, k); /* this node holds a newer value than the one that moved */
	list_push_head(&kt->lru, &s->link);
	kt->st.keys++;
	kt->st.committed_bytes += s->size;
	return 0;
}

int keytab_abort(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_key *k;
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = check_key(key, klen)))
		return rc;
	k = key_find(kt, key, klen);
	s = k ? pending_take(kt, k, gen) : NULL;
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	slot_free(kt, s);
	key_maybe_drop(kt, k);
	return 0;
}

int keytab_reap(struct keytab *kt, uint64_t now_ms, keytab_slot_fn fn, void *arg)
{
	struct kt_link *l, *nx;
	int n = 0;

	if (!kt)
		return 0;
	for (l = kt->pending.next; l != &kt->pending; l = nx) {
		struct kt_slot *s = LINK_SLOT(l);
		nx = l->next;
		if (now_ms < s->deadline)
			continue;
		struct kt_key *k = s->k;
		if (fn)
			fn(arg, k->key, k->klen, s->gen, s->size);
		s = pending_take(kt, k, s->gen);
		KVN_ASSERT(s == LINK_SLOT(l));
		slot_free(kt, s);
		key_maybe_drop(kt, k);
		kt->st.reaped++;
		n++;
	}
	/* tombstones are kept for ttl_ms each, oldest first on the list */
	while (kt->tombs.next != &kt->tombs) {
		struct kt_key *k = LINK_KEY(kt->tombs.next);
		if (now_ms < k->tomb_deadline)
			break;
		tomb_clear(kt, k);
		key_maybe_drop(kt, k);
	}
	return n;
}

void keytab_prefetch(const struct keytab *kt, const struct keytab_ref *refs, size_t n)
{
	const UT_hash_table *tbl = kt && kt->keys ? kt->keys->hh.tbl : NULL;
	struct kvn_pf pf[KEYTAB_PREFETCH_MAX];

	if (!tbl)
		return;
	if (n > KEYTAB_PREFETCH_MAX)
		n = KEYTAB_PREFETCH_MAX;
	for (size_t i = 0; i < n; i++)
		pf[i].hv = kvn_hash_ut(refs[i].key, refs[i].klen);
	kvn_hash_prefetch_batch(tbl, pf, n);
	/* a lookup goes on to the committed slot (gen, LRU link, extents) */
	for (size_t i = 0; i < n; i++) {
		if (!pf[i].hit)
			continue;
		const struct kt_key *k = (const void *)((const char *)pf[i].hit - tbl->hho);
		if (k->committed)
			__builtin_prefetch(k->committed);
	}
}

int keytab_lookup(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		  struct keytab_view *view)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = committed_get(kt, key, klen, gen, &s)))
		return rc;
	list_unlink(&s->link);
	list_push_head(&kt->lru, &s->link);
	fill_view(view, s);
	return 0;
}

int keytab_lease(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		 uint64_t ttl_ms, uint64_t *lease_id, struct keytab_view *view)
{
	struct kt_slot *s;
	struct kt_lease *l;
	int rc;

	if (!kt || !lease_id)
		return KVN_EINVAL;
	if ((rc = committed_get(kt, key, klen, gen, &s)))
		return rc;
	l = kvn_xcalloc(1, sizeof *l);
	l->id = ++kt->last_lease_id;
	l->deadline = deadline_of(now_ms, ttl_ms);
	l->slot = s;
	HASH_ADD(hh, kt->leases, id, sizeof l->id, l);
	s->leases++;
	kt->st.leases++;
	list_unlink(&s->link);
	list_push_head(&kt->lru, &s->link);
	*lease_id = l->id;
	fill_view(view, s);
	return 0;
}

int keytab_release(struct keytab *kt, uint64_t lease_id)
{
	struct kt_lease *l = NULL;

	if (!kt)
		return KVN_EINVAL;
	HASH_FIND(hh, kt->leases, &lease_id, sizeof lease_id, l);
	if (!l) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	lease_drop(kt, l);
	return 0;
}

int keytab_lease_hold(struct keytab *kt, uint64_t lease_id, void *owner)
{
	struct kt_lease *l = NULL;

	if (!kt || !owner)
		return KVN_EINVAL;
	HASH_FIND(hh, kt->leases, &lease_id, sizeof lease_id, l);
	if (!l)
		return KVN_ESTATE;
	l->owner = owner;
	return 0;
}

/* A lease past its deadline is counted once.  Without an owner (a pin) it
 * is released now, its pages freed if its generation is gone.  With one,
 * the pages are still being written out of (a GET reply's evbuffer
 * references them): freeing them would hand pages under an in-flight write
 * to the next put, so the lease stays until that reference's cleanup calls
 * keytab_release; fn is told, so its owner can cut the write short (close
 * the connection).  fn runs after the walk, by lease id looked up again: it
 * may release any lease (one connection's cut ends all its references). */
int keytab_expire_leases_fn(struct keytab *kt, uint64_t now_ms, keytab_expired_fn fn, void *arg)
{
	struct kt_lease *l, *tmp;
	uint64_t *held = NULL;
	size_t nheld = 0, cap = 0;
	int n = 0;

	if (!kt)
		return 0;
	HASH_ITER(hh, kt->leases, l, tmp)
	{
		if (now_ms < l->deadline || l->expired)
			continue;
		kt->st.lease_expired++;
		n++;
		if (!l->owner) {
			lease_drop(kt, l);
			continue;
		}
		l->expired = 1;
		if (!fn)
			continue;
		if (nheld == cap) {
			cap = cap ? cap * 2 : 16;
			held = realloc(held, cap * sizeof *held);
			if (!held)
				kvn_fatal("out of memory");
		}
		held[nheld++] = l->id;
	}
	for (size_t i = 0; i < nheld; i++) {
		HASH_FIND(hh, kt->leases, &held[i], sizeof held[i], l);
		if (l)
			fn(arg, l->id, l->owner);
	}
	free(held);
	return n;
}

int keytab_expire_leases(struct keytab *kt, uint64_t now_ms)
{
	return keytab_expire_leases_fn(kt, now_ms, NULL, NULL);
}

int keytab_remove(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t *removed_gen)
{
	struct kt_slot *s;
	struct kt_key *k;
	int rc;

	if (removed_gen)
		*removed_gen = 0;
	if (!kt)
		return KVN_EINVAL;
	if ((rc = committed_get(kt, key, klen, gen, &s)))
		return rc;
	if (removed_gen)
		*removed_gen = s->gen;
	k = s->k;
	committed_retire(kt, s);
	tomb_clear(kt, k); /* removed: from now on "not found" */
	key_maybe_drop(kt, k);
	return 0;
}

int keytab_supersede(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		     uint64_t ttl_ms)
{
	struct kt_key *k;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = check_key(key, klen)))
		return rc;
	if (gen == 0)
		return KVN_EINVAL;
	k = key_find(kt, key, klen);
	if (k && k->committed && k->committed->gen > gen)
		return KVN_ESTALE; /* superseded here already: reads answer ESTALE */
	rc = KVN_ENOTFOUND;
	if (k && k->committed && k->committed->gen == gen) {
		committed_retire(kt, k->committed);
		rc = 0;
	}
	if (!k) {
		/* evicted or removed meanwhile: a get routed to the old gen
		 * still learns that the key moved */
		k = key_add(kt, key, klen);
	}
	if (k->committed) { /* an older gen than the one superseded: cannot be */
		key_maybe_drop(kt, k);
		return rc;
	}
	if (k->tomb_gen > gen)
		gen = k->tomb_gen;
	tomb_clear(kt, k); /* re-queued at the tail with a fresh deadline */
	if (kt->st.tombs >= KEYTAB_TOMB_MAX) {
		struct kt_key *old = LINK_KEY(kt->tombs.next);
		tomb_clear(kt, old);
		key_maybe_drop(kt, old);
	}
	k->tomb_gen = gen;
	k->tomb_deadline = deadline_of(now_ms, ttl_ms);
	list_push_head(kt->tombs.prev, &k->tomb_link); /* append */
	kt->st.tombs++;
	return rc;
}

uint64_t keytab_evict(struct keytab *kt, uint64_t bytes, keytab_slot_fn fn, void *arg)
{
	struct kt_link *l, *pv;
	uint64_t freed = 0;

	if (!kt)
		return 0;
	for (l = kt->lru.prev; l != &kt->lru && alloc_free_bytes(kt->arena) < bytes; l = pv) {
		struct kt_slot *s = LINK_SLOT(l);
		pv = l->prev;
		if (s->leases) /* a read in flight: never under its feet */
			continue;
		struct kt_key *k = s->k;
		if (fn)
			fn(arg, k->key, k->klen, s->gen, s->size);
		freed += slot_page_bytes(kt, s);
		committed_retire(kt, s);
		key_maybe_drop(kt, k);
		kt->st.evicted++;
	}
	return freed;
}

void keytab_foreach(struct keytab *kt, keytab_slot_fn fn, void *arg)
{
	struct kt_key *k, *tmp;

	if (!kt || !fn)
		return;
	HASH_ITER(hh, kt->keys, k, tmp)
	{
		if (k->committed)
			fn(arg, k->key, k->klen, k->committed->gen, k->committed->size);
	}
}

void keytab_get_stats(const struct keytab *kt, struct keytab_stats *st)
{
	if (!kt) {
		memset(st, 0, sizeof *st);
		return;
	}
	*st = kt->st;
}

void keytab_stats_each(const struct keytab_stats *st, kvn_stat_fn fn, void *arg)
{
	KEYTAB_STATS_FIELDS(KVN_STAT_VISIT)
}
