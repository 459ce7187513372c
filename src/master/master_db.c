/*
 * master_db: the master's side of the SQLite writer (dbw.c).  Owns the
 * requests it hands the writer (node rows, object operations of applied
 * events, deaths; full-sync parts are built in master_sync.c), holding plain
 * puts' operations for master.commit_linger, turning commits into DURABLE
 * notices to the peers, and the push-back when the writer falls behind.
 *
 * When master.db fails (a full disk, an I/O error, an operator's lock held
 * past the writer's busy timeout), durable puts must fail promptly with the
 * reason, and the master must neither spin on the failure nor stay wedged:
 *  - the failed request's node gets DURABLE with failed_upto = the request's
 *    seq and the reason: its peer answers exactly the durable puts waiting on
 *    events up to there KVN_EDB (events after it are in later requests,
 *    answered by their own outcome);
 *  - the events stay applied in memory (plain puts keep working, gets find
 *    them); the node is db_broken: its rows in master.db are repaired by its
 *    full sync, once master.db works again;
 *  - master.db is "degraded": one log line, then nothing is sent to the
 *    writer (events, rows, syncs fail at once, durable waiters with them)
 *    but DBW_PROBE, a WAL checkpoint and a write of the node rows, retried
 *    with exponential backoff and jitter;
 *  - the first probe that commits ends it: one log line, dead nodes' rows
 *    are written again, and the broken nodes' next acks ask for the full
 *    sync that rewrites their rows (never while degraded: that looped).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

/* Probes of a degraded master.db: from 100 ms, doubling, up to 2 s, so
 * recovery is noticed within about 2 s of space returning. */
#define MASTER_DB_PROBE_MIN_MS 100
#define MASTER_DB_PROBE_MAX_MS 2000

/* What a dbw request was for, so its reply can be judged. */
struct persist {
	enum master_persist_kind kind;
	char node_id[65];
	uint64_t boot_id, epoch;
	uint64_t seq; /* events/sync: durable_seq once committed; 0: none */
};

static void send_durable(struct master *ms, struct master_node *n)
{
	struct actor_msg *m = actor_msg_new(WIRE_DURABLE);
	/* The peer takes DURABLE from its master only.  A remote peer knows
	 * the master by its connection (the proxy sets src); an in-process one
	 * by our id, so say it: without it the all-in-one peer dropped every
	 * DURABLE and learned of the COMMIT from its next heartbeat's ack, up
	 * to peer.heartbeat_interval (1 s) later, which is what each durable
	 * put then waited. */
	m->src = actor_id_of(ms->self);
	if (proto_durable_enc(m, n->durable_seq) != 0 || actor_send(n->ref, m) != 0)
		actor_msg_free(m); /* the next DURABLE or ack carries it */
}

/* Fail the durable puts of n's events up to upto (their COMMIT failed). */
static void send_durable_fail(struct master *ms, struct master_node *n, uint64_t upto, const char *reason)
{
	struct actor_msg *m;

	if (upto <= n->durable_seq || !n->ref)
		return;
	m = actor_msg_new(WIRE_DURABLE);
	m->src = actor_id_of(ms->self); /* as send_durable */
	if (proto_durable_fail_enc(m, n->durable_seq, upto, reason) != 0 || actor_send(n->ref, m) != 0)
		actor_msg_free(m);
}

int master_db_resync_due(const struct master *ms, const struct master_node *n)
{
	return n->db_broken && !ms->db_degraded;
}

static void probe_tick(struct actor *self, void *arg);

static void probe_arm(struct master *ms)
{
	if (!ms->db_probe_timer)
		ms->db_probe_timer = actor_timer_new(ms->self, probe_tick, NULL);
	ms->db_probing = 1;
	actor_timer_arm(ms->db_probe_timer, kvn_backoff_next(&ms->db_backoff));
}

/* A request failed: enter (or stay in) the degraded state. */
static void db_degrade(struct master *ms, const char *reason)
{
	ms->db_failures++;
	if (reason && *reason && reason != ms->db_reason)
		snprintf(ms->db_reason, sizeof ms->db_reason, "%s", reason);
	if (ms->db_degraded)
		return;
	ms->db_degraded = 1;
	ms->db_degraded_ms = kvn_now_ms();
	ms->db_failures = 1;
	if (!ms->db_reason[0])
		snprintf(ms->db_reason, sizeof ms->db_reason, "%s", kvn_strerror(KVN_EDB));
	log_error("master: master.db degraded (%s): puts go on in memory, durable puts fail with KVN_EDB "
		  "until a write commits again (retried with backoff)",
		  ms->db_reason);
	if (!ms->db_probing) {
		kvn_backoff_init(&ms->db_backoff, MASTER_DB_PROBE_MIN_MS, MASTER_DB_PROBE_MAX_MS);
		probe_arm(ms);
	}
}

