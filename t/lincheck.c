/*
 * t/lincheck.c: the linearizability checker of t/lincheck.h.
 *
 * The search (Lowe's just-in-time variant of Wing & Gong, as Porcupine
 * does it): the calls and returns of one key's operations form a list in
 * time order.  Walking it, a call may be linearized now if the register
 * model accepts it from the current state: it is lifted out of the list
 * (with its return) and the walk restarts at the head.  Reaching a return
 * means that operation should have been linearized by now: backtrack to
 * the last choice and try the next call instead.  A memo of (set of
 * operations linearized, state) cuts the revisits; both are kept as 128
 * bits of Zobrist hash, so the memo costs 16 bytes an entry whatever the
 * history's length (a false "seen" needs a 128-bit collision).
 *
 * Operations that may or may not have taken effect return at +infinity:
 * their return is never reached, so they need not be linearized; the
 * search succeeds once every operation with a real return is.  An
 * optional operation with a real return (a fault that may have happened
 * within a window) is skipped when its return is reached: one more choice
 * on the stack, undone like a linearization.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

#define V_UNKNOWN (UINT64_MAX - 1) /* the explanation window's start: any value */
#define V_UNSEEN (UINT64_MAX - 2)  /* a value no read or remove names (see classes) */
#define HOME_UNKNOWN UINT64_MAX
#define NIL (-1)
#define LIN_MAX_ACCOUNTS 16 /* impossible operations reported per key */

struct lstate {
	uint64_t v, home; /* the value (LIN_ABSENT, V_UNKNOWN) and where it lives */
	int hidden;       /* its node was declared dead: reads find nothing */
};

const char *lin_kind_name(int kind)
{
	static const char *const names[] = { "?", "put", "get", "remove", "lose", "hide", "unhide", "revive" };
	return kind >= LIN_WRITE && kind <= LIN_REVIVE ? names[kind] : names[0];
}

/* The register: 1 and the next state when op may take effect in s. */
static int model_step(const struct lin_op *op, int canon, const struct lstate *s, struct lstate *out)
{
	int known = s->v != V_UNKNOWN, present = known && s->v != LIN_ABSENT;

	*out = *s;
	switch (op->kind) {
	case LIN_WRITE:
		out->v = canon ? V_UNSEEN : op->value;
		out->home = op->home;
		out->hidden = 0; /* a newer value wins over a hidden one */
		return 1;
	case LIN_READ:
		if (!known) {
			out->v = op->value;
			out->home = HOME_UNKNOWN;
			return 1;
		}
		return (s->hidden ? LIN_ABSENT : s->v) == op->value;
	case LIN_REMOVE:
		if (known && (!present || s->hidden || (op->value != LIN_ANYVAL && op->value != s->v)))
			return 0;
		out->v = LIN_ABSENT;
		out->home = 0;
		out->hidden = 0;
		return 1;
	case LIN_LOSE:
		if (present && s->home == op->home && op->value != LIN_ABSENT && s->v == op->value) {
			/* on disk: the node's next incarnation holds it */
			out->home = op->to_home;
		} else if (present && s->home == op->home) {
			out->v = LIN_ABSENT;
			out->home = 0;
			out->hidden = 0;
		}
		return 1;
	case LIN_HIDE:
		if (present && s->home == op->home)
			out->hidden = 1;
		return 1;
	case LIN_UNHIDE:
		if (present && s->home == op->home)
			out->hidden = 0;
		return 1;
	case LIN_REVIVE:
		/* only into a key with no value (a hidden one still counts):
		 * while a newer value exists, it supersedes the revived one */
		if (known && !present) {
			out->v = op->value;
			out->home = op->home;
			out->hidden = 0;
		}
		return 1;
	}
	return 0;
}

/* ---- the memo: a set of 128-bit keys, open addressing ---- */

struct memo {
	uint64_t (*slot)[2];
	size_t cap, used;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void memo_grow(struct memo *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 4096;
	uint64_t(*ns)[2] = calloc(ncap, sizeof *ns);
	if (!ns)
		abort();
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slot[i][0] && !m->slot[i][1])
			continue;
		size_t j = m->slot[i][0] & (ncap - 1);
		while (ns[j][0] || ns[j][1])
			j = (j + 1) & (ncap - 1);
		ns[j][0] = m->slot[i][0];
		ns[j][1] = m->slot[i][1];
	}
	free(m->slot);
	m->slot = ns;
	m->cap = ncap;
}

