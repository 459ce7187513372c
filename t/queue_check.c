/* t/queue_check.c: the checker of t/queue_prop's histories (queue_check.h).
 * Every rule is judged only on what the history proves: a lease counts as
 * live from the moment its answer arrived until the first release of it was
 * sent or its confirmed deadline (less a margin) passed, whichever came
 * first, and a LEASE call counts as granted somewhere between its request
 * and its answer; so a failure it reports is a failure of the system, never
 * of the timing. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "kvnode.h"
#include "queue_check.h"

/* A TAP diagnostic line (tap.h's tap_diag; that header is for one file). */
static void qdiag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void qdiag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

uint32_t qc_add_answer(struct qc_hist *h, const struct qc_answer *a, uint32_t n)
{
	if (h->nanswers == h->cap_answers) {
		h->cap_answers = h->cap_answers ? h->cap_answers * 2 : 1024;
		h->answers = realloc(h->answers, h->cap_answers * sizeof *h->answers);
	}
	while (h->nleases + n > h->cap_leases) {
		h->cap_leases = h->cap_leases ? h->cap_leases * 2 : 4096;
		h->leases = realloc(h->leases, h->cap_leases * sizeof *h->leases);
	}
	if (!h->answers || !h->leases)
		kvn_fatal("queue_check: out of memory");
	struct qc_answer *x = &h->answers[h->nanswers];
	*x = *a;
	x->first = h->nleases;
	x->n = n;
	for (uint32_t i = 0; i < n; i++) {
		struct qc_lease *l = &h->leases[h->nleases + i];
		memset(l, 0, sizeof *l);
		l->answer = h->nanswers;
		l->sample = UINT32_MAX;
		l->end_us = QC_NEVER;
		l->fetch_rc = 1;
	}
	h->nanswers++;
	h->nleases += n;
	return x->first;
}

void qc_free(struct qc_hist *h)
{
	free(h->leases);
	free(h->answers);
	h->leases = NULL;
	h->answers = NULL;
	h->nleases = h->cap_leases = h->nanswers = h->cap_answers = 0;
}

/* The moment from which lease l is no longer proven live. */
static uint64_t live_end(const struct qc_lease *l)
{
	uint64_t d = l->deadline_us > QC_MARGIN_US ? l->deadline_us - QC_MARGIN_US : 0;
	return l->end_us < d ? l->end_us : d;
}

/* An error a call may answer while the master restarts: says nothing. */
static int outage(int rc)
{
	return rc == KVN_ECONN || rc == KVN_ETIMEDOUT || rc == KVN_EPEERDOWN || rc == KVN_ENOPEER ||
	       rc == KVN_ECLOSED;
}

static const struct qc_hist *sort_h;

static int by_sample_then_answer(const void *a, const void *b)
{
	const struct qc_lease *x = &sort_h->leases[*(const uint32_t *)a], *y = &sort_h->leases[*(const uint32_t *)b];
	uint64_t tx = sort_h->answers[x->answer].t_ans, ty = sort_h->answers[y->answer].t_ans;
	if (x->sample != y->sample)
		return x->sample < y->sample ? -1 : 1;
	return tx < ty ? -1 : tx > ty;
}

static int by_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Per sample: live leases that overlap, and how often it was consumed.
 * ix[lo..hi) are the leases of one sample, in answer order. */
static void check_sample(const struct qc_hist *h, const uint32_t *ix, uint32_t lo, uint32_t hi, long *consumed,
			 struct qc_result *r)
{
	long n = 0;
	for (uint32_t b = lo; b < hi; b++) {
		const struct qc_lease *lb = &h->leases[ix[b]];
		const struct qc_answer *ab = &h->answers[lb->answer];
		const struct qc_lease *dbl = NULL;
		for (uint32_t a = lo; a < hi && !dbl; a++) {
			const struct qc_lease *la = &h->leases[ix[a]];
			/* a was surely live the whole time b's LEASE was in flight */
			if (a != b && ab->t_req >= h->answers[la->answer].t_ans && ab->t_ans <= live_end(la))
				dbl = la;
		}
		if (dbl && r->double_lease++ < 3)
			qdiag("double lease: sample %u: lease %llu (consumer %u) answered while lease %llu "
			      "(consumer %u) was live",
			      lb->sample, (unsigned long long)lb->lease_id, ab->consumer,
			      (unsigned long long)dbl->lease_id, h->answers[dbl->answer].consumer);
		if (lb->end == QE_CONSUMED) {
			n++;
		} else if (lb->end == QE_AMBIG_CONSUME) {
			/* the release's reply was lost: it consumed the sample
			 * unless the sample was handed out again after it */
			int again = 0;
			for (uint32_t a = lo; a < hi; a++)
				again |= a != b && h->answers[h->leases[ix[a]].answer].t_ans > lb->end_us;
			r->ambiguous++;
			if (!again) {
				n++;
				r->ambiguous_consumed++;
			}
		}
	}
	*consumed = n;
}

