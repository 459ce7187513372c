/* t/peer_leave: the peer's clean stop (peer_leave.c) against a stub master:
 * PEER_LEAVE goes only after every event produced before it was
 * acknowledged, then the peer never attaches again; the answer comes once
 * with the master's status, KVN_ETIMEDOUT at the deadline, KVN_ECONN at once
 * when it is not attached, KVN_EBUSY for a second leave, KVN_ECLOSED when
 * the peer is destroyed first. */
#include "config.h"

#include <xxhash.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "net/proto.h"
#include "peer/peer.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"
#include "tap.h"

/* ---- a stub master ---- */

struct stub {
	int attaches, leaves;
	int refuse_attach;  /* PEER_ATTACH answered KVN_EAUTH */
	int hold_events;    /* EVENTS kept unanswered in held */
	int leave_status;   /* the answer to PEER_LEAVE */
	int drop_leave;     /* PEER_LEAVE never answered */
	struct actor_msg *held;
	uint64_t boot_id, applied;
	uint64_t applied_at_leave, leave_last_seq, leave_boot;
	struct auth_grant_key *gkey;
};

static void ack(struct actor *self, struct stub *s, const struct actor_msg *m, int status)
{
	struct proto_ack a = { .applied_seq = s->applied, .durable_seq = s->applied };
	struct actor_msg *r = actor_msg_new(m->type);
	proto_ack_enc(r, &a);
	actor_reply(self, m, r, status);
}

static void apply_events(struct stub *s, const struct actor_msg *m)
{
	struct wire_r rd;
	struct proto_event e;
	char node[65];
	uint64_t boot;
	uint32_t n;
	if (proto_events_open(&rd, m, node, sizeof node, &boot, &n) != 0)
		return;
	while (n-- && proto_events_next(&rd, &e) == 0)
		if (e.seq > s->applied)
			s->applied = e.seq;
}

static int stub_handle(struct actor *self, struct actor_msg *m)
{
	struct stub *s = actor_state(self);
	struct proto_node pn;

	switch (m->type) {
	case WIRE_PEER_ATTACH:
		s->attaches++;
		if (s->refuse_attach) {
			actor_reply_status(self, m, KVN_EAUTH);
			return 0;
		}
		if (proto_node_dec(m, &pn) == 0 && pn.boot_id != s->boot_id) {
			uint8_t mat[AUTH_MAC_LEN];
			s->boot_id = pn.boot_id;
			auth_grant_key_free(s->gkey);
			s->gkey = NULL;
			auth_grant_local_material(pn.boot_id, mat);
			auth_grant_key_new(mat, &s->gkey);
		}
		ack(self, s, m, 0);
		return 0;
	case WIRE_EVENTS:
		if (s->hold_events && !s->held) {
			s->held = m;
			return ACTOR_KEEP;
		}
		if (s->hold_events)
			return 0; /* a re-ship while one is held: no answer */
		apply_events(s, m);
		ack(self, s, m, 0);
		return 0;
	case WIRE_HEARTBEAT:
		ack(self, s, m, 0);
		return 0;
	case WIRE_PEER_LEAVE:
		s->leaves++;
		s->applied_at_leave = s->applied;
		if (proto_node_dec(m, &pn) == 0) {
			s->leave_last_seq = pn.last_seq;
			s->leave_boot = pn.boot_id;
		}
		if (!s->drop_leave)
			ack(self, s, m, s->leave_status);
		return 0;
	}
	return 0;
}

static const struct actor_ops stub_ops = { .name = "stub-master", .handle = stub_handle };

/* ---- a client ---- */

struct caller {
	int done, err;
	struct actor_msg *reply;
};

static int caller_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static const struct actor_ops caller_ops = { .name = "caller", .handle = caller_handle };

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct caller *c = arg;
	(void)self;
	c->done = 1;
	c->err = err;
	c->reply = reply;
	return reply ? ACTOR_KEEP : 0;
}

