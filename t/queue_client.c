/* t/queue_client: the client's end of the consumer queue against a fake
 * node in this process (a "master" and a "peer" actor on loopback TCP with
 * authentication, so their replies can lie and they count what arrives).
 * Checked: every put path (kvn_put*, batches, async, commit of a slot,
 * through the master and routed) sends KVN_PUT_QUEUE as PROTO_PUT_QUEUE |
 * PROTO_PUT_DURABLE and KVN_PUT_RETAIN as PROTO_PUT_RETAIN, and refuses
 * RETAIN alone and unknown bits with nothing sent; kvn_lease, kvn_release
 * and kvn_renew refuse arguments out of range with nothing sent, encode
 * what they are given (the holder "host:pid"), decode the replies and
 * refuse malformed ones (KVN_EPROTO), are never sent twice (a cut
 * connection, no reply) except after a whole-call KVN_EBUSY, and go on a
 * fresh connection when the old one died while idle; kvn_get_gen answers
 * KVN_EPEERDOWN, asked once, when the master routes the key so (routed,
 * speculative, through the master, from a remembered route). */
#include "config.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "actors/actor.h"
#include "auth/auth.h"
#include "base/base.h"
#include "client_env.h"
#include "kvnode.h"
#include "net/net.h"
#include "net/proto.h"
#include "tap.h"

static char maddr[64], paddr[64];
static const uint8_t binkey[3] = { 0x00, 0xff, 'k' };

enum lease_mode {
	L_OK,        /* min(max, avail) refs */
	L_OVER,      /* one ref more than max */
	L_TRAILING,  /* a byte after the refs */
	L_NODE_SPACE, /* a node id with a space */
	L_KEY_LONG,  /* a key of KVN_MAX_KEY + 1 bytes */
	L_ID_ZERO,   /* lease id 0 */
	L_EDB,       /* the whole call: KVN_EDB */
	L_DROP,      /* no reply at all */
	L_CUT,       /* the connection is closed instead of a reply */
	L_BUSY_ONCE, /* KVN_EBUSY the first time, then L_OK */
	L_UNKNOWN,   /* KVN_EPROTO, as a master without the queue answers */
};

/* What the fake saw (written on its thread, read between calls). */
static struct {
	volatile int lease_mode, ids_mode, ping_cut, dead;
	volatile uint32_t avail;
	volatile int nlease, nrelease, nrenew, nput, nping, nroute_get, nget_master, nget_peer;
	struct proto_lease_req lreq;
	int lease_dec;
	uint8_t put_flags, rel_flags;
	uint64_t renew_ttl;
	uint32_t nids;
	uint64_t ids[8];
} F;

/* ---- the fake ---- */

enum role { R_MASTER, R_PEER };
static enum role role_master = R_MASTER, role_peer = R_PEER;

static int is_dead_key(const uint8_t *k, uint16_t klen)
{
	return F.dead && klen == 6 && memcmp(k, "q/dead", 6) == 0;
}

static void on_route(struct actor *self, struct actor_msg *m, int put)
{
	struct wire_r r;
	struct wire_w w;
	uint32_t n, nex;
	char ex[4][65];
	const uint8_t *k;
	uint16_t kl;
	uint64_t size;

	if ((put ? proto_route_put_open(&r, m, ex, 4, &nex, &n) : proto_keys_open(&r, m, &n)) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	if (!put)
		F.nroute_get++;
	wire_w_init(&w);
	proto_routes_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (put)
			proto_route_put_next(&r, &k, &kl, &size);
		else
			proto_keys_next(&r, &k, &kl);
		if (!put && is_dead_key(k, kl))
			proto_routes_add(&w, KVN_EPEERDOWN, "fake", NULL, 7, 0, 0);
		else
			proto_routes_add(&w, 0, "fake", paddr, 7, 0, 10);
	}
	for (uint32_t i = 0; put && i < n; i++) {
		struct proto_grant g = { .expiry_ms = kvn_wall_ms() + 1000, .size = 10 };
		proto_route_grants_add(&w, &g);
	}
	proto_reply(self, m, &w, NULL, 0);
}

