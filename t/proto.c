/* t/proto: the data-path item layouts of proto.h: items with and without
 * checksum and TTL (PROTO_ITEMS_SUM), results with their checksum, PIN's
 * TTL after its items, and the decoders' range checks (unknown flags, a
 * TTL past PROTO_TTL_MAX_MS, truncation, trailing bytes); the STAT reply
 * with the master's figures after its nodes, each range-checked. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "net/proto.h"
#include "tap.h"

static struct wire_w W;

static void t_items_sum(void)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	wire_w_init(&W);
	proto_items_begin(&W, PROTO_PUT_DURABLE | PROTO_ITEMS_SUM, 2);
	proto_items_add_sum(&W, "k1", 2, 5, 100, 0x0123456789abcdefull, 60000);
	proto_items_add_sum(&W, "key2", 4, 6, 0, 0xfeedull, PROTO_TTL_MAX_MS);
	is_int(W.err, 0, "encoded");
	is_int(proto_items_open(&r, W.buf, W.len, &flags, &n), 0, "opens");
	ok(flags == (PROTO_PUT_DURABLE | PROTO_ITEMS_SUM) && n == 2, "flags and count");
	is_int(proto_items_next(&r, &it), 0, "first item");
	ok(it.klen == 2 && memcmp(it.key, "k1", 2) == 0 && it.gen == 5 && it.size == 100 &&
	   it.checksum == 0x0123456789abcdefull && it.ttl_ms == 60000, "key, gen, size, checksum, ttl");
	is_int(proto_items_next(&r, &it), 0, "second item");
	ok(it.klen == 4 && it.gen == 6 && it.checksum == 0xfeedull && it.ttl_ms == PROTO_TTL_MAX_MS,
	   "the longest TTL passes");
	is_int(wire_r_end(&r), 0, "nothing left");

	/* set_gen still finds the gen right after the key */
	proto_items_open(&r, W.buf, W.len, &flags, &n);
	proto_items_next(&r, &it);
	proto_items_set_gen(W.buf, W.len, &it, 77);
	proto_items_open(&r, W.buf, W.len, &flags, &n);
	proto_items_next(&r, &it);
	ok(it.gen == 77 && it.checksum == 0x0123456789abcdefull, "set_gen rewrites the gen only");

	/* grants after items that carry checksums */
	struct proto_grant g = { .expiry_ms = 9, .size = 100 }, g2 = { 0 }, got;
	memset(g.mac, 0xab, sizeof g.mac);
	proto_grants_add(&W, &g);
	proto_grants_add(&W, &g2);
	proto_items_open(&r, W.buf, W.len, &flags, &n);
	proto_items_next(&r, &it);
	proto_items_next(&r, &it);
	struct wire_r gr;
	is_int(proto_grants_open(&r, n, &gr), 1, "the grants follow the items");
	proto_grants_next(&gr, &got);
	ok(got.expiry_ms == 9 && got.size == 100 && got.mac[15] == 0xab, "first grant");
	wire_w_fini(&W);
}

static void t_items_plain(void)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	wire_w_init(&W);
	proto_items_begin(&W, 0, 1);
	proto_items_add(&W, "g", 1, 3, 0);
	is_int(W.len, 1 + 4 + 2 + 1 + 8 + 8, "a GET item stays small: key, gen, size");
	is_int(proto_items_open(&r, W.buf, W.len, &flags, &n), 0, "opens");
	is_int(proto_items_next(&r, &it), 0, "decodes");
	ok(it.gen == 3 && it.checksum == 0 && it.ttl_ms == 0, "no checksum, no TTL");
	is_int(wire_r_end(&r), 0, "nothing left");
	wire_w_fini(&W);
}

