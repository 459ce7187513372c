/*
 * t/sim: the deterministic fault simulation of kvnode (DESIGN.md section
 * 1).  Each seed runs 1 master, 3 peers and 3 clients in this process on
 * one virtual-time loop over the simulated network, with faults drawn from
 * the seed (dropped, delayed, duplicated and reordered messages; crash and
 * restart of the master or a peer; partitions), a workload of puts,
 * re-puts, gets and removes, and a checker that judges every run (t/sim.h
 * lists the rules).  A seed replays exactly:
 *
 *   KVN_SIM_SEED=<n> ./t/sim          one seed (KVN_SIM_VERBOSE=1: a trace)
 *   KVN_SIM_SEEDS=<count> ./t/sim     seeds 1..count (default 200)
 *   KVN_SIM_FIRST=<n>                 ... or n..n+count-1
 *   KVN_SIM_UNSAFE=1                  peers forget unacknowledged events
 *   KVN_SIM_UNSAFE=2                  a speculative GET's answer stands
 *                                     without comparing its generation
 *   KVN_SIM_UNSAFE=3                  some GETs reuse a stale route
 *   KVN_SIM_UNSAFE=4                  some puts are acknowledged unsent
 *   KVN_SIM_UNSAFE=5                  a crashed peer's disk tier is wiped
 *   KVN_SIM_UNSAFE=6 / 7 / 8          the master's queue broken on purpose
 *                                     (master_queue_sabotage): LEASE ignores
 *                                     live leases / expired leases keep
 *                                     their samples / newest commit first
 *   KVN_SIM_DISK=0 / =1               peers without / with a disk tier on
 *                                     every seed (default: the even seeds)
 *   KVN_SIM_QUEUE=0 / =1              without / with the consumer queue's
 *                                     producers and consumers (default: on,
 *                                     but for modes 1..5 and the
 *                                     regression seeds, found without it)
 *
 * The negative cases turn each broken mode on (enum sim_unsafe) and
 * require the checker to notice within a few seeds, so it has teeth.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#include "sim.h"

#include "base/base.h"

#define GROUP 20
#define WATCHDOG_S 120 /* real seconds one seed may take */
#define NEG_MAX_SEEDS 60
/* the broken speculation rule: seeds tried at most.  The race it needs (a
 * put landing between a get's speculative read and its route) depends on
 * the schedule: first found at seed 24, then 49 or 65 as restarts, page
 * placement and seeded backoff jitter changed the timings. */
#define NEG_SPEC_SEEDS 200
#define NEG_LIN_SEEDS 400 /* planted stale reads and lost puts: seeds tried at most (a stale route is
			   * caught only where the old node still holds the old gen: seed 102) */

#define NEG_Q_SEEDS 20 /* the broken queue modes: seeds tried at most */
#define LIN_INCONCLUSIVE_PM 5 /* rule g: inconclusive key histories tolerated, per mille */

static char watchdog_msg[160];

static void watchdog(int sig)
{
	(void)sig;
	ssize_t n = write(STDOUT_FILENO, watchdog_msg, strlen(watchdog_msg));
	(void)n;
	_exit(1);
}

/* What a replay command needs set for this mode (enum sim_unsafe). */
static const char *unsafe_env(int unsafe)
{
	static const char *const env[] = { "", "KVN_SIM_UNSAFE=1 ", "KVN_SIM_UNSAFE=2 ", "KVN_SIM_UNSAFE=3 ",
					   "KVN_SIM_UNSAFE=4 ", "KVN_SIM_UNSAFE=5 ", "KVN_SIM_UNSAFE=6 ",
					   "KVN_SIM_UNSAFE=7 ", "KVN_SIM_UNSAFE=8 " };
	return unsafe >= 0 && unsafe < (int)(sizeof env / sizeof env[0]) ? env[unsafe] : "";
}

static void arm_watchdog(uint64_t seed, int unsafe)
{
	snprintf(watchdog_msg, sizeof watchdog_msg,
		 "Bail out! seed %llu ran past %d s of real time; replay: %sKVN_SIM_SEED=%llu ./t/sim\n",
		 (unsigned long long)seed, WATCHDOG_S, unsafe_env(unsafe), (unsigned long long)seed);
	alarm(WATCHDOG_S);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 10) : def;
}

