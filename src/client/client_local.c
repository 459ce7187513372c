/*
 * client_local: the client's side of the same-host path (client.local =
 * auto; docs/architecture.md "Same-host clients").  Owns, per peer, the
 * probe (LOCAL_MAP over the pooled connection: is that peer on this host,
 * and where is its Unix socket), the switch to an authenticated connection
 * on that socket, the mapping of the peer's arena (read-only) and of this
 * connection's staging region (the one-sided transport, net/xfer.h), the
 * LOCAL_GET read (copy out of the arena, then check the lease's stamp, a
 * word the peer changes before it can reuse the pages, and with
 * client.local_verify = checksum the value's checksum too: a lease that
 * expired mid-copy can never hand back reused pages), the batched LOCAL_RELEASE, and the fallback to TCP: one log line
 * per failure (rate-limited), tried again later with a growing pause.
 * An embedded client (a connector with local_map) takes the same path over
 * its in-process link, with no socket: local_probe_inproc.
 */
#include "config.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client_int.h"
#include "net/net.h"
#include "net/xfer.h"

/* Pauses between attempts at a peer whose same-host path failed. */
#define LOCAL_RETRY_MIN_MS 1000
#define LOCAL_RETRY_MAX_MS 60000
/* Longest one probe step may wait (bounded by the call's deadline too). */
#define LOCAL_STEP_MS 2000

enum local_state { LOCAL_UNTRIED = 0, LOCAL_READY, LOCAL_REMOTE, LOCAL_FAILED };

struct client_local {
	int state;
	uint64_t retry_at;
	struct kvn_backoff bo;
	struct net_region arena, staging;
	struct net_region stamps; /* read-only: the peer's words of our leases */
	uint64_t stage_off; /* the next free byte of staging in this round */
	/* embedded mode: what keeps the in-process regions alive */
	void *pin;
	void (*unpin)(void *pin);
	int verify;         /* client.local_verify */
};

int client_local_ready(const struct client_peer *p)
{
	return p->local && p->local->state == LOCAL_READY;
}

int client_local_preferred(struct kvn_client *c)
{
	struct client_peer *p, *tmp;

	if (c->conf.client_local != KVN_LOCAL_AUTO || (c->cx.connect && !c->cx.local_map))
		return 0;
	if (c->nseen == 0)
		return 1;
	HASH_ITER(hh, c->peers, p, tmp)
		if (!p->local || p->local->state == LOCAL_READY || p->local->state == LOCAL_UNTRIED)
			return 1;
	return 0;
}

/* Unmap; the peer frees the staging region when the connection closes. */
static void local_unmap(struct client_local *l)
{
	net_region_unmap(&l->arena);
	net_region_unmap(&l->staging);
	net_region_unmap(&l->stamps);
	if (l->pin)
		l->unpin(l->pin);
	l->pin = NULL;
}

void client_local_reset(struct client_peer *p)
{
	if (!p->local)
		return;
	local_unmap(p->local);
	if (p->local->state == LOCAL_READY)
		p->local->state = LOCAL_UNTRIED; /* the next connection tries again */
}

void client_local_free(struct client_peer *p)
{
	if (!p->local)
		return;
	local_unmap(p->local);
	free(p->local);
	p->local = NULL;
}

/* This host's identity: the kernel's boot id (a test may pretend another). */
static int my_host(struct kvn_client *c, char *out, size_t cap)
{
	if (c->test_host[0]) {
		snprintf(out, cap, "%s", c->test_host);
		return 0;
	}
	return kvn_boot_id(out, cap);
}

/* ---- one LOCAL_MAP call ---- */

struct map_wait {
	int done, orphan, err;
	struct actor_msg *reply;
};

static int on_map_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct map_wait *mw = arg;
	(void)self;
	if (mw->orphan) {
		free(mw);
		return 0;
	}
	mw->reply = reply;
	mw->err = err;
	mw->done = 1;
	return reply ? ACTOR_KEEP : 0;
}

