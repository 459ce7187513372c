/* t/queue_peer: the peer's side of the consumer queue (issue 15), one peer
 * actor per case with a stub master on one loop.  A PUT's or COMMIT_SLOT's
 * queue flags reach the key table and the master (event flags, full-sync
 * entries, tier moves); bad combinations are refused per item; queue
 * values are never dropped from DRAM without a disk copy (no disk tier:
 * puts get KVN_ENOSPC instead, and a cold end of queue values does not
 * stall eviction of the values behind it); their flags survive offload and
 * a restart; DROP_GEN frees exactly the generation it names. */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"
#include "net/proto.h"
#include "peer/peer.h"
#include "store/disk.h"
#include "store/store.h"
#include "tap.h"

#define QF (PROTO_PUT_DURABLE | PROTO_PUT_QUEUE)
#define QRF (PROTO_PUT_DURABLE | PROTO_PUT_QUEUE | PROTO_PUT_RETAIN)
#define VAL 4000 /* one 4 KiB page each */
#define NREC 8192

/* ---- a stub master: grants, acks, and a record of events and sync entries ---- */

struct rec {
	char key[32];
	uint64_t gen;
	uint8_t kind, tier, flags;
};

struct stub {
	uint64_t boot_id, applied;
	struct auth_grant_key *gkey;
	int attaches;
	int want_sync;  /* answer the next heartbeat and attach with need_full_sync */
	int sync_done;  /* the last chunk of a full sync arrived */
	struct rec ev[NREC], sy[NREC];
	int nev, nsy;
};

static void rec_add(struct rec *tab, int *n, const struct proto_event *e)
{
	if (*n >= NREC)
		return;
	struct rec *r = &tab[(*n)++];
	snprintf(r->key, sizeof r->key, "%.*s", (int)e->klen, (const char *)e->key);
	r->gen = e->gen;
	r->kind = e->kind;
	r->tier = e->tier;
	r->flags = e->flags;
}

static void ack(struct actor *self, struct actor_msg *m, uint64_t applied, int sync)
{
	struct proto_ack a = { .applied_seq = applied, .durable_seq = applied, .need_full_sync = (uint8_t)sync };
	struct actor_msg *r = actor_msg_new(m->type);
	proto_ack_enc(r, &a);
	actor_reply(self, m, r, 0);
}

static int stub_handle(struct actor *self, struct actor_msg *m)
{
	struct stub *s = actor_state(self);
	struct wire_r rd;
	struct proto_event e;

	if (m->type == WIRE_PEER_ATTACH) {
		struct proto_node pn;
		uint8_t mat[AUTH_MAC_LEN];
		s->attaches++;
		if (proto_node_dec(m, &pn) == 0 && pn.boot_id != s->boot_id) {
			s->boot_id = pn.boot_id;
			s->applied = 0; /* a new boot numbers its events from 1 */
			auth_grant_key_free(s->gkey);
			s->gkey = NULL;
			auth_grant_local_material(pn.boot_id, mat);
			auth_grant_key_new(mat, &s->gkey);
		}
		int sync = s->want_sync;
		if (sync) {
			s->want_sync = 0;
			s->nsy = 0;
			s->sync_done = 0;
		}
		ack(self, m, s->applied, sync);
	} else if (m->type == WIRE_EVENTS) {
		char node[65];
		uint64_t boot;
		uint32_t n;
		if (proto_events_open(&rd, m, node, sizeof node, &boot, &n) == 0)
			for (uint32_t i = 0; i < n && proto_events_next(&rd, &e) == 0; i++) {
				rec_add(s->ev, &s->nev, &e);
				if (e.seq > s->applied)
					s->applied = e.seq;
			}
		ack(self, m, s->applied, 0);
	} else if (m->type == WIRE_FULL_SYNC) {
		struct proto_sync_hdr h;
		if (proto_sync_open(&rd, m, &h) == 0) {
			for (uint32_t i = 0; i < h.n && proto_sync_next(&rd, &e) == 0; i++)
				rec_add(s->sy, &s->nsy, &e);
			if (h.seq > s->applied)
				s->applied = h.seq;
			s->sync_done |= h.last;
		}
		ack(self, m, s->applied, 0);
	} else if (m->type == WIRE_HEARTBEAT) {
		ack(self, m, s->applied, s->want_sync);
	}
	return 0;
}

