/* t/restart: crash and restart of the master of real kvnode processes on
 * loopback (a master and two peers, each its own process; the cluster is
 * t/restart_env.h).  kill -9 of the master in the middle of a put workload
 * and its restart on the same data dir (every acknowledged put back byte
 * for byte after the peers' full syncs, newer generations, the same client
 * handle working again, calls during the outage failing within the
 * deadline); and a clean SIGTERM of every process under load.  Peers that
 * die are t/restart_peer. */
#include "config.h"

#include "restart_env.h"

/* ---- cases ---- */

static void t_start(void)
{
	restart_start();
}

#define NBALLAST 4000
#define DUR_ROWS_SQL                                                                                 \
	"select group_concat(key || '=' || gen || '@' || node_id || '#' || commit_seq, ',') from " \
	"(select * from v_objects where key glob 'd/*' order by commit_seq)"

/* Put (put=1) or remove the keys z/0..NBALLAST-1, 1-byte values, in
 * batches; the number of failed batches. */
static int ballast(int put)
{
	int bad = 0;
	for (uint32_t b = 0; b < NBALLAST / 500; b++) {
		struct kvn_item it[500];
		char keys[500][16];
		memset(it, 0, sizeof it);
		for (uint32_t j = 0; j < 500; j++) {
			it[j].klen = (size_t)snprintf(keys[j], sizeof keys[j], "z/%u", b * 500 + j);
			it[j].key = keys[j];
			it[j].val = put ? keys[j] : NULL;
			it[j].vlen = put ? 1 : 0;
		}
		bad += (put ? kvn_batch_put(mc, it, 500, 0) : kvn_batch_remove(mc, it, 500)) != 0;
	}
	return bad;
}

