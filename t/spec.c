/* t/spec: speculative gets (client.speculative_get) through real processes.
 * While route answers have named one peer, a get asks that peer at the same
 * time as the master, and keeps the answer only when the route confirms it.
 * Checked here: a confirmed speculation returns the right bytes with the
 * same two frames as before (ROUTE_GET and GET, now in flight together);
 * batches; a missing key; a get by ref; an answer from the wrong node (a
 * forged sole peer) is discarded and read again, also for kvn_get_alloc,
 * whose discarded buffer must not leak or cap the real read; the switch
 * turns it off; a second peer in the cluster turns it off for good. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_env.h"
#include "base/base.h"
#include "kvnode.h"
#include "net/net.h"
#include "net/proto.h"
#include "proc.h"
#include "tap.h"

static struct kvn_client *ca; /* speculation on (the default) */
static struct kvn_client *cb; /* client.speculative_get = off */
static char conf_a[300], conf_b[300];
static uint16_t mport;

static void fixture_up(void)
{
	char data[300];
	uint16_t pp = proc_free_port();
	mport = proc_free_port();
	snprintf(conf_a, sizeof conf_a, "%s/a.conf", proc_tmp);
	snprintf(conf_b, sizeof conf_b, "%s/b.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-a", proc_tmp);
	/* an all-in-one node: gets would go through the master (t/via);
	 * here they speculate as towards a peer of another node */
	/* frames are counted on the TCP path (t/local covers the same-host one) */
	proc_write_conf(conf_a, mport, pp, data, "64MiB", "local = off\nget_via_master = off\n");
	proc_write_conf(conf_b, mport, pp, data, "64MiB", "local = off\nget_via_master = off\nspeculative_get = off\n");
	const char *args[] = { "--config", conf_a, NULL };
	proc_spawn("aio", args);
	ca = proc_connect_ready(conf_a, 1);
	cb = proc_connect_ready(conf_b, 1);
	ok(ca && cb, "all-in-one node up, two clients connected");
	if (!ca || !cb)
		exit(1);
	ok(client_conf(ca)->client_speculative_get && !client_conf(cb)->client_speculative_get,
	   "speculation on by default, off for the second client");
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/spec CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

static void t_hit(void)
{
	fixture();
	uint8_t v[3000], g[4096];
	size_t vlen = 0;

	proc_fill(v, sizeof v, 1);
	is_int(kvn_put(ca, "s/1", 3, v, sizeof v, 0), 0, "put (its ROUTE_PUT names the sole peer)");
	is_int(nseen(ca), 1, "one peer seen");
	uint64_t f0 = proc_frames_out(), sent = stats(ca).spec_sent, served = stats(ca).spec_served;
	is_int(kvn_get(ca, "s/1", 3, g, sizeof g, &vlen), 0, "get");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "the bytes put");
	is_int(proc_frames_out() - f0, 2, "two frames: ROUTE_GET and the speculative GET");
	is_int(stats(ca).spec_sent - sent, 1, "one speculative item sent");
	is_int(stats(ca).spec_served - served, 1, "and confirmed by the route");

	/* the key's newest generation, not an older one the peer also knew */
	proc_fill(v, sizeof v, 2);
	is_int(kvn_put(cb, "s/1", 3, v, 1000, 0), 0, "another client re-puts it, shorter");
	is_int(kvn_get(ca, "s/1", 3, g, sizeof g, &vlen), 0, "get again");
	ok(vlen == 1000 && memcmp(g, v, 1000) == 0, "the other client's acknowledged put is seen");
}

static void t_batch(void)
{
	fixture();
	struct kvn_item it[10];
	char keys[10][16];
	static uint8_t v[10][500], g[10][600];

	proc_batch_puts(it, keys, v[0], sizeof v[0], 10, "s/b", 100, 1);
	is_int(kvn_batch_put(ca, it, 10, 0), 0, "batch put of 10");
	proc_batch_gets(it, g[0], sizeof g[0], 10);
	it[7].key = "s/none";
	it[7].klen = 6;
	uint64_t f0 = proc_frames_out(), served = stats(ca).spec_served;
	is_int(kvn_batch_get(ca, it, 10), KVN_ENOTFOUND, "batch get of 9 keys and a missing one");
	ok(proc_batch_good(it, v[0], sizeof v[0], 10, 7, 1), "the 9 come back byte for byte");
	is_int(it[7].status, KVN_ENOTFOUND, "the missing one: KVN_ENOTFOUND");
	is_int(stats(ca).spec_served - served, 9, "9 confirmed (the route says the tenth does not exist)");
	is_int(proc_frames_out() - f0, 2, "one ROUTE_GET and one GET for the batch");
}

static void t_by_ref(void)
{
	fixture();
	uint8_t v[2000], g[2048];
	uint64_t g1 = 0, g2 = 0;
	size_t vlen = 0;

	proc_fill(v, sizeof v, 7);
	is_int(kvn_put_gen(ca, "s/ref", 5, v, sizeof v, 0, &g1), 0, "put_gen");
	is_int(kvn_put_gen(ca, "s/ref", 5, v, 100, 0, &g2), 0, "re-put");
	uint64_t served = stats(ca).spec_served;
	is_int(kvn_get_gen(ca, "s/ref", 5, g2, g, sizeof g, &vlen), 0, "get by the new ref");
	ok(vlen == 100 && memcmp(g, v, 100) == 0, "its bytes");
	is_int(kvn_get_gen(ca, "s/ref", 5, g1, g, sizeof g, &vlen), KVN_ESTALE, "the old ref: KVN_ESTALE");
	is_int(stats(ca).spec_served - served, 2, "both answers stood without a second read");
}