static const struct actor_ops stub_ops = { .name = "stub-master", .handle = stub_handle };

/* ---- a caller ---- */

struct caller {
	int done, err;
	struct actor_msg *reply;
};

static int caller_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static const struct actor_ops caller_ops = { .name = "caller", .handle = caller_handle };

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct caller *c = arg;
	(void)self;
	c->done = 1;
	c->err = err;
	c->reply = reply;
	return reply ? ACTOR_KEEP : 0;
}

static struct actor_loop *loop;
static struct actor *peer, *master, *cli;
static struct stub stub;
static struct caller cs;
static const char *node = "q1";
static char tmpdir[64];

static void pump(uint64_t ms)
{
	int never = 0;
	actor_loop_run_until(loop, &never, kvn_now_ms() + ms);
}

static int call(struct actor_msg *m, uint64_t wait_ms)
{
	actor_msg_free(cs.reply);
	memset(&cs, 0, sizeof cs);
	m->src_role = AUTH_ROLE_CLIENT;
	if (actor_call(cli, actor_id_of(peer), m, 5000, on_reply, &cs) != 0)
		return KVN_EINVAL;
	actor_loop_run_until(loop, &cs.done, kvn_now_ms() + wait_ms);
	if (!cs.done)
		return 1000; /* no reply yet */
	return cs.err ? cs.err : cs.reply->status;
}

/* The first result of the last reply (KVN_EPROTO: none). */
static struct proto_result result0(void)
{
	struct proto_result res = { .status = KVN_EPROTO };
	struct wire_r r;
	uint32_t n;
	if (cs.reply && proto_results_open(&r, cs.reply->meta, cs.reply->meta_len, &n) == 0 && n >= 1)
		proto_results_next(&r, &res);
	return res;
}

static void fill(char *v, const char *key, uint64_t gen)
{
	memset(v, 'a' + (int)((kvn_hash64(key, strlen(key)) + gen) % 26), VAL);
}

/* A PUT of one VAL-byte value with the master's grant and these items-header
 * flags: the item's status (or the call's error). */
static int put_f(const char *key, uint64_t gen, uint8_t flags)
{
	char v[VAL];
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(WIRE_PUT);
	struct proto_grant g = { .expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS, .size = VAL };

	fill(v, key, gen);
	auth_grant_sign(stub.gkey, node, key, strlen(key), gen, VAL, g.expiry_ms, g.mac);
	wire_w_init(&w);
	proto_items_begin(&w, (uint8_t)(PROTO_ITEMS_SUM | flags), 1);
	proto_items_add_sum(&w, key, strlen(key), gen, VAL, XXH3_64bits(v, VAL), 0);
	proto_grants_add(&w, &g);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->payload = evbuffer_new();
	evbuffer_add(m->payload, v, VAL);
	m->payload_len = VAL;
	int rc = call(m, 3000);
	return rc ? rc : result0().status;
}

/* As put_f, retried while the peer says room is coming (KVN_EBUSY). */
static int put_retry(const char *key, uint64_t gen, uint8_t flags)
{
	int rc = KVN_EBUSY;
	for (int i = 0; i < 200 && rc == KVN_EBUSY; i++)
		if ((rc = put_f(key, gen, flags)) == KVN_EBUSY)
			pump(10);
	return rc;
}

/* A one-item request of type for (key, gen): the item's status. */
static int item_req(uint16_t type, const char *key, uint64_t gen, struct proto_result *out)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(type);
	wire_w_init(&w);
	proto_items_begin(&w, 0, 1);
	proto_items_add(&w, key, strlen(key), gen, 0);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	int rc = call(m, 3000);
	struct proto_result res = result0();
	if (out)
		*out = res;
	return rc ? rc : res.status;
}

/* The generation of key committed here (EXISTS), 0 when none. */
static uint64_t gen_of(const char *key)
{
	struct proto_result res;
	return item_req(WIRE_EXISTS, key, 0, &res) == 0 ? res.gen : 0;
}