static void resend_dead(struct master *ms, struct master_node *n)
{
	struct actor_msg *req = actor_msg_new(DBW_NODE_DEAD);
	struct wire_w w;
	wire_w_init(&w);
	wire_w_str(&w, n->node_id);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0);
	master_db_call(ms, req, MASTER_P_DEAD, n, 0);
}

static void db_recovered(struct master *ms)
{
	struct master_node *n, *tmp;
	uint32_t broken = 0;

	ms->db_degraded = 0;
	ms->db_probing = 0;
	HASH_ITER(hh, ms->nodes, n, tmp) {
		broken += n->db_broken != 0;
		if (n->dead)
			resend_dead(ms, n); /* a death written meanwhile may have failed */
	}
	log_info("master: master.db recovered after %" PRIu64 " ms (%u requests failed meanwhile; last: %s): "
		 "durable puts accepted again, %u node(s) full-sync to repair their rows",
		 kvn_now_ms() - ms->db_degraded_ms, ms->db_failures, ms->db_reason, broken);
	ms->db_reason[0] = '\0';
}

static void persist_result(struct master *ms, struct persist *p, int rc, const char *reason)
{
	struct master_node *n = master_node_find(ms, p->node_id);

	if (rc == KVN_ECLOSED) {
		/* shutting down: the writer or we are going away */
		log_debug("master: dbw request for node %s abandoned at shutdown", KVN_Q(p->node_id));
		return;
	}
	if (p->kind == MASTER_P_PROBE) {
		if (rc == 0) {
			db_recovered(ms);
		} else {
			ms->db_failures++;
			if (reason && *reason)
				snprintf(ms->db_reason, sizeof ms->db_reason, "%s", reason);
			probe_arm(ms);
		}
		return;
	}
	if (rc) {
		MASTER_STAT_INC(db_errors);
		db_degrade(ms, reason);
	}
	if (p->kind == MASTER_P_NODE || p->kind == MASTER_P_DEAD)
		return; /* rows are written again at recovery */
	/* a newer boot, a death or a full sync replaced what this wrote */
	if (!n || n->boot_id != p->boot_id || n->persist_epoch != p->epoch)
		return;
	if (rc) {
		if (!n->db_broken)
			log_warn("master: node %s: master.db write failed: its durable seq stops at %" PRIu64
				 " until it full-syncs after master.db recovers",
				 KVN_Q(n->node_id), n->durable_seq);
		n->db_broken = 1;
		if (p->seq)
			send_durable_fail(ms, n, p->seq, ms->db_reason);
		return;
	}
	if (p->seq && !n->db_broken && p->seq > n->durable_seq) {
		n->durable_seq = p->seq;
		send_durable(ms, n);
	}
}

static int persist_done(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct master *ms = actor_state(self);

	ms->db_inflight--;
	if (ms->db_overloaded && ms->db_inflight <= ms->db_max_inflight / 2) {
		ms->db_overloaded = 0;
		log_info("master: SQLite writer caught up (%u requests in flight): EVENTS accepted again",
			 ms->db_inflight);
	}
	char reason[PROTO_REASON_MAX] = "";
	int rc = err ? err : reply->status;
	if (rc && !err && reply->meta_len) {
		struct wire_r r;
		wire_r_init(&r, reply->meta, reply->meta_len);
		wire_r_str(&r, reason, sizeof reason); /* our own writer's text */
	}
	if (rc && !reason[0])
		snprintf(reason, sizeof reason, "%s", kvn_strerror(rc));
	persist_result(ms, arg, rc, reason);
	free(arg);
	return 0;
}

/* True (and the request answered KVN_EBUSY with the node's ack) when the
 * writer is too far behind to take more: the peer keeps its events queued
 * and re-ships them, instead of the writer's mailbox overflowing and the
 * node having to full-sync. */
