/* t/checksum: the client's end of the end-to-end checksum and the wire of
 * the pin/evict calls, against a fake node in this process (one actor that
 * plays master and peer over authenticated loopback TCP, so its replies
 * can lie).  Checked: every put sends the XXH3-64 of its value and its TTL
 * (kvn_put_opts, batches, async); a get whose bytes do not match the
 * checksum the node sent is KVN_ECORRUPT and counted (through the master,
 * routed, by generation, batch, malloc'd), and a good one passes; pin,
 * unpin and evict carry the routed generation and pin's TTL, and their
 * per-item statuses come back; argument checks of the new calls. */
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

#define NKEYS 4
static const char *keys[NKEYS] = { "ck/a", "ck/b", "ck/c", "ck/held" };
static uint8_t vals[NKEYS][5000];
static char addr[64];

/* What the fake saw last (written on its thread, read between calls). */
static struct {
	volatile int tamper;      /* GET answers a checksum off by one */
	uint64_t put_sum, put_ttl, put_size;
	uint8_t put_flags;
	int put_sum_ok;           /* the checksum matches the payload */
	uint16_t last_type;
	uint32_t last_n;
	uint64_t last_gen, pin_ttl;
	int pin_dec;              /* proto_pin_open's answer */
} F;

static int key_index(const uint8_t *k, uint16_t klen)
{
	for (int i = 0; i < NKEYS; i++)
		if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
			return i;
	return -1;
}

static void on_routes(struct actor *self, struct actor_msg *m, int put)
{
	struct wire_r r;
	struct wire_w w;
	uint32_t n, nex;
	char ex[4][65];
	const uint8_t *k;
	uint16_t kl;
	uint64_t size;
	int idx[PROTO_MAX_ITEMS];

	if ((put ? proto_route_put_open(&r, m, ex, 4, &nex, &n) : proto_keys_open(&r, m, &n)) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	wire_w_init(&w);
	proto_routes_begin(&w, n);
	for (uint32_t i = 0; i < n; i++) {
		if (put)
			proto_route_put_next(&r, &k, &kl, &size);
		else
			proto_keys_next(&r, &k, &kl);
		idx[i] = key_index(k, kl);
		if (idx[i] < 0 && !put)
			proto_routes_add(&w, KVN_ENOTFOUND, NULL, NULL, 0, 0, 0);
		else
			proto_routes_add(&w, 0, "fake", addr, 7, 0, sizeof vals[0]);
	}
	for (uint32_t i = 0; put && i < n; i++) {
		struct proto_grant g = { .expiry_ms = kvn_wall_ms() + 1000, .size = sizeof vals[0] };
		proto_route_grants_add(&w, &g);
	}
	proto_reply(self, m, &w, NULL, 0);
}

static void on_put(struct actor *self, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint32_t n;
	uint8_t *buf = kvn_xmalloc(m->payload ? evbuffer_get_length(m->payload) + 1 : 1);

	if (proto_items_open(&r, m->meta, m->meta_len, &F.put_flags, &n) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		free(buf);
		return;
	}
	wire_w_init(&w);
	proto_results_begin(&w, n);
	F.put_sum_ok = 1;
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		evbuffer_remove(m->payload, buf, it.size);
		F.put_sum = it.checksum;
		F.put_ttl = it.ttl_ms;
		F.put_size = it.size;
		if (XXH3_64bits(buf, it.size) != it.checksum)
			F.put_sum_ok = 0;
		struct proto_result res = { .status = 0, .gen = 7 };
		proto_results_add(&w, &res);
	}
	free(buf);
	proto_reply(self, m, &w, NULL, 0);
}

static void on_get(struct actor *self, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;
	struct evbuffer *pl = evbuffer_new();

	if (proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0) {
		actor_reply_status(self, m, KVN_EPROTO);
		evbuffer_free(pl);
		return;
	}
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		int k = key_index(it.key, it.klen);
		struct proto_result res = { .status = k < 0 ? KVN_ENOTFOUND : 0 };
		if (k >= 0 && it.gen != 0 && it.gen != 7)
			res.status = KVN_ESTALE;
		if (res.status == 0) {
			res.gen = 7;
			res.size = sizeof vals[k];
			res.checksum = XXH3_64bits(vals[k], sizeof vals[k]) + (F.tamper ? 1 : 0);
			evbuffer_add(pl, vals[k], sizeof vals[k]);
		}
		proto_results_add(&w, &res);
	}
	proto_reply(self, m, &w, pl, 0);
}

