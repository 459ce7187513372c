/* t/actor: the actor runtime: ordering across threads, bounded mailboxes,
 * dead and stale handles, calls with replies and deadlines, late replies,
 * timers, and shutdown that drains mailboxes and fails pending calls. */
#include "config.h"

#include <pthread.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/actor.h"
#include "base/base.h"
#include "net/net.h"
#include "tap.h"

#define T_SEQ 0x8100
#define T_ECHO 0x8101
#define T_SILENT 0x8102

struct rec {
	pthread_mutex_t mu;
	uint64_t next, bad, got;
	int fini_called;
	int handled_after_stop;
};

static uint64_t msg_seq(const struct actor_msg *m)
{
	uint64_t v;
	memcpy(&v, m->meta, sizeof v);
	return v;
}

static struct actor_msg *seq_msg(uint16_t type, uint64_t v)
{
	struct actor_msg *m = actor_msg_new(type);
	m->meta = kvn_xmalloc(sizeof v);
	memcpy(m->meta, &v, sizeof v);
	m->meta_len = sizeof v;
	return m;
}

static int rec_handle(struct actor *self, struct actor_msg *m)
{
	struct rec *r = actor_state(self);
	if (m->type == T_SEQ) {
		pthread_mutex_lock(&r->mu);
		if (msg_seq(m) != r->next)
			r->bad++;
		r->next++;
		r->got++;
		pthread_mutex_unlock(&r->mu);
	} else if (m->type == T_ECHO) {
		struct actor_msg *rep = seq_msg(T_ECHO, msg_seq(m) * 2);
		actor_reply(self, m, rep, 0);
	}
	/* T_SILENT: never answered */
	return 0;
}

static void rec_fini(struct actor *self)
{
	struct rec *r = actor_state(self);
	r->fini_called = 1;
}

static const struct actor_ops rec_ops = { .name = "rec", .handle = rec_handle, .fini = rec_fini };

static void wait_for(volatile uint64_t *v, uint64_t want, int ms)
{
	for (int i = 0; i < ms && __atomic_load_n(v, __ATOMIC_ACQUIRE) < want; i++)
		usleep(1000);
}

static void t_order_across_threads(void)
{
	struct actor_loop *l = actor_loop_new("t-rec");
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *a;
	int fails = 0;

	is_int(actor_spawn(l, &rec_ops, &r, 1 << 16, &a), 0, "spawn");
	actor_id id = actor_id_of(a);
	is_int(actor_loop_start(l), 0, "loop thread starts");
	for (uint64_t i = 0; i < 20000; i++) {
		struct actor_msg *m = seq_msg(T_SEQ, i);
		if (actor_send(id, m) != 0) {
			actor_msg_free(m);
			fails++;
			i--;
			usleep(100);
			if (fails > 100000)
				break;
		}
	}
	wait_for(&r.got, 20000, 10000);
	is_int(r.got, 20000, "every message delivered");
	is_int(r.bad, 0, "in send order");
	actor_loop_stop(l);
	actor_loop_join(l);
	ok(r.fini_called, "stop destroys actors (fini ran)");
	struct actor_msg *m = seq_msg(T_SEQ, 0);
	is_int(actor_send(id, m), KVN_ECLOSED, "send to a destroyed actor fails");
	ok(m->meta != NULL, "and the caller still owns the message");
	actor_msg_free(m);
	actor_loop_free(l);
}

static void t_mailbox_bound(void)
{
	struct actor_loop *l = actor_loop_new("t-bound");
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *a;
	int rc = 0;

	actor_spawn(l, &rec_ops, &r, 4, &a);
	for (int i = 0; i < 4; i++)
		rc |= actor_send(actor_id_of(a), seq_msg(T_SEQ, (uint64_t)i));
	is_int(rc, 0, "four messages fit a mailbox of four");
	is_int(actor_mailbox_depth(a), 4, "depth gauge is 4");
	struct actor_msg *m = seq_msg(T_SEQ, 4);
	is_int(actor_send(actor_id_of(a), m), KVN_EBUSY, "the fifth is refused, not dropped");
	actor_msg_free(m);
	struct actor_stats st;
	actor_get_stats(&st);
	ok(st.dropped_full >= 1, "refusal counted");
	int done = 0;
	actor_loop_run_until(l, &done, kvn_now_ms() + 50);
	is_int(r.got, 4, "queued messages handled when the loop runs");
	is_int(actor_mailbox_depth(a), 0, "mailbox empty");
	actor_loop_free(l);
	ok(r.fini_called, "loop free destroys remaining actors");
}

