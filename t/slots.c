/* t/slots: the three-step put (ALLOC_SLOT, COMMIT_SLOT, ABORT_SLOT) and
 * RESOLVE_KEY over TCP through a real kvnode, and gets by generation:
 * round trips of single slots and batches, a reserved slot invisible until
 * committed, a commit after peer.pending_ttl refused with KVN_ESTATE, a
 * double abort refused, a commit of the wrong size refused (the slot stays
 * usable), a commit that lost to a newer put, each refusal batch reported
 * by one aggregated warning with its count; a get by ref that answers
 * KVN_ESTALE after a re-put and never the newer bytes. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "net/proto.h"
#include "kvnode.h"
#include "net/net.h"
#include "proc.h"
#include "tap.h"

#define TTL_MS 300

static struct kvn_client *ca;
static char conf_a[300];

static void slot_init(struct kvn_slot *s, const char *key, uint64_t size, const void *val)
{
	memset(s, 0, sizeof *s);
	s->key = key;
	s->klen = strlen(key);
	s->size = size;
	s->val = val;
}

static void fixture_up(void)
{
	char data[300], extra[200];
	uint16_t mp = proc_free_port(), pp = proc_free_port();
	snprintf(conf_a, sizeof conf_a, "%s/a.conf", proc_tmp);
	snprintf(data, sizeof data, "%s/var-a", proc_tmp);
	/* get_by_ref counts the TCP path's frames (through the master) */
	snprintf(extra, sizeof extra, "local = off\n[peer]\npending_ttl = %dms\n", TTL_MS);
	proc_write_conf(conf_a, mp, pp, data, "64MiB", extra);
	const char *args[] = { "--config", conf_a, NULL };
	proc_spawn("aio", args);
	ca = proc_connect_ready(conf_a, 1);
	ok(ca != NULL, "all-in-one node up (pending_ttl %d ms), client connected", TTL_MS);
	if (!ca)
		exit(1);
}

/* The node and clients every case uses: started once, by "start" or by
 * the first case that needs them when cases are named (./t/slots CASE). */
static void fixture(void)
{
	static int up;

	if (!up) {
		up = 1;
		fixture_up();
	}
}

static void t_round_trip(void)
{
	fixture();
	static const uint64_t sizes[] = { 0, 1000, 3 << 20 };
	struct kvn_slot s[3], r[3];
	char keys[3][32];
	uint8_t *vals[3], *g = kvn_xmalloc(3 << 20);
	int bad = 0;

	for (int i = 0; i < 3; i++) {
		snprintf(keys[i], sizeof keys[i], "slot/rt-%d", i);
		vals[i] = kvn_xmalloc(sizes[i] ? sizes[i] : 1);
		proc_fill(vals[i], sizes[i], (uint64_t)i + 11);
		slot_init(&s[i], keys[i], sizes[i], vals[i]);
	}
	is_int(kvn_alloc_slots(ca, s, 3), 0, "alloc 3 slots (0 B, 1000 B, 3 MiB)");
	for (int i = 0; i < 3; i++)
		if (s[i].status || s[i].gen == 0 || !s[i].node_id[0] || !s[i].node_addr[0] || s[i].addr || s[i].rkey)
			bad++;
	is_int(bad, 0, "each has a gen and a node; addr and rkey are 0 over TCP");
	is_int(kvn_exists(ca, keys[1], strlen(keys[1])), 0, "a reserved slot is not visible");
	is_int(kvn_get(ca, keys[2], strlen(keys[2]), g, 3 << 20, NULL), KVN_ENOTFOUND, "nor readable");

	is_int(kvn_commit_slots(ca, s, 3, 0), 0, "commit all three with their bytes");
	bad = 0;
	for (int i = 0; i < 3; i++) {
		size_t vlen = 12345;
		if (s[i].status || kvn_get(ca, keys[i], strlen(keys[i]), g, 3 << 20, &vlen) != 0 ||
		    vlen != sizes[i] || memcmp(g, vals[i], sizes[i]) != 0)
			bad++;
	}
	is_int(bad, 0, "committed values read back byte for byte");

	for (int i = 0; i < 3; i++)
		slot_init(&r[i], keys[i], 0, NULL);
	is_int(kvn_resolve(ca, r, 3), 0, "resolve the three keys");
	bad = 0;
	for (int i = 0; i < 3; i++)
		if (r[i].status || r[i].gen != s[i].gen || r[i].size != sizes[i] || strcmp(r[i].node_id, s[i].node_id))
			bad++;
	is_int(bad, 0, "resolve gives the committed gen, size and node");
	size_t vlen = 0;
	is_int(kvn_get_gen(ca, keys[1], strlen(keys[1]), r[1].gen, g, 3 << 20, &vlen), 0, "get by the resolved ref");
	ok(vlen == 1000 && memcmp(g, vals[1], 1000) == 0, "exact bytes");
	is_int(kvn_commit_slots(ca, s, 1, 0), KVN_ESTATE, "committing again: KVN_ESTATE");
	is_int(kvn_abort_slots(ca, s + 1, 1), KVN_ESTATE, "aborting a committed slot: KVN_ESTATE");
	is_int(kvn_get(ca, keys[1], strlen(keys[1]), g, 3 << 20, &vlen), 0, "and the value is untouched");

	struct kvn_slot nf;
	slot_init(&nf, "slot/never", 0, NULL);
	is_int(kvn_resolve(ca, &nf, 1), KVN_ENOTFOUND, "resolve of a missing key: KVN_ENOTFOUND");
	for (int i = 0; i < 3; i++)
		free(vals[i]);
	free(g);
}

