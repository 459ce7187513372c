/*
 * master_drops: DROP_GEN bookkeeping.  Owns the batch of notices one
 * request produced (struct master_drops: queued while the index changes,
 * sent per node once it is done), the notices a node has not confirmed yet
 * (struct master_pdrop, sent again from its heartbeat), and the one-line
 * summary of a batch's stale entries (struct master_stale).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "master/master_int.h"

/* DROP_GEN messages are cut below the metadata limit. */
#define DROP_SPLIT_BYTES (48u * 1024u)
/* Unconfirmed DROP_GEN notices kept per node; beyond, the node is asked
 * for a full sync instead (master_on_heartbeat). */
#define PDROP_MAX 65536

/* ---- DROP_GEN batching ---- */

void master_drops_add(struct master_drops *d, struct master_node *node, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_drop *x = kvn_xmalloc(sizeof *x + klen);
	x->node = node;
	x->gen = gen;
	x->klen = klen;
	memcpy(x->key, key, klen);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		struct master_drop **v = realloc(d->v, d->cap * sizeof *v);
		if (!v)
			kvn_fatal("out of memory");
		d->v = v;
	}
	d->v[d->n++] = x;
}

void master_drops_fini(struct master_drops *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
	memset(d, 0, sizeof *d);
}

/* Send v[0..n) (all for one node) as one DROP_GEN.  Returns items not
 * delivered. */
static size_t drop_send_one(struct master *ms, struct master_node *node, struct master_drop **v, size_t n)
{
	struct actor_msg *m = actor_msg_new(WIRE_DROP_GEN);
	struct wire_w w;

	m->src = actor_id_of(ms->self); /* an in-process peer checks it (send_durable) */

	wire_w_init(&w);
	proto_items_begin(&w, 0, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		proto_items_add(&w, v[i]->key, v[i]->klen, v[i]->gen, 0);
	if (wire_w_to_msg(&w, m) != 0 || actor_send(node->ref, m) != 0) {
		wire_w_fini(&w);
		actor_msg_free(m);
		return n;
	}
	return 0;
}

/* By node id, not by pointer: the order of the sends is then the same in
 * every run, which a seeded simulation needs to replay. */
static int drop_cmp(const void *a, const void *b)
{
	const struct master_drop *x = *(struct master_drop *const *)a, *y = *(struct master_drop *const *)b;
	return strcmp(x->node->node_id, y->node->node_id);
}

/* ---- unconfirmed DROP_GEN notices ---- */

static size_t pdrop_hk(uint8_t *hk, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	memcpy(hk, &gen, 8);
	memcpy(hk + 8, key, klen);
	return 8u + klen;
}

int master_drops_pending_has(const struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	uint8_t hk[8 + KVN_MAX_KEY];
	struct master_pdrop *d;
	size_t len;

	if (!n->pdrops || klen > KVN_MAX_KEY)
		return 0;
	len = pdrop_hk(hk, key, klen, gen);
	HASH_FIND(hh, n->pdrops, hk, len, d);
	return d != NULL;
}

static void pending_add(struct master_node *n, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	struct master_pdrop *d;

	if (klen > KVN_MAX_KEY || master_drops_pending_has(n, key, klen, gen))
		return;
	if (n->npdrops >= PDROP_MAX) {
		n->pdrops_lost = 1;
		return;
	}
	d = kvn_xmalloc(sizeof *d + 8u + klen);
	memset(d, 0, sizeof *d);
	d->klen = klen;
	pdrop_hk(d->hk, key, klen, gen);
	HASH_ADD_KEYPTR(hh, n->pdrops, d->hk, 8u + klen, d);
	n->npdrops++;
}

void master_drops_pending_clear(struct master_node *n)
{
	struct master_pdrop *d, *tmp;
	HASH_ITER(hh, n->pdrops, d, tmp) {
		HASH_DEL(n->pdrops, d);
		free(d);
	}
	n->npdrops = 0;
	n->pdrops_lost = 0;
}

void master_drops_pending_resend(struct master *ms, struct master_node *n)
{
	struct master_drops again = { 0 };
	struct master_pdrop *d, *tmp;

	HASH_ITER(hh, n->pdrops, d, tmp) {
		uint64_t gen;
		memcpy(&gen, d->hk, 8);
		master_drops_add(&again, n, d->hk + 8, d->klen, gen);
	}
	master_drops_send(ms, &again); /* already kept: adding again is a no-op */
}

void master_drops_send(struct master *ms, struct master_drops *d)
{
	size_t failed = 0;
	const struct master_node *first_failed = NULL;

	if (d->n == 0)
		return;
	/* stable enough: qsort is not stable, but order within a node does
	 * not matter (each item names its own generation) */
	qsort(d->v, d->n, sizeof *d->v, drop_cmp);
	/* kept until the node's heartbeat shows it applied them: a notice
	 * that does not arrive is sent again */
	for (size_t i = 0; i < d->n; i++)
		pending_add(d->v[i]->node, d->v[i]->key, d->v[i]->klen, d->v[i]->gen);
	for (size_t i = 0; i < d->n;) {
		struct master_node *node = d->v[i]->node;
		size_t j = i, bytes = 5;
		while (j < d->n && d->v[j]->node == node && j - i < PROTO_MAX_ITEMS &&
		       bytes + 18u + d->v[j]->klen <= DROP_SPLIT_BYTES) {
			bytes += 18u + d->v[j]->klen;
			j++;
		}
		size_t f = drop_send_one(ms, node, d->v + i, j - i);
		if (f && !first_failed)
			first_failed = node;
		failed += f;
		MASTER_STAT_ADD(drops_sent, (j - i) - f);
		i = j;
	}
	if (failed) {
		/* the node's disconnection or full mailbox: its next full sync
		 * reconciles (the index no longer points at those gens) */
		MASTER_STAT_ADD(drops_failed, failed);
		log_warn("master: %zu DROP_GEN notices undeliverable (first to node %s)", failed,
			 KVN_Q(first_failed->node_id));
	}
	master_drops_fini(d);
}

void master_drops_stale_add(struct master_stale *s, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	if (s->n++ == 0) {
		kvn_key_printable(s->first, sizeof s->first, key, klen);
		s->first_gen = gen;
	}
}

void master_drops_stale_log(const struct master_stale *s, const struct master_node *n, const char *what)
{
	if (s->n)
		log_warn("master: node %s: %u stale %s entries answered with DROP_GEN (first %s gen %" PRIu64 ")",
			 KVN_Q(n->node_id), s->n, what, s->first, s->first_gen);
}
