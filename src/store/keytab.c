/*
 * keytab: the peer's per-key state.  Owns the key entries (uthash on the
 * binary key), the slots of every generation with their arena extents, the
 * read leases (uthash on the lease id), the LRU list of evictable committed
 * slots, the pending list the TTL reaper scans, and the doomed list of
 * generations that lost their key while a lease, an offload or a promotion
 * held them.  A slot's pages go back to the arena exactly once: when it is
 * aborted, reaped, overwritten on arrival (a newer generation committed
 * first), dropped from DRAM (keytab_drop_dram, keytab_tier.c), or when it
 * leaves the committed state (supersede, remove, evict, expire) with nothing
 * holding it, or else when its last holder lets go.  Also the tombstones of
 * generations the master superseded (keytab_supersede): a key entry with no
 * generation that remembers, for a while, that its value moved rather than
 * went away.  Tiers, pins, eviction and expiry: keytab_tier.c.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/keytab_int.h"

#include "base/hashpf.h"

/* ---- helpers ------------------------------------------------------------ */

int keytab_i_check_key(const void *key, size_t klen)
{
	if (klen == 0 || klen > KVN_MAX_KEY)
		return KVN_EKEYLEN;
	return key ? 0 : KVN_EINVAL;
}

struct kt_key *keytab_i_key_find(struct keytab *kt, const void *key, size_t klen)
{
	struct kt_key *k = NULL;
	HASH_FIND(hh, kt->keys, key, klen, k);
	return k;
}

/* A new, empty entry for key (the caller found none). */
struct kt_key *keytab_i_key_add(struct keytab *kt, const void *key, size_t klen)
{
	struct kt_key *k = kvn_xmalloc(sizeof *k + klen);
	memset(k, 0, sizeof *k);
	k->klen = klen;
	memcpy(k->key, key, klen);
	HASH_ADD_KEYPTR(hh, kt->keys, k->key, k->klen, k);
	return k;
}

/* Drop the key entry once no generation and no tombstone refers to it. */
void keytab_i_key_drop(struct keytab *kt, struct kt_key *k)
{
	if (k->committed || k->pending || k->doomed || k->tomb_gen)
		return;
	HASH_DELETE(hh, kt->keys, k);
	free(k);
}

/* Forget k's tombstone (expired, pushed out, or the key was removed). */
void keytab_i_tomb_clear(struct keytab *kt, struct kt_key *k)
{
	if (!k->tomb_gen)
		return;
	kt_list_unlink(&k->tomb_link);
	k->tomb_gen = 0;
	k->tomb_deadline = 0;
	kt->st.tombs--;
}

struct kt_slot *keytab_i_slot_new(int cap)
{
	struct kt_slot *s = kvn_xmalloc(sizeof *s + (size_t)cap * sizeof s->inl[0]);
	memset(s, 0, sizeof *s);
	s->cap = cap;
	s->ext = s->inl;
	kt_list_init(&s->link);
	kt_list_init(&s->plink);
	return s;
}

void keytab_i_set_attrs(struct kt_slot *s, const struct keytab_attrs *attrs)
{
	if (!attrs)
		return;
	s->checksum = attrs->checksum;
	s->flags = attrs->flags;
	s->expires_ms = attrs->expires_ms;
}

static uint64_t ext_bytes(const struct keytab *kt, const struct alloc_extent *ext, int n)
{
	uint64_t pages = 0;
	for (int i = 0; i < n; i++)
		pages += ext[i].npages;
	return pages * alloc_page_size(kt->arena);
}

/* The one place pages go back to the arena (drop_dram, a failed promotion,
 * a freed slot). */
void keytab_i_release_pages(struct keytab *kt, struct kt_slot *s)
{
	alloc_release(kt->arena, s->ext, s->next);
	s->next = 0;
	s->pbytes = 0;
}

/* The one place a slot goes away; a generation that was on disk leaves the
 * table here, so this is where the peer hears it may unlink the file. */
static void slot_free(struct keytab *kt, struct kt_slot *s)
{
	if (s->on_disk && kt->disk_free_fn && !kt->closing)
		kt->disk_free_fn(kt->disk_free_arg, s->k->key, s->k->klen, s->gen, s->size);
	keytab_i_release_pages(kt, s);
	if (s->ext != s->inl)
		free(s->ext);
	free(s);
}