/* PIN, UNPIN, EVICT_KEY: what was asked, answered per item ("ck/held":
 * KVN_EHELD). */
static void on_hold(struct actor *self, struct actor_msg *m)
{
	struct wire_r r;
	struct wire_w w;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	F.last_type = m->type;
	if (m->type == WIRE_PIN)
		F.pin_dec = proto_pin_open(&r, m->meta, m->meta_len, &n, &F.pin_ttl);
	if ((m->type == WIRE_PIN && F.pin_dec) ||
	    (m->type != WIRE_PIN && proto_items_open(&r, m->meta, m->meta_len, &flags, &n) != 0)) {
		actor_reply_status(self, m, KVN_EPROTO);
		return;
	}
	F.last_n = n;
	wire_w_init(&w);
	proto_results_begin(&w, n);
	for (uint32_t i = 0; i < n && proto_items_next(&r, &it) == 0; i++) {
		int k = key_index(it.key, it.klen);
		struct proto_result res = { .status = k < 0 ? KVN_ENOTFOUND : k == 3 ? KVN_EHELD : 0, .gen = it.gen };
		F.last_gen = it.gen;
		proto_results_add(&w, &res);
	}
	proto_reply(self, m, &w, NULL, 0);
}

static int fake_handle(struct actor *self, struct actor_msg *m)
{
	if (m->flags & WIRE_F_REPLY)
		return 0;
	switch (m->type) {
	case WIRE_PING: {
		struct actor_msg *r = actor_msg_new(WIRE_PING);
		proto_ping_reply_enc(r, 1, "fake");
		actor_reply(self, m, r, 0);
		break;
	}
	case WIRE_ROUTE_GET: on_routes(self, m, 0); break;
	case WIRE_ROUTE_PUT: on_routes(self, m, 1); break;
	case WIRE_PUT: on_put(self, m); break;
	case WIRE_GET: on_get(self, m); break;
	case WIRE_PIN: case WIRE_UNPIN: case WIRE_EVICT_KEY: on_hold(self, m); break;
	default:
		if (m->type < NET_UP)
			actor_reply_status(self, m, KVN_EPROTO);
	}
	return 0;
}

static const struct actor_ops fake_ops = { .name = "fake", .handle = fake_handle };

static struct kvn_client *ca, *cb; /* ca: defaults (via the master); cb: routed */
static struct auth_keyring kr;
static struct auth_policy pol;

static struct kvn_client *connect_conf(const char *dir, const char *name, const char *extra)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s.conf", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		kvn_fatal("cannot write %s", path);
	fprintf(f, "[auth]\nclient_secret_file = %s/client.secret\n[client]\nmaster = %s\ntimeout = 3s\n%s", dir,
		addr, extra);
	fclose(f);
	struct kvn_options o = { .config_path = path };
	struct kvn_client *c = NULL;
	int rc = kvn_connect(&o, &c);
	if (rc)
		kvn_fatal("connect: %s (%s)", kvn_strerror(rc), kvn_last_detail(NULL));
	return c;
}

static char dir[] = "/tmp/kvn-checksum-XXXXXX";

/* The temp dir holds a secret: it goes when the test ends. */
static void dir_remove(void)
{
	static const char *const files[] = { "a.conf", "b.conf", "client.secret" };
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
	struct actor *fake;
	struct net_listener *l;
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
	for (int i = 0; i < NKEYS; i++)
		for (size_t j = 0; j < sizeof vals[i]; j++)
			vals[i][j] = (uint8_t)(j * 31 + (size_t)i * 7 + 1);
	loop = actor_loop_new("t-fake");
	actor_spawn(loop, &fake_ops, NULL, 4096, &fake);
	net_opts_default(&o);
	if (net_listen(fake, "127.0.0.1:0", &pol, &o, &l, err, sizeof err) != 0)
		kvn_fatal("listen: %s", err);
	snprintf(addr, sizeof addr, "127.0.0.1:%u", net_listener_port(l));
	actor_loop_start(loop);
	ca = connect_conf(dir, "a", "");
	cb = connect_conf(dir, "b", "get_via_master = off\nput_via_master = off\n");
	ok(ca && cb, "two clients of the fake node");
}

