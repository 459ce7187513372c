/*
 * t/keytab: the peer's per-key table: generations, supersede, read leases and
 * doomed slots, the pending reaper, LRU eviction, binary keys.  The
 * randomized run against a model is t/keytab_model.
 */
#include "config.h"

#include <stdbool.h>

#include "tap.h"

#include "keytab_env.h"

/* begin + fill + commit; returns the commit's result (or begin's error). */
static int put(struct keytab *kt, struct alloc_arena *a, const char *key, uint64_t gen,
	       uint64_t size, uint64_t *superseded)
{
	struct keytab_view v;
	int rc = keytab_begin(kt, K(key), gen, size, 0, 1000, NULL, &v);
	if (rc)
		return rc;
	fill(a, &v, (uint8_t)gen);
	return keytab_commit(kt, K(key), gen, superseded);
}

/* ---- cases -------------------------------------------------------------- */

static void t_basic(void)
{
	struct alloc_arena *a = arena(64);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	uint64_t sup = 99, rem = 0;

	ok(keytab_new(NULL) == NULL, "keytab_new(NULL) refused");
	is_int(keytab_begin(kt, K("alpha"), 1, 10000, 0, 1000, NULL, &v), 0, "begin");
	is_int(v.state, KEYTAB_PENDING, "view: PENDING");
	is_int(v.gen, 1, "view: gen");
	is_int(v.size, 10000, "view: size");
	ok(v.klen == 5 && memcmp(v.key, "alpha", 5) == 0, "view: key");
	is_int(used_pages(a), 3, "10000 bytes took 3 pages");
	is_int(kstats(kt).pending, 1, "one pending");
	is_int(kstats(kt).pending_bytes, 3 * alloc_page_size(a), "its 3 pages counted as pending bytes");
	is_int(keytab_lookup(kt, K("alpha"), 0, &v), KVN_ENOTFOUND, "pending is not visible");
	is_int(keytab_commit(kt, K("alpha"), 1, &sup), 0, "commit");
	is_int(sup, 0, "nothing superseded");
	is_int(kstats(kt).pending, 0, "no pending");
	is_int(kstats(kt).pending_bytes, 0, "no pending bytes");
	is_int(kstats(kt).keys, 1, "one key");
	is_int(kstats(kt).committed_bytes, 10000, "committed bytes");
	memset(&v, 0, sizeof v);
	is_int(keytab_lookup(kt, K("alpha"), 0, &v), 0, "lookup any gen");
	ok(v.gen == 1 && v.size == 10000 && v.state == KEYTAB_COMMITTED && v.tier == KEYTAB_DRAM,
	   "lookup view");
	is_int(keytab_lookup(kt, K("alpha"), 1, &v), 0, "lookup exact gen");
	is_int(keytab_lookup(kt, K("alpha"), 2, &v), KVN_ESTALE, "lookup other gen: ESTALE");
	is_int(keytab_lookup(kt, K("beta"), 0, &v), KVN_ENOTFOUND, "unknown key");
	is_int(keytab_remove(kt, K("alpha"), 2, &rem), KVN_ESTALE, "remove other gen: ESTALE");
	is_int(keytab_lookup(kt, K("alpha"), 0, NULL), 0, "still there");
	is_int(keytab_remove(kt, K("alpha"), 0, &rem), 0, "remove");
	is_int(rem, 1, "removed gen");
	is_int(keytab_lookup(kt, K("alpha"), 0, &v), KVN_ENOTFOUND, "gone");
	is_int(keytab_remove(kt, K("alpha"), 0, NULL), KVN_ENOTFOUND, "remove again");
	is_int(used_pages(a), 0, "pages back");
	is_int(kstats(kt).keys, 0, "no key");
	is_int(kstats(kt).committed_bytes, 0, "no committed bytes");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_integrity(void)
{
	struct alloc_arena *a = arena(64);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	char key[16];
	int i;

	/* checkerboard the arena so a 10-page value must span extents */
	for (i = 0; i < 32; i++) {
		snprintf(key, sizeof key, "f%d", i);
		is_int(put(kt, a, key, 1, 2 * PS, NULL), 0, "filler %d", i);
	}
	for (i = 0; i < 32; i += 2) {
		snprintf(key, sizeof key, "f%d", i);
		keytab_remove(kt, K(key), 0, NULL);
	}
	is_int(put(kt, a, "big", 7, 10 * PS - 123, NULL), 0, "value over several extents");
	is_int(keytab_lookup(kt, K("big"), 7, &v), 0, "lookup");
	ok(v.next > 1, "it has %d extents", v.next);
	ok(check(a, &v, 7), "bytes read back through alloc_addr");
	for (i = 1; i < 32; i += 2) {
		snprintf(key, sizeof key, "f%d", i);
		if (keytab_lookup(kt, K(key), 0, &v) || !check(a, &v, 1))
			break;
	}
	is_int(i, 33, "the neighbours are intact");
	is_int(put(kt, a, "empty", 1, 0, NULL), 0, "size 0 value");
	is_int(keytab_lookup(kt, K("empty"), 0, &v), 0, "lookup size 0");
	ok(v.size == 0 && v.next == 0, "no extents");
	keytab_free(kt);
	is_int(used_pages(a), 0, "keytab_free returned every page");
	alloc_arena_free(a);
}

static void t_supersede(void)
{
	struct alloc_arena *a = arena(64);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v, held;
	uint64_t id = 0, id2 = 0, sup = 0;

	/* unleased: the old generation's pages come back at once */
	is_int(put(kt, a, "k", 1, 4 * PS, NULL), 0, "gen 1");
	is_int(put(kt, a, "k", 2, 2 * PS, &sup), 0, "gen 2");
	is_int(sup, 1, "gen 1 superseded");
	is_int(used_pages(a), 2, "gen 1's pages freed at once");
	ok(kstats(kt).doomed == 0 && kstats(kt).keys == 1, "nothing doomed, one key");
	is_int(kstats(kt).committed_bytes, 2 * PS, "committed bytes of gen 2");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "lookup");
	ok(v.gen == 2 && check(a, &v, 2), "gen 2 visible with its bytes");
	is_int(keytab_remove(kt, K("k"), 0, NULL), 0, "start over");

	/* leased: the free waits for the last release */
	is_int(put(kt, a, "k", 1, 4 * PS, NULL), 0, "gen 1");
	is_int(keytab_lease(kt, K("k"), 1, 0, 1000, &id, &held), 0, "lease gen 1");
	ok(id != 0 && held.gen == 1 && held.leases == 1, "lease id and view");
	is_int(keytab_lease(kt, K("k"), 0, 0, 1000, &id2, NULL), 0, "second lease");
	ok(id2 != id, "distinct lease ids");
	is_int(kstats(kt).leases, 2, "two leases");
	is_int(put(kt, a, "k", 2, 3 * PS, &sup), 0, "gen 2 commits under the leases");
	is_int(sup, 1, "gen 1 superseded");
	is_int(kstats(kt).doomed, 1, "gen 1 doomed");
	is_int(used_pages(a), 7, "gen 1's pages kept while leased");
	ok(check(a, &held, 1), "gen 1's bytes intact for the reader");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "lookup");
	is_int(v.gen, 2, "lookup sees only gen 2");
	is_int(keytab_lookup(kt, K("k"), 1, &v), KVN_ESTALE, "gen 1 is stale for lookup");
	is_int(keytab_lease(kt, K("k"), 1, 0, 1000, &id2, &v), KVN_ESTALE, "and for a new lease");
	is_int(keytab_release(kt, id), 0, "release one");
	is_int(used_pages(a), 7, "still held by the other lease");
	is_int(keytab_release(kt, id2), 0, "release the last");
	is_int(kstats(kt).doomed, 0, "no longer doomed");
	is_int(used_pages(a), 3, "gen 1 freed at the last release");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "gen 2 unaffected");
	ok(v.gen == 2 && check(a, &v, 2), "gen 2's bytes intact");

	/* remove while leased: same deferral, and a new put of the key works */
	is_int(keytab_lease(kt, K("k"), 2, 0, 1000, &id, NULL), 0, "lease gen 2");
	is_int(keytab_remove(kt, K("k"), 0, NULL), 0, "remove gen 2 while leased");
	is_int(keytab_lookup(kt, K("k"), 0, NULL), KVN_ENOTFOUND, "removed key invisible");
	is_int(used_pages(a), 3, "pages kept for the lease");
	is_int(put(kt, a, "k", 3, PS, NULL), 0, "re-put of the key");
	is_int(keytab_release(kt, id), 0, "release the doomed gen 2");
	is_int(used_pages(a), 1, "only gen 3 left");
	is_int(keytab_lookup(kt, K("k"), 3, NULL), 0, "gen 3 still committed");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_release_refused(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	uint64_t id = 0;

	is_int(keytab_release(kt, 12345), KVN_ESTATE, "unknown lease id refused");
	is_int(kstats(kt).refused, 1, "counted");
	is_int(put(kt, a, "k", 1, PS, NULL), 0, "put");
	is_int(keytab_lease(kt, K("k"), 0, 0, 1000, &id, NULL), 0, "lease");
	is_int(keytab_release(kt, id), 0, "release");
	is_int(keytab_release(kt, id), KVN_ESTATE, "second release refused");
	is_int(kstats(kt).refused, 2, "counted");
	is_int(kstats(kt).leases, 0, "no lease");
	is_int(keytab_lookup(kt, K("k"), 0, NULL), 0, "the key is untouched");
	is_int(used_pages(a), 1, "its page too");
	is_int(keytab_lease(kt, K("nope"), 0, 0, 1000, &id, NULL), KVN_ENOTFOUND, "lease unknown key");
	is_int(keytab_lease(kt, K("k"), 9, 0, 1000, &id, NULL), KVN_ESTALE, "lease other gen");
	is_int(keytab_lease(kt, K("k"), 0, 0, 1000, NULL, NULL), KVN_EINVAL, "NULL lease id");
	keytab_free(kt);
	alloc_arena_free(a);
}

