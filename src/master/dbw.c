/*
 * dbw: the master's SQLite writer actor.  Owns the meta_db connection once
 * master_start hands it over, on its own loop thread, so no role loop ever
 * waits on an fsync (DESIGN.md sections 1 and 6).
 *
 * Group commit: the first write after a COMMIT opens a transaction and
 * activates a flush event; that event runs once the runtime has handed this
 * actor its current mailbox batch (libevent runs events activated during a
 * callback after it), so every request of the batch shares one COMMIT and
 * one fsync.  If more requests are already queued by then, the flush
 * re-activates itself so they join the group too, up to DBW_GROUP_MAX
 * requests or DBW_GROUP_MAX_WRITES writes (a deep queue of one-event
 * requests otherwise costs one fsync per 64 of them, the runtime's batch).
 * Requests are answered only after that COMMIT returned: status
 * 0, or KVN_EDB when their own writes failed or the COMMIT failed (then the
 * whole group was rolled back).  Requests are handled and answered in
 * arrival order, which is what lets the master treat a reply as "everything
 * I sent before is committed too".
 *
 * Message layouts (metadata, wire_w encoding; docs/protocol.md):
 *   row   = str node_id, str role, str addr, u64 dram_total, u64 dram_used,
 *           u64 disk_total, u64 disk_used, u64 last_seq, u64 last_seen_ms,
 *           str state
 *   DBW_NODE      = row
 *   DBW_EVENTS    = str node_id, u8 flags (enum dbw_ev_flag), [row if
 *                   DBW_EV_ROW], u32 n,
 *                   n x {u8 op, key, u64 gen, u8 tier, u64 size, u8 qflags}
 *   DBW_SYNC_PART = str node_id, u64 sync_id, u32 part, u32 n,
 *                   n x {key, u64 gen, u8 tier, u64 size, u8 qflags}
 *   DBW_QUEUE     = u32 n, n x {u8 op (enum dbw_qop), then by op:
 *                   LEASE: u64 id, key, u64 gen, str holder, u32 part_i,
 *                          u32 part_n, u64 deadline_ms
 *                   RENEW: u64 id, u64 deadline_ms;  RETURN: u64 id
 *                   CONSUME: u64 id, key, u64 gen, u8 keep
 *                   PART: u32 part_n, u8 trim}
 *                   answered (once committed) with u32 n, n x u8: 1 the
 *                   op changed a row, 0 it found nothing to change
 *   DBW_SYNC_END  = row, u64 sync_id, u32 parts
 *   DBW_NODE_DEAD = str node_id
 *   DBW_PROBE     = u32 n, n x row: the master's retry while master.db is
 *                   degraded: a WAL checkpoint (TRUNCATE) attempt, then
 *                   the rows in a group of their own, committed at once
 *
 * A reply with a non-zero status carries str reason (SQLite's message, e.g.
 * "database or disk is full (sqlite 13)"): the master passes it on to the
 * durable puts that fail with it.
 *   DBW_EPOCH     = u32 epoch
 *   DBW_FLOORS_CLEAR = u64 before_ms (wall clock: floors of keys whose
 *                   last row went at or before it), one-way
 */
#include "config.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"
#include "master/dbw_int.h"
#include "base/metrics.h"

static void note_reason(struct dbw *d)
{
	snprintf(d->reason, sizeof d->reason, "%s", meta_last_error(d->db));
}

/* ---- encoding shared with the master ---- */

void dbw_node_enc(struct wire_w *w, const struct meta_node *n)
{
	wire_w_str(w, n->node_id);
	wire_w_str(w, n->role);
	wire_w_str(w, n->addr);
	wire_w_u64(w, n->dram_total);
	wire_w_u64(w, n->dram_used);
	wire_w_u64(w, n->disk_total);
	wire_w_u64(w, n->disk_used);
	wire_w_u64(w, n->last_seq);
	wire_w_u64(w, n->last_seen_ms);
	wire_w_str(w, n->state);
}