static int verbose(void)
{
	return env_u64("KVN_SIM_VERBOSE", 0) != 0;
}

static int run_one(uint64_t seed, int unsafe, struct sim_world *s)
{
	arm_watchdog(seed, unsafe);
	int rc = sim_run_seed(seed, unsafe, verbose(), s);
	alarm(0);
	return rc;
}

/* The key-value store's negative modes and regression seeds run without
 * the queue workload (sim_world.c, queue_mode): their seeds were found
 * for the key-value workload alone.  A safe run compared with such a mode,
 * or a regression seed, turns it off too (unless KVN_SIM_QUEUE says). */
static int kv_only_set;

static void kv_only(int on)
{
	if (on && !getenv("KVN_SIM_QUEUE")) {
		setenv("KVN_SIM_QUEUE", "0", 1);
		kv_only_set = 1;
	} else if (!on && kv_only_set) {
		unsetenv("KVN_SIM_QUEUE");
		kv_only_set = 0;
	}
}

/* 1 when the safe run of seed breaks no part of rule g: a broken mode's
 * rule g report on that seed is then its own doing, not a known bug's. */
static int lin_clean(uint64_t seed)
{
	struct sim_world s;
	kv_only(1);
	run_one(seed, SIM_SAFE, &s);
	kv_only(0);
	return s.viol[SIM_RULE_G] == 0;
}

static void print_lines(const char *p)
{
	while (*p) {
		const char *e = strchr(p, '\n');
		int len = e ? (int)(e - p) : (int)strlen(p);
		tap_diag("  %.*s", len, p);
		p += len + (e ? 1 : 0);
	}
}

static void print_report(const struct sim_world *s, int unsafe)
{
	print_lines(s->report);
	print_lines(s->lin_report);
	tap_diag("  replay: %sKVN_SIM_DISK=%d KVN_SIM_QUEUE=%d KVN_SIM_SEED=%llu ./t/sim  (history digest %016llx, %zu "
		 "operations)",
		 unsafe_env(unsafe), s->disk, s->queue, (unsigned long long)s->seed, (unsigned long long)s->digest,
		 s->nops);
}

/* ---- every seed: the checker holds ---- */

