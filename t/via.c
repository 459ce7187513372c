/* t/via: gets and puts through the master (client.get_via_master,
 * client.put_via_master) with real processes.  A get goes to the master;
 * when every key lives on the peer of the master's own process, that peer
 * answers on the master connection (one frame out, no ROUTE_GET), otherwise
 * the master answers with the routes and the client reads from the peers.
 * A put goes there with its value while every route the client saw named
 * the master's node; the master places it on its own peer, whose sink takes
 * the bytes, or refuses and the client routes it as before.
 * Gets: single and batch byte for byte in one frame; the newest generation
 * after another client's put; a missing key (routes, no peer read); a batch
 * with a missing key; a get by ref, old and new; kvn_get_alloc and a
 * too-small buffer; an 8 MiB value; the switch off.
 * Puts: one frame; generations still grow; a durable put is in master.db
 * when it returns; a batch; an empty value (no payload, no sink); a fresh
 * client's first put (routed); a value the node has no room for (refused:
 * KVN_EFULL as before, the connection still good); async puts, stored and
 * refused; a deadline passing mid-frame (connection cut, pages back,
 * nothing stored) and a sync put's deadline; the switch off.
 * Both: a cluster whose keys live on two peers (the first put placed on the
 * second refused and routed, then routes as before) and a master without a
 * peer of its own (routes). */
#include "config.h"

#include <signal.h>
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

static struct kvn_client *ca; /* defaults: get_via_master on */
static struct kvn_client *cb; /* get_via_master = off, put_via_master = off */
static char conf_a[300], conf_b[300];
static uint16_t mport;
static pid_t aio_pid;

/* The sole peer's id. */
static const char *sole_node(struct kvn_client *c)
{
	static struct proto_route rt;
	client_sole_get(c, &rt, NULL);
	return rt.node_id;
}

static void fixture_up(void)
{
	char data[300];
	uint16_t pp = proc_free_port();
	mport = proc_free_port();
	snprintf(conf_a, sizeof conf_a, "%s/a.conf", proc_tmp);
	snprintf(conf_b, sizeof conf_b, "%s/b.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-a", proc_tmp);
	/* a short pending TTL: t_put_deadline checks the reaper has nothing;
	 * no eviction: t_put_full fills the node */
	/* through the master is a TCP matter: the same-host path goes to the
	 * peer itself (t/local) */
	proc_write_conf(conf_a, mport, pp, data, "64MiB", "local = off\n[peer]\npending_ttl = 1s\nevict = none\n");
	proc_write_conf(conf_b, mport, pp, data, "64MiB", "local = off\nget_via_master = off\nput_via_master = off\n");
	const char *args[] = { "--config", conf_a, NULL };
	aio_pid = proc_spawn("aio", args);
	ca = proc_connect_ready(conf_a, 1);
	cb = proc_connect_ready(conf_b, 1);
	ok(ca && cb, "all-in-one node up, two clients connected");
	if (!ca || !cb)
		exit(1);
	ok(client_conf(ca)->client_get_via_master && !client_conf(cb)->client_get_via_master, "gets: on by default, off for the second");
	ok(client_conf(ca)->client_put_via_master && !client_conf(cb)->client_put_via_master, "puts: on by default, off for the second");
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/via CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

/* A client whose routes have named no node yet (a case run alone) puts a
 * key first: its puts then go through the master, and it holds a
 * connection to the peer, as after the cases before it. */
static void warm(struct kvn_client *c)
{
	uint8_t v[100];

	if (nseen(c) > 0)
		return;
	proc_fill(v, sizeof v, 99);
	is_int(kvn_put(c, "f/warm", 6, v, sizeof v, 0), 0, "a first put (run alone)");
}

static void t_hit(void)
{
	fixture();
	uint8_t v[3000], g[4096];
	size_t vlen = 0;

	proc_fill(v, sizeof v, 1);
	is_int(kvn_put(ca, "f/1", 3, v, sizeof v, 0), 0, "put");
	ok(strcmp(client_master_node(ca), sole_node(ca)) == 0, "the master's node id is the peer's: %s",
	   client_master_node(ca));
	uint64_t f0 = proc_frames_out(), sent = stats(ca).via_get_sent, served = stats(ca).via_get_served;
	is_int(kvn_get(ca, "f/1", 3, g, sizeof g, &vlen), 0, "get");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "the bytes put");
	is_int(proc_frames_out() - f0, 1, "one frame: the GET to the master");
	is_int(stats(ca).via_get_sent - sent, 1, "one item sent to the master");
	is_int(stats(ca).via_get_served - served, 1, "served by its peer");
	is_int(stats(ca).spec_sent, 0, "no speculation alongside");

	proc_fill(v, sizeof v, 2);
	is_int(kvn_put(cb, "f/1", 3, v, 1000, 0), 0, "another client re-puts it, shorter");
	is_int(kvn_get(ca, "f/1", 3, g, sizeof g, &vlen), 0, "get again");
	ok(vlen == 1000 && memcmp(g, v, 1000) == 0, "the other client's acknowledged put is seen");
}

