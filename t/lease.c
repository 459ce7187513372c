/* t/lease: peer.read_lease_ttl against real processes (a master and a
 * peer on loopback).  A reader process fetching a large value is stopped
 * (SIGSTOP) in the middle of the GET reply, so the peer's write stalls with
 * the value's pages referenced under a read lease; the key is then
 * overwritten, so the old generation lives only through that lease.  After
 * read_lease_ttl the peer expires the lease (one log line, counted), cuts
 * the stalled connection and the superseded generation's pages are freed
 * (the peer's dram_used, as the master reports it, drops back to one
 * value), long before the connection's 30 s write timeout.
 *
 * The stall is checked, not hoped for: the reply is read straight into the
 * reader's buffer, shared with this process, so the stop is kept only when
 * the reader had taken less of the value than leaves more unsent than the
 * sockets' buffers hold.  (Stopped near the end of a reply, the rest fits
 * in them: the reply finishes, its lease is released, the pages are freed
 * without any expiry, and a "held" seen meanwhile proves nothing.) */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

/* The value: far more than the sockets' buffers, since the reader's
 * receive buffer grows to tcp_rmem's maximum even while it is stopped
 * (80 MiB when that is 32 MiB, as on Debian). */
static size_t VAL = 80u << 20;
/* Long enough that a put of the value under load lands before it */
#define TTL_MS 1500

static char conf_m[300], conf_p[300];

/* The reader's buffer (shared: its progress through a reply shows here)
 * and two marks in it, zeroed before each get (no value byte is 0): the
 * reply has begun when rbuf[MARK_LO] is set, and at least VAL - mark_hi
 * bytes are still unread while rbuf[mark_hi] is not. */
static volatile uint8_t *rbuf;
#define MARK_LO (1u << 20)
static size_t mark_hi;

/* The reader: gets the key in a loop, for ever (killed by the test). */
static void reader(void)
{
	struct kvn_options o = { .config_path = conf_m };
	struct kvn_client *c = NULL;
	size_t vlen;
	for (;;) {
		if (!c && kvn_connect(&o, &c) != 0) {
			c = NULL;
			usleep(50000);
			continue;
		}
		rbuf[MARK_LO] = 0;
		rbuf[mark_hi] = 0;
		(void)kvn_get(c, "big", 3, (uint8_t *)rbuf, VAL, &vlen);
	}
}

/* Wait (up to timeout_ms) for the reader to be inside a reply, early
 * enough (between the marks), and stop it there: 1, or 0 if it was not
 * (it is running again then), or -1 if it is gone. */
static int stop_mid_reply(pid_t rd, uint64_t timeout_ms)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	int st;

	while (!(rbuf[MARK_LO] != 0 && rbuf[mark_hi] == 0))
		if (kvn_now_ms() >= until)
			return 0;
		else
			usleep(200);
	kill(rd, SIGSTOP);
	if (waitpid(rd, &st, WUNTRACED) != rd || !WIFSTOPPED(st))
		return -1;
	/* stopped now: its buffer no longer changes */
	if (rbuf[MARK_LO] != 0 && rbuf[mark_hi] == 0)
		return 1;
	kill(rd, SIGCONT);
	return 0;
}

static pid_t spawn_reader(void)
{
	pid_t pid = fork();
	if (pid == 0)
		reader();
	if (pid > 0) { /* killed at exit like the nodes */
		for (int i = 0; i <= proc_npids && i < PROC_MAX; i++) {
			if (i == proc_npids)
				proc_npids++;
			if (proc_pids[i] == 0) {
				proc_pids[i] = pid;
				break;
			}
		}
	}
	return pid;
}

/* The peer's dram_used as the master last heard it. */
static uint64_t dram_used(struct kvn_client *c)
{
	struct kvn_node_stat st[2];
	size_t n = 0;
	uint64_t objects;
	if (kvn_stat(c, st, 2, &n, &objects) != 0 || n < 1)
		return 0;
	return st[0].dram_used;
}

/* Wait until the peer reports dram_used in [lo, hi] (its heartbeat is 100 ms). */
static int wait_used(struct kvn_client *c, uint64_t lo, uint64_t hi, uint64_t timeout_ms, uint64_t *got)
{
	uint64_t until = kvn_now_ms() + timeout_ms;
	do {
		*got = dram_used(c);
		if (*got >= lo && *got <= hi)
			return 0;
		usleep(20000);
	} while (kvn_now_ms() < until);
	return -1;
}

