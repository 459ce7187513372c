/*
 * master_lease: the consumer queue's requests (DESIGN.md section 8):
 * LEASE, RELEASE and RENEW.  Each marks its samples busy, writes to
 * master.db through one DBW_QUEUE call, and answers once the writer has:
 * only what master.db recorded is handed out or ended.  The samples
 * themselves are master_queue.c's.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_queue_int.h"

/* ---- requests to the writer ---- */

struct qcall {
	enum { QC_LEASE, QC_RELEASE, QC_RENEW } kind;
	struct actor_msg req; /* type, corr, src of the client's request */
	uint8_t flags;        /* RELEASE */
	uint32_t n;
	uint64_t *ids;        /* n lease ids (0: refused before the write) */
	int32_t *status;      /* n */
	uint64_t *deadline;   /* n: RENEW's new deadlines */
	uint32_t nops;        /* DBW ops of the part being built (LEASE: PART first) */
	uint32_t part_i, part_n;
	/* RELEASE and RENEW: their writes go in parts below DBW_SPLIT_BYTES
	 * (internal messages are capped at WIRE_MAX_META too); each id's
	 * write status once its part is answered, and the parts still out */
	int32_t *wrc;
	uint32_t left;
};

/* One DBW_QUEUE call: ids[first..end) of c (LEASE: its one call). */
struct qpart {
	struct qcall *c;
	uint32_t first, end;
};

static void qcall_free(struct qcall *c)
{
	free(c->ids);
	free(c->status);
	free(c->deadline);
	free(c->wrc);
	free(c);
}

static struct qcall *qcall_new(int kind, const struct actor_msg *m, uint32_t n)
{
	struct qcall *c = kvn_xcalloc(1, sizeof *c);
	c->kind = kind;
	c->req.type = m->type;
	c->req.corr = m->corr;
	c->req.src = m->src;
	c->n = n;
	c->ids = kvn_xcalloc(n ? n : 1, sizeof *c->ids);
	c->status = kvn_xcalloc(n ? n : 1, sizeof *c->status);
	c->deadline = kvn_xcalloc(n ? n : 1, sizeof *c->deadline);
	c->wrc = kvn_xcalloc(n ? n : 1, sizeof *c->wrc);
	return c;
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err);

/* Send the ops of ids[first..end) (w: u32 count first, filled in here
 * from c->nops) as one DBW_QUEUE call.  w is reset either way. */
static int qcall_send(struct master *ms, struct qcall *c, struct wire_w *w, uint32_t first, uint32_t end)
{
	struct actor_msg *req = actor_msg_new(DBW_QUEUE);
	struct qpart *p;
	int rc;

	if (w->err || w->len < 4) {
		rc = w->err ? w->err : KVN_EPROTO;
		wire_w_fini(w);
		actor_msg_free(req);
		return rc;
	}
	for (int i = 0; i < 4; i++) /* the count, little-endian as wire_w writes it */
		w->buf[i] = (uint8_t)(c->nops >> (8 * i));
	if ((rc = wire_w_to_msg(w, req)) != 0) {
		wire_w_fini(w);
		actor_msg_free(req);
		return rc;
	}
	wire_w_fini(w);
	MASTER_STAT_INC(db_requests);
	master_db_hold_flush(ms); /* the writer sees everything in the master's order */
	p = kvn_xcalloc(1, sizeof *p);
	*p = (struct qpart){ c, first, end };
	if ((rc = actor_call(ms->self, ms->dbw, req, MASTER_DB_TIMEOUT_MS, on_reply, p)) != 0) {
		actor_msg_free(req);
		free(p);
		return rc;
	}
	ms->db_inflight++;
	return 0;
}

/* The writer cannot take this now: answered at once. */
static int refuse_busy(struct master *ms, const struct actor_msg *m)
{
	int rc = ms->db_degraded ? KVN_EDB : ms->db_inflight >= ms->db_max_inflight ? KVN_EBUSY : 0;
	if (rc)
		actor_reply_status(ms->self, m, rc);
	return rc;
}

static uint64_t cut_ttl(const struct master *ms, uint64_t ttl)
{
	return ttl < ms->lease_ttl_max_ms ? ttl : ms->lease_ttl_max_ms;
}

/* ---- LEASE ---- */

/* Note a partition count: 1 when it is new to the recent list (the
 * writer then trims queue_parts to the same 8). */
