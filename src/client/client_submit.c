/*
 * client_submit: submissions (kvn_submit_get/put/exists), kvn_fd, kvn_reap
 * and their drain in kvn_close.  A client that submits gets a progress
 * thread that owns a second, internal client opened from a copy of the
 * same config: the thread takes submissions from a queue, runs the
 * ordinary synchronous batch calls on its own client (so it needs no
 * change to the request machinery and shares nothing with the caller's
 * connections or event loop), and posts the result to a completion queue
 * and an eventfd.  The caller's client is touched only on the caller's
 * thread; the two threads share only struct client_subq, under its mutex.
 *
 * The eventfd's counter is non-zero exactly while the completion queue is
 * not empty: the thread posts and kvn_reap clears it under the mutex.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"

/* kvn_close's margin past the last submission's deadline: the batch calls
 * return by their deadlines, so this is only waited for if that broke */
#define SUB_SLACK_MS 2000

struct client_sub {
	TAILQ_ENTRY(client_sub) link;
	uint64_t id;
	int op; /* enum kvn_op */
	unsigned flags;
	struct kvn_item *items;
	size_t n;
	uint64_t deadline_ms;
	int status;
};
TAILQ_HEAD(client_sub_q, client_sub);

struct client_subq {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the thread waits for work; kvn_close for its end */
	int efd;
	/* under mu */
	struct client_sub_q todo, done;
	uint32_t nout;   /* submitted, not reaped: bounded by KVN_SUBMIT_MAX */
	uint64_t last_deadline_ms;
	int started, stop, exited;
	int orphan; /* kvn_close gave up waiting: the thread frees all this */
	/* the caller's thread only */
	uint64_t next_id;
	pthread_t thread;
	/* the progress thread only */
	struct kvn_conf conf; /* the copy the internal client is opened from */
	/* the caller's connector (an embedded client's in-process links), with
	 * a reference of its own; connect NULL: TCP */
	struct client_connector cx;
	struct kvn_client *inner;
	/* under mu: the internal client's counters after its last call, so
	 * kvn_counter of the caller's client includes its submissions' */
	struct client_stats stats;
};

static void subq_free(struct client_subq *q)
{
	struct client_sub *s;

	while ((s = TAILQ_FIRST(&q->todo))) {
		TAILQ_REMOVE(&q->todo, s, link);
		free(s);
	}
	while ((s = TAILQ_FIRST(&q->done))) {
		TAILQ_REMOVE(&q->done, s, link);
		free(s);
	}
	if (q->efd >= 0)
		close(q->efd);
	kvn_conf_fini(&q->conf);
	if (q->cx.connect && q->cx.release)
		q->cx.release(q->cx.arg);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* The client's submission state, created on first use (kvn_fd or a
 * submit); no thread yet.  NULL when no eventfd can be had. */
static struct client_subq *subq_get(struct kvn_client *c)
{
	struct client_subq *q = c->sub;
	pthread_condattr_t ca;

	if (q)
		return q;
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0) {
		client_set_detail(c, "eventfd: %s", strerror(errno));
		return NULL;
	}
	q = kvn_xcalloc(1, sizeof *q);
	q->efd = efd;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	TAILQ_INIT(&q->todo);
	TAILQ_INIT(&q->done);
	kvn_conf_copy(&q->conf, &c->conf);
	if (c->cx.connect) {
		KVN_ASSERT(c->cx.ref);
		q->cx = c->cx;
		q->cx.ref(q->cx.arg);
	}
	/* each batch gets its own remaining time as client.timeout (run_one);
	 * one attempt's limit stays what the caller's client uses */
	q->conf.client_attempt_timeout = client_attempt_ms(c);
	c->sub = q;
	return q;
}

static void fail_items(struct client_sub *s, int rc)
{
	for (size_t i = 0; i < s->n; i++) {
		s->items[i].status = rc;
		s->items[i].exists = 0;
	}
	s->status = rc;
}