static void t_stale_handle(void)
{
	struct actor_loop *l = actor_loop_new("t-stale");
	struct rec r1 = { .mu = PTHREAD_MUTEX_INITIALIZER }, r2 = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *a, *b;
	int done = 0;

	actor_spawn(l, &rec_ops, &r1, 16, &a);
	actor_id old = actor_id_of(a);
	/* destroy from the loop's thread: drive the loop here */
	actor_loop_run_until(l, &done, kvn_now_ms() + 1);
	actor_destroy(a);
	actor_spawn(l, &rec_ops, &r2, 16, &b);
	ok(actor_id_of(b) != old, "a new actor gets a new id even in a reused slot");
	struct actor_msg *m = seq_msg(T_SEQ, 0);
	is_int(actor_send(old, m), KVN_ECLOSED, "the stale id does not reach the new actor");
	actor_msg_free(m);
	actor_loop_run_until(l, &done, kvn_now_ms() + 20);
	is_int(r2.got, 0, "new actor received nothing");
	actor_loop_free(l);
}

struct caller {
	int replies, timeouts, closed, calls_done;
	uint64_t value;
	uint64_t t_fired_ms;
};

static int caller_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static const struct actor_ops caller_ops = { .name = "caller", .handle = caller_handle };

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct caller *c = arg;
	(void)self;
	if (err == 0 && reply) {
		c->replies++;
		c->value = msg_seq(reply);
	} else if (err == KVN_ETIMEDOUT) {
		c->timeouts++;
		c->t_fired_ms = kvn_now_ms();
	} else if (err == KVN_ECLOSED) {
		c->closed++;
	}
	c->calls_done++;
	return 0;
}

static void t_call_reply_deadline(void)
{
	struct actor_loop *srv = actor_loop_new("t-srv");
	struct actor_loop *cli = actor_loop_new("t-cli");
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *s, *c;
	struct caller st = { 0 };
	struct actor_stats before, after;

	actor_spawn(srv, &rec_ops, &r, 64, &s);
	actor_spawn(cli, &caller_ops, &st, 64, &c);
	actor_loop_start(srv);

	is_int(actor_call(c, actor_id_of(s), seq_msg(T_ECHO, 21), 2000, on_reply, &st), 0, "call sent");
	int done = 0;
	for (int i = 0; i < 200 && st.calls_done < 1; i++)
		actor_loop_run_until(cli, &done, kvn_now_ms() + 10);
	is_int(st.replies, 1, "one reply");
	ok(st.value == 42, "reply carries the answer");

	actor_get_stats(&before);
	uint64_t t0 = kvn_now_ms();
	is_int(actor_call(c, actor_id_of(s), seq_msg(T_SILENT, 1), 100, on_reply, &st), 0, "call sent");
	for (int i = 0; i < 300 && st.calls_done < 2; i++)
		actor_loop_run_until(cli, &done, kvn_now_ms() + 10);
	is_int(st.timeouts, 1, "an unanswered call times out exactly once");
	ok(st.t_fired_ms - t0 >= 95 && st.t_fired_ms - t0 < 1000, "at its deadline (%llu ms)",
	   (unsigned long long)(st.t_fired_ms - t0));
	actor_get_stats(&after);
	ok(after.timeouts > before.timeouts, "timeout counted");

	/* a reply that arrives after the deadline is dropped and counted */
	struct actor_msg *late = seq_msg(T_ECHO, 0);
	late->flags = WIRE_F_REPLY;
	late->corr = 2; /* the corr of the call that timed out */
	actor_get_stats(&before);
	actor_send(actor_id_of(c), late);
	actor_loop_run_until(cli, &done, kvn_now_ms() + 20);
	actor_get_stats(&after);
	is_int(st.calls_done, 2, "late reply does not run the callback again");
	ok(after.late_replies == before.late_replies + 1, "late reply counted");

	/* call to a dead actor fails synchronously, callback never runs */
	struct actor_msg *m = seq_msg(T_ECHO, 1);
	is_int(actor_call(c, (actor_id)0xdead00000001ull, m, 100, on_reply, &st), KVN_ECLOSED,
	       "call to no actor fails at once");
	actor_msg_free(m);
	actor_loop_run_until(cli, &done, kvn_now_ms() + 20);
	is_int(st.calls_done, 2, "and its callback never ran");

	/* pending calls fail with KVN_ECLOSED when the caller's loop stops */
	actor_call(c, actor_id_of(s), seq_msg(T_SILENT, 2), 60000, on_reply, &st);
	actor_loop_free(cli);
	is_int(st.closed, 1, "pending call failed with KVN_ECLOSED at shutdown");
	is_int(st.calls_done, 3, "exactly once");
	actor_loop_stop(srv);
	actor_loop_join(srv);
	actor_loop_free(srv);
}