static void t_missing(void)
{
	fixture();
	uint8_t g[16];
	size_t vlen = 5;
	uint64_t f0 = proc_frames_out(), served = stats(ca).via_get_served;

	is_int(kvn_get(ca, "f/none", 6, g, sizeof g, &vlen), KVN_ENOTFOUND, "a missing key: KVN_ENOTFOUND");
	is_int(proc_frames_out() - f0, 1, "one frame: the master's routes say so, no peer is asked");
	is_int(stats(ca).via_get_served - served, 0, "nothing served");
}

static void t_batch(void)
{
	fixture();
	struct kvn_item it[10];
	char keys[10][16];
	static uint8_t v[10][500], g[10][600];

	proc_batch_puts(it, keys, v[0], sizeof v[0], 10, "f/b", 100, 1);
	is_int(kvn_batch_put(ca, it, 10, 0), 0, "batch put of 10");
	proc_batch_gets(it, g[0], sizeof g[0], 10);
	uint64_t f0 = proc_frames_out(), served = stats(ca).via_get_served;
	is_int(kvn_batch_get(ca, it, 10), 0, "batch get of 10");
	ok(proc_batch_good(it, v[0], sizeof v[0], 10, -1, 1), "the 10 come back byte for byte");
	is_int(proc_frames_out() - f0, 1, "one frame for the batch");
	is_int(stats(ca).via_get_served - served, 10, "all 10 served by the master's peer");

	/* one key the index lacks: the master answers with routes */
	memset(g, 0, sizeof g);
	it[7].key = "f/none";
	it[7].klen = 6;
	f0 = proc_frames_out();
	served = stats(ca).via_get_served;
	is_int(kvn_batch_get(ca, it, 10), KVN_ENOTFOUND, "batch get of 9 keys and a missing one");
	ok(proc_batch_good(it, v[0], sizeof v[0], 10, 7, 1), "the 9 come back byte for byte");
	is_int(it[7].status, KVN_ENOTFOUND, "the missing one: KVN_ENOTFOUND");
	is_int(stats(ca).via_get_served - served, 0, "not served by the master: it sent routes");
	is_int(proc_frames_out() - f0, 2, "the GET to the master, then one GET to the peer");
}

static void t_by_ref(void)
{
	fixture();
	uint8_t v[2000], g[2048];
	uint64_t g1 = 0, g2 = 0;
	size_t vlen = 0;

	proc_fill(v, sizeof v, 7);
	is_int(kvn_put_gen(ca, "f/ref", 5, v, sizeof v, 0, &g1), 0, "put_gen");
	is_int(kvn_put_gen(ca, "f/ref", 5, v, 100, 0, &g2), 0, "re-put");
	uint64_t f0 = proc_frames_out();
	is_int(kvn_get_gen(ca, "f/ref", 5, g2, g, sizeof g, &vlen), 0, "get by the new ref");
	ok(vlen == 100 && memcmp(g, v, 100) == 0, "its bytes");
	memset(g, 0x5a, sizeof g);
	is_int(kvn_get_gen(ca, "f/ref", 5, g1, g, sizeof g, &vlen), KVN_ESTALE, "the old ref: KVN_ESTALE");
	int untouched = 1;
	for (size_t i = 0; i < sizeof g; i++)
		if (g[i] != 0x5a)
			untouched = 0;
	ok(untouched, "never the newer bytes: the buffer is untouched");
	is_int(proc_frames_out() - f0, 2, "one frame each, not retried");
}

