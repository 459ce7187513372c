/* t/client_submit: submissions (kvn_submit_get/put/exists, kvn_fd,
 * kvn_reap) through real kvnode processes: completions with the batch
 * calls' statuses and bytes, an fd that turns readable while the caller
 * only waits in poll(2), KVN_SUBMIT_MAX in flight and KVN_EBUSY past it,
 * a node killed under a batch (an error within the deadline, no hang),
 * kvn_close while a peer hangs (returns at the submissions' deadline),
 * kvn_close with submissions not reaped (drained; ASan sees no leak), the
 * progress thread started only by a submit, and kvn_put_async's callbacks
 * only ever on the caller's thread. */
#include "config.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "tap.h"

static char conf_a[300];
static struct kvn_client *ca;

static void fixture(void)
{
	static int up;

	if (up)
		return;
	up = 1;
	proc_start_node("aio", "128MiB", NULL, conf_a, sizeof conf_a);
	ca = proc_connect_ready(conf_a, 1);
	ok(ca != NULL, "all-in-one node up, client connected");
	if (!ca)
		exit(1);
}

/* Wait in poll(2) alone until fd is readable: 1, or 0 after ms. */
static int fd_wait(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t until = kvn_now_ms() + (uint64_t)ms;

	for (;;) {
		int left = (int)(until > kvn_now_ms() ? until - kvn_now_ms() : 0);
		int r = poll(&p, 1, left);
		if (r > 0)
			return 1;
		if (r == 0 || kvn_now_ms() >= until)
			return 0;
	}
}

