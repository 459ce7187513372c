/*
 * peer_local: the peer's side of the same-host path (docs/architecture.md,
 * "Same-host clients"; docs/protocol.md, "Same-host path").  Owns the
 * connections that arrived on the Unix socket (peer.local_socket), each
 * one's staging region (a sealed memfd the client writes its puts into),
 * the read leases each took, the single-use map tokens, the map side
 * channel that hands out the arena read-only and the staging region, and
 * the handlers of LOCAL_MAP, LOCAL_GET, LOCAL_RELEASE and LOCAL_PUT.
 *
 * Each connection also has a stamp region (net/xfer.h, "lease stamps"):
 * a word per lease slot, written only here, mapped read-only by the
 * client.  A lease's word holds its id from the grant until the lease
 * ends, and is cleared before the keytab may free its pages (every local
 * lease is held, keytab_lease_hold, so the keytab's own expiry only tells
 * us: peer_local_expired); the client's check of the word after its copy
 * replaces a checksum pass over the value.
 *
 * What a local client can touch: its own staging region (the peer copies
 * out of it, then checks the checksum on the arena pages, so bytes changed
 * after the copy are never stored) and, read-only, the arena.  It cannot
 * write the arena, grow or shrink either file, or release a lease it did
 * not take.  Its leases end at its release, at its disconnection, or after
 * peer.read_lease_ttl; its staging region goes with its connection.
 * Embedded mode (the end of this file): the links of in-process clients
 * are the local connections, with no socket and no descriptor.
 */
#include "config.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <endian.h>
#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "peer/peer_int.h"
#include "base/base.h"
#include "net/xfer.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) ((hashv) = (unsigned)kvn_hash64((keyptr), (keylen)))
#define uthash_fatal(msg) kvn_fatal("peer_local: %s", (msg))
#include <uthash.h>

/* A map token is good this long after LOCAL_MAP answered it. */
#define TOKEN_TTL_MS 5000
/* Leases one local connection may hold at once; items beyond are answered
 * "read it with a GET" (the TCP path bounds itself by its buffers). */
#define LCONN_LEASE_MAX 65536

struct lconn_lease {
	uint64_t id, deadline;
	uint32_t slot; /* its word in the stamp region */
	UT_hash_handle hh;
};

struct lconn {
	actor_id conn;
	UT_hash_handle hh;
	int fd;            /* staging memfd, -1 until LOCAL_MAP */
	struct net_region staging;
	uint8_t token[PROTO_TOKEN_LEN];
	uint64_t token_until; /* 0: no token outstanding */
	struct lconn_lease *leases;
	uint32_t nleases;
	int inproc;                  /* an embedded client's link (peer_local_open_inproc) */
	struct peer_local_mem *mem;  /* its staging memory, NULL until LOCAL_MAP */
	/* the stamp region: ours writable, stamp_ro (the client's) read-only */
	int stamp_fd, stamp_ro;
	struct net_region stamps;
	uint32_t *free_slot, nfree; /* a stack of the slots no lease holds */
};

struct peer_local {
	char path[PROTO_SOCK_MAX];
	char host[PROTO_HOST_MAX];
	uint64_t staging_len;
	int ro_fd; /* the arena, opened read-only */
	struct net_map_srv *srv;
	struct lconn *conns;
	int inproc; /* embedded mode: no socket, links are the local connections */
};

/* Embedded mode: a link's staging region, memory of this process shared
 * by its lconn and the client that writes it; the last of the two to let
 * go unmaps it (a client may outlive its node). */
struct peer_local_mem {
	uint32_t refs; /* atomic */
	uint8_t *base;
	uint64_t len;
};
static void local_mem_put(struct peer_local_mem *mem);
static int local_mem_new(struct peer *p, struct lconn *lc);

static struct lconn *lconn_of(struct peer *p, actor_id conn)
{
	struct lconn *lc = NULL;
	if (p->local)
		HASH_FIND(hh, p->local->conns, &conn, sizeof conn, lc);
	return lc;
}

/* End one lease of lc: its stamp changes first, so a copy still running
 * in the client can no longer pass its check, then the keytab may free
 * the pages. */
