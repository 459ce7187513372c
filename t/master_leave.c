/*
 * t/master_leave: the master's side of a clean stop (PEER_LEAVE: the node
 * is gone at once, as after node_timeout, and only its own attachment may
 * say so) and placement with evictable DRAM (proto_node.dram_evictable:
 * room once no node has free DRAM, then the most free disk; 0 keeps the old
 * placement).  Driven through the fixture in t/master_env.h.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "master_env.h"

/* A node record with every capacity field a placement test needs. */
static struct actor_msg *mk_cap(uint16_t type, const char *id, uint64_t boot, uint64_t total, uint64_t used,
				uint64_t evictable, uint64_t disk_total, uint64_t disk_used, uint64_t last_seq)
{
	struct actor_msg *m = actor_msg_new(type);
	struct proto_node n = { .boot_id = boot, .dram_total = total, .dram_used = used, .dram_evictable = evictable,
				.disk_total = disk_total, .disk_used = disk_used, .last_seq = last_seq };
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return m;
}

static int cap_call(int p, uint16_t type, const char *id, uint64_t boot, uint64_t total, uint64_t used,
		    uint64_t evictable, uint64_t disk_total, uint64_t disk_used)
{
	struct proto_ack ack;
	return reply_ack(call(&E.peers[p], mk_cap(type, id, boot, total, used, evictable, disk_total, disk_used, 0),
			      AUTH_ROLE_PEER),
			 &ack);
}

/* PEER_LEAVE from tact t with role: the reply's status (-999: none). */
static int leave(struct tact *t, int role, const char *id, uint64_t boot, uint64_t last_seq)
{
	struct proto_ack ack;
	return reply_ack(call(t, mk_cap(WIRE_PEER_LEAVE, id, boot, 1000, 0, 0, 0, 0, last_seq), role), &ack);
}

