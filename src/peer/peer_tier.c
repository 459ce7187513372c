/*
 * peer_tier: what the peer does when DRAM fills, and everything that moves
 * a value between its tiers.  Owns the eviction round (watermarks, bounded
 * batches, the victims' fate: dropped from DRAM when already on disk,
 * offloaded first with offload-on-evict, dropped outright in a pure DRAM
 * cache), the offload queue's accounting and its one summary line per
 * round, write-through at commit (offload = on-put), expiry of TTL values,
 * pin expiry, and the disk tier's state as the peer sees it (full,
 * read-only, hung).  Every value that leaves this node is an event to the
 * master, so no route points at a generation that is gone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "peer/peer_int.h"
#include "base/base.h"

#define TIER_TICK_MS 100          /* expiry, pins, disk health, background eviction */
#define EXPIRE_BATCH 256          /* expired values reclaimed per tick */
#define DISK_FULL_RETRY_MS 5000   /* after ENOSPC, try the disk again after this */
#define DISK_HUNG_MS 30000        /* a disk request older than this: the disk hangs */

static uint64_t ppm_of(uint64_t size, uint64_t ppm)
{
	return (uint64_t)((unsigned __int128)size * ppm / 1000000u);
}

static uint64_t dram_used(const struct peer *p)
{
	return p->o.dram_size - alloc_free_bytes(p->st->arena);
}

int peer_offload_mode(const struct peer *p)
{
	return p->disk_on ? p->o.offload : KVN_OFFLOAD_OFF;
}

/* Whether a value may be queued for the disk writer now; *why (optional)
 * names what stops it. */
static int disk_writable(struct peer *p, const char **why)
{
	uint64_t now = kvn_now_ms();

	if (!p->disk_on) {
		if (why)
			*why = "no disk tier";
		return 0;
	}
	if (p->disk_readonly) {
		if (why)
			*why = "the disk tier is read-only after a failed write or fsync";
		return 0;
	}
	if (p->disk_full_until > now) {
		if (why)
			*why = "the disk tier is full";
		return 0;
	}
	if (p->disk_hung) {
		if (why)
			*why = "the disk writer has not answered for 30 s";
		return 0;
	}
	if (p->offload_queued >= p->o.offload_queue_limit) {
		if (why)
			*why = "the offload queue is full (peer.offload_queue_limit)";
		return 0;
	}
	return 1;
}

/* ---- offload ------------------------------------------------------------------ */

enum offload_why { OFF_EVICT = 1, OFF_PUT = 2, OFF_REQUEST = 3, OFF_FLUSH = 4 };

struct offload {
	uint8_t why;
	uint8_t ev_flags; /* the value's QUEUE / RETAIN, for its tier move */
	uint16_t klen;
	uint64_t gen, size;
	peer_offload_fn fn; /* OFF_REQUEST / OFF_FLUSH: who waits for the result */
	void *arg;
	uint8_t key[];
};