/* On the progress thread: run one submission on the internal client. */
static void run_one(struct client_subq *q, struct client_sub *s)
{
	uint64_t now = kvn_now_ms();
	int rc;

	if (s->n == 0) {
		s->status = 0;
		return;
	}
	if (now >= s->deadline_ms) {
		fail_items(s, KVN_ETIMEDOUT);
		return;
	}
	if (!q->inner) {
		/* opened on first need (and again after a failed open): its
		 * connect counts against this submission's deadline */
		struct kvn_conf conf;
		kvn_conf_copy(&conf, &q->conf);
		conf.client_timeout = s->deadline_ms - now;
		if (q->cx.connect)
			q->cx.ref(q->cx.arg); /* the inner client's, released by its free */
		rc = q->cx.connect ? client_connect_with(&conf, &q->cx, &q->inner) : client_connect_conf(&conf, &q->inner);
		if (rc != 0) {
			q->inner = NULL;
			fail_items(s, rc);
			return;
		}
		now = kvn_now_ms();
		if (now >= s->deadline_ms) {
			fail_items(s, KVN_ETIMEDOUT);
			return;
		}
	}
	/* the batch call's deadline is client.timeout from its start: make
	 * that the submission's own deadline */
	q->inner->conf.client_timeout = s->deadline_ms - now;
	switch (s->op) {
	case KVN_OP_GET:
		s->status = kvn_batch_get(q->inner, s->items, s->n);
		break;
	case KVN_OP_PUT:
		s->status = kvn_batch_put(q->inner, s->items, s->n, s->flags);
		break;
	default:
		s->status = kvn_batch_exists(q->inner, s->items, s->n);
		break;
	}
}

static void *sub_main(void *arg)
{
	struct client_subq *q = arg;
	struct client_sub *s;
	uint64_t one = 1;

	kvn_log_set_thread_name("submit");
	pthread_mutex_lock(&q->mu);
	for (;;) {
		/* no deadline here: this only waits for work or for kvn_close */
		while (TAILQ_EMPTY(&q->todo) && !q->stop)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!(s = TAILQ_FIRST(&q->todo)))
			break; /* stopping, and every submission ran */
		TAILQ_REMOVE(&q->todo, s, link);
		pthread_mutex_unlock(&q->mu);
		run_one(q, s);
		pthread_mutex_lock(&q->mu);
		if (q->inner)
			q->stats = q->inner->stats;
		TAILQ_INSERT_TAIL(&q->done, s, link);
		/* cannot fail short of a counter near 2^64 */
		if (write(q->efd, &one, sizeof one) != (ssize_t)sizeof one)
			log_warn("submit: eventfd write: %s", strerror(errno));
	}
	pthread_mutex_unlock(&q->mu);
	kvn_close(q->inner);
	q->inner = NULL;
	pthread_mutex_lock(&q->mu);
	q->exited = 1;
	int orphan = q->orphan;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (orphan)
		subq_free(q);
	return NULL;
}

static int sub_start(struct kvn_client *c, struct client_subq *q)
{
	sigset_t all, old;

	/* the host's signals are delivered to its own threads, not to ours */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&q->thread, NULL, sub_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		client_set_detail(c, "progress thread: %s", strerror(rc));
		return KVN_ENOMEM;
	}
	q->started = 1;
	return 0;
}

static int submit(struct kvn_client *c, int op, struct kvn_item *items, size_t n, unsigned flags,
		  uint64_t *id)
{
	struct client_subq *q;
	uint8_t wire;
	int rc;

	if (!c || !id || (n && !items))
		return KVN_EINVAL;
	if (op == KVN_OP_PUT && client_put_wire_flags(flags, &wire) != 0)
		return KVN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!items[i].key)
			return KVN_EINVAL;
		if (items[i].klen < 1 || items[i].klen > KVN_MAX_KEY)
			return KVN_EKEYLEN;
		if (op == KVN_OP_PUT && items[i].vlen && !items[i].val)
			return KVN_EINVAL;
	}
	if (c->closing)
		return KVN_ECLOSED;
	if (!(q = subq_get(c)))
		return KVN_EIO;
	if (q->nout >= KVN_SUBMIT_MAX)
		return KVN_EBUSY; /* nout changes on this thread only: read without the lock */
	if (!q->started && (rc = sub_start(c, q)) != 0)
		return rc;
	struct client_sub *s = kvn_xcalloc(1, sizeof *s);
	s->id = ++q->next_id;
	s->op = op;
	s->flags = flags;
	s->items = items;
	s->n = n;
	s->deadline_ms = kvn_now_ms() + c->conf.client_timeout;
	*id = s->id;
	pthread_mutex_lock(&q->mu);
	q->nout++;
	if (s->deadline_ms > q->last_deadline_ms)
		q->last_deadline_ms = s->deadline_ms;
	TAILQ_INSERT_TAIL(&q->todo, s, link);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int kvn_submit_get(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id)
{
	return submit(c, KVN_OP_GET, items, n, 0, id);
}

