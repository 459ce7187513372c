/*
 * t/master: attach, routing and placement in the master, driven through the
 * fixture in t/master_env.h: ping, attach/re-attach, placement and its
 * errors (exclusions, reservations, capacity, ties), generations (also
 * across a restart), ROUTE_GET with a disconnected node, STAT, roles and
 * malformed metadata, the counters' getter, visitor and text.  Events, sync and failures are in t/master_sync.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "master_env.h"

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
	/* the snapshot asked for never came: asked for again (a node whose
	 * attach answer came too late would otherwise never send it) */
	is_int(ack.need_full_sync, 1, "the full sync asked for is asked for again until it comes");
	is_int(ack.applied_seq, 1, "applied seq kept");
	is_int(sync_chunk(0, "n1", 11, 1, 0, 1, ev, 1, &ack), 0, "the full sync arrives");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "reconnect with the same boot again");
	is_int(ack.need_full_sync, 0, "no full sync for the same boot once synced");
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
	/* an event that decodes but is invalid is refused alone (t_bad_event_alone) */
	struct tev bad[] = { { 2, PROTO_EV_ADD, "k", 0, 0, 3 } };
	r = call(&E.peers[0], mk_events("n1", 11, bad, 1), AUTH_ROLE_PEER);
	ok(r && r->status == 0, "an ADD with gen 0: refused alone, the batch is acknowledged");
	actor_msg_free(r);
	r = call(&E.client, actor_msg_new(WIRE_GET), AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPROTO, "a peer request sent to the master: KVN_EPROTO");
	actor_msg_free(r);
	env_down();
}

/* Issue 11 item 1: one invalid event used to make the master refuse the
 * whole batch (KVN_EPROTO), which the peer re-shipped for ever.  Now that
 * event alone is refused, an invalid ADD's generation is dropped at the
 * node, the others are applied and the stream goes on. */
static void t_bad_event_alone(void)
{
	struct master_stats st0, st1;
	struct proto_ack ack;
	struct proto_route rt;

	env_up("bad_event", 60000);
	attach(0, "n1", 11, 1 << 20, 0, &ack);
	master_get_stats(&st0);
	struct tev ev[] = {
		{ 1, PROTO_EV_ADD, "a", 7, 0, 3 },
		{ 2, PROTO_EV_ADD, "poison", 1ull << 63, 0, 3 }, /* no generation the master hands out */
		{ 3, PROTO_EV_ADD, "b", 8, 0, 3 },
		{ 4, PROTO_EV_ADD, "c", 9, 9, 3 }, /* no such tier */
		{ 5, PROTO_EV_ADD, "d", UINT64_MAX, 0, 3 },
		{ 6, PROTO_EV_ADD, "e", 10, 0, 3 },
	};
	is_int(events(0, "n1", 11, ev, 6, &ack), 0, "a batch with three invalid events is acknowledged");
	is_int(ack.applied_seq, 6, "up to its last seq");
	is_int(ack.need_full_sync, 0, "no re-attach or full sync asked");
	is_int(get1("a", &rt), 0, "the valid events before the bad ones are applied");
	is_int(get1("b", &rt), 0, "and between them");
	is_int(get1("e", &rt), 0, "and after them");
	ok(rt.gen == 10, "with their generation");
	is_int(get1("poison", &rt), KVN_ENOTFOUND, "gen 2^63: not indexed");
	is_int(get1("c", &rt), KVN_ENOTFOUND, "a bad tier: not indexed");
	is_int(get1("d", &rt), KVN_ENOTFOUND, "gen 2^64-1: not indexed");
	master_get_stats(&st1);
	ok(st1.events_refused - st0.events_refused == 3, "three events counted as refused (%llu)",
	   (unsigned long long)(st1.events_refused - st0.events_refused));
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 2000);
	int named = 0;
	if (d) {
		struct wire_r r;
		struct proto_item it;
		uint8_t fl;
		uint32_t n;
		if (proto_items_open(&r, d->meta, d->meta_len, &fl, &n) == 0)
			for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++)
				named += it.klen == 1 && it.key[0] == 'c' && it.gen == 9;
		actor_msg_free(d);
	}
	is_int(named, 1, "the node is told to drop the refused generation it holds (DROP_GEN c gen 9)");
	struct tev more[] = { { 7, PROTO_EV_ADD, "f", 11, 0, 3 } };
	is_int(events(0, "n1", 11, more, 1, &ack), 0, "the stream continues");
	is_int(ack.applied_seq, 7, "next seq applied");
	is_int(get1("f", &rt), 0, "and routable");
	/* sizes no node stores: before the bound, two of them overflowed the
	 * master's signed accounting of the node's use (fuzz_master, UBSan) */
	struct tev big[] = {
		{ 8, PROTO_EV_ADD, "huge1", 12, 0, 1ull << 62 },
		{ 9, PROTO_EV_ADD, "huge2", 13, 0, 1ull << 62 },
		{ 10, PROTO_EV_ADD, "max", 14, 0, KVN_VALUE_SIZE_MAX },
	};
	is_int(events(0, "n1", 11, big, 3, &ack), 0, "events with sizes of 2^62 and the largest value");
	is_int(ack.applied_seq, 10, "acknowledged");
	is_int(get1("huge1", &rt), KVN_ENOTFOUND, "a size over KVN_VALUE_SIZE_MAX: not indexed");
	is_int(get1("huge2", &rt), KVN_ENOTFOUND, "nor the second");
	is_int(get1("max", &rt), 0, "a value of exactly KVN_VALUE_SIZE_MAX is");
	is_int(put1("after-big", 100, &rt), KVN_EFULL,
	       "a 1 MiB node indexed with 16 GiB has no room (use saturates, never wraps to free)");
	env_down();
}

