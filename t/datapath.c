/* t/datapath: the data path as an outside user of include/kvnode.h sees it,
 * through real kvnode processes on loopback (issue 11, items 7-10, 12, 22):
 * refused payloads over 64 KiB keep their frame tag (the precise error, the
 * connection stays up, no "bad tag"), a get into a too-small buffer answers
 * KVN_ERANGE with the size while the rest of the batch succeeds, a batch get
 * over 256 MiB from one peer, kvn_batch_get allocating for val = NULL, async
 * puts in flight when their peer dies, no SIGPIPE for the host program,
 * errors that name what happened (not KVN_EFULL for a dead peer or a peer
 * without room, KVN_ETIMEDOUT for a deadline mid-transfer, KVN_EINVAL for a
 * NULL key), unknown put flags refused, kvn_exists_prefix with a bad first
 * key, kvn_drain counting only callbacks that ran, a master-only
 * process named after its own port, and timers that never fire early. */
#include "config.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "net/net.h"
#include "proc.h"
#include "tap.h"

#define MIB (1u << 20)

static char conf_a[300];
static struct kvn_client *ca;

static uint64_t conns_open(void)
{
	struct net_stats n;
	net_get_stats(&n);
	return n.conns_open;
}

static void fixture_up(void)
{
	proc_start_node("aio", "96MiB", NULL, conf_a, sizeof conf_a);
	ca = proc_connect_ready(conf_a, 1);
	ok(ca != NULL, "all-in-one node up, client connected");
	if (!ca)
		exit(1);
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/datapath CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

static void slot_init(struct kvn_slot *s, const char *key, uint64_t size, const void *val)
{
	memset(s, 0, sizeof *s);
	s->key = key;
	s->klen = strlen(key);
	s->size = size;
	s->val = val;
}

/* Item 7, the peer's side: a commit the peer refuses still sends its bytes,
 * which the peer reads into its 64 KiB scratch buffer and drops.  They must
 * be tagged as they arrive, so the refusal is answered and the connection
 * lives on. */
static void t_refused_payload(void)
{
	fixture();
	uint8_t *v = kvn_xmalloc(MIB), g[64];
	struct kvn_slot s;
	size_t vlen = 0;

	proc_fill(v, MIB, 7);
	is_int(kvn_put(ca, "dp/warm", 7, "warm", 4, 0), 0, "a put opens the peer connection");
	is_int(kvn_get(ca, "dp/warm", 7, g, sizeof g, &vlen), 0, "and a get uses it");
	uint64_t open0 = conns_open();

	/* the wrong size: a 4 KiB slot committed with 1 MiB */
	slot_init(&s, "dp/slot", 4096, v);
	is_int(kvn_alloc_slots(ca, &s, 1), 0, "a 4 KiB slot reserved");
	s.size = MIB;
	is_int(kvn_commit_slots(ca, &s, 1, 0), KVN_EINVAL, "1 MiB into it: KVN_EINVAL, not a lost connection");
	is_int(conns_open(), open0, "the connection to the peer stayed up");
	s.size = 4096;
	is_int(kvn_commit_slots(ca, &s, 1, 0), 0, "the slot is still there for a correct commit");

	/* a slot that is gone: committed already */
	slot_init(&s, "dp/slot2", MIB, v);
	is_int(kvn_alloc_slots(ca, &s, 1), 0, "a 1 MiB slot reserved");
	is_int(kvn_commit_slots(ca, &s, 1, 0), 0, "committed");
	is_int(kvn_commit_slots(ca, &s, 1, 0), KVN_ESTATE, "committed again: KVN_ESTATE (its 1 MiB discarded)");
	is_int(conns_open(), open0, "the connection stayed up");
	is_int(kvn_get(ca, "dp/warm", 7, g, sizeof g, &vlen), 0, "the next request works");
	uint8_t *b = kvn_xmalloc(MIB);
	is_int(kvn_get(ca, "dp/slot2", 8, b, MIB, &vlen), 0, "the committed value reads back");
	ok(vlen == MIB && memcmp(b, v, MIB) == 0, "byte for byte");
	is_int(conns_open(), open0, "no connection was replaced");
	is_int(proc_log_count("aio", "bad tag"), 0, "no false \"bad tag\" in the node's log");
	free(b);
	free(v);
}

/* Item 7, the client's side: a value larger than the buffer is read into the
 * client's scratch buffer and dropped; the item says KVN_ERANGE with the
 * size, the others of the batch succeed, the connections survive. */
static void t_erange_in_batch(void)
{
	fixture();
	uint8_t *v = kvn_xmalloc(MIB), small[3][100], gsmall[2][100], gbig[1024];
	struct kvn_item it[3];

	proc_fill(v, MIB, 11);
	proc_fill(small[0], 100, 12);
	proc_fill(small[2], 100, 13);
	is_int(kvn_put(ca, "dp/big", 6, v, MIB, 0), 0, "put a 1 MiB value");
	is_int(kvn_put(ca, "dp/s0", 5, small[0], 100, 0), 0, "and two small ones");
	is_int(kvn_put(ca, "dp/s2", 5, small[2], 100, 0), 0, "...");
	uint64_t open0 = conns_open();
	memset(it, 0, sizeof it);
	it[0] = (struct kvn_item){ .key = "dp/s0", .klen = 5, .val = gsmall[0], .cap = 100 };
	it[1] = (struct kvn_item){ .key = "dp/big", .klen = 6, .val = gbig, .cap = sizeof gbig };
	it[2] = (struct kvn_item){ .key = "dp/s2", .klen = 5, .val = gsmall[1], .cap = 100 };
	is_int(kvn_batch_get(ca, it, 3), KVN_ERANGE, "the batch reports the first error: KVN_ERANGE");
	is_int(it[1].status, KVN_ERANGE, "1 MiB into 1 KiB: KVN_ERANGE");
	is_int(it[1].vlen, MIB, "with the real size");
	ok(it[0].status == 0 && it[0].vlen == 100 && memcmp(gsmall[0], small[0], 100) == 0,
	   "the item before it succeeded (%s)", kvn_strerror(it[0].status));
	ok(it[2].status == 0 && it[2].vlen == 100 && memcmp(gsmall[1], small[2], 100) == 0,
	   "the item after it succeeded (%s)", kvn_strerror(it[2].status));
	is_int(conns_open(), open0, "both connections survived");
	size_t vlen = 0;
	uint8_t *g = kvn_xmalloc(MIB);
	is_int(kvn_get(ca, "dp/big", 6, g, MIB, &vlen), 0, "read again into a buffer that fits");
	ok(vlen == MIB && memcmp(g, v, MIB) == 0, "byte for byte");
	is_int(conns_open(), open0, "on the same connections");
	free(g);
	free(v);
}

/* Item 9: val = NULL has kvn_batch_get malloc the buffer (the caller frees
 * it); items with a buffer use it; failed items are left NULL. */
static void t_batch_get_alloc(void)
{
	fixture();
	uint8_t v[3000], buf[3000];
	struct kvn_item it[4];

	proc_fill(v, sizeof v, 21);
	is_int(kvn_put(ca, "dp/a0", 5, v, sizeof v, 0), 0, "put a value");
	is_int(kvn_put(ca, "dp/a1", 5, v, 1000, 0), 0, "and another");
	is_int(kvn_put(ca, "dp/a3", 5, v, 0, 0), 0, "and an empty one");
	memset(it, 0, sizeof it);
	it[0] = (struct kvn_item){ .key = "dp/a0", .klen = 5 };
	it[1] = (struct kvn_item){ .key = "dp/a1", .klen = 5, .val = buf, .cap = sizeof buf };
	it[2] = (struct kvn_item){ .key = "dp/none", .klen = 7 };
	it[3] = (struct kvn_item){ .key = "dp/a3", .klen = 5 };
	is_int(kvn_batch_get(ca, it, 4), KVN_ENOTFOUND, "batch get: the missing key is the first error");
	ok(it[0].status == 0 && it[0].val != NULL && it[0].vlen == sizeof v &&
	   memcmp(it[0].val, v, sizeof v) == 0, "val = NULL: a malloc'd buffer with the value");
	ok(it[1].status == 0 && it[1].val == buf && it[1].vlen == 1000 && memcmp(buf, v, 1000) == 0,
	   "a caller's buffer is used as given");
	ok(it[2].status == KVN_ENOTFOUND && it[2].val == NULL, "a failed item gets no buffer");
	ok(it[3].status == 0 && it[3].val != NULL && it[3].vlen == 0, "an empty value is still a value");
	free(it[0].val);
	free(it[3].val);
}

/* Item 22: unknown flags are refused; kvn_exists_prefix with a bad first
 * key; kvn_drain counts callbacks that ran. */
static int done_calls;
static void on_done(void *arg, int status)
{
	(void)arg;
	(void)status;
	done_calls++;
}

static void t_api_gaps(void)
{
	fixture();
	struct kvn_slot s;
	size_t count = 99;

	is_int(kvn_put(ca, "dp/f", 4, "x", 1, 0x80), KVN_EINVAL, "kvn_put with an unknown flag: KVN_EINVAL");
	is_int(kvn_exists(ca, "dp/f", 4), 0, "and nothing was stored");
	is_int(kvn_put_async(ca, "dp/f", 4, "x", 1, 8, NULL, NULL), KVN_EINVAL, "kvn_put_async too (8: no flag)");
	is_int(kvn_async_pending(ca), 0, "nothing started");
	slot_init(&s, "dp/fs", 1, "x");
	is_int(kvn_alloc_slots(ca, &s, 1), 0, "a slot");
	is_int(kvn_commit_slots(ca, &s, 1, 8), KVN_EINVAL, "kvn_commit_slots with an unknown flag: KVN_EINVAL");
	is_int(kvn_commit_slots(ca, &s, 1, KVN_PUT_DURABLE), 0, "a known flag is fine");

	if (kvn_exists(ca, "dp/a0", 5) != 1) /* run alone: batch_get_alloc's key */
		is_int(kvn_put(ca, "dp/a0", 5, "a0", 2, 0), 0, "put dp/a0");
	struct kvn_item k[3] = { { .key = "dp/f", .klen = 0 }, { .key = "dp/a0", .klen = 5 },
				 { .key = "dp/a1", .klen = 5 } };
	is_int(kvn_exists_prefix(ca, k, 3, &count), KVN_EKEYLEN, "exists_prefix, first key empty: KVN_EKEYLEN");
	is_int(count, 0, "count 0");
	k[0] = (struct kvn_item){ .key = "dp/a0", .klen = 5 };
	k[1] = (struct kvn_item){ .key = "dp/absent", .klen = 9 };
	k[2] = (struct kvn_item){ .key = "dp/x", .klen = KVN_MAX_KEY + 1 };
	is_int(kvn_exists_prefix(ca, k, 3, &count), 0, "a bad key after the prefix ended is never looked at");
	is_int(count, 1, "count 1");

	done_calls = 0;
	for (int i = 0; i < 4; i++) {
		char key[16];
		snprintf(key, sizeof key, "dp/d%d", i);
		is_int(kvn_put_async(ca, key, strlen(key), "abc", 3, 0, i == 0 ? on_done : NULL, NULL), 0,
		       "async put %d started", i);
	}
	int ran = kvn_drain(ca);
	is_int(done_calls, 1, "one put had a callback");
	is_int(ran, 1, "kvn_drain says 1 callback ran (the puts without one are not counted)");
	is_int(kvn_async_pending(ca), 0, "nothing outstanding");
}

/* Item 12: errors that name what happened. */
static void t_null_key(void)
{
	fixture();
	is_int(kvn_put(ca, NULL, 3, "abc", 3, 0), KVN_EINVAL, "kvn_put with a NULL key: KVN_EINVAL");
	is_int(kvn_put_async(ca, NULL, 3, "abc", 3, 0, NULL, NULL), KVN_EINVAL, "kvn_put_async too");
	is_int(kvn_get(ca, NULL, 3, NULL, 0, NULL), KVN_EINVAL, "kvn_get too");
	is_int(kvn_put(ca, "k", 0, "abc", 3, 0), KVN_EKEYLEN, "an empty key is still KVN_EKEYLEN");
}

/* A master and a peer (its own process); the client config says retries. */
static pid_t start_split(const char *name, const char *extra, char *conf, size_t cap, pid_t *peer)
{
	char data[300], s[400], id[80];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	char mname[64], pname[64];

	snprintf(conf, cap, "%s/%s.conf", proc_tmp, name);
	snprintf(data, sizeof data, "%s/var-%s", proc_tmp, name);
	proc_write_conf(conf, mp, pp, data, "32MiB", extra);
	snprintf(mname, sizeof mname, "%s-m", name);
	snprintf(pname, sizeof pname, "%s-p", name);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	pid_t m = proc_spawn(mname, am);
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	snprintf(id, sizeof id, "node.id=%s", pname);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", id, NULL };
	*peer = proc_spawn(pname, ap);
	return m;
}

/* Item 12: a peer that cannot be reached is not "no node in the cluster has
 * room".  The peer is attached to the master but advertises an address
 * where nobody listens: every put routed to it fails to connect, the client
 * excludes it, and the master then has no node left. */
static void t_dead_peer_not_full(void)
{
	char conf[300], extra[200];
	pid_t peer;
	static uint8_t v[4096];

	snprintf(extra, sizeof extra, "[peer]\nadvertise = 127.0.0.1:%u\n", proc_free_port());
	start_split("dead", extra, conf, sizeof conf, &peer);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and one peer up, the peer advertising a dead address");
	if (!c)
		return;
	int rc = kvn_put(c, "k", 1, v, sizeof v, 0);
	is_int(rc, KVN_ECONN, "the put says KVN_ECONN, not KVN_EFULL (%s)", kvn_strerror(rc));
	is_int(kvn_put_async(c, "k-async", 7, v, sizeof v, 0, NULL, NULL), 0, "an async put");
	kvn_drain(c);
	struct kvn_put_failure f = { 0 };
	is_int(kvn_poll_failures(c, &f, 1), 1, "fails");
	is_int(f.status, KVN_ECONN, "with KVN_ECONN too (%s)", kvn_strerror(f.status));
	kvn_close(c);
}

/* Item 12: with client.retries = 0, a peer's "no room" is not reported as
 * the whole cluster's.  The master counts free bytes; the peer also needs
 * them in at most KEYTAB_MAX_EXT (64) runs of pages, which no master can
 * know: after every other one-page value is removed, half the arena is free
 * in single pages and a 1 MiB value (256 pages) has no room on the peer the
 * master placed it on. */
static void t_enospc_retries0(void)
{
	enum { N = 2100, PG = 4096 };
	char conf[300];
	pid_t peer;
	static char keys[N][16];
	static struct kvn_item it[N];
	static uint8_t v[PG];

	start_split("nospc", "[client]\nretries = 0\n[peer]\ndram_size = 8MiB\nevict = none\n", conf, sizeof conf, &peer);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and a peer with 8 MiB up, client.retries = 0");
	if (!c)
		return;
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "pg%d", i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v, .vlen = PG };
	}
	kvn_batch_put(c, it, N, 0);
	int stored = 0, removed = 0;
	for (int i = 0; i < N; i++)
		stored += it[i].status == 0;
	for (int i = 0; i < N; i += 2)
		if (it[i].status == 0 && kvn_remove(c, keys[i], strlen(keys[i])) == 0)
			removed++;
	ok(stored > 1900 && removed > 900, "%d one-page values stored, every other one removed (%d)", stored,
	   removed);
	static uint8_t big[MIB];
	uint64_t open0 = conns_open();
	int rc = kvn_put(c, "frag", 4, big, sizeof big, 0);
	is_int(rc, KVN_ENOSPC, "1 MiB in 4 KiB holes: the peer's KVN_ENOSPC, not KVN_EFULL");
	is_int(conns_open(), open0, "the refused 1 MiB PUT left the connection up");
	is_int(kvn_put(c, "small", 5, v, 100, 0), 0, "the next put works");
	is_int(proc_log_count("nospc-p", "bad tag"), 0, "no false \"bad tag\" in the peer's log");
	kvn_close(c);
}