static void offload_done(struct peer *p, void *arg, int status, struct evbuffer *payload)
{
	struct offload *o = arg;
	uint64_t suppressed = 0;
	int rc;

	(void)payload;
	p->offload_queued--;
	p->offload_bytes -= o->size;
	rc = keytab_offload_done(p->st->kt, o->key, o->klen, o->gen, status == 0);
	if (status == 0 && rc != 0) {
		/* superseded or removed while it was written: nobody will read
		 * this file */
		peer_disk_remove(p, o->key, o->klen, o->gen);
	} else if (status == 0) {
		p->tstats.offloaded++;
		p->tstats.offload_bytes += o->size;
		if (o->why != OFF_PUT && keytab_drop_dram(p->st->kt, o->key, o->klen, o->gen) == 0) {
			p->tstats.evicted_to_disk++;
			peer_event_add(p, PROTO_EV_ADD, o->key, o->klen, o->gen, KEYTAB_DISK, o->size, o->ev_flags);
			peer_ship(p);
		}
	} else {
		p->tstats.offload_failed++;
		if (status == KVN_ENOSPC) {
			if (p->disk_full_until <= kvn_now_ms())
				log_warn("disk tier full (%llu of %llu bytes used): offload paused for %d s; eviction "
					 "skips values without a disk copy%s",
					 (unsigned long long)p->disk_used, (unsigned long long)p->o.disk_size,
					 DISK_FULL_RETRY_MS / 1000,
					 p->o.force_evict ? " or drops them (peer.force_evict)" : "");
			p->disk_full_until = kvn_now_ms() + DISK_FULL_RETRY_MS;
		} else if (status == KVN_EROFS || p->disk_readonly) {
			if (!p->disk_ro_logged)
				log_error("disk tier %s is read-only after a failed fsync (its pages cannot be "
					  "trusted): no more offloads until the peer restarts; check the disk",
					  p->o.disk_dir);
			p->disk_ro_logged = 1;
			p->disk_readonly = 1;
		} else if (status == KVN_ECORRUPT) {
			/* its bytes do not match the checksum its writer sent:
			 * every reader would refuse them, so the value is
			 * dropped (and the master told) rather than retried for
			 * ever */
			if (keytab_remove(p->st->kt, o->key, o->klen, o->gen, NULL) == 0) {
				peer_event_add(p, PROTO_EV_REMOVE, o->key, o->klen, o->gen, KEYTAB_DRAM, 0, 0);
				peer_ship(p);
			}
			p->tstats.checksum_errors++;
			if (kvn_ratelimit_ok(&p->disk_rl, &suppressed))
				log_warn("a value's bytes do not match its writer's checksum: dropped instead of "
					 "written to disk (%llu in all; %llu more lines suppressed)",
					 (unsigned long long)p->tstats.checksum_errors, (unsigned long long)suppressed);
		} else if (status != KVN_ECLOSED && kvn_ratelimit_ok(&p->disk_rl, &suppressed)) {
			log_warn("offload of a value to the disk tier failed: %s; it stays in DRAM (%llu more "
				 "lines suppressed)",
				 kvn_strerror(status), (unsigned long long)suppressed);
		}
	}
	if (o->fn)
		o->fn(p, o->arg, status ? status : rc);
	free(o);
	/* After a failure the victim is back at the LRU's tail: an eviction
	 * round now would pick it and fail again at once, for ever, while
	 * the failure lasts (a value whose bytes do not match its checksum,
	 * a disk failing every write).  The tier tick retries it in
	 * TIER_TICK_MS instead. */
	if (status == 0)
		peer_tier_kick(p);
}

/* Queue the committed (key, gen) for the disk writer; its pages stay held
 * until the answer.  0 queued; else why not (and nothing changed). */
static int offload_start(struct peer *p, const uint8_t *key, uint16_t klen, uint64_t gen, uint8_t why,
			 peer_offload_fn fn, void *arg)
{
	struct keytab_view v;
	struct offload *o;
	int rc = keytab_offload_begin(p->st->kt, key, klen, gen, &v);

	if (rc)
		return rc;
	o = kvn_xmalloc(sizeof *o + klen);
	o->why = why;
	o->ev_flags = peer_ev_flags(v.flags);
	o->klen = klen;
	o->gen = gen;
	o->size = v.size;
	o->fn = fn;
	o->arg = arg;
	memcpy(o->key, key, klen);
	uint64_t wall = v.expires_ms ? kvn_wall_ms() + (v.expires_ms - kvn_now_ms()) : 0;
	rc = peer_disk_write(p, &v, wall, offload_done, o);
	if (rc) {
		(void)keytab_offload_done(p->st->kt, key, klen, gen, 0);
		free(o);
		return rc;
	}
	p->offload_queued++;
	p->offload_bytes += v.size;
	return 0;
}

int peer_offload(struct peer *p, const uint8_t *key, uint16_t klen, uint64_t gen, peer_offload_fn fn, void *arg)
{
	if (!disk_writable(p, NULL))
		return p->disk_on ? (p->disk_readonly ? KVN_EROFS : KVN_EBUSY) : KVN_EINVAL;
	return offload_start(p, key, klen, gen, fn ? OFF_REQUEST : OFF_FLUSH, fn, arg);
}

void peer_tier_committed(struct peer *p, const uint8_t *key, uint16_t klen, uint64_t gen)
{
	if (peer_offload_mode(p) == KVN_OFFLOAD_ON_PUT) {
		if (disk_writable(p, NULL) && offload_start(p, key, klen, gen, OFF_PUT, NULL, NULL) == 0)
			;
		else
			p->tstats.put_through_skipped++;
	}
	peer_tier_kick(p);
}