int dbw_node_dec(struct wire_r *r, struct meta_node *n)
{
	memset(n, 0, sizeof *n);
	wire_r_str(r, n->node_id, sizeof n->node_id);
	wire_r_str(r, n->role, sizeof n->role);
	wire_r_str(r, n->addr, sizeof n->addr);
	n->dram_total = wire_r_u64(r);
	n->dram_used = wire_r_u64(r);
	n->disk_total = wire_r_u64(r);
	n->disk_used = wire_r_u64(r);
	n->last_seq = wire_r_u64(r);
	n->last_seen_ms = wire_r_u64(r);
	wire_r_str(r, n->state, sizeof n->state);
	return r->err;
}

void dbw_op_enc(struct wire_w *w, uint8_t op, const void *key, uint16_t klen, uint64_t gen,
		uint8_t tier, uint64_t size, uint8_t qflags)
{
	wire_w_u8(w, op);
	wire_w_key(w, key, klen);
	wire_w_u64(w, gen);
	wire_w_u8(w, tier);
	wire_w_u64(w, size);
	wire_w_u8(w, qflags);
}

/* ---- failed writes: counted, one line per request ---- */

void dbw_wfail_note(struct dbw_wfail *f, int rc, const void *key, size_t klen, uint64_t gen)
{
	DBW_STAT_INC(db_write_failed);
	if (f->n++ == 0) {
		f->first_rc = rc;
		if (key)
			kvn_key_printable(f->first, sizeof f->first, key, klen);
		else
			snprintf(f->first, sizeof f->first, "(node row)");
		f->first_gen = gen;
	}
}

int dbw_wfail_end(struct dbw *d, const struct dbw_wfail *f, const char *what, const char *node_id, uint32_t total)
{
	if (!f->n)
		return 0;
	note_reason(d);
	DBW_FAIL_LOG(d, "dbw: %s of node %s: %u of %u writes failed (first: %s gen %" PRIu64 ": %s)", what,
		     KVN_Q(node_id), f->n, total, f->first, f->first_gen, kvn_strerror(f->first_rc));
	return KVN_EDB;
}

/* ---- groups ---- */

static void arm_flush(struct dbw *d)
{
	if (!d->flush_armed) {
		d->flush_armed = 1;
		event_active(d->flush_ev, 0, 0);
	}
}

/* Join the open group, opening one if needed: 0, or KVN_EDB when its BEGIN
 * failed (the request's writes are refused, not run outside a group). */
int dbw_group_join(struct dbw *d)
{
	if (!d->open) {
		int rc = meta_begin(d->db);
		d->open = 1;
		d->opened_ms = kvn_now_ms();
		d->group_err = rc;
		if (rc) {
			note_reason(d);
			DBW_FAIL_LOG(d, "dbw: BEGIN failed (%s): this group's writes are refused", d->reason);
		}
		arm_flush(d);
	}
	return d->group_err ? KVN_EDB : 0;
}

