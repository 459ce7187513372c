/*
 * t/master_sync: how the master keeps its index and master.db in step with
 * the peers, driven through the fixture in t/master_env.h: events (apply,
 * duplicate, gap, stale, remove) with DURABLE after the commit (checked in
 * master.db), supersede with DROP_GEN, chunked full sync, the node timeout,
 * the restart flow (re-attach + full sync) and a master.db write failure.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "master_env.h"

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
	/* an in-process peer takes DURABLE only from its master's id */
	ok(d && d->src == E.mid, "from the master's actor id");
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
	ok(d && d->src == E.mid, "from the master's actor id");
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

/* A node declared dead misses the supersede of its keys (no DROP_GEN: the
 * index no longer names it).  Once the newer generation is removed, or
 * lost with its node, the dead node's full sync must not bring the old one
 * back; what nothing superseded comes back as before. */
static void t_forgotten(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	char key[64];
	uint64_t gen = 0;
	int st = 0;

	env_up("forgotten", 300);
	attach(0, "n1", 11, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "k", 100, 0, 10 },
			   { 2, PROTO_EV_ADD, "j", 110, 0, 10 },
			   { 3, PROTO_EV_ADD, "m", 120, 0, 10 } };
	is_int(events(0, "n1", 11, a, 3, &ack), 0, "n1 holds k, j and m");
	uint64_t end = kvn_now_ms() + 5000;
	while ((st = get1("k", &rt)) == 0 && kvn_now_ms() < end)
		pump(20);
	is_int(st, KVN_ENOTFOUND, "n1 falls silent: declared dead, its keys leave routing");

	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev b[] = { { 1, PROTO_EV_ADD, "k", 200, 0, 10 },
			   { 2, PROTO_EV_REMOVE, "k", 200, 0, 0 },
			   { 3, PROTO_EV_ADD, "j", 210, 0, 10 } };
	is_int(events(1, "n2", 22, b, 3, &ack), 0, "n2 puts k (newer), removes it, and puts j (newer)");
	is_int(get1("k", &rt), KVN_ENOTFOUND, "k is removed");
	is_int(attach(1, "n2", 23, 1000, 0, &ack), 0, "n2 restarts (a new boot): j's newer generation is lost");
	is_int(get1("j", &rt), KVN_ENOTFOUND, "j is gone");

	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 comes back");
	struct tev snap[] = { { 0, 0, "k", 100, 0, 10 }, { 0, 0, "j", 110, 0, 10 }, { 0, 0, "m", 120, 0, 10 } };
	is_int(sync_chunk(0, "n1", 11, 3, 0, 1, snap, 3, &ack), 0, "and full-syncs its three keys");
	is_int(get1("k", &rt), KVN_ENOTFOUND, "k stays removed: its superseded generation is not taken back");
	is_int(get1("j", &rt), KVN_ENOTFOUND, "j stays lost: its superseded generation is not taken back");
	is_int(get1("m", &rt), 0, "m, which nothing superseded, is routed again");
	is_int(rt.gen, 120, "at its generation");
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	is_int(d ? drop_items(d, key, sizeof key, &gen) : -1, 2, "n1 is told to drop both old generations");
	actor_msg_free(d);
	env_down();
}

/* Wait for a DURABLE of peer p up to seq (1: it came). */
static int durable_seen(int p, uint64_t seq)
{
	uint64_t end = kvn_now_ms() + 5000, got = 0;
	while (got < seq && kvn_now_ms() < end) {
		struct actor_msg *d = take(&E.peers[p], WIRE_DURABLE, 200);
		uint64_t s = 0;
		if (d && proto_durable_dec(d, &s) == 0 && s > got)
			got = s;
		actor_msg_free(d);
	}
	return got >= seq;
}

/* A HEARTBEAT of node id on peer p reporting keys committed keys. */
static int heartbeat_keys(int p, const char *id, uint64_t boot, uint64_t last_seq, uint64_t keys)
{
	struct actor_msg *m = actor_msg_new(WIRE_HEARTBEAT);
	struct proto_node n = { .boot_id = boot, .dram_total = 1000, .last_seq = last_seq, .keys = keys,
				.disk_total = 1 << 30 };
	struct proto_ack ack;
	snprintf(n.node_id, sizeof n.node_id, "%s", id);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:%u", 7000 + (unsigned)(boot % 1000));
	if (proto_node_enc(m, &n) != 0)
		kvn_fatal("proto_node_enc");
	return reply_ack(call(&E.peers[p], m, AUTH_ROLE_PEER), &ack);
}

