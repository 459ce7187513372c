/* t/restart_db: a master restarted without its master.db, with real
 * processes on loopback (a master and one peer, each its own process).
 * The peer still holds a key written at epoch 2; the new master starts at
 * epoch 1.  A put issued the moment the master is back (its peer stopped,
 * so no peer is attached yet) must wait for the peer within its deadline,
 * not fail with KVN_ENOPEER; and `put x NEW` must win over the old x: the
 * master raises its epoch above the generation the peer reports before it
 * routes a put, so the peer that holds x takes the new generation and
 * `get x` answers NEW. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define CLIENT_TIMEOUT_MS 5000
#define CALL_SLACK_MS 1000
#define STOPPED_MS 300 /* the peer stays stopped this long after the master is back */

static char conf_m[300], conf_p[300], db[320];
static const char *const args_m[] = { "--role", "master", "--config", conf_m, NULL };
static const char *const args_p[] = { "--role", "peer", "--config", conf_p, "--set", "node.id=p1", NULL };
static pid_t pid_m, pid_p;
static struct kvn_client *mc;

static int put_str(const char *key, const char *val, uint64_t *gen)
{
	return kvn_put_gen(mc, key, strlen(key), val, strlen(val), KVN_PUT_DURABLE, gen);
}

/* 0 and the value of key in buf, or the error. */
static int get_str(const char *key, char *buf, size_t cap)
{
	size_t vlen = 0;
	int rc = kvn_get(mc, key, strlen(key), buf, cap - 1, &vlen);
	buf[rc == 0 ? vlen : 0] = '\0';
	return rc;
}

/* kill(), but never of pid 0 or -1 (this process group, everything):
 * a case run on its own has no pids. */
static void signal_pid(pid_t pid, int sig)
{
	if (pid > 0)
		kill(pid, sig);
}

static int async_ok;

static void on_async(void *arg, int status)
{
	(void)arg;
	async_ok = status == 0;
}

static void *cont_later(void *arg)
{
	(void)arg;
	usleep(STOPPED_MS * 1000);
	signal_pid(pid_p, SIGCONT);
	return NULL;
}

static int kill9_master(const char *why)
{
	int st = 0;
	signal_pid(pid_m, SIGKILL);
	int rc = proc_wait(pid_m, 5000, &st) == 0 && WIFSIGNALED(st);
	ok(rc, "kill -9 the master (%s)", why);
	return rc;
}

/* A master (epoch 1) and p1, each its own process, and a client. */
static void start(void)
{
	char data_m[300], data_p[300], extra[1000];
	uint16_t mp = proc_free_port(), pp = proc_free_port();

	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(data_p, sizeof data_p, "%s/var-p", proc_tmp);
	snprintf(db, sizeof db, "%s/master.db", data_m);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_p, sizeof conf_p, "%s/p.conf", proc_tmp);
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 30s\n[client]\ntimeout = %ums\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 CLIENT_TIMEOUT_MS, data_m, data_m);
	proc_write_conf(conf_m, mp, pp, data_m, "64MiB", extra);
	proc_write_conf(conf_p, mp, pp, data_p, "64MiB", extra);

	pid_m = proc_spawn("m1", args_m);
	ok(proc_wait_log("m1", "kvnode ready", 1, 15000) == 0, "master up (epoch 1)");
	pid_p = proc_spawn("p1", args_p);
	mc = proc_connect_ready(conf_m, 1);
	ok(mc != NULL, "peer attached, client connected");
	if (!mc)
		exit(1);
}