/* PUT and COMMIT_SLOT: the flags, every item stored as generation 7. */
static void on_put(struct actor *self, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint32_t n;

	if (proto_items_open(&r, m->meta, m->meta_len, &F.put_flags, &n) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	F.nput++;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		struct proto_result res = { .status = 0, .gen = 7 };
		proto_results_add(&w, &res);
	}
	if (m->payload)
		evbuffer_drain(m->payload, evbuffer_get_length(m->payload));
	proto_reply(self, m, &w, NULL, 0);
}

/* GET: the master answers a dead key with its route (WIRE_F_ROUTES,
 * KVN_EPEERDOWN) as master_fwd.c does; the peer, which lost it, with
 * KVN_ENOTFOUND; anything else is served ("0123456789", gen 7). */
static void on_get(struct actor *self, struct actor_msg *m, enum role role)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	if (proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0 || n != 1 || proto_items_next(&r, &it) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	if (role == R_MASTER)
		F.nget_master++;
	else
		F.nget_peer++;
	wire_w_init(&w);
	if (role == R_MASTER && is_dead_key(it.key, it.klen)) {
		proto_routes_begin(&w, 1);
		proto_routes_add(&w, KVN_EPEERDOWN, "fake", NULL, 7, 0, 0);
		struct actor_msg *rm = actor_msg_new(m->type);
		wire_w_to_msg(&w, rm);
		rm->flags = WIRE_F_ROUTES;
		actor_reply(self, m, rm, 0);
		return;
	}
	struct evbuffer *pl = evbuffer_new();
	struct proto_result res = { .status = 0, .gen = 7, .size = 10 };
	if (is_dead_key(it.key, it.klen) || (it.gen && it.gen != 7))
		res = (struct proto_result){ .status = is_dead_key(it.key, it.klen) ? KVN_ENOTFOUND : KVN_ESTALE };
	else {
		res.checksum = XXH3_64bits("0123456789", 10);
		evbuffer_add(pl, "0123456789", 10);
	}
	proto_results_begin(&w, 1);
	proto_results_add(&w, &res);
	proto_reply(self, m, &w, pl, 0);
}

static void lease_ref(struct wire_w *w, uint32_t i, uint64_t id)
{
	char key[32];
	struct proto_lease_ref ref = { .lease_id = id, .gen = 10 + i, .size = 1000 + i, .deadline_ms = 5000 + i };

	snprintf(ref.node_id, sizeof ref.node_id, "%s", F.lease_mode == L_NODE_SPACE ? "fa ke" : "fake");
	if (i == 0) {
		ref.key = binkey;
		ref.klen = sizeof binkey;
	} else {
		snprintf(key, sizeof key, "q/k%u", i);
		ref.key = (const uint8_t *)key;
		ref.klen = (uint16_t)strlen(key);
	}
	proto_lease_reply_add(w, &ref);
}

static void on_lease(struct actor *self, struct actor_msg *m)
{
	struct wire_w w;
	static int busy_sent;

	F.nlease++;
	F.lease_dec = proto_lease_dec(m, &F.lreq);
	if (F.lease_dec) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	switch (F.lease_mode) {
	case L_EDB: actor_reply_status(self, m, KVN_EDB); return;
	case L_UNKNOWN: actor_reply_status(self, m, KVN_EPROTO); return;
	case L_DROP: return;
	case L_CUT: net_close(m->src); return;
	case L_BUSY_ONCE:
		if (!busy_sent) {
			busy_sent = 1;
			actor_reply_status(self, m, KVN_EBUSY);
			return;
		}
		break;
	}
	uint32_t n = F.lreq.max < F.avail ? F.lreq.max : F.avail;
	if (F.lease_mode == L_OVER)
		n = F.lreq.max + 1;
	wire_w_init(&w);
	proto_lease_reply_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (F.lease_mode == L_KEY_LONG && i == n - 1) {
			static uint8_t big[KVN_MAX_KEY + 1];
			memset(big, 'x', sizeof big);
			wire_w_u64(&w, 100 + i);
			wire_w_u16(&w, sizeof big);
			wire_w_raw(&w, big, sizeof big);
			wire_w_u64(&w, 10 + i);
			wire_w_str(&w, "fake");
			wire_w_u64(&w, 1);
			wire_w_u64(&w, 1);
		} else {
			lease_ref(&w, i, F.lease_mode == L_ID_ZERO && i == n - 1 ? 0 : 100 + i);
		}
	}
	if (F.lease_mode == L_TRAILING)
		wire_w_u8(&w, 0);
	proto_reply(self, m, &w, NULL, 0);
}