/* ---- eviction -------------------------------------------------------------------- */

/* What one round did, for its summary line. */
struct round {
	uint64_t dropped, to_disk_now, queued, skipped_held, skipped_room, forced;
	const char *disk_why;
};

/* Drop one victim with no disk copy: it is gone from this node, and the
 * master must stop routing to it. */
static int drop_value(struct peer *p, const struct keytab_victim *v)
{
	if (keytab_evict_one(p->st->kt, v->key, v->klen, v->gen) != 0)
		return -1;
	peer_event_add(p, PROTO_EV_REMOVE, v->key, v->klen, v->gen, KEYTAB_DRAM, 0, 0);
	p->tstats.evicted_dropped++;
	return 0;
}

static void evict_one_victim(struct peer *p, const struct keytab_victim *v, struct round *rd)
{
	int mode = peer_offload_mode(p);

	if (v->on_disk) {
		if (keytab_drop_dram(p->st->kt, v->key, v->klen, v->gen) == 0) {
			peer_event_add(p, PROTO_EV_ADD, v->key, v->klen, v->gen, KEYTAB_DISK, v->size,
				       peer_ev_flags(v->flags));
			p->tstats.evicted_to_disk++;
			rd->to_disk_now++;
		} else {
			rd->skipped_held++;
		}
		return;
	}
	if (mode == KVN_OFFLOAD_OFF) {
		/* a pure DRAM cache; work-queue items are never dropped */
		if (v->flags & KEYTAB_F_QUEUE)
			rd->skipped_held++;
		else if (drop_value(p, v) == 0)
			rd->dropped++;
		return;
	}
	const char *why = NULL;
	if (disk_writable(p, &why) && offload_start(p, v->key, v->klen, v->gen, OFF_EVICT, NULL, NULL) == 0) {
		rd->queued++;
		return;
	}
	if (p->o.force_evict && !(v->flags & KEYTAB_F_QUEUE) && drop_value(p, v) == 0) {
		rd->forced++;
		rd->disk_why = why; /* the summary line says why they had no disk copy */
		return;
	}
	rd->skipped_room++; /* the queue or the disk cannot take it: disk_why says which */
	rd->disk_why = why;
}

/* Whether `want` bytes are free or on their way out since `before`. */
static int enough(const struct peer *p, uint64_t before, uint64_t want)
{
	uint64_t now_free = alloc_free_bytes(p->st->arena);
	uint64_t freed = now_free > before ? now_free - before : 0;
	return freed + p->offload_bytes >= want;
}

/* One bounded round: free (or queue for freeing) until `want` bytes are on
 * their way out.  Returns 1 when more rounds are needed. */
static int evict_round(struct peer *p, uint64_t want)
{
	struct keytab_victim vic[64];
	struct round rd = { 0 };
	uint64_t before = alloc_free_bytes(p->st->arena), budget = p->o.evict_batch;
	uint64_t suppressed = 0;
	int more = 0, stuck = 0;

	p->tstats.evict_rounds++;
	while (budget > 0 && !enough(p, before, want)) {
		size_t max = budget < 64 ? (size_t)budget : 64;
		size_t n = keytab_evict_pick(p->st->kt, kvn_now_ms(), vic, max);
		uint64_t moved = rd.dropped + rd.to_disk_now + rd.queued + rd.forced;
		if (n == 0)
			break;
		/* one victim at a time: picking is cheap, over-evicting is not */
		for (size_t i = 0; i < n && !enough(p, before, want); i++) {
			evict_one_victim(p, &vic[i], &rd);
			budget--;
		}
		if (rd.dropped + rd.to_disk_now + rd.queued + rd.forced == moved) {
			stuck = 1;
			break; /* nothing this pick could move: stop, do not spin */
		}
	}
	/* a pick that moved nothing spent the budget on skips: another round
	 * at once would skip the same victims (disk full or read-only), so
	 * the next one waits for the tier tick or an offload's answer */
	more = !stuck && budget == 0 && !enough(p, before, want);
	if (rd.dropped + rd.to_disk_now + rd.forced)
		peer_ship(p);
	if ((rd.skipped_room || rd.forced) && kvn_ratelimit_ok(&p->evict_rl, &suppressed))
		log_warn("eviction round: %llu dropped, %llu moved to disk, %llu queued for disk, %llu dropped "
			 "without a disk copy (peer.force_evict), %llu kept in DRAM: %s (%llu more lines "
			 "suppressed)",
			 (unsigned long long)rd.dropped, (unsigned long long)rd.to_disk_now,
			 (unsigned long long)rd.queued, (unsigned long long)rd.forced,
			 (unsigned long long)rd.skipped_room,
			 rd.disk_why ? rd.disk_why : "pinned, leased or work-queue items",
			 (unsigned long long)suppressed);
	p->tstats.skipped += rd.skipped_room + rd.skipped_held;
	return more;
}