/* Item 12: a deadline that passes while the bytes are in flight is
 * KVN_ETIMEDOUT for every put it ended, not KVN_ECONN. */
static void t_async_deadline_code(void)
{
	fixture();
	enum { N = 1, ROUNDS = 12, SZ = 40 << 20 };
	struct kvn_options o = { .config_path = conf_a, .timeout_ms = 4 };
	struct kvn_client *c = NULL;
	uint8_t *buf = kvn_xmalloc(SZ);
	int reported = 0, other = 0, timeouts = 0;

	for (int i = 0; i < 50 && !c; i++)
		if (kvn_connect(&o, &c) != 0)
			usleep(20000);
	ok(c != NULL, "a client with a 4 ms deadline");
	if (!c) {
		free(buf);
		return;
	}
	/* one put in flight at a time, each on a connection the previous
	 * round's cut has finished with: its own deadline is what ends it (a
	 * put on a connection cut for another put's deadline reports
	 * KVN_ECONN, which is not this check) */
	for (int round = 0; round < ROUNDS; round++) {
		usleep(30000);
		kvn_poll(c, 20);
		for (int i = 0; i < N; i++) {
			char key[32];
			snprintf(key, sizeof key, "late/%d/%d", round, i);
			kvn_put_async(c, key, strlen(key), buf, SZ, 0, NULL, NULL);
		}
		kvn_drain(c);
		struct kvn_put_failure f[N];
		size_t nf = kvn_poll_failures(c, f, N);
		for (size_t j = 0; j < nf; j++) {
			reported++;
			if (f[j].status == KVN_ETIMEDOUT)
				timeouts++;
			else {
				other++;
				tap_diag("an async put failed with %s", kvn_strerror(f[j].status));
			}
		}
	}
	ok(timeouts >= 1, "deadlines passed mid-transfer (%d of %d failures)", timeouts, reported);
	is_int(other, 0, "every one of them says KVN_ETIMEDOUT");
	kvn_close(c);
	free(buf);
}

