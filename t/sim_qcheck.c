/*
 * t/sim_qcheck.c: rule h, the consumer queue (issue 15), judged on what
 * sim_queue.c recorded.  At each LEASE answer: its refs are in commit order.
 * After the run: no sample ever had two live leases; a RELEASE or RENEW
 * answered KVN_ESTATE named a lease that was not surely live; and after the
 * drain every committed sample was consumed exactly once or is reported
 * lost by the master, and no peer still holds a sample the master forgot.
 * Each ref is checked as it arrives (sim_qcheck_ref, _answer).
 * Like sim_check.c it reasons only with what a client can know plus the
 * faults the schedule injected: a lease is "surely live" from its answer
 * until a lower bound of its deadline (sim_queue.c), unless a RELEASE of it
 * was sent or the sample's node crashed (deleting the object ends a lease).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#include "master/master.h"
#include "peer/peer.h"
#include "net/proto.h"
#include "base/base.h"

void sim_qviolation(struct sim_world *w, int kind, const char *fmt, ...)
{
	char msg[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!w->qviol[kind]++)
		snprintf(w->qfirst[kind], sizeof w->qfirst[kind], "%s", msg);
	sim_violation(w, SIM_RULE_H, "%s", msg);
}

/* A crash of peer `node` within [a, b]. */
static int peer_crashed_in(const struct sim_world *w, int node, uint64_t a, uint64_t b)
{
	for (int i = 0; i < w->ncrashes; i++)
		if (w->crashes[i].node == node && w->crashes[i].t >= a && w->crashes[i].t <= b)
			return 1;
	return 0;
}

int sim_qsample_of(const struct sim_world *w, const void *key, size_t klen)
{
	for (size_t i = w->nqs; i-- > 0;)
		if ((size_t)w->qs[i].klen == klen && memcmp(w->qs[i].key, key, klen) == 0)
			return (int)i;
	return -1;
}

/* ---- each ref as it arrives: a sample a producer put, with its gen,
 * size and node, of the partition asked for ---- */

void sim_qcheck_ref(struct sim_world *w, const struct proto_lease_req *rq, const struct sim_qlease *l,
		    const struct proto_lease_ref *ref)
{
	char k[SIM_QKEY_MAX + 8];

	snprintf(k, sizeof k, "%.*s", (int)(ref->klen < SIM_QKEY_MAX ? ref->klen : SIM_QKEY_MAX), (const char *)ref->key);
	if (l->id == 0)
		sim_qviolation(w, SIM_QV_OTHER, "LEASE answered lease id 0 for %s", k);
	if (l->sample < 0) {
		sim_qviolation(w, SIM_QV_OTHER, "LEASE by queue client %d answered %s, which no producer put", l->consumer,
			       k);
		return;
	}
	const struct sim_qsample *s = &w->qs[l->sample];
	if (!s->t_sent || s->gen != l->gen || s->size != l->size || s->node != l->node)
		sim_qviolation(w, SIM_QV_OTHER,
			       "LEASE answered %s gen %#llx size %llu on '%s'; its put was gen %#llx size %llu on p%d%s", k,
			       (unsigned long long)l->gen, (unsigned long long)l->size, ref->node_id,
			       (unsigned long long)s->gen, (unsigned long long)s->size, s->node + 1,
			       s->t_sent ? "" : " (never sent to a peer)");
	if (kvn_hash64(ref->key, ref->klen) % rq->part_n != rq->part_i)
		sim_qviolation(w, SIM_QV_OTHER, "LEASE of partition %u/%u answered %s, of partition %llu", rq->part_i,
			       rq->part_n, k, (unsigned long long)(kvn_hash64(ref->key, ref->klen) % rq->part_n));
}

/* Peer `node` or the master out of touch at some time within [a, b], or
 * not long before a (a node cut off is declared dead a node timeout later
 * and re-attaches after a backoff: its full sync may still be due): cut
 * off, down, or crashed (a crash is followed by a re-attach and a full
 * sync).  Such a node may miss a DROP_GEN and keep a consumed sample. */
#define TROUBLE_SLACK_MS 1500