static void t_put_sends_sum(void)
{
	fixture();
	struct kvn_put_opts po = { .ttl_ms = 90000 };
	struct kvn_client *cs[2] = { ca, cb };

	for (int i = 0; i < 2; i++) {
		memset(&F, 0, sizeof F);
		is_int(kvn_put(cs[i], keys[0], 4, vals[0], sizeof vals[0], 0), 0, "%s: kvn_put", i ? "routed" : "via");
		ok((F.put_flags & PROTO_ITEMS_SUM) && F.put_sum_ok && F.put_ttl == 0 && F.put_size == sizeof vals[0],
		   "its item carries the value's XXH3-64 and no TTL");
		memset(&F, 0, sizeof F);
		is_int(kvn_put_opts(cs[i], keys[1], 4, vals[1], sizeof vals[1], &po), 0, "kvn_put_opts");
		ok(F.put_sum_ok && F.put_ttl == 90000, "checksum and the TTL asked for");
		is_int(po.gen, 7, "the generation stored comes back");
	}
	struct kvn_item it[2] = { { .key = keys[0], .klen = 4, .val = vals[2], .vlen = 100 },
				  { .key = keys[1], .klen = 4, .val = vals[1], .vlen = 0 } };
	memset(&F, 0, sizeof F);
	is_int(kvn_batch_put_opts(cb, it, 2, &po), 0, "kvn_batch_put_opts");
	ok(F.put_sum_ok && F.put_ttl == 90000, "every item: its checksum (an empty value's too), the TTL");
	memset(&F, 0, sizeof F);
	is_int(kvn_put_async(cb, keys[2], 4, vals[2], sizeof vals[2], 0, NULL, NULL), 0, "kvn_put_async");
	kvn_drain(cb);
	ok(F.put_sum_ok && F.put_size == sizeof vals[2] && (F.put_flags & PROTO_ITEMS_SUM), "its checksum too");
}

static void check_gets(struct kvn_client *c, const char *how)
{
	uint8_t buf[8192];
	size_t vlen = 0;
	void *p = NULL;

	F.tamper = 0;
	uint64_t bad0 = stats(c).corrupt_gets;
	is_int(kvn_get(c, keys[0], 4, buf, sizeof buf, &vlen), 0, "%s: a get whose checksum matches", how);
	ok(vlen == sizeof vals[0] && memcmp(buf, vals[0], vlen) == 0, "the bytes");
	F.tamper = 1;
	uint64_t spec0 = stats(c).spec_sent;
	is_int(kvn_get(c, keys[0], 4, buf, sizeof buf, &vlen), KVN_ECORRUPT, "%s: checksum off: KVN_ECORRUPT", how);
	if (c == cb)
		ok(stats(c).spec_sent > spec0 && stats(c).corrupt_gets == bad0 + 1,
		   "a speculative read of the routed generation: KVN_ECORRUPT stands, counted once");
	is_int(kvn_get_gen(c, keys[1], 4, 7, buf, sizeof buf, &vlen), KVN_ECORRUPT, "kvn_get_gen too");
	is_int(kvn_get_alloc(c, keys[2], 4, &p, &vlen), KVN_ECORRUPT, "kvn_get_alloc too");
	ok(p == NULL, "and it hands over no buffer");
	struct kvn_item it[2] = { { .key = keys[0], .klen = 4 }, { .key = "ck/none", .klen = 7 } };
	is_int(kvn_batch_get(c, it, 2), KVN_ECORRUPT, "a batch get: the first error");
	ok(it[0].status == KVN_ECORRUPT && it[0].val == NULL, "the item is KVN_ECORRUPT, no buffer");
	is_int(it[1].status, KVN_ENOTFOUND, "the other item its own answer");
	is_int(stats(c).corrupt_gets - bad0, 4, "each counted once in corrupt_gets");
	ok(strstr(kvn_last_detail(c), "checksum") != NULL, "the detail says so: %s", kvn_last_detail(c));
	F.tamper = 0;
	is_int(kvn_get(c, keys[0], 4, buf, sizeof buf, &vlen), 0, "good again: read");
}

