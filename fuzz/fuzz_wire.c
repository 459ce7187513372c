/*
 * fuzz_wire: the frame decoder of a live connection (src/net/wire.c,
 * conn_read.c, conn.c) fed in random chunks.  Each input makes an accepted
 * connection (conn_accept) on one end of a socketpair; the harness plays the
 * other end.  Half the inputs first authenticate with the valid secret and
 * then send frames built from the input (types, flags, status, metadata and
 * payload lengths at their edges: 0, 16 KiB direct-read threshold, the 1 MiB
 * max_payload and one more) tagged under the session, some tags broken on
 * purpose; the rest send the raw input before authentication.  The bytes go
 * out in chunks whose sizes the input picks (1 byte, around the 32-byte
 * header, pages, tens of KiB), with the connection's loop run between
 * chunks.  The receiving actor takes payloads through its sink in a mode the
 * input picks (decline, accept in pieces, refuse, wrong length), and answers
 * some requests so the write side runs too.
 *
 * Invariants: no crash, no sanitizer report, memory bounded; every
 * well-formed, correctly tagged frame sent before the first bad one is
 * delivered, in order, with its type and metadata intact and with a payload
 * of its length (in the sink or buffered); nothing is delivered before
 * authentication; and the connection ends once the other side has closed.
 */
#include "config.h"

#include <event2/buffer.h>

#include "fuzz_net.h"

#define MAX_PAYLOAD (1u << 20)
#define MAX_FRAMES 64

struct owner {
	int mode; /* sink: 0 decline, 1 accept, 2 refuse, 3 wrong length */
	int replies;
	uint32_t n;
	uint64_t got[MAX_FRAMES];
	int up;
};

static struct owner O;
static struct actor_loop *L;
static struct actor *own;
static struct net_counter cnt = { .open = 0, .refs = 1 };
static uint8_t pattern[MAX_PAYLOAD + 1];

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t frame_hash(uint16_t type, const uint8_t *meta, uint32_t mlen, uint64_t plen)
{
	uint64_t h = fnv(0xcbf29ce484222325ull, &type, sizeof type);
	h = fnv(h, &mlen, sizeof mlen);
	h = fnv(h, meta, mlen);
	return fnv(h, &plen, sizeof plen);
}

struct sinkbuf {
	uint8_t *p;
	struct iovec iov[3];
};

static int owner_sink(struct actor *self, actor_id from, const struct actor_frame *h, const uint8_t *meta,
		      struct actor_sink *sink)
{
	if (O.mode == 0 || h->payload_len > MAX_PAYLOAD)
		return 1;
	if (O.mode == 2)
		return KVN_ENOSPC;
	struct sinkbuf *sb = kvn_xcalloc(1, sizeof *sb);
	size_t len = (size_t)h->payload_len - (O.mode == 3 && h->payload_len > 0);
	sb->p = kvn_xmalloc(len ? len : 1);
	/* three pieces: the direct reads cross iovec boundaries */
	size_t a = len / 3, b = len / 2 - a / 2;
	sb->iov[0] = (struct iovec){ sb->p, a };
	sb->iov[1] = (struct iovec){ sb->p + a, b };
	sb->iov[2] = (struct iovec){ sb->p + a + b, len - a - b };
	sink->iov = sb->iov;
	sink->niov = 3;
	sink->cookie = sb;
	return 0;
}

static void sinkbuf_free(struct sinkbuf *sb)
{
	free(sb->p);
	free(sb);
}

static void owner_sink_abort(struct actor *self, void *cookie)
{
	sinkbuf_free(cookie);
}