/* The same, at its cause: a timer of a few ms (client.timeout = 4 ms is
 * also the connect timeout of the connection an async put opens) never
 * fires before its delay by kvn_now_ms's clock, against which the put's
 * deadline is kept.  libevent's default clock is CLOCK_MONOTONIC_COARSE
 * (4 ms ticks at HZ=250): such a timer fired up to a tick early, so a new
 * connection failed with KVN_ETIMEDOUT while its put had time left, which
 * the put reads as another call's cut (KVN_ECONN). */
static void timer_at(struct actor *self, void *arg)
{
	(void)self;
	*(uint64_t *)arg = kvn_now_ns();
}

static int timer_idle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static void t_timer_not_early(void)
{
	static const struct actor_ops ops = { .name = "timer", .handle = timer_idle };
	struct actor_loop *l = actor_loop_new("t-timer");
	struct actor *a = NULL;
	uint64_t fired = 0, early = 0, worst_of = 0, worst_ms = 0;
	int runs = 0;

	actor_loop_adopt(l);
	if (actor_spawn(l, &ops, NULL, 4, &a) != 0)
		kvn_fatal("actor_spawn failed");
	struct actor_timer *t = actor_timer_new(a, timer_at, &fired);
	for (int i = 0; i < 60; i++) {
		uint64_t ms = 1 + (uint64_t)(i % 4), t0 = kvn_now_ns();
		fired = 0;
		actor_timer_arm(t, ms);
		/* the loop turns all the time, as a busy client's does
		 * (replies, connects): each turn fires what its clock says is
		 * due */
		while (!fired && kvn_now_ns() - t0 < (ms + 200) * 1000000u)
			(void)event_base_loop(actor_loop_base(l), EVLOOP_NONBLOCK);
		if (!fired)
			continue;
		runs++;
		if (fired - t0 + 1000 < ms * 1000000u) { /* libevent's clock reads in us */
			early++;
			if (!worst_ms || fired - t0 < worst_of) {
				worst_of = fired - t0;
				worst_ms = ms;
			}
		}
	}
	is_int(runs, 60, "each timer fired");
	if (early)
		tap_diag("the earliest: a %llu ms timer fired after %.2f ms", (unsigned long long)worst_ms,
			 worst_of / 1e6);
	is_int((int)early, 0, "no 1..4 ms timer fired before its delay");
	actor_timer_free(t);
	actor_loop_free(l);
}

