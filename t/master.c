/*
 * t/master: the master and its SQLite writer on real loop threads with a
 * temporary master.db, driven by test actors that play peers and clients
 * with proto-encoded messages: ping, attach/re-attach, placement and its
 * errors, generations (also across a restart), events (apply, duplicate,
 * gap, supersede with DROP_GEN, stale, remove), routing, DURABLE after the
 * commit (checked in master.db), chunked full sync, the node timeout, roles,
 * malformed metadata, and the restart flow (re-attach + full sync).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#include "actors/actor.h"
#include "actors/proto.h"
#include "actors/roles.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"

#define CALL_MS 5000
#define MAXV (1u << 20)

static char tmpdir[256];

/* ---- environment: master + dbw on their own threads, test actors on a
 * loop this thread drives ---- */

struct tact {
	struct actor *a;
	struct actor_msg *inbox[256];
	int n;
};

static struct {
	struct actor_loop *ml, *dl, *tl;
	actor_id mid;
	char db[512];
	uint64_t timeout_ms;
	uint32_t mailbox;
	struct tact peers[4], client;
} E;

static int tact_handle(struct actor *self, struct actor_msg *m)
{
	struct tact *t = actor_state(self);
	if (t->n < (int)(sizeof t->inbox / sizeof t->inbox[0])) {
		t->inbox[t->n++] = m;
		return ACTOR_KEEP;
	}
	return 0;
}

static const struct actor_ops tact_ops = { .name = "t-actor", .handle = tact_handle };

static void tact_clear(struct tact *t)
{
	for (int i = 0; i < t->n; i++)
		actor_msg_free(t->inbox[i]);
	t->n = 0;
}

static void master_up(void)
{
	struct master_opts o = { .db_path = E.db, .server_id = "t-master", .node_timeout_ms = E.timeout_ms,
				 .mailbox = E.mailbox ? E.mailbox : 4096, .max_value_size = MAXV };
	struct actor *m = NULL;
	char err[512] = "";

	E.ml = actor_loop_new("t-master");
	E.dl = actor_loop_new("t-dbw");
	if (master_start(E.ml, E.dl, &o, &m, err, sizeof err) != 0)
		kvn_fatal("master_start: %s", err);
	E.mid = actor_id_of(m);
	actor_loop_start(E.ml);
	actor_loop_start(E.dl);
}

static void master_down(void)
{
	actor_loop_stop(E.ml);
	actor_loop_join(E.ml);
	actor_loop_stop(E.dl);
	actor_loop_join(E.dl);
	actor_loop_free(E.ml);
	actor_loop_free(E.dl);
}

static void env_up(const char *name, uint64_t timeout_ms)
{
	snprintf(E.db, sizeof E.db, "%s/%s.db", tmpdir, name);
	E.timeout_ms = timeout_ms;
	E.tl = actor_loop_new("t-test");
	for (int i = 0; i < 4; i++)
		actor_spawn(E.tl, &tact_ops, &E.peers[i], 1024, &E.peers[i].a);
	actor_spawn(E.tl, &tact_ops, &E.client, 1024, &E.client.a);
	master_up();
}

static void env_down(void)
{
	master_down();
	for (int i = 0; i < 4; i++)
		tact_clear(&E.peers[i]);
	tact_clear(&E.client);
	actor_loop_free(E.tl);
	E.mailbox = 0;
}

/* ---- calls ---- */

struct tcall {
	int done, err;
	struct actor_msg *reply;
};

static int call_cb(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct tcall *c = arg;
	(void)self;
	c->reply = reply;
	c->err = err;
	c->done = 1;
	return ACTOR_KEEP;
}

/* Send m from t with role; the reply (caller frees) or NULL on timeout. */
static struct actor_msg *call(struct tact *t, struct actor_msg *m, int role)
{
	struct tcall c = { 0 };
	m->src_role = (uint8_t)role;
	if (actor_call(t->a, E.mid, m, CALL_MS, call_cb, &c) != 0) {
		actor_msg_free(m);
		return NULL;
	}
	/* past the call's own deadline, so the callback has always run */
	actor_loop_run_until(E.tl, &c.done, kvn_now_ms() + CALL_MS + 1000);
	return c.err ? NULL : c.reply;
}

/* Let the test loop run for ms (one-way messages arrive). */
static void pump(uint64_t ms)
{
	int never = 0;
	actor_loop_run_until(E.tl, &never, kvn_now_ms() + ms);
}

/* First inbox message of this type, waiting up to ms; caller frees. */
static struct actor_msg *take(struct tact *t, uint16_t type, uint64_t ms)
{
	uint64_t end = kvn_now_ms() + ms;
	for (;;) {
		for (int i = 0; i < t->n; i++) {
			if (t->inbox[i]->type == type) {
				struct actor_msg *m = t->inbox[i];
				memmove(&t->inbox[i], &t->inbox[i + 1], (size_t)(t->n - i - 1) * sizeof m);
				t->n--;
				return m;
			}
		}
		if (kvn_now_ms() >= end)
			return NULL;
		pump(5);
	}
}

/* ---- message builders ---- */

static struct actor_msg *mk_node(uint16_t type, const char *id, uint64_t boot, uint64_t dram_total,
				 uint64_t dram_used)
{
	struct actor_msg *m = actor_msg_new(type);
	struct proto_node n = { .boot_id = boot, .dram_total = dram_total, .dram_used = dram_used,
				.disk_total = 1 << 30 };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return m;
}

/* PEER_ATTACH or HEARTBEAT: status (or -999 on no reply), ack filled. */
static int node_call(struct tact *t, uint16_t type, const char *id, uint64_t boot, uint64_t total,
		     uint64_t used, int role, struct proto_ack *ack)
{
	struct actor_msg *r = call(t, mk_node(type, id, boot, total, used), role);
	int st;
	memset(ack, 0, sizeof *ack);
	if (!r)
		return -999;
	st = r->status;
	if (r->meta_len && proto_ack_dec(r, ack) != 0)
		st = -998;
	actor_msg_free(r);
	return st;
}

