/*
 * t/sim_check.c: the simulation's checker.  After a seed has run and the
 * system has been quiet for a while, it judges the recorded history (rules
 * b, c, d) and the final state (rule e); rule a is judged by the client as
 * the bytes arrive.  It reasons only with what a client can know (which
 * puts were acknowledged, when, on which peer incarnation) plus the faults
 * the schedule injected, so a legal outcome of a race is never reported and
 * an acknowledged write that vanished always is.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lincheck.h"
#include "sim.h"

#include "master/master.h"
#include "peer/peer.h"
#include "base/base.h"
#include "store/store.h"

/* ---- what the schedule did ---- */

/* When the incarnation `inc` of peer `node` crashed (0: it did not). */
static uint64_t died_at(const struct sim_world *w, int node, int inc)
{
	for (int i = 0; i < w->ncrashes; i++)
		if (w->crashes[i].node == node && w->crashes[i].inc == inc)
			return w->crashes[i].t;
	return 0;
}

static int master_crashed_in(const struct sim_world *w, uint64_t a, uint64_t b)
{
	for (int i = 0; i < w->ncrashes; i++)
		if (w->crashes[i].node == -1 && w->crashes[i].t >= a && w->crashes[i].t <= b)
			return 1;
	return 0;
}

/* Whether the value of put p is still held after its incarnation's crash:
 * at that crash and every later one of its node, peer.db held its
 * generation or a newer one of the key (which supersedes it).  0 when it
 * was lost, 1 when it lives on (or its incarnation never died). */
static int survived(const struct sim_world *w, const struct sim_op *p)
{
	for (int i = 0; i < w->ncrashes; i++) {
		const struct sim_crash *c = &w->crashes[i];
		if (c->node == p->node && c->inc >= p->inc_last && c->disk_gen[p->key] < p->gen)
			return 0;
	}
	return 1;
}

static int is_acked_put(const struct sim_op *o)
{
	return o->kind == SIM_PUT && o->t_end && o->status == 0;
}

/* A remove of a gen >= g that may have happened: sent no later than t and
 * not answered "nothing removed" -- unless that answer may be a duplicate's
 * (the first copy removed, the second found nothing and was answered first,
 * while the first still waited for the master's ack).  A remove names one
 * exact generation. */
static int remove_may_have_hit(const struct sim_world *w, int key, uint64_t g, uint64_t t)
{
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *x = &w->ops[i];
		if (x->kind != SIM_REMOVE || x->key != key || !x->t_sent || x->t_sent > t || x->gen < g)
			continue;
		if (x->replied && x->item_status != 0 && !x->ambiguous)
			continue;
		return 1;
	}
	return 0;
}

/* A put of a gen > g, sent no later than t, whose peer incarnation died no
 * later than t: it may have superseded g (so g was dropped) and then been
 * lost with its peer. */
static int newer_put_lost(const struct sim_world *w, int key, uint64_t g, uint64_t t)
{
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *q = &w->ops[i];
		if (q->kind != SIM_PUT || q->key != key || !q->t_sent || q->t_sent > t || q->gen <= g)
			continue;
		for (int inc = 0; inc < 32; inc++) {
			uint64_t d = (q->inc_mask >> inc) & 1 ? died_at(w, q->node, inc) : 0;
			if (d && d <= t)
				return 1;
		}
	}
	return 0;
}

static void route_text(const struct sim_op *r, char *out, size_t cap)
{
	if (r->route_status)
		snprintf(out, cap, "%s", kvn_err_name(r->route_status));
	else
		snprintf(out, cap, "gen %#llx on p%d", (unsigned long long)r->gen, r->node + 1);
}

/* ---- rule c: read-your-writes ---- */

