/* t/queue_prop: the consumer queue's properties against real processes (a
 * master and two peers, each its own kvnode process on loopback).
 *
 * Producer threads (each its own kvn_client) put distinct samples with
 * KVN_PUT_QUEUE, some with KVN_PUT_RETAIN; consumer threads lease with a
 * partition count drawn anew each round (1..5: consumers' partitions
 * overlap, and a count changes under samples already leased), fetch each
 * ref with kvn_get_gen, sometimes renew, then consume most, RETURN some
 * and let the rest expire.  The peers have 1 MiB of DRAM and a disk tier,
 * so queue values go to disk under pressure; the master is killed with
 * SIGKILL and restarted while all of it runs; `sqlite3 master.db 'select *
 * from v_queue'` must answer meanwhile.  At the end the history (what each
 * call answered, and when) is judged by t/queue_check.c: every sample whose
 * put succeeded consumed exactly once (no node dies here, so none may be
 * lost), never two live leases of one sample, every LEASE answer in commit
 * order.
 *
 * The checker is shown to catch what it looks for: the "checker" case
 * feeds it made-up histories, and the break_* cases run a master started
 * with KVNODE_TEST_QUEUE_BREAK (master_queue_sabotage in master.h: double
 * leases, expired leases that never return, newest first) and assert that
 * the matching check fails.  KVN_QUEUE_PROP_LONG=1 (make check-long) makes
 * the main run larger, with three master restarts. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "queue_check.h"
#include "queue_env.h"
#include "tap.h"

/* ---- what the main thread watches ---- */

/* The sqlite3 shell on master.db while consumers run: it must answer. */
static void v_queue_once(struct run *r)
{
	char cmd[700], line[512];
	int rows = 0, err = 0;
	snprintf(cmd, sizeof cmd, "sqlite3 -cmd '.timeout 3000' '%s' 'select * from v_queue' 2>&1", r->db);
	FILE *f = popen(cmd, "r");
	if (!f) {
		r->vq_errors++;
		return;
	}
	while (fgets(line, sizeof line, f)) {
		if (strstr(line, "rror")) {
			if (!err++ && r->vq_errors == 0)
				tap_diag("v_queue: %s", line);
		} else {
			rows++;
		}
	}
	int st = pclose(f);
	r->vq_runs++;
	r->vq_errors += st != 0 || err;
	r->vq_rows += st == 0 && !err && rows > 0;
}

static uint32_t produced(struct prod *ps, uint32_t np)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < np; i++)
		n += __atomic_load_n(&ps[i].done, __ATOMIC_ACQUIRE);
	return n;
}

