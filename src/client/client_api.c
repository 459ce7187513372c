/*
 * client_api: the synchronous public calls of include/kvnode.h (put, get,
 * get by generation, exists, remove, ping, stat, connect, close), built on
 * client_round.c.  Each call routes its keys through the master, sends one
 * request per destination peer (all in flight together), and retries what
 * can be retried within its one deadline: ENOSPC re-routes with that node
 * excluded, a failed peer is quarantined and its items re-routed, a
 * "latest" get (or a remove) that raced a newer put re-routes.
 * Authentication errors and stale generations of a get by ref are final.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "client/client.h"


static __thread char last_detail[768];

void client_set_last_detail(const char *s)
{
	snprintf(last_detail, sizeof last_detail, "%s", s ? s : "");
}

const char *kvn_last_detail(const struct kvn_client *c)
{
	return c ? c->detail : last_detail;
}

/* ---- put ---- */

/* gens (optional): per item, the generation stored (0 when it failed).
 * ttl_ms: every item's (0: none). */
static int batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags, uint64_t ttl_ms,
		     uint64_t *gens)
{
	struct client_op op;
	int *st;
	int rc = 0;
	uint8_t wire_flags;

	if (!c || (!items && n) || client_put_wire_flags(flags, &wire_flags) != 0 || ttl_ms > PROTO_TTL_MAX_MS)
		return KVN_EINVAL; /* an unknown flag may ask for a promise we cannot keep */
	client_op_begin(c, &op, items, n, WIRE_PUT);
	/* once per value, whatever the retries: the peer stores it and every
	 * reader checks the bytes against it.  Computed when first needed
	 * (client_item_add; a same-host put sums while staging the bytes). */
	uint64_t *sums = kvn_xcalloc(n ? n : 1, sizeof *sums);
	op.sums = sums;
	op.sum_known = kvn_xcalloc(n ? n : 1, 1);
	op.ttl_ms = ttl_ms;
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	for (size_t i = 0; i < n; i++) {
		items[i].status = 0;
		if (!items[i].key)
			st[i] = KVN_EINVAL;
		else if (!client_key_ok(&items[i]))
			st[i] = KVN_EKEYLEN;
		else if (items[i].vlen > c->conf.node_max_value_size)
			st[i] = KVN_ETOOBIG;
		else if (items[i].vlen && !items[i].val)
			st[i] = KVN_EINVAL;
		else
			st[i] = KVN_EBUSY; /* to do */
	}
	rc = client_put_rounds(c, &op, st, wire_flags);
	for (size_t i = 0; i < n; i++) {
		int s = st[i];
		if (s == KVN_EBUSY && rc)
			s = rc;
		items[i].status = s; /* KVN_ENOSPC: the node tried last had no room */
		if (gens)
			gens[i] = s == 0 ? op.rt[i].gen : 0;
		/* our own write: the next get must see it */
		if (s == 0) {
			op.rt[i].size = items[i].vlen;
			client_rc_put(c, items[i].key, items[i].klen, &op.rt[i]);
		} else if (client_key_ok(&items[i])) {
			client_rc_drop(c, items[i].key, items[i].klen);
		}
	}
	free(st);
	free(sums);
	free(op.sum_known);
	client_op_end(c, &op);
	return rc && rc != KVN_ETIMEDOUT ? rc : client_first_error(items, n);
}

int kvn_batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags)
{
	return batch_put(c, items, n, flags, 0, NULL);
}

int kvn_batch_put_opts(struct kvn_client *c, struct kvn_item *items, size_t n, const struct kvn_put_opts *o)
{
	return batch_put(c, items, n, o ? o->flags : 0, o ? o->ttl_ms : 0, NULL);
}

int kvn_put_opts(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		 struct kvn_put_opts *o)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = (void *)val, .vlen = vlen };
	uint64_t g = 0;
	int rc = batch_put(c, &it, 1, o ? o->flags : 0, o ? o->ttl_ms : 0, &g);
	if (o)
		o->gen = g;
	return rc ? rc : it.status;
}