static int attach(int p, const char *id, uint64_t boot, uint64_t total, uint64_t used, struct proto_ack *ack)
{
	return node_call(&E.peers[p], WIRE_PEER_ATTACH, id, boot, total, used, AUTH_ROLE_PEER, ack);
}

struct tev {
	uint64_t seq;
	uint8_t kind;
	const char *key;
	uint64_t gen;
	uint8_t tier;
	uint64_t size;
};

static struct actor_msg *mk_events(const char *id, uint64_t boot, const struct tev *ev, int n)
{
	struct actor_msg *m = actor_msg_new(WIRE_EVENTS);
	struct wire_w w;
	wire_w_init(&w);
	proto_events_begin(&w, id, boot, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		struct proto_event e = { .seq = ev[i].seq, .kind = ev[i].kind, .key = (const uint8_t *)ev[i].key,
					 .klen = (uint16_t)strlen(ev[i].key), .gen = ev[i].gen,
					 .tier = ev[i].tier, .size = ev[i].size };
		proto_events_add(&w, &e);
	}
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("events encode");
	return m;
}

static int events(int p, const char *id, uint64_t boot, const struct tev *ev, int n, struct proto_ack *ack)
{
	struct actor_msg *r = call(&E.peers[p], mk_events(id, boot, ev, n), AUTH_ROLE_PEER);
	int st;
	memset(ack, 0, sizeof *ack);
	if (!r)
		return -999;
	st = r->status;
	if (r->meta_len && proto_ack_dec(r, ack) != 0)
		st = -998;
	actor_msg_free(r);
	return st;
}

static int sync_chunk(int p, const char *id, uint64_t boot, uint64_t seq, uint32_t chunk, int last,
		      const struct tev *ev, int n, struct proto_ack *ack)
{
	struct actor_msg *m = actor_msg_new(WIRE_FULL_SYNC), *r;
	struct proto_sync_hdr h = { .boot_id = boot, .seq = seq, .chunk = chunk, .last = (uint8_t)last,
				    .n = (uint32_t)n };
	struct wire_w w;
	int st;

	snprintf(h.node_id, sizeof h.node_id, "%s", id);
	wire_w_init(&w);
	proto_sync_begin(&w, &h);
	for (int i = 0; i < n; i++) {
		struct proto_event e = { .key = (const uint8_t *)ev[i].key, .klen = (uint16_t)strlen(ev[i].key),
					 .gen = ev[i].gen, .tier = ev[i].tier, .size = ev[i].size };
		proto_sync_add(&w, &e);
	}
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("sync encode");
	r = call(&E.peers[p], m, AUTH_ROLE_PEER);
	memset(ack, 0, sizeof *ack);
	if (!r)
		return -999;
	st = r->status;
	if (r->meta_len && proto_ack_dec(r, ack) != 0)
		st = -998;
	actor_msg_free(r);
	return st;
}

/* ROUTE_PUT of n keys with sizes, excluding ex[0..nex); routes into rt.
 * Returns the reply status. */
static int route_put(const char *const *keys, const uint64_t *sizes, int n, const char *const *ex, int nex,
		     struct proto_route *rt)
{
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT), *r;
	struct wire_r rd;
	struct wire_w w;
	uint32_t cnt = 0;
	int st;

	wire_w_init(&w);
	proto_route_put_begin(&w, ex, (uint32_t)nex, (uint32_t)n);
	for (int i = 0; i < n; i++)
		proto_route_put_add(&w, keys[i], strlen(keys[i]), sizes[i]);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("route_put encode");
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	if (!r)
		return -999;
	st = r->status;
	if (st == 0) {
		if (proto_routes_open(&rd, r, &cnt) != 0 || cnt != (uint32_t)n)
			st = -998;
		for (uint32_t i = 0; i < cnt && st == 0; i++)
			if (proto_routes_next(&rd, &rt[i]) != 0)
				st = -998;
	}
	actor_msg_free(r);
	return st;
}

static int put1(const char *key, uint64_t size, struct proto_route *rt)
{
	int st = route_put(&key, &size, 1, NULL, 0, rt);
	return st ? st : rt->status;
}

/* ROUTE_GET of one key: the item status (or the reply's), rt filled. */
static int get1(const char *key, struct proto_route *rt)
{
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_GET), *r;
	struct wire_r rd;
	struct wire_w w;
	uint32_t cnt = 0;
	int st;

	memset(rt, 0, sizeof *rt);
	wire_w_init(&w);
	proto_keys_begin(&w, 1);
	proto_keys_add(&w, key, strlen(key));
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("keys encode");
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	if (!r)
		return -999;
	st = r->status;
	if (st == 0)
		st = proto_routes_open(&rd, r, &cnt) || cnt != 1 || proto_routes_next(&rd, rt) ? -998 : rt->status;
	actor_msg_free(r);
	return st;
}

/* STAT: objects and the alive flag / objects of one node (-1: not listed). */
static int stat_node(const char *id, uint64_t *objects, int *alive, uint64_t *node_objects)
{
	struct actor_msg *r = call(&E.client, actor_msg_new(WIRE_STAT), AUTH_ROLE_CLIENT);
	struct proto_stat_node sn;
	struct wire_r rd;
	uint64_t bytes;
	uint32_t n;
	int found = -1;

	*alive = -1;
	if (!r)
		return -999;
	if (r->status == 0 && proto_stat_open(&rd, r, objects, &bytes, &n) == 0)
		for (uint32_t i = 0; i < n; i++)
			if (proto_stat_next(&rd, &sn) == 0 && strcmp(sn.node_id, id) == 0) {
				*alive = sn.alive;
				*node_objects = sn.objects;
				found = 0;
			}
	actor_msg_free(r);
	return found;
}

