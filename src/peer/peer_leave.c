/*
 * peer_leave: the peer's clean stop (SIGTERM), before its loop stops.  Owns
 * the sequence and its one deadline (peer.stop_timeout):
 *   1. flush: peer.flush_on_stop writes DRAM-only values to disk
 *      (peer_tier_flush; at once without a disk tier);
 *   2. ship: every event produced so far is acknowledged by the master, so
 *      no put this peer acknowledged is missing from routing;
 *   3. PEER_LEAVE: the master drops this node's locations at once (gets
 *      answer KVN_ENOTFOUND now, not KVN_EPEERDOWN until master.node_timeout)
 *      and this peer never attaches again in this process.
 * The caller is usually not an actor (kvnode.c's main thread): the request
 * reaches the peer as an internal message, and the answer is a callback on
 * the peer's loop thread.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "peer/peer_int.h"
#include "base/base.h"

/* How often the ship step looks at the outbox: acks arrive through the
 * event stream's own callbacks, this only notices them (and the deadline). */
#define LEAVE_POLL_MS 10

enum leave_step { LEAVE_FLUSH = 1, LEAVE_SHIP, LEAVE_SENT, LEAVE_DONE };

struct peer_leave_op {
	peer_leave_fn done; /* NULL once called */
	void *arg;
	uint64_t deadline_ms, flush_deadline_ms;
	uint64_t target_seq; /* events up to this must be acknowledged first */
	int step;
	struct actor_timer *timer; /* freed with the actor */
};

/* What the internal request carries (never on the wire: >= WIRE_INTERNAL). */
struct leave_req {
	peer_leave_fn done;
	void *arg;
	uint64_t deadline_ms;
};

int peer_leave(struct actor *peer, uint64_t deadline_ms, peer_leave_fn done, void *arg)
{
	struct leave_req rq = { .done = done, .arg = arg, .deadline_ms = deadline_ms };
	struct actor_msg *m;
	int rc;

	if (!peer || !done)
		return KVN_EINVAL;
	m = actor_msg_new(PEER_MSG_LEAVE);
	m->meta = kvn_xmalloc(sizeof rq);
	memcpy(m->meta, &rq, sizeof rq);
	m->meta_len = sizeof rq;
	m->src_role = AUTH_ROLE_INTERNAL;
	rc = actor_send(actor_id_of(peer), m);
	if (rc)
		actor_msg_free(m);
	return rc;
}

static void leave_finish(struct peer *p, int status)
{
	struct peer_leave_op *op = p->leave;
	peer_leave_fn done = op->done;

	op->step = LEAVE_DONE;
	op->done = NULL;
	actor_timer_cancel(op->timer);
	if (done)
		done(op->arg, status);
}

static int on_leave_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct peer *p = actor_state(self);
	(void)arg;

	if (!p->leave || p->leave->step != LEAVE_SENT)
		return 0;
	if (err || !reply) {
		leave_finish(p, err ? err : KVN_EPROTO);
		return 0;
	}
	if (reply->status == 0)
		p->attached = 0; /* the master forgot this node; p->left keeps it away */
	leave_finish(p, reply->status);
	return 0;
}

static void leave_send(struct peer *p)
{
	struct peer_leave_op *op = p->leave;
	struct proto_node n;
	struct actor_msg *m;
	uint64_t now = kvn_now_ms();
	int rc;

	op->step = LEAVE_SENT;
	/* from here on this process never attaches again: an event the
	 * master refuses (the node is gone) must not bring it back */
	p->left = 1;
	peer_fill_node(p, &n);
	m = actor_msg_new(WIRE_PEER_LEAVE);
	rc = proto_node_enc(m, &n);
	if (rc == 0)
		rc = actor_call(p->self, p->master, m, op->deadline_ms > now ? op->deadline_ms - now : 1, on_leave_reply,
				NULL);
	if (rc) {
		actor_msg_free(m);
		leave_finish(p, rc);
	}
}

