/* t/queue_env.h: t/queue_prop's cluster and workload: a master and two
 * peers as kvnode processes (1 MiB of DRAM and a disk tier each), the
 * master's restart with SIGKILL, samples whose key, size, bytes and retain
 * flag follow from their number, producer threads and consumer threads
 * (each its own kvn_client) that record what every call answered, and
 * when, into the history t/queue_check.c judges.  Header-only like
 * restart_env.h: static inline. */
#ifndef KVN_T_QUEUE_ENV_H
#define KVN_T_QUEUE_ENV_H

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "kvnode.h"
#include "proc.h"
#include "queue_check.h"
#include "tap.h"

#define VMIN 1024
#define VMAX (16 * 1024)
#define LEASE_MAX 16
#define TTL_MIN_MS 400
#define TTL_MAX_MS 1500
/* a drain ends when no LEASE found anything for this long: longer than
 * any lease lives, so a sample whose lease expired had its chance */
#define DRAIN_IDLE_US ((TTL_MAX_MS + 1500) * 1000ull)

struct run {
	const char *name; /* prefix of its data dirs and logs */
	unsigned brk;     /* the master's KVNODE_TEST_QUEUE_BREAK; 0: none */
	uint32_t producers, consumers, per_producer;
	int restarts;       /* master SIGKILL + restart, spread over the puts */
	int final_restart;  /* one more once drained, then drain again */
	int final_restarted;
	uint64_t budget_ms; /* the workload's deadline */

	char conf_m[300], conf_p[2][300], db[320], log_m[64];
	pid_t pid_m, pid_p[2];
	int m_starts;

	struct qc_hist h;
	pthread_mutex_t mu; /* h while consumers run */
	int stop, draining, restarted;
	uint64_t last_nonempty_us;
	uint32_t leased; /* refs answered so far */
	long failures;   /* clients that could not connect, LEASE calls that failed otherwise */
	/* seen by the main thread */
	int vq_runs, vq_rows, vq_errors;
	long long max_disk_rows;
};

struct prod {
	struct run *r;
	uint32_t p;
	pthread_t th;
	uint32_t done;
	int connect_rc;
};

struct cons {
	struct run *r;
	uint32_t id;
	pthread_t th;
	uint64_t rng;
	int connect_rc;
	long lease_err, rounds, renews;
	struct kvn_ref refs[LEASE_MAX];
};

static inline uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 16);
}

static inline int outage(int rc)
{
	return rc == KVN_ECONN || rc == KVN_ETIMEDOUT || rc == KVN_EPEERDOWN || rc == KVN_ENOPEER ||
	       rc == KVN_ECLOSED;
}

/* ---- samples: key q<p>/<seq>, sample p * per_producer + seq; its size
 * and bytes follow from the index ---- */

static inline size_t sample_size(uint32_t s)
{
	return VMIN + (size_t)((s * 2654435761u) >> 7) % (VMAX - VMIN + 1);
}

static inline uint64_t sample_seed(uint32_t s)
{
	return 0x5100000000ull ^ s;
}

static inline int sample_retain(uint32_t s)
{
	return s % 4 == 1;
}

static inline uint32_t sample_of(const struct run *r, const void *key, size_t klen)
{
	char buf[32];
	unsigned p, q;
	char tail;
	if (klen >= sizeof buf)
		return UINT32_MAX;
	memcpy(buf, key, klen);
	buf[klen] = '\0';
	if (sscanf(buf, "q%u/%u%c", &p, &q, &tail) != 2 || p >= r->producers || q >= r->per_producer)
		return UINT32_MAX;
	return p * r->per_producer + q;
}

/* ---- the cluster ---- */

static inline void start_master(struct run *r)
{
	char v[16];
	const char *args[] = { "--role", "master", "--config", r->conf_m, NULL };
	snprintf(r->log_m, sizeof r->log_m, "%s-m%d", r->name, r->m_starts++);
	/* only before any thread runs (setenv is not thread-safe): the break
	 * runs never restart */
	if (r->brk) {
		snprintf(v, sizeof v, "%u", r->brk);
		setenv("KVNODE_TEST_QUEUE_BREAK", v, 1);
	}
	r->pid_m = proc_spawn(r->log_m, args);
	if (r->brk)
		unsetenv("KVNODE_TEST_QUEUE_BREAK");
}

