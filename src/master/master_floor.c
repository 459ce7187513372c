/*
 * master_floor: per-key generation floors while the master has forgotten
 * what some node holds.
 *
 * A node declared dead leaves the index (master.c, declare_dead), and so
 * does every node after a master restart until it re-syncs: the master no
 * longer knows which generations they hold.  Such a node may come back
 * with a generation that was superseded meanwhile: a newer put of the key
 * went elsewhere (no DROP_GEN reached the silent node, the index no longer
 * named it) and was then removed, or lost with its node.  With no entry
 * left for the key, the snapshot's old generation would be indexed again:
 * an older value taken back after a newer one was acknowledged (t/sim rule
 * g, seeds 1, 115, 178).  While an entry exists its generation does the
 * job (older ones are stale); a floor remembers it once the entry goes.
 *
 * A floor is the lowest generation of its key that may be indexed again:
 * the removed generation + 1 after a REMOVE, the dropped generation itself
 * when its node's locations were dropped (that node may bring exactly it
 * back).  Floors are kept only while some node is forgotten (declared dead
 * and not re-synced since, or unsynced after a restart) and all go when
 * the last one re-syncs; a live, synced node's unapplied drops are its
 * pdrops.  Floors that stand in for a location (a node's dropped
 * locations, lost rows) replace an entry or row one for one and are not
 * capped; those removes add are: past FLOOR_MAX one floor for every key
 * (floor_all, the highest removed) stands in for them, which may refuse a
 * returning node's generation that was in fact current (it reads as lost,
 * as if the node had not come back), never take an old one back.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

#define FLOOR_MAX (1u << 18)

struct master_floor {
	UT_hash_handle hh;
	uint64_t gen;
	uint8_t capped; /* counts in nfloors: raised by a remove, not for a location */
	uint16_t klen;
	uint8_t key[];
};

static int floors_needed(const struct master *ms)
{
	return ms->forgotten > 0 || ms->unsynced > 0;
}

static struct master_floor *floor_find(struct master *ms, const uint8_t *key, uint16_t klen)
{
	struct master_floor *f;
	HASH_FIND(hh, ms->floors, key, klen, f);
	return f;
}

static void floor_raise(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen, int capped)
{
	struct master_floor *f;

	if (!floors_needed(ms))
		return;
	if ((f = floor_find(ms, key, klen))) {
		if (gen > f->gen)
			f->gen = gen;
		return;
	}
	uint32_t max = ms->floor_max ? ms->floor_max : FLOOR_MAX;
	if (capped && ms->nfloors >= max) {
		if (!ms->floor_full_logged)
			log_warn("master: %u generation floors kept while a node is silent: one floor now stands "
				 "for every further key (a returning node's older generations read as lost)",
				 max);
		ms->floor_full_logged = 1;
		if (gen > ms->floor_all)
			ms->floor_all = gen;
		return;
	}
	f = kvn_xmalloc(sizeof *f + klen);
	f->gen = gen;
	f->capped = (uint8_t)capped;
	f->klen = klen;
	memcpy(f->key, key, klen);
	HASH_ADD_KEYPTR(hh, ms->floors, f->key, f->klen, f);
	ms->nfloors += (uint32_t)capped;
}

void master_floor_raise(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	floor_raise(ms, key, klen, gen, 1);
}

void master_floor_raise_location(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	floor_raise(ms, key, klen, gen, 0);
}

uint64_t master_floor_take(struct master *ms, const struct master_node *node, const uint8_t *key, uint16_t klen,
			   uint64_t gen)
{
	struct master_floor *f = ms->floors ? floor_find(ms, key, klen) : NULL;
	/* floor_all only for what a forgotten node brings back: a live node's
	 * own re-sync re-adds its current keys, which it must not refuse */
	uint64_t floor = node->forgot || node->unsynced ? ms->floor_all : 0;

	if (f && f->gen > floor)
		floor = f->gen;
	if (f && gen >= floor) {
		/* the key's new entry is the floor from now on */
		HASH_DEL(ms->floors, f);
		ms->nfloors -= f->capped;
		free(f);
	}
	return floor;
}

void master_floor_free_all(struct master *ms)
{
	struct master_floor *f, *tmp;
	HASH_ITER(hh, ms->floors, f, tmp) {
		HASH_DEL(ms->floors, f);
		free(f);
	}
	ms->nfloors = 0;
	ms->floor_all = 0;
	ms->floor_full_logged = 0;
}

void master_floor_prune(struct master *ms)
{
	if (!floors_needed(ms) && (ms->floors || ms->floor_all))
		master_floor_free_all(ms);
}

void master_floor_forget(struct master *ms, struct master_node *n)
{
	if (n->forgot)
		return;
	n->forgot = 1;
	ms->forgotten++;
}

void master_floor_recalled(struct master *ms, struct master_node *n)
{
	if (n->forgot) {
		n->forgot = 0;
		ms->forgotten--;
	}
	master_floor_prune(ms);
}

/* ---- master.db's floors ----
 *
 * The floors above live while this master does.  A master restart loses
 * them, and with them what the unconfirmed DROP_GEN notices (also kept in
 * memory only) protected: a node that missed the drop of an older
 * generation re-syncs it, and if the newer one was removed meanwhile no
 * row says it is old.  So master.db keeps a floor for every key whose last
 * row was deleted (the objects_floor trigger of sql/002-floors.sql, in the
 * transaction of the delete), loaded at start; a dead node's lost rows are
 * floors too (it may bring back exactly them).  The table is emptied
 * whenever no node can hold a generation the index does not know. */

