/*
 * t/master_env.h: the in-process fixture shared by t/master and
 * t/master_sync: the master and its SQLite writer on real loop threads with
 * a temporary master.db, test actors on a loop the test thread drives that
 * play peers and a client, calls with a deadline, the proto-encoded message
 * builders (attach, heartbeat, events, full-sync chunks, ROUTE_PUT/GET,
 * STAT), and main's temp dir.  Header-only like tap.h: static inline, so a
 * test that does not use a helper gets no unused-function warning.
 */
#ifndef KVN_T_MASTER_ENV_H
#define KVN_T_MASTER_ENV_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

#include "actors/actor.h"
#include "net/proto.h"
#include "master/master.h"
#include "peer/peer.h"
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
	uint64_t linger_ms; /* master.commit_linger of the next master_up */
	uint8_t sync_flags; /* every full-sync entry's flags (PROTO_EV_F_QUEUE, ...) */
	uint64_t floor_keep_ms; /* master.db floors' keep window of the next master_up (0: 10 min) */
	uint32_t floor_max;     /* in-memory floors of the next master_up (0: the built-in 2^18) */
	struct tact peers[4], client;
} E;

static inline int tact_handle(struct actor *self, struct actor_msg *m)
{
	struct tact *t = actor_state(self);
	if (t->n < (int)(sizeof t->inbox / sizeof t->inbox[0])) {
		t->inbox[t->n++] = m;
		return ACTOR_KEEP;
	}
	return 0;
}

static const struct actor_ops tact_ops = { .name = "t-actor", .handle = tact_handle };

static inline void tact_clear(struct tact *t)
{
	for (int i = 0; i < t->n; i++)
		actor_msg_free(t->inbox[i]);
	t->n = 0;
}

