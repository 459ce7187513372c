/*
 * t/master_ready: what a master may answer right after it starts, and what
 * it may promise a peer, driven through the fixture in t/master_env.h:
 * no stale route while a node known in master.db has not re-synced (a get
 * that reached the first peer to re-sync read an overwritten generation);
 * no generation handed out below one a peer reports until the raised epoch
 * is committed (master.db lost: an acknowledged put lost to an older,
 * higher generation); placement counts whole pages of the peer's arena (100-byte
 * values overbooked a 16-page peer until its next heartbeat).
 */
#include "config.h"

#include <event2/buffer.h>
#include <sqlite3.h>
#include <xxhash.h>
#include <stdio.h>
#include <string.h>

#include "master_env.h"
#include "store/store.h"

/* PEER_ATTACH with the generation and page fields a peer fills in. */
static int attach_ex(int p, const char *id, uint64_t boot, uint64_t total, uint64_t max_gen, uint64_t page,
		     struct proto_ack *ack)
{
	struct actor_msg *m = actor_msg_new(WIRE_PEER_ATTACH);
	struct proto_node n = { .boot_id = boot, .dram_total = total, .disk_total = 1 << 30, .max_gen = max_gen,
				.page_size = page };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return reply_ack(call(&E.peers[p], m, AUTH_ROLE_PEER), ack);
}

/* A GET sent to the master for one key: the route it answers with (the
 * nodes here are remote, so it never hands the GET on). */
static int get_via(const char *key, struct proto_route *rt)
{
	struct actor_msg *m = actor_msg_new(WIRE_GET), *r;
	struct wire_r rd;
	struct wire_w w;
	uint32_t cnt = 0;
	int st;

	memset(rt, 0, sizeof *rt);
	wire_w_init(&w);
	proto_items_begin(&w, 0, 1);
	proto_items_add(&w, key, strlen(key), 0, 0);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("items encode");
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	if (!r)
		return -999;
	st = r->status;
	if (st == 0 && !(r->flags & WIRE_F_ROUTES))
		st = -997;
	if (st == 0)
		st = proto_routes_open(&rd, r, &cnt) || cnt != 1 || proto_routes_next(&rd, rt) ? -998 : rt->status;
	actor_msg_free(r);
	return st;
}

static long long db_int(const char *sql)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(c, 2000);
		if (sqlite3_prepare_v2(c, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	sqlite3_close(c);
	return v;
}

/* put1 until the master stops answering "not ready" (bounded). */
static int put_ready(const char *key, uint64_t size, struct proto_route *rt)
{
	uint64_t end = kvn_now_ms() + 10000;
	int st;
	while ((st = put1(key, size, rt)) == KVN_EBUSY && kvn_now_ms() < end)
		pump(10);
	return st;
}

/* Item 4 of issue 11: the newest acknowledged put of x was not in master.db
 * when the master restarted (it lives on n2 only); n1 re-synced first with
 * the overwritten generation.  The route must wait for n2. */
static void t_stale_read(void)
{
	struct proto_ack ack;
	struct proto_route rt;

	env_up("stale", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "x", 7, 0, 3 } };
	events(0, "n1", 11, a, 1, &ack);
	struct actor_msg *d = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d != NULL, "x gen 7 on n1 is in master.db; n2 is a known node");
	actor_msg_free(d);
	master_down();
	master_up();

	/* n1 also holds z at epoch 7, above this master's (2): an older
	 * master.db copy, say.  z is not this master's write either. */
	const uint64_t zgen = (7ull << 32) | 1;
	is_int(attach_ex(0, "n1", 11, 1000, zgen, 0, &ack), 0, "after the restart n1 attaches first");
	struct tev s1[] = { { 0, 0, "x", 7, 0, 3 }, { 0, 0, "z", zgen, 0, 1 } };
	is_int(sync_chunk(0, "n1", 11, 1, 0, 1, s1, 2, &ack), 0, "and re-syncs x gen 7, z at epoch 7");
	is_int(get1("x", &rt), KVN_EBUSY, "ROUTE_GET x: not ready (n2, not heard from, may hold a newer x)");
	is_int(get1("z", &rt), KVN_EBUSY, "nor z: a generation above this master's epoch is not its own");
	is_int(get_via("x", &rt), KVN_EBUSY, "a GET sent to the master: the same");
	/* the put the old master acknowledged, not in master.db: on n2 only */
	is_int(attach(1, "n2", 22, 1000, 0, &ack), 0, "n2 attaches");
	is_int(get1("x", &rt), KVN_EBUSY, "still not ready until its snapshot is applied");
	struct tev s2[] = { { 0, 0, "x", 9, 0, 4 } };
	is_int(sync_chunk(1, "n2", 22, 1, 0, 1, s2, 1, &ack), 0, "n2 re-syncs x gen 9");
	int st = get1("x", &rt);
	ok(st == 0 && rt.gen == 9 && strcmp(rt.node_id, "n2") == 0,
	   "every node re-synced: x routes to the newest generation (%d, gen %llu on %s)", st,
	   (unsigned long long)rt.gen, rt.node_id);
	is_int(get_via("x", &rt), 0, "and so does a GET sent to the master");
	is_int(get1("z", &rt), 0, "z is routed too");
	is_int(get1("none", &rt), KVN_ENOTFOUND, "a key no node holds is not found again");
	env_down();
}

