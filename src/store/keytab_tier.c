/*
 * keytab_tier: where a committed generation's bytes are and how they leave
 * DRAM.  Owns the tier transitions (disk_add, offload, drop_dram, promote),
 * pins, eviction (the LRU walk and the single evict), expiry (the min-heap
 * of keytab.c drained in order) and the O(1) accounting the peer's
 * watermarks read.  The pages themselves and the slot lifecycle stay in
 * keytab.c: every path here that frees a generation goes through its
 * retire/doomed transitions, so the free hook fires exactly once.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store/keytab_int.h"

void keytab_set_disk_free_fn(struct keytab *kt, keytab_slot_fn fn, void *arg)
{
	if (!kt)
		return;
	kt->disk_free_fn = fn;
	kt->disk_free_arg = arg;
}

int keytab_disk_add(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t size,
		    const struct keytab_attrs *attrs)
{
	struct kt_slot *h, *s, *t;
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
	for (s = h; s; s = s->knext)
		if ((s->state == KEYTAB_COMMITTED || s->state == KEYTAB_PENDING) && s->gen == gen)
			return KVN_EEXIST;
	if (kt_committed(h)) {
		if (h->gen > gen)
			return KVN_ESTALE;
		keytab_i_retire(kt, h);
	}
	s = keytab_i_slot_new(key, klen, 0);
	keytab_i_set_attrs(kt, s, attrs);
	s->gen = gen;
	s->size = size;
	s->state = KEYTAB_COMMITTED;
	s->on_disk = 1;
	keytab_i_group_add(kt, s, 1);
	if ((t = keytab_i_tomb(s)) && t->gen < gen)
		keytab_i_tomb_free(kt, t);
	keytab_i_place(kt, s);
	keytab_i_heap_add(kt, s);
	kt->st.keys++;
	kt->st.committed_bytes += size;
	kt->st.disk_keys++;
	kt->st.disk_bytes += size;
	if (gen > kt->st.max_gen)
		kt->st.max_gen = gen;
	return 0;
}

int keytab_offload_begin(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
			 struct keytab_view *view)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (!s->in_dram) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	if (s->on_disk)
		return KVN_EEXIST;
	if (s->offloading)
		return KVN_EBUSY;
	if (kt_pins(kt, s))
		return KVN_EHELD;
	s->offloading = 1;
	kt->st.offloading++;
	keytab_i_place(kt, s); /* off the LRU: not a victim while written */
	keytab_i_view(kt, view, s);
	return 0;
}

static int busy(const struct kt_slot *s, int promoting)
{
	return promoting ? s->promoting : s->offloading;
}

/* The slot of (key, gen) an offload (or promotion) is under way on:
 * committed, or doomed since.  NULL if none. */
static struct kt_slot *busy_find(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
				 int promoting)
{
	/* the committed slot first: it heads the group */
	for (struct kt_slot *s = keytab_i_find(kt, key, klen, keytab_i_hash(key, klen)); s; s = s->knext)
		if ((s->state == KEYTAB_COMMITTED || s->state == SLOT_DOOMED) && s->gen == gen && busy(s, promoting))
			return s;
	return NULL;
}

int keytab_offload_done(struct keytab *kt, const void *key, size_t klen, uint64_t gen, int ok)
{
	struct kt_slot *s;
	int rc;

	if (!kt || gen == 0)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	s = busy_find(kt, key, klen, gen, 0);
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	s->offloading = 0;
	kt->st.offloading--;
	if (s->state != KEYTAB_COMMITTED) {
		/* gone meanwhile: never marked on disk, so no free hook; the
		 * caller deletes what it wrote */
		kt->st.refused++;
		keytab_i_doomed_check(kt, s);
		return KVN_ESTATE;
	}
	if (ok) {
		s->on_disk = 1;
		kt->st.disk_keys++;
		kt->st.disk_bytes += s->size;
		kt->st.offloaded++;
	}
	keytab_i_place(kt, s); /* back to the LRU where it was taken from */
	return 0;
}

int keytab_drop_dram(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (!s->in_dram) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	if (s->leases || kt_pins(kt, s) || s->offloading)
		return KVN_EHELD;
	if (!s->on_disk) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	keytab_i_unplace(kt, s);
	kt->st.dram_bytes -= keytab_i_pbytes(kt, s);
	keytab_i_release_pages(kt, s);
	s->in_dram = 0;
	keytab_i_place(kt, s);
	kt->st.dropped_dram++;
	return 0;
}

int keytab_promote(struct keytab *kt, const void *key, size_t klen, uint64_t gen,
		   struct keytab_view *view)
{
	struct alloc_extent ext[KEYTAB_MAX_EXT];
	struct kt_slot *s;
	int rc, n;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (s->in_dram)
		return KVN_EEXIST;
	if (s->promoting)
		return KVN_EBUSY;
	n = alloc_pages(kt->arena, s->size, ext, KEYTAB_MAX_EXT);
	if (n < 0)
		return n;
	if (n > s->cap) {
		if (s->cap > 1)
			free(s->x.many);
		if (n > 1)
			s->x.many = kvn_xmalloc((size_t)n * sizeof ext[0]);
		s->cap = (uint8_t)n; /* what kt_ext(s) holds from now on */
	}
	memcpy(kt_ext_mut(s), ext, (size_t)n * sizeof ext[0]);
	s->next = (uint8_t)n;
	s->promoting = 1;
	keytab_i_view(kt, view, s);
	if (view) { /* the pages to fill, though reads do not see them yet */
		view->next = s->next;
		view->ext = kt_ext(s);
	}
	return 0;
}