static int trouble_in(const struct sim_world *w, int node, uint64_t a, uint64_t b)
{
	a = a > TROUBLE_SLACK_MS ? a - TROUBLE_SLACK_MS : 0;
	for (int i = 0; i < w->ncrashes; i++) {
		const struct sim_crash *c = &w->crashes[i];
		if (c->t > b || (c->node != node && c->node != -1))
			continue;
		uint64_t up = 0; /* when the next incarnation started (0: never) */
		if (c->inc + 1 < SIM_MAX_CRASHES + 2)
			up = c->node >= 0 ? w->boot_t[c->node][c->inc + 1] : w->master_boot_t[c->inc + 1];
		if (c->t >= a || !up || up >= a)
			return 1;
	}
	for (int i = 0; i < w->ncuts; i++) {
		const struct sim_cut *c = &w->cuts[i];
		if ((c->node == SIM_NODE_PEER(node) || c->node == SIM_NODE_MASTER) && c->on <= b &&
		    (!c->off || c->off >= a))
			return 1;
	}
	return 0;
}

/* ---- each LEASE answer is in commit order ---- */

struct order_ctx {
	const struct sim_world *w;
	const struct sim_qlease *refs;
	size_t n;
	uint64_t t_sent;
	uint64_t order[PROTO_LEASE_MAX];
};

static void on_order(void *arg, const struct master_qsample *s)
{
	struct order_ctx *o = arg;
	for (size_t i = 0; i < o->n; i++) {
		const struct sim_qlease *l = &o->refs[i];
		if (l->sample < 0 || l->gen != s->gen)
			continue;
		const struct sim_qsample *q = &o->w->qs[l->sample];
		if (q->t_consumed && q->t_consumed <= o->t_sent)
			continue; /* back after it was consumed: SIM_QV_BACK */
		if ((size_t)q->klen == s->klen && memcmp(q->key, s->key, s->klen) == 0)
			o->order[i] = s->order;
	}
}

void sim_qcheck_answer(struct sim_world *w, const struct sim_qanswer *a)
{
	const struct sim_qlease *refs = &w->ql[a->first];

	if (a->n < 2)
		return;
	/* Producer side: a put acknowledged before another was sent was
	 * committed first (a durable put is answered after its COMMIT), and
	 * keeps its place: it must not come later in an answer.  A crash of
	 * its node may have taken it out and back in: not judged then; nor a
	 * sample consumed already (leased again: SIM_QV_BACK, once back in the
	 * queue it has a new place). */
	for (size_t j = 1; j < a->n; j++) {
		if (refs[j].sample < 0)
			continue;
		const struct sim_qsample *x = &w->qs[refs[j].sample];
		if (x->status != 0 || !x->t_end || peer_crashed_in(w, x->node, x->t_sent, a->t_reply) ||
		    (x->t_consumed && x->t_consumed <= a->t_sent))
			continue;
		/* its node out of touch since: the sample left the queue and came
		 * back at its tail with the node's full sync (SIM_QV_BACK) */
		int back = trouble_in(w, x->node, x->t_end, a->t_reply);
		for (size_t i = 0; i < j; i++) {
			if (refs[i].sample < 0 || (w->qs[refs[i].sample].t_consumed &&
						   w->qs[refs[i].sample].t_consumed <= a->t_sent))
				continue;
			const struct sim_qsample *y = &w->qs[refs[i].sample];
			if (y->t_sent && x->t_end < y->t_sent)
				sim_qviolation(w, back ? SIM_QV_BACK : SIM_QV_ORDER,
					      "LEASE answer to queue client %d at t=%llu: %s (put acknowledged at t=%llu) "
					      "comes after %s (put sent at t=%llu): not in commit order%s",
					      a->consumer, (unsigned long long)a->t_reply, x->key,
					      (unsigned long long)x->t_end, y->key, (unsigned long long)y->t_sent,
					      back ? " (its node was cut off or crashed since its put)" : "");
		}
	}
	/* The master's own order, while the master that answered still runs. */
	if (!w->master_up || w->master_inc != a->master_inc || a->n > PROTO_LEASE_MAX)
		return;
	struct order_ctx *o = kvn_xcalloc(1, sizeof *o);
	o->w = w;
	o->refs = refs;
	o->n = a->n;
	o->t_sent = a->t_sent;
	master_queue_dump(w->master, on_order, o);
	for (size_t j = 1; j < a->n; j++)
		for (size_t i = 0; i < j; i++)
			if (o->order[i] && o->order[j] && o->order[i] > o->order[j]) {
				sim_qviolation(w, SIM_QV_ORDER,
					      "LEASE answer to queue client %d at t=%llu: ref %zu (%s, order %llu) comes "
					      "before ref %zu (%s, order %llu): not in the master's commit order",
					      a->consumer, (unsigned long long)a->t_reply, i,
					      w->qs[refs[i].sample].key, (unsigned long long)o->order[i], j,
					      w->qs[refs[j].sample].key, (unsigned long long)o->order[j]);
				i = j = a->n; /* one report per answer */
			}
	free(o);
}

