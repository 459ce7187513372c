/*
 * master: the master actor (DESIGN.md sections 1, 2, 4, 5).  Owns start-up
 * (master.db opened, epoch bumped, nodes and committed objects loaded, the
 * SQLite writer spawned), the node protocol (PEER_ATTACH, HEARTBEAT, EVENTS,
 * PEER_LEAVE, NET_DOWN), node liveness, the table every message is dispatched from
 * and the master's counters.  The glue that hands applied changes to the
 * writer (dbw.c) lives in master_db.c, FULL_SYNC in master_sync.c, the
 * node table and the key index in master_node.c and master_index.c, the
 * read-side replies in master_route.c, the requests its own peer serves in
 * master_fwd.c (master_int.h lists them all).  The master loop never runs
 * SQL: everything after master_start goes through dbw.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

#define MASTER_LIVE_MIN_MS 50

struct master_stats master_stats_g;

void master_get_stats(struct master_stats *st)
{
	const struct master_stats *src = &master_stats_g;
	MASTER_STATS_FIELDS(KVN_STAT_LOAD)
}

void master_stats_each(const struct master_stats *st, kvn_stat_fn fn, void *arg)
{
	MASTER_STATS_FIELDS(KVN_STAT_VISIT)
}

int master_stats_format(const struct master_stats *st, char *buf, size_t cap)
{
	struct kvn_stat_text t = { .buf = buf, .cap = cap };

	if (!buf || !cap)
		return KVN_ERANGE;
	buf[0] = '\0';
	master_stats_each(st, kvn_stat_sprint, &t);
	return t.rc;
}

static int from_peer_role(uint8_t role)
{
	return role == AUTH_ROLE_PEER || role == AUTH_ROLE_INTERNAL;
}

/* ---- replies ---- */

void master_reply_ack(struct master *ms, const struct actor_msg *req, const struct master_node *n,
		      int need_sync, int status)
{
	struct proto_ack a = {
		.applied_seq = n ? n->applied_seq : 0,
		.durable_seq = n ? n->durable_seq : 0,
		.need_full_sync = (uint8_t)(need_sync != 0),
		.epoch = ms->epoch,
	};
	struct actor_msg *r = actor_msg_new(req->type);
	if (proto_ack_enc(r, &a) != 0)
		KVN_ASSERT(0); /* fixed size: cannot fail */
	actor_reply(ms->self, req, r, status);
}

void master_reply_proto_err(struct master *ms, const struct actor_msg *req)
{
	MASTER_STAT_INC(proto_errors);
	actor_reply_status(ms->self, req, KVN_EPROTO);
}

int master_deny(struct master *ms, const struct actor_msg *req)
{
	if (from_peer_role(req->src_role))
		return 0;
	MASTER_STAT_INC(denied);
	actor_reply_status(ms->self, req, KVN_EPERM);
	return 1;
}

/* ---- start, stop ---- */

static int load_node(void *arg, const struct meta_node *row)
{
	struct master *ms = arg;
	struct master_node *n = master_node_get(ms, row->node_id);

	snprintf(n->addr, sizeof n->addr, "%s", row->addr);
	n->dram_total = row->dram_total;
	n->dram_used = row->dram_used;
	n->used_delta = 0;
	n->disk_total = row->disk_total;
	n->disk_used = row->disk_used;
	n->dead = strcmp(row->state, "dead") == 0;
	if (n->dead)
		master_floor_forget(ms, n); /* it may come back with anything it held */
	/* silent since the start: declared dead after node_timeout unless it
	 * attaches */
	n->last_seen_ms = kvn_now_ms();
	if (!n->dead && !n->unsynced) {
		/* it may hold puts the last master acknowledged after its last
		 * master.db commit: older keys wait for its full sync */
		n->unsynced = 1;
		ms->unsynced++;
	}
	return 0;
}

