/*
 * t/queue_master: the master's consumer queue (master_queue.c), in process:
 * test actors play peers and consumers (t/master_env.h).  LEASE order and
 * partitions, the partition hash's pinned values, RELEASE (consume,
 * retain, return, generation-aware), RENEW, expiry, a sample of a dead
 * node (not leased, EPEERDOWN on route), restart with reconcile, and the
 * SQL views answering meanwhile.
 */
#include "config.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <xxhash.h>

#include "master_env.h"

#define QF (PROTO_EV_F_QUEUE)
#define NS 12

static char keys[NS][32];

/* Attach "p1" on peer actor 0 and commit NS queue samples q/0.. (gen 100+i)
 * as durable EVENTS, one per sample; q/0's flags also have extra0. */
static void fill(uint8_t extra0)
{
	struct proto_ack ack;
	int bad = 0;
	is_int(attach(0, "p1", 7, 1 << 30, 0, &ack), 0, "peer attached");
	is_int(sync_chunk(0, "p1", 7, 0, 0, 1, NULL, 0, &ack), 0, "its first full sync (empty)");
	for (int i = 0; i < NS; i++) {
		snprintf(keys[i], sizeof keys[i], "q/%d", i);
		struct tev ev = { (uint64_t)i + 1, PROTO_EV_ADD, keys[i], 100 + (uint64_t)i, 0, 10 };
		uint8_t fl = PROTO_EV_F_DURABLE | QF | (i == 0 ? extra0 : 0);
		bad += reply_ack(call(&E.peers[0], mk_events_d("p1", 7, &ev, 1, fl), AUTH_ROLE_PEER), &ack) != 0;
	}
	is_int(bad, 0, "%d queue samples applied", NS);
}

struct lref {
	uint64_t id, gen, deadline;
	char key[64];
};

/* LEASE; returns the status (-999: no reply), refs in out[0..*n). */
static int lease(uint32_t pi, uint32_t pn, uint32_t max, uint64_t ttl, struct lref *out, uint32_t *n)
{
	struct proto_lease_req q = { .part_i = pi, .part_n = pn, .max = max, .ttl_ms = ttl };
	struct actor_msg *m = actor_msg_new(WIRE_LEASE), *r;
	struct proto_lease_ref ref;
	struct wire_r rd;
	int st;

	snprintf(q.holder, sizeof q.holder, "t:%d", (int)getpid());
	*n = 0;
	if (proto_lease_enc(m, &q) != 0)
		kvn_fatal("lease enc");
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	if (!r)
		return -999;
	st = r->status;
	if (st == 0 && proto_lease_reply_open(&rd, r, n) == 0)
		for (uint32_t i = 0; i < *n && proto_lease_reply_next(&rd, &ref) == 0; i++) {
			out[i].id = ref.lease_id;
			out[i].gen = ref.gen;
			out[i].deadline = ref.deadline_ms;
			snprintf(out[i].key, sizeof out[i].key, "%.*s", (int)ref.klen, (const char *)ref.key);
		}
	actor_msg_free(r);
	return st;
}

/* RELEASE (renew 0) or RENEW (renew: the ttl) of ids; per-id status into
 * st; the call's status. */
static int ids_call(int renew, uint8_t flags, uint64_t ttl, const uint64_t *ids, uint32_t n, int32_t *st)
{
	struct actor_msg *m = actor_msg_new(renew ? WIRE_RENEW : WIRE_RELEASE), *r;
	struct wire_w w;
	struct wire_r rd;
	uint32_t cnt = 0;
	uint64_t dl;
	int s;

	wire_w_init(&w);
	if (renew)
		proto_renew_begin(&w, ttl, n);
	else
		proto_release_begin(&w, flags, n);
	for (uint32_t i = 0; i < n; i++)
		proto_ids_add(&w, ids[i]);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("ids enc");
	r = call(&E.client, m, AUTH_ROLE_CLIENT);
	if (!r)
		return -999;
	s = r->status;
	if (s == 0 && proto_lstat_open(&rd, r, &cnt) == 0 && cnt == n)
		for (uint32_t i = 0; i < n; i++)
			(void)proto_lstat_next(&rd, &st[i], &dl);
	else if (s == 0)
		s = -998;
	actor_msg_free(r);
	return s;
}