/* Each retained sample's row in master.db now: its commit_seq (0: none). */
static int read_commit_seqs(struct run *r)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	int rc = -1;
	if (sqlite3_open_v2(r->db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 3000);
		/* retained samples (consumed and kept: qflags 4) keep their row,
		 * so its commit_seq is the one LEASE ordered them by */
		if (sqlite3_prepare_v2(h, "select key, commit_seq from objects where qflags & 4", -1, &st, NULL) ==
		    SQLITE_OK) {
			while (sqlite3_step(st) == SQLITE_ROW) {
				uint32_t s = sample_of(r, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
				if (s != UINT32_MAX)
					r->h.samples[s].commit_seq = sqlite3_column_int64(st, 1);
			}
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(h);
	return rc;
}

/* KVN_QUEUE_PROP_TRACE=FILE: the whole history, one line per put and per
 * ref leased, for a look at a failure (wall times in us). */
static void trace_dump(const struct run *r)
{
	static const char *const ends[] = { "none", "consumed", "returned", "estate", "ambig-consume",
					    "ambig-return", "error" };
	const char *path = getenv("KVN_QUEUE_PROP_TRACE");
	FILE *f = path && *path ? fopen(path, "w") : NULL;
	if (!f)
		return;
	for (uint32_t s = 0; s < r->h.nsamples; s++) {
		const struct qc_sample *x = &r->h.samples[s];
		fprintf(f, "put q%u/%u sample %u put %d gen %llu t %llu..%llu retain %d commit_seq %lld\n",
			s / r->per_producer, s % r->per_producer, s, x->put, (unsigned long long)x->gen,
			(unsigned long long)x->t0, (unsigned long long)x->t1, x->retain, (long long)x->commit_seq);
	}
	for (uint32_t i = 0; i < r->h.nleases; i++) {
		const struct qc_lease *l = &r->h.leases[i];
		const struct qc_answer *a = &r->h.answers[l->answer];
		fprintf(f,
			"lease %llu sample %u gen %llu answer %u consumer %u part %u/%u t %llu..%llu deadline %llu "
			"fetch %d at %llu end %s at %llu\n",
			(unsigned long long)l->lease_id, l->sample, (unsigned long long)l->gen, l->answer, a->consumer,
			a->part_i, a->part_n, (unsigned long long)a->t_req, (unsigned long long)a->t_ans,
			(unsigned long long)l->deadline_us, l->fetch_rc, (unsigned long long)l->fetch_us,
			ends[l->end], (unsigned long long)l->end_us);
	}
	fclose(f);
}

/* Start the cluster, run producers and consumers (restarting the master
 * as configured), drain, stop, read master.db, judge.  0, or -1 when the
 * run could not be made (nothing judged). */
static int run_workload(struct run *r, struct qc_result *res)
{
	uint32_t total = r->producers * r->per_producer, restarts_at[8];
	struct prod *ps = kvn_xcalloc(r->producers, sizeof *ps);
	struct cons *cs = kvn_xcalloc(r->consumers, sizeof *cs);
	uint64_t t_start = kvn_now_ms(), seed = wall_us();
	int restarts_done = 0, consumers_on = 0, rc = 0;

	pthread_mutex_init(&r->mu, NULL);
	r->h.samples = kvn_xcalloc(total, sizeof *r->h.samples);
	r->h.nsamples = total;
	for (uint32_t s = 0; s < total; s++) {
		r->h.samples[s].size = sample_size(s);
		r->h.samples[s].retain = (uint8_t)sample_retain(s);
	}
	if (!ok(cluster_start(r) == 0, "%s: a master and two peers, each its own process", r->name)) {
		rc = -1;
		goto out;
	}
	for (int i = 0; i < r->restarts && i < 8; i++) /* spread over the middle of the puts */
		restarts_at[i] = total * (uint32_t)(i + 1) / (uint32_t)(r->restarts + 1);
	for (uint32_t i = 0; i < r->producers; i++) {
		ps[i] = (struct prod){ .r = r, .p = i };
		if (pthread_create(&ps[i].th, NULL, producer_main, &ps[i]) != 0)
			kvn_fatal("pthread_create");
	}
	tap_diag("%s: %u producers x %u samples, %u consumers, %d master restart(s), seed %llu", r->name,
		 r->producers, r->per_producer, r->consumers, r->restarts, (unsigned long long)seed);
	for (;;) {
		uint32_t done = produced(ps, r->producers);
		/* consumers start behind: the backlog is what fills DRAM */
		if (!consumers_on && (done >= total / 3 || done == total)) {
			for (uint32_t i = 0; i < r->consumers; i++) {
				cs[i] = (struct cons){ .r = r, .id = i, .rng = seed * (i + 3) | 1 };
				if (pthread_create(&cs[i].th, NULL, consumer_main, &cs[i]) != 0)
					kvn_fatal("pthread_create");
			}
			consumers_on = 1;
		}
		if (consumers_on && restarts_done < r->restarts && done >= restarts_at[restarts_done] &&
		    __atomic_load_n(&r->leased, __ATOMIC_RELAXED) > 20u * (uint32_t)(restarts_done + 1)) {
			int ok_restart = master_restart(r) == 0;
			tap_diag("%s: master killed (SIGKILL) and restarted at %u of %u puts: %s", r->name, done, total,
				 ok_restart ? "ready" : "NOT READY");
			r->restarted += ok_restart;
			restarts_done++;
		}
		long long disk = proc_sql_int(r->db, "select count(*) from objects where tier = 1");
		if (disk > r->max_disk_rows)
			r->max_disk_rows = disk;
		if (consumers_on && (r->vq_runs < 3 || kvn_now_ms() % 4 == 0))
			v_queue_once(r);
		if (done == total && consumers_on && restarts_done >= r->restarts) {
			if (!r->draining) {
				__atomic_store_n(&r->last_nonempty_us, wall_us(), __ATOMIC_RELEASE);
				__atomic_store_n(&r->draining, 1, __ATOMIC_RELEASE);
			}
			if (wall_us() - __atomic_load_n(&r->last_nonempty_us, __ATOMIC_ACQUIRE) > DRAIN_IDLE_US) {
				if (!r->final_restart || r->final_restarted)
					break;
				/* drained: one more crash and start must bring
				 * nothing back that was consumed */
				r->final_restarted = 1;
				int ok_restart = master_restart(r) == 0;
				tap_diag("%s: drained; master killed (SIGKILL) and restarted once more: %s", r->name,
					 ok_restart ? "ready" : "NOT READY");
				r->restarted += ok_restart;
				__atomic_store_n(&r->last_nonempty_us, wall_us(), __ATOMIC_RELEASE);
			}
		}
		if (kvn_now_ms() - t_start > r->budget_ms) {
			tap_diag("%s: out of time (%llu ms): stopping", r->name, (unsigned long long)r->budget_ms);
			break;
		}
		usleep(100 * 1000);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < r->producers; i++) {
		pthread_join(ps[i].th, NULL);
		r->failures += ps[i].connect_rc != 0;
	}
	for (uint32_t i = 0; consumers_on && i < r->consumers; i++) {
		pthread_join(cs[i].th, NULL);
		if (cs[i].connect_rc || cs[i].lease_err)
			tap_diag("consumer %u: connect %s, %ld lease errors", i, kvn_strerror(cs[i].connect_rc),
				 cs[i].lease_err);
		r->failures += (cs[i].connect_rc != 0) + cs[i].lease_err;
	}
	ok(read_commit_seqs(r) == 0, "%s: master.db's objects read (%u LEASE answers, %u refs, %.1f s)", r->name,
	   r->h.nanswers, r->h.nleases, (double)(kvn_now_ms() - t_start) / 1000);
	qc_check(&r->h, res);
	qc_report(res);
	trace_dump(r);
out:
	free(ps);
	free(cs);
	return rc;
}

static void run_free(struct run *r)
{
	cluster_stop(r);
	qc_free(&r->h);
	free(r->h.samples);
	r->h.samples = NULL;
	pthread_mutex_destroy(&r->mu);
}

/* ---- cases ---- */

/* The checker on made-up histories: it passes a correct one and flags each
 * kind of failure. */
static void t_checker(void)
{
	struct qc_sample s[3];
	struct qc_hist h = { .samples = s, .nsamples = 3 };
	struct qc_result r;
	struct qc_answer a = { .consumer = 0, .part_i = 0, .part_n = 1 };
	uint32_t f;

	memset(s, 0, sizeof s);
	for (int i = 0; i < 3; i++)
		s[i] = (struct qc_sample){ .put = QP_OK, .gen = 10 + (uint64_t)i, .size = 100,
					   .t0 = 1000 + 100 * (uint64_t)i, .t1 = 1050 + 100 * (uint64_t)i };
#define LEASE(ix, smp, id, t_end, how)                                                              \
	(h.leases[(ix)] = (struct qc_lease){ .sample = (smp), .answer = h.leases[(ix)].answer, .lease_id = (id), \
					     .gen = 10 + (smp), .size = 100, .deadline_us = 10000000,       \
					     .end_us = (t_end), .end = (how), .hash_ok = 1, .fetch_rc = 0 })
	/* one answer with samples 0 and 1, in order, both consumed; sample 2 later */
	a.t_req = 2000, a.t_ans = 2100;
	f = qc_add_answer(&h, &a, 2);
	LEASE(f, 0, 1, 3000, QE_CONSUMED);
	LEASE(f + 1, 1, 2, 3000, QE_CONSUMED);
	a.t_req = 4000, a.t_ans = 4100;
	f = qc_add_answer(&h, &a, 1);
	LEASE(f, 2, 3, 5000, QE_CONSUMED);
	qc_check(&h, &r);
	is_int(qc_failures(&r), 0, "a correct history passes");
	is_int(r.consumed, 3, "  three samples consumed");

	/* sample 2 handed out again while lease 3 was live (its release was
	 * sent at 5000; this LEASE ran 4200..4300) */
	a.consumer = 1, a.t_req = 4200, a.t_ans = 4300;
	f = qc_add_answer(&h, &a, 1);
	LEASE(f, 2, 4, 6000, QE_RETURNED);
	qc_check(&h, &r);
	is_int(r.double_lease, 1, "a lease of a sample under a live lease is a double lease");
	/* the same, but after lease 3's release was sent: fine */
	h.answers[h.nanswers - 1].t_req = 5000, h.answers[h.nanswers - 1].t_ans = 5100;
	qc_check(&h, &r);
	is_int(qc_failures(&r), 0, "  not once the first lease was released");
	/* consumed by it too: twice */
	h.leases[f].end = QE_CONSUMED;
	qc_check(&h, &r);
	is_int(r.twice, 1, "a sample consumed by two leases is consumed twice");
	/* its release's reply lost: consumed once, unless handed out again */
	h.leases[f - 1].end = QE_RETURNED;
	h.leases[f].end = QE_AMBIG_CONSUME;
	qc_check(&h, &r);
	ok(qc_failures(&r) == 0 && r.ambiguous_consumed == 1,
	   "  a lost release reply, after which nobody leased the sample: consumed once");
	h.leases[f - 1].end = QE_AMBIG_CONSUME;
	h.leases[f].end = QE_CONSUMED;
	qc_check(&h, &r);
	ok(qc_failures(&r) == 0 && r.ambiguous_consumed == 0,
	   "  a lost release reply, then another lease that consumed it: consumed once, by that one");
	/* returned, then expired: nobody consumed it */
	h.leases[f - 1].end = QE_RETURNED;
	h.leases[f].end = QE_NONE;
	qc_check(&h, &r);
	is_int(r.lost, 1, "a sample whose put succeeded and that nobody consumed is lost");
	h.leases[f - 1].end = QE_CONSUMED;
	h.leases[f].end = QE_RETURNED;

	/* order: the first answer reversed (sample 1 before sample 0, whose
	 * put returned before sample 1's began) */
	h.leases[0].sample = 1, h.leases[0].gen = 11, h.leases[0].lease_id = 2;
	h.leases[1].sample = 0, h.leases[1].gen = 10, h.leases[1].lease_id = 1;
	qc_check(&h, &r);
	is_int(r.order, 1, "an answer with a later put first is out of order (producers' times)");
	s[1].put = QP_MAYBE; /* no times to go by: commit_seq of their rows */
	s[0].commit_seq = 5, s[1].commit_seq = 4;
	qc_check(&h, &r);
	is_int(r.order, 0, "  rows in commit order: fine");
	s[0].commit_seq = 4, s[1].commit_seq = 5;
	qc_check(&h, &r);
	is_int(r.order, 1, "  rows out of commit order: not");
	s[1].put = QP_OK, s[0].commit_seq = s[1].commit_seq = 0;
	h.leases[0].sample = 0, h.leases[0].gen = 10, h.leases[0].lease_id = 1;
	h.leases[1].sample = 1, h.leases[1].gen = 11, h.leases[1].lease_id = 2;

	/* refs and answers */
	qc_check(&h, &r);
	is_int(qc_failures(&r), 0, "  (restored)");
	h.leases[0].hash_ok = 0;
	h.leases[1].gen = 99;
	h.leases[2].estate_us = 3000; /* ESTATE long before the deadline */
	h.leases[3].fetch_rc = KVN_ESTALE, h.leases[3].fetch_us = 4400;
	qc_check(&h, &r);
	ok(r.partition == 1 && r.bad_ref == 1 && r.estate_live == 1 && r.fetch == 1,
	   "a ref outside its partition, a wrong gen, KVN_ESTATE of a live lease, a failed fetch of a "
	   "live lease: each flagged");
	qc_free(&h);
#undef LEASE
}

static int long_run(void)
{
	const char *e = getenv("KVN_QUEUE_PROP_LONG");
	return e && *e && strcmp(e, "0") != 0;
}

static void t_prop(void)
{
	struct run r = { .name = "prop", .producers = 3, .consumers = 3, .per_producer = 250, .restarts = 1,
			 .final_restart = 1, .budget_ms = 45000 };
	struct qc_result res;
	if (long_run()) {
		r.producers = 4, r.consumers = 5, r.per_producer = 2500, r.restarts = 3, r.budget_ms = 900000;
	}
	if (run_workload(&r, &res) != 0) {
		run_free(&r);
		return;
	}
	is_int(r.restarted, r.restarts + 1, "the master was killed with SIGKILL and came back %d time(s), the last "
	       "once consumers had drained the queue", r.restarts + 1);
	ok(res.put_ok >= res.put_ok + res.put_maybe - 50 * r.restarts,
	   "%ld of %ld puts answered 0 (failures only around a restart)", res.put_ok, res.put_ok + res.put_maybe);
	ok(r.max_disk_rows > 0, "DRAM pressure: up to %lld queue values were on the peers' disk tiers at once",
	   r.max_disk_rows);
	ok(r.vq_runs > 0 && r.vq_errors == 0 && r.vq_rows > 0,
	   "sqlite3 master.db 'select * from v_queue' answered while consumers ran (%d runs, %d with rows, %d "
	   "errors)",
	   r.vq_runs, r.vq_rows, r.vq_errors);
	is_int(res.lost + res.twice, 0, "every sample whose put succeeded was consumed exactly once (%ld consumed)",
	       res.consumed);
	is_int(res.double_lease, 0, "no sample had two live leases");
	is_int(res.order, 0, "every LEASE answer in commit order");
	is_int(res.partition + res.bad_ref, 0, "every ref in its partition, with its put's gen and size");
	is_int(res.fetch, 0, "every fetch of a live lease gave the sample's bytes");
	is_int(res.estate_live + res.errors, 0, "no release or renew of a live lease refused");
	is_int(r.failures, 0, "every client connected, every LEASE answered (or failed only while the master was away)");
	/* Nothing consumed comes back: an event about a sample that reaches
	 * the master after the RELEASE deleted it (a tier move its peer had
	 * under way, an offload under DRAM pressure or the promote its fetch
	 * caused; the full sync of a peer that had not dropped it yet when the
	 * master was killed) must not put it back in the queue.  That was a
	 * bug until a7cf426: the sample came back as a new row (qflags 1, a
	 * new commit_seq) below its key's floor, counted in v_queue as
	 * waiting, and as lost after the next restart. */
	is_int(proc_sql_int(r.db, "select coalesce(sum(lost), 0) from v_queue"), 0,
	       "v_queue counts no sample lost (no node died)");
	/* drained: consumers found nothing for longer than any lease lives */
	is_int(proc_sql_int(r.db, "select count(*) from objects where qflags & 1"), 0,
	       "master.db's queue is empty once consumers drained it");
	is_int(proc_sql_int(r.db, "select count(*) from objects o join floors f on f.key = o.key where o.gen < f.gen"),
	       0, "no row of master.db below its key's floor");
	run_free(&r);
}

/* A short run against a master with one mechanism broken on purpose. */
static void break_run(const char *name, unsigned brk, long (*pick)(const struct qc_result *), const char *what)
{
	struct run r = { .name = name, .brk = brk, .producers = 2, .consumers = 3, .per_producer = 80,
			 .budget_ms = 30000 };
	struct qc_result res;
	if (run_workload(&r, &res) == 0) {
		ok(r.h.nanswers > 0, "%s: consumers got LEASE answers", name);
		ok(pick(&res) > 0, "KVNODE_TEST_QUEUE_BREAK=%u: the checker reports %s (%ld)", brk, what, pick(&res));
	}
	run_free(&r);
}

static long pick_double(const struct qc_result *r)
{
	return r->double_lease;
}

static long pick_lost(const struct qc_result *r)
{
	return r->lost;
}

static long pick_order(const struct qc_result *r)
{
	return r->order;
}

static void t_break_double(void)
{
	break_run("brk1", 1, pick_double, "double leases");
}

static void t_break_return(void)
{
	break_run("brk2", 2, pick_lost, "samples never consumed");
}

static void t_break_order(void)
{
	break_run("brk4", 4, pick_order, "answers out of commit order");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "checker", t_checker },
		{ "prop", t_prop },
		{ "break_double", t_break_double },
		{ "break_return", t_break_return },
		{ "break_order", t_break_order },
		{ NULL, NULL },
	};
	if (proc_init("queue_prop") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(long_run() ? 1800 : 240); /* a hang fails the test and kills what it started */
	return tap_run(tests, argc, argv);
}