static long long floors_rows(void)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	long long n = -1;
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(c, 2000) == SQLITE_OK &&
	    sqlite3_prepare_v2(c, "SELECT count(*) FROM floors", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(c);
	return n;
}

/* DROP_GEN is one-way and the master keeps the unconfirmed ones in memory:
 * a node that missed the drop of a superseded generation re-syncs it after
 * a master restart.  Once the newer generation's remove is committed, no
 * object row says the old one is old: master.db's floor does. */
static void t_restart_floor(void)
{
	struct proto_ack ack;
	struct proto_route rt;
	char key[64];
	uint64_t gen = 0;

	env_up("restart_floor", 1500);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev a[] = { { 1, PROTO_EV_ADD, "k", 100, 0, 10 }, { 2, PROTO_EV_ADD, "x", 110, 0, 10 } };
	events(0, "n1", 11, a, 2, &ack);
	ok(durable_seen(0, 2), "n1's k and x committed");
	struct tev b[] = { { 1, PROTO_EV_ADD, "k", 200, 0, 10 }, { 2, PROTO_EV_REMOVE, "k", 200, 0, 0 } };
	events(1, "n2", 22, b, 2, &ack);
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	ok(d != NULL, "n1 is told to drop k gen 100 (and misses it: the notice is not applied)");
	actor_msg_free(d);
	ok(durable_seen(1, 2), "n2's put and remove of k committed");
	is_int(get1("k", &rt), KVN_ENOTFOUND, "k is removed");

	master_down();
	E.floor_keep_ms = 300;
	master_up();
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 attaches to the new master");
	is_int(attach(1, "n2", 22, 1000, 0, &ack), 0, "n2 too");
	is_int(sync_chunk(1, "n2", 22, 2, 0, 1, NULL, 0, &ack), 0, "n2 full-syncs: it holds nothing");
	struct tev snap[] = { { 0, 0, "k", 100, 0, 10 }, { 0, 0, "x", 110, 0, 10 } };
	is_int(sync_chunk(0, "n1", 11, 2, 0, 1, snap, 2, &ack), 0, "n1 full-syncs k's old generation and x");
	is_int(get1("k", &rt), KVN_ENOTFOUND, "k stays removed: the generation n1 missed the drop of is not taken back");
	is_int(get1("x", &rt), 0, "x is routed");
	is_int(rt.gen, 110, "at its generation");
	d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	ok(d && drop_items(d, key, sizeof key, &gen) == 1 && strcmp(key, "k") == 0 && gen == 100,
	   "n1 is told again to drop k gen 100");
	actor_msg_free(d);

	/* once every node's keys match the index (the drop applied), no node
	 * holds a generation the master does not know: the floors go, once
	 * older than the keep window (10 min; 300 ms here, set before the
	 * restart above) */
	ok(floors_rows() > 0, "master.db holds k's floor meanwhile");
	uint64_t end = kvn_now_ms() + 5000;
	while (floors_rows() != 0 && kvn_now_ms() < end) {
		heartbeat_keys(0, "n1", 11, 2, 1);
		heartbeat_keys(1, "n2", 22, 2, 0);
		pump(50);
	}
	is_int(floors_rows(), 0, "and empties them once both nodes' keys match the index");
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
	/* Until every node known in master.db has re-synced or been declared
	 * dead, a key not written since the start may have a newer generation
	 * on a node not heard from: its route answers "not ready" (KVN_EBUSY,
	 * which a client asks again after a pause), never a location that may
	 * be stale and never "not found". */
	is_int(get1("r1", &rt), KVN_EBUSY, "after a restart: not ready while no node re-synced");
	is_int(get1("nowhere", &rt), KVN_EBUSY, "not even for a key the index does not hold");
	stat_node("n1", &objs, &alive, &nobj);
	ok(alive == 0 && nobj == 1, "STAT lists the loaded node (not alive, 1 object)");
	is_int(objs, 2, "both committed objects loaded");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 attaches to the new master");
	is_int(ack.need_full_sync, 1, "and must full-sync");
	ok(ack.epoch > epoch1, "new epoch (%u > %u)", ack.epoch, epoch1);
	is_int(get1("r1", &rt), KVN_EBUSY, "attached, not re-synced: still not ready");
	struct tev snap[] = { { 0, 0, "r1", 7, 0, 3 } };
	is_int(sync_chunk(0, "n1", 11, 1, 0, 1, snap, 1, &ack), 0, "full sync");
	is_int(get1("r1", &rt), KVN_EBUSY, "n1 re-synced but n2 not heard from: r1 may be newer there");
	d1 = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d1 && proto_durable_dec(d1, &dseq) == 0 && dseq == 1, "DURABLE for the sync");
	actor_msg_free(d1);
	/* a key written in this life is newer than anything n2 may hold */
	is_int(put1("fresh", 3, &rt), 0, "a put is routed meanwhile");
	struct tev f[] = { { 2, PROTO_EV_ADD, "fresh", rt.gen, 0, 3 } };
	is_int(events(0, "n1", 11, f, 1, &ack), 0, "and committed on n1");
	is_int(get1("fresh", &rt), 0, "its route is answered at once");
	is_str(rt.node_id, "n1", "to n1");

	/* n2 never comes back: dead after the timeout, its row lost; then
	 * every key is routed again */
	uint64_t end = kvn_now_ms() + 6000;
	while ((st = get1("r2", &rt)) == KVN_EBUSY && kvn_now_ms() < end) {
		node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack);
		pump(50);
	}
	is_int(st, KVN_ENOTFOUND, "a loaded node that never attaches is declared dead: its keys are gone");
	is_int(get1("r1", &rt), 0, "and the synced node's keys are routed again");
	is_str(rt.node_id, "n1", "to n1");
	end = kvn_now_ms() + 5000;
	while (strcmp(db_state("r2"), "lost") != 0 && kvn_now_ms() < end)
		pump(20);
	is_str(db_state("r2"), "lost", "and its row is lost");
	is_str(db_state("r1"), "live", "the synced row is live");
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
	/* dbw waits out its busy timeout (1 s), then fails the group */
	uint64_t end = kvn_now_ms() + 15000;
	do {
		pump(50);
		master_get_stats(&st1);
	} while (st1.db_errors == st0.db_errors && kvn_now_ms() < end);
	ok(st1.db_errors > st0.db_errors, "the failed writes reach the master");
	/* the durable puts of the failed batches are failed, with the reason */
	uint64_t failed = 0;
	char why[PROTO_REASON_MAX] = "";
	d = take(&E.peers[0], WIRE_DURABLE, 3000);
	int dec = d ? proto_durable_fail_dec(d, &dseq, &failed, why) : KVN_ETIMEDOUT;
	ok(dec == 0 && dseq == 1 && failed >= 2 && strstr(why, "locked") != NULL,
	   "DURABLE fails the batches' durable puts: up to seq %llu (%s)", (unsigned long long)failed, why);
	actor_msg_free(d);
	/* degraded: the node is not asked to full-sync (its sync's write would
	 * fail too) until a probe commits */
	node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack);
	is_int(ack.need_full_sync, 0, "no full sync asked while master.db is locked");
	sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(c);
	/* the refused batch is shipped again once the writer has answered */
	end = kvn_now_ms() + 10000;
	do {
		struct tev ex[] = { { seq, PROTO_EV_ADD, "dx", seq, 0, 1 } };
		st = events(0, "n1", 11, ex, 1, &ack);
		if (st == KVN_EBUSY)
			pump(20);
	} while (st == KVN_EBUSY && kvn_now_ms() < end);
	is_int(st, 0, "the re-shipped batch is accepted");
	/* the probe (backoff up to 2 s) finds master.db writable again */
	end = kvn_now_ms() + 10000;
	do {
		pump(50);
		node_call(&E.peers[0], WIRE_HEARTBEAT, "n1", 11, 1000, 0, AUTH_ROLE_PEER, &ack);
	} while (!ack.need_full_sync && kvn_now_ms() < end);
	ok(ack.need_full_sync == 1 && ack.durable_seq == 1, "once recovered the node must full-sync; durable stays at 1");
	while ((d = take(&E.peers[0], WIRE_DURABLE, 100)))
		actor_msg_free(d); /* the other batches' failure notices */
	attach(0, "n1", 11, 1000, 0, &ack);
	is_int(ack.need_full_sync, 1, "a re-attach with the same boot gets need_full_sync");
	struct tev snap[] = { { 0, 0, "d1", 7, 0, 3 }, { 0, 0, "d2", 8, 0, 3 }, { 0, 0, "dx", seq, 0, 1 } };
	sync_chunk(0, "n1", 11, seq, 0, 1, snap, 3, &ack);
	for (d = take(&E.peers[0], WIRE_DURABLE, 5000); d; d = take(&E.peers[0], WIRE_DURABLE, 5000)) {
		proto_durable_fail_dec(d, &dseq, &failed, why);
		actor_msg_free(d);
		if (dseq == seq)
			break;
	}
	ok(dseq == seq && strcmp(db_state("d2"), "live") == 0, "the full sync repairs master.db (durable %llu)",
	   (unsigned long long)dseq);
	env_down();
}