static void t_alloc_range(void)
{
	fixture();
	static uint8_t v[20000];
	uint8_t small[100];
	void *val = NULL;
	size_t vlen = 0;

	proc_fill(v, sizeof v, 11);
	is_int(kvn_put(ca, "f/a", 3, v, sizeof v, 0), 0, "put 20000 bytes");
	uint64_t served = stats(ca).via_get_served;
	is_int(kvn_get_alloc(ca, "f/a", 3, &val, &vlen), 0, "get_alloc");
	ok(val && vlen == sizeof v && memcmp(val, v, sizeof v) == 0, "a buffer of its size, its bytes");
	free(val);
	is_int(stats(ca).via_get_served - served, 1, "served through the master");
	vlen = 0;
	is_int(kvn_get(ca, "f/a", 3, small, sizeof small, &vlen), KVN_ERANGE, "a 100-byte buffer: KVN_ERANGE");
	is_int((long long)vlen, (long long)sizeof v, "and the size it needs");
}

static void t_large(void)
{
	fixture();
	size_t n = 8u << 20, vlen = 0;
	uint8_t *v = malloc(n), *g = malloc(n);

	proc_fill(v, n, 12);
	is_int(kvn_put(ca, "f/big", 5, v, n, 0), 0, "put 8 MiB");
	uint64_t f0 = proc_frames_out();
	is_int(kvn_get(ca, "f/big", 5, g, n, &vlen), 0, "get it");
	ok(vlen == n && memcmp(g, v, n) == 0, "byte for byte");
	is_int(proc_frames_out() - f0, 1, "through the master, one frame");
	free(v);
	free(g);
}

static void t_off(void)
{
	fixture();
	uint8_t v[100], g[100];
	size_t vlen = 0;

	proc_fill(v, sizeof v, 3);
	is_int(kvn_put(cb, "f/off", 5, v, sizeof v, 0), 0, "put");
	uint64_t f0 = proc_frames_out(), spec = stats(cb).spec_sent;
	is_int(kvn_get(cb, "f/off", 5, g, sizeof g, &vlen), 0, "get with get_via_master off");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "bytes");
	is_int(stats(cb).via_get_sent, 0, "nothing sent to the master as GET");
	is_int(stats(cb).spec_sent - spec, 1, "it speculated on the sole peer instead");
	is_int(proc_frames_out() - f0, 2, "ROUTE_GET and the speculative GET");
}


static void t_put(void)
{
	fixture();
	warm(ca);
	warm(cb);
	uint8_t v[3000], g[4096];
	size_t vlen = 0;
	uint64_t g1 = 0, g2 = 0;

	/* ca has seen the master's node (earlier puts): its puts go there */
	proc_fill(v, sizeof v, 21);
	uint64_t f0 = proc_frames_out(), sent = stats(ca).via_put_sent, stored = stats(ca).via_put_stored;
	is_int(kvn_put_gen(ca, "f/put", 5, v, sizeof v, 0, &g1), 0, "put");
	is_int(proc_frames_out() - f0, 1, "one frame: the PUT to the master, with the value");
	is_int(stats(ca).via_put_sent - sent, 1, "one item sent to the master");
	is_int(stats(ca).via_put_stored - stored, 1, "stored by its peer");
	ok(g1 != 0, "the generation comes back");
	is_int(kvn_put_gen(ca, "f/put", 5, v, 1500, 0, &g2), 0, "put again");
	ok(g2 > g1, "a newer generation");
	is_int(kvn_get(cb, "f/put", 5, g, sizeof g, &vlen), 0, "the other client gets it (routed)");
	ok(vlen == 1500 && memcmp(g, v, 1500) == 0, "the newer bytes");

	char db[400];
	snprintf(db, sizeof db, "%s/var-a/master.db", proc_tmp);
	is_int(kvn_put(ca, "f/dur", 5, v, 100, KVN_PUT_DURABLE), 0, "a durable put through the master");
	is_int(proc_sql_int(db, "select count(*) from objects where key = cast('f/dur' as blob)"), 1,
	       "in master.db when it returns");

	/* no payload: the sink is never asked, the master places it on receipt */
	f0 = proc_frames_out();
	is_int(kvn_put(ca, "f/empty", 7, "", 0, 0), 0, "an empty value");
	is_int(proc_frames_out() - f0, 1, "one frame");
	vlen = 9;
	is_int(kvn_get(ca, "f/empty", 7, g, sizeof g, &vlen), 0, "get it");
	is_int((long long)vlen, 0, "0 bytes");
}