static int map_call(struct kvn_client *c, actor_id proxy, uint64_t deadline, struct proto_local_map *lm)
{
	struct map_wait *mw = kvn_xcalloc(1, sizeof *mw);
	uint64_t now = kvn_now_ms();
	int rc;

	memset(lm, 0, sizeof *lm);
	if (now >= deadline) {
		free(mw);
		return KVN_ETIMEDOUT;
	}
	rc = actor_call(c->self, proxy, actor_msg_new(WIRE_LOCAL_MAP), deadline - now, on_map_reply, mw);
	if (rc) {
		free(mw);
		return rc;
	}
	/* the call's own timer answers at its deadline: this wait ends */
	client_run(c, &mw->done, deadline + 1000);
	if (!mw->done) {
		mw->orphan = 1; /* its callback frees it */
		return KVN_ETIMEDOUT;
	}
	rc = mw->err ? mw->err : mw->reply->status;
	if (rc == 0)
		rc = proto_local_map_dec(mw->reply, lm);
	actor_msg_free(mw->reply);
	free(mw);
	return rc;
}

/* ---- the probe ---- */

static void local_failed(struct kvn_client *c, struct client_peer *p, const char *why, int rc)
{
	struct client_local *l = p->local;
	uint64_t supp = 0, pause = kvn_backoff_next(&l->bo);
	local_unmap(l);
	l->state = LOCAL_FAILED;
	l->retry_at = kvn_now_ms() + pause;
	c->stats.local_fallbacks++;
	if (kvn_ratelimit_ok(&c->local_rl, &supp))
		log_warn("peer %s is on this host but its same-host path failed (%s: %s); using %s, trying "
			 "again in %llu ms%s",
			 p->node_id, why, kvn_strerror(rc), c->cx.connect ? "payload messages" : "TCP",
			 (unsigned long long)pause, supp ? " (similar lines suppressed)" : "");
}

/* Connect to the peer's Unix socket, ask for a map token there (the
 * authenticated answer names the node we meant), fetch the descriptors
 * with it and map them.  0 with *proxy the new connection (the caller's),
 * or an error with *why set. */
static int local_attach(struct kvn_client *c, struct client_peer *p, const struct proto_local_map *probe,
			uint64_t deadline, actor_id *proxy, const char **why)
{
	struct client_local *l = p->local;
	struct proto_local_map lm;
	char addr[sizeof NET_UNIX_PREFIX + PROTO_SOCK_MAX];
	int fds[NET_MAP_MAX_FDS], nfds = 0, rc;

	snprintf(addr, sizeof addr, "%s%s", NET_UNIX_PREFIX, probe->sock);
	*why = "connect to its socket";
	if ((rc = client_connect_addr(c, addr, proxy)) != 0)
		return rc;
	*why = "attach on its socket";
	if ((rc = map_call(c, *proxy, deadline, &lm)) != 0)
		goto fail;
	*why = "node id on its socket";
	if (strcmp(lm.node_id, p->node_id) != 0 || !lm.local) {
		rc = KVN_EAUTH;
		goto fail;
	}
	*why = "map its memory";
	uint64_t now = kvn_now_ms();
	if ((rc = net_map_fetch(probe->sock, lm.token, deadline > now ? deadline - now : 1, fds, &nfds)) != 0)
		goto fail;
	struct stat sst;
	rc = nfds == 3 ? 0 : KVN_EPROTO;
	if (rc == 0)
		rc = net_region_map(&l->arena, fds[0], lm.arena_len, NET_REGION_ARENA, 0);
	if (rc == 0)
		rc = net_region_map(&l->staging, fds[1], lm.staging_len, NET_REGION_STAGING, 1);
	/* the stamp region's size is the file's: a word per lease slot */
	if (rc == 0)
		rc = fstat(fds[2], &sst) == 0 && sst.st_size >= NET_STAMP_SIZE ? 0 : KVN_EPROTO;
	if (rc == 0)
		rc = net_region_map(&l->stamps, fds[2], (uint64_t)sst.st_size, NET_REGION_STAMPS, 0);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rc == 0)
		return 0;
fail:
	local_unmap(l);
	net_abort(c->loop, *proxy, KVN_ECLOSED);
	*proxy = 0;
	return rc;
}