static void t_batch(void)
{
	fixture();
	enum { N = 200 };
	struct kvn_slot s[N];
	char keys[N][32];
	static uint8_t vals[N][512];
	uint8_t g[512];
	int bad = 0;

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "slot/batch-%03d", i);
		proc_fill(vals[i], sizeof vals[i], (uint64_t)i + 500);
		slot_init(&s[i], keys[i], sizeof vals[i], vals[i]);
	}
	is_int(kvn_alloc_slots(ca, s, N), 0, "alloc 200 slots in one call");
	is_int(kvn_commit_slots(ca, s, N, KVN_PUT_DURABLE), 0, "durable commit of 200 slots in one call");
	for (int i = 0; i < N; i++) {
		size_t vlen = 0;
		if (kvn_get_gen(ca, keys[i], strlen(keys[i]), s[i].gen, g, sizeof g, &vlen) != 0 ||
		    vlen != sizeof g || memcmp(g, vals[i], sizeof g) != 0)
			bad++;
	}
	is_int(bad, 0, "every slot reads back by its ref");
	char db[400];
	snprintf(db, sizeof db, "%s/var-a/master.db", proc_tmp);
	is_int(proc_sql_int(db, "select count(*) from v_objects where key like 'slot/batch-%'"), N,
	       "durable: in master.db when the commit returned");
}

static void t_abort_and_double_abort(void)
{
	fixture();
	enum { N = 5 };
	struct kvn_slot s[N];
	char keys[N][32];
	static uint8_t v[100];
	/* refusals of the cases before are logged with the next heartbeat
	 * (100 ms here): let that line go first, or ours would add to it */
	usleep(300 * 1000);
	int before = proc_log_count("aio", "5 double or late abort(s)");

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "slot/abort-%d", i);
		slot_init(&s[i], keys[i], sizeof v, v);
	}
	is_int(kvn_alloc_slots(ca, s, N), 0, "alloc 5");
	is_int(kvn_abort_slots(ca, s, N), 0, "abort 5");
	is_int(kvn_abort_slots(ca, s, N), KVN_ESTATE, "abort the same 5 again: KVN_ESTATE");
	int bad = 0;
	for (int i = 0; i < N; i++)
		if (s[i].status != KVN_ESTATE)
			bad++;
	is_int(bad, 0, "each refused");
	is_int(kvn_commit_slots(ca, s, 1, 0), KVN_ESTATE, "commit after abort: KVN_ESTATE");
	is_int(kvn_exists(ca, keys[0], strlen(keys[0])), 0, "nothing stored");
	is_int(proc_wait_log("aio", "5 double or late abort(s)", before + 1, 3000), 0,
	       "the peer logs one aggregated warning with the count");
	is_int(proc_log_count("aio", "double or late abort(s)") >= 1 &&
		       proc_log_count("aio", "slot/abort-") == 0,
	       1, "no line names a key");
}