/* Bytes above the low watermark, or 0 when usage is under the high one. */
static uint64_t over_watermark(const struct peer *p)
{
	uint64_t used = dram_used(p), high = ppm_of(p->o.dram_size, p->o.high_watermark),
		 low = ppm_of(p->o.dram_size, p->o.low_watermark);

	if (used < high && !(p->evicting && used > low))
		return 0;
	return used > low ? used - low : 0;
}

static void evict_tick(struct actor *self, void *arg)
{
	struct peer *p = actor_state(self);
	uint64_t want;
	(void)arg;

	p->evict_armed = 0;
	if (p->o.evict == KVN_EVICT_NONE)
		return;
	want = over_watermark(p);
	p->evicting = want > 0;
	if (want == 0)
		return;
	int more = evict_round(p, want);
	if (more) {
		/* the rest in the next loop turn, after requests queued meanwhile */
		p->evict_armed = 1;
		actor_timer_arm(p->evict_timer, 0);
	}
}

void peer_tier_kick(struct peer *p)
{
	if (p->evict_armed || p->o.evict == KVN_EVICT_NONE || !p->evict_timer)
		return;
	if (over_watermark(p) == 0)
		return;
	p->evict_armed = 1;
	actor_timer_arm(p->evict_timer, 0);
}

int peer_make_room(struct peer *p, uint64_t bytes)
{
	uint64_t free_now = alloc_free_bytes(p->st->arena);

	if (p->o.evict == KVN_EVICT_NONE)
		return KVN_ENOSPC;
	p->tstats.put_evictions++;
	/* a page's worth of slack per extent the value may need */
	uint64_t want = bytes + alloc_page_size(p->st->arena) * 2;
	(void)evict_round(p, want > free_now ? want - free_now : 0);
	if (alloc_free_bytes(p->st->arena) >= bytes)
		return 0;
	/* room is on its way (offloads in flight): the client tries again */
	return p->offload_queued > 0 ? KVN_EBUSY : KVN_ENOSPC;
}

/* ---- expiry, pins, disk health ------------------------------------------------ */

static void expired_one(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct peer *p = arg;
	(void)size;
	peer_event_add(p, PROTO_EV_REMOVE, key, (uint16_t)klen, gen, KEYTAB_DRAM, 0, 0);
	p->tstats.expired++;
}

static void tier_tick(struct actor *self, void *arg)
{
	struct peer *p = actor_state(self);
	uint64_t now = kvn_now_ms(), before = p->tstats.expired;
	(void)arg;

	(void)keytab_expire(p->st->kt, now, expired_one, p, EXPIRE_BATCH);
	p->tstats.pins_expired += (uint64_t)keytab_expire_pins(p->st->kt, now);
	if (p->tstats.expired != before)
		peer_ship(p);
	peer_cold_tick(p, now);
	if (p->disk_on) {
		uint64_t oldest = peer_disk_oldest_ms(p, now);
		int hung = oldest > DISK_HUNG_MS;
		if (hung && !p->disk_hung)
			log_error("disk writer: a request has waited %llu s: the disk hangs; offload stops "
				  "until it answers",
				  (unsigned long long)(oldest / 1000));
		else if (!hung && p->disk_hung)
			log_info("disk writer answers again: offload resumes");
		p->disk_hung = hung;
	}
	peer_tier_kick(p);
	actor_timer_arm(p->tier_timer, TIER_TICK_MS);
}

