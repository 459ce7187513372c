/*
 * bench: `kvnode --role client bench`, a closed-loop load generator.  Owns
 * the command line, the per-thread loop, the value pattern and its checks,
 * the latency histogram, the report, and removing the keys a run wrote
 * when it ends (unless --keep).  What it talks to (kvnode, redis,
 * memcached) lives in bench_targets.c.
 *
 * Rules that keep the numbers honest: every buffer a thread uses is mapped
 * and touched once before the clock starts (a first write into fresh memory
 * runs at ~0.4 GB/s on these VMs against ~20 GB/s into touched memory), so
 * nothing is allocated or faulted in on the timed path; every reply is
 * checked, and every key's first get is compared byte for byte with what
 * was put; any error makes the exit status non-zero.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "cli/cli.h"

#define THREAD_MAX_ERRORS 64     /* a thread gives up after this many */
#define ERRORS_PRINTED 5
#define PROGRESS_EVERY_NS 200000000ull
#define PROGRESS_AFTER_NS 1000000000ull

/* ---- state ----------------------------------------------------------------- */

struct bench;

struct bench_thr {
	alignas(64) _Atomic uint64_t progress, setup_progress; /* for the progress line */
	alignas(64) struct bench *b;
	unsigned idx;
	pthread_t tid;
	void *h;
	uint64_t key_lo, key_n, cursor;
	uint64_t n_items, n_warmup;
	int owner; /* populates its key range (threads may share keys) */
	/* One mapping holds everything below. */
	void *arena;
	size_t arena_len;
	struct hist *hist;
	struct kvn_item *items;
	uint64_t *keyid;
	char *keybuf;
	unsigned char *expect, *putbuf, *getbuf;
	struct bench_local *local; /* --op memcpy, tag, xxh3 */
	uint64_t rng;
	uint64_t ok_items, errors, puts, gets, exists, t_start, t_end;
	int setup_rc, stopped, settled;
	char setup_err[256];
};

struct bench {
	struct bench_args a;
	const struct cli_bench_target *t;
	struct cli_bench_cfg cfg;
	unsigned char *base;
	struct bench_thr *thr;
	unsigned nthr;
	pthread_barrier_t bar;
	_Atomic uint64_t run_start; /* 0 while setting up */
	_Atomic int abort;
	_Atomic int first_err;
	_Atomic uint64_t errors;
	/* the end's removal of the run's keys: removed, and failed (a key
	 * that is not there is neither) */
	_Atomic uint64_t removed, rm_failed;
	_Atomic int rm_first;
	pthread_mutex_t mu; /* below, and stderr while threads run */
	pthread_cond_t cv;
	int gate_open, progress_shown;
	unsigned finished;
};

