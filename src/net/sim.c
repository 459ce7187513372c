/*
 * sim: an in-memory network for tests.  A link joins two actors through a
 * pair of proxy actors, like a connection does, but messages travel through
 * a seeded fault injector that drops, duplicates and delays them (delays
 * reorder), and can cut every link of a node (partition).  Requests and
 * replies are routed exactly as conn.c routes them (corr rewriting, replies
 * back to the requester), so actors cannot tell the difference.
 *
 * Decisions come from one xorshift generator seeded by the caller, so a
 * given sequence of sends gets the same faults every run.
 */
#include "config.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <uthash.h>

#include "base/base.h"
#include "net/net_int.h"

#define SIM_MAX_NODES 64

struct sim_inflight {
	uint64_t wire_corr;
	actor_id src;
	uint64_t corr;
	UT_hash_handle hh;
};

struct sim_end;
struct sim_delivery;

struct net_sim {
	uint64_t rng;
	struct net_sim_faults f;
	uint8_t cut[SIM_MAX_NODES];
	struct net_sim_stats st;
	int links; /* ends alive: the sim must outlive them */
	int freed;
	TAILQ_HEAD(, sim_delivery) pending;
};

/* One end of a link: the proxy actor local actors send to. */
struct sim_end {
	struct net_sim *s;
	struct actor *self;
	actor_id owner;      /* gets requests and one-way messages from the other side */
	int node;            /* this end's node, for partitions */
	int src_role;        /* what the other side's owner sees as src_role */
	struct sim_end *peer;
	struct sim_inflight *inflight;
	uint64_t next_corr;
	uint8_t secret[AUTH_MAC_LEN]; /* the same in both ends: net_link_material */
};

struct sim_delivery {
	struct net_sim *s;
	struct actor_loop *loop; /* receiving end */
	actor_id to_id;     /* receiving end; it may be gone by delivery time */
	struct actor_msg *m;
	struct event *ev;
	TAILQ_ENTRY(sim_delivery) link;
};

uint64_t net_sim_rand(struct net_sim *s)
{
	/* xorshift64*: small, fast, and the same on every platform */
	uint64_t x = s->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static int roll(struct net_sim *s, uint32_t pm)
{
	return pm && (net_sim_rand(s) % 1000) < pm;
}

struct net_sim *net_sim_new(uint64_t seed, const struct net_sim_faults *f)
{
	struct net_sim *s = kvn_xcalloc(1, sizeof *s);
	__atomic_store_n(&net_sim_material, sim_link_material, __ATOMIC_RELEASE);
	s->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
	if (f)
		s->f = *f;
	TAILQ_INIT(&s->pending);
	return s;
}

static void sim_release(struct net_sim *s)
{
	if (s->freed && s->links == 0)
		free(s);
}

/* Messages still in flight are dropped (call while their loop exists).  The
 * links may outlive this call: the sim is freed with the last of them. */
void net_sim_free(struct net_sim *s)
{
	struct sim_delivery *d;

	if (!s)
		return;
	while ((d = TAILQ_FIRST(&s->pending))) {
		TAILQ_REMOVE(&s->pending, d, link);
		actor_loop_timer_del(d->loop, d->ev);
		event_free(d->ev);
		actor_msg_free(d->m);
		free(d);
	}
	s->freed = 1;
	sim_release(s);
}

void net_sim_partition(struct net_sim *s, int node, int on)
{
	if (node >= 0 && node < SIM_MAX_NODES)
		s->cut[node] = (uint8_t)(on != 0);
}

void net_sim_get_stats(const struct net_sim *s, struct net_sim_stats *st)
{
	*st = s->st;
}

void net_sim_stats_each(const struct net_sim_stats *st, kvn_stat_fn fn, void *arg)
{
	NET_SIM_STATS_FIELDS(KVN_STAT_VISIT)
}

/* The message arrives at end `e` from the other side. */
static void end_receive(struct sim_end *e, struct actor_msg *m)
{
	actor_id dst = e->owner;

	if (m->flags & WIRE_F_REPLY) {
		struct sim_inflight *f;
		HASH_FIND(hh, e->inflight, &m->corr, sizeof m->corr, f);
		if (!f) {
			actor_msg_free(m); /* duplicate or late reply: the requester has it already */
			return;
		}
		dst = f->src;
		m->corr = f->corr;
		HASH_DEL(e->inflight, f);
		free(f);
	}
	m->src = actor_id_of(e->self);
	m->src_role = (uint8_t)e->peer->src_role;
	e->s->st.delivered++;
	if (actor_send(dst, m) != 0)
		actor_msg_free(m);
}

static void delivery_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sim_delivery *d = arg;
	(void)fd;
	(void)what;
	TAILQ_REMOVE(&d->s->pending, d, link);
	/* the receiving end may have been destroyed meanwhile */
	struct actor *a = actor_lookup_local(d->loop, d->to_id);
	if (a)
		end_receive(actor_state(a), d->m);
	else
		actor_msg_free(d->m);
	event_free(d->ev);
	free(d);
}