/* Embedded mode (a connector with local_map): the peer is in this
 * process and its link stays the control channel.  LOCAL_MAP over the link
 * names the node and gives a token, which the connector redeems for the
 * arena and this link's staging region (their addresses: no socket, no
 * descriptor).  A peer that offers no local path answers without one:
 * payload messages, for good. */

/* The peer's regions are mapped and checked: its items take the path. */
static void local_up(struct kvn_client *c, struct client_peer *p, const char *where)
{
	struct client_local *l = p->local;
	l->state = LOCAL_READY;
	l->stage_off = 0;
	l->verify = c->conf.client_local_verify;
	kvn_backoff_reset(&l->bo);
	c->stats.local_peers++;
	log_debug("peer %s: same-host path up%s (arena %llu bytes, staging %llu bytes)", p->node_id, where,
		  (unsigned long long)l->arena.len, (unsigned long long)l->staging.len);
}

static void local_probe_inproc(struct kvn_client *c, struct client_peer *p, uint64_t deadline)
{
	struct client_local *l = p->local;
	struct proto_local_map lm;
	int rc = map_call(c, p->proxy, deadline, &lm);

	if (rc == 0 && !lm.local) {
		l->state = LOCAL_REMOTE;
		return;
	}
	if (rc == 0 && strcmp(lm.node_id, p->node_id) != 0)
		rc = KVN_EAUTH;
	if (rc) {
		local_failed(c, p, "ask over the link", rc);
		return;
	}
	rc = c->cx.local_map(c->cx.arg, p->proxy, lm.token, &l->arena, &l->staging, &l->pin);
	if (rc == 0) {
		l->unpin = c->cx.local_unmap;
		/* the regions are the ones the authenticated answer described */
		if (l->arena.len != lm.arena_len || l->staging.len != lm.staging_len || l->arena.writable ||
		    !l->staging.writable)
			rc = KVN_EPROTO;
	}
	if (rc) {
		local_failed(c, p, "map its memory", rc);
		return;
	}
	/* no stamp region in this process: gets check the checksum whatever
	 * client.local_verify says (get_one); puts leave the sum to the peer
	 * as the setting asks */
	local_up(c, p, " in this process");
}

void client_local_probe(struct kvn_client *c, struct client_op *op, struct client_peer *p)
{
	struct proto_local_map lm;
	char host[PROTO_HOST_MAX];
	const char *why = "ask over TCP";
	uint64_t now = kvn_now_ms();
	actor_id lp = 0;
	int rc;

	if (c->conf.client_local != KVN_LOCAL_AUTO || !p->proxy || c->in_callback ||
	    (c->cx.connect && !c->cx.local_map))
		return;
	if (!p->local) {
		p->local = kvn_xcalloc(1, sizeof *p->local);
		kvn_backoff_init(&p->local->bo, LOCAL_RETRY_MIN_MS, LOCAL_RETRY_MAX_MS);
	}
	struct client_local *l = p->local;
	if (l->state == LOCAL_READY || l->state == LOCAL_REMOTE || (l->state == LOCAL_FAILED && now < l->retry_at))
		return;
	uint64_t deadline = now + LOCAL_STEP_MS < op->deadline_ms ? now + LOCAL_STEP_MS : op->deadline_ms;
	if (c->cx.connect) {
		local_probe_inproc(c, p, deadline);
		return;
	}
	rc = map_call(c, p->proxy, deadline, &lm);
	if (rc == KVN_EPROTO && lm.node_id[0] == '\0') {
		/* an older peer: no same-host path there, nothing to retry */
		l->state = LOCAL_REMOTE;
		return;
	}
	if (rc) {
		local_failed(c, p, why, rc);
		return;
	}
	if (!lm.sock[0] || my_host(c, host, sizeof host) != 0 || strcmp(host, lm.host) != 0) {
		l->state = LOCAL_REMOTE; /* another host (or no socket): TCP it is */
		return;
	}
	if (strcmp(lm.node_id, p->node_id) != 0) {
		local_failed(c, p, "node id over TCP", KVN_EAUTH);
		return;
	}
	rc = local_attach(c, p, &lm, deadline, &lp, &why);
	if (rc) {
		local_failed(c, p, why, rc);
		return;
	}
	/* requests go over the Unix socket from now on */
	net_close(p->proxy);
	p->proxy = lp;
	p->opened_ms = kvn_now_ms();
	local_up(c, p, "");
}

