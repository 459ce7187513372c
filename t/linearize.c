/*
 * t/linearize: linearizability as a checked property (issue 11 item 6).
 *
 * First the checker itself (t/lincheck.c) on hand-written histories:
 * linearizable ones accepted, non-linearizable ones rejected (a stale read,
 * a lost acknowledged put, a read that goes back in time), timed-out puts
 * and removes taken either way, overlapping operations, the fault
 * operations t/sim uses, the step limit; and a cross-check against a brute
 * force search on thousands of small random histories.  All hard.
 *
 * Then real processes on loopback: a master and three peers, each its own
 * kvnode process, and four client threads (libkvnode) putting, getting and
 * removing four keys for a few seconds, each value naming its writer
 * (client, sequence number) in its bytes; meanwhile the master is killed
 * with SIGKILL and restarted on its data dir, and a peer is stopped with
 * SIGSTOP and continued.  After quiescence every key is read once more,
 * and the whole history goes through the same checker.  Known bugs whose
 * fixes are on other branches make some keys fail (items 3 and 4): those
 * assertions are TAP TODOs that name the item; everything else is hard.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "lincheck.h"
#include "proc.h"
#include "tap.h"

static void diag_lines(const char *p)
{
	while (*p) {
		const char *e = strchr(p, '\n');
		int len = e ? (int)(e - p) : (int)strlen(p);
		tap_diag("  %.*s", len, p);
		p += len + (e ? 1 : 0);
	}
}

/* ---- the checker on hand-written histories ---- */

#define INF LIN_NEVER

static struct lin_op W(uint64_t v, uint64_t a, uint64_t b)
{
	return (struct lin_op){ .kind = LIN_WRITE, .value = v, .t_call = a, .t_ret = b, .client = 1 };
}

static struct lin_op R(uint64_t v, uint64_t a, uint64_t b)
{
	return (struct lin_op){ .kind = LIN_READ, .value = v, .t_call = a, .t_ret = b, .client = 2 };
}

static struct lin_op D(uint64_t v, uint64_t a, uint64_t b) /* remove */
{
	return (struct lin_op){ .kind = LIN_REMOVE, .value = v, .t_call = a, .t_ret = b, .client = 3 };
}

static struct lin_op F(int kind, uint64_t home, uint64_t a, uint64_t b, int optional) /* fault */
{
	return (struct lin_op){ .kind = kind, .home = home, .t_call = a, .t_ret = b, .client = -1,
				.optional = optional };
}

static struct lin_op Rv(uint64_t v, uint64_t home, uint64_t a, uint64_t b) /* revive, optional */
{
	return (struct lin_op){ .kind = LIN_REVIVE, .value = v, .home = home, .t_call = a, .t_ret = b,
				.client = -1, .optional = 1 };
}

static struct lin_op Wh(uint64_t v, uint64_t home, uint64_t a, uint64_t b)
{
	struct lin_op o = W(v, a, b);
	o.home = home;
	return o;
}

#define CHECK(want, what, ...)                                                                       \
	do {                                                                                         \
		const struct lin_op h_[] = { __VA_ARGS__ };                                          \
		is_int(lin_check_key(h_, sizeof h_ / sizeof h_[0], 0, NULL), want, "%s", what); \
	} while (0)

