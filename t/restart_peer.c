/* t/restart_peer: peers of real kvnode processes that die (a master and
 * two peers, each its own process; the cluster is t/restart_env.h).  kill
 * -9 of a peer (its keys fail fast, the other peer's keep working) and its
 * restart with the same node.id (the master learns its keys are gone by
 * full sync, long before node_timeout); master.db across a master restart
 * (nodes and committed rows kept, rows of a node that never returns marked
 * lost after node_timeout).  The master's crash is t/restart. */
#include "config.h"

#include "restart_env.h"

/* k2/0..k2_written-1: put on p1 by peer_kill9 while p2 was dead */
static uint32_t k2_written;

/* ---- cases ---- */

static void t_start(void)
{
	restart_start();
}

/* kill -9 peer p2; restart it with the same node.id. */
static void t_peer_kill9(void)
{
	enum { NK = 1500, WANT = 25 };
	static int on_p2[NK];
	int n1 = 0, n2 = 0, st = 0, bad = 0;
	uint32_t nk = 0;
	restart_need_start();

	/* placement is by free DRAM: put keys until both peers hold some
	 * (master.db says where each is) */
	while (nk < NK && (n1 < WANT || n2 < WANT)) {
		for (uint32_t j = 0; j < 50; j++, nk++)
			bad += put_value(mc, "k", nk, 0) != 0;
		sql_wait("select count(*) from objects where cast(key as text) glob 'k/*'", nk, 0, 5000);
		sql_rows("k", NULL, on_p2, nk);
		n1 = n2 = 0;
		for (uint32_t i = 0; i < nk; i++) {
			n1 += on_p2[i] == 0;
			n2 += on_p2[i] == 1;
		}
	}
	is_int(bad, 0, "%u puts", nk);
	ok(n1 >= WANT && n2 >= WANT, "%d of them on p1 and %d on p2 (by master.db)", n1, n2);

	signal_pid(pid_p2, SIGKILL);
	ok(proc_wait(pid_p2, 5000, &st) == 0 && WIFSIGNALED(st), "kill -9 peer p2");
	int dead_ok = 1, dead_fast = 1, live_ok = 1;
	uint64_t longest = 0;
	for (uint32_t i = 0; i < nk; i++) {
		uint64_t ms = 0;
		if (on_p2[i] < 0)
			continue;
		int rc = check_value(mc, "k", i, &ms);
		if (ms > longest)
			longest = ms;
		if (on_p2[i] == 1) {
			if (rc != KVN_ECONN && rc != KVN_EPEERDOWN && rc != KVN_ETIMEDOUT) {
				dead_ok = 0;
				tap_diag("k/%u on the dead peer: %s", i, kvn_strerror(rc));
			}
			if (ms > CLIENT_TIMEOUT_MS + CALL_SLACK_MS)
				dead_fast = 0;
		} else if (rc != 0) {
			live_ok = 0;
			tap_diag("k/%u on the live peer: %s", i, kvn_strerror(rc));
		}
	}
	ok(dead_ok, "keys on the dead peer fail with ECONN, EPEERDOWN or ETIMEDOUT");
	ok(dead_fast, "each within the client deadline (longest get %llu ms)", (unsigned long long)longest);
	ok(live_ok, "keys on p1 read back byte for byte");
	bad = 0;
	for (uint32_t i = 0; i < 20; i++)
		bad += put_value(mc, "k2", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "new puts keep working");
	k2_written = bad ? 0 : 20;
	is_int(sql_int("select count(*) from v_objects where key glob 'k2/*' and node_id = 'p1'"), 20,
	       "and land on the surviving peer");

	/* back with the same node.id: the master learns by full sync that
	 * its keys are gone (node_timeout is 30 s) */
	uint64_t t_spawn = kvn_now_ms();
	log_p2 = "p2b";
	pid_p2 = proc_spawn("p2b", args_p2);
	int gone = 0;
	uint64_t until = t_spawn + 10000;
	while (!gone && kvn_now_ms() < until) {
		gone = 1;
		for (uint32_t i = 0; i < nk && gone; i++)
			if (on_p2[i] == 1 && check_value(mc, "k", i, NULL) != KVN_ENOTFOUND)
				gone = 0;
		if (!gone)
			usleep(20000);
	}
	uint64_t took = kvn_now_ms() - t_spawn;
	ok(gone, "every old key of p2 answers KVN_ENOTFOUND after it restarts (%llu ms after the spawn)",
	   (unsigned long long)took);
	ok(took < NODE_TIMEOUT_MS / 3, "well before master.node_timeout (%u ms)", NODE_TIMEOUT_MS);
	is_int(proc_log_count(log_m, "node p2 attached (new boot: it restarted)"), 1,
	       "the master saw a new boot and asked for a full sync");
	is_int(proc_log_count(log_m, "declared dead"), 0, "and declared nothing dead");
	is_int(sql_wait("select count(*) from objects where node_id = 'p2'", 0, 0, 5000), 0,
	       "the old rows of p2 left master.db");
	ok(wait_alive(mc, "p2", 1, 5000) == 0, "stat shows p2 alive");

	/* an empty p2 has the most free DRAM: new puts go there, once this
	 * client's quarantine of p2 (its failures above; client.quarantine is
	 * 300 ms here) is over: until then placement leaves p2 out */
	usleep(400 * 1000);
	/* an empty p2 has the most free DRAM: new puts go there */
	bad = 0;
	for (uint32_t i = 0; i < 10; i++)
		bad += put_value(mc, "k3", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "10 new puts");
	long long on2 = sql_int("select count(*) from v_objects where key glob 'k3/*' and node_id = 'p2'");
	ok(on2 >= 5, "%lld of them landed on the restarted p2", on2);
	bad = 0;
	for (uint32_t i = 0; i < 10; i++)
		bad += check_value(mc, "k3", i, NULL) != 0;
	is_int(bad, 0, "and read back");
	bad = 0;
	for (uint32_t i = 0; i < nk; i++)
		bad += on_p2[i] == 0 && check_value(mc, "k", i, NULL) != 0;
	is_int(bad, 0, "p1's keys are still there");
}