static void drop_gen(const char *key, uint64_t gen)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(WIRE_DROP_GEN);
	wire_w_init(&w);
	proto_items_begin(&w, 0, 1);
	proto_items_add(&w, key, strlen(key), gen, 0);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->src = actor_id_of(master); /* as the master's */
	actor_send(actor_id_of(peer), m);
	pump(50);
}

/* Flags of the last event (kind, tier) about (key, gen); -1 when none. */
static int ev_flags(const char *key, uint64_t gen, uint8_t kind, int tier)
{
	for (int i = stub.nev - 1; i >= 0; i--)
		if (!strcmp(stub.ev[i].key, key) && stub.ev[i].gen == gen && stub.ev[i].kind == kind &&
		    (tier < 0 || stub.ev[i].tier == tier))
			return stub.ev[i].flags;
	return -1;
}

/* Flags of (key, gen)'s entry in the last full sync (*tier too); -1 none. */
static int sync_flags(const char *key, uint64_t gen, int *tier)
{
	for (int i = 0; i < stub.nsy; i++)
		if (!strcmp(stub.sy[i].key, key) && stub.sy[i].gen == gen) {
			if (tier)
				*tier = stub.sy[i].tier;
			return stub.sy[i].flags;
		}
	return -1;
}

/* Ask the running peer for a full sync and wait for its last chunk. */
static int full_sync(void)
{
	stub.want_sync = 1;
	stub.sync_done = 0;
	for (int i = 0; i < 300 && !stub.sync_done; i++)
		pump(10);
	return stub.sync_done;
}

/* ---- peers ---- */

static struct peer_opts base_opts(const char *id)
{
	struct peer_opts o = {
		.node_id = id, .advertise = "127.0.0.1:1", .dram_size = 1 << 20, .page_size = 4096,
		.heartbeat_ms = 50, .pending_ttl_ms = 5000, .read_lease_ttl_ms = 5000,
		.max_value_size = 1 << 20, .mailbox = 4096, .call_timeout_ms = 2000,
	};
	return o;
}

/* With a disk tier under tmpdir (kept across a restart of the same peer). */
static struct peer_opts disk_opts(const char *id, uint64_t disk_size)
{
	static char ddir[128], db[128];
	struct peer_opts o = base_opts(id);
	snprintf(ddir, sizeof ddir, "%s/%s-disk", tmpdir, id);
	snprintf(db, sizeof db, "%s/%s-peer.db", tmpdir, id);
	o.disk_dir = ddir;
	o.disk_db = db;
	o.disk_size = disk_size;
	o.offload = KVN_OFFLOAD_ON_EVICT;
	return o;
}