static void t_items_range(void)
{
	struct wire_r r;
	struct proto_item it;
	uint8_t flags;
	uint32_t n;

	wire_w_init(&W);
	proto_items_begin(&W, PROTO_ITEMS_SUM, 1);
	proto_items_add_sum(&W, "k", 1, 1, 1, 1, PROTO_TTL_MAX_MS + 1);
	is_int(proto_items_open(&r, W.buf, W.len, &flags, &n), 0, "opens");
	is_int(proto_items_next(&r, &it), KVN_EPROTO, "a TTL past 10 years: KVN_EPROTO");
	wire_w_fini(&W);

	wire_w_init(&W);
	proto_items_begin(&W, 0x10, 1); /* 4 and 8 are the queue flags now */
	proto_items_add(&W, "k", 1, 1, 1);
	is_int(proto_items_open(&r, W.buf, W.len, &flags, &n), KVN_EPROTO, "an unknown flag bit: KVN_EPROTO");
	wire_w_fini(&W);

	/* a SUM item cut anywhere, and a plain item read as SUM */
	wire_w_init(&W);
	proto_items_begin(&W, PROTO_ITEMS_SUM, 1);
	proto_items_add_sum(&W, "key", 3, 1, 1, 2, 3);
	int all = 1;
	for (uint32_t len = 0; len < W.len; len++) {
		int rc = proto_items_open(&r, W.buf, len, &flags, &n);
		if (rc == 0)
			rc = proto_items_next(&r, &it);
		if (rc == 0)
			all = 0;
	}
	ok(all, "every truncation of a SUM item is refused");
	wire_w_fini(&W);
	wire_w_init(&W);
	proto_items_begin(&W, 0, 1);
	proto_items_add(&W, "key", 3, 1, 1);
	W.buf[0] = PROTO_ITEMS_SUM; /* claims 16 more bytes than there are */
	is_int(proto_items_open(&r, W.buf, W.len, &flags, &n), KVN_EPROTO, "a SUM header over plain items: refused");
	wire_w_fini(&W);
}

static void t_results(void)
{
	struct wire_r r;
	struct proto_result a = { .status = 0, .gen = 4, .size = 10, .checksum = 0xdeadbeefcafef00dull }, b;
	struct proto_result e = { .status = KVN_EHELD };
	uint32_t n;

	wire_w_init(&W);
	proto_results_begin(&W, 2);
	proto_results_add(&W, &a);
	proto_results_add(&W, &e);
	is_int(W.len, 4 + 2 * PROTO_RESULT_LEN, "PROTO_RESULT_LEN bytes per result");
	is_int(proto_results_open(&r, W.buf, W.len, &n), 0, "opens");
	is_int(proto_results_next(&r, &b), 0, "first");
	ok(b.gen == 4 && b.size == 10 && b.checksum == 0xdeadbeefcafef00dull, "gen, size and checksum");
	is_int(proto_results_next(&r, &b), 0, "second");
	is_int(b.status, KVN_EHELD, "KVN_EHELD travels");
	is_int(wire_r_end(&r), 0, "nothing left");
	is_int(proto_results_open(&r, W.buf, W.len - 1, &n), KVN_EPROTO, "a short reply: refused");
	wire_w_fini(&W);
}

static void t_pin(void)
{
	struct wire_r r;
	struct proto_item it;
	uint64_t ttl;
	uint32_t n;

	wire_w_init(&W);
	proto_items_begin(&W, 0, 2);
	proto_items_add(&W, "a", 1, 3, 0);
	proto_items_add(&W, "bb", 2, 0, 0);
	proto_pin_end(&W, 60000);
	is_int(proto_pin_open(&r, W.buf, W.len, &n, &ttl), 0, "a PIN opens");
	ok(n == 2 && ttl == 60000, "two items, the TTL");
	is_int(proto_items_next(&r, &it), 0, "reopened at the first item");
	ok(it.klen == 1 && it.gen == 3, "which is the first");
	wire_w_fini(&W);

	uint64_t bad[] = { 0, PROTO_TTL_MAX_MS + 1 };
	for (int i = 0; i < 2; i++) {
		wire_w_init(&W);
		proto_items_begin(&W, 0, 1);
		proto_items_add(&W, "a", 1, 3, 0);
		proto_pin_end(&W, bad[i]);
		is_int(proto_pin_open(&r, W.buf, W.len, &n, &ttl), KVN_EPROTO, "PIN TTL %s: KVN_EPROTO",
		       i ? "past 10 years" : "0");
		wire_w_fini(&W);
	}
	wire_w_init(&W);
	proto_items_begin(&W, 0, 1);
	proto_items_add(&W, "a", 1, 3, 0);
	is_int(proto_pin_open(&r, W.buf, W.len, &n, &ttl), KVN_EPROTO, "a PIN without its TTL: refused");
	proto_pin_end(&W, 5);
	wire_w_u8(&W, 0);
	is_int(proto_pin_open(&r, W.buf, W.len, &n, &ttl), KVN_EPROTO, "a byte after the TTL: refused");
	wire_w_fini(&W);
	wire_w_init(&W);
	proto_items_begin(&W, PROTO_PUT_DURABLE, 1);
	proto_items_add(&W, "a", 1, 3, 0);
	proto_pin_end(&W, 5);
	is_int(proto_pin_open(&r, W.buf, W.len, &n, &ttl), KVN_EPROTO, "a PIN with item flags: refused");
	wire_w_fini(&W);
}