/* COMMIT the open group and send every reply it owes. */
static void group_end(struct dbw *d)
{
	int rc = 0;

	if (d->open) {
		if (!d->group_err) {
			uint64_t t0 = kvn_now_ns();
			rc = meta_commit(d->db);
			/* failed ones too: a COMMIT that hangs on a lock and fails
			 * is latency the writer's callers paid */
			kvn_metric_commit_us((kvn_now_ns() - t0) / 1000);
			if (rc) {
				DBW_STAT_INC(db_commit_failed);
				note_reason(d);
				DBW_FAIL_LOG(d, "dbw: COMMIT failed (%s): the group's %zu requests were rolled back",
					     d->reason, d->nwaits);
			} else {
				DBW_STAT_INC(db_commits);
			}
		}
		d->open = 0;
		d->group_err = 0;
		d->group_writes = 0;
	}
	d->urgent = 0;
	for (size_t i = 0; i < d->nwaits; i++) {
		const struct dbw_wait *w = &d->waits[i];
		struct actor_msg req = { .type = w->type, .corr = w->corr, .src = w->src };
		struct actor_msg *r = actor_msg_new(w->type);
		int status = rc ? KVN_EDB : w->status;
		if (!status && w->res) {
			struct wire_w ww;
			wire_w_init(&ww);
			wire_w_u32(&ww, w->nres);
			wire_w_raw(&ww, w->res, w->nres);
			if (wire_w_to_msg(&ww, r) != 0)
				wire_w_fini(&ww);
		}
		free(w->res);
		if (status) {
			/* the reason, for the durable puts that fail with it */
			struct wire_w ww;
			wire_w_init(&ww);
			wire_w_str(&ww, d->reason[0] ? d->reason : kvn_strerror(status));
			if (wire_w_to_msg(&ww, r) != 0)
				wire_w_fini(&ww);
		}
		actor_reply(d->self, &req, r, status);
	}
	d->nwaits = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dbw *d = arg;
	int room = d->nwaits < DBW_GROUP_MAX && d->group_writes < DBW_GROUP_MAX_WRITES;
	(void)fd;
	(void)what;
	event_del(d->flush_ev); /* a linger timeout may still be pending */
	/* More requests already queued: let the next mailbox batch join this
	 * group (the runtime re-activated our wake-up before this ran, so it
	 * runs first), up to a bound that keeps the group's latency small. */
	if (actor_mailbox_depth(d->self) > 0 && room) {
		event_active(d->flush_ev, 0, 0);
		return;
	}
	if (d->open && !d->urgent && room) {
		uint64_t age = kvn_now_ms() - d->opened_ms;
		if (age < d->linger_ms) {
			struct timeval tv = { (time_t)((d->linger_ms - age) / 1000),
					      (suseconds_t)((d->linger_ms - age) % 1000 * 1000) };
			event_add(d->flush_ev, &tv);
			return;
		}
	}
	d->flush_armed = 0;
	group_end(d);
}

/* After a request joined: a lingering group that must not wait any longer
 * (an urgent request, or it is full) commits now. */
static void flush_now_if_due(struct dbw *d)
{
	if (d->flush_armed &&
	    (d->urgent || d->nwaits >= DBW_GROUP_MAX || d->group_writes >= DBW_GROUP_MAX_WRITES))
		event_active(d->flush_ev, 0, 0);
}

static void wait_add(struct dbw *d, const struct actor_msg *m, int status)
{
	if (d->nwaits == d->capwaits) {
		d->capwaits = d->capwaits ? d->capwaits * 2 : 64;
		void *v = realloc(d->waits, d->capwaits * sizeof *d->waits);
		if (!v)
			kvn_fatal("out of memory");
		d->waits = v;
	}
	d->waits[d->nwaits++] = (struct dbw_wait){ m->src, m->corr, m->type, status, d->res, d->nres };
	d->res = NULL;
	d->nres = 0;
	arm_flush(d);
}

/* ---- requests ---- */

static int row_write(struct dbw *d, const struct meta_node *row, struct dbw_wfail *f)
{
	int rc = meta_node_upsert(d->db, row);
	if (rc)
		dbw_wfail_note(f, rc, NULL, 0, 0);
	return rc;
}

static int dbw_on_node(struct dbw *d, struct actor_msg *m)
{
	struct meta_node row;
	struct dbw_wfail f = { 0 };
	struct wire_r r;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	dbw_node_dec(&r, &row);
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	row_write(d, &row, &f);
	return dbw_wfail_end(d, &f, "node update", row.node_id, 1);
}

static int dbw_on_events(struct dbw *d, struct actor_msg *m)
{
	struct meta_node row;
	struct dbw_wfail f = { 0 };
	struct wire_r r;
	char node_id[65];
	uint32_t n;
	uint8_t flags, has_row;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	wire_r_str(&r, node_id, sizeof node_id);
	flags = wire_r_u8(&r);
	has_row = (flags & DBW_EV_ROW) != 0;
	if (flags & DBW_EV_NOW)
		d->urgent = 1;
	if (has_row)
		dbw_node_dec(&r, &row);
	n = wire_r_u32(&r);
	if (r.err)
		return r.err;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	/* the row first: objects reference their node */
	if (has_row)
		row_write(d, &row, &f);
	d->group_writes += n + has_row;
	for (uint32_t i = 0; i < n && !r.err; i++) {
		struct meta_object o = { .node_id = node_id };
		uint16_t klen = 0;
		uint8_t op = wire_r_u8(&r);
		o.key = wire_r_key(&r, &klen);
		o.klen = klen;
		o.gen = wire_r_u64(&r);
		o.tier = wire_r_u8(&r);
		o.size = wire_r_u64(&r);
		o.qflags = wire_r_u8(&r);
		if (r.err)
			break;
		rc = op == DBW_OP_PUT ? meta_object_put(d->db, &o)
		     : op == DBW_OP_DEL ? meta_object_del(d->db, o.key, o.klen, o.gen)
					: KVN_EPROTO;
		if (rc)
			dbw_wfail_note(&f, rc, o.key, o.klen, o.gen);
	}
	if ((rc = wire_r_end(&r)) != 0) {
		log_error("dbw: malformed events request for node %s", KVN_Q(node_id));
		return rc;
	}
	return dbw_wfail_end(d, &f, "events", node_id, n + has_row);
}