int kvn_submit_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags, uint64_t *id)
{
	return submit(c, KVN_OP_PUT, items, n, flags, id);
}

int kvn_submit_exists(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t *id)
{
	return submit(c, KVN_OP_EXISTS, items, n, 0, id);
}

int kvn_fd(struct kvn_client *c)
{
	struct client_subq *q;

	if (!c)
		return KVN_EINVAL;
	if (!(q = subq_get(c)))
		return KVN_EIO;
	return q->efd;
}

int kvn_reap(struct kvn_client *c, struct kvn_completion *out, size_t max)
{
	struct client_subq *q;
	struct client_sub *s;
	uint64_t v;
	int n = 0;

	if (!c || (!out && max))
		return KVN_EINVAL;
	if (c->naput && !c->in_callback)
		(void)kvn_poll(c, 0); /* failures stay for kvn_poll_failures */
	if (!(q = c->sub))
		return 0;
	if (max > INT_MAX)
		max = INT_MAX;
	pthread_mutex_lock(&q->mu);
	while ((size_t)n < max && (s = TAILQ_FIRST(&q->done))) {
		TAILQ_REMOVE(&q->done, s, link);
		q->nout--;
		out[n].id = s->id;
		out[n].op = s->op;
		out[n].status = s->status;
		out[n].items = s->items;
		out[n].n = s->n;
		free(s);
		n++;
	}
	/* the last completion is taken: the fd stops being readable (EAGAIN
	 * when it was not) */
	if (TAILQ_EMPTY(&q->done) && read(q->efd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_warn("submit: eventfd read: %s", strerror(errno));
	pthread_mutex_unlock(&q->mu);
	return n;
}

size_t kvn_submit_pending(const struct kvn_client *c)
{
	size_t n;

	if (!c || !c->sub)
		return 0;
	pthread_mutex_lock(&c->sub->mu);
	n = c->sub->nout;
	pthread_mutex_unlock(&c->sub->mu);
	return n;
}

void client_submit_close(struct kvn_client *c)
{
	struct client_subq *q = c->sub;

	if (!q)
		return;
	c->sub = NULL;
	if (!q->started) {
		subq_free(q);
		return;
	}
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_signal(&q->cv);
	uint64_t until = q->last_deadline_ms + SUB_SLACK_MS;
	struct timespec ts = { .tv_sec = (time_t)(until / 1000), .tv_nsec = (long)(until % 1000) * 1000000L };
	int rc = 0;
	/* kvn_now_ms is CLOCK_MONOTONIC, as the condition's clock */
	while (!q->exited && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q->cv, &q->mu, &ts);
	if (!q->exited) {
		/* a batch outlived its deadline (a broken promise, not a slow
		 * node): leave the thread to finish and free this itself */
		log_error("submit: %u submission(s) still running past their deadline; closing anyway",
			  (unsigned)q->nout);
		q->orphan = 1;
		pthread_detach(q->thread);
		pthread_mutex_unlock(&q->mu);
		return;
	}
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	subq_free(q);
}

#define SUB_STAT_ADD(name, doc) st->name += q->stats.name;

void client_submit_stats_add(const struct kvn_client *c, struct client_stats *st)
{
	struct client_subq *q = c->sub;

	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	CLIENT_STATS_FIELDS(SUB_STAT_ADD)
	pthread_mutex_unlock(&q->mu);
}