void keytab_i_view(struct keytab_view *v, const struct kt_slot *s)
{
	if (!v)
		return;
	int pages = s->in_dram || s->state == KEYTAB_PENDING;
	v->key = s->k ? s->k->key : NULL;
	v->klen = s->k ? s->k->klen : 0;
	v->gen = s->gen;
	v->size = s->size;
	v->state = s->state;
	v->tier = pages ? KEYTAB_DRAM : KEYTAB_DISK;
	v->leases = s->leases;
	v->next = pages ? s->next : 0;
	v->ext = pages ? s->ext : NULL;
	v->checksum = s->checksum;
	v->flags = s->flags;
	v->expires_ms = s->expires_ms;
	v->in_dram = s->in_dram;
	v->on_disk = s->on_disk;
	v->pins = s->pins;
	v->offloading = s->offloading;
}

/* ---- lists of committed slots -------------------------------------------- */

/* An eviction candidate: committed, its bytes in DRAM, and nothing that
 * forbids it leaving DRAM (a pin, an offload under way).  Leases do not
 * keep a slot off the LRU: they come and go with every get. */
static int lru_wanted(const struct kt_slot *s)
{
	return s->state == KEYTAB_COMMITTED && s->in_dram && !s->pins && !s->offloading;
}

static uint64_t lru_qbytes_of(const struct kt_slot *s)
{
	return (s->flags & KEYTAB_F_QUEUE) && !s->on_disk ? s->pbytes : 0;
}

void keytab_i_unplace(struct keytab *kt, struct kt_slot *s)
{
	if (s->on == ON_LRU) {
		kt->lru_bytes -= s->pbytes;
		kt->lru_qbytes -= lru_qbytes_of(s);
	}
	kt_list_unlink(&s->link);
	s->on = ON_NONE;
}

void keytab_i_place(struct keytab *kt, struct kt_slot *s)
{
	keytab_i_unplace(kt, s);
	if (lru_wanted(s)) {
		kt_list_push_head(&kt->lru, &s->link);
		s->on = ON_LRU;
		kt->lru_bytes += s->pbytes;
		kt->lru_qbytes += lru_qbytes_of(s);
	} else {
		kt_list_push_head(&kt->offlru, &s->link);
		s->on = ON_OFFLRU;
	}
}

/* A read: the slot becomes the most recently used (if it is a candidate). */
void keytab_i_touch(struct keytab *kt, struct kt_slot *s)
{
	if (s->on != ON_LRU)
		return;
	kt_list_unlink(&s->link);
	kt_list_push_head(&kt->lru, &s->link);
}

/* ---- expiry heap: committed slots with expires_ms, earliest on top ------- */

static void heap_set(struct keytab *kt, size_t i, struct kt_slot *s)
{
	kt->heap[i] = s;
	s->heap = (uint32_t)(i + 1);
}

static void heap_up(struct keytab *kt, size_t i)
{
	struct kt_slot *s = kt->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (kt->heap[p]->expires_ms <= s->expires_ms)
			break;
		heap_set(kt, i, kt->heap[p]);
		i = p;
	}
	heap_set(kt, i, s);
}

static void heap_down(struct keytab *kt, size_t i)
{
	struct kt_slot *s = kt->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= kt->nheap)
			break;
		if (c + 1 < kt->nheap && kt->heap[c + 1]->expires_ms < kt->heap[c]->expires_ms)
			c++;
		if (s->expires_ms <= kt->heap[c]->expires_ms)
			break;
		heap_set(kt, i, kt->heap[c]);
		i = c;
	}
	heap_set(kt, i, s);
}

void keytab_i_heap_add(struct keytab *kt, struct kt_slot *s)
{
	if (!s->expires_ms)
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

static void heap_del(struct keytab *kt, struct kt_slot *s)
{
	if (!s->heap)
		return;
	size_t i = s->heap - 1;
	s->heap = 0;
	struct kt_slot *last = kt->heap[--kt->nheap];
	if (last == s)
		return;
	kt->heap[i] = last;
	heap_up(kt, i);
	heap_down(kt, last->heap - 1);
}

/* ---- transitions --------------------------------------------------------- */

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
		kt_list_unlink(&s->link);
		s->on = ON_NONE;
		kt->st.pending--;
		kt->st.pending_bytes -= s->pbytes;
		return s;
	}
	return NULL;
}

/* The committed slot leaves its key (supersede, remove, evict, expire): freed
 * now, or doomed while a lease reads it or an offload or promotion still
 * uses its pages.  Its pins go with it (a pin keeps a value in DRAM, not
 * alive).  The caller then drops the key entry if nothing else refers to
 * it. */
