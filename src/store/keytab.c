/*
 * keytab: the peer's per-key state.  Owns the key groups (a base/ptab.h
 * table of their head slots, the key bytes inline in every slot: see
 * keytab_int.h), the slots of every generation with their arena extents, the
 * read leases (uthash on the lease id), the LRU list of evictable committed
 * slots, the pending list the TTL reaper scans, and the doomed list of
 * generations that lost their key while a lease, an offload or a promotion
 * held them.  A slot's pages go back to the arena exactly once: when it is
 * aborted, reaped, overwritten on arrival (a newer generation committed
 * first), dropped from DRAM (keytab_drop_dram, keytab_tier.c), or when it
 * leaves the committed state (supersede, remove, evict, expire) with nothing
 * holding it, or else when its last holder lets go.  Also the tombstones of
 * generations the master superseded (keytab_supersede): a slot without
 * pages in the key's group that remembers, for a while, that its value
 * moved rather than went away.  Tiers, pins, eviction and expiry:
 * keytab_tier.c; the attribute records and the expiry heap: keytab_aux.c.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store/keytab_int.h"


/* The packed fields of struct kt_slot hold what they are given. */
_Static_assert(KEYTAB_MAX_EXT <= UINT8_MAX, "kt_slot.next and .cap are 8 bits");
_Static_assert(KVN_MAX_KEY <= UINT16_MAX, "kt_slot.klen is 16 bits");
_Static_assert((KEYTAB_F_QUEUE | KEYTAB_F_RETAIN) <= UINT16_MAX, "kt_slot.flags is 16 bits");

/* ---- helpers ------------------------------------------------------------ */

int keytab_i_check_key(const void *key, size_t klen)
{
	if (klen == 0 || klen > KVN_MAX_KEY)
		return KVN_EKEYLEN;
	return key ? 0 : KVN_EINVAL;
}

uint32_t keytab_i_hash(const void *key, size_t klen)
{
	return kvn_ptab_hash(kvn_hash64(key, klen));
}

struct kt_slot *keytab_i_find(const struct keytab *kt, const void *key, size_t klen, uint32_t h)
{
	uint8_t tag = kvn_ptab_tag(h);
	KVN_PTAB_FOR(&kt->keys, h, i) {
		struct kt_slot *s = kt->keys.v[i];
		if (kt->keys.tag[i] == tag && s->klen == klen && memcmp(s->key, key, klen) == 0)
			return s;
	}
	return NULL;
}

uint32_t keytab_i_slot_hash(const void *p)
{
	const struct kt_slot *s = p;
	return keytab_i_hash(s->key, s->klen);
}

static struct kt_slot *find_key(const struct keytab *kt, const void *key, size_t klen)
{
	return keytab_i_find(kt, key, klen, keytab_i_hash(key, klen));
}

/* ---- key groups ----------------------------------------------------------- */

void keytab_i_group_add(struct keytab *kt, struct kt_slot *s, int as_head)
{
	struct kt_slot *h = keytab_i_find(kt, s->key, s->klen, keytab_i_hash(s->key, s->klen));

	KVN_ASSERT(!s->grouped);
	s->grouped = 1;
	if (!h) {
		s->knext = NULL;
		s->head = 1;
		kvn_ptab_add(&kt->keys, s);
	} else if (as_head) {
		s->knext = h;
		h->head = 0;
		s->head = 1;
		kvn_ptab_replace(&kt->keys, h, s);
	} else {
		s->knext = h->knext;
		h->knext = s;
		s->head = 0;
	}
}

static void group_del(struct keytab *kt, struct kt_slot *s)
{
	if (!s->grouped)
		return;
	if (s->head) {
		if (s->knext) {
			s->knext->head = 1;
			kvn_ptab_replace(&kt->keys, s, s->knext);
		} else {
			kvn_ptab_del(&kt->keys, s);
		}
	} else {
		struct kt_slot **pp = &keytab_i_find(kt, s->key, s->klen, keytab_i_hash(s->key, s->klen))->knext;
		while (*pp != s)
			pp = &(*pp)->knext;
		*pp = s->knext;
	}
	s->knext = NULL;
	s->head = s->grouped = 0;
}

void keytab_i_make_head(struct keytab *kt, struct kt_slot *s)
{
	if (s->head)
		return;
	group_del(kt, s);
	keytab_i_group_add(kt, s, 1);
}

struct kt_slot *keytab_i_tomb(struct kt_slot *head)
{
	for (struct kt_slot *s = head; s; s = s->knext)
		if (s->state == SLOT_TOMB)
			return s;
	return NULL;
}