static void start(const struct peer_opts *o)
{
	char err[256];
	uint64_t boot = stub.boot_id;
	node = o->node_id;
	stub.nev = 0;
	if (peer_start(loop, o, &peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(peer, actor_id_of(master));
	for (int i = 0; i < 300 && stub.boot_id == boot; i++)
		pump(10); /* attached: the stub signs grants for this boot */
	if (stub.boot_id == boot)
		kvn_fatal("the peer did not attach");
}

static void stop(void)
{
	actor_destroy(peer);
	peer = NULL;
	pump(20);
}

/* ---- cases ---- */

/* The flags of a PUT reach the master with its ADD event. */
static void t_put_event_flags(void)
{
	struct peer_opts o = base_opts("q1");
	start(&o);
	is_int(put_f("plain", 10, 0), 0, "a plain put is stored");
	is_int(put_f("dur", 11, PROTO_PUT_DURABLE), 0, "a durable put is stored");
	is_int(put_f("q", 12, QF), 0, "a queue put is stored");
	is_int(put_f("qr", 13, QRF), 0, "a queue put with retain is stored");
	is_int(ev_flags("plain", 10, PROTO_EV_ADD, -1), 0, "its event: no flags");
	is_int(ev_flags("dur", 11, PROTO_EV_ADD, -1), PROTO_EV_F_DURABLE, "its event: DURABLE");
	is_int(ev_flags("q", 12, PROTO_EV_ADD, -1), PROTO_EV_F_DURABLE | PROTO_EV_F_QUEUE,
	       "its event: DURABLE | QUEUE");
	is_int(ev_flags("qr", 13, PROTO_EV_ADD, -1), PROTO_EV_F_DURABLE | PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN,
	       "its event: DURABLE | QUEUE | RETAIN");
	/* no disk tier: a queue value is held in DRAM, a plain one is not */
	is_int(item_req(WIRE_EVICT_KEY, "q", 12, NULL), KVN_EHELD, "EVICT_KEY of the queue value: KVN_EHELD");
	is_int(item_req(WIRE_EVICT_KEY, "qr", 13, NULL), KVN_EHELD, "EVICT_KEY of the retained one: KVN_EHELD");
	is_int(item_req(WIRE_EVICT_KEY, "dur", 11, NULL), 0, "EVICT_KEY of the durable plain value: dropped");
	is_int((int)gen_of("q"), 12, "the queue value is still here");
	is_int((int)gen_of("dur"), 0, "the plain one is gone");
	stop();
}

/* RETAIN without QUEUE, QUEUE without DURABLE: every item refused. */
static void t_bad_flags(void)
{
	struct peer_opts o = base_opts("q1");
	struct peer_stats ps;
	start(&o);
	is_int(put_f("b1", 20, PROTO_PUT_DURABLE | PROTO_PUT_RETAIN), KVN_EINVAL, "RETAIN without QUEUE: KVN_EINVAL");
	is_int(put_f("b2", 21, PROTO_PUT_QUEUE), KVN_EINVAL, "QUEUE without DURABLE: KVN_EINVAL");
	is_int(put_f("b3", 22, PROTO_PUT_QUEUE | PROTO_PUT_RETAIN), KVN_EINVAL,
	       "QUEUE | RETAIN without DURABLE: KVN_EINVAL");
	is_int(put_f("b4", 23, PROTO_PUT_RETAIN), KVN_EINVAL, "RETAIN alone: KVN_EINVAL");
	is_int((int)(gen_of("b1") + gen_of("b2") + gen_of("b3") + gen_of("b4")), 0, "none of them is stored");
	is_int(stub.nev, 0, "and the master heard of none");
	peer_get_stats(peer, &ps, NULL);
	is_int((int)ps.puts, 0, "no put counted");
	is_int(put_f("b1", 24, QRF), 0, "the same key with a good combination is stored");
	stop();
}

/* ALLOC_SLOT then COMMIT_SLOT: the commit's flags decide. */
static int slot_alloc(const char *key, uint64_t gen)
{
	struct wire_w w;
	struct wire_r r;
	struct proto_slot_result sr = { .status = KVN_EPROTO };
	struct proto_grant g = { .expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS, .size = VAL };
	uint32_t n;
	struct actor_msg *m = actor_msg_new(WIRE_ALLOC_SLOT);

	auth_grant_sign(stub.gkey, node, key, strlen(key), gen, VAL, g.expiry_ms, g.mac);
	wire_w_init(&w);
	proto_items_begin(&w, 0, 1);
	proto_items_add(&w, key, strlen(key), gen, VAL);
	proto_grants_add(&w, &g);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	if (call(m, 3000) == 0 && proto_slots_open(&r, cs.reply->meta, cs.reply->meta_len, &n) == 0 && n == 1)
		proto_slots_next(&r, &sr);
	return sr.status;
}

static int slot_commit(const char *key, uint64_t gen, uint8_t flags)
{
	char v[VAL];
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(WIRE_COMMIT_SLOT);

	fill(v, key, gen);
	wire_w_init(&w);
	proto_items_begin(&w, (uint8_t)(PROTO_ITEMS_SUM | flags), 1);
	proto_items_add_sum(&w, key, strlen(key), gen, VAL, XXH3_64bits(v, VAL), 0);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->payload = evbuffer_new();
	evbuffer_add(m->payload, v, VAL);
	m->payload_len = VAL;
	int rc = call(m, 3000);
	return rc ? rc : result0().status;
}

static void t_slot_flags(void)
{
	struct peer_opts o = base_opts("q1");
	start(&o);
	is_int(slot_alloc("s1", 30), 0, "ALLOC_SLOT s1");
	is_int(slot_commit("s1", 30, PROTO_PUT_DURABLE | PROTO_PUT_RETAIN), KVN_EINVAL,
	       "COMMIT_SLOT with RETAIN without QUEUE: KVN_EINVAL");
	is_int(slot_commit("s1", 30, PROTO_PUT_QUEUE), KVN_EINVAL, "with QUEUE without DURABLE: KVN_EINVAL");
	is_int((int)gen_of("s1"), 0, "nothing committed");
	is_int(slot_commit("s1", 30, QRF), 0, "the reservation stayed: a good commit is stored");
	is_int(ev_flags("s1", 30, PROTO_EV_ADD, -1), PROTO_EV_F_DURABLE | PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN,
	       "its event: DURABLE | QUEUE | RETAIN");
	is_int(item_req(WIRE_EVICT_KEY, "s1", 30, NULL), KVN_EHELD, "a queue value in the key table: KVN_EHELD");
	is_int(slot_alloc("s2", 31), 0, "ALLOC_SLOT s2");
	is_int(slot_commit("s2", 31, 0), 0, "a plain commit");
	is_int(ev_flags("s2", 31, PROTO_EV_ADD, -1), 0, "its event: no flags");
	is_int(item_req(WIRE_EVICT_KEY, "s2", 31, NULL), 0, "a plain value: dropped");
	stop();
}

/* A full sync's entries say QUEUE and RETAIN (never DURABLE). */
static void t_sync_entries(void)
{
	struct peer_opts o = base_opts("q1");
	int tier = -1;
	start(&o);
	is_int(put_f("sp", 40, PROTO_PUT_DURABLE), 0, "a durable plain value");
	is_int(put_f("sq", 41, QF), 0, "a queue value");
	is_int(put_f("sr", 42, QRF), 0, "a retained queue value");
	ok(full_sync(), "the peer ran a full sync");
	is_int(sync_flags("sp", 40, NULL), 0, "the plain value's entry: no flags");
	is_int(sync_flags("sq", 41, &tier), PROTO_EV_F_QUEUE, "the queue value's entry: QUEUE");
	is_int(tier, KEYTAB_DRAM, "in DRAM");
	is_int(sync_flags("sr", 42, NULL), PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN, "the retained one: QUEUE | RETAIN");
	stop();
}

/* No disk tier, force_evict on: DRAM fills with queue values and plain
 * ones.  Plain ones are evicted for new puts even behind more than a
 * pick's worth of queue values at the LRU's cold end; once only queue
 * values are left, puts get KVN_ENOSPC and no queue value is dropped. */
static void t_evict_no_disk(void)
{
	struct peer_opts o = base_opts("q1");
	struct peer_tier_stats ts;
	char k[32];
	int nq = 0, plain_ok = 0, enospc = 0, kept = 0;

	o.force_evict = 1;
	start(&o);
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "q%d", i);
		nq += put_f(k, 1000 + (uint64_t)i, QF) == 0;
	}
	is_int(nq, 100, "100 queue values stored (100 of 256 pages)");
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "p%d", i);
		plain_ok += put_retry(k, 2000 + (uint64_t)i, 0) == 0;
	}
	is_int(plain_ok, 400, "400 plain puts after them all stored: older plain values were evicted");
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "q%d", i);
		kept += gen_of(k) == 1000 + (uint64_t)i;
	}
	is_int(kept, 100, "every queue value is still here");
	peer_get_tier_stats(peer, &ts);
	ok(ts.evicted_dropped >= 200, "plain values were dropped (%llu)", (unsigned long long)ts.evicted_dropped);
	/* now queue values only, until no room is left */
	int i;
	for (i = 100; i < 400; i++) {
		snprintf(k, sizeof k, "q%d", i);
		int rc = put_retry(k, 1000 + (uint64_t)i, QF);
		if (rc == KVN_ENOSPC) {
			enospc = 1;
			break;
		}
		if (rc != 0)
			break;
		nq++;
	}
	ok(enospc, "a queue put past DRAM answers KVN_ENOSPC (after %d queue values)", nq);
	ok(nq > 200 && nq <= 256, "after DRAM was full of queue values (%d)", nq);
	is_int(put_retry("late-plain", 5000, 0), KVN_ENOSPC, "a plain put too: nothing is evictable");
	kept = 0;
	for (int j = 0; j < i; j++) {
		snprintf(k, sizeof k, "q%d", j);
		kept += gen_of(k) == 1000 + (uint64_t)j;
	}
	is_int(kept, nq, "every stored queue value is still here");
	snprintf(k, sizeof k, "q%d", 7);
	is_int(item_req(WIRE_EVICT_KEY, k, 1007, NULL), KVN_EHELD, "EVICT_KEY of one: KVN_EHELD (no disk tier)");
	is_int((int)gen_of(k), 1007, "and it stays");
	stop();
}

