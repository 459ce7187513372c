/*
 * actor_int: the runtime's private structures, shared by actor.c (actors,
 * registry, messaging) and loop.c (loops, timers, virtual time, shutdown).
 */
#ifndef KVN_ACTOR_INT_H
#define KVN_ACTOR_INT_H

#include <event2/event.h>
#include <pthread.h>
#include <sys/queue.h>
#include <uthash.h>

#include "actors/actor.h"

#define DRAIN_BATCH 64 /* messages handled per wake-up before yielding */
#define PENDING_FREE_MAX 64 /* call records kept per actor for reuse */

struct pending {
	struct pending *next_free; /* on its actor's free list */
	uint64_t corr;
	actor_reply_fn fn;
	void *arg;
	struct event *timer;
	struct actor *self;
	UT_hash_handle hh;
};

struct actor_timer {
	struct actor *self;
	actor_timer_fn fn;
	void *arg;
	struct event *ev;
	LIST_ENTRY(actor_timer) link;
};

struct actor {
	actor_id id;
	struct actor_loop *loop;
	const struct actor_ops *ops;
	void *state;
	pthread_mutex_t mu; /* mailbox */
	/* actor_set_lock: held around everything that runs as this actor */
	pthread_mutex_t *lock;
	TAILQ_HEAD(, actor_msg) mbox;
	uint32_t depth, cap, warn_at;
	int scheduled;
	struct event *wake;
	/* loop-thread only below */
	struct pending *pending;
	/* finished calls' records, their timer events kept: a call costs no
	 * malloc/free nor event_new/event_free in the steady state */
	struct pending *free_pending;
	uint32_t nfree_pending;
	uint64_t next_corr;
	LIST_HEAD(, actor_timer) timers;
	int dispatching; /* > 0 while a handler, timer or busy section runs */
	int destroy_requested, destroyed;
	TAILQ_ENTRY(actor) link;
};

/* A timer of a virtual-time loop: fired by actor_loop_sim_run. */
struct vtimer {
	uint64_t due, seq;
	struct event *ev;
};

struct actor_loop {
	char name[16];
	struct event_base *base;
	struct event *stop_ev;
	pthread_t thread;
	pthread_t runner; /* thread currently driving the loop */
	int started, running, stopping, adopted;
	/* virtual time (deterministic simulation): timers sorted by (due, seq) */
	int virt;
	uint64_t vnow, vseq;
	struct vtimer *vt;
	size_t nvt, capvt;
	struct event *run_timer; /* actor_loop_run_until's deadline, made once */
	pthread_mutex_t mu; /* actors list */
	TAILQ_HEAD(, actor) actors;
};


static inline void actor_lock(struct actor *a)
{
	if (a->lock)
		pthread_mutex_lock(a->lock);
}

static inline void actor_unlock_mu(pthread_mutex_t *lk)
{
	if (lk)
		pthread_mutex_unlock(lk);
}

/* actor.c */
void actor_runtime_init(void);
struct actor *actor_find(actor_id id); /* registry lookup, any thread */
int actor_drain_batch(struct actor *a);
void actor_finish_destroy(struct actor *a);
/* loop.c: timers follow the loop's clock (real, or virtual):
 * actor_loop_timer_add/del in actor.h */

#endif
