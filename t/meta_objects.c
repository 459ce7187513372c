/*
 * t/meta_objects: the master's SQLite store, object and node semantics:
 * supersede, state changes, a node replaced, binary keys, the operator
 * views read while a write transaction is open, input checks and the
 * loaders.  The files, schema and failures are t/meta; the shared fixture
 * is t/meta_env.h.
 */
#include "config.h"

#include "meta_env.h"

static void t_supersede(void)
{
	struct meta_db *db = fresh("s.db");

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	is_int(put(db, "k", 5, "A", 0, 10), 0, "put gen 5 at A");
	is_int(put(db, "x", 1, "A", 0, 1), 0, "put another key");
	is_int(put(db, "k", 7, "B", 1, 20), 0, "put gen 7 at B");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:1:20:live", "gen 5 superseded, gen 7 last in order");
	is_str(floors(db), "", "a superseded row leaves no floor (the newer row is one)");
	is_int(put(db, "k", 6, "A", 0, 30), 0, "older gen 6: no error");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:1:20:live", "older gen is a no-op");
	is_int(put(db, "k", 7, "B", 0, 20), 0, "same gen again (tier move)");
	is_str(dump(db), "x:1:A:0:1:live;k:7:B:0:20:live", "updated in place, order kept");
	is_int(meta_object_del(db, "k", 1, 6), 0, "del of an absent gen: not an error");
	is_int(live(db), 2, "nothing deleted");
	is_int(meta_object_del(db, "k", 1, 7), 0, "del exact gen");
	is_str(dump(db), "x:1:A:0:1:live", "gone");
	is_str(floors(db), "k,8", "the key's last row deleted: its floor is the next gen");
	is_int(meta_floors_clear(db, kvn_wall_ms() - 600000), 0, "a clear of floors older than 10 min");
	is_str(floors(db), "k,8", "a young floor stays (its node's removal may not be durable yet)");
	is_int(meta_floors_clear(db, (uint64_t)INT64_MAX), 0, "floors cleared");
	is_str(floors(db), "", "none left");
	is_int(put(db, "k", 3, "A", 0, 1), 0, "after a delete, any gen may come back");
	is_str(dump(db), "x:1:A:0:1:live;k:3:A:0:1:live", "re-put after delete");
	meta_close(db);
}

static void t_set_state(void)
{
	struct meta_db *db = fresh("l.db");

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	put(db, "a1", 1, "A", 0, 1);
	put(db, "b1", 1, "B", 0, 1);
	put(db, "a2", 1, "A", 1, 1);
	is_int(meta_objects_set_state(db, "A", "lost"), 0, "node A lost");
	is_int(meta_node_set_state(db, "A", "dead"), 0, "node A dead");
	is_int(live(db), 1, "only B's object counts as live");
	is_str(dump(db), "a1:1:A:0:1:lost;b1:1:B:0:1:live;a2:1:A:1:1:lost", "rows kept, marked lost");
	is_int(meta_objects_set_state(db, "A", "live"), 0, "node A back");
	is_int(live(db), 3, "live again");
	is_str(dump(db), "a1:1:A:0:1:live;b1:1:B:0:1:live;a2:1:A:1:1:live", "order unchanged");
	is_int(meta_objects_set_state(db, "A", "gone"), KVN_EINVAL, "bad state refused");
	is_int(meta_node_set_state(db, "A", "zombie"), KVN_EINVAL, "bad node state refused");
	is_int(meta_node_set_state(db, "nobody", "dead"), KVN_ENOTFOUND, "unknown node");
	meta_close(db);
}