/* ---- slots ---------------------------------------------------------------- */

struct kt_slot *keytab_i_slot_new(const void *key, size_t klen, int cap)
{
	struct kt_slot *s = kvn_xmalloc(offsetof(struct kt_slot, key) + klen);
	memset(s, 0, offsetof(struct kt_slot, key));
	memcpy(s->key, key, klen);
	s->klen = (uint16_t)klen;
	s->cap = (uint8_t)cap;
	if (cap > 1)
		s->x.many = kvn_xmalloc((size_t)cap * sizeof s->x.many[0]);
	kt_list_init(&s->link);
	return s;
}

void keytab_i_set_attrs(struct keytab *kt, struct kt_slot *s, const struct keytab_attrs *attrs)
{
	if (!attrs)
		return;
	s->checksum = attrs->checksum;
	s->flags = (uint16_t)attrs->flags;
	if (attrs->expires_ms)
		keytab_i_aux_get(kt, s)->expires_ms = attrs->expires_ms;
}

uint64_t keytab_i_pbytes(const struct keytab *kt, const struct kt_slot *s)
{
	const struct alloc_extent *ext = kt_ext(s);
	uint64_t pages = 0;
	for (int i = 0; i < s->next; i++)
		pages += ext[i].npages;
	return pages * alloc_page_size(kt->arena);
}

/* The one place pages go back to the arena (drop_dram, a failed promotion,
 * a freed slot). */
void keytab_i_release_pages(struct keytab *kt, struct kt_slot *s)
{
	alloc_release(kt->arena, kt_ext(s), s->next);
	s->next = 0;
}

/* The one place a slot goes away (and leaves its group); a generation that
 * was on disk leaves the table here, so this is where the peer hears it may
 * unlink the file. */
static void slot_free(struct keytab *kt, struct kt_slot *s)
{
	if (s->on_disk && kt->disk_free_fn && !kt->closing)
		kt->disk_free_fn(kt->disk_free_arg, s->key, s->klen, s->gen, s->size);
	keytab_i_release_pages(kt, s);
	group_del(kt, s);
	keytab_i_aux_put(kt, s);
	if (s->cap > 1)
		free(s->x.many);
	free(s);
}

void keytab_i_tomb_free(struct keytab *kt, struct kt_slot *t)
{
	kt_list_unlink(&t->link);
	kt->st.tombs--;
	slot_free(kt, t);
}

void keytab_i_view(const struct keytab *kt, struct keytab_view *v, const struct kt_slot *s)
{
	if (!v)
		return;
	int pages = s->in_dram || s->state == KEYTAB_PENDING;
	v->key = s->key;
	v->klen = s->klen;
	v->gen = s->gen;
	v->size = s->size;
	v->state = s->state;
	v->tier = pages ? KEYTAB_DRAM : KEYTAB_DISK;
	v->leases = s->leases;
	v->next = pages ? s->next : 0;
	v->ext = pages ? kt_ext(s) : NULL;
	v->checksum = s->checksum;
	v->flags = s->flags;
	v->expires_ms = kt_expires(kt, s);
	v->in_dram = s->in_dram;
	v->on_disk = s->on_disk;
	v->pins = kt_pins(kt, s);
	v->offloading = s->offloading;
}

/* ---- lists of committed slots -------------------------------------------- */

/* An eviction candidate: committed, its bytes in DRAM, and nothing that
 * forbids it leaving DRAM (a pin, an offload under way).  Leases do not
 * keep a slot off the LRU: they come and go with every get. */
static int lru_wanted(const struct keytab *kt, const struct kt_slot *s)
{
	if (kt->queue_stays && (s->flags & KEYTAB_F_QUEUE) && !s->on_disk)
		return 0; /* can never leave DRAM: not a candidate (keytab_set_queue_stays) */
	return s->state == KEYTAB_COMMITTED && s->in_dram && !kt_pins(kt, s) && !s->offloading;
}

static uint64_t lru_qbytes_of(const struct keytab *kt, const struct kt_slot *s)
{
	return (s->flags & KEYTAB_F_QUEUE) && !s->on_disk ? keytab_i_pbytes(kt, s) : 0;
}

void keytab_i_unplace(struct keytab *kt, struct kt_slot *s)
{
	if (s->on == ON_LRU) {
		kt->lru_bytes -= keytab_i_pbytes(kt, s);
		kt->lru_qbytes -= lru_qbytes_of(kt, s);
	}
	kt_list_unlink(&s->link);
	s->on = ON_NONE;
}

