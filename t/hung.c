/* t/hung: puts while a peer hangs (issue 11, item 11), through real
 * processes: a master and two peers, pa (more room: the master places puts
 * there) and pb.  With pa stopped (SIGSTOP: its connections stay open and
 * silent, and the master, with a long node_timeout, still places puts on
 * it), every put must succeed on pb well within the call deadline: one
 * attempt waits client.attempt_timeout, then pa is quarantined and left out
 * of the next ROUTE_PUT.  With both stopped, a put fails with KVN_ETIMEDOUT
 * at the call's deadline (client.attempt_timeout at its default), not
 * earlier and not with another code.  Stopped peers are always continued
 * (SIGCONT) before everything is killed at exit. */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

#define TIMEOUT_MS 4000
#define ATTEMPT_MS 600
/* well within the deadline, with room for a loaded 2-core VM */
#define FAST_MS 3000
#define SLACK_MS 1500
#define NPUTS 6

static char conf_m[300], conf_a[300], conf_b[300], conf_c[300], conf_q[300];
static pid_t pid_a, pid_b;
static int stopped_a, stopped_b;
static struct kvn_client *cm; /* client.attempt_timeout = ATTEMPT_MS */
static struct kvn_client *cd; /* client.attempt_timeout at its default */
static struct kvn_client *cq; /* attempt_timeout = ATTEMPT_MS, quarantine = 0 (off) */

/* Runs before proc_cleanup's kill (atexit runs in reverse order). */
static void continue_stopped(void)
{
	if (stopped_a && pid_a > 0)
		kill(pid_a, SIGCONT);
	if (stopped_b && pid_b > 0)
		kill(pid_b, SIGCONT);
	stopped_a = stopped_b = 0;
}

/* 1 when every thread of pid is stopped (state T in its stat file). */
static int all_stopped(pid_t pid)
{
	char path[300], buf[512];
	struct dirent *d;
	int tasks = 0, stopped = 0;

	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return 0;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%.32s/stat", (int)pid, d->d_name);
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = '\0';
		const char *e = strrchr(buf, ')'); /* "tid (comm) S ..." */
		tasks++;
		stopped += e && e[1] == ' ' && (e[2] == 'T' || e[2] == 't');
	}
	closedir(dir);
	return tasks > 0 && stopped == tasks;
}

/* Stop pid and wait (bounded) until the kernel shows every thread of it
 * stopped: kill() only queues the signal.  0, or -1. */
static int stop_proc(pid_t pid)
{
	/* never pid 0 or -1 (this process group, everything) */
	if (pid <= 0 || kill(pid, SIGSTOP) != 0)
		return -1;
	for (uint64_t until = kvn_now_ms() + 5000; kvn_now_ms() < until; usleep(1000))
		if (all_stopped(pid))
			return 0;
	return -1;
}

