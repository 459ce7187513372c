/*
 * t/proc.h: helpers for the C tests that run real kvnode processes on
 * loopback (t/store, t/restart): a private temp dir, free ports, config
 * files, spawning kvnode with its output in DIR/NAME.log, bounded waits
 * for exit, a watchdog, and a cleanup at exit that kills every process it
 * started.  Header-only like tap.h: static inline, so a test that does not
 * use a helper gets no unused-function warning.
 */
#ifndef KVN_T_PROC_H
#define KVN_T_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "net/net.h"
#include "tap.h"

extern char **environ;

#define PROC_MAX 32

static char proc_tmp[256];        /* the test's private directory */
static pid_t proc_pids[PROC_MAX]; /* started, not reaped yet; 0: free slot */
static int proc_npids;
static int proc_logs_on_failure; /* cleanup prints each log's tail when a test failed */

/* A loopback port nobody listens on right now, below the kernel's
 * ephemeral range: a port the kernel hands out would also be the source
 * port of any outgoing connection (tests running beside this one open
 * hundreds), so a node could find its listening port taken before it
 * binds.  Never the same port twice in one test program. */
static inline uint16_t proc_free_port(void)
{
	static uint16_t given[256];
	static unsigned ngiven;
	unsigned lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%u", &lo) != 1 || lo < 12000)
			lo = 32768;
		fclose(f);
	}
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t r = 0;
		if (kvn_random(&r, sizeof r) != 0)
			r = (uint32_t)getpid() * 2654435761u + (uint32_t)tries;
		uint16_t port = (uint16_t)(10000 + r % (lo - 10000));
		int dup = 0;
		for (unsigned i = 0; i < ngiven; i++)
			dup |= given[i] == port;
		if (dup)
			continue;
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int free_now = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
		if (fd >= 0)
			close(fd);
		if (!free_now)
			continue;
		if (ngiven < sizeof given / sizeof given[0])
			given[ngiven++] = port;
		return port;
	}
	return 0;
}

static inline const char *proc_kvnode_bin(void)
{
	static char path[512];
	const char *b = getenv("KVN_BUILDDIR");
	snprintf(path, sizeof path, "%s/kvnode", b ? b : KVN_BUILDDIR);
	return path;
}

/* Start `kvnode ARGS...` (NULL-terminated) with stdout and stderr appended
 * to proc_tmp/NAME.log; returns its pid.  The pid is killed at exit unless
 * proc_wait reaped it first. */
static inline pid_t proc_spawn(const char *name, const char *const *args)
{
	char log[512];
	const char *argv[32];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int n = 0, slot = -1;

	argv[n++] = proc_kvnode_bin();
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	for (int i = 0; i < proc_npids && slot < 0; i++)
		if (proc_pids[i] == 0)
			slot = i;
	if (slot < 0) {
		if (proc_npids == PROC_MAX)
			kvn_fatal("proc_spawn: more than %d processes", PROC_MAX);
		slot = proc_npids++;
	}
	snprintf(log, sizeof log, "%s/%s.log", proc_tmp, name);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ) != 0)
		kvn_fatal("cannot start %s", argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	proc_pids[slot] = pid;
	return pid;
}

static inline void proc_forget(pid_t pid)
{
	for (int i = 0; i < proc_npids; i++)
		if (proc_pids[i] == pid)
			proc_pids[i] = 0;
}

/* Wait up to timeout_ms for pid to exit.  0 and its wait status in *status
 * (may be NULL), or -1 if it is still running (or pid is not a pid).  A reaped pid is forgotten,
 * so cleanup never signals a number the system may have reused. */
static inline int proc_wait(pid_t pid, uint64_t timeout_ms, int *status)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	int st = 0;
	if (pid <= 0) /* never "any child" or a process group */
		return -1;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD)) {
			proc_forget(pid);
			if (status)
				*status = r == pid ? st : -1;
			return 0;
		}
		if (kvn_now_ms() >= until)
			return -1;
		usleep(10000);
	}
}

/* Signal pid and wait for it (bounded); SIGKILL and -1 if it outlived
 * timeout_ms.  Else 0 and its wait status in *status. */
static inline int proc_stop(pid_t pid, int sig, uint64_t timeout_ms, int *status)
{
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	if (proc_wait(pid, timeout_ms, status) == 0)
		return 0;
	kill(pid, SIGKILL);
	(void)proc_wait(pid, 5000, NULL);
	return -1;
}