static void stage_free(struct dbw *d, struct dbw_stage *s)
{
	HASH_DEL(d->stages, s);
	for (uint32_t i = 0; i < s->nparts; i++)
		actor_msg_free(s->parts[i]);
	free(s->parts);
	free(s);
}

/* Header of a part: node id, sync id, part number, entry count; leaves r
 * at the first entry. */
static int part_open(struct wire_r *r, const struct actor_msg *m, char *node_id, uint64_t *id,
		     uint32_t *part, uint32_t *n)
{
	wire_r_init(r, m->meta, m->meta_len);
	wire_r_str(r, node_id, 65);
	*id = wire_r_u64(r);
	*part = wire_r_u32(r);
	*n = wire_r_u32(r);
	return r->err;
}

/* One-way: keep the part (ACTOR_KEEP) or refuse it (0). */
static int dbw_on_sync_part(struct dbw *d, struct actor_msg *m)
{
	char node_id[65];
	struct dbw_stage *s;
	struct wire_r r;
	uint64_t id;
	uint32_t part, n;

	if (part_open(&r, m, node_id, &id, &part, &n) != 0) {
		log_error("dbw: malformed full-sync part");
		return 0;
	}
	HASH_FIND_STR(d->stages, node_id, s);
	if (s && s->sync_id != id) {
		stage_free(d, s); /* an older, abandoned sync of that node */
		s = NULL;
	}
	if (!s) {
		s = kvn_xcalloc(1, sizeof *s);
		snprintf(s->node_id, sizeof s->node_id, "%s", node_id);
		s->sync_id = id;
		HASH_ADD_STR(d->stages, node_id, s);
	}
	if (part != s->nparts) {
		s->broken = 1;
		return 0;
	}
	if (s->nparts == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		void *v = realloc(s->parts, s->cap * sizeof *s->parts);
		if (!v)
			kvn_fatal("out of memory");
		s->parts = v;
	}
	s->parts[s->nparts++] = m;
	return ACTOR_KEEP;
}

static int dbw_on_sync_end(struct dbw *d, struct actor_msg *m)
{
	struct meta_object *objs = NULL;
	struct meta_node row;
	struct dbw_wfail f = { 0 };
	struct dbw_stage *s;
	struct wire_r r;
	uint64_t id;
	uint32_t parts;
	size_t total = 0, k = 0;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	dbw_node_dec(&r, &row);
	id = wire_r_u64(&r);
	parts = wire_r_u32(&r);
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	HASH_FIND_STR(d->stages, row.node_id, s);
	if (!s || s->sync_id != id || s->broken || s->nparts != parts) {
		log_error("dbw: full sync of node %s incomplete (%u of %u parts): not stored", KVN_Q(row.node_id),
			  s && s->sync_id == id ? s->nparts : 0, parts);
		if (s)
			stage_free(d, s);
		return KVN_ESTATE;
	}
	for (uint32_t i = 0; i < s->nparts; i++) {
		char nid[65];
		uint32_t pn, n;
		uint64_t pid;
		(void)part_open(&r, s->parts[i], nid, &pid, &pn, &n);
		total += n;
	}
	objs = kvn_xcalloc(total ? total : 1, sizeof *objs);
	for (uint32_t i = 0; i < s->nparts && rc == 0; i++) {
		char nid[65];
		uint32_t pn, n;
		uint64_t pid;
		(void)part_open(&r, s->parts[i], nid, &pid, &pn, &n);
		for (uint32_t j = 0; j < n && !r.err; j++, k++) {
			uint16_t klen = 0;
			objs[k].key = wire_r_key(&r, &klen);
			objs[k].klen = klen;
			objs[k].gen = wire_r_u64(&r);
			objs[k].tier = wire_r_u8(&r);
			objs[k].size = wire_r_u64(&r);
			objs[k].qflags = wire_r_u8(&r);
		}
		rc = wire_r_end(&r);
	}
	if (rc == 0 && (rc = dbw_group_join(d)) == 0) {
		d->group_writes += (uint32_t)total + 1;
		if (row_write(d, &row, &f) == 0) {
			rc = meta_objects_replace_node(d->db, row.node_id, objs, total);
			if (rc)
				dbw_wfail_note(&f, rc, NULL, 0, 0);
		}
		rc = dbw_wfail_end(d, &f, "full sync", row.node_id, 2);
	} else if (rc && rc != KVN_EDB) {
		log_error("dbw: malformed full-sync part of node %s", KVN_Q(row.node_id));
	}
	free(objs);
	stage_free(d, s);
	return rc;
}