static void check_ryw(struct sim_world *w, const struct sim_op *r)
{
	char k[8], ans[64];

	/* "ask again" (a restarted master until the nodes of master.db have
	 * re-synced) names no value: nothing to judge */
	if (r->route_status == KVN_EBUSY)
		return;
	sim_key_name(r->key, k);
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *p = &w->ops[i];
		if (!is_acked_put(p) || p->key != r->key || p->q_end > r->q_start)
			continue;
		if (r->route_status == 0 && r->gen >= p->gen)
			continue;
		/* the excuses the design allows: the master restarted (the index
		 * is rebuilt from master.db and full syncs), a peer died or was
		 * declared dead, or a remove/newer put explains it */
		if (master_crashed_in(w, p->t_sent, r->t_route))
			continue;
		uint64_t d = died_at(w, p->node, p->inc_last);
		if (d && d <= r->t_route)
			continue;
		if (r->dead_route != p->dead_sent)
			continue;
		if (remove_may_have_hit(w, r->key, p->gen, r->t_route) || newer_put_lost(w, r->key, p->gen, r->t_route))
			continue;
		route_text(r, ans, sizeof ans);
		sim_violation(w, SIM_RULE_C,
			      "key %s: put of gen %#llx on p%d acknowledged to client %d at t=%llu; a ROUTE_GET by "
			      "client %d started at t=%llu answered %s at t=%llu (no remove, crash or death between)",
			      k, (unsigned long long)p->gen, p->node + 1, p->client, (unsigned long long)p->t_end,
			      r->client, (unsigned long long)r->t_start, ans, (unsigned long long)r->t_route);
		return; /* one report per read */
	}
}

/* ---- rule b: no acknowledged put lost while its peer lived, or while
 * its disk kept it across the peer's crashes ---- */

static const struct sim_op *final_read(const struct sim_world *w, int key)
{
	const struct sim_op *f = NULL;
	for (size_t i = 0; i < w->nops; i++)
		if (w->ops[i].kind == SIM_CHECK && w->ops[i].key == key)
			f = &w->ops[i];
	return f;
}

static void check_kept(struct sim_world *w, int key)
{
	const struct sim_op *f = final_read(w, key), *best = NULL;
	char k[8], ans[64];

	sim_key_name(key, k);
	if (!f || !f->t_end) {
		sim_violation(w, SIM_RULE_F, "key %s: the checker's final read did not run", k);
		return;
	}
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *p = &w->ops[i];
		if (is_acked_put(p) && p->key == key && survived(w, p) && (!best || p->gen > best->gen))
			best = p;
	}
	route_text(f, ans, sizeof ans);
	if (f->route_status != 0 && f->route_status != KVN_ENOTFOUND && f->route_status != 1) {
		sim_violation(w, SIM_RULE_B, "key %s: after quiescence ROUTE_GET answered %s", k, ans);
		return;
	}
	if (f->route_status == 1) {
		sim_violation(w, SIM_RULE_B, "key %s: after quiescence ROUTE_GET got no answer (%s)", k,
			      kvn_err_name(f->status));
		return;
	}
	if (f->route_status == 0) {
		int known = 0;
		for (size_t i = 0; i < w->nops && !known; i++)
			known = w->ops[i].kind == SIM_PUT && w->ops[i].key == key && w->ops[i].t_sent &&
				w->ops[i].gen == f->gen;
		if (!known)
			sim_violation(w, SIM_RULE_B, "key %s: the index holds gen %#llx, which no put of this key was given", k,
				      (unsigned long long)f->gen);
		if (f->status != 0)
			sim_violation(w, SIM_RULE_B,
				      "key %s: after quiescence the index routes gen %#llx to p%d, whose GET answers %s", k,
				      (unsigned long long)f->gen, f->node + 1, kvn_err_name(f->status));
	}
	if (!best || (f->route_status == 0 && f->gen >= best->gen))
		return;
	if (remove_may_have_hit(w, key, best->gen, UINT64_MAX) || newer_put_lost(w, key, best->gen, UINT64_MAX))
		return;
	sim_violation(w, SIM_RULE_B,
		      "key %s: put of gen %#llx acknowledged to client %d at t=%llu on p%d (%s) is "
		      "lost: after quiescence ROUTE_GET answers %s",
		      k, (unsigned long long)best->gen, best->client, (unsigned long long)best->t_end, best->node + 1,
		      died_at(w, best->node, best->inc_last) ? "on its disk at every later crash" : "which never crashed",
		      ans);
}

/* ---- rule g: every key's history is a linearizable register ----
 *
 * Values are generations (unique per key); "not found" is LIN_ABSENT.
 * Times: virtual ms, with the history's event order below them, so that
 * two events in one ms keep their order (reports show the ms).  A put or
 * remove that failed after its request went to a peer may or may not have
 * taken effect; one that failed before says nothing.  A peer crash loses
 * every value of that incarnation (DRAM): a LIN_LOSE of its home at the
 * crash's instant.  A peer cut off from the master (its own partition or
 * the master's) may be declared dead: its values leave routing (gets read
 * "not found") and come back when it re-attaches, unless a newer put or a
 * remove came first.  When exactly is not recorded, so that is an optional
 * LIN_HIDE within the cut (and a node timeout after it), and an optional
 * LIN_UNHIDE from the cut until the final reads.  A master crash loses the
 * plain puts master.db did not have yet: lin_revives. */