static void t_checker(void)
{
	is_int(lin_check_key(NULL, 0, 0, NULL), LIN_OK, "the empty history");
	CHECK(LIN_OK, "put then get of it", W(1, 0, 1), R(1, 2, 3));
	CHECK(LIN_OK, "a get before any put reads 'not found'", R(0, 0, 1), W(1, 2, 3), R(1, 4, 5));
	/* the two faults item 6 names */
	CHECK(LIN_VIOLATION, "stale read: the older of two acknowledged puts read after both", W(1, 0, 1), W(2, 2, 3),
	      R(1, 4, 5));
	CHECK(LIN_VIOLATION, "lost put: 'not found' after an acknowledged put", W(1, 0, 1), R(0, 2, 3));
	CHECK(LIN_VIOLATION, "lost put: the previous value after an acknowledged put", W(1, 0, 1), W(2, 2, 3),
	      R(1, 4, 5), R(2, 6, 7));
	CHECK(LIN_VIOLATION, "a value nobody wrote", W(1, 0, 1), R(7, 2, 3));
	CHECK(LIN_VIOLATION, "a value read before its put started", R(1, 0, 1), W(1, 2, 3));
	/* overlapping operations */
	CHECK(LIN_OK, "a get during a put may read either", W(1, 0, 1), W(2, 2, 10), R(1, 3, 4), R(2, 5, 6),
	      R(2, 11, 12));
	CHECK(LIN_VIOLATION, "... but not go back once it read the new value", W(1, 0, 1), W(2, 2, 10), R(2, 3, 4),
	      R(1, 5, 6));
	CHECK(LIN_OK, "two overlapping puts: either order", W(1, 0, 10), W(2, 0, 10), R(1, 11, 12));
	CHECK(LIN_OK, "two overlapping puts: either order (2)", W(1, 0, 10), W(2, 0, 10), R(2, 11, 12));
	CHECK(LIN_VIOLATION, "two overlapping puts: one order for every reader", W(1, 0, 10), W(2, 0, 10),
	      R(2, 11, 12), R(1, 13, 14));
	CHECK(LIN_OK, "concurrent readers see one order", W(1, 0, 10), W(2, 0, 10), R(1, 1, 20), R(2, 2, 20),
	      R(2, 21, 22));
	CHECK(LIN_VIOLATION, "readers that disagree on the order after both ended", W(1, 0, 2), W(2, 0, 2),
	      R(1, 3, 4), R(2, 5, 6), R(1, 7, 8));
	/* timed-out puts and removes: either way, but once */
	CHECK(LIN_OK, "a timed-out put that did not take effect", W(1, 0, 1), W(2, 2, INF), R(1, 3, 4), R(1, 9, 10));
	CHECK(LIN_OK, "a timed-out put that took effect", W(1, 0, 1), W(2, 2, INF), R(2, 3, 4), R(2, 9, 10));
	CHECK(LIN_OK, "a timed-out put that took effect late", W(1, 0, 1), W(2, 2, INF), R(1, 3, 4), R(2, 9, 10));
	CHECK(LIN_VIOLATION, "a timed-out put cannot be undone", W(1, 0, 1), W(2, 2, INF), R(2, 3, 4), R(1, 9, 10));
	CHECK(LIN_VIOLATION, "a timed-out put cannot take effect before it started", W(1, 0, 1), R(2, 2, 3),
	      W(2, 4, INF));
	CHECK(LIN_OK, "a timed-out remove, either way", W(1, 0, 1), D(LIN_ANYVAL, 2, INF), R(1, 3, 4), R(0, 5, 6));
	CHECK(LIN_VIOLATION, "a timed-out remove cannot be undone", W(1, 0, 1), D(LIN_ANYVAL, 2, INF), R(0, 3, 4),
	      R(1, 5, 6));
	CHECK(LIN_OK, "remove then 'not found'", W(1, 0, 1), D(LIN_ANYVAL, 2, 3), R(0, 4, 5));
	CHECK(LIN_VIOLATION, "a value back after an acknowledged remove", W(1, 0, 1), D(LIN_ANYVAL, 2, 3),
	      R(1, 4, 5));
	CHECK(LIN_VIOLATION, "an acknowledged remove of a key that has no value", D(LIN_ANYVAL, 0, 1));
	CHECK(LIN_VIOLATION, "a remove of one value while another is current", W(1, 0, 1), W(2, 2, 3), D(1, 4, 5));
	CHECK(LIN_OK, "a remove of one value during the put of another", W(1, 0, 1), W(2, 2, 6), D(1, 4, 5),
	      R(2, 7, 8));
	/* faults (t/sim): a lost node loses its values, a dead one hides them */
	CHECK(LIN_OK, "a crash loses the values whose home it was", Wh(1, 5, 0, 1), F(LIN_LOSE, 5, 2, 2, 0),
	      R(0, 3, 4));
	CHECK(LIN_VIOLATION, "... not the others' values", Wh(1, 5, 0, 1), F(LIN_LOSE, 6, 2, 2, 0), R(0, 3, 4));
	CHECK(LIN_OK, "a node declared dead hides its values, and they come back", Wh(1, 5, 0, 1),
	      F(LIN_HIDE, 5, 2, 4, 1), F(LIN_UNHIDE, 5, 2, 20, 1), R(0, 5, 6), R(1, 21, 22));
	CHECK(LIN_OK, "... or it is never declared dead", Wh(1, 5, 0, 1), F(LIN_HIDE, 5, 2, 4, 1),
	      F(LIN_UNHIDE, 5, 2, 20, 1), R(1, 5, 6));
	CHECK(LIN_VIOLATION, "... but not before its window", Wh(1, 5, 0, 1), R(0, 2, 3), F(LIN_HIDE, 5, 4, 5, 1),
	      R(1, 6, 7));
	CHECK(LIN_VIOLATION, "... nor a newer value come back to an older one", Wh(1, 5, 0, 1),
	      F(LIN_HIDE, 5, 2, 4, 1), Wh(2, 6, 5, 6), F(LIN_UNHIDE, 5, 2, 20, 1), R(1, 21, 22));
	CHECK(LIN_VIOLATION, "an optional fault whose window closed takes effect in it or never", Wh(1, 5, 0, 1),
	      F(LIN_LOSE, 5, 2, 3, 1), R(1, 4, 5), R(0, 6, 7));
	/* a master crash that lost a plain put not yet committed: the older
	 * value may come back once the key has none */
	CHECK(LIN_OK, "a revived value after the newer one was removed", Wh(1, 5, 0, 1), Wh(2, 6, 2, 3),
	      D(2, 4, 5), Rv(1, 5, 6, 20), R(1, 7, 8));
	CHECK(LIN_VIOLATION, "... not while the newer one is there", Wh(1, 5, 0, 1), Wh(2, 6, 2, 3),
	      Rv(1, 5, 4, 20), R(1, 7, 8));
	CHECK(LIN_VIOLATION, "... nor before its window", Wh(1, 5, 0, 1), Wh(2, 6, 2, 3), D(2, 4, 5), R(1, 6, 7),
	      Rv(1, 5, 8, 20));
}