static void lease_end(struct peer *p, struct lconn *lc, struct lconn_lease *l)
{
	if (lc->free_slot) {
		(void)net_stamp_set(&lc->stamps, l->slot, NET_STAMP_NONE);
		lc->free_slot[lc->nfree++] = l->slot;
	}
	(void)keytab_release(p->st->kt, l->id);
	HASH_DEL(lc->leases, l);
	lc->nleases--;
	free(l);
}

static void lconn_free(struct peer *p, struct lconn *lc)
{
	struct lconn_lease *l, *tmp;
	HASH_DEL(p->local->conns, lc);
	/* a closed (or killed) client reads nothing more: its leases end now */
	HASH_ITER(hh, lc->leases, l, tmp)
		lease_end(p, lc, l);
	net_region_unmap(&lc->staging);
	net_region_unmap(&lc->stamps);
	if (lc->fd >= 0)
		close(lc->fd);
	local_mem_put(lc->mem);
	if (lc->stamp_fd >= 0)
		close(lc->stamp_fd);
	if (lc->stamp_ro >= 0)
		close(lc->stamp_ro);
	free(lc->free_slot);
	free(lc);
}

int peer_local_expired(struct peer *p, uint64_t lease_id, void *owner)
{
	struct lconn *lc, *tmp;
	if (!p->local || owner != (void *)p->local)
		return 0;
	HASH_ITER(hh, p->local->conns, lc, tmp) {
		struct lconn_lease *l = NULL;
		HASH_FIND(hh, lc->leases, &lease_id, sizeof lease_id, l);
		if (l) {
			lease_end(p, lc, l);
			return 1;
		}
	}
	(void)keytab_release(p->st->kt, lease_id); /* its connection is gone */
	return 1;
}

/* NET_UP / NET_DOWN of a client connection (the master's go elsewhere). */
void peer_local_net(struct peer *p, struct actor_msg *m)
{
	if (!p->local)
		return;
	struct lconn *lc = lconn_of(p, m->src);
	if (m->type == NET_DOWN) {
		if (lc)
			lconn_free(p, lc);
		return;
	}
	char node[65], remote[128];
	struct wire_r r;
	wire_r_init(&r, m->meta, m->meta_len);
	uint8_t role = wire_r_u8(&r);
	wire_r_str(&r, node, sizeof node);
	wire_r_str(&r, remote, sizeof remote);
	/* an embedded client's link says so (embed_link.c); only in-process
	 * actors send NET_UP, and a socket's remote is never this */
	int inproc = p->local->inproc && strcmp(remote, PEER_INPROC_REMOTE) == 0;
	if (r.err || role != AUTH_ROLE_CLIENT || (strcmp(remote, NET_UNIX_REMOTE) != 0 && !inproc) || lc)
		return;
	lc = kvn_xcalloc(1, sizeof *lc);
	lc->conn = m->src;
	lc->fd = -1;
	lc->inproc = inproc;
	lc->stamp_fd = lc->stamp_ro = -1;
	HASH_ADD(hh, p->local->conns, conn, sizeof lc->conn, lc);
}

/* The map side channel: a token LOCAL_MAP handed out, once, in time. */
static int map_token(void *arg, const uint8_t token[NET_MAP_TOKEN], int *fds, int *nfds)
{
	struct peer *p = arg;
	struct lconn *lc, *tmp;
	uint64_t now = kvn_now_ms();
	int rc = KVN_EAUTH;

	pthread_mutex_lock(&p->st->mu);
	HASH_ITER(hh, p->local->conns, lc, tmp) {
		if (lc->inproc || lc->token_until == 0 || CRYPTO_memcmp(lc->token, token, NET_MAP_TOKEN) != 0)
			continue;
		if (now < lc->token_until) {
			fds[0] = p->local->ro_fd;
			fds[1] = lc->fd;
			fds[2] = lc->stamp_ro;
			*nfds = 3;
			p->stats.local_maps++;
			rc = 0;
		}
		lc->token_until = 0; /* single use, even when late */
		break;
	}
	pthread_mutex_unlock(&p->st->mu);
	return rc;
}