static int owner_handle(struct actor *self, struct actor_msg *m)
{
	if (m->type == NET_UP) {
		O.up = 1;
		return 0;
	}
	if (m->type == NET_DOWN)
		return 0;
	if (!O.up)
		fz_violation("a %s was delivered before authentication", wire_type_name(m->type));
	if (m->meta_len > WIRE_MAX_META || m->payload_len > MAX_PAYLOAD)
		fz_violation("a frame beyond the limits was delivered: meta %u payload %llu", m->meta_len,
			     (unsigned long long)m->payload_len);
	if (m->payload && evbuffer_get_length(m->payload) != m->payload_len)
		fz_violation("a %llu-byte payload arrived as %zu bytes", (unsigned long long)m->payload_len,
			     evbuffer_get_length(m->payload));
	if (!m->payload && !m->sink_cookie && !m->sink_err && m->payload_len)
		fz_violation("a %llu-byte payload went nowhere", (unsigned long long)m->payload_len);
	if (m->sink_cookie) {
		struct sinkbuf *sb = m->sink_cookie;
		size_t off = 0;
		for (int i = 0; i < 3; i++)
			off += sb->iov[i].iov_len;
		if (memcmp(sb->p, pattern, off) != 0)
			fz_violation("a payload read into the sink differs from what was sent");
		sinkbuf_free(sb);
	}
	if (O.n < MAX_FRAMES)
		O.got[O.n] = frame_hash(m->type, m->meta, m->meta_len, m->payload_len);
	O.n++;
	if (m->corr && !(m->flags & WIRE_F_REPLY) && O.replies) {
		struct actor_msg *r = actor_msg_new(m->type);
		if (O.replies > 1 && m->meta_len) {
			r->meta = kvn_xmalloc(m->meta_len);
			memcpy(r->meta, m->meta, m->meta_len);
			r->meta_len = m->meta_len;
		}
		actor_reply(self, m, r, 0);
	}
	return 0;
}

static const struct actor_ops owner_ops = {
	.name = "fz-owner", .handle = owner_handle, .sink = owner_sink, .sink_abort = owner_sink_abort,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	fn_init_auth();
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (uint8_t)(i * 31 + 7);
	L = actor_loop_new("fz-wire");
	actor_loop_adopt(L);
	if (actor_spawn(L, &owner_ops, &O, 1u << 16, &own) != 0)
		kvn_fatal("actor_spawn");
	return 0;
}

/* The client side of the attach handshake with the valid secret: 0 and the
 * session, or -1. */
static int handshake(int fd, struct fn_buf *in, uint8_t role, struct auth_session **sess)
{
	struct auth_hs hs = { 0 };
	struct auth_hello hello;
	struct auth_challenge ch = { 0 };
	struct auth_proof proof, acc;
	struct wire_hdr h = { .type = WIRE_HELLO };
	struct wire_w w;
	struct wire_r r;
	struct fn_buf out = { 0 };
	uint8_t meta[512];
	int ok = -1;

	if (auth_client_start(&hs, role, "fz-client", &fn_secret, &hello) != 0)
		kvn_fatal("auth_client_start");
	wire_w_init(&w);
	wire_w_u8(&w, hello.role);
	wire_w_str(&w, hello.node_id);
	wire_w_raw(&w, hello.nonce, AUTH_NONCE_LEN);
	wire_w_u8(&w, KVN_INTEGRITY_HEADER);
	h.meta_len = w.len;
	fn_frame(&out, &h, w.buf, w.len, NULL, 0, NULL, NULL, 0);
	wire_w_fini(&w);
	if (fn_write(L, fd, out.p, out.len) != 0 || fn_read_frame(L, fd, in, &h, meta, sizeof meta) != 1 ||
	    h.type != WIRE_CHALLENGE)
		goto out;
	wire_r_init(&r, meta, h.meta_len);
	wire_r_str(&r, ch.server_id, sizeof ch.server_id);
	const uint8_t *nonce = wire_r_raw(&r, AUTH_NONCE_LEN);
	uint8_t mode = wire_r_u8(&r);
	if (wire_r_end(&r) != 0 || !nonce || mode != KVN_INTEGRITY_HEADER)
		fz_violation("the server's CHALLENGE does not decode");
	memcpy(ch.nonce, nonce, AUTH_NONCE_LEN);
	if (auth_client_proof(&hs, &ch, &proof) != 0)
		fz_violation("the server's CHALLENGE is refused by the client state machine");
	out.len = 0;
	h = (struct wire_hdr){ .type = WIRE_PROOF, .meta_len = AUTH_MAC_LEN };
	fn_frame(&out, &h, proof.mac, AUTH_MAC_LEN, NULL, 0, NULL, NULL, 0);
	if (fn_write(L, fd, out.p, out.len) != 0 || fn_read_frame(L, fd, in, &h, meta, sizeof meta) != 1)
		goto out;
	if (h.type != WIRE_ACCEPT || h.meta_len != AUTH_MAC_LEN)
		fz_violation("the valid secret was not accepted: got %s", wire_type_name(h.type));
	memcpy(acc.mac, meta, AUTH_MAC_LEN);
	if (auth_client_finish(&hs, &acc, sess) != 0)
		fz_violation("the server's ACCEPT does not prove the secret");
	ok = 0;
out:
	auth_hs_fini(&hs);
	fn_free(&out);
	return ok;
}