/* RELEASE and RENEW: id 13 is not a live lease (KVN_ESTATE); a renewed
 * id's deadline is id * 1000.  ids_mode: L_OVER answers one status too
 * many, L_CUT closes the connection, L_BUSY_ONCE says KVN_EBUSY first. */
static void on_ids(struct actor *self, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	uint32_t n;
	int renew = m->type == WIRE_RENEW, rc;
	static int busy_sent;

	if (renew) {
		F.nrenew++;
		rc = proto_renew_open(&r, m, &F.renew_ttl, &n);
	} else {
		F.nrelease++;
		rc = proto_release_open(&r, m, &F.rel_flags, &n);
	}
	if (rc) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	if (F.ids_mode == L_CUT) {
		net_close(m->src);
		return;
	}
	if (F.ids_mode == L_BUSY_ONCE && !busy_sent) {
		busy_sent = 1;
		actor_reply_status(self, m, KVN_EBUSY);
		return;
	}
	F.nids = n;
	wire_w_init(&w);
	proto_lstat_begin(&w, n + (F.ids_mode == L_OVER));
	for (uint32_t i = 0; i < n + (F.ids_mode == L_OVER); i++) {
		uint64_t id = 1;
		if (i < n)
			proto_ids_next(&r, &id);
		if (i < 8)
			F.ids[i] = id;
		if (id == 13)
			proto_lstat_add(&w, KVN_ESTATE, 0);
		else
			proto_lstat_add(&w, 0, renew ? id * 1000 : 0);
	}
	proto_reply(self, m, &w, NULL, 0);
}

static int fake_handle(struct actor *self, struct actor_msg *m)
{
	enum role role = *(enum role *)actor_state(self);

	if (m->flags & WIRE_F_REPLY)
		return 0;
	switch (m->type) {
	case WIRE_PING: {
		struct actor_msg *r = actor_msg_new(WIRE_PING);
		F.nping++;
		proto_ping_reply_enc(r, 1, "fake");
		actor_reply(self, m, r, 0);
		if (F.ping_cut) {
			F.ping_cut = 0;
			net_close(m->src); /* after the reply: the client finds it dead later */
		}
		break;
	}
	case WIRE_ROUTE_GET: on_route(self, m, 0); break;
	case WIRE_ROUTE_PUT: on_route(self, m, 1); break;
	case WIRE_PUT: case WIRE_COMMIT_SLOT: on_put(self, m); break;
	case WIRE_GET: on_get(self, m, role); break;
	case WIRE_LEASE: on_lease(self, m); break;
	case WIRE_RELEASE: case WIRE_RENEW: on_ids(self, m); break;
	default:
		if (m->type < NET_UP)
			actor_reply_status(self, m, KVN_EPROTO);
	}
	return 0;
}

static const struct actor_ops fake_ops = { .name = "fake", .handle = fake_handle };

/* ---- clients ---- */

/* ca: defaults (gets and puts through the master); cb: routed, with
 * speculative gets; cc: routed, no speculation, routes remembered */
static struct kvn_client *ca, *cb, *cc;
static struct auth_keyring kr;
static struct auth_policy pol;
static char dir[] = "/tmp/kvn-queue-client-XXXXXX";

static struct kvn_client *connect_conf(const char *name, const char *extra)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s.conf", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		kvn_fatal("cannot write %s", path);
	/* local = off: the cases count frames to the master, which a client
	 * still finding out whether its peer is on this host would route
	 * differently (ROUTE_GET instead of a GET through the master) */
	fprintf(f, "[auth]\nclient_secret_file = %s/client.secret\n[client]\nmaster = %s\ntimeout = 2s\nlocal = off\n%s",
		dir, maddr, extra);
	fclose(f);
	struct kvn_options o = { .config_path = path };
	struct kvn_client *c = NULL;
	int rc = kvn_connect(&o, &c);
	if (rc)
		kvn_fatal("connect: %s (%s)", kvn_strerror(rc), kvn_last_detail(NULL));
	return c;
}

