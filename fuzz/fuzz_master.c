/*
 * fuzz_master: the master's message handlers (src/actors/master*.c) behind
 * authentication.  As in t/sim_world.c, the master and its SQLite writer run
 * on one virtual-time loop with a fresh master.db (on /dev/shm when there
 * is one); three stub peers and a client are actors on the same loop, and
 * every message is delivered as an authenticated connection would deliver it
 * (src_role PEER for the node protocol, CLIENT for routes; sometimes the
 * wrong role on purpose).  The input is a script of operations whose
 * messages are built with the proto.h encoders from fields at their edges:
 * generations and sequence numbers 0, 1, 2^32, 2^63-1, 2^63, 2^64-1, sizes
 * around max_value_size and far beyond, batch counts 0, 1, 4096, 4097, node
 * ids and boot ids from a small pool so attach, events and sync meet.
 * Node reports carry the tier fields (page size, evictable bytes, the
 * EVICTS flag) at their edges too, and a stub peer may leave on purpose
 * (PEER_LEAVE, as a SIGTERMed peer does: issue 13), from its attachment
 * or not.
 *
 * Invariants (a violation aborts, so libFuzzer keeps the input):
 *  - no crash, no sanitizer report, memory bounded (-rss_limit_mb);
 *  - the master answers every request of the node and route protocols
 *    before its deadline (none times out on a loop that is never blocked);
 *  - a ROUTE_PUT reply has one route per key, and every route it grants
 *    names a generation the master itself accepts (1..2^63-1, what
 *    master_event_ok checks) and a node that is attached;
 *  - a ROUTE_GET reply has one route per key, each found route's
 *    generation in 1..2^63-1;
 *  - a LIST page holds only keys of its hash range and prefix, at most
 *    max of them (more only when they share one hash), and ends past its
 *    cursor;
 *  - the index (master_dump) never holds a generation outside 1..2^63-1 or
 *    a key outside 1..1024 bytes, whatever the peers reported.
 *
 * Byte counts a peer reports (event and sync sizes, dram/disk totals and
 * use) range up to 2^64-1: sizes over KVN_VALUE_SIZE_MAX are refused and
 * the use saturates (fuzz/crashes/master-used-delta-overflow-ubsan was a
 * signed overflow in master_node.c before that).
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "base/ptab.h"

#include "actors/actor.h"
#include "net/proto.h"
#include "master/master.h"
#include "auth/auth.h"
#include "net/net.h"

#define T0 1000000ull
#define MAXV (1u << 20)
#define NPEERS 3
#define MAX_OPS 48
#define META_CAP 60000u
#define EVENT_BUDGET 200000
#define CALL_MS 5000

struct fpeer {
	struct actor *a;
	uint64_t boot, seq; /* what it claims; seq: its last event */
};

static struct {
	struct actor_loop *l;
	struct actor *master, *cli;
	struct fpeer p[NPEERS];
	char db[256];
	int calls_out;
	uint64_t ids[16]; /* lease ids handed out lately, for RELEASE/RENEW */
	uint32_t nids;
} W;

static char dir[128];
/* A byte count a peer reports: any value. */
static uint64_t bytes_of(uint64_t v)
{
	return v;
}
static const char *const keys[] = { "a", "b", "key-3", "k4", "k5" };

static int fpeer_handle(struct actor *self, struct actor_msg *m)
{
	/* DROP_GEN and DURABLE: nothing to do; a request gets an ok */
	if (!(m->flags & WIRE_F_REPLY) && m->corr)
		actor_reply_status(self, m, 0);
	return 0;
}

static const struct actor_ops fpeer_ops = { .name = "fz-peer", .handle = fpeer_handle };
static const struct actor_ops cli_ops = { .name = "fz-client", .handle = fpeer_handle };

/* ---- replies ---- */

struct pending {
	uint16_t type;
	uint32_t nkeys; /* route requests: keys asked for */
	uint32_t max;   /* LEASE: refs asked for; LIST: keys per page */
	uint64_t cursor; /* LIST */
	uint32_t plen;
	uint8_t prefix[WIRE_MAX_KEY];
};