/* A put granted before a remove may commit on a slow or stopped peer and
 * send its ADD after the remove: with no entry left, the old generation
 * would come back (t/linearize saw the removed value read again).  The
 * master remembers recent removals: such an ADD is stale, a newer one is
 * indexed. */
static void t_late_add_after_remove(void)
{
	struct proto_ack ack;
	struct proto_route rt;

	env_up("late_add", 60000);
	attach(0, "n1", 11, 1 << 20, 0, &ack);
	struct tev ev[] = {
		{ 1, PROTO_EV_ADD, "k", 30, 0, 3 },
		{ 2, PROTO_EV_REMOVE, "k", 30, 0, 0 },
		{ 3, PROTO_EV_ADD, "k", 25, 0, 3 }, /* granted before gen 30, committed after the remove */
	};
	is_int(events(0, "n1", 11, ev, 3, &ack), 0, "ADD gen 30, REMOVE gen 30, then a late ADD of gen 25");
	is_int(ack.applied_seq, 3, "all acknowledged");
	is_int(get1("k", &rt), KVN_ENOTFOUND, "the removed key stays removed: gen 25 is not indexed");
	struct tev more[] = { { 4, PROTO_EV_ADD, "k", 31, 0, 3 } };
	is_int(events(0, "n1", 11, more, 1, &ack), 0, "a newer put after the remove");
	is_int(get1("k", &rt), 0, "is indexed");
	ok(rt.gen == 31, "with its generation (%llu)", (unsigned long long)rt.gen);
	env_down();
}

/* ROUTE_PUT answers carry a grant the peer can check: it verifies under
 * the attachment's key (an in-process peer: the process secret and its
 * boot id) for exactly that node, key, gen and size, and expires. */