static void t_start(void)
{
	char data_m[300], data_p[300], extra[1200], extra_c[1400], extra_q[1500];
	uint16_t mp = proc_free_port(), pa = proc_free_port(), pb = proc_free_port();

	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_a, sizeof conf_a, "%s/pa.conf", proc_tmp);
	snprintf(conf_b, sizeof conf_b, "%s/pb.conf", proc_tmp);
	snprintf(conf_c, sizeof conf_c, "%s/c.conf", proc_tmp);
	snprintf(conf_q, sizeof conf_q, "%s/q.conf", proc_tmp);
	/* the master must not declare a stopped peer dead during the test:
	 * the client alone has to route around it */
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 120s\n[client]\ntimeout = %ums\nquarantine = 30s\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 TIMEOUT_MS, data_m, data_m);
	proc_write_conf(conf_m, mp, pa, data_m, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-pa", proc_tmp);
	proc_write_conf(conf_a, mp, pa, data_p, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-pb", proc_tmp);
	proc_write_conf(conf_b, mp, pb, data_p, "32MiB", extra);
	snprintf(extra_c, sizeof extra_c, "%s[client]\nattempt_timeout = %ums\n", extra, ATTEMPT_MS);
	proc_write_conf(conf_c, mp, pa, data_m, "64MiB", extra_c);
	snprintf(extra_q, sizeof extra_q, "%s[client]\nquarantine = 0\n", extra_c);
	proc_write_conf(conf_q, mp, pa, data_m, "64MiB", extra_q);

	const char *args_m[] = { "--role", "master", "--config", conf_m, NULL };
	const char *args_a[] = { "--role", "peer", "--config", conf_a, "--set", "node.id=pa", NULL };
	const char *args_b[] = { "--role", "peer", "--config", conf_b, "--set", "node.id=pb", NULL };
	proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	pid_a = proc_spawn("pa", args_a);
	pid_b = proc_spawn("pb", args_b);
	cm = proc_connect_ready(conf_c, 2);
	cd = proc_connect_ready(conf_m, 2);
	cq = proc_connect_ready(conf_q, 2);
	ok(cm && cd && cq, "two peers attached, three clients connected");
	if (!cm || !cd || !cq)
		exit(1);
}

/* Cases start the cluster when run alone. */
static void need_start(void)
{
	if (!cm)
		t_start();
}

/* pa hangs from here on (one_hung stops it; the cases after it, run
 * alone, need it stopped too). */
static void stop_a(void)
{
	if (stopped_a)
		return;
	stopped_a = 1;
	ok(stop_proc(pid_a) == 0, "pa stopped (SIGSTOP)");
}

static int put_where(struct kvn_client *c, const char *key, char node[65], uint64_t *ms)
{
	static uint8_t v[5000];
	struct kvn_slot s;

	proc_fill(v, sizeof v, (uint64_t)key[strlen(key) - 1]);
	uint64_t t0 = kvn_now_ms();
	int rc = kvn_put(c, key, strlen(key), v, sizeof v, 0);
	*ms = kvn_now_ms() - t0;
	node[0] = '\0';
	memset(&s, 0, sizeof s);
	s.key = key;
	s.klen = strlen(key);
	if (rc == 0) {
		int rrc = kvn_resolve(c, &s, 1);
		if (rrc == 0)
			snprintf(node, 65, "%s", s.node_id);
		else
			tap_diag("resolve %s: %s", key, kvn_strerror(rrc));
	}
	return rc;
}

static void t_placement(void)
{
	char node[65];
	uint64_t ms;

	need_start();
	is_int(put_where(cm, "h/0", node, &ms), 0, "with both peers up, a put succeeds");
	is_str(node, "pa", "on pa, which has more room");
}

static void t_one_hung(void)
{
	char node[65], key[16];
	uint64_t ms, worst = 0;
	int good = 0, on_b = 0;

	need_start();
	stop_a();
	for (int i = 1; i <= NPUTS; i++) {
		snprintf(key, sizeof key, "h/%d", i);
		int rc = put_where(cm, key, node, &ms);
		if (rc)
			tap_diag("put %s: %s after %llu ms", key, kvn_strerror(rc), (unsigned long long)ms);
		if (strcmp(node, "pb") != 0)
			tap_diag("put %s: %s, %llu ms, on '%s'", key, kvn_strerror(rc), (unsigned long long)ms, node);
		good += rc == 0;
		on_b += strcmp(node, "pb") == 0;
		if (ms > worst)
			worst = ms;
	}
	is_int(good, NPUTS, "every put succeeds while pa hangs");
	is_int(on_b, NPUTS, "each on pb");
	ok(worst < FAST_MS, "each well within the %u ms deadline (slowest %llu ms)", TIMEOUT_MS,
	   (unsigned long long)worst);

	/* quarantine off: each put tries pa once, then avoids it */
	good = on_b = 0;
	worst = 0;
	for (int i = 1; i <= 2; i++) {
		snprintf(key, sizeof key, "q/%d", i);
		int rc = put_where(cq, key, node, &ms);
		if (rc || strcmp(node, "pb") != 0)
			tap_diag("put %s: %s, %llu ms, on '%s'", key, kvn_strerror(rc), (unsigned long long)ms, node);
		good += rc == 0;
		on_b += strcmp(node, "pb") == 0;
		if (ms > worst)
			worst = ms;
	}
	ok(good == 2 && on_b == 2 && worst < FAST_MS,
	   "with client.quarantine = 0 too: on pb, after one attempt on pa (slowest %llu ms)",
	   (unsigned long long)worst);
}

static int async_done;

static void on_async_done(void *arg, int status)
{
	(void)arg;
	async_done += status == 0;
}

/* The same for async puts, from a client that has not met pa yet: one
 * attempt's limit, then pa is quarantined, left out, and the puts land on
 * pb well before their deadline. */
static void t_one_hung_async(void)
{
	static uint8_t v[5000];
	struct kvn_put_failure f[NPUTS];
	char key[16];
	int started = 0, on_b = 0;

	need_start();
	stop_a();
	struct kvn_client *ca = proc_connect_ready(conf_c, 2);
	ok(ca != NULL, "a new client (pa still stopped)");
	if (!ca)
		return;
	async_done = 0;
	uint64_t t0 = kvn_now_ms();
	for (int i = 1; i <= NPUTS; i++) {
		snprintf(key, sizeof key, "a/%d", i);
		started += kvn_put_async(ca, key, strlen(key), v, sizeof v, 0, on_async_done, NULL) == 0;
	}
	kvn_drain(ca);
	uint64_t ms = kvn_now_ms() - t0;
	size_t nf = kvn_poll_failures(ca, f, NPUTS);
	for (size_t i = 0; i < nf; i++)
		tap_diag("async put failed: %s", kvn_strerror(f[i].status));
	is_int(started, NPUTS, "%d async puts started", NPUTS);
	is_int(async_done, NPUTS, "every one succeeds while pa hangs");
	ok(ms < FAST_MS, "all within %u ms of a %u ms deadline (%llu ms)", FAST_MS, TIMEOUT_MS,
	   (unsigned long long)ms);
	for (int i = 1; i <= NPUTS; i++) {
		snprintf(key, sizeof key, "a/%d", i);
		struct kvn_slot sl = { .key = key, .klen = strlen(key) };
		if (kvn_resolve(cm, &sl, 1) == 0 && strcmp(sl.node_id, "pb") == 0)
			on_b++;
	}
	is_int(on_b, NPUTS, "each on pb");
	kvn_close(ca);
}

static void t_all_hung(void)
{
	char node[65];
	uint64_t ms;

	need_start();
	stop_a();
	stopped_b = 1;
	ok(stop_proc(pid_b) == 0, "pb stopped too: no peer answers");
	int rc = put_where(cd, "h/all", node, &ms);
	is_int(rc, KVN_ETIMEDOUT, "a put fails with KVN_ETIMEDOUT");
	ok(ms + 50 >= TIMEOUT_MS && ms < TIMEOUT_MS + SLACK_MS, "at the call's deadline, not before (%llu ms)",
	   (unsigned long long)ms);
}

static void t_resume(void)
{
	char node[65];
	uint64_t ms;

	need_start();
	continue_stopped();
	int rc = 1;
	for (uint64_t until = kvn_now_ms() + 10000; rc != 0 && kvn_now_ms() < until;)
		rc = put_where(cd, "h/after", node, &ms);
	is_int(rc, 0, "both continued: puts succeed again");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "placement", t_placement },
		{ "one_hung", t_one_hung },
		{ "one_hung_async", t_one_hung_async },
		{ "all_hung", t_all_hung },
		{ "resume", t_resume },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("hung") != 0)
		return 1;
	atexit(continue_stopped);
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	rc = tap_run(tests, argc, argv);
	continue_stopped();
	kvn_close(cm);
	kvn_close(cd);
	kvn_close(cq);
	return rc;
}
