/*
 * master_queue: the consumer queue (DESIGN.md section 8, docs/queue.md).
 * Owns the master's queue samples (struct master_qent: one per (key, gen)
 * put with the queue flag that still exists), their leases, and the LEASE,
 * RELEASE and RENEW handlers.  A sample is in exactly one place:
 *   - the pool (ms->qpool, in commit order): waiting for a lease;
 *   - leased (ms->qleases by id, ms->qleased by deadline);
 *   - parked (ms->qparked): not available now (its node is dead, not yet
 *     re-synced, or no longer indexes it); counted lost, re-checked on the
 *     tick and handed out again once its node has it back;
 *   - consumed and kept (retain): only in ms->qkeys, so a full sync of its
 *     node does not put it back in the pool.
 * Every lease change is written to master.db (DBW_QUEUE) before the client
 * hears of it; while the write is in flight the sample is marked busy so
 * neither expiry nor a second request acts on it.  An expiry writes
 * nothing: the lease row stays until the sample is leased again or
 * released, and the next master start drops it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

enum qstate { Q_WAIT = 1, Q_LEASED, Q_PARKED, Q_CONSUMED };

struct master_qent {
	UT_hash_handle hh; /* ms->qkeys, by key */
	UT_hash_handle hl; /* ms->qleases, by lease_id, while leased */
	TAILQ_ENTRY(master_qent) link;  /* qpool, qleased or qparked by state */
	TAILQ_ENTRY(master_qent) nlink; /* its node's qents */
	struct master_node *node;
	uint64_t gen, order, hash, size;
	uint64_t lease_id, deadline_ms;
	uint8_t state, retain, busy;
	uint8_t consuming; /* busy with a RELEASE that deletes its row */
	uint16_t klen;
	uint8_t key[];
};

static unsigned sabotage_g;

void master_queue_sabotage(unsigned what)
{
	__atomic_store_n(&sabotage_g, what, __ATOMIC_RELAXED);
}

static unsigned sabotage(void)
{
	return __atomic_load_n(&sabotage_g, __ATOMIC_RELAXED);
}

/* Expired leases are looked for at least this often, and parked samples
 * re-checked (their node came back) once a second. */
#define Q_TICK_MS 1000
#define Q_TICK_MIN_MS 5
/* Room kept for the reply's count when a LEASE answer fills a frame. */
#define Q_REPLY_ROOM (WIRE_MAX_META - 256)

/* ---- lists ---- */

static struct master_qent_list *list_of(struct master *ms, uint8_t state)
{
	switch (state) {
	case Q_WAIT:
		return &ms->qpool;
	case Q_LEASED:
		return &ms->qleased;
	case Q_PARKED:
		return &ms->qparked;
	default:
		return NULL;
	}
}

static void unlist(struct master *ms, struct master_qent *q)
{
	struct master_qent_list *l = list_of(ms, q->state);
	if (l)
		TAILQ_REMOVE(l, q, link);
	if (q->state == Q_LEASED)
		HASH_DELETE(hl, ms->qleases, q);
}

/* Into the pool at its commit-order place: an expired or returned sample
 * is old, so the walk from the head is short. */
static void pool_insert(struct master *ms, struct master_qent *q)
{
	struct master_qent *x;
	TAILQ_FOREACH(x, &ms->qpool, link)
		if (x->order > q->order)
			break;
	if (x)
		TAILQ_INSERT_BEFORE(x, q, link);
	else
		TAILQ_INSERT_TAIL(&ms->qpool, q, link);
	q->state = Q_WAIT;
	q->lease_id = q->deadline_ms = 0;
}

static void leased_insert(struct master *ms, struct master_qent *q)
{
	struct master_qent *x;
	TAILQ_FOREACH_REVERSE(x, &ms->qleased, master_qent_list, link)
		if (x->deadline_ms <= q->deadline_ms)
			break;
	if (x)
		TAILQ_INSERT_AFTER(&ms->qleased, x, q, link);
	else
		TAILQ_INSERT_HEAD(&ms->qleased, q, link);
	q->state = Q_LEASED;
	HASH_ADD(hl, ms->qleases, lease_id, sizeof q->lease_id, q);
}

