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

/* gens (optional): per item, the generation stored (0 when it failed). */
static int batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags, uint64_t *gens)
{
	struct client_op op;
	int *st;
	int rc = 0;

	if (!c || (!items && n) || (flags & ~CLIENT_PUT_FLAGS))
		return KVN_EINVAL; /* an unknown flag may ask for a promise we cannot keep */
	client_op_begin(c, &op, items, n, WIRE_PUT);
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
	rc = client_put_rounds(c, &op, st, (flags & KVN_PUT_DURABLE) ? PROTO_PUT_DURABLE : 0);
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
	client_op_end(c, &op);
	return rc && rc != KVN_ETIMEDOUT ? rc : client_first_error(items, n);
}

int kvn_batch_put(struct kvn_client *c, struct kvn_item *items, size_t n, unsigned flags)
{
	return batch_put(c, items, n, flags, NULL);
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
	int rc = batch_put(c, &it, 1, flags, &g);
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
 * served (or the one asked for, by ref); generations are never reused and
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
		if (s == 0 || s == KVN_ERANGE)
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

/* want_gen (GET only, optional): per item the exact generation to read;
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
static int get_like(struct kvn_client *c, struct kvn_item *items, size_t n, int kind, int alloc,
		    const uint64_t *want_gen)
{
	struct client_op op;
	int *st;
	uint32_t *idx;
	int rc = 0;

	if (!c || (!items && n))
		return KVN_EINVAL;
	client_op_begin(c, &op, items, n, kind);
	op.alloc_get = alloc;
	op.want_gen = want_gen;
	st = kvn_xcalloc(n ? n : 1, sizeof *st);
	idx = kvn_xcalloc(n ? n : 1, sizeof *idx);
	uint32_t *tmpidx = kvn_xcalloc(n ? n : 1, sizeof *tmpidx);
	uint32_t *ridx = kvn_xcalloc(n ? n : 1, sizeof *ridx);
	uint8_t *cached = kvn_xcalloc(n ? n : 1, 1);
	uint8_t *served = kvn_xcalloc(n ? n : 1, 1); /* answered: speculation confirmed, or via the master */
	/* alloc: the items that came with val == NULL get a malloc'd buffer
	 * (the caller's to free); the others are read into their buffer */
	uint8_t *mine = kind == WIRE_GET && alloc ? kvn_xcalloc(n ? n : 1, 1) : NULL;
	int *sst = NULL;
	op.alloc_mine = mine;
	struct kvn_backoff bo;
	uint64_t failed_rounds = 0;
	client_pause_init(&bo);
	for (size_t i = 0; i < n; i++) {
		items[i].status = 0;
		items[i].exists = 0;
		if (mine && !items[i].val) {
			mine[i] = 1;
			items[i].cap = 0;
		}
		st[i] = !items[i].key ? KVN_EINVAL : client_key_ok(&items[i]) ? KVN_EBUSY : KVN_EKEYLEN;
	}
	for (uint64_t attempt = 0;; attempt++) {
		uint32_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (st[i] == KVN_EBUSY || st[i] == KVN_ECONN || (st[i] == KVN_ESTALE && !want_gen))
				idx[k++] = (uint32_t)i;
		if (k == 0)
			break;
		/* gets may reuse a remembered route; anything else asks the master */
		uint32_t miss = 0;
		for (uint32_t j = 0; j < k; j++) {
			struct route_cache_ent *e = NULL;
			if (kind == WIRE_GET && c->conf.client_route_cache_ttl)
				e = client_rc_find(c, items[idx[j]].key, items[idx[j]].klen);
			else if (kind == WIRE_REMOVE)
				client_rc_drop(c, items[idx[j]].key, items[idx[j]].klen);
			cached[idx[j]] = e != NULL;
			served[idx[j]] = 0; /* asked again: an earlier answer is gone */
			if (e) {
				op.rt[idx[j]] = e->rt;
				op.route_st[idx[j]] = 0;
			} else {
				tmpidx[miss++] = idx[j];
			}
		}
		char spec_node[sizeof c->sole.node_id];
		int spec = 0, via_again = 0;
		uint32_t nroute = miss; /* of tmpidx: items ROUTE_GET asks for */
		if (kind == WIRE_GET && miss && !sst)
			sst = kvn_xcalloc(n, sizeof *sst);
		if (kind == WIRE_GET && miss && client_get_via_wanted(c)) {
			/* through the master: served, routed, or neither (those
			 * ask ROUTE_GET below) */
			client_get_via_master(c, &op, tmpidx, miss, sst, served, &via_again);
			nroute = 0;
			for (uint32_t j = 0; j < miss; j++)
				if (!served[tmpidx[j]] && op.route_st[tmpidx[j]] == KVN_EBUSY)
					ridx[nroute++] = tmpidx[j];
		} else {
			memcpy(ridx, tmpidx, miss * sizeof *ridx);
			if (kind == WIRE_GET && attempt == 0 && miss)
				spec = spec_send(c, &op, tmpidx, miss, sst, want_gen, spec_node);
		}
		if (nroute) {
			rc = client_route_get(c, &op, ridx, nroute);
			if (spec) {
				int wrc = spec_finish(c, &op, ridx, nroute, sst, want_gen, spec_node, rc, served);
				if (!rc)
					rc = wrc;
			}
			if (rc)
				break;
		}
		for (uint32_t j = 0; j < miss; j++)
			if (kind == WIRE_GET && op.route_st[tmpidx[j]] == 0 && !served[tmpidx[j]])
				client_rc_put(c, items[tmpidx[j]].key, items[tmpidx[j]].klen, &op.rt[tmpidx[j]]);
		uint32_t go = 0;
		int wait = 0;
		for (uint32_t j = 0; j < k; j++) {
			st[idx[j]] = op.route_st[idx[j]];
			if (served[idx[j]])
				st[idx[j]] = sst[idx[j]]; /* the speculative answer stands */
			else if (st[idx[j]] == 0)
				idx[go++] = idx[j];
			else if (client_route_wait(st[idx[j]]))
				wait = 1; /* the master is not ready for this key yet */
			/* the peer the key routes to decides: it answers exactly
			 * that gen, or KVN_ESTALE / KVN_ENOTFOUND */
			if (want_gen)
				op.rt[idx[j]].gen = want_gen[idx[j]];
		}
		if (kind == WIRE_EXISTS) {
			/* the master is the authority: an acknowledged put is in its
			 * index before the put returns */
			for (uint32_t j = 0; j < go; j++)
				items[idx[j]].exists = 1;
			if (!wait)
				break;
			go = 0; /* answered; the others are asked again below */
		}
		if (go && kind == WIRE_GET && c->test_routed)
			c->test_routed(c->test_routed_arg, op.rt, op.n);
		if (go) {
			client_send_round(c, &op, idx, go, st, 0);
			if (client_wait_round(c, &op) == KVN_ETIMEDOUT) {
				client_collect_round(c, &op, st);
				rc = KVN_ETIMEDOUT;
				break;
			}
			client_collect_round(c, &op, st);
		}
		/* ESTALE: a newer generation committed between route and read
		 * (re-route: this is a "latest" get, not a get by ref).  A failed
		 * remembered route is forgotten and asked for again. */
		int again = 0, failed = 0;
		for (uint32_t j = 0; j < go; j++) {
			int s = st[idx[j]];
			if (cached[idx[j]] && s != 0) {
				/* a remembered route went bad: forget it, ask the master */
				client_rc_drop(c, items[idx[j]].key, items[idx[j]].klen);
				if (s == KVN_ENOTFOUND || s == KVN_EPEERDOWN || s == KVN_ETIMEDOUT ||
				    (want_gen && s == KVN_ESTALE))
					st[idx[j]] = KVN_EBUSY;
			}
			if ((st[idx[j]] == KVN_ESTALE && !want_gen) || st[idx[j]] == KVN_ECONN ||
			    st[idx[j]] == KVN_EBUSY)
				again = 1;
		}
		if (wait) {
			/* the master is not ready for some keys (right after its
			 * start): asked again after a pause, within the deadline;
			 * such a round is not a failed one */
			if (client_pause(c, &op, &bo) != 0)
				break;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (st[i] == KVN_ECONN || st[i] == KVN_EBUSY)
				failed = 1; /* not a race with a put: a try that failed */
		if (!again && !via_again)
			break;
		if (failed && ++failed_rounds > c->conf.client_retries)
			break;
		/* asked again after a pause, within the deadline */
		if (client_pause(c, &op, &bo) != 0)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		int s = st[i];
		if (s == KVN_EBUSY || (s == KVN_ESTALE && !want_gen))
			s = rc ? rc : KVN_ETIMEDOUT; /* a latest read that kept racing moves */
		if (kind == WIRE_EXISTS && s == KVN_ENOTFOUND)
			s = 0; /* "no" is an answer, not an error */
		items[i].status = s;
		if (mine && mine[i] && s != 0) {
			free(items[i].val);
			items[i].val = NULL;
			items[i].cap = 0;
		} else if (mine && mine[i] && !items[i].val) {
			items[i].val = kvn_xmalloc(1); /* an empty value is still a value */
			items[i].cap = 0;
		}
	}
	free(st);
	free(idx);
	free(tmpidx);
	free(ridx);
	free(cached);
	free(served);
	free(mine);
	free(sst);
	client_op_end(c, &op);
	return rc && rc != KVN_ETIMEDOUT ? rc : client_first_error(items, n);
}

int kvn_batch_get(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_GET, 1, NULL); /* val == NULL: malloc'd */
}