static int release1(uint64_t id, uint8_t flags)
{
	int32_t st = -999;
	int s = ids_call(0, flags, 0, &id, 1, &st);
	return s ? s : st;
}

/* The partition hash is XXH64 of the key bytes with seed 0: pinned
 * against the library's XXH64 and two literal values, so a change of
 * kvn_hash64 (which would re-partition every queue) fails here. */
static void t_hash(void)
{
	is_int(kvn_hash64("", 0) == 0xEF46DB3751D8E999ull, 1, "kvn_hash64(\"\") is XXH64's known empty value");
	is_int(kvn_hash64("a", 1) == 0xD24EC4F1A98C6E5Bull, 1, "kvn_hash64(\"a\") is XXH64(\"a\", 0)");
	is_int(kvn_hash64("q/7", 3) == XXH64("q/7", 3, 0), 1, "kvn_hash64 is libxxhash's XXH64, seed 0");
}

static void t_order_and_release(void)
{
	struct lref r[NS], r2[NS];
	uint32_t n = 0, n2 = 0;

	env_up("order", 60000);
	fill(0);
	is_int(lease(0, 1, 3, 30000, r, &n), 0, "LEASE answered");
	is_int((int)n, 3, "max 3: three refs");
	ok(n == 3 && !strcmp(r[0].key, "q/0") && !strcmp(r[1].key, "q/1") && !strcmp(r[2].key, "q/2"),
	   "oldest commit first: q/0, q/1, q/2");
	ok(n == 3 && r[0].id && r[0].id != r[1].id && r[0].gen == 100, "ids non-zero and distinct; gen is the sample's");
	ok(n == 3 && r[0].deadline > kvn_wall_ms() + 20000, "deadline about ttl ahead");
	is_int(lease(0, 1, 3, 30000, r2, &n2), 0, "a second LEASE");
	ok(n2 == 3 && !strcmp(r2[0].key, "q/3"), "never a leased sample again: it starts at q/3");
	is_int(release1(r[0].id, 0), 0, "RELEASE of a live lease: 0");
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 2000);
	ok(d != NULL, "its peer is told to drop that generation");
	actor_msg_free(d);
	struct proto_route rt;
	is_int(get1("q/0", &rt), KVN_ENOTFOUND, "the consumed sample is gone from the index");
	is_int(release1(r[0].id, 0), KVN_ESTATE, "a second RELEASE of it: KVN_ESTATE");
	is_int(release1(12345, 0), KVN_ESTATE, "an unknown id: KVN_ESTATE");
	/* RETURN puts it back in its place (before the newer ones) */
	is_int(release1(r[1].id, PROTO_RELEASE_RETURN), 0, "RELEASE with RETURN");
	is_int(lease(0, 1, 1, 30000, r2, &n2), 0, "LEASE after the return");
	ok(n2 == 1 && !strcmp(r2[0].key, "q/1") && r2[0].id != r[1].id, "the returned sample comes first, new lease id");
	is_int(release1(r[1].id, 0), KVN_ESTATE, "the old id of a returned sample is dead");
	env_down();
}

static void t_partitions(void)
{
	struct lref r[NS];
	int seen[NS] = { 0 }, wrong = 0, total = 0;

	env_up("parts", 60000);
	fill(0);
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t n = 0;
		is_int(lease(i, 3, NS, 30000, r, &n), 0, "LEASE of partition %u/3", i);
		for (uint32_t k = 0; k < n; k++) {
			int idx = atoi(r[k].key + 2);
			if (kvn_hash64(r[k].key, strlen(r[k].key)) % 3 != i)
				wrong++;
			if (k > 0 && atoi(r[k - 1].key + 2) > idx)
				wrong++;
			seen[idx]++;
			total++;
		}
	}
	is_int(wrong, 0, "each answer holds only its partition's samples, in commit order");
	is_int(total, NS, "the three partitions together hold every sample once");
	/* a different count now: every sample is leased already */
	uint32_t n = 0;
	is_int(lease(0, 2, NS, 30000, r, &n), 0, "LEASE with 2 partitions");
	is_int((int)n, 0, "changing the count leases nothing leased already");
	env_down();
}