/* ---- puts: into the staging region ---- */

void client_local_round_start(struct kvn_client *c)
{
	struct client_peer *p, *tmp;
	HASH_ITER(hh, c->peers, p, tmp)
		if (p->local)
			p->local->stage_off = 0;
}

/* Copy one value into staging at off.  When its sum is not known yet:
 * with client.local_verify = stamp, leave it to the peer (sum 0 in the
 * metadata, PROTO_LOCAL_PUT_PEER_SUM; 1 returned), which hashes the bytes
 * as it stores them anyway; with checksum, compute it from each chunk
 * just written (in cache), as a TCP put would. */
#define STAGE_CHUNK (64u * 1024u)
static int stage_one(struct client_local *l, struct client_op *op, uint32_t i, uint64_t off)
{
	const struct kvn_item *it = &op->items[i];
	if (!op->sum_known || op->sum_known[i]) {
		(void)net_xfer_write(&l->staging, off, it->val, it->vlen);
		return 0;
	}
	if (l->verify == KVN_VERIFY_STAMP && it->vlen > 0) { /* an empty one has no bytes to copy */
		(void)net_xfer_write(&l->staging, off, it->val, it->vlen);
		op->sums[i] = 0;
		op->sum_known[i] = 1; /* until client_local_sums_reset */
		return 1;
	}
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	for (uint64_t done = 0; done < it->vlen;) {
		uint64_t k = it->vlen - done < STAGE_CHUNK ? it->vlen - done : STAGE_CHUNK;
		(void)net_xfer_write(&l->staging, off + done, (const uint8_t *)it->val + done, k);
		kvn_xxh3_update(&st, l->staging.base + off + done, (size_t)k);
		done += k;
	}
	op->sums[i] = it->vlen ? XXH3_64bits_digest(&st) : kvn_xxh3(NULL, 0);
	op->sum_known[i] = 1;
	return 0;
}

void client_local_sums_reset(struct client_op *op, const uint32_t *take, uint32_t k)
{
	/* a value whose real sum is 0 is recomputed too: harmless */
	for (uint32_t j = 0; j < k && op->sum_known; j++)
		if (op->sums[take[j]] == 0)
			op->sum_known[take[j]] = 0;
}

int client_local_stage(struct client_peer *p, struct client_op *op, const uint32_t *take, uint32_t k,
		       uint64_t *off)
{
	struct client_local *l = p->local;
	uint64_t total = 0;

	if (!client_local_ready(p))
		return 0;
	for (uint32_t j = 0; j < k; j++)
		total += op->items[take[j]].vlen;
	if (l->stage_off > l->staging.len || total > l->staging.len - l->stage_off)
		return 0; /* does not fit: this request carries its bytes */
	*off = l->stage_off;
	int peer_sum = 0;
	for (uint32_t j = 0; j < k; j++) {
		peer_sum |= stage_one(l, op, take[j], l->stage_off);
		l->stage_off += op->items[take[j]].vlen;
	}
	if (peer_sum)
		*off |= PROTO_LOCAL_PUT_PEER_SUM;
	return 1;
}

/* ---- gets: out of the arena ---- */

static void mark_redo(struct client_op *op, uint32_t i, int *st)
{
	if (!op->nolocal)
		op->nolocal = kvn_xcalloc(op->n, 1);
	op->nolocal[i] = 1;
	op->nredo++;
	st[i] = KVN_EBUSY;
}