/* Step 2, polled: every event up to target acknowledged, then LEAVE. */
static void leave_ship(struct peer *p)
{
	struct peer_leave_op *op = p->leave;

	if (p->attached && !p->syncing && p->acked_seq >= op->target_seq) {
		leave_send(p);
		return;
	}
	if (!p->attached && (!p->attaching || p->link_state != LINK_ATTACHED)) {
		/* no master to tell (it is gone or refuses us, and a retry of the
		 * attach is all that is in flight): waiting for the deadline, or
		 * for that retry's connect timeout, would only delay the stop */
		leave_finish(p, KVN_ECONN);
		return;
	}
	if (kvn_now_ms() >= op->deadline_ms) {
		leave_finish(p, KVN_ETIMEDOUT);
		return;
	}
	peer_ship(p);
	actor_timer_arm(op->timer, LEAVE_POLL_MS);
}

/* Step 1: peer.flush_on_stop: with a disk tier, DRAM-only values are
 * written to disk (each one's tier move joins the outbox, which step 2
 * ships); peer_tier_flush calls peer_leave_flushed when done, and
 * leave_tick does at op->flush_deadline_ms at the latest. */
static void leave_flush(struct peer *p)
{
	if (!peer_tier_flush(p, p->leave->flush_deadline_ms))
		peer_leave_flushed(p, 0);
}

void peer_leave_flushed(struct peer *p, int status)
{
	struct peer_leave_op *op = p->leave;

	if (!op || op->step != LEAVE_FLUSH)
		return;
	if (status)
		log_warn("stop: the flush of DRAM values to disk did not finish (%s): values only in DRAM are "
			 "lost with this process",
			 kvn_strerror(status));
	op->step = LEAVE_SHIP;
	/* puts that commit from now on are not waited for: their replies
	 * wait for acks that never come, and they are answered KVN_ECLOSED
	 * when the peer stops */
	op->target_seq = p->last_seq;
	leave_ship(p);
}

static void leave_tick(struct actor *self, void *arg)
{
	struct peer *p = actor_state(self);
	(void)arg;

	if (!p->leave)
		return;
	if (p->leave->step == LEAVE_SHIP)
		leave_ship(p);
	else if (p->leave->step == LEAVE_FLUSH && kvn_now_ms() >= p->leave->flush_deadline_ms)
		peer_leave_flushed(p, KVN_ETIMEDOUT);
	else if (p->leave->step == LEAVE_FLUSH)
		actor_timer_arm(p->leave->timer, LEAVE_POLL_MS);
}

void peer_on_leave_req(struct peer *p, struct actor_msg *m)
{
	struct peer_leave_op *op = p->leave;
	struct leave_req rq;
	uint64_t now = kvn_now_ms();

	/* an internal message only (the frame decoder refuses its type) */
	if (m->src_role != AUTH_ROLE_INTERNAL || m->meta_len != sizeof rq)
		return;
	memcpy(&rq, m->meta, sizeof rq);
	if (!rq.done)
		return;
	if (op && op->step != LEAVE_DONE) {
		rq.done(rq.arg, KVN_EBUSY); /* one leave at a time */
		return;
	}
	if (p->left) {
		rq.done(rq.arg, 0); /* the master was told already */
		return;
	}
	if (!op) {
		op = kvn_xcalloc(1, sizeof *op);
		op->timer = actor_timer_new(p->self, leave_tick, NULL);
		p->leave = op;
	}
	op->done = rq.done;
	op->arg = rq.arg;
	op->deadline_ms = rq.deadline_ms;
	/* the flush may take three quarters of the time: LEAVE still goes */
	op->flush_deadline_ms = rq.deadline_ms > now ? now + (rq.deadline_ms - now) / 4 * 3 : now;
	op->step = LEAVE_FLUSH;
	actor_timer_arm(op->timer, LEAVE_POLL_MS);
	leave_flush(p);
}

void peer_leave_fini(struct peer *p)
{
	struct peer_leave_op *op = p->leave;

	if (!op)
		return;
	if (op->done) {
		peer_leave_fn done = op->done;
		op->done = NULL;
		done(op->arg, KVN_ECLOSED);
	}
	free(op);
	p->leave = NULL;
}
