/*
 * t/keytab_model_m: the model of the peer's key table that t/keytab_model
 * checks it against: its slots, leases, tombstones and counters, what each
 * call answers and changes, and the random steps of the tier calls (pin,
 * offload, drop_dram, promote, disk_add, evict_pick + evict_one, expire).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "tap.h"

#include "keytab_model.h"

uint64_t rng_state = 0x243f6a8885a308d3ull;
uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64*, fixed seed */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

struct mslot ms[MS];
struct mlease ml[ML];
int nml;
uint64_t now, m_maxgen[MK], m_touch, m_doomseq, m_pinseq;
/* the model's counters, named as the stats */
struct keytab_stats mst;
uint64_t m_tomb[MK], m_tomb_dl[MK];
/* free hook calls: expected (the model freed an on-disk slot) and seen,
 * as key << 48 | gen, compared each step */
uint64_t hk_want[64], hk_got[64];
int nhk_want, nhk_got, bad_hook_committed;
int bad_queue; /* a DRAM-only queue item dropped */

uint8_t seed_of(int i)
{
	return (uint8_t)(ms[i].gen * 31 + (uint64_t)ms[i].key);
}

int m_find(int key, int state, uint64_t gen)
{
	for (int i = 0; i < MS; i++)
		if (ms[i].state == state && ms[i].key == key && (gen == 0 || ms[i].gen == gen))
			return i;
	return -1;
}

/* The slot an offload (promoting 0) or promotion of (key, gen) is under way
 * on, as the table finds it: the committed one, else the most recently
 * doomed. */
int m_busy(int key, uint64_t gen, int promoting)
{
	int c = m_find(key, M_COMMITTED, gen), best = -1;
	if (c >= 0 && (promoting ? ms[c].promoting : ms[c].offloading))
		return c;
	for (int i = 0; i < MS; i++)
		if (ms[i].state == M_DOOMED && ms[i].key == key && ms[i].gen == gen &&
		    (promoting ? ms[i].promoting : ms[i].offloading) &&
		    (best < 0 || ms[i].doomseq > ms[best].doomseq))
			best = i;
	return best;
}

uint64_t m_held(int i)
{
	if (ms[i].state == M_PENDING)
		return ms[i].pages;
	if (ms[i].state == M_COMMITTED || ms[i].state == M_DOOMED)
		return ms[i].in_dram || ms[i].promoting ? ms[i].pages : 0;
	return 0;
}

uint64_t m_used(void)
{
	uint64_t u = 0;
	for (int i = 0; i < MS; i++)
		u += m_held(i);
	return u;
}

int m_expired(int i)
{
	return ms[i].expires && now >= ms[i].expires;
}

int m_lru(int i)
{
	return ms[i].state == M_COMMITTED && ms[i].in_dram && !ms[i].pins && !ms[i].offloading;
}

/* What lookup, lease, remove and the tier calls answer for key k, its
 * committed slot c and gen. */
int m_expect(int k, int c, uint64_t gen)
{
	if (c < 0) /* one gen asked for and none held: the master decides */
		return gen || m_tomb[k] ? KVN_ESTALE : KVN_ENOTFOUND;
	if (m_expired(c))
		return gen > ms[c].gen ? KVN_ESTALE : KVN_ENOTFOUND;
	return gen && ms[c].gen != gen ? KVN_ESTALE : 0;
}

void m_free(int i)
{
	if (ms[i].on_disk && nhk_want < 64)
		hk_want[nhk_want++] = (uint64_t)ms[i].key << 48 | ms[i].gen;
	ms[i].state = M_FREE;
}

void m_retire(int i)
{
	ms[i].pins = 0;
	if (ms[i].leases || ms[i].offloading || ms[i].promoting) {
		ms[i].state = M_DOOMED;
		ms[i].doomseq = ++m_doomseq;
	} else {
		m_free(i);
	}
}

void m_doomed_check(int i)
{
	if (ms[i].state == M_DOOMED && !ms[i].leases && !ms[i].offloading && !ms[i].promoting)
		m_free(i);
}

void m_lease_drop(int j)
{
	int i = ml[j].slot;
	ml[j].active = 0;
	ms[i].leases--;
	m_doomed_check(i);
}

void mkey(char *buf, int k)
{
	buf[0] = 'k';
	buf[1] = 0; /* binary keys throughout */
	buf[2] = (char)('a' + k);
}

int key_of(const void *key, size_t klen)
{
	return klen == 3 ? ((const char *)key)[2] - 'a' : -1;
}

void on_disk_free(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	int k = key_of(key, klen);
	(void)arg;
	(void)size;
	if (nhk_got < 64)
		hk_got[nhk_got++] = (uint64_t)(k < 0 ? 0 : k) << 48 | gen;
}