static void t_expiry_and_renew(void)
{
	struct lref r[NS], r2[NS];
	uint32_t n = 0, n2 = 0;
	int32_t st[2];

	env_up("expiry", 60000);
	fill(0);
	is_int(lease(0, 1, 2, 150, r, &n), 0, "two leases of 150 ms");
	uint64_t ids[2] = { r[0].id, r[1].id };
	is_int(ids_call(1, 0, 60000, &ids[1], 1, st), 0, "RENEW of the second");
	is_int(st[0], 0, "renewed");
	pump(400);
	is_int(release1(r[0].id, 0), KVN_ESTATE, "RELEASE after the deadline: KVN_ESTATE");
	is_int(ids_call(1, 0, 1000, &ids[0], 1, st), 0, "RENEW of the expired one answered");
	is_int(st[0], KVN_ESTATE, "... KVN_ESTATE");
	is_int(lease(0, 1, 2, 30000, r2, &n2), 0, "LEASE after the expiry");
	ok(n2 == 2 && !strcmp(r2[0].key, "q/0") && !strcmp(r2[1].key, "q/2"),
	   "the expired sample is back in its commit-order place; the renewed one is not handed out");
	is_int(release1(r[1].id, 0), 0, "the renewed lease is still live");
	env_down();
}

static void t_retain(void)
{
	struct lref r[NS];
	uint32_t n = 0;
	struct proto_route rt;

	env_up("retain", 60000);
	fill(PROTO_EV_F_RETAIN);
	is_int(lease(0, 1, 2, 30000, r, &n), 0, "LEASE");
	is_int(release1(r[0].id, 0), 0, "release of a sample put with retain");
	is_int(release1(r[1].id, PROTO_RELEASE_RETAIN), 0, "release with RETAIN");
	is_int(get1("q/0", &rt), 0, "a retained sample stays readable");
	is_int(get1("q/1", &rt), 0, "so does one released with RETAIN");
	is_int(lease(0, 1, NS, 30000, r, &n), 0, "LEASE of the rest");
	ok(n == NS - 2 && strcmp(r[0].key, "q/0") && strcmp(r[0].key, "q/1"), "consumed samples are not handed out again");
	env_down();
}

static int count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int v = -1;
	if (sqlite3_open_v2(E.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -2;
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	} else {
		printf("# %s: %s\n", sql, sqlite3_errmsg(db));
	}
	sqlite3_close(db);
	return v;
}

static void t_restart(void)
{
	struct lref r[NS], r2[NS];
	uint32_t n = 0, n2 = 0;
	struct proto_ack ack;
	struct tev ev[NS];

	env_up("restart", 60000);
	fill(0);
	is_int(lease(0, 1, 2, 60000, r, &n), 0, "a long lease");
	is_int(lease(0, 1, 1, 100, r2, &n2), 0, "and a short one");
	is_int(count_rows("select count(*) from leases"), 3, "three lease rows in master.db");
	is_int(count_rows("select sum(committed) from v_queue where part_n = 1"), NS, "v_queue: every sample committed");
	is_int(count_rows("select sum(leased) from v_queue where part_n = 1"), 3, "v_queue: three leased");
	pump(300);
	master_down();
	master_up();
	is_int(count_rows("select count(*) from leases"), 2, "the restart dropped the expired lease row");
	/* the peer comes back to the new master and re-syncs its samples */
	is_int(attach(0, "p1", 7, 1 << 30, 0, &ack), 0, "peer re-attached");
	for (int i = 0; i < NS; i++)
		ev[i] = (struct tev){ 0, 0, keys[i], 100 + (uint64_t)i, 0, 10 };
	E.sync_flags = QF;
	is_int(sync_chunk(0, "p1", 7, NS, 0, 1, ev, NS, &ack), 0, "full sync");
	is_int(release1(r[0].id, 0), 0, "a lease from before the restart is released");
	is_int(lease(0, 1, NS, 30000, r2, &n2), 0, "LEASE after the restart");
	ok(n2 == NS - 2 && !strcmp(r2[0].key, "q/2"),
	   "the expired sample is back, the live lease holds q/1, q/0 is consumed (%u refs, first %s)", n2,
	   n2 ? r2[0].key : "-");
	is_int(count_rows("select sum(consumed) from v_queue where part_n = 1"), 1, "v_queue counts the consumption");
	env_down();
}