static void *map_touched(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, n); /* MAP_POPULATE is advisory; the writes are not */
	return p;
}

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* A line on stderr from a client thread, over the progress line if shown. */
static void bench_say(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bench_say(struct bench *b, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&b->mu);
	fprintf(stderr, "%skvnode bench: ", b->progress_shown ? "\r\033[K" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	b->progress_shown = 0;
	pthread_mutex_unlock(&b->mu);
}

static void bench_error(struct bench_thr *t, const char *what, const char *key, size_t klen,
			int rc, const char *detail)
{
	int zero = 0;
	t->errors++;
	atomic_compare_exchange_strong(&t->b->first_err, &zero, rc);
	if (atomic_fetch_add(&t->b->errors, 1) < ERRORS_PRINTED)
		bench_say(t->b, "%s %.*s: %s (%s)%s%s\n", what, (int)klen, key, kvn_err_name(rc),
			  kvn_strerror(rc), detail && *detail ? ": " : "", detail ? detail : "");
}

/* ---- the per-thread loop ---------------------------------------------------- */

static int thr_setup(struct bench_thr *t)
{
	struct bench *b = t->b;
	size_t S = b->a.size, B = b->a.batch, off = 0, o_items, o_keyid, o_keys, o_exp, o_put, o_get;
	int gets = b->a.op == OP_GET || b->a.op == OP_MIXED, memcpy_op = b->a.op == OP_MEMCPY;

	o_items = off = round_up(sizeof(struct hist), 64);
	o_keyid = off = round_up(off + B * sizeof(struct kvn_item), 64);
	o_keys = off = round_up(off + B * sizeof(uint64_t), 64);
	o_exp = off = round_up(off + B * KEY_CAP, 4096);
	o_put = off = round_up(off + (gets ? S : 0), 4096);
	o_get = off = round_up(off + B * S, 4096);
	off += (gets || memcpy_op) ? B * S : 0;
	t->arena_len = round_up(off, 4096);
	t->arena = map_touched(t->arena_len);
	if (!t->arena) {
		snprintf(t->setup_err, sizeof(t->setup_err), "cannot map %zu bytes of buffers",
			 t->arena_len);
		return KVN_ENOMEM;
	}
	unsigned char *a = t->arena;
	t->hist = (struct hist *)a;
	t->items = (struct kvn_item *)(a + o_items);
	t->keyid = (uint64_t *)(a + o_keyid);
	t->keybuf = (char *)(a + o_keys);
	t->expect = gets ? a + o_exp : NULL;
	t->putbuf = a + o_put;
	t->getbuf = (gets || memcpy_op) ? a + o_get : NULL;
	for (size_t i = 0; i < B; i++)
		memcpy(t->putbuf + i * S, b->base, S);
	if (t->expect)
		memcpy(t->expect, b->base, S);
	t->rng = 0x2545f4914f6cdd1dull ^ ((uint64_t)(t->idx + 1) * 0x9e3779b97f4a7c15ull);
	if (OP_LOCAL(b->a.op))
		return bench_local_new(b->a.op == OP_TAG    ? BENCH_LOCAL_TAG
				       : b->a.op == OP_XXH3 ? BENCH_LOCAL_XXH3
							    : BENCH_LOCAL_MEMCPY,
				       &t->local, t->setup_err, sizeof(t->setup_err));
	return b->t->connect(&b->cfg, &t->h, t->setup_err, sizeof(t->setup_err));
}

enum call_kind { CALL_PUT, CALL_GET, CALL_EXISTS };
static const char *const call_names[] = { "put", "get", "exists" };

/* The batch (or single) call of one kind; rc as the target returns it. */
static int thr_call_target(struct bench_thr *t, enum call_kind kind, size_t n)
{
	const struct cli_bench_target *tg = t->b->t;
	struct kvn_item *it = &t->items[0];
	int rc;

	if (t->b->a.batch > 1) {
		if (kind == CALL_PUT)
			return tg->batch_put(t->h, t->items, n);
		if (kind == CALL_GET)
			return tg->batch_get(t->h, t->items, n);
		return tg->batch_exists(t->h, t->items, n);
	}
	switch (kind) {
	case CALL_PUT:
		rc = tg->put(t->h, it->key, it->klen, it->val, it->vlen);
		break;
	case CALL_GET:
		rc = tg->get(t->h, it->key, it->klen, it->val, it->cap, &it->vlen);
		break;
	default:
		rc = tg->exists(t->h, it->key, it->klen);
		it->exists = rc == 1;
		rc = rc < 0 ? rc : 0;
	}
	it->status = rc;
	return rc;
}

/* One call of n items.  check: 1 = length and head/tail stamps, 2 = every
 * byte (gets; an exists only checks that the key exists).  Returns the items
 * that succeeded; *lat gets the call's latency. */
static uint64_t thr_call(struct bench_thr *t, enum call_kind kind, size_t n, int check,
			 uint64_t *lat)
{
	const struct cli_bench_target *tg = t->b->t;
	size_t S = t->b->a.size;
	uint64_t ok = 0, t0;
	int rc, any = 0, put = kind == CALL_PUT, get = kind == CALL_GET;

	for (size_t i = 0; i < n; i++) {
		struct kvn_item *it = &t->items[i];
		uint64_t k = t->key_lo + t->cursor;
		if (++t->cursor == t->key_n)
			t->cursor = 0;
		t->keyid[i] = k;
		it->key = t->keybuf + i * KEY_CAP;
		it->klen = bench_key_format(t->keybuf + i * KEY_CAP, k);
		it->status = 0;
		it->exists = 0;
		if (put) {
			it->val = t->putbuf + i * S;
			bench_pattern_stamp(it->val, S, k);
			it->vlen = S;
			it->cap = 0;
		} else {
			it->val = get ? t->getbuf + i * S : NULL;
			it->vlen = 0;
			it->cap = get ? S : 0;
		}
	}
	t0 = kvn_now_ns();
	rc = thr_call_target(t, kind, n);
	*lat = kvn_now_ns() - t0;

	for (size_t i = 0; i < n; i++)
		any |= t->items[i].status;
	for (size_t i = 0; i < n; i++) {
		struct kvn_item *it = &t->items[i];
		/* a batch failing as a whole may leave the items untouched */
		int st = it->status ? it->status : (rc && !any) ? rc : 0;
		const char *why = st ? tg->detail(t->h) : "value differs from what was put";
		char d[96];
		if (!st && kind == CALL_EXISTS && !it->exists) {
			st = KVN_ENOTFOUND;
			why = "the key does not exist";
		} else if (!st && get && it->vlen != S) {
			snprintf(d, sizeof(d), "returned %zu bytes, expected %zu", it->vlen, S);
			st = KVN_EPROTO;
			why = d;
		} else if (!st && get && check == 2) {
			bench_pattern_stamp(t->expect, S, t->keyid[i]);
			st = memcmp(it->val, t->expect, S) ? KVN_EPROTO : 0;
		} else if (!st && get && !bench_pattern_quick_ok(it->val, S, t->keyid[i])) {
			st = KVN_EPROTO;
		}
		if (st)
			bench_error(t, call_names[kind], it->key, it->klen, st, why);
		else
			ok++;
	}
	return ok;
}

static int thr_give_up(struct bench_thr *t)
{
	if (t->errors < THREAD_MAX_ERRORS)
		return 0;
	if (!t->stopped++)
		bench_say(t->b, "client %u stopped after %" PRIu64 " errors\n", t->idx, t->errors);
	return 1;
}

/* Put (populate) or get-and-compare / exists (verify) every key of the
 * range once. */
static void thr_each_key(struct bench_thr *t, enum call_kind kind)
{
	uint64_t left = t->key_n, lat;
	t->cursor = 0;
	while (left > 0 && !thr_give_up(t)) {
		size_t n = left < t->b->a.batch ? (size_t)left : (size_t)t->b->a.batch;
		thr_call(t, kind, n, 2, &lat);
		left -= n;
		atomic_fetch_add_explicit(&t->setup_progress, n, memory_order_relaxed);
	}
	t->cursor = 0;
}

static void thr_loop(struct bench_thr *t, uint64_t items, int timed)
{
	struct bench *b = t->b;
	uint64_t done = 0, lat;
	while (done < items && !thr_give_up(t)) {
		size_t n = items - done < b->a.batch ? (size_t)(items - done) : (size_t)b->a.batch;
		enum call_kind kind = b->a.op == OP_PUT ? CALL_PUT
				      : b->a.op == OP_EXISTS ? CALL_EXISTS : CALL_GET;
		if (b->a.op == OP_MIXED) {
			t->rng ^= t->rng >> 12; /* xorshift64*, fixed seed per thread */
			t->rng ^= t->rng << 25;
			t->rng ^= t->rng >> 27;
			kind = (t->rng * 0x2545f4914f6cdd1dull) >> 63 ? CALL_PUT : CALL_GET;
		}
		uint64_t ok = thr_call(t, kind, n, 1, &lat);
		done += n;
		if (timed) {
			bench_hist_add(t->hist, lat);
			t->ok_items += ok;
			*(kind == CALL_PUT ? &t->puts : kind == CALL_GET ? &t->gets : &t->exists) += n;
			atomic_store_explicit(&t->progress, done, memory_order_relaxed);
		}
	}
}

/* memcpy, tag or xxh3: one local item after another, timed per call like a
 * store. */
static void thr_local(struct bench_thr *t)
{
	size_t S = t->b->a.size, B = t->b->a.batch;
	uint64_t done = 0;

	while (done < t->n_items) {
		size_t n = t->n_items - done < B ? (size_t)(t->n_items - done) : B;
		uint64_t t0 = kvn_now_ns();
		for (size_t i = 0; i < n; i++) {
			int rc = bench_local_item(t->local, t->putbuf + i * S,
						  t->getbuf ? t->getbuf + i * S : NULL, S);
			if (rc) {
				bench_error(t, bench_op_names[t->b->a.op], "", 0, rc, NULL);
				return;
			}
		}
		bench_hist_add(t->hist, kvn_now_ns() - t0);
		done += n;
		t->ok_items += n;
		atomic_store_explicit(&t->progress, done, memory_order_relaxed);
	}
}

/* Whether the end removes the run's keys: not with --keep, not the keys
 * of an earlier run (--no-populate), not where the target cannot. */
static int bench_removes(const struct bench *b)
{
	return !OP_LOCAL(b->a.op) && !b->a.keep && !b->a.no_populate && b->t->batch_remove;
}

/* Remove what this thread wrote: its key range when it owns it (whoever
 * else wrote a shared key, the owner removes it) and its settle marker, in
 * batches, untimed.  A key that is not there (never written: fewer items
 * than keys) is no failure. */
static void thr_remove(struct bench_thr *t)
{
	enum { CHUNK = 256 };
	struct bench *b = t->b;
	struct kvn_item *it = kvn_xcalloc(CHUNK, sizeof *it);
	char(*keys)[KEY_CAP] = kvn_xcalloc(CHUNK, KEY_CAP);
	uint64_t next = 0, total = t->owner ? t->key_n : 0;
	int settle = t->settled;

	while (next < total || settle) {
		size_t m = 0, any = 0;
		for (; m < CHUNK && next < total; m++, next++)
			it[m].klen = bench_key_format(keys[m], t->key_lo + next);
		if (m < CHUNK && settle) {
			it[m].klen = (size_t)bench_settle_key(keys[m], KEY_CAP, t->idx);
			m++;
			settle = 0;
		}
		for (size_t i = 0; i < m; i++) {
			it[i].key = keys[i];
			it[i].status = 0;
		}
		int rc = b->t->batch_remove(t->h, it, m);
		for (size_t i = 0; i < m; i++)
			any |= it[i].status != 0;
		for (size_t i = 0; i < m; i++) {
			int st = it[i].status ? it[i].status : rc && !any ? rc : 0, zero = 0;
			if (st == 0) {
				atomic_fetch_add(&b->removed, 1);
			} else if (st != KVN_ENOTFOUND) {
				atomic_compare_exchange_strong(&b->rm_first, &zero, st);
				if (atomic_fetch_add(&b->rm_failed, 1) < ERRORS_PRINTED)
					bench_say(b, "remove %.*s: %s (%s)\n", (int)it[i].klen, keys[i], kvn_err_name(st),
						  b->t->detail(t->h));
			}
		}
	}
	free(keys);
	free(it);
}

static void *thr_main(void *arg)
{
	struct bench_thr *t = arg;
	struct bench *b = t->b;
	int reads = BENCH_OP_READS(b->a.op);

	pthread_mutex_lock(&b->mu);
	while (!b->gate_open)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);

	t->setup_rc = atomic_load(&b->abort) ? KVN_ECLOSED : thr_setup(t);
	if (t->setup_rc)
		atomic_store(&b->abort, 1);
	pthread_barrier_wait(&b->bar); /* everyone connected */
	/* --no-populate: the keys are there from an earlier run (a cold read
	 * of values another run wrote, e.g. after they went to disk) */
	if (!atomic_load(&b->abort) && reads && t->owner && !b->a.no_populate)
		thr_each_key(t, CALL_PUT);
	pthread_barrier_wait(&b->bar); /* every key is in place */
	if (!atomic_load(&b->abort) && reads && !b->a.no_populate)
		thr_each_key(t, b->a.op == OP_EXISTS ? CALL_EXISTS : CALL_GET);
	if (!atomic_load(&b->abort) && !OP_LOCAL(b->a.op))
		thr_loop(t, t->n_warmup, 0);
	if (!atomic_load(&b->abort) && !OP_LOCAL(b->a.op) && b->t->settle) {
		t->settled = 1; /* failed or not, the marker may be there */
		int rc = b->t->settle(t->h, t->idx);
		if (rc)
			bench_error(t, "settle", "", 0, rc, b->t->detail(t->h));
	}
	if (pthread_barrier_wait(&b->bar) == PTHREAD_BARRIER_SERIAL_THREAD)
		atomic_store(&b->run_start, kvn_now_ns());
	if (!atomic_load(&b->abort)) {
		t->t_start = kvn_now_ns();
		if (OP_LOCAL(b->a.op))
			thr_local(t);
		else
			thr_loop(t, t->n_items, 1);
		t->t_end = kvn_now_ns();
	}
	pthread_barrier_wait(&b->bar); /* nobody writes a key any more */
	if (t->h && bench_removes(b))
		thr_remove(t);
	if (t->h)
		b->t->close(t->h);
	bench_local_free(t->local);
	t->local = NULL;
	t->h = NULL;

	pthread_mutex_lock(&b->mu);
	b->finished++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* ---- output ------------------------------------------------------------------ */

static void fmt_size(char *out, size_t cap, uint64_t n)
{
	static const char *const u[] = { "GiB", "MiB", "KiB" };
	for (int i = 0; i < 3; i++) {
		uint64_t m = 1ull << (10 * (3 - i));
		if (n >= m && n % m == 0) {
			snprintf(out, cap, "%" PRIu64 "%s", n / m, u[i]);
			return;
		}
	}
	snprintf(out, cap, "%" PRIu64 "B", n);
}

static void fmt_us(char *out, size_t cap, double us)
{
	if (us < 1000)
		snprintf(out, cap, "%.*fus", us < 10 ? 1 : 0, us);
	else if (us < 1000000)
		snprintf(out, cap, "%.*fms", us < 100000 ? 1 : 0, us / 1000);
	else
		snprintf(out, cap, "%.2fs", us / 1e6);
}

static void bench_report(struct bench *b)
{
	struct hist *h = kvn_xcalloc(1, sizeof(*h));
	uint64_t t0 = UINT64_MAX, t1 = 0, ok = 0, puts = 0, gets = 0, exists = 0;
	int ex = b->a.op == OP_EXISTS;
	const char *target = OP_LOCAL(b->a.op) ? "local" : b->t->name;
	char size[32], p50[32], p99[32], p999[32], addr[300] = "";

	for (unsigned i = 0; i < b->nthr; i++) {
		struct bench_thr *t = &b->thr[i];
		bench_hist_merge(h, t->hist);
		ok += t->ok_items;
		puts += t->puts;
		gets += t->gets;
		exists += t->exists;
		if (t->n_items == 0)
			continue;
		t0 = t->t_start < t0 ? t->t_start : t0;
		t1 = t->t_end > t1 ? t->t_end : t1;
	}
	double secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
	double ops = secs > 0 ? (double)ok / secs : 0;
	/* an exists moves no value: its figure is keys/s alone */
	double gbs = secs > 0 && !ex ? (double)ok * (double)b->a.size / secs / 1e9 : 0;
	double q50 = (double)bench_hist_quantile(h, 0.5) / 1e3, q99 = (double)bench_hist_quantile(h, 0.99) / 1e3,
	       q999 = (double)bench_hist_quantile(h, 0.999) / 1e3;
	uint64_t errors = atomic_load(&b->errors);

	/* the host passed cli_bench_target_parse: nothing in it needs escaping */
	if (b->cfg.port)
		snprintf(addr, sizeof(addr), ",\"addr\":\"%s:%u\"", b->cfg.host, (unsigned)b->cfg.port);
	if (b->a.json) {
		printf("{\"op\":\"%s\",\"size\":%" PRIu64 ",\"count\":%" PRIu64 ",\"clients\":%" PRIu64
		       ",\"batch\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"target\":\"%s\"%s",
		       bench_op_names[b->a.op], b->a.size, b->a.count, b->a.clients, b->a.batch, b->a.keys,
		       target, addr);
		printf(",\"ops_per_s\":%.1f,\"gb_per_s\":%.4f,\"p50_us\":%.1f,\"p99_us\":%.1f"
		       ",\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"seconds\":%.4f"
		       ",\"ok\":%" PRIu64 ",\"puts\":%" PRIu64 ",\"gets\":%" PRIu64
		       ",\"exists\":%" PRIu64 ",\"durable\":%s,\"errors\":%" PRIu64,
		       ops, gbs, q50, q99, q999, (double)h->max / 1e3,
		       h->n ? (double)h->sum / (double)h->n / 1e3 : 0.0, secs, ok, puts, gets, exists,
		       b->a.durable ? "true" : "false", errors);
		/* the prefix passed bench_prefix_ok or is the sanitized default:
		 * nothing in it needs escaping */
		if (OP_LOCAL(b->a.op))
			printf("}\n");
		else
			printf(",\"prefix\":\"%s\",\"kept\":%s,\"removed\":%" PRIu64 ",\"remove_failed\":%" PRIu64 "}\n",
			       bench_prefix(), bench_removes(b) ? "false" : "true", atomic_load(&b->removed),
			       atomic_load(&b->rm_failed));
	} else {
		fmt_size(size, sizeof(size), b->a.size);
		fmt_us(p50, sizeof(p50), q50);
		fmt_us(p99, sizeof(p99), q99);
		fmt_us(p999, sizeof(p999), q999);
		printf("%s %s size=%s count=%" PRIu64 " clients=%" PRIu64 " batch=%" PRIu64 ": ",
		       target, bench_op_names[b->a.op], size, b->a.count, b->a.clients, b->a.batch);
		if (ex)
			printf("%.0f keys/s", ops);
		else
			printf("%.0f ops/s %.*f GB/s", ops, gbs >= 10 ? 1 : gbs >= 1 ? 2 : 3, gbs);
		printf(" p50 %s p99 %s p999 %s%s", p50, p99, p999, b->a.durable ? " durable" : "");
		if (errors)
			printf(" errors=%" PRIu64, errors);
		printf("\n");
		if (!OP_LOCAL(b->a.op) && bench_removes(b))
			printf("  keys %s*: %" PRIu64 " removed%s\n", bench_prefix(), atomic_load(&b->removed),
			       atomic_load(&b->rm_failed) ? ", some could not be (see above)" : "");
		else if (!OP_LOCAL(b->a.op))
			printf("  keys %s*: kept (%s)\n", bench_prefix(),
			       b->a.keep ? "--keep" : b->a.no_populate ? "an earlier run's, --no-populate"
									: "bench removes keys from kvnode only");
	}
	fflush(stdout);
	free(h);
}

/* Wait for the threads; on a terminal, a progress line every 200 ms once
 * the run is past a second. */
static void bench_wait(struct bench *b)
{
	int tty = isatty(2);
	uint64_t start = kvn_now_ns(), total_keys = 0;
	const char *target = OP_LOCAL(b->a.op) ? "local" : b->t->name;

	for (unsigned i = 0; i < b->nthr; i++) /* populated by its owner, verified by each user */
		total_keys += (b->thr[i].owner ? b->thr[i].key_n : 0) + b->thr[i].key_n;
	pthread_mutex_lock(&b->mu);
	while (b->finished < b->nthr) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)PROGRESS_EVERY_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
		uint64_t now = kvn_now_ns(), done = 0, run_start = atomic_load(&b->run_start);
		if (!tty || b->finished == b->nthr || now - start < PROGRESS_AFTER_NS)
			continue;
		for (unsigned i = 0; i < b->nthr; i++)
			done += atomic_load_explicit(run_start ? &b->thr[i].progress
							       : &b->thr[i].setup_progress,
						     memory_order_relaxed);
		if (run_start) {
			double s = now > run_start ? (double)(now - run_start) / 1e9 : 0;
			fprintf(stderr, "\r\033[K%s %s: %" PRIu64 "/%" PRIu64 " items, %.2f GB/s", target,
				bench_op_names[b->a.op], done, b->a.count,
				s > 0 ? (double)done * (double)b->a.size / s / 1e9 : 0.0);
		} else {
			fprintf(stderr, "\r\033[K%s %s: setting up (populate, verify, warm up) %" PRIu64
				"/%" PRIu64 " keys", target, bench_op_names[b->a.op], done, total_keys);
		}
		b->progress_shown = 1;
	}
	if (b->progress_shown)
		fputs("\r\033[K", stderr);
	b->progress_shown = 0;
	pthread_mutex_unlock(&b->mu);
}

