/*
 * t/embed_local: an embedded client on the same-host path with no socket
 * (docs/embedding.md, "The local path").  Needs the internal counters and
 * hooks, so it links the internal libraries (t/embed stays a program of the
 * public headers against libkvnode-embed alone).
 * path: gets copy out of the arena and puts go through the staging region
 * (the client's and the peer's local counters move, the links carry no
 * value bytes), byte for byte at 1 MiB+ and 16 MiB, batches; the control:
 * client.local = off sends the values as payloads.  race: a lease that
 * expires in the middle of a copy, its pages reused: the get never returns
 * those bytes.  close: a closed client's link, leases and staging are gone
 * from the peer; a link that holds leases and is cut releases them.  auth:
 * the map step takes only the token LOCAL_MAP gave that very link, once.
 * fallback: a node with peer.local_socket = off, or a map step that fails,
 * leaves the client working through payload messages.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kvnode-embed.h"
#include "actors/actor.h"
#include "base/base.h"
#include "client/client.h"
#include "embed/embed_int.h"
#include "net/net.h"
#include "net/proto.h"
#include "net/xfer.h"
#include "peer/peer.h"
#include "tap.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static char base_dir[64];

static const char *subdir(const char *name)
{
	static char path[256];
	if (!base_dir[0]) {
		snprintf(base_dir, sizeof base_dir, "/tmp/kvn-elocal-XXXXXX");
		if (!mkdtemp(base_dir))
			abort();
	}
	snprintf(path, sizeof path, "%s/%s", base_dir, name);
	return path;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* Open a node in subdir(name) with a config file holding conf (may be ""). */
static struct kvn_embed *open_with(const char *name, uint64_t dram, const char *conf)
{
	char dir[256], cpath[256];
	snprintf(cpath, sizeof cpath, "%s.conf", subdir(name));
	snprintf(dir, sizeof dir, "%s", subdir(name));
	FILE *f = fopen(cpath, "w");
	if (!f)
		abort();
	fputs(conf, f);
	fclose(f);
	struct kvn_embed_options o = { .config_path = cpath, .data_dir = dir, .dram_size = dram, .timeout_ms = 10000 };
	struct kvn_embed *e = NULL;
	int rc = kvn_embed_open(&o, &e);
	if (rc)
		tap_diag("kvn_embed_open: %s: %s", kvn_strerror(rc), kvn_last_detail(NULL));
	return e;
}

static struct client_stats cst(struct kvn_client *c)
{
	struct client_stats st;
	client_get_stats(c, &st);
	return st;
}

static struct peer_stats pst(struct kvn_embed *e)
{
	struct peer_stats st;
	peer_get_stats(embed_dir_of(e)->peer_actor, &st, NULL);
	return st;
}

static struct peer_local_counts pcounts(struct kvn_embed *e)
{
	struct peer_local_counts pc;
	peer_local_counts(embed_dir_of(e)->peer_actor, &pc);
	return pc;
}