static inline void proc_kill_all(void)
{
	for (int i = 0; i < proc_npids; i++)
		if (proc_pids[i] > 0) {
			kill(proc_pids[i], SIGKILL);
			waitpid(proc_pids[i], NULL, 0);
			proc_pids[i] = 0;
		}
}

static inline void proc_cleanup(void)
{
	char cmd[600];
	proc_kill_all();
	if (proc_logs_on_failure && tap_failed) {
		snprintf(cmd, sizeof cmd,
			 "for f in '%s'/*.log; do [ -f \"$f\" ] || continue; echo \"# ---- $f (last 25 lines)\"; "
			 "tail -n 25 \"$f\" | sed 's/^/#   /'; done",
			 proc_tmp);
		fflush(stdout);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot show the logs of %s\n", proc_tmp);
	}
	snprintf(cmd, sizeof cmd, getenv("KVN_KEEP") ? "true %s" : "rm -rf '%s'", proc_tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", proc_tmp);
}

/* Make the private directory $TMPDIR/kvn-NAME.XXXXXX, clean it up (and kill
 * every started process) at exit, ignore SIGPIPE.  0 or -1. */
static inline int proc_init(const char *name)
{
	const char *t = getenv("TMPDIR");
	snprintf(proc_tmp, sizeof proc_tmp, "%s/kvn-%s.XXXXXX", t ? t : "/tmp", name);
	if (!mkdtemp(proc_tmp))
		return -1;
	atexit(proc_cleanup);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static inline void proc_on_alarm(int sig)
{
	static const char msg[] = "not ok - watchdog: the test ran out of time; its processes were killed\n";
	(void)sig;
	/* only async-signal-safe calls: the temp dir is left for inspection */
	for (int i = 0; i < proc_npids; i++)
		if (proc_pids[i] > 0)
			kill(proc_pids[i], SIGKILL);
	if (write(1, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

/* After secs seconds: kill every started process, say so in TAP, exit 1
 * (a plain alarm() would leave the kvnode processes running). */
static inline void proc_watchdog(unsigned secs)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = proc_on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(secs);
}

/* How many lines of proc_tmp/NAME.log contain text (0 if no log yet). */
static inline int proc_log_count(const char *name, const char *text)
{
	char path[512], line[2048];
	int n = 0;
	snprintf(path, sizeof path, "%s/%s.log", proc_tmp, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, text))
			n++;
	fclose(f);
	return n;
}

/* Wait up to timeout_ms until at least `count` lines of NAME.log contain
 * text.  0, or -1 on timeout. */
static inline int proc_wait_log(const char *name, const char *text, int count, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	for (;;) {
		if (proc_log_count(name, text) >= count)
			return 0;
		if (kvn_now_ms() >= until)
			return -1;
		usleep(20000);
	}
}

/* A config for a master and/or peer on loopback.  extra is appended as is
 * (more sections; a key given again overrides). */
static inline void proc_write_conf(const char *path, uint16_t mp, uint16_t pp, const char *data, const char *dram,
				   const char *extra)
{
	FILE *f = fopen(path, "w");
	if (!f)
		kvn_fatal("cannot write %s", path);
	/* KVN_TEST_CLIENT_LOCAL (auto | off): the transport the test's clients
	 * use to a peer on this host (t/tcp_matrix.sh runs the data-path tests
	 * with off; the default, auto, takes the same-host path) */
	const char *local = getenv("KVN_TEST_CLIENT_LOCAL");
	fprintf(f,
		"[node]\ndata_dir = %s\nlog_level = info\nmax_value_size = 48MiB\n"
		"[master]\nlisten = 127.0.0.1:%u\nnode_timeout = 2s\nhttp =\n"
		"[peer]\nlisten = 127.0.0.1:%u\nmaster = 127.0.0.1:%u\ndram_size = %s\nheartbeat_interval = 100ms\nhttp =\n"
		"[client]\nmaster = 127.0.0.1:%u\ntimeout = 3s\n%s%s%s%s",
		data, mp, pp, mp, dram, mp, local ? "local = " : "", local ? local : "", local ? "\n" : "",
		extra ? extra : "");
	fclose(f);
}

/* Connect, retrying until the node is up and want_peers peers attached
 * (20 s deadline).  The caller closes the client; NULL on timeout. */
/* Start an all-in-one node NAME (its own data dir and free ports) with
 * peer.dram_size DRAM and `extra` config text (NULL: none); its config path
 * goes to conf.  Returns its pid. */
static inline pid_t proc_start_node(const char *name, const char *dram, const char *extra, char *conf,
				    size_t cap)
{
	char data[300];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	snprintf(conf, cap, "%s/%s.conf", proc_tmp, name);
	snprintf(data, sizeof data, "%s/var-%s", proc_tmp, name);
	proc_write_conf(conf, mp, pp, data, dram, extra);
	const char *args[] = { "--config", conf, NULL };
	return proc_spawn(name, args);
}

static inline struct kvn_client *proc_connect_ready(const char *conf, uint32_t want_peers)
{
	struct kvn_options o = { .config_path = conf };
	uint64_t until = kvn_now_ms() + 20000;
	while (kvn_now_ms() < until) {
		struct kvn_client *c = NULL;
		uint32_t peers = 0;
		if (kvn_connect(&o, &c) == 0) {
			if (kvn_ping(c, NULL, &peers) == 0 && peers >= want_peers)
				return c;
			kvn_close(c);
		}
		usleep(50000);
	}
	return NULL;
}

/* n pseudo-random bytes from seed (xorshift): the same seed, the same bytes. */
static inline void proc_fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Batch tests' items: n puts keyed "<prefix><i>" (keys[i] holds it), item i
 * valued with the first vsz - i * shrink bytes of v + i * vsz, filled from
 * seed + i. */
static inline void proc_batch_puts(struct kvn_item *it, char (*keys)[16], uint8_t *v, size_t vsz, int n,
				   const char *prefix, uint64_t seed, size_t shrink)
{
	for (int i = 0; i < n; i++) {
		snprintf(keys[i], sizeof keys[i], "%s%d", prefix, i);
		proc_fill(v + (size_t)i * vsz, vsz, seed + (uint64_t)i);
		memset(&it[i], 0, sizeof it[i]);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		it[i].val = v + (size_t)i * vsz;
		it[i].vlen = vsz - (size_t)i * shrink;
	}
}

/* After a get of proc_batch_puts' items into g: 1 if every item but skip
 * (-1: none) succeeded with its put's length and bytes. */
static inline int proc_batch_good(const struct kvn_item *it, const uint8_t *v, size_t vsz, int n, int skip,
				  size_t shrink)
{
	for (int i = 0; i < n; i++)
		if (i != skip && (it[i].status != 0 || it[i].vlen != vsz - (size_t)i * shrink ||
				  memcmp(it[i].val, v + (size_t)i * vsz, it[i].vlen) != 0))
			return 0;
	return 1;
}

/* The same items turned into gets into g + i * gsz (gsz bytes each). */
static inline void proc_batch_gets(struct kvn_item *it, uint8_t *g, size_t gsz, int n)
{
	for (int i = 0; i < n; i++) {
		it[i].val = g + (size_t)i * gsz;
		it[i].cap = gsz;
		it[i].vlen = 0;
	}
}

/* The first column of the first row of sql on db, read-only from this
 * process (WAL: never blocks kvnode); -1 if it cannot be read. */
static inline long long proc_sql_int(const char *db, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st = NULL;
	long long n = -1;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(h);
		return -1;
	}
	sqlite3_busy_timeout(h, 2000);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* Frames this process sent so far (it is the client: its frames only). */
static inline uint64_t proc_frames_out(void)
{
	struct net_stats n;
	net_get_stats(&n);
	return n.frames_out;
}

/* Start a peer-only node NAME (node.id NAME, its own data dir and port) that
 * attaches to the master on mport with the secrets an all-in-one node made
 * in aio_data.  Returns its pid. */
static inline pid_t proc_spawn_peer(const char *name, uint16_t mport, const char *aio_data)
{
	char conf[300], data[300], id[80], psecret[400], csecret[400];

	snprintf(conf, sizeof conf, "%s/%s.conf", proc_tmp, name);
	snprintf(data, sizeof data, "%s/var-%s", proc_tmp, name);
	proc_write_conf(conf, mport, proc_free_port(), data, "64MiB", NULL);
	snprintf(id, sizeof id, "node.id=%s", name);
	snprintf(psecret, sizeof psecret, "auth.peer_secret_file=%s/peer.secret", aio_data);
	snprintf(csecret, sizeof csecret, "auth.client_secret_file=%s/client.secret", aio_data);
	const char *args[] = { "--role", "peer", "--config", conf, "--set", id, "--set", psecret, "--set", csecret, NULL };
	return proc_spawn(name, args);
}

#endif
