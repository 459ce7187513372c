/*
 * actor: actors, the registry of actor ids, mailboxes, direct dispatch,
 * calls with deadlines and replies (see actor.h for the contract; loops,
 * timers and shutdown are in loop.c).
 *
 * Locking: the registry mutex guards id -> actor and is held across the
 * mailbox push and the wake-up, because an actor is only freed by its own
 * loop thread after it has been unregistered under the same mutex.  Mailbox
 * contents are guarded by the actor's own mutex.  Everything else in an
 * actor is touched only by its loop thread.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "actors/actor.h"
#include "base/base.h"
#include "actors/actor_int.h"

#define REG_MAX (1u << 16)
#define DIRECT_MAX_DEPTH 8

static struct {
	pthread_mutex_t mu;
	struct actor **slot;
	uint32_t *gen;
	uint32_t *free_stack;
	uint32_t nfree, next_unused;
} reg = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct actor_stats stats;
static __thread int direct_depth;

static void dispatch(struct actor *a, struct actor_msg *m);
#define STAT_INC(f) __atomic_add_fetch(&stats.f, 1, __ATOMIC_RELAXED)

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

static void runtime_init_once(void)
{
	if (evthread_use_pthreads() != 0)
		kvn_fatal("libevent: evthread_use_pthreads failed");
	reg.slot = kvn_xcalloc(REG_MAX, sizeof *reg.slot);
	reg.gen = kvn_xcalloc(REG_MAX, sizeof *reg.gen);
	reg.free_stack = kvn_xcalloc(REG_MAX, sizeof *reg.free_stack);
}

void actor_runtime_init(void)
{
	pthread_once(&runtime_once, runtime_init_once);
}

/* ---- messages ---- */

struct actor_msg *actor_msg_new(uint16_t type)
{
	struct actor_msg *m = kvn_xcalloc(1, sizeof *m);
	m->type = type;
	return m;
}

void actor_msg_free(struct actor_msg *m)
{
	if (!m)
		return;
	free(m->meta);
	if (m->payload)
		evbuffer_free(m->payload);
	free(m);
}

struct actor_msg *actor_msg_dup(const struct actor_msg *m)
{
	struct actor_msg *d = actor_msg_new(m->type);
	d->flags = m->flags;
	d->status = m->status;
	d->corr = m->corr;
	d->src = m->src;
	d->src_role = m->src_role;
	d->sink_err = m->sink_err;
	d->payload_len = m->payload_len;
	if (m->meta_len) {
		d->meta = kvn_xmalloc(m->meta_len);
		memcpy(d->meta, m->meta, m->meta_len);
		d->meta_len = m->meta_len;
	}
	if (m->payload) {
		size_t n = evbuffer_get_length(m->payload);
		d->payload = evbuffer_new();
		if (!d->payload)
			kvn_fatal("out of memory");
		if (n) {
			void *tmp = kvn_xmalloc(n);
			evbuffer_copyout(m->payload, tmp, n);
			evbuffer_add(d->payload, tmp, n);
			free(tmp);
		}
	}
	return d;
}

/* ---- loops ---- */

/* ---- registry ---- */

static int reg_add(struct actor *a)
{
	uint32_t idx;

	pthread_mutex_lock(&reg.mu);
	if (reg.nfree > 0)
		idx = reg.free_stack[--reg.nfree];
	else if (reg.next_unused < REG_MAX)
		idx = reg.next_unused++;
	else {
		pthread_mutex_unlock(&reg.mu);
		return KVN_ENOMEM;
	}
	reg.gen[idx]++;
	reg.slot[idx] = a;
	a->id = ((uint64_t)reg.gen[idx] << 32) | (uint64_t)(idx + 1);
	pthread_mutex_unlock(&reg.mu);
	return 0;
}

static void reg_remove(struct actor *a)
{
	uint32_t idx = (uint32_t)(a->id & 0xffffffffu) - 1;

	pthread_mutex_lock(&reg.mu);
	if (reg.slot[idx] == a) {
		reg.slot[idx] = NULL;
		reg.free_stack[reg.nfree++] = idx;
	}
	pthread_mutex_unlock(&reg.mu);
}