static void park(struct master *ms, struct master_qent *q)
{
	unlist(ms, q);
	TAILQ_INSERT_TAIL(&ms->qparked, q, link);
	q->state = Q_PARKED;
	q->lease_id = q->deadline_ms = 0;
}

static void qent_free(struct master *ms, struct master_qent *q)
{
	unlist(ms, q);
	HASH_DELETE(hh, ms->qkeys, q);
	if (q->node)
		TAILQ_REMOVE(&q->node->qents, q, nlink);
	free(q);
}

static struct master_qent *find_key(struct master *ms, const uint8_t *key, uint16_t klen)
{
	struct master_qent *q = NULL;
	HASH_FIND(hh, ms->qkeys, key, klen, q);
	return q;
}

static struct master_qent *find_lease(struct master *ms, uint64_t id)
{
	struct master_qent *q = NULL;
	HASH_FIND(hl, ms->qleases, &id, sizeof id, q);
	return q;
}

static void set_node(struct master_qent *q, struct master_node *n)
{
	if (q->node == n)
		return;
	if (q->node)
		TAILQ_REMOVE(&q->node->qents, q, nlink);
	q->node = n;
	if (n)
		TAILQ_INSERT_TAIL(&n->qents, q, nlink);
}

static struct master_qent *qent_new(struct master *ms, struct master_node *n, const uint8_t *key, uint16_t klen,
				    uint64_t gen, uint64_t order)
{
	struct master_qent *q = kvn_xcalloc(1, offsetof(struct master_qent, key) + klen);
	memcpy(q->key, key, klen);
	q->klen = klen;
	q->gen = gen;
	q->order = order;
	q->hash = kvn_hash64(key, klen);
	HASH_ADD_KEYPTR(hh, ms->qkeys, q->key, q->klen, q);
	set_node(q, n);
	return q;
}

/* May the sample be handed out now: its node is alive, has re-synced since
 * this master started, and indexes exactly this generation. */
static int available(struct master *ms, const struct master_qent *q)
{
	const struct master_entry *e;
	if (!q->node || !master_node_usable(q->node) || q->node->unsynced || q->node->sync_due)
		return 0;
	e = master_index_find(ms, q->key, q->klen);
	return e && e->gen == q->gen && e->node == q->node;
}

/* ---- hooks from the index ---- */

void master_queue_on_add(struct master *ms, struct master_node *node, const uint8_t *key, uint16_t klen,
			 uint64_t gen, uint8_t flags, uint64_t size)
{
	struct master_qent *q = find_key(ms, key, klen);

	if (q && q->gen == gen) {
		/* the same sample again: a tier move, a full sync, a node back */
		set_node(q, node);
		q->size = size;
		return;
	}
	if (q && q->gen > gen)
		return; /* the index took an older one? never: it only grows */
	if (q)
		qent_free(ms, q); /* superseded: its lease (if any) dies with it */
	if (!(flags & PROTO_EV_F_QUEUE))
		return;
	q = qent_new(ms, node, key, klen, gen, ++ms->qorder);
	q->size = size;
	q->retain = (flags & PROTO_EV_F_RETAIN) != 0;
	TAILQ_INSERT_TAIL(&ms->qpool, q, link);
	q->state = Q_WAIT;
}

void master_queue_on_remove(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_qent *q = ms->qkeys ? find_key(ms, key, klen) : NULL;
	/* a write about it may be in flight: its reply finds no lease */
	if (q && q->gen == gen)
		qent_free(ms, q);
}

int master_queue_consuming(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_qent *q = ms->qkeys ? find_key(ms, key, klen) : NULL;
	return q && q->gen == gen && q->busy && q->consuming;
}

uint8_t master_queue_qflags(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_qent *q = ms->qkeys ? find_key(ms, key, klen) : NULL;
	if (!q || q->gen != gen)
		return 0;
	if (q->state == Q_CONSUMED)
		return META_Q_CONSUMED | META_Q_RETAIN;
	return META_Q_POOL | (q->retain ? META_Q_RETAIN : 0);
}