/* 1 when (a, b) was not in the set (now it is), 0 when it was. */
static int memo_add(struct memo *m, uint64_t a, uint64_t b)
{
	if (!a && !b)
		a = 1; /* (0, 0) marks a free slot */
	if ((m->used + 1) * 2 > m->cap)
		memo_grow(m);
	size_t j = a & (m->cap - 1);
	while (m->slot[j][0] || m->slot[j][1]) {
		if (m->slot[j][0] == a && m->slot[j][1] == b)
			return 0;
		j = (j + 1) & (m->cap - 1);
	}
	m->slot[j][0] = a;
	m->slot[j][1] = b;
	m->used++;
	return 1;
}

/* ---- the search ---- */

struct ent {
	uint64_t t;
	int op, is_call;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->is_call != y->is_call) /* a call and a return at the same instant overlap */
		return x->is_call ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

struct frame {
	int ent; /* the call linearized, or the return of an optional op skipped */
	struct lstate s;
	uint64_t h1, h2;
};

static int must(const struct lin_op *op)
{
	return op->t_ret != LIN_NEVER && !op->optional;
}

/* Classes of interchangeable operations.  Puts and removes that may or
 * may not have taken effect (t_ret LIN_NEVER) stay callable for ever, so
 * k of them pending make 2^k subsets to try.  Two such puts of values no
 * read or remove names, with the same home, have the same effect (a value
 * nobody sees; the state keeps V_UNSEEN) and no deadline: which one is
 * used does not matter, only how many.  Likewise two such removes of the
 * same value.  So within a class they are taken in call order (rank[i];
 * the search takes only the class's next), and a history with k of them
 * has k + 1 choices, not 2^k.  cls[i] -1: no class. */
static int cmp_u64(const void *a, const void *b);

static void classes(const struct lin_op *ops, size_t n, const struct ent *e, size_t ne, int *cls, int *rank,
		    size_t *nclass)
{
	uint64_t *seen = malloc((n ? n : 1) * sizeof *seen), (*key)[3] = malloc((n ? n : 1) * sizeof *key);
	int *count = calloc(n ? n : 1, sizeof *count);
	size_t ns = 0, nk = 0;

	if (!seen || !key || !count)
		abort();
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == LIN_READ || (ops[i].kind == LIN_REMOVE && ops[i].value != LIN_ANYVAL))
			seen[ns++] = ops[i].value;
	qsort(seen, ns, sizeof *seen, cmp_u64);
	for (size_t i = 0; i < n; i++) {
		const struct lin_op *o = &ops[i];
		cls[i] = -1;
		if (o->t_ret != LIN_NEVER)
			continue;
		if (o->kind == LIN_WRITE && bsearch(&o->value, seen, ns, sizeof *seen, cmp_u64))
			continue; /* someone sees this value: not like the others */
		if (o->kind != LIN_WRITE && o->kind != LIN_REMOVE)
			continue;
		uint64_t k[3] = { (uint64_t)o->kind, o->kind == LIN_WRITE ? o->home : o->value, 0 };
		size_t c = 0;
		while (c < nk && (key[c][0] != k[0] || key[c][1] != k[1]))
			c++;
		if (c == nk) {
			key[nk][0] = k[0];
			key[nk][1] = k[1];
			nk++;
		}
		cls[i] = (int)c;
	}
	for (size_t i = 0; i < ne; i++) /* ranks in call order */
		if (e[i].is_call && cls[e[i].op] >= 0)
			rank[e[i].op] = count[cls[e[i].op]]++;
	*nclass = nk;
	free(seen);
	free(key);
	free(count);
}