static int part_note(struct master *ms, uint32_t n)
{
	uint32_t i;
	for (i = 0; i < ms->nqparts && ms->qparts[i] != n; i++)
		;
	int fresh = i == ms->nqparts;
	if (fresh && ms->nqparts < 8)
		ms->nqparts++;
	if (i >= ms->nqparts)
		i = ms->nqparts - 1;
	memmove(&ms->qparts[1], &ms->qparts[0], i * sizeof ms->qparts[0]);
	ms->qparts[0] = n;
	return fresh;
}

int master_on_lease(struct master *ms, struct actor_msg *m)
{
	struct proto_lease_req lq;
	struct master_qent *q, *next;
	struct qcall *c;
	struct wire_w w;
	uint64_t now = kvn_wall_ms(), deadline;
	size_t bytes = 4;
	int rc;

	if (proto_lease_dec(m, &lq) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	if (refuse_busy(ms, m))
		return 0;
	if (ms->lease_ctr + lq.max > UINT32_MAX) {
		/* lease ids are epoch << 32 | counter: 4 billion in one master
		 * life; a restart starts a new epoch */
		if (!ms->lease_ids_out_logged++)
			log_error("master: this master handed out 2^32 lease ids: LEASE answers KVN_EBUSY until "
				  "it is restarted (a new epoch)");
		actor_reply_status(ms->self, m, KVN_EBUSY);
		return 0;
	}
	deadline = now + cut_ttl(ms, lq.ttl_ms);
	c = qcall_new(QC_LEASE, m, lq.max);
	c->part_i = lq.part_i;
	c->part_n = lq.part_n;
	wire_w_init(&w);
	wire_w_u32(&w, 0);
	wire_w_u8(&w, DBW_Q_PART);
	wire_w_u32(&w, lq.part_n);
	wire_w_u8(&w, (uint8_t)part_note(ms, lq.part_n));
	c->nops = 1;
	c->n = 0;
	int newest = (master_queue_broken() & MASTER_QS_ORDER) != 0;
	struct master_qent_list *lists[2] = { &ms->qpool, (master_queue_broken() & MASTER_QS_DOUBLE_LEASE) ? &ms->qleased : NULL };
	for (int li = 0; li < 2 && c->n < lq.max; li++) {
		if (!lists[li])
			continue;
		for (q = newest ? TAILQ_LAST(lists[li], master_qent_list) : TAILQ_FIRST(lists[li]); q && c->n < lq.max;
		     q = next) {
			next = newest ? TAILQ_PREV(q, master_qent_list, link) : TAILQ_NEXT(q, link);
			if (q->busy || q->hash % lq.part_n != lq.part_i)
				continue;
			if (!master_queue_available(ms, q)) {
				if (q->state == Q_WAIT)
					master_queue_park(ms, q);
				continue;
			}
			size_t len = proto_lease_ref_len(q->klen, q->node->node_id);
			/* the answer fits a frame, and the writes one message */
			if (bytes + len > Q_REPLY_ROOM ||
			    w.len + 64u + q->klen + strlen(lq.holder) > DBW_SPLIT_BYTES)
				break;
			bytes += len;
			master_queue_unlist(ms, q);
			q->lease_id = (uint64_t)ms->epoch << 32 | ++ms->lease_ctr;
			q->deadline_ms = deadline;
			q->busy = 1;
			master_queue_leased_insert(ms, q);
			c->ids[c->n++] = q->lease_id;
			wire_w_u8(&w, DBW_Q_LEASE);
			wire_w_u64(&w, q->lease_id);
			wire_w_key(&w, q->key, q->klen);
			wire_w_u64(&w, q->gen);
			wire_w_str(&w, lq.holder);
			wire_w_u32(&w, lq.part_i);
			wire_w_u32(&w, lq.part_n);
			wire_w_u64(&w, deadline);
			c->nops++;
		}
	}
	if ((rc = qcall_send(ms, c, &w, 0, c->n)) != 0) {
		for (uint32_t i = 0; i < c->n; i++)
			if ((q = master_queue_find_lease(ms, c->ids[i]))) {
				q->busy = 0;
				master_queue_unlist(ms, q);
				master_queue_pool_insert(ms, q);
			}
		actor_reply_status(ms->self, m, rc);
		qcall_free(c);
		return 0;
	}
	master_queue_arm(ms);
	return 0;
}

static void lease_done(struct master *ms, struct qcall *c, const uint8_t *res, uint32_t nres, int rc)
{
	struct master_qent *q;
	struct wire_w w;
	uint32_t granted = 0;

	wire_w_init(&w);
	wire_w_u32(&w, 0);
	for (uint32_t i = 0; i < c->n; i++) {
		q = master_queue_find_lease(ms, c->ids[i]);
		if (!q)
			continue; /* gone meanwhile (superseded, removed): its row went with it */
		q->busy = 0;
		if (rc || i + 1 >= nres || !res[i + 1]) {
			/* not recorded: back in the pool, never handed out */
			master_queue_unlist(ms, q);
			if (master_queue_available(ms, q))
				master_queue_pool_insert(ms, q);
			else
				master_queue_park(ms, q);
			continue;
		}
		struct proto_lease_ref ref = { .lease_id = q->lease_id, .key = q->key, .klen = q->klen, .gen = q->gen,
					       .size = q->size, .deadline_ms = q->deadline_ms };
		snprintf(ref.node_id, sizeof ref.node_id, "%s", q->node ? q->node->node_id : "");
		proto_lease_reply_add(&w, &ref);
		granted++;
	}
	MASTER_STAT_ADD(q_leased, granted);
	for (int i = 0; i < 4 && !w.err && w.len >= 4; i++)
		w.buf[i] = (uint8_t)(granted >> (8 * i));
	if (rc && !granted) {
		wire_w_fini(&w);
		actor_reply_status(ms->self, &c->req, rc);
		return;
	}
	(void)proto_reply(ms->self, &c->req, &w, NULL, 0);
}

/* ---- RELEASE and RENEW ---- */

/* A live lease this request may act on: KVN_ESTATE otherwise. */
static struct master_qent *live_lease(struct master *ms, uint64_t id, uint64_t now)
{
	struct master_qent *q = id ? master_queue_find_lease(ms, id) : NULL;
	if (!q || q->busy || q->deadline_ms <= now)
		return NULL;
	return q;
}

static void ids_done(struct master *ms, struct qcall *c);

/* Send one part of a RELEASE/RENEW's writes; if it cannot go, its ids
 * fail with why (their samples are left as they were by ids_done). */
static void ids_part_send(struct master *ms, struct qcall *c, struct wire_w *w, uint32_t first, uint32_t end)
{
	int rc = qcall_send(ms, c, w, first, end);
	c->nops = 0;
	if (rc == 0) {
		c->left++;
		return;
	}
	for (uint32_t i = first; i < end; i++)
		c->wrc[i] = rc;
}

static int ids_request(struct master *ms, struct actor_msg *m, int kind)
{
	struct wire_r r;
	struct qcall *c;
	struct wire_w w;
	uint64_t ttl = 0, now = kvn_wall_ms();
	uint8_t flags = 0;
	uint32_t n;
	int rc;

	rc = kind == QC_RELEASE ? proto_release_open(&r, m, &flags, &n) : proto_renew_open(&r, m, &ttl, &n);
	if (rc != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	if (refuse_busy(ms, m))
		return 0;
	c = qcall_new(kind, m, n);
	c->flags = flags;
	wire_w_init(&w);
	wire_w_u32(&w, 0);
	uint32_t first = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id;
		struct master_qent *q;
		(void)proto_ids_next(&r, &id);
		/* the same id twice in one request: the second is refused */
		q = live_lease(ms, id, now);
		if (!q) {
			c->status[i] = KVN_ESTATE;
			MASTER_STAT_INC(q_refused);
			continue;
		}
		if (c->nops && w.len + 32u + q->klen > DBW_SPLIT_BYTES) {
			/* this part is full: to the writer, and a new one */
			ids_part_send(ms, c, &w, first, i);
			first = i;
			wire_w_u32(&w, 0);
		}
		q->busy = 1;
		c->ids[i] = id;
		if (kind == QC_RENEW) {
			c->deadline[i] = now + cut_ttl(ms, ttl);
			wire_w_u8(&w, DBW_Q_RENEW);
			wire_w_u64(&w, id);
			wire_w_u64(&w, c->deadline[i]);
		} else if (flags & PROTO_RELEASE_RETURN) {
			wire_w_u8(&w, DBW_Q_RETURN);
			wire_w_u64(&w, id);
		} else {
			uint8_t keep = (uint8_t)(q->retain || (flags & PROTO_RELEASE_RETAIN));
			q->consuming = !keep;
			wire_w_u8(&w, DBW_Q_CONSUME);
			wire_w_u64(&w, id);
			wire_w_key(&w, q->key, q->klen);
			wire_w_u64(&w, q->gen);
			wire_w_u8(&w, keep);
		}
		c->nops++;
	}
	if (c->nops)
		ids_part_send(ms, c, &w, first, n);
	else
		wire_w_fini(&w);
	if (c->left == 0) { /* nothing to write, or no part could be sent */
		ids_done(ms, c);
		qcall_free(c);
	}
	return 0;
}

int master_on_release(struct master *ms, struct actor_msg *m)
{
	return ids_request(ms, m, QC_RELEASE);
}

int master_on_renew(struct master *ms, struct actor_msg *m)
{
	return ids_request(ms, m, QC_RENEW);
}

/* A consumed sample that is not kept leaves the index and its node frees
 * that generation (DROP_GEN), as a remove would. */
static void consume(struct master *ms, struct master_qent *q, int keep, struct master_drops *drops)
{
	struct master_node *n = q->node;
	if (keep) {
		master_queue_unlist(ms, q);
		q->state = Q_CONSUMED;
		q->lease_id = q->deadline_ms = 0;
		return;
	}
	if (n) {
		if (!master_index_remove(ms, n, q->key, q->klen, q->gen)) {
			/* its node is dead or detached (no entry to remove):
			 * the floor keeps a re-sync of this generation out */
			master_floor_raise(ms, q->key, q->klen, q->gen + 1);
			master_floor_removed_note(ms, q->key, q->klen, q->gen + 1);
		}
		/* kept as unconfirmed until the node's heartbeat shows it
		 * applied it, across its restarts: its full sync cannot bring
		 * the consumed generation back (master_drops_pending_has) */
		master_drops_add(drops, n, q->key, q->klen, q->gen);
	}
	master_floor_db_note(ms); /* the row's delete leaves a floor */
	master_queue_free_one(ms, q);
}

static void ids_done(struct master *ms, struct qcall *c)
{
	struct master_drops drops = { 0 };
	struct wire_w w;

	wire_w_init(&w);
	proto_lstat_begin(&w, c->n);
	for (uint32_t i = 0; i < c->n; i++) {
		struct master_qent *q;
		uint64_t dl = 0;
		if (!c->ids[i]) {
			proto_lstat_add(&w, c->status[i], 0);
			continue;
		}
		q = master_queue_find_lease(ms, c->ids[i]);
		if (q)
			q->busy = q->consuming = 0;
		if (c->wrc[i]) { /* its part was not written: as it was */
			proto_lstat_add(&w, c->wrc[i], 0);
			continue;
		}
		if (c->kind == QC_RENEW) {
			if (!q || q->state != Q_LEASED) {
				proto_lstat_add(&w, KVN_ESTATE, 0); /* gone while written */
				continue;
			}
			master_queue_unlist(ms, q);
			q->deadline_ms = dl = c->deadline[i];
			master_queue_leased_insert(ms, q);
			MASTER_STAT_INC(q_renewed);
		} else if (q && q->state == Q_LEASED) {
			MASTER_STAT_INC(q_released);
			if (c->flags & PROTO_RELEASE_RETURN) {
				master_queue_unlist(ms, q);
				master_queue_pool_insert(ms, q);
			} else {
				consume(ms, q, q->retain || (c->flags & PROTO_RELEASE_RETAIN), &drops);
			}
		} else if (q && q->state == Q_PARKED) {
			/* its node went away while the write was in flight: the
			 * write stands (consumed, or returned to wait parked) */
			if (!(c->flags & PROTO_RELEASE_RETURN))
				consume(ms, q, q->retain || (c->flags & PROTO_RELEASE_RETAIN), &drops);
		}
		proto_lstat_add(&w, 0, dl);
	}
	master_drops_send(ms, &drops);
	(void)proto_reply(ms->self, &c->req, &w, NULL, 0);
	master_queue_arm(ms);
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct master *ms = actor_state(self);
	struct qpart *p = arg;
	struct qcall *c = p->c;
	int rc = err ? err : reply->status;
	const uint8_t *res = NULL;
	uint32_t nres = 0;

	ms->db_inflight--;
	if (!rc && reply && reply->meta_len >= 4) {
		nres = (uint32_t)reply->meta[0] | (uint32_t)reply->meta[1] << 8 | (uint32_t)reply->meta[2] << 16 |
		       (uint32_t)reply->meta[3] << 24;
		if (nres <= reply->meta_len - 4)
			res = reply->meta + 4;
		else
			nres = 0;
	}
	if (rc) {
		MASTER_STAT_INC(db_errors);
		rc = rc == KVN_ETIMEDOUT || rc == KVN_EBUSY ? rc : KVN_EDB;
	}
	if (c->kind == QC_LEASE) {
		lease_done(ms, c, res, nres, rc);
	} else {
		for (uint32_t i = p->first; i < p->end; i++)
			c->wrc[i] = rc;
		if (--c->left > 0) { /* the other parts' answers come later */
			free(p);
			return 0;
		}
		ids_done(ms, c);
	}
	free(p);
	qcall_free(c);
	return 0;
}

