/*
 * peer_slot: the peer's side of the three-step put and of RESOLVE_KEY.
 * Owns the reservations made by ALLOC_SLOT (each a PENDING key-table slot:
 * its pages, size and deadline, so a COMMIT_SLOT payload goes straight into
 * those pages), the COMMIT_SLOT payload sink, ABORT_SLOT, the refusal
 * counters, and the one aggregated warning per heartbeat cycle for refused
 * transitions (late commit, double abort, wrong size, and key-table refusals
 * such as the release of an unknown lease).
 *
 * Over TCP the bytes arrive as COMMIT_SLOT's payload; an RDMA transport will
 * write them into the same pages (ALLOC_SLOT would return addr/rkey) and
 * send the commit without payload.  Everything else stays as it is here.
 *
 * A reservation is looked up by (key, gen) at every step, never held by
 * pointer across one, and the key table is only asked to commit or abort a
 * slot this table reserved and still holds: a forged or late (key, gen) can
 * never commit or free a slot that a PUT is filling.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "peer/peer_int.h"
#include "base/base.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = (unsigned)kvn_hash64((keyptr), (keylen)))
#define uthash_fatal(msg) kvn_fatal("peer_slot: %s", (msg))
#include <uthash.h>

/* Reservations beyond this answer KVN_EBUSY: zero-size slots take no pages,
 * so the arena alone would not bound them. */
#define SLOT_MAX 65536
/* Refused items' bytes are read into p->scratch in pieces this big (the
 * scratch buffer is larger). */

struct slot_recv;

struct slot_rec {
	UT_hash_handle hh;
	TAILQ_ENTRY(slot_rec) link; /* reservation order, which is deadline order */
	uint64_t gen, size, deadline;
	struct slot_recv *recv; /* a COMMIT_SLOT payload is arriving into it */
	int next;
	struct alloc_extent ext[KEYTAB_MAX_EXT];
	uint16_t klen;
	uint8_t hk[]; /* hash key: 8 bytes of gen, then the key */
};

struct slot_item {
	struct slot_rec *rec; /* NULL: refused, bytes discarded */
	int32_t status;
	uint64_t checksum; /* the writer's, from the commit */
};

/* A COMMIT_SLOT being received.  pp comes first: p->receiving holds &pp,
 * so peer_reap cuts a receive that would outlive its slots' deadline before
 * the key table's reaper frees their pages, exactly as for a PUT. */
struct slot_recv {
	struct peer_put pp;
	TAILQ_ENTRY(slot_recv) link;
	uint8_t flags;
	struct slot_item *items;
};

struct peer_slots {
	struct slot_rec *byk;
	TAILQ_HEAD(, slot_rec) order;
	TAILQ_HEAD(, slot_recv) recvs;
	struct peer_slot_stats st;
	/* refusals not reported yet: one warning line per tick */
	uint64_t w_late, w_size, w_busy, w_abort, kt_seen;
};

static struct peer_slots *slots_of(struct peer *p)
{
	if (!p->slots) {
		p->slots = kvn_xcalloc(1, sizeof *p->slots);
		TAILQ_INIT(&p->slots->order);
		TAILQ_INIT(&p->slots->recvs);
	}
	return p->slots;
}

/* ---- reservations ---- */

static uint32_t hk_make(uint8_t *out, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	memcpy(out, &gen, 8);
	memcpy(out + 8, key, klen);
	return 8u + klen;
}

static struct slot_rec *rec_find(struct peer_slots *s, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	uint8_t hk[8 + WIRE_MAX_KEY];
	struct slot_rec *r = NULL;
	uint32_t n = hk_make(hk, key, klen, gen);
	HASH_FIND(hh, s->byk, hk, n, r);
	return r;
}

static const uint8_t *rec_key(const struct slot_rec *r)
{
	return r->hk + 8;
}

static void rec_drop(struct peer_slots *s, struct slot_rec *r)
{
	KVN_ASSERT(r->recv == NULL);
	HASH_DELETE(hh, s->byk, r);
	TAILQ_REMOVE(&s->order, r, link);
	s->st.reserved--;
	free(r);
}

/* Reservations whose deadline passed are the reaper's now (it frees the
 * key-table slot at its next run); one still being filled stays until its
 * receive ends, which the reaper cuts first. */
static void sweep(struct peer_slots *s, uint64_t now)
{
	struct slot_rec *r, *next;
	for (r = TAILQ_FIRST(&s->order); r && r->deadline <= now; r = next) {
		next = TAILQ_NEXT(r, link);
		if (!r->recv)
			rec_drop(s, r);
	}
}