int kvn_put(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
	    unsigned flags)
{
	return kvn_put_gen(c, key, klen, val, vlen, flags, NULL);
}

int kvn_put_gen(struct kvn_client *c, const void *key, size_t klen, const void *val, size_t vlen,
		unsigned flags, uint64_t *gen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = (void *)val, .vlen = vlen };
	uint64_t g = 0;
	int rc = batch_put(c, &it, 1, flags, 0, &g);
	if (gen)
		*gen = g;
	return rc ? rc : it.status;
}

/* ---- get / exists / remove: route, then ask the peers ---- */

/* ---- speculative get (client.speculative_get) ----
 *
 * While route answers have named one peer only, a get's first attempt sends
 * the peer request together with the ROUTE_GET instead of after it: one
 * round trip instead of two, which is most of a small get's time.  The
 * master stays the authority.  Bytes read this way count only when its
 * answer names the same node and a generation equal to the one the peer
 * served (or the one asked for, by ref), and so does a KVN_ECORRUPT of
 * that generation; generations are never reused and
 * their bytes never change, so such a result is exactly what the route
 * followed by the read would have returned, and a put acknowledged before
 * the call is seen as before.  Any other outcome (another node, an older
 * or newer generation, an error) is forgotten and the item read again the
 * usual way; the caller's buffer may then have held the discarded bytes
 * in between, as it may after any failed get. */

/* Send the speculative requests for items idx[0..n) to the sole peer,
 * whose id goes to node (the route may change the sole peer before the
 * answers are judged); per-item results go to sst[].  0 when nothing was
 * sent. */
static int spec_send(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *sst,
		     const uint64_t *want_gen, char node[sizeof c->sole.node_id])
{
	struct proto_route rt;

	if (!client_spec_target(c, &rt))
		return 0;
	memcpy(node, rt.node_id, sizeof rt.node_id);
	for (uint32_t j = 0; j < n; j++) {
		op->rt[idx[j]] = rt;
		if (want_gen)
			op->rt[idx[j]].gen = want_gen[idx[j]];
	}
	client_send_round(c, op, idx, n, sst, 0);
	c->stats.spec_sent += n;
	return 1;
}

/* The route call returned route_rc (op->rt / op->route_st filled when 0):
 * wait for the speculative round and mark in served[] the items whose
 * answer in sst[] stands: the route names the node asked, and the answer
 * is the one the usual read would get there.  For a latest get that is the
 * routed generation's bytes (or KVN_ERANGE for them); for a get by ref,
 * which asked that node for the same generation, also KVN_ESTALE and
 * KVN_ENOTFOUND.  The others are reset for a usual read.  Returns
 * KVN_ETIMEDOUT if the round outlived the deadline, else 0. */
static int spec_finish(struct kvn_client *c, struct client_op *op, const uint32_t *idx, uint32_t n, int *sst,
		       const uint64_t *want_gen, const char *node, int route_rc, uint8_t *served)
{
	int rc = client_wait_round(c, op);

	if (!op->res)
		op->res = kvn_xcalloc(op->n, sizeof *op->res);
	client_collect_round(c, op, sst);
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = idx[j];
		struct kvn_item *it = &op->items[i];
		int s = sst[i], stands;
		if (s == 0 || s == KVN_ERANGE || s == KVN_ECORRUPT) /* that gen's bytes: read once */
			stands = op->res[i].gen == (want_gen ? want_gen[i] : op->rt[i].gen);
		else
			stands = want_gen && (s == KVN_ESTALE || s == KVN_ENOTFOUND);
		if (route_rc == 0 && rc == 0 && op->route_st[i] == 0 && strcmp(op->rt[i].node_id, node) == 0 &&
		    stands) {
			served[i] = 1;
			c->stats.spec_served++;
			continue;
		}
		if (op->alloc_mine && op->alloc_mine[i] && it->val) {
			free(it->val); /* sized for the discarded value */
			it->val = NULL;
			it->cap = 0;
		}
	}
	return rc;
}

