/*
 * t/keytab_tier: the key table's tiers and what the peer's eviction loop
 * drives: per-generation attributes, offload / drop_dram / promote /
 * disk_add, the disk free hook, pins, evict_pick / evict_one, expiry, and the
 * O(1) accounting, each with its refusals and counters.  The randomized run
 * against a model is t/keytab_model.
 */
#include "config.h"

#include <stdbool.h>

#include "tap.h"

#include "keytab_env.h"

/* begin (with attributes) + fill + commit. */
static int put_a(struct keytab *kt, struct alloc_arena *a, const char *key, uint64_t gen, uint64_t size,
		 const struct keytab_attrs *at)
{
	struct keytab_view v;
	int rc = keytab_begin(kt, K(key), gen, size, 0, 1000, at, &v);
	if (rc)
		return rc;
	fill(a, &v, (uint8_t)gen);
	return keytab_commit(kt, K(key), gen, NULL);
}
#define put(kt, a, key, gen, size) put_a((kt), (a), (key), (gen), (size), NULL)

/* What the free hook (or an expire / evict callback) saw. */
struct freed {
	int n;
	char key[16][16];
	uint64_t gen[16], size[16];
};

static void on_free(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct freed *f = arg;
	if (f->n < 16 && klen < 16) {
		memcpy(f->key[f->n], key, klen);
		f->key[f->n][klen] = 0;
		f->gen[f->n] = gen;
		f->size[f->n++] = size;
	}
}

/* key with gen 1 in DRAM and on disk (offloaded). */
static void put_both(struct keytab *kt, struct alloc_arena *a, const char *key, uint64_t gen, uint64_t size)
{
	if (put(kt, a, key, gen, size) || keytab_offload_begin(kt, K(key), gen, NULL) ||
	    keytab_offload_done(kt, K(key), gen, 1))
		kvn_fatal("put_both %s", key);
}

/* ---- cases -------------------------------------------------------------- */