/* A STAT reply of one node and the master's figures sm (node alive as
 * given), decoded: the first error, or 0 with *out read back. */
static int stat_roundtrip(const struct proto_stat_master *sm, uint8_t alive, int extra_byte,
			  struct proto_stat_master *out)
{
	struct proto_stat_node sn = { .alive = alive, .dram_total = 64, .dram_used = 1, .objects = 3 }, got;
	struct actor_msg m;
	struct wire_r r;
	uint64_t objs, bytes;
	uint32_t n;
	int rc;

	snprintf(sn.node_id, sizeof sn.node_id, "n1");
	snprintf(sn.addr, sizeof sn.addr, "127.0.0.1:1");
	wire_w_init(&W);
	proto_stat_begin(&W, 3, 300, 1);
	proto_stat_add(&W, &sn);
	if (sm)
		proto_stat_master_add(&W, sm);
	if (extra_byte)
		wire_w_u8(&W, 0);
	memset(&m, 0, sizeof m);
	m.meta = W.buf;
	m.meta_len = (uint32_t)W.len;
	rc = proto_stat_open(&r, &m, &objs, &bytes, &n);
	if (rc == 0)
		rc = proto_stat_next(&r, &got);
	if (rc == 0)
		rc = proto_stat_master_read(&r, out);
	wire_w_fini(&W);
	return rc;
}

static void t_stat(void)
{
	const struct proto_stat_master good = {
		.uptime_ms = 12345, .version = "1.2.3", .requests = 10, .key_hits = 3, .key_misses = 4,
		.conns_known = 1, .conns_open = 5, .conns_masters = 0, .conns_peers = 2, .conns_clients = 3,
		.conns_handshake = 7,
	};
	struct proto_stat_master sm, out;

	is_int(stat_roundtrip(&good, 1, 0, &out), 0, "a STAT reply with the master's figures decodes");
	ok(out.uptime_ms == 12345 && strcmp(out.version, "1.2.3") == 0 && out.requests == 10 && out.key_hits == 3 &&
	   out.key_misses == 4 && out.conns_known == 1 && out.conns_open == 5 && out.conns_peers == 2 &&
	   out.conns_clients == 3 && out.conns_handshake == 7,
	   "every figure as sent");
	sm = good;
	sm.conns_known = 0;
	sm.conns_open = sm.conns_peers = sm.conns_clients = sm.conns_handshake = 0;
	is_int(stat_roundtrip(&sm, 0, 0, &out), 0, "no listener: counts 0, a node not alive");
	is_int(stat_roundtrip(NULL, 1, 0, &out), KVN_EPROTO, "without the figures (version 4's reply): refused");
	is_int(stat_roundtrip(&good, 1, 1, &out), KVN_EPROTO, "a byte after them: refused");
	is_int(stat_roundtrip(&good, 2, 0, &out), KVN_EPROTO, "alive 2: refused");

	/* one value out of range each (set in the switch below) */
	static const char *const bad[] = {
		"uptime past 1000 years",     "an empty version",          "a control byte in the version",
		"conns_known 2",              "counts without a listener", "peers + clients above open",
		"open above PROTO_CONNS_MAX", "hits + misses past 2^64",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sm = good;
		switch (i) {
		case 0: sm.uptime_ms = PROTO_UPTIME_MAX_MS + 1; break;
		case 1: sm.version[0] = '\0'; break;
		case 2: sm.version[1] = '\n'; break;
		case 3: sm.conns_known = 2; break;
		case 4: sm.conns_known = 0; break;
		case 5: sm.conns_clients = 4; break;
		case 6: sm.conns_open = PROTO_CONNS_MAX + 1; break;
		case 7: sm.key_hits = UINT64_MAX; break;
		}
		is_int(stat_roundtrip(&sm, 1, 0, &out), KVN_EPROTO, "%s: KVN_EPROTO", bad[i]);
	}
	sm = good;
	sm.uptime_ms = PROTO_UPTIME_MAX_MS;
	is_int(stat_roundtrip(&sm, 1, 0, &out), 0, "the longest uptime passes");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "items_sum", t_items_sum },
		{ "items_plain", t_items_plain },
		{ "items_range", t_items_range },
		{ "results", t_results },
		{ "pin", t_pin },
		{ "stat", t_stat },
		{ NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}