/* Caller holds reg.mu. */
static struct actor *reg_find_locked(actor_id id)
{
	uint32_t lo = (uint32_t)(id & 0xffffffffu);
	uint32_t gen = (uint32_t)(id >> 32);

	if (lo == 0 || lo > REG_MAX || !reg.slot)
		return NULL;
	if (reg.gen[lo - 1] != gen)
		return NULL;
	return reg.slot[lo - 1];
}

struct actor *actor_find(actor_id id)
{
	struct actor *a;
	pthread_mutex_lock(&reg.mu);
	a = reg_find_locked(id);
	pthread_mutex_unlock(&reg.mu);
	return a;
}

struct actor *actor_lookup_local(const struct actor_loop *l, actor_id id)
{
	struct actor *a;

	pthread_mutex_lock(&reg.mu);
	a = reg_find_locked(id);
	pthread_mutex_unlock(&reg.mu);
	if (!a || a->loop != l || !actor_loop_on_thread(l))
		return NULL;
	return a;
}

/* ---- actors ---- */

static void actor_wake_cb(evutil_socket_t fd, short what, void *arg);

int actor_spawn(struct actor_loop *l, const struct actor_ops *ops, void *state, uint32_t mailbox_cap,
		struct actor **out)
{
	struct actor *a;
	int rc;

	if (!l || !ops || !ops->handle || mailbox_cap == 0)
		return KVN_EINVAL;
	a = kvn_xcalloc(1, sizeof *a);
	a->loop = l;
	a->ops = ops;
	a->state = state;
	a->cap = mailbox_cap;
	a->warn_at = mailbox_cap / 8 > 16 ? mailbox_cap / 8 : 16;
	pthread_mutex_init(&a->mu, NULL);
	TAILQ_INIT(&a->mbox);
	LIST_INIT(&a->timers);
	a->wake = event_new(l->base, -1, 0, actor_wake_cb, a);
	if (!a->wake) {
		free(a);
		return KVN_ENOMEM;
	}
	rc = reg_add(a);
	if (rc) {
		event_free(a->wake);
		free(a);
		return rc;
	}
	pthread_mutex_lock(&l->mu);
	TAILQ_INSERT_TAIL(&l->actors, a, link);
	pthread_mutex_unlock(&l->mu);
	if (out)
		*out = a;
	return 0;
}

actor_id actor_id_of(const struct actor *a)
{
	return a ? a->id : 0;
}

void *actor_state(const struct actor *a)
{
	return a->state;
}

struct actor_loop *actor_loop_of(const struct actor *a)
{
	return a->loop;
}

struct event_base *actor_base(const struct actor *a)
{
	return a->loop->base;
}

const char *actor_name(const struct actor *a)
{
	return a->ops->name ? a->ops->name : "actor";
}

const struct actor_ops *actor_ops_of(const struct actor *a)
{
	return a->ops;
}

uint32_t actor_mailbox_depth(const struct actor *a)
{
	return __atomic_load_n(&a->depth, __ATOMIC_RELAXED);
}

static void pending_free(struct pending *p)
{
	struct actor *a = p->self;

	actor_loop_timer_del(a->loop, p->timer);
	if (a->nfree_pending < PENDING_FREE_MAX && !a->destroyed) {
		p->next_free = a->free_pending;
		a->free_pending = p;
		a->nfree_pending++;
		return;
	}
	event_free(p->timer);
	free(p);
}

static void pending_free_list(struct actor *a)
{
	struct pending *p;
	while ((p = a->free_pending)) {
		a->free_pending = p->next_free;
		event_free(p->timer);
		free(p);
	}
	a->nfree_pending = 0;
}