static void t_put_batch(void)
{
	fixture();
	warm(ca);
	struct kvn_item it[10];
	char keys[10][16];
	static uint8_t v[10][700], g[10][700];

	proc_batch_puts(it, keys, v[0], sizeof v[0], 10, "f/pb", 200, 7);
	uint64_t f0 = proc_frames_out(), stored = stats(ca).via_put_stored;
	is_int(kvn_batch_put(ca, it, 10, 0), 0, "batch put of 10");
	is_int(proc_frames_out() - f0, 1, "one frame");
	is_int(stats(ca).via_put_stored - stored, 10, "all 10 stored by the master's peer");
	proc_batch_gets(it, g[0], sizeof g[0], 10);
	is_int(kvn_batch_get(cb, it, 10), 0, "read back by the other client");
	ok(proc_batch_good(it, v[0], sizeof v[0], 10, -1, 7), "byte for byte");
}

static void t_put_first(void)
{
	fixture();
	struct kvn_client *c = proc_connect_ready(conf_a, 1);
	uint8_t v[500];

	ok(c != NULL, "a fresh client");
	if (!c)
		return;
	proc_fill(v, sizeof v, 22);
	uint64_t f0 = proc_frames_out();
	is_int(kvn_put(c, "f/first", 7, v, sizeof v, 0), 0, "its first put");
	is_int(proc_frames_out() - f0, 4, "ROUTE_PUT, the peer connection's HELLO and PROOF, PUT: no route seen yet");
	is_int(stats(c).via_put_sent, 0, "nothing sent through the master");
	f0 = proc_frames_out();
	is_int(kvn_put(c, "f/first", 7, v, 200, 0), 0, "its second put");
	is_int(proc_frames_out() - f0, 1, "through the master now");
	is_int(stats(c).via_put_stored, 1, "stored");
	kvn_close(c);
}

static void t_put_full(void)
{
	fixture();
	size_t n = 40u << 20;
	uint8_t *v = malloc(n);
	uint8_t g[2048];
	size_t vlen = 0;

	proc_fill(v, n, 23);
	if (kvn_exists(ca, "f/1", 3) != 1) /* run alone: hit's key, read below */
		is_int(kvn_put(ca, "f/1", 3, v, 1000, 0), 0, "put f/1");
	is_int(kvn_put(ca, "f/40a", 5, v, n, 0), 0, "40 MiB into a 64 MiB node");
	uint64_t f0 = proc_frames_out(), sent = stats(ca).via_put_sent, stored = stats(ca).via_put_stored;
	is_int(kvn_put(ca, "f/40b", 5, v, n, 0), KVN_EFULL, "another 40 MiB: KVN_EFULL");
	is_int(stats(ca).via_put_sent - sent, 1, "it was sent to the master");
	is_int(stats(ca).via_put_stored - stored, 0, "which refused it");
	is_int(proc_frames_out() - f0, 2, "then ROUTE_PUT, which says the cluster is full");
	is_int(kvn_get(ca, "f/1", 3, g, sizeof g, &vlen), 0, "the master connection still serves");
	is_int(kvn_remove(ca, "f/40a", 5), 0, "remove the 40 MiB");
	is_int(kvn_put(ca, "f/40b", 5, v, 1 << 20, 0), 0, "room again");
	free(v);
}

