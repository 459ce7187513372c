/* t/wire: frame header codec, every length limit, metadata writer/reader,
 * truncation at every byte, and a random-input fuzz of the decoder. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "net/net.h"
#include "tap.h"

static void sample_hdr(struct wire_hdr *h)
{
	memset(h, 0, sizeof *h);
	h->type = WIRE_PUT;
	h->flags = WIRE_F_REPLY;
	h->meta_len = 1234;
	h->status = KVN_ENOSPC;
	h->payload_len = 5ull << 20;
	h->corr = 0x0102030405060708ull;
}

static void t_hdr_roundtrip(void)
{
	struct wire_hdr h, d;
	uint8_t raw[WIRE_HDR_LEN];

	sample_hdr(&h);
	wire_hdr_encode(&h, raw);
	is_int(raw[0], 'K', "magic byte 0 is 'K' (little-endian KVN1)");
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), 0, "decodes");
	is_int(d.type, WIRE_PUT, "type");
	is_int(d.flags, WIRE_F_REPLY, "flags");
	is_int(d.meta_len, 1234, "meta_len");
	is_int(d.status, KVN_ENOSPC, "negative status survives");
	ok(d.payload_len == (5ull << 20), "payload_len");
	ok(d.corr == 0x0102030405060708ull, "corr");
	is_int(d.version, WIRE_VERSION, "version");
}

static void t_hdr_limits(void)
{
	struct wire_hdr h, d;
	uint8_t raw[WIRE_HDR_LEN];

	sample_hdr(&h);
	wire_hdr_encode(&h, raw);
	raw[0] ^= 1;
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "bad magic");
	wire_hdr_encode(&h, raw);
	raw[4] = WIRE_VERSION + 1;
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EVERSION, "other version");
	h.type = 999;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "unknown type");
	h.type = NET_UP;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "in-process type refused on the wire");
	sample_hdr(&h);
	h.meta_len = WIRE_MAX_META;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), 0, "metadata at the limit accepted");
	h.meta_len = WIRE_MAX_META + 1;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_ETOOBIG, "metadata over 64 KiB refused");
	sample_hdr(&h);
	h.payload_len = (64ull << 20) + 1;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_ETOOBIG, "payload over max refused");
	h.payload_len = UINT64_MAX;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_ETOOBIG, "absurd payload refused");
	sample_hdr(&h);
	h.flags = 0x80;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "unknown flag refused");
	h.flags = WIRE_F_REPLY | WIRE_F_ROUTES;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), 0, "a reply flagged ROUTES accepted");
	is_int(d.flags, WIRE_F_REPLY | WIRE_F_ROUTES, "both flags kept");
	h.flags = WIRE_F_ROUTES;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "ROUTES on a request refused");
	sample_hdr(&h);
	h.status = 5;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "positive status refused");
	h.status = KVN_ERR_MIN - 1;
	wire_hdr_encode(&h, raw);
	is_int(wire_hdr_decode(raw, 64ull << 20, &d), KVN_EPROTO, "unknown error code refused");
}

static void t_meta_roundtrip(void)
{
	struct wire_w w;
	struct wire_r r;
	uint8_t key[1024];
	char s[32];
	uint16_t kl;
	uint32_t bl;

	memset(key, 0, sizeof key);
	key[5] = 7;
	wire_w_init(&w);
	wire_w_u8(&w, 0xab);
	wire_w_u16(&w, 0xbeef);
	wire_w_u32(&w, 0xdeadbeef);
	wire_w_u64(&w, 0x1122334455667788ull);
	wire_w_str(&w, "node-1");
	wire_w_key(&w, key, sizeof key);
	wire_w_bytes(&w, "xyz", 3);
	is_int(w.err, 0, "writer ok");

	wire_r_init(&r, w.buf, w.len);
	is_int(wire_r_u8(&r), 0xab, "u8");
	is_int(wire_r_u16(&r), 0xbeef, "u16");
	ok(wire_r_u32(&r) == 0xdeadbeef, "u32");
	ok(wire_r_u64(&r) == 0x1122334455667788ull, "u64");
	wire_r_str(&r, s, sizeof s);
	is_str(s, "node-1", "str");
	const uint8_t *k = wire_r_key(&r, &kl);
	ok(k && kl == 1024 && memcmp(k, key, 1024) == 0, "1024-byte binary key with NULs");
	const uint8_t *b = wire_r_bytes(&r, 16, &bl);
	ok(b && bl == 3 && memcmp(b, "xyz", 3) == 0, "bytes");
	is_int(wire_r_end(&r), 0, "fully consumed");

	/* every truncation fails cleanly */
	int bad = 0;
	for (uint32_t cut = 0; cut < w.len; cut++) {
		wire_r_init(&r, w.buf, cut);
		wire_r_u8(&r);
		wire_r_u16(&r);
		wire_r_u32(&r);
		wire_r_u64(&r);
		wire_r_str(&r, s, sizeof s);
		wire_r_key(&r, &kl);
		wire_r_bytes(&r, 16, &bl);
		if (wire_r_end(&r) == 0)
			bad++;
	}
	is_int(bad, 0, "every truncated prefix is an error");
	wire_r_init(&r, w.buf, w.len);
	wire_r_u8(&r);
	is_int(wire_r_end(&r), KVN_EPROTO, "trailing bytes are an error");
	wire_w_fini(&w);
}