static inline int cluster_start(struct run *r)
{
	char data_m[300], data_p[300], extra[1200], id[32], logn[64];
	uint16_t mp = proc_free_port(), pp[2] = { proc_free_port(), proc_free_port() };

	snprintf(data_m, sizeof data_m, "%s/%s-var-m", proc_tmp, r->name);
	snprintf(r->db, sizeof r->db, "%s/master.db", data_m);
	snprintf(r->conf_m, sizeof r->conf_m, "%s/%s-m.conf", proc_tmp, r->name);
	/* a long node_timeout: no peer is declared dead while the master
	 * restarts; 1 MiB of DRAM and a disk tier: queue values offload */
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 30s\n[client]\ntimeout = 2s\nquarantine = 300ms\n"
		 "[peer]\nhugepages = off\ndisk_size = 64MiB\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 data_m, data_m);
	proc_write_conf(r->conf_m, mp, pp[0], data_m, "1MiB", extra);
	start_master(r);
	if (proc_wait_log(r->log_m, "kvnode ready", 1, 15000) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		snprintf(r->conf_p[i], sizeof r->conf_p[i], "%s/%s-p%d.conf", proc_tmp, r->name, i + 1);
		snprintf(data_p, sizeof data_p, "%s/%s-var-p%d", proc_tmp, r->name, i + 1);
		proc_write_conf(r->conf_p[i], mp, pp[i], data_p, "1MiB", extra);
		snprintf(id, sizeof id, "node.id=p%d", i + 1);
		snprintf(logn, sizeof logn, "%s-p%d", r->name, i + 1);
		const char *args[] = { "--role", "peer", "--config", r->conf_p[i], "--set", id, NULL };
		r->pid_p[i] = proc_spawn(logn, args);
	}
	struct kvn_client *c = proc_connect_ready(r->conf_m, 2);
	kvn_close(c);
	return c ? 0 : -1;
}

static inline void cluster_stop(struct run *r)
{
	proc_stop(r->pid_m, SIGKILL, 5000, NULL);
	for (int i = 0; i < 2; i++)
		proc_stop(r->pid_p[i], SIGKILL, 5000, NULL);
}

/* kill -9 the master and start it again on the same master.db */
static inline int master_restart(struct run *r)
{
	int st = 0;
	kill(r->pid_m, SIGKILL);
	if (proc_wait(r->pid_m, 5000, &st) != 0 || !WIFSIGNALED(st))
		return -1;
	usleep(200 * 1000);
	start_master(r);
	return proc_wait_log(r->log_m, "kvnode ready", 1, 15000);
}

/* ---- producers ---- */

static inline void *producer_main(void *arg)
{
	struct prod *p = arg;
	struct run *r = p->r;
	struct kvn_options o = { .config_path = r->conf_m, .node_id = "producer" };
	struct kvn_client *c = NULL;
	static __thread uint8_t v[VMAX];

	p->connect_rc = kvn_connect(&o, &c);
	if (p->connect_rc) {
		__atomic_store_n(&p->done, r->per_producer, __ATOMIC_RELEASE);
		return NULL;
	}
	for (uint32_t q = 0; q < r->per_producer && !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); q++) {
		uint32_t s = p->p * r->per_producer + q;
		struct qc_sample *x = &r->h.samples[s];
		struct kvn_put_opts po = { .flags = KVN_PUT_QUEUE | (sample_retain(s) ? KVN_PUT_RETAIN : 0) };
		char key[32];
		int klen = snprintf(key, sizeof key, "q%u/%u", p->p, q);
		proc_fill(v, sample_size(s), sample_seed(s));
		x->t0 = wall_us();
		int rc = kvn_put_opts(c, key, (size_t)klen, v, sample_size(s), &po);
		x->t1 = wall_us();
		x->gen = po.gen;
		x->put = rc == 0 ? QP_OK : QP_MAYBE; /* a failed put may still have committed */
		__atomic_store_n(&p->done, q + 1, __ATOMIC_RELEASE);
		if (rc)
			usleep(20000); /* do not spin while the master restarts */
	}
	__atomic_store_n(&p->done, r->per_producer, __ATOMIC_RELEASE);
	kvn_close(c);
	return NULL;
}

