/*
 * peer_sync: the full sync, which replaces the master's view of this node
 * when it asks for one (an attach answered need_full_sync): a snapshot of
 * every committed key, shipped in FULL_SYNC chunks under the metadata
 * budget, then acknowledged like the events it covers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "peer/peer_int.h"
#include "base/base.h"

struct sync_entry {
	uint64_t gen, size;
	uint8_t tier;
	uint8_t flags; /* QUEUE / RETAIN: a master re-learning the node keeps its queue */
	uint16_t klen;
	uint8_t *key;
};

struct sync_state {
	struct sync_entry *e;
	size_t n, cap, next;
	uint64_t seq;
	uint32_t chunk;
};

static void sync_free(struct sync_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].key);
	free(s->e);
	free(s);
}

static void sync_collect(void *arg, const struct keytab_view *v)
{
	struct sync_state *s = arg;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->e = realloc(s->e, s->cap * sizeof *s->e);
		if (!s->e)
			kvn_fatal("out of memory");
	}
	struct sync_entry *e = &s->e[s->n++];
	e->gen = v->gen;
	e->size = v->size;
	/* where reads are served from: a value on both tiers reads from DRAM */
	e->tier = v->in_dram ? KEYTAB_DRAM : KEYTAB_DISK;
	e->flags = peer_ev_flags(v->flags);
	e->klen = (uint16_t)v->klen;
	e->key = kvn_xmalloc(v->klen);
	memcpy(e->key, v->key, v->klen);
}

static void sync_send_chunk(struct peer *p, struct sync_state *s);

static int on_sync(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct peer *p = actor_state(self);
	struct sync_state *s = arg;
	struct proto_ack a;

	if (err || !reply || reply->status != 0 || proto_ack_dec(reply, &a) != 0) {
		log_warn("full sync with the master failed: %s; will attach again",
			 kvn_strerror(err ? err : reply ? reply->status : KVN_EPROTO));
		sync_free(s);
		p->syncing = 0;
		p->attached = 0;
		peer_attach_later(p);
		return 0;
	}
	if (s->next < s->n) {
		sync_send_chunk(p, s);
		return 0;
	}
	log_info("full sync done: %zu key(s) as of event %llu", s->n, (unsigned long long)s->seq);
	p->syncing = 0;
	/* the snapshot covers every event up to its seq */
	if (a.applied_seq < s->seq)
		a.applied_seq = s->seq;
	sync_free(s);
	peer_process_ack(p, &a);
	peer_ship(p);
	return 0;
}

static void sync_send_chunk(struct peer *p, struct sync_state *s)
{
	struct proto_sync_hdr h;
	struct wire_w w;
	uint32_t bytes = 64, n = 0;

	while (s->next + n < s->n) {
		bytes += 32u + s->e[s->next + n].klen;
		if (bytes > PEER_META_BUDGET || n >= PROTO_MAX_ITEMS)
			break;
		n++;
	}
	memset(&h, 0, sizeof h);
	snprintf(h.node_id, sizeof h.node_id, "%s", p->node_id);
	h.boot_id = p->boot_id;
	h.seq = s->seq;
	h.chunk = s->chunk++;
	h.n = n;
	h.last = s->next + n == s->n;
	wire_w_init(&w);
	proto_sync_begin(&w, &h);
	for (uint32_t i = 0; i < n; i++) {
		struct sync_entry *e = &s->e[s->next + i];
		struct proto_event pe = { .key = e->key, .klen = e->klen, .gen = e->gen, .tier = e->tier,
					  .size = e->size, .flags = e->flags };
		proto_sync_add(&w, &pe);
	}
	s->next += n;
	struct actor_msg *m = actor_msg_new(WIRE_FULL_SYNC);
	if (wire_w_to_msg(&w, m) != 0 ||
	    actor_call(p->self, p->master, m, p->o.call_timeout_ms, on_sync, s) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		sync_free(s);
		p->syncing = 0;
		p->attached = 0;
	}
}

void peer_sync_start(struct peer *p)
{
	struct sync_state *s = kvn_xcalloc(1, sizeof *s);
	keytab_foreach_view(p->st->kt, sync_collect, s);
	s->seq = p->last_seq;
	p->syncing = 1;
	p->stats.sync_runs++;
	sync_send_chunk(p, s);
}