int peer_local_open(struct actor *self, const char *path, uint64_t staging_len, char *err, size_t errlen)
{
	struct peer *p = actor_state(self);
	struct peer_local *pl = kvn_xcalloc(1, sizeof *pl);
	int rc;

	snprintf(pl->path, sizeof pl->path, "%s", path);
	pl->staging_len = staging_len;
	pl->ro_fd = -1;
	if (kvn_boot_id(pl->host, sizeof pl->host) != 0 || alloc_fd(p->st->arena) < 0 ||
	    net_fd_reopen_ro(alloc_fd(p->st->arena), &pl->ro_fd) != 0) {
		snprintf(err, errlen, "no same-host path: no host boot id or no arena memfd");
		free(pl);
		return KVN_EIO;
	}
	rc = net_map_listen(actor_base(self), path, TOKEN_TTL_MS, map_token, p, &pl->srv, err, errlen);
	if (rc) {
		close(pl->ro_fd);
		free(pl);
		return rc;
	}
	p->local = pl;
	return 0;
}

void peer_local_fini(struct peer *p)
{
	struct peer_local *pl = p->local;
	struct lconn *lc, *tmp;
	if (!pl)
		return;
	HASH_ITER(hh, pl->conns, lc, tmp)
		lconn_free(p, lc);
	net_map_srv_free(pl->srv);
	if (pl->ro_fd >= 0)
		close(pl->ro_fd);
	free(pl);
	p->local = NULL;
}

/* ---- LOCAL_MAP ---- */

/* The connection's staging region and stamp region, sized once, never
 * mapped by anyone but this client and us.  0, or KVN_ENOMEM with
 * nothing kept. */
static int lconn_regions(struct peer *p, struct lconn *lc)
{
	uint64_t slen = (uint64_t)LCONN_LEASE_MAX * NET_STAMP_SIZE;
	if (net_memfd_new("kvnode-staging", p->local->staging_len, &lc->fd) == 0 &&
	    net_region_map(&lc->staging, lc->fd, p->local->staging_len, NET_REGION_STAGING, 0) == 0 &&
	    net_memfd_new("kvnode-stamps", slen, &lc->stamp_fd) == 0 &&
	    net_region_map(&lc->stamps, lc->stamp_fd, slen, NET_REGION_STAMPS, 1) == 0 &&
	    net_fd_reopen_ro(lc->stamp_fd, &lc->stamp_ro) == 0) {
		lc->free_slot = kvn_xmalloc(LCONN_LEASE_MAX * sizeof *lc->free_slot);
		for (uint32_t i = 0; i < LCONN_LEASE_MAX; i++)
			lc->free_slot[i] = LCONN_LEASE_MAX - 1 - i; /* slot 0 first: fewer pages touched */
		lc->nfree = LCONN_LEASE_MAX;
		return 0;
	}
	net_region_unmap(&lc->staging);
	net_region_unmap(&lc->stamps);
	int *fds[] = { &lc->fd, &lc->stamp_fd, &lc->stamp_ro };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	return KVN_ENOMEM;
}

void peer_on_local_map(struct peer *p, struct actor_msg *m)
{
	struct proto_local_map lm;
	struct wire_w w;
	struct lconn *lc = lconn_of(p, m->src);

	memset(&lm, 0, sizeof lm);
	snprintf(lm.node_id, sizeof lm.node_id, "%s", p->node_id);
	if (p->local) {
		snprintf(lm.host, sizeof lm.host, "%s", p->local->host);
		snprintf(lm.sock, sizeof lm.sock, "%s", p->local->path);
	}
	if (lc) {
		if (lc->inproc && !lc->mem && local_mem_new(p, lc) != 0) {
			actor_reply_status(p->self, m, KVN_ENOMEM);
			return;
		}
		/* an embedded client's link: in-process staging, no stamps
		 * (its gets check the checksum); a socket's: memfds */
		if (!lc->inproc && lc->fd < 0 && lconn_regions(p, lc) != 0) {
			actor_reply_status(p->self, m, KVN_ENOMEM);
			return;
		}
		if (kvn_random(lc->token, sizeof lc->token) != 0) {
			actor_reply_status(p->self, m, KVN_EIO);
			return;
		}
		lc->token_until = kvn_now_ms() + TOKEN_TTL_MS;
		lm.local = 1;
		memcpy(lm.token, lc->token, sizeof lm.token);
		(void)alloc_base(p->st->arena, &lm.arena_len);
		lm.page_size = alloc_page_size(p->st->arena);
		lm.staging_len = p->local->staging_len;
	}
	wire_w_init(&w);
	proto_local_map_enc(&w, &lm);
	proto_reply(p->self, m, &w, NULL, 0);
}

