/*
 * t/sim_client.c: the simulation's client actor.  It does what
 * src/actors/client_api.c does for one key at a time, over simulated links:
 * put = ROUTE_PUT then PUT{key, gen} with the value of (key, gen); get =
 * ROUTE_GET then GET{key, gen}, some with a speculative GET{key, latest}
 * sent beside the ROUTE_GET; remove = ROUTE_GET then REMOVE{key, gen};
 * and, after quiescence, the checker's final read of every key.  Every
 * operation has one deadline that each of its calls inherits.  It records
 * each operation in the world's history and checks the bytes of every get
 * at once (rule a); some replies are held for a while and checked again,
 * because a reply references the peer's arena pages: a lease freed under
 * the reader shows up as changed bytes.
 */
#include "config.h"

#include <xxhash.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#include "net/proto.h"
#include "master/master.h"
#include "auth/auth.h"
#include "base/base.h"

struct sim_hold {
	struct actor_msg *m;
	int key;
	uint64_t gen, size, due;
};

struct sim_client {
	struct sim_world *w;
	int idx;
	struct proto_grant grant; /* the current put's, from its ROUTE_PUT answer */
	struct actor *self;
	actor_id master, peer[SIM_PEERS];
	struct actor_timer *think, *hold_timer;
	int busy, checking, next_check;
	int step; /* of the current operation: 0 route, 1 the peer */
	size_t op; /* current operation (index into w->ops) */
	uint64_t step_issued, step_timeout;
	struct sim_hold holds[SIM_MAX_HOLDS];
	int nholds;
	/* the current operation's speculative GET (see spec_send) */
	uint64_t spec_next, spec_tok; /* tokens handed out; the current one (0: none) */
	int spec_state;               /* SPEC_NONE, SPEC_WAIT (in flight), SPEC_DONE */
	int route_waits;              /* the route is in and waits for it */
	int spec_node, spec_inc, spec_ambiguous;
	uint64_t spec_issued, spec_timeout, spec_dead_sent;
	struct actor_msg *spec_reply; /* its answer, until the route decides (NULL: an error) */
	int last_node[SIM_KEYS];      /* where this client last saw each key routed, -1 */
	uint64_t last_gen[SIM_KEYS];  /* ... and which generation (0: none) */
};

enum { SPEC_NONE, SPEC_WAIT, SPEC_DONE };

/* ---- values ---- */

