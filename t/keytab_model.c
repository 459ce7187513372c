/*
 * t/keytab_model: the peer's key table driven by a long random sequence of
 * begin, commit, abort, lease, release, remove, reap, expire, evict and
 * supersede (the master's DROP_GEN, with its tombstone),
 * checked against a model after every step: each result, the stats, and the
 * arena's used pages equal to those of live and doomed slots.
 */
#include "config.h"

#include <stdbool.h>

#include "tap.h"

#include "keytab_env.h"

/* ---- randomized against a model ------------------------------------------ */

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64*, fixed seed */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

#define MK 6    /* keys */
#define MS 512   /* model slots */
#define ML 512   /* model leases */
#define MPAGES 96

enum { M_FREE = 0, M_PENDING, M_COMMITTED, M_DOOMED };

struct mslot {
	int state, key, leases;
	uint64_t gen, size, pages, deadline, touch;
};
struct mlease {
	int active, slot;
	uint64_t id, deadline;
};

static struct mslot ms[MS];
static struct mlease ml[ML];
static int nml;
static uint64_t m_maxgen[MK], m_touch, m_refused, m_reaped, m_evicted, m_expired;
/* tombstones (keytab_supersede): gen (0 none) and deadline per key; one TTL,
 * as the peer uses, so deadlines follow the order they were set in */
#define TOMB_TTL 40
static uint64_t m_tomb[MK], m_tomb_dl[MK];

static int m_find(int key, int state, uint64_t gen)
{
	for (int i = 0; i < MS; i++)
		if (ms[i].state == state && ms[i].key == key && (gen == 0 || ms[i].gen == gen))
			return i;
	return -1;
}

static uint64_t m_used(void)
{
	uint64_t u = 0;
	for (int i = 0; i < MS; i++)
		if (ms[i].state != M_FREE)
			u += ms[i].pages;
	return u;
}

/* What lookup, lease and remove answer for key k, its committed slot c and
 * gen. */
static int m_expect(int k, int c, uint64_t gen)
{
	if (c < 0) /* one gen asked for and none held: the master decides */
		return gen || m_tomb[k] ? KVN_ESTALE : KVN_ENOTFOUND;
	return gen && ms[c].gen != gen ? KVN_ESTALE : 0;
}

static void m_retire(int i)
{
	ms[i].state = ms[i].leases ? M_DOOMED : M_FREE;
}

static void m_lease_drop(int j)
{
	int i = ml[j].slot;
	ml[j].active = 0;
	if (--ms[i].leases == 0 && ms[i].state == M_DOOMED)
		ms[i].state = M_FREE;
}

static void mkey(char *buf, int k)
{
	buf[0] = 'k';
	buf[1] = 0; /* binary keys throughout */
	buf[2] = (char)('a' + k);
}

struct victims {
	int n;
	int key[MK];
	uint64_t gen[MK];
};

static void rec_victim(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct victims *v = arg;
	(void)size;
	if (v->n < MK && klen == 3) {
		v->key[v->n] = ((const char *)key)[2] - 'a';
		v->gen[v->n] = gen;
		v->n++;
	}
}

