/* t/peer: the peer actor on its own, with a stub master: a put is answered
 * only after the master acknowledged its event, a malformed request changes
 * nothing (every item is decoded before any is acted on), and gets, exists
 * and removes act on exactly the generations they name. */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "actors/proto.h"
#include "actors/roles.h"
#include "auth/auth.h"
#include "base/base.h"
#include "net/net.h"
#include "store/store.h"
#include "tap.h"

/* ---- a stub master: acknowledges attach and events, records them ---- */

struct stub {
	int attaches, events_msgs;
	uint64_t applied; /* highest seq acknowledged */
	int hold_acks;    /* do not answer EVENTS (the master is slow) */
	struct actor_msg *held;
};

static int stub_handle(struct actor *self, struct actor_msg *m)
{
	struct stub *s = actor_state(self);
	struct proto_ack a = { 0 };
	struct actor_msg *r;

	if (m->type == WIRE_PEER_ATTACH) {
		s->attaches++;
		r = actor_msg_new(m->type);
		a.applied_seq = s->applied;
		a.durable_seq = s->applied;
		proto_ack_enc(r, &a);
		actor_reply(self, m, r, 0);
	} else if (m->type == WIRE_EVENTS) {
		struct wire_r rd;
		char node[65];
		uint64_t boot;
		uint32_t n;
		struct proto_event e;
		s->events_msgs++;
		if (s->hold_acks) {
			s->held = m;
			return ACTOR_KEEP;
		}
		proto_events_open(&rd, m, node, sizeof node, &boot, &n);
		for (uint32_t i = 0; i < n; i++)
			if (proto_events_next(&rd, &e) == 0 && e.seq > s->applied)
				s->applied = e.seq;
		r = actor_msg_new(m->type);
		a.applied_seq = s->applied;
		a.durable_seq = s->applied;
		proto_ack_enc(r, &a);
		actor_reply(self, m, r, 0);
	} else if (m->type == WIRE_HEARTBEAT) {
		r = actor_msg_new(m->type);
		a.applied_seq = s->applied;
		a.durable_seq = s->applied;
		proto_ack_enc(r, &a);
		actor_reply(self, m, r, 0);
	}
	return 0;
}

static const struct actor_ops stub_ops = { .name = "stub-master", .handle = stub_handle };

/* ---- a caller: sends requests to the peer and keeps the reply ---- */

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

/* Send m (taken) to the peer as a client would; wait for the reply. */
static int call(struct actor_msg *m, uint64_t wait_ms)
{
	actor_msg_free(cs.reply);
	memset(&cs, 0, sizeof cs);
	m->src_role = AUTH_ROLE_CLIENT;
	if (actor_call(cli, actor_id_of(peer), m, 2000, on_reply, &cs) != 0)
		return KVN_EINVAL;
	actor_loop_run_until(loop, &cs.done, kvn_now_ms() + wait_ms);
	if (!cs.done)
		return 1000; /* no reply yet */
	return cs.err ? cs.err : cs.reply->status;
}

static struct actor_msg *items_msg(uint16_t type, const char *const *keys, const uint64_t *gens,
				   const uint64_t *sizes, uint32_t n)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(type);
	wire_w_init(&w);
	proto_items_begin(&w, 0, n);
	for (uint32_t i = 0; i < n; i++)
		proto_items_add(&w, keys[i], strlen(keys[i]), gens ? gens[i] : 0, sizes ? sizes[i] : 0);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	return m;
}

static int put(const char *key, uint64_t gen, const char *val, uint64_t wait_ms)
{
	uint64_t size = strlen(val);
	struct actor_msg *m = items_msg(WIRE_PUT, &key, &gen, &size, 1);
	m->payload = evbuffer_new();
	evbuffer_add(m->payload, val, size);
	m->payload_len = size;
	return call(m, wait_ms);
}

/* The first result of the last reply. */
static struct proto_result result0(void)
{
	struct proto_result res = { .status = KVN_EPROTO };
	struct wire_r r;
	uint32_t n;
	if (cs.reply && proto_results_open(&r, cs.reply->meta, cs.reply->meta_len, &n) == 0 && n >= 1)
		proto_results_next(&r, &res);
	return res;
}

static int exists(const char *key)
{
	if (call(items_msg(WIRE_EXISTS, &key, NULL, NULL, 1), 2000) != 0)
		return -1;
	return result0().status == 0;
}

