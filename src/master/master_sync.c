/*
 * master_sync: FULL_SYNC on the master (DESIGN.md section 5).  Owns the
 * per-node staging of snapshot chunks, the chunk order check, the apply
 * (the node's locations replaced by the snapshot, with the same supersede
 * rules and DROP_GEN notices as EVENTS) and the hand-over of the new set to
 * the SQLite writer in DBW_SYNC_PART slices plus one DBW_SYNC_END request.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

static int sync_check(const struct actor_msg *m, struct proto_sync_hdr *h)
{
	struct proto_event e;
	struct wire_r r;
	int rc = proto_sync_open(&r, m, h);
	for (uint32_t i = 0; i < h->n && rc == 0; i++) {
		rc = proto_sync_next(&r, &e);
		if (rc == 0 && (!master_event_ok(&e)))
			rc = KVN_EPROTO;
	}
	return rc ? rc : wire_r_end(&r);
}

static void staging_add(struct master_staging *s, const struct proto_event *e)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		void *v = realloc(s->ents, s->cap * sizeof *s->ents);
		if (!v)
			kvn_fatal("out of memory");
		s->ents = v;
	}
	if (s->klen_used + e->klen > s->kcap) {
		size_t want = s->kcap ? s->kcap * 2 : 4096;
		while (want < s->klen_used + e->klen)
			want *= 2;
		void *v = realloc(s->keys, want);
		if (!v)
			kvn_fatal("out of memory");
		s->keys = v;
		s->kcap = want;
	}
	struct master_sync_ent *x = &s->ents[s->n++];
	x->gen = e->gen;
	x->size = e->size;
	x->tier = e->tier;
	x->flags = e->flags;
	x->klen = e->klen;
	x->koff = s->klen_used;
	memcpy(s->keys + s->klen_used, e->key, e->klen);
	s->klen_used += e->klen;
}

/* Persist the node's locations (its whole index list, after the apply) as
 * DBW_SYNC_PART slices and one DBW_SYNC_END request. */
static void persist_sync(struct master *ms, struct master_node *n)
{
	uint64_t id = ++ms->sync_ids;
	struct master_entry *e = TAILQ_FIRST(&n->entries);
	uint32_t parts = 0;
	struct meta_node row;
	struct wire_w w;

	do {
		struct actor_msg *part = actor_msg_new(DBW_SYNC_PART);
		struct wire_w body;
		uint32_t cnt = 0;

		wire_w_init(&body);
		for (; e && body.len + 32u + e->klen <= DBW_SPLIT_BYTES; e = TAILQ_NEXT(e, nlink)) {
			int qf = master_queue_row(ms, e->key, e->klen, e->gen);
			if (qf < 0)
				continue; /* its row is being deleted: not written again */
			cnt++;
			wire_w_key(&body, e->key, e->klen);
			wire_w_u64(&body, e->gen);
			wire_w_u8(&body, e->tier);
			wire_w_u64(&body, e->size);
			wire_w_u8(&body, (uint8_t)qf);
		}
		wire_w_init(&w);
		wire_w_str(&w, n->node_id);
		wire_w_u64(&w, id);
		wire_w_u32(&w, parts);
		wire_w_u32(&w, cnt);
		wire_w_raw(&w, body.buf, body.len);
		wire_w_fini(&body);
		if (wire_w_to_msg(&w, part) != 0)
			KVN_ASSERT(0);
		if (actor_send(ms->dbw, part) != 0) {
			actor_msg_free(part);
			master_db_failed(ms, n, KVN_EBUSY);
			return;
		}
		parts++;
	} while (e);
	struct actor_msg *req = actor_msg_new(DBW_SYNC_END);
	master_node_row(n, &row);
	wire_w_init(&w);
	dbw_node_enc(&w, &row);
	wire_w_u64(&w, id);
	wire_w_u32(&w, parts);
	if (wire_w_to_msg(&w, req) != 0)
		KVN_ASSERT(0);
	n->persisted_ms = kvn_now_ms();
	master_db_call(ms, req, MASTER_P_SYNC, n, n->applied_seq);
}