static void t_replace_node(void)
{
	struct meta_db *db = fresh("f.db");
	sqlite3 *c;

	add_node(db, "A", 100, 0);
	add_node(db, "B", 100, 0);
	put(db, "k1", 1, "A", 0, 1);
	put(db, "k2", 1, "A", 0, 2);
	put(db, "k4", 1, "B", 0, 4);
	put(db, "k3", 1, "A", 0, 3);
	put(db, "old", 9, "B", 0, 9); /* superseded at B while A still held gen 8 */
	meta_objects_set_state(db, "A", "lost");

	struct meta_object snap[] = {
		{ .key = "k5", .klen = 2, .gen = 1, .tier = 0, .size = 5 },
		{ .key = "k2", .klen = 2, .gen = 1, .tier = 1, .size = 2 },
		{ .key = "old", .klen = 3, .gen = 8, .node_id = "A", .tier = 0, .size = 8 },
	};
	is_int(meta_begin(db), 0, "begin");
	is_int(meta_objects_replace_node(db, "A", snap, 3), 0, "full sync of A");
	is_int(meta_commit(db), 0, "commit");
	is_str(dump(db), "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live",
	       "A = snapshot (k2 kept its order), B untouched, superseded gen not resurrected");
	is_str(floors(db), "k1,2;k3,2", "the rows A no longer holds leave floors");

	snap[2].node_id = "B";
	is_int(meta_objects_replace_node(db, "A", snap, 3), KVN_EINVAL, "row naming another node");
	is_int(meta_objects_replace_node(db, "A", NULL, 1), KVN_EINVAL, "NULL set with n > 0");

	/* A failure half-way (the second row) undoes the whole call. */
	c = raw_open(tpath("f.db"));
	raw_exec(c, "CREATE TRIGGER boom BEFORE INSERT ON objects WHEN NEW.gen = 999 "
		    "BEGIN SELECT RAISE(ABORT, 'injected'); END");
	struct meta_object bad[] = {
		{ .key = "k6", .klen = 2, .gen = 1, .tier = 0, .size = 6 },
		{ .key = "k7", .klen = 2, .gen = 999, .tier = 0, .size = 7 },
	};
	is_int(meta_objects_replace_node(db, "A", bad, 2), KVN_EDB, "failing row: KVN_EDB");
	is_str(dump(db), "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live",
	       "nothing of the failed sync applied (autocommit)");
	is_int(meta_begin(db), 0, "begin");
	is_int(put(db, "k8", 1, "B", 0, 8), 0, "put in the group");
	is_int(meta_objects_replace_node(db, "A", bad, 2), KVN_EDB, "failing sync inside a group");
	is_int(meta_commit(db), 0, "the group still commits");
	is_str(dump(db),
	       "k2:1:A:1:2:live;k4:1:B:0:4:live;old:9:B:0:9:live;k5:1:A:0:5:live;k8:1:B:0:8:live",
	       "the group's other writes kept, the failed sync undone");
	raw_exec(c, "DROP TRIGGER boom");
	sqlite3_close(c);
	is_int(meta_objects_replace_node(db, "A", NULL, 0), 0, "empty snapshot");
	is_str(dump(db), "k4:1:B:0:4:live;old:9:B:0:9:live;k8:1:B:0:8:live", "A now holds nothing");
	meta_close(db);
}

static void t_binary_keys(void)
{
	struct meta_db *db = fresh("b.db");
	const char k1[] = { 'a', 0, 'b', 0 }, k2[] = { 'a', 0, 'c' }, k3[] = { 'a' };
	struct meta_object o = { .key = k1, .klen = sizeof k1, .gen = 1, .node_id = "A", .size = 1 };

	add_node(db, "A", 100, 0);
	is_int(meta_object_put(db, &o), 0, "key with NUL bytes");
	o.key = k2, o.klen = sizeof k2;
	is_int(meta_object_put(db, &o), 0, "same prefix up to a NUL, different key");
	o.key = k3, o.klen = sizeof k3;
	is_int(meta_object_put(db, &o), 0, "the prefix alone");
	is_int(live(db), 3, "three distinct keys (no truncation at NUL)");
	is_str(dump(db), "hex:61006200:1:A:0:1:live;hex:610063:1:A:0:1:live;a:1:A:0:1:live",
	       "bytes round-trip exactly");
	is_int(meta_object_del(db, k1, sizeof k1, 1), 0, "delete by binary key");
	is_str(dump(db), "hex:610063:1:A:0:1:live;a:1:A:0:1:live", "only that key went");
	meta_close(db);
}