static int expired(const struct slot_rec *r, uint64_t now)
{
	return now >= r->deadline;
}

/* ---- ALLOC_SLOT ---- */

/* As a PUT's reservation (peer_data.c): evict before saying no room.  The
 * checksum comes with the commit; the expiry counts from the reservation. */
static int slot_reserve(struct peer *p, const struct proto_item *it, uint64_t now, struct keytab_view *v)
{
	struct keytab_attrs at = { .expires_ms = it->ttl_ms ? now + it->ttl_ms : 0 };
	int rc = keytab_begin(p->st->kt, it->key, it->klen, it->gen, it->size, now, p->o.pending_ttl_ms, &at, v);

	if (rc == KVN_ENOSPC && (rc = peer_make_room(p, it->size)) == 0)
		rc = keytab_begin(p->st->kt, it->key, it->klen, it->gen, it->size, now, p->o.pending_ttl_ms, &at, v);
	return rc;
}

void peer_on_alloc_slot(struct peer *p, struct actor_msg *m)
{
	struct peer_slots *s = slots_of(p);
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t now = kvn_now_ms(), wall = kvn_wall_ms();
	struct wire_r gr;
	int has_grants;

	/* decode everything before reserving anything */
	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	has_grants = peer_grants_find(m->meta, m->meta_len, &gr) == 1;
	sweep(s, now);
	wire_w_init(&w);
	proto_slots_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct proto_slot_result res = { 0 };
		struct keytab_view v;
		struct proto_grant g;
		proto_items_next(&r, &it);
		res.gen = it.gen;
		if (has_grants)
			proto_grants_next(&gr, &g);
		/* the master's grant names this key, generation and size */
		if ((res.status = peer_grant_check(p, &it, has_grants ? &g : NULL, wall)) != 0)
			;
		else if (it.size > p->o.max_value_size)
			res.status = KVN_ETOOBIG;
		else if (s->st.reserved >= SLOT_MAX)
			res.status = KVN_EBUSY;
		else
			res.status = slot_reserve(p, &it, now, &v);
		if (res.status == 0) {
			struct slot_rec *rec = kvn_xcalloc(1, sizeof *rec + 8u + it.klen);
			uint32_t hkn = hk_make(rec->hk, it.key, it.klen, it.gen);
			rec->gen = it.gen;
			rec->size = it.size;
			/* the key table's own deadline for the slot (same now, same ttl) */
			rec->deadline = now + p->o.pending_ttl_ms;
			rec->klen = it.klen;
			rec->next = v.next;
			memcpy(rec->ext, v.ext, (size_t)v.next * sizeof v.ext[0]);
			HASH_ADD_KEYPTR(hh, s->byk, rec->hk, hkn, rec);
			TAILQ_INSERT_TAIL(&s->order, rec, link);
			s->st.reserved++;
			s->st.allocs++;
		}
		proto_slots_add(&w, &res);
	}
	proto_reply(p->self, m, &w, NULL, 0);
}

/* XXH3-64 of the bytes a COMMIT_SLOT wrote into the slot's pages. */
static uint64_t slot_sum(struct peer *p, const struct slot_rec *rec)
{
	struct iovec iov[KEYTAB_MAX_EXT];
	uint64_t left = rec->size;
	int n = 0;

	for (int e = 0; e < rec->next && left > 0; e++) {
		uint64_t len = (uint64_t)rec->ext[e].npages * alloc_page_size(p->st->arena);
		if (len > left)
			len = left;
		iov[n].iov_base = alloc_addr(p->st->arena, rec->ext[e].page);
		iov[n++].iov_len = (size_t)len;
		left -= len;
	}
	return peer_iov_sum(iov, n);
}

/* ---- COMMIT_SLOT: receive ---- */

static void recv_free(struct slot_recv *rv)
{
	free(rv->items);
	free(rv->pp.iov);
	free(rv);
}

/* Let go of the reservations a receive was filling (they stay reserved). */
static void recv_release(struct slot_recv *rv)
{
	for (uint32_t i = 0; i < rv->pp.n; i++)
		if (rv->items[i].rec) {
			rv->items[i].rec->recv = NULL;
			rv->items[i].rec = NULL;
		}
}

/* Match every item of a COMMIT_SLOT with its reservation and lay out where
 * the payload goes: the slot's pages, or the scratch page for an item we
 * refuse.  Also used without a sink (payload buffered, or none). */
