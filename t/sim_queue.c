/*
 * t/sim_queue.c: the simulation's consumer-queue workload (issue 15).  One
 * actor per client node, linked and partitioned with that client.  It
 * produces samples -- ROUTE_PUT, then PUT with PROTO_PUT_DURABLE |
 * PROTO_PUT_QUEUE to the routed peer, one distinct key "q/<client>/<n>" per
 * sample, so that exactly-once is checkable; an answer of 0 means the master
 * committed it -- and consumes them: LEASE a random partition of a random
 * count (1..5, changing every round) with a short ttl, then per ref fetch
 * it (GET{key, gen} from the ref's node, bytes checked at once), RELEASE it
 * (consume, or RETURN it), RENEW it, or forget it so that its lease expires
 * under the faults.  After the heal the actors drain the queue (count 1,
 * every ref released).  Every LEASE answer and every id of a RELEASE or
 * RENEW is recorded for sim_qcheck.c.
 */
#include "config.h"

#include <xxhash.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#include "net/proto.h"
#include "master/master.h"
#include "base/base.h"

#define QC_HELD 16       /* refs one consumer holds at most */
#define QC_BACKLOG 16    /* producers pause while this many samples wait (peers' DRAM is small) */
#define QC_TTL_MIN 100   /* lease ttl, ms: short, so leases expire under the faults */
#define QC_TTL_SPAN 500
#define QC_DRAIN_TTL 1000
#define QC_DRAIN_MAX 8
/* A round that found nothing (or failed) waits that long: empty LEASE
 * answers cost events and teach nothing. */
#define QC_IDLE_MS 500
#define QC_IDLE_WORK_MS 150
/* Pause between operations: every lease change is a master.db write, the
 * simulation's main cost; this keeps t/sim's run time in bounds. */
#define QC_THINK_MIN_MS 20
#define QC_THINK_SPAN_MS 60

enum { QOP_PUT = 1, QOP_LEASE, QOP_FETCH, QOP_RELEASE, QOP_RENEW };

struct qheld {
	size_t lease; /* index into w->ql */
	int fetched;
	uint64_t ttl;
};

struct sim_qc {
	struct sim_world *w;
	int idx;
	struct actor *self;
	actor_id master, peer[SIM_PEERS];
	struct actor_timer *think;
	uint64_t rng; /* the queue's own stream: the key-value workload draws as before */
	int busy, idle;
	/* the current operation */
	int op, step, sends, sent_inc;
	uint64_t t_start, deadline, issued, timeout;
	size_t sample; /* PUT: index into w->qs */
	struct proto_grant grant;
	struct proto_lease_req req;
	size_t calls, ncalls; /* RELEASE / RENEW: w->qcalls[calls .. calls + ncalls) */
	struct qheld fetch;   /* FETCH: the ref */
	struct qheld held[QC_HELD];
	int nheld;
	uint32_t nput;
};

static uint64_t qmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static uint64_t qr(struct sim_qc *q, uint64_t n)
{
	q->rng = qmix(q->rng);
	return n ? q->rng % n : 0;
}

static void *grow(void *p, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 256;
	p = realloc(p, *cap * sz);
	if (!p)
		kvn_fatal("out of memory");
	return p;
}

int sim_qkey(const void *key, size_t klen)
{
	return klen >= 2 && memcmp(key, "q/", 2) == 0;
}