static struct actor_loop *loop;
static struct actor *peer, *master, *cli;
static struct stub stub;
static struct caller cs;

static void pump(uint64_t ms)
{
	int never = 0;
	actor_loop_run_until(loop, &never, kvn_now_ms() + ms);
}

static void up(void)
{
	struct peer_opts o = {
		.node_id = "p1", .advertise = "127.0.0.1:1", .dram_size = 1 << 20, .page_size = 4096,
		.heartbeat_ms = 50, .pending_ttl_ms = 5000, .read_lease_ttl_ms = 5000,
		.max_value_size = 1 << 20, .mailbox = 1024, .call_timeout_ms = 1000,
	};
	char err[256];

	loop = actor_loop_new("t-peer-leave");
	actor_loop_adopt(loop);
	actor_spawn(loop, &stub_ops, &stub, 1024, &master);
	actor_spawn(loop, &caller_ops, &cs, 1024, &cli);
	if (peer_start(loop, &o, &peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(peer, actor_id_of(master));
	for (int i = 0; i < 100 && stub.attaches == 0; i++)
		pump(10);
	pump(20); /* the attach's answer */
}

static void down(void)
{
	actor_loop_free(loop); /* destroys the actors: pending calls fail */
	actor_msg_free(stub.held);
	actor_msg_free(cs.reply);
	auth_grant_key_free(stub.gkey);
	memset(&stub, 0, sizeof stub);
	memset(&cs, 0, sizeof cs);
}

/* A PUT of one granted item, sent without waiting for its answer. */
static void put_async(const char *key, uint64_t gen, const char *val)
{
	uint64_t size = strlen(val);
	struct proto_grant g = { .expiry_ms = kvn_wall_ms() + PROTO_GRANT_TTL_MS, .size = size };
	struct actor_msg *m = actor_msg_new(WIRE_PUT);
	struct wire_w w;

	if (auth_grant_sign(stub.gkey, "p1", key, strlen(key), gen, size, g.expiry_ms, g.mac) != 0)
		memset(&g, 0, sizeof g);
	wire_w_init(&w);
	proto_items_begin(&w, PROTO_ITEMS_SUM, 1);
	proto_items_add_sum(&w, key, strlen(key), gen, size, XXH3_64bits(val, size), 0);
	proto_grants_add(&w, &g);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	m->payload = evbuffer_new();
	evbuffer_add(m->payload, val, size);
	m->payload_len = size;
	m->src_role = AUTH_ROLE_CLIENT;
	actor_msg_free(cs.reply);
	memset(&cs, 0, sizeof cs);
	if (actor_call(cli, actor_id_of(peer), m, 5000, on_reply, &cs) != 0)
		actor_msg_free(m);
}

struct answer {
	int n, status;
};

static void on_left(void *arg, int status)
{
	struct answer *a = arg;
	a->n++;
	a->status = status;
}

static int wait_answer(struct answer *a, uint64_t ms)
{
	uint64_t end = kvn_now_ms() + ms;
	while (!a->n && kvn_now_ms() < end)
		pump(10);
	return a->n;
}

/* ---- cases ---- */

static void t_events_first(void)
{
	struct answer a = { 0 };

	up();
	ok(stub.attaches >= 1, "the peer attached");
	stub.hold_events = 1;
	put_async("a", (1ull << 32) | 1, "alpha");
	pump(100);
	ok(stub.held != NULL, "a put's event reached the master, not acknowledged yet");
	ok(!cs.done, "so the put is not answered");
	is_int(peer_leave(peer, kvn_now_ms() + 5000, on_left, &a), 0, "peer_leave accepted");
	pump(200);
	is_int(stub.leaves, 0, "no PEER_LEAVE while an event is unacknowledged");
	is_int(a.n, 0, "no answer yet");
	/* the master answers the held batch now */
	stub.hold_events = 0;
	apply_events(&stub, stub.held);
	ack(master, &stub, stub.held, 0);
	actor_msg_free(stub.held);
	stub.held = NULL;
	ok(wait_answer(&a, 3000), "answered after the ack");
	is_int(a.n, 1, "exactly once");
	is_int(a.status, 0, "status 0: the master acknowledged the leave");
	is_int(stub.leaves, 1, "one PEER_LEAVE");
	is_int(stub.applied_at_leave, 1, "sent after event 1 was applied");
	is_int(stub.leave_last_seq, 1, "saying its last seq is 1");
	is_int(stub.leave_boot, stub.boot_id, "with the boot id it attached with");
	ok(cs.done && cs.reply && cs.reply->status == 0, "the put was answered (acknowledged before the leave)");
	int att = stub.attaches;
	pump(400); /* 8 heartbeats */
	is_int(stub.attaches, att, "the peer never attaches again after leaving");
	struct answer b = { 0 };
	is_int(peer_leave(peer, kvn_now_ms() + 1000, on_left, &b), 0, "a leave after the leave");
	ok(wait_answer(&b, 2000) && b.status == 0 && stub.leaves == 1, "answers 0 at once, nothing sent again");
	down();
}

static void t_deadline(void)
{
	struct answer a = { 0 }, b = { 0 };

	up();
	stub.drop_leave = 1;
	uint64_t t0 = kvn_now_ms();
	is_int(peer_leave(peer, t0 + 300, on_left, &a), 0, "peer_leave with a 300 ms deadline");
	is_int(peer_leave(peer, t0 + 300, on_left, &b), 0, "a second one while it runs");
	ok(wait_answer(&b, 2000), "the second is answered");
	is_int(b.status, KVN_EBUSY, "KVN_EBUSY: one leave at a time");
	ok(wait_answer(&a, 5000), "the first is answered though the master never answers");
	is_int(a.status, KVN_ETIMEDOUT, "KVN_ETIMEDOUT");
	ok(kvn_now_ms() >= t0 + 300, "not before its deadline");
	is_int(stub.leaves, 1, "the PEER_LEAVE was sent");
	down();
}

static void t_refused(void)
{
	struct answer a = { 0 };

	up();
	stub.leave_status = KVN_EPERM;
	is_int(peer_leave(peer, kvn_now_ms() + 2000, on_left, &a), 0, "peer_leave");
	ok(wait_answer(&a, 3000), "answered");
	is_int(a.status, KVN_EPERM, "with the master's refusal");
	down();
}

static void t_not_attached(void)
{
	struct answer a = { 0 };

	stub.refuse_attach = 1;
	up();
	pump(100);
	uint64_t t0 = kvn_now_ms();
	is_int(peer_leave(peer, t0 + 10000, on_left, &a), 0, "peer_leave of a peer the master refuses");
	ok(wait_answer(&a, 5000), "answered");
	is_int(a.status, KVN_ECONN, "KVN_ECONN: not attached, nobody to tell");
	ok(kvn_now_ms() - t0 < 5000, "without waiting for its 10 s deadline");
	is_int(stub.leaves, 0, "nothing sent");
	down();
}

static void t_destroyed(void)
{
	struct answer a = { 0 };

	up();
	stub.drop_leave = 1;
	is_int(peer_leave(peer, kvn_now_ms() + 60000, on_left, &a), 0, "peer_leave; the master never answers");
	pump(100);
	is_int(a.n, 0, "not answered yet");
	down();
	is_int(a.n, 1, "the peer destroyed: answered once");
	is_int(a.status, KVN_ECLOSED, "KVN_ECLOSED");
	is_int(peer_leave(NULL, 0, on_left, &a), KVN_EINVAL, "no peer: KVN_EINVAL");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "events_first", t_events_first },
		{ "deadline", t_deadline },
		{ "refused", t_refused },
		{ "not_attached", t_not_attached },
		{ "destroyed", t_destroyed },
		{ NULL, NULL },
	};
	if (!getenv("KVN_TEST_VERBOSE"))
		kvn_log_set_level(KVN_LOG_ERROR);
	return tap_run(tests, argc, argv);
}