/* The report names the key, the impossible read and a short window. */
static void t_report(void)
{
	struct lin_op h[40];
	struct lin_stats st = { 0 };
	char rep[4096] = "";
	int n = 0;

	/* key 3: 30 sequential put/get pairs, then the last put read stale */
	for (int i = 1; i <= 30; i++) {
		h[n] = W((uint64_t)i, (uint64_t)i * 10, (uint64_t)i * 10 + 2);
		h[n++].key = 3;
		h[n] = R((uint64_t)i, (uint64_t)i * 10 + 4, (uint64_t)i * 10 + 6);
		h[n++].key = 3;
		if (n >= 36)
			break;
	}
	h[n] = R(17, 1000, 1001);
	h[n++].key = 3;
	h[n] = W(99, 5, 6); /* another key: fine */
	h[n++].key = 4;
	int bad = lin_check_history(h, (size_t)n, NULL, &st, rep, sizeof rep);
	is_int(bad, 1, "one key of two is not linearizable");
	ok(st.keys == 2 && st.ops == (uint64_t)n && st.violations == 1 && st.v_value == 1,
	   "stats: %llu keys, %llu ops, %llu violations (%llu stale reads)", (unsigned long long)st.keys,
	   (unsigned long long)st.ops, (unsigned long long)st.violations, (unsigned long long)st.v_value);
	ok(strstr(rep, "key 3: not linearizable") && strstr(rep, "impossible: #36, client 2's get of 0x11") &&
		   strstr(rep, "window: #35..#36"),
	   "the report names the key, the impossible get and the two-operation window");
	diag_lines(rep);
}