static void disk_freed(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct peer *p = arg;
	(void)size;
	peer_disk_remove(p, key, klen, gen);
}

int peer_tier_start(struct peer *p, char *err, size_t errlen)
{
	struct peer_opts *o = &p->o;
	int rc;

	/* zeroed options (tests) take the keys' defaults; a low watermark of
	 * 0 set beside a high one is the operator's (empty DRAM each round) */
	if (o->high_watermark == 0 || o->high_watermark > 1000000) {
		o->high_watermark = 950000;
		if (o->low_watermark == 0)
			o->low_watermark = 850000;
	}
	if (o->low_watermark >= o->high_watermark)
		o->low_watermark = o->high_watermark * 85 / 95;
	if (o->evict_batch == 0)
		o->evict_batch = 64;
	if (o->offload_queue_limit == 0)
		o->offload_queue_limit = 256;
	if (o->pin_ttl_max_ms == 0)
		o->pin_ttl_max_ms = 10ull * 60 * 1000;
	if (o->offload == KVN_OFFLOAD_AUTO)
		o->offload = o->disk_size > 0 ? KVN_OFFLOAD_ON_EVICT : KVN_OFFLOAD_OFF;
	if (o->disk_size > 0 && (!o->disk_dir || !o->disk_db)) {
		snprintf(err, errlen, "peer.disk_size is set but peer.disk_dir is not");
		return KVN_ECONFIG;
	}
	rc = peer_disk_open(p, o->disk_loop ? o->disk_loop : actor_loop_of(p->self), err, errlen);
	if (rc)
		return rc;
	/* no round will offload a queue item: it is no victim at all, or a
	 * cold end of them would stall eviction of everything behind it */
	keytab_set_queue_stays(p->st->kt, peer_offload_mode(p) == KVN_OFFLOAD_OFF);
	kvn_ratelimit_init(&p->evict_rl, 10000, 2);
	kvn_ratelimit_init(&p->disk_rl, 10000, 3);
	keytab_set_disk_free_fn(p->st->kt, disk_freed, p);
	p->evict_timer = actor_timer_new(p->self, evict_tick, NULL);
	p->tier_timer = actor_timer_new(p->self, tier_tick, NULL);
	actor_timer_arm(p->tier_timer, TIER_TICK_MS);
	return 0;
}

static void flush_drop(struct peer *p);

void peer_tier_fini(struct peer *p)
{
	actor_timer_free(p->evict_timer);
	actor_timer_free(p->tier_timer);
	p->evict_timer = p->tier_timer = NULL;
	peer_disk_fini(p); /* a flush's writes end here (KVN_ECLOSED) */
	flush_drop(p);
}

uint64_t peer_evictable(const struct peer *p)
{
	int mode = peer_offload_mode(p);
	uint64_t e;

	if (p->o.evict == KVN_EVICT_NONE)
		return 0;
	if (mode == KVN_OFFLOAD_OFF)
		return keytab_evictable_bytes(p->st->kt, 0);
	/* with offload, as far as the disk has room (all of it with
	 * force_evict); conservative: copies already on disk would need none */
	e = keytab_evictable_bytes(p->st->kt, 1);
	if (!p->o.force_evict) {
		uint64_t disk_free = p->o.disk_size > p->disk_used ? p->o.disk_size - p->disk_used : 0;
		if (p->disk_readonly || p->disk_hung)
			disk_free = 0;
		if (e > disk_free)
			e = disk_free;
	}
	return e;
}

/* ---- PIN / UNPIN ------------------------------------------------------------------ */

void peer_on_pin(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	struct keytab_view v;
	uint32_t n;
	uint64_t ttl, now = kvn_now_ms();
	int rc = proto_pin_open(&r, m->meta, m->meta_len, &n, &ttl);

	if (rc) {
		actor_reply_status(p->self, m, rc);
		return;
	}
	if (ttl > p->o.pin_ttl_max_ms)
		ttl = p->o.pin_ttl_max_ms; /* pins of a client that died run out */
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct proto_result res = { 0 };
		proto_items_next(&r, &it); /* checked by proto_pin_open */
		res.status = keytab_pin(p->st->kt, it.key, it.klen, it.gen, now, ttl);
		if (res.status == 0 && keytab_lookup(p->st->kt, it.key, it.klen, it.gen, &v) == 0) {
			res.gen = v.gen;
			res.size = v.size;
			res.checksum = v.checksum;
			p->tstats.pins++;
		}
		proto_results_add(&w, &res);
	}
	proto_reply(p->self, m, &w, NULL, 0);
}