void keytab_i_retire(struct keytab *kt, struct kt_slot *s)
{
	struct kt_key *k = s->k;

	KVN_ASSERT(s->state == KEYTAB_COMMITTED && k && k->committed == s);
	keytab_i_unplace(kt, s);
	heap_del(kt, s);
	k->committed = NULL;
	kt->st.keys--;
	kt->st.committed_bytes -= s->size;
	if (s->in_dram)
		kt->st.dram_bytes -= s->pbytes;
	if (s->on_disk) {
		kt->st.disk_keys--;
		kt->st.disk_bytes -= s->size;
	}
	if (s->pins) {
		s->pins = 0;
		kt_list_unlink(&s->plink);
		kt->st.pinned--;
	}
	if (s->leases == 0 && !s->offloading && !s->promoting) {
		slot_free(kt, s);
		return;
	}
	s->state = SLOT_DOOMED;
	s->knext = k->doomed;
	k->doomed = s;
	kt_list_push_head(&kt->doomed, &s->link);
	s->on = ON_DOOMED;
	kt->st.doomed++;
}

void keytab_i_doomed_check(struct keytab *kt, struct kt_slot *s)
{
	struct kt_key *k = s->k;

	if (s->state != SLOT_DOOMED || s->leases || s->offloading || s->promoting)
		return;
	for (struct kt_slot **pp = &k->doomed; *pp; pp = &(*pp)->knext) {
		if (*pp == s) {
			*pp = s->knext;
			break;
		}
	}
	kt_list_unlink(&s->link);
	kt->st.doomed--;
	slot_free(kt, s);
	keytab_i_key_drop(kt, k);
}

/* The committed slot of key, checked against gen (0 = any).  With no
 * committed generation, a tombstone covering gen (or any, for gen 0) answers
 * KVN_ESTALE: the value moved to another node, it was not removed.  An
 * expired generation reads as gone at once (keytab_expire frees it later). */
int keytab_i_get(struct keytab *kt, const void *key, size_t klen, uint64_t gen, const uint64_t *now,
		 struct kt_slot **out)
{
	int rc = keytab_i_check_key(key, klen);
	if (rc)
		return rc;
	struct kt_key *k = keytab_i_key_find(kt, key, klen);
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
	struct kt_slot *s = k->committed;
	if (s->expires_ms && kt_expired(s, now ? *now : kvn_now_ms()))
		return gen > s->gen ? KVN_ESTALE : KVN_ENOTFOUND;
	if (gen && s->gen != gen)
		return KVN_ESTALE;
	*out = s;
	return 0;
}

/* ---- public ------------------------------------------------------------- */

struct keytab *keytab_new(struct alloc_arena *a)
{
	if (!a)
		return NULL;
	struct keytab *kt = kvn_xcalloc(1, sizeof *kt);
	kt->arena = a;
	kt_list_init(&kt->lru);
	kt_list_init(&kt->offlru);
	kt_list_init(&kt->pending);
	kt_list_init(&kt->doomed);
	kt_list_init(&kt->tombs);
	kt_list_init(&kt->pinned);
	return kt;
}

static void list_free_all(struct keytab *kt, struct kt_link *h)
{
	while (h->next != h) {
		struct kt_slot *s = LINK_SLOT(h->next);
		kt_list_unlink(&s->link);
		slot_free(kt, s);
	}
}

void keytab_free(struct keytab *kt)
{
	struct kt_lease *l, *ltmp;
	struct kt_key *k, *ktmp;

	if (!kt)
		return;
	kt->closing = 1;
	list_free_all(kt, &kt->lru);
	list_free_all(kt, &kt->offlru);
	list_free_all(kt, &kt->pending);
	list_free_all(kt, &kt->doomed);
	free(kt->heap);
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
		 uint64_t now_ms, uint64_t ttl_ms, const struct keytab_attrs *attrs, struct keytab_view *view)
{
	struct alloc_extent ext[KEYTAB_MAX_EXT];
	struct kt_key *k;
	struct kt_slot *s;
	int rc, n;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (gen == 0) /* 0 means "any generation" everywhere else */
		return KVN_EINVAL;
	k = keytab_i_key_find(kt, key, klen);
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
	s = keytab_i_slot_new(n);
	memcpy(s->ext, ext, (size_t)n * sizeof ext[0]);
	s->next = n;
	s->pbytes = ext_bytes(kt, ext, n);
	keytab_i_set_attrs(s, attrs);
	s->gen = gen;
	s->size = size;
	s->deadline = kt_deadline_of(now_ms, ttl_ms);
	s->state = KEYTAB_PENDING;
	if (!k) {
		k = keytab_i_key_add(kt, key, klen);
	}
	s->k = k;
	s->knext = k->pending;
	k->pending = s;
	kt_list_push_head(&kt->pending, &s->link);
	s->on = ON_PENDING;
	kt->st.pending++;
	kt->st.pending_bytes += s->pbytes;
	/* every generation this table can hold entered here: a running max
	 * the peer reports when it attaches (a master that lost master.db
	 * must hand out newer ones) */
	if (gen > kt->st.max_gen)
		kt->st.max_gen = gen;
	keytab_i_view(view, s);
	return 0;
}