int master_queue_miss_status(struct master *ms, const uint8_t *key, uint16_t klen)
{
	struct master_qent *q = ms->qkeys ? find_key(ms, key, klen) : NULL;
	if (q && q->state != Q_CONSUMED && (!q->node || q->node->dead || !q->node->attached))
		return KVN_EPEERDOWN;
	return KVN_ENOTFOUND;
}

/* ---- start and stop ---- */

void master_queue_init(struct master *ms, const struct master_opts *o, const uint32_t *parts, size_t nparts)
{
	TAILQ_INIT(&ms->qpool);
	TAILQ_INIT(&ms->qleased);
	TAILQ_INIT(&ms->qparked);
	ms->lease_ttl_max_ms = o->lease_ttl_max_ms && o->lease_ttl_max_ms < PROTO_TTL_MAX_MS ? o->lease_ttl_max_ms
											: PROTO_TTL_MAX_MS;
	for (size_t i = 0; i < nparts && i < 8; i++)
		ms->qparts[ms->nqparts++] = parts[i];
	if (getenv("KVNODE_TEST_QUEUE_BREAK"))
		master_queue_sabotage((unsigned)strtoul(getenv("KVNODE_TEST_QUEUE_BREAK"), NULL, 0));
}

void master_queue_load_object(struct master *ms, const struct meta_object *o)
{
	struct master_node *n = master_node_find(ms, o->node_id);
	struct master_qent *q;

	if (!(o->qflags & (META_Q_POOL | META_Q_CONSUMED)) || o->klen == 0 || o->klen > KVN_MAX_KEY)
		return;
	if ((q = find_key(ms, o->key, (uint16_t)o->klen)))
		qent_free(ms, q); /* one row per key: cannot happen, but never two samples */
	q = qent_new(ms, n, o->key, (uint16_t)o->klen, o->gen, (uint64_t)o->order);
	q->size = o->size;
	q->retain = (o->qflags & META_Q_RETAIN) != 0;
	if ((uint64_t)o->order > ms->qorder)
		ms->qorder = (uint64_t)o->order;
	if (o->qflags & META_Q_CONSUMED) {
		q->state = Q_CONSUMED;
		return;
	}
	/* rows come in commit order: the tail is their place */
	TAILQ_INSERT_TAIL(&ms->qpool, q, link);
	q->state = Q_WAIT;
}

int master_queue_load_lease(void *arg, const struct meta_lease *l)
{
	struct master *ms = arg;
	struct master_qent *q = l->klen >= 1 && l->klen <= KVN_MAX_KEY ? find_key(ms, l->key, (uint16_t)l->klen) : NULL;

	if (!q || q->gen != l->gen || q->state != Q_WAIT || find_lease(ms, l->lease_id))
		return 0; /* a stale row: the sample is not leased */
	TAILQ_REMOVE(&ms->qpool, q, link);
	q->lease_id = l->lease_id;
	q->deadline_ms = l->deadline_ms;
	leased_insert(ms, q);
	return 0;
}

static void tick(struct actor *self, void *arg);

static void arm(struct master *ms)
{
	struct master_qent *q = TAILQ_FIRST(&ms->qleased);
	uint64_t now = kvn_wall_ms(), at = now + Q_TICK_MS;

	if (q && q->deadline_ms < at)
		at = q->deadline_ms > now + Q_TICK_MIN_MS ? q->deadline_ms : now + Q_TICK_MIN_MS;
	if (ms->qtimer_at && ms->qtimer_at <= at && ms->qtimer_at > now)
		return;
	ms->qtimer_at = at;
	actor_timer_arm(ms->qtimer, at - now);
}

void master_queue_start(struct master *ms)
{
	ms->qtimer = actor_timer_new(ms->self, tick, NULL);
	arm(ms);
}

void master_queue_log_loaded(struct master *ms, uint64_t expired, uint64_t lost)
{
	if (!ms->qkeys && !expired && !lost)
		return;
	log_info("master: queue: %u samples (%u leased) loaded; at start %" PRIu64 " expired leases were dropped "
		 "and %" PRIu64 " objects of dead nodes marked lost",
		 HASH_CNT(hh, ms->qkeys), HASH_CNT(hl, ms->qleases), expired, lost);
}