/* Reap until want completions arrived (into out) or ms passed. */
static size_t reap_n(struct kvn_client *c, struct kvn_completion *out, size_t want, int ms)
{
	uint64_t until = kvn_now_ms() + (uint64_t)ms;
	size_t got = 0;

	while (got < want && kvn_now_ms() < until) {
		fd_wait(kvn_fd(c), 200);
		int n = kvn_reap(c, out + got, want - got);
		if (n < 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void t_complete(void)
{
	fixture();
	enum { N = 12 };
	static uint8_t *vals[N], *bufs[N];
	static char keys[N + 1][32];
	static struct kvn_item put[N], get[N + 1], ex[N + 1];
	struct kvn_completion done[4];
	uint64_t idp = 0, idg = 0, ide = 0;

	memset(put, 0, sizeof put);
	memset(get, 0, sizeof get);
	memset(ex, 0, sizeof ex);
	for (int i = 0; i <= N; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/c/%02d", i); /* keys[N] is never put */
		get[i].key = ex[i].key = keys[i];
		get[i].klen = ex[i].klen = strlen(keys[i]);
	}
	for (int i = 0; i < N; i++) {
		size_t sz = 1 + (size_t)(i * 2654435761u) % (3u << 20);
		vals[i] = kvn_xmalloc(sz);
		bufs[i] = kvn_xmalloc(3u << 20);
		proc_fill(vals[i], sz, (uint64_t)i + 100);
		put[i].key = keys[i];
		put[i].klen = strlen(keys[i]);
		put[i].val = vals[i];
		put[i].vlen = sz;
		get[i].val = bufs[i];
		get[i].cap = 3u << 20;
	}
	get[3].cap = 1;      /* too small: KVN_ERANGE with vlen set */
	get[5].val = NULL;   /* malloc'd by the get */
	static uint8_t small[16];
	get[N].val = small; /* the missing key */
	get[N].cap = sizeof small;
	is_int(kvn_submit_put(ca, put, N, 0, &idp), 0, "submit a put of 12 values");
	is_int(kvn_submit_get(ca, get, N + 1, &idg), 0, "then a get of them and a missing key");
	is_int(kvn_submit_exists(ca, ex, N + 1, &ide), 0, "then an exists of the same");
	ok(idp >= 1 && idg == idp + 1 && ide == idg + 1, "ids grow by one (%llu %llu %llu)",
	   (unsigned long long)idp, (unsigned long long)idg, (unsigned long long)ide);
	is_int(reap_n(ca, done, 3, 10000), 3, "three completions");
	ok(done[0].id == idp && done[1].id == idg && done[2].id == ide, "in submit order");
	ok(done[0].op == KVN_OP_PUT && done[1].op == KVN_OP_GET && done[2].op == KVN_OP_EXISTS, "with their ops");
	ok(done[1].items == get && done[1].n == N + 1, "and their items");
	is_int(done[0].status, 0, "the put succeeded");
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += put[i].status != 0;
	is_int(bad, 0, "every put item 0");
	is_int(done[1].status, KVN_ERANGE, "the get returns the first item error (KVN_ERANGE)");
	bad = 0;
	for (int i = 0; i < N; i++) {
		if (i == 3 || i == 5)
			continue;
		if (get[i].status != 0 || get[i].vlen != put[i].vlen || memcmp(bufs[i], vals[i], put[i].vlen) != 0)
			bad++;
	}
	is_int(bad, 0, "10 gets byte for byte into the caller's buffers");
	ok(get[3].status == KVN_ERANGE && get[3].vlen == put[3].vlen, "a buffer too small: KVN_ERANGE, vlen set");
	ok(get[5].status == 0 && get[5].val && get[5].vlen == put[5].vlen &&
		   memcmp(get[5].val, vals[5], put[5].vlen) == 0,
	   "val NULL: a malloc'd copy, byte for byte");
	free(get[5].val);
	is_int(get[N].status, KVN_ENOTFOUND, "the missing key: KVN_ENOTFOUND");
	is_int(done[2].status, 0, "the exists succeeded");
	bad = 0;
	for (int i = 0; i < N; i++)
		bad += ex[i].status != 0 || ex[i].exists != 1;
	is_int(bad, 0, "the 12 stored keys exist");
	ok(ex[N].status == 0 && ex[N].exists == 0, "the missing one does not");
	is_int(kvn_reap(ca, done, 4), 0, "nothing more to reap");
	is_int(kvn_submit_pending(ca), 0, "nothing pending");
	for (int i = 0; i < N; i++) {
		free(vals[i]);
		free(bufs[i]);
	}
}

static void t_fd_readable(void)
{
	fixture();
	static uint8_t v[64 * 1024];
	static struct kvn_item it[4];
	struct kvn_completion done[2];
	uint64_t id;
	char keys[4][16];

	int fd = kvn_fd(ca);
	ok(fd >= 0, "kvn_fd gives an fd");
	is_int(kvn_fd(ca), fd, "the same one each time");
	is_int(fd_wait(fd, 0), 0, "not readable with nothing submitted");
	memset(it, 0, sizeof it);
	for (int i = 0; i < 4; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/fd/%d", i);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		it[i].val = v;
		it[i].vlen = sizeof v;
	}
	is_int(kvn_submit_put(ca, it, 4, 0, &id), 0, "submit");
	/* the caller makes no call of the client now: only poll(2) */
	is_int(fd_wait(fd, 10000), 1, "the fd turns readable while the caller only waits in poll");
	is_int(fd_wait(fd, 0), 1, "and stays readable (level) until reaped");
	is_int(kvn_reap(ca, done, 2), 1, "one completion");
	ok(done[0].id == id && done[0].status == 0, "the submission's, succeeded");
	is_int(fd_wait(fd, 0), 0, "after the last is reaped the fd is not readable");
	is_int(kvn_reap(ca, done, 2), 0, "and kvn_reap finds nothing");
}

static void t_many_busy(void)
{
	fixture();
	static struct kvn_item it[KVN_SUBMIT_MAX];
	static struct kvn_completion done[KVN_SUBMIT_MAX];
	static char keys[KVN_SUBMIT_MAX][24];
	uint64_t id, first = 0;
	int started = 0, rc = 0;

	memset(it, 0, sizeof it);
	for (int i = 0; i < KVN_SUBMIT_MAX && rc == 0; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/m/%d", i);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		rc = (i % 2 ? kvn_submit_exists : kvn_submit_get)(ca, &it[i], 1, &id);
		if (i == 0)
			first = id;
		started += rc == 0;
	}
	is_int(started, KVN_SUBMIT_MAX, "KVN_SUBMIT_MAX submissions outstanding");
	is_int(kvn_submit_pending(ca), KVN_SUBMIT_MAX, "kvn_submit_pending counts them");
	is_int(kvn_submit_exists(ca, it, 1, &id), KVN_EBUSY, "one more: KVN_EBUSY");
	size_t got = reap_n(ca, done, KVN_SUBMIT_MAX, 60000);
	is_int(got, KVN_SUBMIT_MAX, "all completed and reaped");
	int order = 0, bad = 0;
	for (size_t i = 0; i < got; i++) {
		order += done[i].id != first + i;
		/* nothing was put: gets KVN_ENOTFOUND, exists 0 */
		if (i % 2 ? (done[i].status != 0 || it[i].exists != 0) : done[i].status != KVN_ENOTFOUND)
			bad++;
	}
	is_int(order, 0, "in submit order");
	is_int(bad, 0, "each with its batch's result");
	is_int(kvn_submit_exists(ca, it, 1, &id), 0, "room again");
	is_int(reap_n(ca, done, 1, 10000), 1, "and it completes");
}

static void t_invalid(void)
{
	fixture();
	struct kvn_item it[2];
	struct kvn_completion done[1];
	uint64_t id = 0;

	memset(it, 0, sizeof it);
	it[0].key = "sub/i";
	it[0].klen = 5;
	it[1].key = NULL;
	it[1].klen = 3;
	is_int(kvn_submit_get(NULL, it, 1, &id), KVN_EINVAL, "NULL client: KVN_EINVAL");
	is_int(kvn_submit_get(ca, it, 1, NULL), KVN_EINVAL, "NULL id: KVN_EINVAL");
	is_int(kvn_submit_get(ca, NULL, 1, &id), KVN_EINVAL, "NULL items with n 1: KVN_EINVAL");
	is_int(kvn_submit_exists(ca, it, 2, &id), KVN_EINVAL, "a NULL key: KVN_EINVAL");
	is_int(it[0].status, 0, "the items are untouched");
	it[1].key = "x";
	it[1].klen = 0;
	is_int(kvn_submit_exists(ca, it, 2, &id), KVN_EKEYLEN, "an empty key: KVN_EKEYLEN");
	it[1].klen = KVN_MAX_KEY + 1;
	is_int(kvn_submit_exists(ca, it, 2, &id), KVN_EKEYLEN, "a key over KVN_MAX_KEY: KVN_EKEYLEN");
	it[0].vlen = 10; /* val NULL */
	is_int(kvn_submit_put(ca, it, 1, 0, &id), KVN_EINVAL, "a put item with bytes but no val: KVN_EINVAL");
	it[0].val = "0123456789";
	is_int(kvn_submit_put(ca, it, 1, 1u << 20, &id), KVN_EINVAL, "an unknown flag: KVN_EINVAL");
	is_int(kvn_submit_put(ca, it, 1, KVN_PUT_RETAIN, &id), KVN_EINVAL, "RETAIN alone: KVN_EINVAL");
	is_int(kvn_submit_pending(ca), 0, "nothing was submitted");
	is_int(kvn_submit_get(ca, NULL, 0, &id), 0, "n 0 is allowed");
	is_int(reap_n(ca, done, 1, 5000), 1, "and completes");
	ok(done[0].id == id && done[0].status == 0 && done[0].n == 0, "with status 0");
	is_int(kvn_reap(ca, NULL, 1), KVN_EINVAL, "kvn_reap: out NULL with max 1: KVN_EINVAL");
	is_int(kvn_reap(ca, NULL, 0), 0, "out NULL with max 0: 0");
	is_int(kvn_reap(NULL, done, 1), KVN_EINVAL, "kvn_reap(NULL): KVN_EINVAL");
	is_int(kvn_fd(NULL), KVN_EINVAL, "kvn_fd(NULL): KVN_EINVAL");
}

/* A progress thread only for a client that submits; kvn_close ends it. */
static void t_lazy_thread(void)
{
	fixture();
	struct kvn_item it = { .key = "sub/lazy", .klen = 8 };
	uint64_t id;

	int base = threads_now();
	struct kvn_client *c = proc_connect_ready(conf_a, 1);
	ok(c != NULL, "a second client");
	if (!c)
		return;
	is_int(threads_now(), base, "connecting starts no thread");
	ok(kvn_fd(c) >= 0, "kvn_fd");
	is_int(threads_now(), base, "kvn_fd starts no thread either");
	is_int(kvn_submit_exists(c, &it, 1, &id), 0, "a submit");
	is_int(threads_now(), base + 1, "starts the progress thread");
	kvn_close(c);
	is_int(threads_now(), base, "kvn_close ends it");
}

/* kvn_close with submissions neither complete nor reaped: it waits for
 * them (the items hold final results after it) and frees its records
 * (ASan's leak check at exit). */
static void t_close_unreaped(void)
{
	fixture();
	enum { N = 8, SZ = 1 << 20 };
	static uint8_t *v[N];
	static struct kvn_item put[N], get[N];
	char keys[N][24];
	uint64_t id;

	struct kvn_client *c = proc_connect_ready(conf_a, 1);
	ok(c != NULL, "a client for closing");
	if (!c)
		return;
	memset(put, 0, sizeof put);
	memset(get, 0, sizeof get);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/close/%d", i);
		v[i] = kvn_xmalloc(SZ);
		proc_fill(v[i], SZ, (uint64_t)i + 900);
		put[i].key = get[i].key = keys[i];
		put[i].klen = get[i].klen = strlen(keys[i]);
		put[i].val = v[i];
		put[i].vlen = SZ;
		put[i].status = get[i].status = 12345; /* not a status: must be written */
	}
	int rc = 0;
	for (int i = 0; i < N; i++)
		rc |= kvn_submit_put(c, &put[i], 1, 0, &id);
	rc |= kvn_submit_get(c, get, N, &id); /* val NULL: malloc'd */
	is_int(rc, 0, "8 puts and a get of them submitted");
	kvn_close(c); /* nothing reaped */
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += put[i].status != 0;
	is_int(bad, 0, "after kvn_close every put item has its result: 0");
	bad = 0;
	for (int i = 0; i < N; i++) {
		if (get[i].status != 0 || get[i].vlen != SZ || memcmp(get[i].val, v[i], SZ) != 0)
			bad++;
		free(get[i].val); /* the caller's after kvn_close, as after a reap */
	}
	is_int(bad, 0, "and the get ran after them (submit order): every value byte for byte");
	for (int i = 0; i < N; i++) {
		free(v[i]);
		bad += kvn_exists(ca, keys[i], strlen(keys[i])) != 1;
	}
	is_int(bad, 0, "another client sees them");
}

static pthread_t cb_thread_seen;
static int cb_calls, cb_other_thread;

static void on_put_done(void *arg, int status)
{
	(void)arg;
	(void)status;
	cb_calls++;
	if (!pthread_equal(pthread_self(), cb_thread_seen))
		cb_other_thread++;
}

/* Submissions run on the progress thread; async put callbacks still run
 * only on the caller's thread, inside its calls (kvn_reap among them). */
static void t_callback_thread(void)
{
	fixture();
	enum { N = 32 };
	static uint8_t v[32 * 1024];
	static struct kvn_item it[N];
	static struct kvn_completion done[N];
	char keys[N][24], akeys[N][24];
	uint64_t id;

	cb_thread_seen = pthread_self();
	cb_calls = cb_other_thread = 0;
	memset(it, 0, sizeof it);
	int rc = 0;
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/cb/%d", i);
		snprintf(akeys[i], sizeof akeys[i], "sub/acb/%d", i);
		it[i].key = keys[i];
		it[i].klen = strlen(keys[i]);
		it[i].val = v;
		it[i].vlen = sizeof v;
		rc |= kvn_submit_put(ca, &it[i], 1, 0, &id);
		rc |= kvn_put_async(ca, akeys[i], strlen(akeys[i]), v, sizeof v, 0, on_put_done, NULL);
	}
	is_int(rc, 0, "32 submissions and 32 async puts started");
	/* only poll(2) for a while: submissions progress, the async puts'
	 * callbacks cannot run */
	fd_wait(kvn_fd(ca), 10000);
	usleep(200000);
	is_int(cb_calls, 0, "no callback while the caller waits outside the library");
	size_t got = 0;
	uint64_t until = kvn_now_ms() + 15000;
	while ((got < N || cb_calls < N) && kvn_now_ms() < until) {
		fd_wait(kvn_fd(ca), 50);
		int n = kvn_reap(ca, done + got, N - got); /* drives the async puts too */
		if (n > 0)
			got += (size_t)n;
	}
	is_int(got, N, "32 completions reaped");
	is_int(cb_calls, N, "32 callbacks ran, from kvn_reap");
	is_int(cb_other_thread, 0, "every one on the caller's thread");
	is_int(kvn_async_pending(ca), 0, "no async put outstanding");
}

/* The peer dies (SIGSTOP, then SIGKILL) under a batch: the submission
 * completes with an error within the client's deadline; one queued behind
 * it too; nothing hangs. */
/* A master and a peer in processes of their own (client.timeout 3 s):
 * the connected client, with the peer's pid in *peer; NULL on failure. */
static struct kvn_client *master_and_peer(const char *tag, pid_t *peer)
{
	char data[300], conf[300], s[400], name[16], id[32];
	uint16_t mp = proc_free_port(), pp = proc_free_port();

	snprintf(conf, sizeof conf, "%s/%s.conf", proc_tmp, tag);
	snprintf(data, sizeof data, "%s/var-%s", proc_tmp, tag);
	proc_write_conf(conf, mp, pp, data, "128MiB", NULL);
	const char *am[] = { "--role", "master", "--config", conf, NULL };
	snprintf(name, sizeof name, "%s-m", tag);
	proc_spawn(name, am);
	snprintf(s, sizeof s, "%s/client.secret", data);
	for (int i = 0; i < 200 && access(s, R_OK) != 0; i++)
		usleep(25000);
	snprintf(id, sizeof id, "node.id=%s-p", tag);
	const char *ap[] = { "--role", "peer", "--config", conf, "--set", id, NULL };
	snprintf(name, sizeof name, "%s-p", tag);
	*peer = proc_spawn(name, ap);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	ok(c != NULL, "master and one peer up");
	return c;
}

static void t_node_killed(void)
{
	enum { N = 16, SZ = 2 << 20 };
	static uint8_t *bufs[N];
	static struct kvn_item put[N], get[N], ex[1];
	struct kvn_completion done[2];
	char keys[N][24];
	uint64_t id;
	pid_t peer;

	struct kvn_client *c = master_and_peer("k", &peer);
	if (!c)
		return;
	memset(put, 0, sizeof put);
	memset(get, 0, sizeof get);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "sub/kill/%d", i);
		bufs[i] = kvn_xmalloc(SZ);
		proc_fill(bufs[i], SZ, (uint64_t)i);
		put[i].key = get[i].key = keys[i];
		put[i].klen = get[i].klen = strlen(keys[i]);
		put[i].val = bufs[i];
		put[i].vlen = SZ;
		get[i].val = bufs[i];
		get[i].cap = SZ;
	}
	is_int(kvn_batch_put(c, put, N, 0), 0, "16 values of 2 MiB stored");
	/* the batch's route reaches the master; the peer answers nothing */
	kill(peer, SIGSTOP);
	ex[0] = get[0];
	uint64_t t0 = kvn_now_ms();
	int rc = kvn_submit_get(c, get, N, &id);
	rc |= kvn_submit_exists(c, ex, 1, &id);
	is_int(rc, 0, "a get of them and an exists submitted");
	usleep(300000);
	proc_stop(peer, SIGKILL, 5000, NULL);
	size_t got = reap_n(c, done, 2, 10000);
	uint64_t dt = kvn_now_ms() - t0;
	is_int(got, 2, "both complete");
	ok(got >= 1 && done[0].status < 0, "the get with an error (%s)", kvn_strerror(done[0].status));
	int bad = 0;
	for (int i = 0; i < N; i++)
		bad += get[i].status >= 0;
	is_int(bad, 0, "every item of it failed");
	ok(got == 2 && done[1].status < 0, "the exists behind it too (%s)", kvn_strerror(done[1].status));
	/* 3 s each at most from its submit, plus the reap loop's slack */
	ok(dt < 3000 + 2000, "within the deadline (%llu ms)", (unsigned long long)dt);
	t0 = kvn_now_ms();
	kvn_close(c);
	ok(kvn_now_ms() - t0 < 4000, "kvn_close returns at once (%llu ms)", (unsigned long long)(kvn_now_ms() - t0));
	for (int i = 0; i < N; i++)
		free(bufs[i]);
}