/* ---- LOCAL_GET ---- */

/* End the leases of lc past their deadline now (the lease tick would). */
static void lconn_purge(struct peer *p, struct lconn *lc, uint64_t now)
{
	struct lconn_lease *l, *tmp;
	HASH_ITER(hh, lc->leases, l, tmp)
		if (l->deadline <= now)
			lease_end(p, lc, l);
}

static void local_get_one(struct peer *p, struct lconn *lc, const struct proto_item *it, uint64_t now,
			  struct proto_local_res *res)
{
	struct keytab_view v;
	uint64_t id = 0;
	uint8_t *base = alloc_base(p->st->arena, NULL);

	memset(res, 0, sizeof *res);
	if (lc->nleases >= LCONN_LEASE_MAX)
		lconn_purge(p, lc, now);
	if (lc->nleases >= LCONN_LEASE_MAX) {
		res->how = PROTO_LOCAL_GET;
		return;
	}
	res->status = keytab_lease(p->st->kt, it->key, it->klen, it->gen, now, p->o.read_lease_ttl_ms, &id, &v);
	if (res->status != 0)
		return;
	if (!v.in_dram || v.next > PROTO_LOCAL_MAX_EXT) {
		/* on disk only: the GET path reads (and may promote) it */
		(void)keytab_release(p->st->kt, id);
		res->how = PROTO_LOCAL_GET;
		return;
	}
	uint64_t left = v.size, ps = alloc_page_size(p->st->arena);
	for (int e = 0; e < v.next && left > 0; e++) {
		uint64_t len = (uint64_t)v.ext[e].npages * ps;
		if (len > left)
			len = left;
		res->off[res->next] = (uint64_t)((uint8_t *)alloc_addr(p->st->arena, v.ext[e].page) - base);
		res->len[res->next++] = len;
		left -= len;
	}
	res->gen = v.gen;
	res->size = v.size;
	res->checksum = v.checksum;
	res->lease_id = id;
	/* held: the keytab's expiry asks us (peer_local_expired) rather than
	 * free pages whose stamp still names the lease */
	(void)keytab_lease_hold(p->st->kt, id, p->local);
	struct lconn_lease *l = kvn_xmalloc(sizeof *l);
	l->id = id;
	/* a connection without a stamp region (none was made for it) leaves
	 * its clients the checksum check */
	if (lc->free_slot) {
		l->slot = lc->free_slot[--lc->nfree];
		(void)net_stamp_set(&lc->stamps, l->slot, id);
		res->stamp = l->slot;
	}
	l->deadline = now + p->o.read_lease_ttl_ms;
	HASH_ADD(hh, lc->leases, id, sizeof l->id, l);
	lc->nleases++;
	p->stats.gets++;
	p->stats.local_gets++;
	p->stats.get_bytes += v.size;
}

void peer_on_local_get(struct peer *p, struct actor_msg *m)
{
	struct lconn *lc = lconn_of(p, m->src);
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	uint64_t now = kvn_now_ms();

	if (!lc || (lc->fd < 0 && !lc->mem)) {
		actor_reply_status(p->self, m, KVN_EPERM); /* not on the Unix socket, or never mapped */
		return;
	}
	if (peer_items_check(p, m, &r, &flags, &n) != 0)
		return;
	struct proto_local_res *res = kvn_xmalloc(sizeof *res);
	wire_w_init(&w);
	wire_w_u32(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		proto_items_next(&r, &it);
		local_get_one(p, lc, &it, now, res);
		proto_local_res_add(&w, res);
	}
	free(res);
	proto_reply(p->self, m, &w, NULL, 0);
}

/* ---- LOCAL_RELEASE (one-way) ---- */