/* DURABLE notices until one reaches seq (or ms pass): the last seq seen. */
static uint64_t durable_until(uint64_t seq, uint64_t ms)
{
	uint64_t end = kvn_now_ms() + ms, dseq = 0;
	struct actor_msg *d;

	while (dseq < seq && kvn_now_ms() < end && (d = take(&E.peers[0], WIRE_DURABLE, end - kvn_now_ms()))) {
		uint64_t v = 0;
		if (proto_durable_dec(d, &v) == 0 && v > dseq)
			dseq = v;
		actor_msg_free(d);
	}
	return dseq;
}

/* master.commit_linger: a group only non-durable requests wait on stays
 * open for later ones; a durable put's events commit it at once, lingering
 * requests included. */
static void t_linger(void)
{
	struct proto_ack ack;
	struct actor_msg *d;
	uint64_t t0, took;

	E.linger_ms = 1000;
	env_up("linger", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	/* the attach's node row lingers too: let that group commit first */
	while ((d = take(&E.peers[0], WIRE_DURABLE, 1500)))
		actor_msg_free(d);

	struct tev e1[] = { { 1, PROTO_EV_ADD, "k1", 101, 0, 10 } };
	is_int(events(0, "n1", 11, e1, 1, &ack), 0, "a non-durable ADD is applied (acked at once)");
	d = take(&E.peers[0], WIRE_DURABLE, 300);
	ok(!d, "its group lingers: no DURABLE within 300 ms");
	actor_msg_free(d);
	is_str(db_state("k1"), "", "and k1 is not in master.db yet");

	struct tev e2[] = { { 2, PROTO_EV_ADD, "k2", 102, 0, 10 } };
	t0 = kvn_now_ms();
	is_int(reply_ack(call(&E.peers[0], mk_events_d("n1", 11, e2, 1, 1), AUTH_ROLE_PEER), &ack), 0,
	       "a durable put's ADD is applied");
	is_int(durable_until(2, 5000), 2, "DURABLE reaches seq 2");
	took = kvn_now_ms() - t0;
	ok(took < 400, "at once, not after the linger (%llu ms)", (unsigned long long)took);
	ok(!strcmp(db_state("k1"), "live") && !strcmp(db_state("k2"), "live"),
	   "the lingering k1 was committed with k2");

	struct tev e3[] = { { 3, PROTO_EV_ADD, "k3", 103, 0, 10 } };
	t0 = kvn_now_ms();
	is_int(events(0, "n1", 11, e3, 1, &ack), 0, "another non-durable ADD");
	is_int(durable_until(3, 5000), 3, "it commits after the linger");
	took = kvn_now_ms() - t0;
	ok(took >= 800 && took < 4000, "about 1000 ms later (%llu ms)", (unsigned long long)took);
	env_down();
}

static long long db_rows(const char *key)
{
	sqlite3 *c;
	sqlite3_stmt *s = NULL;
	long long n = -1;
	if (sqlite3_open_v2(E.db, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return -1;
	}
	if (sqlite3_prepare_v2(c, "select count(*) from objects where key = ?", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_bind_blob(s, 1, key, (int)strlen(key), SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(c);
	return n;
}

/* Plain puts' operations are held by the master for the linger and reach
 * the writer as one request; a key that moves to another node within the
 * linger ends right in master.db. */
static void t_hold(void)
{
	struct proto_ack ack;
	struct master_stats s0, s1;
	struct actor_msg *d;
	char node[80], st[16];
	uint64_t gen = 0;

	E.linger_ms = 500;
	env_up("hold", 60000);
	attach(0, "n1", 11, 1000, 0, &ack);
	attach(1, "n2", 12, 1000, 0, &ack);
	while ((d = take(&E.peers[0], WIRE_DURABLE, 1000)))
		actor_msg_free(d);
	master_get_stats(&s0);
	int bad = 0;
	for (int i = 1; i <= 5; i++) {
		char key[8];
		snprintf(key, sizeof key, "h%d", i);
		struct tev e[] = { { (uint64_t)i, PROTO_EV_ADD, key, 300 + (uint64_t)i, 0, 10 } };
		if (events(0, "n1", 11, e, 1, &ack) != 0 || ack.applied_seq != (uint64_t)i)
			bad++;
	}
	is_int(bad, 0, "five plain ADDs, one EVENTS each, each acked at once");
	is_int(durable_until(5, 3000), 5, "all five committed after the linger");
	master_get_stats(&s1);
	is_int(s1.db_requests - s0.db_requests, 1, "in one writer request, not five");
	is_str(db_state("h5"), "live", "h5 in master.db");

	/* x moves from n1 (gen 401) to n2 (gen 402) within one linger: n1's
	 * held operation is sent when n2's batch comes.  (The store would
	 * also skip an older generation arriving late: meta.c's put_row
	 * looks up the key's newest row first, ST_OBJ_TOP.) */
	struct tev e1[] = { { 6, PROTO_EV_ADD, "x", 401, 0, 10 } };
	struct tev e2[] = { { 1, PROTO_EV_ADD, "x", 402, 0, 10 } };
	is_int(events(0, "n1", 11, e1, 1, &ack), 0, "x@401 on n1");
	is_int(events(1, "n2", 12, e2, 1, &ack), 0, "x@402 on n2");
	pump(1200);
	db_row("x", st, sizeof st, &gen, node, sizeof node);
	ok(gen == 402 && !strcmp(node, "n2"), "master.db: x at 402 on n2 (%llu on %s)", (unsigned long long)gen,
	   node);
	is_int(db_rows("x"), 1, "and no other row of x");
	env_down();
}

/* A node holding more keys than the master keeps floors re-syncs after a
 * master restart with all of them: its snapshot confirms its locations in
 * place, and only what it no longer holds raises a floor.  (Dropping every
 * location first raised one floor each; past the cap, the one floor for
 * every key refused the node's own snapshot and the master told it to drop
 * its values: bench/restart-cost.sh -n 300000.)  The cap is 8 here. */
static void t_restart_many(void)
{
	enum { N = 40 };
	struct proto_ack ack;
	struct proto_route rt;
	struct tev ev[N], snap[N - 1];
	char keys[N][16];

	E.floor_max = 8;
	env_up("restart_many", 1500);
	attach(0, "n1", 11, 1000, 0, &ack);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "m%d", i);
		ev[i] = (struct tev){ (uint64_t)i + 1, PROTO_EV_ADD, keys[i], 100 + (uint64_t)i, 0, 5 };
	}
	is_int(events(0, "n1", 11, ev, N, &ack), 0, "%d keys on n1", N);
	struct actor_msg *d = take(&E.peers[0], WIRE_DURABLE, 3000);
	ok(d != NULL, "committed");
	actor_msg_free(d);

	E.floor_max = 8;
	master_down();
	master_up();
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 attaches to the restarted master");
	/* the snapshot holds every key but the last, m0 at a newer generation */
	for (int i = 0; i < N - 1; i++)
		snap[i] = (struct tev){ 0, 0, keys[i], 100 + (uint64_t)i + (i == 0 ? 1000 : 0), 0, 5 };
	is_int(sync_chunk(0, "n1", 11, N, 0, 1, snap, N - 1, &ack), 0, "full sync of %d entries", N - 1);
	int routed = 0, right = 0;
	for (int i = 0; i < N - 1; i++) {
		if (get1(keys[i], &rt) == 0 && !strcmp(rt.node_id, "n1")) {
			routed++;
			right += rt.gen == snap[i].gen;
		}
	}
	is_int(routed, N - 1, "every key of the snapshot is routed to n1");
	is_int(right, N - 1, "at the snapshot's generation (m0's newer one too)");
	is_int(get1(keys[N - 1], &rt), KVN_ENOTFOUND, "the key it no longer holds is gone");
	struct actor_msg *drop = take(&E.peers[0], WIRE_DROP_GEN, 300);
	ok(drop == NULL, "and n1 is told to drop nothing");
	actor_msg_free(drop);
	env_down();
}

/* The same for a node declared dead: its dropped locations become floors
 * one for one, not held to the cap (8 here), so when it comes back with
 * what it held, every key is routed again, and a key superseded meanwhile
 * still is not taken back. */
static void t_dead_many(void)
{
	enum { N = 40 };
	struct proto_ack ack;
	struct proto_route rt;
	struct tev ev[N], snap[N];
	char keys[N][16];
	int st = 0;

	E.floor_max = 8;
	env_up("dead_many", 300);
	attach(0, "n1", 11, 1000, 0, &ack);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "d%d", i);
		ev[i] = (struct tev){ (uint64_t)i + 1, PROTO_EV_ADD, keys[i], 100 + (uint64_t)i, 0, 5 };
		snap[i] = (struct tev){ 0, 0, keys[i], 100 + (uint64_t)i, 0, 5 };
	}
	is_int(events(0, "n1", 11, ev, N, &ack), 0, "%d keys on n1", N);
	uint64_t end = kvn_now_ms() + 5000;
	while ((st = get1(keys[0], &rt)) == 0 && kvn_now_ms() < end)
		pump(20);
	is_int(st, KVN_ENOTFOUND, "n1 falls silent: declared dead, its keys leave routing");
	/* meanwhile n2 supersedes d0 and removes it: n1's d0 must stay gone */
	attach(1, "n2", 22, 1000, 0, &ack);
	struct tev b[] = { { 1, PROTO_EV_ADD, keys[0], 500, 0, 5 }, { 2, PROTO_EV_REMOVE, keys[0], 500, 0, 0 } };
	is_int(events(1, "n2", 22, b, 2, &ack), 0, "n2 puts d0 (newer) and removes it");
	is_int(attach(0, "n1", 11, 1000, 0, &ack), 0, "n1 comes back");
	is_int(sync_chunk(0, "n1", 11, N, 0, 1, snap, N, &ack), 0, "and full-syncs its %d keys", N);
	int routed = 0;
	for (int i = 1; i < N; i++)
		routed += get1(keys[i], &rt) == 0 && !strcmp(rt.node_id, "n1") && rt.gen == snap[i].gen;
	is_int(routed, N - 1, "every key nothing superseded is routed to n1 again, at its generation");
	is_int(get1(keys[0], &rt), KVN_ENOTFOUND, "d0 stays removed");
	char key[64];
	uint64_t gen = 0;
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 3000);
	is_int(d ? drop_items(d, key, sizeof key, &gen) : -1, 1, "n1 is told to drop one generation");
	ok(d && !strcmp(key, "d0") && gen == 100, "d0's old one (%s@%llu)", key, (unsigned long long)gen);
	actor_msg_free(d);
	env_down();
}

static const struct tap_test tests[] = {
	{ "restart_many", t_restart_many },
	{ "dead_many", t_dead_many },
	{ "events", t_events },
	{ "supersede", t_supersede },
	{ "full_sync", t_full_sync },
	{ "timeout", t_timeout },
	{ "restart", t_restart },
	{ "db_failure", t_db_failure },
	{ "linger", t_linger },
	{ "hold", t_hold },
	{ "forgotten", t_forgotten },
	{ "restart_floor", t_restart_floor },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return env_main(tests, argc, argv);
}