static void t_grants(void)
{
	struct proto_route rt[2];
	struct proto_ack ack;
	struct auth_grant_key *g = NULL, *other = NULL;
	uint8_t mat[AUTH_MAC_LEN];
	const char *keys[] = { "gk", "gk2" };
	uint64_t sizes[] = { 10, 20 };

	env_up("grants", 60000);
	attach(0, "A", 77, 1 << 20, 0, &ack);
	is_int(route_put(keys, sizes, 2, NULL, 0, rt), 0, "ROUTE_PUT of two keys");
	uint64_t now = kvn_wall_ms();
	ok(rt[0].grant.expiry_ms > now && rt[0].grant.expiry_ms <= now + PROTO_GRANT_TTL_MS + 1000,
	   "the grant expires within its TTL");
	auth_grant_local_material(77, mat);
	auth_grant_key_new(mat, &g);
	auth_grant_local_material(78, mat);
	auth_grant_key_new(mat, &other);
	is_int(auth_grant_check(g, "A", "gk", 2, rt[0].gen, 10, rt[0].grant.expiry_ms, rt[0].grant.mac), 0,
	       "it verifies for that node, key, gen and size");
	is_int(auth_grant_check(g, "A", "gk2", 3, rt[1].gen, 20, rt[1].grant.expiry_ms, rt[1].grant.mac), 0,
	       "each item has its own");
	is_int(auth_grant_check(g, "A", "gk", 2, rt[0].gen + 1, 10, rt[0].grant.expiry_ms, rt[0].grant.mac),
	       KVN_EAUTH, "not for another gen");
	is_int(auth_grant_check(g, "A", "gk", 2, rt[0].gen, 11, rt[0].grant.expiry_ms, rt[0].grant.mac), KVN_EAUTH,
	       "nor another size");
	is_int(auth_grant_check(g, "B", "gk", 2, rt[0].gen, 10, rt[0].grant.expiry_ms, rt[0].grant.mac), KVN_EAUTH,
	       "nor another node");
	is_int(auth_grant_check(g, "A", "gk", 2, rt[0].gen, 10, rt[0].grant.expiry_ms + 1, rt[0].grant.mac),
	       KVN_EAUTH, "nor a later expiry");
	is_int(auth_grant_check(other, "A", "gk", 2, rt[0].gen, 10, rt[0].grant.expiry_ms, rt[0].grant.mac),
	       KVN_EAUTH, "nor under another attachment's key");
	auth_grant_key_free(g);
	auth_grant_key_free(other);
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

/* The counters come from one list (MASTER_STATS_FIELDS in master.h): the
 * getter, the visitor and the text all follow it, and a message type
 * outside the master's dispatch table is refused and counted. */
struct names {
	int n;
	int ordered; /* the visitor follows the list's order */
};

#define T_NAME_(name, what) #name,
static const char *const stat_names[] = { MASTER_STATS_FIELDS(T_NAME_) };
#undef T_NAME_

static void visit_name(void *arg, const char *name, const char *what, uint64_t value)
{
	struct names *v = arg;
	(void)value;
	v->ordered &= v->n < (int)(sizeof stat_names / sizeof stat_names[0]) && strcmp(name, stat_names[v->n]) == 0 &&
		      what && *what;
	v->n++;
}

static void t_counters(void)
{
	struct master_stats st0, st1;
	struct proto_route rt;
	struct names v = { 0, 1 };
	char text[4096], small[32], want[64];

	env_up("counters", 60000);
	master_get_stats(&st0);
	is_int(put1("k", 10, &rt), KVN_ENOPEER, "ROUTE_PUT with no peer: KVN_ENOPEER");
	struct actor_msg *r = call(&E.client, actor_msg_new(WIRE_DROP_GEN), AUTH_ROLE_CLIENT);
	ok(r && r->status == KVN_EPROTO, "a type outside the dispatch table: KVN_EPROTO");
	actor_msg_free(r);
	master_get_stats(&st1);
	is_int(st1.route_puts - st0.route_puts, 1, "route_puts counted");
	is_int(st1.proto_errors - st0.proto_errors, 1, "the unknown type counted as proto_errors");
	master_stats_each(&st1, visit_name, &v);
	is_int(v.n, (int)(sizeof stat_names / sizeof stat_names[0]), "the visitor gives every counter");
	ok(v.ordered, "in list order, each with its description");
	is_int(master_stats_format(&st1, text, sizeof text), 0, "the text fits 4 KiB");
	snprintf(want, sizeof want, "route_puts %llu\n", (unsigned long long)st1.route_puts);
	ok(strncmp(text, want, strlen(want)) == 0, "the first line is route_puts and its value");
	snprintf(want, sizeof want, "\nproto_errors %llu\n", (unsigned long long)st1.proto_errors);
	ok(strstr(text, want) != NULL, "a proto_errors line");
	int lines = 0;
	for (const char *p = text; *p; p++)
		lines += *p == '\n';
	is_int(lines, v.n, "one line per counter");
	is_int(master_stats_format(&st1, small, sizeof small), KVN_ERANGE, "a small buffer: KVN_ERANGE");
	ok(strlen(small) < sizeof small && (!*small || small[strlen(small) - 1] == '\n'),
	   "holding whole lines only");
	env_down();
}

static const struct tap_test tests[] = {
	{ "ping", t_ping },
	{ "attach", t_attach },
	{ "route_put", t_route_put },
	{ "capacity", t_capacity },
	{ "ties_rotate", t_ties_rotate },
	{ "generations", t_generations },
	{ "route_get", t_route_get },
	{ "roles_and_malformed", t_roles_and_malformed },
	{ "stat", t_stat },
	{ "bad_event_alone", t_bad_event_alone },
	{ "late_add_after_remove", t_late_add_after_remove },
	{ "grants", t_grants },
	{ "counters", t_counters },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return env_main(tests, argc, argv);
}
