/* t/client_async: async puts through real kvnode processes: callbacks run
 * only for puts that succeeded and only inside kvn_poll/kvn_drain/kvn_close,
 * failures (a value no node can hold, a dead peer, a deadline that passes
 * while the bytes are in flight) are reported by kvn_poll_failures and
 * never by a callback, KVN_EBUSY beyond KVN_ASYNC_MAX, kvn_close waits for
 * puts in flight and runs their callbacks before it returns, and a caller's
 * buffer is never read after its put was reported (ASan catches it). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

static char conf_a[300];
static struct kvn_client *ca;

struct mark {
	int calls;   /* times done ran */
	int status;  /* what it was given */
	int id;
};

static void on_done(void *arg, int status)
{
	struct mark *m = arg;
	m->calls++;
	m->status = status;
}

/* Poll until nothing is outstanding but failures, within ms. */
static int poll_until_idle(struct kvn_client *c, size_t failures_expected, uint64_t ms)
{
	uint64_t until = kvn_now_ms() + ms;
	int ran = 0;
	while (kvn_async_pending(c) > failures_expected && kvn_now_ms() < until) {
		int n = kvn_poll(c, 100);
		if (n < 0)
			return n;
		ran += n;
	}
	return ran;
}

static void fixture_up(void)
{
	/* 32 MiB of DRAM: a 40 MiB value is under max_value_size (48 MiB) but
	 * fits no node, so the master refuses it after the put started */
	proc_start_node("aio", "32MiB", NULL, conf_a, sizeof conf_a);
	ca = proc_connect_ready(conf_a, 1);
	ok(ca != NULL, "all-in-one node up, client connected");
	if (!ca)
		exit(1);
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/client_async CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

static void t_success_only(void)
{
	fixture();
	enum { N = 64 };
	static struct mark marks[N + 1];
	static uint8_t *vals[N];
	char keys[N][32];
	uint8_t *big = kvn_xmalloc(40u << 20);
	int bad = 0;

	for (int i = 0; i < N; i++) {
		size_t sz = (size_t)(i * 2654435761u) % (256 * 1024);
		snprintf(keys[i], sizeof keys[i], "async/%02d", i);
		vals[i] = kvn_xmalloc(sz ? sz : 1);
		proc_fill(vals[i], sz, (uint64_t)i + 7);
		marks[i].id = i;
		if (kvn_put_async(ca, keys[i], strlen(keys[i]), vals[i], sz, 0, on_done, &marks[i]) != 0)
			bad++;
	}
	is_int(bad, 0, "64 async puts started");
	marks[N].id = N;
	is_int(kvn_put_async(ca, "async/big", 9, big, 40u << 20, 0, on_done, &marks[N]), 0,
	       "a 40 MiB put starts (only the master knows no node can hold it)");
	is_int(kvn_put_async(ca, "async/huge", 10, big, 49u << 20, 0, on_done, &marks[N]), KVN_ETOOBIG,
	       "over max_value_size: refused at once, nothing started");
	is_int(kvn_put_async(ca, "", 0, big, 1, 0, on_done, &marks[N]), KVN_EKEYLEN, "empty key refused at once");
	ok(kvn_async_pending(ca) == N + 1, "65 outstanding (%zu)", kvn_async_pending(ca));
	int none = 0;
	for (int i = 0; i <= N; i++)
		none += marks[i].calls;
	is_int(none, 0, "no callback runs outside kvn_poll");

	int ran = poll_until_idle(ca, 1, 10000);
	is_int(ran, N, "kvn_poll ran 64 callbacks in all");
	bad = 0;
	for (int i = 0; i < N; i++)
		if (marks[i].calls != 1 || marks[i].status != 0)
			bad++;
	is_int(bad, 0, "each successful put's callback ran exactly once, with status 0");
	is_int(marks[N].calls, 0, "the failed put's callback never ran");

	struct kvn_put_failure f[4];
	memset(f, 0, sizeof f);
	size_t nf = kvn_poll_failures(ca, f, 4);
	is_int(nf, 1, "one failure reported");
	ok(nf == 1 && f[0].arg == &marks[N], "with the failed put's arg");
	is_int(nf == 1 ? f[0].status : 0, KVN_ETOOBIG, "and why: KVN_ETOOBIG");
	is_int(kvn_async_pending(ca), 0, "nothing outstanding after the failure was taken");
	is_int(kvn_poll_failures(ca, f, 4), 0, "a failure is reported once");
	free(big); /* reported: ours again (ASan would catch a late read) */

	bad = 0;
	uint8_t *g = kvn_xmalloc(256 * 1024);
	for (int i = 0; i < N; i++) {
		size_t sz = (size_t)(i * 2654435761u) % (256 * 1024), vlen = 0;
		if (kvn_get(ca, keys[i], strlen(keys[i]), g, 256 * 1024, &vlen) != 0 || vlen != sz ||
		    memcmp(g, vals[i], sz) != 0)
			bad++;
		free(vals[i]);
		if (kvn_remove(ca, keys[i], strlen(keys[i])) != 0)
			bad++;
	}
	is_int(bad, 0, "every acknowledged async put reads back byte for byte");
	is_int(kvn_get(ca, "async/big", 9, g, 16, NULL), KVN_ENOTFOUND, "the failed one stored nothing");
	free(g);
	is_int(kvn_poll(ca, 50), 0, "kvn_poll with nothing in flight returns 0");
}

static void t_busy_limit(void)
{
	fixture();
	static struct mark m;
	static uint8_t v[16];
	int rc = 0, started = 0;
	char key[32];

	memset(&m, 0, sizeof m);
	for (int i = 0; i < KVN_ASYNC_MAX && rc == 0; i++) {
		snprintf(key, sizeof key, "busy/%d", i);
		rc = kvn_put_async(ca, key, strlen(key), v, sizeof v, 0, on_done, &m);
		if (rc == 0)
			started++;
	}
	is_int(started, KVN_ASYNC_MAX, "KVN_ASYNC_MAX puts in flight");
	is_int(kvn_put_async(ca, "busy/over", 9, v, sizeof v, 0, on_done, &m), KVN_EBUSY,
	       "one more: KVN_EBUSY");
	int ran = kvn_drain(ca);
	is_int(ran, KVN_ASYNC_MAX, "kvn_drain waited for all of them and ran their callbacks");
	is_int(m.calls, KVN_ASYNC_MAX, "each exactly once");
	is_int(kvn_async_pending(ca), 0, "nothing outstanding");
	is_int(kvn_put_async(ca, "busy/over", 9, v, sizeof v, 0, on_done, &m), 0, "room again");
	is_int(kvn_drain(ca), 1, "and it completes");
}

static struct kvn_client *chain_c;
static int chain_left, chain_done, nested_rc;
static uint8_t chain_val[100];

/* A callback may start the next put (and make other calls), but may not
 * poll from inside. */
static void on_chain(void *arg, int status)
{
	char key[32];
	(void)arg;
	(void)status;
	chain_done++;
	nested_rc = kvn_poll(chain_c, 0);
	if (chain_left > 0) {
		snprintf(key, sizeof key, "chain/%d", chain_left--);
		if (kvn_put_async(chain_c, key, strlen(key), chain_val, sizeof chain_val, 0, on_chain, NULL) != 0)
			chain_done = -1000;
	}
}

static void t_callback_chain(void)
{
	fixture();
	chain_c = ca;
	chain_left = 9;
	chain_done = 0;
	nested_rc = 0;
	is_int(kvn_put_async(ca, "chain/10", 8, chain_val, sizeof chain_val, 0, on_chain, NULL), 0, "first put");
	uint64_t until = kvn_now_ms() + 10000;
	while (chain_done < 10 && chain_done >= 0 && kvn_now_ms() < until)
		kvn_poll(ca, 100);
	is_int(chain_done, 10, "each callback started the next put: 10 done");
	is_int(nested_rc, KVN_EBUSY, "kvn_poll from inside a callback: KVN_EBUSY");
	is_int(kvn_exists(ca, "chain/1", 7), 1, "the last of the chain is stored");
}

static int close_calls;
static void on_close_done(void *arg, int status)
{
	(void)arg;
	if (status == 0)
		close_calls++;
}

static void t_close_drains(void)
{
	fixture();
	enum { N = 24, SZ = 1 << 20 };
	struct kvn_options o = { .config_path = conf_a };
	struct kvn_client *c = NULL;
	uint8_t *vals = kvn_xmalloc((size_t)N * SZ);
	int bad = 0;

	is_int(kvn_connect(&o, &c), 0, "a second client");
	if (!c) {
		free(vals);
		return;
	}
	close_calls = 0;
	for (int i = 0; i < N; i++) {
		char key[32];
		snprintf(key, sizeof key, "close/%d", i);
		proc_fill(vals + (size_t)i * SZ, SZ, (uint64_t)i + 1000);
		if (kvn_put_async(c, key, strlen(key), vals + (size_t)i * SZ, SZ, 0, on_close_done, NULL) != 0)
			bad++;
	}
	is_int(bad, 0, "24 puts of 1 MiB started");
	ok(kvn_async_pending(c) > 0 && close_calls == 0, "in flight, no callback yet");
	kvn_close(c); /* must wait for them */
	is_int(close_calls, N, "kvn_close returned after every callback ran");
	/* the buffers are ours again: overwrite them, then check the store */
	memset(vals, 0xAB, (size_t)N * SZ);
	uint8_t *g = kvn_xmalloc(SZ), *want = kvn_xmalloc(SZ);
	bad = 0;
	for (int i = 0; i < N; i++) {
		char key[32];
		size_t vlen = 0;
		snprintf(key, sizeof key, "close/%d", i);
		proc_fill(want, SZ, (uint64_t)i + 1000);
		if (kvn_get(ca, key, strlen(key), g, SZ, &vlen) != 0 || vlen != SZ || memcmp(g, want, SZ) != 0)
			bad++;
		kvn_remove(ca, key, strlen(key));
	}
	is_int(bad, 0, "every put drained by kvn_close is stored intact");
	free(g);
	free(want);
	free(vals);
}

/* A deadline that passes while the bytes are on the wire: the put fails
 * with KVN_ETIMEDOUT, its connection is cut, and the buffer is freed right
 * after the report while the client keeps running (under ASan a late read
 * of it is a heap-use-after-free).  Nothing partial is ever stored. */
static void t_deadline_mid_transfer(void)
{
	fixture();
	enum { N = 4, SZ = 6 << 20 };
	struct kvn_options o = { .config_path = conf_a, .timeout_ms = 4 };
	struct kvn_client *c = NULL;
	static struct mark marks[N];
	uint8_t *bufs[N];
	int reported = 0, timeouts = 0, successes = 0, bad = 0;

	/* kvn_connect pings within the short timeout too: retry a few times */
	for (int i = 0; i < 50 && !c; i++)
		if (kvn_connect(&o, &c) != 0)
			usleep(20000);
	ok(c != NULL, "a client with a 4 ms deadline");
	if (!c)
		return;
	memset(marks, 0, sizeof marks);
	for (int i = 0; i < N; i++) {
		char key[32];
		snprintf(key, sizeof key, "late/%d", i);
		bufs[i] = kvn_xmalloc(SZ);
		proc_fill(bufs[i], SZ, (uint64_t)i + 77);
		marks[i].id = i;
		if (kvn_put_async(c, key, strlen(key), bufs[i], SZ, 0, on_done, &marks[i]) != 0)
			bad++;
	}
	is_int(bad, 0, "4 puts of 6 MiB started");
	uint64_t until = kvn_now_ms() + 5000;
	while (reported < N && kvn_now_ms() < until) {
		struct kvn_put_failure f[N];
		kvn_poll(c, 20);
		for (int i = 0; i < N; i++)
			if (marks[i].calls == 1 && bufs[i]) {
				free(bufs[i]); /* reported: ours */
				bufs[i] = NULL;
				successes++;
				reported++;
			}
		size_t nf = kvn_poll_failures(c, f, N);
		for (size_t j = 0; j < nf; j++) {
			struct mark *m = f[j].arg;
			if (f[j].status == KVN_ETIMEDOUT)
				timeouts++;
			free(bufs[m->id]);
			bufs[m->id] = NULL;
			reported++;
		}
	}
	is_int(reported, N, "every put reported within its deadline");
	ok(timeouts >= 1, "at least one deadline passed mid-transfer (%d timed out, %d succeeded)", timeouts,
	   successes);
	int calls = 0;
	for (int i = 0; i < N; i++)
		calls += marks[i].calls;
	is_int(calls, successes, "callbacks ran only for the puts that succeeded");
	/* keep the client busy after the buffers are gone */
	uint64_t t_end = kvn_now_ms() + 300;
	while (kvn_now_ms() < t_end)
		kvn_ping(c, NULL, NULL);
	kvn_close(c);
	/* what the store has is whole or nothing */
	uint8_t *g = kvn_xmalloc(SZ), *want = kvn_xmalloc(SZ);
	int partial = 0;
	for (int i = 0; i < N; i++) {
		char key[32];
		size_t vlen = 0;
		snprintf(key, sizeof key, "late/%d", i);
		int rc = kvn_get(ca, key, strlen(key), g, SZ, &vlen);
		proc_fill(want, SZ, (uint64_t)i + 77);
		if (rc == 0 && (vlen != SZ || memcmp(g, want, SZ) != 0))
			partial++;
		else if (rc != 0 && rc != KVN_ENOTFOUND)
			partial++;
		kvn_remove(ca, key, strlen(key));
	}
	is_int(partial, 0, "no key holds a partial value");
	is_int(kvn_put(ca, "after-late", 10, "ok", 2, 0), 0, "the node is fine afterwards");
	free(g);
	free(want);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
}

/* A peer killed with -9: its puts fail (re-routed until the master has no
 * other node), and no callback runs for them. */
static void t_dead_peer(void)
{
	char data[300], conf[300];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	static struct mark marks[8];
	static uint8_t v[4096];

	snprintf(conf, sizeof conf, "%s/m.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-m", proc_tmp);
	proc_write_conf(conf, mp, pp, data, "32MiB", NULL);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	proc_spawn("m", am);
	char s[400];
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", "node.id=p1", NULL };
	pid_t peer = proc_spawn("p1", ap);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and one peer up");
	if (!c)
		return;
	is_int(kvn_put(c, "warm", 4, v, sizeof v, 0), 0, "a put while the peer lives");
	proc_stop(peer, SIGKILL, 5000, NULL);
	memset(marks, 0, sizeof marks);
	for (int i = 0; i < 8; i++) {
		char key[32];
		snprintf(key, sizeof key, "dead/%d", i);
		kvn_put_async(c, key, strlen(key), v, sizeof v, 0, on_done, &marks[i]);
	}
	uint64_t t0 = kvn_now_ms();
	int ran = kvn_drain(c);
	uint64_t dt = kvn_now_ms() - t0;
	is_int(ran, 0, "no callback ran");
	struct kvn_put_failure f[8];
	size_t nf = kvn_poll_failures(c, f, 8);
	is_int(nf, 8, "all 8 reported as failures");
	int odd = 0;
	for (size_t i = 0; i < nf; i++)
		if (f[i].status >= 0)
			odd++;
	is_int(odd, 0, "each with an error status (first: %s)", nf ? kvn_strerror(f[0].status) : "-");
	ok(dt < 4000, "within the client deadline (%llu ms)", (unsigned long long)dt);
	kvn_close(c);
}

/* The node restarts while clients sit idle: their pooled connections (to
 * the master and the peer) died unnoticed.  Their next calls, sync and
 * async, reconnect within the deadline instead of failing on the dead
 * connections (or excluding the only node). */
static void t_restart_while_idle(void)
{
	char data[300], conf[300];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	static struct mark m;
	static uint8_t v[2048];

	snprintf(conf, sizeof conf, "%s/r.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-r", proc_tmp);
	proc_write_conf(conf, mp, pp, data, "32MiB", NULL);
	const char *args[] = { "--config", conf, NULL };
	pid_t pid = proc_spawn("r1", args);
	struct kvn_client *cs = proc_connect_ready(conf, 1), *cx = proc_connect_ready(conf, 1);
	ok(cs && cx, "a node up, two clients connected");
	if (!cs || !cx) {
		kvn_close(cs);
		kvn_close(cx);
		return;
	}
	is_int(kvn_put(cs, "idle/0", 6, v, sizeof v, 0), 0, "a put opens the first client's connections");
	is_int(kvn_put(cx, "idle/1", 6, v, sizeof v, 0), 0, "and the second's");
	is_int(proc_stop(pid, SIGKILL, 5000, NULL), 0, "kill -9 the node");
	proc_spawn("r2", args);
	struct kvn_client *probe = proc_connect_ready(conf, 1);
	ok(probe != NULL, "the node is back (a new client sees its peer)");
	kvn_close(probe);
	is_int(kvn_put(cs, "idle/2", 6, v, sizeof v, 0), 0, "the idle client's next put succeeds");
	memset(&m, 0, sizeof m);
	is_int(kvn_put_async(cx, "idle/3", 6, v, sizeof v, 0, on_done, &m), 0, "an async put from the other");
	kvn_drain(cx);
	struct kvn_put_failure f[1];
	size_t nf = kvn_poll_failures(cx, f, 1);
	ok(m.calls == 1 && nf == 0, "succeeds too (%s)", nf ? kvn_strerror(f[0].status) : "ok");
	is_int(kvn_exists(cs, "idle/3", 6), 1, "and is stored");
	kvn_close(cs);
	kvn_close(cx);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "success_only", t_success_only },
		{ "busy_limit", t_busy_limit },
		{ "callback_chain", t_callback_chain },
		{ "close_drains", t_close_drains },
		{ "deadline_mid_transfer", t_deadline_mid_transfer },
		{ "dead_peer", t_dead_peer },
		{ "restart_while_idle", t_restart_while_idle },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("async") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(300);
	rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	return rc;
}