void keytab_i_place(struct keytab *kt, struct kt_slot *s)
{
	keytab_i_unplace(kt, s);
	if (lru_wanted(kt, s)) {
		kt_list_push_head(&kt->lru, &s->link);
		s->on = ON_LRU;
		kt->lru_bytes += keytab_i_pbytes(kt, s);
		kt->lru_qbytes += lru_qbytes_of(kt, s);
	} else {
		kt_list_push_head(&kt->offlru, &s->link);
		s->on = ON_OFFLRU;
	}
}

void keytab_set_queue_stays(struct keytab *kt, int on)
{
	struct kt_link *from, *l, *nx;

	if (!kt || kt->queue_stays == !!on)
		return;
	kt->queue_stays = !!on;
	/* only the slots whose candidacy this changes move (to the other
	 * list's head); the rest keep their LRU order */
	from = on ? &kt->lru : &kt->offlru;
	for (l = from->next; l != from; l = nx) {
		struct kt_slot *s = LINK_SLOT(l);
		nx = l->next;
		if (lru_wanted(kt, s) != (s->on == ON_LRU))
			keytab_i_place(kt, s);
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

/* ---- transitions --------------------------------------------------------- */

/* Take the PENDING slot s off the pending list (it stays in its group). */
static void pending_unlist(struct keytab *kt, struct kt_slot *s)
{
	kt_list_unlink(&s->link);
	s->on = ON_NONE;
	kt->st.pending--;
	kt->st.pending_bytes -= keytab_i_pbytes(kt, s);
}

/* The PENDING slot of gen in head's group, taken off the pending list;
 * NULL if there is none. */
static struct kt_slot *pending_take(struct keytab *kt, struct kt_slot *head, uint64_t gen)
{
	for (struct kt_slot *s = head; s; s = s->knext) {
		if (s->state != KEYTAB_PENDING || s->gen != gen)
			continue;
		pending_unlist(kt, s);
		return s;
	}
	return NULL;
}

/* The committed slot leaves its key (supersede, remove, evict, expire): freed
 * now, or doomed while a lease reads it or an offload or promotion still
 * uses its pages.  Its pins go with it (a pin keeps a value in DRAM, not
 * alive).  A doomed slot stays in its key's group (offload_done and
 * promote_done find it there), no longer its committed one. */
void keytab_i_retire(struct keytab *kt, struct kt_slot *s)
{
	struct kt_aux *a = kt_aux(kt, s);

	KVN_ASSERT(s->state == KEYTAB_COMMITTED && s->head);
	keytab_i_unplace(kt, s);
	keytab_i_heap_del(kt, s);
	kt->st.keys--;
	kt->st.committed_bytes -= s->size;
	if (s->in_dram)
		kt->st.dram_bytes -= keytab_i_pbytes(kt, s);
	if (s->on_disk) {
		kt->st.disk_keys--;
		kt->st.disk_bytes -= s->size;
	}
	if (a && a->pins) {
		a->pins = 0;
		a->pin_deadline = 0;
		kt_list_unlink(&a->plink);
		kt->st.pinned--;
	}
	if (s->leases == 0 && !s->offloading && !s->promoting) {
		slot_free(kt, s);
		return;
	}
	s->state = SLOT_DOOMED;
	keytab_i_aux_trim(kt, s);
	kt_list_push_head(&kt->doomed, &s->link);
	s->on = ON_DOOMED;
	kt->st.doomed++;
}

void keytab_i_doomed_check(struct keytab *kt, struct kt_slot *s)
{
	if (s->state != SLOT_DOOMED || s->leases || s->offloading || s->promoting)
		return;
	kt_list_unlink(&s->link);
	kt->st.doomed--;
	slot_free(kt, s);
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
	struct kt_slot *h = find_key(kt, key, klen), *s = kt_committed(h), *t;
	if (!s && (t = keytab_i_tomb(h)) && (gen == 0 || gen <= t->gen))
		return KVN_ESTALE;
	/* Asked for one generation this peer does not hold at all: the master
	 * routed it here, so it lived here or was about to.  Gone since (a
	 * remove, a drop, a restart of this peer that lost it), the master
	 * knows what, if anything, replaced it: "superseded" sends the client
	 * back to it, where "not found" would be final while a newer
	 * generation may live elsewhere (t/sim found it: a get routed here
	 * across this peer's crash and restart). */
	if (!s)
		return gen ? KVN_ESTALE : KVN_ENOTFOUND;
	if (s->aux && kt_expired(kt, s, now ? *now : kvn_now_ms()))
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
	kvn_ptab_init(&kt->keys, keytab_i_slot_hash);
	kt_list_init(&kt->lru);
	kt_list_init(&kt->offlru);
	kt_list_init(&kt->pending);
	kt_list_init(&kt->doomed);
	kt_list_init(&kt->tombs);
	kt_list_init(&kt->pinned);
	return kt;
}

void keytab_free(struct keytab *kt)
{
	struct kt_lease *l, *ltmp;

	if (!kt)
		return;
	kt->closing = 1;
	/* every slot is in its key's group: free them by group, not one
	 * table deletion each */
	for (size_t i = 0; i < kt->keys.cap; i++) {
		struct kt_slot *s = kt->keys.v[i], *nx;
		for (; s; s = nx) {
			nx = s->knext;
			keytab_i_release_pages(kt, s);
			if (s->cap > 1)
				free(s->x.many);
			free(s);
		}
	}
	kvn_ptab_fini(&kt->keys);
	free(kt->heap);
	keytab_i_aux_fini(kt);
	HASH_ITER(hh, kt->leases, l, ltmp)
	{
		HASH_DELETE(hh, kt->leases, l);
		free(l);
	}
	free(kt);
}

int keytab_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		 uint64_t now_ms, uint64_t ttl_ms, const struct keytab_attrs *attrs, struct keytab_view *view)
{
	struct alloc_extent ext[KEYTAB_MAX_EXT];
	struct kt_slot *h, *s;
	uint32_t hv;
	int rc, n;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (gen == 0) /* 0 means "any generation" everywhere else */
		return KVN_EINVAL;
	hv = keytab_i_hash(key, klen);
	h = keytab_i_find(kt, key, klen, hv);
	for (s = h; s; s = s->knext)
		if ((s->state == KEYTAB_COMMITTED || s->state == KEYTAB_PENDING) && s->gen == gen)
			return KVN_EEXIST;
	if (kt_committed(h) && h->gen > gen)
		return KVN_ESTALE;
	/* pages first: on ENOSPC nothing in the table has changed */
	n = alloc_pages(kt->arena, size, ext, KEYTAB_MAX_EXT);
	if (n < 0)
		return n;
	s = keytab_i_slot_new(key, klen, n);
	memcpy(kt_ext_mut(s), ext, (size_t)n * sizeof ext[0]);
	s->next = (uint8_t)n;
	keytab_i_set_attrs(kt, s, attrs);
	s->gen = gen;
	s->size = size;
	keytab_i_aux_get(kt, s)->deadline = kt_deadline_of(now_ms, ttl_ms);
	s->state = KEYTAB_PENDING;
	keytab_i_group_add(kt, s, 0);
	kt_list_push_head(&kt->pending, &s->link);
	s->on = ON_PENDING;
	kt->st.pending++;
	kt->st.pending_bytes += keytab_i_pbytes(kt, s);
	/* every generation this table can hold entered here: a running max
	 * the peer reports when it attaches (a master that lost master.db
	 * must hand out newer ones) */
	if (gen > kt->st.max_gen)
		kt->st.max_gen = gen;
	keytab_i_view(kt, view, s);
	return 0;
}

/* The PENDING slot (key, gen), or NULL (counted as refused). */
static struct kt_slot *pending_find(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	for (struct kt_slot *s = find_key(kt, key, klen); s; s = s->knext)
		if (s->state == KEYTAB_PENDING && s->gen == gen)
			return s;
	kt->st.refused++;
	return NULL;
}

int keytab_set_checksum(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t checksum)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (!(s = pending_find(kt, key, klen, gen)))
		return KVN_ESTATE;
	s->checksum = checksum;
	return 0;
}