static void setup(void)
{
	struct peer_opts o = {
		.node_id = "p1", .advertise = "127.0.0.1:1", .dram_size = 1 << 20, .page_size = 4096,
		.heartbeat_ms = 50, .pending_ttl_ms = 5000, .read_lease_ttl_ms = 5000,
		.max_value_size = 1 << 20, .mailbox = 1024, .call_timeout_ms = 1000,
	};
	char err[256];

	loop = actor_loop_new("t-peer");
	actor_loop_adopt(loop);
	actor_spawn(loop, &stub_ops, &stub, 1024, &master);
	actor_spawn(loop, &caller_ops, &cs, 1024, &cli);
	if (peer_start(loop, &o, &peer, err, sizeof err) != 0)
		kvn_fatal("peer_start: %s", err);
	peer_set_master(peer, actor_id_of(master));
	for (int i = 0; i < 100 && stub.attaches == 0; i++)
		pump(10);
}

static void t_put_waits_for_ack(void)
{
	ok(stub.attaches >= 1, "the peer attached to its master");
	stub.hold_acks = 1;
	is_int(put("a", 10, "alpha", 200), 1000, "a put is not answered while the master has not acknowledged");
	ok(stub.held != NULL, "its event went to the master");
	stub.hold_acks = 0;
	if (stub.held) {
		/* the master answers now: applied up to the held batch */
		struct wire_r rd;
		char node[65];
		uint64_t boot;
		uint32_t n;
		struct proto_event e;
		proto_events_open(&rd, stub.held, node, sizeof node, &boot, &n);
		while (n-- && proto_events_next(&rd, &e) == 0)
			stub.applied = e.seq;
		struct proto_ack a = { .applied_seq = stub.applied, .durable_seq = stub.applied };
		struct actor_msg *r = actor_msg_new(WIRE_EVENTS);
		proto_ack_enc(r, &a);
		actor_reply(master, stub.held, r, 0);
		actor_msg_free(stub.held);
		stub.held = NULL;
	}
	actor_loop_run_until(loop, &cs.done, kvn_now_ms() + 2000);
	ok(cs.done && cs.err == 0 && cs.reply && cs.reply->status == 0 && result0().status == 0,
	   "then it is answered: ok");
	is_int(exists("a"), 1, "and the key exists");
}

static void t_malformed_changes_nothing(void)
{

	/* a REMOVE of "m" followed by a second item with an empty key: the
	 * count check passes (both items are long enough), the second item
	 * does not decode */
	is_int(put("m", 40, "keep me", 2000), 0, "put m");
	struct wire_w w;
	struct actor_msg *m;
	wire_w_init(&w);
	proto_items_begin(&w, 0, 2);
	proto_items_add(&w, "m", 1, 0, 0);
	wire_w_u16(&w, 0); /* empty key */
	wire_w_u64(&w, 0);
	wire_w_u64(&w, 0);
	wire_w_u8(&w, 0);
	m = actor_msg_new(WIRE_REMOVE);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	int events_before = stub.events_msgs;
	is_int(call(m, 2000), KVN_EKEYLEN, "a REMOVE whose second item has an empty key: KVN_EKEYLEN");
	is_int(exists("m"), 1, "and its well-formed first item was not acted on");
	pump(300); /* several heartbeats: a queued event would have shipped */
	is_int(stub.events_msgs, events_before, "no REMOVE event reached the master");

	/* a key over 1024 bytes in a GET */
	char big[1100];
	memset(big, 'k', sizeof big);
	wire_w_init(&w);
	proto_items_begin(&w, 0, 1);
	wire_w_u16(&w, sizeof big);
	wire_w_raw(&w, big, sizeof big);
	wire_w_u64(&w, 0);
	wire_w_u64(&w, 0);
	m = actor_msg_new(WIRE_GET);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	is_int(call(m, 2000), KVN_EKEYLEN, "a GET of a 1100-byte key: KVN_EKEYLEN");
}