/* The step limit gives "inconclusive", not an exponential wait. */
static void t_limit(void)
{
	struct lin_op h[48];
	uint64_t steps = 0;
	int n = 0;

	/* many overlapping timed-out puts, then a read nobody explains: every
	 * subset of them is a candidate state history */
	for (int i = 0; i < 40; i++)
		h[n++] = W((uint64_t)i + 1, (uint64_t)i, INF);
	for (int i = 0; i < 8; i++)
		h[n++] = R((uint64_t)(i % 2 ? 1000 : 1 + i), 100 + (uint64_t)i * 2, 101 + (uint64_t)i * 2);
	int v = lin_check_key(h, (size_t)n, 5000, &steps);
	is_int(v, LIN_INCONCLUSIVE, "a search past its step limit is inconclusive (%llu steps)",
	       (unsigned long long)steps);
	ok(steps <= 5001, "and stops at the limit");

	/* timed-out puts of values nobody reads are interchangeable: 60 of
	 * them cost 61 choices, not 2^60, whatever the verdict */
	struct lin_op g[70];
	n = 0;
	g[n++] = W(1000, 0, 1);
	for (int i = 0; i < 60; i++)
		g[n++] = W((uint64_t)i + 1, 2 + (uint64_t)i, INF);
	g[n++] = D(LIN_ANYVAL, 100, 101);
	g[n++] = D(LIN_ANYVAL, 102, 103); /* needs one of the 60 in between */
	g[n++] = R(0, 104, 105);
	v = lin_check_key(g, (size_t)n, 100000, &steps);
	ok(v == LIN_OK && steps < 100000, "60 timed-out puts nobody reads, two removes: linearizable in %llu steps",
	   (unsigned long long)steps);
	g[n++] = R(1000, 106, 107); /* the first put back: impossible */
	v = lin_check_key(g, (size_t)n, 100000, &steps);
	ok(v == LIN_VIOLATION && steps < 100000, "... and a read of a removed value rejected in %llu steps",
	   (unsigned long long)steps);
}

/* ---- brute force: every order of every subset of the optional ops ---- */

struct brute {
	const struct lin_op *ops;
	int n, used[8];
};

static int model(const struct lin_op *op, uint64_t *v, uint64_t *home, int *hidden)
{
	int present = *v != LIN_ABSENT;
	switch (op->kind) {
	case LIN_WRITE:
		*v = op->value, *home = op->home, *hidden = 0;
		return 1;
	case LIN_READ:
		return (*hidden ? LIN_ABSENT : *v) == op->value;
	case LIN_REMOVE:
		if (!present || *hidden || (op->value != LIN_ANYVAL && op->value != *v))
			return 0;
		*v = LIN_ABSENT, *home = 0, *hidden = 0;
		return 1;
	case LIN_LOSE:
		if (present && *home == op->home)
			*v = LIN_ABSENT, *home = 0, *hidden = 0;
		return 1;
	case LIN_HIDE:
	case LIN_UNHIDE:
		if (present && *home == op->home)
			*hidden = op->kind == LIN_HIDE;
		return 1;
	case LIN_REVIVE:
		if (!present)
			*v = op->value, *home = op->home, *hidden = 0;
		return 1;
	}
	return 0;
}

/* 1 when the ops not used yet can follow from (v, home, hidden) */
static int brute_rest(struct brute *b, uint64_t v, uint64_t home, int hidden)
{
	int left = 0;
	for (int i = 0; i < b->n; i++)
		left += !b->used[i] && b->ops[i].t_ret != INF && !b->ops[i].optional;
	if (!left)
		return 1;
	for (int i = 0; i < b->n; i++) {
		if (b->used[i])
			continue;
		/* i may go next unless an op that must still come returned before i was called */
		int blocked = 0;
		for (int j = 0; j < b->n && !blocked; j++)
			blocked = j != i && !b->used[j] && b->ops[j].t_ret < b->ops[i].t_call;
		if (blocked)
			continue;
		uint64_t v2 = v, h2 = home;
		int hid2 = hidden;
		if (!model(&b->ops[i], &v2, &h2, &hid2))
			continue;
		b->used[i] = 1;
		int r = brute_rest(b, v2, h2, hid2);
		b->used[i] = 0;
		if (r)
			return 1;
	}
	return 0;
}

/* Every subset of the optional ops (those with a finite window, left out
 * for good) and of the timed-out ones. */