static void t_dead_node(void)
{
	struct lref r[NS];
	uint32_t n = 0;
	struct proto_route rt;

	env_up("dead", 300);
	fill(0);
	is_int(lease(0, 1, 1, 60000, r, &n), 0, "a lease");
	pump(1200); /* the peer says nothing: declared dead */
	is_int(get1("q/0", &rt), KVN_EPEERDOWN, "ROUTE_GET of a leased sample whose node is dead: KVN_EPEERDOWN");
	is_int(lease(0, 1, NS, 30000, r, &n), 0, "LEASE");
	is_int((int)n, 0, "samples of a dead node are not handed out");
	pump(300);
	is_int(count_rows("select sum(lost) from v_queue where part_n = 1"), NS, "v_queue counts them lost");
	env_down();
}

/* A sample consumed while its node was dead stays consumed when the node
 * comes back (a new process that recovered it from disk, so its DROP_GEN
 * died with the old one) and full-syncs it: found by t/sim rule h. */
static void t_consumed_stays_gone(void)
{
	struct lref r[NS];
	uint32_t n = 0;
	struct proto_route rt;
	struct proto_ack ack;
	struct tev ev[NS];

	env_up("gone", 300);
	fill(0);
	is_int(lease(0, 1, 1, 60000, r, &n), 0, "a lease of q/0");
	pump(1200); /* declared dead */
	is_int(release1(r[0].id, 0), 0, "released (consumed) while its node is dead");
	tact_clear(&E.peers[0]);
	is_int(attach(0, "p1", 8, 1 << 30, 0, &ack), 0, "the node is back, a new process");
	for (int i = 0; i < NS; i++)
		ev[i] = (struct tev){ 0, 0, keys[i], 100 + (uint64_t)i, 1, 10 };
	E.sync_flags = QF;
	is_int(sync_chunk(0, "p1", 8, 0, 0, 1, ev, NS, &ack), 0, "its full sync lists every sample, q/0 too");
	is_int(get1("q/0", &rt), KVN_ENOTFOUND, "the consumed sample is not indexed again");
	struct actor_msg *d = take(&E.peers[0], WIRE_DROP_GEN, 2000);
	ok(d != NULL, "the node is told to drop it");
	actor_msg_free(d);
	is_int(lease(0, 1, NS, 30000, r, &n), 0, "LEASE");
	ok(n == NS - 1 && strcmp(r[0].key, "q/0") != 0, "the other samples are back, q/0 is not (%u refs)", n);
	env_down();
}

/* A tier move of a sample that reaches the master while its RELEASE is
 * being written must not write the sample's row again after the delete
 * (found by t/queue_prop: a consumed sample back in master.db). */
static void t_move_during_release(void)
{
	struct lref r[NS];
	uint32_t n = 0;
	struct proto_ack ack;
	struct tcall c = { 0 };
	struct wire_w w;

	env_up("move", 60000);
	fill(0);
	is_int(lease(0, 1, 1, 60000, r, &n), 0, "a lease of q/0");
	struct actor_msg *m = actor_msg_new(WIRE_RELEASE);
	wire_w_init(&w);
	proto_release_begin(&w, 0, 1);
	proto_ids_add(&w, r[0].id);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("release enc");
	m->src_role = AUTH_ROLE_CLIENT;
	ok(actor_call(E.client.a, E.mid, m, CALL_MS, call_cb, &c) == 0, "RELEASE sent, its reply not waited for");
	/* the peer offloaded q/0 meanwhile: ADD of the same generation, tier disk */
	struct tev mv = { NS + 1, PROTO_EV_ADD, keys[0], 100, 1, 10 };
	is_int(reply_ack(call(&E.peers[0], mk_events_d("p1", 7, &mv, 1, 0), AUTH_ROLE_PEER), &ack), 0,
	       "the tier move is applied");
	actor_loop_run_until(E.tl, &c.done, kvn_now_ms() + CALL_MS + 1000);
	ok(c.done && !c.err && c.reply && c.reply->status == 0, "the RELEASE answered");
	actor_msg_free(c.reply);
	pump(200); /* the writer commits whatever the move sent */
	is_int(count_rows("select count(*) from objects where key = cast('q/0' as blob)"), 0,
	       "the consumed sample has no row in master.db");
	env_down();
}

/* A RELEASE and a RENEW of many leases of long keys: their writes are
 * larger than one internal message may be (64 KiB), and are cut in parts;
 * every id is answered, and each sample consumed. */
