/*
 * peer_view: a copy of what the peer's monitoring needs (its link to the
 * master, its tiers' use and health, its counters), taken under the
 * peer's lock so the HTTP endpoint (src/http/) can read it from its loop
 * without racing the I/O loops.
 */
#include "config.h"

#include <string.h>

#include "peer/peer_int.h"

void peer_view(struct actor *peer, struct peer_view *v)
{
	struct peer *p = actor_state(peer);
	struct keytab_stats ks;

	memset(v, 0, sizeof *v);
	pthread_mutex_lock(&p->st->mu);
	snprintf(v->node_id, sizeof v->node_id, "%s", p->node_id);
	v->attached = p->attached;
	v->left = p->left;
	v->disk_on = p->disk_on;
	v->disk_readonly = p->disk_readonly;
	v->disk_hung = p->disk_hung;
	v->dram_total = p->o.dram_size;
	keytab_get_stats(p->st->kt, &ks);
	uint64_t used = p->o.dram_size - alloc_free_bytes(p->st->arena);
	v->dram_pending = ks.pending_bytes < used ? ks.pending_bytes : used;
	v->dram_used = used - v->dram_pending;
	v->disk_total = p->disk_on ? p->o.disk_size : 0;
	v->disk_used = p->disk_on ? p->disk_used : 0;
	v->keys = ks.keys;
	v->stats = p->stats;
	peer_slot_get_stats(p, &v->slots);
	v->tiers = p->tstats;
	pthread_mutex_unlock(&p->st->mu);
}