/* Only while PENDING: a pending slot is on no list whose accounting
 * depends on its flags (the LRU's lru_qbytes). */
int keytab_set_flags(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint32_t flags)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (!(s = pending_find(kt, key, klen, gen)))
		return KVN_ESTATE;
	s->flags = (uint16_t)flags;
	return 0;
}

int keytab_commit(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		  uint64_t *superseded_gen)
{
	struct kt_slot *h, *s, *old, *t;
	int rc;

	if (superseded_gen)
		*superseded_gen = 0;
	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	h = find_key(kt, key, klen);
	s = pending_take(kt, h, gen);
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	old = kt_committed(h);
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
	keytab_i_make_head(kt, s);
	keytab_i_aux_trim(kt, s); /* the pending deadline is over */
	if ((t = keytab_i_tomb(s)) && t->gen < gen)
		keytab_i_tomb_free(kt, t); /* this node holds a newer value than the one that moved */
	keytab_i_place(kt, s);
	keytab_i_heap_add(kt, s);
	kt->st.keys++;
	kt->st.committed_bytes += s->size;
	kt->st.dram_bytes += keytab_i_pbytes(kt, s);
	return 0;
}

int keytab_abort(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	s = pending_take(kt, find_key(kt, key, klen), gen);
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	slot_free(kt, s);
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
		if (now_ms < kt_aux(kt, s)->deadline)
			continue;
		if (fn)
			fn(arg, s->key, s->klen, s->gen, s->size);
		pending_unlist(kt, s);
		slot_free(kt, s);
		kt->st.reaped++;
		n++;
	}
	/* tombstones are kept for ttl_ms each, oldest first on the list */
	while (kt->tombs.next != &kt->tombs) {
		struct kt_slot *t = LINK_SLOT(kt->tombs.next);
		if (now_ms < kt_aux(kt, t)->deadline)
			break;
		keytab_i_tomb_free(kt, t);
	}
	return n;
}