static int search(const struct lin_op *ops, size_t n, int unknown_start, uint64_t limit, uint64_t *steps_out)
{
	size_t ne = 2 * n, head = ne, tail = ne + 1;
	struct ent *e = calloc(ne ? ne : 1, sizeof *e);
	int *next = calloc(ne + 2, sizeof *next), *prev = calloc(ne + 2, sizeof *prev);
	int *match = calloc(ne ? ne : 1, sizeof *match), *call_ent = calloc(n ? n : 1, sizeof *call_ent);
	uint64_t *z1 = calloc(n ? n : 1, sizeof *z1), *z2 = calloc(n ? n : 1, sizeof *z2);
	struct frame *stack = calloc(n ? n : 1, sizeof *stack); /* one frame per op at most */
	int *cls = calloc(n ? n : 1, sizeof *cls), *rank = calloc(n ? n : 1, sizeof *rank), *cls_next = NULL;
	size_t nclass = 0;
	struct memo memo = { 0 };
	struct lstate s = { .v = unknown_start ? V_UNKNOWN : LIN_ABSENT };
	uint64_t h1 = 0, h2 = 0, steps = 0;
	size_t pending = 0, depth = 0;
	int verdict = LIN_OK;

	if (!e || !next || !prev || !match || !call_ent || !z1 || !z2 || !stack || !cls || !rank)
		abort();
	for (size_t i = 0; i < n; i++) {
		e[2 * i] = (struct ent){ ops[i].t_call, (int)i, 1 };
		e[2 * i + 1] = (struct ent){ ops[i].t_ret, (int)i, 0 };
		z1[i] = mix(i * 2 + 1);
		z2[i] = mix(~(i * 2 + 1));
		pending += must(&ops[i]);
	}
	qsort(e, ne, sizeof *e, ent_cmp);
	for (size_t i = 0; i < ne; i++)
		if (e[i].is_call)
			call_ent[e[i].op] = (int)i;
	for (size_t i = 0; i < ne; i++)
		if (!e[i].is_call)
			match[call_ent[e[i].op]] = (int)i;
	classes(ops, n, e, ne, cls, rank, &nclass);
	cls_next = calloc(nclass ? nclass : 1, sizeof *cls_next);
	if (!cls_next)
		abort();
	/* the list: head, entries in time order, tail */
	next[head] = ne ? 0 : (int)tail;
	prev[tail] = ne ? (int)ne - 1 : (int)head;
	for (size_t i = 0; i < ne; i++) {
		prev[i] = i ? (int)i - 1 : (int)head;
		next[i] = i + 1 < ne ? (int)i + 1 : (int)tail;
	}

	int cur = next[head];
	while (pending > 0) {
		if (++steps > limit) {
			verdict = LIN_INCONCLUSIVE;
			break;
		}
		if (cur == (int)tail) { /* cannot happen: a pending return is still listed */
			verdict = LIN_VIOLATION;
			break;
		}
		if (e[cur].is_call) {
			int o = e[cur].op;
			struct lstate ns;
			if (cls[o] >= 0 && rank[o] != cls_next[cls[o]]) {
				cur = next[cur]; /* an equivalent op of its class goes first */
				continue;
			}
			/* an op that need not happen and would change nothing now
			 * is better left pending: it can still happen later */
			if (model_step(&ops[o], cls[o] >= 0, &s, &ns) &&
			    (must(&ops[o]) || ns.v != s.v || ns.home != s.home || ns.hidden != s.hidden)) {
				uint64_t n1 = h1 ^ z1[o], n2 = h2 ^ z2[o];
				uint64_t sh = mix(ns.v ^ mix(ns.home + (uint64_t)ns.hidden));
				if (memo_add(&memo, n1 ^ sh, n2 ^ mix(sh))) {
					int r = match[cur];
					stack[depth++] = (struct frame){ cur, s, h1, h2 };
					s = ns;
					h1 = n1;
					h2 = n2;
					/* lift the call and its return out of the list */
					next[prev[cur]] = next[cur];
					prev[next[cur]] = prev[cur];
					next[prev[r]] = next[r];
					prev[next[r]] = prev[r];
					pending -= must(&ops[o]);
					if (cls[o] >= 0)
						cls_next[cls[o]]++;
					cur = next[head];
					continue;
				}
			}
			cur = next[cur];
			continue;
		}
		if (ops[e[cur].op].optional) {
			/* an optional op's window closes: leave it out (its
			 * call goes too), or backtrack to linearize it earlier */
			int o = e[cur].op, r = cur, c = call_ent[o];
			uint64_t n1 = h1 ^ z1[o], n2 = h2 ^ z2[o];
			uint64_t sh = mix(s.v ^ mix(s.home + (uint64_t)s.hidden));
			if (memo_add(&memo, n1 ^ sh, n2 ^ mix(sh))) {
				stack[depth++] = (struct frame){ r, s, h1, h2 };
				h1 = n1;
				h2 = n2;
				next[prev[c]] = next[c];
				prev[next[c]] = prev[c];
				next[prev[r]] = next[r];
				prev[next[r]] = prev[r];
				cur = next[r];
				continue;
			}
		}
		/* a return whose call is not linearized yet: undo the last choice */
		for (;;) {
			if (depth == 0) {
				verdict = LIN_VIOLATION;
				goto done;
			}
			struct frame f = stack[--depth];
			int skipped = !e[f.ent].is_call;
			int o = e[f.ent].op, c = call_ent[o], r = match[c];
			prev[next[r]] = r;
			next[prev[r]] = r;
			prev[next[c]] = c;
			next[prev[c]] = c;
			s = f.s;
			h1 = f.h1;
			h2 = f.h2;
			if (skipped)
				continue; /* leaving it out failed: the choice before */
			pending += must(&ops[o]);
			if (cls[o] >= 0)
				cls_next[cls[o]]--;
			cur = next[c];
			break;
		}
	}
done:
	if (steps_out)
		*steps_out = steps;
	free(memo.slot);
	free(e);
	free(next);
	free(prev);
	free(match);
	free(call_ent);
	free(z1);
	free(z2);
	free(stack);
	free(cls);
	free(rank);
	free(cls_next);
	return verdict;
}