/* The temp dir holds a secret: it goes when the test ends. */
static void dir_remove(void)
{
	static const char *const files[] = { "a.conf", "b.conf", "c.conf", "client.secret" };
	char path[300];

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void fixture(void)
{
	static int up;
	char err[256], path[300];
	struct actor_loop *loop;
	struct actor *fm, *fp;
	struct net_listener *lm, *lp;
	struct net_opts o;

	if (up)
		return;
	up = 1;
	if (!mkdtemp(dir))
		kvn_fatal("mkdtemp");
	atexit(dir_remove);
	snprintf(path, sizeof path, "%s/client.secret", dir);
	if (auth_keygen(path, err, sizeof err) != 0 || auth_keyring_load(&kr, path, err, sizeof err) != 0)
		kvn_fatal("secret: %s", err);
	pol.client = &kr;
	snprintf(pol.server_id, sizeof pol.server_id, "fake");
	loop = actor_loop_new("t-fake");
	actor_spawn(loop, &fake_ops, &role_master, 4096, &fm);
	actor_spawn(loop, &fake_ops, &role_peer, 4096, &fp);
	net_opts_default(&o);
	if (net_listen(fm, "127.0.0.1:0", &pol, &o, &lm, err, sizeof err) != 0 ||
	    net_listen(fp, "127.0.0.1:0", &pol, &o, &lp, err, sizeof err) != 0)
		kvn_fatal("listen: %s", err);
	snprintf(maddr, sizeof maddr, "127.0.0.1:%u", net_listener_port(lm));
	snprintf(paddr, sizeof paddr, "127.0.0.1:%u", net_listener_port(lp));
	actor_loop_start(loop);
	ca = connect_conf("a", "");
	cb = connect_conf("b", "get_via_master = off\nput_via_master = off\n");
	cc = connect_conf("c", "get_via_master = off\nput_via_master = off\nspeculative_get = off\n"
			       "route_cache_ttl = 1m\n");
	ok(ca && cb && cc, "three clients of the fake node");
}

/* ---- put flags ---- */

/* kvn_put_async, drained: its error, or the failure reported. */
static int async_put(struct kvn_client *c, unsigned flags)
{
	struct kvn_put_failure f;
	int rc = kvn_put_async(c, "q/a", 3, "v", 1, flags, NULL, NULL);

	if (rc)
		return rc;
	kvn_drain(c);
	return kvn_poll_failures(c, &f, 1) ? f.status : 0;
}

/* Every put path of c with flags: 0 and the wire flags want (items
 * header, PROTO_ITEMS_SUM aside), or the error want_rc with nothing sent. */
static void put_paths(struct kvn_client *c, const char *how, unsigned flags, int want_rc, uint8_t want)
{
	struct kvn_item it[2] = { { .key = "q/a", .klen = 3, .val = "v", .vlen = 1 },
				  { .key = "q/b", .klen = 3, .val = "w", .vlen = 1 } };
	struct kvn_put_opts po = { .flags = flags };
	uint64_t gen = 0;
	int n0;

#define ONE(call, what)                                                                                  \
	do {                                                                                             \
		F.put_flags = 0xff;                                                                      \
		n0 = F.nput;                                                                             \
		is_int(call, want_rc, "%s, flags %#x: %s", how, flags, what);                             \
		if (want_rc == 0)                                                                        \
			ok(F.nput > n0 && (F.put_flags & ~PROTO_ITEMS_SUM) == want,                      \
			   "  sent with wire flags %#x (got %#x)", want, F.put_flags & ~PROTO_ITEMS_SUM); \
		else                                                                                     \
			is_int(F.nput - n0, 0, "  nothing sent");                                        \
	} while (0)
	ONE(kvn_put(c, "q/a", 3, "v", 1, flags), "kvn_put");
	ONE(kvn_put_gen(c, "q/a", 3, "v", 1, flags, &gen), "kvn_put_gen");
	ONE(kvn_put_opts(c, "q/a", 3, "v", 1, &po), "kvn_put_opts");
	ONE(kvn_batch_put(c, it, 2, flags), "kvn_batch_put");
	ONE(kvn_batch_put_opts(c, it, 2, &po), "kvn_batch_put_opts");
	ONE(async_put(c, flags), "kvn_put_async");
	struct kvn_slot s = { .key = "q/s", .klen = 3, .size = 1, .val = "v", .gen = 7 };
	snprintf(s.node_id, sizeof s.node_id, "fake");
	snprintf(s.node_addr, sizeof s.node_addr, "%s", paddr);
	ONE(kvn_commit_slots(c, &s, 1, flags), "kvn_commit_slots");
#undef ONE
}

static void t_put_flags(void)
{
	fixture();
	struct kvn_client *cs[2] = { ca, cb };
	const char *how[2] = { "through the master", "routed" };

	for (int i = 0; i < 2; i++) {
		put_paths(cs[i], how[i], 0, 0, 0);
		put_paths(cs[i], how[i], KVN_PUT_DURABLE, 0, PROTO_PUT_DURABLE);
		put_paths(cs[i], how[i], KVN_PUT_QUEUE, 0, PROTO_PUT_QUEUE | PROTO_PUT_DURABLE);
		put_paths(cs[i], how[i], KVN_PUT_QUEUE | KVN_PUT_RETAIN, 0,
			  PROTO_PUT_QUEUE | PROTO_PUT_DURABLE | PROTO_PUT_RETAIN);
		put_paths(cs[i], how[i], KVN_PUT_QUEUE | KVN_PUT_DURABLE | KVN_PUT_RETAIN, 0,
			  PROTO_PUT_QUEUE | PROTO_PUT_DURABLE | PROTO_PUT_RETAIN);
		put_paths(cs[i], how[i], KVN_PUT_RETAIN, KVN_EINVAL, 0);
		put_paths(cs[i], how[i], KVN_PUT_DURABLE | KVN_PUT_RETAIN, KVN_EINVAL, 0);
		put_paths(cs[i], how[i], 8, KVN_EINVAL, 0);
		put_paths(cs[i], how[i], KVN_PUT_QUEUE | 0x100, KVN_EINVAL, 0);
	}
	ok(stats(ca).via_put_sent > 0, "the puts of the first client did go through the master");
}

/* ---- lease ---- */

static struct kvn_ref refs[PROTO_LEASE_MAX + 1];

static void t_lease_args(void)
{
	fixture();
	size_t n = 99;
	int n0 = F.nlease;

	F.lease_mode = L_OK;
	is_int(kvn_lease(NULL, 0, 1, 1000, refs, 1, &n), KVN_EINVAL, "NULL client");
	is_int(kvn_lease(cb, 0, 1, 1000, NULL, 1, &n), KVN_EINVAL, "NULL refs");
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 1, NULL), KVN_EINVAL, "NULL n");
	n = 99;
	is_int(kvn_lease(cb, 0, 0, 1000, refs, 1, &n), KVN_EINVAL, "part_n 0");
	is_int(n, 0, "  *n is 0 after a failure");
	is_int(kvn_lease(cb, 0, PROTO_PART_MAX + 1, 1000, refs, 1, &n), KVN_EINVAL, "part_n over %u", PROTO_PART_MAX);
	is_int(kvn_lease(cb, 3, 3, 1000, refs, 1, &n), KVN_EINVAL, "part_i == part_n");
	is_int(kvn_lease(cb, 7, 3, 1000, refs, 1, &n), KVN_EINVAL, "part_i > part_n");
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 0, &n), KVN_EINVAL, "max 0");
	is_int(kvn_lease(cb, 0, 1, 1000, refs, PROTO_LEASE_MAX + 1, &n), KVN_EINVAL, "max over %u", PROTO_LEASE_MAX);
	is_int(kvn_lease(cb, 0, 1, 0, refs, 1, &n), KVN_EINVAL, "ttl 0");
	is_int(kvn_lease(cb, 0, 1, PROTO_TTL_MAX_MS + 1, refs, 1, &n), KVN_EINVAL, "ttl over 10 years");
	is_int(F.nlease - n0, 0, "none of them reached the master");
	F.avail = 0;
	is_int(kvn_lease(cb, PROTO_PART_MAX - 1, PROTO_PART_MAX, PROTO_TTL_MAX_MS, refs, PROTO_LEASE_MAX, &n), 0,
	       "the largest values in range are sent");
	ok(F.nlease == n0 + 1 && F.lease_dec == 0 && F.lreq.part_i == PROTO_PART_MAX - 1 &&
		   F.lreq.part_n == PROTO_PART_MAX && F.lreq.max == PROTO_LEASE_MAX && F.lreq.ttl_ms == PROTO_TTL_MAX_MS,
	   "  as given (decoded by proto_lease_dec: %d)", F.lease_dec);
	is_int(n, 0, "  nothing waiting: 0 refs, not an error");
}