static void t_late_commit(void)
{
	fixture();
	enum { N = 4 };
	struct kvn_slot s[N];
	char keys[N][32];
	static uint8_t v[N][4096];
	int lines_before = proc_log_count("aio", "slot transition(s) since the last heartbeat");

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "slot/late-%d", i);
		proc_fill(v[i], sizeof v[i], (uint64_t)i);
		slot_init(&s[i], keys[i], sizeof v[i], v[i]);
	}
	is_int(kvn_alloc_slots(ca, s, N), 0, "alloc 4");
	usleep((TTL_MS * 2 + 200) * 1000); /* past the TTL and a reaper run */
	is_int(kvn_commit_slots(ca, s, N, 0), KVN_ESTATE, "commit after peer.pending_ttl: KVN_ESTATE");
	int bad = 0;
	for (int i = 0; i < N; i++)
		if (s[i].status != KVN_ESTATE || kvn_exists(ca, keys[i], strlen(keys[i])) != 0)
			bad++;
	is_int(bad, 0, "every item refused and nothing visible");
	is_int(proc_wait_log("aio", "4 late or unknown commit(s)", 1, 3000), 0,
	       "one warning counts the 4 late commits");
	usleep(300 * 1000);
	/* One line counts all 4 (checked above).  A second line appeared
	 * once under ASan, when refusals fell on both sides of a heartbeat
	 * (the line covers key-table refusals too); one per key would be 4. */
	int lines = proc_log_count("aio", "slot transition(s) since the last heartbeat") - lines_before;
	ok(lines >= 1 && lines < N, "aggregated: %d line(s) for the %d keys, not one per key", lines, N);
	is_int(kvn_abort_slots(ca, s, 1), KVN_ESTATE, "an abort after the reaper: KVN_ESTATE");
	ok(proc_log_count("aio", "reclaimed") >= 1, "the reaper reclaimed the pending slots");
	/* the slot's pages went back: a new alloc of the same keys works */
	is_int(kvn_alloc_slots(ca, s, N), 0, "the keys can be reserved again");
	is_int(kvn_commit_slots(ca, s, N, 0), 0, "and committed in time");
}

static void t_wrong_size(void)
{
	fixture();
	struct kvn_slot s, dup[2];
	static uint8_t v[1000];
	uint8_t g[1000];
	size_t vlen = 0;

	proc_fill(v, sizeof v, 99);
	slot_init(&s, "slot/size", sizeof v, v);
	is_int(kvn_alloc_slots(ca, &s, 1), 0, "alloc 1000 bytes");
	s.size = 999;
	is_int(kvn_commit_slots(ca, &s, 1, 0), KVN_EINVAL, "commit of 999 bytes: KVN_EINVAL");
	is_int(kvn_exists(ca, "slot/size", 9), 0, "not visible");
	is_int(proc_wait_log("aio", "1 commit(s) of the wrong size", 1, 3000), 0, "warned, with the count");
	s.size = 1000;
	is_int(kvn_commit_slots(ca, &s, 1, 0), 0, "the slot stayed reserved: the right size commits");
	is_int(kvn_get(ca, "slot/size", 9, g, sizeof g, &vlen), 0, "readable");
	ok(vlen == sizeof v && memcmp(g, v, sizeof v) == 0, "intact");

	/* the same slot twice in one commit: the second is refused */
	slot_init(&dup[0], "slot/dup", sizeof v, v);
	is_int(kvn_alloc_slots(ca, dup, 1), 0, "alloc");
	dup[1] = dup[0];
	is_int(kvn_commit_slots(ca, dup, 2, 0), KVN_ESTATE, "the same slot twice in one commit");
	ok(dup[0].status == 0 && dup[1].status == KVN_ESTATE, "first commits (%d), second refused (%d)",
	   dup[0].status, dup[1].status);
}