int keytab_promote_done(struct keytab *kt, const void *key, size_t klen, uint64_t gen, int ok)
{
	struct kt_slot *s;
	int rc;

	if (!kt || gen == 0)
		return KVN_EINVAL;
	if ((rc = keytab_i_check_key(key, klen)))
		return rc;
	s = busy_find(kt, key, klen, gen, 1);
	if (!s) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	s->promoting = 0;
	if (s->state != KEYTAB_COMMITTED) {
		/* gone meanwhile: its readers (if any) read the file, never
		 * these pages */
		keytab_i_release_pages(kt, s);
		kt->st.refused++;
		keytab_i_doomed_check(kt, s);
		return KVN_ESTATE;
	}
	if (!ok) {
		keytab_i_release_pages(kt, s);
		return 0;
	}
	s->in_dram = 1;
	kt->st.dram_bytes += keytab_i_pbytes(kt, s);
	kt->st.promoted++;
	keytab_i_place(kt, s); /* most recently used: it was just read */
	return 0;
}

int keytab_pin(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
	       uint64_t ttl_ms)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, &now_ms, &s)))
		return rc;
	uint64_t dl = kt_deadline_of(now_ms, ttl_ms);
	struct kt_aux *a = keytab_i_aux_get(kt, s);
	if (a->pins++ == 0) {
		kt_list_push_head(&kt->pinned, &a->plink);
		kt->st.pinned++;
		a->pin_deadline = dl;
		keytab_i_place(kt, s);
	} else if (dl > a->pin_deadline) {
		a->pin_deadline = dl;
	}
	kt->st.pins++;
	return 0;
}

static void unpin_all(struct keytab *kt, struct kt_slot *s)
{
	struct kt_aux *a = kt_aux(kt, s);
	a->pins = 0;
	a->pin_deadline = 0;
	kt_list_unlink(&a->plink);
	kt->st.pinned--;
	keytab_i_aux_trim(kt, s);
	keytab_i_place(kt, s); /* a candidate again, as most recently used */
}

int keytab_unpin(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	uint32_t pins = kt_pins(kt, s);
	if (!pins) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	if (pins == 1)
		unpin_all(kt, s);
	else
		kt_aux(kt, s)->pins--;
	return 0;
}

int keytab_expire_pins(struct keytab *kt, uint64_t now_ms)
{
	struct kt_link *l, *nx;
	int n = 0;

	if (!kt)
		return 0;
	for (l = kt->pinned.next; l != &kt->pinned; l = nx) {
		struct kt_aux *a = PLINK_AUX(l);
		nx = l->next;
		if (now_ms < a->pin_deadline)
			continue;
		unpin_all(kt, a->s);
		kt->st.pin_expired++;
		n++;
	}
	return n;
}

size_t keytab_evict_pick(struct keytab *kt, uint64_t now_ms, struct keytab_victim *out, size_t max)
{
	struct kt_link *l, *pv, *moved = NULL;
	size_t n = 0, looked = 0;

	if (!kt || !out)
		return 0;
	/* a walk longer than the list would meet the slots it moved to the
	 * head again: it ends at the first of them */
	for (l = kt->lru.prev; l != &kt->lru && l != moved && n < max && looked < 4 * max; l = pv) {
		struct kt_slot *s = LINK_SLOT(l);
		pv = l->prev;
		looked++;
		if (s->leases) {
			keytab_i_touch(kt, s);
			if (!moved)
				moved = l;
			continue;
		}
		if (kt_expired(kt, s, now_ms))
			continue;
		struct keytab_victim *v = &out[n++];
		memcpy(v->key, s->key, s->klen);
		v->klen = s->klen;
		v->gen = s->gen;
		v->size = s->size;
		v->on_disk = s->on_disk;
		v->flags = s->flags;
	}
	return n;
}

/* Why s may not be dropped from the table now (0: it may). */
static int evict_refused(const struct keytab *kt, const struct kt_slot *s)
{
	if (s->leases || kt_pins(kt, s) || s->offloading)
		return KVN_EHELD;
	if ((s->flags & KEYTAB_F_QUEUE) && !s->on_disk)
		return KVN_EHELD;
	return 0;
}

static void evict_slot(struct keytab *kt, struct kt_slot *s)
{
	keytab_i_retire(kt, s);
	kt->st.evicted++;
}

int keytab_evict_one(struct keytab *kt, const void *key, size_t klen, uint64_t gen)
{
	struct kt_slot *s;
	int rc;

	if (!kt)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, NULL, &s)))
		return rc;
	if (!s->in_dram) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	if ((rc = evict_refused(kt, s)))
		return rc;
	evict_slot(kt, s);
	return 0;
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
		if (evict_refused(kt, s)) /* a read in flight: never under its feet */
			continue;
		if (fn)
			fn(arg, s->key, s->klen, s->gen, s->size);
		freed += keytab_i_pbytes(kt, s);
		evict_slot(kt, s);
	}
	return freed;
}

int keytab_expire(struct keytab *kt, uint64_t now_ms, keytab_slot_fn fn, void *arg, size_t max)
{
	size_t n = 0;

	if (!kt)
		return 0;
	while (n < max && kt->nheap && kt_expired(kt, kt->heap[0], now_ms)) {
		struct kt_slot *s = kt->heap[0], *t = keytab_i_tomb(s);
		if (fn)
			fn(arg, s->key, s->klen, s->gen, s->size);
		keytab_i_retire(kt, s); /* off the heap too */
		if (t)
			keytab_i_tomb_free(kt, t);
		kt->st.expired++;
		n++;
	}
	return (int)n;
}

uint64_t keytab_evictable_bytes(const struct keytab *kt, int can_offload)
{
	if (!kt)
		return 0;
	return kt->lru_bytes - (can_offload ? 0 : kt->lru_qbytes);
}