static void check_gen(uint64_t gen, const char *what)
{
	if (gen == 0 || gen > (uint64_t)INT64_MAX)
		fz_violation("%s: generation %llu outside 1..2^63-1", what, (unsigned long long)gen);
}

static int node_attached(const char *id)
{
	/* the stub peers' ids; an attached node is one of them or a fuzzed id */
	return id[0] != '\0';
}

static void check_routes(const struct actor_msg *r, const struct pending *pd)
{
	struct wire_r rd;
	struct proto_route rt;
	uint32_t n;
	int put = pd->type == WIRE_ROUTE_PUT;

	if (r->status != 0)
		return;
	if (proto_routes_open(&rd, r, &n) != 0)
		fz_violation("a %s reply does not decode", wire_type_name(pd->type));
	if (n != pd->nkeys)
		fz_violation("a %s reply has %u routes for %u keys", wire_type_name(pd->type), n, pd->nkeys);
	for (uint32_t i = 0; i < n; i++) {
		if (proto_routes_next(&rd, &rt) != 0)
			fz_violation("route %u of a %s reply does not decode", i, wire_type_name(pd->type));
		if (rt.status != 0)
			continue;
		check_gen(rt.gen, put ? "ROUTE_PUT grant" : "ROUTE_GET route");
		if (put && !node_attached(rt.node_id))
			fz_violation("ROUTE_PUT routed to a node with no id");
	}
	/* a ROUTE_PUT answer ends with one grant per route: a placed item's
	 * expires in the future and covers at least its routed size */
	for (uint32_t i = 0; put && i < n; i++) {
		struct proto_grant g;
		if (proto_route_grants_next(&rd, &g) != 0)
			fz_violation("grant %u of a ROUTE_PUT reply does not decode", i);
	}
	if (wire_r_end(&rd) != 0)
		fz_violation("a %s reply has trailing bytes", wire_type_name(pd->type));
}

/* A LIST page is exactly what kvn_list trusts: next past the cursor, every
 * key's index hash in [cursor, next), every key starting with the prefix,
 * at most max keys unless they all share one hash. */
static void check_list(const struct actor_msg *reply, const struct pending *pd)
{
	struct wire_r rd;
	struct proto_list_ent e;
	uint64_t next;
	uint32_t n, h0 = 0;

	if (proto_list_reply_open(&rd, reply, &next, &n) != 0 || next <= pd->cursor)
		fz_violation("a LIST reply does not decode, or its next is not past the cursor");
	for (uint32_t i = 0; i < n; i++) {
		if (proto_list_reply_next(&rd, &e) != 0)
			fz_violation("a LIST reply's entry %u does not decode", i);
		uint32_t h = kvn_ptab_hash(kvn_hash64(e.key, e.klen));
		if (h < pd->cursor || h >= next)
			fz_violation("a LIST entry's hash is outside [cursor, next)");
		if (e.klen < pd->plen || memcmp(e.key, pd->prefix, pd->plen) != 0)
			fz_violation("a LIST entry does not start with the prefix");
		check_gen(e.gen, "a listed key");
		if (i == 0)
			h0 = h;
		if (n > pd->max && h != h0)
			fz_violation("a LIST page holds more than max keys of different hashes");
	}
	if (wire_r_end(&rd) != 0)
		fz_violation("a LIST reply has trailing bytes");
}

/* LIST with its fields at their edges: the cursor and max sometimes
 * outside their ranges (the master must refuse them), the prefix a start
 * of the pool's keys or any bytes up to past WIRE_MAX_KEY. */
static struct actor_msg *list_msg(struct fz *f, struct pending *pd)
{
	struct actor_msg *m = actor_msg_new(WIRE_LIST);
	struct wire_w w;
	const uint8_t *p = NULL;
	size_t plen;