/* Item 2 of issue 11: the master starts with an empty master.db (epoch 1)
 * while a peer holds a generation of epoch 5. */
static void t_epoch_raise(void)
{
	const uint64_t held = (5ull << 32) | 9;
	struct proto_route rt;
	struct proto_ack ack;
	sqlite3 *c = NULL;

	env_up("epoch", 60000);
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_exec(c, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK) {
		tap_skip(9, "cannot take master.db's write lock from a second connection");
		sqlite3_close(c);
		env_down();
		return;
	}
	/* master.db is locked: the raise cannot commit yet */
	is_int(attach_ex(0, "A", 1, 1 << 20, held, 4096, &ack), 0, "A attaches reporting generation 5:9");
	is_int(ack.epoch, 1, "to a master at epoch 1 (no master.db)");
	is_int(put1("k", 1, &rt), KVN_EBUSY, "no generation while the raised epoch is not committed");
	pump(200);
	is_int(put1("k", 1, &rt), KVN_EBUSY, "nor 200 ms later");
	sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(c);
	is_int(put_ready("k", 1, &rt), 0, "once it is committed, puts are routed");
	ok(rt.gen > held && rt.gen >> 32 == 6, "with a generation above the peer's (%#llx > %#llx)",
	   (unsigned long long)rt.gen, (unsigned long long)held);
	is_int(db_int("select max(epoch) from epochs"), 6, "epoch 6 is in master.db");

	/* a generation arriving in an event raises it too */
	struct tev ev[] = { { 1, PROTO_EV_ADD, "y", (9ull << 32) | 1, 0, 1 } };
	is_int(events(0, "A", 1, ev, 1, &ack), 0, "an event with generation 9:1");
	int st = put_ready("k", 1, &rt);
	ok(st == 0 && rt.gen >> 32 == 10, "the next put gets epoch 10 (%#llx)", (unsigned long long)rt.gen);
	master_down();
	master_up();
	is_int(attach_ex(0, "A", 1, 1 << 20, 0, 4096, &ack), 0, "after a restart");
	is_int(ack.epoch, 11, "the next epoch is above every raised one");
	env_down();
}

/* ---- placement in pages, with a real peer actor ---- */

#define PAGE 4096
#define NPAGES 16

/* Item 17 of issue 11: a 16-page peer and 100-byte values.  The master must
 * route exactly what fits: each value takes a whole page. */