#define Q_BITS 24
#define SIM_DEAD_SLACK_MS 1500 /* a node timeout and some: a declaration after the cut */
#define SIM_LATE_COPY_MS 300   /* the longest a copy of a request is delayed, and some */

static uint64_t lin_time(uint64_t t_ms, uint64_t q)
{
	return (t_ms << Q_BITS) | (q & ((1u << Q_BITS) - 1));
}

static uint64_t lin_home(int node, int inc)
{
	return ((uint64_t)(node + 1) << 32) | (uint32_t)inc;
}

static void lin_fmt_gen(void *arg, uint64_t v, char *out, size_t cap)
{
	(void)arg;
	snprintf(out, cap, "gen %#llx", (unsigned long long)v);
}

static void lin_fmt_key(void *arg, uint64_t k, char *out, size_t cap)
{
	(void)arg;
	snprintf(out, cap, "k%02d", (int)k);
}

/* The lin_op of a recorded operation: 1, or 0 when it says nothing. */
static int lin_of(const struct sim_op *o, struct lin_op *x)
{
	*x = (struct lin_op){ .key = o->key, .client = o->client, .status = o->status,
			      .t_call = lin_time(o->t_start, o->q_start), .t_ret = lin_time(o->t_end, o->q_end) };
	if (!o->t_end)
		x->t_ret = LIN_NEVER;
	if (o->route_status == KVN_ENOTFOUND) { /* the master knows no value */
		x->kind = LIN_READ;
		x->value = LIN_ABSENT;
		return o->t_end != 0;
	}
	if (o->route_status != 0)
		return 0; /* no route: no request went to a peer */
	switch (o->kind) {
	case SIM_PUT:
		x->kind = LIN_WRITE;
		x->value = o->gen;
		x->home = lin_home(o->node, o->inc_last);
		if (o->t_end && o->status == 0)
			return 1;
		x->t_ret = LIN_NEVER;
		return o->t_sent != 0;
	case SIM_REMOVE:
		x->kind = LIN_REMOVE;
		x->value = o->gen;
		if (o->t_end && o->status == 0)
			return 1;
		if (o->replied && o->item_status != 0 && !o->ambiguous)
			return 0; /* answered "nothing removed" */
		x->t_ret = LIN_NEVER;
		return o->t_sent != 0;
	default: /* GET, CHECK */
		if (!o->t_end)
			return 0;
		x->kind = LIN_READ;
		if (o->status == 0)
			x->value = o->got_gen;
		else if (o->status == KVN_ENOTFOUND)
			x->value = LIN_ABSENT; /* the client takes it as final */
		else
			return 0;
		return 1;
	}
}

/* The window plain puts leave under a master crash (docs/architecture.md,
 * Restart, "What remains"): a plain put is acknowledged before master.db
 * has it.  When the master crashed while master.db named an older
 * generation D of a key than a plain put acknowledged before the crash, D
 * may come back after the restart once the key has no newer value (the
 * newer one removed or lost before its node re-synced), as long as D's own
 * node incarnation lives.  An optional LIN_REVIVE of D from the crash to the
 * final reads (or D's node's crash) allows exactly that; nothing else may
 * come back.  Returns the ops added to out (at most SIM_KEYS). */
static size_t lin_revives(const struct sim_world *w, const struct sim_crash *mc, struct lin_op *out)
{
	size_t n = 0;

	for (int k = 0; k < SIM_KEYS; k++) {
		uint64_t d = mc->db_gen[k];
		const struct sim_op *dput = NULL;
		int newer = 0;
		if (!d)
			continue;
		for (size_t i = 0; i < w->nops; i++) {
			const struct sim_op *o = &w->ops[i];
			if (o->kind != SIM_PUT || o->key != k)
				continue;
			if (o->gen == d && o->node >= 0)
				dput = o;
			else if (o->gen > d && !o->durable && o->status == 0 && o->t_end && o->t_end <= mc->t)
				newer = 1; /* acknowledged, not in master.db */
		}
		if (!newer || !dput)
			continue;
		uint64_t end = w->t_check;
		for (int c = 0; c < w->ncrashes; c++)
			if (w->crashes[c].node == dput->node && w->crashes[c].inc == dput->inc_last &&
			    w->crashes[c].t < end)
				end = w->crashes[c].t; /* D is lost with its node */
		if (end <= mc->t)
			continue;
		out[n++] = (struct lin_op){ .key = k, .kind = LIN_REVIVE, .client = -1, .value = d,
					    .home = lin_home(dput->node, dput->inc_last), .optional = 1,
					    .t_call = lin_time(mc->t, mc->q), .t_ret = lin_time(end, 0) };
	}
	return n;
}