static int async_done_n;
static void async_done(void *arg, int status)
{
	(void)arg;
	if (status == 0)
		async_done_n++;
}

/* kvn_put_async takes the same way, and a refusal routes as for kvn_put */
static void t_put_async(void)
{
	fixture();
	warm(ca);
	static uint8_t v[3][5000];
	size_t n = 40u << 20, vlen = 0;
	uint8_t *big = malloc(n), g[5000];
	int tags[4] = { 0, 1, 2, 3 };

	for (int i = 0; i < 3; i++)
		proc_fill(v[i], sizeof v[i], 30 + (uint64_t)i);
	uint64_t f0 = proc_frames_out(), sent = stats(ca).via_put_sent, stored = stats(ca).via_put_stored;
	async_done_n = 0;
	int rc = 0;
	for (int i = 0; i < 3; i++) {
		char key[16];
		snprintf(key, sizeof key, "f/as%d", i);
		rc |= kvn_put_async(ca, key, strlen(key), v[i], sizeof v[i], 0, async_done, &tags[i]);
	}
	is_int(rc, 0, "3 async puts started");
	is_int(kvn_drain(ca), 3, "drained: 3 callbacks");
	is_int(async_done_n, 3, "all succeeded");
	is_int(proc_frames_out() - f0, 3, "one frame each");
	is_int(stats(ca).via_put_sent - sent, 3, "sent to the master");
	is_int(stats(ca).via_put_stored - stored, 3, "stored by its peer");
	is_int(kvn_get(cb, "f/as1", 5, g, sizeof g, &vlen), 0, "another client reads one");
	ok(vlen == sizeof v[1] && memcmp(g, v[1], vlen) == 0, "its bytes");

	/* f/40b (1 MiB) and the rest leave less than 40 MiB free */
	proc_fill(big, n, 31);
	is_int(kvn_put(ca, "f/40a", 5, big, n, 0), 0, "40 MiB");
	sent = stats(ca).via_put_sent;
	stored = stats(ca).via_put_stored;
	is_int(kvn_put_async(ca, "f/40c", 5, big, n, 0, async_done, &tags[3]), 0, "another 40 MiB, async");
	kvn_drain(ca);
	struct kvn_put_failure fl[2];
	size_t nf = kvn_poll_failures(ca, fl, 2);
	ok(nf == 1 && fl[0].arg == &tags[3] && fl[0].status == KVN_EFULL, "reported: KVN_EFULL (%zu, %d)", nf,
	   nf ? fl[0].status : 0);
	is_int(stats(ca).via_put_sent - sent, 1, "sent to the master first");
	is_int(stats(ca).via_put_stored - stored, 0, "which refused it");
	is_int(kvn_remove(ca, "f/40a", 5), 0, "remove the 40 MiB");
	free(big);
}

/* A deadline that passes while a PUT's bytes go to the master: the client
 * cuts the master connection, the master reads the frame's start (its sink
 * reserves the peer's pages) and then the end of the connection, its sink
 * abort gives the pages back, the key holds nothing, and the client
 * reconnects.  The node is stopped (SIGSTOP) until the client gave up. */