static size_t chunk_size(struct fz *f)
{
	static const size_t edges[] = { 1, 2, 31, 32, 33, 48, 64, 4096, 16384, 16400, 65536, 70000 };
	if (!fz_left(f))
		return SIZE_MAX; /* the input is used up: the rest at once */
	uint8_t c = fz_u8(f);
	if (c < 64)
		return 1 + c;
	if (c < 160)
		return edges[c % 12];
	return 1 + (size_t)fz_u16(f) * 2;
}

static uint64_t payload_len(struct fz *f)
{
	static const uint64_t edges[] = { 0, 1, 15, 16383, 16384, 16385, 65536, 100000, MAX_PAYLOAD,
					  MAX_PAYLOAD + 1ull, 1ull << 32, UINT64_MAX };
	uint8_t c = fz_u8(f);
	if (c < 128)
		return 0;
	if (c < 200)
		return edges[c % 12];
	return fz_u16(f);
}

/* Frames from the input, tagged under sess; *clean gets how many leading
 * frames must be delivered and their hashes. */
static void build_frames(struct fz *f, struct fn_buf *out, struct auth_session *sess, struct auth_tag *t,
			 uint64_t *want, uint32_t *clean)
{
	static const uint16_t types[] = { WIRE_PUT, WIRE_GET, WIRE_EXISTS, WIRE_REMOVE, WIRE_PING,
					  WIRE_EVENTS, WIRE_ROUTE_PUT, WIRE_STAT, WIRE_COMMIT_SLOT,
					  WIRE_HELLO, WIRE_ACCEPT, NET_UP, NET_DOWN, 0, 99, 0xffff };
	int still_clean = 1;

	*clean = 0;
	for (int i = 0; i < MAX_FRAMES && fz_left(f); i++) {
		uint8_t sel = fz_u8(f);
		struct wire_hdr h = { .type = types[sel < 160 ? sel % 9 : sel % 16] };
		const uint8_t *meta;
		uint32_t mlen = (uint32_t)fz_bytes(f, 1024, &meta);
		uint8_t fl = fz_u8(f);
		h.flags = fl < 200 ? 0 : fl < 230 ? WIRE_F_REPLY : fl;
		uint8_t st = fz_u8(f);
		h.status = st < 220 ? 0 : st < 240 ? KVN_EPROTO : (int32_t)fz_u32(f);
		h.corr = fz_u8(f) < 128 ? 0 : 1 + (uint64_t)i;
		h.payload_len = payload_len(f);
		h.meta_len = mlen;
		uint8_t lie = fz_u8(f);
		if (lie >= 250) /* the header says one length, the frame carries another */
			h.meta_len = lie == 255 ? WIRE_MAX_META + 1 : mlen + (lie & 3) + 1;
		uint64_t carried = h.payload_len > MAX_PAYLOAD ? fz_u8(f) : h.payload_len;
		uint8_t corrupt = fz_u8(f) >= 245 ? fz_u8(f) | 1 : 0;
		fn_frame(out, &h, meta, mlen, pattern, carried, sess, t, corrupt);
		int ok = h.type >= WIRE_PING && h.type <= WIRE_TYPE_MAX_WIRE && wire_type_known(h.type) &&
			 h.flags == 0 && h.status == 0 && h.meta_len == mlen && carried == h.payload_len &&
			 !corrupt;
		if (still_clean && ok && *clean < MAX_FRAMES)
			want[(*clean)++] = frame_hash(h.type, meta, mlen, h.payload_len);
		else
			still_clean = 0;
	}
	if (fz_u8(f) == 0xee) { /* trailing garbage after the frames */
		const uint8_t *g;
		size_t n = fz_bytes(f, 64, &g);
		fn_add(out, g, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_opts o;
	struct fz f;
	struct fn_buf in = { 0 }, out = { 0 };
	struct auth_session *sess = NULL;
	struct auth_tag *t = NULL;
	uint64_t want[MAX_FRAMES];
	uint32_t clean = 0;
	int sv[2], cut = 0;

	fz_init(&f, data, size);
	memset(&O, 0, sizeof O);
	uint8_t mode = fz_u8(&f);
	O.mode = (mode >> 1) & 3;
	O.replies = (mode >> 3) & 3;
	net_opts_default(&o);
	o.max_payload = MAX_PAYLOAD;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		kvn_fatal("socketpair: %s", strerror(errno));
	if (!cnt.pre.tqh_last) /* the listener's list of connections not yet authenticated */
		TAILQ_INIT(&cnt.pre);
	if (conn_accept(own, sv[0], "fuzz", &fn_pol, &o, &cnt) != 0)
		kvn_fatal("conn_accept");

	if (mode & 1) {
		uint8_t role = mode & 0x20 ? AUTH_ROLE_CLIENT : AUTH_ROLE_PEER;
		if (handshake(sv[1], &in, role, &sess) != 0)
			fz_violation("the handshake with the valid secret did not complete");
		fn_pump(L);
		if (!O.up)
			fz_violation("authenticated, but the owner got no NET_UP");
		t = auth_tag_new();
		build_frames(&f, &out, sess, t, want, &clean);
	} else {
		/* before authentication: the raw input */
		fn_add(&out, f.p + f.off, f.n - f.off);
		f.off = f.n;
	}

	struct fz cf;
	fz_init(&cf, data, size); /* chunk sizes: the input read again */
	for (size_t off = 0; off < out.len && !cut;) {
		size_t n = chunk_size(&cf);
		if (n > out.len - off)
			n = out.len - off;
		if (fn_write(L, sv[1], out.p + off, n) != 0)
			cut = 1;
		off += n;
		fn_pump(L);
		fn_drain(sv[1], NULL);
	}
	for (int i = 0; i < 8; i++) {
		fn_pump(L);
		fn_drain(sv[1], NULL);
	}
	if (!cut) {
		if (O.n < clean)
			fz_violation("%u well-formed tagged frames sent, %u delivered", clean, O.n);
		for (uint32_t i = 0; i < clean; i++)
			if (O.got[i] != want[i])
				fz_violation("frame %u was delivered changed", i);
	}
	close(sv[1]);
	for (int i = 0; i < 2000 && cnt.open; i++) {
		fn_pump(L);
		if (i > 50)
			usleep(100);
	}
	if (cnt.open)
		fz_violation("the connection is still open after the other side closed");
	auth_tag_free(t);
	auth_session_free(sess);
	fn_free(&in);
	fn_free(&out);
	return 0;
}
