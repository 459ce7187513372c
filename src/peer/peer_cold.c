/*
 * peer_cold: requests that wait on the disk tier.  A GET with values only
 * on disk is held while the disk writer reads them (each under a read
 * lease, so the file outlives a supersede until the read is done), then
 * answered whole, in item order, with every other item served from DRAM as
 * usual; a hit is promoted back to DRAM when peer.promote_on_hit says so.
 * EVICT_KEY drops values from DRAM, offloading first those without a disk
 * copy (the answer waits for the disk), so an operator can drain keys
 * without losing them.  Held requests carry a deadline: a disk that hangs
 * gets the requester KVN_ETIMEDOUT, never a wait without end.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "peer/peer_int.h"
#include "base/base.h"
#include "base/metrics.h"

struct cold_item {
	int32_t status;       /* 1: waiting for the disk */
	uint64_t gen, size, checksum, lease;
	struct evbuffer *bytes; /* a read's value (owned) */
};

struct peer_cold {
	TAILQ_ENTRY(peer_cold) link;
	struct peer *p;
	struct actor_msg *m; /* a copy of the request: answered later */
	uint16_t type;
	uint32_t n, waiting;
	uint64_t deadline_ms;
	int answered;
	struct cold_item *it;
};

struct cold_ref {
	struct peer_cold *c;
	uint32_t i;
	uint64_t size; /* bytes this read holds against COLD_READ_BUDGET */
};

/* Bytes of disk reads in flight at once: each is a buffer of the value's
 * size, so many large cold GETs must not add up to unbounded memory.  An
 * item past it answers KVN_EBUSY (asked again); one read always fits. */
#define COLD_READ_BUDGET (256ull << 20)

#define COLD_WAITING 1

static struct peer_cold *cold_new(struct peer *p, struct actor_msg *m, uint32_t n)
{
	struct peer_cold *c = kvn_xcalloc(1, sizeof *c);
	c->p = p;
	c->m = actor_msg_dup(m);
	c->type = m->type;
	c->n = n;
	c->it = kvn_xcalloc(n ? n : 1, sizeof *c->it);
	c->deadline_ms = kvn_now_ms() + (p->o.call_timeout_ms ? p->o.call_timeout_ms : 5000);
	TAILQ_INSERT_TAIL(&p->cold, c, link);
	return c;
}

static void cold_free(struct peer_cold *c)
{
	TAILQ_REMOVE(&c->p->cold, c, link);
	for (uint32_t i = 0; i < c->n; i++)
		if (c->it[i].bytes)
			evbuffer_free(c->it[i].bytes);
	actor_msg_free(c->m);
	free(c->it);
	free(c);
}

static struct cold_ref *ref_new(struct peer_cold *c, uint32_t i)
{
	struct cold_ref *r = kvn_xmalloc(sizeof *r);
	r->c = c;
	r->i = i;
	r->size = 0;
	c->waiting++;
	c->it[i].status = COLD_WAITING;
	return r;
}

/* ---- GET ------------------------------------------------------------------------ */

/* A read whose checksum failed: the disk tier quarantined the file, so the
 * value is gone from this node.  The master stops routing to it. */
static void cold_lost(struct peer *p, const struct proto_item *it, uint64_t gen)
{
	uint64_t suppressed = 0;

	if (keytab_remove(p->st->kt, it->key, it->klen, gen, NULL) == 0)
		peer_event_add(p, PROTO_EV_REMOVE, it->key, it->klen, gen, KEYTAB_DISK, 0, 0);
	p->tstats.checksum_errors++;
	if (kvn_ratelimit_ok(&p->disk_rl, &suppressed))
		log_error("disk tier: a value's file failed its checksum; it was quarantined and the value "
			  "dropped from this node (%llu in all; %llu more lines suppressed)",
			  (unsigned long long)p->tstats.checksum_errors, (unsigned long long)suppressed);
}