void actor_finish_destroy(struct actor *a)
{
	struct actor_msg *m;
	struct pending *p, *tmp;
	struct actor_timer *t;

	/* queued messages: requests among them get no answer; their senders'
	 * deadlines cover that */
	pthread_mutex_lock(&a->mu);
	while ((m = TAILQ_FIRST(&a->mbox))) {
		TAILQ_REMOVE(&a->mbox, m, link);
		actor_msg_free(m);
		STAT_INC(dropped_dead);
	}
	__atomic_store_n(&a->depth, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&a->mu);

	/* Fail pending calls; a callback may call again, which now fails
	 * synchronously because the actor is unregistered and destroyed. */
	pthread_mutex_t *lk = a->lock;
	actor_lock(a);
	HASH_ITER(hh, a->pending, p, tmp) {
		HASH_DEL(a->pending, p);
		p->fn(a, p->arg, NULL, KVN_ECLOSED);
		pending_free(p);
	}
	pending_free_list(a);
	if (a->ops->fini)
		a->ops->fini(a);
	actor_unlock_mu(lk);
	while ((t = LIST_FIRST(&a->timers)))
		actor_timer_free(t);
	pthread_mutex_lock(&a->loop->mu);
	TAILQ_REMOVE(&a->loop->actors, a, link);
	pthread_mutex_unlock(&a->loop->mu);
	event_free(a->wake);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

void actor_destroy(struct actor *a)
{
	if (!a || a->destroyed)
		return;
	a->destroyed = 1;
	reg_remove(a);
	if (a->dispatching > 0) {
		a->destroy_requested = 1;
		return;
	}
	actor_finish_destroy(a);
}

void actor_set_lock(struct actor *a, pthread_mutex_t *mu)
{
	a->lock = mu;
}

struct actor *actor_lookup_sink(const struct actor_loop *l, actor_id id)
{
	struct actor *a = actor_lookup_local(l, id);

	if (a)
		return a;
	a = actor_find(id);
	return a && a->lock ? a : NULL;
}

int actor_sink_ask(struct actor *a, actor_id from, const struct actor_frame *h, const uint8_t *meta,
	       struct actor_sink *sink)
{
	int rc;

	if (!a->ops->sink || a->destroyed)
		return 1;
	if (!actor_loop_on_thread(a->loop)) {
		/* a locked actor asked from a connection on another loop: its
		 * state under its lock, no busy mark (that is its loop's) */
		if (!a->lock)
			return 1;
		actor_lock(a);
		rc = a->ops->sink(a, from, h, meta, sink);
		actor_unlock_mu(a->lock);
		return rc;
	}
	/* The sink runs as the actor: what it sends may be answered at once
	 * (an in-process master, the peer's disk writer), and that answer
	 * must wait in the mailbox rather than run inside the sink. */
	actor_busy_enter(a);
	rc = a->ops->sink(a, from, h, meta, sink);
	if (!actor_busy_leave(a))
		return KVN_ECLOSED; /* destroyed meanwhile: its fini gave the reservation back */
	return rc;
}

void actor_sink_abort(struct actor *a, void *cookie)
{
	if (a->ops->sink_abort) {
		actor_lock(a);
		a->ops->sink_abort(a, cookie);
		actor_unlock_mu(a->lock);
	}
}

/* ---- messaging ---- */

int actor_send(actor_id dst, struct actor_msg *m)
{
	struct actor *a;
	int wake = 0;

	if (!m)
		return KVN_EINVAL;
	if (m->src_role == ACTOR_ROLE_NONE)
		m->src_role = ACTOR_ROLE_INTERNAL;
	pthread_mutex_lock(&reg.mu);
	a = reg_find_locked(dst);
	if (!a) {
		pthread_mutex_unlock(&reg.mu);
		STAT_INC(dropped_dead);
		return KVN_ECLOSED;
	}
	/* Direct dispatch: the target lives on the loop this thread is running,
	 * is idle and has nothing queued, so handling the message now keeps the
	 * one-at-a-time and FIFO promises and saves a loop iteration (a
	 * syscall, and on these VMs a costly one).  Only this thread can
	 * destroy the target, so it stays valid after the registry unlock. */
	if (direct_depth < DIRECT_MAX_DEPTH && actor_loop_on_thread(a->loop) && a->dispatching == 0 &&
	    !a->destroyed && __atomic_load_n(&a->depth, __ATOMIC_RELAXED) == 0) {
		pthread_mutex_unlock(&reg.mu);
		STAT_INC(sent);
		direct_depth++;
		a->dispatching++;
		dispatch(a, m);
		a->dispatching--;
		direct_depth--;
		if (a->destroy_requested && a->dispatching == 0)
			actor_finish_destroy(a);
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (a->depth >= a->cap) {
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_unlock(&reg.mu);
		STAT_INC(dropped_full);
		return KVN_EBUSY;
	}
	TAILQ_INSERT_TAIL(&a->mbox, m, link);
	/* written under a->mu, read without it by actor_mailbox_depth */
	__atomic_add_fetch(&a->depth, 1, __ATOMIC_RELAXED);
	if (a->depth >= a->warn_at) {
		log_warn("%s: mailbox depth %u of %u", actor_name(a), a->depth, a->cap);
		a->warn_at *= 2;
	}
	if (!a->scheduled) {
		a->scheduled = 1;
		wake = 1;
	}
	pthread_mutex_unlock(&a->mu);
	if (wake)
		event_active(a->wake, 0, 0);
	pthread_mutex_unlock(&reg.mu);
	STAT_INC(sent);
	return 0;
}

static void dispatch_locked(struct actor *a, struct actor_msg *m);

static void dispatch(struct actor *a, struct actor_msg *m)
{
	pthread_mutex_t *lk = a->lock;

	actor_lock(a);
	dispatch_locked(a, m);
	actor_unlock_mu(lk);
}

static void dispatch_locked(struct actor *a, struct actor_msg *m)
{
	int r;

	STAT_INC(delivered);
	if ((m->flags & ACTOR_F_REPLY) && m->corr) {
		struct pending *p;
		HASH_FIND(hh, a->pending, &m->corr, sizeof m->corr, p);
		if (p) {
			HASH_DEL(a->pending, p);
			r = p->fn(a, p->arg, m, 0);
			pending_free(p);
			if (r != ACTOR_KEEP)
				actor_msg_free(m);
			return;
		}
		if (!a->ops->wants_replies) {
			/* its caller gave up (deadline) or never asked */
			STAT_INC(late_replies);
			actor_msg_free(m);
			return;
		}
	}
	r = a->ops->handle(a, m);
	if (r != ACTOR_KEEP)
		actor_msg_free(m);
}

/* Handle up to DRAIN_BATCH messages.  Returns 0 if the actor was destroyed
 * (do not touch it again), else 1.  Re-arms the wake-up when more remain. */
int actor_drain_batch(struct actor *a)
{
	struct actor_msg *batch[DRAIN_BATCH];
	int n = 0, more;

	pthread_mutex_lock(&a->mu);
	while (n < DRAIN_BATCH && !TAILQ_EMPTY(&a->mbox)) {
		batch[n] = TAILQ_FIRST(&a->mbox);
		TAILQ_REMOVE(&a->mbox, batch[n], link);
		n++;
	}
	__atomic_sub_fetch(&a->depth, (uint32_t)n, __ATOMIC_RELAXED);
	if (a->depth == 0)
		a->warn_at = a->cap / 8 > 16 ? a->cap / 8 : 16;
	more = !TAILQ_EMPTY(&a->mbox);
	if (!more)
		a->scheduled = 0;
	pthread_mutex_unlock(&a->mu);

	a->dispatching++;
	for (int i = 0; i < n; i++) {
		if (a->destroy_requested) {
			actor_msg_free(batch[i]);
			continue;
		}
		dispatch(a, batch[i]);
	}
	a->dispatching--;
	if (a->destroy_requested && a->dispatching == 0) {
		actor_finish_destroy(a);
		return 0;
	}
	/* yield to other events between batches instead of starving them */
	if (more)
		event_active(a->wake, 0, 0);
	return 1;
}

static void actor_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	actor_drain_batch(arg);
}

static void pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	struct actor *a = p->self;

	(void)fd;
	(void)what;
	actor_busy_enter(a);
	HASH_DEL(a->pending, p);
	STAT_INC(timeouts);
	p->fn(a, p->arg, NULL, KVN_ETIMEDOUT);
	pending_free(p);
	actor_busy_leave(a);
}