/* Items of a DROP_GEN one-way message: count, first key and gen. */
static int drop_items(const struct actor_msg *m, char *key, size_t cap, uint64_t *gen)
{
	struct proto_item it;
	struct wire_r r;
	uint8_t flags;
	uint32_t n;
	if (proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0 || flags != 0)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		if (proto_items_next(&r, &it) != 0 || it.size != 0)
			return -1;
		if (i == 0) {
			snprintf(key, cap, "%.*s", (int)it.klen, (const char *)it.key);
			*gen = it.gen;
		}
	}
	return wire_r_end(&r) ? -1 : (int)n;
}

/* ---- master.db, read as an operator would ---- */

/* State of (key) in v_objects: "live"/"lost" with gen and node, or "" when
 * absent. */
static void db_row(const char *key, char *state, size_t cap, uint64_t *gen, char *node, size_t ncap)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	state[0] = '\0';
	node[0] = '\0';
	*gen = 0;
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(c, 2000);
	if (sqlite3_prepare_v2(c, "SELECT state, gen, node_id FROM v_objects WHERE key = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		snprintf(state, cap, "%s", (const char *)sqlite3_column_text(s, 0));
		*gen = (uint64_t)sqlite3_column_int64(s, 1);
		snprintf(node, ncap, "%s", (const char *)sqlite3_column_text(s, 2));
	}
out:
	sqlite3_finalize(s);
	sqlite3_close(c);
}

static const char *db_state(const char *key)
{
	static char st[16];
	char node[80];
	uint64_t gen;
	db_row(key, st, sizeof st, &gen, node, sizeof node);
	return st;
}

/* ---- cases ---- */

static void t_ping(void)
{
	struct proto_ack ack;
	char sid[80] = "";
	uint32_t peers = 99;

	env_up("ping", 60000);
	struct actor_msg *r = call(&E.client, actor_msg_new(WIRE_PING), AUTH_ROLE_CLIENT);
	ok(r && r->status == 0 && proto_ping_reply_dec(r, &peers, sid, sizeof sid) == 0, "ping answered");
	is_int(peers, 0, "no peers attached yet");
	is_str(sid, "t-master", "server id");
	actor_msg_free(r);
	attach(0, "n1", 11, 1000, 0, &ack);
	r = call(&E.client, actor_msg_new(WIRE_PING), AUTH_ROLE_CLIENT);
	ok(r && proto_ping_reply_dec(r, &peers, sid, sizeof sid) == 0, "ping after attach");
	is_int(peers, 1, "one peer attached");
	actor_msg_free(r);
	env_down();
}

static void t_attach(void)
{
	struct proto_ack ack;
	struct tev ev[] = { { 1, PROTO_EV_ADD, "a", 5, 0, 10 } };

	env_up("attach", 60000);
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "first attach accepted");
	is_int(ack.need_full_sync, 1, "first attach asks for a full sync");
	ok(ack.epoch >= 1, "epoch given (%u)", ack.epoch);
	is_int(events(0, "n1", 11, ev, 1, &ack), 0, "an event applied");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "reconnect with the same boot");
	is_int(ack.need_full_sync, 0, "no full sync for the same boot");
	is_int(ack.applied_seq, 1, "applied seq kept");
	struct proto_route rt;
	is_int(get1("a", &rt), 0, "locations kept on reconnect");
	is_int(attach(0, "n1", 12, 1000, 0, &ack), 0, "attach with a new boot");
	is_int(ack.need_full_sync, 1, "new boot: full sync");
	is_int(ack.applied_seq, 0, "new boot: applied seq reset");
	is_int(get1("a", &rt), KVN_ENOTFOUND, "new boot: old locations dropped");
	is_int(node_call(&E.client, WIRE_PEER_ATTACH, "c1", 1, 1000, 0, AUTH_ROLE_CLIENT, &ack), KVN_EPERM,
	       "a client cannot attach as a node");
	struct actor_msg *m = actor_msg_new(WIRE_PEER_ATTACH);
	struct actor_msg *r = call(&E.peers[1], m, AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "attach without metadata: KVN_EPROTO");
	actor_msg_free(r);
	env_down();
}

static void t_route_put(void)
{
	struct proto_route rt[4];
	struct proto_ack ack;

	env_up("route_put", 60000);
	is_int(put1("k", 10, rt), KVN_ENOPEER, "no node attached: KVN_ENOPEER");
	attach(0, "A", 1, 1000, 800, &ack);
	attach(1, "B", 2, 1000, 100, &ack);
	is_int(put1("k", 10, rt), 0, "placed");
	is_str(rt[0].node_id, "B", "on the node with the most free DRAM");
	is_str(rt[0].addr, "127.0.0.1:7002", "with its address");
	const char *exB[] = { "B" };
	const char *key = "k2";
	uint64_t size = 10;
	is_int(route_put(&key, &size, 1, exB, 1, rt), 0, "put excluding B");
	is_str(rt[0].node_id, "A", "excluded node skipped");
	const char *exAB[] = { "A", "B" };
	is_int(route_put(&key, &size, 1, exAB, 2, rt), 0, "put excluding every node");
	is_int(rt[0].status, KVN_EFULL, "every node excluded: KVN_EFULL");

	/* heartbeats reset the reservations; two equal nodes */
	node_call(&E.peers[0], WIRE_HEARTBEAT, "A", 1, 1000, 0, AUTH_ROLE_PEER, &ack);
	node_call(&E.peers[1], WIRE_HEARTBEAT, "B", 2, 1000, 0, AUTH_ROLE_PEER, &ack);
	const char *keys2[] = { "x", "y" };
	uint64_t sizes2[] = { 600, 600 };
	is_int(route_put(keys2, sizes2, 2, NULL, 0, rt), 0, "two puts of 600 in one request");
	ok(rt[0].status == 0 && rt[1].status == 0, "both placed");
	ok(strcmp(rt[0].node_id, rt[1].node_id) != 0, "reservations spread them over both nodes (%s, %s)",
	   rt[0].node_id, rt[1].node_id);
	is_int(put1("z", 600, rt), KVN_EFULL, "no room left now: KVN_EFULL");
	is_int(put1("z", 2000, rt), KVN_ETOOBIG, "bigger than any node: KVN_ETOOBIG");
	is_int(put1("z", (uint64_t)MAXV + 1, rt), KVN_ETOOBIG, "above max_value_size: KVN_ETOOBIG");
	is_int(put1("z", 300, rt), 0, "a smaller value still fits");

	/* a key longer than 1024 bytes, written by hand (encoders refuse it) */
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT);
	struct wire_w w;
	static uint8_t big[1025];
	memset(big, 'k', sizeof big);
	wire_w_init(&w);
	wire_w_u32(&w, 0);
	wire_w_u32(&w, 1);
	wire_w_u16(&w, sizeof big);
	wire_w_raw(&w, big, sizeof big);
	wire_w_u64(&w, 1);
	wire_w_to_msg(&w, m);
	struct actor_msg *r = call(&E.client, m, AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EKEYLEN, "a 1025-byte key: KVN_EKEYLEN");
	actor_msg_free(r);

	/* NET_DOWN: B is no longer a candidate */
	m = actor_msg_new(NET_DOWN);
	m->src = actor_id_of(E.peers[1].a);
	m->status = KVN_ECONN;
	actor_send(E.mid, m);
	node_call(&E.peers[0], WIRE_HEARTBEAT, "A", 1, 1000, 0, AUTH_ROLE_PEER, &ack);
	int onB = 0;
	for (int i = 0; i < 4; i++)
		if (put1("w", 1, rt) == 0 && strcmp(rt[0].node_id, "B") == 0)
			onB++;
	is_int(onB, 0, "a disconnected node gets no puts");
	env_down();
}