	uint8_t sel = fz_u8(f);
	/* mostly from the start, so that pages hold the index's few keys */
	pd->cursor = sel < 128 ? 0 : sel < 220 ? fz_u32(f) : fz_edge64(f);
	pd->max = fz_u8(f) < 200 ? 1 + fz_u8(f) % 16 : (uint32_t)fz_edge64(f);
	if (fz_u8(f) < 200) {
		const char *k = keys[fz_u8(f) % 5];
		plen = fz_u8(f) % (strlen(k) + 1);
		p = (const uint8_t *)k;
	} else {
		plen = fz_bytes(f, WIRE_MAX_KEY + 8, &p);
	}
	pd->plen = plen <= WIRE_MAX_KEY ? (uint32_t)plen : 0;
	if (p && pd->plen)
		memcpy(pd->prefix, p, pd->plen);
	wire_w_init(&w);
	wire_w_u64(&w, pd->cursor);
	wire_w_u32(&w, pd->max);
	wire_w_bytes(&w, p, (uint32_t)plen);
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	return m;
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct pending *pd = arg;

	W.calls_out--;
	if (err == KVN_ETIMEDOUT)
		fz_violation("the master never answered a %s", wire_type_name(pd->type));
	if (reply && (pd->type == WIRE_ROUTE_PUT || pd->type == WIRE_ROUTE_GET))
		check_routes(reply, pd);
	if (reply && pd->type == WIRE_LEASE && reply->status == 0) {
		struct wire_r rd;
		struct proto_lease_ref ref;
		uint32_t n;
		if (proto_lease_reply_open(&rd, reply, &n) != 0 || n > pd->max)
			fz_violation("a LEASE reply does not decode, or holds more refs than asked");
		for (uint32_t i = 0; i < n; i++) {
			if (proto_lease_reply_next(&rd, &ref) != 0)
				fz_violation("a LEASE reply's ref %u does not decode", i);
			check_gen(ref.gen, "a leased ref");
			W.ids[W.nids++ % 16] = ref.lease_id;
		}
	}
	if (reply && pd->type == WIRE_LIST && reply->status == 0)
		check_list(reply, pd);
	if (reply && (pd->type == WIRE_RELEASE || pd->type == WIRE_RENEW) && reply->status == 0) {
		struct wire_r rd;
		uint32_t n;
		int32_t st;
		uint64_t dl;
		if (proto_lstat_open(&rd, reply, &n) != 0 || n != pd->nkeys)
			fz_violation("a %s reply does not decode or has the wrong count", wire_type_name(pd->type));
		for (uint32_t i = 0; i < n; i++)
			if (proto_lstat_next(&rd, &st, &dl) != 0)
				fz_violation("a %s status does not decode", wire_type_name(pd->type));
	}
	if (reply && pd->type == WIRE_STAT && reply->status == 0) {
		struct wire_r rd;
		struct proto_stat_node sn;
		uint64_t objects, bytes;
		uint32_t n;
		if (proto_stat_open(&rd, reply, &objects, &bytes, &n) != 0)
			fz_violation("a STAT reply does not decode");
		for (uint32_t i = 0; i < n; i++)
			if (proto_stat_next(&rd, &sn) != 0)
				fz_violation("a STAT reply's node %u does not decode", i);
		struct proto_stat_master sm;
		if (proto_stat_master_read(&rd, &sm) != 0)
			fz_violation("a STAT reply's master figures do not decode or are out of range");
	}
	free(pd);
	return 0;
}

static void send_as(struct actor *from, struct actor_msg *m, uint8_t role, uint32_t nkeys)
{
	struct pending *pd = kvn_xcalloc(1, sizeof *pd);
	pd->type = m->type;
	pd->nkeys = nkeys;
	m->src_role = role;
	if (actor_call(from, actor_id_of(W.master), m, CALL_MS, on_reply, pd) != 0) {
		actor_msg_free(m);
		free(pd);
		return;
	}
	W.calls_out++;
}

/* ---- message building ---- */

static void put_key(struct fz *f, struct wire_w *w)
{
	uint8_t sel = fz_u8(f);
	if (sel < 220) {
		const char *k = keys[sel % 5];
		wire_w_key(w, k, strlen(k));
		return;
	}
	static uint8_t big[1100];
	uint16_t len = sel == 250 ? 0 : sel == 251 ? 1024 : sel == 252 ? 1025 : fz_u8(f) % 40;
	memset(big, 'z', sizeof big);
	wire_w_u16(w, len);
	wire_w_raw(w, big, len);
}