/* With a disk tier: queue values past DRAM are offloaded, never dropped,
 * and their tier moves still say QUEUE. */
static void t_evict_disk(void)
{
	struct peer_opts o = disk_opts("q2", 16u << 20);
	struct peer_tier_stats ts;
	char k[32];
	int stored = 0, kept = 0, moved_q = 0, moved_plain = 0;

	o.force_evict = 1;
	start(&o);
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "d%d", i);
		stored += put_retry(k, 3000 + (uint64_t)i, i % 2 ? QRF : QF) == 0;
	}
	is_int(stored, 400, "400 queue values stored in 256 pages of DRAM");
	pump(200);
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "d%d", i);
		kept += gen_of(k) == 3000 + (uint64_t)i;
		int f = ev_flags(k, 3000 + (uint64_t)i, PROTO_EV_ADD, KEYTAB_DISK);
		if (f == (i % 2 ? PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN : PROTO_EV_F_QUEUE))
			moved_q++;
		else if (f >= 0)
			moved_plain++;
	}
	is_int(kept, 400, "every one is still on this node");
	peer_get_tier_stats(peer, &ts);
	is_int((int)ts.evicted_dropped, 0, "none was dropped");
	ok(ts.evicted_to_disk >= 144, "at least 144 left DRAM for disk (%llu)", (unsigned long long)ts.evicted_to_disk);
	ok(moved_q >= 144, "their moves to disk say QUEUE (and RETAIN where put so): %d", moved_q);
	is_int(moved_plain, 0, "no move lost its flags");
	stop();
}