static void t_pages(void)
{
	enum { N = 40 };
	struct peer_opts o = {
		.node_id = "pp", .advertise = "127.0.0.1:1", .dram_size = PAGE * NPAGES, .page_size = PAGE,
		.heartbeat_ms = 600000, /* no heartbeat during the test: placement's own count */
		.pending_ttl_ms = 5000, .read_lease_ttl_ms = 5000, .max_value_size = MAXV, .mailbox = 1024,
		.call_timeout_ms = 2000,
		.evict = KVN_EVICT_NONE, /* a full peer stays full: placement's count is exact */
	};
	struct proto_route rt[N];
	const char *keys[N];
	char kbuf[N][16];
	uint64_t sizes[N];
	struct actor *peer = NULL;
	char err[256], val[100];
	int routed = 0, enospc = 0, stored = 0, efull = 0;

	env_up("pages", 60000);
	if (peer_start(E.tl, &o, &peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(peer, E.mid);
	uint64_t objs = 0, nobj = 0, end = kvn_now_ms() + 5000;
	int alive = 0;
	while (alive != 1 && kvn_now_ms() < end) {
		pump(20);
		stat_node("pp", &objs, &alive, &nobj);
	}
	is_int(alive, 1, "a real peer with %d pages of %d bytes attached", NPAGES, PAGE);
	pump(100); /* its (empty) full sync */

	for (int i = 0; i < N; i++) {
		snprintf(kbuf[i], sizeof kbuf[i], "s%d", i);
		keys[i] = kbuf[i];
		sizes[i] = sizeof val;
	}
	memset(val, 'v', sizeof val);
	is_int(route_put(keys, sizes, N, NULL, 0, rt), 0, "ROUTE_PUT of %d values of 100 bytes", N);
	for (int i = 0; i < N; i++) {
		routed += rt[i].status == 0;
		efull += rt[i].status == KVN_EFULL;
	}
	is_int(routed, NPAGES, "exactly as many are placed as the peer has pages");
	is_int(efull, N - NPAGES, "the others: KVN_EFULL");

	/* store the placed ones on the peer, as a client would */
	struct actor_msg *m = actor_msg_new(WIRE_PUT), *r;
	struct wire_w w;
	wire_w_init(&w);
	proto_items_begin(&w, PROTO_ITEMS_SUM, (uint32_t)routed);
	m->payload = evbuffer_new();
	for (int i = 0; i < N; i++)
		if (rt[i].status == 0) {
			proto_items_add_sum(&w, keys[i], strlen(keys[i]), rt[i].gen, sizeof val,
					    XXH3_64bits(val, sizeof val), 0);
			evbuffer_add(m->payload, val, sizeof val);
		}
	for (int i = 0; i < N; i++) /* each with the master's grant */
		if (rt[i].status == 0)
			proto_grants_add(&w, &rt[i].grant);
	m->payload_len = (uint32_t)evbuffer_get_length(m->payload);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("put encode");
	m->src_role = AUTH_ROLE_CLIENT;
	struct tcall tc = { 0 };
	if (actor_call(E.client.a, actor_id_of(peer), m, CALL_MS, call_cb, &tc) != 0)
		kvn_fatal("actor_call");
	actor_loop_run_until(E.tl, &tc.done, kvn_now_ms() + CALL_MS + 1000);
	r = tc.err ? NULL : tc.reply;
	struct wire_r rd;
	struct proto_result res;
	uint32_t cnt = 0;
	if (r && r->status == 0 && proto_results_open(&rd, r->meta, r->meta_len, &cnt) == 0)
		for (uint32_t i = 0; i < cnt && proto_results_next(&rd, &res) == 0; i++) {
			stored += res.status == 0;
			enospc += res.status == KVN_ENOSPC;
		}
	actor_msg_free(r);
	is_int(stored, routed, "the peer stores every placed value");
	is_int(enospc, 0, "and answers no KVN_ENOSPC that placement should have foreseen");
	const char *k = "one-more";
	uint64_t one = 1;
	is_int(route_put(&k, &one, 1, NULL, 0, rt), 0, "a 1-byte put after that");
	is_int(rt[0].status, KVN_EFULL, "does not fit either: a page is the smallest use");
	actor_destroy(peer);
	pump(50);
	env_down();
}

static const struct tap_test tests[] = {
	{ "stale_read", t_stale_read },
	{ "epoch_raise", t_epoch_raise },
	{ "pages", t_pages },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return env_main(tests, argc, argv);
}
