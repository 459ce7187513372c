/*
 * loop: loops (an event_base, usually with its own thread), running an
 * unstarted loop from the caller's thread, timers, orderly shutdown, and
 * virtual time: a loop in virtual mode keeps every actor timer and call
 * deadline on a clock that only actor_loop_sim_run advances (and that
 * kvn_now_ms reports), so a simulated cluster replays exactly from a seed.
 */
#include "config.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "actors/actor_int.h"
#include "base/base.h"

static void loop_stop_cb(evutil_socket_t fd, short what, void *arg);

static uint64_t coarse_pad_us;
static pthread_once_t coarse_once = PTHREAD_ONCE_INIT;

static void coarse_init(void)
{
	struct timespec res;
	uint64_t us = 4000; /* a 250 Hz tick, if the resolution is unknown */
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0)
		us = (uint64_t)res.tv_sec * 1000000u + ((uint64_t)res.tv_nsec + 999u) / 1000u;
	coarse_pad_us = us;
}

void actor_timeout_tv(uint64_t ms, struct timeval *tv)
{
	pthread_once(&coarse_once, coarse_init);
	uint64_t us = ms * 1000u + (ms ? coarse_pad_us : 0);
	tv->tv_sec = (time_t)(us / 1000000u);
	tv->tv_usec = (suseconds_t)(us % 1000000u);
}

struct actor_loop *actor_loop_new(const char *name)
{
	struct actor_loop *l;

	actor_runtime_init();
	l = kvn_xcalloc(1, sizeof *l);
	snprintf(l->name, sizeof l->name, "%s", name ? name : "loop");
	{
		/* deadlines are measured against kvn_now_ms: do not let libevent
		 * schedule timers from a time cached at the top of the loop.  Its
		 * clock stays CLOCK_MONOTONIC_COARSE (the default on Linux):
		 * EVENT_BASE_FLAG_PRECISE_TIMER would make its epoll backend call
		 * timerfd_settime on every turn of the loop, one syscall per op
		 * on each side.  A coarse clock lags the real one by up to a tick
		 * (4 ms here), which made a timer of a few ms fire up to a tick
		 * early (the 4 ms connect timeout of a client with client.timeout
		 * = 4ms while its put still had time left): every timeout is
		 * padded by the tick instead (actor_timeout_tv; t/datapath
		 * timer_not_early). */
		struct event_config *cfg = event_config_new();
		if (!cfg)
			kvn_fatal("libevent: event_config_new failed");
		event_config_set_flag(cfg, EVENT_BASE_FLAG_NO_CACHE_TIME);
		l->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	}
	if (!l->base)
		kvn_fatal("libevent: event_base_new failed");
	l->stop_ev = event_new(l->base, -1, 0, loop_stop_cb, l);
	pthread_mutex_init(&l->mu, NULL);
	TAILQ_INIT(&l->actors);
	return l;
}

struct event_base *actor_loop_base(struct actor_loop *l)
{
	return l->base;
}

int actor_loop_on_thread(const struct actor_loop *l)
{
	return (l->running || l->adopted) && pthread_equal(l->runner, pthread_self());
}

void actor_loop_adopt(struct actor_loop *l)
{
	l->runner = pthread_self();
	l->adopted = 1;
}

static void *loop_thread(void *arg)
{
	struct actor_loop *l = arg;
	kvn_log_set_thread_name(l->name);
	/* top -H and /proc/PID/task/N/comm show which loop burns the CPU */
	pthread_setname_np(pthread_self(), l->name);
	l->runner = pthread_self();
	l->running = 1;
	/* keep running while there is nothing to do: the stop event ends it */
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	l->running = 0;
	return NULL;
}

int actor_loop_start(struct actor_loop *l)
{
	int rc = pthread_create(&l->thread, NULL, loop_thread, l);
	if (rc != 0)
		return KVN_ENOMEM;
	l->started = 1;
	return 0;
}