static void t_put_deadline(void)
{
	fixture();
	enum { SZ = 24 << 20 };
	struct kvn_client *c = proc_connect_ready(conf_a, 1);
	uint8_t *buf = malloc(SZ), small[100], g[128];
	int tag = 0;
	size_t vlen = 0;

	ok(c != NULL, "a client");
	if (!c)
		return;
	proc_fill(small, sizeof small, 40);
	is_int(kvn_put(c, "f/dl", 4, small, sizeof small, 0), 0, "a put: its route names the master's node");
	proc_fill(buf, SZ, 41);
	client_conf(c)->client_timeout = 300; /* ms, from now on */
	async_done_n = 0;
	/* Stopped, the node reads nothing: the frame's start waits in its
	 * socket, the rest in the client's.  (Running, it reads as fast as the
	 * client writes, and the client's writes go on until the whole frame
	 * is out.) */
	ok(kill(aio_pid, SIGSTOP) == 0, "the node stopped");
	is_int(kvn_put_async(c, "f/dl0", 5, buf, SZ, 0, async_done, &tag), 0, "an async put of 24 MiB");
	is_int(stats(c).via_put_sent, 1, "sent to the master (the first put was routed)");
	struct kvn_put_failure f[2];
	size_t nf = 0;
	uint64_t until = kvn_now_ms() + 3000;
	while (nf == 0 && async_done_n == 0 && kvn_now_ms() < until) {
		kvn_poll(c, 20);
		nf = kvn_poll_failures(c, f, 2);
	}
	ok(kill(aio_pid, SIGCONT) == 0, "the node continues");
	ok(nf == 1 && f[0].status == KVN_ETIMEDOUT && async_done_n == 0, "the put timed out (%zu failure(s): %s)", nf,
	   nf ? kvn_strerror(f[0].status) : "-");
	client_conf(c)->client_timeout = 3000;
	is_int(kvn_ping(c, NULL, NULL), 0, "the client reconnects");
	is_int(kvn_get(ca, "f/dl0", 5, g, sizeof g, &vlen), KVN_ENOTFOUND, "nothing stored");
	/* Had the reserved pages stayed PENDING, the reaper would reclaim them
	 * after peer.pending_ttl (1 s here), or cut the receive, and say so. */
	usleep(1600 * 1000);
	is_int(proc_log_count("aio", "reclaimed"), 0, "the reaper found no pending slot to reclaim");
	is_int(proc_log_count("aio", "took longer than peer.pending_ttl"), 0, "and no receive to cut");

	/* a sync put whose deadline passes: KVN_ETIMEDOUT, then all is well */
	client_conf(c)->client_timeout = 1;
	int rc = kvn_put(c, "f/dl9", 5, buf, SZ, 0);
	client_conf(c)->client_timeout = 3000;
	is_int(rc, KVN_ETIMEDOUT, "a sync put of 24 MiB with a 1 ms deadline: KVN_ETIMEDOUT");
	is_int(kvn_ping(c, NULL, NULL), 0, "the client reconnects");
	rc = kvn_get(ca, "f/dl9", 5, g, sizeof g, &vlen);
	ok(rc == KVN_ENOTFOUND || rc == KVN_ERANGE, "the key holds nothing or the whole value (%s)", kvn_strerror(rc));
	if (rc == KVN_ERANGE)
		is_int((long long)vlen, SZ, "whole");
	rc = kvn_remove(ca, "f/dl9", 5);
	ok(rc == 0 || rc == KVN_ENOTFOUND, "removed");
	kvn_close(c);
	free(buf);
}

static void t_put_off(void)
{
	fixture();
	warm(cb);
	uint8_t v[100];

	proc_fill(v, sizeof v, 24);
	uint64_t f0 = proc_frames_out();
	is_int(kvn_put(cb, "f/poff", 6, v, sizeof v, 0), 0, "put with put_via_master off");
	is_int(proc_frames_out() - f0, 2, "ROUTE_PUT and PUT");
	is_int(stats(cb).via_put_sent, 0, "nothing through the master");
}

/* A second peer joins the all-in-one node's master: keys spread over two
 * nodes.  A get of a key on the master's own peer is served; one on the
 * other peer gets routes and a read from that peer. */