/* kill -9 the master under a put workload, restart it on its data dir. */
static void t_master_kill9(void)
{
	struct writer *w = kvn_xcalloc(1, sizeof *w);
	struct reader *rd = kvn_xcalloc(1, sizeof *rd);
	enum { NDUR = 30 };
	uint64_t dgens[NDUR], dgens_after[NDUR];
	char dur_before[4096], dur_after[4096];
	int bad = 0, st = 0;
	restart_need_start();

	/* durable values: in master.db before the crash */
	for (uint32_t i = 0; i < NDUR; i++)
		bad += put_value(mc, "d", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "%d durable puts", NDUR);
	/* ballast: a few thousand small keys make each peer's full sync
	 * several chunks long, as on a real node */
	is_int(ballast(1), 0, "%d small values as ballast", NBALLAST);
	sql_rows("d", dgens, NULL, NDUR);
	sql_text(DUR_ROWS_SQL, dur_before, sizeof dur_before);
	long long epoch1 = sql_int("select max(epoch) from epochs");

	rd->nkeys = NDUR;
	rd->first_notfound = -1;
	if (pthread_create(&rd->th, NULL, reader_main, rd) != 0)
		kvn_fatal("pthread_create");
	writer_start(w, "w");
	ok(wait_acked_since(w, 0, 300, 15000) == 0, "the writer has acknowledged puts before the crash");

	uint64_t t_kill = kvn_now_ms();
	signal_pid(pid_m, SIGKILL);
	ok(proc_wait(pid_m, 5000, &st) == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	   "kill -9 the master mid-workload");

	/* the outage: calls fail fast with a connection error, never hang */
	uint64_t t0 = kvn_now_ms();
	int rc = check_value(mc, "d", 0, NULL);
	uint64_t dt = kvn_now_ms() - t0;
	ok(outage_error(rc), "a get with the master down fails (%s)", kvn_strerror(rc));
	ok(dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "within the client deadline (%llu ms)", (unsigned long long)dt);
	t0 = kvn_now_ms();
	rc = kvn_ping(mc, NULL, NULL);
	dt = kvn_now_ms() - t0;
	ok((rc == KVN_ECONN || rc == KVN_ETIMEDOUT) && dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS,
	   "ping with the master down: %s after %llu ms", kvn_strerror(rc), (unsigned long long)dt);

	/* master.db as the crash left it: the durable rows are there */
	sql_text(DUR_ROWS_SQL, dur_after, sizeof dur_after);
	ok(dur_before[0] && strcmp(dur_before, dur_after) == 0,
	   "every durable row survives kill -9 in master.db (same gen, node, commit order)");
	usleep(700000); /* the workload keeps failing meanwhile */

	uint64_t t_restart = kvn_now_ms();
	log_m = "m2";
	pid_m = proc_spawn("m2", args_m);
	ok(proc_wait_log(log_m, "kvnode ready", 1, 15000) == 0, "master restarted on the same data dir");
	is_int(sql_int("select max(epoch) from epochs"), epoch1 + 1, "with the next generation epoch");
	ok(proc_wait_log(log_m, "node p1: full sync applied", 1, 10000) == 0 &&
		   proc_wait_log(log_m, "node p2: full sync applied", 1, 10000) == 0,
	   "both peers re-attached and full-synced");
	ok(wait_alive(mc, "p1", 1, 5000) == 0 && wait_alive(mc, "p2", 1, 5000) == 0,
	   "stat on the old client handle shows both peers alive again");
	uint64_t t_synced = kvn_now_ms();
	ok(wait_acked_since(w, t_synced, 200, 15000) == 0, "the writer's client works again after the restart");
	writer_stop(w);
	__atomic_store_n(&rd->stop, 1, __ATOMIC_RELEASE);
	pthread_join(rd->th, NULL);

	/* a reader of the durable keys ran all along: before the restart
	 * they are unavailable, after it they must not be "missing" while
	 * their peer lives, not even between a peer's attach and its sync */
	tap_diag("reader: %u gets, %u ok, %u KVN_ENOTFOUND (first: d/%d at %llu.%03llu s wall clock)", rd->gets, rd->ok,
		 rd->notfound, rd->first_notfound, (unsigned long long)rd->first_notfound_wall / 1000,
		 (unsigned long long)rd->first_notfound_wall % 1000);
	is_int(rd->notfound, 0, "no get of a durable key answered KVN_ENOTFOUND across the crash and restart");
	is_int(rd->other, 0, "the reader saw only successes and unavailable errors");
	ok(rd->longest_ms <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no get outlived the client deadline (%llu ms)",
	   (unsigned long long)rd->longest_ms);

	/* what the workload saw */
	uint32_t n = w->done, pre = 0, post = 0, outage_bad = 0;
	uint64_t longest = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wrec *r = &w->rec[i];
		if (r->t1 - r->t0 > longest)
			longest = r->t1 - r->t0;
		if (r->rc == 0) {
			pre += r->t1 < t_kill;
			post += r->t0 >= t_restart;
		} else if (!outage_error(r->rc)) {
			outage_bad++;
			if (outage_bad <= 5)
				tap_diag("put w/%u: %s", i, kvn_strerror(r->rc));
		}
	}
	tap_diag("writer: %u puts, %u acknowledged before the kill, %u started after the restart and acknowledged",
		 n, pre, post);
	ok(longest <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no put outlived the client deadline (longest %llu ms)",
	   (unsigned long long)longest);
	is_int(outage_bad, 0, "puts failed only with connection, timeout or no-peer errors");

	/* every acknowledged put, byte for byte */
	uint32_t acked = 0, lost = 0, wrong = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (w->rec[i].rc != 0)
			continue;
		acked++;
		rc = check_value(mc, "w", i, NULL);
		if (rc) {
			if (rc == KVN_EPROTO)
				wrong++;
			else
				lost++;
			if (lost + wrong <= 5)
				tap_diag("w/%u (acknowledged at +%lld ms from the kill): %s", i,
					 (long long)w->rec[i].t1 - (long long)t_kill, kvn_strerror(rc));
		}
	}
	ok(acked >= 500, "%u acknowledged puts", acked);
	is_int(lost, 0, "no acknowledged put is missing after the restart");
	is_int(wrong, 0, "every acknowledged put reads back byte for byte");
	bad = 0;
	for (uint32_t i = 0; i < NDUR; i++)
		bad += check_value(mc, "d", i, NULL) != 0;
	is_int(bad, 0, "the durable values read back too");

	/* generations: every new one above every one from before the crash */
	uint64_t *gens = kvn_xcalloc(n ? n : 1, sizeof *gens);
	long long rows = sql_wait("select count(*) from objects where state = 'live' and cast(key as text) glob 'w/*'", acked,
				  1, 10000);
	ok(rows >= acked, "the full syncs reached master.db (%lld rows)", rows);
	sql_rows("w", gens, NULL, n);
	uint64_t max_pre = 0, min_post = UINT64_MAX;
	uint32_t nogen = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wrec *r = &w->rec[i];
		if (r->rc != 0)
			continue;
		if (!gens[i])
			nogen++;
		else if (r->t1 < t_kill && gens[i] > max_pre)
			max_pre = gens[i];
		else if (r->t0 >= t_restart && gens[i] < min_post)
			min_post = gens[i];
	}
	is_int(nogen, 0, "every acknowledged put has its row in v_objects");
	ok(max_pre > 0 && min_post != UINT64_MAX && min_post > max_pre,
	   "generations after the restart (min %#llx) exceed every one before the crash (max %#llx)",
	   (unsigned long long)min_post, (unsigned long long)max_pre);
	ok((max_pre >> 32) == (uint64_t)epoch1 && (min_post >> 32) == (uint64_t)epoch1 + 1,
	   "old generations carry epoch %lld, new ones epoch %lld", epoch1, epoch1 + 1);
	sql_rows("d", dgens_after, NULL, NDUR);
	ok(memcmp(dgens, dgens_after, sizeof dgens) == 0 && dgens[0] >> 32 == (uint64_t)epoch1,
	   "durable rows keep their generations through the restart and the full sync");
	sql_text(DUR_ROWS_SQL, dur_after, sizeof dur_after);
	ok(strcmp(dur_before, dur_after) == 0, "and their node and commit order");

	/* a re-put of a key from before the crash supersedes it */
	is_int(put_value(mc, "d", 7, KVN_PUT_DURABLE), 0, "re-put of a pre-crash key");
	is_int(check_value(mc, "d", 7, NULL), 0, "reads back");
	uint64_t g7[NDUR];
	sql_rows("d", g7, NULL, NDUR);
	ok(g7[7] > dgens[7] && g7[7] > max_pre && (g7[7] >> 32) == (uint64_t)epoch1 + 1,
	   "its new generation %#llx is above the old %#llx", (unsigned long long)g7[7],
	   (unsigned long long)dgens[7]);

	/* the ballast goes: placement is by free DRAM, and the next cases
	 * want both peers about as full */
	is_int(ballast(0), 0, "the ballast can be removed after the restart");
	free(gens);
	free(w->rec);
	free(w);
	free(rd);
}

