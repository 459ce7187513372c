/*
 * master_view: a copy of what the master's monitoring needs (the node
 * table as STAT reports it, the index totals, master.db's health), for the
 * HTTP endpoint (src/http/), which runs on the master's loop thread.  A
 * copy, so the caller formats without touching master state.
 */
#include "config.h"

#include <string.h>

#include "master/master_int.h"

void master_view(struct actor *master, struct master_view *v, struct master_view_node *nodes, uint32_t cap)
{
	struct master *ms = actor_state(master);
	struct master_node *n, *tmp;
	uint64_t now = kvn_now_ms();
	uint32_t i = 0;

	memset(v, 0, sizeof *v);
	snprintf(v->server_id, sizeof v->server_id, "%s", ms->server_id ? ms->server_id : "");
	v->objects = ms->objects;
	v->bytes = ms->bytes;
	v->nodes = HASH_COUNT(ms->nodes);
	v->db_degraded = ms->db_degraded;
	if (ms->db_degraded) {
		snprintf(v->db_reason, sizeof v->db_reason, "%s", ms->db_reason);
		v->db_degraded_ms = now > ms->db_degraded_ms ? now - ms->db_degraded_ms : 0;
	}
	HASH_ITER(hh, ms->nodes, n, tmp) {
		if (i >= cap)
			break;
		struct master_view_node *o = &nodes[i++];
		memset(o, 0, sizeof *o);
		snprintf(o->node_id, sizeof o->node_id, "%s", n->node_id);
		snprintf(o->addr, sizeof o->addr, "%s", n->addr);
		o->alive = master_node_usable(n);
		o->dead = n->dead;
		o->left = n->left;
		o->dram_total = n->dram_total;
		o->dram_used = n->dram_used;
		o->disk_total = n->disk_total;
		o->disk_used = n->disk_used;
		o->objects = n->objects;
		o->bytes = n->bytes;
		o->event_lag = n->reported_seq > n->applied_seq ? n->reported_seq - n->applied_seq : 0;
		o->seen_ago_ms = n->last_seen_ms && now > n->last_seen_ms ? now - n->last_seen_ms : 0;
	}
}