struct seen {
	int n;
	char key[16][32];
	uint64_t gen[16], size[16];
};

static void record(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct seen *s = arg;
	if (s->n >= 16)
		return;
	snprintf(s->key[s->n], sizeof s->key[0], "%.*s", (int)klen, (const char *)key);
	s->gen[s->n] = gen;
	s->size[s->n] = size;
	s->n++;
}

static void t_reap_late_commit(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct seen s = { 0 };

	is_int(keytab_begin(kt, K("slow"), 5, 3 * PS, 1000, 100, NULL, NULL), 0, "begin, deadline 1100");
	is_int(keytab_begin(kt, K("fast"), 5, PS, 1000, 500, NULL, NULL), 0, "begin, deadline 1500");
	is_int(keytab_reap(kt, 1099, record, &s), 0, "nothing due at 1099");
	is_int(keytab_reap(kt, 1100, record, &s), 1, "one reaped at 1100");
	ok(s.n == 1 && strcmp(s.key[0], "slow") == 0 && s.gen[0] == 5 && s.size[0] == 3 * PS,
	   "callback saw key, gen and size");
	is_int(used_pages(a), 1, "its pages are free");
	is_int(kstats(kt).reaped, 1, "reaped counted");
	is_int(kstats(kt).pending, 1, "the other is still pending");
	is_int(keytab_commit(kt, K("slow"), 5, NULL), KVN_ESTATE, "late commit refused");
	is_int(kstats(kt).refused, 1, "counted");
	is_int(keytab_lookup(kt, K("slow"), 0, NULL), KVN_ENOTFOUND, "nothing committed");
	is_int(used_pages(a), 1, "and nothing freed twice or allocated");
	is_int(keytab_commit(kt, K("fast"), 5, NULL), 0, "the other commits in time");
	is_int(keytab_reap(kt, 99999, NULL, NULL), 0, "committed slots are never reaped");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_abort_and_unknown(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);

	is_int(keytab_begin(kt, K("k"), 1, 2 * PS, 0, 100, NULL, NULL), 0, "begin");
	is_int(keytab_abort(kt, K("k"), 1), 0, "abort");
	is_int(used_pages(a), 0, "pages back");
	is_int(kstats(kt).pending, 0, "not pending");
	is_int(keytab_abort(kt, K("k"), 1), KVN_ESTATE, "abort again refused");
	is_int(keytab_commit(kt, K("k"), 1, NULL), KVN_ESTATE, "commit after abort refused");
	is_int(keytab_commit(kt, K("other"), 1, NULL), KVN_ESTATE, "commit of an unknown key");
	is_int(put(kt, a, "k", 2, PS, NULL), 0, "put gen 2");
	is_int(keytab_commit(kt, K("k"), 3, NULL), KVN_ESTATE, "commit of an unknown gen");
	is_int(keytab_commit(kt, K("k"), 2, NULL), KVN_ESTATE, "commit of a committed gen");
	is_int(keytab_abort(kt, K("k"), 2), KVN_ESTATE, "abort of a committed gen");
	is_int(kstats(kt).refused, 6, "every refusal counted");
	is_int(keytab_lookup(kt, K("k"), 2, NULL), 0, "gen 2 untouched");
	is_int(used_pages(a), 1, "pages of gen 2 only");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_generations(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	uint64_t sup = 9;

	is_int(put(kt, a, "k", 5, PS, NULL), 0, "gen 5 committed");
	is_int(keytab_begin(kt, K("k"), 3, PS, 0, 100, NULL, NULL), KVN_ESTALE, "begin older gen: ESTALE");
	is_int(keytab_begin(kt, K("k"), 5, PS, 0, 100, NULL, NULL), KVN_EEXIST, "begin committed gen: EEXIST");
	is_int(keytab_begin(kt, K("k"), 0, PS, 0, 100, NULL, NULL), KVN_EINVAL, "gen 0 refused");
	is_int(keytab_begin(kt, K("k"), 7, PS, 0, 100, NULL, NULL), 0, "pending gen 7");
	is_int(keytab_begin(kt, K("k"), 7, PS, 0, 100, NULL, NULL), KVN_EEXIST, "gen 7 again: EEXIST");
	is_int(keytab_begin(kt, K("k"), 6, 2 * PS, 0, 100, NULL, NULL), 0, "pending gen 6 beside it");
	is_int(kstats(kt).pending, 2, "two pending gens of one key");
	is_int(used_pages(a), 4, "each with its pages");
	is_int(keytab_commit(kt, K("k"), 7, &sup), 0, "commit gen 7");
	is_int(sup, 5, "gen 5 superseded");
	is_int(keytab_commit(kt, K("k"), 6, &sup), 0, "commit older gen 6: a success (overwritten)");
	is_int(sup, 6, "gen 6 itself is the one that went");
	is_int(used_pages(a), 1, "gen 6 freed, gen 5 freed");
	is_int(kstats(kt).pending, 0, "no pending");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "lookup");
	is_int(v.gen, 7, "gen 7 stays");
	is_int(keytab_lookup(kt, K("k"), 6, &v), KVN_ESTALE, "lookup gen 6: ESTALE");
	is_int(keytab_commit(kt, K("k"), 6, NULL), KVN_ESTATE, "gen 6 is gone for good");

	/* a newer gen may be pending while the committed one is read */
	is_int(keytab_begin(kt, K("k"), 8, PS, 0, 100, NULL, NULL), 0, "begin gen 8");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "lookup while 8 is pending");
	is_int(v.gen, 7, "still gen 7");
	keytab_free(kt);
	is_int(used_pages(a), 0, "keytab_free frees pending slots too");
	alloc_arena_free(a);
}

