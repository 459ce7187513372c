/* t/io_loops.c: a peer whose connections live on other loops than its own
 * (peer.io_threads), through real processes: the paths that only exist
 * there.  A PUT whose payload stalls half-way on a connection of another
 * loop is cut by the peer's reaper after peer.pending_ttl (by message to
 * that loop), the client hears of it within its deadline, nothing of it is
 * stored, and its pages are given back: a 6 MiB put then fits the 8 MiB
 * arena the stalled 4 MiB had reserved half of. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "relay.h"
#include "tap.h"

#define MIB (1u << 20)

static char conf[300];
static struct relay rl;
static uint16_t mport, pport;
static pid_t mpid, ppid;

static void start(void)
{
	char data[300], extra[300], s[400];

	mport = proc_free_port();
	pport = proc_free_port();
	is_int(relay_start(&rl, pport, UINT64_MAX), 0, "a relay in front of the peer");
	rl.stall_after = 1 * MIB + 4096; /* inside the PUT's 4 MiB payload */
	rl.sessions = 100;               /* then plain ones (a client retries) */
	snprintf(conf, sizeof conf, "%s/io.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-io", proc_tmp);
	snprintf(extra, sizeof extra,
		 "[peer]\nadvertise = 127.0.0.1:%u\nio_threads = 4\npending_ttl = 1s\n[client]\ntimeout = 8s\n"
		 "local = off\n", /* the relay is a TCP hop the same-host path would skip */
		 rl.port);
	proc_write_conf(conf, mport, pport, data, "8MiB", extra);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	mpid = proc_spawn("m", am);
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", "node.id=io-p", NULL };
	ppid = proc_spawn("p", ap);
	ok(proc_wait_log("p", "connections spread over 4 I/O loops", 1, 15000) == 0,
	   "the peer spreads its connections over 4 loops");
	ok(proc_wait_log("p", "attached to the master", 1, 15000) == 0, "and attaches");
}

static uint64_t dram_used(struct kvn_client *c)
{
	struct kvn_node_stat ns[4];
	size_t n = 0;
	uint64_t objects = 0;

	if (kvn_stat(c, ns, 4, &n, &objects) != 0 || n != 1)
		return UINT64_MAX;
	return ns[0].dram_used;
}

static void t_stalled_put(void)
{
	start();
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "a client");
	if (!c)
		return;
	uint8_t *v = kvn_xmalloc(4 * MIB);
	proc_fill(v, 4 * MIB, 7);
	uint64_t t0 = kvn_now_ms();
	int rc = kvn_put(c, "stalled", 7, v, 4 * MIB, 0);
	uint64_t ms = kvn_now_ms() - t0;
	ok(rc != 0, "the put whose payload stalls half-way fails (%s)", kvn_strerror(rc));
	ok(ms < 8000, "within the client's deadline (%llu ms)", (unsigned long long)ms);
	ok(proc_wait_log("p", "took longer than peer.pending_ttl", 1, 5000) == 0,
	   "the peer's reaper cut its connection, on another loop than its own");
	for (int i = 0; i < 100 && !__atomic_load_n(&rl.first_done, __ATOMIC_ACQUIRE); i++)
		usleep(100000);
	ok(rl.peer_closed, "the peer closed that connection while it was stalled");
	kvn_close(c);
	ok(kill(mpid, 0) == 0 && kill(ppid, 0) == 0, "master and peer still run");

	/* the relay passes the next connections through as they are (a client
	 * with 2 s deadlines, so a refused put is tried again a few times) */
	struct kvn_options o2 = { .config_path = conf, .timeout_ms = 2000 };
	c = NULL;
	for (int i = 0; i < 50 && kvn_connect(&o2, &c) != 0; i++)
		usleep(100000);
	ok(c != NULL, "a new client");
	if (!c) {
		free(v);
		return;
	}
	uint64_t used = UINT64_MAX;
	for (int i = 0; i < 100; i++) {
		used = dram_used(c);
		if (used == 0)
			break;
		usleep(100000);
	}
	is_int((long long)used, 0, "nothing of the stalled put was stored (DRAM used 0)");
	/* 6 MiB fits the 8 MiB arena only if the stalled put's 4 MiB of
	 * pending pages were given back (pending pages are never evicted) */
	uint8_t *big = kvn_xmalloc(6 * MIB);
	proc_fill(big, 6 * MIB, 9);
	/* (the master may still count the failed put's placement until the
	 * peer's next report: retried for a few seconds) */
	int prc = -1;
	uint64_t until = kvn_now_ms() + 8000;
	while ((prc = kvn_put(c, "after", 5, big, 6 * MIB, 0)) != 0 && kvn_now_ms() < until) {
		tap_diag("the 6 MiB put: %s (%s); relay sessions %d", kvn_strerror(prc), kvn_last_detail(c), rl.served);
		usleep(200000);
	}
	is_int(prc, 0, "a 6 MiB put fits the 8 MiB arena: the pages were given back (%s; %s; relay sessions %d)",
	       kvn_strerror(prc), kvn_last_detail(c), rl.served);
	free(v);
	v = big;
	uint8_t *got = kvn_xmalloc(6 * MIB);
	size_t n = 0;
	is_int(kvn_get(c, "after", 5, got, 6 * MIB, &n), 0, "and gets it back");
	ok(n == 6 * MIB && memcmp(got, v, n) == 0, "byte for byte");
	kvn_close(c);
	shutdown(rl.lfd, SHUT_RDWR); /* no more sessions */
	pthread_join(rl.th, NULL);
	close(rl.lfd);
	free(got);
	free(v);
}