void master_queue_free_all(struct master *ms)
{
	struct master_qent *q, *tmp;
	HASH_ITER(hh, ms->qkeys, q, tmp)
		qent_free(ms, q);
	HASH_CLEAR(hl, ms->qleases);
	actor_timer_free(ms->qtimer);
	ms->qtimer = NULL;
}

/* ---- expiry and unparking ---- */

static void tick(struct actor *self, void *arg)
{
	struct master *ms = actor_state(self);
	struct master_qent *q, *tmp;
	uint64_t now = kvn_wall_ms();

	(void)arg;
	ms->qtimer_at = 0;
	for (q = TAILQ_FIRST(&ms->qleased); q; q = tmp) {
		tmp = TAILQ_NEXT(q, link);
		if (q->deadline_ms > now)
			break;
		if (q->busy)
			continue; /* its write's reply decides */
		unlist(ms, q);
		MASTER_STAT_INC(q_expired);
		if (sabotage() & MASTER_QS_NO_RETURN) {
			q->state = 0; /* lost on purpose: in no list */
			continue;
		}
		pool_insert(ms, q);
	}
	if (now - ms->qparked_check_ms >= Q_TICK_MS) {
		ms->qparked_check_ms = now;
		for (q = TAILQ_FIRST(&ms->qparked); q; q = tmp) {
			tmp = TAILQ_NEXT(q, link);
			if (!q->busy && available(ms, q)) {
				TAILQ_REMOVE(&ms->qparked, q, link);
				pool_insert(ms, q);
			}
		}
	}
	arm(ms);
}

/* ---- requests to the writer ---- */

struct qcall {
	enum { QC_LEASE, QC_RELEASE, QC_RENEW } kind;
	struct actor_msg req; /* type, corr, src of the client's request */
	uint8_t flags;        /* RELEASE */
	uint32_t n;
	uint64_t *ids;        /* n lease ids (0: refused before the write) */
	int32_t *status;      /* n */
	uint64_t *deadline;   /* n: RENEW's new deadlines */
	uint32_t nops;        /* DBW ops; op i of id i (LEASE: +1 PART first) */
	uint32_t part_i, part_n;
};

static void qcall_free(struct qcall *c)
{
	free(c->ids);
	free(c->status);
	free(c->deadline);
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
	return c;
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err);