/* One LOCAL_GET item: copy, then check. */
static void get_one(struct kvn_client *c, struct client_op *op, struct client_peer *p, uint32_t i,
		    const struct proto_local_res *res, int *st)
{
	struct kvn_item *it = &op->items[i];
	struct net_extent ext[PROTO_LOCAL_MAX_EXT];

	it->vlen = res->size;
	if (res->size > 0 && op->alloc_get && !it->val) {
		it->val = malloc(res->size);
		if (it->val)
			it->cap = res->size;
	}
	if (res->size > 0 && (!it->val || res->size > it->cap)) {
		st[i] = KVN_ERANGE;
		return;
	}
	for (int e = 0; e < res->next; e++) {
		ext[e].off = res->off[e];
		ext[e].len = res->len[e];
	}
	if (c->test_local_copy)
		c->test_local_copy(c->test_local_copy_arg, it->key, it->klen);
	/* The lease may have run out during the copy and the pages been
	 * reused: the peer changes the lease's stamp before that can happen,
	 * so a copy whose stamp still holds is the value; otherwise read it
	 * again with a GET.  checksum: the bytes must also match the value's
	 * checksum (what a stamp cannot see: bytes changed in the arena). */
	struct client_local *l = p->local;
	int sum = l->verify == KVN_VERIFY_CHECKSUM || !l->stamps.base; /* no stamp region: the sum decides */
	int rc = l->stamps.base ? net_xfer_read_stamped(&l->arena, ext, res->next, it->val, it->cap, &l->stamps,
							res->stamp, res->lease_id)
				: net_xfer_read(&l->arena, ext, res->next, it->val, it->cap);
	if (rc == KVN_EPROTO) {
		st[i] = KVN_EPROTO; /* extents or stamp outside their regions: never read */
		return;
	}
	if (rc != 0 || (sum && kvn_xxh3(it->val, res->size) != res->checksum)) {
		c->stats.local_stale++;
		mark_redo(op, i, st);
		return;
	}
	c->stats.local_gets++;
}

void client_local_collect_get(struct kvn_client *c, struct client_op *op, struct client_req *q, int *st)
{
	struct wire_r r;
	struct wire_w w;
	uint32_t got, nrel = 0;
	struct proto_local_res *res = kvn_xmalloc(sizeof *res);

	wire_r_init(&r, q->reply->meta, q->reply->meta_len);
	got = wire_r_u32(&r);
	if (r.err || got != q->n) {
		for (uint32_t j = 0; j < q->n; j++)
			st[q->idx[j]] = KVN_EPROTO;
		free(res);
		return;
	}
	wire_w_init(&w);
	proto_local_release_begin(&w, 0); /* the count is patched below */
	for (uint32_t j = 0; j < q->n; j++) {
		uint32_t i = q->idx[j];
		if (proto_local_res_next(&r, res) != 0) {
			st[i] = KVN_EPROTO;
			continue;
		}
		st[i] = res->status;
		if (op->res) {
			op->res[i].status = res->status;
			op->res[i].gen = res->gen;
			op->res[i].size = res->size;
			op->res[i].checksum = res->checksum;
		}
		if (res->status != 0)
			continue;
		if (res->how == PROTO_LOCAL_GET) {
			mark_redo(op, i, st);
			continue;
		}
		if (q->peer && client_local_ready(q->peer))
			get_one(c, op, q->peer, i, res, st);
		else
			mark_redo(op, i, st); /* the mapping went away meanwhile */
		proto_ids_add(&w, res->lease_id);
		nrel++;
	}
	free(res);
	/* every lease of this reply in one one-way frame, sent with whatever
	 * goes next on the connection */
	if (nrel > 0 && w.err == 0 && w.len >= 4) {
		uint32_t le = htole32(nrel);
		memcpy(w.buf, &le, 4);
		struct actor_msg *m = actor_msg_new(WIRE_LOCAL_RELEASE);
		if (wire_w_to_msg(&w, m) == 0 && actor_send(q->proxy, m) == 0)
			m = NULL;
		actor_msg_free(m);
	}
	wire_w_fini(&w);
}

/* Items a LOCAL_GET sent back to the GET path: their indices into idx
 * (at most n), nolocal set so the next round reads them with a GET. */
uint32_t client_local_redo(struct client_op *op, const uint32_t *idx, uint32_t n, const int *st, uint32_t *out)
{
	uint32_t k = 0;
	if (!op->nredo)
		return 0;
	op->nredo = 0;
	for (uint32_t j = 0; j < n; j++)
		if (op->nolocal && op->nolocal[idx[j]] && st[idx[j]] == KVN_EBUSY)
			out[k++] = idx[j];
	return k;
}