static void t_expire(void)
{
	char data_m[300], data_p[300], extra[800];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	const char *args_m[] = { "--role", "master", "--config", conf_m, NULL };
	const char *args_p[] = { "--role", "peer", "--config", conf_p, "--set", "node.id=lp", NULL };
	uint64_t used = 0;
	int held = 0, gen = 0, logged0 = 0;
	char dram[32];
	unsigned long long rmin, rdef, rmax = 0, wmax = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r");

	if (f) {
		if (fscanf(f, "%llu %llu %llu", &rmin, &rdef, &rmax) != 3)
			rmax = 0;
		fclose(f);
	}
	if ((f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r"))) {
		if (fscanf(f, "%llu %llu %llu", &rmin, &rdef, &wmax) != 3)
			wmax = 0;
		fclose(f);
	}
	if (2 * rmax + (16u << 20) > VAL)
		VAL = (size_t)(2 * rmax + (16u << 20));
	/* a reader stopped before mark_hi leaves more unsent than the
	 * reader's receive and the peer's send buffers take together (4 MiB
	 * to spare), and mark_hi lies well past MARK_LO */
	if (rmax + wmax + (12u << 20) > VAL)
		VAL = (size_t)(rmax + wmax + (12u << 20));
	mark_hi = VAL - (size_t)(rmax + wmax) - (4u << 20);
	if (VAL > (400u << 20)) {
		tap_skip(9, "net.ipv4.tcp_rmem's maximum is too large to stall a GET reply with a value that fits");
		return;
	}
	uint8_t *v = malloc(VAL);
	void *shared = mmap(NULL, VAL, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		kvn_fatal("mmap of %zu bytes failed", VAL);
	rbuf = shared;
	snprintf(dram, sizeof dram, "%zuMiB", (VAL >> 20) * 4 + 16);

	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(data_p, sizeof data_p, "%s/var-p", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_p, sizeof conf_p, "%s/p.conf", proc_tmp);
	snprintf(extra, sizeof extra,
		 "[node]\nmax_value_size = %zuMiB\n[peer]\nread_lease_ttl = %ums\n[client]\ntimeout = 5s\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 (VAL >> 20) + 1, TTL_MS, data_m, data_m);
	proc_write_conf(conf_m, mp, pp, data_m, dram, extra);
	proc_write_conf(conf_p, mp, pp, data_p, dram, extra);
	proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	proc_spawn("p", args_p);
	/* the reader is forked before this process starts any thread */
	pid_t rd = spawn_reader();
	ok(rd > 0, "reader process started");
	struct kvn_client *c = proc_connect_ready(conf_m, 1);
	ok(c != NULL && v != NULL, "peer attached, client connected");
	if (!c || !v)
		exit(1);
	memset(v, 0x11, VAL);
	is_int(kvn_put(c, "big", 3, v, VAL, 0), 0, "put a %zu MiB value", VAL >> 20);
	int one = wait_used(c, VAL, VAL + (1u << 20), 5000, &used) == 0;
	ok(one, "the peer holds one value (%llu bytes)", (unsigned long long)used);

	/* Stop the reader early in a GET reply: the peer's write stalls for
	 * good, so overwriting the key leaves the old generation alive only
	 * through the reply's lease (dram_used stays at two values) until the
	 * lease expires.  The lease may expire before the put lands (a reply
	 * begun long ago): then let the reader go and stop it again.  The
	 * log's lines are counted before the stop: the expiry of this lease
	 * is a line more. */
	for (int attempt = 0; attempt < 20 && !held; attempt++) {
		logged0 = proc_log_count("p", "read lease(s) held past peer.read_lease_ttl");
		int stopped = stop_mid_reply(rd, 5000);
		if (stopped < 0)
			break;
		if (!stopped)
			continue;
		memset(v, 0x20 + ++gen, VAL);
		if (kvn_put(c, "big", 3, v, VAL, 0) != 0)
			break;
		if (wait_used(c, 2ull * VAL, 3ull * VAL, TTL_MS, &used) == 0 && dram_used(c) >= 2ull * VAL) {
			held = 1;
			break;
		}
		kill(rd, SIGCONT);
	}
	ok(held, "a stalled GET reply holds the superseded generation (%llu bytes used)", (unsigned long long)used);
	if (!held) {
		kill(rd, SIGKILL);
		return;
	}
	uint64_t t0 = kvn_now_ms();
	int freed = wait_used(c, VAL, VAL + (1u << 20), 5000, &used) == 0;
	ok(freed, "after read_lease_ttl (%u ms) its pages are freed: %llu bytes used after %llu ms (reader still stopped)",
	   TTL_MS, (unsigned long long)used, (unsigned long long)(kvn_now_ms() - t0));
	ok(proc_wait_log("p", "read lease(s) held past peer.read_lease_ttl", logged0 + 1, 2000) == 0,
	   "the peer logged the expiry");
	size_t vlen = 0;
	uint8_t *g = malloc(VAL);
	ok(g && kvn_get(c, "big", 3, g, VAL, &vlen) == 0 && vlen == VAL && memcmp(g, v, VAL) == 0,
	   "the new value reads back whole");
	kill(rd, SIGKILL);
	kill(rd, SIGCONT);
	proc_wait(rd, 5000, NULL);
	free(g);
	free(v);
	munmap(shared, VAL);
	kvn_close(c);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "expire", t_expire },
		{ NULL, NULL },
	};

	if (proc_init("lease") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(90);
	return tap_run(tests, argc, argv);
}