/* Send the ops (w: u32 count first, filled in here) as one DBW_QUEUE call. */
static int qcall_send(struct master *ms, struct qcall *c, struct wire_w *w)
{
	struct actor_msg *req = actor_msg_new(DBW_QUEUE);
	int rc;

	if (w->err || w->len < 4) {
		wire_w_fini(w);
		actor_msg_free(req);
		return KVN_ENOMEM;
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
	if ((rc = actor_call(ms->self, ms->dbw, req, MASTER_DB_TIMEOUT_MS, on_reply, c)) != 0) {
		actor_msg_free(req);
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
	int newest = (sabotage() & MASTER_QS_ORDER) != 0;
	struct master_qent_list *lists[2] = { &ms->qpool, (sabotage() & MASTER_QS_DOUBLE_LEASE) ? &ms->qleased : NULL };
	for (int li = 0; li < 2 && c->n < lq.max; li++) {
		if (!lists[li])
			continue;
		for (q = newest ? TAILQ_LAST(lists[li], master_qent_list) : TAILQ_FIRST(lists[li]); q && c->n < lq.max;
		     q = next) {
			next = newest ? TAILQ_PREV(q, master_qent_list, link) : TAILQ_NEXT(q, link);
			if (q->busy || q->hash % lq.part_n != lq.part_i)
				continue;
			if (!available(ms, q)) {
				if (q->state == Q_WAIT)
					park(ms, q);
				continue;
			}
			size_t len = proto_lease_ref_len(q->klen, q->node->node_id);
			if (bytes + len > Q_REPLY_ROOM)
				break;
			bytes += len;
			if (ms->lease_ctr >= UINT32_MAX) {
				/* 4 billion leases in one master life: a restart
				 * gives a new epoch */
				break;
			}
			unlist(ms, q);
			q->lease_id = (uint64_t)ms->epoch << 32 | ++ms->lease_ctr;
			q->deadline_ms = deadline;
			q->busy = 1;
			leased_insert(ms, q);
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
	if ((rc = qcall_send(ms, c, &w)) != 0) {
		for (uint32_t i = 0; i < c->n; i++)
			if ((q = find_lease(ms, c->ids[i]))) {
				q->busy = 0;
				unlist(ms, q);
				pool_insert(ms, q);
			}
		actor_reply_status(ms->self, m, rc);
		qcall_free(c);
		return 0;
	}
	arm(ms);
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
		q = find_lease(ms, c->ids[i]);
		if (!q)
			continue; /* gone meanwhile (superseded, removed): its row went with it */
		q->busy = 0;
		if (rc || i + 1 >= nres || !res[i + 1]) {
			/* not recorded: back in the pool, never handed out */
			unlist(ms, q);
			if (available(ms, q))
				pool_insert(ms, q);
			else
				park(ms, q);
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
	struct master_qent *q = id ? find_lease(ms, id) : NULL;
	if (!q || q->busy || q->deadline_ms <= now)
		return NULL;
	return q;
}

static void ids_done(struct master *ms, struct qcall *c, const uint8_t *res, uint32_t nres, int rc);

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
	if (c->nops == 0) { /* every id refused: nothing to write */
		wire_w_fini(&w);
		ids_done(ms, c, NULL, 0, 0);
		qcall_free(c);
		return 0;
	}
	if ((rc = qcall_send(ms, c, &w)) != 0) {
		for (uint32_t i = 0; i < n; i++) {
			struct master_qent *q = c->ids[i] ? find_lease(ms, c->ids[i]) : NULL;
			if (q)
				q->busy = q->consuming = 0;
		}
		actor_reply_status(ms->self, m, rc);
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
		unlist(ms, q);
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
	qent_free(ms, q);
}

static void ids_done(struct master *ms, struct qcall *c, const uint8_t *res, uint32_t nres, int rc)
{
	struct master_drops drops = { 0 };
	struct wire_w w;
	uint32_t k = 0;

	wire_w_init(&w);
	proto_lstat_begin(&w, c->n);
	for (uint32_t i = 0; i < c->n; i++) {
		struct master_qent *q;
		uint64_t dl = 0;
		if (!c->ids[i]) {
			proto_lstat_add(&w, c->status[i], 0);
			continue;
		}
		k++; /* op k of this id: the writer's result res[k - 1] */
		q = find_lease(ms, c->ids[i]);
		if (q)
			q->busy = q->consuming = 0;
		if (rc) {
			proto_lstat_add(&w, rc, 0);
			continue;
		}
		(void)res;
		(void)nres;
		if (c->kind == QC_RENEW) {
			if (!q || q->state != Q_LEASED) {
				proto_lstat_add(&w, KVN_ESTATE, 0); /* gone while written */
				continue;
			}
			unlist(ms, q);
			q->deadline_ms = dl = c->deadline[i];
			leased_insert(ms, q);
			MASTER_STAT_INC(q_renewed);
		} else if (q && q->state == Q_LEASED) {
			MASTER_STAT_INC(q_released);
			if (c->flags & PROTO_RELEASE_RETURN) {
				unlist(ms, q);
				pool_insert(ms, q);
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
	arm(ms);
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct master *ms = actor_state(self);
	struct qcall *c = arg;
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
	if (c->kind == QC_LEASE)
		lease_done(ms, c, res, nres, rc);
	else
		ids_done(ms, c, res, nres, rc);
	qcall_free(c);
	return 0;
}

/* ---- tests ---- */

void master_queue_dump(struct actor *master, master_qdump_fn fn, void *arg)
{
	struct master *ms = actor_state(master);
	struct master_qent *q, *tmp;
	HASH_ITER(hh, ms->qkeys, q, tmp) {
		if (q->state == Q_CONSUMED || q->state == 0)
			continue;
		struct master_qsample s = {
			.key = q->key, .klen = q->klen, .gen = q->gen,
			.node_id = q->node ? q->node->node_id : "",
			.order = q->order,
			.lease_id = q->state == Q_LEASED ? q->lease_id : 0,
			.deadline_ms = q->state == Q_LEASED ? q->deadline_ms : 0,
			.lost = q->state == Q_PARKED || !available(ms, q),
		};
		fn(arg, &s);
	}
}