static int brute(const struct lin_op *ops, int n)
{
	int opt[8], nopt = 0;
	for (int i = 0; i < n; i++)
		if (ops[i].optional || ops[i].t_ret == INF)
			opt[nopt++] = i;
	for (int mask = 0; mask < 1 << nopt; mask++) {
		struct brute b = { .ops = ops, .n = n };
		for (int k = 0; k < nopt; k++)
			b.used[opt[k]] = (mask >> k) & 1; /* 1: left out */
		if (brute_rest(&b, LIN_ABSENT, 0, 0))
			return 1;
	}
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void t_brute(void)
{
	uint64_t s = 0x9E3779B97F4A7C15ull;
	int agree = 0, total = 3000, nviol = 0, first_bad = -1;

	for (int t = 0; t < total; t++) {
		struct lin_op h[7];
		int n = 2 + (int)(rng_next(&s) % 6), nw = 0;
		for (int i = 0; i < n; i++) {
			uint64_t a = rng_next(&s) % 12, d = 1 + rng_next(&s) % 5, r = rng_next(&s) % 100;
			if (r < 35) {
				h[i] = Wh((uint64_t)++nw, 1 + rng_next(&s) % 2, a, a + d);
				if (rng_next(&s) % 5 == 0)
					h[i].t_ret = INF;
			} else if (r < 75) {
				h[i] = R(rng_next(&s) % (uint64_t)(nw + 2), a, a + d);
			} else if (r < 88) {
				h[i] = D(rng_next(&s) % 3 ? LIN_ANYVAL : 1 + rng_next(&s) % 3, a, a + d);
				if (rng_next(&s) % 4 == 0)
					h[i].t_ret = INF;
			} else {
				int kinds[] = { LIN_LOSE, LIN_HIDE, LIN_UNHIDE, LIN_REVIVE };
				h[i] = F(kinds[rng_next(&s) % 4], 1 + rng_next(&s) % 2, a, a + d, (int)(rng_next(&s) % 2));
				if (h[i].kind == LIN_REVIVE) /* of a value some put wrote, or none yet */
					h[i].value = 1 + rng_next(&s) % (uint64_t)(nw + 1);
			}
		}
		int want = brute(h, n) ? LIN_OK : LIN_VIOLATION;
		int got = lin_check_key(h, (size_t)n, 0, NULL);
		nviol += want == LIN_VIOLATION;
		if (got == want)
			agree++;
		else if (first_bad < 0)
			first_bad = t;
	}
	is_int(agree, total, "the search agrees with brute force on %d random histories (%d not linearizable; "
			     "first disagreement: %d)",
	       total, nviol, first_bad);
	ok(nviol > total / 5 && nviol < total * 4 / 5, "both verdicts are well represented");
}

/* ---- real processes ---- */

#define NCLIENTS 4
#define NKEYS 4
#define RUN_MS 4500
#define MAXOPS 40000
#define CLIENT_TIMEOUT_MS 1500
#define VMAX 4096
#define INCONCLUSIVE_MAX 0 /* key histories; more fail the test */

static char conf_m[300], conf_p[3][300];
static const char *const args_m[] = { "--role", "master", "--config", conf_m, NULL };
static pid_t pid_m, pid_p[3];

struct rec {
	int kind, key, rc;
	uint64_t value, t0, t1; /* us */
};

struct worker {
	int id;
	pthread_t th;
	int connect_rc;
	struct rec *recs;
	size_t n;
	uint64_t bad_bytes, seq;
};

static int stop_flag;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The bytes of value id: a header naming the writer, then filler from id. */
static size_t value_make(uint64_t id, uint8_t *buf)
{
	size_t n = 64 + (size_t)(id * 2654435761u) % (VMAX - 64);
	proc_fill(buf, n, id);
	snprintf((char *)buf, 40, "lin c%u #%u", (unsigned)(id >> 32), (unsigned)(id & 0xffffffffu));
	return n;
}

/* The writer's id of a value read, or 0 (bytes that no put wrote). */
static uint64_t value_parse(const uint8_t *buf, size_t n)
{
	static __thread uint8_t want[VMAX];
	unsigned c, q;
	char head[40];
	if (n < 40)
		return 0;
	memcpy(head, buf, 40);
	head[39] = '\0';
	if (sscanf(head, "lin c%u #%u", &c, &q) != 2)
		return 0;
	uint64_t id = (uint64_t)c << 32 | q;
	return value_make(id, want) == n && memcmp(want, buf, n) == 0 ? id : 0;
}

static void key_name(int k, char *buf, size_t cap)
{
	snprintf(buf, cap, "lin/%d", k);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char id[32];
	struct kvn_options o = { .config_path = conf_m, .node_id = id };
	struct kvn_client *c = NULL;
	uint64_t rng = 0x1234567ull + (uint64_t)w->id * 7919, until = kvn_now_ms() + RUN_MS;
	static __thread uint8_t buf[VMAX];

	snprintf(id, sizeof id, "lin-client-%d", w->id);
	w->connect_rc = kvn_connect(&o, &c);
	if (w->connect_rc)
		return NULL;
	while (w->n < MAXOPS && kvn_now_ms() < until && !__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
		struct rec *r = &w->recs[w->n];
		char key[16];
		uint64_t x = rng_next(&rng) % 100;
		size_t vlen = 0;
		r->key = (int)(rng_next(&rng) % NKEYS);
		key_name(r->key, key, sizeof key);
		r->t0 = now_us();
		if (x < 45) {
			r->kind = LIN_WRITE;
			r->value = (uint64_t)(w->id + 1) << 32 | ++w->seq;
			size_t n = value_make(r->value, buf);
			r->rc = kvn_put(c, key, strlen(key), buf, n, 0);
		} else if (x < 85) {
			r->kind = LIN_READ;
			r->rc = kvn_get(c, key, strlen(key), buf, sizeof buf, &vlen);
			if (r->rc == 0 && !(r->value = value_parse(buf, vlen)))
				w->bad_bytes++;
		} else {
			r->kind = LIN_REMOVE;
			r->rc = kvn_remove(c, key, strlen(key));
		}
		r->t1 = now_us() + 1;
		w->n++;
		usleep(r->rc && r->rc != KVN_ENOTFOUND ? 20000 : 1000); /* do not spin through an outage */
	}
	kvn_close(c);
	return NULL;
}

/* The history of one record: 1, or 0 when it says nothing. */
static int rec_lin(const struct rec *r, int client, struct lin_op *x)
{
	*x = (struct lin_op){ .key = r->key, .kind = r->kind, .client = client, .status = r->rc,
			      .value = r->value, .t_call = r->t0, .t_ret = r->t1 };
	if (r->kind == LIN_READ) {
		if (r->rc == KVN_ENOTFOUND)
			x->value = LIN_ABSENT;
		return r->rc == 0 ? r->value != 0 : r->rc == KVN_ENOTFOUND;
	}
	if (r->kind == LIN_REMOVE && r->rc == KVN_ENOTFOUND) { /* nothing to remove: a read */
		x->kind = LIN_READ;
		x->value = LIN_ABSENT;
		return 1;
	}
	if (r->kind == LIN_REMOVE)
		x->value = LIN_ANYVAL;
	if (r->rc != 0)
		x->t_ret = LIN_NEVER; /* failed: may or may not have taken effect */
	return 1;
}

static void fmt_val(void *arg, uint64_t v, char *out, size_t cap)
{
	(void)arg;
	snprintf(out, cap, "c%u#%u", (unsigned)(v >> 32), (unsigned)(v & 0xffffffffu));
}

static void fmt_key(void *arg, uint64_t k, char *out, size_t cap)
{
	(void)arg;
	key_name((int)k, out, cap);
}

static const char *err_name(int rc)
{
	return kvn_strerror(rc);
}

static int all_alive(struct kvn_client *c)
{
	struct kvn_node_stat ns[8];
	size_t n = 0;
	uint64_t objs;
	int alive = 0;
	if (kvn_stat(c, ns, 8, &n, &objs) != 0)
		return 0;
	for (size_t i = 0; i < n && i < 8; i++)
		alive += ns[i].alive;
	return alive >= 3;
}

static void t_processes(void)
{
	char data[300], extra[1200];
	uint16_t mp = proc_free_port();
	struct worker w[NCLIENTS];
	int st = 0;

	snprintf(data, sizeof data, "%s/var-m", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	/* a long node_timeout: the stopped peer is not declared dead (that
	 * would hide its values by design); one pair of secrets */
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 30s\n[client]\ntimeout = %ums\nquarantine = 300ms\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 CLIENT_TIMEOUT_MS, data, data);
	proc_write_conf(conf_m, mp, proc_free_port(), data, "64MiB", extra);
	pid_m = proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	for (int i = 0; i < 3; i++) {
		char pdata[300], name[8], set_id[32];
		snprintf(name, sizeof name, "p%d", i + 1);
		snprintf(pdata, sizeof pdata, "%s/var-%s", proc_tmp, name);
		snprintf(conf_p[i], sizeof conf_p[i], "%s/%s.conf", proc_tmp, name);
		proc_write_conf(conf_p[i], mp, proc_free_port(), pdata, "16MiB", extra);
		snprintf(set_id, sizeof set_id, "node.id=%s", name);
		const char *args[] = { "--role", "peer", "--config", conf_p[i], "--set", set_id, NULL };
		pid_p[i] = proc_spawn(name, args);
	}
	struct kvn_client *mc = proc_connect_ready(conf_m, 3);
	ok(mc != NULL, "three peer processes attached");
	if (!mc)
		return;

	/* the workload, with a master kill -9 and a peer SIGSTOP in it */
	__atomic_store_n(&stop_flag, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < NCLIENTS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].id = i;
		w[i].recs = kvn_xcalloc(MAXOPS, sizeof *w[i].recs);
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			kvn_fatal("pthread_create");
	}
	uint64_t t0 = kvn_now_ms();
	usleep(900000);
	kill(pid_m, SIGKILL);
	int killed = proc_wait(pid_m, 5000, &st) == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
	usleep(300000);
	pid_m = proc_spawn("m2", args_m);
	int restarted = proc_wait_log("m2", "kvnode ready", 1, 10000) == 0;
	uint64_t t_up = kvn_now_ms() - t0;
	usleep(600000);
	int stopped = kill(pid_p[1], SIGSTOP) == 0;
	usleep(800000);
	int continued = kill(pid_p[1], SIGCONT) == 0;
	ok(killed && restarted, "master killed with SIGKILL at ~0.9 s and restarted (ready at %llu ms)",
	   (unsigned long long)t_up);
	for (int i = 0; i < NCLIENTS; i++)
		pthread_join(w[i].th, NULL);

	/* quiescence: every peer alive again, then one more read of each key */
	uint64_t until = kvn_now_ms() + 10000;
	while (!all_alive(mc) && kvn_now_ms() < until)
		usleep(50000);
	ok(stopped && continued && all_alive(mc) && proc_wait(pid_p[1], 0, NULL) != 0,
	   "peer p2 stopped with SIGSTOP for 0.8 s, continued, and alive with the others at the end");
	size_t nops = 0, nput = 0, nget = 0, nrm = 0, nfail = 0, bad_bytes = 0;
	struct lin_op *h = kvn_xcalloc(NCLIENTS * MAXOPS + NKEYS, sizeof *h);
	size_t nh = 0;
	for (int i = 0; i < NCLIENTS; i++) {
		is_int(w[i].connect_rc, 0, "client %d connected", i);
		bad_bytes += w[i].bad_bytes;
		for (size_t j = 0; j < w[i].n; j++) {
			const struct rec *r = &w[i].recs[j];
			nops++;
			nput += r->kind == LIN_WRITE && r->rc == 0;
			nget += r->kind == LIN_READ && r->rc == 0;
			nrm += r->kind == LIN_REMOVE && r->rc == 0;
			nfail += r->rc != 0 && r->rc != KVN_ENOTFOUND;
			nh += (size_t)rec_lin(r, i, &h[nh]);
		}
	}
	int final_ok = 0;
	for (int k = 0; k < NKEYS; k++) {
		static uint8_t buf[VMAX];
		char key[16];
		size_t vlen = 0;
		struct rec r = { .kind = LIN_READ, .key = k };
		key_name(k, key, sizeof key);
		r.t0 = now_us();
		r.rc = kvn_get(mc, key, strlen(key), buf, sizeof buf, &vlen);
		r.t1 = now_us() + 1;
		if (r.rc == 0 && !(r.value = value_parse(buf, vlen)))
			bad_bytes++;
		final_ok += r.rc == 0 || r.rc == KVN_ENOTFOUND;
		nh += (size_t)rec_lin(&r, NCLIENTS, &h[nh]);
	}
	tap_diag("%zu operations: %zu puts, %zu gets, %zu removes succeeded, %zu failed or timed out", nops, nput, nget,
		 nrm, nfail);
	ok(nput >= 100 && nget >= 100 && nrm >= 10, "the workload ran (%zu puts, %zu gets, %zu removes acknowledged)",
	   nput, nget, nrm);
	ok(nfail > 0, "the faults made some calls fail (%zu)", nfail);
	is_int(final_ok, NKEYS, "after quiescence every key reads (a value or 'not found')");
	is_int(bad_bytes, 0, "every value read is one a put wrote, byte for byte");

	/* the verdict */
	struct lin_stats ls = { 0 };
	struct lin_opts lo = { .fmt = fmt_val, .key_fmt = fmt_key, .unit = "us", .status_name = err_name };
	static char rep[16384];
	uint64_t tc0 = kvn_now_ms();
	lo.t_base = UINT64_MAX;
	for (size_t i = 0; i < nh; i++)
		if (h[i].t_call < lo.t_base)
			lo.t_base = h[i].t_call;
	rep[0] = '\0';
	int bad = lin_check_history(h, nh, &lo, &ls, rep, sizeof rep);
	tap_diag("checked %llu key histories, %llu operations (%llu may or may not have taken effect), %llu search "
		 "steps (at most %llu for one key), %llu inconclusive, in %llu ms",
		 (unsigned long long)ls.keys, (unsigned long long)ls.ops, (unsigned long long)ls.ambiguous,
		 (unsigned long long)ls.steps, (unsigned long long)ls.max_steps, (unsigned long long)ls.inconclusive,
		 (unsigned long long)(kvn_now_ms() - tc0));
	ok(ls.keys == NKEYS && ls.inconclusive <= INCONCLUSIVE_MAX,
	   "every key's history judged: %llu keys, %llu inconclusive (at most %d)", (unsigned long long)ls.keys,
	   (unsigned long long)ls.inconclusive, INCONCLUSIVE_MAX);
	if (bad)
		diag_lines(rep);
	/* Each kind of impossible operation on its own: a get that reads "not
	 * found" while a concurrent put moves the key (item 3), a stale value
	 * right after a master restart (item 4), an older generation a stopped
	 * peer brought back after a remove (the master's generation floors). */
	ok(ls.v_absent == 0,
	   "no impossible 'not found' (a get or remove missing a value a put completed): %llu",
	   (unsigned long long)ls.v_absent);
	ok(ls.v_value == 0,
	   "no stale read (a value already overwritten or removed): %llu",
	   (unsigned long long)ls.v_value);
	ok(ls.v_other == 0,
	   "no other impossible operation (a remove of a value no longer there): %llu",
	   (unsigned long long)ls.v_other);
	free(h);
	for (int i = 0; i < NCLIENTS; i++)
		free(w[i].recs);
	kvn_close(mc);
	for (int i = 0; i < 3; i++)
		proc_stop(pid_p[i], SIGTERM, 5000, NULL);
	proc_stop(pid_m, SIGTERM, 5000, NULL);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "checker", t_checker },
		{ "report", t_report },
		{ "limit", t_limit },
		{ "brute_force", t_brute },
		{ "processes", t_processes },
		{ NULL, NULL },
	};
	if (proc_init("linearize") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(60); /* a hang fails the test and kills what it started */
	setvbuf(stdout, NULL, _IOLBF, 0);
	return tap_run(tests, argc, argv);
}