/* HEARTBEAT with the use split as a peer reports it. */
static int heartbeat(const char *id, uint64_t boot, uint64_t total, uint64_t used, uint64_t pending,
		     uint64_t last_seq)
{
	struct actor_msg *m = actor_msg_new(WIRE_HEARTBEAT), *r;
	struct proto_node n = { .boot_id = boot, .dram_total = total, .dram_used = used,
				.dram_pending = pending, .last_seq = last_seq };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	r = call(&E.peers[0], m, AUTH_ROLE_PEER);
	int st = r ? r->status : -999;
	actor_msg_free(r);
	return st;
}

/* Free DRAM as the master sees it between heartbeats: bytes are counted
 * once whether a heartbeat or an event reports them first. */
static void t_capacity(void)
{
	struct proto_route rt[1];
	struct proto_ack ack;

	env_up("capacity", 60000);
	attach(0, "A", 1, 2000, 0, &ack);
	/* A is receiving a 300-byte put: its pages are pending, no event yet */
	is_int(heartbeat("A", 1, 2000, 1400, 300, 0), 0, "heartbeat: 1400 used, 300 pending");
	is_int(put1("p", 301, rt), KVN_EFULL, "pending pages are held: 301 do not fit in 300");
	struct tev ev1[] = { { 1, PROTO_EV_ADD, "pend", 200, 0, 300 } };
	is_int(events(0, "A", 1, ev1, 1, &ack), 0, "the pending put commits (ADD, seq 1)");
	is_int(put1("q", 100, rt), 0, "its bytes counted once: 100 of the 300 left fit");
	/* A commits q and heartbeats before its event is applied here (the
	 * writer pushed back): the report already holds q's bytes */
	is_int(heartbeat("A", 1, 2000, 1800, 0, 2), 0, "heartbeat ahead of event 2: 1800 used");
	struct tev ev2[] = { { 2, PROTO_EV_ADD, "q", 201, 0, 100 } };
	is_int(events(0, "A", 1, ev2, 1, &ack), 0, "then event 2 (q) arrives");
	is_int(put1("s", 200, rt), 0, "q counted once: 200 still fit");
	is_int(put1("t", 1, rt), KVN_EFULL, "and then nothing");
	env_down();
}

static void t_ties_rotate(void)
{
	struct proto_route rt[1];
	struct proto_ack ack;
	int onA = 0, onB = 0;

	env_up("ties", 60000);
	attach(0, "A", 1, 1000, 0, &ack);
	attach(1, "B", 2, 1000, 0, &ack);
	for (int i = 0; i < 10; i++) {
		if (put1("t", 0, rt) != 0)
			continue;
		onA += strcmp(rt[0].node_id, "A") == 0;
		onB += strcmp(rt[0].node_id, "B") == 0;
	}
	is_int(onA + onB, 10, "ten zero-byte puts placed");
	ok(onA >= 4 && onB >= 4, "equal nodes take turns (A %d, B %d)", onA, onB);
	env_down();
}

static uint64_t last_gen_before_restart;

static void t_generations(void)
{
	struct proto_route rt[1];
	struct proto_ack ack;
	uint64_t prev = 0;
	int increasing = 1;

	env_up("gens", 60000);
	attach(0, "A", 1, 1 << 20, 0, &ack);
	for (int i = 0; i < 50; i++) {
		if (put1("g", 1, rt) != 0 || rt[0].gen <= prev)
			increasing = 0;
		prev = rt[0].gen;
	}
	ok(increasing, "50 generations strictly increase");
	is_int(prev >> 32, ack.epoch, "gen = epoch << 32 | counter");
	is_int(prev & 0xffffffffu, 50, "counter counts the puts of this epoch");
	last_gen_before_restart = prev;
	master_down();
	master_up();
	attach(0, "A", 1, 1 << 20, 0, &ack);
	is_int(put1("g", 1, rt), 0, "put after a restart");
	ok(rt[0].gen > last_gen_before_restart, "generations after a restart are greater (%llx > %llx)",
	   (unsigned long long)rt[0].gen, (unsigned long long)last_gen_before_restart);
	env_down();
}