static void check_answers(const struct qc_hist *h, struct qc_result *r)
{
	for (uint32_t k = 0; k < h->nanswers; k++) {
		const struct qc_answer *a = &h->answers[k];
		int bad_order = 0;
		for (uint32_t i = 0; i < a->n; i++) {
			const struct qc_lease *li = &h->leases[a->first + i];
			if (!li->hash_ok)
				r->partition++;
			if (li->sample == UINT32_MAX)
				continue;
			for (uint32_t j = i + 1; j < a->n; j++) {
				const struct qc_lease *lj = &h->leases[a->first + j];
				if (lj->sample == UINT32_MAX)
					continue;
				if (lj->sample == li->sample) {
					r->double_lease++;
					continue;
				}
				const struct qc_sample *si = &h->samples[li->sample], *sj = &h->samples[lj->sample];
				/* both rows still in master.db: their commit_seq;
				 * or j's put returned before i's started: j is older */
				int by_seq = si->commit_seq > 0 && sj->commit_seq > 0 && si->commit_seq >= sj->commit_seq;
				int by_time = si->put == QP_OK && sj->put == QP_OK && sj->t1 < si->t0;
				if ((by_seq || by_time) && !bad_order && r->order < 3)
					qdiag("  refs %u and %u: sample %u (commit_seq %lld, put %llu..%llu us) before "
					      "sample %u (commit_seq %lld, put %llu..%llu us)",
					      i, j, li->sample, (long long)si->commit_seq, (unsigned long long)si->t0,
					      (unsigned long long)si->t1, lj->sample, (long long)sj->commit_seq,
					      (unsigned long long)sj->t0, (unsigned long long)sj->t1);
				bad_order |= by_seq || by_time;
			}
		}
		if (bad_order) {
			r->order++;
			if (r->order <= 3)
				qdiag("answer %u (consumer %u, partition %u/%u, %u refs) is not in commit order", k,
					 a->consumer, a->part_i, a->part_n, a->n);
		}
	}
}

static void check_refs(const struct qc_hist *h, struct qc_result *r)
{
	uint64_t *ids = kvn_xcalloc(h->nleases + 1, sizeof *ids);
	for (uint32_t i = 0; i < h->nleases; i++) {
		const struct qc_lease *l = &h->leases[i];
		ids[i] = l->lease_id;
		if (l->lease_id == 0 || l->sample == UINT32_MAX) {
			r->bad_ref++;
			continue;
		}
		const struct qc_sample *s = &h->samples[l->sample];
		if ((s->put == QP_OK && l->gen != s->gen) || l->size != s->size || l->gen == 0)
			r->bad_ref++;
		if (l->fetch_rc == KVN_EPROTO ||
		    (l->fetch_rc != 0 && l->fetch_rc != 1 && !outage(l->fetch_rc) && l->fetch_us < live_end(l)))
			r->fetch++;
		if (l->estate_us && l->estate_us + QC_MARGIN_US < l->deadline_us)
			r->estate_live++;
		r->errors += l->end == QE_ERROR;
	}
	qsort(ids, h->nleases, sizeof *ids, by_u64);
	for (uint32_t i = 1; i < h->nleases; i++)
		r->bad_ref += ids[i] != 0 && ids[i] == ids[i - 1];
	free(ids);
}

void qc_check(const struct qc_hist *h, struct qc_result *r)
{
	uint32_t *ix = kvn_xcalloc(h->nleases + 1, sizeof *ix);
	long *consumed = kvn_xcalloc(h->nsamples + 1, sizeof *consumed);

	memset(r, 0, sizeof *r);
	for (uint32_t i = 0; i < h->nleases; i++)
		ix[i] = i;
	sort_h = h;
	qsort(ix, h->nleases, sizeof *ix, by_sample_then_answer);
	for (uint32_t lo = 0, hi; lo < h->nleases; lo = hi) {
		uint32_t s = h->leases[ix[lo]].sample;
		for (hi = lo + 1; hi < h->nleases && h->leases[ix[hi]].sample == s; hi++)
			;
		if (s != UINT32_MAX)
			check_sample(h, ix, lo, hi, &consumed[s], r);
	}
	for (uint32_t s = 0; s < h->nsamples; s++) {
		const struct qc_sample *x = &h->samples[s];
		r->put_ok += x->put == QP_OK;
		r->put_maybe += x->put == QP_MAYBE;
		r->consumed += consumed[s];
		if (consumed[s] > 1) {
			if (r->twice++ < 3)
				qdiag("sample %u consumed %ld times", s, consumed[s]);
		} else if (consumed[s] == 0 && x->put == QP_OK) {
			if (r->lost++ < 3)
				qdiag("sample %u (put answered 0, gen %llu) never consumed", s,
					 (unsigned long long)x->gen);
		}
	}
	check_answers(h, r);
	check_refs(h, r);
	free(ix);
	free(consumed);
}

long qc_failures(const struct qc_result *r)
{
	return r->partition + r->bad_ref + r->double_lease + r->lost + r->twice + r->order + r->fetch +
	       r->estate_live + r->errors;
}

void qc_report(const struct qc_result *r)
{
	qdiag("puts: %ld answered 0, %ld failed; consumed %ld; releases whose reply was lost: %ld "
		 "(%ld of them consumed)",
		 r->put_ok, r->put_maybe, r->consumed, r->ambiguous, r->ambiguous_consumed);
	qdiag("failures: partition %ld, bad ref %ld, double lease %ld, lost %ld, consumed twice %ld, "
		 "order %ld, fetch %ld, ESTATE before the deadline %ld, other release errors %ld",
		 r->partition, r->bad_ref, r->double_lease, r->lost, r->twice, r->order, r->fetch, r->estate_live,
		 r->errors);
}