static void node_id(struct fz *f, char *out, size_t cap, int i)
{
	uint8_t sel = fz_u8(f);
	if (sel < 230)
		snprintf(out, cap, "p%d", i + 1);
	else if (sel < 240)
		out[0] = '\0';
	else if (sel < 245)
		memset(out, 'n', cap - 1), out[cap - 1] = '\0'; /* the longest id */
	else
		snprintf(out, cap, "odd id \x01%u", sel);
}

static uint64_t boot_of(struct fz *f, int i)
{
	uint8_t sel = fz_u8(f);
	if (sel < 200)
		return W.p[i].boot;
	if (sel < 230)
		return W.p[i].boot = fz_edge64(f);
	return fz_edge64(f);
}

static struct actor_msg *node_msg(struct fz *f, uint16_t type, int i)
{
	struct actor_msg *m = actor_msg_new(type);
	struct proto_node n = { 0 };
	node_id(f, n.node_id, sizeof n.node_id, i);
	if (fz_u8(f) < 240)
		snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000u + (unsigned)i);
	n.boot_id = boot_of(f, i);
	n.dram_total = fz_u8(f) < 128 ? 64u << 20 : bytes_of(fz_edge64(f));
	n.dram_used = fz_u8(f) < 128 ? 0 : bytes_of(fz_edge64(f));
	n.dram_pending = fz_u8(f) < 200 ? 0 : bytes_of(fz_edge64(f));
	n.disk_total = fz_u8(f) < 200 ? 0 : bytes_of(fz_edge64(f));
	n.disk_used = fz_u8(f) < 200 ? 0 : bytes_of(fz_edge64(f));
	n.last_seq = fz_u8(f) < 128 ? W.p[i].seq : fz_edge64(f);
	n.keys = fz_u8(f) < 200 ? 0 : fz_edge64(f);
	/* the tier fields (page size, evictable bytes, flags); the encoder
	 * writes them as given and the master range-checks them */
	n.page_size = fz_u8(f) < 200 ? 4096 : fz_edge64(f);
	n.dram_evictable = fz_u8(f) < 160 ? 0 : fz_u8(f) < 128 ? n.dram_used / 2 : bytes_of(fz_edge64(f));
	n.flags = fz_u8(f) < 128 ? PROTO_NODE_EVICTS : fz_u8(f);
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return m;
}

static void event_fields(struct fz *f, struct proto_event *e, int i)
{
	uint8_t sel = fz_u8(f);
	e->seq = sel < 200 ? ++W.p[i].seq : fz_edge64(f);
	sel = fz_u8(f);
	e->kind = sel < 150 ? PROTO_EV_ADD : sel < 250 ? PROTO_EV_REMOVE : sel;
	e->gen = fz_edge64(f);
	sel = fz_u8(f);
	e->tier = sel < 200 ? 0 : sel % 4;
	e->size = bytes_of(fz_size(f, MAXV));
	sel = fz_u8(f);
	/* mostly plain or durable, then queue samples, then any bits */
	e->flags = sel < 150 ? 0 : sel < 190 ? PROTO_EV_F_DURABLE
		   : sel < 250 ? (uint8_t)(PROTO_EV_F_DURABLE | PROTO_EV_F_QUEUE | (sel & 1 ? PROTO_EV_F_RETAIN : 0))
			       : fz_u8(f);
}

/* Events (or sync entries) of node i: the header, then as many entries as
 * the input and the frame allow for a declared count at its edges. */
static struct actor_msg *events_msg(struct fz *f, int i, int sync)
{
	struct actor_msg *m = actor_msg_new(sync ? WIRE_FULL_SYNC : WIRE_EVENTS);
	struct wire_w w;
	char id[65];
	uint32_t declared = fz_count(f), n = declared > 4097 ? 4097 : declared;
	uint64_t boot = boot_of(f, i);

