/* t/leave_proc: PEER_LEAVE against real processes (issue 13 item 8).  An
 * all-in-one node with master.node_timeout 60 s and a peer process "rp".
 * A PEER_LEAVE naming rp from a client-role connection, and from a
 * peer-role connection that is not rp's attachment, is refused and rp's
 * keys stay readable; SIGTERM of rp makes it leave: it exits 0 saying so,
 * the master says so, and gets of its keys answer KVN_ENOTFOUND well before
 * the node timeout (a correctness bound, not a speed claim). */
#include "config.h"

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

#define NKEYS 40

/* PEER_LEAVE naming node (boot) on proxy: the reply's status or the error. */
static int raw_leave(actor_id proxy, const char *node, uint64_t boot)
{
	struct proto_node n = { .boot_id = boot, .dram_total = 1 << 20 };
	struct actor_msg *m = actor_msg_new(WIRE_PEER_LEAVE);

	snprintf(n.node_id, sizeof n.node_id, "%s", node);
	snprintf(n.addr, sizeof n.addr, "127.0.0.1:1");
	proto_node_enc(m, &n);
	return raw_call(proxy, m);
}

static void t_leave(void)
{
	char conf[300], aio_data[300], path[400], addr[64], keys[NKEYS][16], line[256];
	char on[NKEYS][65];
	uint8_t v[100], g[100];
	size_t vl;
	uint16_t mp = 0;
	int on_rp = 0, st = -1;

	pid_t aio = proc_start_node("aio", "64MiB", "[master]\nnode_timeout = 60s\n", conf, sizeof conf);
	ok(aio > 0, "all-in-one node started (master.node_timeout 60s)");
	snprintf(aio_data, sizeof aio_data, "%s/var-aio", proc_tmp);
	struct kvn_client *c = proc_connect_ready(conf, 1);
	if (!c) {
		ok(0, "the node answers");
		return;
	}
	FILE *f = fopen(conf, "r");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "master = 127.0.0.1:%hu", &mp) == 1)
			break;
	if (f)
		fclose(f);
	pid_t rp = proc_spawn_peer("rp", mp, aio_data);
	kvn_close(c);
	c = proc_connect_ready(conf, 2);
	ok(rp > 0 && c != NULL, "a peer process rp attached");
	if (!c)
		return;

	proc_fill(v, sizeof v, 7);
	for (int i = 0; i < NKEYS; i++) {
		struct kvn_slot s = { 0 };
		snprintf(keys[i], sizeof keys[i], "lv%d", i);
		on[i][0] = '\0';
		if (kvn_put(c, keys[i], strlen(keys[i]), v, sizeof v, 0) != 0)
			continue;
		s.key = keys[i];
		s.klen = strlen(keys[i]);
		if (kvn_resolve(c, &s, 1) == 0)
			snprintf(on[i], sizeof on[i], "%s", s.node_id);
		on_rp += strcmp(on[i], "rp") == 0;
	}
	ok(on_rp > 0, "%d of %d keys landed on rp", on_rp, NKEYS);

	/* refused leaves */
	snprintf(addr, sizeof addr, "127.0.0.1:%u", mp);
	snprintf(path, sizeof path, "%s/client.secret", aio_data);
	actor_id as_client = raw_connect(addr, AUTH_ROLE_CLIENT, path, "t-impostor");
	snprintf(path, sizeof path, "%s/peer.secret", aio_data);
	actor_id as_peer = raw_connect(addr, AUTH_ROLE_PEER, path, "t-impostor");
	is_int(raw_leave(as_client, "rp", 1), KVN_EPERM, "PEER_LEAVE for rp from a client connection: KVN_EPERM");
	is_int(raw_leave(as_peer, "rp", 1), KVN_EPERM,
	       "from a peer connection that is not rp's attachment: KVN_EPERM");
	ok(proc_log_count("aio", "refused PEER_LEAVE for node rp") >= 1, "the master logs the impostor");
	int readable = 0;
	for (int i = 0; i < NKEYS; i++)
		if (strcmp(on[i], "rp") == 0 && kvn_get(c, keys[i], strlen(keys[i]), g, sizeof g, &vl) == 0 &&
		    vl == sizeof v && memcmp(g, v, vl) == 0)
			readable++;
	is_int(readable, on_rp, "rp's keys still read back after the refused leaves");
	ok(proc_log_count("aio", "left on purpose") == 0, "and the master says nobody left");

	/* SIGTERM: rp leaves */
	uint64_t t0 = kvn_now_ms();
	int rs = proc_stop(rp, SIGTERM, 15000, &st);
	ok(rs == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "rp exits 0 on SIGTERM (status %#x)", st);
	ok(kvn_now_ms() - t0 < 10000, "within 10 s (%llu ms)", (unsigned long long)(kvn_now_ms() - t0));
	is_int(proc_log_count("rp", "left the master"), 1, "rp says it left the master");
	is_int(proc_log_count("aio", "node rp left on purpose"), 1, "the master says rp left on purpose");
	int nf = 0, other = 0;
	uint64_t t1 = kvn_now_ms(), longest = 0;
	for (int i = 0; i < NKEYS; i++) {
		uint64_t s0 = kvn_now_ms();
		int rc = kvn_get(c, keys[i], strlen(keys[i]), g, sizeof g, &vl);
		if (kvn_now_ms() - s0 > longest)
			longest = kvn_now_ms() - s0;
		if (strcmp(on[i], "rp") == 0)
			nf += rc == KVN_ENOTFOUND;
		else
			other += rc == 0 && vl == sizeof v && memcmp(g, v, vl) == 0;
	}
	is_int(nf, on_rp, "every key of rp answers KVN_ENOTFOUND (not KVN_EPEERDOWN)");
	is_int(other, NKEYS - on_rp, "the other peer's keys read back");
	ok(kvn_now_ms() - t1 < 10000, "all %d gets answered within 10 s, far below node_timeout (longest %llu ms)",
	   NKEYS, (unsigned long long)longest);
	kvn_close(c);
	ok(proc_stop(aio, SIGTERM, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "the all-in-one node stops at once, exit 0 (status %#x)", st);
	raw_stop();
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "leave", t_leave },
		{ NULL, NULL },
	};
	if (proc_init("leave") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	kvn_log_set_level(KVN_LOG_ERROR);
	return tap_run(tests, argc, argv);
}