void peer_on_local_release(struct peer *p, struct actor_msg *m)
{
	struct lconn *lc = lconn_of(p, m->src);
	struct wire_r r;
	uint32_t n;
	uint64_t id;

	if (!lc || proto_local_release_open(&r, m, &n) != 0)
		return; /* one-way: nobody to tell */
	for (uint32_t i = 0; i < n && proto_ids_next(&r, &id) == 0; i++) {
		struct lconn_lease *l = NULL;
		/* only this connection's own leases: ids are sequential */
		HASH_FIND(hh, lc->leases, &id, sizeof id, l);
		if (!l)
			continue;
		lease_end(p, lc, l);
		p->stats.local_releases++;
	}
}

/* ---- LOCAL_PUT ---- */

/* Copy a staged PUT's values into the pages the PUT sink reserves, each
 * value's XXH3-64 computed from the destination chunk just written (in
 * cache): what a connection does as a payload lands (actor_sink.seg_*),
 * so the PUT handler checks the sums of the bytes as stored.  0 with
 * m->sink_cookie set, 1 when the sink declines (then the bytes go as a
 * buffered payload), or the sink's refusal (m->sink_err). */
#define COPY_CHUNK (64u * 1024u)
static int staged_copy(struct peer *p, struct actor_msg *m, const uint8_t *src, uint64_t total)
{
	struct actor_frame h = { .type = WIRE_PUT, .meta_len = m->meta_len, .payload_len = total, .corr = m->corr };
	struct actor_sink sk;
	XXH3_state_t st;

	memset(&sk, 0, sizeof sk);
	int rc = peer_sink(p->self, m->src, &h, m->meta, &sk);
	if (rc == 1)
		return 1;
	if (rc) {
		m->sink_err = rc;
		return rc;
	}
	int v = 0;
	for (int s = 0; s < sk.nseg || (sk.nseg == 0 && v < sk.niov); s++) {
		int end = sk.nseg ? v + sk.seg_niov[s] : sk.niov;
		XXH3_64bits_reset(&st);
		for (; v < end; v++) {
			uint8_t *dst = sk.iov[v].iov_base;
			size_t left = sk.iov[v].iov_len;
			while (left > 0) {
				size_t k = left < COPY_CHUNK ? left : COPY_CHUNK;
				memcpy(dst, src, k);
				kvn_xxh3_update(&st, dst, k); /* libxxhash's dispatch, as peer_iov_sum */
				dst += k;
				src += k;
				left -= k;
			}
		}
		if (sk.nseg)
			sk.seg_sum[s] = XXH3_64bits_digest(&st);
	}
	if (sk.nseg)
		*sk.seg_done = 1;
	m->sink_cookie = sk.cookie;
	return 0;
}

/* A LOCAL_PUT's metadata (after the 8-byte offset): the staging offset
 * and the values' total, both inside lc's staging region.  0 or
 * KVN_EPROTO. */
static int local_put_extent(const struct lconn *lc, const uint8_t *meta, uint32_t meta_len, uint64_t *off,
			    uint64_t *total, uint32_t *n, int *peer_sum)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;

	if (meta_len < PROTO_LOCAL_PUT_HDR)
		return KVN_EPROTO;
	memcpy(off, meta, 8);
	*off = le64toh(*off);
	*peer_sum = (*off & PROTO_LOCAL_PUT_PEER_SUM) != 0;
	*off &= ~PROTO_LOCAL_PUT_PEER_SUM;
	*total = 0;
	if (proto_items_open(&r, meta + PROTO_LOCAL_PUT_HDR, meta_len - PROTO_LOCAL_PUT_HDR, &flags, n) != 0)
		return KVN_EPROTO;
	for (uint32_t i = 0; i < *n; i++) {
		if (proto_items_next(&r, &it) != 0 || it.size > UINT64_MAX - *total)
			return KVN_EPROTO;
		*total += it.size;
	}
	return *off > lc->staging.len || *total > lc->staging.len - *off ? KVN_EPROTO : 0;
}

int peer_local_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		    struct actor_sink *sink)
{
	struct peer *p = actor_state(self);
	struct lconn *lc = lconn_of(p, from);
	uint64_t off, total;
	uint32_t n;
	int peer_sum;

	if (!lc || lc->fd < 0 || h->payload_len != 0 ||
	    local_put_extent(lc, meta, h->meta_len, &off, &total, &n, &peer_sum) != 0 || total == 0)
		return 1;
	struct actor_frame ph = { .type = WIRE_PUT,
				  .meta_len = h->meta_len - PROTO_LOCAL_PUT_HDR,
				  .payload_len = total,
				  .corr = h->corr };
	int rc = peer_sink(self, from, &ph, meta + PROTO_LOCAL_PUT_HDR, sink);
	if (rc == 0) {
		sink->src = lc->staging.base + off;
		((struct peer_put *)sink->cookie)->peer_sums = peer_sum;
	}
	return rc;
}