/* ---- entry ------------------------------------------------------------------- */

static void bench_free(struct bench *b)
{
	for (unsigned i = 0; b->thr && i < b->nthr; i++)
		if (b->thr[i].arena)
			munmap(b->thr[i].arena, b->thr[i].arena_len);
	free(b->thr);
	if (b->base)
		munmap(b->base, b->a.size);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

int cli_bench(int argc, char **argv, const struct kvn_conf *conf)
{
	struct bench b;
	pthread_condattr_t ca;
	char err[256];
	int rc;

	memset(&b, 0, sizeof(b));
	rc = bench_parse_args(argc, argv, &b.a);
	if (rc)
		return rc == 1 ? 0 : 2;
	bench_prefix_set(b.a.prefix);
	if (b.a.op == OP_QUEUE)
		return bench_queue_run(&b.a, conf);
	const uint64_t S = b.a.size, B = b.a.batch, C = b.a.clients;
	if (!OP_LOCAL(b.a.op)) {
		if (cli_bench_target_parse(b.a.target, &b.t, &b.cfg, err, sizeof(err)))
			return bench_usage_error("%s", err);
		b.cfg.conf = conf;
		b.cfg.timeout_ms = b.a.timeout_ms;
		b.cfg.timeout_given = b.a.timeout_given;
		b.cfg.put_flags = b.a.durable ? KVN_PUT_DURABLE : 0;
		b.cfg.max_batch = (size_t)B;
		b.cfg.max_klen = KEY_CAP;
		b.cfg.value_size = (size_t)S;
	}
	/* Buffers are per thread and all touched up front: refuse a run that
	 * cannot fit rather than measure swapping. */
	uint64_t per_thr = (B * 2 + 1) * S, ram = (uint64_t)sysconf(_SC_PHYS_PAGES) *
						  (uint64_t)sysconf(_SC_PAGESIZE);
	if (per_thr / S != B * 2 + 1 || per_thr > ram / 2 / C) {
		fprintf(stderr, "kvnode bench: --size x --batch x --clients needs about %" PRIu64
			" MiB of buffers, more than half of this machine's %" PRIu64 " MiB\n",
			per_thr / (1 << 20) * C, ram >> 20);
		return 2;
	}

	b.nthr = (unsigned)C;
	pthread_mutex_init(&b.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b.cv, &ca);
	pthread_condattr_destroy(&ca);
	b.base = map_touched((size_t)S);
	b.thr = aligned_alloc(64, round_up(C * sizeof(*b.thr), 64));
	if (!b.base || !b.thr) {
		fprintf(stderr, "kvnode bench: out of memory\n");
		bench_free(&b);
		return kvn_err_exit_code(KVN_ENOMEM);
	}
	memset(b.thr, 0, C * sizeof(*b.thr));
	bench_pattern_base(b.base, (size_t)S);

	/* Each client owns a contiguous key range so a batch never repeats a key;
	 * with fewer keys than clients, clients share keys one each. */
	for (unsigned i = 0; i < b.nthr; i++) {
		struct bench_thr *t = &b.thr[i];
		t->b = &b;
		t->idx = i;
		t->n_items = b.a.count / C + (i < b.a.count % C);
		t->n_warmup = b.a.warmup / C + (i < b.a.warmup % C);
		if (b.a.keys >= C) {
			t->key_lo = b.a.keys * i / C;
			t->key_n = b.a.keys * (i + 1) / C - t->key_lo;
			t->owner = 1;
		} else {
			t->key_lo = i % b.a.keys;
			t->key_n = 1;
			t->owner = i < b.a.keys;
		}
	}

	unsigned started = 0;
	for (; started < b.nthr; started++)
		if (pthread_create(&b.thr[started].tid, NULL, thr_main, &b.thr[started]))
			break;
	if (started < b.nthr) {
		fprintf(stderr, "kvnode bench: cannot start client thread %u of %u\n", started,
			b.nthr);
		atomic_store(&b.abort, 1);
		b.nthr = started;
	}
	pthread_barrier_init(&b.bar, NULL, b.nthr ? b.nthr : 1);
	pthread_mutex_lock(&b.mu);
	b.gate_open = 1;
	pthread_cond_broadcast(&b.cv);
	pthread_mutex_unlock(&b.mu);
	bench_wait(&b);
	for (unsigned i = 0; i < b.nthr; i++)
		pthread_join(b.thr[i].tid, NULL);
	pthread_barrier_destroy(&b.bar);

	rc = started < C ? KVN_ENOMEM : 0;
	for (unsigned i = 0; !rc && i < b.nthr; i++)
		if (b.thr[i].setup_rc && b.thr[i].setup_rc != KVN_ECLOSED) {
			rc = b.thr[i].setup_rc;
			fprintf(stderr, "kvnode bench: client %u: %s\n", i, b.thr[i].setup_err);
		}
	if (!rc) {
		bench_report(&b);
		int first = atomic_load(&b.first_err);
		uint64_t errors = atomic_load(&b.errors);
		if (errors) {
			fprintf(stderr, "kvnode bench: %" PRIu64 " errors; first: %s\n", errors,
				kvn_err_name(first));
			rc = first ? first : KVN_EPROTO;
		}
		uint64_t rmf = atomic_load(&b.rm_failed);
		if (rmf) {
			int rm_first = atomic_load(&b.rm_first);
			fprintf(stderr, "kvnode bench: %" PRIu64 " keys could not be removed (first: %s); they start "
				"with %s\n", rmf, kvn_err_name(rm_first), bench_prefix());
			if (!rc)
				rc = rm_first;
		}
	}
	bench_free(&b);
	if (!rc)
		return 0;
	int code = kvn_err_exit_code(rc);
	return code ? code : 1;
}