/* An all-in-one node spreads its master's connections over I/O loops too:
 * a second peer's attach, the first connection it accepts, lands on io1,
 * and the master must still derive that peer's grant key from the link
 * (net_link_material across loops), else every put routed to the second
 * peer is refused for its grant. */
static void t_remote_grant(void)
{
	char aconf[300], bconf[300], data[300], extra[200];
	uint16_t amp = proc_free_port(), app = proc_free_port(), bpp = proc_free_port();

	snprintf(aconf, sizeof aconf, "%s/a.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-a", proc_tmp);
	proc_write_conf(aconf, amp, app, data, "8MiB", "[peer]\nio_threads = 2\nevict = none\n");
	const char *aa[] = { "--config", aconf, NULL };
	proc_spawn("a", aa);
	ok(proc_wait_log("a", "kvnode ready", 1, 15000) == 0, "an all-in-one node with io_threads = 2 (8 MiB, evict = none: it fills)");
	ok(proc_log_count("a", "spread over 2 I/O loops") == 1, "its connections spread over 2 loops");
	/* the second peer shares the first's data dir for the secrets only */
	snprintf(bconf, sizeof bconf, "%s/b.conf", proc_tmp);
	snprintf(extra, sizeof extra, "[peer]\nlisten = 127.0.0.1:%u\n", bpp);
	proc_write_conf(bconf, amp, app, data, "64MiB", extra);
	const char *ab[] = { "--role", "peer", "--config", bconf, "--set", "node.id=second", NULL };
	proc_spawn("b", ab);
	ok(proc_wait_log("a", "node second attached", 1, 15000) == 0, "a second peer (64 MiB) attaches, first");
	struct kvn_client *c = proc_connect_ready(aconf, 2);
	ok(c != NULL, "a client sees both peers");
	if (!c)
		return;
	static uint8_t v[1 << 20];
	int fails = 0, first = 0;
	for (int i = 0; i < 24; i++) {
		char key[32];
		proc_fill(v, sizeof v, i);
		snprintf(key, sizeof key, "rg/%d", i);
		int rc = kvn_put(c, key, strlen(key), v, sizeof v, 0);
		if (rc && !fails++)
			first = rc;
	}
	is_int(fails, 0, "24 puts of 1 MiB, more than the first node holds, all stored (first error %s)",
	       kvn_strerror(first));
	is_int(proc_log_count("b", "grant not issued"), 0, "the second peer refused no grant");
	struct kvn_node_stat ns[4];
	size_t nn = 0;
	uint64_t objects = 0, on_b = 0;
	if (kvn_stat(c, ns, 4, &nn, &objects) == 0)
		for (size_t i = 0; i < nn; i++)
			if (strcmp(ns[i].node_id, "second") == 0)
				on_b = ns[i].objects;
	ok(on_b > 0, "and holds some of them (%llu of %llu)", (unsigned long long)on_b, (unsigned long long)objects);
	kvn_close(c);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "stalled_put", t_stalled_put },
		{ "remote_grant", t_remote_grant },
		{ NULL, NULL },
	};

	if (getenv("KVN_TEST_VERBOSE"))
		kvn_log_set_level(KVN_LOG_DEBUG);
	if (proc_init("io_loops") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	return tap_run(tests, argc, argv);
}