static int dbw_on_node_dead(struct dbw *d, struct actor_msg *m)
{
	char node_id[65];
	struct dbw_wfail f = { 0 };
	struct wire_r r;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	wire_r_str(&r, node_id, sizeof node_id);
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	if ((rc = meta_objects_set_state(d->db, node_id, "lost")) != 0)
		dbw_wfail_note(&f, rc, NULL, 0, 0);
	rc = meta_node_set_state(d->db, node_id, "dead");
	if (rc && rc != KVN_ENOTFOUND) /* a node whose row never made it */
		dbw_wfail_note(&f, rc, NULL, 0, 0);
	return dbw_wfail_end(d, &f, "death", node_id, 2);
}

/* The master's retry after a failure: checkpoint (a WAL that filled the
 * disk gives its space back once the checkpoint can write the database
 * file; TRUNCATE then shrinks it to nothing), then write the node rows in
 * a group of their own, committed at once: its success is the master's
 * sign that commits work again. */
static int dbw_on_probe(struct dbw *d, struct actor_msg *m)
{
	struct dbw_wfail f = { 0 };
	struct wire_r r;
	uint32_t n;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	n = wire_r_u32(&r);
	if (r.err)
		return r.err;
	if (d->open)
		group_end(d); /* what came before is answered first, in order */
	/* an attempt: a checkpoint that cannot write the database file yet
	 * (logged, rate-limited) does not mean a WAL append cannot */
	(void)meta_checkpoint(d->db);
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	d->urgent = 1;
	for (uint32_t i = 0; i < n && !r.err; i++) {
		struct meta_node row;
		if (dbw_node_dec(&r, &row) == 0)
			row_write(d, &row, &f);
	}
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	d->group_writes += n;
	return dbw_wfail_end(d, &f, "probe", "(all)", n);
}

/* The master raises its generation epoch above one a peer reported; its
 * reply (after the COMMIT) is what lets it hand out generations again. */
static int dbw_on_epoch(struct dbw *d, struct actor_msg *m)
{
	struct wire_r r;
	uint32_t epoch;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	epoch = wire_r_u32(&r);
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	d->group_writes++;
	if ((rc = meta_epoch_raise(d->db, epoch)) != 0) {
		DBW_STAT_INC(db_write_failed);
		log_error("dbw: epoch %u not recorded: %s", epoch, kvn_strerror(rc));
		return KVN_EDB;
	}
	return 0;
}

/* The master knows no node holds a generation it does not index: master.db's
 * floors (sql/002-floors.sql) are needless.  A failure leaves them (they
 * only refuse generations no node holds). */
static int dbw_on_floors_clear(struct dbw *d, struct actor_msg *m)
{
	struct wire_r r;
	uint64_t before;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	before = wire_r_u64(&r);
	if ((rc = wire_r_end(&r)) != 0)
		return rc;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	d->group_writes++;
	if ((rc = meta_floors_clear(d->db, before)) != 0) {
		DBW_STAT_INC(db_write_failed);
		return KVN_EDB;
	}
	return 0;
}