static void t_events(void)
{
	struct proto_ack ack;
	struct proto_route rt;

	env_up("events", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev e12[] = { { 1, PROTO_EV_ADD, "k1", 100, 0, 10 }, { 2, PROTO_EV_ADD, "k2", 101, 1, 20 } };
	is_int(events(0, "n1", 11, e12, 2, &ack), 0, "two ADD events applied");
	is_int(ack.applied_seq, 2, "acked up to seq 2");
	is_int(get1("k2", &rt), 0, "k2 routed");
	is_str(rt.node_id, "n1", "to its node");
	ok(rt.gen == 101 && rt.tier == 1 && rt.size == 20, "with gen, tier and size");

	struct actor_msg *d = take(&E.peers[0], WIRE_DURABLE, 5000);
	uint64_t dseq = 0;
	ok(d && proto_durable_dec(d, &dseq) == 0, "DURABLE arrives");
	is_int(dseq, 2, "durable up to seq 2");
	actor_msg_free(d);
	is_str(db_state("k1"), "live", "k1 is in master.db once DURABLE arrived");
	is_str(db_state("k2"), "live", "k2 too");

	struct master_stats before, after;
	master_get_stats(&before);
	is_int(events(0, "n1", 11, e12 + 1, 1, &ack), 0, "a duplicate is accepted");
	is_int(ack.applied_seq, 2, "and changes nothing");
	master_get_stats(&after);
	is_int(after.events_dup - before.events_dup, 1, "counted as a duplicate");

	struct tev gap[] = { { 5, PROTO_EV_ADD, "k5", 105, 0, 1 } };
	is_int(events(0, "n1", 11, gap, 1, &ack), KVN_ESTATE, "a gap is refused with KVN_ESTATE");
	is_int(ack.need_full_sync, 1, "and asks for a full sync");
	is_int(ack.applied_seq, 2, "applied seq unchanged");
	is_int(get1("k5", &rt), KVN_ENOTFOUND, "nothing past the gap applied");

	struct tev mixed[] = { { 2, PROTO_EV_ADD, "k2", 101, 1, 20 }, { 3, PROTO_EV_REMOVE, "k1", 100, 0, 0 },
			       { 5, PROTO_EV_ADD, "k5", 105, 0, 1 } };
	is_int(events(0, "n1", 11, mixed, 3, &ack), KVN_ESTATE, "dup, next, gap in one batch");
	is_int(ack.applied_seq, 3, "applied up to the gap");
	is_int(get1("k1", &rt), KVN_ENOTFOUND, "REMOVE of the exact gen removes");

	struct tev wrong[] = { { 4, PROTO_EV_REMOVE, "k2", 999, 0, 0 } };
	is_int(events(0, "n1", 11, wrong, 1, &ack), 0, "REMOVE of another gen");
	is_int(get1("k2", &rt), 0, "leaves the indexed gen");
	d = take(&E.peers[0], WIRE_DURABLE, 5000);
	while (d && proto_durable_dec(d, &dseq) == 0 && dseq < 4) {
		actor_msg_free(d);
		d = take(&E.peers[0], WIRE_DURABLE, 5000);
	}
	is_int(dseq, 4, "durable reaches seq 4");
	actor_msg_free(d);
	is_str(db_state("k1"), "", "the removed object left master.db");
	is_str(db_state("k2"), "live", "the other one stays");

	is_int(events(0, "n9", 1, wrong, 1, &ack), KVN_ESTATE, "events from an unknown node: KVN_ESTATE");
	is_int(ack.need_full_sync, 1, "with need_full_sync");
	is_int(events(0, "n1", 99, wrong, 1, &ack), KVN_ESTATE, "events with another boot: KVN_ESTATE");
	env_down();
}

static void t_supersede(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	char key[64];
	uint64_t gen = 0;

	env_up("supersede", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev a1[] = { { 1, PROTO_EV_ADD, "k", 100, 0, 10 } };
	events(0, "n1", 11, a1, 1, &ack);
	struct tev b1[] = { { 1, PROTO_EV_ADD, "k", 200, 0, 10 } };
	is_int(events(1, "n2", 22, b1, 1, &ack), 0, "newer gen on another node");
	is_int(get1("k", &rt), 0, "routed");
	is_str(rt.node_id, "n2", "to the newer gen's node");
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	ok(d != NULL, "the old node gets DROP_GEN");
	is_int(d ? drop_items(d, key, sizeof key, &gen) : -1, 1, "one item");
	is_str(key, "k", "for the key");
	is_int(gen, 100, "and the old gen");
	actor_msg_free(d);
	d = take(&E.peers[1], WIRE_DROP_GEN, 50);
	ok(d == NULL, "the new node gets none");
	actor_msg_free(d);

	struct tev a2[] = { { 2, PROTO_EV_ADD, "k", 150, 0, 10 } };
	is_int(events(0, "n1", 11, a2, 1, &ack), 0, "a stale ADD is acked");
	is_int(ack.applied_seq, 2, "its seq consumed");
	is_int(get1("k", &rt), 0, "still routed");
	is_str(rt.node_id, "n2", "to the newer gen");
	d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	ok(d && drop_items(d, key, sizeof key, &gen) == 1 && gen == 150, "stale ADD gets DROP_GEN back");
	actor_msg_free(d);

	struct tev rm[] = { { 3, PROTO_EV_REMOVE, "k", 200, 0, 0 } };
	is_int(events(0, "n1", 11, rm, 1, &ack), 0, "REMOVE from a node that does not hold it");
	is_int(get1("k", &rt), 0, "does not remove another node's entry");
	struct tev rm2[] = { { 2, PROTO_EV_REMOVE, "k", 200, 0, 0 } };
	events(1, "n2", 22, rm2, 1, &ack);
	is_int(get1("k", &rt), KVN_ENOTFOUND, "REMOVE by its node removes it");
	env_down();
}

static void t_route_get(void)
{
	struct proto_ack ack;
	struct proto_route rt;

	env_up("route_get", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "here", 7, 0, 3 } };
	events(0, "n1", 11, a, 1, &ack);
	is_int(get1("here", &rt), 0, "found");
	is_int(get1("nothere", &rt), KVN_ENOTFOUND, "absent: KVN_ENOTFOUND");
	struct actor_msg *m = actor_msg_new(NET_DOWN);
	m->src = actor_id_of(E.peers[0].a);
	m->status = KVN_ECONN;
	actor_send(E.mid, m);
	is_int(get1("here", &rt), KVN_EPEERDOWN, "its node disconnected: KVN_EPEERDOWN");
	uint64_t objs = 0, nobj = 0;
	int alive;
	stat_node("n1", &objs, &alive, &nobj);
	is_int(alive, 0, "STAT shows it not alive");
	is_int(nobj, 1, "but still holding its entry");
	is_int(node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack), 0,
	       "heartbeat from the same boot");
	is_int(ack.need_full_sync, 0, "no full sync needed");
	is_int(get1("here", &rt), 0, "routed again after it came back");
	env_down();
}

