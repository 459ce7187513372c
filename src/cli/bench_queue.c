/*
 * bench_queue: `kvnode bench --op queue`, the consumer queue end to end.
 * P producer threads put --count samples (KVN_PUT_QUEUE: durable) while C
 * consumer threads, each leasing its own partition (i of C), take up to
 * --batch refs a call, fetch each with kvn_get_gen, check its bytes and
 * release the batch; the run ends when every sample put was consumed.
 * Before it, unless --no-baseline, the same producers time --count plain
 * durable puts of the same size (then removed, untimed): what the queue
 * costs beyond a durable put.  Keys are the run's prefix (bench_prefix),
 * "q" or "b", the run's nonce and the number; at the end samples left
 * over (not consumed: errors) are removed too, unless --keep.
 *
 * The master's SQLite commits are counted from master.db's WAL index
 * (--master-db, on the master's host): its header's iChange is SQLite's
 * own count of transactions committed to the WAL (sqlite.org/walformat.html,
 * "WAL-index header"), read before and after each timed phase.  The
 * master's db_commits counter is not reachable from another process: no
 * message carries it.
 *
 * Owns its threads, clients, histograms and report; the command line is
 * bench_args.c's, the histogram and value pattern bench_stats.c's.
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "client/client.h"
#include "cli/cli.h"

#define Q_TTL_MS 60000     /* no lease expires in a healthy run */
#define Q_MAX_ERRORS 64    /* a thread gives up after this many */
#define Q_ERRORS_PRINTED 5
#define Q_IDLE_SLEEP_US 1000 /* an empty partition is asked again after this */

enum { PH_BASE, PH_QUEUE };

struct bq;

struct bq_thr {
	struct bq *q;
	unsigned idx;
	int consumer;
	pthread_t tid;
	struct kvn_client *c;
	struct hist *h; /* [4]: put, lease, get, release */
	unsigned char *val, *expect, *got;
	struct kvn_ref *refs;
	uint64_t *ids;
	int *st;
	uint32_t *ks;
	uint64_t errors, leases, empty, busy;
};
enum { H_PUT, H_LEASE, H_GET, H_RELEASE, H_N };

struct bq {
	const struct bench_args *a;
	size_t S;
	uint64_t n;
	int phase;
	uint64_t nonce; /* in every key of this run: an earlier run's samples are not ours */
	unsigned char *base;
	struct bq_thr *thr;
	unsigned np, nc;
	_Atomic uint64_t next, put_failed, consumed, producers_left, errors, foreign;
	_Atomic int first_err, stop;
	/* the removals at the end, by the calling thread alone */
	uint64_t removed, rm_failed;
	int rm_first;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int gate;
};

static void q_error(struct bq_thr *t, const char *what, int rc, const char *detail)
{
	int zero = 0;
	t->errors++;
	atomic_compare_exchange_strong(&t->q->first_err, &zero, rc);
	if (atomic_fetch_add(&t->q->errors, 1) < Q_ERRORS_PRINTED) {
		pthread_mutex_lock(&t->q->mu);
		fprintf(stderr, "kvnode bench: %s: %s (%s)%s%s\n", what, kvn_err_name(rc), kvn_strerror(rc),
			detail && *detail ? ": " : "", detail ? detail : "");
		pthread_mutex_unlock(&t->q->mu);
	}
	if (t->errors >= Q_MAX_ERRORS)
		atomic_store(&t->q->stop, 1);
}

static int q_key(char *out, size_t cap, const struct bq *q, int phase, uint64_t i)
{
	return snprintf(out, cap, "%s%s%" PRIx64 "-%" PRIu64, bench_prefix(), phase == PH_BASE ? "b" : "q", q->nonce,
			i);
}

/* The sample number of a key of this run's queue phase, or -1. */
static int64_t q_key_index(const struct bq *q, const uint8_t *key, size_t klen)
{
	char want[KEY_CAP], buf[KEY_CAP + 32];
	int wl = snprintf(want, sizeof want, "%sq%" PRIx64 "-", bench_prefix(), q->nonce);
	if (klen >= sizeof buf || klen <= (size_t)wl || memcmp(key, want, (size_t)wl) != 0)
		return -1;
	memcpy(buf, key, klen);
	buf[klen] = '\0';
	char *end = NULL;
	unsigned long long i = strtoull(buf + wl, &end, 10);
	return end && *end == '\0' && i < q->n ? (int64_t)i : -1;
}