/* Descriptors of this process that name a staging memfd or a socket. */
static int fds_like(const char *what)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], link[256];
	int n = 0;
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
		ssize_t k = readlink(path, link, sizeof link - 1);
		if (k > 0) {
			link[k] = '\0';
			n += strstr(link, what) != NULL;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* ---- path ---- */

static void path_on(const char *local)
{
	int on = strcmp(local, "auto") == 0;
	char conf[64], name[32];
	snprintf(conf, sizeof conf, "[client]\nlocal = %s\n", local);
	snprintf(name, sizeof name, "path-%s", local);
	struct kvn_embed *e = open_with(name, 64u * MIB, conf);
	ok(e != NULL, "%s: open", local);
	if (!e)
		return;
	struct kvn_client *c = kvn_embed_client(e);
	const char *node = embed_dir_of(e)->node_id;
	size_t big = 16u * MIB, vlen = 0;
	uint8_t *v = kvn_xmalloc(big), *g = kvn_xmalloc(big);
	uint64_t pay0 = embed_link_payload_bytes();
	struct peer_stats ps0 = pst(e);

	size_t sizes[] = { 3, MIB + 7, 3u * MIB, big };
	int good = 0;
	for (int i = 0; i < 4; i++) {
		char key[16];
		snprintf(key, sizeof key, "v%d", i);
		fill(v, sizes[i], (uint32_t)i + (on ? 10u : 20u));
		memset(g, 0xee, sizes[i]);
		good += kvn_put(c, key, strlen(key), v, sizes[i], 0) == 0 &&
			kvn_get(c, key, strlen(key), g, big, &vlen) == 0 && vlen == sizes[i] &&
			memcmp(g, v, vlen) == 0;
	}
	is_int(good, 4, "%s: put and get of 3 B, 1 MiB + 7, 3 MiB and 16 MiB, byte for byte", local);
	is_int(client_local_active(c, node), on, "%s: the same-host path is %s", local, on ? "up" : "not up");
	ok(fds_like("kvnode-staging") == 0 && fds_like("socket:") == 0,
	   "%s: with no staging memfd and no socket in this process", local);
	struct client_stats cs = cst(c);
	is_int(cs.local_puts, on ? 4 : 0, "%s: client: %d puts through the staging region", local, on ? 4 : 0);
	is_int(cs.local_gets, on ? 4 : 0, "%s: client: %d gets copied out of the arena", local, on ? 4 : 0);
	struct peer_stats ps = pst(e);
	is_int(ps.local_puts - ps0.local_puts, on ? 4 : 0, "%s: peer: LOCAL_PUT items", local);
	is_int(ps.local_gets - ps0.local_gets, on ? 4 : 0, "%s: peer: LOCAL_GET items", local);
	uint64_t pay = embed_link_payload_bytes() - pay0;
	if (on)
		is_int(pay, 0, "auto: the links carried no value byte");
	else
		ok(pay >= 2 * (3 + MIB + 7 + 3u * MIB + big), "off: the values went through the links (%llu bytes)",
		   (unsigned long long)pay);

	/* batches: 8 items, one over 1 MiB */
	enum { N = 8 };
	struct kvn_item it[N];
	char keys[N][16];
	size_t vl[N];
	pay0 = embed_link_payload_bytes();
	for (int i = 0; i < N; i++) {
		vl[i] = i == 5 ? MIB + 333 : 4000u * (size_t)(i + 1);
		snprintf(keys[i], sizeof keys[i], "b%d", i);
		fill(v + (size_t)i * 2 * MIB, vl[i], 50u + (uint32_t)i);
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]), .val = v + (size_t)i * 2 * MIB,
					   .vlen = vl[i] };
	}
	is_int(kvn_batch_put(c, it, N, 0), 0, "%s: batch put of 8", local);
	for (int i = 0; i < N; i++)
		it[i] = (struct kvn_item){ .key = keys[i], .klen = strlen(keys[i]) };
	is_int(kvn_batch_get(c, it, N), 0, "%s: batch get of 8 (allocating)", local);
	good = 0;
	for (int i = 0; i < N; i++) {
		good += it[i].status == 0 && it[i].vlen == vl[i] && memcmp(it[i].val, v + (size_t)i * 2 * MIB, vl[i]) == 0;
		free(it[i].val);
	}
	is_int(good, N, "%s: every item byte for byte", local);
	cs = cst(c);
	is_int(cs.local_puts, on ? 4 + N : 0, "%s: client: the batch's puts counted", local);
	is_int(cs.local_gets, on ? 4 + N : 0, "%s: client: the batch's gets counted", local);
	if (on)
		is_int(embed_link_payload_bytes() - pay0, 0, "auto: no value byte on the links for the batches");
	is_int(cs.local_stale, 0, "%s: no copy failed its checksum", local);
	is_int(kvn_get(c, "v3", 2, g, 100, &vlen), KVN_ERANGE, "%s: a small buffer: KVN_ERANGE", local);
	is_int(kvn_get(c, "none", 4, g, 100, &vlen), KVN_ENOTFOUND, "%s: a missing key: KVN_ENOTFOUND", local);
	kvn_embed_close(e);
	free(v);
	free(g);
}