static void check_lin(struct sim_world *w)
{
	size_t cap = 34 * w->nops + (size_t)(5 * w->ncrashes + 2 * w->ncuts * SIM_PEERS * SIM_MAX_CRASHES) * SIM_KEYS + 1;
	struct lin_op *l = kvn_xmalloc(cap * sizeof *l);
	struct lin_stats st = { 0 };
	struct lin_opts lo = { .fmt = lin_fmt_gen, .key_fmt = lin_fmt_key, .unit = "ms", .t_shift = Q_BITS,
				.status_name = kvn_err_name };
	size_t n = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0); /* kvn_now_ms() is the loop's virtual clock */
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *o = &w->ops[i];
		if (!lin_of(o, &l[n]))
			continue;
		n++;
		if (o->kind != SIM_PUT && o->kind != SIM_REMOVE)
			continue;
		if (!o->ambiguous || (l[n - 1].kind != LIN_WRITE && l[n - 1].kind != LIN_REMOVE))
			continue;
		/* Sent more than once (a retry of the step, or a network that
		 * duplicates): a later copy may take effect again, up to a
		 * network delay after the operation ended -- once per peer
		 * incarnation it went to.  (The real client re-routes each
		 * attempt for a new generation; the simulated one re-sends.) */
		for (int inc = 0; inc < 32; inc++) {
			if (!((o->inc_mask >> inc) & 1))
				continue;
			struct lin_op x = l[n - 1];
			x.optional = 1;
			x.home = o->kind == SIM_PUT ? lin_home(o->node, inc) : 0;
			x.t_ret = lin_time((o->t_end ? o->t_end : w->t_heal) + SIM_LATE_COPY_MS, 0);
			l[n++] = x;
			if (o->kind == SIM_REMOVE)
				break;
		}
	}
	for (int c = 0; c < w->ncrashes; c++)
		if (w->crashes[c].node < 0)
			n += lin_revives(w, &w->crashes[c], l + n);
	for (int c = 0; c < w->ncrashes; c++) {
		const struct sim_crash *cr = &w->crashes[c];
		if (cr->node < 0)
			continue; /* the master's index is rebuilt: it loses no value */
		/* DRAM is lost; what peer.db held comes back with the next
		 * incarnation -- the key's current value only: an older
		 * generation whose removal the crash cut short must not
		 * (DESIGN.md section 4: never an older, overwritten one) */
		for (int k = 0; k < SIM_KEYS; k++)
			l[n++] = (struct lin_op){ .key = k, .kind = LIN_LOSE, .client = -1,
						  .home = lin_home(cr->node, cr->inc), .value = cr->disk_gen[k],
						  .to_home = lin_home(cr->node, cr->inc + 1),
						  .t_call = lin_time(cr->t, cr->q), .t_ret = lin_time(cr->t, cr->q) };
		if (!cr->disk_rows)
			continue;
		/* A value kept on disk is still the key's value while its node
		 * is down (a get routed there before the crash may read it from
		 * the next incarnation), but routing may lose it: the master
		 * declares the node dead, or drops its locations when the new
		 * boot attaches -- an optional HIDE from the crash until a node
		 * timeout after the restart.  The restarted node's full sync
		 * indexes it again: an UNHIDE after the restart, and another
		 * after the HIDE's window, before the final reads, unless the
		 * node crashed again first (then its next LOSE decides). */
		int inc = cr->inc + 1;
		uint64_t from = 0, fq = 0, to = w->t_check, tq = 0;
		if (inc < SIM_MAX_CRASHES + 2) {
			from = w->boot_t[cr->node][inc];
			fq = w->boot_q[cr->node][inc];
		}
		for (int d = 0; d < w->ncrashes; d++)
			if (w->crashes[d].node == cr->node && w->crashes[d].inc == inc && w->crashes[d].t <= to) {
				to = w->crashes[d].t;
				tq = w->crashes[d].q;
			}
		int again = to < w->t_check || !from;
		uint64_t hide_end = from ? from + SIM_DEAD_SLACK_MS : w->t_check;
		for (int k = 0; k < SIM_KEYS; k++) {
			if (!cr->disk_gen[k])
				continue;
			struct lin_op h = { .key = k, .kind = LIN_HIDE, .client = -1, .home = lin_home(cr->node, inc),
					    .optional = 1, .t_call = lin_time(cr->t, cr->q),
					    .t_ret = lin_time(hide_end < to ? hide_end : to, hide_end < to ? 0 : tq) };
			l[n++] = h;
			h.kind = LIN_UNHIDE;
			h.optional = again;
			h.t_call = from ? lin_time(from, fq) : lin_time(cr->t, cr->q);
			h.t_ret = lin_time(to, tq);
			l[n++] = h;
			if (hide_end < to) {
				h.t_call = lin_time(hide_end, 0);
				l[n++] = h;
			}
		}
	}
	for (int c = 0; c < w->ncuts; c++) {
		const struct sim_cut *cu = &w->cuts[c];
		uint64_t off = cu->off ? cu->off : w->t_heal;
		for (int p = 0; p < SIM_PEERS; p++) {
			if (cu->node != SIM_NODE_MASTER && cu->node != SIM_NODE_PEER(p))
				continue;
			for (int inc = 1; inc <= w->peer_inc[p]; inc++)
				for (int k = 0; k < SIM_KEYS; k++) {
					struct lin_op h = { .key = k, .kind = LIN_HIDE, .client = -1,
							    .home = lin_home(p, inc), .optional = 1,
							    .t_call = lin_time(cu->on, cu->q_on),
							    .t_ret = lin_time(off + SIM_DEAD_SLACK_MS, 0) };
					l[n++] = h;
					h.kind = LIN_UNHIDE;
					h.t_ret = lin_time(w->t_check, 0);
					l[n++] = h;
				}
		}
	}
	w->lin_report[0] = '\0';
	int bad = lin_check_history(l, n, &lo, &st, w->lin_report, sizeof w->lin_report);
	w->lin_keys = st.keys;
	w->lin_ops = st.ops;
	w->lin_ambiguous = st.ambiguous;
	w->lin_steps = st.steps;
	w->lin_max_steps = st.max_steps;
	w->lin_inconclusive = st.inconclusive;
	w->lin_v_absent = st.v_absent;
	w->lin_v_value = st.v_value;
	w->lin_v_other = st.v_other;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	w->lin_ms = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	if (bad)
		sim_violation(w, SIM_RULE_G, "%d key(s) not linearizable (the checker's account follows the report)",
			      bad);
	free(l);
}