	node_id(f, id, sizeof id, i);
	wire_w_init(&w);
	if (sync) {
		struct proto_sync_hdr h = { .boot_id = boot, .n = declared };
		snprintf(h.node_id, sizeof h.node_id, "%s", id);
		h.seq = fz_u8(f) < 200 ? W.p[i].seq : fz_edge64(f);
		h.chunk = fz_u8(f) < 128 ? 0 : fz_u8(f) % 4;
		h.last = fz_u8(f) < 160 ? 1 : fz_u8(f);
		proto_sync_begin(&w, &h);
	} else {
		proto_events_begin(&w, id, boot, declared);
	}
	for (uint32_t k = 0; k < n && w.len < META_CAP && !w.err; k++) {
		struct proto_event e;
		event_fields(f, &e, i);
		if (!sync) {
			wire_w_u64(&w, e.seq);
			wire_w_u8(&w, e.kind);
		}
		put_key(f, &w);
		wire_w_u64(&w, e.gen);
		wire_w_u8(&w, e.tier);
		wire_w_u64(&w, e.size);
		wire_w_u8(&w, sync ? e.flags & (PROTO_EV_F_QUEUE | PROTO_EV_F_RETAIN | (fz_u8(f) < 250 ? 0 : 0xf0))
				   : e.flags);
	}
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	return m;
}

static struct actor_msg *route_put_msg(struct fz *f, uint32_t *nkeys)
{
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT);
	struct wire_w w;
	const char *ex[5] = { "p1", "p2", "p3", "", "nope" };
	uint32_t nex = fz_u8(f) < 200 ? 0 : fz_u8(f) % 6;
	uint32_t declared = fz_count(f), n = declared > 4097 ? 4097 : declared;

	wire_w_init(&w);
	proto_route_put_begin(&w, ex, nex > 5 ? 5 : nex, declared);
	for (uint32_t k = 0; k < n && w.len < META_CAP && !w.err; k++) {
		put_key(f, &w);
		wire_w_u64(&w, fz_size(f, MAXV));
	}
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	*nkeys = declared;
	return m;
}

static struct actor_msg *keys_msg(struct fz *f, uint16_t type, uint32_t *nkeys)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;
	uint32_t declared = fz_count(f), n = declared > 4097 ? 4097 : declared;

	wire_w_init(&w);
	proto_keys_begin(&w, declared);
	for (uint32_t k = 0; k < n && w.len < META_CAP && !w.err; k++)
		put_key(f, &w);
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	*nkeys = declared;
	return m;
}

static struct actor_msg *items_msg(struct fz *f, uint16_t type)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;
	uint32_t declared = fz_count(f), n = declared > 64 ? 64 : declared;

	wire_w_init(&w);
	proto_items_begin(&w, fz_u8(f) < 200 ? 0 : PROTO_PUT_DURABLE, declared);
	for (uint32_t k = 0; k < n && !w.err; k++) {
		put_key(f, &w);
		wire_w_u64(&w, fz_edge64(f));
		wire_w_u64(&w, fz_u8(f) < 200 ? 0 : fz_size(f, MAXV));
	}
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	return m;
}

/* LEASE with edge values, or RELEASE/RENEW of ids handed out lately (or
 * any id). */
static struct actor_msg *queue_msg(struct fz *f, uint32_t *nkeys, uint32_t *max)
{
	uint8_t sel = fz_u8(f);
	struct actor_msg *m;
	struct wire_w w;

	if (sel < 100) {
		struct proto_lease_req q = { .part_n = fz_u8(f) < 200 ? 1 + fz_u8(f) % 5 : (uint32_t)fz_edge64(f),
					     .max = fz_u8(f) < 200 ? 1 + fz_u8(f) % 8 : (uint32_t)fz_edge64(f),
					     .ttl_ms = fz_u8(f) < 200 ? 1 + fz_u16(f) : fz_edge64(f) };
		q.part_i = fz_u8(f) < 230 && q.part_n ? fz_u8(f) % q.part_n : (uint32_t)fz_edge64(f);
		snprintf(q.holder, sizeof q.holder, "%s", fz_u8(f) < 240 ? "fuzz:1" : "\x01" "bad");
		m = actor_msg_new(WIRE_LEASE);
		if (proto_lease_enc(m, &q) != 0)
			actor_msg_free(m), m = actor_msg_new(WIRE_LEASE);
		*max = q.max;
		return m;
	}
	uint32_t declared = fz_u8(f) < 240 ? 1 + fz_u8(f) % 6 : (uint32_t)fz_edge64(f);
	uint32_t n = declared > 64 ? 64 : declared;
	m = actor_msg_new(sel < 180 ? WIRE_RELEASE : WIRE_RENEW);
	wire_w_init(&w);
	if (m->type == WIRE_RELEASE)
		proto_release_begin(&w, fz_u8(f) < 200 ? fz_u8(f) % 3 : fz_u8(f), declared);
	else
		proto_renew_begin(&w, fz_u8(f) < 200 ? 1 + fz_u16(f) : fz_edge64(f), declared);
	for (uint32_t k = 0; k < n; k++)
		proto_ids_add(&w, fz_u8(f) < 200 && W.nids ? W.ids[fz_u8(f) % (W.nids < 16 ? W.nids : 16)]
							   : fz_edge64(f));
	if (w.err || wire_w_to_msg(&w, m) != 0)
		wire_w_fini(&w);
	*nkeys = declared;
	return m;
}