static void t_meta_limits(void)
{
	struct wire_w w;
	struct wire_r r;
	uint8_t big[2048];
	char s[4];
	uint16_t kl;
	uint32_t bl;

	memset(big, 'a', sizeof big);
	wire_w_init(&w);
	wire_w_key(&w, big, 0);
	is_int(w.err, KVN_EKEYLEN, "empty key refused");
	wire_w_fini(&w);
	wire_w_init(&w);
	wire_w_key(&w, big, 1025);
	is_int(w.err, KVN_EKEYLEN, "1025-byte key refused");
	wire_w_fini(&w);

	wire_w_init(&w);
	for (int i = 0; i < 40; i++)
		wire_w_raw(&w, big, sizeof big);
	is_int(w.err, KVN_ETOOBIG, "metadata beyond 64 KiB refused by the writer");
	ok(w.cap <= WIRE_MAX_META, "writer never allocates past the limit");
	wire_w_fini(&w);

	/* reader side: a key length field of 2000 */
	uint8_t raw[8] = { 0xd0, 0x07, 'a', 'b' };
	wire_r_init(&r, raw, sizeof raw);
	ok(wire_r_key(&r, &kl) == NULL && r.err == KVN_EKEYLEN, "reader refuses an oversized key length");
	uint8_t raw2[8] = { 0xff, 0xff, 0xff, 0x7f };
	wire_r_init(&r, raw2, sizeof raw2);
	ok(wire_r_bytes(&r, 1 << 20, &bl) == NULL && r.err == KVN_EPROTO,
	   "a byte-string length past the buffer is refused");
	uint8_t raw3[8] = { 3, 0, 'a', 0, 'b' };
	wire_r_init(&r, raw3, 5);
	wire_r_str(&r, s, sizeof s);
	is_int(r.err, KVN_EPROTO, "a string with a NUL byte is refused");
	uint8_t raw4[8] = { 5, 0, 'a', 'b', 'c', 'd', 'e' };
	wire_r_init(&r, raw4, 7);
	wire_r_str(&r, s, sizeof s);
	is_int(r.err, KVN_EPROTO, "a string longer than the destination is refused");

	struct actor_msg *m = actor_msg_new(WIRE_PING);
	wire_w_init(&w);
	wire_w_key(&w, big, 0);
	is_int(wire_w_to_msg(&w, m), KVN_EKEYLEN, "a failed writer does not attach");
	ok(m->meta == NULL, "message untouched");
	wire_w_fini(&w);
	actor_msg_free(m);
}

static void t_fuzz(void)
{
	uint64_t x = 88172645463325252ull;
	int codes_ok = 1;
	uint8_t buf[256];
	struct wire_hdr h;

	for (int it = 0; it < 200000; it++) {
		for (size_t i = 0; i < sizeof buf; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (uint8_t)x;
		}
		if (it & 1) { /* mostly-valid headers exercise the deeper checks */
			buf[0] = 'K'; buf[1] = 'V'; buf[2] = 'N'; buf[3] = '1'; buf[4] = WIRE_VERSION;
		}
		int rc = wire_hdr_decode(buf, 1 << 20, &h);
		if (rc != 0 && rc != KVN_EPROTO && rc != KVN_EVERSION && rc != KVN_ETOOBIG)
			codes_ok = 0;
		if (rc == 0 && (h.meta_len > WIRE_MAX_META || h.payload_len > (1 << 20)))
			codes_ok = 0;
		struct wire_r r;
		char s[65];
		uint16_t kl;
		uint32_t bl;
		wire_r_init(&r, buf + 32, (uint32_t)(x % 224));
		wire_r_key(&r, &kl);
		wire_r_str(&r, s, sizeof s);
		wire_r_bytes(&r, 100, &bl);
		wire_r_u64(&r);
		rc = wire_r_end(&r);
		if (rc != 0 && rc != KVN_EPROTO && rc != KVN_EKEYLEN)
			codes_ok = 0;
	}
	ok(codes_ok, "200000 random inputs: only documented error codes, limits always enforced");
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "hdr_roundtrip", t_hdr_roundtrip },
		{ "hdr_limits", t_hdr_limits },
		{ "meta_roundtrip", t_meta_roundtrip },
		{ "meta_limits", t_meta_limits },
		{ "fuzz", t_fuzz },
		{ NULL, NULL },
	};
	return tap_run(tests, argc, argv);
}
