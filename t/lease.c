/* t/lease: peer.read_lease_ttl against real processes (a master and a
 * peer on loopback).  A reader process fetching a large value is stopped
 * (SIGSTOP) in the middle of the GET reply, so the peer's write stalls with
 * the value's pages referenced under a read lease; the key is then
 * overwritten, so the old generation lives only through that lease.  After
 * read_lease_ttl the peer expires the lease (one log line, counted), cuts
 * the stalled connection and the superseded generation's pages are freed
 * (the peer's dram_used, as the master reports it, drops back to one
 * value), long before the connection's 30 s write timeout. */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
#define TTL_MS 500

static char conf_m[300], conf_p[300];

/* The reader: gets the key in a loop, for ever (killed by the test). */
static void reader(void)
{
	struct kvn_options o = { .config_path = conf_m };
	struct kvn_client *c = NULL;
	uint8_t *buf = malloc(VAL);
	size_t vlen;
	if (!buf)
		_exit(1);
	for (;;) {
		if (!c && kvn_connect(&o, &c) != 0) {
			c = NULL;
			usleep(50000);
			continue;
		}
		(void)kvn_get(c, "big", 3, buf, VAL, &vlen);
	}
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
	int held = 0, gen = 0;
	char dram[32];
	unsigned long long rmin, rdef, rmax = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r");

	if (f) {
		if (fscanf(f, "%llu %llu %llu", &rmin, &rdef, &rmax) != 3)
			rmax = 0;
		fclose(f);
	}
	if (2 * rmax + (16u << 20) > VAL)
		VAL = (size_t)(2 * rmax + (16u << 20));
	if (VAL > (400u << 20)) {
		tap_skip(9, "net.ipv4.tcp_rmem's maximum is too large to stall a GET reply with a value that fits");
		return;
	}
	uint8_t *v = malloc(VAL);
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

	/* Stop the reader; if it was inside a GET reply, overwriting the key
	 * leaves the old generation alive only through the reply's lease
	 * (dram_used stays at two values).  It may have been between two
	 * gets: then let it run a moment and stop it again. */
	for (int attempt = 0; attempt < 20 && !held; attempt++) {
		usleep(30000 + 7000u * (unsigned)attempt);
		kill(rd, SIGSTOP);
		usleep(50000); /* let the peer's write stall on full buffers */
		memset(v, 0x20 + ++gen, VAL);
		if (kvn_put(c, "big", 3, v, VAL, 0) != 0)
			break;
		if (wait_used(c, 2ull * VAL, 3ull * VAL, 400, &used) == 0 && dram_used(c) >= 2ull * VAL) {
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
	ok(proc_wait_log("p", "read lease(s) held past peer.read_lease_ttl", 1, 2000) == 0,
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