/* ---- consumers ---- */

/* End the leases L[which[0..k)] with one kvn_release (flags), retried
 * while the master is away; what each answer proves goes to L[].end. */
static inline void release_some(struct kvn_client *cl, struct qc_lease *L, const uint32_t *which, uint32_t k,
			 unsigned flags)
{
	uint64_t ids[LEASE_MAX], until = kvn_now_ms() + 15000, first = wall_us();
	int st[LEASE_MAX], ret = (flags & KVN_RELEASE_RETURN) != 0;

	if (k == 0)
		return;
	for (uint32_t j = 0; j < k; j++) {
		ids[j] = L[which[j]].lease_id;
		L[which[j]].end_us = first;
	}
	/* sent before, reply lost: that attempt may have been recorded */
	for (int sent = 0;;) {
		for (uint32_t j = 0; j < k; j++)
			st[j] = 1;
		int rc = kvn_release(cl, ids, k, flags, st);
		uint64_t t = wall_us();
		if (rc == KVN_EBUSY && kvn_now_ms() < until) { /* refused at once: nothing done */
			usleep(10 * 1000);
			continue;
		}
		if (outage(rc) && kvn_now_ms() < until) {
			sent = 1;
			usleep(100 * 1000);
			continue;
		}
		for (uint32_t j = 0; j < k; j++) {
			struct qc_lease *l = &L[which[j]];
			int s = outage(rc) || st[j] == 1 ? rc : st[j];
			if (s == 0) {
				l->end = ret ? QE_RETURNED : QE_CONSUMED;
			} else if (s == KVN_ESTATE && !sent) {
				l->end = QE_ESTATE;
				if (!l->estate_us)
					l->estate_us = t;
			} else if (s == KVN_ESTATE && t + QC_MARGIN_US < l->deadline_us) {
				/* the master answered while the lease was live: an
				 * earlier attempt of ours ended it */
				l->end = ret ? QE_RETURNED : QE_CONSUMED;
			} else if (s == KVN_ESTATE || outage(s)) {
				l->end = ret ? QE_AMBIG_RETURN : QE_AMBIG_CONSUME;
			} else {
				l->end = QE_ERROR;
				tap_diag("release of lease %llu: %s", (unsigned long long)l->lease_id, kvn_strerror(s));
			}
		}
		return;
	}
}

static inline void fetch_one(struct kvn_client *cl, const struct kvn_ref *ref, struct qc_lease *l)
{
	static __thread uint8_t got[VMAX], want[VMAX];
	size_t vlen = 0;
	int rc = kvn_get_gen(cl, ref->key, ref->klen, ref->gen, got, sizeof got, &vlen);
	l->fetch_us = wall_us();
	if (rc == 0 && l->sample != UINT32_MAX) {
		size_t sz = sample_size(l->sample);
		proc_fill(want, sz, sample_seed(l->sample));
		if (vlen != sz || memcmp(got, want, sz) != 0)
			rc = KVN_EPROTO;
	}
	l->fetch_rc = rc;
}

static inline void renew_all(struct cons *c, struct kvn_client *cl, struct qc_lease *L, size_t n)
{
	uint64_t ids[LEASE_MAX], dl[LEASE_MAX];
	int st[LEASE_MAX];
	/* never shorter than the lease's own ttl: a renew only extends here,
	 * so a renew whose reply is lost leaves the old deadline a sure one */
	uint64_t ttl = TTL_MAX_MS + rnd(&c->rng) % 500;
	for (size_t i = 0; i < n; i++)
		ids[i] = L[i].lease_id;
	int rc = kvn_renew(cl, ids, n, ttl, st, dl);
	uint64_t t = wall_us();
	c->renews++;
	if (rc != 0 && rc != KVN_ESTATE)
		return;
	for (size_t i = 0; i < n; i++) {
		if (st[i] == 0)
			L[i].deadline_us = dl[i] * 1000;
		else if (st[i] == KVN_ESTATE && !L[i].estate_us)
			L[i].estate_us = t;
	}
}