/* Item 10: async puts in flight when their peer dies: the connection's
 * in-flight table is failed while replies re-enter it (ASan caught a
 * use-after-free), and no SIGPIPE reaches the host program (default
 * disposition: it would be killed).  Each put is reported, as KVN_ECONN or
 * another failure, and the client keeps working. */
static void t_peer_dies_mid_write(void)
{
	char conf[300];
	pid_t peer;
	enum { N = 6, SZ = 40 << 20 };

	start_split("mid", "[client]\ntimeout = 10s\nretries = 0\n[peer]\ndram_size = 256MiB\n", conf, sizeof conf, &peer);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and a peer up");
	if (!c)
		return;
	uint8_t *v = kvn_xmalloc(SZ);
	proc_fill(v, SZ, 5);
	is_int(kvn_put(c, "warm", 4, v, 1000, 0), 0, "the peer connection is open");
	/* the host's default SIGPIPE disposition, blocked so that a signal
	 * libkvnode raises shows as pending instead of ending the test */
	sigset_t pipe, old;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_BLOCK, &pipe, &old);
	for (int i = 0; i < N; i++) {
		char key[16];
		snprintf(key, sizeof key, "mid%d", i);
		is_int(kvn_put_async(c, key, strlen(key), v, SZ, 0, NULL, NULL), 0, "40 MiB async put %d", i);
	}
	kvn_poll(c, 30); /* bytes on the wire */
	proc_stop(peer, SIGKILL, 5000, NULL);
	kvn_drain(c);
	struct kvn_put_failure f[N];
	size_t nf = kvn_poll_failures(c, f, N);
	int econn = 0;
	for (size_t i = 0; i < nf; i++) {
		econn += f[i].status == KVN_ECONN;
		if (f[i].status != KVN_ECONN)
			tap_diag("a put failed with %s", kvn_strerror(f[i].status));
	}
	ok(nf >= 1, "the puts in flight failed (%zu), no crash", nf);
	is_int(econn, (int)nf, "each with KVN_ECONN (client.retries = 0)");
	sigset_t pend;
	sigpending(&pend);
	int got = sigismember(&pend, SIGPIPE);
	ok(!got, "no SIGPIPE was raised in the host program");
	if (got) {
		int sig;
		sigwait(&pipe, &sig);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_IGN);
	uint32_t peers = 9;
	is_int(kvn_ping(c, NULL, &peers), 0, "the client still talks to the master");
	kvn_close(c);
	free(v);
}

