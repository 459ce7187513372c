/*
 * actor: the runtime every role runs on.  Owns loops (an event_base, usually
 * with its own thread), actors (private state + bounded mailbox + handler),
 * the registry that turns actor ids into actors, local send with wake-up,
 * request/response with correlation ids and deadlines, timers, and orderly
 * shutdown.  Actors never share mutable state; they only send messages.
 *
 * Ownership: actor_send() takes the message only when it returns 0; on error
 * the caller still owns it.  The runtime frees a delivered message after the
 * handler returns, unless the handler returns ACTOR_KEEP (it kept it).
 */
#ifndef KVN_ACTOR_H
#define KVN_ACTOR_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "base/base.h"

struct event;
struct event_base;
struct evbuffer;
struct iovec;

/* Handle: registry slot (low 32 bits) | generation (high 32).  0 is none.  A
 * stale handle never reaches a newer actor in the same slot. */
typedef uint64_t actor_id;

/* Who sent a message, as far as the runtime needs to know.  The values are
 * enum auth_role's (net.h checks that they agree): the runtime marks local
 * sends INTERNAL; connections set the authenticated role. */
#define ACTOR_ROLE_NONE 0
#define ACTOR_ROLE_INTERNAL 4
/* The one flag the runtime reads: this message answers the call with the same
 * corr.  Its value is WIRE_F_REPLY's (net.h checks). */
#define ACTOR_F_REPLY 1

struct actor_msg {
	uint16_t type;   /* the roles' message type (enum wire_type) */
	uint16_t flags;  /* ACTOR_F_REPLY and the roles' flags (enum wire_flags) */
	int32_t status;  /* replies: 0 or KVN_E* */
	uint64_t corr;   /* correlation id; 0 = one-way */
	actor_id src;    /* sender: replies go here */
	uint8_t src_role; /* enum auth_role of the authenticated sender */
	uint32_t meta_len;
	uint8_t *meta;             /* owned (malloc) */
	struct evbuffer *payload;  /* owned, or NULL */
	uint64_t payload_len;      /* bytes of payload (buffered or sunk) */
	void *sink_cookie;         /* set when the payload went to the receiver's sink */
	uint64_t deadline_ms;      /* set by actor_call (kvn_now_ms clock); 0 = none */
	int sink_err;              /* the sink refused: payload discarded, reply with this */
	TAILQ_ENTRY(actor_msg) link;
};

/* New message of `type`, no metadata, no payload (aborts on OOM). */
struct actor_msg *actor_msg_new(uint16_t type);
/* Frees meta and payload too.  NULL ok. */
void actor_msg_free(struct actor_msg *m);
/* Deep copy (meta and payload bytes); used by fault injection. */
struct actor_msg *actor_msg_dup(const struct actor_msg *m);

struct actor;
struct actor_loop;

#define ACTOR_KEEP 1

/* What a payload sink hook is told about a frame whose payload is about to
 * arrive: the header fields the runtime's users need, not the wire layout. */
struct actor_frame {
	uint16_t type;        /* enum wire_type */
	uint16_t flags;       /* enum wire_flags */
	uint32_t meta_len;
	uint64_t payload_len;
	uint64_t corr;        /* the caller's own correlation id for replies */
};
/* Where a sink hook wants the payload: iovecs covering exactly payload_len
 * bytes, and the cookie that identifies the reservation. */
struct actor_sink {
	struct iovec *iov; /* owned by the cookie's owner */
	int niov;
	void *cookie;
	/* Optional (nseg 0: none): the XXH3-64 of consecutive runs of these
	 * iovecs (run i is the next seg_niov[i] of them; 0 is an empty run),
	 * computed by the connection as the bytes land, while they are in
	 * cache, and written to seg_sum[i]; *seg_done is set to 1 once every
	 * run's sum is in, before the message is delivered.  Arrays owned by
	 * the cookie's owner. */
	const int *seg_niov;
	uint64_t *seg_sum;
	int *seg_done;
	int nseg;
	/* Optional: for a frame that carries no payload because its bytes are
	 * already in this process's memory (a same-host client's staging
	 * region: WIRE_LOCAL_PUT), where they are.  The connection copies
	 * them into the iovecs itself, on its own loop and summing as above,
	 * once the frame's tag is verified, before the message is delivered.
	 * The memory must stay mapped while the connection lives. */
	const uint8_t *src;
	/* Optional: bytes the connection copies into the iovecs out of its
	 * own read-ahead buffer (rather than reading them from the socket
	 * straight into them) are added here (a client's bounce_bytes). */
	uint64_t *copied;
};