static int commit_begin(struct peer *p, const uint8_t *meta, uint32_t meta_len, uint64_t payload_len,
			struct slot_recv **out)
{
	struct peer_slots *s = slots_of(p);
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t now = kvn_now_ms(), total = 0;
	int cap = 0;

	if (proto_items_open(&r, meta, meta_len, &flags, &n) != 0 || !(flags & PROTO_ITEMS_SUM))
		return KVN_EPROTO; /* a commit without the values' checksums */
	struct slot_recv *rv = kvn_xcalloc(1, sizeof *rv);
	rv->items = kvn_xcalloc(n, sizeof *rv->items);
	rv->pp.n = n;
	rv->pp.started_ms = now;
	rv->flags = flags;
	uint32_t kt_flags;
	uint8_t ev_flags;
	int flags_rc = peer_put_flags(flags, &kt_flags, &ev_flags);
	for (uint32_t i = 0; i < n; i++) {
		struct slot_item *si = &rv->items[i];
		if (proto_items_next(&r, &it) != 0 || it.size > payload_len - total) {
			recv_release(rv);
			recv_free(rv);
			return KVN_EPROTO;
		}
		total += it.size;
		si->checksum = it.checksum;
		struct slot_rec *rec = rec_find(s, it.key, it.klen, it.gen);
		if (flags_rc) {
			si->status = flags_rc; /* the reservation stays for a correct commit */
		} else if (!rec) {
			si->status = KVN_ESTATE; /* reclaimed, aborted, committed, or never reserved */
			s->st.refused_late++;
			s->w_late++;
		} else if (expired(rec, now)) {
			si->status = KVN_ESTATE; /* the pending TTL passed: the reaper's now */
			s->st.refused_late++;
			s->w_late++;
			if (!rec->recv)
				rec_drop(s, rec);
		} else if (rec->recv) {
			si->status = KVN_ESTATE;
			s->st.refused_busy++;
			s->w_busy++;
		} else if (it.size != rec->size) {
			si->status = KVN_EINVAL; /* the reservation stays for a correct commit */
			s->st.refused_size++;
			s->w_size++;
		} else {
			si->rec = rec;
			rec->recv = rv;
			/* the reaper cuts this receive when the earliest of its
			 * slots' deadlines comes (peer_reap: started + ttl) */
			uint64_t reserved_at = rec->deadline - p->o.pending_ttl_ms;
			if (reserved_at < rv->pp.started_ms)
				rv->pp.started_ms = reserved_at;
			peer_iov_extents(p, &rv->pp, &cap, rec->ext, rec->next, rec->size);
			continue;
		}
		peer_iov_discard(p, &rv->pp, &cap, it.size);
	}
	if (wire_r_end(&r) != 0 || total != payload_len) {
		recv_release(rv);
		recv_free(rv);
		return KVN_EPROTO;
	}
	*out = rv;
	return 0;
}

/* p->receiving is kept in started_ms order: peer_reap cuts from its head
 * while the head is overdue. */
static void receiving_insert(struct peer *p, struct slot_recv *rv)
{
	struct peer_put *q;
	TAILQ_FOREACH(q, &p->receiving, link)
		if (q->started_ms > rv->pp.started_ms) {
			TAILQ_INSERT_BEFORE(q, &rv->pp, link);
			return;
		}
	TAILQ_INSERT_TAIL(&p->receiving, &rv->pp, link);
}

int peer_slot_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		   struct actor_sink *sink)
{
	struct peer *p = actor_state(self);
	struct slot_recv *rv;
	int rc = commit_begin(p, meta, h->meta_len, h->payload_len, &rv);
	if (rc)
		return rc;
	rv->pp.from = from;
	receiving_insert(p, rv);
	TAILQ_INSERT_TAIL(&slots_of(p)->recvs, rv, link);
	sink->iov = rv->pp.iov;
	sink->niov = rv->pp.niov;
	sink->cookie = &rv->pp;
	return 0;
}

static struct slot_recv *recv_known(struct peer *p, const void *cookie)
{
	struct slot_recv *rv;
	if (!p->slots)
		return NULL;
	TAILQ_FOREACH(rv, &p->slots->recvs, link)
		if (&rv->pp == cookie)
			return rv;
	return NULL;
}