static void t_lease_reply(void)
{
	fixture();
	char host[256], want[80];
	size_t n = 0;

	F.lease_mode = L_OK;
	F.avail = 3;
	memset(refs, 0xee, sizeof refs);
	is_int(kvn_lease(cb, 2, 5, 30000, refs, 10, &n), 0, "lease 10 of partition 2/5, 3 waiting");
	is_int(n, 3, "  3 refs");
	ok(F.lreq.part_i == 2 && F.lreq.part_n == 5 && F.lreq.max == 10 && F.lreq.ttl_ms == 30000,
	   "  the request says partition 2 of 5, max 10, ttl 30000 ms");
	gethostname(host, sizeof host);
	host[sizeof host - 1] = '\0';
	snprintf(want, sizeof want, ":%ld", (long)getpid());
	size_t hl = strlen(F.lreq.holder), wl = strlen(want);
	ok(hl <= PROTO_HOLDER_MAX && hl > wl && strcmp(F.lreq.holder + hl - wl, want) == 0 &&
		   strncmp(F.lreq.holder, host, hl - wl) == 0,
	   "  holder is host:pid (%s)", F.lreq.holder);
	ok(refs[0].lease_id == 100 && refs[0].gen == 10 && refs[0].size == 1000 && refs[0].deadline_ms == 5000 &&
		   strcmp(refs[0].node_id, "fake") == 0 && refs[0].klen == 3 && memcmp(refs[0].key, binkey, 3) == 0,
	   "  ref 0: id, gen, size, deadline, node and a binary key");
	ok(refs[2].lease_id == 102 && refs[2].gen == 12 && refs[2].klen == 4 && memcmp(refs[2].key, "q/k2", 4) == 0,
	   "  ref 2 too");
	ok(refs[3].lease_id == 0xeeeeeeeeeeeeeeeeull, "  nothing written past *n");
	F.avail = 50;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 2, &n), 0, "more waiting than max");
	is_int(n, 2, "  max refs");

	/* the CLI and the docs quote them */
	const char *names[] = { "over", "trailing", "node", "keylen", "id0" };
	int modes[] = { L_OVER, L_TRAILING, L_NODE_SPACE, L_KEY_LONG, L_ID_ZERO };
	const char *what[] = { "a count above max", "a byte after the refs", "a node id with a space",
			       "a key of KVN_MAX_KEY + 1 bytes", "lease id 0" };
	for (int i = 0; i < 5; i++) {
		F.lease_mode = modes[i];
		F.avail = 2;
		n = 99;
		is_int(kvn_lease(cb, 0, 1, 1000, refs, 2, &n), KVN_EPROTO, "a reply with %s: KVN_EPROTO (%s)", what[i],
		       names[i]);
		is_int(n, 0, "  and no refs");
	}
	F.lease_mode = L_EDB;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 2, &n), KVN_EDB, "the master's KVN_EDB comes back as is");
	F.lease_mode = L_UNKNOWN;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 2, &n), KVN_EPROTO, "a master that does not know LEASE: KVN_EPROTO");
	ok(strstr(kvn_last_detail(cb), "consumer leases") != NULL, "  the detail says why: %s", kvn_last_detail(cb));
	F.lease_mode = L_OK;
}

