/* t/local_model: a model of same-host reads against lease expiry (issue
 * 17).  An arena and a key table in this process stand for the peer, the
 * arena wrapped as a one-sided region (net_region_wrap: no fd, no socket,
 * as an embedded client sees it) for the readers.  Seeded random schedules
 * interleave puts, removes and evictions (which reuse pages), reads that
 * take a lease and then copy their extents a chunk at a time, clock steps
 * and lease expiry.  At the end of every read the client's rule decides:
 * keep the copy only if its XXH3-64 is the leased value's checksum.
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

struct reader {
	int on;
	int key;
	uint64_t gen, lease, size, sum, deadline, copied;
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
	uint64_t reads, kept, refused, kept_late, safety_bad, liveness_bad, puts;
};

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

static void read_end(struct keytab *kt, struct reader *r, uint64_t now, int expired_seen, struct totals *t)
{
	int keep = kvn_xxh3(r->buf, r->size) == r->sum;
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
		if (!expired_seen)
			t->liveness_bad++;
	}
	(void)now;
	(void)keytab_release(kt, r->lease);
	free(want);
	free(r->buf);
	r->on = 0;
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
					read_end(kt, &rd[i], now, expired[i], t);
			}
			break;
		case 6:
			now += rnd() % 8;
			break;
		case 7:
			/* the peer's lease tick: expired leases are released and
			 * their pages may be reused from here on */
			for (int j = 0; j < NREAD; j++)
				if (rd[j].on && now >= rd[j].deadline)
					expired[j] = 1;
			(void)keytab_expire_leases(kt, now);
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
	tap_diag("%llu puts, %llu reads: %llu kept (%llu after their lease ran out), %llu refused",
		 (unsigned long long)t.puts, (unsigned long long)t.reads, (unsigned long long)t.kept,
		 (unsigned long long)t.kept_late, (unsigned long long)t.refused);
	ok(t.reads > 1000, "many reads were modelled");
	is_int(t.safety_bad, 0, "safety: every copy kept is exactly the leased generation's bytes");
	is_int(t.liveness_bad, 0, "liveness: every read whose lease held to the end was kept");
	ok(t.refused > 0, "the race happened: copies whose pages were reused mid-copy were refused");
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