static void t_two_peers(void)
{
	fixture();
	warm(ca);
	uint8_t v[256], g[256];
	size_t vlen = 0;
	char aio[300];

	snprintf(aio, sizeof aio, "%s/var-a", proc_tmp);
	if (kvn_exists(ca, "f/1", 3) != 1) { /* run alone: hit's key, on the master's node */
		uint8_t v1[1000];
		proc_fill(v1, sizeof v1, 2);
		is_int(kvn_put(ca, "f/1", 3, v1, sizeof v1, 0), 0, "put f/1 while the master's node is alone");
	}
	proc_spawn_peer("p2", mport, aio);
	struct kvn_client *c = proc_connect_ready(conf_a, 2);
	ok(c != NULL, "a second peer attached");
	if (!c)
		return;
	kvn_close(c);
	struct kvn_node_stat before[4];
	size_t nn = 0;
	uint64_t objs;
	is_int(kvn_stat(ca, before, 4, &nn, &objs), 0, "stat");
	/* placement favours free memory: p2 is empty, so puts go there.  The
	 * first goes through the master, which places it on p2 and refuses;
	 * ROUTE_PUT names p2, and the client stops sending puts there. */
	proc_fill(v, sizeof v, 4);
	uint64_t pf0 = proc_frames_out(), psent = stats(ca).via_put_sent, pstored = stats(ca).via_put_stored;
	is_int(kvn_put(ca, "f/p/0", 5, v, sizeof v, 0), 0, "a put");
	is_int(stats(ca).via_put_sent - psent, 1, "sent to the master");
	is_int(stats(ca).via_put_stored - pstored, 0, "refused: placed on p2");
	is_int(proc_frames_out() - pf0, 5, "then ROUTE_PUT, HELLO and PROOF to p2, PUT to p2");
	is_int(nseen(ca), 2, "the client has seen two nodes");
	int i, bad = 0;
	pf0 = proc_frames_out();
	for (i = 1; i < 60; i++) {
		char key[32];
		snprintf(key, sizeof key, "f/p/%d", i);
		if (kvn_put(ca, key, strlen(key), v, sizeof v, 0) != 0)
			bad++;
	}
	is_int(bad, 0, "59 more puts");
	is_int(stats(ca).via_put_sent - psent, 1, "none of them through the master");
	is_int(proc_frames_out() - pf0, 2 * 59, "each ROUTE_PUT and PUT");
	struct kvn_node_stat after[4];
	is_int(kvn_stat(ca, after, 4, &nn, &objs), 0, "stat again");
	uint64_t on_master = 0, on_p2 = 0;
	for (size_t k = 0; k < nn && k < 4; k++) {
		uint64_t was = 0;
		for (size_t b = 0; b < 4 && b < nn; b++)
			if (strcmp(before[b].node_id, after[k].node_id) == 0)
				was = before[b].objects;
		if (strcmp(after[k].node_id, client_master_node(ca)) == 0)
			on_master = after[k].objects - was;
		else
			on_p2 = after[k].objects - was;
	}
	ok(on_p2 > 0, "keys went to p2 (%llu of them; %llu to the master's node)", (unsigned long long)on_p2,
	   (unsigned long long)on_master);
	uint64_t served = stats(ca).via_get_served, sent = stats(ca).via_get_sent, spec = stats(ca).spec_sent;
	for (int k = 0; k < i; k++) {
		char key[32];
		snprintf(key, sizeof key, "f/p/%d", k);
		if (kvn_get(ca, key, strlen(key), g, sizeof g, &vlen) != 0 || vlen != sizeof v ||
		    memcmp(g, v, sizeof v) != 0)
			bad++;
	}
	is_int(bad, 0, "every one of the %d keys reads back", i);
	is_int(stats(ca).via_get_sent - sent, (long long)i, "each get went to the master");
	is_int(stats(ca).via_get_served - served, (long long)on_master, "exactly the master's node's keys were served there");
	is_int(stats(ca).spec_sent - spec, 0, "no speculation with two peers");

	/* f/1 lives on the master's node, f/p/0 on p2 */
	uint8_t g1[1000];
	served = stats(ca).via_get_served;
	uint64_t f0 = proc_frames_out();
	is_int(kvn_get(ca, "f/1", 3, g1, sizeof g1, &vlen), 0, "a key on the master's node");
	is_int(stats(ca).via_get_served - served, 1, "served by the master's peer");
	is_int(proc_frames_out() - f0, 1, "in one frame");
	struct kvn_item it[2];
	memset(it, 0, sizeof it);
	it[0].key = "f/1";
	it[0].klen = 3;
	it[0].val = g1;
	it[0].cap = sizeof g1;
	it[1].key = "f/p/0";
	it[1].klen = 5;
	it[1].val = g;
	it[1].cap = sizeof g;
	memset(g, 0, sizeof g);
	f0 = proc_frames_out();
	is_int(kvn_batch_get(ca, it, 2), 0, "a batch with a key on each node");
	ok(it[0].vlen == 1000 && it[1].vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "both values");
	is_int(stats(ca).via_get_served - served, 1, "not served by the master: routes");
	is_int(proc_frames_out() - f0, 3, "the GET to the master, then one GET to each peer");
}