void rec_victim(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct victims *v = arg;
	(void)size;
	if (v->n < 16) {
		v->key[v->n] = key_of(key, klen);
		v->gen[v->n++] = gen;
	}
}

/* The bytes at the start of each page of slot i are still its own. */
int m_pages_intact(struct alloc_arena *a, int i)
{
	uint64_t off = 0;
	uint8_t seed = seed_of(i);
	for (int e = 0; e < ms[i].next; e++)
		for (uint32_t p = 0; p < ms[i].ext[e].npages; p++, off += PS) {
			if (off >= ms[i].size)
				return 1;
			uint8_t b = (uint8_t)(seed + off * 7 + (off >> 12));
			if (*(uint8_t *)alloc_addr(a, ms[i].ext[e].page + p) != b)
				return 0;
		}
	return 1;
}

void m_take_ext(int i, const struct keytab_view *v)
{
	if (v->next > MEXT)
		kvn_fatal("model: %d extents", v->next);
	ms[i].next = v->next;
	memcpy(ms[i].ext, v->ext, (size_t)v->next * sizeof v->ext[0]);
}

/* evict_one's answer for (k, gen), the model updated. */
int m_evict_one(int k, uint64_t gen)
{
	int c = m_find(k, M_COMMITTED, 0), want = m_expect(k, c, gen);
	if (want)
		return want;
	if (!ms[c].in_dram) {
		mst.refused++;
		return KVN_ESTATE;
	}
	if (ms[c].leases || ms[c].pins || ms[c].offloading || (ms[c].queue && !ms[c].on_disk))
		return KVN_EHELD;
	m_retire(c);
	mst.evicted++;
	return 0;
}

/* offload_begin's answer for (k, gen), the model updated. */
int m_offload_begin(int k, uint64_t gen)
{
	int c = m_find(k, M_COMMITTED, 0), want = m_expect(k, c, gen);
	if (want)
		return want;
	if (!ms[c].in_dram) {
		mst.refused++;
		return KVN_ESTATE;
	}
	if (ms[c].on_disk)
		return KVN_EEXIST;
	if (ms[c].offloading)
		return KVN_EBUSY;
	if (ms[c].pins)
		return KVN_EHELD;
	ms[c].offloading = 1;
	return 0;
}

/* drop_dram's answer for (k, gen), the model updated. */
int m_drop_dram(int k, uint64_t gen)
{
	int c = m_find(k, M_COMMITTED, 0), want = m_expect(k, c, gen);
	if (want)
		return want;
	if (!ms[c].in_dram) {
		mst.refused++;
		return KVN_ESTATE;
	}
	if (ms[c].leases || ms[c].pins || ms[c].offloading)
		return KVN_EHELD;
	if (!ms[c].on_disk) {
		mst.refused++;
		return KVN_ESTATE;
	}
	ms[c].in_dram = 0;
	ms[c].next = 0;
	mst.dropped_dram++;
	return 0;
}