int actor_call(struct actor *self, actor_id dst, struct actor_msg *m, uint64_t timeout_ms,
	       actor_reply_fn fn, void *arg)
{
	struct pending *p;
	int rc;

	if (!self || !m || !fn)
		return KVN_EINVAL;
	if (self->destroyed)
		return KVN_ECLOSED;
	if ((p = self->free_pending)) {
		self->free_pending = p->next_free;
		self->nfree_pending--;
	} else {
		p = kvn_xcalloc(1, sizeof *p);
		p->self = self;
		p->timer = evtimer_new(self->loop->base, pending_timeout_cb, p);
		if (!p->timer) {
			free(p);
			return KVN_ENOMEM;
		}
	}
	p->corr = ++self->next_corr;
	p->fn = fn;
	p->arg = arg;
	m->corr = p->corr;
	m->src = self->id;
	m->deadline_ms = kvn_now_ms() + timeout_ms;
	m->flags &= (uint16_t)~ACTOR_F_REPLY;
	HASH_ADD(hh, self->pending, corr, sizeof p->corr, p);
	actor_loop_timer_add(self->loop, p->timer, timeout_ms);
	rc = actor_send(dst, m);
	if (rc) {
		HASH_DEL(self->pending, p);
		pending_free(p);
		m->corr = 0;
		return rc;
	}
	return 0;
}