static void t_big_batch(void)
{
	enum { NB = 150 };
	static char big[NB][920];
	static uint64_t ids[NB];
	static int32_t st[NB];
	struct proto_ack ack;
	uint32_t got = 0, n = 0;
	int bad = 0;

	env_up("big", 60000);
	is_int(attach(0, "p1", 7, 1 << 30, 0, &ack), 0, "peer attached");
	is_int(sync_chunk(0, "p1", 7, 0, 0, 1, NULL, 0, &ack), 0, "its first full sync (empty)");
	for (int i = 0; i < NB; i++) {
		memset(big[i], 'a' + i % 26, sizeof big[i] - 1);
		snprintf(big[i], 16, "big/%04d/", i);
		big[i][9] = 'x';
		struct tev ev = { (uint64_t)i + 1, PROTO_EV_ADD, big[i], 1000 + (uint64_t)i, 0, 10 };
		bad += reply_ack(call(&E.peers[0], mk_events_d("p1", 7, &ev, 1, PROTO_EV_F_DURABLE | QF),
				      AUTH_ROLE_PEER),
				 &ack) != 0;
	}
	is_int(bad, 0, "%d samples with 919-byte keys", NB);
	while (got < NB) {
		struct lref rr[64];
		if (lease(0, 1, 64, 60000, rr, &n) != 0 || n == 0)
			break;
		for (uint32_t k = 0; k < n && got < NB; k++)
			ids[got++] = rr[k].id;
	}
	is_int((int)got, NB, "all leased, in LEASE answers that fit a frame");
	is_int(ids_call(1, 0, 60000, ids, NB, st), 0, "one RENEW of all %d", NB);
	bad = 0;
	for (int i = 0; i < NB; i++)
		bad += st[i] != 0;
	is_int(bad, 0, "every id renewed");
	is_int(ids_call(0, 0, 0, ids, NB, st), 0, "one RELEASE of all %d (its writes exceed one message)", NB);
	bad = 0;
	for (int i = 0; i < NB; i++)
		bad += st[i] != 0;
	is_int(bad, 0, "every id released");
	is_int(count_rows("select count(*) from objects"), 0, "every sample consumed in master.db");
	env_down();
}

static void t_bad_input(void)
{
	struct lref r[NS];
	uint32_t n = 0;
	env_up("bad", 60000);
	fill(0);
	is_int(lease(3, 3, 1, 1000, r, &n), KVN_EPROTO, "part_i >= part_n: KVN_EPROTO");
	is_int(lease(0, 0, 1, 1000, r, &n), KVN_EPROTO, "part_n 0: KVN_EPROTO");
	is_int(lease(0, 1, 0, 1000, r, &n), KVN_EPROTO, "max 0: KVN_EPROTO");
	is_int(lease(0, 1, PROTO_LEASE_MAX + 1, 1000, r, &n), KVN_EPROTO, "max over the limit: KVN_EPROTO");
	is_int(lease(0, 1, 1, 0, r, &n), KVN_EPROTO, "ttl 0: KVN_EPROTO");
	is_int(lease(0, 1, 1, PROTO_TTL_MAX_MS + 1, r, &n), KVN_EPROTO, "ttl over 10 years: KVN_EPROTO");
	uint64_t z = 0;
	int32_t st;
	is_int(ids_call(0, 0, 0, &z, 1, &st), 0, "RELEASE of id 0 answered");
	is_int(st, KVN_ESTATE, "... KVN_ESTATE");
	is_int(ids_call(0, 3, 0, &z, 1, &st), KVN_EPROTO, "RELEASE with RETAIN and RETURN: KVN_EPROTO");
	is_int(lease(0, 1, 1, 90ull * 24 * 3600 * 1000, r, &n), 0, "a 90-day ttl is accepted");
	ok(n == 1 && r[0].deadline <= kvn_wall_ms() + 3600 * 1000 + 1000, "and cut to master.lease_ttl_max (1 h)");
	env_down();
}

static const struct tap_test tests[] = {
	{ "hash", t_hash },
	{ "order_and_release", t_order_and_release },
	{ "partitions", t_partitions },
	{ "expiry_and_renew", t_expiry_and_renew },
	{ "retain", t_retain },
	{ "restart", t_restart },
	{ "dead_node", t_dead_node },
	{ "consumed_stays_gone", t_consumed_stays_gone },
	{ "move_during_release", t_move_during_release },
	{ "big_batch", t_big_batch },
	{ "bad_input", t_bad_input },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return env_main(tests, argc, argv);
}
