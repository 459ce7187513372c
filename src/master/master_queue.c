/*
 * master_queue: the consumer queue (DESIGN.md section 8, docs/queue.md).
 * Owns the master's queue samples (struct master_qent: one per (key, gen)
 * put with the queue flag that still exists) and where each one is; the
 * LEASE, RELEASE and RENEW requests are master_lease.c's.  A sample is in
 * exactly one place:
 *   - the pool (ms->qpool, in commit order): waiting for a lease;
 *   - leased (ms->qleases by id, ms->qleased by deadline);
 *   - parked (ms->qparked): not available now (its node is dead, not yet
 *     re-synced, or no longer indexes it); counted lost, re-checked on the
 *     tick and handed out again once its node has it back;
 *   - consumed and kept (retain): only in ms->qkeys, so a full sync of its
 *     node does not put it back in the pool.
 * While a request's write is in flight the sample is marked busy so
 * neither expiry nor a second request acts on it.  An expiry writes
 * nothing: the lease row stays until the sample is leased again or
 * released, and the next master start drops it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_queue_int.h"

static unsigned sabotage_g;

void master_queue_sabotage(unsigned what)
{
	__atomic_store_n(&sabotage_g, what, __ATOMIC_RELAXED);
}

unsigned master_queue_broken(void)
{
	return __atomic_load_n(&sabotage_g, __ATOMIC_RELAXED);
}

/* Expired leases are looked for at least this often, and parked samples
 * re-checked (their node came back) once a second. */
#define Q_TICK_MS 1000
#define Q_TICK_MIN_MS 5

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

void master_queue_unlist(struct master *ms, struct master_qent *q)
{
	struct master_qent_list *l = list_of(ms, q->state);
	if (l)
		TAILQ_REMOVE(l, q, link);
	if (q->state == Q_LEASED)
		HASH_DELETE(hl, ms->qleases, q);
}

/* Into the pool at its commit-order place: an expired or returned sample
 * is old, so the walk from the head is short. */
void master_queue_pool_insert(struct master *ms, struct master_qent *q)
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

void master_queue_leased_insert(struct master *ms, struct master_qent *q)
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

void master_queue_park(struct master *ms, struct master_qent *q)
{
	master_queue_unlist(ms, q);
	TAILQ_INSERT_TAIL(&ms->qparked, q, link);
	q->state = Q_PARKED;
	q->lease_id = q->deadline_ms = 0;
}

void master_queue_free_one(struct master *ms, struct master_qent *q)
{
	master_queue_unlist(ms, q);
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

struct master_qent *master_queue_find_lease(struct master *ms, uint64_t id)
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
int master_queue_available(struct master *ms, const struct master_qent *q)
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
		master_queue_free_one(ms, q); /* superseded: its lease (if any) dies with it */
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
		master_queue_free_one(ms, q);
}

int master_queue_row(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_qent *q = ms->qkeys ? find_key(ms, key, klen) : NULL;
	if (!q || q->gen != gen)
		return 0;
	if (q->busy && q->consuming)
		return -1;
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
	const char *brk = getenv("KVNODE_TEST_QUEUE_BREAK");
	if (brk && *brk) {
		master_queue_sabotage((unsigned)strtoul(brk, NULL, 0));
		log_warn("master: KVNODE_TEST_QUEUE_BREAK=%s: the consumer queue is broken on purpose (a test "
			 "hook); unset it outside tests", brk);
	}
}

void master_queue_load_object(struct master *ms, const struct meta_object *o)
{
	struct master_node *n = master_node_find(ms, o->node_id);
	struct master_qent *q;

	if (!(o->qflags & (META_Q_POOL | META_Q_CONSUMED)) || o->klen == 0 || o->klen > KVN_MAX_KEY)
		return;
	if ((q = find_key(ms, o->key, (uint16_t)o->klen)))
		master_queue_free_one(ms, q); /* one row per key: cannot happen, but never two samples */
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

	if (!q || q->gen != l->gen || q->state != Q_WAIT || master_queue_find_lease(ms, l->lease_id))
		return 0; /* a stale row: the sample is not leased */
	TAILQ_REMOVE(&ms->qpool, q, link);
	q->lease_id = l->lease_id;
	q->deadline_ms = l->deadline_ms;
	master_queue_leased_insert(ms, q);
	return 0;
}

static void tick(struct actor *self, void *arg);

void master_queue_arm(struct master *ms)
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
	master_queue_arm(ms);
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
		master_queue_free_one(ms, q);
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
		master_queue_unlist(ms, q);
		MASTER_STAT_INC(q_expired);
		if (master_queue_broken() & MASTER_QS_NO_RETURN) {
			q->state = 0; /* lost on purpose: in no list */
			continue;
		}
		master_queue_pool_insert(ms, q);
	}
	if (now - ms->qparked_check_ms >= Q_TICK_MS) {
		ms->qparked_check_ms = now;
		for (q = TAILQ_FIRST(&ms->qparked); q; q = tmp) {
			tmp = TAILQ_NEXT(q, link);
			if (!q->busy && master_queue_available(ms, q)) {
				TAILQ_REMOVE(&ms->qparked, q, link);
				master_queue_pool_insert(ms, q);
			}
		}
	}
	master_queue_arm(ms);
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
			.lost = q->state == Q_PARKED || !master_queue_available(ms, q),
		};
		fn(arg, &s);
	}
}