static void t_random_model(void)
{
	struct alloc_arena *a = arena(MPAGES);
	struct keytab *kt = keytab_new(a);
	uint64_t now = 0;
	int bad_rc = 0, bad_used = 0, bad_stats = 0, bad_data = 0, bad_evict = 0;
	int first_bad = -1, ops[11] = { 0 }, stale_commits = 0, doomed_steps = 0;
	int overwritten = 0, seen_overwritten = 0, tomb_steps = 0;
	char key[3];

	memset(ms, 0, sizeof ms);
	memset(ml, 0, sizeof ml);
	for (int step = 0; step < 40000; step++) {
		int op = (int)(rnd() % 10), k = (int)(rnd() % MK), want = 0, got = 0, i;
		if (op == 7 && rnd() % 3 == 0)
			op = 10; /* a third of the removes supersede instead */
		mkey(key, k);
		now += rnd() % 8;
		ops[op]++;
		switch (op) {
		case 0:
		case 1: { /* begin: mostly a new gen, sometimes an old one */
			uint64_t gen = rnd() % 5 == 0 && m_maxgen[k] ? 1 + rnd() % m_maxgen[k]
								     : ++m_maxgen[k];
			uint64_t size = rnd() % (9 * PS), pages = (size + PS - 1) / PS;
			int c = m_find(k, M_COMMITTED, 0);
			struct keytab_view v;
			if ((c >= 0 && ms[c].gen == gen) || m_find(k, M_PENDING, gen) >= 0)
				want = KVN_EEXIST;
			else if (c >= 0 && ms[c].gen > gen)
				want = KVN_ESTALE;
			else if (pages > MPAGES - m_used())
				want = KVN_ENOSPC;
			uint64_t ttl = 20 + rnd() % 100;
			got = keytab_begin(kt, key, 3, gen, size, now, ttl, NULL, &v);
			if (got == 0 && want == 0) {
				for (i = 0; i < MS && ms[i].state != M_FREE; i++)
					;
				if (i == MS)
					kvn_fatal("model out of slots");
				ms[i] = (struct mslot){ M_PENDING, k, 0, gen, size, pages, now + ttl, 0 };
				fill(a, &v, (uint8_t)(gen * 31 + (uint64_t)k));
			}
			break;
		}
		case 2: { /* commit a pending gen, or a random one */
			i = rnd() % 4 ? m_find(k, M_PENDING, 0) : -1;
			uint64_t gen = i >= 0 ? ms[i].gen : 1 + rnd() % (m_maxgen[k] + 1);
			i = m_find(k, M_PENDING, gen);
			int c = m_find(k, M_COMMITTED, 0);
			if (i < 0) {
				want = KVN_ESTATE;
				m_refused++;
			} else if (c >= 0 && ms[c].gen > gen) {
				want = 0; /* overwritten on arrival: freed, still a success */
				ms[i].state = M_FREE;
				overwritten++;
			} else {
				if (c >= 0)
					m_retire(c);
				ms[i].state = M_COMMITTED;
				ms[i].touch = ++m_touch;
				if (m_tomb[k] && m_tomb[k] < gen)
					m_tomb[k] = 0;
			}
			got = keytab_commit(kt, key, 3, gen, NULL);
			break;
		}
		case 3: { /* abort */
			i = m_find(k, M_PENDING, 0);
			uint64_t gen = i >= 0 && rnd() % 2 ? ms[i].gen : 1 + rnd() % (m_maxgen[k] + 1);
			i = m_find(k, M_PENDING, gen);
			if (i < 0) {
				want = KVN_ESTATE;
				m_refused++;
			} else {
				ms[i].state = M_FREE;
			}
			got = keytab_abort(kt, key, 3, gen);
			break;
		}
		case 4: { /* lookup, any gen or a guessed one */
			uint64_t gen = rnd() % 2 ? 0 : 1 + rnd() % (m_maxgen[k] + 1);
			struct keytab_view v;
			int c = m_find(k, M_COMMITTED, 0);
			if (!(want = m_expect(k, c, gen)))
				ms[c].touch = ++m_touch;
			got = keytab_lookup(kt, key, 3, gen, &v);
			if (got == 0 && c >= 0 &&
			    (v.gen != ms[c].gen || !check(a, &v, (uint8_t)(v.gen * 31 + (uint64_t)k))))
				bad_data++;
			break;
		}
		case 5: { /* lease */
			uint64_t gen = rnd() % 2 ? 0 : 1 + rnd() % (m_maxgen[k] + 1);
			uint64_t id = 0, ttl = 1 + rnd() % 30;
			int c = m_find(k, M_COMMITTED, 0);
			if (nml == ML)
				break;
			want = m_expect(k, c, gen);
			got = keytab_lease(kt, key, 3, gen, now, ttl, &id, NULL);
			if (got == 0 && want == 0) {
				ms[c].touch = ++m_touch;
				ms[c].leases++;
				ml[nml++] = (struct mlease){ 1, c, id, now + ttl };
			}
			break;
		}
		case 6: { /* release: a live lease, or a dead one */
			if (nml == 0)
				break;
			int j = (int)(rnd() % (uint64_t)nml);
			if (ml[j].active)
				m_lease_drop(j);
			else {
				want = KVN_ESTATE;
				m_refused++;
			}
			got = keytab_release(kt, ml[j].id);
			if (!ml[j].active && rnd() % 2)
				ml[j] = ml[--nml]; /* forget some dead ids */
			break;
		}
		case 7: { /* remove */
			uint64_t gen = rnd() % 2 ? 0 : 1 + rnd() % (m_maxgen[k] + 1);
			if (!(want = m_expect(k, m_find(k, M_COMMITTED, 0), gen))) {
				m_retire(m_find(k, M_COMMITTED, 0));
				m_tomb[k] = 0;
			}
			got = keytab_remove(kt, key, 3, gen, NULL);
			break;
		}
		case 10: { /* supersede: mostly the committed gen, else a guess */
			int c = m_find(k, M_COMMITTED, 0);
			uint64_t gen = c >= 0 && rnd() % 3 ? ms[c].gen : 1 + rnd() % (m_maxgen[k] + 1);
			if (c >= 0 && ms[c].gen > gen) {
				want = KVN_ESTALE;
			} else {
				want = KVN_ENOTFOUND;
				if (c >= 0 && ms[c].gen == gen) {
					m_retire(c);
					want = 0;
					c = -1;
				}
				if (c < 0) {
					m_tomb[k] = m_tomb[k] > gen ? m_tomb[k] : gen;
					m_tomb_dl[k] = now + TOMB_TTL;
				}
			}
			got = keytab_supersede(kt, key, 3, gen, now, TOMB_TTL);
			break;
		}
		case 8: { /* evict: predict the victims from the touch order */
			uint64_t bytes = (rnd() % (MPAGES / 2)) * PS;
			struct victims pred = { 0 }, seen = { 0 };
			uint64_t freep = MPAGES - m_used();
			while (freep * PS < bytes) {
				int best = -1;
				for (i = 0; i < MS; i++)
					if (ms[i].state == M_COMMITTED && ms[i].leases == 0 &&
					    (best < 0 || ms[i].touch < ms[best].touch))
						best = i;
				if (best < 0)
					break;
				pred.key[pred.n] = ms[best].key;
				pred.gen[pred.n++] = ms[best].gen;
				freep += ms[best].pages;
				ms[best].state = M_FREE;
				m_evicted++;
			}
			keytab_evict(kt, bytes, rec_victim, &seen);
			if (seen.n != pred.n || memcmp(seen.key, pred.key, sizeof(int) * (size_t)pred.n) ||
			    memcmp(seen.gen, pred.gen, sizeof(uint64_t) * (size_t)pred.n))
				bad_evict++;
			break;
		}
		case 9: /* the timers: reaper and lease expiry */
			want = 0;
			for (i = 0; i < MS; i++)
				if (ms[i].state == M_PENDING && now >= ms[i].deadline) {
					ms[i].state = M_FREE;
					want++;
					m_reaped++;
				}
			got = keytab_reap(kt, now, NULL, NULL);
			if (got != want)
				bad_rc++;
			for (int j = 0; j < MK; j++)
				if (m_tomb[j] && now >= m_tomb_dl[j])
					m_tomb[j] = 0;
			want = 0;
			for (int j = 0; j < nml; j++)
				if (ml[j].active && now >= ml[j].deadline) {
					m_lease_drop(j);
					want++;
					m_expired++;
				}
			got = keytab_expire_leases(kt, now);
			break;
		}
		bad_rc += got != want;
		bad_used += used_pages(a) != m_used();
		if ((got != want || used_pages(a) != m_used()) && first_bad++ < 0)
			tap_diag("step %d op %d key %d: got %d want %d; arena %" PRIu64
				 " pages, model %" PRIu64,
				 step, op, k, got, want, used_pages(a), m_used());
		stale_commits += op == 2 && got == 0 && overwritten > seen_overwritten;
		seen_overwritten = overwritten;
		struct keytab_stats st = kstats(kt);
		uint64_t keys = 0, pend = 0, pbytes = 0, doomed = 0, bytes = 0, leases = 0, tombs = 0;
		for (i = 0; i < MK; i++)
			tombs += m_tomb[i] != 0;
		for (i = 0; i < MS; i++) {
			keys += ms[i].state == M_COMMITTED;
			pend += ms[i].state == M_PENDING;
			pbytes += ms[i].state == M_PENDING ? ms[i].pages * alloc_page_size(a) : 0;
			doomed += ms[i].state == M_DOOMED;
			bytes += ms[i].state == M_COMMITTED ? ms[i].size : 0;
		}
		for (i = 0; i < nml; i++)
			leases += ml[i].active;
		if (st.keys != keys || st.pending != pend || st.pending_bytes != pbytes || st.doomed != doomed ||
		    st.committed_bytes != bytes || st.leases != leases || st.refused != m_refused ||
		    st.reaped != m_reaped || st.evicted != m_evicted || st.lease_expired != m_expired ||
		    st.tombs != tombs)
			bad_stats++;
		tomb_steps += tombs > 0;
		doomed_steps += doomed > 0;
	}
	tap_diag("ops: begin %d commit %d abort %d lookup %d lease %d release %d remove %d evict %d "
		 "timers %d supersede %d; steps with a tombstone %d",
		 ops[0] + ops[1], ops[2], ops[3], ops[4], ops[5], ops[6], ops[7], ops[8], ops[9], ops[10],
		 tomb_steps);
	struct keytab_stats st = kstats(kt);
	ok(st.refused > 100 && st.reaped > 100 && st.evicted > 100 && st.lease_expired > 100 &&
		   stale_commits > 10 && doomed_steps > 100 && tomb_steps > 100,
	   "every path ran (refused %" PRIu64 ", reaped %" PRIu64 ", evicted %" PRIu64
	   ", expired %" PRIu64 ", stale commits %d, steps with doomed slots %d)",
	   st.refused, st.reaped, st.evicted, st.lease_expired, stale_commits, doomed_steps);
	is_int(bad_rc, 0, "every result as the model predicts");
	is_int(bad_used, 0, "arena used pages = pages of live + doomed slots, every step");
	is_int(bad_stats, 0, "stats equal the model, every step");
	is_int(bad_data, 0, "lookups read their own generation's bytes");
	is_int(bad_evict, 0, "eviction victims as predicted (LRU, leased skipped)");
	keytab_free(kt);
	is_int(used_pages(a), 0, "keytab_free returned everything");
	alloc_arena_free(a);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "random_model", t_random_model },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN);
	return tap_run(tests, argc, argv);
}