int master_floor_load(void *arg, const void *key, size_t klen, uint64_t gen)
{
	struct master *ms = arg;
	struct master_entry *e;

	master_floor_db_note(ms);
	if (klen == 0 || klen > KVN_MAX_KEY)
		return 0;
	e = master_index_find(ms, key, (uint16_t)klen);
	if (!e) /* a later put's row is its own floor */
		master_floor_raise(ms, key, (uint16_t)klen, gen);
	return 0;
}

void master_floor_db_note(struct master *ms)
{
	ms->db_floors = 1;
	ms->db_floor_ms = kvn_now_ms();
}

void master_floor_db_check(struct master *ms)
{
	struct master_node *n, *tmp;
	uint64_t now = kvn_now_ms();

	if (!ms->db_floors || ms->db_degraded || ms->unsynced || ms->forgotten)
		return;
	uint64_t keep = ms->floor_keep_ms ? ms->floor_keep_ms : MASTER_FLOOR_KEEP_MS;
	if (ms->floor_clear_ms && now - ms->floor_clear_ms < (keep < MASTER_FLOOR_CLEAR_EVERY_MS ? keep : MASTER_FLOOR_CLEAR_EVERY_MS))
		return;
	HASH_ITER(hh, ms->nodes, n, tmp)
		if (n->npdrops || n->pdrops_lost || n->stg.active)
			return; /* it may still hold a generation it was told to drop */
	/* Only floors older than the keep window: a node that removed a
	 * value itself (REMOVE, expiry) makes that durable on its disk tier
	 * a little later; if it crashed in between it brings the value back,
	 * and should the master restart too, only a floor refuses it (t/sim
	 * seed 726 with the queue on: a removed key's old generation was
	 * routed again). */
	struct actor_msg *m = actor_msg_new(DBW_FLOORS_CLEAR);
	struct wire_w w;
	wire_w_init(&w);
	wire_w_u64(&w, kvn_wall_ms() - keep);
	if (wire_w_to_msg(&w, m) != 0 || actor_send(ms->dbw, m) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return; /* the next heartbeat tries again */
	}
	ms->floor_clear_ms = now;
	if (now - ms->db_floor_ms >= keep)
		ms->db_floors = 0; /* none younger than the window can be left */
}

/* ---- recent removals ----
 * A REMOVE takes the key out of the index; a put of an older generation
 * granted before it may still arrive: a peer stopped (SIGSTOP, a long
 * pause) between the grant check and the commit sends its ADD later, and
 * with no entry left it would be indexed, the removed value back
 * (t/linearize saw it).  A grant is accepted up to PROTO_GRANT_TTL_MS +
 * PROTO_GRANT_SKEW_MS after it was issued, and its pending slot lives
 * peer.pending_ttl more: MREMOVED_MS covers both with room to spare. */
#define MREMOVED_MS (10ull * 60 * 1000)
#define MREMOVED_MAX (1u << 18)

struct master_removed {
	UT_hash_handle hh;
	TAILQ_ENTRY(master_removed) link;
	uint64_t gen, expires_ms;
	uint16_t klen;
	uint8_t key[];
};

static void removed_del(struct master *ms, struct master_removed *r)
{
	HASH_DEL(ms->removed, r);
	TAILQ_REMOVE(&ms->removed_fifo, r, link);
	ms->nremoved--;
	free(r);
}

void master_floor_removed_note(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_removed *r;

	if (!ms->removed)
		TAILQ_INIT(&ms->removed_fifo);
	HASH_FIND(hh, ms->removed, key, klen, r);
	if (r)
		removed_del(ms, r); /* renewed: to the back of the queue */
	else if (ms->nremoved >= MREMOVED_MAX)
		removed_del(ms, TAILQ_FIRST(&ms->removed_fifo)); /* the oldest goes first */
	r = kvn_xmalloc(sizeof *r + klen);
	r->gen = gen;
	r->expires_ms = kvn_now_ms() + MREMOVED_MS;
	r->klen = klen;
	memcpy(r->key, key, klen);
	HASH_ADD_KEYPTR(hh, ms->removed, r->key, r->klen, r);
	TAILQ_INSERT_TAIL(&ms->removed_fifo, r, link);
	ms->nremoved++;
}

uint64_t master_floor_removed_take(struct master *ms, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_removed *r = NULL;

	if (!ms->removed)
		return 0;
	HASH_FIND(hh, ms->removed, key, klen, r);
	if (!r)
		return 0;
	uint64_t floor = r->gen;
	if (gen >= floor || kvn_now_ms() >= r->expires_ms)
		removed_del(ms, r); /* a newer entry from now on, or too old to matter */
	return floor;
}

void master_floor_removed_prune(struct master *ms)
{
	uint64_t now = kvn_now_ms();
	struct master_removed *r;

	while (ms->removed && (r = TAILQ_FIRST(&ms->removed_fifo)) && r->expires_ms <= now)
		removed_del(ms, r);
}

void master_floor_removed_free_all(struct master *ms)
{
	struct master_removed *r;

	while (ms->removed && (r = TAILQ_FIRST(&ms->removed_fifo)))
		removed_del(ms, r);
}