static inline void master_up(void)
{
	struct master_opts o = { .db_path = E.db, .server_id = "t-master", .node_timeout_ms = E.timeout_ms,
				 .mailbox = E.mailbox ? E.mailbox : 4096, .max_value_size = MAXV,
				 .commit_linger_ms = E.linger_ms, .lease_ttl_max_ms = 3600 * 1000,
				 .floor_keep_ms = E.floor_keep_ms, .floor_max = E.floor_max };
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

static inline void master_down(void)
{
	actor_loop_stop(E.ml);
	actor_loop_join(E.ml);
	actor_loop_stop(E.dl);
	actor_loop_join(E.dl);
	actor_loop_free(E.ml);
	actor_loop_free(E.dl);
}

static inline void env_up(const char *name, uint64_t timeout_ms)
{
	snprintf(E.db, sizeof E.db, "%s/%s.db", tmpdir, name);
	E.timeout_ms = timeout_ms;
	E.tl = actor_loop_new("t-test");
	for (int i = 0; i < 4; i++)
		actor_spawn(E.tl, &tact_ops, &E.peers[i], 1024, &E.peers[i].a);
	actor_spawn(E.tl, &tact_ops, &E.client, 1024, &E.client.a);
	master_up();
}

static inline void env_down(void)
{
	master_down();
	for (int i = 0; i < 4; i++)
		tact_clear(&E.peers[i]);
	tact_clear(&E.client);
	actor_loop_free(E.tl);
	E.mailbox = 0;
	E.linger_ms = 0;
	E.sync_flags = 0;
	E.floor_keep_ms = 0;
	E.floor_max = 0;
}

/* ---- calls ---- */

struct tcall {
	int done, err;
	struct actor_msg *reply;
};

static inline int call_cb(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct tcall *c = arg;
	(void)self;
	c->reply = reply;
	c->err = err;
	c->done = 1;
	return ACTOR_KEEP;
}

/* Send m from t with role; the reply (caller frees) or NULL on timeout. */
static inline struct actor_msg *call(struct tact *t, struct actor_msg *m, int role)
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
static inline void pump(uint64_t ms)
{
	int never = 0;
	actor_loop_run_until(E.tl, &never, kvn_now_ms() + ms);
}

/* First inbox message of this type, waiting up to ms; caller frees. */
static inline struct actor_msg *take(struct tact *t, uint16_t type, uint64_t ms)
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

/* A node record as a peer sends it: use split into committed and pending
 * bytes, as of its event last_seq. */
static inline struct actor_msg *mk_node_use(uint16_t type, const char *id, uint64_t boot, uint64_t dram_total,
					    uint64_t dram_used, uint64_t dram_pending, uint64_t last_seq)
{
	struct actor_msg *m = actor_msg_new(type);
	struct proto_node n = { .boot_id = boot, .dram_total = dram_total, .dram_used = dram_used,
				.dram_pending = dram_pending, .last_seq = last_seq, .disk_total = 1 << 30 };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return m;
}

static inline struct actor_msg *mk_node(uint16_t type, const char *id, uint64_t boot, uint64_t dram_total,
					uint64_t dram_used)
{
	return mk_node_use(type, id, boot, dram_total, dram_used, 0, 0);
}

/* A node-protocol reply (taken; NULL: none came): its status (-999 none,
 * -998 an ack that does not decode), ack filled. */
static inline int reply_ack(struct actor_msg *r, struct proto_ack *ack)
{
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

/* PEER_ATTACH or HEARTBEAT: status (or -999 on no reply), ack filled. */
static inline int node_call(struct tact *t, uint16_t type, const char *id, uint64_t boot, uint64_t total,
			    uint64_t used, int role, struct proto_ack *ack)
{
	return reply_ack(call(t, mk_node(type, id, boot, total, used), role), ack);
}

static inline int attach(int p, const char *id, uint64_t boot, uint64_t total, uint64_t used, struct proto_ack *ack)
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

/* EVENTS of ev[0..n); flags: every event's (PROTO_EV_F_*; 1 is
 * PROTO_EV_F_DURABLE: a durable put's). */
static inline struct actor_msg *mk_events_d(const char *id, uint64_t boot, const struct tev *ev, int n,
					    int flags)
{
	struct actor_msg *m = actor_msg_new(WIRE_EVENTS);
	struct wire_w w;
	wire_w_init(&w);
	proto_events_begin(&w, id, boot, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		struct proto_event e = { .seq = ev[i].seq, .kind = ev[i].kind, .key = (const uint8_t *)ev[i].key,
					 .klen = (uint16_t)strlen(ev[i].key), .gen = ev[i].gen,
					 .tier = ev[i].tier, .size = ev[i].size,
					 .flags = (uint8_t)flags };
		proto_events_add(&w, &e);
	}
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("events encode");
	return m;
}

static inline struct actor_msg *mk_events(const char *id, uint64_t boot, const struct tev *ev, int n)
{
	return mk_events_d(id, boot, ev, n, 0);
}

static inline int events(int p, const char *id, uint64_t boot, const struct tev *ev, int n, struct proto_ack *ack)
{
	return reply_ack(call(&E.peers[p], mk_events(id, boot, ev, n), AUTH_ROLE_PEER), ack);
}

static inline int sync_chunk(int p, const char *id, uint64_t boot, uint64_t seq, uint32_t chunk, int last,
			     const struct tev *ev, int n, struct proto_ack *ack)
{
	struct actor_msg *m = actor_msg_new(WIRE_FULL_SYNC);
	struct proto_sync_hdr h = { .boot_id = boot, .seq = seq, .chunk = chunk, .last = (uint8_t)last,
				    .n = (uint32_t)n };
	struct wire_w w;

	snprintf(h.node_id, sizeof h.node_id, "%s", id);
	wire_w_init(&w);
	proto_sync_begin(&w, &h);
	for (int i = 0; i < n; i++) {
		struct proto_event e = { .key = (const uint8_t *)ev[i].key, .klen = (uint16_t)strlen(ev[i].key),
					 .gen = ev[i].gen, .tier = ev[i].tier, .size = ev[i].size, .flags = E.sync_flags };
		proto_sync_add(&w, &e);
	}
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("sync encode");
	return reply_ack(call(&E.peers[p], m, AUTH_ROLE_PEER), ack);
}

/* ROUTE_PUT of n keys with sizes, excluding ex[0..nex); routes into rt.
 * Returns the reply status. */
static inline int route_put(const char *const *keys, const uint64_t *sizes, int n, const char *const *ex, int nex,
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
		/* then the grants, one per route */
		for (uint32_t i = 0; i < cnt && st == 0; i++)
			if (proto_route_grants_next(&rd, &rt[i].grant) != 0)
				st = -998;
		if (st == 0 && wire_r_end(&rd) != 0)
			st = -998;
	}
	actor_msg_free(r);
	return st;
}

static inline int put1(const char *key, uint64_t size, struct proto_route *rt)
{
	int st = route_put(&key, &size, 1, NULL, 0, rt);
	return st ? st : rt->status;
}

/* ROUTE_GET of one key: the item status (or the reply's), rt filled. */
static inline int get1(const char *key, struct proto_route *rt)
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
static inline int stat_node(const char *id, uint64_t *objects, int *alive, uint64_t *node_objects)
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

/* HEARTBEAT with the use split as a peer reports it. */
static inline int heartbeat(const char *id, uint64_t boot, uint64_t total, uint64_t used, uint64_t pending,
			    uint64_t last_seq)
{
	struct proto_ack ack;
	return reply_ack(call(&E.peers[0], mk_node_use(WIRE_HEARTBEAT, id, boot, total, used, pending, last_seq),
			      AUTH_ROLE_PEER),
			 &ack);
}

/* ---- main: a private temp dir for the master.db files ---- */

static inline void clean_dir(void)
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

/* Run the cases in a fresh temp dir, removed afterwards; main's exit code. */
static inline int env_main(const struct tap_test *tests, int argc, char **argv)
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

#endif