static void t_full_sync(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	char key[64];
	uint64_t gen;

	env_up("sync", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev old[] = { { 1, PROTO_EV_ADD, "gone", 10, 0, 1 }, { 2, PROTO_EV_ADD, "kept", 11, 0, 1 } };
	events(0, "n1", 11, old, 2, &ack);
	struct tev other[] = { { 1, PROTO_EV_ADD, "older-elsewhere", 5, 0, 1 },
			       { 2, PROTO_EV_ADD, "newer-elsewhere", 500, 0, 1 } };
	events(1, "n2", 22, other, 2, &ack);
	actor_msg_free(take(&E.peers[0], WIRE_DURABLE, 3000));

	struct tev c0[] = { { 0, 0, "kept", 11, 1, 1 }, { 0, 0, "new", 12, 0, 2 } };
	struct tev c1[] = { { 0, 0, "older-elsewhere", 20, 0, 1 }, { 0, 0, "newer-elsewhere", 30, 0, 1 } };
	is_int(sync_chunk(0, "n1", 11, 40, 0, 0, c0, 2, &ack), 0, "chunk 0 accepted");
	is_int(sync_chunk(0, "n1", 11, 40, 2, 1, c1, 2, &ack), KVN_ESTATE, "chunk 2 after 0: KVN_ESTATE");
	is_int(sync_chunk(0, "n1", 11, 40, 1, 1, c1, 2, &ack), KVN_ESTATE,
	       "chunk 1 after the refusal: staging was discarded");
	is_int(get1("new", &rt), KVN_ENOTFOUND, "nothing applied from the refused sync");
	is_int(sync_chunk(0, "n1", 11, 40, 0, 0, c0, 2, &ack), 0, "restart: chunk 0");
	is_int(get1("new", &rt), KVN_ENOTFOUND, "not applied before the last chunk");
	is_int(sync_chunk(0, "n1", 11, 40, 1, 1, c1, 2, &ack), 0, "last chunk");
	is_int(ack.applied_seq, 40, "applied seq = the snapshot's seq");
	is_int(get1("gone", &rt), KVN_ENOTFOUND, "a location missing from the snapshot is dropped");
	ok(get1("kept", &rt) == 0 && rt.tier == 1, "a kept one takes the snapshot's tier");
	is_int(get1("new", &rt), 0, "a new one is routed");
	ok(get1("older-elsewhere", &rt) == 0 && strcmp(rt.node_id, "n1") == 0 && rt.gen == 20,
	   "a newer gen in the snapshot supersedes another node's");
	ok(get1("newer-elsewhere", &rt) == 0 && strcmp(rt.node_id, "n2") == 0 && rt.gen == 500,
	   "an older gen in the snapshot does not");
	struct actor_msg *d = take(&E.peers[1], WIRE_DROP_GEN, 3000);
	ok(d && drop_items(d, key, sizeof key, &gen) == 1 && strcmp(key, "older-elsewhere") == 0 && gen == 5,
	   "the superseded node gets DROP_GEN");
	actor_msg_free(d);
	d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	ok(d && drop_items(d, key, sizeof key, &gen) == 1 && strcmp(key, "newer-elsewhere") == 0 && gen == 30,
	   "the syncing node gets DROP_GEN for its stale entry");
	actor_msg_free(d);
	uint64_t dseq = 0;
	for (d = take(&E.peers[0], WIRE_DURABLE, 5000); d; d = take(&E.peers[0], WIRE_DURABLE, 5000)) {
		proto_durable_dec(d, &dseq);
		actor_msg_free(d);
		if (dseq == 40)
			break;
	}
	is_int(dseq, 40, "DURABLE for the snapshot's seq");
	is_str(db_state("gone"), "", "master.db: the dropped row is gone");
	is_str(db_state("new"), "live", "master.db: the new row is there");
	struct tev next[] = { { 41, PROTO_EV_ADD, "after", 50, 0, 1 } };
	is_int(events(0, "n1", 11, next, 1, &ack), 0, "events continue after the snapshot's seq");
	struct tev cl[] = { { 0, 0, "x", 1, 0, 1 } };
	is_int(sync_chunk(0, "n1", 99, 1, 0, 1, cl, 1, &ack), KVN_ESTATE, "a sync with another boot: KVN_ESTATE");
	env_down();
}

static void t_timeout(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	uint64_t objs = 0, nobj = 0;
	int alive = -1, st = 0;

	env_up("timeout", 300);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "soon-lost", 7, 0, 3 } };
	events(0, "n1", 11, a, 1, &ack);
	struct actor_msg *d = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d != NULL, "committed before the node falls silent");
	actor_msg_free(d);
	uint64_t end = kvn_now_ms() + 5000;
	while ((st = get1("soon-lost", &rt)) == 0 && kvn_now_ms() < end)
		pump(20);
	is_int(st, KVN_ENOTFOUND, "a silent node's locations leave routing");
	stat_node("n1", &objs, &alive, &nobj);
	is_int(alive, 0, "STAT lists it as not alive");
	is_int(nobj, 0, "with no objects");
	end = kvn_now_ms() + 5000;
	while (strcmp(db_state("soon-lost"), "lost") != 0 && kvn_now_ms() < end)
		pump(20);
	is_str(db_state("soon-lost"), "lost", "its rows are marked lost in v_objects");
	is_int(node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack), 0,
	       "a heartbeat from the dead node");
	is_int(ack.need_full_sync, 1, "is told to full-sync");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "it attaches again");
	is_int(ack.need_full_sync, 1, "with need_full_sync");
	struct tev snap[] = { { 0, 0, "soon-lost", 7, 0, 3 } };
	is_int(sync_chunk(0, "n1", 11, 1, 0, 1, snap, 1, &ack), 0, "and full-syncs");
	is_int(get1("soon-lost", &rt), 0, "its key is routed again");
	end = kvn_now_ms() + 5000;
	while (strcmp(db_state("soon-lost"), "live") != 0 && kvn_now_ms() < end)
		pump(20);
	is_str(db_state("soon-lost"), "live", "and live again in master.db");
	env_down();
}

