/*
 * t/keytab_model: the peer's key table driven by a long random sequence of
 * begin, commit, abort, lease, release, remove, reap, lease expiry, evict,
 * supersede (the master's DROP_GEN, with its tombstone), and the tier calls:
 * pin, unpin, expire_pins, offload_begin/done, drop_dram, promote/done,
 * disk_add, evict_pick + evict_one, expire; checked against a model after
 * every step: each result, the stats, evictable bytes, the arena's used
 * pages equal to those the model's slots hold, the free hook called exactly
 * once per on-disk generation that leaves, the bytes under every lease, pin
 * and offload intact, and no DRAM-only queue item ever dropped.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include "tap.h"

#include "keytab_model.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void t_random_model(void)
{
	struct alloc_arena *a = arena(MPAGES);
	struct keytab *kt = keytab_new(a);
	int bad_rc = 0, bad_used = 0, bad_stats = 0, bad_data = 0, bad_evict = 0, bad_hook = 0;
	int bad_pick = 0, bad_expire = 0, bad_held = 0, bad_evictable = 0;
	int first_bad = -1, ops[21] = { 0 }, stale_commits = 0, doomed_steps = 0;
	int overwritten = 0, seen_overwritten = 0, tomb_steps = 0, hooks = 0;
	char key[3];

	now = 0;
	kvn_clock_virtual(&now);
	keytab_set_disk_free_fn(kt, on_disk_free, NULL);
	memset(ms, 0, sizeof ms);
	memset(ml, 0, sizeof ml);
	memset(&mst, 0, sizeof mst);
	for (int step = 0; step < 80000; step++) {
		int op = (int)(rnd() % 20), k = (int)(rnd() % MK), want = 0, got = 0, i;
		if (op == 7 && rnd() % 3 == 0)
			op = 20; /* a third of the removes supersede instead */
		mkey(key, k);
		now += rnd() % 8;
		nhk_want = nhk_got = 0;
		ops[op]++;
		switch (op) {
		case 0:
		case 1: { /* begin: mostly a new gen, sometimes an old one */
			uint64_t gen = rnd() % 5 == 0 && m_maxgen[k] ? 1 + rnd() % m_maxgen[k]
								     : ++m_maxgen[k];
			uint64_t size = rnd() % (9 * PS), pages = (size + PS - 1) / PS;
			int c = m_find(k, M_COMMITTED, 0);
			struct keytab_view v;
			struct keytab_attrs at = { .checksum = gen, .flags = rnd() % 4 ? 0 : KEYTAB_F_QUEUE,
						   .expires_ms = rnd() % 4 ? 0 : now + rnd() % 300 };
			if ((c >= 0 && ms[c].gen == gen) || m_find(k, M_PENDING, gen) >= 0)
				want = KVN_EEXIST;
			else if (c >= 0 && ms[c].gen > gen)
				want = KVN_ESTALE;
			else if (pages > MPAGES - m_used())
				want = KVN_ENOSPC;
			uint64_t ttl = 20 + rnd() % 100;
			got = keytab_begin(kt, key, 3, gen, size, now, ttl, &at, &v);
			if (got == 0 && want == 0) {
				for (i = 0; i < MS && ms[i].state != M_FREE; i++)
					;
				if (i == MS)
					kvn_fatal("model out of slots");
				ms[i] = (struct mslot){ .state = M_PENDING, .key = k, .gen = gen, .size = size,
							.pages = pages, .deadline = now + ttl,
							.queue = at.flags != 0, .expires = at.expires_ms };
				m_take_ext(i, &v);
				fill(a, &v, seed_of(i));
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
				mst.refused++;
			} else if (c >= 0 && ms[c].gen > gen) {
				want = 0; /* overwritten on arrival: freed, still a success */
				m_free(i);
				overwritten++;
			} else {
				if (c >= 0)
					m_retire(c);
				ms[i].state = M_COMMITTED;
				ms[i].in_dram = 1;
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
				mst.refused++;
			} else {
				m_free(i);
			}
			got = keytab_abort(kt, key, 3, gen);
			break;
		}
		case 4: { /* lookup, any gen or a guessed one */
			uint64_t gen = rnd() % 2 ? 0 : 1 + rnd() % (m_maxgen[k] + 1);
			struct keytab_view v;
			int c = m_find(k, M_COMMITTED, 0);
			if (!(want = m_expect(k, c, gen)))
				ms[c].touch = m_lru(c) ? ++m_touch : ms[c].touch;
			got = keytab_lookup(kt, key, 3, gen, &v);
			if (got == 0 && want == 0 &&
			    (v.gen != ms[c].gen || v.in_dram != ms[c].in_dram || v.on_disk != ms[c].on_disk ||
			     v.pins != (uint32_t)ms[c].pins || v.offloading != ms[c].offloading ||
			     v.checksum != ms[c].gen || (v.in_dram ? !check(a, &v, seed_of(c)) : v.next != 0)))
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
				if (m_lru(c))
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
				mst.refused++;
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
		case 20: { /* supersede: mostly the committed gen, else a guess */
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
					if (m_lru(i) && ms[i].leases == 0 && !(ms[i].queue && !ms[i].on_disk) &&
					    (best < 0 || ms[i].touch < ms[best].touch))
						best = i;
				if (best < 0 || pred.n == 16)
					break;
				pred.key[pred.n] = ms[best].key;
				pred.gen[pred.n++] = ms[best].gen;
				freep += ms[best].pages;
				m_retire(best);
				mst.evicted++;
			}
			keytab_evict(kt, bytes, rec_victim, &seen);
			if (seen.n != pred.n || memcmp(seen.key, pred.key, sizeof(int) * (size_t)pred.n) ||
			    memcmp(seen.gen, pred.gen, sizeof(uint64_t) * (size_t)pred.n))
				bad_evict++;
			break;
		}
		case 9: /* the timers: reaper, lease expiry, pin expiry */
			want = 0;
			for (i = 0; i < MS; i++)
				if (ms[i].state == M_PENDING && now >= ms[i].deadline) {
					m_free(i);
					want++;
					mst.reaped++;
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
					mst.lease_expired++;
				}
			got = keytab_expire_leases(kt, now);
			if (got != want)
				bad_rc++;
			/* the table walks its pinned list, most recently pinned
			 * first, and each unpinned slot becomes the hottest */
			for (want = 0;; want++) {
				int p = -1;
				for (i = 0; i < MS; i++)
					if (ms[i].state == M_COMMITTED && ms[i].pins && now >= ms[i].pin_dl &&
					    (p < 0 || ms[i].pinseq > ms[p].pinseq))
						p = i;
				if (p < 0)
					break;
				ms[p].pins = 0;
				ms[p].touch = ++m_touch;
				mst.pin_expired++;
			}
			got = keytab_expire_pins(kt, now);
			break;
		default:
			want = tier_step(kt, a, op, k, key, &got, &bad_pick, &bad_expire);
			break;
		}
		bad_rc += got != want;
		bad_used += used_pages(a) != m_used();
		/* the free hook: exactly the on-disk slots the model freed */
		qsort(hk_want, (size_t)nhk_want, sizeof hk_want[0], cmp_u64);
		qsort(hk_got, (size_t)nhk_got, sizeof hk_got[0], cmp_u64);
		if (nhk_want != nhk_got || memcmp(hk_want, hk_got, (size_t)nhk_got * sizeof hk_got[0]))
			bad_hook++;
		hooks += nhk_got;
		for (int h = 0; h < nhk_got; h++)
			bad_hook_committed += m_find((int)(hk_got[h] >> 48), M_COMMITTED,
						     hk_got[h] & 0xffffffffffffull) >= 0;
		if ((got != want || used_pages(a) != m_used() || nhk_want != nhk_got) && first_bad++ < 0)
			tap_diag("step %d op %d key %d: got %d want %d; arena %" PRIu64
				 " pages, model %" PRIu64 "; hooks %d want %d",
				 step, op, k, got, want, used_pages(a), m_used(), nhk_got, nhk_want);
		stale_commits += op == 2 && got == 0 && overwritten > seen_overwritten;
		seen_overwritten = overwritten;
		/* no page freed under a lease, a pin or an offload: their bytes
		 * are still their own (every 4th step: it reads the arena) */
		if (step % 4 == 0)
			for (i = 0; i < MS; i++)
				if ((ms[i].state == M_COMMITTED || ms[i].state == M_DOOMED) && ms[i].in_dram &&
				    (ms[i].leases || ms[i].pins || ms[i].offloading) && !m_pages_intact(a, i))
					bad_held++;
		struct keytab_stats st = kstats(kt), m = mst;
		uint64_t tombs = 0, lru = 0, lruq = 0;
		for (i = 0; i < MK; i++)
			tombs += m_tomb[i] != 0;
		for (i = 0; i < MS; i++) {
			int com = ms[i].state == M_COMMITTED;
			m.keys += com;
			m.pending += ms[i].state == M_PENDING;
			m.pending_bytes += ms[i].state == M_PENDING ? ms[i].pages * PS : 0;
			m.doomed += ms[i].state == M_DOOMED;
			m.committed_bytes += com ? ms[i].size : 0;
			m.dram_bytes += com && ms[i].in_dram ? ms[i].pages * PS : 0;
			m.disk_keys += com && ms[i].on_disk;
			m.disk_bytes += com && ms[i].on_disk ? ms[i].size : 0;
			m.pinned += com && ms[i].pins;
			m.offloading += (com || ms[i].state == M_DOOMED) && ms[i].offloading;
			lru += m_lru(i) ? ms[i].pages * PS : 0;
			lruq += m_lru(i) && ms[i].queue && !ms[i].on_disk ? ms[i].pages * PS : 0;
		}
		for (i = 0; i < nml; i++)
			m.leases += ml[i].active;
		m.tombs = tombs;
		m.max_gen = st.max_gen; /* not modelled */
		if (memcmp(&st, &m, sizeof st)) {
			if (bad_stats++ == 0)
				tap_diag("stats differ at step %d op %d", step, op);
		}
		bad_evictable += keytab_evictable_bytes(kt, 1) != lru || keytab_evictable_bytes(kt, 0) != lru - lruq;
		tomb_steps += tombs > 0;
		doomed_steps += m.doomed > 0;
	}
	tap_diag("ops: begin %d commit %d abort %d lookup %d lease %d release %d remove %d evict %d "
		 "timers %d supersede %d expire %d pin %d unpin %d offload %d/%d drop %d promote %d/%d "
		 "disk_add %d pick %d; steps with a tombstone %d, free hook calls %d",
		 ops[0] + ops[1], ops[2], ops[3], ops[4], ops[5], ops[6], ops[7], ops[8], ops[9], ops[20],
		 ops[10], ops[11], ops[12], ops[13], ops[14], ops[15], ops[16], ops[17], ops[18], ops[19],
		 tomb_steps, hooks);
	struct keytab_stats st = kstats(kt);
	ok(st.refused > 100 && st.reaped > 100 && st.evicted > 100 && st.lease_expired > 100 &&
		   stale_commits > 10 && doomed_steps > 100 && tomb_steps > 100,
	   "every path ran (refused %" PRIu64 ", reaped %" PRIu64 ", evicted %" PRIu64
	   ", expired %" PRIu64 ", stale commits %d, steps with doomed slots %d)",
	   st.refused, st.reaped, st.evicted, st.lease_expired, stale_commits, doomed_steps);
	ok(st.offloaded > 100 && st.dropped_dram > 100 && st.promoted > 100 && st.expired > 100 &&
		   st.pin_expired > 100 && st.pins > 100 && hooks > 100,
	   "every tier path ran (offloaded %" PRIu64 ", dropped %" PRIu64 ", promoted %" PRIu64
	   ", expired %" PRIu64 ", pin_expired %" PRIu64 ", free hook %d)",
	   st.offloaded, st.dropped_dram, st.promoted, st.expired, st.pin_expired, hooks);
	is_int(bad_rc, 0, "every result as the model predicts");
	is_int(bad_used, 0, "arena used pages = pages the model's slots hold, every step");
	is_int(bad_stats, 0, "stats equal the model, every step");
	is_int(bad_data, 0, "lookups read their own generation's bytes and tiers");
	is_int(bad_evict, 0, "keytab_evict victims as predicted (LRU; leased, pinned, queue skipped)");
	is_int(bad_pick, 0, "evict_pick victims and evict_one results as predicted");
	is_int(bad_expire, 0, "keytab_expire took expired values, earliest first");
	is_int(bad_hook, 0, "the free hook ran exactly once per on-disk generation that left");
	is_int(bad_hook_committed, 0, "never for a generation still committed");
	is_int(bad_held, 0, "no page freed under a lease, pin or offload");
	is_int(bad_queue, 0, "no DRAM-only queue item dropped");
	is_int(bad_evictable, 0, "evictable bytes equal the model's, every step");
	keytab_free(kt);
	is_int(used_pages(a), 0, "keytab_free returned everything");
	kvn_clock_virtual(NULL);
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