static void t_lease_once(void)
{
	fixture();
	size_t n = 0;
	uint64_t rtt;
	int n0;

	F.avail = 1;
	is_int(kvn_ping(cb, &rtt, NULL), 0, "a call first: the next one reuses the connection");
	F.lease_mode = L_CUT;
	n0 = F.nlease;
	int rc = kvn_lease(cb, 0, 1, 1000, refs, 1, &n);
	ok(rc == KVN_ECONN || rc == KVN_ECLOSED, "the connection cut instead of a reply: %s", kvn_strerror(rc));
	is_int(F.nlease - n0, 1, "  the LEASE was sent once, not again on a new connection");
	F.lease_mode = L_DROP;
	n0 = F.nlease;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 1, &n), KVN_ETIMEDOUT, "no reply: KVN_ETIMEDOUT at the deadline");
	is_int(F.nlease - n0, 1, "  sent once");
	F.lease_mode = L_BUSY_ONCE;
	n0 = F.nlease;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 1, &n), 0, "KVN_EBUSY (nothing done) is asked again after a pause");
	ok(F.nlease - n0 == 2 && n == 1, "  twice, then a ref (%d requests, %zu refs)", F.nlease - n0, n);

	/* the same cut, for a call that is safe twice: it goes again (the
	 * assertions above can fail) */
	F.lease_mode = L_OK;
	is_int(kvn_ping(cb, &rtt, NULL), 0, "ping");
	F.ping_cut = 1;
	is_int(kvn_ping(cb, &rtt, NULL), 0, "a ping answered, then its connection closed by the master");
	usleep(100 * 1000); /* the close arrives while the client is idle */
	n0 = F.nlease;
	is_int(kvn_lease(cb, 0, 1, 1000, refs, 1, &n), 0, "a LEASE after the connection died idle still works");
	ok(F.nlease - n0 == 1 && n == 1, "  sent once, on a new connection (%d)", F.nlease - n0);
	F.ping_cut = 1;
	is_int(kvn_ping(cb, &rtt, NULL), 0, "again");
	usleep(100 * 1000);
	uint64_t id = 5;
	int st = 1;
	n0 = F.nrelease;
	is_int(kvn_release(cb, &id, 1, 0, &st), 0, "a RELEASE after that too");
	is_int(F.nrelease - n0, 1, "  sent once");
}