static void t_seeds(void)
{
	uint64_t one = env_u64("KVN_SIM_SEED", 0), count = env_u64("KVN_SIM_SEEDS", 200);
	uint64_t from = env_u64("KVN_SIM_FIRST", 1);
	uint64_t first = one ? one : from, last = one ? one : from + (count ? count : 1) - 1;
	uint64_t unsafe_env = env_u64("KVN_SIM_UNSAFE", 0);
	int unsafe = unsafe_env <= SIM_UNSAFE_MAX ? (int)unsafe_env : SIM_UNSAFE_FORGET;
	unsigned viol[SIM_RULES] = { 0 };
	uint64_t mcrash = 0, pcrash = 0, parts = 0, gets = 0, holds = 0, acked = 0, removed = 0, keys = 0;
	uint64_t dropped = 0, dup = 0, delayed = 0, harsh = 0;
	uint64_t disk_seeds = 0, disk_crash = 0, disk_rows = 0, offloaded = 0, disk_gets = 0, readback = 0;
	uint64_t spec_sent = 0, spec_ok = 0, spec_no = 0, spec_dropped = 0, spec_late = 0;
	uint64_t lin_keys = 0, lin_ops = 0, lin_amb = 0, lin_steps = 0, lin_max = 0, lin_inc = 0, lin_ms = 0;
	uint64_t lin_seeds = 0, lin_va = 0, lin_vv = 0, lin_vo = 0;
	uint64_t q_put = 0, q_leased = 0, q_consumed = 0, q_returned = 0, q_renewed = 0, q_dropped = 0, q_fetched = 0,
		 q_estate = 0, q_lost = 0, q_multi = 0;
	char lin_failed[256] = "";
	size_t lfl = 0;
	uint64_t t0 = kvn_now_ms();

	for (uint64_t g = first; g <= last; g += GROUP) {
		uint64_t end = g + GROUP - 1 < last ? g + GROUP - 1 : last;
		char failed[256] = "";
		size_t fl = 0;
		int nfail = 0;
		for (uint64_t seed = g; seed <= end; seed++) {
			struct sim_world s;
			int failed_seed = run_one(seed, unsafe, &s) != 0;
			/* rule g has its own line below (TODO while items 3 and 4
			 * are not merged): a seed fails here on the other rules */
			failed_seed = 0;
			for (int r = 0; r < SIM_RULES; r++)
				failed_seed |= r != SIM_RULE_G && s.viol[r] != 0;
			if (s.viol[SIM_RULE_G]) {
				lin_seeds++;
				if (lfl + 24 < sizeof lin_failed)
					lfl += (size_t)snprintf(lin_failed + lfl, sizeof lin_failed - lfl, " %llu",
								(unsigned long long)seed);
				if (!failed_seed && lin_seeds <= 3)
					print_report(&s, unsafe);
			}
			lin_keys += s.lin_keys;
			lin_ops += s.lin_ops;
			lin_amb += s.lin_ambiguous;
			lin_steps += s.lin_steps;
			lin_inc += s.lin_inconclusive;
			if (s.lin_inconclusive)
				tap_diag("seed %llu: rule g inconclusive for %llu key(s) (search step limit)",
					 (unsigned long long)seed, (unsigned long long)s.lin_inconclusive);
			lin_ms += s.lin_ms;
			lin_va += s.lin_v_absent;
			lin_vv += s.lin_v_value;
			lin_vo += s.lin_v_other;
			if (s.lin_max_steps > lin_max)
				lin_max = s.lin_max_steps;
			if (one)
				tap_diag("seed %llu: history digest %016llx, %zu operations", (unsigned long long)seed,
					 (unsigned long long)s.digest, s.nops);
			if (failed_seed) {
				nfail++;
				if (fl + 24 < sizeof failed)
					fl += (size_t)snprintf(failed + fl, sizeof failed - fl, " %llu",
							       (unsigned long long)seed);
				print_report(&s, unsafe);
			}
			for (int r = 0; r < SIM_RULES; r++)
				viol[r] += s.viol[r];
			mcrash += s.n_master_crash;
			pcrash += s.n_peer_crash;
			parts += s.n_partition;
			gets += s.n_gets_verified;
			holds += s.n_holds;
			acked += s.n_puts_acked;
			removed += s.n_removes_acked;
			keys += s.n_checked_keys;
			dropped += s.net.dropped;
			dup += s.net.duplicated;
			delayed += s.net.delayed;
			harsh += (uint64_t)s.harsh;
			disk_seeds += (uint64_t)s.disk;
			disk_crash += s.n_disk_crash;
			disk_rows += s.n_disk_rows;
			offloaded += s.n_offloaded;
			disk_gets += s.n_disk_gets;
			readback += s.n_disk_readback;
			spec_sent += s.n_spec_sent;
			spec_ok += s.n_spec_accepted;
			spec_no += s.n_spec_rejected;
			spec_dropped += s.n_spec_dropped;
			spec_late += s.n_spec_late;
			q_put += s.n_q_put;
			q_leased += s.n_q_leased;
			q_consumed += s.n_q_consumed;
			q_returned += s.n_q_returned;
			q_renewed += s.n_q_renewed;
			q_dropped += s.n_q_dropped;
			q_fetched += s.n_q_fetched;
			q_estate += s.n_q_estate;
			q_lost += s.n_q_lost;
			q_multi += s.n_q_multi;
		}
		ok(nfail == 0, "seeds %llu..%llu: every checker rule held%s%s", (unsigned long long)g,
		   (unsigned long long)end, nfail ? "; failing seeds:" : "", failed);
	}
	uint64_t n = last - first + 1, dt = kvn_now_ms() - t0;
	tap_diag("%llu seeds (%llu with a harsh network, %llu with a disk tier) in %llu ms of real time",
		 (unsigned long long)n, (unsigned long long)harsh, (unsigned long long)disk_seeds,
		 (unsigned long long)dt);
	tap_diag("speculative gets: %llu sent, %llu stood, %llu discarded by the rule, %llu dropped with their "
		 "operation; %llu late answers ignored",
		 (unsigned long long)spec_sent, (unsigned long long)spec_ok, (unsigned long long)spec_no,
		 (unsigned long long)spec_dropped, (unsigned long long)spec_late);
	for (int r = 0; r < SIM_RULES; r++)
		if (r != SIM_RULE_G)
			is_int(viol[r], 0, "rule %s: violations over %llu seeds", sim_rule_name(r), (unsigned long long)n);
	tap_diag("rule g: %llu key histories, %llu operations (%llu may or may not have taken effect), %llu search "
		 "steps (at most %llu for one key), %llu inconclusive, %llu ms of checking",
		 (unsigned long long)lin_keys, (unsigned long long)lin_ops, (unsigned long long)lin_amb,
		 (unsigned long long)lin_steps, (unsigned long long)lin_max, (unsigned long long)lin_inc,
		 (unsigned long long)lin_ms);
	/* An older generation taken back after a newer one was removed or
	 * lost (a node that missed its supersede re-synced it) is refused by
	 * the master's generation floors (src/actors/master_floor.c). */
	ok(lin_seeds == 0,
	   "rule g: every key's history is linearizable over %llu seeds (not: %llu seeds, impossible reads of "
	   "'not found' %llu, of a value %llu, other %llu:%s)",
	   (unsigned long long)n, (unsigned long long)lin_seeds, (unsigned long long)lin_va,
	   (unsigned long long)lin_vv, (unsigned long long)lin_vo, lin_failed);
	ok(lin_inc * 1000 <= lin_keys * LIN_INCONCLUSIVE_PM,
	   "rule g: %llu of %llu key histories inconclusive (at most %d per mille allowed)", (unsigned long long)lin_inc,
	   (unsigned long long)lin_keys, LIN_INCONCLUSIVE_PM);
	if (n < GROUP) {
		tap_skip(7, "coverage totals need at least 20 seeds (a replay of one seed runs fewer)");
		return;
	}
	/* the faults and the workload really happened, or the rules above
	 * proved nothing */
	ok(mcrash > 0 && pcrash > 0 && parts > 0, "schedules crashed the master %llu times, peers %llu times, "
						  "partitioned nodes %llu times",
	   (unsigned long long)mcrash, (unsigned long long)pcrash, (unsigned long long)parts);
	ok(dropped > 0 && dup > 0 && delayed > 0, "the network dropped %llu, duplicated %llu, delayed %llu messages",
	   (unsigned long long)dropped, (unsigned long long)dup, (unsigned long long)delayed);
	ok(gets > 0 && holds > 0 && acked > 0 && removed > 0 && keys == n * SIM_KEYS,
	   "%llu gets verified (%llu replies held), %llu puts and %llu removes acknowledged, %llu keys read "
	   "after quiescence",
	   (unsigned long long)gets, (unsigned long long)holds, (unsigned long long)acked,
	   (unsigned long long)removed, (unsigned long long)keys);
	/* both outcomes of the speculation rule ran under the faults */
	ok(spec_ok > 0 && spec_no > 0, "speculative gets: %llu of %llu answers stood, %llu were discarded by the rule",
	   (unsigned long long)spec_ok, (unsigned long long)spec_sent, (unsigned long long)spec_no);
	/* rule h judged a queue that really ran: every way a lease ends, and
	 * answers long enough to have an order */
	ok(q_put > 0 && q_consumed > 0 && q_returned > 0 && q_renewed > 0 && q_dropped > 0 && q_estate > 0 &&
		   q_multi > 0 && q_fetched > 0,
	   "queue: %llu samples put, %llu refs leased (%llu answers of 2 or more), %llu fetched, %llu consumed, "
	   "%llu returned, %llu renewals, %llu leases left to expire, %llu ids answered KVN_ESTATE, %llu samples "
	   "reported lost",
	   (unsigned long long)q_put, (unsigned long long)q_leased, (unsigned long long)q_multi,
	   (unsigned long long)q_fetched, (unsigned long long)q_consumed, (unsigned long long)q_returned,
	   (unsigned long long)q_renewed, (unsigned long long)q_dropped, (unsigned long long)q_estate,
	   (unsigned long long)q_lost);
	/* the disk tier's part: values evicted to disk, served from it, kept
	 * across peer crashes and read back from the restarted peer (or rules
	 * b and g proved nothing about restarts with disk-resident values) */
	if (disk_seeds == 0) {
		tap_skip(2, "no seed ran with the disk tier (KVN_SIM_DISK=0)");
		return;
	}
	ok(offloaded > 0 && disk_gets > 0, "disk tier: %llu values offloaded, %llu gets served from disk",
	   (unsigned long long)offloaded, (unsigned long long)disk_gets);
	ok(disk_crash > 0 && readback > 0,
	   "disk tier: %llu peer crashes left %llu rows in peer.db; %llu gets read such a value back from the "
	   "restarted peer",
	   (unsigned long long)disk_crash, (unsigned long long)disk_rows, (unsigned long long)readback);
}

