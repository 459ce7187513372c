/* t/local_model: a model of same-host reads against lease expiry (issue
 * 17).  An arena and a key table in this process stand for the peer, the
 * arena wrapped as a one-sided region (net_region_wrap: no fd, no socket,
 * as an embedded client sees it) for the readers.  Seeded random schedules
 * interleave puts, removes and evictions (which reuse pages), reads that
 * take a lease and then copy their extents a chunk at a time, clock steps
 * and lease expiry.  The peer's side of the stamp protocol is modelled as
 * peer_local.c does it: each lease gets a slot of a stamp region (a small
 * pool, so a slot freed by an expiry is soon another lease's) holding its
 * id; every lease is held (keytab_lease_hold), so the keytab's expiry only
 * reports it, and the stamp is cleared before the lease is released and
 * its pages may be reused.  At the end of every read the client's rule
 * (net_xfer_read_stamped, through a read-only view of the stamp region)
 * decides: keep the copy only if its stamp still names its lease.  The
 * checksum rule (client.local_verify = checksum) is checked alongside: it
 * must never refuse a copy the stamp kept.
 * Checked for every read of every schedule:
 *   safety: a kept copy is exactly the bytes of the generation leased;
 *   liveness: a read whose lease never ran out is always kept;
 * and, across the schedules, that the race was really exercised (copies
 * whose pages were reused under them were refused). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "net/xfer.h"
#include "store/store.h"
#include "tap.h"

#define PAGE 4096u
#define NPAGES 64u
#define NKEYS 4
#define NREAD 3
#define TTL_MS 20
#define STEPS 3000
#define SEEDS 100
#define NSLOT (NREAD + 1)

struct reader {
	int on;
	int key;
	uint64_t gen, lease, size, sum, deadline, copied;
	uint32_t slot;
	int ended; /* the lease ended (expired): its slot is not ours any more */
	struct net_extent ext[KEYTAB_MAX_EXT];
	int next;
	uint8_t *buf;
};

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* The bytes of generation gen: a function of gen alone. */
static void value_bytes(uint8_t *p, uint64_t size, uint64_t gen)
{
	uint64_t x = gen * 0x9e3779b97f4a7c15ull + 1;
	for (uint64_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

struct totals {
	uint64_t reads, kept, refused, kept_late, safety_bad, liveness_bad, puts, sum_disagrees, refused_reused;
};

/* The peer's stamp region (writable) and the client's view of it. */
static uint64_t stamp_words[NSLOT];
static struct net_region stamps, stamps_ro;
static uint32_t free_slot[NSLOT], nfree;
static int owner_mark; /* the holder of every lease, as p->local is */

/* The end of a lease, as peer_local.c's lease_end: stamp, then release. */
static void lease_end(struct keytab *kt, struct reader *r)
{
	if (net_stamp_set(&stamps, r->slot, NET_STAMP_NONE) != 0)
		kvn_fatal("stamp");
	(void)keytab_release(kt, r->lease);
	free_slot[nfree++] = r->slot;
	r->ended = 1;
}

static void put_one(struct keytab *kt, struct alloc_arena *a, int k, uint64_t *gen, uint64_t now, struct totals *t)
{
	char key[8];
	struct keytab_view v;
	uint64_t size = 1 + rnd() % (6 * PAGE);
	snprintf(key, sizeof key, "k%d", k);
	uint64_t g = ++*gen;
	uint8_t *tmp = malloc(size);
	value_bytes(tmp, size, g);
	struct keytab_attrs at = { .checksum = kvn_xxh3(tmp, size) };
	int rc = keytab_begin(kt, key, strlen(key), g, size, now, 1000, &at, &v);
	if (rc == KVN_ENOSPC) {
		(void)keytab_evict(kt, size + PAGE, NULL, NULL);
		rc = keytab_begin(kt, key, strlen(key), g, size, now, 1000, &at, &v);
	}
	if (rc == 0) {
		uint64_t off = 0;
		for (int e = 0; e < v.next; e++) {
			uint64_t len = (uint64_t)v.ext[e].npages * PAGE;
			if (len > size - off)
				len = size - off;
			memcpy(alloc_addr(a, v.ext[e].page), tmp + off, len);
			off += len;
		}
		if (keytab_commit(kt, key, strlen(key), g, NULL) == 0)
			t->puts++;
	}
	free(tmp);
}

static void read_start(struct keytab *kt, struct alloc_arena *a, struct reader *r, int k, uint64_t now)
{
	char key[8];
	struct keytab_view v;
	uint8_t *base = alloc_base(a, NULL);
	snprintf(key, sizeof key, "k%d", k);
	if (keytab_lease(kt, key, strlen(key), 0, now, TTL_MS, &r->lease, &v) != 0)
		return;
	if (!v.in_dram) {
		(void)keytab_release(kt, r->lease);
		return;
	}
	if (keytab_lease_hold(kt, r->lease, &owner_mark) != 0 || nfree == 0)
		kvn_fatal("hold / slot");
	r->slot = free_slot[--nfree];
	r->ended = 0;
	if (net_stamp_set(&stamps, r->slot, r->lease) != 0)
		kvn_fatal("stamp");
	r->on = 1;
	r->key = k;
	r->gen = v.gen;
	r->size = v.size;
	r->sum = v.checksum;
	r->deadline = now + TTL_MS;
	r->copied = 0;
	r->next = 0;
	uint64_t left = v.size;
	for (int e = 0; e < v.next && left > 0; e++) {
		uint64_t len = (uint64_t)v.ext[e].npages * PAGE;
		if (len > left)
			len = left;
		r->ext[r->next].off = (uint64_t)((uint8_t *)alloc_addr(a, v.ext[e].page) - base);
		r->ext[r->next++].len = len;
		left -= len;
	}
	r->buf = malloc(v.size ? v.size : 1);
}

/* Copy the next chunk of r's extents (a slow copy, interleaved). */
static void read_step(const struct net_region *reg, struct reader *r)
{
	uint64_t want = 1 + rnd() % (2 * PAGE), pos = 0;
	for (int e = 0; e < r->next && want > 0; e++) {
		uint64_t lo = pos, hi = pos + r->ext[e].len;
		pos = hi;
		if (r->copied >= hi)
			continue;
		uint64_t from = r->copied - lo, k = hi - r->copied;
		if (k > want)
			k = want;
		struct net_extent x = { .off = r->ext[e].off + from, .len = k };
		if (net_xfer_read(reg, &x, 1, r->buf + r->copied, r->size - r->copied) != 0)
			kvn_fatal("an extent outside the arena");
		r->copied += k;
		want -= k;
	}
}

static void read_end(struct keytab *kt, const struct net_region *reg, struct reader *r, uint64_t now, int expired_seen,
		     struct totals *t)
{
	/* nothing left to copy: only the stamp check runs */
	int keep = net_xfer_read_stamped(reg, NULL, 0, r->buf, 0, &stamps_ro, r->slot, r->lease) == 0;
	if (keep && kvn_xxh3(r->buf, r->size) != r->sum)
		t->sum_disagrees++;
	uint8_t *want = malloc(r->size ? r->size : 1);
	value_bytes(want, r->size, r->gen);
	t->reads++;
	if (keep) {
		t->kept++;
		if (memcmp(r->buf, want, r->size) != 0)
			t->safety_bad++;
		if (expired_seen)
			t->kept_late++;
	} else {
		t->refused++;
		if (memcmp(r->buf, want, r->size) != 0)
			t->refused_reused++;
		if (!expired_seen)
			t->liveness_bad++;
	}
	(void)now;
	if (!r->ended)
		lease_end(kt, r);
	free(want);
	free(r->buf);
	r->on = 0;
}

/* The keytab's expiry of a held lease: the peer's peer_local_expired. */
struct expiry {
	struct keytab *kt;
	struct reader *rd;
};
static void on_expired(void *arg, uint64_t lease_id, void *owner)
{
	struct expiry *x = arg;
	if (owner != &owner_mark)
		kvn_fatal("a lease of another owner");
	for (int j = 0; j < NREAD; j++)
		if (x->rd[j].on && !x->rd[j].ended && x->rd[j].lease == lease_id)
			lease_end(x->kt, &x->rd[j]);
}

static void run(uint64_t seed, struct totals *t)
{
	struct alloc_arena *a;
	if (alloc_arena_new(NPAGES * PAGE, PAGE, 0, &a) != 0)
		kvn_fatal("arena");
	struct keytab *kt = keytab_new(a);
	struct net_region reg;
	if (net_region_wrap(&reg, alloc_base(a, NULL), NPAGES * PAGE, NET_REGION_ARENA, 0) != 0)
		kvn_fatal("wrap");
	struct reader rd[NREAD] = { 0 };
	int expired[NREAD] = { 0 };
	struct expiry x = { kt, rd };
	memset(stamp_words, 0, sizeof stamp_words);
	if (net_region_wrap(&stamps, stamp_words, sizeof stamp_words, NET_REGION_STAMPS, 1) != 0 ||
	    net_region_wrap(&stamps_ro, stamp_words, sizeof stamp_words, NET_REGION_STAMPS, 0) != 0)
		kvn_fatal("wrap");
	for (nfree = 0; nfree < NSLOT; nfree++)
		free_slot[nfree] = nfree;
	uint64_t now = 1000, gen = 0;
	rng = seed * 2654435761u + 88172645463325252ull;
	for (int s = 0; s < STEPS; s++) {
		int i = (int)(rnd() % NREAD);
		switch (rnd() % 8) {
		case 0:
		case 1:
			put_one(kt, a, (int)(rnd() % NKEYS), &gen, now, t);
			break;
		case 2: {
			char key[8];
			snprintf(key, sizeof key, "k%d", (int)(rnd() % NKEYS));
			(void)keytab_remove(kt, key, strlen(key), 0, NULL);
			break;
		}
		case 3:
			if (!rd[i].on) {
				read_start(kt, a, &rd[i], (int)(rnd() % NKEYS), now);
				expired[i] = 0;
			}
			break;
		case 4:
		case 5:
			if (rd[i].on) {
				read_step(&reg, &rd[i]);
				if (rd[i].copied == rd[i].size)
					read_end(kt, &reg, &rd[i], now, expired[i], t);
			}
			break;
		case 6:
			now += rnd() % 8;
			break;
		case 7:
			/* the peer's lease tick: expired leases are stamped and
			 * released, their pages may be reused from here on */
			for (int j = 0; j < NREAD; j++)
				if (rd[j].on && now >= rd[j].deadline)
					expired[j] = 1;
			(void)keytab_expire_leases_fn(kt, now, on_expired, &x);
			break;
		}
	}
	for (int j = 0; j < NREAD; j++)
		if (rd[j].on) {
			free(rd[j].buf);
			rd[j].on = 0;
		}
	keytab_free(kt);
	alloc_arena_free(a);
}

static void t_model(void)
{
	struct totals t = { 0 };
	for (uint64_t seed = 1; seed <= SEEDS; seed++)
		run(seed, &t);
	tap_diag("%llu puts, %llu reads: %llu kept (%llu after their lease ran out), %llu refused (%llu of them "
		 "with reused bytes)",
		 (unsigned long long)t.puts, (unsigned long long)t.reads, (unsigned long long)t.kept,
		 (unsigned long long)t.kept_late, (unsigned long long)t.refused, (unsigned long long)t.refused_reused);
	ok(t.reads > 1000, "many reads were modelled");
	is_int(t.safety_bad, 0, "safety: every copy kept is exactly the leased generation's bytes");
	is_int(t.liveness_bad, 0, "liveness: every read whose lease held to the end was kept");
	ok(t.refused_reused > 0, "the race happened: copies whose pages were reused mid-copy were refused");
	is_int(t.sum_disagrees, 0, "the checksum rule never refuses a copy the stamp rule kept");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "model", t_model },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN); /* an arena per schedule: no line each */
	return tap_run(tests, argc, argv);
}