/* master.db across a restart; a node that never returns becomes lost. */
static void t_master_db(void)
{
	enum { NS = 40 };
	static char rows_before[65536], rows[65536], p1_before[65536], p1_after[65536];
	char nodes_before[512], nodes[512], q[300];
	const char *rows_sql = "select group_concat(key || '=' || gen || '@' || node_id || '#' || commit_seq || ':' || "
			       "state, ',') from (select * from v_objects order by commit_seq)";
	const char *p1_sql = "select group_concat(key || '=' || gen || '#' || commit_seq || ':' || state, ',') from "
			     "(select * from v_objects where node_id = 'p1' order by commit_seq)";
	const char *nodes_sql =
		"select group_concat(node_id || '@' || addr, ',') from (select * from nodes order by node_id)";
	int bad = 0, st = 0, on_p2[NS];
	restart_need_start();

	for (uint32_t i = 0; i < NS; i++)
		bad += put_value(mc, "s", i, KVN_PUT_DURABLE) != 0;
	is_int(bad, 0, "%d more durable puts", NS);
	long long n1 = sql_int("select count(*) from objects where node_id = 'p1'");
	long long n2 = sql_int("select count(*) from objects where node_id = 'p2'");
	ok(n1 > 0 && n2 > 0, "master.db: %lld rows on p1, %lld on p2", n1, n2);
	for (uint32_t i = 0; i < NS; i++) {
		snprintf(q, sizeof q, "select node_id = 'p2' from v_objects where key = 's/%u'", i);
		on_p2[i] = (int)sql_int(q);
	}
	sql_text(rows_sql, rows_before, sizeof rows_before);
	sql_text(p1_sql, p1_before, sizeof p1_before);
	sql_text(nodes_sql, nodes_before, sizeof nodes_before);
	ok(strstr(nodes_before, "p1@") && strstr(nodes_before, "p2@"), "nodes rows: %s", nodes_before);

	/* the master and p2 die; p2 never comes back */
	signal_pid(pid_m, SIGKILL);
	signal_pid(pid_p2, SIGKILL);
	ok(proc_wait(pid_m, 5000, &st) == 0 && proc_wait(pid_p2, 5000, &st) == 0, "kill -9 the master and p2");
	sql_text(rows_sql, rows, sizeof rows);
	ok(rows_before[0] && strcmp(rows, rows_before) == 0,
	   "master.db holds the committed set after the crash (keys, gens, nodes, commit order)");
	sql_text(nodes_sql, nodes, sizeof nodes);
	is_str(nodes, nodes_before, "and the nodes");

	char set_to[64];
	snprintf(set_to, sizeof set_to, "master.node_timeout=%ums", LOST_TIMEOUT_MS);
	const char *args[] = { "--role", "master", "--config", conf_m, "--set", set_to, NULL };
	uint64_t t_spawn = kvn_now_ms();
	log_m = "m3";
	pid_m = proc_spawn("m3", args);
	ok(proc_wait_log(log_m, "kvnode ready", 1, 15000) == 0, "master restarted with node_timeout %u ms",
	   LOST_TIMEOUT_MS);
	snprintf(q, sizeof q, "2 nodes and %lld objects loaded", n1 + n2);
	ok(proc_log_count(log_m, q) == 1, "it loaded both nodes and every row from master.db");
	sql_text(rows_sql, rows, sizeof rows);
	uint64_t age = kvn_now_ms() - t_spawn;
	ok(strcmp(rows, rows_before) == 0 && !strstr(rows, ":lost"),
	   "%llu ms after the start every row is still there and live", (unsigned long long)age);
	ok(proc_wait_log(log_m, "node p1: full sync applied", 1, 10000) == 0, "p1 re-attached and full-synced");

	/* mc has been idle since before the crash: its connection to the
	 * master died with it.  The master is back, so the call has its
	 * whole deadline to reconnect. */
	int rc = kvn_ping(mc, NULL, NULL);
	is_int(rc, 0, "an idle client's first call after the master restarted succeeds (%s)", kvn_strerror(rc));

	/* p2 stays silent: after node_timeout its rows are lost, p1's untouched */
	long long lost = sql_wait("select count(*) from objects where node_id = 'p2' and state = 'lost'", n2, 0,
				  LOST_TIMEOUT_MS + 10000);
	uint64_t took = kvn_now_ms() - t_spawn;
	is_int(lost, n2, "every row of p2 is marked lost");
	ok(took >= LOST_TIMEOUT_MS - 200, "after node_timeout (%llu ms after the start)", (unsigned long long)took);
	is_str(sql_text("select state from nodes where node_id = 'p2'", q, sizeof q) == 0 ? q : "?", "dead",
	       "p2 is dead in the nodes table");
	sql_text(p1_sql, p1_after, sizeof p1_after);
	ok(p1_before[0] && strcmp(p1_after, p1_before) == 0 && !strstr(p1_after, ":lost"),
	   "p1's rows stay live with their generations and commit order");

	int nf = 0, want_nf = 0;
	for (uint32_t i = 0; i < NS; i++) {
		if (on_p2[i] != 1)
			continue;
		want_nf++;
		rc = check_value(mc, "s", i, NULL);
		nf += rc == KVN_ENOTFOUND;
		if (rc != KVN_ENOTFOUND)
			tap_diag("s/%u on the dead p2: %s", i, kvn_strerror(rc));
	}
	ok(want_nf > 0 && nf == want_nf, "the dead node's keys answer KVN_ENOTFOUND (%d of %d)", nf, want_nf);
	bad = 0;
	for (uint32_t i = 0; i < k2_written; i++) /* peer_kill9's, if it ran */
		bad += check_value(mc, "k2", i, NULL) != 0;
	for (uint32_t i = 0; i < NS; i++)
		bad += on_p2[i] == 0 && check_value(mc, "s", i, NULL) != 0;
	is_int(bad, 0, "p1's keys read back byte for byte");
	is_int(node_alive(mc, "p2"), 0, "stat shows p2 dead");
	is_int(node_alive(mc, "p1"), 1, "and p1 alive");

	/* p2 comes back after all (for the SIGTERM case) */
	log_p2 = "p2c";
	pid_p2 = proc_spawn("p2c", args_p2);
	ok(wait_alive(mc, "p2", 1, 10000) == 0, "a dead node that returns is alive again");
	ok(proc_log_count(log_m, "node p2 attached (it was declared dead)") == 1, "after a full sync");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "peer_kill9", t_peer_kill9 },
		{ "master_db", t_master_db },
		{ NULL, NULL },
	};
	return restart_main("restart_peer", tests, argc, argv);
}