/* ---- after the run ---- */

static int by_sample(const void *pa, const void *pb, void *arg)
{
	const struct sim_world *w = arg;
	const struct sim_qlease *a = &w->ql[*(const size_t *)pa], *b = &w->ql[*(const size_t *)pb];
	if (a->sample != b->sample)
		return a->sample < b->sample ? -1 : 1;
	uint64_t ta = w->qa[a->answer].t_reply, tb = w->qa[b->answer].t_reply;
	return ta < tb ? -1 : ta > tb;
}

/* No sample ever has two live leases: L2 was asked for after L1's answer
 * and answered while L1 was surely live (no RELEASE of L1 sent, its
 * deadline's lower bound not reached, its node did not crash).  And a
 * consumed sample is never leased again. */
static void check_two_leases(struct sim_world *w)
{
	size_t *ix = kvn_xmalloc((w->nql ? w->nql : 1) * sizeof *ix);
	uint64_t *consumed = kvn_xcalloc(w->nql ? w->nql : 1, sizeof *consumed);
	uint64_t *cons_sent = kvn_xcalloc(w->nql ? w->nql : 1, sizeof *cons_sent);
	int reported = 0;

	for (size_t i = 0; i < w->nql; i++)
		ix[i] = i;
	for (size_t i = 0; i < w->nqcalls; i++) {
		const struct sim_qcall *c = &w->qcalls[i];
		if (c->kind == SIM_Q_RELEASE && !(c->flags & PROTO_RELEASE_RETURN) && c->status == 0) {
			consumed[c->lease] = c->t_end;
			cons_sent[c->lease] = c->t_sent;
		}
	}
	qsort_r(ix, w->nql, sizeof *ix, by_sample, w);
	for (size_t b = 0; b < w->nql && reported < 4; b++) {
		const struct sim_qlease *l2 = &w->ql[ix[b]];
		const struct sim_qanswer *a2 = &w->qa[l2->answer];
		if (l2->sample < 0)
			continue;
		for (size_t c = b; c-- > 0 && w->ql[ix[c]].sample == l2->sample;) {
			const struct sim_qlease *l1 = &w->ql[ix[c]];
			const struct sim_qanswer *a1 = &w->qa[l1->answer];
			const struct sim_qsample *s = &w->qs[l1->sample];
			if (l1->id == l2->id || l1->gen != l2->gen || a1->t_reply > a2->t_sent)
				continue;
			if (consumed[ix[c]] && consumed[ix[c]] < a2->t_sent) {
				int back = trouble_in(w, s->node, cons_sent[ix[c]], a2->t_reply);
				sim_qviolation(w, back ? SIM_QV_BACK : SIM_QV_TWICE,
					       "%s gen %#llx on p%d: consumed by lease %#llx of queue client %d (RELEASE "
					       "answered t=%llu), then leased again as %#llx to queue client %d (asked "
					       "t=%llu)%s",
					       s->key, (unsigned long long)s->gen, s->node + 1, (unsigned long long)l1->id,
					       l1->consumer, (unsigned long long)consumed[ix[c]], (unsigned long long)l2->id,
					       l2->consumer, (unsigned long long)a2->t_sent,
					       back ? "; its node or the master was cut off or crashed in between" : "");
				reported++;
				break;
			}
			if (a2->t_reply >= l1->live_to || (l1->t_rel && l1->t_rel <= a2->t_reply) ||
			    peer_crashed_in(w, s->node, a1->t_sent, a2->t_reply))
				continue;
			sim_qviolation(w, SIM_QV_TWICE,
				      "%s gen %#llx: lease %#llx to queue client %d (answered t=%llu, live until t>=%llu, "
				      "no release sent) and lease %#llx to queue client %d (asked t=%llu, answered "
				      "t=%llu, partition %u/%u): two live leases",
				      s->key, (unsigned long long)s->gen, (unsigned long long)l1->id, l1->consumer,
				      (unsigned long long)a1->t_reply, (unsigned long long)l1->live_to,
				      (unsigned long long)l2->id, l2->consumer, (unsigned long long)a2->t_sent,
				      (unsigned long long)a2->t_reply, a2->part_i, a2->part_n);
			reported++;
			break;
		}
	}
	free(consumed);
	free(cons_sent);
	free(ix);
}