int master_db_behind(struct master *ms, const struct actor_msg *m, const struct master_node *n)
{
	if (ms->db_inflight < ms->db_max_inflight)
		return 0;
	if (!ms->db_overloaded) {
		ms->db_overloaded = 1;
		log_warn("master: SQLite writer behind (%u requests in flight): EVENTS and new full syncs "
			 "answered KVN_EBUSY until it catches up",
			 ms->db_inflight);
	}
	MASTER_STAT_INC(events_busy);
	master_reply_ack(ms, m, n, n->db_broken, KVN_EBUSY);
	return 1;
}

/* Send req to dbw as a call; the outcome reaches persist_result either way.
 * Takes req. */
static void hold_release(struct master *ms);

void master_db_call(struct master *ms, struct actor_msg *req, enum master_persist_kind kind,
		    const struct master_node *n, uint64_t seq)
{
	struct persist *p;
	int rc;

	if (kind != MASTER_P_EVENTS && kind != MASTER_P_PROBE)
		hold_release(ms); /* the writer sees everything in the master's order */
	p = kvn_xcalloc(1, sizeof *p);

	p->kind = kind;
	if (n) { /* a probe has none */
		snprintf(p->node_id, sizeof p->node_id, "%s", n->node_id);
		p->boot_id = n->boot_id;
		p->epoch = n->persist_epoch;
	}
	p->seq = seq;
	if (ms->db_degraded && kind != MASTER_P_PROBE) {
		/* degraded: only the probe writes; this fails now, with the
		 * reason (its node repairs by full sync after recovery) */
		actor_msg_free(req);
		persist_result(ms, p, KVN_EDB, ms->db_reason);
		free(p);
		return;
	}
	rc = actor_call(ms->self, ms->dbw, req, MASTER_DB_TIMEOUT_MS, persist_done, p);
	if (rc == 0) {
		ms->db_inflight++;
		MASTER_STAT_INC(db_requests);
	} else {
		actor_msg_free(req);
		persist_result(ms, p, rc == KVN_ECLOSED ? KVN_EDB : rc, kvn_strerror(rc));
		free(p);
	}
}

/* DBW_PROBE: the node rows (as many as fit one request; the others are
 * refreshed by their heartbeats) after a checkpoint attempt. */
static void probe_tick(struct actor *self, void *arg)
{
	struct master *ms = actor_state(self);
	struct actor_msg *req = actor_msg_new(DBW_PROBE);
	struct master_node *n, *tmp;
	struct wire_w rows, w;
	uint32_t cnt = 0;
	(void)arg;

	wire_w_init(&rows);
	HASH_ITER(hh, ms->nodes, n, tmp) {
		struct meta_node row;
		if (rows.len > DBW_SPLIT_BYTES - 512)
			break;
		master_node_row(n, &row);
		dbw_node_enc(&rows, &row);
		cnt++;
	}
	wire_w_init(&w);
	wire_w_u32(&w, cnt);
	wire_w_raw(&w, rows.buf, rows.len);
	wire_w_fini(&rows);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0); /* bounded above */
	master_db_call(ms, req, MASTER_P_PROBE, NULL, 0);
}

void master_db_failed(struct master *ms, const struct master_node *n, int rc)
{
	struct persist p = { .kind = MASTER_P_SYNC, .boot_id = n->boot_id, .epoch = n->persist_epoch };
	snprintf(p.node_id, sizeof p.node_id, "%s", n->node_id);
	persist_result(ms, &p, rc, kvn_strerror(rc));
}

void master_db_persist_node(struct master *ms, struct master_node *n)
{
	struct actor_msg *req = actor_msg_new(DBW_NODE);
	struct meta_node row;
	struct wire_w w;

	master_node_row(n, &row);
	wire_w_init(&w);
	dbw_node_enc(&w, &row);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0); /* bounded fields */
	n->persisted_ms = kvn_now_ms();
	master_db_call(ms, req, MASTER_P_NODE, n, 0);
}


/* The DBW_EVENTS request for ob's operations (ob is emptied). */
static struct actor_msg *ops_msg(struct master_node *n, struct master_opbuf *ob)
{
	struct actor_msg *req = actor_msg_new(DBW_EVENTS);
	int with_row = kvn_now_ms() - n->persisted_ms >= MASTER_ROW_PERSIST_MS;
	struct meta_node row;
	struct wire_w w;

	wire_w_init(&w);
	wire_w_str(&w, n->node_id);
	wire_w_u8(&w, (uint8_t)((with_row ? DBW_EV_ROW : 0) | (ob->now ? DBW_EV_NOW : 0)));
	if (with_row) {
		master_node_row(n, &row);
		dbw_node_enc(&w, &row);
		n->persisted_ms = kvn_now_ms();
	}
	wire_w_u32(&w, ob->n);
	wire_w_raw(&w, ob->w.buf, ob->w.len);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0); /* ops are cut at DBW_SPLIT_BYTES */
	wire_w_fini(&ob->w);
	wire_w_init(&ob->w);
	ob->n = 0;
	return req;
}