/* A sole peer that is not the one the route names: same address, another
 * node id.  The peer answers (it holds the key), the route disagrees. */
static void forge_sole(struct kvn_client *c, struct proto_route *saved)
{
	struct proto_route ghost;
	int n;
	client_sole_get(c, saved, &n);
	ghost = *saved;
	snprintf(ghost.node_id, sizeof ghost.node_id, "ghost");
	client_sole_set(c, &ghost, n);
}

/* The route named a node other than the (forged) sole one: to the client
 * that is a second peer, and it stops speculating.  Undo, for what follows. */
static void unforge_sole(struct kvn_client *c, const struct proto_route *saved)
{
	is_int(nseen(c), 2, "the route's node counts as a second peer: speculation stops");
	client_sole_set(c, saved, 1);
}

static void t_wrong_node(void)
{
	fixture();
	uint8_t v[5000], g[8192];
	size_t vlen = 0;
	struct proto_route saved;

	proc_fill(v, sizeof v, 9);
	is_int(kvn_put(ca, "s/w", 3, v, sizeof v, 0), 0, "put");
	forge_sole(ca, &saved);
	uint64_t sent = stats(ca).spec_sent, served = stats(ca).spec_served;
	memset(g, 0, sizeof g);
	is_int(kvn_get(ca, "s/w", 3, g, sizeof g, &vlen), 0, "get with a forged sole peer");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "the right bytes (read again from the routed node)");
	is_int(stats(ca).spec_sent - sent, 1, "it speculated");
	is_int(stats(ca).spec_served - served, 0, "and discarded the answer: another node than the route's");
	unforge_sole(ca, &saved);

	/* kvn_get_alloc: the discarded answer allocated a buffer of its size */
	uint8_t big[9000];
	proc_fill(big, sizeof big, 10);
	is_int(kvn_put(cb, "s/w", 3, big, sizeof big, 0), 0, "another client makes it larger");
	forge_sole(ca, &saved);
	void *val = NULL;
	vlen = 0;
	sent = stats(ca).spec_sent;
	is_int(kvn_get_alloc(ca, "s/w", 3, &val, &vlen), 0, "get_alloc with a forged sole peer");
	ok(val && vlen == sizeof big && memcmp(val, big, sizeof big) == 0, "the larger value, whole");
	free(val);
	is_int(stats(ca).spec_sent - sent, 1, "it speculated");
	is_int(stats(ca).spec_served - served, 0, "discarded again");
	unforge_sole(ca, &saved);
}

static void t_off(void)
{
	fixture();
	uint8_t v[100], g[100];
	size_t vlen = 0;

	proc_fill(v, sizeof v, 3);
	is_int(kvn_put(cb, "s/off", 5, v, sizeof v, 0), 0, "put");
	is_int(nseen(cb), 1, "the client knows one peer");
	uint64_t f0 = proc_frames_out();
	is_int(kvn_get(cb, "s/off", 5, g, sizeof g, &vlen), 0, "get");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "bytes");
	is_int(stats(cb).spec_sent, 0, "never speculates");
	is_int(proc_frames_out() - f0, 2, "ROUTE_GET then GET");
}

static void t_second_peer(void)
{
	fixture();
	uint8_t v[256], g[256];
	size_t vlen = 0;
	char aio[300];

	snprintf(aio, sizeof aio, "%s/var-a", proc_tmp);
	if (kvn_exists(ca, "s/w", 3) != 1) { /* run alone: wrong_node's key, on the first peer */
		uint8_t w[9000];
		proc_fill(w, sizeof w, 10);
		is_int(kvn_put(cb, "s/w", 3, w, sizeof w, 0), 0, "put s/w while the first peer is alone");
	}
	proc_spawn_peer("p2", mport, aio);
	struct kvn_client *c = proc_connect_ready(conf_a, 2);
	ok(c != NULL, "a second peer attached");
	if (!c)
		return;
	kvn_close(c);
	/* placement favours free memory: p2 is empty, so puts go there soon */
	proc_fill(v, sizeof v, 4);
	int i;
	for (i = 0; i < 200 && nseen(ca) < 2; i++) {
		char key[32];
		snprintf(key, sizeof key, "s/p/%d", i);
		if (kvn_put(ca, key, strlen(key), v, sizeof v, 0) != 0)
			break;
	}
	is_int(nseen(ca), 2, "routes named both peers (after %d puts)", i);
	uint64_t sent = stats(ca).spec_sent;
	int bad = 0;
	for (int k = 0; k < i; k++) {
		char key[32];
		snprintf(key, sizeof key, "s/p/%d", k);
		if (kvn_get(ca, key, strlen(key), g, sizeof g, &vlen) != 0 || vlen != sizeof v ||
		    memcmp(g, v, sizeof v) != 0)
			bad++;
	}
	is_int(bad, 0, "every one of the %d keys reads back", i);
	/* and one that lives on the first peer */
	static uint8_t big[9000], gb[9000];
	proc_fill(big, sizeof big, 10);
	is_int(kvn_get(ca, "s/w", 3, gb, sizeof gb, &vlen), 0, "a key the first peer holds");
	ok(vlen == sizeof big && memcmp(gb, big, sizeof big) == 0, "its bytes");
	is_int(stats(ca).spec_sent - sent, 0, "no speculation with two peers");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "hit", t_hit },
		{ "batch", t_batch },
		{ "by_ref", t_by_ref },
		{ "wrong_node", t_wrong_node },
		{ "off", t_off },
		{ "second_peer", t_second_peer },
		{ NULL, NULL },
	};
	if (proc_init("spec") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	int rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	kvn_close(cb);
	return rc;
}