int keytab_set_checksum(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t checksum)
{
	struct kt_key *k;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	k = keytab_i_key_find(kt, key, klen);
	for (struct kt_slot *s = k ? k->pending : NULL; s; s = s->knext)
		if (s->gen == gen) {
			s->checksum = checksum;
			return 0;
		}
	kt->st.refused++;
	return KVN_ESTATE;
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
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	k = keytab_i_key_find(kt, key, klen);
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
		keytab_i_retire(kt, old);
	}
	s->state = KEYTAB_COMMITTED;
	s->in_dram = 1;
	k->committed = s;
	if (k->tomb_gen && k->tomb_gen < gen)
		keytab_i_tomb_clear(kt, k); /* this node holds a newer value than the one that moved */
	keytab_i_place(kt, s);
	keytab_i_heap_add(kt, s);
	kt->st.keys++;
	kt->st.committed_bytes += s->size;
	kt->st.dram_bytes += s->pbytes;
	return 0;
}

int keytab_abort(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_key *k;
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	k = keytab_i_key_find(kt, key, klen);
	s = k ? pending_take(kt, k, gen) : NULL;
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	slot_free(kt, s);
	keytab_i_key_drop(kt, k);
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
		keytab_i_key_drop(kt, k);
		kt->st.reaped++;
		n++;
	}
	/* tombstones are kept for ttl_ms each, oldest first on the list */
	while (kt->tombs.next != &kt->tombs) {
		struct kt_key *k = LINK_KEY(kt->tombs.next);
		if (now_ms < k->tomb_deadline)
			break;
		keytab_i_tomb_clear(kt, k);
		keytab_i_key_drop(kt, k);
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
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	keytab_i_touch(kt, s);
	keytab_i_view(view, s);
	return 0;
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
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (removed_gen)
		*removed_gen = s->gen;
	k = s->k;
	keytab_i_retire(kt, s);
	keytab_i_tomb_clear(kt, k); /* removed: from now on "not found" */
	keytab_i_key_drop(kt, k);
	return 0;
}

int keytab_supersede(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		     uint64_t ttl_ms)
{
	struct kt_key *k;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (gen == 0)
		return KVN_EINVAL;
	k = keytab_i_key_find(kt, key, klen);
	if (k && k->committed && k->committed->gen > gen)
		return KVN_ESTALE; /* superseded here already: reads answer ESTALE */
	rc = KVN_ENOTFOUND;
	if (k && k->committed && k->committed->gen == gen) {
		keytab_i_retire(kt, k->committed);
		rc = 0;
	}
	if (!k) {
		/* evicted or removed meanwhile: a get routed to the old gen
		 * still learns that the key moved */
		k = keytab_i_key_add(kt, key, klen);
	}
	if (k->committed) { /* an older gen than the one superseded: cannot be */
		keytab_i_key_drop(kt, k);
		return rc;
	}
	if (k->tomb_gen > gen)
		gen = k->tomb_gen;
	keytab_i_tomb_clear(kt, k); /* re-queued at the tail with a fresh deadline */
	if (kt->st.tombs >= KEYTAB_TOMB_MAX) {
		struct kt_key *old = LINK_KEY(kt->tombs.next);
		keytab_i_tomb_clear(kt, old);
		keytab_i_key_drop(kt, old);
	}
	k->tomb_gen = gen;
	k->tomb_deadline = kt_deadline_of(now_ms, ttl_ms);
	kt_list_push_head(kt->tombs.prev, &k->tomb_link); /* append */
	kt->st.tombs++;
	return rc;
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

void keytab_foreach_view(struct keytab *kt, keytab_view_fn fn, void *arg)
{
	struct kt_key *k, *tmp;
	struct keytab_view v;

	if (!kt || !fn)
		return;
	HASH_ITER(hh, kt->keys, k, tmp)
	{
		if (!k->committed)
			continue;
		keytab_i_view(&v, k->committed);
		fn(arg, &v);
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