static void schedule(struct sim_end *from, struct actor_msg *m, uint64_t delay_ms)
{
	struct sim_delivery *d = kvn_xcalloc(1, sizeof *d);
	d->s = from->s;
	d->loop = actor_loop_of(from->self);
	d->to_id = actor_id_of(from->peer->self);
	d->m = m;
	d->ev = evtimer_new(actor_base(from->self), delivery_cb, d);
	if (!d->ev)
		kvn_fatal("out of memory");
	/* on the loop's clock: virtual in a deterministic simulation */
	actor_loop_timer_add(d->loop, d->ev, delay_ms);
	TAILQ_INSERT_TAIL(&from->s->pending, d, link);
}

static uint64_t pick_delay(struct net_sim *s)
{
	if (!roll(s, s->f.delay_pm) || s->f.max_delay_ms == 0)
		return 0;
	s->st.delayed++;
	return 1 + net_sim_rand(s) % s->f.max_delay_ms;
}

static int end_handle(struct actor *self, struct actor_msg *m)
{
	struct sim_end *e = actor_state(self);
	struct net_sim *s = e->s;

	if (m->type >= WIRE_INTERNAL)
		return 0;
	if (!e->peer) {
		if (m->corr && !(m->flags & WIRE_F_REPLY)) {
			struct actor_msg *r = actor_msg_new(m->type);
			r->flags = WIRE_F_REPLY;
			r->corr = m->corr;
			r->status = KVN_ECONN;
			if (actor_send(m->src, r) != 0)
				actor_msg_free(r);
		}
		return 0;
	}
	s->st.sent++;
	if (m->corr && !(m->flags & WIRE_F_REPLY)) {
		struct sim_inflight *f = kvn_xcalloc(1, sizeof *f);
		f->wire_corr = ++e->next_corr;
		f->src = m->src;
		f->corr = m->corr;
		HASH_ADD(hh, e->inflight, wire_corr, sizeof f->wire_corr, f);
		m->corr = f->wire_corr;
	}
	if (s->cut[e->node] || s->cut[e->peer->node]) {
		s->st.cut++;
		return 0;
	}
	if (roll(s, s->f.drop_pm)) {
		s->st.dropped++;
		return 0;
	}
	if (roll(s, s->f.dup_pm)) {
		s->st.duplicated++;
		schedule(e, actor_msg_dup(m), pick_delay(s));
	}
	schedule(e, m, pick_delay(s));
	return ACTOR_KEEP;
}

static void end_fini(struct actor *self)
{
	struct sim_end *e = actor_state(self);
	struct sim_inflight *f, *tmp;

	HASH_ITER(hh, e->inflight, f, tmp) {
		HASH_DEL(e->inflight, f);
		free(f);
	}
	if (e->peer)
		e->peer->peer = NULL;
	struct net_sim *s = e->s;
	s->links--;
	free(e);
	sim_release(s);
}

static const struct actor_ops sim_end_ops = {
	.name = "sim-link",
	.handle = end_handle,
	.fini = end_fini,
	.wants_replies = 1,
};

static struct sim_end *end_new(struct net_sim *s, struct actor_loop *loop, actor_id owner, int node,
			       int src_role)
{
	struct sim_end *e = kvn_xcalloc(1, sizeof *e);
	e->s = s;
	e->owner = owner;
	e->node = node;
	e->src_role = src_role;
	if (actor_spawn(loop, &sim_end_ops, e, 1u << 16, &e->self) != 0) {
		free(e);
		return NULL;
	}
	s->links++;
	return e;
}

int net_sim_connect(struct net_sim *s, struct actor *from, int from_node, actor_id to, int to_node,
		    int src_role, actor_id *proxy)
{
	struct sim_end *a, *b;

	if (!s || !from || from_node < 0 || from_node >= SIM_MAX_NODES || to_node < 0 ||
	    to_node >= SIM_MAX_NODES)
		return KVN_EINVAL;
	/* Both ends live on from's loop: the simulated cluster shares one loop
	 * so a seed fixes the order of events. */
	a = end_new(s, actor_loop_of(from), actor_id_of(from), from_node, src_role);
	if (!a)
		return KVN_ENOMEM;
	b = end_new(s, actor_loop_of(from), to, to_node, AUTH_ROLE_MASTER);
	if (!b) {
		actor_destroy(a->self);
		return KVN_ENOMEM;
	}
	a->peer = b;
	b->peer = a;
	/* not from the seeded generator: key bytes change no decision, and
	 * the fault sequence of a seed stays what it was */
	if (kvn_random(a->secret, sizeof a->secret) != 0)
		kvn_fatal("no random bytes");
	memcpy(b->secret, a->secret, sizeof b->secret);
	*proxy = actor_id_of(a->self);
	return 0;
}

int sim_link_material(struct actor *a, const char *label, uint8_t out[AUTH_MAC_LEN])
{
	if (actor_ops_of(a) != &sim_end_ops)
		return KVN_EINVAL;
	struct sim_end *e = actor_state(a);
	return auth_hmac_sha256(e->secret, sizeof e->secret, label, strlen(label), out);
}