/* ---- the rounds of one get, exists or remove ----
 *
 * want_gen (GET only, optional): per item the exact generation to read;
 * then KVN_ESTALE is final (a ref that names a value gone), not a reason
 * to re-route as for a "latest" get.
 *
 * A latest get (or a remove) answered KVN_ESTALE raced a put that moved the
 * key: the peer it was routed to holds a newer generation, or the master
 * superseded its copy (a tombstone: keytab_supersede).  It is routed again
 * until it reads a generation the master names, for as long as the deadline
 * allows (with backoff, so a route that keeps moving is not hammered); such
 * rounds do not count against client.retries, which bounds the rounds
 * after failures (a peer unreachable, a frame too big).  A latest get
 * never returns KVN_ESTALE: out of time, it is KVN_ETIMEDOUT. */

/* One get-like call across its rounds. */
struct get_call {
	struct kvn_client *c;
	struct client_op op;
	struct kvn_item *items;
	size_t n;
	int kind;                 /* WIRE_GET, WIRE_EXISTS or WIRE_REMOVE */
	const uint64_t *want_gen; /* a get by generation, or NULL */
	int *st;                  /* per item: its status; KVN_EBUSY = to do */
	uint32_t *idx, k;         /* the items of this round */
	uint32_t *miss, nmiss;    /* of those, the ones without a remembered route */
	uint32_t *ridx, nroute;   /* of those, the ones ROUTE_GET asks for */
	uint8_t *cached;          /* per item: this round uses a remembered route */
	uint8_t *served;          /* answered: speculation confirmed, or via the master */
	/* alloc: the items that came with val == NULL get a malloc'd buffer
	 * (the caller's to free); the others are read into their buffer */
	uint8_t *mine;
	int *sst;                 /* answers of speculative and via-master reads */
	struct kvn_backoff bo;
	uint64_t failed_rounds;
};

static void get_call_begin(struct get_call *g, struct kvn_client *c, struct kvn_item *items, size_t n, int kind,
			   int alloc, const uint64_t *want_gen)
{
	size_t m = n ? n : 1;

	memset(g, 0, sizeof *g);
	g->c = c;
	g->items = items;
	g->n = n;
	g->kind = kind;
	g->want_gen = want_gen;
	client_op_begin(c, &g->op, items, n, kind);
	g->op.alloc_get = alloc;
	g->op.want_gen = want_gen;
	/* one block for every per-item array (get_call_end frees st): a
	 * call's allocations are per call, not per array */
	uint8_t *blk = kvn_xcalloc(m, 2 * sizeof(int) + 3 * sizeof(uint32_t) + 3);
	g->st = (int *)blk;
	g->sst = g->st + m;
	g->idx = (uint32_t *)(g->sst + m);
	g->miss = g->idx + m;
	g->ridx = g->miss + m;
	g->cached = (uint8_t *)(g->ridx + m);
	g->served = g->cached + m;
	g->mine = kind == WIRE_GET && alloc ? g->served + m : NULL;
	g->op.alloc_mine = g->mine;
	client_pause_init(&g->bo);
	for (size_t i = 0; i < n; i++) {
		items[i].status = 0;
		items[i].exists = 0;
		if (g->mine && !items[i].val) {
			g->mine[i] = 1;
			items[i].cap = 0;
		}
		g->st[i] = !items[i].key ? KVN_EINVAL : client_key_ok(&items[i]) ? KVN_EBUSY : KVN_EKEYLEN;
	}
}

/* The items still to do (a latest get or a remove that raced a move is
 * one of them): into idx[0..k).  Returns k. */
static uint32_t get_pick_round(struct get_call *g)
{
	g->k = 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->st[i] == KVN_EBUSY || g->st[i] == KVN_ECONN || (g->st[i] == KVN_ESTALE && !g->want_gen))
			g->idx[g->k++] = (uint32_t)i;
	return g->k;
}

/* Gets may reuse a remembered route; anything else asks the master (a
 * remove forgets the key's route).  The others go to miss[0..nmiss). */