uint64_t actor_last_corr(const struct actor *self)
{
	return self->next_corr;
}

void actor_reply(struct actor *self, const struct actor_msg *req, struct actor_msg *reply, int status)
{
	(void)self;
	if (!req->corr) {
		actor_msg_free(reply);
		return;
	}
	reply->type = req->type;
	reply->flags |= ACTOR_F_REPLY;
	reply->corr = req->corr;
	reply->status = status;
	reply->src = self ? self->id : 0;
	if (actor_send(req->src, reply) != 0) {
		STAT_INC(late_replies);
		actor_msg_free(reply);
	}
}

void actor_reply_status(struct actor *self, const struct actor_msg *req, int status)
{
	actor_reply(self, req, actor_msg_new(req->type), status);
}

void actor_busy_enter(struct actor *a)
{
	actor_lock(a);
	a->dispatching++;
}

int actor_busy_leave(struct actor *a)
{
	pthread_mutex_t *lk = a->lock; /* outlives a (actor_set_lock) */
	int rc = 1;

	if (--a->dispatching > 0) {
		actor_unlock_mu(lk);
		return 1;
	}
	if (a->destroy_requested) {
		actor_finish_destroy(a);
		actor_unlock_mu(lk);
		return 0;
	}
	/* what arrived while we were busy: handle it now rather than on the
	 * next loop iteration.  depth, not the mailbox under a->mu: a lock
	 * pair saved on every busy section (several per op); a message
	 * pushed after this load has scheduled the wake-up, as it would
	 * after an unlock */
	int has = __atomic_load_n(&a->depth, __ATOMIC_ACQUIRE) != 0;
	if (has && actor_loop_on_thread(a->loop))
		rc = actor_drain_batch(a);
	actor_unlock_mu(lk);
	return rc;
}

void actor_get_stats(struct actor_stats *st)
{
	const struct actor_stats *src = &stats;
	ACTOR_STATS_FIELDS(KVN_STAT_LOAD)
}

void actor_stats_each(const struct actor_stats *st, kvn_stat_fn fn, void *arg)
{
	ACTOR_STATS_FIELDS(KVN_STAT_VISIT)
}