/* Coverage: gets that read, from the node that restarted with it, a
 * generation a crash had left on that node's disk. */
static void count_readback(struct sim_world *w)
{
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *o = &w->ops[i];
		if ((o->kind != SIM_GET && o->kind != SIM_CHECK) || !o->t_end || o->status != 0 || o->node < 0)
			continue;
		for (int c = 0; c < w->ncrashes; c++)
			if (w->crashes[c].node == o->node && w->crashes[c].t < o->t_start &&
			    w->crashes[c].disk_gen[o->key] == o->got_gen && o->inc_last > w->crashes[c].inc) {
				w->n_disk_readback++;
				break;
			}
	}
}

void sim_check_history(struct sim_world *w)
{
	count_readback(w);
	for (size_t i = 0; i < w->nops; i++) {
		const struct sim_op *o = &w->ops[i];
		if (o->t_end && o->t_end > o->deadline)
			sim_violation(w, SIM_RULE_D, "client %d operation on k%02d started t=%llu ended t=%llu, after "
						     "its deadline t=%llu",
				      o->client, o->key, (unsigned long long)o->t_start, (unsigned long long)o->t_end,
				      (unsigned long long)o->deadline);
		if (o->kind != SIM_PUT && o->t_route)
			check_ryw(w, o);
	}
	for (int k = 0; k < SIM_KEYS; k++)
		check_kept(w, k);
	check_lin(w);
}

/* ---- rule e: the master's index equals the union of the peers' keys ---- */

struct dump {
	struct sim_world *w;
	int peer; /* -1: the master */
	uint64_t gen[SIM_KEYS];
	int node[SIM_KEYS];
};