int kvn_batch_exists(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_EXISTS, 0, NULL);
}

int kvn_batch_remove(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return get_like(c, items, n, WIRE_REMOVE, 0, NULL);
}

int kvn_get(struct kvn_client *c, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen, .val = buf, .cap = cap };
	int rc = get_like(c, &it, 1, WIRE_GET, 0, NULL);
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
	int rc = get_like(c, &it, 1, WIRE_GET, 0, &gen);
	if (vlen)
		*vlen = it.vlen;
	return rc ? rc : it.status;
}

int kvn_get_alloc(struct kvn_client *c, const void *key, size_t klen, void **val, size_t *vlen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = get_like(c, &it, 1, WIRE_GET, 1, NULL);
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
	int rc = get_like(c, &it, 1, WIRE_EXISTS, 0, NULL);
	if (rc)
		return rc;
	return it.status ? it.status : it.exists;
}

int kvn_remove(struct kvn_client *c, const void *key, size_t klen)
{
	struct kvn_item it = { .key = key, .klen = klen };
	int rc = get_like(c, &it, 1, WIRE_REMOVE, 0, NULL);
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
	rc = get_like(c, copy, n, WIRE_EXISTS, 0, NULL);
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

int kvn_stat(struct kvn_client *c, struct kvn_node_stat *nodes, size_t cap, size_t *n, uint64_t *objects)
{
	struct client_op op;
	struct wire_r r;
	uint64_t objs = 0, bytes = 0;
	uint32_t count = 0;
	int rc;

	if (!c)
		return KVN_EINVAL;
	client_op_begin(c, &op, NULL, 0, WIRE_STAT);
	rc = client_master_call(c, &op, actor_msg_new(WIRE_STAT));
	if (rc == 0 && proto_stat_open(&r, op.reply, &objs, &bytes, &count) != 0)
		rc = KVN_EPROTO;
	for (uint32_t i = 0; rc == 0 && i < count; i++) {
		struct proto_stat_node sn;
		if (proto_stat_next(&r, &sn) != 0) {
			rc = KVN_EPROTO;
			break;
		}
		if (i < cap && nodes) {
			struct kvn_node_stat *o = &nodes[i];
			memset(o, 0, sizeof *o);
			snprintf(o->node_id, sizeof o->node_id, "%s", sn.node_id);
			snprintf(o->addr, sizeof o->addr, "%s", sn.addr);
			o->alive = sn.alive;
			o->dram_total = sn.dram_total;
			o->dram_used = sn.dram_used;
			o->disk_total = sn.disk_total;
			o->disk_used = sn.disk_used;
			o->objects = sn.objects;
		}
	}
	if (rc == 0) {
		if (n)
			*n = count;
		if (objects)
			*objects = objs;
	}
	client_op_end(c, &op);
	return rc;
}

/* ---- connect / close ---- */

int kvn_connect_conf(struct kvn_conf *conf, struct kvn_client **out)
{
	struct kvn_client *c;
	int rc = client_open(conf, &c);
	if (rc)
		return rc;
	rc = kvn_ping(c, NULL, NULL);
	if (rc) {
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
	return kvn_connect_conf(&conf, out);
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
	client_free(c);
}