static void t_roles_and_malformed(void)
{
	struct proto_ack ack;
	struct tev a[] = { { 1, PROTO_EV_ADD, "k", 7, 0, 3 } };
	struct actor_msg *r;

	env_up("roles", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	r = call(&E.client, mk_events("n1", 11, a, 1), AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPERM, "a client sending EVENTS: KVN_EPERM");
	actor_msg_free(r);
	r = call(&E.client, mk_node(WIRE_HEARTBEAT, "n1", 11, 1000, 0), AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPERM, "a client sending HEARTBEAT: KVN_EPERM");
	actor_msg_free(r);
	struct proto_route rt;
	is_int(get1("k", &rt), KVN_ENOTFOUND, "nothing applied from the refused events");
	r = call(&E.peers[0], mk_events("n1", 11, a, 1), AUTH_ROLE_INTERNAL);
	ok(r && r->status == 0, "an in-process peer may send EVENTS");
	actor_msg_free(r);

	struct actor_msg *m = actor_msg_new(WIRE_EVENTS);
	m->meta = kvn_xmalloc(7);
	memcpy(m->meta, "garbage", 7);
	m->meta_len = 7;
	r = call(&E.peers[0], m, AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "garbage EVENTS metadata: KVN_EPROTO");
	actor_msg_free(r);
	/* a count the bytes cannot hold */
	m = actor_msg_new(WIRE_ROUTE_GET);
	struct wire_w w;
	wire_w_init(&w);
	proto_keys_begin(&w, 2);
	proto_keys_add(&w, "k", 1);
	wire_w_to_msg(&w, m);
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPROTO, "ROUTE_GET claiming 2 keys with 1: KVN_EPROTO");
	actor_msg_free(r);
	/* trailing bytes after a valid event */
	m = mk_events("n1", 11, a, 1);
	m->meta = realloc(m->meta, m->meta_len + 1);
	m->meta[m->meta_len++] = 0;
	r = call(&E.peers[0], m, AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "EVENTS with trailing bytes: KVN_EPROTO");
	actor_msg_free(r);
	struct tev bad[] = { { 2, PROTO_EV_ADD, "k", 0, 0, 3 } };
	r = call(&E.peers[0], mk_events("n1", 11, bad, 1), AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "an ADD with gen 0: KVN_EPROTO");
	actor_msg_free(r);
	r = call(&E.client, actor_msg_new(WIRE_GET), AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPROTO, "a peer request sent to the master: KVN_EPROTO");
	actor_msg_free(r);
	env_down();
}

static void t_restart(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	uint64_t objs = 0, nobj = 0, dseq = 0;
	int alive = -1, st;

	env_up("restart", 1500);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "r1", 7, 0, 3 } };
	struct tev b[] = { { 1, PROTO_EV_ADD, "r2", 8, 0, 4 } };
	events(0, "n1", 11, a, 1, &ack);
	events(1, "n2", 22, b, 1, &ack);
	struct actor_msg *d1 = take(&E.peers[0], WIRE_DURABLE, 3000), *d2 = take(&E.peers[1], WIRE_DURABLE, 3000);
	ok(d1 && d2, "both committed");
	actor_msg_free(d1);
	actor_msg_free(d2);
	uint32_t epoch1 = ack.epoch;

	master_down();
	master_up();
	is_int(get1("r1", &rt), KVN_EPEERDOWN, "after a restart: known location, node not attached yet");
	stat_node("n1", &objs, &alive, &nobj);
	ok(alive == 0 && nobj == 1, "STAT lists the loaded node (not alive, 1 object)");
	is_int(objs, 2, "both committed objects loaded");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 attaches to the new master");
	is_int(ack.need_full_sync, 1, "and must full-sync");
	ok(ack.epoch > epoch1, "new epoch (%u > %u)", ack.epoch, epoch1);
	/* a committed put must not read as missing while its node re-syncs */
	is_int(get1("r1", &rt), 0, "its loaded locations stay routable during the sync");
	is_str(rt.node_id, "n1", "to n1");
	struct tev snap[] = { { 0, 0, "r1", 7, 0, 3 } };
	is_int(sync_chunk(0, "n1", 11, 1, 0, 1, snap, 1, &ack), 0, "full sync");
	is_int(get1("r1", &rt), 0, "r1 routed again");
	is_str(rt.node_id, "n1", "to n1");
	d1 = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d1 && proto_durable_dec(d1, &dseq) == 0 && dseq == 1, "DURABLE for the sync");
	actor_msg_free(d1);

	/* n2 never comes back: dead after the timeout, its row lost */
	uint64_t end = kvn_now_ms() + 6000;
	while ((st = get1("r2", &rt)) == KVN_EPEERDOWN && kvn_now_ms() < end) {
		node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack);
		pump(50);
	}
	is_int(st, KVN_ENOTFOUND, "a loaded node that never attaches is declared dead");
	is_int(get1("r1", &rt), 0, "the heartbeating node stays");
	end = kvn_now_ms() + 5000;
	while (strcmp(db_state("r2"), "lost") != 0 && kvn_now_ms() < end)
		pump(20);
	is_str(db_state("r2"), "lost", "and its row is lost");
	is_str(db_state("r1"), "live", "the synced row is live");
	env_down();
}