int lin_check_key(const struct lin_op *ops, size_t n, uint64_t step_limit, uint64_t *steps)
{
	return search(ops, n, 0, step_limit ? step_limit : LIN_DEFAULT_STEPS, steps);
}

/* ---- reports ---- */

struct out {
	char *p;
	size_t cap, len;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	if (!o->p || o->len + 1 >= o->cap)
		return;
	va_start(ap, fmt);
	int k = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->len = o->len + (size_t)k < o->cap ? o->len + (size_t)k : o->cap - 1;
}

static void fmt_value(const struct lin_opts *lo, uint64_t v, char *buf, size_t cap)
{
	if (v == LIN_ABSENT)
		snprintf(buf, cap, "not found");
	else if (v == LIN_ANYVAL)
		snprintf(buf, cap, "any value");
	else if (lo->fmt)
		lo->fmt(lo->fmt_arg, v, buf, cap);
	else
		snprintf(buf, cap, "%#llx", (unsigned long long)v);
}

static void op_line(struct out *o, const struct lin_opts *lo, size_t idx, const struct lin_op *op, const char *mark)
{
	char v[64], t1[32], st[32];
	const char *unit = lo->unit ? lo->unit : "";
	const char *sp = *unit ? " " : "";
	if (op->status == 0)
		snprintf(st, sizeof st, "ok");
	else if (lo->status_name)
		snprintf(st, sizeof st, "%s", lo->status_name(op->status));
	else
		snprintf(st, sizeof st, "status %d", op->status);
	if (op->t_ret == LIN_NEVER)
		snprintf(t1, sizeof t1, "inf");
	else
		snprintf(t1, sizeof t1, "%llu", (unsigned long long)((op->t_ret - lo->t_base) >> lo->t_shift));
	fmt_value(lo, op->value, v, sizeof v);
	if (op->kind == LIN_LOSE || op->kind == LIN_HIDE || op->kind == LIN_UNHIDE || op->kind == LIN_REVIVE) {
		outf(o, "  %s#%zu fault: %s%s%s home %#llx [%llu..%s%s%s]%s\n", mark, idx, lin_kind_name(op->kind),
		     op->kind == LIN_REVIVE ? " " : "", op->kind == LIN_REVIVE ? v : "", (unsigned long long)op->home, (unsigned long long)((op->t_call - lo->t_base) >> lo->t_shift), t1,
		     sp, unit, op->optional ? " (may or may not have happened)" : "");
		return;
	}
	char home[40] = "";
	if (op->kind == LIN_WRITE && op->home)
		snprintf(home, sizeof home, " (home %#llx)", (unsigned long long)op->home);
	outf(o, "  %s#%zu client %d %s %s%s [%llu..%s%s%s] %s%s\n", mark, idx, op->client, lin_kind_name(op->kind), v,
	     home, (unsigned long long)((op->t_call - lo->t_base) >> lo->t_shift), t1, sp, unit, st,
	     op->t_ret == LIN_NEVER ? " (may or may not have taken effect)"
	     : op->optional	    ? " (may or may not take effect in this window)"
				    : "");
}