static void t_path(void)
{
	path_on("auto");
	path_on("off");
}

/* ---- race ---- */

struct race {
	struct kvn_client *other;
	uint8_t *fill;
	int fired;
};

/* After the peer granted the lease, before the copy: wait past
 * peer.read_lease_ttl (100 ms), then have the pages reused: remove the
 * value, write twice the arena of other values, put a new value under the
 * key (t/local lease_race, in one process). */
static void race_hook(void *arg, const void *key, size_t klen)
{
	struct race *r = arg;
	if (r->fired || klen != 4 || memcmp(key, "race", 4) != 0)
		return;
	r->fired = 1;
	usleep(400 * 1000);
	(void)kvn_remove(r->other, "race", 4);
	for (int i = 0; i < 8; i++) {
		char k[16];
		snprintf(k, sizeof k, "fill%d", i);
		fill(r->fill, MIB, 100u + (uint32_t)i);
		(void)kvn_put(r->other, k, strlen(k), r->fill, MIB, 0);
	}
	fill(r->fill, MIB, 7);
	(void)kvn_put(r->other, "race", 4, r->fill, MIB, 0);
}

static void t_race(void)
{
	struct race r = { 0 };
	struct kvn_embed *e = open_with("race", 4u * MIB, "[peer]\nhugepages = off\nread_lease_ttl = 100ms\n");
	ok(e != NULL, "a node with a 4 MiB arena and 100 ms read leases");
	if (!e)
		return;
	struct kvn_client *c = kvn_embed_client(e);
	is_int(kvn_embed_connect(e, &r.other), 0, "a second client");
	uint8_t *v = kvn_xmalloc(MIB), *g = kvn_xmalloc(MIB), *want = kvn_xmalloc(MIB);
	r.fill = kvn_xmalloc(MIB);
	fill(v, MIB, 5);
	fill(want, MIB, 7);
	is_int(kvn_put(c, "race", 4, v, MIB, 0), 0, "put 1 MiB");
	size_t vlen = 0;
	client_set_local_copy_hook(c, race_hook, &r);
	int rc = kvn_get(c, "race", 4, g, MIB, &vlen);
	client_set_local_copy_hook(c, NULL, NULL);
	ok(r.fired, "the hook ran between the lease and the copy: the get took the local path");
	is_int(cst(c).local_stale, 1, "the copy failed its checksum: the pages had been reused");
	is_int(rc, 0, "the get still answers");
	ok(vlen == MIB && memcmp(g, want, MIB) == 0, "with the value put last, never the reused pages' bytes");
	ok(memcmp(g, v, MIB) != 0, "(not the value whose lease ran out either: it was removed)");
	kvn_close(r.other);
	kvn_embed_close(e);
	free(v);
	free(g);
	free(want);
	free(r.fill);
}

/* ---- a raw link, as the client library's would be ---- */

static struct {
	struct actor_loop *loop;
	struct actor *self;
} T;

struct call {
	int done, err;
	struct actor_msg *reply;
};

static int on_msg(struct actor *self, struct actor_msg *m)
{
	(void)self;
	(void)m;
	return 0;
}

static int on_reply(struct actor *self, void *arg, struct actor_msg *reply, int err)
{
	struct call *c = arg;
	(void)self;
	c->done = 1;
	c->err = err;
	c->reply = reply;
	return reply ? ACTOR_KEEP : 0;
}

static void raw_start(void)
{
	static const struct actor_ops ops = { .name = "t-elocal", .handle = on_msg };
	T.loop = actor_loop_new("t-elocal");
	actor_loop_adopt(T.loop);
	if (actor_spawn(T.loop, &ops, NULL, 64, &T.self) != 0)
		abort();
}

/* Send m to dst, wait up to 3 s: the status (or the call's error); the
 * reply in *out when asked (the caller frees it). */