/* kvn_close while a submission waits on a peer that never answers
 * (SIGSTOP): it returns once that submission's deadline passed, with the
 * items failed, not later. */
static void t_close_hung_peer(void)
{
	static uint8_t v[4096], buf[4096];
	static struct kvn_item put = { .key = "sub/hung", .klen = 8, .val = v, .vlen = sizeof v };
	static struct kvn_item get[4];
	uint64_t id;
	pid_t peer;

	struct kvn_client *c = master_and_peer("h", &peer);
	if (!c)
		return;
	is_int(kvn_batch_put(c, &put, 1, 0), 0, "a value stored");
	kill(peer, SIGSTOP);
	for (int i = 0; i < 4; i++)
		get[i] = (struct kvn_item){ .key = "sub/hung", .klen = 8, .val = buf, .cap = sizeof buf, .status = 1 };
	int rc = 0;
	for (int i = 0; i < 4; i++)
		rc |= kvn_submit_get(c, &get[i], 1, &id);
	is_int(rc, 0, "4 gets submitted to the stopped peer");
	uint64_t t0 = kvn_now_ms();
	kvn_close(c);
	uint64_t dt = kvn_now_ms() - t0;
	/* the deadline is 3 s from the submits; teardown adds little */
	ok(dt >= 1000 && dt < 3000 + 2000, "kvn_close waited for them, within their deadline (%llu ms)",
	   (unsigned long long)dt);
	int bad = 0;
	for (int i = 0; i < 4; i++)
		bad += get[i].status >= 0;
	is_int(bad, 0, "each item failed (first: %s)", kvn_strerror(get[0].status));
	proc_stop(peer, SIGKILL, 5000, NULL);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "complete", t_complete },
		{ "fd_readable", t_fd_readable },
		{ "many_busy", t_many_busy },
		{ "invalid", t_invalid },
		{ "lazy_thread", t_lazy_thread },
		{ "close_unreaped", t_close_unreaped },
		{ "callback_thread", t_callback_thread },
		{ "node_killed", t_node_killed },
		{ "close_hung_peer", t_close_hung_peer },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("submit") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(300);
	rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	return rc;
}