/* One step of the tier calls (ops 11..19); returns want, sets *got. */
int tier_step(struct keytab *kt, struct alloc_arena *a, int op, int k, char *key, int *got,
		     int *bad_pick, int *bad_expire)
{
	int want = 0, c, i;

	/* mostly a key with a committed value, or (for the *_done calls) one
	 * with an offload / promotion under way, so the paths past the
	 * lookup run often */
	for (int t = 0; t < MK && rnd() % 4; t++) {
		int kk = (k + t) % MK, hit = 0;
		for (i = 0; i < MS && !hit; i++)
			if (ms[i].key == kk && ms[i].state != M_FREE)
				hit = op == 14 ? ms[i].offloading : op == 17 ? ms[i].promoting
									 : ms[i].state == M_COMMITTED;
		if (hit) {
			k = kk;
			mkey(key, k);
			break;
		}
	}
	if (op == 18 && rnd() % 2)
		op = 13; /* disk_add half as often as the rest: offload more */
	c = m_find(k, M_COMMITTED, 0);
	uint64_t gen = c >= 0 && rnd() % 4 ? (rnd() % 4 ? 0 : ms[c].gen) : 1 + rnd() % (m_maxgen[k] + 1);
	struct keytab_view v;

	switch (op) {
	case 11: { /* pin */
		uint64_t ttl = rnd() % 60;
		if (!(want = m_expect(k, c, gen))) {
			uint64_t dl = now + ttl;
			if (ms[c].pins++ == 0) {
				ms[c].pin_dl = dl;
				ms[c].pinseq = ++m_pinseq;
				ms[c].touch = ++m_touch;
			} else if (dl > ms[c].pin_dl) {
				ms[c].pin_dl = dl;
			}
			mst.pins++;
		}
		*got = keytab_pin(kt, key, 3, gen, now, ttl);
		break;
	}
	case 12: /* unpin */
		if (!(want = m_expect(k, c, gen))) {
			if (!ms[c].pins) {
				want = KVN_ESTATE;
				mst.refused++;
			} else if (--ms[c].pins == 0) {
				ms[c].touch = ++m_touch;
			}
		}
		*got = keytab_unpin(kt, key, 3, gen);
		break;
	case 13: /* offload_begin */
		want = m_offload_begin(k, gen);
		*got = keytab_offload_begin(kt, key, 3, gen, &v);
		if (*got == 0 && want == 0 && (v.next != ms[c].next || !m_pages_intact(a, c))) {
			tap_diag("offload view: next %d model %d intact %d", v.next, ms[c].next, m_pages_intact(a, c));
			(*bad_pick)++;
		}
		break;
	case 14: { /* offload_done: mostly one under way */
		int ok = rnd() % 4 != 0;
		for (i = 0; i < MS; i++)
			if (ms[i].key == k && ms[i].offloading && (ms[i].state == M_COMMITTED || ms[i].state == M_DOOMED))
				break;
		if (i < MS && rnd() % 4)
			gen = ms[i].gen;
		if (gen == 0)
			gen = 1;
		i = m_busy(k, gen, 0);
		want = KVN_ESTATE;
		if (i < 0) {
			mst.refused++;
		} else if (ms[i].state == M_DOOMED) {
			ms[i].offloading = 0;
			mst.refused++;
			m_doomed_check(i);
		} else {
			ms[i].offloading = 0;
			want = 0;
			if (ok) {
				ms[i].on_disk = 1;
				mst.offloaded++;
			}
			ms[i].touch = ++m_touch;
		}
		*got = keytab_offload_done(kt, key, 3, gen, ok);
		break;
	}
	case 15: /* drop_dram */
		want = m_drop_dram(k, gen);
		*got = keytab_drop_dram(kt, key, 3, gen);
		break;
	case 16: /* promote */
		if (!(want = m_expect(k, c, gen))) {
			if (ms[c].in_dram)
				want = KVN_EEXIST;
			else if (ms[c].promoting)
				want = KVN_EBUSY;
			else if (ms[c].pages > MPAGES - m_used())
				want = KVN_ENOSPC;
			else
				ms[c].promoting = 1;
		}
		*got = keytab_promote(kt, key, 3, gen, &v);
		if (*got == 0 && want == 0) {
			m_take_ext(c, &v);
			fill(a, &v, seed_of(c));
		}
		break;
	case 17: { /* promote_done */
		int ok = rnd() % 4 != 0;
		for (i = 0; i < MS; i++)
			if (ms[i].key == k && ms[i].promoting && (ms[i].state == M_COMMITTED || ms[i].state == M_DOOMED))
				break;
		if (i < MS && rnd() % 4)
			gen = ms[i].gen;
		if (gen == 0)
			gen = 1;
		i = m_busy(k, gen, 1);
		want = KVN_ESTATE;
		if (i < 0) {
			mst.refused++;
		} else if (ms[i].state == M_DOOMED) {
			ms[i].promoting = 0;
			mst.refused++;
			m_doomed_check(i);
		} else {
			ms[i].promoting = 0;
			want = 0;
			if (ok) {
				ms[i].in_dram = 1;
				ms[i].touch = ++m_touch;
				mst.promoted++;
			} else {
				ms[i].next = 0;
			}
		}
		*got = keytab_promote_done(kt, key, 3, gen, ok);
		break;
	}
	case 18: { /* disk_add: mostly a new gen (restart recovery) */
		gen = rnd() % 5 == 0 && m_maxgen[k] ? 1 + rnd() % m_maxgen[k] : ++m_maxgen[k];
		uint64_t size = rnd() % (9 * PS);
		struct keytab_attrs at = { .checksum = gen, .flags = rnd() % 3 ? 0 : KEYTAB_F_QUEUE,
					   .expires_ms = rnd() % 4 ? 0 : now + rnd() % 200 };
		if ((c >= 0 && ms[c].gen == gen) || m_find(k, M_PENDING, gen) >= 0) {
			want = KVN_EEXIST;
		} else if (c >= 0 && ms[c].gen > gen) {
			want = KVN_ESTALE;
		} else {
			if (c >= 0)
				m_retire(c);
			for (i = 0; i < MS && ms[i].state != M_FREE; i++)
				;
			if (i == MS)
				kvn_fatal("model out of slots");
			ms[i] = (struct mslot){ .state = M_COMMITTED, .key = k, .gen = gen, .size = size,
						.pages = (size + PS - 1) / PS, .on_disk = 1,
						.queue = at.flags != 0, .expires = at.expires_ms,
						.touch = ++m_touch };
			if (m_tomb[k] && m_tomb[k] < gen)
				m_tomb[k] = 0;
		}
		*got = keytab_disk_add(kt, key, 3, gen, size, &at);
		break;
	}
	case 19: { /* evict_pick, then evict_one (or drop_dram) on each victim */
		size_t max = 1 + rnd() % 4, n = 0, looked = 0;
		struct keytab_victim vic[4];
		int order[MS], no = 0, pred[4];
		for (i = 0; i < MS; i++)
			if (m_lru(i))
				order[no++] = i;
		for (int x = 1; x < no; x++) /* coldest first */
			for (int y = x; y > 0 && ms[order[y]].touch < ms[order[y - 1]].touch; y--) {
				int t = order[y];
				order[y] = order[y - 1];
				order[y - 1] = t;
			}
		for (int x = 0; x < no && n < max && looked < 4 * max; x++) {
			int s = order[x];
			looked++;
			if (ms[s].leases)
				ms[s].touch = ++m_touch;
			else if (!m_expired(s))
				pred[n++] = s;
		}
		size_t got_n = keytab_evict_pick(kt, now, vic, max);
		want = (int)n;
		*got = (int)got_n;
		if (got_n != n) {
			tap_diag("pick: %zu want %zu (max %zu, %d on lru)", got_n, n, max, no);
			(*bad_pick)++;
			break;
		}
		for (size_t x = 0; x < n; x++) {
			int s = pred[x];
			if (vic[x].klen != 3 || key_of(vic[x].key, 3) != ms[s].key || vic[x].gen != ms[s].gen ||
			    vic[x].size != ms[s].size || vic[x].on_disk != ms[s].on_disk ||
			    vic[x].flags != (ms[s].queue ? KEYTAB_F_QUEUE : 0u)) {
				tap_diag("victim %zu: key %d gen %" PRIu64 " want key %d gen %" PRIu64, x,
						 key_of(vic[x].key, vic[x].klen), vic[x].gen, ms[s].key, ms[s].gen);
				(*bad_pick)++;
			}
		}
		for (size_t x = 0; x < n; x++) {
			int s = pred[x], vk = ms[s].key, queue_only = ms[s].queue && !ms[s].on_disk;
			char vkey[3];
			mkey(vkey, vk);
			/* as the peer's loop: values on disk leave DRAM, others
			 * go to disk or are dropped */
			int how = (int)(rnd() % 2), w, g;
			if (how && vic[x].on_disk) {
				w = m_drop_dram(vk, vic[x].gen);
				g = keytab_drop_dram(kt, vkey, 3, vic[x].gen);
				queue_only = 0;
			} else if (how) {
				w = m_offload_begin(vk, vic[x].gen);
				g = keytab_offload_begin(kt, vkey, 3, vic[x].gen, NULL);
				queue_only = 0;
			} else {
				w = m_evict_one(vk, vic[x].gen);
				g = keytab_evict_one(kt, vkey, 3, vic[x].gen);
			}
			if (g != w) {
				tap_diag("evict_one: %d want %d", g, w);
				(*bad_pick)++;
			}
			if (g == 0 && queue_only)
				bad_queue++;
		}
		break;
	}
	case 10: { /* expire, a few at a time */
		size_t max = 1 + rnd() % 3;
		struct victims seen = { 0 };
		int due = 0;
		for (i = 0; i < MS; i++)
			due += ms[i].state == M_COMMITTED && m_expired(i);
		want = due < (int)max ? due : (int)max;
		*got = keytab_expire(kt, now, rec_victim, &seen, max);
		uint64_t latest = 0;
		for (int x = 0; x < seen.n; x++) {
			int s = seen.key[x] >= 0 ? m_find(seen.key[x], M_COMMITTED, seen.gen[x]) : -1;
			if (s < 0 || !m_expired(s)) {
				(*bad_expire)++;
				continue;
			}
			latest = ms[s].expires > latest ? ms[s].expires : latest;
			m_retire(s);
			m_tomb[seen.key[x]] = 0;
			mst.expired++;
		}
		for (i = 0; i < MS; i++) /* earliest first: none left due before one taken */
			if (ms[i].state == M_COMMITTED && m_expired(i) && ms[i].expires < latest)
				(*bad_expire)++;
		break;
	}
	}
	return want;
}