/* Rows of master.db objects of node in state (-1: cannot read). */
static int db_count(const char *node, const char *state)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_open_v2(E.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE node_id = ?1 AND state = ?2", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int wait_db_count(const char *node, const char *state, int want, uint64_t ms)
{
	uint64_t end = kvn_now_ms() + ms;
	int n;
	while ((n = db_count(node, state)) != want && kvn_now_ms() < end)
		pump(20);
	return n;
}

/* ---- PEER_LEAVE ---- */

static void t_leave(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	struct master_stats st0, st1;
	uint64_t objs = 0, nobj = 0;
	int alive = -1;
	struct tev ev[] = { { 1, PROTO_EV_ADD, "a", 5, 0, 10 }, { 2, PROTO_EV_ADD, "b", 6, 1, 20 } };

	env_up("leave", 60000); /* node_timeout 60 s: only the leave can drop it */
	master_get_stats(&st0);
	is_int(attach(0, "A", 11, 1000, 0, &ack), 0, "A attaches");
	is_int(events(0, "A", 11, ev, 2, &ack), 0, "A's keys a (dram) and b (disk) are indexed");
	is_int(get1("a", &rt), 0, "a is routed to A");
	is_int(wait_db_count("A", "live", 2, 5000), 2, "both live in master.db");

	/* refusals change nothing */
	is_int(leave(&E.client, AUTH_ROLE_CLIENT, "A", 11, 2), KVN_EPERM, "a client's PEER_LEAVE: KVN_EPERM");
	is_int(leave(&E.peers[1], AUTH_ROLE_PEER, "A", 11, 2), KVN_EPERM,
	       "a PEER_LEAVE for A from another peer's connection: KVN_EPERM");
	is_int(leave(&E.peers[0], AUTH_ROLE_PEER, "A", 12, 2), KVN_EPERM,
	       "from A's connection with another boot id: KVN_EPERM");
	is_int(leave(&E.peers[0], AUTH_ROLE_PEER, "nobody", 1, 0), KVN_ESTATE, "for an unknown node: KVN_ESTATE");
	struct actor_msg *r = call(&E.peers[0], actor_msg_new(WIRE_PEER_LEAVE), AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "without metadata: KVN_EPROTO");
	actor_msg_free(r);
	struct actor_msg *bad = mk_cap(WIRE_PEER_LEAVE, "A", 11, 1000, 0, 1001, 0, 0, 2);
	r = call(&E.peers[0], bad, AUTH_ROLE_PEER);
	ok(r && r->status == KVN_EPROTO, "evictable above dram_total: KVN_EPROTO");
	actor_msg_free(r);
	is_int(get1("a", &rt), 0, "after the refusals a is still routed to A");
	is_str(rt.node_id, "A", "on A");

	/* the leave itself */
	is_int(leave(&E.peers[0], AUTH_ROLE_PEER, "A", 11, 2), 0, "A's own PEER_LEAVE is acknowledged");
	is_int(get1("a", &rt), KVN_ENOTFOUND, "a: KVN_ENOTFOUND at once (not KVN_EPEERDOWN until the timeout)");
	is_int(get1("b", &rt), KVN_ENOTFOUND, "b (its disk tier) too, until A comes back");
	is_int(stat_node("A", &objs, &alive, &nobj), 0, "STAT still lists A");
	is_int(alive, 0, "not alive");
	is_int(objs, 0, "no object left in the index");
	is_int(wait_db_count("A", "lost", 2, 5000), 2, "its rows are marked lost in master.db");
	master_get_stats(&st1);
	is_int(st1.nodes_left - st0.nodes_left, 1, "nodes_left counted");
	is_int(st1.nodes_dead - st0.nodes_dead, 0, "not as a timeout death");
	is_int(leave(&E.peers[0], AUTH_ROLE_PEER, "A", 11, 2), KVN_ESTATE, "a second PEER_LEAVE: KVN_ESTATE");
	is_int(node_call(&E.peers[0], WIRE_HEARTBEAT, "A", 11, 1000, 0, AUTH_ROLE_PEER, &ack), 0,
	       "a late heartbeat of the gone process");
	is_int(ack.need_full_sync, 1, "is told to attach again (which its peer no longer does)");
	is_int(get1("a", &rt), KVN_ENOTFOUND, "and routes nothing to it");

	/* its restart: attach, full sync, the disk tier's values come back */
	is_int(attach(0, "A", 21, 1000, 0, &ack), 0, "A restarted attaches");
	is_int(ack.need_full_sync, 1, "with a full sync, as after a death");
	struct tev snap[] = { { 0, 0, "b", 6, 1, 20 } };
	is_int(sync_chunk(0, "A", 21, 0, 0, 1, snap, 1, &ack), 0, "its snapshot holds b (from its disk)");
	is_int(get1("b", &rt), 0, "b is routed again");
	is_int(rt.tier, 1, "from the disk tier");
	is_int(get1("a", &rt), KVN_ENOTFOUND, "a (DRAM only) stays gone");
	env_down();
}

/* ---- placement with evictable DRAM ---- */

/* Where one put of size goes: its node id in where ("" when refused);
 * the item status. */
static int place(uint64_t size, char where[65])
{
	struct proto_route rt[1];
	int st = put1("p", size, rt);
	snprintf(where, 65, "%s", st == 0 ? rt[0].node_id : "");
	return st;
}

static void t_place_evictable(void)
{
	char where[65];

	env_up("place_evict", 60000);
	/* both full; A can evict 600 and has 1000 of disk free, B can evict
	 * 300 and has 10000 free */
	is_int(cap_call(0, WIRE_PEER_ATTACH, "A", 1, 1000, 1000, 600, 10000, 9000), 0, "A: full, 600 evictable");
	is_int(cap_call(1, WIRE_PEER_ATTACH, "B", 2, 1000, 1000, 300, 10000, 0), 0, "B: full, 300 evictable");
	is_int(place(100, where), 0, "a 100-byte put is placed though DRAM is full everywhere");
	is_str(where, "B", "both can evict for it: the most free disk wins");
	is_int(place(500, where), 0, "a 500-byte put");
	is_str(where, "A", "only A's evictable bytes cover it");
	is_int(place(250, where), KVN_EFULL, "250: neither has that much left to evict (A 100, B 200): KVN_EFULL");
	is_int(place(150, where), 0, "150");
	is_str(where, "B", "fits B's remaining 200");
	is_int(place(2000, where), KVN_ETOOBIG, "bigger than any node's DRAM: KVN_ETOOBIG, not KVN_EFULL");

	/* free DRAM anywhere comes first, whatever the disks */
	is_int(cap_call(2, WIRE_PEER_ATTACH, "C", 3, 1000, 900, 0, 0, 0), 0, "C: 100 free, no disk");
	is_int(place(50, where), 0, "50");
	is_str(where, "C", "free DRAM first: C, though A and B could evict");

	/* the evictable bytes are a report: a heartbeat with 0 takes them away */
	is_int(cap_call(0, WIRE_HEARTBEAT, "A", 1, 1000, 1000, 0, 10000, 9000), 0, "A reports 0 evictable");
	is_int(cap_call(1, WIRE_HEARTBEAT, "B", 2, 1000, 1000, 0, 10000, 0), 0, "B reports 0 evictable");
	is_int(cap_call(2, WIRE_HEARTBEAT, "C", 3, 1000, 1000, 0, 0, 0), 0, "C full");
	is_int(place(1, where), KVN_EFULL, "nothing free, nothing evictable: KVN_EFULL");
	is_int(cap_call(1, WIRE_HEARTBEAT, "B", 2, 1000, 1000, 1001, 10000, 0), KVN_EPROTO,
	       "a heartbeat with evictable above dram_total: KVN_EPROTO");
	is_int(place(1, where), KVN_EFULL, "and it changed nothing");
	env_down();
}

/* evictable 0 everywhere: exactly the placement before it existed */
static void t_place_evictable_zero(void)
{
	char where[65];

	env_up("place_zero", 60000);
	is_int(cap_call(0, WIRE_PEER_ATTACH, "A", 1, 1000, 800, 0, 10000, 0), 0, "A: 200 free, big disk");
	is_int(cap_call(1, WIRE_PEER_ATTACH, "B", 2, 1000, 100, 0, 0, 0), 0, "B: 900 free, no disk");
	is_int(place(10, where), 0, "placed");
	is_str(where, "B", "the most free DRAM, disks ignored");
	is_int(cap_call(1, WIRE_HEARTBEAT, "B", 2, 1000, 1000, 0, 0, 0), 0, "B fills up");
	is_int(place(150, where), 0, "150");
	is_str(where, "A", "A's 200 free");
	is_int(place(100, where), KVN_EFULL, "100 more fit nowhere: KVN_EFULL (the disk does not count)");
	is_int(place(40, where), 0, "40 still fit A");
	is_int(place(2000, where), KVN_ETOOBIG, "bigger than any node: KVN_ETOOBIG");
	env_down();
}

static const struct tap_test tests[] = {
	{ "leave", t_leave },
	{ "place_evictable", t_place_evictable },
	{ "place_evictable_zero", t_place_evictable_zero },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return env_main(tests, argc, argv);
}
