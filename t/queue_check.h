/* t/queue_check.h: the history of a consumer-queue run (t/queue_prop) and
 * the checker that judges it.  The history is what producers and consumers
 * saw from the outside (wall-clock times around each call, each LEASE
 * answer, each release's outcome) plus each sample's commit_seq read from
 * master.db at the end; the checker needs nothing from inside kvnode, so
 * it can also be fed made-up histories (t/queue_prop's "checker" case). */
#ifndef KVN_T_QUEUE_CHECK_H
#define KVN_T_QUEUE_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Clock granularity and skew allowance: the master's deadlines are wall
 * milliseconds, these are wall microseconds of this process. */
#define QC_MARGIN_US 20000ull
#define QC_NEVER UINT64_MAX

enum qc_put {
	QP_NONE = 0, /* never attempted */
	QP_OK,       /* the put answered 0: the sample must be consumed exactly once */
	QP_MAYBE,    /* the put failed: it may or may not have been committed (at most once) */
};

struct qc_sample {
	uint8_t put;        /* enum qc_put */
	uint8_t retain;     /* put with KVN_PUT_RETAIN */
	uint64_t gen;       /* QP_OK: the generation the put answered */
	uint64_t size;      /* value bytes */
	uint64_t t0, t1;    /* wall us before and after the put call */
	int64_t commit_seq; /* its row in master.db at the end; 0: no row */
};

enum qc_end {
	QE_NONE = 0,      /* no release sent: left to expire */
	QE_CONSUMED,      /* a release (not RETURN) answered 0, or a retry answered
			   * KVN_ESTATE while the lease was still live */
	QE_RETURNED,      /* RETURN answered 0 */
	QE_ESTATE,        /* the first release answered KVN_ESTATE: not consumed */
	QE_AMBIG_CONSUME, /* the release's reply was lost and its retry came after the
			   * deadline: consumed or not, the rest of the history tells */
	QE_AMBIG_RETURN,  /* a RETURN whose reply was lost: not consumed either way */
	QE_ERROR,         /* any other answer (KVN_EDB, KVN_EINVAL, ...) */
};

/* One ref of one LEASE answer. */
struct qc_lease {
	uint32_t sample;      /* index into samples; UINT32_MAX: a key no producer put */
	uint32_t answer;      /* index into answers */
	uint64_t lease_id, gen, size;
	uint64_t deadline_us; /* the latest deadline the master confirmed (LEASE, or a RENEW that answered 0) */
	uint64_t end_us;      /* wall us the first release of it was sent; QC_NEVER: none */
	uint64_t estate_us;   /* a release answered KVN_ESTATE to the first attempt at this time; 0: no */
	uint8_t end;          /* enum qc_end */
	uint8_t hash_ok;      /* kvn_hash64(key) % part_n == part_i */
	int fetch_rc;         /* kvn_get_gen's answer (KVN_EPROTO: wrong bytes); 1: not fetched */
	uint64_t fetch_us;    /* wall us after the fetch */
};

struct qc_answer {
	uint32_t consumer, part_i, part_n;
	uint64_t t_req, t_ans; /* wall us around the LEASE call */
	uint32_t first, n;     /* its refs: leases[first .. first + n) in answer order */
};

struct qc_hist {
	struct qc_sample *samples;
	uint32_t nsamples;
	struct qc_lease *leases;
	uint32_t nleases, cap_leases;
	struct qc_answer *answers;
	uint32_t nanswers, cap_answers;
};

/* Failures per check (0 everywhere in a correct run), and what was seen. */
struct qc_result {
	long partition;    /* a ref outside the answer's partition */
	long bad_ref;      /* wrong gen or size, lease id 0 or repeated, unknown key */
	long double_lease; /* a LEASE answer while another lease of the sample was live */
	long lost;         /* a put that succeeded, never consumed */
	long twice;        /* a sample consumed more than once */
	long order;        /* an answer not in commit order */
	long fetch;        /* a fetch of a live lease failed or gave wrong bytes */
	long estate_live;  /* a first release answered KVN_ESTATE before the lease's deadline */
	long errors;       /* releases answered something else than 0 / KVN_ESTATE / outage */
	/* seen */
	long put_ok, put_maybe, consumed, ambiguous, ambiguous_consumed;
};

/* Append an answer with n refs; returns the index of its first lease
 * (zeroed, end_us QC_NEVER, fetch_rc 1).  Not thread-safe. */
uint32_t qc_add_answer(struct qc_hist *h, const struct qc_answer *a, uint32_t n);
void qc_free(struct qc_hist *h);
void qc_check(const struct qc_hist *h, struct qc_result *r);
/* One line per failure kind with its count (tap_diag), plus what was seen. */
void qc_report(const struct qc_result *r);
long qc_failures(const struct qc_result *r);

#endif