static void get_use_remembered_routes(struct get_call *g)
{
	struct kvn_client *c = g->c;

	g->nmiss = 0;
	for (uint32_t j = 0; j < g->k; j++) {
		uint32_t i = g->idx[j];
		struct route_cache_ent *e = NULL;
		if (g->kind == WIRE_GET && c->conf.client_route_cache_ttl)
			e = client_rc_find(c, g->items[i].key, g->items[i].klen);
		else if (g->kind == WIRE_REMOVE || g->kind == WIRE_EVICT_KEY)
			client_rc_drop(c, g->items[i].key, g->items[i].klen);
		g->cached[i] = e != NULL;
		g->served[i] = 0; /* asked again: an earlier answer is gone */
		if (e) {
			g->op.rt[i] = e->rt;
			g->op.route_st[i] = 0;
		} else {
			g->miss[g->nmiss++] = i;
		}
	}
}

/* Routes for the items without one: a get goes through the master
 * (client.get_via_master), which serves it, routes it, or neither (those
 * then ask ROUTE_GET); or, on the first attempt, speculates on the sole
 * peer alongside its ROUTE_GET.  *via_again: a served item must be asked
 * again.  An error only when the master could not answer at all. */
static int get_ask_routes(struct get_call *g, uint64_t attempt, int *via_again)
{
	struct kvn_client *c = g->c;
	char spec_node[sizeof c->sole.node_id];
	int spec = 0, rc = 0;

	g->nroute = g->nmiss;
	if (g->kind == WIRE_GET && g->nmiss && client_get_via_wanted(c, &g->op, g->miss, g->nmiss)) {
		client_get_via_master(c, &g->op, g->miss, g->nmiss, g->sst, g->served, via_again);
		g->nroute = 0;
		for (uint32_t j = 0; j < g->nmiss; j++)
			if (!g->served[g->miss[j]] && g->op.route_st[g->miss[j]] == KVN_EBUSY)
				g->ridx[g->nroute++] = g->miss[j];
	} else {
		memcpy(g->ridx, g->miss, g->nmiss * sizeof *g->ridx);
		if (g->kind == WIRE_GET && attempt == 0 && g->nmiss)
			spec = spec_send(c, &g->op, g->miss, g->nmiss, g->sst, g->want_gen, spec_node);
	}
	if (g->nroute) {
		rc = client_route_get(c, &g->op, g->ridx, g->nroute);
		if (spec) {
			int wrc = spec_finish(c, &g->op, g->ridx, g->nroute, g->sst, g->want_gen, spec_node, rc,
					      g->served);
			if (!rc)
				rc = wrc;
		}
	}
	return rc;
}

/* A get's fresh routes are remembered (client.route_cache_ttl). */
static void get_remember_routes(struct get_call *g)
{
	for (uint32_t j = 0; j < g->nmiss; j++) {
		uint32_t i = g->miss[j];
		if (g->kind == WIRE_GET && g->op.route_st[i] == 0 && !g->served[i])
			client_rc_put(g->c, g->items[i].key, g->items[i].klen, &g->op.rt[i]);
	}
}

/* Each item of the round takes its route's status, or the served answer;
 * the routed ones (to read from their peer) move to idx[0..go).  *wait:
 * the master is not ready for some key yet.  Returns go. */
static uint32_t get_sort_routed(struct get_call *g, int *wait)
{
	uint32_t go = 0;

	for (uint32_t j = 0; j < g->k; j++) {
		uint32_t i = g->idx[j];
		g->st[i] = g->op.route_st[i];
		if (g->served[i])
			g->st[i] = g->sst[i]; /* the speculative answer stands */
		else if (g->st[i] == 0)
			g->idx[go++] = i;
		else if (client_route_wait(g->st[i]))
			*wait = 1; /* the master is not ready for this key yet */
		/* the peer the key routes to decides: it answers exactly
		 * that gen, or KVN_ESTALE / KVN_ENOTFOUND */
		if (g->want_gen)
			g->op.rt[i].gen = g->want_gen[i];
	}
	return go;
}