static void t_attrs_view(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_attrs at = { .checksum = 0x1234abcdull, .flags = KEYTAB_F_QUEUE, .expires_ms = 0 };
	struct keytab_view v;

	is_int(keytab_begin(kt, K("q"), 1, 100, 0, 1000, &at, &v), 0, "begin with attributes");
	ok(v.checksum == 0x1234abcdull && v.flags == KEYTAB_F_QUEUE && v.expires_ms == 0,
	   "the pending view carries them");
	is_int(keytab_commit(kt, K("q"), 1, NULL), 0, "commit");
	memset(&v, 0xff, sizeof v);
	is_int(keytab_lookup(kt, K("q"), 0, &v), 0, "lookup");
	ok(v.checksum == 0x1234abcdull && v.flags == KEYTAB_F_QUEUE && v.expires_ms == 0,
	   "the committed view carries them");
	ok(v.in_dram == 1 && v.on_disk == 0 && v.pins == 0 && v.offloading == 0 && v.tier == KEYTAB_DRAM &&
		   v.next == 1,
	   "in DRAM only, not pinned or offloading");
	is_int(put(kt, a, "plain", 1, 10), 0, "put without attributes");
	is_int(keytab_lookup(kt, K("plain"), 0, &v), 0, "lookup");
	ok(v.checksum == 0 && v.flags == 0 && v.expires_ms == 0, "NULL attributes are all zero");
	is_int(kstats(kt).dram_bytes, 2 * PS, "dram_bytes: one page each");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_offload(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_view v;
	struct keytab_victim vic[4];
	struct freed f = { 0 };
	uint64_t refused;

	keytab_set_disk_free_fn(kt, on_free, &f);
	is_int(keytab_begin(kt, K("k"), 1, 3 * PS, 0, 1000, NULL, NULL), 0, "pending gen 1");
	is_int(keytab_offload_begin(kt, K("k"), 1, NULL), KVN_ESTALE, "a pending gen cannot be offloaded");
	is_int(keytab_commit(kt, K("k"), 1, NULL), 0, "commit");
	is_int(keytab_offload_begin(kt, K("k"), 2, NULL), KVN_ESTALE, "another gen: ESTALE");
	is_int(keytab_offload_begin(kt, K("x"), 0, NULL), KVN_ENOTFOUND, "unknown key: ENOTFOUND");
	is_int(keytab_offload_begin(kt, K("k"), 1, &v), 0, "offload_begin");
	ok(v.next == 1 && v.ext && v.size == 3 * PS && v.offloading == 1, "its view has the pages to copy");
	is_int(kstats(kt).offloading, 1, "offloading counted");
	is_int(keytab_offload_begin(kt, K("k"), 1, NULL), KVN_EBUSY, "twice: EBUSY");
	is_int(keytab_evict_pick(kt, 0, vic, 4), 0, "not a victim while offloading");
	is_int(keytab_evict_one(kt, K("k"), 1), KVN_EHELD, "evict_one: EHELD");
	is_int(keytab_drop_dram(kt, K("k"), 1), KVN_EHELD, "drop_dram: EHELD");
	is_int(keytab_evictable_bytes(kt, 1), 0, "not evictable while offloading");
	refused = kstats(kt).refused;
	is_int(keytab_offload_done(kt, K("k"), 2, 1), KVN_ESTATE, "done of another gen: ESTATE");
	is_int(keytab_offload_done(kt, K("k"), 0, 1), KVN_EINVAL, "done of gen 0: EINVAL");
	is_int(kstats(kt).refused, refused + 1, "the refusal counted");
	is_int(keytab_offload_done(kt, K("k"), 1, 1), 0, "offload_done ok");
	is_int(keytab_lookup(kt, K("k"), 0, &v), 0, "lookup");
	ok(v.in_dram == 1 && v.on_disk == 1 && v.offloading == 0 && v.tier == KEYTAB_DRAM,
	   "in DRAM and on disk, read from DRAM");
	ok(kstats(kt).offloading == 0 && kstats(kt).offloaded == 1 && kstats(kt).disk_keys == 1 &&
		   kstats(kt).disk_bytes == 3 * PS,
	   "offloading 0, offloaded 1, disk_keys 1, disk_bytes its size");
	is_int(keytab_evictable_bytes(kt, 1), 3 * PS, "evictable again");
	is_int(keytab_offload_done(kt, K("k"), 1, 1), KVN_ESTATE, "done twice: ESTATE");
	is_int(kstats(kt).refused, refused + 2, "counted");
	is_int(keytab_offload_begin(kt, K("k"), 1, NULL), KVN_EEXIST, "already on disk: EEXIST");
	is_int(keytab_evict_pick(kt, 0, vic, 4), 1, "a victim again");
	ok(vic[0].on_disk == 1 && vic[0].gen == 1 && vic[0].klen == 1 && vic[0].key[0] == 'k',
	   "the victim says it is on disk");
	is_int(keytab_drop_dram(kt, K("k"), 1), 0, "drop_dram");
	is_int(used_pages(a), 0, "its pages are free");
	ok(kstats(kt).dram_bytes == 0 && kstats(kt).dropped_dram == 1 && kstats(kt).keys == 1 &&
		   kstats(kt).disk_keys == 1 && kstats(kt).committed_bytes == 3 * PS,
	   "dram_bytes 0, dropped_dram 1, still one committed key on disk");
	memset(&v, 0xff, sizeof v);
	is_int(keytab_lookup(kt, K("k"), 1, &v), 0, "still found");
	ok(v.in_dram == 0 && v.on_disk == 1 && v.tier == KEYTAB_DISK && v.next == 0 && v.ext == NULL,
	   "a disk-only view: no extents");
	is_int(keytab_drop_dram(kt, K("k"), 1), KVN_ESTATE, "drop_dram twice: ESTATE");
	is_int(keytab_offload_begin(kt, K("k"), 1, NULL), KVN_ESTATE, "offload of a disk-only gen: ESTATE");
	is_int(keytab_evict_one(kt, K("k"), 1), KVN_ESTATE, "evict_one of a disk-only gen: ESTATE");
	is_int(keytab_evict_pick(kt, 0, vic, 4), 0, "a disk-only gen is no victim");
	is_int(f.n, 0, "the free hook not called: the gen is still committed");
	is_int(put(kt, a, "k", 2, PS), 0, "gen 2 supersedes it");
	ok(f.n == 1 && strcmp(f.key[0], "k") == 0 && f.gen[0] == 1 && f.size[0] == 3 * PS,
	   "the free hook saw gen 1 leave, once");
	ok(kstats(kt).disk_keys == 0 && kstats(kt).disk_bytes == 0, "no disk copy left");
	keytab_free(kt);
	is_int(f.n, 1, "keytab_free does not call the hook");
	alloc_arena_free(a);
}

static void t_offload_superseded(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct freed f = { 0 };

	keytab_set_disk_free_fn(kt, on_free, &f);
	is_int(put(kt, a, "k", 1, 2 * PS), 0, "gen 1");
	is_int(keytab_offload_begin(kt, K("k"), 1, NULL), 0, "offload gen 1");
	is_int(put(kt, a, "k", 2, PS), 0, "gen 2 supersedes it meanwhile");
	is_int(used_pages(a), 3, "gen 1's pages kept under the writer");
	is_int(kstats(kt).doomed, 1, "gen 1 doomed");
	is_int(keytab_offload_done(kt, K("k"), 1, 1), KVN_ESTATE, "done: ESTATE (delete the file)");
	ok(used_pages(a) == 1 && kstats(kt).doomed == 0 && kstats(kt).offloading == 0,
	   "now gen 1's pages are free");
	ok(kstats(kt).disk_keys == 0 && kstats(kt).offloaded == 0, "never marked on disk");
	is_int(f.n, 0, "no free hook: the table never had it on disk");

	/* removed meanwhile, and a failed write */
	is_int(keytab_offload_begin(kt, K("k"), 2, NULL), 0, "offload gen 2");
	is_int(keytab_remove(kt, K("k"), 0, NULL), 0, "remove");
	is_int(keytab_lookup(kt, K("k"), 0, NULL), KVN_ENOTFOUND, "gone for readers");
	is_int(used_pages(a), 1, "pages kept");
	is_int(keytab_offload_done(kt, K("k"), 2, 0), KVN_ESTATE, "done (failed): ESTATE");
	is_int(used_pages(a), 0, "freed");
	is_int(keytab_offload_done(kt, K("k"), 2, 0), KVN_ESTATE, "again: nothing there");

	/* a failed write on a live gen: nothing changes but the mark */
	is_int(put(kt, a, "j", 1, PS), 0, "j");
	is_int(keytab_offload_begin(kt, K("j"), 1, NULL), 0, "offload j");
	is_int(keytab_offload_done(kt, K("j"), 1, 0), 0, "done, failed");
	ok(kstats(kt).disk_keys == 0 && kstats(kt).offloading == 0 && kstats(kt).offloaded == 0,
	   "not on disk");
	is_int(keytab_evictable_bytes(kt, 0), PS, "a candidate again");

	/* leased and offloading, then superseded: freed after both let go */
	uint64_t id;
	is_int(keytab_lease(kt, K("j"), 1, 0, 1000, &id, NULL), 0, "lease j");
	is_int(keytab_offload_begin(kt, K("j"), 1, NULL), 0, "offload j");
	is_int(put(kt, a, "j", 2, PS), 0, "j gen 2");
	is_int(keytab_offload_done(kt, K("j"), 1, 1), KVN_ESTATE, "done: ESTATE");
	is_int(used_pages(a), 2, "the lease still holds gen 1");
	is_int(keytab_release(kt, id), 0, "release");
	is_int(used_pages(a), 1, "freed at the last holder");
	is_int(f.n, 0, "and never reported to the hook");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_drop_dram_refused(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	uint64_t id, refused;

	is_int(put(kt, a, "m", 1, PS), 0, "DRAM only");
	refused = kstats(kt).refused;
	is_int(keytab_drop_dram(kt, K("m"), 1), KVN_ESTATE, "no disk copy: ESTATE");
	is_int(kstats(kt).refused, refused + 1, "counted");
	is_int(keytab_drop_dram(kt, K("nope"), 0), KVN_ENOTFOUND, "unknown: ENOTFOUND");
	put_both(kt, a, "b", 1, PS);
	is_int(keytab_lease(kt, K("b"), 0, 0, 1000, &id, NULL), 0, "lease b");
	is_int(keytab_drop_dram(kt, K("b"), 0), KVN_EHELD, "leased: EHELD");
	is_int(keytab_release(kt, id), 0, "release");
	is_int(keytab_pin(kt, K("b"), 0, 0, 1000), 0, "pin b");
	is_int(keytab_drop_dram(kt, K("b"), 0), KVN_EHELD, "pinned: EHELD");
	is_int(keytab_unpin(kt, K("b"), 0), 0, "unpin");
	is_int(keytab_drop_dram(kt, K("b"), 0), 0, "now it goes");
	is_int(used_pages(a), 1, "m's page left");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_promote(void)
{
	struct alloc_arena *a = arena(8);
	struct keytab *kt = keytab_new(a);
	struct keytab_attrs at = { .checksum = 77, .flags = 0, .expires_ms = 0 };
	struct keytab_view v;
	struct freed f = { 0 };

	keytab_set_disk_free_fn(kt, on_free, &f);
	is_int(keytab_disk_add(kt, K("d"), 5, 3 * PS - 1, &at), 0, "disk_add d gen 5");
	is_int(used_pages(a), 0, "no pages");
	is_int(keytab_lookup(kt, K("d"), 5, &v), 0, "lookup");
	ok(v.in_dram == 0 && v.on_disk == 1 && v.checksum == 77 && v.next == 0, "disk only, checksum kept");
	is_int(keytab_promote(kt, K("d"), 4, &v), KVN_ESTALE, "promote another gen: ESTALE");
	is_int(keytab_promote_done(kt, K("d"), 5, 1), KVN_ESTATE, "done without promote: ESTATE");
	is_int(keytab_promote(kt, K("d"), 0, &v), 0, "promote");
	ok(v.next >= 1 && v.ext && v.in_dram == 0, "pages to fill; not in DRAM yet");
	is_int(used_pages(a), 3, "3 pages taken");
	fill(a, &v, 5);
	is_int(keytab_promote(kt, K("d"), 5, NULL), KVN_EBUSY, "twice: EBUSY");
	struct keytab_view r;
	is_int(keytab_lookup(kt, K("d"), 0, &r), 0, "a read meanwhile");
	ok(r.in_dram == 0 && r.next == 0, "still reads the file");
	is_int(keytab_evict_one(kt, K("d"), 5), KVN_ESTATE, "evict_one while promoting: not in DRAM");
	is_int(keytab_promote_done(kt, K("d"), 5, 1), 0, "promote_done ok");
	is_int(keytab_lookup(kt, K("d"), 0, &r), 0, "lookup");
	ok(r.in_dram == 1 && r.on_disk == 1 && check(a, &r, 5), "in DRAM, the copied bytes");
	ok(kstats(kt).promoted == 1 && kstats(kt).dram_bytes == 3 * PS, "promoted 1, dram_bytes 3 pages");
	is_int(keytab_promote(kt, K("d"), 5, NULL), KVN_EEXIST, "already in DRAM: EEXIST");
	is_int(keytab_drop_dram(kt, K("d"), 5), 0, "drop it again");

	/* no room: nothing changes */
	is_int(put(kt, a, "fill", 1, 6 * PS), 0, "6 of 8 pages taken");
	is_int(keytab_promote(kt, K("d"), 5, &v), KVN_ENOSPC, "promote: ENOSPC");
	is_int(used_pages(a), 6, "nothing taken");
	is_int(keytab_remove(kt, K("fill"), 0, NULL), 0, "make room");

	/* a failed copy gives the pages back */
	is_int(keytab_promote(kt, K("d"), 5, &v), 0, "promote");
	is_int(keytab_promote_done(kt, K("d"), 5, 0), 0, "done, failed");
	is_int(used_pages(a), 0, "pages back");
	is_int(keytab_lookup(kt, K("d"), 0, &r), 0, "lookup");
	is_int(r.in_dram, 0, "still disk only");

	/* superseded while promoting: freed at done, reported once */
	is_int(keytab_promote(kt, K("d"), 5, &v), 0, "promote");
	is_int(put(kt, a, "d", 6, PS), 0, "gen 6 supersedes it");
	ok(used_pages(a) == 4 && f.n == 0, "gen 5's pages kept, not yet reported");
	is_int(keytab_promote_done(kt, K("d"), 5, 1), KVN_ESTATE, "done: ESTATE");
	ok(used_pages(a) == 1 && f.n == 1 && f.gen[0] == 5, "freed and reported once");
	is_int(kstats(kt).promoted, 1, "not counted as promoted");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_disk_add(void)
{
	struct alloc_arena *a = arena(8);
	struct keytab *kt = keytab_new(a);
	struct freed f = { 0 };
	char big[KVN_MAX_KEY + 1] = { 0 };
	uint64_t id;

	keytab_set_disk_free_fn(kt, on_free, &f);
	is_int(keytab_disk_add(kt, K("k"), 0, 1, NULL), KVN_EINVAL, "gen 0");
	is_int(keytab_disk_add(kt, big, sizeof big, 1, 1, NULL), KVN_EKEYLEN, "key too long");
	is_int(keytab_disk_add(kt, K("k"), 3, 300, NULL), 0, "gen 3");
	ok(kstats(kt).keys == 1 && kstats(kt).disk_keys == 1 && kstats(kt).disk_bytes == 300 &&
		   kstats(kt).committed_bytes == 300 && kstats(kt).max_gen == 3 && kstats(kt).dram_bytes == 0,
	   "keys, disk_keys, disk_bytes, committed_bytes, max_gen");
	is_int(keytab_disk_add(kt, K("k"), 3, 300, NULL), KVN_EEXIST, "same gen: EEXIST");
	is_int(keytab_disk_add(kt, K("k"), 2, 200, NULL), KVN_ESTALE, "older gen: ESTALE");
	is_int(keytab_begin(kt, K("k"), 9, PS, 0, 100, NULL, NULL), 0, "pending gen 9");
	is_int(keytab_disk_add(kt, K("k"), 9, 1, NULL), KVN_EEXIST, "a pending gen: EEXIST");
	is_int(keytab_lease(kt, K("k"), 3, 0, 1000, &id, NULL), 0, "lease the disk gen");
	is_int(keytab_disk_add(kt, K("k"), 4, 400, NULL), 0, "gen 4 supersedes it");
	ok(f.n == 0 && kstats(kt).doomed == 1, "gen 3 doomed under its lease, not reported");
	ok(kstats(kt).disk_keys == 1 && kstats(kt).disk_bytes == 400, "disk accounting of gen 4");
	is_int(keytab_release(kt, id), 0, "release");
	ok(f.n == 1 && f.gen[0] == 3 && f.size[0] == 300, "gen 3 reported at its last release");
	is_int(keytab_commit(kt, K("k"), 9, NULL), 0, "commit pending gen 9");
	ok(f.n == 2 && f.gen[1] == 4, "gen 4 reported when superseded");
	ok(kstats(kt).disk_keys == 0 && kstats(kt).keys == 1 && kstats(kt).doomed == 0, "accounting");
	is_int(keytab_disk_add(kt, K("k"), 9, 1, NULL), KVN_EEXIST, "committed in DRAM: EEXIST");

	/* a tombstone goes as a commit's would */
	is_int(keytab_supersede(kt, K("t"), 5, 0, 100), KVN_ENOTFOUND, "tombstone t gen 5");
	is_int(keytab_disk_add(kt, K("t"), 6, 1, NULL), 0, "disk_add t gen 6");
	is_int(kstats(kt).tombs, 0, "tombstone gone");
	is_int(keytab_remove(kt, K("t"), 0, NULL), 0, "remove t");
	ok(f.n == 3 && strcmp(f.key[2], "t") == 0, "reported on remove");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_pins(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_victim vic[4];
	struct keytab_view v;
	uint64_t refused;

	is_int(put(kt, a, "p", 1, PS), 0, "p");
	is_int(put(kt, a, "o", 1, PS), 0, "o");
	is_int(keytab_pin(kt, K("x"), 0, 0, 100), KVN_ENOTFOUND, "unknown: ENOTFOUND");
	is_int(keytab_pin(kt, K("p"), 2, 0, 100), KVN_ESTALE, "other gen: ESTALE");
	is_int(keytab_pin(kt, K("p"), 0, 0, 100), 0, "pin p until 100");
	is_int(keytab_pin(kt, K("p"), 1, 10, 50), 0, "again until 60");
	is_int(keytab_lookup(kt, K("p"), 0, &v), 0, "lookup");
	is_int(v.pins, 2, "view: 2 pins");
	ok(kstats(kt).pinned == 1 && kstats(kt).pins == 2, "pinned 1 gen, 2 pins taken");
	is_int(keytab_evictable_bytes(kt, 1), PS, "only o evictable");
	is_int(keytab_evict_pick(kt, 0, vic, 4), 1, "one victim");
	ok(vic[0].klen == 1 && vic[0].key[0] == 'o', "o, not pinned p");
	is_int(keytab_evict_one(kt, K("p"), 0), KVN_EHELD, "evict_one p: EHELD");
	is_int(keytab_offload_begin(kt, K("p"), 0, NULL), KVN_EHELD, "offload p: EHELD");
	is_int(keytab_evict(kt, UINT64_MAX, NULL, NULL), PS, "keytab_evict takes o only");
	is_int(keytab_lookup(kt, K("p"), 0, NULL), 0, "p survives");
	is_int(keytab_expire_pins(kt, 99), 0, "the latest deadline (100) holds");
	is_int(keytab_unpin(kt, K("p"), 0), 0, "unpin once");
	is_int(kstats(kt).pinned, 1, "one pin left");
	is_int(keytab_expire_pins(kt, 100), 1, "expires at 100");
	ok(kstats(kt).pinned == 0 && kstats(kt).pin_expired == 1, "pinned 0, pin_expired 1");
	refused = kstats(kt).refused;
	is_int(keytab_unpin(kt, K("p"), 0), KVN_ESTATE, "unpin of an unpinned gen: ESTATE");
	is_int(kstats(kt).refused, refused + 1, "counted");
	is_int(keytab_evictable_bytes(kt, 1), PS, "p evictable again");

	/* a pin does not survive its generation */
	is_int(keytab_pin(kt, K("p"), 1, 0, 1000), 0, "pin p");
	is_int(put(kt, a, "p", 2, PS), 0, "gen 2 supersedes it");
	is_int(kstats(kt).pinned, 0, "the pin went with gen 1");
	is_int(keytab_unpin(kt, K("p"), 1), KVN_ESTALE, "unpin gen 1: ESTALE");
	is_int(keytab_unpin(kt, K("p"), 2), KVN_ESTATE, "gen 2 was never pinned");
	is_int(keytab_expire_pins(kt, UINT64_MAX), 0, "nothing to expire");

	/* a disk-only gen may be pinned (and then promoted) */
	is_int(keytab_disk_add(kt, K("d"), 1, 10, NULL), 0, "disk gen");
	is_int(keytab_pin(kt, K("d"), 0, 0, 100), 0, "pin it");
	is_int(keytab_promote(kt, K("d"), 0, &v), 0, "promote");
	is_int(keytab_promote_done(kt, K("d"), 1, 1), 0, "done");
	is_int(keytab_drop_dram(kt, K("d"), 0), KVN_EHELD, "pinned in DRAM: not dropped");
	is_int(keytab_evictable_bytes(kt, 1), PS, "not evictable (p gen 2 is)");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_evict_pick(void)
{
	struct alloc_arena *a = arena(32);
	struct keytab *kt = keytab_new(a);
	struct keytab_attrs q = { .checksum = 0, .flags = KEYTAB_F_QUEUE, .expires_ms = 0 };
	struct keytab_victim vic[8];
	uint64_t id[8];
	char key[16];

	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		is_int(put_a(kt, a, key, (uint64_t)i + 1, PS, i == 9 ? &q : NULL), 0, "put %s", key);
	}
	is_int(keytab_begin(kt, K("pend"), 1, PS, 0, 1000, NULL, NULL), 0, "a pending slot");
	is_int(keytab_evict_pick(kt, 0, vic, 3), 3, "3 victims");
	ok(vic[0].key[1] == '0' && vic[1].key[1] == '1' && vic[2].key[1] == '2', "k0, k1, k2: coldest first");
	ok(vic[0].gen == 1 && vic[0].size == PS && vic[0].on_disk == 0 && vic[0].flags == 0 && vic[0].klen == 2,
	   "victim fields");
	is_int(keytab_evict_pick(kt, 0, vic, 3), 3, "picking again");
	ok(vic[0].key[1] == '0', "picking changed nothing: k0 first again");
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "k%d", i);
		is_int(keytab_lease(kt, K(key), 0, 0, 1000, &id[i], NULL), 0, "lease %s", key);
	}
	/* a lease touches: k8 and k9 read after them leave k0..k7 at the cold
	 * end, all leased: looking at 4 * 2 = 8 slots finds none */
	keytab_lookup(kt, K("k8"), 0, NULL);
	keytab_lookup(kt, K("k9"), 0, NULL);
	is_int(keytab_evict_pick(kt, 0, vic, 2), 0, "a bounded walk over 8 leased slots");
	is_int(keytab_evict_pick(kt, 0, vic, 2), 2, "they moved to the hot end: the next walk finds two");
	ok(vic[0].key[1] == '8' && vic[1].key[1] == '9', "k8, then k9");
	is_int(vic[1].flags, KEYTAB_F_QUEUE, "k9 is a queue item");
	is_int(keytab_evict_one(kt, K("k9"), 0), KVN_EHELD, "a DRAM-only queue item is never dropped");
	is_int(keytab_evict_one(kt, K("k0"), 0), KVN_EHELD, "leased: EHELD");
	is_int(keytab_evict_one(kt, K("k8"), 2), KVN_ESTALE, "other gen: ESTALE");
	is_int(keytab_evict_one(kt, K("k8"), 9), 0, "evict_one k8");
	ok(kstats(kt).evicted == 1 && keytab_lookup(kt, K("k8"), 0, NULL) == KVN_ENOTFOUND, "gone, counted");
	is_int(keytab_evictable_bytes(kt, 1), 9 * PS, "9 evictable with offload (leased ones count)");
	is_int(keytab_evictable_bytes(kt, 0), 8 * PS, "8 without: the DRAM-only queue item stays");
	is_int(keytab_evict(kt, UINT64_MAX, NULL, NULL), 0, "keytab_evict: leased and queue items stay");
	is_int(keytab_offload_begin(kt, K("k9"), 0, NULL), 0, "offload the queue item");
	is_int(keytab_offload_done(kt, K("k9"), 10, 1), 0, "on disk");
	is_int(keytab_evictable_bytes(kt, 0), 9 * PS, "now it counts without offload too");
	is_int(keytab_evict_one(kt, K("k9"), 0), 0, "with a disk copy it may go");
	for (int i = 0; i < 8; i++)
		keytab_release(kt, id[i]);
	is_int(keytab_evict_pick(kt, 0, vic, 8), 8, "all 8 now");
	is_int(keytab_evict_pick(kt, 0, vic, 0), 0, "max 0: none");
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_expire(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_attrs at = { 0 };
	struct keytab_victim vic[4];
	struct freed f = { 0 }, hook = { 0 };
	uint64_t now = 50, id;

	kvn_clock_virtual(&now);
	keytab_set_disk_free_fn(kt, on_free, &hook);
	at.expires_ms = 300;
	is_int(put_a(kt, a, "c", 1, PS, &at), 0, "c expires at 300");
	at.expires_ms = 100;
	is_int(put_a(kt, a, "a", 1, PS, &at), 0, "a expires at 100");
	at.expires_ms = 200;
	is_int(put_a(kt, a, "b", 1, PS, &at), 0, "b expires at 200");
	is_int(put(kt, a, "n", 1, PS), 0, "n never expires");
	is_int(keytab_disk_add(kt, K("d"), 1, 10, &at), 0, "disk-only d expires at 200");
	now = 99;
	is_int(keytab_lookup(kt, K("a"), 0, NULL), 0, "a at 99: there");
	now = 100;
	is_int(keytab_lookup(kt, K("a"), 0, NULL), KVN_ENOTFOUND, "a at 100: not found");
	is_int(keytab_lookup(kt, K("a"), 1, NULL), KVN_ENOTFOUND, "its gen asked for: not found");
	is_int(keytab_lookup(kt, K("a"), 2, NULL), KVN_ESTALE, "a newer gen asked for: ESTALE");
	is_int(keytab_lease(kt, K("a"), 0, 100, 10, &id, NULL), KVN_ENOTFOUND, "lease: not found");
	is_int(keytab_pin(kt, K("a"), 0, 100, 10), KVN_ENOTFOUND, "pin: not found");
	is_int(keytab_remove(kt, K("a"), 0, NULL), KVN_ENOTFOUND, "remove: not found");
	is_int(keytab_lease(kt, K("b"), 0, 99, 10, &id, NULL), 0, "lease judges by its own now: b ok");
	is_int(keytab_evict_pick(kt, 100, vic, 4), 2, "evict_pick skips expired a, leased b");
	ok(vic[0].key[0] == 'c' && vic[1].key[0] == 'n', "c and n");
	is_int(keytab_expire(kt, 100, on_free, &f, 10), 1, "expire at 100: one");
	ok(f.n == 1 && strcmp(f.key[0], "a") == 0, "a, seen by fn");
	ok(kstats(kt).expired == 1 && kstats(kt).keys == 4 && used_pages(a) == 3, "counted, a's page freed");
	now = 500;
	is_int(keytab_expire(kt, 500, on_free, &f, 1), 1, "max 1");
	is_int(keytab_expire(kt, 500, on_free, &f, 10), 2, "then the rest due");
	ok(f.n == 4 && f.key[3][0] == 'c', "earliest first: c last");
	ok(hook.n == 1 && hook.key[0][0] == 'd', "the disk-only one reported to the free hook");
	ok(kstats(kt).doomed == 1 && used_pages(a) == 2, "leased b doomed, its page kept");
	is_int(keytab_release(kt, id), 0, "release b");
	ok(used_pages(a) == 1 && kstats(kt).expired == 4 && kstats(kt).keys == 1, "only n left");
	is_int(keytab_expire(kt, UINT64_MAX, NULL, NULL, 10), 0, "n never expires");
	/* a new put over an expired one supersedes it as usual */
	at.expires_ms = 600;
	is_int(put_a(kt, a, "e", 1, PS, &at), 0, "e expires at 600");
	now = 700;
	is_int(put(kt, a, "e", 2, PS), 0, "gen 2 over expired gen 1");
	is_int(keytab_lookup(kt, K("e"), 0, NULL), 0, "gen 2 readable");
	is_int(keytab_expire(kt, 700, NULL, NULL, 10), 0, "nothing left to expire");
	kvn_clock_virtual(NULL);
	keytab_free(kt);
	is_int(used_pages(a), 0, "all back");
	alloc_arena_free(a);
}

struct tiers {
	int n, dram, disk, both, ok;
};

static void on_view(void *arg, const struct keytab_view *v)
{
	struct tiers *t = arg;
	t->n++;
	t->dram += v->in_dram && !v->on_disk;
	t->disk += !v->in_dram && v->on_disk;
	t->both += v->in_dram && v->on_disk;
	t->ok += v->state == KEYTAB_COMMITTED && v->klen == 1 && v->checksum == v->gen * 10 &&
		 v->tier == (v->in_dram ? KEYTAB_DRAM : KEYTAB_DISK);
}

static void t_foreach_view(void)
{
	struct alloc_arena *a = arena(16);
	struct keytab *kt = keytab_new(a);
	struct keytab_attrs at = { 0 };
	struct tiers t = { 0 };

	at.checksum = 10;
	is_int(put_a(kt, a, "a", 1, PS, &at), 0, "a in DRAM");
	at.checksum = 20;
	is_int(put_a(kt, a, "b", 2, PS, &at), 0, "b");
	is_int(keytab_offload_begin(kt, K("b"), 2, NULL) || keytab_offload_done(kt, K("b"), 2, 1), 0,
	       "b offloaded: both tiers");
	at.checksum = 30;
	is_int(keytab_disk_add(kt, K("c"), 3, 5, &at), 0, "c on disk only");
	is_int(keytab_begin(kt, K("d"), 1, PS, 0, 100, NULL, NULL), 0, "d pending");
	keytab_foreach_view(kt, on_view, &t);
	ok(t.n == 3 && t.dram == 1 && t.disk == 1 && t.both == 1 && t.ok == 3,
	   "three committed views, one per tier combination, with their checksums");
	keytab_free(kt);
	alloc_arena_free(a);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "attrs_view", t_attrs_view },
		{ "offload", t_offload },
		{ "offload_superseded", t_offload_superseded },
		{ "drop_dram_refused", t_drop_dram_refused },
		{ "promote", t_promote },
		{ "disk_add", t_disk_add },
		{ "pins", t_pins },
		{ "evict_pick", t_evict_pick },
		{ "expire", t_expire },
		{ "foreach_view", t_foreach_view },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN);
	return tap_run(tests, argc, argv);
}