/* Copy a read value back into DRAM (peer.promote_on_hit). */
static void promote(struct peer *p, const struct proto_item *it, struct cold_item *ci)
{
	struct keytab_view v;
	uint64_t off = 0;

	if (keytab_promote(p->st->kt, it->key, it->klen, ci->gen, &v) != 0)
		return; /* no room, or it changed meanwhile: it stays on disk */
	for (int e = 0; e < v.next && off < v.size; e++) {
		uint64_t len = (uint64_t)v.ext[e].npages * alloc_page_size(p->st->arena);
		if (len > v.size - off)
			len = v.size - off;
		struct evbuffer_ptr pos;
		evbuffer_ptr_set(ci->bytes, &pos, (size_t)off, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(ci->bytes, &pos, alloc_addr(p->st->arena, v.ext[e].page), (size_t)len);
		off += len;
	}
	if (keytab_promote_done(p->st->kt, it->key, it->klen, ci->gen, 1) == 0) {
		p->tstats.promoted++;
		peer_event_add(p, PROTO_EV_ADD, it->key, it->klen, ci->gen, KEYTAB_DRAM, v.size,
			       peer_ev_flags(v.flags));
	}
}

static void cold_get_answer(struct peer_cold *c)
{
	struct peer *p = c->p;
	struct peer_get_reply gr = { .now = kvn_now_ms(), .conn = c->m->src };
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	int events = 0;

	gr.payload = evbuffer_new();
	if (!gr.payload)
		kvn_fatal("out of memory");
	wire_w_init(&gr.w);
	proto_results_begin(&gr.w, c->n);
	(void)proto_items_open(&r, c->m->meta, c->m->meta_len, &flags, &n); /* checked on arrival */
	for (uint32_t i = 0; i < c->n; i++) {
		struct cold_item *ci = &c->it[i];
		struct proto_result res = { 0 };
		proto_items_next(&r, &it);
		if (!ci->bytes && ci->status == 0) {
			res = peer_get_one(p, &gr, &it, c->n - i);
		} else if (ci->status != 0) {
			res.status = ci->status;
			if (ci->status == KVN_ENOTFOUND)
				kvn_metric_misses(KVN_METRIC_PEER, 1);
			/* which generation's bytes failed: a speculative read
			 * keeps a KVN_ECORRUPT only when it names the routed
			 * generation (client_api.c, spec_finish); without it the
			 * client read again and found the key already dropped */
			if (ci->status == KVN_ECORRUPT)
				res.gen = ci->gen;
		} else if (gr.bytes > 0 && ci->size > PROTO_MAX_BATCH_PAYLOAD - gr.bytes) {
			res.status = KVN_EBUSY; /* past the frame limit: asked again */
		} else {
			res.gen = ci->gen;
			res.size = ci->size;
			res.checksum = ci->checksum;
			if (p->o.promote_on_hit) {
				uint64_t before = p->tstats.promoted;
				promote(p, &it, ci);
				events |= p->tstats.promoted != before;
			}
			evbuffer_add_buffer(gr.payload, ci->bytes);
			gr.bytes += ci->size;
			p->stats.gets++;
			p->stats.get_bytes += ci->size;
			p->tstats.disk_gets++;
			kvn_metric_hits(KVN_METRIC_PEER, 1);
		}
		proto_results_add(&gr.w, &res);
	}
	proto_reply(p->self, c->m, &gr.w, gr.payload, 0);
	c->answered = 1;
	if (events) {
		peer_ship(p);
		peer_tier_kick(p);
	}
}

static void cold_read_done(struct peer *p, void *arg, int status, struct evbuffer *payload)
{
	struct cold_ref *ref = arg;
	struct peer_cold *c = ref->c;
	uint32_t idx = ref->i;
	struct cold_item *ci = &c->it[idx];

	p->cold_read_bytes -= ref->size;
	free(ref);
	(void)keytab_release(p->st->kt, ci->lease);
	ci->lease = 0;
	if (status == 0 && payload && evbuffer_get_length(payload) == ci->size) {
		ci->bytes = payload;
		payload = NULL;
		ci->status = 0;
	} else {
		ci->status = status ? status : KVN_EIO;
		if (status == KVN_ECORRUPT) {
			struct wire_r r;
			struct proto_item it;
			uint8_t flags;
			uint32_t n;
			(void)proto_items_open(&r, c->m->meta, c->m->meta_len, &flags, &n);
			for (uint32_t i = 0; i <= idx; i++)
				proto_items_next(&r, &it); /* decoded on arrival */
			cold_lost(p, &it, ci->gen);
			peer_ship(p);
		}
		if (status != KVN_ECORRUPT && status != KVN_ECLOSED)
			p->tstats.disk_read_errors++;
	}
	if (payload)
		evbuffer_free(payload);
	if (--c->waiting > 0)
		return;
	if (!c->answered && status != KVN_ECLOSED)
		cold_get_answer(c);
	cold_free(c);
}

int peer_get_cold(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct proto_item it;
	struct keytab_view v;
	struct peer_cold *c = NULL;
	uint8_t flags;
	uint32_t n;
	uint64_t now = kvn_now_ms();

	if (!p->disk_on)
		return 0; /* without a disk tier every committed value is in DRAM */
	if (proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		if (proto_items_next(&r, &it) != 0)
			break;
		if (keytab_lookup(p->st->kt, it.key, it.klen, it.gen, &v) != 0 || v.in_dram)
			continue;
		if (!c)
			c = cold_new(p, m, n);
		struct cold_item *ci = &c->it[i];
		ci->gen = v.gen;
		ci->size = v.size;
		ci->checksum = v.checksum;
		if (p->cold_read_bytes > 0 &&
		    (p->cold_read_bytes >= COLD_READ_BUDGET || v.size > COLD_READ_BUDGET - p->cold_read_bytes)) {
			ci->status = KVN_EBUSY; /* memory for reads in flight is spent */
			continue;
		}
		if (keytab_lease(p->st->kt, it.key, it.klen, v.gen, now, p->o.read_lease_ttl_ms, &ci->lease, &v) != 0) {
			ci->status = KVN_EBUSY;
			continue;
		}
		struct cold_ref *ref = ref_new(c, i);
		ref->size = ci->size;
		p->cold_read_bytes += ref->size;
		int rc = peer_disk_read(p, &v, cold_read_done, ref);
		if (rc) {
			p->cold_read_bytes -= ref->size;
			free(ref);
			c->waiting--;
			(void)keytab_release(p->st->kt, ci->lease);
			ci->lease = 0;
			ci->status = KVN_EBUSY;
		}
	}
	if (!c)
		return 0;
	if (c->waiting == 0) {
		cold_get_answer(c);
		cold_free(c);
	}
	return 1;
}

/* ---- EVICT_KEY ---------------------------------------------------------------- */

static void evict_answer(struct peer_cold *c)
{
	struct wire_w w;

	wire_w_init(&w);
	proto_results_begin(&w, c->n);
	for (uint32_t i = 0; i < c->n; i++) {
		struct proto_result res = { .status = c->it[i].status, .gen = c->it[i].gen };
		proto_results_add(&w, &res);
	}
	peer_reply_after_ack(c->p, c->m, &w, c->p->last_seq, 0);
	c->answered = 1;
}

static void evict_offloaded(struct peer *p, void *arg, int status)
{
	struct cold_ref *ref = arg;
	struct peer_cold *c = ref->c;

	(void)p;
	c->it[ref->i].status = status;
	free(ref);
	if (--c->waiting > 0)
		return;
	if (!c->answered && status != KVN_ECLOSED)
		evict_answer(c);
	cold_free(c);
}

void peer_on_evict_key(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct proto_item it;
	struct keytab_view v;
	uint8_t flags;
	uint32_t n;
	struct peer_cold *c;

	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	c = cold_new(p, m, n);
	for (uint32_t i = 0; i < n; i++) {
		struct cold_item *ci = &c->it[i];
		proto_items_next(&r, &it);
		p->tstats.evict_requests++;
		ci->status = keytab_lookup(p->st->kt, it.key, it.klen, it.gen, &v);
		if (ci->status != 0)
			continue;
		ci->gen = v.gen;
		if (v.leases || v.pins || v.offloading) {
			ci->status = KVN_EHELD;
		} else if (!v.in_dram) {
			ci->status = 0; /* only on disk already */
		} else if (v.on_disk) {
			ci->status = keytab_drop_dram(p->st->kt, it.key, it.klen, v.gen);
			if (ci->status == 0)
				peer_event_add(p, PROTO_EV_ADD, it.key, it.klen, v.gen, KEYTAB_DISK, v.size,
					       peer_ev_flags(v.flags));
		} else if (p->disk_on) {
			struct cold_ref *ref = ref_new(c, i);
			int rc = peer_offload(p, it.key, it.klen, v.gen, evict_offloaded, ref);
			if (rc) {
				free(ref);
				c->waiting--;
				ci->status = rc;
			}
		} else if (v.flags & KEYTAB_F_QUEUE) {
			ci->status = KVN_EHELD; /* a work-queue item is never dropped */
		} else {
			ci->status = keytab_evict_one(p->st->kt, it.key, it.klen, v.gen);
			if (ci->status == 0) {
				peer_event_add(p, PROTO_EV_REMOVE, it.key, it.klen, v.gen, KEYTAB_DRAM, 0, 0);
				p->tstats.evicted_dropped++;
			}
		}
	}
	peer_ship(p);
	if (c->waiting == 0) {
		evict_answer(c);
		cold_free(c);
	}
}

/* ---- deadlines ---------------------------------------------------------------- */

void peer_cold_tick(struct peer *p, uint64_t now)
{
	struct peer_cold *c;

	TAILQ_FOREACH(c, &p->cold, link) {
		if (c->answered || now < c->deadline_ms)
			continue;
		/* the disk has not answered in time: the requester hears so;
		 * the reads still in flight free this when they end */
		actor_reply_status(p->self, c->m, KVN_ETIMEDOUT);
		c->answered = 1;
		p->tstats.disk_timeouts++;
	}
}