/* EXISTS: the master is the authority (an acknowledged put is in its index
 * before the put returns), so a route is the answer. */
static void get_exists_from_routes(struct get_call *g, uint32_t go)
{
	for (uint32_t j = 0; j < go; j++)
		g->items[g->idx[j]].exists = 1;
}

/* Ask the routed items' peers, all in flight together: 0, or KVN_ETIMEDOUT
 * when the deadline passed (what did answer is collected either way). */
static int get_read_round(struct get_call *g, uint32_t go)
{
	struct kvn_client *c = g->c;

	if (go == 0)
		return 0;
	if (g->kind == WIRE_GET && c->test_routed)
		c->test_routed(c->test_routed_arg, g->op.rt, g->op.n);
	client_send_round(c, &g->op, g->idx, go, g->st, 0);
	int rc = client_wait_round(c, &g->op);
	client_collect_round(c, &g->op, g->st);
	/* items a same-host read sent back (not in DRAM there, or a copy
	 * that failed its checksum): read now with a GET, same route */
	uint32_t *redo = kvn_xmalloc((go ? go : 1) * sizeof *redo);
	uint32_t k = rc ? 0 : client_local_redo(&g->op, g->idx, go, g->st, redo);
	if (k) {
		client_send_round(c, &g->op, redo, k, g->st, 0);
		rc = client_wait_round(c, &g->op);
		client_collect_round(c, &g->op, g->st);
	}
	free(redo);
	return rc == KVN_ETIMEDOUT ? KVN_ETIMEDOUT : 0;
}

/* Whether some read must be asked again: KVN_ESTALE, a newer generation
 * committed between route and read (a "latest" get re-routes; a get by
 * ref does not), or a peer that failed.  A remembered route that went bad
 * is forgotten and its item asked for again through the master. */
static int get_judge_reads(struct get_call *g, uint32_t go)
{
	int again = 0;

	for (uint32_t j = 0; j < go; j++) {
		uint32_t i = g->idx[j];
		int s = g->st[i];
		if (g->cached[i] && s != 0) {
			client_rc_drop(g->c, g->items[i].key, g->items[i].klen);
			if (s == KVN_ENOTFOUND || s == KVN_EPEERDOWN || s == KVN_ETIMEDOUT ||
			    (g->want_gen && s == KVN_ESTALE))
				g->st[i] = KVN_EBUSY;
		}
		if ((g->st[i] == KVN_ESTALE && !g->want_gen) || g->st[i] == KVN_ECONN || g->st[i] == KVN_EBUSY)
			again = 1;
	}
	return again;
}

/* Some item's try failed (not a race with a put): such rounds count
 * against client.retries. */
static int get_round_failed(const struct get_call *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->st[i] == KVN_ECONN || g->st[i] == KVN_EBUSY)
			return 1;
	return 0;
}

/* Each item's final status; the buffers we allocated for items that
 * failed are freed.  Returns the call's answer. */
static int get_call_end(struct get_call *g, int rc)
{
	struct kvn_item *items = g->items;

	for (size_t i = 0; i < g->n; i++) {
		int s = g->st[i];
		if (s == KVN_EBUSY || (s == KVN_ESTALE && !g->want_gen))
			s = rc ? rc : KVN_ETIMEDOUT; /* a latest read that kept racing moves */
		if (g->kind == WIRE_EXISTS && s == KVN_ENOTFOUND)
			s = 0; /* "no" is an answer, not an error */
		items[i].status = s;
		if (g->mine && g->mine[i] && s != 0) {
			free(items[i].val);
			items[i].val = NULL;
			items[i].cap = 0;
		} else if (g->mine && g->mine[i] && !items[i].val) {
			items[i].val = kvn_xmalloc(1); /* an empty value is still a value */
			items[i].cap = 0;
		}
	}
	free(g->st); /* the block of every per-item array */
	client_op_end(g->c, &g->op);
	return rc && rc != KVN_ETIMEDOUT ? rc : client_first_error(items, g->n);
}