static inline void consumer_round(struct cons *c, struct kvn_client *cl)
{
	struct run *r = c->r;
	struct qc_lease L[LEASE_MAX];
	uint32_t cons_ix[LEASE_MAX], ret_ix[LEASE_MAX], nc = 0, nr = 0;
	int drain = __atomic_load_n(&r->draining, __ATOMIC_ACQUIRE);
	struct qc_answer a = { .consumer = c->id };
	size_t n = 0, max = 1 + rnd(&c->rng) % LEASE_MAX;
	uint64_t ttl = TTL_MIN_MS + rnd(&c->rng) % (TTL_MAX_MS - TTL_MIN_MS + 1);

	a.part_n = drain ? 1 : 1 + rnd(&c->rng) % 5;
	a.part_i = c->id % a.part_n;
	c->rounds++;
	a.t_req = wall_us();
	int rc = kvn_lease(cl, a.part_i, a.part_n, ttl, c->refs, max, &n);
	a.t_ans = wall_us();
	if (rc) {
		if (!outage(rc) && rc != KVN_EBUSY && c->lease_err++ < 3)
			tap_diag("consumer %u: lease: %s", c->id, kvn_strerror(rc));
		usleep(30 * 1000);
		return;
	}
	if (n > max) {
		c->lease_err++;
		n = max;
	}
	if (n == 0) {
		usleep(10 * 1000);
		return;
	}
	__atomic_store_n(&r->last_nonempty_us, a.t_ans, __ATOMIC_RELEASE);
	__atomic_add_fetch(&r->leased, (uint32_t)n, __ATOMIC_RELAXED);
	for (size_t i = 0; i < n; i++) {
		const struct kvn_ref *ref = &c->refs[i];
		memset(&L[i], 0, sizeof L[i]);
		L[i].sample = sample_of(r, ref->key, ref->klen);
		L[i].lease_id = ref->lease_id;
		L[i].gen = ref->gen;
		L[i].size = ref->size;
		L[i].deadline_us = ref->deadline_ms * 1000;
		L[i].end_us = QC_NEVER;
		L[i].fetch_rc = 1;
		L[i].hash_ok = kvn_hash64(ref->key, ref->klen) % a.part_n == a.part_i;
	}
	if (rnd(&c->rng) % 10 == 0)
		renew_all(c, cl, L, n);
	for (size_t i = 0; i < n; i++)
		fetch_one(cl, &c->refs[i], &L[i]);
	usleep(rnd(&c->rng) % 20000); /* hold them a while: other consumers lease meanwhile */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t d = rnd(&c->rng) % 100;
		if (L[i].fetch_rc != 0)
			ret_ix[nr++] = i; /* not fetched: not consumed */
		else if (d < 75)
			cons_ix[nc++] = i;
		else if (d < 87)
			ret_ix[nr++] = i;
		/* else: left to expire */
	}
	release_some(cl, L, cons_ix, nc, rnd(&c->rng) % 5 == 0 ? KVN_RELEASE_RETAIN : 0);
	release_some(cl, L, ret_ix, nr, KVN_RELEASE_RETURN);

	pthread_mutex_lock(&r->mu);
	uint32_t first = qc_add_answer(&r->h, &a, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		L[i].answer = r->h.leases[first + i].answer;
		r->h.leases[first + i] = L[i];
	}
	pthread_mutex_unlock(&r->mu);
}

static inline void *consumer_main(void *arg)
{
	struct cons *c = arg;
	struct kvn_options o = { .config_path = c->r->conf_m, .node_id = "consumer" };
	struct kvn_client *cl = NULL;

	c->connect_rc = kvn_connect(&o, &cl);
	if (c->connect_rc)
		return NULL;
	while (!__atomic_load_n(&c->r->stop, __ATOMIC_ACQUIRE))
		consumer_round(c, cl);
	kvn_close(cl);
	return NULL;
}

#endif