static void recv_unlink(struct peer *p, struct slot_recv *rv)
{
	struct peer_put *q;
	TAILQ_FOREACH(q, &p->receiving, link)
		if (q == &rv->pp) {
			TAILQ_REMOVE(&p->receiving, q, link);
			break;
		}
	TAILQ_REMOVE(&p->slots->recvs, rv, link);
}

/* The frame failed (bad tag, connection lost or cut by the reaper).  The
 * slots stay reserved: the client may commit again before the deadline, or
 * the reaper reclaims them. */
int peer_slot_sink_abort(struct peer *p, void *cookie)
{
	struct slot_recv *rv = recv_known(p, cookie);
	if (!rv)
		return 0;
	recv_unlink(p, rv);
	recv_release(rv);
	recv_free(rv);
	return 1;
}

/* ---- COMMIT_SLOT: the frame is in ---- */

void peer_on_commit_slot(struct peer *p, struct actor_msg *m)
{
	struct peer_slots *s = slots_of(p);
	struct slot_recv *rv = NULL;
	struct wire_w w;
	uint64_t last = 0;

	if (m->sink_err) {
		actor_reply_status(p->self, m, m->sink_err);
		return;
	}
	if (m->sink_cookie) {
		rv = recv_known(p, m->sink_cookie);
		if (!rv) {
			/* aborted while the message waited in the mailbox */
			actor_reply_status(p->self, m, KVN_ESTATE);
			return;
		}
		recv_unlink(p, rv);
	} else {
		int rc = commit_begin(p, m->meta, m->meta_len, m->payload_len, &rv);
		if (rc) {
			actor_reply_status(p->self, m, rc);
			return;
		}
		for (int i = 0; m->payload && i < rv->pp.niov; i++)
			evbuffer_remove(m->payload, rv->pp.iov[i].iov_base, rv->pp.iov[i].iov_len);
	}
	uint32_t kt_flags = 0;
	uint8_t ev_flags = 0;
	/* a bad combination: commit_begin refused every item */
	int durable = peer_put_flags(rv->flags, &kt_flags, &ev_flags) == 0 && (ev_flags & PROTO_EV_F_DURABLE);
	wire_w_init(&w);
	proto_results_begin(&w, rv->pp.n);
	for (uint32_t i = 0; i < rv->pp.n; i++) {
		struct slot_item *si = &rv->items[i];
		struct slot_rec *rec = si->rec;
		struct proto_result res = { .status = si->status };
		if (rec) {
			res.gen = rec->gen;
			/* still PENDING: the reaper would have cut this receive
			 * before freeing the slot */
			uint64_t gone = 0;
			res.status = keytab_set_checksum(p->st->kt, rec_key(rec), rec->klen, rec->gen, si->checksum);
			if (res.status == 0)
				res.status = keytab_set_flags(p->st->kt, rec_key(rec), rec->klen, rec->gen, kt_flags);
			if (res.status == 0 && slot_sum(p, rec) != si->checksum) {
				/* not the writer's bytes: the reservation stays for
				 * a correct commit (as for a wrong size) */
				res.status = KVN_ECORRUPT;
				p->stats.put_corrupt++;
				rec->recv = NULL;
				si->rec = NULL;
				proto_results_add(&w, &res);
				continue;
			}
			if (res.status == 0)
				res.status = keytab_commit(p->st->kt, rec_key(rec), rec->klen, rec->gen, &gone);
			if (res.status == 0 && gone == rec->gen) {
				/* overwritten on arrival by a newer gen: a success,
				 * answered once the newer one is visible */
				uint64_t seq = peer_overwritten_seq(p, durable);
				if (seq > last)
					last = seq;
			} else if (res.status == 0) {
				res.size = rec->size;
				last = peer_event_add(p, PROTO_EV_ADD, rec_key(rec), rec->klen, rec->gen, KEYTAB_DRAM,
						      rec->size, ev_flags);
				s->st.commits++;
				p->stats.puts++;
				p->stats.put_bytes += rec->size;
				peer_tier_committed(p, rec_key(rec), rec->klen, rec->gen);
			}
			/* committed, or freed as overwritten: either way the
			 * reservation is over */
			rec->recv = NULL;
			si->rec = NULL;
			rec_drop(s, rec);
		}
		proto_results_add(&w, &res);
	}
	recv_free(rv);
	peer_reply_after_ack(p, m, &w, last, durable); /* like PUT */
}

/* ---- ABORT_SLOT ---- */