static void t_enospc_unchanged(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_stats before, after;
	struct seen s = { 0 };

	is_int(put(kt, a, "k", 1, 10 * PS, NULL), 0, "put 10 pages");
	keytab_get_stats(kt, &before);
	is_int(keytab_begin(kt, K("k"), 2, 7 * PS, 0, 100, NULL, NULL), KVN_ENOSPC, "new gen: ENOSPC");
	is_int(keytab_begin(kt, K("new"), 1, 7 * PS, 0, 100, NULL, NULL), KVN_ENOSPC, "new key: ENOSPC");
	keytab_get_stats(kt, &after);
	ok(memcmp(&before, &after, sizeof before) == 0, "stats unchanged");
	is_int(used_pages(a), 10, "arena unchanged");
	is_int(keytab_lookup(kt, K("new"), 0, NULL), KVN_ENOTFOUND, "no key created");
	is_int(keytab_commit(kt, K("k"), 2, NULL), KVN_ESTATE, "no pending gen created");
	keytab_foreach(kt, record, &s);
	ok(s.n == 1 && s.gen[0] == 1, "the committed set is as before");
	is_int(keytab_begin(kt, K("k"), 2, 6 * PS, 0, 100, NULL, NULL), 0, "what fits still works");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_evict_lru(void)
{
	struct alloc_arena *a = arena(20);
	struct keytab *kt = keytab_new(a);
	struct seen s = { 0 };
	uint64_t id = 0, freed;
	char key[16];

	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "k%d", i);
		is_int(put(kt, a, key, 1, 4 * PS - 10, NULL), 0, "put %s", key);
	}
	/* k0 leased (and so touched first), then k1..k4 touched in order:
	 * LRU order from the tail is k0 (leased), k1, k2, k3, k4 */
	is_int(keytab_lease(kt, K("k0"), 0, 0, 1000, &id, NULL), 0, "lease k0");
	for (int i = 1; i < 5; i++) {
		snprintf(key, sizeof key, "k%d", i);
		keytab_lookup(kt, K(key), 0, NULL);
	}
	freed = keytab_evict(kt, 8 * PS, record, &s);
	is_int(freed, 8 * PS, "freed 8 pages");
	ok(s.n == 2 && strcmp(s.key[0], "k1") == 0 && strcmp(s.key[1], "k2") == 0,
	   "victims k1, k2 in LRU order, leased k0 skipped");
	ok(s.n == 2 && s.size[0] == 4 * PS - 10 && s.gen[0] == 1, "callback saw size and gen");
	is_int(kstats(kt).evicted, 2, "evicted counted");
	is_int(keytab_lookup(kt, K("k1"), 0, NULL), KVN_ENOTFOUND, "k1 gone");
	is_int(keytab_lookup(kt, K("k0"), 0, NULL), 0, "k0 kept");
	is_int(keytab_evict(kt, 8 * PS, NULL, NULL), 0, "enough free already: nothing evicted");

	s.n = 0;
	freed = keytab_evict(kt, UINT64_MAX, record, &s);
	is_int(freed, 8 * PS, "everything unleased went");
	ok(s.n == 2 && strcmp(s.key[0], "k3") == 0 && strcmp(s.key[1], "k4") == 0, "k3 then k4");
	is_int(keytab_lookup(kt, K("k0"), 0, NULL), 0, "leased k0 survives");
	is_int(keytab_evict(kt, UINT64_MAX, NULL, NULL), 0, "only leased left: nothing to evict");
	is_int(kstats(kt).keys, 1, "one key left");
	is_int(used_pages(a), 4, "its pages");
	is_int(keytab_release(kt, id), 0, "release");
	is_int(used_pages(a), 4, "a committed gen keeps its pages after release");
	is_int(keytab_evict(kt, UINT64_MAX, NULL, NULL), 4 * PS, "now it can go");
	is_int(used_pages(a), 0, "arena empty");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_expire_leases(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	uint64_t l[4];

	is_int(put(kt, a, "k", 1, 2 * PS, NULL), 0, "gen 1");
	keytab_lease(kt, K("k"), 0, 0, 100, &l[0], NULL);
	keytab_lease(kt, K("k"), 0, 0, 100, &l[1], NULL);
	keytab_lease(kt, K("k"), 0, 0, 1000, &l[2], NULL);
	is_int(put(kt, a, "k", 2, PS, NULL), 0, "gen 2 supersedes leased gen 1");
	keytab_lease(kt, K("k"), 0, 50, 100, &l[3], NULL);
	is_int(keytab_expire_leases(kt, 99), 0, "none due at 99");
	is_int(keytab_expire_leases(kt, 100), 2, "two due at 100");
	is_int(kstats(kt).lease_expired, 2, "counted");
	is_int(kstats(kt).leases, 2, "two left");
	is_int(keytab_release(kt, l[0]), KVN_ESTATE, "release of an expired lease refused");
	is_int(used_pages(a), 3, "gen 1 still held by the third lease");
	is_int(keytab_expire_leases(kt, 1000), 2, "the rest at 1000");
	is_int(used_pages(a), 1, "doomed gen 1 freed by expiry");
	is_int(kstats(kt).doomed, 0, "nothing doomed");
	is_int(keytab_lookup(kt, K("k"), 2, NULL), 0, "gen 2 committed");
	keytab_free(kt);
	alloc_arena_free(a);
}