/* A master with no peer in its process answers every GET with routes. */
static void t_split(void)
{
	char mconf[300], pconf[300], mdata[300], pdata[300], extra[200];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	uint8_t v[5000], g[5000];
	size_t vlen = 0;

	snprintf(mconf, sizeof mconf, "%s/m.conf", proc_tmp);
	snprintf(pconf, sizeof pconf, "%s/p.conf", proc_tmp);
	snprintf(mdata, sizeof mdata, "%s/var-m", proc_tmp);
	snprintf(pdata, sizeof pdata, "%s/var-p", proc_tmp);
	/* no speculation, so the client has only the master to ask */
	snprintf(extra, sizeof extra, "local = off\nspeculative_get = off\n");
	proc_write_conf(mconf, mp, pp, mdata, "64MiB", extra);
	const char *margs[] = { "--role", "master", "--config", mconf, "--set", "node.id=m", NULL };
	proc_spawn("m", margs);
	char psecret[400], csecret[400];
	snprintf(psecret, sizeof psecret, "auth.peer_secret_file=%s/var-m/peer.secret", proc_tmp);
	snprintf(csecret, sizeof csecret, "auth.client_secret_file=%s/var-m/client.secret", proc_tmp);
	/* the master makes the secrets; wait for them before the peer reads them */
	proc_wait_log("m", "kvnode ready", 1, 20000);
	proc_write_conf(pconf, mp, pp, pdata, "64MiB", extra);
	const char *pargs[] = { "--role", "peer", "--config", pconf, "--set", "node.id=p",
				"--set",  psecret, "--set", csecret, NULL };
	proc_spawn("p", pargs);
	/* the client's config names the master's data dir: its secret */
	struct kvn_client *c = proc_connect_ready(mconf, 1);
	ok(c != NULL, "a master and a peer in two processes, a client");
	if (!c)
		return;
	proc_fill(v, sizeof v, 13);
	is_int(kvn_put(c, "f/s", 3, v, sizeof v, 0), 0, "put");
	ok(strcmp(client_master_node(c), "m") == 0 && strcmp(sole_node(c), "p") == 0, "the master is m, the peer p");
	uint64_t f0 = proc_frames_out();
	is_int(kvn_get(c, "f/s", 3, g, sizeof g, &vlen), 0, "get");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "the bytes put");
	is_int(stats(c).via_get_sent, 1, "sent to the master");
	is_int(stats(c).via_get_served, 0, "which has no peer of its own: routes");
	is_int(stats(c).via_put_sent, 0, "the put went by ROUTE_PUT: the peer is not the master's node");
	is_int(proc_frames_out() - f0, 2, "the GET to the master, then the GET to the peer");
	kvn_close(c);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "hit", t_hit },
		{ "missing", t_missing },
		{ "batch", t_batch },
		{ "by_ref", t_by_ref },
		{ "alloc_range", t_alloc_range },
		{ "large", t_large },
		{ "off", t_off },
		{ "put", t_put },
		{ "put_batch", t_put_batch },
		{ "put_first", t_put_first },
		{ "put_full", t_put_full },
		{ "put_async", t_put_async },
		{ "put_deadline", t_put_deadline },
		{ "put_off", t_put_off },
		{ "two_peers", t_two_peers },
		{ "split", t_split },
		{ NULL, NULL },
	};
	if (proc_init("via") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	int rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	kvn_close(cb);
	return rc;
}