static int raw_call(actor_id dst, struct actor_msg *m, struct actor_msg **out)
{
	struct call c = { 0 };
	actor_busy_enter(T.self);
	if (actor_call(T.self, dst, m, 3000, on_reply, &c) != 0) {
		actor_msg_free(m);
		actor_busy_leave(T.self);
		return KVN_ECLOSED;
	}
	actor_busy_leave(T.self);
	actor_loop_run_until(T.loop, &c.done, kvn_now_ms() + 5000);
	int rc = !c.done ? KVN_ETIMEDOUT : c.err ? c.err : c.reply->status;
	if (out && c.reply && rc == 0)
		*out = c.reply;
	else
		actor_msg_free(c.reply);
	return rc;
}

static int raw_map(actor_id link, struct proto_local_map *lm)
{
	struct actor_msg *r = NULL;
	int rc = raw_call(link, actor_msg_new(WIRE_LOCAL_MAP), &r);
	if (rc == 0)
		rc = proto_local_map_dec(r, lm);
	actor_msg_free(r);
	return rc;
}

/* ---- close ---- */

static int wait_counts(struct kvn_embed *e, uint32_t conns, uint64_t kt_leases)
{
	struct peer_local_counts pc;
	for (int i = 0; i < 200; i++) {
		pc = pcounts(e);
		if (pc.conns == conns && pc.kt_leases == kt_leases)
			return 1;
		usleep(10000);
	}
	tap_diag("conns %u mapped %u leases %u kt_leases %llu", pc.conns, pc.mapped, pc.leases,
		 (unsigned long long)pc.kt_leases);
	return 0;
}

static void t_close(void)
{
	struct kvn_embed *e = open_with("close", 64u * MIB, "");
	ok(e != NULL, "open");
	if (!e)
		return;
	struct peer_local_counts pc = pcounts(e);
	is_int(pc.conns, 0, "no local connection before a client reaches the peer");
	struct kvn_client *c = NULL;
	is_int(kvn_embed_connect(e, &c), 0, "a second client");
	uint8_t *v = kvn_xmalloc(2 * MIB), *g = kvn_xmalloc(2 * MIB);
	size_t vlen = 0;
	fill(v, 2 * MIB, 3);
	ok(kvn_put(c, "k", 1, v, 2 * MIB, 0) == 0 && kvn_get(c, "k", 1, g, 2 * MIB, &vlen) == 0 &&
		   memcmp(g, v, 2 * MIB) == 0,
	   "it puts and gets 2 MiB");
	is_int(cst(c).local_gets, 1, "through the local path");
	pc = pcounts(e);
	is_int(pc.conns, 1, "its link is a local connection of the peer");
	is_int(pc.mapped, 1, "mapped (its staging allocated)");
	kvn_close(c);
	ok(wait_counts(e, 0, 0), "kvn_close: its local connection, staging and leases are gone from the peer");
	is_int(pcounts(e).mapped, 0, "nothing mapped any more");

	/* a link that holds leases and is cut: LOCAL_GET without the release */
	raw_start();
	struct embed_dir *d = embed_dir_of(e);
	actor_id link = 0;
	actor_busy_enter(T.self);
	is_int(embed_connect(d, T.self, d->node_id, "", &link), 0, "a raw link to the peer");
	actor_busy_leave(T.self);
	struct proto_local_map lm;
	is_int(raw_map(link, &lm), 0, "LOCAL_MAP over it");
	ok(lm.local == 1 && lm.sock[0] == '\0' && lm.staging_len > 0, "answered local, with no socket path");
	struct actor_msg *m = actor_msg_new(WIRE_LOCAL_GET), *r = NULL;
	struct wire_w w;
	wire_w_init(&w);
	proto_items_begin(&w, 0, 2);
	proto_items_add(&w, "k", 1, 0, 0);
	proto_items_add(&w, "k", 1, 0, 0);
	wire_w_to_msg(&w, m);
	wire_w_fini(&w);
	is_int(raw_call(link, m, &r), 0, "LOCAL_GET of two items");
	struct proto_local_res res;
	struct wire_r rr;
	wire_r_init(&rr, r->meta, r->meta_len);
	int leased = wire_r_u32(&rr) == 2;
	for (int i = 0; i < 2 && leased; i++)
		leased = proto_local_res_next(&rr, &res) == 0 && res.status == 0 && res.how == PROTO_LOCAL_HERE &&
			 res.lease_id != 0 && res.size == 2 * MIB;
	actor_msg_free(r);
	ok(leased, "two leases granted, with extents");
	pc = pcounts(e);
	ok(pc.leases == 2 && pc.kt_leases == 2, "the peer holds them (%u, %llu)", pc.leases,
	   (unsigned long long)pc.kt_leases);
	actor_busy_enter(T.self);
	net_abort(T.loop, link, KVN_ECONN);
	actor_busy_leave(T.self);
	int never = 0;
	actor_loop_run_until(T.loop, &never, kvn_now_ms() + 50);
	ok(wait_counts(e, 0, 0), "cut: the link's leases were released with its local connection (read_lease_ttl is 5 s)");

	/* a client on the path that outlives the node: its pin keeps the
	 * arena and its staging memory until kvn_close (ASan: no leak, no
	 * read of freed memory) */
	struct kvn_client *late = NULL;
	is_int(kvn_embed_connect(e, &late), 0, "one more client");
	ok(kvn_put(late, "k", 1, v, 2 * MIB, 0) == 0 && kvn_get(late, "k", 1, g, 2 * MIB, &vlen) == 0 &&
		   cst(late).local_gets == 1,
	   "on the local path");
	kvn_embed_close(e);
	ok(kvn_get(late, "k", 1, g, 2 * MIB, &vlen) != 0, "after kvn_embed_close its get fails (%s)",
	   kvn_strerror(kvn_get(late, "k", 1, g, 2 * MIB, &vlen)));
	kvn_close(late);
	actor_loop_free(T.loop);
	free(v);
	free(g);
}