/* Every request the writer takes.  A handler returns the request's status
 * (answered once its group is committed) or ACTOR_KEEP (a full-sync part,
 * kept until DBW_SYNC_END, never answered).  urgent: the group commits at
 * once rather than lingering (DBW_EVENTS makes it urgent itself when
 * flagged DBW_EV_NOW). */
static const struct dbw_handler {
	uint16_t type;
	int urgent;
	int (*fn)(struct dbw *d, struct actor_msg *m);
} dbw_handlers[] = {
	{ DBW_NODE, 0, dbw_on_node },
	{ DBW_EVENTS, 0, dbw_on_events },
	{ DBW_SYNC_PART, 0, dbw_on_sync_part },
	{ DBW_SYNC_END, 1, dbw_on_sync_end },
	{ DBW_NODE_DEAD, 1, dbw_on_node_dead },
	{ DBW_PROBE, 1, dbw_on_probe },
	{ DBW_EPOCH, 1, dbw_on_epoch },
	{ DBW_FLOORS_CLEAR, 0, dbw_on_floors_clear },
	{ DBW_QUEUE, 1, dbw_on_queue },
};

static int dbw_handle(struct actor *self, struct actor_msg *m)
{
	struct dbw *d = actor_state(self);
	const struct dbw_handler *h = NULL;
	int status = KVN_EPROTO, keep = 0;

	for (size_t i = 0; i < sizeof dbw_handlers / sizeof dbw_handlers[0]; i++)
		if (dbw_handlers[i].type == m->type)
			h = &dbw_handlers[i];
	if (h) {
		status = h->fn(d, m);
		if (status == ACTOR_KEEP) {
			keep = ACTOR_KEEP;
			status = 0;
		}
		if (h->urgent)
			d->urgent = 1;
	} else {
		log_error("dbw: unexpected message type 0x%x", m->type);
	}
	if (m->corr && !keep)
		wait_add(d, m, status);
	free(d->res); /* a one-way or refused request's results: nobody to tell */
	d->res = NULL;
	d->nres = 0;
	flush_now_if_due(d);
	return keep;
}

static void dbw_fini(struct actor *self)
{
	struct dbw *d = actor_state(self);
	struct dbw_stage *s, *tmp;

	/* what was accepted is committed before the connection closes (a
	 * simulated crash loses it, as a real one would) */
	if (!d->crashed)
		group_end(d);
	HASH_ITER(hh, d->stages, s, tmp)
		stage_free(d, s);
	event_free(d->flush_ev);
	meta_close(d->db);
	for (size_t i = 0; i < d->nwaits; i++)
		free(d->waits[i].res);
	free(d->res);
	free(d->waits);
	free(d);
}

void dbw_crash(struct actor *self)
{
	struct dbw *d = actor_state(self);
	d->crashed = 1;
	actor_destroy(self);
}

static const struct actor_ops dbw_ops = {
	.name = "dbw",
	.handle = dbw_handle,
	.fini = dbw_fini,
};

int dbw_spawn(struct actor_loop *l, struct meta_db *db, uint32_t mailbox, uint64_t linger_ms, actor_id *out)
{
	struct dbw *d;
	struct actor *a;
	int rc;

	if (!l || !db || !mailbox)
		return KVN_EINVAL;
	d = kvn_xcalloc(1, sizeof *d);
	d->db = db;
	d->linger_ms = linger_ms;
	kvn_ratelimit_init(&d->fail_rl, 10000, 5);
	meta_set_busy_timeout(db, DBW_BUSY_MS);
	d->flush_ev = event_new(actor_loop_base(l), -1, 0, flush_cb, d);
	if (!d->flush_ev) {
		free(d);
		return KVN_ENOMEM;
	}
	if ((rc = actor_spawn(l, &dbw_ops, d, mailbox, &a)) != 0) {
		event_free(d->flush_ev);
		free(d);
		return rc;
	}
	d->self = a;
	*out = actor_id_of(a);
	return 0;
}