static void run_for(uint64_t ms)
{
	actor_loop_sim_run(W.l, actor_loop_vnow(W.l) + ms, EVENT_BUDGET);
}

static void check_index_entry(void *arg, const void *key, size_t klen, uint64_t gen, const char *node)
{
	(void)arg;
	(void)key;
	(void)node;
	check_gen(gen, "an index entry");
	if (klen == 0 || klen > WIRE_MAX_KEY)
		fz_violation("an index entry with a %zu-byte key", klen);
}

/* Send m (taken) from the client stub as role, with pd (taken) filled in
 * by the caller for on_reply's checks. */
static void call_client(struct actor_msg *m, struct pending *pd, uint8_t role)
{
	m->src_role = role;
	if (actor_call(W.cli, actor_id_of(W.master), m, CALL_MS, on_reply, pd) != 0) {
		actor_msg_free(m);
		free(pd);
	} else {
		W.calls_out++;
	}
}

static void one_op(struct fz *f)
{
	static const uint8_t roles[] = { AUTH_ROLE_PEER, AUTH_ROLE_CLIENT, AUTH_ROLE_INTERNAL, AUTH_ROLE_MASTER,
					 AUTH_ROLE_NONE, 77 };
	uint8_t op = fz_u8(f);
	int i = fz_u8(f) % NPEERS;
	int wrong = (op & 0x80) != 0;
	uint8_t peer_role = wrong ? roles[fz_u8(f) % 6] : AUTH_ROLE_PEER;
	uint8_t cli_role = wrong ? roles[fz_u8(f) % 6] : AUTH_ROLE_CLIENT;
	uint32_t nk = 0;
	struct actor_msg *m;

	switch (op & 0x7f) {
	case 0: case 1:
		send_as(W.p[i].a, node_msg(f, WIRE_PEER_ATTACH, i), peer_role, 0);
		break;
	case 2:
		send_as(W.p[i].a, node_msg(f, WIRE_HEARTBEAT, i), peer_role, 0);
		break;
	case 3: case 4: case 5: case 6:
		send_as(W.p[i].a, events_msg(f, i, 0), peer_role, 0);
		break;
	case 7: case 8:
		send_as(W.p[i].a, events_msg(f, i, 1), peer_role, 0);
		break;
	case 9: case 10: case 11:
		m = route_put_msg(f, &nk);
		send_as(W.cli, m, cli_role, nk);
		break;
	case 12: case 13:
		m = keys_msg(f, WIRE_ROUTE_GET, &nk);
		send_as(W.cli, m, cli_role, nk);
		break;
	case 14:
		send_as(W.cli, actor_msg_new(WIRE_STAT), cli_role, 0);
		break;
	case 15:
		send_as(W.cli, actor_msg_new(WIRE_PING), cli_role, 0);
		break;
	case 16:
		/* GET / PUT to the master: it has no peer of its own here */
		m = items_msg(f, fz_u8(f) & 1 ? WIRE_GET : WIRE_PUT);
		m->src_role = cli_role;
		if (actor_call(W.cli, actor_id_of(W.master), m, CALL_MS, on_reply,
			       kvn_xcalloc(1, sizeof(struct pending))) != 0)
			actor_msg_free(m); /* the pending leaks only on a refused call: never here */
		else
			W.calls_out++;
		break;
	case 17: { /* the connection of stub peer i drops */
		m = actor_msg_new(NET_DOWN);
		m->status = KVN_ECONN;
		m->src = actor_id_of(W.p[i].a);
		if (actor_send(actor_id_of(W.master), m) != 0)
			actor_msg_free(m);
		break;
	}
	case 18: { /* arbitrary metadata on any type */
		static const uint16_t types[] = { WIRE_PEER_ATTACH, WIRE_HEARTBEAT, WIRE_EVENTS, WIRE_FULL_SYNC,
						  WIRE_ROUTE_PUT, WIRE_ROUTE_GET, WIRE_STAT, WIRE_PING,
						  WIRE_GET, WIRE_PUT, WIRE_DURABLE, WIRE_DROP_GEN, 999,
						  WIRE_PEER_LEAVE, WIRE_LEASE, WIRE_RELEASE, WIRE_RENEW, WIRE_LIST };
		const uint8_t *p;
		m = actor_msg_new(types[fz_u8(f) % 18]);
		size_t n = fz_bytes(f, 2048, &p);
		if (n) {
			m->meta = kvn_xmalloc(n);
			memcpy(m->meta, p, n);
			m->meta_len = (uint32_t)n;
		}
		send_as(fz_u8(f) & 1 ? W.cli : W.p[i].a, m, fz_u8(f) & 1 ? peer_role : cli_role, 0);
		break;
	}
	case 19: /* stub peer i stops on purpose: its locations go at once */
		send_as(W.p[i].a, node_msg(f, WIRE_PEER_LEAVE, i), peer_role, 0);
		break;
	case 20: case 21: case 22: { /* a consumer: LEASE, RELEASE, RENEW */
		uint32_t max = 0;
		m = queue_msg(f, &nk, &max);
		struct pending *pd = kvn_xcalloc(1, sizeof *pd);
		pd->type = m->type;
		pd->nkeys = nk;
		pd->max = max;
		call_client(m, pd, cli_role);
		break;
	}
	case 23: { /* a listing page */
		struct pending *pd = kvn_xcalloc(1, sizeof *pd);
		m = list_msg(f, pd);
		pd->type = m->type;
		call_client(m, pd, cli_role);
		break;
	}
	default: /* time passes: node timeouts, commits, drop re-sends */
		run_for(fz_u16(f) % 4000);
		return;
	}
	run_for(fz_u8(f) % 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	fz_quiet();
	snprintf(dir, sizeof dir, "%s/kvn-fuzz-master-XXXXXX", base);
	if (!mkdtemp(dir))
		kvn_fatal("mkdtemp %s: %s", dir, strerror(errno));
	return 0;
}

static void rm_db(void)
{
	char p[300];
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", W.db, sfx[i]);
		unlink(p);
	}
}

