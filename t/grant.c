/* t/grant: issue 11 item 1 against real processes.  A client that holds
 * the client secret sends PUTs straight to the peers (the all-in-one
 * node's own, whose grant key comes from the process, and a peer process,
 * whose key comes from its attach session) with generations it chose (0, 1,
 * 2^63-1, 2^63, 2^64-1) and with real grants misused (another key, size or
 * node, tampered).  Each is refused with the error that says why, nothing
 * is stored, the master never sees (or refuses) a bad event, the node keeps
 * answering ping and its logs stay short, and normal puts and gets of the
 * same key work afterwards. */
#include "config.h"

#include <event2/buffer.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/actor.h"
#include "net/proto.h"
#include "auth/auth.h"
#include "base/base.h"
#include "kvnode.h"
#include "net/net.h"
#include "proc.h"
#include "raw.h"
#include "tap.h"

#include <xxhash.h>

static actor_id raw_master, raw_peer[2];
static struct kvn_client *ca;
static char conf[300], aio_data[300], secret_path[400];
static struct kvn_node_stat nodes[2];

/* A PUT of key with a 4-byte value, generation gen and grant g (NULL: no
 * grants at all) to peer i: the item's status, or the whole reply's. */
static int put_raw(int i, const char *key, uint64_t gen, const struct proto_grant *g)
{
	struct actor_msg *m = actor_msg_new(WIRE_PUT);
	struct wire_w w;
	wire_w_init(&w);
	proto_items_begin(&w, PROTO_ITEMS_SUM, 1);
	proto_items_add_sum(&w, key, strlen(key), gen, 4, XXH3_64bits("evil", 4), 0);
	if (g)
		proto_grants_add(&w, g);
	wire_w_to_msg(&w, m);
	m->payload = evbuffer_new();
	evbuffer_add(m->payload, "evil", 4);
	int rc = raw_call(raw_peer[i], m);
	if (rc)
		return rc;
	struct wire_r r;
	struct proto_result res;
	uint32_t n;
	if (proto_results_open(&r, R.reply->meta, R.reply->meta_len, &n) != 0 || n != 1 ||
	    proto_results_next(&r, &res) != 0)
		return -1000;
	return res.status;
}

/* A genuine ROUTE_PUT for key (size): the route and its grant. */
static int route_raw(const char *key, uint64_t size, struct proto_route *rt)
{
	struct actor_msg *m = actor_msg_new(WIRE_ROUTE_PUT);
	struct wire_w w;
	wire_w_init(&w);
	proto_route_put_begin(&w, NULL, 0, 1);
	proto_route_put_add(&w, key, strlen(key), size);
	wire_w_to_msg(&w, m);
	int rc = raw_call(raw_master, m);
	if (rc)
		return rc;
	struct wire_r r;
	uint32_t n;
	if (proto_routes_open(&r, R.reply, &n) != 0 || n != 1 || proto_routes_next(&r, rt) != 0 ||
	    proto_route_grants_next(&r, &rt->grant) != 0 || wire_r_end(&r) != 0)
		return -1000;
	return rt->status;
}

static int node_index(const char *node_id)
{
	for (int i = 0; i < 2; i++)
		if (strcmp(nodes[i].node_id, node_id) == 0)
			return i;
	return -1;
}

static void t_start(void)
{
	char path[400];
	size_t nn = 0;
	uint64_t objs;

	pid_t aio = proc_start_node("aio", "64MiB", NULL, conf, sizeof conf);
	ok(aio > 0, "all-in-one node started");
	snprintf(aio_data, sizeof aio_data, "%s/var-aio", proc_tmp);
	/* the peer process needs the secrets the node writes at its start */
	ca = proc_connect_ready(conf, 1);
	ok(ca != NULL, "it answers");
	if (!ca)
		exit(1);
	char mport[16];
	FILE *f = fopen(conf, "r");
	char line[256];
	uint16_t mp = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "master = 127.0.0.1:%hu", &mp) == 1)
			break;
	if (f)
		fclose(f);
	snprintf(mport, sizeof mport, "%u", mp);
	ok(proc_spawn_peer("rp", mp, aio_data) > 0, "a peer process started");
	kvn_close(ca);
	ca = proc_connect_ready(conf, 2);
	ok(ca != NULL, "and attached");
	if (!ca)
		exit(1);
	is_int(kvn_stat(ca, nodes, 2, &nn, &objs), 0, "stat");
	is_int((int)nn, 2, "two peers");
	snprintf(secret_path, sizeof secret_path, "%s/client.secret", aio_data);
	snprintf(path, sizeof path, "127.0.0.1:%s", mport);
	raw_master = raw_connect(path, AUTH_ROLE_CLIENT, secret_path, "t-evil");
	raw_peer[0] = raw_connect(nodes[0].addr, AUTH_ROLE_CLIENT, secret_path, "t-evil");
	raw_peer[1] = raw_connect(nodes[1].addr, AUTH_ROLE_CLIENT, secret_path, "t-evil");
}