/* 1 when op is a put whose value a read of ops[0..n) returned. */
static int value_read(const struct lin_op *ops, size_t n, const struct lin_op *op)
{
	for (size_t i = 0; op->kind == LIN_WRITE && i < n; i++)
		if (ops[i].kind == LIN_READ && ops[i].value == op->value)
			return 1;
	return 0;
}

static int home_written(const struct lin_op *ops, size_t n, uint64_t home)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i].kind == LIN_WRITE && ops[i].home == home)
			return 1;
	return 0;
}

static int cmp_call(const void *a, const void *b)
{
	const struct lin_op *x = a, *y = b;
	if (x->t_call != y->t_call)
		return x->t_call < y->t_call ? -1 : 1;
	return x->t_ret < y->t_ret ? -1 : x->t_ret > y->t_ret;
}

/* The history as it stood at time T (ops sorted by call): what was called
 * before T, with what returned after T still running (a read's answer not
 * known yet: left out; a put or remove: it may or may not have happened).
 * idx[i] gets the index in ops of out[i].  Linearizability is closed under
 * these prefixes, so the first T at which the history fails is where it
 * went wrong. */
static size_t prefix_at(const struct lin_op *ops, size_t n, uint64_t T, struct lin_op *out, size_t *idx)
{
	size_t m = 0;
	for (size_t i = 0; i < n && ops[i].t_call < T; i++) {
		struct lin_op x = ops[i];
		if (x.t_ret > T) {
			if (x.kind == LIN_READ)
				continue;
			x.t_ret = LIN_NEVER;
		}
		idx[m] = i;
		out[m++] = x;
	}
	return m;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ops: one key's, sorted by call, not linearizable.  Find the first
 * instant T at which the history already fails and the operation that
 * returned then (the impossible one), then the shortest run of operations
 * called up to T that no starting value explains, and write them out. */
static const struct lin_op *explain(const struct lin_op *ops, size_t n, const struct lin_opts *lo, uint64_t limit,
				    struct out *o, int brief)
{
	uint64_t *ts = malloc((n ? n : 1) * sizeof *ts);
	struct lin_op *h = malloc((n ? n : 1) * sizeof *h);
	size_t *idx = malloc((n ? n : 1) * sizeof *idx), nt = 0, m = 0, from = 0, bad = n;
	const struct lin_op *res = NULL;

	if (!ts || !h || !idx)
		abort();
	for (size_t i = 0; i < n; i++)
		if (ops[i].t_ret != LIN_NEVER && !ops[i].optional)
			ts[nt++] = ops[i].t_ret;
	qsort(ts, nt, sizeof *ts, cmp_u64);
	/* the first failing instant: binary search (failing is monotone) */
	size_t lo_i = 0, hi_i = nt; /* answer in [lo_i, hi_i); hi_i: none found */
	while (lo_i < hi_i) {
		size_t mid = lo_i + (hi_i - lo_i) / 2;
		m = prefix_at(ops, n, ts[mid], h, idx);
		if (search(h, m, 0, limit, NULL) == LIN_VIOLATION)
			hi_i = mid;
		else
			lo_i = mid + 1;
	}
	if (lo_i >= nt) {
		outf(o, "  (the search gave up on every prefix of the %zu operations: no shorter account)\n", n);
		goto out;
	}
	uint64_t T = ts[lo_i];
	m = prefix_at(ops, n, T, h, idx);
	/* the operation that returned at T (a read, if several did) */
	for (size_t i = 0; i < m; i++)
		if (h[i].t_ret == T && !h[i].optional && (bad == n || h[i].kind == LIN_READ))
			bad = i;
	if (bad == n) /* cannot happen: T is a return of one of them */
		goto out;
	/* the window: the latest start from which no starting value helps */
	for (size_t i = bad + 1; !brief && i-- > 0;)
		if (search(h + i, m - i, 1, limit, NULL) == LIN_VIOLATION) {
			from = i;
			break;
		}
	res = &ops[idx[bad]];
	char v[64];
	fmt_value(lo, res->value, v, sizeof v);
	if (brief) {
		op_line(o, lo, idx[bad], res, "then impossible too: ");
		goto out;
	}
	outf(o, "  impossible: #%zu, client %d's %s of %s: no order of what was called before it returned explains "
		"it, whatever the operations still running did;\n  window: #%zu..#%zu, which no starting value of "
		"the key explains:\n",
	     idx[bad], res->client, lin_kind_name(res->kind), v, idx[from], idx[m - 1]);
	/* earlier calls still running when the window starts (of those that
	 * may never end, the puts of a value read in the window) */
	int shown = 0;
	for (size_t i = idx[from]; i-- > 0 && shown < 6;)
		if (ops[i].t_ret > ops[idx[from]].t_call && ops[i].client >= 0 &&
		    (ops[i].t_ret != LIN_NEVER || value_read(h + from, m - from, &ops[i]))) {
			op_line(o, lo, i, &ops[i], "(still running) ");
			shown++;
		}
	size_t w = m - from;
	for (size_t i = from; i < m; i++) {
		if (w > 24 && i == from + 8) {
			outf(o, "  ... %zu operations ...\n", w - 24);
			i = m - 16;
		}
		if (h[i].client < 0 && !home_written(h + from, m - from, h[i].home))
			continue; /* a fault that touches no value of the window */
		op_line(o, lo, idx[i], &ops[idx[i]], i == bad ? "=> " : "");
	}
out:
	free(ts);
	free(h);
	free(idx);
	return res;
}

static int cmp_key(const void *a, const void *b)
{
	const struct lin_op *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return cmp_call(a, b);
}

int lin_check_history(const struct lin_op *ops, size_t n, const struct lin_opts *lo, struct lin_stats *st,
		      char *report, size_t cap)
{
	static const struct lin_opts none = { 0 };
	struct lin_op *s = malloc((n ? n : 1) * sizeof *s);
	struct out o = { report, cap, report && cap ? strlen(report) : 0 };
	int bad = 0;

	if (!s)
		abort();
	if (!lo)
		lo = &none;
	uint64_t limit = lo->step_limit ? lo->step_limit : LIN_DEFAULT_STEPS;
	memcpy(s, ops, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_key);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		uint64_t steps = 0;
		while (j < n && s[j].key == s[i].key)
			j++;
		int v = search(s + i, j - i, 0, limit, &steps);
		st->keys++;
		st->ops += j - i;
		for (size_t x = i; x < j; x++)
			st->ambiguous += s[x].t_ret == LIN_NEVER;
		st->steps += steps;
		if (steps > st->max_steps)
			st->max_steps = steps;
		if (v == LIN_INCONCLUSIVE)
			st->inconclusive++;
		if (v == LIN_VIOLATION) {
			st->violations++;
			bad++;
			char kn[64];
			if (lo->key_fmt)
				lo->key_fmt(lo->fmt_arg, (uint64_t)s[i].key, kn, sizeof kn);
			else
				snprintf(kn, sizeof kn, "%d", s[i].key);
			outf(&o, "key %s: not linearizable (%zu operations)\n", kn, j - i);
			/* the first impossible operation with its window; then,
			 * without it, the next ones, a line each */
			struct lin_op *wk = malloc((j - i) * sizeof *wk);
			size_t m = j - i;
			if (!wk)
				abort();
			memcpy(wk, s + i, m * sizeof *wk);
			for (int round = 0; round < LIN_MAX_ACCOUNTS; round++) {
				const struct lin_op *x = explain(wk, m, lo, limit, &o, round > 0);
				if (!x)
					break;
				if (x->kind == LIN_READ && x->value == LIN_ABSENT)
					st->v_absent++;
				else if (x->kind == LIN_READ)
					st->v_value++;
				else
					st->v_other++;
				size_t at = (size_t)(x - wk);
				if (wk[at].kind == LIN_READ) /* its answer was impossible: forget it */
					wk[at].optional = 1; /* (a read that need not happen never does) */
				else /* a put or remove: let it have happened or not */
					wk[at].t_ret = LIN_NEVER;
				if (search(wk, m, 0, limit, NULL) != LIN_VIOLATION)
					break;
			}
			free(wk);
		}
		i = j;
	}
	free(s);
	return bad;
}