static int load_object(void *arg, const struct meta_object *o)
{
	struct master *ms = arg;
	struct master_node *n = master_node_find(ms, o->node_id);
	struct master_drops none = { 0 };

	if (o->klen == 0 || o->klen > KVN_MAX_KEY)
		return 0;
	master_queue_load_object(ms, o); /* lost samples too: they count, and may come back */
	if (strcmp(o->state, "lost") == 0) {
		/* its dead node may bring back exactly it, nothing older */
		master_floor_raise_location(ms, o->key, (uint16_t)o->klen, o->gen);
		master_floor_db_note(ms);
		return 0;
	}
	if (!n || n->dead || strcmp(o->state, "live") != 0)
		return 0;
	(void)master_index_add(ms, n, o->key, (uint16_t)o->klen, o->gen, (uint8_t)o->tier, o->size, &none);
	master_drops_fini(&none); /* one row per key: nothing to drop */
	return 0;
}

static void master_fini(struct actor *self)
{
	struct master *ms = actor_state(self);
	master_db_ops_at_exit(ms);
	master_queue_free_all(ms);
	master_index_free_all(ms);
	master_node_free_all(ms);
	net_counter_put(ms->conns);
	free(ms->server_id);
	free(ms);
}

static int master_handle(struct actor *self, struct actor_msg *m);
static void live_tick(struct actor *self, void *arg);

static const struct actor_ops master_ops = {
	.name = "master",
	.handle = master_handle,
	.sink = master_fwd_sink,
	.sink_abort = master_fwd_sink_abort,
	.fini = master_fini,
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int master_start(struct actor_loop *loop, struct actor_loop *db_loop, const struct master_opts *o,
		 struct actor **out, char *err, size_t errlen)
{
	struct meta_db *db = NULL;
	struct master *ms;
	struct actor *a;
	uint32_t epoch = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!loop || !db_loop || !o || !o->db_path || !o->mailbox || !o->node_timeout_ms ||
	    !o->max_value_size) {
		seterr(err, errlen,
		       "master: invalid options (db_path, mailbox, node_timeout and max_value_size are required)");
		return KVN_EINVAL;
	}
	if ((rc = meta_open(o->db_path, &db, err, errlen)) < 0)
		return rc;
	if ((rc = meta_epoch_next(db, &epoch)) < 0) {
		seterr(err, errlen, "%s: cannot allocate a generation epoch: %s", o->db_path, kvn_strerror(rc));
		meta_close(db);
		return rc;
	}
	ms = kvn_xcalloc(1, sizeof *ms);
	kvn_ptab_init(&ms->index, master_index_hash);
	ms->server_id = kvn_xstrdup(o->server_id && *o->server_id ? o->server_id : "kvnode-master");
	ms->node_timeout_ms = o->node_timeout_ms;
	ms->max_value_size = o->max_value_size;
	ms->floor_keep_ms = o->floor_keep_ms;
	ms->floor_max = o->floor_max;
	ms->start_ms = kvn_now_ms();
	ms->epoch = epoch;
	kvn_ratelimit_init(&ms->rl_event, 10000, 3);
	ms->epoch_want = epoch;
	ms->own_epoch = epoch;
	kvn_backoff_init(&ms->epoch_backoff, 50, 5000);
	ms->live_period_ms = o->node_timeout_ms / 4 > MASTER_LIVE_MIN_MS ? o->node_timeout_ms / 4
									 : MASTER_LIVE_MIN_MS;
	/* half the writer's mailbox (it is o->mailbox too): room left for
	 * node rows, deaths and full-sync parts */
	ms->db_max_inflight = o->mailbox / 2 > 8 ? o->mailbox / 2 : 8;
	/* reconcile on every start: leases past their deadline end, objects of
	 * nodes recorded dead are lost */
	uint64_t q_expired = 0, q_lost = 0;
	uint32_t parts[8];
	size_t nparts = 0;
	if ((rc = meta_queue_reconcile(db, kvn_wall_ms(), &q_expired, &q_lost)) < 0 ||
	    (rc = meta_queue_parts_load(db, parts, 8, &nparts)) < 0) {
		seterr(err, errlen, "%s: cannot reconcile the consumer queue: %s", o->db_path, kvn_strerror(rc));
		goto fail;
	}
	master_queue_init(ms, o, parts, nparts);
	if ((rc = meta_load_nodes(db, load_node, ms)) < 0 || (rc = meta_load_objects(db, load_object, ms)) < 0 ||
	    (rc = meta_load_floors(db, master_floor_load, ms)) < 0 ||
	    (rc = meta_load_leases(db, master_queue_load_lease, ms)) < 0) {
		seterr(err, errlen, "%s: cannot load the metadata: %s", o->db_path, kvn_strerror(rc));
		goto fail;
	}
	if ((rc = dbw_spawn(db_loop, db, o->mailbox, o->commit_linger_ms, &ms->dbw)) < 0) {
		seterr(err, errlen, "master: cannot start the SQLite writer: %s", kvn_strerror(rc));
		goto fail;
	}
	db = NULL; /* dbw owns it now */
	if ((rc = actor_spawn(loop, &master_ops, ms, o->mailbox, &a)) < 0) {
		/* the writer stays on db_loop until that loop is freed (it
		 * closes master.db then); nothing was written */
		seterr(err, errlen, "master: cannot start the master actor: %s", kvn_strerror(rc));
		goto fail;
	}
	ms->self = a;
	ms->live_timer = actor_timer_new(a, live_tick, NULL);
	ms->linger_ms = o->commit_linger_ms;
	ms->hold_timer = actor_timer_new(a, master_db_hold_tick, NULL);
	ms->epoch_timer = actor_timer_new(a, master_gen_epoch_tick, NULL);
	actor_timer_arm(ms->live_timer, ms->live_period_ms);
	master_queue_start(ms);
	master_gen_epoch_raise(ms); /* a loaded row above the epoch (master.db edited) */
	log_info("master: %s: epoch %u, %u nodes and %" PRIu64 " objects loaded", o->db_path, epoch,
		 HASH_COUNT(ms->nodes), ms->objects);
	master_queue_log_loaded(ms, q_expired, q_lost);
	if (ms->unsynced)
		log_info("master: keys from before this start are routed once the %u live nodes of master.db "
			 "have re-synced or timed out (master.node_timeout); until then their routes answer "
			 "KVN_EBUSY",
			 ms->unsynced);
	if (out)
		*out = a;
	return 0;
fail:
	master_queue_free_all(ms);
	master_index_free_all(ms);
	master_node_free_all(ms);
	free(ms->server_id);
	free(ms);
	meta_close(db);
	return rc;
}