static void t_commit_loses_to_newer_put(void)
{
	fixture();
	struct kvn_slot s;
	static uint8_t v[64];
	uint8_t g[64];
	size_t vlen = 0;

	memset(v, 's', sizeof v);
	slot_init(&s, "slot/race", sizeof v, v);
	is_int(kvn_alloc_slots(ca, &s, 1), 0, "reserve a slot (older gen)");
	uint64_t g2 = 0;
	is_int(kvn_put_gen(ca, "slot/race", 9, "newer", 5, 0, &g2), 0, "a plain put of the key meanwhile");
	ok(g2 > s.gen, "the put got a newer gen");
	is_int(kvn_commit_slots(ca, &s, 1, 0), 0, "the older slot's commit succeeds (overwritten, ordered first)");
	is_int(kvn_get(ca, "slot/race", 9, g, sizeof g, &vlen), 0, "get");
	ok(vlen == 5 && memcmp(g, "newer", 5) == 0, "the newer value stays");
}

static void t_get_by_ref(void)
{
	fixture();
	uint8_t v1[3000], v2[5000], g[8192];
	uint64_t g1 = 0, g2 = 0;
	size_t vlen = 0;

	proc_fill(v1, sizeof v1, 1);
	proc_fill(v2, sizeof v2, 2);
	is_int(kvn_put_gen(ca, "ref", 3, v1, sizeof v1, 0, &g1), 0, "put_gen");
	ok(g1 != 0, "returns the generation");
	is_int(kvn_get_gen(ca, "ref", 3, g1, g, sizeof g, &vlen), 0, "get by that ref");
	ok(vlen == sizeof v1 && memcmp(g, v1, sizeof v1) == 0, "its bytes");
	is_int(kvn_put_gen(ca, "ref", 3, v2, sizeof v2, 0, &g2), 0, "re-put");
	ok(g2 > g1, "a newer generation");
	memset(g, 0x5a, sizeof g);
	vlen = 777;
	struct net_stats n0, n1;
	net_get_stats(&n0); /* this process is the client: its frames only */
	is_int(kvn_get_gen(ca, "ref", 3, g1, g, sizeof g, &vlen), KVN_ESTALE, "the old ref: KVN_ESTALE");
	net_get_stats(&n1);
	int untouched = 1;
	for (size_t i = 0; i < sizeof g; i++)
		if (g[i] != 0x5a)
			untouched = 0;
	ok(untouched, "never the newer bytes: the buffer is untouched");
	is_int(n1.frames_out - n0.frames_out, 1, "not retried: one GET was sent, through the master");
	is_int(kvn_get_gen(ca, "ref", 3, g2, g, sizeof g, &vlen), 0, "the new ref reads");
	ok(vlen == sizeof v2 && memcmp(g, v2, sizeof v2) == 0, "its bytes");
	is_int(kvn_get(ca, "ref", 3, g, sizeof g, &vlen), 0, "a plain get");
	ok(vlen == sizeof v2 && memcmp(g, v2, sizeof v2) == 0, "is the latest");
	is_int(kvn_get_gen(ca, "ref", 3, 0, g, sizeof g, &vlen), KVN_EINVAL, "gen 0 is not a ref: KVN_EINVAL");
	is_int(kvn_get_gen(ca, "ref", 3, g2 + 1, g, sizeof g, &vlen), KVN_ESTALE, "a gen never stored: KVN_ESTALE");
	is_int(kvn_remove(ca, "ref", 3), 0, "remove");
	is_int(kvn_get_gen(ca, "ref", 3, g2, g, sizeof g, &vlen), KVN_ENOTFOUND,
	       "a removed key's ref: KVN_ENOTFOUND");
	uint64_t gx = 1;
	is_int(kvn_put_gen(ca, "", 0, v1, 1, 0, &gx), KVN_EKEYLEN, "put_gen with a bad key fails");
	is_int(gx, 0, "and reports gen 0");
}