struct drainer {
	struct rec *r;
};

static void t_shutdown_drains(void)
{
	struct actor_loop *l = actor_loop_new("t-drain");
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *a;

	actor_spawn(l, &rec_ops, &r, 1024, &a);
	for (int i = 0; i < 500; i++)
		actor_send(actor_id_of(a), seq_msg(T_SEQ, (uint64_t)i));
	/* the loop has not run yet: stop must still handle all 500 */
	actor_loop_start(l);
	actor_loop_stop(l);
	actor_loop_join(l);
	is_int(r.got, 500, "messages queued before stop were handled");
	is_int(r.bad, 0, "in order");
	ok(r.fini_called, "then the actor was destroyed");
	actor_loop_free(l);
}

static void timer_fn(struct actor *self, void *arg)
{
	(void)self;
	*(uint64_t *)arg = kvn_now_ms();
}

static void t_timers(void)
{
	struct actor_loop *l = actor_loop_new("t-timer");
	struct caller st = { 0 };
	struct actor *a;
	uint64_t fired = 0, fired2 = 0;
	int done = 0;

	actor_spawn(l, &caller_ops, &st, 16, &a);
	struct actor_timer *t = actor_timer_new(a, timer_fn, &fired);
	struct actor_timer *t2 = actor_timer_new(a, timer_fn, &fired2);
	uint64_t t0 = kvn_now_ms();
	actor_timer_arm(t, 50);
	actor_timer_arm(t2, 30);
	actor_timer_cancel(t2);
	is_int(actor_loop_run_until(l, &done, t0 + 200), KVN_ETIMEDOUT, "run_until honours its deadline");
	ok(fired >= t0 + 50 && fired < t0 + 200, "timer fired after its delay");
	is_int(fired2, 0, "cancelled timer did not fire");
	actor_timer_free(t);
	actor_loop_free(l); /* t2 freed by the runtime */
}

/* ---- a locked actor (actor_set_lock): the peer's shape with I/O loops ---- */

struct shared {
	pthread_mutex_t mu; /* recursive */
	int inside, overlaps;
	uint64_t handled, sinks, aborts, ticks, outside;
	struct actor_timer *tick;
	uint8_t buf[64];
	struct iovec iov;
};

/* Every path that runs as the actor, or takes its lock from outside,
 * checks that nothing else is in at the same time. */
static void sh_enter(struct shared *s)
{
	if (__atomic_add_fetch(&s->inside, 1, __ATOMIC_ACQ_REL) != 1)
		__atomic_add_fetch(&s->overlaps, 1, __ATOMIC_RELAXED);
	for (volatile int i = 0; i < 200; i++)
		; /* long enough for another thread to walk in, if it could */
}

static void sh_leave(struct shared *s)
{
	__atomic_sub_fetch(&s->inside, 1, __ATOMIC_ACQ_REL);
}

static int sh_handle(struct actor *self, struct actor_msg *m)
{
	struct shared *s = actor_state(self);
	(void)m;
	sh_enter(s);
	s->handled++;
	sh_leave(s);
	return 0;
}

static int sh_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		   struct actor_sink *sink)
{
	struct shared *s = actor_state(self);
	(void)from;
	(void)h;
	(void)meta;
	sh_enter(s);
	s->sinks++;
	s->iov.iov_base = s->buf;
	s->iov.iov_len = sizeof s->buf;
	sink->iov = &s->iov;
	sink->niov = 1;
	sink->cookie = s;
	sh_leave(s);
	return 0;
}

static void sh_sink_abort(struct actor *self, void *cookie)
{
	struct shared *s = actor_state(self);
	(void)cookie;
	sh_enter(s);
	s->aborts++;
	sh_leave(s);
}

static void sh_tick(struct actor *self, void *arg)
{
	struct shared *s = arg;
	(void)self;
	sh_enter(s);
	s->ticks++;
	sh_leave(s);
	actor_timer_arm(s->tick, 1);
}

static const struct actor_ops sh_ops = {
	.name = "shared", .handle = sh_handle, .sink = sh_sink, .sink_abort = sh_sink_abort
};

struct poker {
	struct shared *s;
	actor_id id;
	int n, fails;
};

/* Another thread: sinks asked and aborted the way a connection on another
 * loop does, and the lock taken directly the way a reply's cleanup does. */
