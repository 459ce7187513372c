/*
 * t/raw.h: a test's own end of authenticated connections, for frames no
 * library call would send (fields at their edges, the wrong role, a
 * forged grant) from a holder of a valid secret: one actor on the test's
 * thread (raw_start), connections with a role and a secret file
 * (raw_connect), and a call that waits for the reply (raw_call; the
 * reply stays in R.reply until the next call or raw_stop).  Header-only,
 * for the tests that spawn nodes (t/grant, t/leave_proc, t/list).
 */
#ifndef T_RAW_H
#define T_RAW_H

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "kvnode.h"
#include "net/net.h"

struct raw {
	struct actor_loop *loop;
	struct actor *a;
	int done, err;
	struct actor_msg *reply;
};
static struct raw R;

static int raw_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static const struct actor_ops raw_ops = { .name = "t-raw", .handle = raw_handle };

static int raw_on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	(void)self;
	(void)arg;
	R.done = 1;
	R.err = err;
	R.reply = reply;
	return reply ? ACTOR_KEEP : 0;
}

/* The actor, on this thread's loop (once). */
static inline void raw_start(void)
{
	if (R.loop)
		return;
	R.loop = actor_loop_new("t-raw");
	actor_loop_adopt(R.loop);
	actor_spawn(R.loop, &raw_ops, &R, 1024, &R.a);
}

/* The last reply and the loop (its connections with it). */
static inline void raw_stop(void)
{
	actor_msg_free(R.reply);
	R.reply = NULL;
	if (R.loop)
		actor_loop_free(R.loop);
	R.loop = NULL;
	R.a = NULL;
}

/* Connect to addr as role, named node_id, with the first secret of the
 * file at secret_path (exits the test on failure). */
static inline actor_id raw_connect(const char *addr, int role, const char *secret_path, const char *node_id)
{
	struct auth_keyring kr;
	struct net_opts o;
	char err[256];
	actor_id proxy;

	raw_start();
	if (auth_keyring_load(&kr, secret_path, err, sizeof err) != 0)
		kvn_fatal("%s", err);
	struct net_creds cr = { .role = (uint8_t)role, .node_id = node_id, .secret = &kr.s[0] };
	net_opts_default(&o);
	if (net_connect(R.a, addr, &cr, &o, &proxy) != 0)
		kvn_fatal("net_connect %s", addr);
	auth_keyring_wipe(&kr);
	return proxy;
}

/* Send m (taken) on proxy and wait for the reply: its status, or the
 * error (KVN_ETIMEDOUT past 5 s). */
static inline int raw_call(actor_id proxy, struct actor_msg *m)
{
	actor_msg_free(R.reply);
	R.reply = NULL;
	R.done = 0;
	R.err = 0;
	if (actor_call(R.a, proxy, m, 3000, raw_on_reply, NULL) != 0) {
		actor_msg_free(m);
		return KVN_EINVAL;
	}
	actor_loop_run_until(R.loop, &R.done, kvn_now_ms() + 5000);
	if (!R.done)
		return KVN_ETIMEDOUT;
	return R.err ? R.err : R.reply->status;
}

#endif