/* A PUT whose values lie in the connection's staging region: checked
 * against the region, then handed to the PUT handler as if the bytes had
 * come as its payload.  Usually the connection's loop already copied them
 * into the reserved pages (peer_local_sink, m->sink_cookie); otherwise the
 * copy happens here.  Either way each value's checksum is computed on the
 * pages as stored, after the copy. */
void peer_on_local_put(struct peer *p, struct actor_msg *m)
{
	struct lconn *lc = lconn_of(p, m->src);
	uint32_t n;
	uint64_t off, total = 0;

	if (m->sink_err || m->sink_cookie) {
		/* the copy is done (or refused): only the metadata changes */
		uint64_t o = 0, t = 0;
		uint32_t k = 0;
		int ps;
		if (m->sink_cookie && (!lc || local_put_extent(lc, m->meta, m->meta_len, &o, &t, &k, &ps) != 0)) {
			peer_sink_abort(p->self, m->sink_cookie); /* cannot happen: the sink checked the same */
			m->sink_cookie = NULL;
			m->sink_err = KVN_EPROTO;
		}
		if (m->meta_len >= PROTO_LOCAL_PUT_HDR) {
			memmove(m->meta, m->meta + PROTO_LOCAL_PUT_HDR, m->meta_len - PROTO_LOCAL_PUT_HDR);
			m->meta_len -= PROTO_LOCAL_PUT_HDR;
		}
		if (m->sink_cookie) {
			m->payload_len = t;
			p->stats.local_puts += k;
		}
		peer_on_put(p, m);
		return;
	}
	if (!lc || (lc->fd < 0 && !lc->mem)) {
		actor_reply_status(p->self, m, KVN_EPERM);
		return;
	}
	int peer_sum;
	if (m->payload_len != 0 || local_put_extent(lc, m->meta, m->meta_len, &off, &total, &n, &peer_sum) != 0) {
		actor_reply_status(p->self, m, KVN_EPROTO);
		return;
	}
	memmove(m->meta, m->meta + PROTO_LOCAL_PUT_HDR, m->meta_len - PROTO_LOCAL_PUT_HDR);
	m->meta_len -= PROTO_LOCAL_PUT_HDR;
	m->payload_len = total;
	if (total > 0 && staged_copy(p, m, lc->staging.base + off, total) == 1) {
		/* declined: cannot happen on the peer's own loop (only a foreign
		 * loop's reservation is deferred), and a buffered payload could
		 * not take the peer's sums */
		if (peer_sum) {
			actor_reply_status(p->self, m, KVN_EIO);
			return;
		}
		m->payload = evbuffer_new();
		if (!m->payload || evbuffer_add_reference(m->payload, lc->staging.base + off, (size_t)total, NULL, NULL))
			kvn_fatal("out of memory");
	}
	if (m->sink_cookie)
		((struct peer_put *)m->sink_cookie)->peer_sums = peer_sum;
	p->stats.local_puts += n;
	peer_on_put(p, m);
	/* the handler copied what it took; nothing may point into staging
	 * once the connection (and its region) is gone */
	if (m->payload) {
		evbuffer_free(m->payload);
		m->payload = NULL;
	}
}

/* ---- embedded mode: the same path with no socket ----
 *
 * The links of an in-process client (src/embed/embed_link.c) are its
 * connections: a link tells the peer NET_UP (remote PEER_INPROC_REMOTE,
 * role CLIENT) when it opens and NET_DOWN when it ends, so it is an lconn
 * like a Unix connection, with the same leases, the same LOCAL_* handlers
 * and the same cleanup.  Only the map step differs: the staging region is
 * anonymous memory of this process and LOCAL_MAP's token is redeemed by a
 * call (peer_local_redeem) instead of on the .map socket, for the arena's
 * and the region's addresses; nothing is passed as a descriptor.
 */