void keytab_prefetch(const struct keytab *kt, const struct keytab_ref *refs, size_t n)
{
	uint32_t hv[KEYTAB_PREFETCH_MAX];

	if (!kt || !kt->keys.n)
		return;
	if (n > KEYTAB_PREFETCH_MAX)
		n = KEYTAB_PREFETCH_MAX;
	for (size_t i = 0; i < n; i++) {
		hv[i] = keytab_i_hash(refs[i].key, refs[i].klen);
		kvn_ptab_prefetch(&kt->keys, hv[i]);
	}
	/* a lookup goes on to the head slot: the committed one (gen, LRU
	 * link, extents, key) */
	for (size_t i = 0; i < n; i++) {
		const struct kt_slot *s = kvn_ptab_peek(&kt->keys, hv[i]);
		if (s)
			__builtin_prefetch(s);
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
	keytab_i_view(kt, view, s);
	return 0;
}

int keytab_remove(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t *removed_gen)
{
	struct kt_slot *s, *t;
	int rc;

	if (removed_gen)
		*removed_gen = 0;
	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (removed_gen)
		*removed_gen = s->gen;
	t = keytab_i_tomb(s);
	keytab_i_retire(kt, s);
	if (t)
		keytab_i_tomb_free(kt, t); /* removed: from now on "not found" */
	return 0;
}

int keytab_supersede(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		     uint64_t ttl_ms)
{
	struct kt_slot *h, *c, *t;
	uint32_t hv;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	if (gen == 0)
		return KVN_EINVAL;
	hv = keytab_i_hash(key, klen);
	h = keytab_i_find(kt, key, klen, hv);
	c = kt_committed(h);
	if (c && c->gen > gen)
		return KVN_ESTALE; /* superseded here already: reads answer ESTALE */
	if (c && c->gen < gen)
		return KVN_ENOTFOUND; /* an older gen than the one superseded: cannot be */
	rc = KVN_ENOTFOUND;
	if (c) {
		keytab_i_retire(kt, c);
		rc = 0;
	}
	/* evicted or removed meanwhile too: a get routed to the old gen still
	 * learns that the key moved */
	if ((t = keytab_i_tomb(keytab_i_find(kt, key, klen, hv)))) {
		if (t->gen > gen)
			gen = t->gen;
		keytab_i_tomb_free(kt, t); /* re-queued at the tail with a fresh deadline */
	}
	if (kt->st.tombs >= KEYTAB_TOMB_MAX)
		keytab_i_tomb_free(kt, LINK_SLOT(kt->tombs.next));
	t = keytab_i_slot_new(key, klen, 0);
	t->state = SLOT_TOMB;
	t->gen = gen;
	keytab_i_aux_get(kt, t)->deadline = kt_deadline_of(now_ms, ttl_ms);
	keytab_i_group_add(kt, t, 0);
	kt_list_push_head(kt->tombs.prev, &t->link); /* append */
	t->on = ON_TOMBS;
	kt->st.tombs++;
	return rc;
}

void keytab_foreach(struct keytab *kt, keytab_slot_fn fn, void *arg)
{
	if (!kt || !fn)
		return;
	for (size_t i = 0; i < kt->keys.cap; i++) {
		const struct kt_slot *s = kt_committed(kt->keys.v[i]);
		if (s)
			fn(arg, s->key, s->klen, s->gen, s->size);
	}
}

void keytab_foreach_view(struct keytab *kt, keytab_view_fn fn, void *arg)
{
	struct keytab_view v;

	if (!kt || !fn)
		return;
	for (size_t i = 0; i < kt->keys.cap; i++) {
		const struct kt_slot *s = kt_committed(kt->keys.v[i]);
		if (!s)
			continue;
		keytab_i_view(kt, &v, s);
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