/* ---- release, renew ---- */

static void t_release_renew(void)
{
	fixture();
	uint64_t ids[4] = { 11, 12, 13, 14 }, dl[4], zero[2] = { 5, 0 };
	static uint64_t many[PROTO_MAX_ITEMS + 1];
	int st[4];
	int r0 = F.nrelease, w0 = F.nrenew;

	F.ids_mode = L_OK;
	is_int(kvn_release(NULL, ids, 1, 0, st), KVN_EINVAL, "release: NULL client");
	is_int(kvn_release(cb, NULL, 1, 0, st), KVN_EINVAL, "release: NULL ids");
	is_int(kvn_release(cb, ids, 0, 0, st), KVN_EINVAL, "release: n 0");
	for (size_t i = 0; i < PROTO_MAX_ITEMS + 1; i++)
		many[i] = 1000 + i;
	is_int(kvn_release(cb, many, PROTO_MAX_ITEMS + 1, 0, NULL), KVN_EINVAL, "release: n over %u", PROTO_MAX_ITEMS);
	is_int(kvn_release(cb, zero, 2, 0, st), KVN_EINVAL, "release: an id 0");
	is_int(kvn_release(cb, ids, 1, KVN_RELEASE_RETAIN | KVN_RELEASE_RETURN, st), KVN_EINVAL,
	       "release: retain and return at once");
	is_int(kvn_release(cb, ids, 1, 4, st), KVN_EINVAL, "release: an unknown flag");
	is_int(kvn_renew(cb, ids, 1, 0, st, dl), KVN_EINVAL, "renew: ttl 0");
	is_int(kvn_renew(cb, ids, 1, PROTO_TTL_MAX_MS + 1, st, dl), KVN_EINVAL, "renew: ttl over 10 years");
	is_int(kvn_renew(cb, zero, 2, 1000, st, dl), KVN_EINVAL, "renew: an id 0");
	is_int(kvn_renew(NULL, ids, 1, 1000, st, dl), KVN_EINVAL, "renew: NULL client");
	ok(F.nrelease == r0 && F.nrenew == w0, "none of them reached the master");

	is_int(kvn_release(cb, many, PROTO_MAX_ITEMS, 0, NULL), 0, "release of %u ids in one call", PROTO_MAX_ITEMS);
	is_int(F.nids, PROTO_MAX_ITEMS, "  all sent");
	memset(st, 1, sizeof st);
	is_int(kvn_release(cb, ids, 4, 0, st), KVN_ESTATE, "release 11..14: the first failure (13 is not live)");
	ok(st[0] == 0 && st[1] == 0 && st[2] == KVN_ESTATE && st[3] == 0, "  per id: 0 0 KVN_ESTATE 0");
	ok(F.rel_flags == 0 && F.nids == 4 && F.ids[0] == 11 && F.ids[3] == 14, "  the ids, flags 0");
	is_int(kvn_release(cb, ids, 2, KVN_RELEASE_RETAIN, st), 0, "release --retain");
	is_int(F.rel_flags, PROTO_RELEASE_RETAIN, "  sends PROTO_RELEASE_RETAIN");
	is_int(kvn_release(cb, ids, 2, KVN_RELEASE_RETURN, NULL), 0, "release --return, no status array");
	is_int(F.rel_flags, PROTO_RELEASE_RETURN, "  sends PROTO_RELEASE_RETURN");

	memset(dl, 0xee, sizeof dl);
	is_int(kvn_renew(cb, ids, 4, 45000, st, dl), KVN_ESTATE, "renew 11..14: 13 is not live");
	ok(st[0] == 0 && st[2] == KVN_ESTATE && st[3] == 0, "  per id statuses");
	ok(dl[0] == 11000 && dl[1] == 12000 && dl[2] == 0 && dl[3] == 14000,
	   "  the new deadlines, 0 for the one that failed");
	is_int(F.renew_ttl, 45000, "  the ttl sent");
	is_int(kvn_renew(cb, ids, 2, 1000, NULL, NULL), 0, "renew without the optional arrays");

	F.ids_mode = L_OVER;
	is_int(kvn_release(cb, ids, 2, 0, st), KVN_EPROTO, "a reply with one status too many: KVN_EPROTO");
	ok(st[0] == KVN_EPROTO && st[1] == KVN_EPROTO, "  every id says so");
	F.ids_mode = L_CUT;
	int n0 = F.nrelease;
	int rc = kvn_release(cb, ids, 2, 0, st);
	ok(rc == KVN_ECONN || rc == KVN_ECLOSED, "release, the connection cut instead of a reply: %s",
	   kvn_strerror(rc));
	ok(F.nrelease - n0 == 1 && st[0] == rc && st[1] == rc, "  sent once; every id has the call's error");
	n0 = F.nrenew;
	rc = kvn_renew(cb, ids, 2, 1000, st, dl);
	ok((rc == KVN_ECONN || rc == KVN_ECLOSED) && F.nrenew - n0 == 1 && dl[0] == 0,
	   "renew too: %s, sent once, no deadline", kvn_strerror(rc));
	F.ids_mode = L_BUSY_ONCE;
	n0 = F.nrenew;
	is_int(kvn_renew(cb, ids, 1, 1000, st, dl), 0, "KVN_EBUSY, then an answer");
	is_int(F.nrenew - n0, 2, "  asked twice");
	F.ids_mode = L_OK;
}