/* Cases start the nodes when run alone. */
static void need_start(void)
{
	if (!ca)
		t_start();
}

static void t_self_chosen(void)
{
	need_start();
	uint64_t gens[] = { 0, 1, (1ull << 63) - 1, 1ull << 63, UINT64_MAX };
	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < sizeof gens / sizeof gens[0]; j++) {
			int want = gens[j] == 0 || gens[j] > (uint64_t)INT64_MAX ? KVN_EPROTO : KVN_EAUTH;
			is_int(put_raw(i, "pin", gens[j], NULL), want, "peer %s: gen %llu without a grant: %s",
			       nodes[i].node_id, (unsigned long long)gens[j], kvn_strerror(want));
		}
}

static void t_misused(void)
{
	need_start();
	struct proto_route rt;
	is_int(route_raw("pin", 4, &rt), 0, "a genuine ROUTE_PUT");
	int i = node_index(rt.node_id), other = 1 - i;
	ok(i >= 0, "naming one of the peers");
	if (i < 0)
		return;
	struct proto_grant g = rt.grant;
	is_int(put_raw(i, "pon", rt.gen, &g), KVN_EAUTH, "its grant for another key: KVN_EAUTH");
	is_int(put_raw(other, "pin", rt.gen, &g), KVN_EAUTH, "at another node: KVN_EAUTH");
	is_int(put_raw(i, "pin", rt.gen + 1, &g), KVN_EAUTH, "for another gen: KVN_EAUTH");
	g.size = 5;
	is_int(put_raw(i, "pin", rt.gen, &g), KVN_EAUTH, "with its size raised: KVN_EAUTH");
	g = rt.grant;
	g.mac[0] ^= 1;
	is_int(put_raw(i, "pin", rt.gen, &g), KVN_EAUTH, "tampered: KVN_EAUTH");
	g = rt.grant;
	g.expiry_ms += 1000;
	is_int(put_raw(i, "pin", rt.gen, &g), KVN_EAUTH, "its expiry moved: KVN_EAUTH");
	uint8_t buf[16];
	size_t vlen = 0;
	is_int(kvn_get(ca, "pin", 3, buf, sizeof buf, &vlen), KVN_ENOTFOUND, "nothing was stored");
}

static void t_node_fine(void)
{
	need_start();
	uint32_t peers = 0;
	uint8_t buf[16];
	size_t vlen = 0;
	usleep(300000); /* heartbeats: an event would have reached the master */
	is_int(kvn_ping(ca, NULL, &peers), 0, "the node answers ping");
	is_int((int)peers, 2, "both peers still attached");
	is_int(proc_log_count("aio", "refused invalid"), 0, "the master never saw a bad event");
	is_int(proc_log_count("aio", "master refused events"), 0, "nor refused a batch");
	is_int(proc_log_count("rp", "master refused events"), 0, "at either peer");
	is_int(proc_log_count("aio", "attached to the master (epoch"), 1, "the node's peer attached once");
	is_int(proc_log_count("rp", "attached to the master (epoch"), 1, "so did the peer process");
	ok(proc_log_count("aio", "refused to store") <= 6 && proc_log_count("rp", "refused to store") <= 6,
	   "refusals are logged rate-limited");
	is_int(kvn_put(ca, "pin", 3, "good", 4, 0), 0, "a normal put of the key");
	is_int(kvn_get(ca, "pin", 3, buf, sizeof buf, &vlen), 0, "and get");
	ok(vlen == 4 && memcmp(buf, "good", 4) == 0, "return its bytes");
	is_int(kvn_put(ca, "pin", 3, "better", 6, 0), 0, "a second put of the key is not stale");
	is_int(kvn_get(ca, "pin", 3, buf, sizeof buf, &vlen), 0, "get");
	ok(vlen == 6 && memcmp(buf, "better", 6) == 0, "the newest bytes");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", t_start },
		{ "self_chosen", t_self_chosen },
		{ "misused", t_misused },
		{ "node_fine", t_node_fine },
		{ NULL, NULL },
	};
	if (proc_init("grant") != 0)
		return 1;
	proc_watchdog(60);
	kvn_log_set_level(KVN_LOG_ERROR);
	int rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	raw_stop();
	return rc;
}