static void t_get_verifies(void)
{
	fixture();
	check_gets(ca, "via the master");
	check_gets(cb, "routed");
}

static void t_pin_wire(void)
{
	fixture();
	struct kvn_item it[3] = { { .key = keys[0], .klen = 4 }, { .key = keys[3], .klen = 7 },
				  { .key = "ck/none", .klen = 7 } };

	memset(&F, 0, sizeof F);
	is_int(kvn_batch_pin(cb, it, 3, 5000), KVN_EHELD, "pin: the first error");
	ok(F.last_type == WIRE_PIN && F.pin_dec == 0 && F.pin_ttl == 5000 && F.last_n == 2,
	   "one PIN with the two routed keys and the TTL (pin_open %d)", F.pin_dec);
	is_int(F.last_gen, 7, "with the routed generation");
	ok(it[0].status == 0 && it[1].status == KVN_EHELD && it[2].status == KVN_ENOTFOUND,
	   "per item: 0, KVN_EHELD, KVN_ENOTFOUND (the master knows no such key)");
	memset(&F, 0, sizeof F);
	is_int(kvn_batch_unpin(cb, it, 1), 0, "unpin");
	ok(F.last_type == WIRE_UNPIN && F.last_n == 1 && F.last_gen == 7, "an UNPIN with the routed generation");
	memset(&F, 0, sizeof F);
	is_int(kvn_batch_evict(ca, it, 2), KVN_EHELD, "evict");
	ok(F.last_type == WIRE_EVICT_KEY && F.last_n == 2, "an EVICT_KEY");
	is_int(it[1].status, KVN_EHELD, "a held value: KVN_EHELD");
}

static void t_args(void)
{
	fixture();
	struct kvn_item it = { .key = keys[0], .klen = 4 }, nokey = { .klen = 3 }, empty = { .key = "x" };
	struct kvn_put_opts po = { .ttl_ms = PROTO_TTL_MAX_MS + 1 };

	is_int(kvn_batch_pin(NULL, &it, 1, 1000), KVN_EINVAL, "pin: NULL client");
	is_int(kvn_batch_pin(cb, NULL, 1, 1000), KVN_EINVAL, "pin: NULL items");
	is_int(kvn_batch_pin(cb, &it, 1, 0), KVN_EINVAL, "pin: TTL 0");
	F.pin_ttl = 0;
	kvn_batch_pin(cb, &it, 1, UINT64_MAX);
	ok(F.pin_dec == 0 && F.pin_ttl == PROTO_TTL_MAX_MS, "pin: a TTL over 10 years is sent cut to 10 years, not refused");
	is_int(kvn_batch_pin(cb, &it, 0, 1000), 0, "pin: n 0");
	is_int(kvn_batch_unpin(NULL, &it, 1), KVN_EINVAL, "unpin: NULL client");
	is_int(kvn_batch_unpin(cb, NULL, 2), KVN_EINVAL, "unpin: NULL items");
	is_int(kvn_batch_evict(NULL, &it, 1), KVN_EINVAL, "evict: NULL client");
	is_int(kvn_batch_evict(cb, &it, 0), 0, "evict: n 0");
	is_int(kvn_batch_evict(cb, &nokey, 1), KVN_EINVAL, "evict: a NULL key");
	is_int(kvn_batch_unpin(cb, &empty, 1), KVN_EKEYLEN, "unpin: an empty key");
	is_int(kvn_put_opts(cb, keys[0], 4, "x", 1, &po), KVN_EINVAL, "put: a TTL over 10 years");
	po.ttl_ms = 0;
	po.flags = 0x80;
	is_int(kvn_put_opts(cb, keys[0], 4, "x", 1, &po), KVN_EINVAL, "put: an unknown flag");
	is_int(kvn_batch_put_opts(cb, &it, 1, &po), KVN_EINVAL, "batch put: an unknown flag");
	is_int(kvn_put_opts(NULL, keys[0], 4, "x", 1, NULL), KVN_EINVAL, "put: NULL client");
	is_int(kvn_put_opts(cb, keys[0], 4, "x", 1, NULL), 0, "put: NULL options are none");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "put_sends_sum", t_put_sends_sum },
		{ "get_verifies", t_get_verifies },
		{ "pin_wire", t_pin_wire },
		{ "args", t_args },
		{ NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}