/* force_evict on and the disk tier full: eviction may drop plain values
 * without a disk copy, never queue values. */
static void t_evict_disk_full(void)
{
	struct peer_opts o = disk_opts("q3", 64u << 10);
	struct peer_tier_stats ts;
	char k[32];
	int stored = 0, kept = 0, refused = 0;

	o.force_evict = 1;
	start(&o);
	for (int i = 0; i < 300 && !refused; i++) {
		snprintf(k, sizeof k, "f%d", i);
		int rc = put_retry(k, 4000 + (uint64_t)i, QF);
		if (rc == 0)
			stored++;
		else
			refused = rc;
	}
	ok(refused == KVN_ENOSPC || refused == KVN_EBUSY, "queue puts are refused once DRAM and disk are full (%s)",
	   kvn_strerror(refused));
	for (int i = 0; i < stored; i++) {
		snprintf(k, sizeof k, "f%d", i);
		kept += gen_of(k) == 4000 + (uint64_t)i;
	}
	is_int(kept, stored, "every stored queue value is still here (%d)", stored);
	peer_get_tier_stats(peer, &ts);
	is_int((int)ts.evicted_dropped, 0, "none was dropped");
	stop();
}

/* Offloaded queue values keep their flags across a restart: the new boot's
 * full sync says QUEUE (and RETAIN) for them. */