static int key_index(const void *key, size_t klen)
{
	const char *k = key;
	if (klen != 3 || k[0] != 'k' || k[1] < '0' || k[1] > '9' || k[2] < '0' || k[2] > '9')
		return -1;
	int i = (k[1] - '0') * 10 + (k[2] - '0');
	return i < SIM_KEYS ? i : -1;
}

static void on_master_entry(void *arg, const void *key, size_t klen, uint64_t gen, const char *node_id)
{
	struct dump *d = arg;
	int k = key_index(key, klen);
	if (k < 0 && sim_qkey(key, klen))
		return; /* a queue sample: rule h (sim_qcheck.c) */
	if (k < 0) {
		sim_violation(d->w, SIM_RULE_E, "the master's index holds an unknown key of %zu bytes", klen);
		return;
	}
	d->gen[k] = gen;
	d->node[k] = sim_peer_index(node_id);
}

static void on_peer_entry(void *arg, const void *key, size_t klen, uint64_t gen, uint64_t size)
{
	struct dump *d = arg;
	int k = key_index(key, klen);
	char kn[8];
	if (k < 0 && sim_qkey(key, klen))
		return; /* a queue sample: rule h (sim_qcheck.c) */
	if (k < 0) {
		sim_violation(d->w, SIM_RULE_E, "p%d holds an unknown key of %zu bytes", d->peer + 1, klen);
		return;
	}
	sim_key_name(k, kn);
	if (d->gen[k])
		sim_violation(d->w, SIM_RULE_E, "p%d holds two committed gens of %s", d->peer + 1, kn);
	if (size != sim_value_size(k, gen))
		sim_violation(d->w, SIM_RULE_E, "p%d holds %s gen %#llx with %llu bytes, the value has %llu", d->peer + 1,
			      kn, (unsigned long long)gen, (unsigned long long)size,
			      (unsigned long long)sim_value_size(k, gen));
	d->gen[k] = gen;
}

void sim_check_state(struct sim_world *w)
{
	struct dump m = { .w = w, .peer = -1 }, p[SIM_PEERS];
	char k[8];

	if (!w->master_up) {
		sim_violation(w, SIM_RULE_F, "the master is down at the end");
		return;
	}
	master_dump(w->master, on_master_entry, &m);
	for (int i = 0; i < SIM_PEERS; i++) {
		memset(&p[i], 0, sizeof p[i]);
		p[i].w = w;
		p[i].peer = i;
		if (!w->peer_up[i]) {
			sim_violation(w, SIM_RULE_F, "p%d is down at the end", i + 1);
			continue;
		}
		peer_dump(w->peers[i], on_peer_entry, &p[i]);

		struct keytab_stats st;
		peer_keytab_stats(w->peers[i], &st);
		if (st.leases || st.pending || st.doomed)
			sim_violation(w, SIM_RULE_E,
				      "p%d after quiescence: %llu read lease(s), %llu pending slot(s), %llu doomed "
				      "generation(s) left (all must be 0)",
				      i + 1, (unsigned long long)st.leases, (unsigned long long)st.pending,
				      (unsigned long long)st.doomed);
	}
	for (int key = 0; key < SIM_KEYS; key++) {
		int bad = 0;
		if (m.gen[key] && (m.node[key] < 0 || p[m.node[key]].gen[key] != m.gen[key]))
			bad = 1;
		for (int i = 0; i < SIM_PEERS; i++)
			if (p[i].gen[key] && (m.gen[key] != p[i].gen[key] || m.node[key] != i))
				bad = 1;
		if (!bad)
			continue;
		char peers[160];
		size_t n = 0;
		for (int i = 0; i < SIM_PEERS; i++)
			n += (size_t)snprintf(peers + n, sizeof peers - n, "%s p%d %s%#llx", i ? "," : "", i + 1,
					      p[i].gen[key] ? "gen " : "", (unsigned long long)p[i].gen[key]);
		sim_key_name(key, k);
		if (m.gen[key])
			sim_violation(w, SIM_RULE_E, "key %s: the master's index says gen %#llx on p%d; the peers hold:%s", k,
				      (unsigned long long)m.gen[key], m.node[key] + 1, peers);
		else
			sim_violation(w, SIM_RULE_E, "key %s: not in the master's index; the peers hold:%s", k, peers);
	}
}