/* ---- get by ref of a sample whose node died ---- */

static void t_get_peerdown(void)
{
	fixture();
	char buf[16];
	size_t vlen = 0;
	int r0, g0;

	F.dead = 0;
	is_int(kvn_put(cc, "q/dead", 6, "0123456789", 10, KVN_PUT_QUEUE), 0, "cc puts q/dead (its route remembered)");
	is_int(kvn_get_gen(cc, "q/dead", 6, 7, buf, sizeof buf, &vlen), 0, "and reads it by ref");
	is_int(kvn_get(cb, "q/k1", 4, buf, sizeof buf, &vlen), 0, "cb reads a key: its sole peer is known");
	F.dead = 1;
	struct kvn_client *cs[3] = { ca, cb, cc };
	const char *how[3] = { "through the master", "speculative", "from a remembered route" };
	for (int i = 0; i < 3; i++) {
		r0 = F.nroute_get;
		g0 = F.nget_master;
		is_int(kvn_get_gen(cs[i], "q/dead", 6, 7, buf, sizeof buf, &vlen), KVN_EPEERDOWN,
		       "%s: the master says the node is down: KVN_EPEERDOWN", how[i]);
		if (i == 0)
			ok(F.nget_master - g0 == 1 && F.nroute_get == r0, "  one GET to the master, no ROUTE_GET (%d, %d)",
			   F.nget_master - g0, F.nroute_get - r0);
		else
			is_int(F.nroute_get - r0, 1, "  the master asked once, not again");
	}
	is_int(kvn_get(cb, "q/dead", 6, buf, sizeof buf, &vlen), KVN_EPEERDOWN, "a latest get says the same");
	F.dead = 0;
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "put_flags", t_put_flags },
		{ "lease_args", t_lease_args },
		{ "lease_reply", t_lease_reply },
		{ "lease_once", t_lease_once },
		{ "release_renew", t_release_renew },
		{ "get_peerdown", t_get_peerdown },
		{ NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}