static void t_restart_flags(void)
{
	struct peer_opts o = disk_opts("q4", 16u << 20);
	int tier = -1;

	start(&o);
	is_int(put_f("rq", 50, QF), 0, "a queue value");
	is_int(put_f("rr", 51, QRF), 0, "a retained queue value");
	is_int(put_f("rp", 52, PROTO_PUT_DURABLE), 0, "a plain value");
	is_int(item_req(WIRE_EVICT_KEY, "rq", 50, NULL), 0, "EVICT_KEY rq: offloaded");
	is_int(item_req(WIRE_EVICT_KEY, "rr", 51, NULL), 0, "EVICT_KEY rr: offloaded");
	is_int(item_req(WIRE_EVICT_KEY, "rp", 52, NULL), 0, "EVICT_KEY rp: offloaded");
	is_int(ev_flags("rq", 50, PROTO_EV_ADD, KEYTAB_DISK), PROTO_EV_F_QUEUE, "rq's move to disk says QUEUE");
	is_int(ev_flags("rr", 51, PROTO_EV_ADD, KEYTAB_DISK), PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN,
	       "rr's says QUEUE | RETAIN");
	is_int(ev_flags("rp", 52, PROTO_EV_ADD, KEYTAB_DISK), 0, "rp's says nothing");
	stop();

	stub.want_sync = 1; /* the new boot's attach: the master re-learns the node */
	start(&o);
	for (int i = 0; i < 300 && !stub.sync_done; i++)
		pump(10);
	ok(stub.sync_done, "the restarted peer ran a full sync");
	is_int(sync_flags("rq", 50, &tier), PROTO_EV_F_QUEUE, "rq's entry: QUEUE");
	is_int(tier, KEYTAB_DISK, "on disk");
	is_int(sync_flags("rr", 51, NULL), PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN, "rr's entry: QUEUE | RETAIN");
	is_int(sync_flags("rp", 52, NULL), 0, "rp's entry: no flags");
	stop();
}

/* DROP_GEN (a consumed sample) frees exactly the generation it names. */
static void t_drop_gen(void)
{
	struct peer_opts o = disk_opts("q5", 16u << 20);
	struct disk_stats ds0, ds1;

	start(&o);
	is_int(put_f("g", 10, QF), 0, "put g gen 10 (queue)");
	is_int(put_f("g", 20, QF), 0, "put g gen 20 (queue)");
	drop_gen("g", 10);
	is_int((int)gen_of("g"), 20, "DROP_GEN of gen 10 leaves gen 20");
	drop_gen("g", 20);
	is_int((int)gen_of("g"), 0, "DROP_GEN of gen 20 frees it");
	is_int(item_req(WIRE_GET, "g", 20, NULL), KVN_ESTALE, "a GET of it: KVN_ESTALE (moved, not removed)");

	is_int(put_f("h", 30, QF), 0, "put h gen 30 (queue)");
	drop_gen("h", 29);
	is_int((int)gen_of("h"), 30, "DROP_GEN of an older gen (29) leaves gen 30");

	is_int(put_f("d", 40, QF), 0, "put d gen 40 (queue)");
	is_int(item_req(WIRE_EVICT_KEY, "d", 40, NULL), 0, "EVICT_KEY d: offloaded, DRAM copy freed");
	is_int(peer_disk_stats(peer, &ds0), 0, "disk counters");
	drop_gen("d", 39);
	is_int((int)gen_of("d"), 40, "DROP_GEN of gen 39 leaves the disk-only gen 40");
	drop_gen("d", 40);
	is_int((int)gen_of("d"), 0, "DROP_GEN of the disk-only gen 40 frees it");
	for (int i = 0; i < 100; i++) {
		peer_disk_stats(peer, &ds1);
		if (ds1.removes > ds0.removes)
			break;
		pump(10);
	}
	is_int((int)(ds1.removes - ds0.removes), 1, "its file is removed");
	is_int((int)(ds0.files - ds1.files), 1, "one file fewer indexed");
	stop();
}

/* The key table alone: keytab_set_flags works on a PENDING slot only, and
 * keytab_set_queue_stays takes DRAM-only queue items off the LRU (and puts
 * them back), so a pick never proposes them and the evictable bytes stay
 * right either way. */
static int kt_put(struct keytab *kt, const char *key, uint64_t gen, uint32_t flags, int via_set)
{
	struct keytab_attrs at = { .flags = via_set ? 0 : flags };
	struct keytab_view v;
	int rc = keytab_begin(kt, key, strlen(key), gen, VAL, 0, 1000, &at, &v);
	if (rc == 0 && via_set)
		rc = keytab_set_flags(kt, key, strlen(key), gen, flags);
	return rc ? rc : keytab_commit(kt, key, strlen(key), gen, NULL);
}