void sim_qvalue_fill(const char *key, size_t klen, uint64_t gen, uint8_t *buf, uint64_t n)
{
	uint64_t x = qmix(XXH64(key, klen, 0) ^ gen ^ 0x7171ull);
	for (uint64_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = qmix(x);
		buf[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
}

static const char *op_name(int op)
{
	static const char *const n[] = { "?", "QPUT", "LEASE", "FETCH", "RELEASE", "RENEW" };
	return op >= 0 && op <= QOP_RENEW ? n[op] : "?";
}

/* On the faulty network a request may be duplicated: its answer may be the
 * copy's (sim_client.c does the same). */
static int dup_net(const struct sim_world *w)
{
	return w->nsims == 1 && w->faults.dup_pm > 0;
}

static void q_next(struct sim_qc *q);
static void q_send(struct sim_qc *q);

/* The operation ends: the calls it left unanswered are recorded so. */
static void q_end(struct sim_qc *q, int status)
{
	struct sim_world *w = q->w;
	uint64_t now = kvn_now_ms();

	if (q->op == QOP_PUT) {
		struct sim_qsample *s = &w->qs[q->sample];
		s->t_end = now;
		s->status = status;
		if (status == 0)
			w->n_q_put++;
		sim_trace(w, "q%d QPUT %s gen %#llx on p%d -> %s", q->idx, s->key, (unsigned long long)s->gen,
			  s->node + 1, status ? kvn_err_name(status) : "ok");
	} else if (q->op == QOP_RELEASE || q->op == QOP_RENEW) {
		for (size_t i = q->calls; i < q->calls + q->ncalls; i++)
			if (!w->qcalls[i].t_end) {
				w->qcalls[i].t_end = now;
				w->qcalls[i].status = status ? status : 1;
			}
	}
	uint64_t f[] = { (uint64_t)q->idx, (uint64_t)q->op, q->t_start, now, (uint64_t)(int64_t)status };
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		w->digest = qmix(w->digest ^ f[i]);
	/* in the drain, a failure waits as an empty answer does: no hot loop
	 * at one virtual instant */
	if (status)
		q->idle = 1;
	else if (q->op != QOP_LEASE)
		q->idle = 0;
	q->busy = 0;
	q_next(q);
}

/* Rule d for the queue's calls: a reply or a timeout, never later than the
 * call's own deadline nor the operation's. */
static void q_done(struct sim_qc *q)
{
	uint64_t now = kvn_now_ms();
	if (now > q->issued + q->timeout || now > q->deadline)
		sim_violation(q->w, SIM_RULE_D,
			      "queue client %d %s: a call issued at t=%llu with a %llu ms deadline completed at t=%llu "
			      "(operation deadline t=%llu)",
			      q->idx, op_name(q->op), (unsigned long long)q->issued, (unsigned long long)q->timeout,
			      (unsigned long long)now, (unsigned long long)q->deadline);
}

/* One attempt of at most SIM_TRY_MS within the operation's deadline. */
static void q_call(struct sim_qc *q, actor_id dst, struct actor_msg *m, actor_reply_fn fn)
{
	uint64_t now = kvn_now_ms();
	int rc;

	if (now >= q->deadline) {
		actor_msg_free(m);
		q_end(q, KVN_ETIMEDOUT);
		return;
	}
	q->issued = now;
	q->timeout = q->deadline - now < SIM_TRY_MS ? q->deadline - now : SIM_TRY_MS;
	q->sends++;
	q->sent_inc = q->w->master_inc;
	rc = actor_call(q->self, dst, m, q->timeout, fn, q);
	if (rc) {
		actor_msg_free(m);
		q_end(q, rc);
	}
}

/* The attempt timed out with time left: 1 when it was sent again. */
static int q_retried(struct sim_qc *q, int err)
{
	if (err != KVN_ETIMEDOUT || kvn_now_ms() >= q->deadline)
		return 0;
	q_send(q);
	return 1;
}

static void q_start(struct sim_qc *q, int op)
{
	q->op = op;
	q->step = 0;
	q->sends = 0;
	q->busy = 1;
	q->t_start = kvn_now_ms();
	q->deadline = q->t_start + SIM_CALL_MS;
	q_send(q);
}

/* ---- produce ---- */

static struct actor_msg *item_msg(uint16_t type, const char *key, size_t klen, uint64_t gen, uint64_t size,
				  uint8_t flags, const uint64_t *sum)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;

	wire_w_init(&w);
	proto_items_begin(&w, sum ? flags | PROTO_ITEMS_SUM : flags, 1);
	if (sum)
		proto_items_add_sum(&w, key, klen, gen, size, *sum, 0);
	else
		proto_items_add(&w, key, klen, gen, size);
	if (wire_w_to_msg(&w, m) != 0)
		KVN_ASSERT(0);
	return m;
}

static int on_qroute(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	struct sim_qsample *s;
	struct proto_route rt;
	struct wire_r r;
	uint32_t n;
	(void)self;

	if (w->ending)
		return 0;
	q_done(q);
	if (q_retried(q, err))
		return 0;
	int rc = err ? err : reply->status;
	if (!rc && (proto_routes_open(&r, reply, &n) != 0 || n != 1 || proto_routes_next(&r, &rt) != 0 ||
		    proto_route_grants_next(&r, &rt.grant) != 0 || wire_r_end(&r) != 0))
		rc = KVN_EPROTO;
	if (!rc)
		rc = rt.status;
	if (rc) {
		q_end(q, rc);
		return 0;
	}
	s = &w->qs[q->sample];
	s->gen = rt.gen;
	s->node = sim_peer_index(rt.node_id);
	if (s->node < 0 || rt.gen == 0) {
		sim_violation(w, SIM_RULE_F, "queue client %d: ROUTE_PUT of %s names node '%s' gen %llu", q->idx,
			      s->key, rt.node_id, (unsigned long long)rt.gen);
		q_end(q, KVN_EPROTO);
		return 0;
	}
	s->inc = w->peer_inc[s->node];
	q->grant = rt.grant;
	q->step = 1;
	q->sends = 0;
	q_send(q);
	return 0;
}

static int on_qput(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	struct proto_result res;
	struct wire_r r;
	uint32_t n;
	(void)self;

	if (w->ending)
		return 0;
	q_done(q);
	if (q_retried(q, err))
		return 0;
	int rc = err ? err : reply->status;
	if (!rc && (proto_results_open(&r, reply->meta, reply->meta_len, &n) != 0 || n != 1 ||
		    proto_results_next(&r, &res) != 0 || wire_r_end(&r) != 0))
		rc = KVN_EPROTO;
	if (!rc)
		rc = res.status;
	if (!rc && res.gen != w->qs[q->sample].gen)
		sim_violation(w, SIM_RULE_F, "queue sample %s: PUT of gen %#llx answered for gen %#llx",
			      w->qs[q->sample].key, (unsigned long long)w->qs[q->sample].gen,
			      (unsigned long long)res.gen);
	q_end(q, rc);
	return 0;
}

static void send_put(struct sim_qc *q)
{
	struct sim_world *w = q->w;
	struct sim_qsample *s = &w->qs[q->sample];
	struct actor_msg *m;
	struct wire_w ww;

	wire_w_init(&ww);
	if (q->step == 0) {
		m = actor_msg_new(WIRE_ROUTE_PUT);
		proto_route_put_begin(&ww, NULL, 0, 1);
		proto_route_put_add(&ww, s->key, (size_t)s->klen, s->size);
		if (wire_w_to_msg(&ww, m) != 0)
			KVN_ASSERT(0);
		q_call(q, q->master, m, on_qroute);
		return;
	}
	if (!s->t_sent)
		s->t_sent = kvn_now_ms();
	uint8_t *v = kvn_xmalloc(s->size);
	sim_qvalue_fill(s->key, (size_t)s->klen, s->gen, v, s->size);
	uint64_t sum = XXH3_64bits(v, s->size);
	m = item_msg(WIRE_PUT, s->key, (size_t)s->klen, s->gen, s->size, PROTO_PUT_DURABLE | PROTO_PUT_QUEUE, &sum);
	/* the grant goes after the item */
	wire_w_raw(&ww, m->meta, m->meta_len);
	proto_grants_add(&ww, &q->grant);
	free(m->meta);
	m->meta = NULL;
	m->meta_len = 0;
	if (wire_w_to_msg(&ww, m) != 0)
		KVN_ASSERT(0);
	m->payload = evbuffer_new();
	if (!m->payload)
		kvn_fatal("out of memory");
	evbuffer_add(m->payload, v, s->size);
	m->payload_len = s->size;
	free(v);
	q_call(q, q->peer[s->node], m, on_qput);
}

static void start_put(struct sim_qc *q)
{
	struct sim_world *w = q->w;

	w->qs = grow(w->qs, &w->capqs, w->nqs, sizeof *w->qs);
	q->sample = w->nqs++;
	struct sim_qsample *s = &w->qs[q->sample];
	memset(s, 0, sizeof *s);
	s->klen = snprintf(s->key, sizeof s->key, "q/%d/%u", q->idx, q->nput++);
	s->producer = q->idx;
	s->size = 64 + XXH64(s->key, (size_t)s->klen, 1) % 6000;
	s->node = -1;
	s->status = 1;
	s->t_start = kvn_now_ms();
	q_start(q, QOP_PUT);
}

/* ---- lease ---- */

static int on_lease(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	struct proto_lease_ref ref;
	struct wire_r r;
	uint32_t n = 0;
	(void)self;

	if (w->ending)
		return 0;
	q_done(q);
	if (q_retried(q, err))
		return 0;
	int rc = err ? err : reply->status;
	if (!rc && proto_lease_reply_open(&r, reply, &n) != 0)
		rc = KVN_EPROTO;
	if (rc) {
		q_end(q, rc);
		return 0;
	}
	uint64_t now = kvn_now_ms(), wall = kvn_wall_ms();
	w->qa = grow(w->qa, &w->capqa, w->nqa, sizeof *w->qa);
	struct sim_qanswer *a = &w->qa[w->nqa];
	*a = (struct sim_qanswer){ .consumer = q->idx, .part_i = q->req.part_i, .part_n = q->req.part_n,
				   .max = q->req.max, .ttl = q->req.ttl_ms, .t_sent = q->issued, .t_reply = now,
				   .first = w->nql, .master_inc = q->sent_inc };
	if (n > q->req.max)
		sim_qviolation(w, SIM_QV_OTHER, "LEASE of at most %u answered %u refs", q->req.max, n);
	for (uint32_t i = 0; i < n; i++) {
		if (proto_lease_reply_next(&r, &ref) != 0) {
			sim_violation(w, SIM_RULE_F, "queue client %d: a LEASE answer does not decode", q->idx);
			break;
		}
		w->ql = grow(w->ql, &w->capql, w->nql, sizeof *w->ql);
		struct sim_qlease *l = &w->ql[w->nql];
		/* The deadline is the master's wall clock.  The lease began
		 * after the request was sent, with (deadline - wall now) or
		 * more left, measured at the answer: a lower bound of its life
		 * in virtual time, whichever clock the master's expiry follows. */
		uint64_t left = ref.deadline_ms > wall ? ref.deadline_ms - wall : 0;
		*l = (struct sim_qlease){ .id = ref.lease_id, .gen = ref.gen, .size = ref.size,
					  .sample = sim_qsample_of(w, ref.key, ref.klen), .consumer = q->idx,
					  .node = sim_peer_index(ref.node_id), .answer = w->nqa,
					  .deadline = ref.deadline_ms,
					  .live_to = q->issued + (left < q->req.ttl_ms ? left : q->req.ttl_ms) };
		sim_qcheck_ref(w, &q->req, l, &ref);
		sim_trace(w, "q%d   lease %#llx: %.*s gen %#llx on %s, deadline +%llu", q->idx, (unsigned long long)l->id,
			  (int)ref.klen, (const char *)ref.key, (unsigned long long)l->gen, ref.node_id,
			  (unsigned long long)left);
		if (q->nheld < QC_HELD)
			q->held[q->nheld++] = (struct qheld){ .lease = w->nql, .ttl = q->req.ttl_ms };
		w->nql++;
		a->n++;
	}
	if (a->n == n && wire_r_end(&r) != 0)
		sim_violation(w, SIM_RULE_F, "queue client %d: a LEASE answer has bytes after its refs", q->idx);
	w->nqa++;
	w->n_q_leased += a->n;
	w->n_q_multi += a->n >= 2;
	q->idle = a->n == 0;
	sim_trace(w, "q%d LEASE %u/%u max %u ttl %llu sent t=%llu -> %zu refs", q->idx, q->req.part_i, q->req.part_n,
		  q->req.max, (unsigned long long)q->req.ttl_ms, (unsigned long long)q->issued, a->n);
	sim_qcheck_answer(w, a);
	q_end(q, 0);
	return 0;
}

static void send_lease(struct sim_qc *q)
{
	struct actor_msg *m = actor_msg_new(WIRE_LEASE);
	if (proto_lease_enc(m, &q->req) != 0)
		KVN_ASSERT(0);
	q_call(q, q->master, m, on_lease);
}

static void start_lease(struct sim_qc *q, uint32_t part_n, uint32_t max, uint64_t ttl)
{
	memset(&q->req, 0, sizeof q->req);
	q->req.part_n = part_n;
	q->req.part_i = (uint32_t)qr(q, part_n);
	q->req.max = max;
	q->req.ttl_ms = ttl;
	snprintf(q->req.holder, sizeof q->req.holder, "sim-q%d:%d", q->idx, 4242 + q->idx);
	q_start(q, QOP_LEASE);
}

/* ---- fetch ---- */

static int on_fetch(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	struct proto_result res;
	struct wire_r r;
	uint32_t n;
	(void)self;

	if (w->ending)
		return 0;
	q_done(q);
	if (q_retried(q, err))
		return 0;
	int rc = err ? err : reply->status;
	if (!rc && (proto_results_open(&r, reply->meta, reply->meta_len, &n) != 0 || n != 1 ||
		    proto_results_next(&r, &res) != 0 || wire_r_end(&r) != 0))
		rc = KVN_EPROTO;
	if (!rc)
		rc = res.status;
	if (!rc) {
		const struct sim_qlease *l = &w->ql[q->fetch.lease];
		const struct sim_qsample *s = &w->qs[l->sample];
		uint64_t len = reply->payload ? evbuffer_get_length(reply->payload) : 0;
		uint8_t *got = kvn_xmalloc(len ? len : 1), *want = kvn_xmalloc(l->size ? l->size : 1);
		if (len)
			evbuffer_copyout(reply->payload, got, len);
		sim_qvalue_fill(s->key, (size_t)s->klen, l->gen, want, l->size);
		if (res.gen != l->gen || len != l->size || memcmp(got, want, len) != 0)
			sim_violation(w, SIM_RULE_A,
				      "queue sample %s: GET of gen %#llx returned gen %#llx with %llu bytes %s (the value "
				      "has %llu)",
				      s->key, (unsigned long long)l->gen, (unsigned long long)res.gen,
				      (unsigned long long)len,
				      len == l->size && memcmp(got, want, len) == 0 ? "that match" : "that differ",
				      (unsigned long long)l->size);
		else
			w->n_q_fetched++;
		free(got);
		free(want);
	}
	q_end(q, rc);
	return 0;
}

static void send_fetch(struct sim_qc *q)
{
	const struct sim_qlease *l = &q->w->ql[q->fetch.lease];
	const struct sim_qsample *s = &q->w->qs[l->sample];
	q_call(q, q->peer[l->node], item_msg(WIRE_GET, s->key, (size_t)s->klen, l->gen, 0, 0, NULL), on_fetch);
}

/* ---- release, renew ---- */

static int on_lstat(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	struct wire_r r;
	uint32_t n;
	(void)self;

	if (w->ending)
		return 0;
	q_done(q);
	if (q_retried(q, err))
		return 0;
	int rc = err ? err : reply->status;
	if (!rc && (proto_lstat_open(&r, reply, &n) != 0 || n != q->ncalls))
		rc = KVN_EPROTO;
	if (rc) {
		q_end(q, rc);
		return 0;
	}
	uint64_t now = kvn_now_ms(), wall = kvn_wall_ms();
	for (size_t i = q->calls; i < q->calls + q->ncalls; i++) {
		struct sim_qcall *c = &w->qcalls[i];
		int32_t st;
		uint64_t dl;
		if (proto_lstat_next(&r, &st, &dl) != 0) {
			sim_violation(w, SIM_RULE_F, "queue client %d: a %s answer does not decode", q->idx,
				      op_name(q->op));
			break;
		}
		c->status = st;
		c->t_end = now;
		c->deadline = dl;
		sim_trace(w, "q%d %s%s lease %#llx (%s) sent t=%llu -> %s, deadline +%lld", q->idx, op_name(q->op),
			  c->flags & PROTO_RELEASE_RETURN ? " RETURN" : "", (unsigned long long)w->ql[c->lease].id,
			  w->ql[c->lease].sample >= 0 ? w->qs[w->ql[c->lease].sample].key : "?",
			  (unsigned long long)q->issued, st ? kvn_err_name(st) : "ok", dl ? (long long)(dl - wall) : 0ll);
		w->n_q_estate += st == KVN_ESTATE;
		if (st == 0 && c->kind == SIM_Q_RELEASE && (c->flags & PROTO_RELEASE_RETURN))
			w->n_q_returned++;
		else if (st == 0 && c->kind == SIM_Q_RELEASE) {
			w->n_q_consumed++;
			if (w->ql[c->lease].sample >= 0 && !w->qs[w->ql[c->lease].sample].t_consumed)
				w->qs[w->ql[c->lease].sample].t_consumed = now;
		}
		if (c->kind != SIM_Q_RENEW)
			continue;
		/* the holder keeps a renewed lease, forgets a dead one */
		for (int h = 0; h < q->nheld; h++)
			if (q->held[h].lease == c->lease && st != 0)
				q->held[h--] = q->held[--q->nheld];
		if (st == 0) {
			struct sim_qlease *l = &w->ql[c->lease];
			uint64_t left = dl > wall ? dl - wall : 0, to = q->issued + (left < c->ttl ? left : c->ttl);
			w->n_q_renewed++;
			if (to > l->live_to)
				l->live_to = to;
		}
	}
	if (!rc && wire_r_end(&r) != 0)
		sim_violation(w, SIM_RULE_F, "queue client %d: a %s answer has bytes after its statuses", q->idx,
			      op_name(q->op));
	q_end(q, 0);
	return 0;
}

static void send_ids(struct sim_qc *q)
{
	struct sim_world *w = q->w;
	struct actor_msg *m = actor_msg_new(q->op == QOP_RELEASE ? WIRE_RELEASE : WIRE_RENEW);
	struct wire_w ww;
	uint64_t now = kvn_now_ms();

	wire_w_init(&ww);
	if (q->op == QOP_RELEASE)
		proto_release_begin(&ww, w->qcalls[q->calls].flags, (uint32_t)q->ncalls);
	else
		proto_renew_begin(&ww, w->qcalls[q->calls].ttl, (uint32_t)q->ncalls);
	for (size_t i = q->calls; i < q->calls + q->ncalls; i++) {
		struct sim_qcall *c = &w->qcalls[i];
		proto_ids_add(&ww, w->ql[c->lease].id);
		if (!c->t_sent)
			c->t_sent = now;
		c->ambiguous |= q->sends > 0 || dup_net(w); /* q->sends: attempts before this one */
		if (c->kind == SIM_Q_RELEASE && !w->ql[c->lease].t_rel)
			w->ql[c->lease].t_rel = now;
	}
	if (wire_w_to_msg(&ww, m) != 0)
		KVN_ASSERT(0);
	q_call(q, q->master, m, on_lstat);
}

/* RELEASE (flags) or RENEW (ttl) of held[i], or of every held ref. */
static void start_ids(struct sim_qc *q, int op, int i, int all, uint8_t flags)
{
	struct sim_world *w = q->w;
	int kind = op == QOP_RELEASE ? SIM_Q_RELEASE : SIM_Q_RENEW;

	q->calls = w->nqcalls;
	q->ncalls = 0;
	for (int h = 0; h < q->nheld; h++) {
		if (!all && h != i)
			continue;
		w->qcalls = grow(w->qcalls, &w->capqcalls, w->nqcalls, sizeof *w->qcalls);
		w->qcalls[w->nqcalls++] = (struct sim_qcall){ .kind = kind, .consumer = q->idx,
							      .lease = q->held[h].lease, .flags = flags,
							      .ttl = q->held[h].ttl, .status = 1 };
		q->ncalls++;
	}
	/* One ttl per RENEW: the longest any of its leases had, which each
	 * keeps from then on.  A renew sets the deadline to ttl from now, so
	 * none ever shortens a lease: a lease's first deadline stays a lower
	 * bound of its life (sim_qcheck.c). */
	if (kind == SIM_Q_RENEW) {
		uint64_t ttl = 0;
		for (size_t c = q->calls; c < w->nqcalls; c++)
			ttl = w->qcalls[c].ttl > ttl ? w->qcalls[c].ttl : ttl;
		for (size_t c = q->calls; c < w->nqcalls; c++)
			w->qcalls[c].ttl = ttl;
		for (int h = 0; h < q->nheld; h++)
			if (all || h == i)
				q->held[h].ttl = ttl;
	}
	if (kind == SIM_Q_RELEASE) /* the holder lets go whatever the answer */
		for (int h = q->nheld; h-- > 0;)
			if (all || h == i)
				q->held[h] = q->held[--q->nheld];
	q_start(q, op);
}

/* ---- the workload ---- */

static void q_send(struct sim_qc *q)
{
	switch (q->op) {
	case QOP_PUT:
		send_put(q);
		break;
	case QOP_LEASE:
		send_lease(q);
		break;
	case QOP_FETCH:
		send_fetch(q);
		break;
	default:
		send_ids(q);
		break;
	}
}

static void start_fetch(struct sim_qc *q, int i)
{
	q->held[i].fetched = 1;
	q->fetch = q->held[i];
	const struct sim_qlease *l = &q->w->ql[q->fetch.lease];
	if (l->sample < 0 || l->node < 0) { /* reported already: nothing to fetch */
		q_next(q);
		return;
	}
	q_start(q, QOP_FETCH);
}

/* Something to do with a held ref. */
static void held_action(struct sim_qc *q)
{
	int i = (int)qr(q, (uint64_t)q->nheld);
	uint64_t r = qr(q, 100);

	if (!q->held[i].fetched && r < 40) {
		start_fetch(q, i);
	} else if (r < 70) {
		start_ids(q, QOP_RELEASE, i, qr(q, 3) == 0, 0);
	} else if (r < 78) {
		start_ids(q, QOP_RELEASE, i, 0, PROTO_RELEASE_RETURN);
	} else if (r < 90) {
		start_ids(q, QOP_RENEW, i, qr(q, 3) == 0, 0);
	} else {
		/* forgotten: its lease expires, its sample goes back */
		q->held[i] = q->held[--q->nheld];
		q->w->n_q_dropped++;
		q_next(q);
	}
}

/* After the heal: take everything, fetch some, release all. */
static void drain_step(struct sim_qc *q)
{
	struct sim_world *w = q->w;
	uint64_t now = kvn_now_ms();

	if (q->nheld) {
		if (!q->held[0].fetched && qr(q, 2))
			start_fetch(q, 0);
		else
			start_ids(q, QOP_RELEASE, 0, 1, 0);
		return;
	}
	if (now < w->t_qstop)
		start_lease(q, 1, QC_DRAIN_MAX, QC_DRAIN_TTL);
}

static void think_tick(struct actor *self, void *arg)
{
	struct sim_qc *q = arg;
	struct sim_world *w = q->w;
	(void)self;

	if (q->busy || w->ending || kvn_now_ms() + SIM_CALL_MS >= w->t_end)
		return;
	if (w->qdrain) {
		drain_step(q);
		return;
	}
	if (!w->workload_on)
		return;
	if (q->nheld && qr(q, 100) < 60) {
		held_action(q);
		return;
	}
	int64_t backlog = (int64_t)w->n_q_put - (int64_t)w->n_q_consumed;
	if (qr(q, 100) < (q->idx == 0 ? 70u : 20u) && backlog < QC_BACKLOG) {
		start_put(q);
		return;
	}
	uint32_t max = 1 + (uint32_t)qr(q, 4);
	if (q->nheld + (int)max <= QC_HELD)
		start_lease(q, 1 + (uint32_t)qr(q, 5), max, QC_TTL_MIN + qr(q, QC_TTL_SPAN));
	else
		held_action(q);
}

static void q_next(struct sim_qc *q)
{
	struct sim_world *w = q->w;
	if (w->ending)
		return;
	if (w->qdrain)
		actor_timer_arm(q->think, q->idle ? QC_IDLE_MS : 0);
	else if (w->workload_on)
		actor_timer_arm(q->think, (q->idle ? QC_IDLE_WORK_MS : QC_THINK_MIN_MS) + qr(q, QC_THINK_SPAN_MS));
}

void sim_qc_start(struct sim_qc *q, uint64_t delay_ms)
{
	if (!q->busy)
		actor_timer_arm(q->think, delay_ms);
}

int sim_qc_idle(const struct sim_qc *q)
{
	return !q->busy && q->nheld == 0;
}

void sim_qc_link(struct sim_qc *q, int peer, actor_id proxy)
{
	if (peer < 0)
		q->master = proxy;
	else
		q->peer[peer] = proxy;
}

static int qc_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m; /* nothing but replies is expected */
	return 0;
}

static void qc_fini(struct actor *self)
{
	free(actor_state(self));
}

static const struct actor_ops qc_ops = {
	.name = "sim-queue",
	.handle = qc_handle,
	.fini = qc_fini,
};

int sim_qc_new(struct sim_world *w, int idx, struct sim_qc **out)
{
	struct sim_qc *q = kvn_xcalloc(1, sizeof *q);
	int rc;

	q->w = w;
	q->idx = idx;
	q->rng = qmix(w->seed * 0x51A5EEDull + (uint64_t)idx);
	if ((rc = actor_spawn(w->loop, &qc_ops, q, 4096, &q->self)) != 0) {
		free(q);
		return rc;
	}
	q->think = actor_timer_new(q->self, think_tick, q);
	*out = q;
	return 0;
}

struct actor *sim_qc_actor(struct sim_qc *q)
{
	return q->self;
}