/* ---- liveness ---- */

/* The node is gone (timed out, or left on purpose): its locations go from
 * routing now and are marked lost in master.db.  Returns how many. */
static uint64_t node_gone(struct master *ms, struct master_node *n)
{
	uint64_t dropped;
	struct actor_msg *req;
	struct wire_w w;

	/* before the drop: its keys keep a floor until it re-syncs */
	master_floor_forget(ms, n);
	dropped = master_index_drop_node(ms, n);
	master_node_synced(ms, n); /* what it held is lost: it no longer holds routes back */
	n->dead = 1;
	n->attached = 0;
	n->live = 0;
	n->reserved = 0;
	n->persist_epoch++;
	master_node_staging_reset(&n->stg);
	req = actor_msg_new(DBW_NODE_DEAD);
	wire_w_init(&w);
	wire_w_str(&w, n->node_id);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0);
	master_db_call(ms, req, MASTER_P_DEAD, n, 0);
	return dropped;
}

static void declare_dead(struct master *ms, struct master_node *n, uint64_t silent_ms)
{
	uint64_t dropped = node_gone(ms, n);

	n->left = 0;
	log_warn("master: node %s silent for %" PRIu64 " ms: declared dead, %" PRIu64
		 " locations dropped (marked lost in master.db)",
		 KVN_Q(n->node_id), silent_ms, dropped);
	MASTER_STAT_INC(nodes_dead);
}

static void live_tick(struct actor *self, void *arg)
{
	struct master *ms = actor_state(self);
	struct master_node *n, *tmp;
	uint64_t now = kvn_now_ms();

	(void)arg;
	HASH_ITER(hh, ms->nodes, n, tmp) {
		if (!n->dead && now - n->last_seen_ms >= ms->node_timeout_ms)
			declare_dead(ms, n, now - n->last_seen_ms);
	}
	master_floor_removed_prune(ms); /* removals too old to be overtaken by a late put */
	actor_timer_arm(ms->live_timer, ms->live_period_ms);
}

