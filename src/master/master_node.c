/*
 * master_node: the master's node table.  Owns struct master_node's life
 * (found or created by node id, freed with the master), a node's grant key
 * and the grants it signs for the puts routed to it, its DRAM accounting
 * (page footprint, free room for placement), its row for master.db, and
 * the count of nodes master.db knows that have not re-synced since this
 * start.  Runs on the master actor's loop only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "master/master_int.h"

/* ---- nodes ---- */

struct master_node *master_node_find(struct master *ms, const char *node_id)
{
	struct master_node *n;
	HASH_FIND_STR(ms->nodes, node_id, n);
	return n;
}

struct master_node *master_node_get(struct master *ms, const char *node_id)
{
	struct master_node *n = master_node_find(ms, node_id);
	if (n)
		return n;
	n = kvn_xcalloc(1, sizeof *n);
	snprintf(n->node_id, sizeof n->node_id, "%s", node_id);
	TAILQ_INIT(&n->entries);
	TAILQ_INIT(&n->qents);
	HASH_ADD_STR(ms->nodes, node_id, n);
	return n;
}

void master_node_staging_reset(struct master_staging *s)
{
	free(s->ents);
	free(s->keys);
	memset(s, 0, sizeof *s);
}

void master_node_free_all(struct master *ms)
{
	struct master_node *n, *tmp;
	HASH_ITER(hh, ms->nodes, n, tmp) {
		HASH_DEL(ms->nodes, n);
		master_node_staging_reset(&n->stg);
		master_drops_pending_clear(n);
		wire_w_fini(&n->held_w);
		auth_grant_key_free(n->gkey);
		free(n);
	}
}

/* ---- grants ---- */

/* From the connection the node attached over (both ends derive the same
 * bytes from its session, nothing is sent), or, for an actor of this
 * process, from the process's own secret and the node's boot id. */
void master_node_grant_key(struct master *ms, struct master_node *n, const struct actor_msg *m, uint64_t boot)
{
	uint8_t mat[AUTH_MAC_LEN];
	struct auth_grant_key *g = NULL;
	int rc = net_link_material(actor_loop_of(ms->self), m->src, AUTH_GRANT_LABEL, mat);

	if (rc == KVN_EINVAL)
		rc = auth_grant_local_material(boot, mat);
	if (rc == 0)
		rc = auth_grant_key_new(mat, &g);
	OPENSSL_cleanse(mat, sizeof mat);
	auth_grant_key_free(n->gkey);
	n->gkey = g;
	if (rc)
		log_error("master: node %s: no grant key for this attachment (%s): its puts will be refused",
			  n->node_id, kvn_strerror(rc));
}

void master_node_grant(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen, uint64_t size,
		       struct proto_grant *g)
{
	memset(g, 0, sizeof *g);
	if (!n->gkey)
		return;
	g->expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS;
	g->size = size;
	if (auth_grant_sign(n->gkey, n->node_id, key, klen, gen, size, g->expiry_ms, g->mac) != 0)
		memset(g, 0, sizeof *g);
}

/* SQLite holds signed 64-bit integers: clamp what a peer reported. */
static uint64_t clamp63(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

uint64_t master_node_footprint(const struct master_node *n, uint64_t size)
{
	/* The arena hands out whole pages: a 100-byte value on 4 KiB pages
	 * takes 4 KiB, and counting its bytes let small puts overbook a full
	 * peer until its next heartbeat (it answered ENOSPC).  page_size is
	 * range-checked on the wire (a power of two up to 1 GiB), sizes are
	 * below 2^63: no overflow. */
	uint64_t p = n->page_size > 1 ? n->page_size : 1;
	return (size + p - 1) & ~(p - 1);
}

/* DRAM the node uses or was promised: its reported use, corrected by what
 * was indexed or unindexed since (saturating: the report is the peer's, up
 * to 2^63-1 once clamped), plus reservations.  UINT64_MAX on overflow. */
static uint64_t dram_busy(const struct master_node *n)
{
	int64_t used;
	if (__builtin_add_overflow((int64_t)clamp63(n->dram_used), n->used_delta, &used))
		used = n->used_delta > 0 ? INT64_MAX : 0;
	if (used < 0)
		used = 0;
	uint64_t busy = (uint64_t)used + n->reserved;
	return busy < (uint64_t)used ? UINT64_MAX : busy;
}

uint64_t master_node_free_dram(const struct master_node *n)
{
	uint64_t busy = dram_busy(n);
	return n->dram_total > busy ? n->dram_total - busy : 0;
}

uint64_t master_node_room(const struct master_node *n)
{
	/* Evictable bytes are part of the use: they add room only past what
	 * is free.  Both terms are below 2^63 (the decoder keeps evictable <=
	 * dram_total; totals are clamped): no overflow. */
	uint64_t cap = clamp63(n->dram_total) + clamp63(n->dram_evictable);
	uint64_t busy = dram_busy(n);

	if (n->evicts) {
		/* A peer that evicts makes room for what it is sent (or says
		 * KVN_EBUSY while its offloads finish, and the client comes
		 * back): values indexed since its report are evictable too,
		 * and reservations, which a refused put leaves behind until
		 * the next report, do not count against it. */
		if (n->used_delta > 0 && __builtin_add_overflow(cap, (uint64_t)n->used_delta, &cap))
			cap = UINT64_MAX;
		busy = busy > n->reserved ? busy - n->reserved : 0;
	}
	return cap > busy ? cap - busy : 0;
}

uint64_t master_node_free_disk(const struct master_node *n)
{
	return n->disk_total > n->disk_used ? n->disk_total - n->disk_used : 0;
}

void master_node_row(const struct master_node *n, struct meta_node *row)
{
	memset(row, 0, sizeof *row);
	snprintf(row->node_id, sizeof row->node_id, "%s", n->node_id);
	snprintf(row->role, sizeof row->role, "peer");
	snprintf(row->addr, sizeof row->addr, "%s", n->addr);
	row->dram_total = clamp63(n->dram_total);
	row->dram_used = clamp63(n->dram_used);
	row->disk_total = clamp63(n->disk_total);
	row->disk_used = clamp63(n->disk_used);
	row->last_seq = clamp63(n->applied_seq);
	row->last_seen_ms = clamp63(kvn_wall_ms());
	snprintf(row->state, sizeof row->state, "%s", n->dead ? "dead" : "alive");
}

int master_node_usable(const struct master_node *n)
{
	return n->attached && !n->dead;
}

void master_node_synced(struct master *ms, struct master_node *n)
{
	if (!n->unsynced)
		return;
	n->unsynced = 0;
	if (--ms->unsynced == 0) {
		log_info("master: every node known in master.db has re-synced or timed out: every key is routed");
		master_floor_prune(ms);
	}
}