int peer_local_open_inproc(struct actor *self, uint64_t staging_len, char *err, size_t errlen)
{
	struct peer *p = actor_state(self);
	struct peer_local *pl = kvn_xcalloc(1, sizeof *pl);

	if (staging_len == 0) {
		snprintf(err, errlen, "no same-host path: no staging size");
		free(pl);
		return KVN_EINVAL;
	}
	pl->staging_len = staging_len;
	pl->ro_fd = -1;
	pl->inproc = 1;
	/* the answer's host field: informational, nothing compares it here */
	(void)kvn_boot_id(pl->host, sizeof pl->host);
	p->local = pl;
	return 0;
}

/* Reserved address space, touched (and so backed) only as far as the
 * client writes: the same cost as a memfd of that size. */
static int local_mem_new(struct peer *p, struct lconn *lc)
{
	uint64_t len = p->local->staging_len;
	void *base = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return KVN_ENOMEM;
	struct peer_local_mem *mem = kvn_xcalloc(1, sizeof *mem);
	mem->refs = 1;
	mem->base = base;
	mem->len = len;
	/* the peer only reads it (staged_copy) */
	if (net_region_wrap(&lc->staging, base, len, NET_REGION_STAGING, 0) != 0) {
		local_mem_put(mem);
		return KVN_ENOMEM;
	}
	lc->mem = mem;
	return 0;
}

static void local_mem_put(struct peer_local_mem *mem)
{
	if (mem && __atomic_sub_fetch(&mem->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		munmap(mem->base, (size_t)mem->len);
		free(mem);
	}
}

/* What a redeemed token keeps alive for its client: the store (so the
 * arena stays mapped) and the staging memory. */
struct peer_local_pin {
	struct peer_store *st;
	struct peer_local_mem *mem;
};

int peer_local_redeem(struct actor *self, uint64_t link, const uint8_t *token,
		      struct net_region *arena, struct net_region *staging, struct peer_local_pin **pin)
{
	struct peer *p = actor_state(self);
	uint64_t now = kvn_now_ms(), alen = 0;
	int rc = KVN_EAUTH;

	*pin = NULL;
	pthread_mutex_lock(&p->st->mu);
	struct lconn *lc = p->local && p->local->inproc ? lconn_of(p, link) : NULL;
	if (lc && lc->inproc && lc->mem && lc->token_until != 0 &&
	    CRYPTO_memcmp(lc->token, token, PROTO_TOKEN_LEN) == 0) {
		uint8_t *base = alloc_base(p->st->arena, &alen);
		if (now < lc->token_until) {
			rc = net_region_wrap(arena, base, alen, NET_REGION_ARENA, 0);
			if (rc == 0)
				rc = net_region_wrap(staging, lc->mem->base, lc->mem->len, NET_REGION_STAGING, 1);
		}
		lc->token_until = 0; /* single use, even when late */
		if (rc == 0) {
			struct peer_local_pin *pp = kvn_xmalloc(sizeof *pp);
			pp->st = p->st;
			__atomic_add_fetch(&p->st->refs, 1, __ATOMIC_RELAXED);
			pp->mem = lc->mem;
			__atomic_add_fetch(&lc->mem->refs, 1, __ATOMIC_RELAXED);
			*pin = pp;
			p->stats.local_maps++;
		}
	}
	pthread_mutex_unlock(&p->st->mu);
	if (rc) {
		net_region_unmap(arena);
		net_region_unmap(staging);
	}
	return rc;
}

void peer_local_unpin(struct peer_local_pin *pin)
{
	if (!pin)
		return;
	local_mem_put(pin->mem);
	peer_store_put(pin->st);
	free(pin);
}

void peer_local_counts(struct actor *self, struct peer_local_counts *out)
{
	struct peer *p = actor_state(self);
	struct lconn *lc, *tmp;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&p->st->mu);
	if (p->local)
		HASH_ITER(hh, p->local->conns, lc, tmp) {
			out->conns++;
			out->mapped += lc->fd >= 0 || lc->mem;
			out->leases += lc->nleases;
		}
	struct keytab_stats ks;
	keytab_get_stats(p->st->kt, &ks);
	out->kt_leases = ks.leases;
	pthread_mutex_unlock(&p->st->mu);
}