/* keytab_expire_leases_fn's report: which leases, and it may release them
 * (a connection cut runs every reference cleanup of that connection). */
struct held_rep {
	struct keytab *kt;
	int calls, release;
	uint64_t ids[4];
};

static void on_expired(void *arg, uint64_t id, void *owner)
{
	struct held_rep *r = arg;
	if (r->calls < 4)
		r->ids[r->calls] = id;
	r->calls++;
	if (r->release) /* both leases belong to one "connection" */
		for (int i = 0; i < 2; i++)
			keytab_release(r->kt, ((uint64_t *)owner)[i]);
}

/* A lease whose pages an in-flight write references (keytab_lease_hold)
 * expires on the (virtual) clock: counted and reported once, but its
 * superseded generation's pages stay until the reference's release. */
static void t_expire_held(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct held_rep rep = { .kt = kt };
	uint64_t now = 1000, l[2];

	kvn_clock_virtual(&now);
	is_int(put(kt, a, "k", 1, 2 * PS, NULL), 0, "gen 1");
	is_int(keytab_lease(kt, K("k"), 1, kvn_now_ms(), 300, &l[0], NULL), 0, "lease gen 1 (ttl 300)");
	is_int(keytab_lease_hold(kt, l[0], l), 0, "held by a write");
	is_int(keytab_lease_hold(kt, 9999, l), KVN_ESTATE, "hold of an unknown lease refused");
	is_int(put(kt, a, "k", 2, PS, NULL), 0, "gen 2 supersedes it");
	is_int(used_pages(a), 3, "gen 1's pages kept by the lease");
	now += 299;
	is_int(keytab_expire_leases_fn(kt, kvn_now_ms(), on_expired, &rep), 0, "not due at 299 ms");
	now += 1;
	is_int(keytab_expire_leases_fn(kt, kvn_now_ms(), on_expired, &rep), 1, "due at 300 ms");
	ok(rep.calls == 1 && rep.ids[0] == l[0], "reported to its owner");
	is_int(kstats(kt).lease_expired, 1, "counted");
	is_int(used_pages(a), 3, "pages NOT freed under the in-flight write");
	now += 1000;
	is_int(keytab_expire_leases_fn(kt, kvn_now_ms(), on_expired, &rep), 0, "counted and reported once");
	is_int(rep.calls, 1, "no second report");
	is_int(keytab_release(kt, l[0]), 0, "the write's cleanup releases it");
	is_int(used_pages(a), 1, "then gen 1's pages are freed");
	is_int(kstats(kt).doomed, 0, "nothing doomed");

	/* two held leases of one connection: the first report's cut releases
	 * both; the second is not reported (it is gone) */
	is_int(keytab_lease(kt, K("k"), 2, kvn_now_ms(), 100, &l[0], NULL), 0, "lease a");
	is_int(keytab_lease(kt, K("k"), 2, kvn_now_ms(), 100, &l[1], NULL), 0, "lease b");
	keytab_lease_hold(kt, l[0], l);
	keytab_lease_hold(kt, l[1], l);
	is_int(put(kt, a, "k", 3, PS, NULL), 0, "gen 3 supersedes gen 2");
	rep.calls = 0;
	rep.release = 1;
	now += 100;
	is_int(keytab_expire_leases_fn(kt, kvn_now_ms(), on_expired, &rep), 2, "both due");
	is_int(rep.calls, 1, "one report: the cut ended both");
	is_int(kstats(kt).leases, 0, "no lease left");
	is_int(used_pages(a), 1, "gen 2's pages freed");
	kvn_clock_virtual(NULL);
	keytab_free(kt);
	alloc_arena_free(a);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(x, y);
}