static void *poke_main(void *arg)
{
	struct poker *pk = arg;
	struct actor_frame h = { .type = WIRE_PUT, .payload_len = 64 };

	for (int i = 0; i < pk->n; i++) {
		struct actor *a = actor_lookup_sink(NULL, pk->id);
		struct actor_sink sink = { 0 };
		if (!a || actor_sink_ask(a, 0, &h, NULL, &sink) != 0 || sink.niov != 1) {
			pk->fails++;
			continue;
		}
		actor_sink_abort(a, sink.cookie);
		pthread_mutex_lock(&pk->s->mu);
		sh_enter(pk->s);
		pk->s->outside++;
		sh_leave(pk->s);
		pthread_mutex_unlock(&pk->s->mu);
	}
	return NULL;
}

static void t_locked_actor(void)
{
	struct actor_loop *l = actor_loop_new("t-shared"), *l2 = actor_loop_new("t-plain");
	struct shared s;
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct actor *a, *plain;
	pthread_mutexattr_t ma;
	pthread_t th[2];
	struct poker pk[2];

	memset(&s, 0, sizeof s);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s.mu, &ma);
	is_int(actor_spawn(l, &sh_ops, &s, 1 << 16, &a), 0, "spawn the shared actor");
	is_int(actor_spawn(l2, &rec_ops, &r, 16, &plain), 0, "and a plain one on another loop");
	ok(actor_lookup_sink(NULL, actor_id_of(plain)) == NULL,
	   "a plain actor's sink is not offered to other loops");
	ok(actor_lookup_sink(NULL, actor_id_of(a)) == NULL, "nor the shared one's before it has a lock");
	actor_set_lock(a, &s.mu);
	ok(actor_lookup_sink(NULL, actor_id_of(a)) == a, "with a lock, it is");
	s.tick = actor_timer_new(a, sh_tick, &s);
	actor_timer_arm(s.tick, 1);
	actor_loop_start(l);
	for (int i = 0; i < 2; i++) {
		pk[i] = (struct poker){ .s = &s, .id = actor_id_of(a), .n = 3000 };
		pthread_create(&th[i], NULL, poke_main, &pk[i]);
	}
	for (uint64_t i = 0; i < 3000; i++) {
		struct actor_msg *m = seq_msg(T_SEQ, i);
		if (actor_send(actor_id_of(a), m) != 0)
			actor_msg_free(m);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	wait_for(&s.handled, 3000, 10000);
	/* the work can end within the timer's first millisecond on a busy
	 * machine: give it (bounded) time to fire at least once */
	wait_for(&s.ticks, 1, 5000);
	pthread_mutex_lock(&s.mu);
	uint64_t handled = s.handled, sinks = s.sinks, aborts = s.aborts, outside = s.outside, ticks = s.ticks;
	pthread_mutex_unlock(&s.mu);
	is_int(pk[0].fails + pk[1].fails, 0, "every sink asked from the other threads was given");
	is_int(handled, 3000, "every message handled");
	ok(sinks == 6000 && aborts == 6000 && outside == 6000, "6000 sinks, aborts and direct lock holds (%llu %llu %llu)",
	   (unsigned long long)sinks, (unsigned long long)aborts, (unsigned long long)outside);
	ok(ticks > 0, "its timer ran among them (%llu ticks)", (unsigned long long)ticks);
	is_int(s.overlaps, 0, "handlers, timers, sinks and outside holds never overlapped");
	actor_loop_stop(l);
	actor_loop_join(l);
	actor_loop_free(l);
	actor_loop_free(l2);
	pthread_mutex_destroy(&s.mu);
	pthread_mutexattr_destroy(&ma);
}

/* ---- virtual time ---- */

struct vtrace {
	char log[512];
	size_t n;
};

static void vt_fire(struct actor *self, void *arg)
{
	struct vtrace *t = arg;
	(void)self;
	t->n += (size_t)snprintf(t->log + t->n, sizeof t->log - t->n, "T@%llu ", (unsigned long long)kvn_now_ms());
}

static struct vtrace *g_vt;

static int vt_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	(void)self;
	(void)arg;
	(void)reply;
	g_vt->n += (size_t)snprintf(g_vt->log + g_vt->n, sizeof g_vt->log - g_vt->n, "C%d@%llu ", err,
				    (unsigned long long)kvn_now_ms());
	return 0;
}