void peer_on_unpin(struct peer *p, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		struct proto_result res = { 0 };
		proto_items_next(&r, &it);
		res.status = keytab_unpin(p->st->kt, it.key, it.klen, it.gen);
		res.gen = it.gen;
		if (res.status == 0)
			p->tstats.unpins++;
		proto_results_add(&w, &res);
	}
	proto_reply(p->self, m, &w, NULL, 0);
	peer_tier_kick(p); /* unpinned values may be evicted now */
}

/* ---- flush on stop (peer.flush_on_stop) --------------------------------------- */

struct flush_item {
	uint64_t gen;
	uint16_t klen;
	uint8_t *key;
};

struct peer_flush {
	struct flush_item *it;
	size_t n, cap, next, inflight, written, failed, held;
	uint64_t deadline_ms;
};

static void flush_collect(void *arg, const struct keytab_view *v)
{
	struct peer_flush *f = arg;

	if (!v->in_dram || v->on_disk || v->offloading)
		return;
	if (v->pins) {
		f->held++; /* a pinned value is not offloaded */
		return;
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 256;
		f->it = realloc(f->it, f->cap * sizeof *f->it);
		if (!f->it)
			kvn_fatal("out of memory");
	}
	f->it[f->n].gen = v->gen;
	f->it[f->n].klen = (uint16_t)v->klen;
	f->it[f->n].key = kvn_xmalloc(v->klen);
	memcpy(f->it[f->n].key, v->key, v->klen);
	f->n++;
}

static void flush_free(struct peer_flush *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->it[i].key);
	free(f->it);
	free(f);
}

static void flush_feed(struct peer *p);

/* A flush cut short by the peer's end. */
static void flush_drop(struct peer *p)
{
	if (p->flush)
		flush_free(p->flush);
	p->flush = NULL;
}

static void flush_one_done(struct peer *p, void *arg, int status)
{
	struct peer_flush *f = p->flush;
	(void)arg;
	if (!f)
		return;
	f->inflight--;
	if (status)
		f->failed++;
	else
		f->written++;
	if (status != KVN_ECLOSED)
		flush_feed(p);
}

/* Keep the offload queue full until every value was written (or the
 * deadline passed, after which nothing new starts). */
static void flush_feed(struct peer *p)
{
	struct peer_flush *f = p->flush;
	int late = kvn_now_ms() >= f->deadline_ms;

	while (!late && f->next < f->n && p->offload_queued < p->o.offload_queue_limit && disk_writable(p, NULL)) {
		struct flush_item *it = &f->it[f->next++];
		if (offload_start(p, it->key, it->klen, it->gen, OFF_FLUSH, flush_one_done, NULL) == 0)
			f->inflight++;
		/* else: superseded, removed or pinned since: nothing to write */
	}
	if (f->inflight > 0)
		return;
	if (f->next < f->n && !late && disk_writable(p, NULL))
		return; /* cannot happen: the queue is empty */
	size_t left = f->n - f->next;
	int status = left || f->failed ? (late ? KVN_ETIMEDOUT : KVN_EIO) : 0;
	log_info("stop: %zu of %zu DRAM-only value(s) written to the disk tier (%zu failed, %zu not started, %zu "
		 "pinned and kept out)",
		 f->written, f->n, f->failed, left, f->held);
	p->flush = NULL;
	flush_free(f);
	peer_leave_flushed(p, status);
}

int peer_tier_flush(struct peer *p, uint64_t deadline_ms)
{
	struct peer_flush *f;

	if (!p->o.flush_on_stop || !p->disk_on || p->flush)
		return 0;
	f = kvn_xcalloc(1, sizeof *f);
	f->deadline_ms = deadline_ms;
	keytab_foreach_view(p->st->kt, flush_collect, f);
	p->flush = f;
	flush_feed(p);
	return 1;
}