void peer_on_abort_slot(struct peer *p, struct actor_msg *m)
{
	struct peer_slots *s = slots_of(p);
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t now = kvn_now_ms();

	/* decode everything before acting on anything */
	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct proto_result res = { 0 };
		proto_items_next(&r, &it);
		res.gen = it.gen;
		struct slot_rec *rec = rec_find(s, it.key, it.klen, it.gen);
		if (!rec || expired(rec, now)) {
			/* double abort, never reserved, committed, or the reaper's */
			res.status = KVN_ESTATE;
			s->st.refused_abort++;
			s->w_abort++;
			if (rec && !rec->recv)
				rec_drop(s, rec);
		} else if (rec->recv) {
			res.status = KVN_ESTATE; /* a COMMIT_SLOT is filling it */
			s->st.refused_busy++;
			s->w_busy++;
		} else {
			res.status = keytab_abort(p->st->kt, it.key, it.klen, it.gen);
			rec_drop(s, rec);
			if (res.status == 0)
				s->st.aborts++;
		}
		proto_results_add(&w, &res);
	}
	proto_reply(p->self, m, &w, NULL, 0);
}

/* ---- RESOLVE_KEY ---- */

void peer_on_resolve_key(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	uint32_t n;
	const uint8_t *key;
	uint16_t klen;

	if (proto_keys_open(&r, m, &n) != 0) {
		actor_reply_status(p->self, m, KVN_EPROTO);
		return;
	}
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_keys_next(&r, &key, &klen) == 0; i++) {
		struct keytab_view v;
		struct proto_result res = { 0 };
		/* over RDMA this would also take a read lease and return addr/rkey;
		 * over TCP the client reads with a GET of this gen */
		res.status = keytab_lookup(p->st->kt, key, klen, 0, &v);
		if (res.status == 0) {
			res.gen = v.gen;
			res.size = v.size;
		}
		proto_results_add(&w, &res);
	}
	if (wire_r_end(&r) != 0) {
		wire_w_fini(&w);
		actor_reply_status(p->self, m, r.err == KVN_EKEYLEN ? KVN_EKEYLEN : KVN_EPROTO);
		return;
	}
	slots_of(p)->st.resolves += n;
	proto_reply(p->self, m, &w, NULL, 0);
}

/* ---- per cycle ---- */

void peer_slot_tick(struct peer *p)
{
	struct peer_slots *s = slots_of(p);
	struct keytab_stats ks;

	sweep(s, kvn_now_ms());
	keytab_get_stats(p->st->kt, &ks);
	uint64_t kt_new = ks.refused > s->kt_seen ? ks.refused - s->kt_seen : 0;
	s->kt_seen = ks.refused;
	s->st.keytab_refused = ks.refused;
	uint64_t total = s->w_late + s->w_size + s->w_busy + s->w_abort + kt_new;
	if (total == 0)
		return;
	/* one line per cycle, never one per key */
	log_warn("refused %llu slot transition(s) since the last heartbeat: %llu late or unknown commit(s), "
		 "%llu commit(s) of the wrong size, %llu on a slot being filled, %llu double or late abort(s), "
		 "%llu other key-table refusal(s) (e.g. release of an unknown lease); "
		 "totals: late %llu, size %llu, busy %llu, abort %llu, key table %llu",
		 (unsigned long long)total, (unsigned long long)s->w_late, (unsigned long long)s->w_size,
		 (unsigned long long)s->w_busy, (unsigned long long)s->w_abort, (unsigned long long)kt_new,
		 (unsigned long long)s->st.refused_late, (unsigned long long)s->st.refused_size,
		 (unsigned long long)s->st.refused_busy, (unsigned long long)s->st.refused_abort,
		 (unsigned long long)ks.refused);
	s->w_late = s->w_size = s->w_busy = s->w_abort = 0;
}

void peer_slot_get_stats(const struct peer *p, struct peer_slot_stats *st)
{
	if (p->slots)
		*st = p->slots->st;
	else
		memset(st, 0, sizeof *st);
}

void peer_slot_fini(struct peer *p)
{
	struct peer_slots *s = p->slots;
	struct slot_rec *r, *tmp;
	struct slot_recv *rv;

	if (!s)
		return;
	while ((rv = TAILQ_FIRST(&s->recvs))) {
		recv_unlink(p, rv);
		recv_release(rv);
		recv_free(rv);
	}
	HASH_ITER(hh, s->byk, r, tmp) {
		HASH_DELETE(hh, s->byk, r);
		free(r);
	}
	free(s);
	p->slots = NULL;
}