static void run_virtual(struct vtrace *t)
{
	struct actor_loop *l = actor_loop_new("t-virt");
	struct rec r = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct caller st = { 0 };
	struct actor *srv, *a;

	memset(t, 0, sizeof *t);
	g_vt = t;
	actor_loop_set_virtual(l, 1000);
	actor_spawn(l, &rec_ops, &r, 64, &srv);
	actor_spawn(l, &caller_ops, &st, 64, &a);
	struct actor_timer *t1 = actor_timer_new(a, vt_fire, t), *t2 = actor_timer_new(a, vt_fire, t);
	actor_timer_arm(t1, 50);
	actor_timer_arm(t2, 30);
	actor_call(a, actor_id_of(srv), seq_msg(T_SILENT, 1), 100, vt_reply, NULL); /* never answered */
	actor_call(a, actor_id_of(srv), seq_msg(T_ECHO, 2), 100, vt_reply, NULL);  /* answered at once */
	actor_loop_sim_run(l, 5000, 1000);
	t->n += (size_t)snprintf(t->log + t->n, sizeof t->log - t->n, "end@%llu", (unsigned long long)kvn_now_ms());
	actor_loop_free(l);
}

static void t_virtual_time(void)
{
	struct vtrace a, b;
	uint64_t t0 = kvn_now_ms();
	run_virtual(&a);
	uint64_t dt = kvn_now_ms() - t0;
	is_str(a.log, "C0@1000 T@1030 T@1050 C-8@1100 end@5000",
	       "messages first, then timers and the deadline in virtual order, clock read through kvn_now_ms");
	ok(dt < 1000, "5 virtual seconds took %llu real ms", (unsigned long long)dt);
	ok(kvn_now_ms() >= t0 + dt && kvn_now_ms() != 5000, "the real clock is back once the virtual loop is freed");
	run_virtual(&b);
	is_str(b.log, a.log, "a second run replays exactly");
}

/* The counters' visitors walk the X-macro list: every field, in struct
 * order, with its name and its value. */
struct visit {
	char names[512];
	const uint64_t *fields;
	int n, mismatched;
};

static void visit_one(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct visit *v = arg;
	if (!doc || !*doc || value != v->fields[v->n])
		v->mismatched++;
	v->n++;
	size_t len = strlen(v->names);
	snprintf(v->names + len, sizeof v->names - len, "%s%s", len ? " " : "", name);
}

static void t_stats_text(void)
{
	struct actor_stats as;
	struct net_stats ns;
	struct net_sim_stats ss;
	struct visit v;

	actor_get_stats(&as);
	v = (struct visit){ .fields = (const uint64_t *)&as };
	actor_stats_each(&as, visit_one, &v);
	is_int(v.n, sizeof as / sizeof(uint64_t), "actor_stats_each visits every counter");
	is_int(v.mismatched, 0, "each with its doc and the snapshot's value");
	is_str(v.names, "sent delivered dropped_dead dropped_full late_replies timeouts", "in list order");

	net_get_stats(&ns);
	v = (struct visit){ .fields = (const uint64_t *)&ns };
	net_stats_each(&ns, visit_one, &v);
	is_int(v.n, sizeof ns / sizeof(uint64_t), "net_stats_each visits every counter");
	is_int(v.mismatched, 0, "each with its doc and the snapshot's value");
	is_str(v.names, "frames_in frames_out bytes_in bytes_out auth_fail proto_err conns_open "
			"conns_accepted conns_refused", "in list order");

	ss = (struct net_sim_stats){ .sent = 5, .delivered = 4, .dropped = 1, .cut = 2 };
	v = (struct visit){ .fields = (const uint64_t *)&ss };
	net_sim_stats_each(&ss, visit_one, &v);
	is_int(v.n, sizeof ss / sizeof(uint64_t), "net_sim_stats_each visits every counter");
	is_int(v.mismatched, 0, "each with its doc and its value");

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	net_sim_stats_each(&ss, kvn_stat_fprint, f);
	fclose(f);
	is_str(text, "sent 5\ndelivered 4\ndropped 1\nduplicated 0\ndelayed 0\ncut 2\n",
	       "kvn_stat_fprint: one 'name value' line per counter");
	free(text);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "order_across_threads", t_order_across_threads },
		{ "mailbox_bound", t_mailbox_bound },
		{ "stale_handle", t_stale_handle },
		{ "call_reply_deadline", t_call_reply_deadline },
		{ "shutdown_drains", t_shutdown_drains },
		{ "timers", t_timers },
		{ "virtual_time", t_virtual_time },
		{ "stats_text", t_stats_text },
		{ "locked_actor", t_locked_actor },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN);
	return tap_run(tests, argc, argv);
}