static void t_views(void)
{
	struct meta_db *db = fresh("v.db");
	const char bin[] = { 'z', 0, (char)0xff };
	struct meta_object o = { .key = bin, .klen = sizeof bin, .gen = 3, .node_id = "B", .size = 7 };
	sqlite3 *c;

	add_node(db, "A", 1000, 300);
	add_node(db, "B", 100, 200); /* over-used: free shows 0, never negative */
	put(db, "k1", 5, "A", 0, 10);
	put(db, "hex:00", 1, "A", 1, 20);
	meta_object_put(db, &o);
	put(db, "lostkey", 1, "B", 0, 1000);
	c = raw_open(tpath("v.db"));
	raw_exec(c, "INSERT INTO leases VALUES (11, CAST('k1' AS BLOB), 5, 'trainer-1', 0, 4, 1), "
		    "(12, x'7a00ff', 3, 'trainer-2', 3, 4, 9000000000000)");
	meta_begin(db);
	meta_objects_set_state(db, "B", "lost");
	meta_node_set_state(db, "B", "dead");
	put(db, "uncommitted", 1, "A", 0, 1);

	/* The operator's view while kvnode holds an open write transaction. */
	is_str(rows(c, "SELECT * FROM v_capacity"),
	       "A,alive,1000,300,700,5000,1000,4000,2,30,1,20;B,alive,100,200,0,5000,1000,4000,2,1007,0,0",
	       "v_capacity: committed state only, reader not blocked");
	is_str(rows(c, "SELECT key, gen, node_id, tier, size, state FROM v_objects"),
	       "k1,5,A,dram,10,live;hex:6865783a3030,1,A,disk,20,live;hex:7a00ff,3,B,dram,7,live;"
	       "lostkey,1,B,dram,1000,live",
	       "v_objects: printable keys as text, others (and 'hex:...') as hex, commit order");
	is_str(rows(c, "SELECT key, gen, holder, part_i, part_n, deadline_ms, expired FROM v_leases"),
	       "k1,5,trainer-1,0,4,1,1;hex:7a00ff,3,trainer-2,3,4,9000000000000,0", "v_leases");
	is_int(meta_commit(db), 0, "commit");
	is_str(rows(c, "SELECT node_id, state, live_objects, live_bytes FROM v_capacity"),
	       "A,alive,3,31;B,dead,0,0", "after commit: B dead, its objects lost");
	is_str(rows(c, "SELECT node_id, disk_objects, disk_bytes FROM v_capacity"), "A,1,20;B,0,0",
	       "v_capacity: objects on the disk tier (tier 1) and their bytes, live ones only");
	is_str(rows(c, "SELECT key, state FROM v_objects WHERE node_id = 'B'"),
	       "hex:7a00ff,lost;lostkey,lost", "lost rows still listed");

	/* Deleting an object ends its lease (foreign key, ON DELETE CASCADE). */
	is_int(meta_object_del(db, "k1", 2, 5), 0, "delete a leased object");
	is_str(rows(c, "SELECT key FROM v_leases"), "hex:7a00ff", "its lease went with it");
	sqlite3_close(c);
	meta_close(db);
}