/* A RELEASE or RENEW answered KVN_ESTATE for a lease that was surely live
 * at the master then: nothing may refuse a live lease. */
static void check_estate(struct sim_world *w)
{
	int reported = 0;

	for (size_t i = 0; i < w->nqcalls && reported < 4; i++) {
		const struct sim_qcall *c = &w->qcalls[i];
		if (c->status != KVN_ESTATE || c->ambiguous)
			continue;
		const struct sim_qlease *l = &w->ql[c->lease];
		if (l->sample < 0 || c->t_end >= l->live_to || (l->t_rel && l->t_rel < c->t_sent))
			continue;
		const struct sim_qsample *s = &w->qs[l->sample];
		if (peer_crashed_in(w, s->node, w->qa[l->answer].t_sent, c->t_end))
			continue;
		sim_qviolation(w, SIM_QV_ESTATE,
			      "%s gen %#llx: %s of lease %#llx by queue client %d (sent t=%llu, answered t=%llu) "
			      "refused with KVN_ESTATE, but the lease lives until t>=%llu and was not released",
			      s->key, (unsigned long long)s->gen, c->kind == SIM_Q_RELEASE ? "RELEASE" : "RENEW",
			      (unsigned long long)l->id, c->consumer, (unsigned long long)c->t_sent,
			      (unsigned long long)c->t_end, (unsigned long long)l->live_to);
		reported++;
	}
}

/* What became of each sample: consumed (RELEASE without RETURN answered 0)
 * by how many leases, maybe consumed (such a RELEASE whose outcome is
 * unknown), and what the master's queue says at the end. */
struct fate {
	int consumed, maybe, in_dump, lost;
	uint64_t ids[2], lease_id, deadline, t_consumed, t_first; /* t_first: the first consuming RELEASE sent */
};

static void on_final(void *arg, const struct master_qsample *s)
{
	struct sim_world *w = ((void **)arg)[0];
	struct fate *f = ((void **)arg)[1];
	int i = sim_qsample_of(w, s->key, s->klen);
	if (i < 0 || w->qs[i].gen != s->gen) {
		sim_qviolation(w, SIM_QV_OTHER, "the master's queue holds a sample of %zu bytes of key, gen %#llx, that no "
					     "producer put",
			      s->klen, (unsigned long long)s->gen);
		return;
	}
	f[i].in_dump = 1;
	f[i].lost = s->lost;
	f[i].lease_id = s->lease_id;
	f[i].deadline = s->deadline_ms;
}

struct held_ctx {
	struct sim_world *w;
	int peer;
	const struct fate *f;
};

/* A peer still holding a consumed sample: its DROP_GEN never took. */
static void on_peer_q(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct held_ctx *h = arg;
	(void)size;
	if (!sim_qkey(key, klen))
		return;
	int i = sim_qsample_of(h->w, key, klen);
	if (i >= 0 && h->w->qs[i].gen == gen && h->f[i].in_dump)
		return;
	sim_qviolation(h->w, SIM_QV_OTHER, "p%d still holds %.*s gen %#llx, which the master's queue no longer has%s",
		      h->peer + 1, (int)klen, (const char *)key, (unsigned long long)gen,
		      i >= 0 && h->f[i].consumed ? " (consumed)" : "");
}