static void cleanup(void)
{
	rm_db();
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	struct master_opts o = { .server_id = "fz-master", .node_timeout_ms = 1000, .mailbox = 4096,
				 .max_value_size = MAXV };
	char err[512] = "";
	struct fz f;

	if (!once) {
		once = 1;
		atexit(cleanup);
	}
	fz_init(&f, data, size);
	memset(&W, 0, sizeof W);
	snprintf(W.db, sizeof W.db, "%s/master.db", dir);
	rm_db();
	o.db_path = W.db;
	W.l = actor_loop_new("fz-master");
	actor_loop_set_virtual(W.l, T0);
	if (master_start(W.l, W.l, &o, &W.master, err, sizeof err) != 0)
		kvn_fatal("master_start: %s", err);
	for (int i = 0; i < NPEERS; i++) {
		actor_spawn(W.l, &fpeer_ops, NULL, 4096, &W.p[i].a);
		W.p[i].boot = 100 + (uint64_t)i;
	}
	actor_spawn(W.l, &cli_ops, NULL, 4096, &W.cli);

	for (int k = 0; k < MAX_OPS && fz_left(&f); k++)
		one_op(&f);
	run_for(CALL_MS + 1000); /* every call answered or timed out */
	master_dump(W.master, check_index_entry, NULL);
	actor_loop_free(W.l);
	return 0;
}