static void t_foreach(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct seen s = { 0 };
	char got[16][32];

	put(kt, a, "a", 1, 1, NULL);
	put(kt, a, "b", 2, 2, NULL);
	put(kt, a, "c", 3, 3, NULL);
	put(kt, a, "c", 4, 4, NULL);                     /* supersedes c/3 */
	keytab_begin(kt, K("d"), 1, 1, 0, 100, NULL, NULL);    /* pending only */
	keytab_begin(kt, K("a"), 9, 1, 0, 100, NULL, NULL);    /* pending beside committed */
	put(kt, a, "e", 1, 5, NULL);
	keytab_remove(kt, K("e"), 0, NULL);
	keytab_foreach(kt, record, &s);
	is_int(s.n, 3, "three committed keys");
	for (int i = 0; i < s.n && i < 16; i++)
		snprintf(got[i], sizeof got[i], "%s/%" PRIu64 "/%" PRIu64, s.key[i], s.gen[i], s.size[i]);
	qsort(got, (size_t)s.n, sizeof got[0], cmp_str);
	ok(s.n == 3 && strcmp(got[0], "a/1/1") == 0 && strcmp(got[1], "b/2/2") == 0 &&
		   strcmp(got[2], "c/4/4") == 0,
	   "exactly a/1, b/2, c/4");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_free_with_leases(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct alloc_stats st;
	uint64_t id;

	put(kt, a, "a", 1, 3 * PS, NULL);
	keytab_lease(kt, K("a"), 0, 0, 100, &id, NULL);
	put(kt, a, "a", 2, 2 * PS, NULL); /* a/1 doomed */
	keytab_lease(kt, K("a"), 0, 0, 100, &id, NULL);
	put(kt, a, "b", 1, PS, NULL);
	keytab_begin(kt, K("c"), 1, 4 * PS, 0, 100, NULL, NULL);
	ok(kstats(kt).doomed == 1 && kstats(kt).leases == 2 && kstats(kt).pending == 1,
	   "doomed, leased and pending slots present");
	is_int(used_pages(a), 10, "10 pages in use");
	keytab_free(kt);
	alloc_get_stats(a, &st);
	is_int(st.free_pages, st.total_pages, "all pages free after keytab_free");
	is_int(st.largest_free_run, st.total_pages, "in one run");
	keytab_free(NULL);
	alloc_arena_free(a);
}

static void t_binary_keys(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	static const char k1[] = { 'a', 0, 'b' }, k2[] = { 'a', 0, 'c' }, k3[] = { 'a' };
	static char big[KVN_MAX_KEY + 1];

	is_int(keytab_begin(kt, k1, 3, 1, 1, 0, 100, NULL, NULL), 0, "begin a\\0b");
	is_int(keytab_commit(kt, k1, 3, 1, NULL), 0, "commit a\\0b");
	is_int(keytab_begin(kt, k2, 3, 2, 1, 0, 100, NULL, NULL), 0, "begin a\\0c");
	is_int(keytab_commit(kt, k2, 3, 2, NULL), 0, "commit a\\0c");
	is_int(keytab_lookup(kt, k3, 1, 0, NULL), KVN_ENOTFOUND, "\"a\" is a different key");
	is_int(keytab_lookup(kt, k1, 3, 0, &v), 0, "lookup a\\0b");
	ok(v.gen == 1 && v.klen == 3 && memcmp(v.key, k1, 3) == 0, "a\\0b has gen 1, full key");
	is_int(keytab_lookup(kt, k2, 3, 0, &v), 0, "lookup a\\0c");
	is_int(v.gen, 2, "a\\0c has gen 2");

	memset(big, 'x', sizeof big);
	is_int(keytab_begin(kt, big, 0, 1, 1, 0, 100, NULL, NULL), KVN_EKEYLEN, "key length 0");
	is_int(keytab_begin(kt, big, KVN_MAX_KEY + 1, 1, 1, 0, 100, NULL, NULL), KVN_EKEYLEN,
	       "key length 1025");
	is_int(keytab_lookup(kt, big, KVN_MAX_KEY + 1, 0, NULL), KVN_EKEYLEN, "lookup 1025");
	is_int(keytab_commit(kt, big, 0, 1, NULL), KVN_EKEYLEN, "commit length 0");
	is_int(keytab_remove(kt, big, 0, 0, NULL), KVN_EKEYLEN, "remove length 0");
	is_int(keytab_begin(kt, NULL, 5, 1, 1, 0, 100, NULL, NULL), KVN_EINVAL, "NULL key");
	is_int(keytab_begin(kt, big, KVN_MAX_KEY, 1, 1, 0, 100, NULL, NULL), 0, "key length 1024");
	is_int(keytab_commit(kt, big, KVN_MAX_KEY, 1, NULL), 0, "commit 1024");
	is_int(keytab_lookup(kt, big, KVN_MAX_KEY, 1, NULL), 0, "lookup 1024");
	is_int(keytab_lookup(kt, big, KVN_MAX_KEY - 1, 0, NULL), KVN_ENOTFOUND,
	       "1023-byte prefix differs");
	keytab_free(kt);
	alloc_arena_free(a);
}

/* Two puts of one key, the newer generation committing first: the older
 * one still succeeds (it is ordered just before the newer), is never
 * visible, and every page it had comes back. */
static void t_older_commit_overwritten(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v1, v2, v;
	uint64_t sup = 9;

	is_int(used_pages(a), 0, "baseline: no page used");
	is_int(keytab_begin(kt, K("race"), 10, 3 * PS, 0, 1000, NULL, &v1), 0, "begin gen 10 (the older put)");
	fill(a, &v1, 10);
	is_int(keytab_begin(kt, K("race"), 11, 2 * PS, 0, 1000, NULL, &v2), 0, "begin gen 11 (the newer put)");
	fill(a, &v2, 11);
	is_int(keytab_commit(kt, K("race"), 11, &sup), 0, "gen 11 commits first");
	is_int(sup, 0, "nothing was committed before it");
	is_int(keytab_commit(kt, K("race"), 10, &sup), 0, "then gen 10 commits: success, not KVN_ESTALE");
	is_int(sup, 10, "gen 10 was overwritten on arrival");
	is_int(keytab_lookup(kt, K("race"), 0, &v), 0, "lookup");
	ok(v.gen == 11 && v.size == 2 * PS && check(a, &v, 11), "the newer value, byte for byte");
	is_int(keytab_lookup(kt, K("race"), 10, NULL), KVN_ESTALE, "gen 10 was never visible: ESTALE");
	is_int(used_pages(a), 2, "gen 10's pages are free: only gen 11's 2 pages used");
	ok(kstats(kt).pending == 0 && kstats(kt).pending_bytes == 0 && kstats(kt).keys == 1,
	   "no pending slot left, one key");
	is_int(keytab_remove(kt, K("race"), 0, NULL), 0, "remove");
	is_int(used_pages(a), 0, "back to the baseline");
	keytab_free(kt);
	alloc_arena_free(a);
}

/* A read of one generation this peer does not hold answers KVN_ESTALE,
 * "ask the master again" (moved, removed, lost: the master knows which).
 * DROP_GEN's supersede also leaves a tombstone, so a read of the latest
 * answers KVN_ESTALE too while it lasts; after a remove, or once it is
 * gone, a read of the latest is KVN_ENOTFOUND. */
static void t_superseded_vs_removed(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	uint64_t id = 0, rem = 0;

	/* moved by the master: superseded, not removed */
	is_int(put(kt, a, "moved", 5, 2 * PS, NULL), 0, "gen 5 committed");
	is_int(keytab_supersede(kt, K("moved"), 5, 1000, 500), 0, "the master supersedes gen 5");
	is_int(used_pages(a), 0, "its pages are free");
	is_int(kstats(kt).keys, 0, "no committed key");
	is_int(kstats(kt).tombs, 1, "one tombstone");
	is_int(keytab_lookup(kt, K("moved"), 5, &v), KVN_ESTALE, "a get routed to gen 5: KVN_ESTALE");
	is_int(keytab_lookup(kt, K("moved"), 0, &v), KVN_ESTALE, "a latest get: KVN_ESTALE");
	is_int(keytab_lookup(kt, K("moved"), 4, &v), KVN_ESTALE, "an older gen: KVN_ESTALE");
	is_int(keytab_lookup(kt, K("moved"), 6, &v), KVN_ESTALE, "a gen never held here: KVN_ESTALE (the master decides)");
	is_int(keytab_lease(kt, K("moved"), 5, 0, 1000, &id, NULL), KVN_ESTALE, "a lease: KVN_ESTALE");
	is_int(keytab_remove(kt, K("moved"), 5, &rem), KVN_ESTALE, "a remove routed to gen 5: KVN_ESTALE");
	is_int(kstats(kt).tombs, 1, "the tombstone stays");
	is_int(keytab_reap(kt, 1499, NULL, NULL), 0, "reap before its time: nothing");
	is_int(keytab_lookup(kt, K("moved"), 5, NULL), KVN_ESTALE, "still KVN_ESTALE");
	is_int(keytab_reap(kt, 1500, NULL, NULL), 0, "reap at its deadline (no pending slot counted)");
	is_int(kstats(kt).tombs, 0, "the tombstone is gone");
	is_int(keytab_lookup(kt, K("moved"), 0, NULL), KVN_ENOTFOUND, "then a latest get: not found");
	is_int(keytab_lookup(kt, K("moved"), 5, NULL), KVN_ESTALE, "and gen 5: still not held here, KVN_ESTALE");

	/* removed: not found, and a remove ends an older tombstone */
	is_int(put(kt, a, "gone", 7, PS, NULL), 0, "gen 7 of another key");
	is_int(keytab_remove(kt, K("gone"), 7, &rem), 0, "removed");
	is_int(keytab_lookup(kt, K("gone"), 7, NULL), KVN_ESTALE, "a get of the removed gen: KVN_ESTALE (the master says not found)");
	is_int(keytab_lookup(kt, K("gone"), 0, NULL), KVN_ENOTFOUND, "a latest get: not found");
	is_int(put(kt, a, "k", 1, PS, NULL), 0, "k gen 1");
	is_int(keytab_supersede(kt, K("k"), 1, 0, 1000), 0, "superseded");
	is_int(put(kt, a, "k", 3, PS, NULL), 0, "k gen 3 committed here later");
	is_int(kstats(kt).tombs, 0, "a newer commit ends the tombstone");
	is_int(keytab_lookup(kt, K("k"), 1, NULL), KVN_ESTALE, "gen 1: stale (gen 3 is here)");
	is_int(keytab_remove(kt, K("k"), 0, &rem), 0, "remove gen 3");
	is_int(keytab_lookup(kt, K("k"), 1, NULL), KVN_ESTALE, "after a remove, gen 1: KVN_ESTALE");
	is_int(keytab_lookup(kt, K("k"), 0, NULL), KVN_ENOTFOUND, "the latest: not found (no tombstone left)");

	/* a supersede of a gen older than the committed one changes nothing */
	is_int(put(kt, a, "n", 9, PS, NULL), 0, "n gen 9");
	is_int(keytab_supersede(kt, K("n"), 8, 0, 1000), KVN_ESTALE, "supersede gen 8: KVN_ESTALE");
	is_int(keytab_lookup(kt, K("n"), 0, &v), 0, "gen 9 stays");
	is_int(kstats(kt).tombs, 0, "no tombstone");
	/* superseded while leased: doomed, freed at the release */
	is_int(keytab_lease(kt, K("n"), 9, 0, 1000, &id, NULL), 0, "lease gen 9");
	is_int(keytab_supersede(kt, K("n"), 9, 0, 1000), 0, "superseded under the lease");
	is_int(kstats(kt).doomed, 1, "doomed");
	is_int(keytab_lookup(kt, K("n"), 9, NULL), KVN_ESTALE, "reads: KVN_ESTALE");
	is_int(keytab_release(kt, id), 0, "release");
	is_int(used_pages(a), 0, "every page back");
	is_int(keytab_supersede(kt, K("n"), 0, 0, 1000), KVN_EINVAL, "gen 0 refused");

	/* bounded: the oldest tombstone goes first */
	char key[32];
	int bad = 0;
	for (int i = 0; i <= KEYTAB_TOMB_MAX; i++) {
		int n = snprintf(key, sizeof key, "t%d", i);
		bad += keytab_supersede(kt, key, (size_t)n, 1, 0, 1000) != KVN_ENOTFOUND;
	}
	is_int(bad, 0, "supersede of keys this peer does not hold: KVN_ENOTFOUND (tombstone set)");
	is_int(kstats(kt).tombs, KEYTAB_TOMB_MAX, "at most KEYTAB_TOMB_MAX tombstones");
	is_int(keytab_lookup(kt, K("t0"), 0, NULL), KVN_ENOTFOUND, "the oldest was dropped");
	is_int(keytab_lookup(kt, K("t1"), 0, NULL), KVN_ESTALE, "the next one stays");
	is_int(keytab_reap(kt, 1000, NULL, NULL), 0, "their time is up");
	is_int(kstats(kt).tombs, 0, "all gone");
	keytab_free(kt);
	alloc_arena_free(a);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "basic", t_basic },
		{ "integrity", t_integrity },
		{ "supersede", t_supersede },
		{ "release_refused", t_release_refused },
		{ "reap_late_commit", t_reap_late_commit },
		{ "abort_and_unknown", t_abort_and_unknown },
		{ "generations", t_generations },
		{ "enospc_unchanged", t_enospc_unchanged },
		{ "evict_lru", t_evict_lru },
		{ "expire_leases", t_expire_leases },
		{ "expire_held", t_expire_held },
		{ "foreach", t_foreach },
		{ "free_with_leases", t_free_with_leases },
		{ "binary_keys", t_binary_keys },
		{ "older_commit_overwritten", t_older_commit_overwritten },
		{ "superseded_vs_removed", t_superseded_vs_removed },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN);
	return tap_run(tests, argc, argv);
}