static void t_keytab_queue_stays(void)
{
	struct alloc_arena *a = NULL;
	struct keytab *kt;
	struct keytab_victim vic[64];
	struct keytab_view v;
	char k[16];
	size_t n;
	int queue_picked = 0;

	if (alloc_arena_new(64 * 4096, 4096, 0, &a) != 0)
		kvn_fatal("alloc_arena_new");
	kt = keytab_new(a);
	for (int i = 0; i < 8; i++) {
		snprintf(k, sizeof k, "kq%d", i);
		is_int(kt_put(kt, k, 1, KEYTAB_F_QUEUE | (i % 2 ? KEYTAB_F_RETAIN : 0), i < 4), 0, "queue item %s", k);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(k, sizeof k, "kp%d", i);
		is_int(kt_put(kt, k, 1, 0, 0), 0, "plain item %s", k);
	}
	is_int(keytab_lookup(kt, "kq1", 3, 1, &v), 0, "kq1 (flags set while pending)");
	is_int((int)v.flags, KEYTAB_F_QUEUE | KEYTAB_F_RETAIN, "has QUEUE | RETAIN");
	is_int(keytab_set_flags(kt, "kq1", 3, 1, 0), KVN_ESTATE, "keytab_set_flags of a committed gen: KVN_ESTATE");
	is_int(keytab_lookup(kt, "kq1", 3, 1, &v) == 0 ? (int)v.flags : -1, KEYTAB_F_QUEUE | KEYTAB_F_RETAIN,
	       "and its flags did not change");
	n = keytab_evict_pick(kt, 0, vic, 64);
	is_int((int)n, 12, "without queue_stays every item is a candidate");
	is_int((int)keytab_evictable_bytes(kt, 0), 4 * 4096, "evictable without offload: the plain items' pages");
	keytab_set_queue_stays(kt, 1);
	n = keytab_evict_pick(kt, 0, vic, 64);
	for (size_t i = 0; i < n; i++)
		queue_picked += (vic[i].flags & KEYTAB_F_QUEUE) != 0;
	is_int((int)n, 4, "with queue_stays: only the plain items are candidates");
	is_int(queue_picked, 0, "no queue item proposed");
	is_int((int)keytab_evictable_bytes(kt, 0), 4 * 4096, "evictable bytes unchanged");
	is_int((int)keytab_evictable_bytes(kt, 1), 4 * 4096, "even with offload counted (they are off the LRU)");
	is_int(keytab_evict_one(kt, "kq0", 3, 1), KVN_EHELD, "keytab_evict_one still refuses a queue item");
	keytab_set_queue_stays(kt, 0);
	is_int((int)keytab_evict_pick(kt, 0, vic, 64), 12, "queue_stays off: all candidates again");
	is_int((int)keytab_evictable_bytes(kt, 1), 12 * 4096, "and all evictable with offload");
	keytab_free(kt);
	alloc_arena_free(a);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "put_event_flags", t_put_event_flags },
		{ "bad_flags", t_bad_flags },
		{ "slot_flags", t_slot_flags },
		{ "sync_entries", t_sync_entries },
		{ "evict_no_disk", t_evict_no_disk },
		{ "evict_disk", t_evict_disk },
		{ "evict_disk_full", t_evict_disk_full },
		{ "restart_flags", t_restart_flags },
		{ "drop_gen", t_drop_gen },
		{ "keytab_queue_stays", t_keytab_queue_stays },
		{ NULL, NULL },
	};
	char cmd[128];

	kvn_log_set_level(KVN_LOG_ERROR);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kvn-t-queue-peer-XXXXXX");
	if (!mkdtemp(tmpdir))
		kvn_fatal("mkdtemp");
	loop = actor_loop_new("t-queue-peer");
	actor_loop_adopt(loop);
	actor_spawn(loop, &stub_ops, &stub, 4096, &master);
	actor_spawn(loop, &caller_ops, &cs, 4096, &cli);
	int rc = tap_run(tests, argc, argv);
	actor_msg_free(cs.reply);
	actor_loop_free(loop);
	auth_grant_key_free(stub.gkey);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmpdir);
	return rc;
}