static void t_bad_args(void)
{
	fixture();
	struct kvn_slot s;
	slot_init(&s, "slot/bad", 10, "0123456789");
	is_int(kvn_commit_slots(ca, &s, 1, 0), KVN_EINVAL, "commit of a slot never allocated: KVN_EINVAL");
	is_int(kvn_alloc_slots(NULL, &s, 1), KVN_EINVAL, "no client: KVN_EINVAL");
	slot_init(&s, "", 10, NULL);
	is_int(kvn_alloc_slots(ca, &s, 1), KVN_EKEYLEN, "empty key: KVN_EKEYLEN");
	slot_init(&s, "slot/huge", 49u << 20, NULL);
	is_int(kvn_alloc_slots(ca, &s, 1), KVN_ETOOBIG, "over max_value_size: KVN_ETOOBIG");
	is_int(kvn_alloc_slots(ca, NULL, 0), 0, "an empty batch is fine");
}

/* ALLOC_SLOT's reply layout: what is encoded decodes; truncated, padded,
 * a positive status or a count the bytes cannot hold are refused. */
static void t_slot_codec(void)
{
	struct proto_slot_result in[2] = { { 0, 7, 0x1000, 42 }, { KVN_ENOSPC, 9, 0, 0 } }, out;
	struct wire_w w;
	struct wire_r r;
	struct actor_msg *m = actor_msg_new(WIRE_ALLOC_SLOT);
	uint32_t n = 0;

	wire_w_init(&w);
	proto_slots_begin(&w, 2);
	proto_slots_add(&w, &in[0]);
	proto_slots_add(&w, &in[1]);
	is_int(wire_w_to_msg(&w, m), 0, "encode two slot results");
	is_int(proto_slots_open(&r, m->meta, m->meta_len, &n), 0, "open");
	is_int(n, 2, "two items");
	int same = proto_slots_next(&r, &out) == 0 && out.status == 0 && out.gen == 7 && out.addr == 0x1000 &&
		   out.rkey == 42;
	same = same && proto_slots_next(&r, &out) == 0 && out.status == KVN_ENOSPC && out.gen == 9;
	ok(same, "both decode as encoded");
	is_int(wire_r_end(&r), 0, "nothing left over");
	is_int(proto_slots_open(&r, m->meta, m->meta_len - 1, &n) == 0 && proto_slots_next(&r, &out) == 0 &&
		       proto_slots_next(&r, &out) == 0 ? 0 : KVN_EPROTO,
	       KVN_EPROTO, "one byte short: refused");
	m->meta[4] = 1; /* first status becomes +1 */
	proto_slots_open(&r, m->meta, m->meta_len, &n);
	is_int(proto_slots_next(&r, &out), KVN_EPROTO, "a positive status: refused");
	m->meta[0] = 3; /* claims three items in the bytes of two */
	is_int(proto_slots_open(&r, m->meta, m->meta_len, &n), KVN_EPROTO, "a count the bytes cannot hold");
	actor_msg_free(m);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "slot_codec", t_slot_codec },
		{ "start", fixture },
		{ "round_trip", t_round_trip },
		{ "batch", t_batch },
		{ "abort_and_double_abort", t_abort_and_double_abort },
		{ "late_commit", t_late_commit },
		{ "wrong_size", t_wrong_size },
		{ "commit_loses_to_newer_put", t_commit_loses_to_newer_put },
		{ "get_by_ref", t_get_by_ref },
		{ "bad_args", t_bad_args },
		{ NULL, NULL },
	};
	int rc;

	if (proc_init("slots") != 0)
		return 1;
	proc_logs_on_failure = 1;
	proc_watchdog(120);
	rc = tap_run(tests, argc, argv);
	kvn_close(ca);
	return rc;
}