#include "relay.h"

/* Item 10: a host program whose SIGPIPE disposition is the default survives
 * a peer that dies while a large batch is being written to it, and gets
 * KVN_ECONN.  The batch (270 MiB for one peer, two frames) keeps the
 * connection's output queue over its limit, so the client reads nothing
 * meanwhile and learns of the death from its next write. */
static void t_sigpipe(void)
{
	enum { N = 6, SZ = 45 << 20 };
	char conf[300], data[300], s[400], extra[300];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	struct relay r;

	is_int(relay_start(&r, pp, 16 << 20), 0, "a relay in front of the peer");
	snprintf(conf, sizeof conf, "%s/pipe.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-pipe", proc_tmp);
	snprintf(extra, sizeof extra,
		 /* the relay is a TCP hop: the same-host path would go around it */
		 "[client]\ntimeout = 20s\nretries = 0\nput_via_master = off\nlocal = off\n"
		 "[peer]\nadvertise = 127.0.0.1:%u\n",
		 r.port);
	proc_write_conf(conf, mp, pp, data, "288MiB", extra);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	pid_t m = proc_spawn("pipe-m", am);
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", "node.id=pipe-p", NULL };
	pid_t p = proc_spawn("pipe-p", ap);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and a 288 MiB peer up");
	if (!c) {
		pthread_cancel(r.th);
		return;
	}
	uint8_t *v = kvn_xmalloc(SZ);
	proc_fill(v, SZ, 9);
	struct kvn_item it[N];
	char keys[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "pipe%d", i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v, .vlen = SZ };
	}
	sigset_t pipe, old, pend;
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_BLOCK, &pipe, &old);
	int rc = kvn_batch_put(c, it, N, 0);
	sigpending(&pend);
	int got = sigismember(&pend, SIGPIPE);
	if (got) {
		int sig;
		sigwait(&pipe, &sig);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_IGN);
	ok(!got, "no SIGPIPE raised (with the default disposition it would have ended the program)");
	is_int(rc, KVN_ECONN, "the batch put says KVN_ECONN (%s)", kvn_strerror(rc));
	pthread_join(r.th, NULL);
	close(r.lfd);
	is_int(kvn_ping(c, NULL, NULL), 0, "the client still talks to the master");
	kvn_close(c);
	free(v);
	proc_stop(p, SIGKILL, 5000, NULL); /* its 288 MiB arena */
	proc_stop(m, SIGKILL, 5000, NULL);
}