static uint64_t mix64(uint64_t x)
{
	/* splitmix64 finalizer */
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

uint64_t sim_value_size(int key, uint64_t gen)
{
	return 1 + mix64(((uint64_t)key << 56) ^ gen) % SIM_MAX_VALUE;
}

void sim_value_fill(int key, uint64_t gen, uint8_t *buf, uint64_t n)
{
	uint64_t x = mix64(((uint64_t)key << 56) ^ gen ^ 0x5151ull);
	for (uint64_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = mix64(x);
		buf[i] = (uint8_t)(x >> ((i & 7) * 8));
	}
}

void sim_key_name(int key, char out[8])
{
	snprintf(out, 8, "k%02d", key);
}

/* 0 when buf holds exactly the value of (key, gen). */
static int value_check(int key, uint64_t gen, const uint8_t *buf, uint64_t n)
{
	if (n != sim_value_size(key, gen))
		return -1;
	uint8_t *want = kvn_xmalloc(n ? n : 1);
	sim_value_fill(key, gen, want, n);
	int rc = memcmp(want, buf, n) != 0;
	free(want);
	return rc;
}

/* The bytes of a GET reply's payload, copied out (the caller frees). */
static uint8_t *payload_copy(const struct actor_msg *m, uint64_t *n)
{
	*n = m->payload ? evbuffer_get_length(m->payload) : 0;
	uint8_t *b = kvn_xmalloc(*n ? *n : 1);
	if (*n)
		evbuffer_copyout(m->payload, b, *n);
	return b;
}

/* ---- history ---- */

size_t sim_op_new(struct sim_world *w, int client, int kind, int key)
{
	if (w->nops == w->capops) {
		w->capops = w->capops ? w->capops * 2 : 1024;
		w->ops = realloc(w->ops, w->capops * sizeof *w->ops);
		if (!w->ops)
			kvn_fatal("out of memory");
	}
	struct sim_op *o = &w->ops[w->nops];
	memset(o, 0, sizeof *o);
	o->client = client;
	o->kind = kind;
	o->key = key;
	o->node = -1;
	o->route_status = 1;
	o->t_start = kvn_now_ms();
	o->deadline = o->t_start + SIM_CALL_MS;
	o->q_start = ++w->qseq;
	return w->nops++;
}

static uint64_t nodes_dead(void)
{
	struct master_stats st;
	master_get_stats(&st);
	return st.nodes_dead;
}

static const char *kind_name(int k)
{
	return k == SIM_PUT ? "PUT" : k == SIM_GET ? "GET" : k == SIM_REMOVE ? "REMOVE" : "CHECK";
}

static void next_op(struct sim_client *c);

/* The operation no longer wants its speculative GET: its answer, if in,
 * is freed; one still in flight will find its token stale. */
static void spec_forget(struct sim_client *c)
{
	actor_msg_free(c->spec_reply);
	c->spec_reply = NULL;
	c->spec_tok = 0;
	c->spec_state = SPEC_NONE;
	c->route_waits = 0;
}

static void op_end(struct sim_client *c, int status)
{
	struct sim_world *w = c->w;
	struct sim_op *o = &w->ops[c->op];
	char k[8];

	o->t_end = kvn_now_ms();
	o->q_end = ++w->qseq;
	o->status = status;
	c->busy = 0;
	if (c->spec_state != SPEC_NONE)
		w->n_spec_dropped++; /* ended before the route could decide */
	spec_forget(c);
	if (o->kind == SIM_PUT && status == 0)
		w->n_puts_acked++;
	if (o->kind == SIM_REMOVE && status == 0)
		w->n_removes_acked++;
	/* fold the outcome into the digest: a replay must reproduce it */
	uint64_t f[] = { (uint64_t)o->client, (uint64_t)o->kind, (uint64_t)o->key, o->t_start, o->t_end,
			 o->gen, (uint64_t)(int64_t)o->status, (uint64_t)(int64_t)o->node, (uint64_t)o->spec };
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		w->digest = mix64(w->digest ^ f[i]);
	sim_key_name(o->key, k);
	sim_trace(w, "c%d %s %s%s%s gen %#llx node %d -> %s (%llu ms)", c->idx, kind_name(o->kind), k,
		  o->durable ? " durable" : "", o->spec == 2 ? " (speculative)" : "", (unsigned long long)o->gen,
		  o->node, status ? kvn_err_name(status) : "ok", (unsigned long long)(o->t_end - o->t_start));
	next_op(c);
}

/* ---- calls: every one inherits the operation's deadline ---- */

/* Rule d, judged when a call completes: a reply or a timeout, never later
 * than the call's own deadline nor the operation's. */
static void call_done(struct sim_client *c, uint64_t issued, uint64_t timeout)
{
	struct sim_world *w = c->w;
	const struct sim_op *o = &w->ops[c->op];
	uint64_t now = kvn_now_ms();
	char k[8];

	sim_key_name(o->key, k);
	if (now > issued + timeout || now > o->deadline)
		sim_violation(w, SIM_RULE_D,
			      "client %d %s %s: a call issued at t=%llu with a %llu ms deadline completed at t=%llu "
			      "(operation deadline t=%llu)",
			      c->idx, kind_name(o->kind), k, (unsigned long long)issued, (unsigned long long)timeout,
			      (unsigned long long)now, (unsigned long long)o->deadline);
}

static void step_done(struct sim_client *c)
{
	call_done(c, c->step_issued, c->step_timeout);
}

static void send_step(struct sim_client *c);
static void spec_decide(struct sim_client *c);

/* At most SIM_TRY_MS, never past the operation's deadline. */
static uint64_t try_ms(const struct sim_op *o, uint64_t now)
{
	return o->deadline - now < SIM_TRY_MS ? o->deadline - now : SIM_TRY_MS;
}

/* A step's call: one attempt of at most SIM_TRY_MS within the op's
 * deadline; a timed-out attempt is tried again while time is left (the
 * real client library retries within its one deadline too). */
static void step_call(struct sim_client *c, actor_id dst, struct actor_msg *m, actor_reply_fn fn)
{
	const struct sim_op *o = &c->w->ops[c->op];
	uint64_t now = kvn_now_ms();
	int rc;

	if (now >= o->deadline) {
		actor_msg_free(m);
		op_end(c, KVN_ETIMEDOUT);
		return;
	}
	c->step_issued = now;
	c->step_timeout = try_ms(o, now);
	rc = actor_call(c->self, dst, m, c->step_timeout, fn, c);
	if (rc) {
		actor_msg_free(m);
		op_end(c, rc);
	}
}

/* The attempt timed out with time left: 1 when it was sent again. */
static int retried(struct sim_client *c, int err)
{
	if (err != KVN_ETIMEDOUT || kvn_now_ms() >= c->w->ops[c->op].deadline)
		return 0;
	send_step(c);
	return 1;
}

/* The one route item of a route reply: 0, or the whole reply's failure. */
static int route_item(const struct actor_msg *reply, int err, struct proto_route *rt)
{
	struct wire_r r;
	uint32_t n;

	if (err)
		return err;
	if (reply->status)
		return reply->status;
	if (proto_routes_open(&r, reply, &n) != 0 || n != 1 || proto_routes_next(&r, rt) != 0)
		return KVN_EPROTO;
	/* a ROUTE_PUT answer ends with the put's grant */
	if (r.off < r.len && proto_route_grants_next(&r, &rt->grant) != 0)
		return KVN_EPROTO;
	if (wire_r_end(&r) != 0)
		return KVN_EPROTO;
	return 0;
}

static int result_item(const struct actor_msg *reply, int err, struct proto_result *res)
{
	struct wire_r r;
	uint32_t n;

	if (err)
		return err;
	if (reply->status)
		return reply->status;
	if (proto_results_open(&r, reply->meta, reply->meta_len, &n) != 0 || n != 1 ||
	    proto_results_next(&r, res) != 0 || wire_r_end(&r) != 0)
		return KVN_EPROTO;
	return 0;
}

/* A route reply arrived: record it and go on with the peer, or end. */
static int on_route(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_client *c = arg;
	struct sim_world *w = c->w;
	struct proto_route rt;
	char k[8];
	int rc;
	(void)self;

	if (w->ending)
		return 0;
	step_done(c);
	if (retried(c, err))
		return 0;
	if ((rc = route_item(reply, err, &rt)) != 0) {
		op_end(c, rc);
		return 0;
	}
	struct sim_op *o = &w->ops[c->op];
	o->t_route = kvn_now_ms();
	o->dead_route = nodes_dead();
	o->route_status = rt.status;
	if (rt.status) {
		op_end(c, rt.status);
		return 0;
	}
	o->gen = rt.gen;
	c->grant = rt.grant;
	o->node = sim_peer_index(rt.node_id);
	sim_key_name(o->key, k);
	if (o->node < 0 || rt.gen == 0) {
		sim_violation(w, SIM_RULE_F, "client %d %s %s: route names node '%s' gen %llu", c->idx,
			      kind_name(o->kind), k, rt.node_id, (unsigned long long)rt.gen);
		op_end(c, KVN_EPROTO);
		return 0;
	}
	if (o->kind != SIM_PUT && rt.size != sim_value_size(o->key, rt.gen))
		sim_violation(w, SIM_RULE_A, "key %s gen %#llx: ROUTE_GET at t=%llu says size %llu, the value has %llu",
			      k, (unsigned long long)rt.gen, (unsigned long long)o->t_route,
			      (unsigned long long)rt.size, (unsigned long long)sim_value_size(o->key, rt.gen));
	c->last_node[o->key] = o->node;
	c->last_gen[o->key] = o->gen;
	c->step = 1;
	if (o->kind == SIM_PUT && w->unsafe == SIM_UNSAFE_FAKE_ACK && sim_rand(w) % 4 == 0) {
		/* broken on purpose: acknowledged, never sent (a lost put) */
		o->t_sent = kvn_now_ms();
		op_end(c, 0);
		return 0;
	}
	if (c->spec_state == SPEC_WAIT)
		c->route_waits = 1; /* the speculative call's own deadline ends the wait */
	else if (c->spec_state == SPEC_DONE)
		spec_decide(c);
	else
		send_step(c);
	return 0;
}

/* sum: a PUT's item, with the value's checksum (flags gets PROTO_ITEMS_SUM) */
static struct actor_msg *items_msg(uint16_t type, int key, uint64_t gen, uint64_t size, uint8_t flags,
				   const uint64_t *sum)
{
	struct actor_msg *m = actor_msg_new(type);
	struct wire_w w;
	char k[8];

	sim_key_name(key, k);
	wire_w_init(&w);
	proto_items_begin(&w, sum ? flags | PROTO_ITEMS_SUM : flags, 1);
	if (sum)
		proto_items_add_sum(&w, k, strlen(k), gen, size, *sum, 0);
	else
		proto_items_add(&w, k, strlen(k), gen, size);
	if (wire_w_to_msg(&w, m) != 0)
		KVN_ASSERT(0); /* one short item */
	return m;
}

/* The data step's reply (PUT, REMOVE; GET has its own): record it. */
static int data_result(struct sim_client *c, const struct actor_msg *reply, int err)
{
	struct proto_result res;
	struct sim_op *o = &c->w->ops[c->op];
	int rc = result_item(reply, err, &res);
	char k[8];

	if (rc)
		return rc;
	o->replied = 1;
	o->item_status = res.status;
	if (res.status == 0 && res.gen != o->gen) {
		sim_key_name(o->key, k);
		sim_violation(c->w, SIM_RULE_F, "key %s: %s of gen %#llx answered for gen %#llx", k, kind_name(o->kind),
			      (unsigned long long)o->gen, (unsigned long long)res.gen);
	}
	return res.status;
}

static int on_put_or_remove(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_client *c = arg;
	(void)self;
	if (c->w->ending)
		return 0;
	step_done(c);
	if (!retried(c, err))
		op_end(c, data_result(c, reply, err));
	return 0;
}

/* ---- get / check ---- */

static void hold_arm(struct sim_client *c)
{
	uint64_t next = UINT64_MAX, now = kvn_now_ms();
	for (int i = 0; i < c->nholds; i++)
		if (c->holds[i].due < next)
			next = c->holds[i].due;
	if (next != UINT64_MAX)
		actor_timer_arm(c->hold_timer, next > now ? next - now : 0);
}

static void hold_release(struct sim_client *c, int i, int check)
{
	struct sim_hold *h = &c->holds[i];
	if (check) {
		uint64_t n;
		uint8_t *b = payload_copy(h->m, &n);
		char k[8];
		sim_key_name(h->key, k);
		if (value_check(h->key, h->gen, b, n) != 0)
			sim_violation(c->w, SIM_RULE_A,
				      "key %s gen %#llx: the bytes of a GET reply changed while the client held it "
				      "(until t=%llu): a read lease was freed under its reader",
				      k, (unsigned long long)h->gen, (unsigned long long)kvn_now_ms());
		free(b);
	}
	actor_msg_free(h->m);
	c->holds[i] = c->holds[--c->nholds];
}

static void hold_tick(struct actor *self, void *arg)
{
	struct sim_client *c = arg;
	uint64_t now = kvn_now_ms();
	(void)self;
	for (int i = 0; i < c->nholds;) {
		if (c->holds[i].due <= now)
			hold_release(c, i, 1);
		else
			i++;
	}
	hold_arm(c);
}

/* The answer that counts for the current GET or CHECK (the routed GET's,
 * or a speculative one that stood): record it, check its bytes against the
 * routed gen (rule a), perhaps hold it, and end the operation.  Returns
 * ACTOR_KEEP when it kept reply (held), else 0: the caller still owns it. */
static int get_finish(struct sim_client *c, struct actor_msg *reply, int err)
{
	struct sim_world *w = c->w;
	struct sim_op *o = &w->ops[c->op];
	struct proto_result res;
	int keep = 0;
	int rc = result_item(reply, err, &res);
	if (rc == 0) {
		o->replied = 1;
		o->item_status = res.status;
		o->got_gen = res.gen;
		rc = res.status;
	}
	if (rc == 0) {
		uint64_t n, want = sim_value_size(o->key, o->gen);
		uint8_t *b = payload_copy(reply, &n);
		int same = n == want && value_check(o->key, o->gen, b, n) == 0;
		char k[8];
		sim_key_name(o->key, k);
		if (res.gen != o->gen || res.size != want || !same)
			sim_violation(w, SIM_RULE_A,
				      "key %s: GET of gen %#llx at t=%llu returned gen %#llx, size %llu, %llu bytes %s "
				      "(the value of that gen has %llu)",
				      k, (unsigned long long)o->gen, (unsigned long long)kvn_now_ms(),
				      (unsigned long long)res.gen, (unsigned long long)res.size, (unsigned long long)n,
				      same ? "that match" : "that differ", (unsigned long long)want);
		else
			w->n_gets_verified++;
		free(b);
		/* keep some replies (and so the peer's pages) a while, and look
		 * at the bytes again when letting go */
		if (o->kind == SIM_GET && c->nholds < SIM_MAX_HOLDS && sim_rand(w) % 10 < 3) {
			struct sim_hold *h = &c->holds[c->nholds++];
			h->m = reply;
			h->key = o->key;
			h->gen = o->gen;
			h->size = want;
			h->due = kvn_now_ms() + 1 + sim_rand(w) % 1000;
			w->n_holds++;
			hold_arm(c);
			keep = ACTOR_KEEP;
		}
	}
	op_end(c, rc);
	return keep;
}

static int on_get(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct sim_client *c = arg;
	(void)self;
	if (c->w->ending)
		return 0;
	step_done(c);
	if (retried(c, err))
		return 0;
	return get_finish(c, reply, err);
}

/* ---- speculative get ----
 *
 * As in client_api.c (spec_send / spec_finish): a get may send GET{key,
 * latest} to a guessed peer together with its ROUTE_GET.  The answer
 * stands only when the route names that peer and the answer holds the
 * routed generation: generations are unique and their bytes immutable, so
 * it is then exactly what the routed read would return, and read-your-
 * writes holds as for the routed read.  Any other answer is discarded and
 * the usual GET{key, gen} sent.  The call carries a token because its
 * answer may come after its operation ended (the route failed first) and
 * must then touch nothing of a later operation. */

struct spec_call {
	struct sim_client *c;
	uint64_t tok;
};

static int on_spec(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct spec_call *sc = arg;
	struct sim_client *c = sc->c;
	uint64_t tok = sc->tok;
	(void)self;
	free(sc);
	if (c->w->ending)
		return 0;
	if (tok != c->spec_tok) {
		c->w->n_spec_late++;
		return 0;
	}
	call_done(c, c->spec_issued, c->spec_timeout);
	c->spec_state = SPEC_DONE;
	c->spec_reply = err ? NULL : reply;
	if (c->route_waits)
		spec_decide(c);
	return err ? 0 : ACTOR_KEEP; /* c->spec_reply took it (spec_decide may have passed it on) */
}

/* At the start of a GET: perhaps send the speculative request. */
static void spec_send(struct sim_client *c)
{
	struct sim_world *w = c->w;
	struct sim_op *o = &w->ops[c->op];
	uint64_t now = kvn_now_ms(), timeout = try_ms(o, now);

	if (sim_rand(w) % 2)
		return;
	/* mostly where this client last saw the key routed (the real client
	 * guesses the peer routes have named), sometimes any peer: a wrong
	 * guess must be discarded too */
	int node = c->last_node[o->key];
	if (node < 0 || sim_rand(w) % 4 == 0)
		node = (int)(sim_rand(w) % SIM_PEERS);
	struct spec_call *sc = kvn_xmalloc(sizeof *sc);
	struct actor_msg *m = items_msg(WIRE_GET, o->key, 0, 0, 0, NULL);
	sc->c = c;
	sc->tok = ++c->spec_next;
	if (actor_call(c->self, c->peer[node], m, timeout, on_spec, sc) != 0) {
		actor_msg_free(m); /* no link: this get goes the usual way */
		free(sc);
		return;
	}
	c->spec_tok = sc->tok;
	c->spec_state = SPEC_WAIT;
	c->spec_node = node;
	c->spec_issued = now;
	c->spec_timeout = timeout;
	c->spec_dead_sent = nodes_dead();
	c->spec_inc = w->peer_inc[node];
	c->spec_ambiguous = w->nsims == 1 && w->faults.dup_pm > 0;
	o->spec = 1;
	w->n_spec_sent++;
}

/* The route is in (ok: o->gen, o->node) and the speculative call has
 * completed: its answer stands, or the usual GET goes out. */
static void spec_decide(struct sim_client *c)
{
	struct sim_world *w = c->w;
	struct sim_op *o = &w->ops[c->op];
	struct actor_msg *m = c->spec_reply;
	struct proto_result res = { 0 };
	char k[8];

	c->spec_reply = NULL; /* this function owns it now */
	spec_forget(c);
	int ok = m && result_item(m, 0, &res) == 0 && res.status == 0;
	int stands = ok && c->spec_node == o->node && (w->unsafe == SIM_UNSAFE_SPEC || res.gen == o->gen);
	sim_key_name(o->key, k);
	sim_trace(w, "c%d GET %s: speculative answer of p%d (%s gen %#llx), route gen %#llx on p%d: %s", c->idx, k,
		  c->spec_node + 1, !m ? "no answer" : ok ? "ok" : "not ok", (unsigned long long)res.gen,
		  (unsigned long long)o->gen, o->node + 1, stands ? "stands" : "discarded");
	if (!stands) {
		actor_msg_free(m);
		w->n_spec_rejected++;
		send_step(c);
		return;
	}
	w->n_spec_accepted++;
	/* the data request whose answer counts is the speculative one */
	o->spec = 2;
	o->t_sent = c->spec_issued;
	o->dead_sent = c->spec_dead_sent;
	o->ambiguous = c->spec_ambiguous;
	o->inc_last = c->spec_inc;
	o->inc_mask |= 1u << (o->inc_last & 31);
	if (get_finish(c, m, 0) != ACTOR_KEEP)
		actor_msg_free(m);
}

/* ---- steps ---- */

/* Build and send the current step of the current operation (again, after
 * a timed-out attempt). */
static void send_step(struct sim_client *c)
{
	struct sim_world *w = c->w;
	struct sim_op *o = &w->ops[c->op];
	struct actor_msg *m;
	struct wire_w ww;
	char k[8];

	sim_key_name(o->key, k);
	if (c->step == 0) {
		wire_w_init(&ww);
		if (o->kind == SIM_PUT) {
			m = actor_msg_new(WIRE_ROUTE_PUT);
			proto_route_put_begin(&ww, NULL, 0, 1);
			/* the size depends on the gen, not known yet: ask for the most */
			proto_route_put_add(&ww, k, strlen(k), SIM_MAX_VALUE);
		} else {
			m = actor_msg_new(WIRE_ROUTE_GET);
			proto_keys_begin(&ww, 1);
			proto_keys_add(&ww, k, strlen(k));
		}
		if (wire_w_to_msg(&ww, m) != 0)
			KVN_ASSERT(0);
		step_call(c, c->master, m, on_route);
		return;
	}
	if (o->t_sent) {
		o->ambiguous = 1; /* sent before: the first copy may have acted */
	} else {
		o->t_sent = kvn_now_ms();
		o->dead_sent = nodes_dead();
		o->ambiguous = w->nsims == 1 && w->faults.dup_pm > 0;
	}
	o->inc_last = w->peer_inc[o->node];
	o->inc_mask |= 1u << (o->inc_last & 31);
	if (o->kind == SIM_PUT) {
		uint64_t size = sim_value_size(o->key, o->gen);
		uint8_t *v = kvn_xmalloc(size);
		sim_value_fill(o->key, o->gen, v, size);
		uint64_t sum = XXH3_64bits(v, size);
		m = items_msg(WIRE_PUT, o->key, o->gen, size, o->durable ? PROTO_PUT_DURABLE : 0, &sum);
		{
			/* the grant goes after the item */
			struct wire_w gw;
			wire_w_init(&gw);
			wire_w_raw(&gw, m->meta, m->meta_len);
			proto_grants_add(&gw, &c->grant);
			free(m->meta);
			m->meta = NULL;
			m->meta_len = 0;
			if (wire_w_to_msg(&gw, m) != 0)
				KVN_ASSERT(0);
		}
		m->payload = evbuffer_new();
		if (!m->payload)
			kvn_fatal("out of memory");
		evbuffer_add(m->payload, v, size);
		m->payload_len = size;
		free(v);
		step_call(c, c->peer[o->node], m, on_put_or_remove);
	} else if (o->kind == SIM_REMOVE) {
		step_call(c, c->peer[o->node], items_msg(WIRE_REMOVE, o->key, o->gen, 0, 0, NULL), on_put_or_remove);
	} else {
		step_call(c, c->peer[o->node], items_msg(WIRE_GET, o->key, o->gen, 0, 0, NULL), on_get);
	}
}

/* ---- the workload ---- */

static void op_start(struct sim_client *c, int kind, int key)
{
	struct sim_world *w = c->w;

	c->op = sim_op_new(w, c->idx, kind, key);
	c->busy = 1;
	c->step = 0;
	if (kind == SIM_PUT)
		w->ops[c->op].durable = sim_rand(w) % 4 == 0;
	if (kind == SIM_GET && w->unsafe == SIM_UNSAFE_STALE_ROUTE && c->last_gen[key] && sim_rand(w) % 2) {
		/* broken on purpose: the last route this client saw, not the
		 * master's current one (a stale read when the key moved on) */
		struct sim_op *o = &w->ops[c->op];
		o->t_route = kvn_now_ms();
		o->dead_route = nodes_dead();
		o->route_status = 0;
		o->gen = c->last_gen[key];
		o->node = c->last_node[key];
		c->step = 1;
		send_step(c);
		return;
	}
	if (kind == SIM_GET)
		spec_send(c);
	send_step(c);
}

static void think_tick(struct actor *self, void *arg)
{
	struct sim_client *c = arg;
	struct sim_world *w = c->w;
	(void)self;
	if (c->busy || w->ending)
		return;
	if (c->checking) {
		if (c->next_check < SIM_KEYS) {
			w->n_checked_keys++;
			op_start(c, SIM_CHECK, c->next_check++);
		} else {
			c->checking = 0;
		}
		return;
	}
	if (!w->workload_on)
		return;
	uint64_t r = sim_rand(w) % 100;
	int key = (int)(sim_rand(w) % SIM_KEYS);
	op_start(c, r < 45 ? SIM_PUT : r < 80 ? SIM_GET : SIM_REMOVE, key);
}

static void next_op(struct sim_client *c)
{
	if (c->checking)
		actor_timer_arm(c->think, 0);
	else if (c->w->workload_on)
		actor_timer_arm(c->think, sim_rand(c->w) % 40);
}

void sim_client_start(struct sim_client *c, uint64_t delay_ms)
{
	actor_timer_arm(c->think, delay_ms);
}

void sim_client_check_all(struct sim_client *c)
{
	c->checking = 1;
	c->next_check = 0;
	if (!c->busy)
		actor_timer_arm(c->think, 0);
}

int sim_client_idle(const struct sim_client *c)
{
	return !c->busy && !c->checking && c->nholds == 0;
}

void sim_client_link(struct sim_client *c, int peer, actor_id proxy)
{
	if (peer < 0)
		c->master = proxy;
	else
		c->peer[peer] = proxy;
}

static int client_handle(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m; /* nothing but replies is expected */
	return 0;
}

static void client_fini(struct actor *self)
{
	struct sim_client *c = actor_state(self);
	while (c->nholds > 0)
		hold_release(c, 0, 0);
	actor_msg_free(c->spec_reply);
	free(c);
}

static const struct actor_ops client_ops = {
	.name = "sim-client",
	.handle = client_handle,
	.fini = client_fini,
};

int sim_client_new(struct sim_world *w, int idx, struct sim_client **out)
{
	struct sim_client *c = kvn_xcalloc(1, sizeof *c);
	int rc;

	c->w = w;
	c->idx = idx;
	for (int k = 0; k < SIM_KEYS; k++)
		c->last_node[k] = -1;
	if ((rc = actor_spawn(w->loop, &client_ops, c, 4096, &c->self)) != 0) {
		free(c);
		return rc;
	}
	c->think = actor_timer_new(c->self, think_tick, c);
	c->hold_timer = actor_timer_new(c->self, hold_tick, c);
	*out = c;
	return 0;
}

struct actor *sim_client_actor(struct sim_client *c)
{
	return c->self;
}