static void ops_flush(struct master *ms, struct master_node *n, struct master_opbuf *ob, uint64_t seq)
{
	master_db_call(ms, ops_msg(n, ob), MASTER_P_EVENTS, n, seq);
}

/* ---- held operations (master.commit_linger) ----
 *
 * Plain puts arriving one at a time made a writer request each: a message,
 * a wake-up of the writer's thread and a reply.  Their object operations
 * are now held for up to commit_linger and go as one request, flagged to
 * commit at once (they have lingered here).  Measured with 4 clients: the
 * writer's CPU per 4 KiB put 18 -> 11-13 us, the master's 28 -> 25 us;
 * batch-64 puts 93k/76k -> 156k/171k items/s (docs/metadata.md).
 *
 * Order is kept: only one node's operations are held at a time (another
 * node's batch sends them first), a batch with a durable put's event sends
 * them before itself (its ack waits on that COMMIT), and so does every other
 * writer request (master_db_call).  Held operations of an older
 * persist_epoch are dropped, not sent: the full sync, new boot or death that
 * bumped it replaces the node's rows. */

static void hold_send(struct master *ms, int at_exit)
{
	struct master_node *n = ms->holder;

	if (!n)
		return;
	ms->holder = NULL;
	if (ms->hold_armed && !at_exit) {
		/* the next holder gets its own full linger */
		actor_timer_cancel(ms->hold_timer);
		ms->hold_armed = 0;
	}
	struct master_opbuf ob = { .w = n->held_w, .n = n->held_n, .now = 1 };
	wire_w_init(&n->held_w);
	n->held_n = 0;
	if (n->held_epoch != n->persist_epoch) {
		wire_w_fini(&ob.w); /* superseded */
	} else if (!at_exit) {
		ops_flush(ms, n, &ob, n->held_seq);
	} else {
		/* the master is going away (no calls now): one-way, so the
		 * writer, stopped after us, still commits them */
		struct actor_msg *req = ops_msg(n, &ob);
		if (actor_send(ms->dbw, req) != 0)
			actor_msg_free(req);
	}
	wire_w_fini(&ob.w);
}

static void hold_release(struct master *ms)
{
	hold_send(ms, 0);
}

void master_db_hold_flush(struct master *ms)
{
	hold_release(ms);
}

void master_db_hold_tick(struct actor *self, void *arg)
{
	struct master *ms = actor_state(self);
	(void)arg;
	ms->hold_armed = 0;
	hold_release(ms);
}

void master_db_ops_commit(struct master *ms, struct master_node *n, struct master_opbuf *ob, uint64_t seq)
{
	if (ms->holder && (ms->holder != n || n->held_epoch != n->persist_epoch ||
			   n->held_w.len + ob->w.len > DBW_SPLIT_BYTES))
		hold_release(ms);
	if (ob->now || ms->linger_ms == 0) {
		hold_release(ms);
		ob->now = 1;
		ops_flush(ms, n, ob, seq);
		return;
	}
	if (!ms->holder) {
		wire_w_fini(&n->held_w);
		wire_w_init(&n->held_w);
		n->held_n = 0;
		n->held_epoch = n->persist_epoch;
		ms->holder = n;
	}
	wire_w_raw(&n->held_w, ob->w.buf, ob->w.len);
	n->held_n += ob->n;
	n->held_seq = seq;
	if (!ms->hold_armed) {
		ms->hold_armed = 1;
		actor_timer_arm(ms->hold_timer, ms->linger_ms);
	}
}

void master_db_ops_add(struct master *ms, struct master_node *n, struct master_opbuf *ob, uint8_t op,
		       const uint8_t *key, uint16_t klen, uint64_t gen, uint8_t tier, uint64_t size, uint8_t qflags)
{
	if (ob->w.len + 32u + klen > DBW_SPLIT_BYTES) {
		hold_release(ms); /* in order */
		ops_flush(ms, n, ob, 0);
	}
	dbw_op_enc(&ob->w, op, key, klen, gen, tier, size, qflags);
	ob->n++;
}

void master_db_ops_at_exit(struct master *ms)
{
	hold_send(ms, 1);
}