/* A PUT tampered with on the way (one byte of its payload flipped by a
 * relay).  Integrity mode frame: the peer refuses the frame (bad tag,
 * connection closed) and the client reports the lost connection, not that
 * the cluster is full.  Mode header: the tag leaves the payload out, so the
 * peer's check of the writer's checksum refuses the item (KVN_ECORRUPT,
 * nothing stored) and the connection lives on. */
static void tampered_put(int frame)
{
	char conf[300], data[300], s[400], extra[300], tag[32];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	struct relay r;
	const char *mode = frame ? "frame" : "header";

	is_int(relay_start(&r, pp, UINT64_MAX), 0, "%s: a relay that flips one byte of the client's stream",
	       mode);
	r.flip_at = 2 << 20; /* inside the first PUT's payload */
	snprintf(conf, sizeof conf, "%s/tamper-%s.conf", proc_tmp, mode);
	snprintf(data, sizeof data, "%s/var-tamper-%s", proc_tmp, mode);
	/* local = off: the relay is a TCP hop the same-host path would skip */
	snprintf(extra, sizeof extra, "local = off\n[peer]\nadvertise = 127.0.0.1:%u\n[auth]\nintegrity = %s\n",
		 r.port, mode);
	proc_write_conf(conf, mp, pp, data, "32MiB", extra);
	snprintf(tag, sizeof tag, "tamper-m-%s", mode);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	proc_spawn(tag, am);
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	snprintf(tag, sizeof tag, "tamper-p-%s", mode);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", "node.id=tamper-p", NULL };
	proc_spawn(tag, ap);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "%s: master and a peer behind the relay up", mode);
	if (!c) {
		pthread_cancel(r.th);
		return;
	}
	uint8_t *v = kvn_xmalloc(4 * MIB);
	proc_fill(v, 4 * MIB, 17);
	int rc = kvn_put(c, "tampered", 8, v, 4 * MIB, 0);
	if (frame) {
		is_int(rc, KVN_ECONN, "frame: the put says KVN_ECONN, not KVN_EFULL (%s)", kvn_strerror(rc));
		ok(proc_wait_log(tag, "bad tag", 1, 5000) == 0, "frame: the peer saw the tampering (bad tag)");
	} else {
		is_int(rc, KVN_ECORRUPT, "header: the put says KVN_ECORRUPT (%s)", kvn_strerror(rc));
		uint8_t b[16];
		size_t n = 0;
		rc = kvn_get(c, "tampered", 8, b, sizeof b, &n);
		is_int(rc, KVN_ENOTFOUND, "header: nothing was stored (%s)", kvn_strerror(rc));
		is_int(proc_log_count(tag, "bad tag"), 0, "header: no frame was refused for its tag");
	}
	kvn_close(c); /* the relay ends when the client's connection does */
	pthread_join(r.th, NULL);
	close(r.lfd);
	free(v);
}