int client_get_like(struct kvn_client *c, struct kvn_item *items, size_t n, int kind, int alloc,
		    const uint64_t *want_gen, uint64_t ttl_ms)
{
	struct get_call g;
	int rc = 0;

	if (!c || (!items && n))
		return KVN_EINVAL;
	get_call_begin(&g, c, items, n, kind, alloc, want_gen);
	g.op.ttl_ms = ttl_ms;
	for (uint64_t attempt = 0; get_pick_round(&g) > 0; attempt++) {
		int via_again = 0, wait = 0;
		get_use_remembered_routes(&g);
		if ((rc = get_ask_routes(&g, attempt, &via_again)) != 0)
			break;
		get_remember_routes(&g);
		uint32_t go = get_sort_routed(&g, &wait);
		if (kind == WIRE_EXISTS) {
			get_exists_from_routes(&g, go);
			if (!wait)
				break;
			go = 0; /* answered; the others are asked again below */
		}
		if ((rc = get_read_round(&g, go)) != 0)
			break;
		int again = get_judge_reads(&g, go);
		if (wait) {
			/* the master is not ready for some keys (right after its
			 * start): asked again after a pause, within the deadline;
			 * such a round is not a failed one */
			if (client_pause(c, &g.op, &g.bo) != 0)
				break;
			continue;
		}
		if (!again && !via_again)
			break;
		if (get_round_failed(&g) && ++g.failed_rounds > c->conf.client_retries)
			break;
		/* asked again after a pause, within the deadline */
		if (client_pause(c, &g.op, &g.bo) != 0)
			break;
	}
	return get_call_end(&g, rc);
}

int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return client_get_like(c, items, n, WIRE_GET, 1, NULL, 0); /* val == NULL: malloc'd */
}

int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return client_get_like(c, items, n, WIRE_EXISTS, 0, NULL, 0);
}

int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return client_get_like(c, items, n, WIRE_REMOVE, 0, NULL, 0);
}

int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = buf, .cap = cap };
	int rc = client_get_like(c, &it, 1, WIRE_GET, 0, NULL, 0);
	if (vlen)
		*vlen = it.vlen;
	return rc ? rc : it.status;
}

int kvn_get_gen(struct kvn_client *c, const void *key, size_t klen, uint64_t gen, void *buf, size_t cap,
		size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = buf, .cap = cap };
	if (gen == 0)
		return KVN_EINVAL; /* 0 means "latest" on the wire: never for a ref */
	int rc = client_get_like(c, &it, 1, WIRE_GET, 0, &gen, 0);
	if (vlen)
		*vlen = it.vlen;
	return rc ? rc : it.status;
}

int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = client_get_like(c, &it, 1, WIRE_GET, 1, NULL, 0);
	if (rc == 0 && it.status == 0) {
		if (!it.val)
			it.val = malloc(1); /* an empty value is still a value */
		*val = it.val;
		if (vlen)
			*vlen = it.vlen;
		return 0;
	}
	free(it.val);
	return rc ? rc : it.status;
}

int kvn_exists(struct kvn_client *c, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = client_get_like(c, &it, 1, WIRE_EXISTS, 0, NULL, 0);
	if (rc)
		return rc;
	return it.status ? it.status : it.exists;
}

int kvn_remove(struct kvn_client *c, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = client_get_like(c, &it, 1, WIRE_REMOVE, 0, NULL, 0);
	return rc ? rc : it.status;
}

