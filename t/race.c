/* t/race: a get that races a put of the same key which moves the key to
 * another peer (issue 11, item 3), through real processes: a master, peer
 * pa holding the key, and peer pb, which has more room and so takes the
 * next put.  The race is made exact with the client's test hook, which runs
 * between a get's route and its read: there, another client puts a new
 * value (placed on pb), the master tells pa to drop the old generation, and
 * only once pa has dropped it (its log says so) does the get go on to read
 * from pa the generation it was routed to.  The get must return the new
 * value (pa answers "superseded" and the client routes again), never
 * KVN_ENOTFOUND; a get by the old ref answers KVN_ESTALE; after a remove,
 * a get answers KVN_ENOTFOUND. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "base/base.h"
#include "kvnode.h"
#include "net/proto.h"
#include "proc.h"
#include "tap.h"

#define VLEN 3000

static char conf_m[300], conf_a[300], conf_b[300], conf_c1[300];
static struct kvn_client *c1; /* the reader: its hook opens the window */
static struct kvn_client *c2; /* the writer */
static uint8_t v1[VLEN], v2[VLEN];
static uint64_t g1, g2;

static void fixture_up(void)
{
	char data_m[300], data_p[300], extra[1200], extra_c1[1400];
	uint16_t mp = proc_free_port(), pa = proc_free_port(), pb = proc_free_port();

	snprintf(data_m, sizeof data_m, "%s/var-m", proc_tmp);
	snprintf(conf_m, sizeof conf_m, "%s/m.conf", proc_tmp);
	snprintf(conf_a, sizeof conf_a, "%s/pa.conf", proc_tmp);
	snprintf(conf_b, sizeof conf_b, "%s/pb.conf", proc_tmp);
	snprintf(conf_c1, sizeof conf_c1, "%s/c1.conf", proc_tmp);
	/* a long node_timeout (nothing here may depend on it), the master's
	 * secrets for everyone */
	snprintf(extra, sizeof extra,
		 "[master]\nnode_timeout = 30s\n[client]\ntimeout = 5s\n"
		 "[auth]\npeer_secret_file = %s/peer.secret\nclient_secret_file = %s/client.secret\n",
		 data_m, data_m);
	proc_write_conf(conf_m, mp, pa, data_m, "64MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-pa", proc_tmp);
	proc_write_conf(conf_a, mp, pa, data_p, "16MiB", extra);
	snprintf(data_p, sizeof data_p, "%s/var-pb", proc_tmp);
	proc_write_conf(conf_b, mp, pb, data_p, "64MiB", extra);
	/* the reader reads through routes, not by speculating on a peer */
	snprintf(extra_c1, sizeof extra_c1, "%s[client]\nspeculative_get = off\n", extra);
	proc_write_conf(conf_c1, mp, pa, data_m, "64MiB", extra_c1);

	const char *args_m[] = { "--role", "master", "--config", conf_m, NULL };
	proc_spawn("m", args_m);
	ok(proc_wait_log("m", "kvnode ready", 1, 15000) == 0, "master up");
	/* pa logs at debug level: the test waits for its "dropped" line */
	const char *args_a[] = { "--role", "peer", "--config", conf_a, "--set", "node.id=pa",
				 "--set", "node.log_level=debug", NULL };
	proc_spawn("pa", args_a);
	c1 = proc_connect_ready(conf_c1, 1);
	c2 = proc_connect_ready(conf_m, 1);
	ok(c1 && c2, "peer pa attached, two clients connected");
	if (!c1 || !c2)
		exit(1);
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/race CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

static void t_put_on_a(void)
{
	fixture();
	struct kvn_slot s;
	uint8_t g[VLEN];
	size_t vlen = 0;

	proc_fill(v1, VLEN, 1);
	proc_fill(v2, VLEN, 2);
	is_int(kvn_put_gen(c2, "x", 1, v1, VLEN, 0, &g1), 0, "put x = v1 (only pa is there)");
	memset(&s, 0, sizeof s);
	s.key = "x";
	s.klen = 1;
	is_int(kvn_resolve(c2, &s, 1), 0, "resolve x");
	is_str(s.node_id, "pa", "x lives on pa");
	is_int(kvn_get(c1, "x", 1, g, sizeof g, &vlen), 0, "the reader gets it");
	ok(vlen == VLEN && memcmp(g, v1, VLEN) == 0, "v1");

	const char *args_b[] = { "--role", "peer", "--config", conf_b, "--set", "node.id=pb", NULL };
	proc_spawn("pb", args_b);
	uint32_t peers = 0;
	for (uint64_t until = kvn_now_ms() + 15000; kvn_now_ms() < until && peers < 2; usleep(50000))
		(void)kvn_ping(c2, NULL, &peers);
	is_int(peers, 2, "peer pb attached (more room than pa)");
}

/* ---- the window between a get's route and its read ---- */

static int hook_calls;
static int hook_put_rc = 1, hook_drop_rc = 1;
static char hook_node[65];

static void *writer(void *arg)
{
	(void)arg;
	hook_put_rc = kvn_put_gen(c2, "x", 1, v2, VLEN, 0, &g2);
	return NULL;
}

static void routed(void *arg, const struct proto_route *rt, size_t n)
{
	pthread_t th;
	struct kvn_slot s;
	(void)arg;

	if (hook_calls++ > 0)
		return; /* the read after a re-route goes on as is */
	snprintf(hook_node, sizeof hook_node, "%s", n ? rt[0].node_id : "");
	/* the writer client is used from its own thread, one call at a time:
	 * this client's call is suspended here meanwhile */
	if (pthread_create(&th, NULL, writer, NULL) != 0)
		kvn_fatal("pthread_create");
	pthread_join(th, NULL);
	memset(&s, 0, sizeof s);
	s.key = "x";
	s.klen = 1;
	if (hook_put_rc == 0 && kvn_resolve(c2, &s, 1) == 0 && strcmp(s.node_id, "pb") == 0)
		/* the master told pa to drop gen g1; wait until pa has */
		hook_drop_rc = proc_wait_log("pa", "superseded generation", 1, 10000);
}

static void t_get_races_move(void)
{
	fixture();
	if (!g1)
		t_put_on_a(); /* run alone: x on pa, pb attached */
	uint8_t g[VLEN];
	size_t vlen = 0;

	client_set_routed_hook(c1, routed, NULL);
	int rc = kvn_get(c1, "x", 1, g, sizeof g, &vlen);
	client_set_routed_hook(c1, NULL, NULL);
	is_str(hook_node, "pa", "the get was routed to pa");
	is_int(hook_put_rc, 0, "in the window, another client put x = v2");
	ok(g2 > g1, "with a newer generation");
	is_int(hook_drop_rc, 0, "x moved to pb and pa dropped generation g1 before the get read it");
	is_int(rc, 0, "the get succeeds: not KVN_ENOTFOUND");
	ok(vlen == VLEN && memcmp(g, v2, VLEN) == 0, "with the new value");
	ok(hook_calls >= 2, "after asking the master again (%d routes)", hook_calls);

	is_int(kvn_get_gen(c1, "x", 1, g1, g, sizeof g, &vlen), KVN_ESTALE, "a get by the old ref: KVN_ESTALE");
	is_int(kvn_get_gen(c1, "x", 1, g2, g, sizeof g, &vlen), 0, "by the new ref: its value");
	is_int(kvn_remove(c2, "x", 1), 0, "remove x");
	is_int(kvn_get(c1, "x", 1, g, sizeof g, &vlen), KVN_ENOTFOUND, "then a get: KVN_ENOTFOUND");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "start", fixture },
		{ "put_on_a", t_put_on_a },
		{ "get_races_move", t_get_races_move },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("race") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(90);
	rc = tap_run(tests, argc, argv);
	kvn_close(c1);
	kvn_close(c2);
	return rc;
}