void actor_loop_stop(struct actor_loop *l)
{
	event_active(l->stop_ev, 0, 0);
}

void actor_loop_join(struct actor_loop *l)
{
	if (l->started) {
		pthread_join(l->thread, NULL);
		l->started = 0;
	}
}

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

int actor_loop_run_until(struct actor_loop *l, const int *done, uint64_t deadline_ms)
{
	if (l->virt)
		return KVN_EINVAL; /* virtual loops run with actor_loop_sim_run */
	struct timeval tv;
	struct event *t;
	int rc = 0;

	if (!l->run_timer && !(l->run_timer = evtimer_new(l->base, noop_cb, NULL)))
		return KVN_ENOMEM;
	t = l->run_timer;
	l->runner = pthread_self();
	l->running = 1;
	while (!*done) {
		uint64_t now = kvn_now_ms();
		if (now >= deadline_ms) {
			rc = KVN_ETIMEDOUT;
			break;
		}
		uint64_t left = deadline_ms - now;
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
		evtimer_add(t, &tv);
		event_base_loop(l->base, EVLOOP_ONCE);
	}
	l->running = 0;
	evtimer_del(t);
	return rc;
}

/* ---- timers ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct actor_timer *t = arg;
	struct actor *a = t->self;
	(void)fd;
	(void)what;
	if (a->destroyed)
		return;
	actor_busy_enter(a);
	t->fn(a, t->arg);
	actor_busy_leave(a);
}

struct actor_timer *actor_timer_new(struct actor *self, actor_timer_fn fn, void *arg)
{
	struct actor_timer *t = kvn_xcalloc(1, sizeof *t);
	t->self = self;
	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(self->loop->base, timer_cb, t);
	if (!t->ev)
		kvn_fatal("libevent: evtimer_new failed");
	LIST_INSERT_HEAD(&self->timers, t, link);
	return t;
}

void actor_timer_arm(struct actor_timer *t, uint64_t ms)
{
	actor_loop_timer_add(t->self->loop, t->ev, ms);
}

void actor_timer_cancel(struct actor_timer *t)
{
	if (t)
		actor_loop_timer_del(t->self->loop, t->ev);
}

void actor_timer_free(struct actor_timer *t)
{
	if (!t)
		return;
	LIST_REMOVE(t, link);
	actor_loop_timer_del(t->self->loop, t->ev);
	event_free(t->ev);
	free(t);
}

/* ---- shutdown ---- */

static void loop_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct actor_loop *l = arg;
	struct actor *a;
	actor_id *ids;
	size_t n = 0, cap = 0;
	int pass, busy;

	(void)fd;
	(void)what;
	l->stopping = 1;
	TAILQ_FOREACH(a, &l->actors, link)
		cap++;
	ids = kvn_xcalloc(cap ? cap : 1, sizeof *ids);
	TAILQ_FOREACH(a, &l->actors, link)
		ids[n++] = a->id;
	/* Handle what is already queued (bounded passes: handlers may send to
	 * each other), so an accepted request is not silently lost.  Actors are
	 * looked up by id each time because a handler may destroy another. */
	for (pass = 0; pass < 4; pass++) {
		busy = 0;
		for (size_t i = 0; i < n; i++) {
			a = actor_find(ids[i]);
			if (!a || a->loop != l)
				continue;
			/* at most one mailbox-full per pass: bounded even if
			 * the actor keeps sending to itself */
			for (uint32_t done = 0; done < a->cap; done += DRAIN_BATCH) {
				pthread_mutex_lock(&a->mu);
				int has = !TAILQ_EMPTY(&a->mbox);
				pthread_mutex_unlock(&a->mu);
				if (!has)
					break;
				busy = 1;
				if (!actor_drain_batch(a))
					break; /* destroyed by its handler */
			}
		}
		if (!busy)
			break;
	}
	free(ids);
	while ((a = TAILQ_FIRST(&l->actors)))
		actor_destroy(a);
	event_base_loopexit(l->base, NULL);
}