static void t_lost_db(void)
{
	char buf[64], path[400];
	uint64_t gen_old = 0, gen_new = 0;

	start();
	/* a restart with master.db: epoch 2, so the old key's generation is
	 * above what a master without master.db starts with */
	if (!kill9_master("first restart"))
		return;
	pid_m = proc_spawn("m2", args_m);
	ok(proc_wait_log("m2", "node p1: full sync applied", 1, 15000) == 0, "restarted on master.db; p1 re-synced");
	is_int(put_str("x", "OLD", &gen_old), 0, "put x OLD");
	is_int((int)(gen_old >> 32), 2, "at epoch 2 (gen %#llx)", (unsigned long long)gen_old);

	/* master.db is lost; the peer is stopped so nothing is attached
	 * when the master is back */
	signal_pid(pid_p, SIGSTOP);
	if (!kill9_master("master.db about to be lost"))
		return;
	const char *suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s%s", db, suffix[i]);
		unlink(path);
	}
	ok(access(db, F_OK) != 0, "master.db deleted");
	pid_m = proc_spawn("m3", args_m);
	ok(proc_wait_log("m3", "kvnode ready", 1, 15000) == 0, "the master restarts with an empty master.db");

	/* item 13: a put right away; the peer comes back STOPPED_MS later */
	pthread_t th;
	if (pthread_create(&th, NULL, cont_later, NULL) != 0)
		kvn_fatal("pthread_create");
	uint64_t t0 = kvn_now_ms();
	int arc = kvn_put_async(mc, "ya", 2, "async", 5, 0, on_async, NULL);
	int rc = put_str("y", "first", NULL);
	uint64_t dt = kvn_now_ms() - t0;
	pthread_join(th, NULL);
	is_int(rc, 0, "a put issued before any peer attached succeeds (%s)", kvn_strerror(rc));
	ok(dt >= STOPPED_MS / 2 && dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS,
	   "by waiting for the peer within its deadline (%llu ms)", (unsigned long long)dt);
	struct kvn_put_failure f[1];
	size_t nf = 0;
	if (arc == 0) {
		kvn_drain(mc);
		nf = kvn_poll_failures(mc, f, 1);
	}
	ok(arc == 0 && async_ok, "so does an async put issued with it (%s)",
	   nf ? kvn_strerror(f[0].status) : arc ? kvn_strerror(arc) : "ok");

	/* item 2: the new x must win over the old one the peer holds */
	is_int(put_str("x", "NEW", &gen_new), 0, "put x NEW, routed to the peer that holds x");
	ok(gen_new > gen_old, "its generation %#llx is above the old %#llx", (unsigned long long)gen_new,
	   (unsigned long long)gen_old);
	rc = get_str("x", buf, sizeof buf);
	ok(rc == 0 && strcmp(buf, "NEW") == 0, "get x answers NEW (%s, '%s')", kvn_strerror(rc), buf);
	is_int(proc_sql_int(db, "select max(epoch) from epochs"), 3, "master.db records the raised epoch 3");
	ok(proc_log_count("m3", "epoch 3 committed") == 1, "the master says so");
	rc = get_str("y", buf, sizeof buf);
	ok(rc == 0 && strcmp(buf, "first") == 0, "y reads back");

	/* and the next restart starts above it */
	if (!kill9_master("after the raise"))
		return;
	pid_m = proc_spawn("m4", args_m);
	ok(proc_wait_log("m4", "node p1: full sync applied", 1, 15000) == 0, "restarted on the new master.db");
	is_int(proc_sql_int(db, "select max(epoch) from epochs"), 4, "at epoch 4");
	rc = get_str("x", buf, sizeof buf);
	ok(rc == 0 && strcmp(buf, "NEW") == 0, "x is still NEW (%s, '%s')", kvn_strerror(rc), buf);
}

/* The master restarts on its master.db while p1 is stopped: keys from
 * before the start are "not ready" until p1 re-syncs, and a call issued at
 * once waits for that within its deadline (a get, then an exists: both
 * gave up at once on the master's KVN_EBUSY). */
static void t_not_ready(void)
{
	char buf[64], name[8];

	if (!mc) { /* run alone: the x that lost_db leaves, durable in master.db */
		start();
		is_int(put_str("x", "NEW", NULL), 0, "put x NEW");
	}
	for (int round = 0; round < 2; round++) {
		signal_pid(pid_p, SIGSTOP);
		if (!kill9_master(round ? "before an exists" : "before a get"))
			return;
		snprintf(name, sizeof name, "m%d", 5 + round);
		pid_m = proc_spawn(name, args_m);
		ok(proc_wait_log(name, "kvnode ready", 1, 15000) == 0, "restarted on master.db, p1 stopped");
		pthread_t th;
		if (pthread_create(&th, NULL, cont_later, NULL) != 0)
			kvn_fatal("pthread_create");
		uint64_t t0 = kvn_now_ms();
		int rc = round ? kvn_exists(mc, "x", 1) : get_str("x", buf, sizeof buf);
		uint64_t dt = kvn_now_ms() - t0;
		pthread_join(th, NULL);
		if (round)
			is_int(rc, 1, "exists x, issued before p1 re-synced, answers 1 (%s)", rc < 0 ? kvn_strerror(rc) : "");
		else
			ok(rc == 0 && strcmp(buf, "NEW") == 0, "get x, issued before p1 re-synced, answers NEW (%s, '%s')",
			   kvn_strerror(rc), buf);
		ok(dt >= STOPPED_MS / 2 && dt <= CLIENT_TIMEOUT_MS + CALL_SLACK_MS,
		   "after waiting for the re-sync within the deadline (%llu ms)", (unsigned long long)dt);
	}
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "lost_db", t_lost_db },
		{ "not_ready", t_not_ready },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("restart_db") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(90);
	rc = tap_run(tests, argc, argv);
	kvn_close(mc);
	return rc;
}