static void t_generations(void)
{
	const char *k = "g";
	uint64_t old = 20, newer = 30, none = 25;

	is_int(put("g", old, "old", 2000), 0, "put gen 20");
	is_int(put("g", newer, "new!", 2000), 0, "put gen 30 supersedes it");
	is_int(call(items_msg(WIRE_GET, &k, &old, NULL, 1), 2000), 0, "GET by the old gen");
	is_int(result0().status, KVN_ESTALE, "answers KVN_ESTALE");
	ok(!cs.reply->payload || evbuffer_get_length(cs.reply->payload) == 0, "and carries no bytes");
	is_int(call(items_msg(WIRE_GET, &k, &newer, NULL, 1), 2000), 0, "GET by the new gen");
	struct proto_result res = result0();
	ok(res.status == 0 && res.gen == 30 && res.size == 4, "answers gen 30, 4 bytes");
	char buf[8] = { 0 };
	if (cs.reply->payload)
		evbuffer_copyout(cs.reply->payload, buf, sizeof buf);
	is_str(buf, "new!", "exactly the new bytes");
	is_int(put("g", old, "late", 2000), 0, "a late put of an older gen is answered");
	is_int(result0().status, 0, "with success: overwritten by the newer gen, ordered before it");
	is_int(call(items_msg(WIRE_GET, &k, &newer, NULL, 1), 2000), 0, "GET gen 30 again");
	is_int(result0().status, 0, "gen 30 is still there");
	is_int(call(items_msg(WIRE_REMOVE, &k, &none, NULL, 1), 2000), 0, "REMOVE of a gen that is not there");
	is_int(result0().status, KVN_ESTALE, "answers KVN_ESTALE");
	is_int(exists("g"), 1, "and removes nothing");
	is_int(call(items_msg(WIRE_REMOVE, &k, &newer, NULL, 1), 2000), 0, "REMOVE of gen 30");
	is_int(result0().status, 0, "removes it");
	is_int(exists("g"), 0, "gone");
}

/* The master moved a key elsewhere (DROP_GEN): a GET or REMOVE routed to
 * the old gen before the move answers KVN_ESTALE ("ask the master again"),
 * never KVN_ENOTFOUND, which the client takes as final; a removed key
 * answers KVN_ENOTFOUND. */
static void t_drop_gen_superseded(void)
{
	const char *k = "mv", *r = "rm";
	uint64_t g = 50, zero = 0;

	is_int(put("mv", g, "moving", 2000), 0, "put mv gen 50");
	struct actor_msg *m = items_msg(WIRE_DROP_GEN, &k, &g, NULL, 1);
	m->src = actor_id_of(master); /* as the master's DROP_GEN */
	ok(actor_send(actor_id_of(peer), m) == 0, "the master drops gen 50 (a newer gen lives elsewhere)");
	pump(50);
	is_int(exists("mv"), 0, "gen 50 is gone from this peer");
	is_int(call(items_msg(WIRE_GET, &k, &g, NULL, 1), 2000), 0, "a GET routed to gen 50 before the move");
	is_int(result0().status, KVN_ESTALE, "answers KVN_ESTALE, not KVN_ENOTFOUND");
	is_int(call(items_msg(WIRE_GET, &k, &zero, NULL, 1), 2000), 0, "a GET of the latest");
	is_int(result0().status, KVN_ESTALE, "KVN_ESTALE too: the value moved");
	is_int(call(items_msg(WIRE_REMOVE, &k, &g, NULL, 1), 2000), 0, "a REMOVE routed to gen 50");
	is_int(result0().status, KVN_ESTALE, "KVN_ESTALE: the client re-routes it");

	is_int(put("rm", 60, "remove me", 2000), 0, "put rm gen 60");
	uint64_t g60 = 60;
	is_int(call(items_msg(WIRE_REMOVE, &r, &g60, NULL, 1), 2000), 0, "REMOVE rm gen 60");
	is_int(result0().status, 0, "removed");
	is_int(call(items_msg(WIRE_GET, &r, &g60, NULL, 1), 2000), 0, "a GET of the removed gen");
	is_int(result0().status, KVN_ENOTFOUND, "answers KVN_ENOTFOUND");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "put_waits_for_ack", t_put_waits_for_ack },
		{ "malformed_changes_nothing", t_malformed_changes_nothing },
		{ "generations", t_generations },
		{ "drop_gen_superseded", t_drop_gen_superseded },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_ERROR);
	setup();
	int rc = tap_run(tests, argc, argv);
	actor_msg_free(cs.reply);
	actor_msg_free(stub.held);
	actor_loop_free(loop);
	return rc;
}