static void gate_wait(struct bq *q)
{
	pthread_mutex_lock(&q->mu);
	while (!q->gate)
		pthread_cond_wait(&q->cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

static void producer(struct bq_thr *t)
{
	struct bq *q = t->q;
	unsigned flags = q->phase == PH_BASE ? KVN_PUT_DURABLE : KVN_PUT_QUEUE;
	char key[KEY_CAP + 32];

	while (!atomic_load(&q->stop)) {
		uint64_t i = atomic_fetch_add(&q->next, 1);
		if (i >= q->n)
			break;
		int klen = q_key(key, sizeof key, q, q->phase, i);
		bench_pattern_stamp(t->val, q->S, i);
		uint64_t t0 = kvn_now_ns();
		int rc = kvn_put(t->c, key, (size_t)klen, t->val, q->S, flags);
		bench_hist_add(&t->h[H_PUT], kvn_now_ns() - t0);
		if (rc) {
			atomic_fetch_add(&q->put_failed, 1);
			q_error(t, "put", rc, kvn_last_detail(t->c));
		}
	}
	atomic_fetch_sub(&q->producers_left, 1);
}

/* Release ids[0..n) with flags; returns how many answered 0. */
static uint64_t release(struct bq_thr *t, size_t n, unsigned flags)
{
	uint64_t ok = 0;
	if (n == 0)
		return 0;
	uint64_t t0 = kvn_now_ns();
	int rc = kvn_release(t->c, t->ids, n, flags, t->st);
	bench_hist_add(&t->h[H_RELEASE], kvn_now_ns() - t0);
	while (rc == KVN_EBUSY && !atomic_load(&t->q->stop)) {
		/* the master's writer is saturated: refused at once, nothing done */
		t->busy++;
		usleep(Q_IDLE_SLEEP_US);
		t0 = kvn_now_ns();
		rc = kvn_release(t->c, t->ids, n, flags, t->st);
		bench_hist_add(&t->h[H_RELEASE], kvn_now_ns() - t0);
	}
	for (size_t j = 0; j < n; j++) {
		int s = rc && rc != KVN_ESTATE ? rc : t->st[j];
		if (s == 0)
			ok++;
		else
			q_error(t, "release", s, kvn_last_detail(t->c));
	}
	return ok;
}

static void consumer(struct bq_thr *t)
{
	struct bq *q = t->q;
	uint64_t last = kvn_now_ms();
	size_t got = 0;

	while (!atomic_load(&q->stop) && atomic_load(&q->consumed) + atomic_load(&q->put_failed) < q->n) {
		uint64_t t0 = kvn_now_ns();
		int rc = kvn_lease(t->c, t->idx, q->nc, Q_TTL_MS, t->refs, (size_t)q->a->batch, &got);
		bench_hist_add(&t->h[H_LEASE], kvn_now_ns() - t0);
		t->leases++;
		if (rc == KVN_EBUSY) { /* the writer is saturated: ask again */
			t->busy++;
			usleep(Q_IDLE_SLEEP_US);
			continue;
		}
		if (rc) {
			q_error(t, "lease", rc, kvn_last_detail(t->c));
			continue;
		}
		if (got == 0) {
			t->empty++;
			/* every producer done and nothing left in this partition
			 * for a whole deadline: the samples never came */
			if (atomic_load(&q->producers_left) == 0 && kvn_now_ms() - last > q->a->timeout_ms) {
				q_error(t, "lease", KVN_ETIMEDOUT, "samples put but never leased");
				atomic_store(&q->stop, 1);
				break;
			}
			usleep(Q_IDLE_SLEEP_US);
			continue;
		}
		last = kvn_now_ms();
		size_t nok = 0, nret = 0;
		for (size_t j = 0; j < got; j++) {
			const struct kvn_ref *r = &t->refs[j];
			int64_t i = q_key_index(q, r->key, r->klen);
			size_t vlen = 0;
			if (i < 0) {
				/* not this run's: give it back, and say so */
				atomic_fetch_add(&q->foreign, 1);
				t->ids[got - 1 - nret++] = r->lease_id;
				continue;
			}
			uint64_t g0 = kvn_now_ns();
			rc = kvn_get_gen(t->c, r->key, r->klen, r->gen, t->got, q->S, &vlen);
			bench_hist_add(&t->h[H_GET], kvn_now_ns() - g0);
			if (rc == 0) {
				bench_pattern_stamp(t->expect, q->S, (uint64_t)i);
				if (vlen != q->S || memcmp(t->got, t->expect, q->S) != 0)
					rc = KVN_EPROTO;
			}
			if (rc) {
				q_error(t, "get", rc, rc == KVN_EPROTO ? "value differs from what was put" : "");
				t->ids[got - 1 - nret++] = r->lease_id;
			} else {
				t->ids[nok++] = r->lease_id;
			}
		}
		atomic_fetch_add(&q->consumed, release(t, nok, 0));
		if (nret) {
			memmove(t->ids, t->ids + got - nret, nret * sizeof *t->ids);
			release(t, nret, KVN_RELEASE_RETURN);
		}
	}
}

static void *thr_main(void *arg)
{
	struct bq_thr *t = arg;
	gate_wait(t->q);
	if (t->consumer)
		consumer(t);
	else
		producer(t);
	return NULL;
}

/* ---- the WAL index's commit counter ---- */

/* iChange of DB-shm's header into *out: 0, or KVN_EIO when it cannot be
 * read (no such file, or never two equal copies). */
static int shm_commits(const char *db, uint32_t *out)
{
	char path[4200];
	unsigned char h[96];
	snprintf(path, sizeof path, "%s-shm", db);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return KVN_EIO;
	/* the writer updates copy 2 then copy 1 (as SQLite's readers do:
	 * trust it only when both copies agree and it is initialized) */
	for (int i = 0; i < 1000; i++) {
		if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
			break;
		if (memcmp(h, h + 48, 48) == 0 && h[12] == 1) {
			memcpy(out, h + 8, 4);
			close(fd);
			return 0;
		}
		usleep(100);
	}
	close(fd);
	return KVN_EIO;
}

/* ---- phases ---- */

struct phase_out {
	double secs;
	uint64_t ok; /* puts that answered 0 */
	int have_commits;
	uint64_t commits;
};

static int run_phase(struct bq *q, int phase, struct phase_out *o)
{
	unsigned n = q->np + (phase == PH_QUEUE ? q->nc : 0), started = 0;
	uint32_t c0 = 0, c1 = 0;
	int have0 = 0;

	q->phase = phase;
	q->gate = 0;
	atomic_store(&q->next, 0);
	atomic_store(&q->producers_left, q->np);
	for (; started < n; started++)
		if (pthread_create(&q->thr[started].tid, NULL, thr_main, &q->thr[started]))
			break;
	if (started < n)
		atomic_store(&q->stop, 1);
	if (q->a->master_db)
		have0 = shm_commits(q->a->master_db, &c0) == 0;
	uint64_t t0 = kvn_now_ns();
	pthread_mutex_lock(&q->mu);
	q->gate = 1;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (unsigned i = 0; i < started; i++)
		pthread_join(q->thr[i].tid, NULL);
	o->secs = (double)(kvn_now_ns() - t0) / 1e9;
	o->ok = q->n - atomic_load(&q->put_failed);
	o->have_commits = have0 && shm_commits(q->a->master_db, &c1) == 0;
	o->commits = (uint32_t)(c1 - c0);
	if (q->a->master_db && !o->have_commits)
		fprintf(stderr, "kvnode bench: cannot read the commit counter of %s-shm\n", q->a->master_db);
	if (started < n) {
		fprintf(stderr, "kvnode bench: cannot start thread %u of %u\n", started, n);
		return KVN_ENOMEM;
	}
	return 0;
}

/* Remove the keys of a phase (untimed): the baseline's, so the queue
 * phase starts with the DRAM it would have had, and at the end the samples
 * not consumed.  A key that is not there (its put failed, or consumed) is
 * no failure; the others are counted in rm_failed, the first said. */
static void remove_phase(struct bq *q, int phase)
{
	enum { CHUNK = 256 };
	struct kvn_item it[CHUNK];
	char keys[CHUNK][KEY_CAP + 32];
	for (uint64_t i = 0; i < q->n; i += CHUNK) {
		size_t m = q->n - i < CHUNK ? (size_t)(q->n - i) : CHUNK, any = 0;
		for (size_t j = 0; j < m; j++) {
			memset(&it[j], 0, sizeof it[j]);
			it[j].key = keys[j];
			it[j].klen = (size_t)q_key(keys[j], sizeof keys[j], q, phase, i + j);
		}
		int rc = kvn_batch_remove(q->thr[0].c, it, m);
		for (size_t j = 0; j < m; j++)
			any |= it[j].status != 0;
		for (size_t j = 0; j < m; j++) {
			int st = it[j].status ? it[j].status : rc && !any ? rc : 0;
			if (st == 0) {
				q->removed++;
			} else if (st != KVN_ENOTFOUND && q->rm_failed++ == 0) {
				q->rm_first = st;
				fprintf(stderr, "kvnode bench: remove %s: %s (%s)\n", keys[j], kvn_err_name(st),
					kvn_last_detail(q->thr[0].c));
			}
		}
	}
}

/* ---- report ---- */

static void fmt_us(char *out, size_t cap, double us)
{
	if (us < 1000)
		snprintf(out, cap, "%.*fus", us < 10 ? 1 : 0, us);
	else if (us < 1000000)
		snprintf(out, cap, "%.*fms", us < 100000 ? 1 : 0, us / 1000);
	else
		snprintf(out, cap, "%.2fs", us / 1e6);
}

static double q_us(const struct hist *h, double p)
{
	return (double)bench_hist_quantile(h, p) / 1e3;
}

static void json_rate(const char *name, int have, double v)
{
	if (have)
		printf(",\"%s\":%.1f", name, v);
	else
		printf(",\"%s\":null", name);
}

static void report(struct bq *q, const struct hist *hq, const struct hist *hb, const struct phase_out *oq,
		   const struct phase_out *ob, int baseline)
{
	uint64_t consumed = atomic_load(&q->consumed), errors = atomic_load(&q->errors), leases = 0, empty = 0,
		 busy = 0;
	double sps = oq->secs > 0 ? (double)consumed / oq->secs : 0;
	double bps = baseline && ob->secs > 0 ? (double)ob->ok / ob->secs : 0;
	double cps = oq->have_commits && oq->secs > 0 ? (double)oq->commits / oq->secs : 0;
	double bcps = baseline && ob->have_commits && ob->secs > 0 ? (double)ob->commits / ob->secs : 0;
	static const char *const hn[H_N] = { "put", "lease", "get", "release" };
	char a[32], b[32], c[32];

	for (unsigned i = 0; i < q->np + q->nc; i++) {
		leases += q->thr[i].leases;
		empty += q->thr[i].empty;
		busy += q->thr[i].busy;
	}
	if (q->a->json) {
		printf("{\"op\":\"queue\",\"size\":%zu,\"count\":%" PRIu64 ",\"producers\":%u,\"clients\":%u"
		       ",\"batch\":%" PRIu64 ",\"target\":\"kvnode\",\"samples_per_s\":%.1f,\"ops_per_s\":%.1f",
		       q->S, q->n, q->np, q->nc, q->a->batch, sps, sps);
		for (int i = 0; i < H_N; i++)
			printf(",\"%s_p50_us\":%.1f,\"%s_p99_us\":%.1f,\"%s_p999_us\":%.1f", hn[i], q_us(&hq[i], 0.5),
			       hn[i], q_us(&hq[i], 0.99), hn[i], q_us(&hq[i], 0.999));
		printf(",\"lease_calls\":%" PRIu64 ",\"empty_leases\":%" PRIu64 ",\"busy\":%" PRIu64, leases, empty,
		       busy);
		if (oq->have_commits)
			printf(",\"commits\":%" PRIu64, oq->commits);
		else
			printf(",\"commits\":null");
		json_rate("commits_per_s", oq->have_commits, cps);
		json_rate("baseline_puts_per_s", baseline, bps);
		json_rate("baseline_put_p50_us", baseline, q_us(&hb[H_PUT], 0.5));
		json_rate("baseline_put_p99_us", baseline, q_us(&hb[H_PUT], 0.99));
		json_rate("baseline_commits_per_s", baseline && ob->have_commits, bcps);
		printf(",\"seconds\":%.4f,\"ok\":%" PRIu64 ",\"foreign\":%" PRIu64 ",\"durable\":true,\"errors\":%" PRIu64,
		       oq->secs, consumed, atomic_load(&q->foreign), errors);
		/* bench_prefix_ok or the sanitized default: nothing to escape */
		printf(",\"prefix\":\"%s\",\"kept\":%s,\"consumed\":%" PRIu64 ",\"removed\":%" PRIu64
		       ",\"remove_failed\":%" PRIu64 "}\n",
		       bench_prefix(), q->a->keep ? "true" : "false", consumed, q->removed, q->rm_failed);
		fflush(stdout);
		return;
	}
	printf("kvnode queue size=%zu count=%" PRIu64 " producers=%u consumers=%u batch=%" PRIu64
	       ": %.0f samples/s end to end (put, lease, get, release)\n",
	       q->S, q->n, q->np, q->nc, q->a->batch, sps);
	for (int i = 0; i < H_N; i++) {
		fmt_us(a, sizeof a, q_us(&hq[i], 0.5));
		fmt_us(b, sizeof b, q_us(&hq[i], 0.99));
		fmt_us(c, sizeof c, q_us(&hq[i], 0.999));
		printf("  %-8s p50 %s p99 %s p999 %s (%" PRIu64 " calls)\n", hn[i], a, b, c, hq[i].n);
	}
	printf("  %" PRIu64 " lease calls, %" PRIu64 " of them empty, %" PRIu64 " calls refused busy\n", leases, empty,
	       busy);
	if (oq->have_commits)
		printf("  master.db %.0f commits/s, %.2f per sample\n", cps,
		       consumed ? (double)oq->commits / (double)consumed : 0.0);
	else
		printf("  master.db commits/s: not measured (--master-db PATH on the master's host)\n");
	if (baseline) {
		fmt_us(a, sizeof a, q_us(&hb[H_PUT], 0.5));
		fmt_us(b, sizeof b, q_us(&hb[H_PUT], 0.99));
		printf("  baseline: durable puts alone %.0f puts/s, p50 %s p99 %s", bps, a, b);
		if (ob->have_commits)
			printf(", master.db %.0f commits/s", bcps);
		printf("\n");
	}
	if (errors)
		printf("  errors=%" PRIu64 "\n", errors);
	if (q->a->keep)
		printf("  keys %s*: kept (--keep; consumed samples are gone: %" PRIu64 ")\n", bench_prefix(), consumed);
	else
		printf("  keys %s*: %" PRIu64 " samples consumed, %" PRIu64 " other keys removed%s\n", bench_prefix(),
		       consumed, q->removed, q->rm_failed ? ", some could not be (see above)" : "");
	fflush(stdout);
}

/* ---- entry ---- */

static int connect_one(const struct bench_args *a, const struct kvn_conf *conf, struct kvn_client **c)
{
	struct kvn_conf cc;
	kvn_conf_copy(&cc, conf);
	if (a->timeout_given)
		cc.client_timeout = a->timeout_ms;
	return client_connect_conf(&cc, c);
}

static void merge(struct hist *into, struct bq *q)
{
	for (unsigned i = 0; i < q->np + q->nc; i++)
		for (int k = 0; k < H_N; k++) {
			bench_hist_merge(&into[k], &q->thr[i].h[k]);
			memset(&q->thr[i].h[k], 0, sizeof q->thr[i].h[k]);
		}
}

int bench_queue_run(const struct bench_args *a, const struct kvn_conf *conf)
{
	struct bq q;
	struct phase_out ob = { 0 }, oq = { 0 };
	struct hist *hb = kvn_xcalloc(H_N, sizeof *hb), *hq = kvn_xcalloc(H_N, sizeof *hq);
	int rc = 0, baseline = !a->no_baseline;

	uint32_t probe;
	if (a->master_db && shm_commits(a->master_db, &probe) != 0) {
		fprintf(stderr, "kvnode bench: --master-db %s: cannot read %s-shm (master.db's WAL index: "
			"give the master's master.db, on its host, while it runs)\n", a->master_db, a->master_db);
		free(hb);
		free(hq);
		return kvn_err_exit_code(KVN_EIO);
	}
	memset(&q, 0, sizeof q);
	q.a = a;
	q.S = (size_t)a->size;
	q.n = a->count;
	q.np = (unsigned)a->producers;
	q.nc = (unsigned)a->clients;
	q.nonce = kvn_wall_ms() ^ ((uint64_t)getpid() << 40);
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	q.base = kvn_xmalloc(q.S);
	bench_pattern_base(q.base, q.S);
	q.thr = kvn_xcalloc(q.np + q.nc, sizeof *q.thr);
	/* every buffer allocated and touched, every client connected, before
	 * any clock starts */
	for (unsigned i = 0; i < q.np + q.nc && !rc; i++) {
		struct bq_thr *t = &q.thr[i];
		t->q = &q;
		t->consumer = i >= q.np;
		t->idx = t->consumer ? i - q.np : i;
		t->h = kvn_xcalloc(H_N, sizeof *t->h);
		t->val = kvn_xmalloc(q.S);
		memcpy(t->val, q.base, q.S);
		if (t->consumer) {
			t->expect = kvn_xmalloc(q.S);
			memcpy(t->expect, q.base, q.S);
			t->got = kvn_xcalloc(1, q.S);
			t->refs = kvn_xcalloc((size_t)a->batch, sizeof *t->refs);
			t->ids = kvn_xcalloc((size_t)a->batch, sizeof *t->ids);
			t->st = kvn_xcalloc((size_t)a->batch, sizeof *t->st);
		}
		rc = connect_one(a, conf, &t->c);
		if (rc)
			fprintf(stderr, "kvnode bench: connect: %s\n", kvn_strerror(rc));
	}
	if (!rc && baseline) {
		rc = run_phase(&q, PH_BASE, &ob);
		merge(hb, &q);
		if (!a->keep)
			remove_phase(&q, PH_BASE);
		atomic_store(&q.put_failed, 0);
	}
	int queued = 0;
	if (!rc && !atomic_load(&q.stop)) {
		rc = run_phase(&q, PH_QUEUE, &oq);
		queued = 1;
	}
	merge(hq, &q);
	/* a sample consumed is deleted already; the rest (errors, a stop)
	 * would stay in the queue for the next consumer */
	if (queued && !a->keep && atomic_load(&q.consumed) < q.n)
		remove_phase(&q, PH_QUEUE);
	if (!rc)
		report(&q, hq, hb, &oq, &ob, baseline);
	if (!rc && q.rm_failed) {
		fprintf(stderr, "kvnode bench: %" PRIu64 " keys could not be removed (first: %s); they start with %s\n",
			q.rm_failed, kvn_err_name(q.rm_first), bench_prefix());
		rc = q.rm_first;
	}
	uint64_t foreign = atomic_load(&q.foreign), errors = atomic_load(&q.errors);
	if (!rc && foreign) {
		fprintf(stderr, "kvnode bench: %" PRIu64 " samples in the queue were not put by this run (given back): "
			"run against an empty queue\n", foreign);
		rc = KVN_ESTATE;
	}
	if (!rc && errors) {
		int first = atomic_load(&q.first_err);
		fprintf(stderr, "kvnode bench: %" PRIu64 " errors; first: %s\n", errors, kvn_err_name(first));
		rc = first ? first : KVN_EPROTO;
	}
	for (unsigned i = 0; i < q.np + q.nc; i++) {
		struct bq_thr *t = &q.thr[i];
		kvn_close(t->c);
		free(t->h);
		free(t->val);
		free(t->expect);
		free(t->got);
		free(t->refs);
		free(t->ids);
		free(t->st);
	}
	free(q.thr);
	free(q.base);
	free(hb);
	free(hq);
	pthread_mutex_destroy(&q.mu);
	pthread_cond_destroy(&q.cv);
	if (!rc)
		return 0;
	int code = kvn_err_exit_code(rc);
	return code ? code : 1;
}