static void t_tampered_put(void)
{
	tampered_put(1);
	tampered_put(0);
}

/* Item 8: a batch get whose reply from one peer is over 256 MiB (17 x 16
 * MiB) succeeds byte for byte, as does the batch put. */
static void t_big_batch(void)
{
	enum { N = 17, SZ = 16 << 20, STEP = 4096 };
	char conf[300], keys[N][16];
	struct kvn_item it[N];

	pid_t node = proc_start_node("big", "320MiB", "[client]\ntimeout = 30s\n", conf, sizeof conf);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "a node with 320 MiB up");
	if (!c)
		return;
	/* item i is SZ bytes from v + i * STEP: each different, 16 MiB + 64 KiB in all */
	uint8_t *v = kvn_xmalloc(SZ + N * STEP);
	proc_fill(v, SZ + N * STEP, 3);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "big%d", i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v + i * STEP, .vlen = SZ };
	}
	is_int(kvn_batch_put(c, it, N, 0), 0, "batch put of 17 x 16 MiB (272 MiB)");
	int bad = 0;
	for (int i = 0; i < N; i++) {
		bad += it[i].status != 0;
		it[i].val = NULL; /* kvn_batch_get allocates */
		it[i].vlen = 0;
	}
	is_int(bad, 0, "every item stored");
	int rc = kvn_batch_get(c, it, N);
	is_int(rc, 0, "batch get of the 17 (272 MiB from one peer): %s", kvn_strerror(rc));
	bad = 0;
	for (int i = 0; i < N; i++) {
		if (it[i].status != 0 || it[i].vlen != SZ || !it[i].val || memcmp(it[i].val, v + i * STEP, SZ) != 0)
			bad++;
		free(it[i].val);
	}
	is_int(bad, 0, "byte for byte");
	kvn_close(c);
	free(v);
	proc_stop(node, SIGKILL, 5000, NULL); /* its 320 MiB arena */
}