struct actor_ops {
	const char *name;
	/* One message at a time on the actor's loop thread.  Return 0 to let the
	 * runtime free m, ACTOR_KEEP if the handler kept it. */
	int (*handle)(struct actor *self, struct actor_msg *m);
	/* Optional, called by a connection on the same loop before it reads a
	 * payload addressed to this actor: fill *sink with iovecs covering
	 * exactly h->payload_len bytes and return 0; return 1 to decline (the
	 * payload is buffered in m->payload); return a KVN_E* code to refuse (the
	 * payload is read and discarded, the message delivered with sink_err).
	 * from is the proxy the frame arrived on. */
	int (*sink)(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink);
	/* Optional: the frame whose payload went to sink->cookie failed (tag
	 * mismatch, connection lost); the cookie will never be delivered. */
	void (*sink_abort)(struct actor *self, void *cookie);
	/* Optional: the actor is being destroyed (loop shutdown or
	 * actor_destroy): release state.  Pending calls were failed already. */
	void (*fini)(struct actor *self);
	/* Replies that match none of this actor's pending calls go to handle()
	 * when set (proxies forward them); otherwise they are late, counted and
	 * dropped. */
	int wants_replies;
};

/* ---- loops ---- */
/* A loop: one event_base.  actor_loop_start runs it on a new thread; a loop
 * that is never started can be driven by its creator with
 * actor_loop_run_until (the client library does this). */
struct actor_loop *actor_loop_new(const char *name);
int actor_loop_start(struct actor_loop *l);
/* Ask the loop to stop: it handles what is already in its actors' mailboxes,
 * fails pending calls with KVN_ECLOSED, destroys its actors and exits.  Safe
 * from any thread and from a signal-handling loop. */
void actor_loop_stop(struct actor_loop *l);
/* Wait for a started loop's thread to finish (after stop). */
void actor_loop_join(struct actor_loop *l);
/* Free a stopped (or never started) loop; destroys remaining actors. */
void actor_loop_free(struct actor_loop *l);
struct event_base *actor_loop_base(struct actor_loop *l);
/* Drive an unstarted loop on the calling thread until *done becomes non-zero
 * or deadline_ms (kvn_now_ms clock) passes: 0 or KVN_ETIMEDOUT. */
int actor_loop_run_until(struct actor_loop *l, const int *done, uint64_t deadline_ms);
/* Make the calling thread the owner of an unstarted loop, so same-loop
 * calls (actor_lookup_local, net_abort) work between actor_loop_run_until
 * calls.  The client library adopts its private loop. */
void actor_loop_adopt(struct actor_loop *l);
/* ---- virtual time (deterministic simulation in tests) ----
 * A virtual loop is never started: actor_loop_sim_run drives it on the
 * caller's thread, running everything runnable, then jumping the clock to
 * the next timer (actor timers, call deadlines, actor_loop_timer_add), until
 * `until_ms` or `max_events` timers fired.  kvn_now_ms() reports the
 * virtual clock process-wide while the loop exists, so the same sequence of
 * events replays exactly.  Returns the number of timers fired. */
void actor_loop_set_virtual(struct actor_loop *l, uint64_t start_ms);
uint64_t actor_loop_vnow(const struct actor_loop *l);
int actor_loop_sim_run(struct actor_loop *l, uint64_t until_ms, uint64_t max_events);
/* A libevent timer event that follows the loop's clock (virtual or real). */
void actor_loop_timer_add(struct actor_loop *l, struct event *ev, uint64_t ms);
void actor_loop_timer_del(struct actor_loop *l, struct event *ev);

/* A libevent timeout of ms for the loops' clock, which is coarse (a tick
 * behind the real one at worst): padded by one tick, so it never fires
 * before ms have passed on kvn_now_ms (it may fire up to two ticks late).
 * For every event_add with a timeout on an actor loop.  0 stays 0. */
struct timeval;
void actor_timeout_tv(uint64_t ms, struct timeval *tv);

/* True when called on the loop's own thread (or its driving thread). */
int actor_loop_on_thread(const struct actor_loop *l);

/* ---- actors ---- */
/* Create an actor on loop l with a mailbox of mailbox_cap messages.  `state`
 * belongs to the actor (ops->fini releases it).  *out (optional) gets the
 * actor; its id is actor_id_of(). */
int actor_spawn(struct actor_loop *l, const struct actor_ops *ops, void *state, uint32_t mailbox_cap,
		struct actor **out);
actor_id actor_id_of(const struct actor *a);
void *actor_state(const struct actor *a);
struct actor_loop *actor_loop_of(const struct actor *a);
struct event_base *actor_base(const struct actor *a);
const char *actor_name(const struct actor *a);
const struct actor_ops *actor_ops_of(const struct actor *a);
/* Destroy an actor from its own loop thread: unregister (later sends fail
 * with KVN_ECLOSED), free queued messages, fail its pending calls, run fini. */
void actor_destroy(struct actor *a);
/* The actor on the calling thread's loop with this id, or NULL (stale, other
 * loop).  For same-loop fast paths such as payload sinks. */
struct actor *actor_lookup_local(const struct actor_loop *l, actor_id id);