static void t_stat(void)
{
	struct proto_ack ack;
	uint64_t objs = 0, nobj = 0;
	int alive = -1;

	env_up("stat", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "s1", 7, 0, 3 }, { 2, PROTO_EV_ADD, "s2", 8, 0, 4 } };
	events(0, "n1", 11, a, 2, &ack);
	is_int(stat_node("n1", &objs, &alive, &nobj), 0, "STAT lists the node");
	is_int(objs, 2, "two objects in the index");
	is_int(alive, 1, "alive");
	is_int(nobj, 2, "holding both");
	env_down();
}

/* An operator holding master.db's write lock past the busy timeout: the
 * writer falls behind, so EVENTS are refused with KVN_EBUSY before its
 * mailbox overflows; then the group fails, the node's durable seq stops and
 * it is asked to full-sync, which repairs it. */
static void t_db_failure(void)
{
	struct master_stats st0, st1;
	struct proto_ack ack;
	struct proto_route rt;
	sqlite3 *c = NULL;
	uint64_t dseq = 0, seq = 1;
	int st = 0;

	E.mailbox = 64; /* the master refuses EVENTS past 32 unanswered writes */
	env_up("dbfail", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev e1[] = { { 1, PROTO_EV_ADD, "d1", 7, 0, 3 } };
	events(0, "n1", 11, e1, 1, &ack);
	struct actor_msg *d = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d && proto_durable_dec(d, &dseq) == 0 && dseq == 1, "seq 1 durable");
	actor_msg_free(d);

	master_get_stats(&st0);
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(c, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
		tap_skip(12, "cannot take master.db's write lock from a second connection");
		sqlite3_close(c);
		env_down();
		return;
	}
	struct tev e2[] = { { 2, PROTO_EV_ADD, "d2", 8, 0, 3 } };
	is_int(events(0, "n1", 11, e2, 1, &ack), 0, "events are acked while master.db is locked");
	is_int(ack.applied_seq, 2, "applied in memory");
	/* the writer is stuck in BEGIN: keep shipping until the master pushes back */
	for (seq = 3; seq < 200; seq++) {
		struct tev ex[] = { { seq, PROTO_EV_ADD, "dx", seq, 0, 1 } };
		if ((st = events(0, "n1", 11, ex, 1, &ack)) != 0)
			break;
	}
	is_int(st, KVN_EBUSY, "the writer falls behind: EVENTS answered KVN_EBUSY");
	is_int(ack.applied_seq, seq - 1, "the refused batch is not applied");
	ok(get1("dx", &rt) == 0 && rt.gen == seq - 1, "routing has the last accepted gen");
	/* dbw waits out SQLite's busy timeout (5 s), then fails the group */
	uint64_t end = kvn_now_ms() + 15000;
	do {
		pump(50);
		master_get_stats(&st1);
	} while (st1.db_errors == st0.db_errors && kvn_now_ms() < end);
	ok(st1.db_errors > st0.db_errors, "the failed writes reach the master");
	sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(c);
	d = take(&E.peers[0], WIRE_DURABLE, 100);
	ok(d == NULL, "no DURABLE for the failed batches");
	actor_msg_free(d);
	/* the refused batch is shipped again once the writer has answered */
	end = kvn_now_ms() + 10000;
	do {
		struct tev ex[] = { { seq, PROTO_EV_ADD, "dx", seq, 0, 1 } };
		st = events(0, "n1", 11, ex, 1, &ack);
		if (st == KVN_EBUSY)
			pump(20);
	} while (st == KVN_EBUSY && kvn_now_ms() < end);
	is_int(st, 0, "the re-shipped batch is accepted");
	ok(ack.need_full_sync == 1 && ack.durable_seq == 1, "but the node must full-sync; durable stays at 1");
	node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack);
	is_int(ack.need_full_sync, 1, "heartbeats ask for it too");
	attach(0, "n1", 11, 1000, 0, &ack);
	is_int(ack.need_full_sync, 1, "a re-attach with the same boot gets need_full_sync");
	struct tev snap[] = { { 0, 0, "d1", 7, 0, 3 }, { 0, 0, "d2", 8, 0, 3 }, { 0, 0, "dx", seq, 0, 1 } };
	sync_chunk(0, "n1", 11, seq, 0, 1, snap, 3, &ack);
	for (d = take(&E.peers[0], WIRE_DURABLE, 5000); d; d = take(&E.peers[0], WIRE_DURABLE, 5000)) {
		proto_durable_dec(d, &dseq);
		actor_msg_free(d);
		if (dseq == seq)
			break;
	}
	ok(dseq == seq && strcmp(db_state("d2"), "live") == 0, "the full sync repairs master.db (durable %llu)",
	   (unsigned long long)dseq);
	env_down();
}

static void clean_dir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[600];
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	closedir(d);
}

static const struct tap_test tests[] = {
	{ "ping", t_ping },
	{ "attach", t_attach },
	{ "route_put", t_route_put },
	{ "capacity", t_capacity },
	{ "ties_rotate", t_ties_rotate },
	{ "generations", t_generations },
	{ "events", t_events },
	{ "supersede", t_supersede },
	{ "route_get", t_route_get },
	{ "full_sync", t_full_sync },
	{ "timeout", t_timeout },
	{ "roles_and_malformed", t_roles_and_malformed },
	{ "restart", t_restart },
	{ "stat", t_stat },
	{ "db_failure", t_db_failure },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	int rc;

	if (!getenv("KVN_TEST_VERBOSE"))
		kvn_log_set_level(KVN_LOG_ERROR);
	snprintf(tmpdir, sizeof tmpdir, "%s/kvn-master-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		kvn_fatal("mkdtemp %s: %s", tmpdir, strerror(errno));
	rc = tap_run(tests, argc, argv);
	clean_dir();
	rmdir(tmpdir);
	return rc;
}
