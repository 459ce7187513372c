/*
 * t/embed_roles: an embedded client is a client.  Its in-process links
 * (src/embed/embed_link.c) mark what they carry with the client role, so
 * the master refuses peer-only requests from it as from a client on a
 * socket, and the link forwards no message type internal to the process;
 * each refusal is shown against the same message sent straight to the
 * master as an in-process actor would (trusted: not refused).  A cut link
 * fails its calls in flight at once and tells its owner.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvnode-embed.h"
#include "actors/actor.h"
#include "embed/embed_int.h"
#include "net/net.h"
#include "tap.h"

static struct {
	struct actor_loop *loop;
	struct actor *self;
	int downs, down_status;
} T;

struct call {
	int done, err, status;
};

static int on_msg(struct actor *self, struct actor_msg *m)
{
	(void)self;
	if (m->type == NET_DOWN) {
		T.downs++;
		T.down_status = m->status;
	}
	return 0;
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct call *c = arg;
	(void)self;
	c->done = 1;
	c->err = err;
	c->status = reply ? reply->status : 0;
	return 0;
}

/* Send a request of type with no metadata to dst; wait up to ms. */
static struct call call(actor_id dst, uint16_t type, uint64_t ms)
{
	struct call c = { 0 };
	struct actor_msg *m = actor_msg_new(type);
	actor_busy_enter(T.self);
	if (actor_call(T.self, dst, m, ms, on_reply, &c) != 0) {
		actor_msg_free(m);
		c.done = 1;
		c.err = KVN_ECLOSED;
	}
	actor_busy_leave(T.self);
	actor_loop_run_until(T.loop, &c.done, kvn_now_ms() + ms + 2000);
	return c;
}

static void t_roles(void)
{
	static const struct actor_ops ops = { .name = "t-owner", .handle = on_msg };
	char dir[] = "/tmp/kvn-embed-roles-XXXXXX";
	struct kvn_embed *e = NULL;
	uint64_t to_master = 0, to_peer = 0;

	if (!mkdtemp(dir))
		abort();
	struct kvn_embed_options o = { .data_dir = dir, .dram_size = 16u << 20 };
	is_int(kvn_embed_open(&o, &e), 0, "open");
	if (!e)
		return;
	struct embed_dir *d = embed_dir_of(e);
	T.loop = actor_loop_new("t-roles");
	actor_loop_adopt(T.loop);
	if (actor_spawn(T.loop, &ops, NULL, 64, &T.self) != 0)
		abort();
	actor_busy_enter(T.self);
	is_int(embed_connect(d, T.self, NULL, "", &to_master), 0, "a link to the master");
	is_int(embed_connect(d, T.self, d->node_id, "", &to_peer), 0, "a link to the peer");
	is_int(embed_connect(d, T.self, "some-other-node", "", &to_peer), KVN_ECONN,
	       "another node's peer: KVN_ECONN (not in this process)");
	is_int(embed_connect(d, T.self, d->node_id, "", &to_peer), 0, "the peer again");
	actor_busy_leave(T.self);

	struct call c = call(to_master, WIRE_PEER_LEAVE, 3000);
	ok(c.done && !c.err && c.status == KVN_EPERM, "PEER_LEAVE through the link: KVN_EPERM (%s)",
	   kvn_strerror(c.err ? c.err : c.status));
	c = call(d->master, WIRE_PEER_LEAVE, 3000);
	ok(c.done && !c.err && c.status == KVN_EPROTO,
	   "the control: straight to the master (in-process role) it is not refused, only malformed (%s)",
	   kvn_strerror(c.err ? c.err : c.status));
	c = call(to_master, WIRE_EVENTS, 3000);
	ok(c.done && !c.err && c.status == KVN_EPERM, "EVENTS through the link: KVN_EPERM");
	c = call(to_master, WIRE_FULL_SYNC, 3000);
	ok(c.done && !c.err && c.status == KVN_EPERM, "FULL_SYNC through the link: KVN_EPERM");
	c = call(to_master, NET_CLOSE + 0x10, 3000);
	ok(c.done && !c.err && c.status == KVN_EPROTO, "a type internal to the process: not forwarded (KVN_EPROTO)");
	c = call(to_master, WIRE_PING, 3000);
	ok(c.done && !c.err && c.status == 0, "a client's PING: answered");

	/* the peer ignores what only its master may send (DURABLE): the call
	 * stays in flight until the link is cut, which fails it at once */
	struct call pending = { 0 };
	struct actor_msg *m = actor_msg_new(WIRE_DURABLE);
	actor_busy_enter(T.self);
	ok(actor_call(T.self, to_peer, m, 20000, on_reply, &pending) == 0, "DURABLE to the peer through the link");
	actor_busy_leave(T.self);
	int never = 0;
	actor_loop_run_until(T.loop, &never, kvn_now_ms() + 300);
	ok(!pending.done, "ignored by the peer: no answer in 300 ms");
	uint64_t t0 = kvn_now_ms();
	actor_busy_enter(T.self);
	is_int(net_abort(T.loop, to_peer, KVN_ETIMEDOUT), 0, "net_abort cuts the link");
	actor_busy_leave(T.self);
	actor_loop_run_until(T.loop, &pending.done, kvn_now_ms() + 5000);
	ok(pending.done && !pending.err && pending.status == KVN_ETIMEDOUT,
	   "the call in flight failed with net_abort's error (%s) in %llu ms",
	   kvn_strerror(pending.err ? pending.err : pending.status), (unsigned long long)(kvn_now_ms() - t0));
	ok(T.downs == 1 && T.down_status == KVN_ETIMEDOUT, "the owner got NET_DOWN (%d)", T.downs);
	c = call(to_peer, WIRE_GET, 1000);
	is_int(c.err, KVN_ECLOSED, "a cut link takes nothing more");

	kvn_embed_close(e);
	c = call(to_master, WIRE_PING, 3000);
	ok(c.done && !c.err && c.status == KVN_ECLOSED, "after kvn_embed_close the link answers KVN_ECLOSED");
	actor_loop_free(T.loop);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("cannot remove %s", dir);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "roles", t_roles },
		{ NULL, NULL },
	};
	kvn_set_log(KVN_LOG_WARN, NULL);
	return tap_run(tests, argc, argv);
}