/* ---- a seed replays exactly ---- */

static void t_replay(void)
{
	struct sim_world a, b, c;
	uint64_t seed = 0;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(2, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	/* a seed with a crash and a harsh network exercises the most */
	for (uint64_t s = 1; s <= 40 && !seed; s++) {
		run_one(s, 0, &a);
		if (a.harsh && (a.n_master_crash || a.n_peer_crash))
			seed = s;
	}
	if (!seed) {
		tap_skip(2, "no seed in 1..40 with a harsh network and a crash");
		return;
	}
	run_one(seed, 0, &b);
	run_one(seed + 1, 0, &c);
	ok(a.digest == b.digest && a.nops == b.nops && memcmp(a.viol, b.viol, sizeof a.viol) == 0,
	   "seed %llu run twice: the same %zu operations with the same outcomes at the same virtual times",
	   (unsigned long long)seed, b.nops);
	ok(c.digest != b.digest, "seed %llu has another history (the digest sees the difference)",
	   (unsigned long long)seed + 1);
}

/* ---- the checker has teeth ---- */

static void t_unsafe_forget(void)
{
	struct sim_world s, g;
	uint64_t found = 0, tried = 0, stale_reads = 0, lin_found = 0;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	/* seeds whose network drops messages: then EVENTS calls fail and the
	 * unsafe peer answers puts the master never saw */
	for (uint64_t seed = 1; seed <= 1000 && tried < NEG_MAX_SEEDS && (!found || !lin_found); seed++) {
		struct sim_world x;
		run_one(seed, SIM_UNSAFE_FORGET, &x);
		if (x.net.dropped == 0)
			continue;
		tried++;
		stale_reads += x.viol[SIM_RULE_C] != 0;
		if (!found && (x.viol[SIM_RULE_B] || x.viol[SIM_RULE_E])) {
			found = seed;
			s = x;
		}
		if (!lin_found && x.viol[SIM_RULE_G] && lin_clean(seed)) {
			lin_found = seed;
			g = x;
		}
	}
	ok(found != 0, "peer_opts.unsafe_forget_unacked: the checker reports a lost put or index != union "
		       "within %llu seeds with drops (first: seed %llu; %llu of them also a stale read)",
	   (unsigned long long)tried, (unsigned long long)found, (unsigned long long)stale_reads);
	if (found) {
		tap_diag("what the checker said (unsafe peers, expected):");
		print_report(&s, SIM_UNSAFE_FORGET);
	}
	ok(lin_found != 0, "peer_opts.unsafe_forget_unacked: rule g (linearizability) reports it too, on a seed whose "
			   "safe run it passes (first: seed %llu)",
	   (unsigned long long)lin_found);
	if (lin_found && lin_found != found) {
		tap_diag("what rule g said (unsafe peers, expected):");
		print_lines(g.lin_report);
	}
}

static void t_unsafe_spec(void)
{
	struct sim_world s;
	uint64_t found = 0, tried = 0, stood = 0;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	/* a speculative answer from the routed node that holds another
	 * generation than the route (a put raced the get) is not what the
	 * routed read returns: kept anyway, the checker must see it */
	for (uint64_t seed = 1; seed <= NEG_SPEC_SEEDS && !found; seed++) {
		run_one(seed, SIM_UNSAFE_SPEC, &s);
		tried++;
		stood += s.n_spec_accepted;
		if (s.viol[SIM_RULE_A])
			found = seed; /* the answer is not the routed gen's */
	}
	ok(found != 0, "unsafe speculation (node match only): the checker reports wrong get bytes within %llu seeds "
		       "(first: seed %llu; %llu speculative answers stood)",
	   (unsigned long long)tried, (unsigned long long)found, (unsigned long long)stood);
	if (found) {
		tap_diag("what the checker said (unsafe speculation, expected):");
		print_report(&s, SIM_UNSAFE_SPEC);
	}
}

/* Rule g alone must catch a planted stale read and a planted lost
 * acknowledged put, with the key, the window and the impossible read. */
static void t_unsafe_lin(int unsafe, const char *what)
{
	struct sim_world s;
	uint64_t found = 0, tried = 0;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	for (uint64_t seed = 1; seed <= NEG_LIN_SEEDS && !found; seed++) {
		run_one(seed, unsafe, &s);
		tried++;
		if (s.viol[SIM_RULE_G] && strstr(s.lin_report, "impossible: #") && lin_clean(seed))
			found = seed;
	}
	ok(found != 0, "%s: rule g reports a key that is not linearizable, with its impossible operation, within %llu "
		       "seeds, on a seed whose safe run it passes (first: seed %llu)",
	   what, (unsigned long long)tried, (unsigned long long)found);
	if (found) {
		tap_diag("what rule g said (%s, expected):", what);
		print_lines(s.lin_report);
		tap_diag("  replay: %sKVN_SIM_SEED=%llu ./t/sim", unsafe_env(unsafe), (unsigned long long)found);
	}
}

static void t_unsafe_stale_route(void)
{
	t_unsafe_lin(SIM_UNSAFE_STALE_ROUTE, "planted stale reads (gets reuse an old route)");
}

static void t_unsafe_fake_ack(void)
{
	t_unsafe_lin(SIM_UNSAFE_FAKE_ACK, "planted lost puts (acknowledged, never sent)");
}

/* The disk tier's rules must notice values peer.db held at a crash that
 * the restarted peer no longer has: rule b (an acknowledged put kept on
 * disk is lost) or rule g (a value that should have come back reads "not
 * found"). */
static void t_unsafe_wipe_disk(void)
{
	struct sim_world s;
	uint64_t found = 0, tried = 0, b = 0, g = 0;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	for (uint64_t seed = 1; seed <= NEG_MAX_SEEDS && !found; seed++) {
		run_one(seed, SIM_UNSAFE_WIPE_DISK, &s);
		if (!s.n_disk_crash)
			continue; /* nothing on disk to lose */
		tried++;
		b += s.viol[SIM_RULE_B] != 0;
		g += s.viol[SIM_RULE_G] != 0;
		if ((s.viol[SIM_RULE_B] || s.viol[SIM_RULE_G]) && lin_clean(seed))
			found = seed;
	}
	ok(found != 0, "wiped disk tiers: rule b or g reports the values peer.db held at a crash, within %llu seeds "
		       "whose crashes left rows (first: seed %llu)",
	   (unsigned long long)tried, (unsigned long long)found);
	if (found) {
		tap_diag("what the checker said (wiped disks, expected):");
		print_report(&s, SIM_UNSAFE_WIPE_DISK);
	}
}

/* The master's queue broken on purpose (master_queue_sabotage): rule h
 * must report it within a few seeds, on a seed whose safe run it passes. */
static void t_queue_sabotage(void)
{
	/* each must be caught by the part of rule h that is about it */
	static const struct {
		int unsafe, kind;
		const char *what, *says;
	} modes[] = {
		{ SIM_UNSAFE_Q_DOUBLE, SIM_QV_TWICE, "MASTER_QS_DOUBLE_LEASE (LEASE ignores live leases)",
		  "two live leases or a sample consumed twice" },
		{ SIM_UNSAFE_Q_NO_RETURN, SIM_QV_LEFT, "MASTER_QS_NO_RETURN (an expired lease keeps its sample)",
		  "samples neither consumed nor reported lost" },
		{ SIM_UNSAFE_Q_ORDER, SIM_QV_ORDER, "MASTER_QS_ORDER (newest commit first)",
		  "an answer out of commit order" },
	};
	struct sim_world s, safe;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(3, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		uint64_t found = 0, tried = 0;
		for (uint64_t seed = 1; seed <= NEG_Q_SEEDS && !found; seed++) {
			tried++;
			run_one(seed, modes[m].unsafe, &s);
			if (!s.qviol[modes[m].kind])
				continue;
			run_one(seed, SIM_SAFE, &safe);
			if (safe.viol[SIM_RULE_H] == 0)
				found = seed;
		}
		ok(found != 0, "%s: rule h reports %s within %llu seeds, on a seed whose safe run it passes (first: "
			       "seed %llu)",
		   modes[m].what, modes[m].says, (unsigned long long)tried, (unsigned long long)found);
		if (found) {
			tap_diag("what rule h said (%s, expected; %u such reports, %u of rule h in all):", modes[m].what,
				 s.qviol[modes[m].kind], s.viol[SIM_RULE_H]);
			tap_diag("  seed %llu: %s", (unsigned long long)found, s.qfirst[modes[m].kind]);
			tap_diag("  replay: %sKVN_SIM_SEED=%llu ./t/sim", unsafe_env(modes[m].unsafe),
				 (unsigned long long)found);
		}
	}
}

/* Seeds beyond the default 200 that once broke a rule, each run every
 * time: a get routed to a peer across its crash and restart was answered
 * "not found" (rule g; the peer now answers "superseded" for a generation
 * it does not hold, and the client asks the master again). */
static void t_regressions(void)
{
	static const uint64_t seeds[] = { 220, 631, 1226, 1537, 1575, 1770, 1935 };
	struct sim_world s;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	kv_only(1);
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		int rc = run_one(seeds[i], SIM_SAFE, &s);
		if (!ok(rc == 0, "seed %llu: every checker rule held", (unsigned long long)seeds[i]))
			print_lines(s.lin_report);
	}
	kv_only(0);
}