void actor_loop_free(struct actor_loop *l)
{
	struct actor *a;

	if (!l)
		return;
	/* Actors left on a loop that never ran its stop: destroy here, acting
	 * as the loop's thread (nothing else runs it now). */
	l->runner = pthread_self();
	l->running = 1;
	while ((a = TAILQ_FIRST(&l->actors)))
		actor_destroy(a);
	l->running = 0;
	if (l->virt)
		kvn_clock_virtual(NULL);
	free(l->vt);
	if (l->run_timer)
		event_free(l->run_timer);
	event_free(l->stop_ev);
	event_base_free(l->base);
	pthread_mutex_destroy(&l->mu);
	free(l);
}


/* ---- timers on the loop's clock ---- */

static void vt_remove(struct actor_loop *l, struct event *ev)
{
	for (size_t i = 0; i < l->nvt; i++)
		if (l->vt[i].ev == ev) {
			memmove(&l->vt[i], &l->vt[i + 1], (l->nvt - i - 1) * sizeof *l->vt);
			l->nvt--;
			return;
		}
}

void actor_loop_timer_add(struct actor_loop *l, struct event *ev, uint64_t ms)
{
	if (!l->virt) {
		struct timeval tv;
		actor_timeout_tv(ms, &tv);
		evtimer_add(ev, &tv);
		return;
	}
	/* re-arming replaces; equal deadlines fire in the order armed */
	vt_remove(l, ev);
	if (l->nvt == l->capvt) {
		l->capvt = l->capvt ? l->capvt * 2 : 64;
		l->vt = realloc(l->vt, l->capvt * sizeof *l->vt);
		if (!l->vt)
			kvn_fatal("out of memory");
	}
	struct vtimer t = { .due = l->vnow + ms, .seq = ++l->vseq, .ev = ev };
	size_t i = l->nvt;
	while (i > 0 && (l->vt[i - 1].due > t.due || (l->vt[i - 1].due == t.due && l->vt[i - 1].seq > t.seq))) {
		l->vt[i] = l->vt[i - 1];
		i--;
	}
	l->vt[i] = t;
	l->nvt++;
}

void actor_loop_timer_del(struct actor_loop *l, struct event *ev)
{
	if (l->virt)
		vt_remove(l, ev);
	else
		evtimer_del(ev);
}

/* ---- virtual time ---- */

void actor_loop_set_virtual(struct actor_loop *l, uint64_t start_ms)
{
	l->virt = 1;
	l->vnow = start_ms;
	kvn_clock_virtual(&l->vnow);
}

uint64_t actor_loop_vnow(const struct actor_loop *l)
{
	return l->vnow;
}

int actor_loop_sim_run(struct actor_loop *l, uint64_t until_ms, uint64_t max_events)
{
	uint64_t fired = 0;

	if (!l->virt)
		return KVN_EINVAL;
	l->runner = pthread_self();
	l->running = 1;
	for (;;) {
		/* everything runnable now, in activation order */
		while (event_base_get_num_events(l->base, EVENT_BASE_COUNT_ACTIVE) > 0)
			event_base_loop(l->base, EVLOOP_NONBLOCK);
		if (l->nvt == 0 || l->vt[0].due > until_ms || fired >= max_events)
			break;
		struct vtimer t = l->vt[0];
		memmove(&l->vt[0], &l->vt[1], (l->nvt - 1) * sizeof *l->vt);
		l->nvt--;
		if (t.due > l->vnow)
			l->vnow = t.due;
		event_active(t.ev, EV_TIMEOUT, 1);
		fired++;
	}
	if (until_ms > l->vnow && fired < max_events)
		l->vnow = until_ms;
	l->running = 0;
	return (int)(fired > INT32_MAX ? INT32_MAX : fired);
}