static void t_inputs(void)
{
	struct meta_db *db = fresh("i.db");
	struct meta_node n = { 0 };
	char big[KVN_MAX_KEY + 1];
	uint32_t e;

	memset(big, 'x', sizeof big);
	add_node(db, "A", 100, 0);
	is_int(put(db, "k", 1, "nobody", 0, 1), KVN_EDB, "unknown node: foreign key refuses");
	is_int(put(db, "", 1, "A", 0, 1), KVN_EKEYLEN, "empty key");
	struct meta_object o = { .key = big, .klen = sizeof big, .gen = 1, .node_id = "A" };
	is_int(meta_object_put(db, &o), KVN_EKEYLEN, "key longer than KVN_MAX_KEY");
	o.klen = KVN_MAX_KEY;
	is_int(meta_object_put(db, &o), 0, "key of exactly KVN_MAX_KEY");
	is_int(put(db, "k", 0, "A", 0, 1), KVN_EINVAL, "gen 0");
	is_int(put(db, "k", (uint64_t)INT64_MAX + 1, "A", 0, 1), KVN_EINVAL, "gen beyond 2^63-1");
	is_int(put(db, "k", 1, "A", 2, 1), KVN_EINVAL, "tier 2");
	is_int(put(db, "k", 1, NULL, 0, 1), KVN_EINVAL, "no node");
	o.klen = 1, o.state = "dead";
	is_int(meta_object_put(db, &o), KVN_EINVAL, "bad object state");
	is_int(meta_object_del(db, "k", 0, 1), KVN_EKEYLEN, "del: empty key");
	is_int(meta_object_del(db, "k", 1, 0), KVN_EINVAL, "del: gen 0");
	memset(n.node_id, 'n', sizeof n.node_id); /* no terminator */
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "unterminated node id");
	n.node_id[0] = '\0';
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "empty node id");
	snprintf(n.node_id, sizeof n.node_id, "C");
	n.dram_total = UINT64_MAX;
	is_int(meta_node_upsert(db, &n), KVN_EINVAL, "capacity beyond 2^63-1");
	n.dram_total = 1;
	is_int(meta_node_upsert(db, &n), 0, "empty state means alive");
	is_int(meta_epoch_next(NULL, &e), KVN_EINVAL, "NULL db");
	is_int(meta_count_objects(db, NULL), KVN_EINVAL, "NULL out");
	is_int(meta_load_objects(db, NULL, NULL), KVN_EINVAL, "NULL callback");
	is_int(meta_open(NULL, NULL, NULL, 0), KVN_EINVAL, "meta_open(NULL)");
	meta_close(NULL);
	meta_close(db);
}

/* Stop after n rows: the callback's value comes back, and the statement is
 * reset (a later load starts from the beginning). */
static int stop_fn(void *arg, const struct meta_object *o)
{
	(void)o;
	return --*(int *)arg == 0 ? 77 : 0;
}

static void t_loads(void)
{
	struct meta_db *db = fresh("o.db");
	char nodes[256] = "";
	int left = 2;

	add_node(db, "B", 100, 0);
	add_node(db, "A", 200, 0);
	add_node(db, "A", 300, 0); /* upsert */
	put(db, "k3", 1, "A", 0, 1);
	put(db, "k1", 1, "A", 0, 1);
	put(db, "k2", 1, "B", 0, 1);
	put(db, "k1", 2, "B", 0, 1);
	is_str(dump(db), "k3:1:A:0:1:live;k2:1:B:0:1:live;k1:2:B:0:1:live",
	       "load order = commit order (a re-put moves to the end)");
	is_int(meta_load_objects(db, stop_fn, &left), 77, "callback's non-zero return stops the load");
	is_str(dump(db), "k3:1:A:0:1:live;k2:1:B:0:1:live;k1:2:B:0:1:live", "next load starts over");
	is_int(meta_load_nodes(db, node_fn, nodes), 0, "load nodes");
	is_str(nodes, "A,peer,127.0.0.1:7A,300,42,alive;B,peer,127.0.0.1:7B,100,42,alive",
	       "nodes round-trip, upsert replaced");
	meta_close(db);
}

static const struct tap_test tests[] = {
	{ "supersede", t_supersede },
	{ "set_state", t_set_state },
	{ "replace_node", t_replace_node },
	{ "binary_keys", t_binary_keys },
	{ "views", t_views },
	{ "inputs", t_inputs },
	{ "loads", t_loads },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return meta_env_run("meta_objects", tests, argc, argv);
}