/* Item 22: a master-only process is named after its own port. */
static void t_master_only_name(void)
{
	char conf[300], data[300], want[32], wrong[32];
	uint16_t mp = proc_free_port(), pp = proc_free_port();

	snprintf(conf, sizeof conf, "%s/mo.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-mo", proc_tmp);
	proc_write_conf(conf, mp, pp, data, "32MiB", NULL);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	pid_t m = proc_spawn("mo", am);
	ok(proc_wait_log("mo", "kvnode ready", 1, 10000) == 0, "a master-only process is ready");
	snprintf(want, sizeof want, "-%u, master on", mp);
	snprintf(wrong, sizeof wrong, "-%u, master on", pp);
	ok(proc_log_count("mo", want) == 1, "its node id ends in the master's port %u", mp);
	is_int(proc_log_count("mo", wrong), 0, "not in peer.listen's port %u, which it does not listen on", pp);
	proc_stop(m, SIGTERM, 5000, NULL);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "refused_payload", t_refused_payload },
		{ "erange_in_batch", t_erange_in_batch },
		{ "batch_get_alloc", t_batch_get_alloc },
		{ "api_gaps", t_api_gaps },
		{ "null_key", t_null_key },
		{ "async_deadline_code", t_async_deadline_code },
		{ "timer_not_early", t_timer_not_early },
		{ "dead_peer_not_full", t_dead_peer_not_full },
		{ "enospc_retries0", t_enospc_retries0 },
		{ "peer_dies_mid_write", t_peer_dies_mid_write },
		{ "sigpipe", t_sigpipe },
		{ "tampered_put", t_tampered_put },
		{ "master_only_name", t_master_only_name },
		{ "big_batch", t_big_batch },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("datapath") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(300);
	rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	return rc;
}