/* ---- PEER_ATTACH, HEARTBEAT, NET_DOWN ---- */

/* use: take its reported use as the new base.  Only right when every event
 * it had produced is applied here; with some still queued at the peer (the
 * writer pushed back), their bytes are in the report and would be counted
 * again when they arrive, so the running estimate is kept instead. */
static void node_refresh(struct master_node *n, const struct proto_node *pn, int use)
{
	snprintf(n->addr, sizeof n->addr, "%s", pn->addr);
	n->dram_total = pn->dram_total;
	n->page_size = pn->page_size;
	if (use) {
		n->dram_used = pn->dram_used;
		n->used_delta = 0;
		/* puts it is receiving: held like reservations until their ADD
		 * events arrive (routed puts that have not reached it lose theirs:
		 * if that overbooks it, it answers ENOSPC and the client
		 * re-routes) */
		n->reserved = pn->dram_pending;
	}
	n->disk_total = pn->disk_total;
	n->disk_used = pn->disk_used;
	n->dram_evictable = pn->dram_evictable; /* a snapshot: <= dram_total (decoder) */
	n->evicts = (pn->flags & PROTO_NODE_EVICTS) != 0;
	n->reported_seq = pn->last_seq;
	n->last_seen_ms = kvn_now_ms();
}

static int master_on_attach(struct master *ms, struct actor_msg *m)
{
	struct proto_node pn;
	struct master_node *n;
	const char *why;
	uint64_t dropped = 0;
	int held;

	if (master_deny(ms, m))
		return 0;
	if (proto_node_dec(m, &pn) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	n = master_node_get(ms, pn.node_id);
	/* before any put can be routed to it (or anywhere): no generation
	 * this master hands out may lose to one it holds */
	master_gen_seen(ms, pn.max_gen);
	/* Only what this master applied from this very process can be
	 * trusted; anything else is rebuilt from the node's snapshot.  That
	 * includes a node whose requested full sync never completed (it timed
	 * out, was refused, or an event gap asked for it) and that has events
	 * we have not applied: resuming its events would only hit the gap
	 * again, and its keys would stay unroutable. */
	int unsynced = n->sync_due && pn.last_seq > n->applied_seq;
	held = n->live && !n->dead && n->boot_id == pn.boot_id && !n->db_broken && !unsynced;
	why = held ? NULL
	      : n->dead && n->left ? "it left on purpose"
	      : n->dead ? "it was declared dead"
	      : !n->live ? "first attach to this master"
	      : n->boot_id != pn.boot_id ? "new boot: it restarted"
	      : unsynced ? "its full sync has not completed"
	      : "a master.db write of its events failed";
	node_refresh(n, &pn, 1);
	n->ref = m->src;
	n->local = m->src_role == AUTH_ROLE_INTERNAL;
	n->attached = 1;
	master_node_grant_key(ms, n, m, pn.boot_id); /* a new key per attachment */
	if (!held) {
		/* Locations stay routable until the node's snapshot replaces
		 * them (master_sync.c) when they may still be right: the same
		 * process re-syncing, or rows loaded from master.db after a
		 * master restart (boot_id 0; the peer likely still holds them,
		 * and if it does not it answers not-found itself).  Hiding them
		 * until the sync lands made acknowledged durable puts read as
		 * missing (t/restart).  A new process of the node lost its DRAM:
		 * its old locations go now. */
		if (n->boot_id != 0 && n->boot_id != pn.boot_id) {
			/* It may bring back, from its disk tier, generations
			 * superseded while it was down (their DROP_GENs died
			 * with it): floors until its sync, so an older one is
			 * not indexed once the newer is lost (t/sim seed 319
			 * with KVN_SIM_DISK=1) */
			master_floor_forget(ms, n);
			dropped = master_index_drop_node(ms, n);
			/* its unconfirmed DROP_GENs stay: its snapshot may
			 * bring those very generations back from disk, and
			 * the sync refuses them (t/sim seed 2370 with
			 * KVN_SIM_DISK=1: floors were pruned before it came
			 * back); a heartbeat in step clears them */
		}
		n->boot_id = pn.boot_id;
		n->sync_from = pn.last_seq; /* older snapshots are stale copies */
		n->sync_due = 1;
		n->applied_seq = 0;
		n->durable_seq = 0;
		n->db_broken = 0;
		n->persist_epoch++;
		master_node_staging_reset(&n->stg);
		log_info("master: node %s attached (%s): %" PRIu64 " locations dropped, full sync requested",
			 KVN_Q(n->node_id), why, dropped);
	} else {
		log_info("master: node %s re-attached (same boot, applied seq %" PRIu64 ")", KVN_Q(n->node_id),
			 n->applied_seq);
	}
	n->dead = 0;
	n->left = 0;
	n->live = 1;
	/* A held node whose requested snapshot never came (its attach answer
	 * reached it too late, so it never started the sync: the simulation's
	 * seed 8 once the peers' timers changed the schedule) is asked for
	 * it again, or its keys stay unroutable after a master restart. */
	master_reply_ack(ms, m, n, !held || n->sync_due, 0);
	master_db_persist_node(ms, n);
	return 0;
}

static int master_on_heartbeat(struct master *ms, struct actor_msg *m)
{
	struct proto_node pn;
	struct master_node *n;

	if (master_deny(ms, m))
		return 0;
	if (proto_node_dec(m, &pn) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	n = master_node_find(ms, pn.node_id);
	if (!n || !n->live || n->dead || n->boot_id != pn.boot_id) {
		/* unknown to this master, declared dead, or a new process:
		 * it must attach again and full-sync */
		master_reply_ack(ms, m, NULL, 1, 0);
		return 0;
	}
	node_refresh(n, &pn, pn.last_seq == n->applied_seq);
	master_gen_seen(ms, pn.max_gen); /* a put it began since attaching */
	if (!n->attached || n->ref != m->src) {
		/* the same process on a new connection: its boot_id vouches */
		n->ref = m->src;
		n->local = m->src_role == AUTH_ROLE_INTERNAL;
		n->attached = 1;
		master_node_grant_key(ms, n, m, pn.boot_id);
	}
	/* With every event of the node applied, the index holds a subset of
	 * its committed keys; any surplus are generations whose DROP_GEN it
	 * has not applied (a one-way notice lost on the way).  Send the
	 * unconfirmed ones again; if we cannot name them (too many, or a
	 * mismatch they do not explain), its snapshot reconciles. */
	int resync = 0;
	if (pn.last_seq == n->applied_seq && !n->stg.active) {
		if (pn.keys == n->objects)
			master_drops_pending_clear(n);
		else if (pn.keys > n->objects && n->npdrops && !n->pdrops_lost)
			master_drops_pending_resend(ms, n);
		else
			resync = 1;
		master_floor_db_check(ms);
	}
	if (resync) {
		log_warn("master: node %s reports %" PRIu64 " keys, the index holds %" PRIu64
			 " of it: full sync requested",
			 KVN_Q(n->node_id), pn.keys, n->objects);
		n->live = 0; /* its re-attach must full-sync (master_on_attach) */
	}
	master_reply_ack(ms, m, n, master_db_resync_due(ms, n) || resync, 0);
	if (kvn_now_ms() - n->persisted_ms >= MASTER_ROW_PERSIST_MS)
		master_db_persist_node(ms, n);
	return 0;
}

/* PEER_LEAVE: the node stops on purpose (SIGTERM).  It is gone at once, as
 * if node_timeout had passed: gets of its keys answer KVN_ENOTFOUND now
 * instead of KVN_EPEERDOWN until the timeout.  Only the attachment itself
 * may say so: the same boot over the connection (or in-process actor) it
 * attached or last heartbeat from; anyone else is refused and changes
 * nothing.  A later PEER_ATTACH (its restart) full-syncs as after a death. */
static int master_on_leave(struct master *ms, struct actor_msg *m)
{
	struct proto_node pn;
	struct master_node *n;
	uint64_t dropped, unapplied;

	if (master_deny(ms, m))
		return 0;
	if (proto_node_dec(m, &pn) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	n = master_node_find(ms, pn.node_id);
	if (!n || n->dead || !n->live || !n->attached) {
		/* unknown, gone already, or not attached in this life: nothing
		 * of it is routed as live by this attachment */
		actor_reply_status(ms->self, m, KVN_ESTATE);
		return 0;
	}
	if (n->boot_id != pn.boot_id || n->ref != m->src) {
		MASTER_STAT_INC(denied);
		log_warn("master: refused PEER_LEAVE for node %s: not from its attachment (%s)", KVN_Q(n->node_id),
			 n->boot_id != pn.boot_id ? "another boot" : "another connection");
		actor_reply_status(ms->self, m, KVN_EPERM);
		return 0;
	}
	/* events it produced that never arrived: their puts were never
	 * acknowledged, and what they stored is gone with it */
	unapplied = pn.last_seq > n->applied_seq ? pn.last_seq - n->applied_seq : 0;
	dropped = node_gone(ms, n);
	n->left = 1;
	MASTER_STAT_INC(nodes_left);
	log_info("master: node %s left on purpose (clean stop): %" PRIu64
		 " locations dropped (marked lost in master.db)%s",
		 KVN_Q(n->node_id), dropped, unapplied ? "; some of its last events never arrived" : "");
	master_reply_ack(ms, m, n, 0, 0);
	return 0;
}

static int master_on_net_down(struct master *ms, struct actor_msg *m)
{
	struct master_node *n, *tmp;
	HASH_ITER(hh, ms->nodes, n, tmp) {
		if (n->ref != m->src || !n->attached)
			continue;
		/* locations stay until the timeout, in case it reconnects */
		log_info("master: node %s disconnected (%s)", KVN_Q(n->node_id), kvn_strerror(m->status));
		n->attached = 0;
		n->reserved = 0;
		master_node_staging_reset(&n->stg);
	}
	return 0;
}

/* ---- EVENTS ---- */

int master_event_ok(const struct proto_event *e)
{
	if (e->gen == 0 || e->gen > (uint64_t)INT64_MAX || (e->flags & ~PROTO_EV_FLAGS))
		return 0;
	/* no node stores a value over KVN_VALUE_SIZE_MAX: a larger size would
	 * only overflow the master's accounting (fuzz_master found it) */
	if (e->kind == PROTO_EV_ADD)
		return e->tier <= KEYTAB_DISK && e->size <= KVN_VALUE_SIZE_MAX;
	return 1;
}

/* Decode the whole message once before touching anything.  Only a batch
 * that does not decode is refused as a whole; an event that decodes but is
 * not valid (master_event_ok) is refused alone, in master_on_events. */
static int events_check(const struct actor_msg *m, char *node_id, size_t cap, uint64_t *boot, uint32_t *n)
{
	struct proto_event e;
	struct wire_r r;
	int rc = proto_events_open(&r, m, node_id, cap, boot, n);
	for (uint32_t i = 0; i < *n && rc == 0; i++)
		rc = proto_events_next(&r, &e);
	return rc ? rc : wire_r_end(&r);
}

/* One event the master will not apply: its seq is consumed (the stream
 * goes on past it), an ADD's generation is dropped at the node so both
 * agree the key is not there, and a rate-limited line names it. */
static void event_refuse(struct master *ms, struct master_node *n, const struct proto_event *e,
			 struct master_drops *drops)
{
	char key[80];
	uint64_t suppressed = 0;

	MASTER_STAT_INC(events_refused);
	if (e->kind == PROTO_EV_ADD && e->gen != 0 && e->gen <= PROTO_GEN_MAX && e->klen >= 1 &&
	    e->klen <= KVN_MAX_KEY)
		master_drops_add(drops, n, e->key, e->klen, e->gen);
	if (!kvn_ratelimit_ok(&ms->rl_event, &suppressed))
		return;
	kvn_str_quote(key, sizeof key, e->key, e->klen);
	log_warn("master: node %s: refused invalid %s event seq %" PRIu64 " (key %s gen %" PRIu64 " size %" PRIu64
		 " tier %u); the others are applied (%" PRIu64 " more refused lines suppressed)",
		 n->node_id, e->kind == PROTO_EV_ADD ? "ADD" : "REMOVE", e->seq, key, e->gen, e->size,
		 (unsigned)e->tier, suppressed);
}

static int master_on_events(struct master *ms, struct actor_msg *m)
{
	char node_id[65];
	struct master_drops drops = { 0 };
	struct master_stale stale = { 0 };
	struct master_opbuf ob = { .n = 0 };
	struct proto_event e = { 0 };
	struct wire_r r;
	struct master_node *n;
	uint64_t boot, first_new = 0;
	uint32_t cnt, dups = 0;
	int gap = 0;

	if (master_deny(ms, m))
		return 0;
	if (events_check(m, node_id, sizeof node_id, &boot, &cnt) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	n = master_node_find(ms, node_id);
	if (!n || !n->attached || n->dead || n->boot_id != boot) {
		master_reply_ack(ms, m, n && n->boot_id == boot ? n : NULL, 1, KVN_ESTATE);
		return 0;
	}
	n->last_seen_ms = kvn_now_ms();
	if (master_db_behind(ms, m, n))
		return 0;
	wire_w_init(&ob.w);
	(void)proto_events_open(&r, m, node_id, sizeof node_id, &boot, &cnt);
	for (uint32_t i = 0; i < cnt; i++) {
		(void)proto_events_next(&r, &e);
		if (e.seq <= n->applied_seq) {
			dups++; /* re-shipped after a lost ack: already applied */
			continue;
		}
		if (e.seq != n->applied_seq + 1) {
			gap = 1;
			break;
		}
		if (!first_new)
			first_new = e.seq;
		if (!master_event_ok(&e)) {
			event_refuse(ms, n, &e, &drops);
			n->applied_seq = e.seq;
			continue;
		}
		ob.now |= (e.flags & PROTO_EV_F_DURABLE) != 0; /* a queue put is durable too; its tier moves are not */
		if (e.kind == PROTO_EV_ADD) {
			int res = MASTER_INDEX_STALE;
			if (master_drops_pending_has(n, e.key, e.klen, e.gen))
				master_drops_add(&drops, n, e.key, e.klen, e.gen); /* told to drop it already */
			else
				res = master_index_add(ms, n, e.key, e.klen, e.gen, e.tier, e.size, &drops);
			if (res == MASTER_INDEX_STALE) {
				master_drops_stale_add(&stale, e.key, e.klen, e.gen);
			} else {
				uint64_t fp = master_node_footprint(n, e.size);
				if (res == MASTER_INDEX_NEW)
					n->reserved = n->reserved > fp ? n->reserved - fp : 0;
				master_queue_on_add(ms, n, e.key, e.klen, e.gen, e.flags, e.size);
				int qf = master_queue_row(ms, e.key, e.klen, e.gen);
				if (qf >= 0)
					master_db_ops_add(ms, n, &ob, DBW_OP_PUT, e.key, e.klen, e.gen, e.tier,
							  e.size, (uint8_t)qf);
			}
		} else if (master_index_remove(ms, n, e.key, e.klen, e.gen)) {
			master_queue_on_remove(ms, e.key, e.klen, e.gen);
			master_db_ops_add(ms, n, &ob, DBW_OP_DEL, e.key, e.klen, e.gen, 0, 0, 0);
			master_floor_db_note(ms); /* the delete leaves a floor (sql/002-floors.sql) */
		}
		n->applied_seq = e.seq;
	}
	MASTER_STAT_ADD(events_dup, dups);
	MASTER_STAT_ADD(events_stale, stale.n);
	if (first_new)
		MASTER_STAT_ADD(events_applied, n->applied_seq - first_new + 1);
	if (gap) {
		n->sync_due = 1; /* its re-attach must full-sync (master_on_attach) */
		MASTER_STAT_INC(event_gaps);
		log_warn("master: node %s: event gap after seq %" PRIu64 " (got %" PRIu64 "): full sync requested",
			 KVN_Q(n->node_id), n->applied_seq, e.seq);
	}
	/* applied in memory: acknowledge now, before any fsync */
	master_reply_ack(ms, m, n, gap || master_db_resync_due(ms, n), gap ? KVN_ESTATE : 0);
	master_drops_stale_log(&stale, n, "ADD");
	master_drops_send(ms, &drops);
	if (first_new)
		master_db_ops_commit(ms, n, &ob, n->applied_seq);
	wire_w_fini(&ob.w);
	return 0;
}

/* ---- dispatch ---- */

/* NET_UP: nothing to do; a node announces itself with PEER_ATTACH. */
static int master_on_net_up(struct master *ms, struct actor_msg *m)
{
	(void)ms;
	(void)m;
	return 0;
}

/* Every message the master answers.  A handler returns 0 (the runtime
 * frees m) or ACTOR_KEEP (m went on to the peer of this process). */
static const struct master_handler {
	uint16_t type;
	int (*fn)(struct master *ms, struct actor_msg *m);
} master_handlers[] = {
	{ WIRE_PING, master_on_ping },
	{ WIRE_PEER_ATTACH, master_on_attach },
	{ WIRE_HEARTBEAT, master_on_heartbeat },
	{ WIRE_PEER_LEAVE, master_on_leave },
	{ WIRE_EVENTS, master_on_events },
	{ WIRE_FULL_SYNC, master_on_full_sync },
	{ WIRE_ROUTE_PUT, master_on_route_put },
	{ WIRE_ROUTE_GET, master_on_route_get },
	{ WIRE_GET, master_on_get },
	{ WIRE_PUT, master_on_put },
	{ WIRE_STAT, master_on_stat },
	{ WIRE_LEASE, master_on_lease },
	{ WIRE_RELEASE, master_on_release },
	{ WIRE_RENEW, master_on_renew },
	{ WIRE_LIST, master_on_list },
	{ NET_UP, master_on_net_up },
	{ NET_DOWN, master_on_net_down },
};

static int master_handle(struct actor *self, struct actor_msg *m)
{
	struct master *ms = actor_state(self);

	if (m->src_role == AUTH_ROLE_CLIENT && !(m->type & WIRE_INTERNAL))
		MASTER_STAT_INC(requests);
	for (size_t i = 0; i < sizeof master_handlers / sizeof master_handlers[0]; i++)
		if (master_handlers[i].type == m->type)
			return master_handlers[i].fn(ms, m);
	/* anything else is not a master request */
	MASTER_STAT_INC(proto_errors);
	log_debug("master: unexpected message type %u (%s)", m->type, wire_type_name(m->type));
	if (m->corr)
		actor_reply_status(self, m, KVN_EPROTO);
	return 0;
}

/* ---- test hooks (master.h) ---- */

void master_crash(struct actor *master)
{
	struct master *ms = actor_state(master);
	struct actor *db = actor_lookup_local(actor_loop_of(master), ms->dbw);
	if (db)
		dbw_crash(db);
	actor_destroy(master);
}

void master_dump(struct actor *master, master_dump_fn fn, void *arg)
{
	struct master *ms = actor_state(master);
	for (size_t i = 0; i < ms->index.cap; i++) {
		const struct master_entry *e = ms->index.v[i];
		if (e)
			fn(arg, e->key, e->klen, e->gen, e->node->node_id);
	}
}

void master_opts_from_conf(struct master_opts *o, const struct kvn_conf *c, const char *db_path)
{
	memset(o, 0, sizeof *o);
	o->db_path = db_path;
	o->server_id = c->node_id;
	o->node_timeout_ms = c->master_node_timeout;
	o->mailbox = (uint32_t)c->node_mailbox_size;
	o->max_value_size = c->node_max_value_size;
	o->commit_linger_ms = c->master_commit_linger;
	o->lease_ttl_max_ms = c->master_lease_ttl_max;
}