static void sync_apply(struct master *ms, struct master_node *n)
{
	struct master_staging *s = &n->stg;
	struct master_drops drops = { 0 };
	struct master_stale stale = { 0 };

	master_index_sync_begin(ms, n);
	for (size_t i = 0; i < s->n; i++) {
		const struct master_sync_ent *x = &s->ents[i];
		const uint8_t *key = s->keys + x->koff;
		int res = MASTER_INDEX_STALE;
		/* a generation it was told to drop is not indexed again: that
		 * would bring back a key removed meanwhile */
		if (master_drops_pending_has(n, key, x->klen, x->gen))
			master_drops_add(&drops, n, key, x->klen, x->gen);
		else
			res = master_index_sync_one(ms, n, key, x->klen, x->gen, x->tier, x->size, &drops);
		if (res == MASTER_INDEX_STALE)
			master_drops_stale_add(&stale, key, x->klen, x->gen);
		else {
			master_queue_on_add(ms, n, key, x->klen, x->gen, x->flags, x->size);
			if (res == MASTER_INDEX_NEW) {
				uint64_t fp = master_node_footprint(n, x->size);
				n->reserved = n->reserved > fp ? n->reserved - fp : 0;
			}
		}
	}
	uint64_t dropped = master_index_sync_end(ms, n);
	n->applied_seq = s->seq;
	n->db_broken = 0;
	n->sync_due = 0;
	master_node_synced(ms, n); /* its keys are in the index now */
	master_floor_recalled(ms, n); /* and nothing superseded came back */
	n->persist_epoch++; /* earlier in-flight writes of this node no longer count */
	MASTER_STAT_INC(full_syncs);
	MASTER_STAT_ADD(events_stale, stale.n);
	log_info("master: node %s: full sync applied: %zu entries (%" PRIu64 " earlier locations not in it dropped), seq %" PRIu64,
		 KVN_Q(n->node_id), s->n, dropped, s->seq);
	master_drops_stale_log(&stale, n, "snapshot");
	master_node_staging_reset(s);
	master_drops_send(ms, &drops);
}

int master_on_full_sync(struct master *ms, struct actor_msg *m)
{
	struct proto_sync_hdr h;
	struct proto_event e;
	struct wire_r r;
	struct master_node *n;

	if (master_deny(ms, m))
		return 0;
	if (sync_check(m, &h) != 0) {
		master_reply_proto_err(ms, m);
		return 0;
	}
	n = master_node_find(ms, h.node_id);
	if (!n || !n->attached || n->dead || n->boot_id != h.boot_id) {
		if (n && n->boot_id == h.boot_id)
			master_node_staging_reset(&n->stg);
		master_reply_ack(ms, m, n && n->boot_id == h.boot_id ? n : NULL, 1, KVN_ESTATE);
		return 0;
	}
	n->last_seen_ms = kvn_now_ms();
	if (h.chunk == 0 && (!n->sync_due || h.seq < n->sync_from)) {
		/* not asked for, or older than what was asked for: a delayed or
		 * duplicated copy of an earlier sync, which would replace the
		 * node's locations with a past state */
		log_warn("master: node %s: stale full sync (seq %" PRIu64 ") ignored", KVN_Q(n->node_id), h.seq);
		master_reply_ack(ms, m, n, 0, KVN_ESTATE);
		return 0;
	}
	if (h.chunk == 0 && master_db_behind(ms, m, n))
		return 0;
	if (h.chunk == 0) {
		master_node_staging_reset(&n->stg); /* a restarted sync replaces an unfinished one */
		n->stg.active = 1;
		n->stg.seq = h.seq;
	} else if (!n->stg.active || h.chunk != n->stg.next_chunk || h.seq != n->stg.seq) {
		log_warn("master: node %s: full sync chunk %u out of order (expected %u): sync discarded",
			 KVN_Q(n->node_id), h.chunk, n->stg.active ? n->stg.next_chunk : 0);
		master_node_staging_reset(&n->stg);
		master_reply_ack(ms, m, n, 1, KVN_ESTATE);
		return 0;
	}
	n->stg.next_chunk = h.chunk + 1;
	(void)proto_sync_open(&r, m, &h);
	for (uint32_t i = 0; i < h.n; i++) {
		(void)proto_sync_next(&r, &e);
		staging_add(&n->stg, &e);
	}
	if (!h.last) {
		master_reply_ack(ms, m, n, 0, 0);
		return 0;
	}
	sync_apply(ms, n);
	master_reply_ack(ms, m, n, 0, 0);
	master_floor_db_note(ms); /* rows it no longer holds leave floors (sql/002-floors.sql) */
	persist_sync(ms, n);
	return 0;
}