int kvn_exists_prefix(struct kvn_client *c, const struct kvn_item *keys, size_t n, size_t *count)
{
	struct kvn_item *copy;
	int rc;

	if (!c || !count || (!keys && n))
		return KVN_EINVAL;
	copy = kvn_xcalloc(n ? n : 1, sizeof *copy);
	for (size_t i = 0; i < n; i++) {
		copy[i].key = keys[i].key;
		copy[i].klen = keys[i].klen;
	}
	rc = client_get_like(c, copy, n, WIRE_EXISTS, 0, NULL, 0);
	*count = 0;
	if (rc == 0 || rc == KVN_EKEYLEN || rc == KVN_EINVAL)
		while (*count < n && copy[*count].status == 0 && copy[*count].exists)
			(*count)++;
	/* the walk stopped at a key that is no key: that is the caller's
	 * error, not a prefix that ends there; a bad key past the first
	 * missing one is never looked at */
	int stop = *count < n ? copy[*count].status : 0;
	free(copy);
	if (stop == KVN_EKEYLEN || stop == KVN_EINVAL)
		return stop;
	return rc == KVN_EKEYLEN || rc == KVN_EINVAL ? 0 : rc;
}

/* ---- master-only calls ---- */

int kvn_ping(struct kvn_client *c, uint64_t *rtt_us, uint32_t *peers)
{
	struct client_op op;
	char server_id[65];
	uint32_t np = 0;
	int rc;

	if (!c)
		return KVN_EINVAL;
	client_op_begin(c, &op, NULL, 0, WIRE_PING);
	uint64_t t0 = kvn_now_ns();
	rc = client_master_call(c, &op, actor_msg_new(WIRE_PING));
	uint64_t t1 = kvn_now_ns();
	if (rc == 0 && proto_ping_reply_dec(op.reply, &np, server_id, sizeof server_id) != 0)
		rc = KVN_EPROTO;
	if (rc == 0) {
		if (rtt_us)
			*rtt_us = (t1 - t0) / 1000;
		if (peers)
			*peers = np;
	}
	client_op_end(c, &op);
	return rc;
}

/* ---- connect / close ---- */

int client_connect_conf(struct kvn_conf *conf, struct kvn_client **out)
{
	return client_connect_with(conf, NULL, out);
}

int client_connect_with(struct kvn_conf *conf, const struct client_connector *cx, struct kvn_client **out)
{
	struct kvn_client *c;
	int rc = client_open_with(conf, cx, &c);
	if (rc)
		return rc;
	rc = kvn_ping(c, NULL, NULL);
	if (rc) {
		/* debug: the caller gets the same text from kvn_last_detail */
		log_debug("client: not connected: %s", c->detail[0] ? c->detail : kvn_strerror(rc));
		client_set_last_detail(c->detail[0] ? c->detail : kvn_strerror(rc));
		client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int kvn_connect(const struct kvn_options *opt, struct kvn_client **out)
{
	struct kvn_conf conf;
	char err[512];
	const char *path = NULL;
	int rc;

	if (!out)
		return KVN_EINVAL;
	kvn_conf_init(&conf);
	if (opt && opt->config_path)
		path = opt->config_path;
	else if (access("etc/kvnode.conf", R_OK) == 0)
		path = "etc/kvnode.conf";
	if (path && (rc = kvn_conf_load(&conf, path, err, sizeof err)) != 0)
		goto fail;
#define OVERRIDE(field, key)                                                              \
	if (opt && opt->field) {                                                          \
		char a_[600];                                                             \
		snprintf(a_, sizeof a_, "%s=%s", key, opt->field);                         \
		if ((rc = kvn_conf_set(&conf, a_, err, sizeof err)) != 0)                  \
			goto fail;                                                        \
	}
	OVERRIDE(master, "client.master")
	OVERRIDE(secret_file, "auth.client_secret_file")
#undef OVERRIDE
	if (opt && opt->timeout_ms)
		conf.client_timeout = opt->timeout_ms;
	if ((rc = kvn_conf_finalize(&conf, err, sizeof err)) != 0)
		goto fail;
	return client_connect_conf(&conf, out);
fail:
	client_set_last_detail(err);
	kvn_conf_fini(&conf);
	return KVN_ECONFIG;
}

void kvn_close(struct kvn_client *c)
{
	if (!c)
		return;
	/* async puts still reference the caller's buffers: wait for them
	 * (each is bounded by its deadline) and run their callbacks first */
	client_async_close(c);
	/* after the async puts: their callbacks may still submit */
	client_submit_close(c);
	client_free(c);
}