/* ---- auth ---- */

static void t_auth(void)
{
	struct kvn_embed *e = open_with("auth", 16u * MIB, "");
	ok(e != NULL, "open");
	if (!e)
		return;
	raw_start();
	struct embed_dir *d = embed_dir_of(e);
	actor_id a = 0, b = 0, mst = 0;
	actor_busy_enter(T.self);
	is_int(embed_connect(d, T.self, d->node_id, "", &a), 0, "link a to the peer");
	is_int(embed_connect(d, T.self, d->node_id, "", &b), 0, "link b to the peer");
	is_int(embed_connect(d, T.self, NULL, "", &mst), 0, "a link to the master");
	actor_busy_leave(T.self);
	struct proto_local_map la, lb;
	is_int(raw_map(a, &la), 0, "LOCAL_MAP over a");
	is_int(raw_map(b, &lb), 0, "LOCAL_MAP over b");
	struct net_region ar, st;
	void *pin = (void *)1;
	is_int(embed_local_map(d, a, lb.token, &ar, &st, &pin), KVN_EAUTH, "a with b's token: KVN_EAUTH");
	ok(pin == NULL && ar.base == NULL && st.base == NULL, "and nothing handed out");
	uint8_t bad[PROTO_TOKEN_LEN];
	memcpy(bad, la.token, sizeof bad);
	bad[7] ^= 1;
	is_int(embed_local_map(d, a, bad, &ar, &st, &pin), KVN_EAUTH, "a wrong token: KVN_EAUTH");
	is_int(embed_local_map(d, mst, la.token, &ar, &st, &pin), KVN_EAUTH, "a's token on the master's link: KVN_EAUTH");
	is_int(embed_local_map(d, b, lb.token, &ar, &st, &pin), 0, "b with its own token: mapped");
	ok(pin && !ar.writable && st.writable && ar.len == lb.arena_len && st.len == lb.staging_len,
	   "the arena read-only, b's staging writable, the sizes LOCAL_MAP named");
	embed_local_unmap(pin);
	is_int(embed_local_map(d, b, lb.token, &ar, &st, &pin), KVN_EAUTH, "the same token again: KVN_EAUTH (single use)");
	ok(raw_call(mst, actor_msg_new(WIRE_LOCAL_MAP), NULL) != 0, "LOCAL_MAP to the master: refused");
	actor_busy_enter(T.self);
	net_close(a);
	net_close(b);
	net_close(mst);
	actor_busy_leave(T.self);
	kvn_embed_close(e);
	actor_loop_free(T.loop);
}