/* SIGTERM every process while a workload runs: each exits 0, quickly. */
static void t_sigterm(void)
{
	struct writer *w = kvn_xcalloc(1, sizeof *w);
	int sm = -1, s1 = -1, s2 = -1;
	restart_need_start();

	writer_start(w, "t");
	ok(wait_acked_since(w, 0, 100, 15000) == 0, "a put workload runs");
	uint64_t t0 = kvn_now_ms();
	signal_pid(pid_p1, SIGTERM);
	signal_pid(pid_p2, SIGTERM);
	signal_pid(pid_m, SIGTERM);
	int rm = proc_wait(pid_m, 10000, &sm), r1 = proc_wait(pid_p1, 10000, &s1),
	    r2 = proc_wait(pid_p2, 10000, &s2);
	uint64_t took = kvn_now_ms() - t0;
	ok(rm == 0 && exited_zero(sm), "the master exits 0 on SIGTERM (status %#x)", sm);
	ok(r1 == 0 && exited_zero(s1), "p1 exits 0 (status %#x)", s1);
	ok(r2 == 0 && exited_zero(s2), "p2 exits 0 (status %#x)", s2);
	ok(took <= 5000, "all three within %llu ms", (unsigned long long)took);
	ok(proc_log_count(log_m, "stopped") == 1 && proc_log_count("p1", "stopped") == 1 &&
		   proc_log_count(log_p2, "stopped") == 1,
	   "each says it stopped");
	writer_stop(w);
	uint64_t longest = 0;
	for (uint32_t i = 0; i < w->done; i++)
		if (w->rec[i].t1 - w->rec[i].t0 > longest)
			longest = w->rec[i].t1 - w->rec[i].t0;
	ok(longest <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS, "no put of the workload outlived the deadline (%llu ms)",
	   (unsigned long long)longest);
	free(w->rec);
	free(w);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "master_kill9", t_master_kill9 },
		{ "sigterm", t_sigterm },
		{ NULL, NULL },
	};
	return restart_main("restart", tests, argc, argv);
}