/* The same with the disk tier on every peer (KVN_SIM_DISK=1): 319 and
 * 2370, an older generation a restarted peer's disk still held indexed
 * again once the newer one was lost with its node (the master now keeps
 * floors while a new boot has not re-synced, and the node's unconfirmed
 * DROP_GENs across its new boot); 496, 1434, 1590, gets routed before a
 * crash answered from the restarted peer's disk (linearizable: the value
 * lived on while its node was down). */
static void t_regressions_disk(void)
{
	static const uint64_t seeds[] = { 319, 496, 1434, 1590, 2370 };
	const char *was = getenv("KVN_SIM_DISK");
	char saved[16] = "";
	struct sim_world s;

	if (env_u64("KVN_SIM_SEED", 0)) {
		tap_skip(1, "replaying one seed (KVN_SIM_SEED)");
		return;
	}
	if (was)
		snprintf(saved, sizeof saved, "%s", was);
	setenv("KVN_SIM_DISK", "1", 1);
	kv_only(1);
	for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		int rc = run_one(seeds[i], SIM_SAFE, &s);
		if (!ok(rc == 0 && s.disk, "seed %llu with the disk tier: every checker rule held",
			(unsigned long long)seeds[i]))
			print_report(&s, SIM_SAFE);
	}
	kv_only(0);
	if (was)
		setenv("KVN_SIM_DISK", saved, 1);
	else
		unsetenv("KVN_SIM_DISK");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "seeds", t_seeds },
		{ "replay", t_replay },
		{ "unsafe_forget_unacked", t_unsafe_forget },
		{ "unsafe_speculation", t_unsafe_spec },
		{ "unsafe_stale_route", t_unsafe_stale_route },
		{ "unsafe_fake_ack", t_unsafe_fake_ack },
		{ "unsafe_wipe_disk", t_unsafe_wipe_disk },
		{ "queue_sabotage", t_queue_sabotage },
		{ "regressions", t_regressions },
		{ "regressions_disk", t_regressions_disk },
		{ NULL, NULL },
	};
	signal(SIGALRM, watchdog);
	setvbuf(stdout, NULL, _IOLBF, 0);
	kvn_log_set_level(verbose() ? KVN_LOG_INFO : KVN_LOG_ERROR);
	return tap_run(tests, argc, argv);
}