/* ---- fallback ---- */

static void t_fallback(void)
{
	/* the node offers no local path: payload messages, silently */
	struct kvn_embed *e = open_with("fb-off", 16u * MIB, "[peer]\nlocal_socket = off\n");
	ok(e != NULL, "open with peer.local_socket = off");
	if (!e)
		return;
	struct kvn_client *c = kvn_embed_client(e);
	uint8_t *v = kvn_xmalloc(MIB), *g = kvn_xmalloc(MIB);
	size_t vlen = 0;
	fill(v, MIB, 11);
	uint64_t pay0 = embed_link_payload_bytes();
	ok(kvn_put(c, "f", 1, v, MIB, 0) == 0 && kvn_get(c, "f", 1, g, MIB, &vlen) == 0 && vlen == MIB &&
		   memcmp(g, v, MIB) == 0,
	   "put and get of 1 MiB work");
	struct client_stats cs = cst(c);
	ok(cs.local_gets == 0 && cs.local_puts == 0 && cs.local_fallbacks == 0,
	   "not through the local path, and no failure counted");
	ok(embed_link_payload_bytes() - pay0 >= 2 * MIB, "the values went as payloads");
	is_int(pcounts(e).conns, 0, "the peer keeps no local connection");
	kvn_embed_close(e);

	/* the map step fails (the staging region cannot be allocated): the
	 * client goes on with payload messages */
	e = open_with("fb-fail", 16u * MIB, "");
	ok(e != NULL, "open");
	if (!e)
		return;
	c = kvn_embed_client(e);
#if defined(__SANITIZE_ADDRESS__)
	tap_skip(4, "address space limits and ASan's shadow memory do not mix");
#else
	struct rlimit old, lim;
	getrlimit(RLIMIT_AS, &old);
	long vm_pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f || fscanf(f, "%ld", &vm_pages) != 1)
		vm_pages = 0;
	if (f)
		fclose(f);
	/* room for the calls, not for a 64 MiB staging region */
	lim = old;
	lim.rlim_cur = (rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE) + 24u * MIB;
	int limited = vm_pages > 0 && setrlimit(RLIMIT_AS, &lim) == 0;
	pay0 = embed_link_payload_bytes();
	fill(v, MIB, 12);
	int works = kvn_put(c, "f", 1, v, MIB, 0) == 0 && kvn_get(c, "f", 1, g, MIB, &vlen) == 0 && vlen == MIB &&
		    memcmp(g, v, MIB) == 0;
	if (limited)
		setrlimit(RLIMIT_AS, &old);
	ok(limited, "the address space limited to what is mapped now + 24 MiB");
	ok(works, "put and get of 1 MiB still work");
	cs = cst(c);
	ok(cs.local_fallbacks >= 1 && cs.local_gets == 0 && cs.local_puts == 0,
	   "the local path failed (%llu) and was not used", (unsigned long long)cs.local_fallbacks);
	ok(embed_link_payload_bytes() - pay0 >= 2 * MIB, "the values went as payloads");
#endif
	kvn_embed_close(e);
	free(v);
	free(g);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "path", t_path },
		{ "race", t_race },
		{ "close", t_close },
		{ "auth", t_auth },
		{ "fallback", t_fallback },
		{ NULL, NULL },
	};
	kvn_set_log(getenv("KVN_EMBED_DEBUG") ? KVN_LOG_DEBUG : KVN_LOG_ERROR, NULL);
	int rc = tap_run(tests, argc, argv);
	if (base_dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", base_dir);
		if (system(cmd) != 0)
			tap_diag("cannot remove %s", base_dir);
	}
	return rc;
}