static void check_final(struct sim_world *w)
{
	struct fate *f = kvn_xcalloc(w->nqs ? w->nqs : 1, sizeof *f);
	void *ctx[2] = { w, f };
	int reported = 0;

	for (size_t i = 0; i < w->nqcalls; i++) {
		const struct sim_qcall *c = &w->qcalls[i];
		const struct sim_qlease *l = &w->ql[c->lease];
		if (c->kind != SIM_Q_RELEASE || (c->flags & PROTO_RELEASE_RETURN) || l->sample < 0)
			continue;
		struct fate *x = &f[l->sample];
		if (c->status == 0) {
			if (x->consumed < 2)
				x->ids[x->consumed] = l->id;
			if (!x->consumed || c->t_sent < x->t_first)
				x->t_first = c->t_sent;
			x->consumed++;
			if (c->t_end > x->t_consumed)
				x->t_consumed = c->t_end;
		} else if (c->status != KVN_ESTATE || c->ambiguous) {
			x->maybe = 1;
		}
	}
	master_queue_dump(w->master, on_final, ctx);
	for (size_t i = 0; i < w->nqs && reported < 6; i++) {
		const struct sim_qsample *s = &w->qs[i];
		struct fate *x = &f[i];
		if (x->consumed > 1) {
			int back = trouble_in(w, s->node, x->t_first, x->t_consumed);
			sim_qviolation(w, back ? SIM_QV_BACK : SIM_QV_TWICE,
				       "%s gen %#llx on p%d consumed twice: by leases %#llx and %#llx%s", s->key,
				       (unsigned long long)s->gen, s->node + 1, (unsigned long long)x->ids[0],
				       (unsigned long long)x->ids[1],
				       back ? " (its node or the master was cut off or crashed in between)" : "");
			reported++;
		}
		if (x->in_dump && x->lost) {
			w->n_q_lost++;
			/* after the heal every node is up and re-synced: only a
			 * crash (DRAM lost) can have taken a sample from it */
			if (!peer_crashed_in(w, s->node, s->t_sent ? s->t_sent : s->t_start, UINT64_MAX)) {
				sim_qviolation(w, SIM_QV_LEFT,
					       "%s gen %#llx (put %s at t=%llu on p%d): reported lost after the drain, though "
					       "p%d never crashed since",
					       s->key, (unsigned long long)s->gen,
					       s->status == 0 ? "acknowledged" : "unacknowledged", (unsigned long long)s->t_end,
					       s->node + 1, s->node + 1);
				reported++;
			}
			if (x->consumed) {
				sim_qviolation(w,
					       trouble_in(w, s->node, x->t_first, w->t_end) ? SIM_QV_BACK : SIM_QV_OTHER,
					       "%s gen %#llx: consumed at t=%llu, yet the queue still has it (lost)",
					      s->key, (unsigned long long)s->gen, (unsigned long long)x->t_consumed);
				reported++;
			}
		} else if (x->in_dump) {
			sim_qviolation(w, SIM_QV_LEFT,
				      "%s gen %#llx (put %s at t=%llu on p%d): after the drain still in the queue, not lost, "
				      "%s%s",
				      s->key, (unsigned long long)s->gen, s->status == 0 ? "acknowledged" : "unacknowledged",
				      (unsigned long long)s->t_end, s->node + 1,
				      x->lease_id ? "leased" : "not leased",
				      x->consumed ? ", though consumed" : "");
			reported++;
		} else if (s->status == 0 && !x->consumed && !x->maybe) {
			sim_qviolation(w, SIM_QV_LEFT,
				      "%s gen %#llx (put acknowledged at t=%llu on p%d): gone from the queue, neither "
				      "consumed nor reported lost",
				      s->key, (unsigned long long)s->gen, (unsigned long long)s->t_end, s->node + 1);
			reported++;
		}
	}
	for (int p = 0; p < SIM_PEERS; p++) {
		struct held_ctx h = { w, p, f };
		if (w->peer_up[p])
			peer_dump(w->peers[p], on_peer_q, &h);
	}
	free(f);
}

void sim_qcheck(struct sim_world *w)
{
	if (!w->master_up)
		return; /* rule f reported it */
	check_two_leases(w);
	check_estate(w);
	check_final(w);
}