/* Mark an actor busy outside its handler (a timer, an fd callback, a
 * library call on the caller's thread) so messages to it are queued
 * instead of dispatched directly into code that is mid-way through
 * something.  Leave handles what was queued meanwhile; it returns 0 when
 * the actor was destroyed (do not touch it again), else 1.  Loop thread
 * only. */
void actor_busy_enter(struct actor *a);
int actor_busy_leave(struct actor *a);

/* Share some of an actor's state with other threads (a peer's key table and
 * allocator with its connections' I/O loops).  From now on the runtime holds
 * `mu` (a recursive mutex, owned by the caller, outliving the actor) around
 * everything that runs as the actor: handlers, reply callbacks, timers,
 * busy sections, its sink hooks and fini.  Other threads take it around
 * what they do to the shared state; the actor's sink hook may then be asked
 * from a connection on another loop (actor_lookup_sink), under `mu` and
 * without a busy mark: it must not send, call or arm timers there.  Call
 * on the actor's loop before other threads know it; the actor must outlive
 * every loop that may reach it that way. */
void actor_set_lock(struct actor *a, pthread_mutex_t *mu);
/* The actor with this id whose sink hook a connection on the calling
 * thread's loop may ask: one on this loop, or one with a lock
 * (actor_set_lock) on any loop.  NULL otherwise. */
struct actor *actor_lookup_sink(const struct actor_loop *l, actor_id id);
/* Ask an actor for a payload sink (actor_ops.sink): one on the caller's
 * loop, or a locked one from another loop (see actor_set_lock): its return
 * value, or 1 (decline) when it has no sink hook. */
int actor_sink_ask(struct actor *a, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		   struct actor_sink *sink);
void actor_sink_abort(struct actor *a, void *cookie);

/* ---- messaging ---- */
/* Queue m for dst and wake its loop; or, when dst is idle on the loop this
 * thread runs and has nothing queued, handle it right now (before
 * actor_send returns).  0: dst owns m.  KVN_EBUSY (mailbox
 * full) or KVN_ECLOSED (no such actor): the caller still owns m.  Sets
 * src_role to ACTOR_ROLE_INTERNAL unless already set (proxies set it). */
int actor_send(actor_id dst, struct actor_msg *m);

/* Outcome of a call: reply is the reply message (err == 0; its status is the
 * remote result) or NULL when err is KVN_ETIMEDOUT / KVN_ECLOSED / a send
 * error.  Called exactly once per successful actor_call, on self's loop.
 * Return ACTOR_KEEP to keep the reply. */
typedef int (*actor_reply_fn)(struct actor *self, void *arg, struct actor_msg *reply, int err);

/* Send request m to dst expecting one reply within timeout_ms.  Sets m->corr
 * and m->src.  0: m is taken and fn will run exactly once.  Error: the
 * caller still owns m and fn will not run.  Call on self's loop thread. */
int actor_call(struct actor *self, actor_id dst, struct actor_msg *m, uint64_t timeout_ms,
	       actor_reply_fn fn, void *arg);
/* The correlation id of self's most recent successful actor_call (to match
 * a reply's payload sink to its request). */
uint64_t actor_last_corr(const struct actor *self);
/* Reply to req: sets corr, REPLY flag and status, sends to req->src.  Always
 * takes reply (a reply that cannot be delivered is dropped and counted).
 * A one-way req (corr 0) gets no reply: reply is freed. */
void actor_reply(struct actor *self, const struct actor_msg *req, struct actor_msg *reply, int status);
/* Shorthand: a reply with no metadata and this status. */
void actor_reply_status(struct actor *self, const struct actor_msg *req, int status);

/* ---- timers ---- */
struct actor_timer;
typedef void (*actor_timer_fn)(struct actor *self, void *arg);
struct actor_timer *actor_timer_new(struct actor *self, actor_timer_fn fn, void *arg);
/* (Re)arm to fire once after ms.  Call on self's loop. */
void actor_timer_arm(struct actor_timer *t, uint64_t ms);
void actor_timer_cancel(struct actor_timer *t);
void actor_timer_free(struct actor_timer *t); /* NULL ok */

/* ---- stats ---- */
/* Process-wide, every loop; one line each (KVN_STAT_FIELD in base/base.h). */
#define ACTOR_STATS_FIELDS(X)                                                   \
	X(sent, "messages accepted into a mailbox or dispatched directly")      \
	X(delivered, "messages handed to a handler or a call's callback")       \
	X(dropped_dead, "messages to an actor that is gone or being destroyed") \
	X(dropped_full, "messages refused: mailbox full")                       \
	X(late_replies, "replies nobody waited for any more")                   \
	X(timeouts, "calls that reached their deadline")
struct actor_stats {
	ACTOR_STATS_FIELDS(KVN_STAT_FIELD)
};
void actor_get_stats(struct actor_stats *st);
void actor_stats_each(const struct actor_stats *st, kvn_stat_fn fn, void *arg);
/* Current mailbox depth of an actor (a gauge). */
uint32_t actor_mailbox_depth(const struct actor *a);

#endif
