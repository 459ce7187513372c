/*
 * fuzz_handshake: the attach handshake (src/auth/handshake.c and its frames
 * in src/net/attach.c), both sides, over real connections.
 *
 *  - server side: an accepted connection (conn_accept on a socketpair) with
 *    a policy holding the valid secret; the harness is the client and sends
 *    HELLO and PROOF, each either valid (the state machine with the valid
 *    secret), made with a wrong secret, a bit off, or fuzzed bytes, plus
 *    frames out of turn (a second HELLO, data before the proof, a payload on
 *    a handshake frame);
 *  - client side: an outgoing connection (net_connect to a listener of the
 *    harness on 127.0.0.1) with the valid secret; the harness is the server
 *    and answers with a valid or fuzzed CHALLENGE (server ids at their
 *    limits), a valid, wrong or fuzzed ACCEPT, or a REJECT with any status;
 *  - the pure state machine: the auth_* calls with fuzzed messages, in and
 *    out of order.
 *
 * Invariants: no crash, no sanitizer report, memory bounded; a connection
 * becomes authenticated (its owner gets NET_UP) exactly when the other side
 * proved the valid secret for this handshake's transcript: never with a
 * wrong or altered proof, always with a valid one; once up, both sides hold
 * the same session keys (a frame the connection sends verifies under the
 * harness's session, and one the harness sends is delivered); a connection
 * that does not authenticate ends (NET_DOWN / closed) once the harness
 * closes its end.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include "fuzz_net.h"

static struct actor_loop *L;
static struct actor *own;
static struct net_counter cnt = { .open = 0, .refs = 1 };
static int lfd = -1;
static char laddr[64];
static struct auth_secret wrong_secret;

static struct {
	int up, down, got;
	uint16_t got_type;
} O;

static int owner_handle(struct actor *self, struct actor_msg *m)
{
	if (m->type == NET_UP)
		O.up++;
	else if (m->type == NET_DOWN)
		O.down++;
	else {
		if (!O.up)
			fz_violation("a %s was delivered before authentication", wire_type_name(m->type));
		O.got++;
		O.got_type = m->type;
	}
	return 0;
}

static const struct actor_ops owner_ops = { .name = "fz-owner", .handle = owner_handle };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;

	fz_quiet();
	fn_init_auth();
	wrong_secret = fn_secret;
	wrong_secret.key[5] ^= 0x40;
	L = actor_loop_new("fz-hs");
	actor_loop_adopt(L);
	if (actor_spawn(L, &owner_ops, NULL, 1u << 16, &own) != 0)
		kvn_fatal("actor_spawn");
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
		kvn_fatal("listen on 127.0.0.1: %s", strerror(errno));
	snprintf(laddr, sizeof laddr, "127.0.0.1:%u", ntohs(sa.sin_port));
	return 0;
}

/* An id at its limits: valid, empty, 64 and 65 bytes, non-printable. */
static void fuzz_id(struct fz *f, char *out, size_t cap, const char *valid)
{
	uint8_t sel = fz_u8(f);
	if (sel < 200) {
		snprintf(out, cap, "%s", valid);
	} else if (sel < 210) {
		out[0] = '\0';
	} else if (sel < 225) {
		size_t n = sel & 1 ? AUTH_ID_MAX : AUTH_ID_MAX + 1;
		memset(out, 'i', n < cap ? n : cap - 1);
		out[n < cap ? n : cap - 1] = '\0';
	} else {
		const uint8_t *p;
		size_t n = fz_bytes(f, cap - 1, &p);
		memcpy(out, p, n);
		out[n] = '\0';
	}
}

/* A handshake frame: type, meta; sometimes a flag, a status or a payload
 * the handshake does not allow. */
static void hs_frame(struct fz *f, struct fn_buf *out, uint16_t type, const uint8_t *meta, uint32_t mlen,
		     int status)
{
	struct wire_hdr h = { .type = type, .meta_len = mlen, .status = status };
	uint8_t sel = fz_u8(f);
	uint8_t pay[8] = { 0 };
	uint64_t plen = 0;
	if (sel == 250)
		h.flags = WIRE_F_REPLY;
	else if (sel == 251)
		plen = h.payload_len = 8;
	else if (sel == 252)
		h.corr = UINT64_MAX;
	fn_frame(out, &h, meta, mlen, pay, plen, NULL, NULL, 0);
}

/* A MAC: valid (0), from the wrong secret (1), one bit off (2), fuzzed (3). */
static int mac_variant(struct fz *f)
{
	uint8_t sel = fz_u8(f);
	return sel < 150 ? 0 : sel < 180 ? 1 : sel < 210 ? 2 : 3;
}

static void pump_until_end(int *flag, int want)
{
	for (int i = 0; i < 3000 && *flag < want; i++) {
		fn_pump(L);
		if (i > 30) {
			usleep(50);
		}
	}
}

/* ---- the server side: the harness is the attaching client ---- */

static void server_side(struct fz *f)
{
	struct net_opts o;
	struct fn_buf out = { 0 }, in = { 0 };
	struct auth_hs hs = { 0 }, hs_wrong = { 0 };
	struct auth_hello hello;
	struct auth_challenge ch = { 0 };
	struct auth_proof proof, pw, acc;
	struct auth_session *sess = NULL;
	struct wire_hdr h;
	struct wire_w w;
	struct wire_r r;
	uint8_t meta[600];
	int sv[2], proved = 1;

	net_opts_default(&o);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		kvn_fatal("socketpair");
	if (!cnt.pre.tqh_last) /* the listener's list of connections not yet authenticated */
		TAILQ_INIT(&cnt.pre);
	if (conn_accept(own, sv[0], "fuzz", &fn_pol, &o, &cnt) != 0)
		kvn_fatal("conn_accept");

	/* HELLO */
	uint8_t role = fz_u8(f);
	role = role < 120 ? AUTH_ROLE_PEER : role < 240 ? AUTH_ROLE_CLIENT : role % 6;
	char id[80];
	fuzz_id(f, id, sizeof id, "fz-node");
	int id_ok = strlen(id) >= 1 && strlen(id) <= AUTH_ID_MAX;
	for (const char *c = id; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			id_ok = 0;
	int role_ok = role == AUTH_ROLE_PEER || role == AUTH_ROLE_CLIENT;
	/* the transcript the server will see: this role and id, when valid */
	if (auth_client_start(&hs, role_ok ? role : AUTH_ROLE_PEER, id_ok ? id : "fz-node", &fn_secret, &hello) != 0)
		kvn_fatal("auth_client_start with valid arguments failed");
	(void)auth_client_start(&hs_wrong, role_ok ? role : AUTH_ROLE_PEER, id_ok ? id : "fz-node", &wrong_secret,
				&(struct auth_hello){ 0 });
	int hello_ok = id_ok && role_ok, raw_hello = 0;
	wire_w_init(&w);
	if (fz_u8(f) < 240) {
		wire_w_u8(&w, role);
		wire_w_str(&w, id);
		wire_w_raw(&w, hello.nonce, AUTH_NONCE_LEN);
		if (fz_u8(f) >= 245) {
			/* the other integrity mode than the server's (header) */
			wire_w_u8(&w, KVN_INTEGRITY_FRAME);
			hello_ok = 0;
		} else {
			wire_w_u8(&w, KVN_INTEGRITY_HEADER);
		}
		if (fz_u8(f) >= 250) {
			wire_w_u8(&w, 0); /* a trailing byte */
			hello_ok = 0;
		}
	} else {
		const uint8_t *p;
		size_t n = fz_bytes(f, 200, &p);
		wire_w_raw(&w, p, (uint32_t)n);
		hello_ok = 0;
		/* fuzzed bytes may still make a well-formed HELLO (a role, a
		 * printable id, a nonce): the server rightly answers it, over a
		 * transcript this harness does not hold */
		struct wire_r hr;
		char rid[AUTH_ID_MAX + 2] = "";
		wire_r_init(&hr, p, (uint32_t)n);
		uint8_t rrole = wire_r_u8(&hr);
		wire_r_str(&hr, rid, sizeof rid);
		const uint8_t *rn = wire_r_raw(&hr, AUTH_NONCE_LEN);
		uint8_t rmode = wire_r_u8(&hr);
		size_t rl = strlen(rid);
		raw_hello = wire_r_end(&hr) == 0 && rn && rmode == KVN_INTEGRITY_HEADER && rl >= 1 && rl <= AUTH_ID_MAX &&
			    (rrole == AUTH_ROLE_PEER || rrole == AUTH_ROLE_CLIENT);
		for (size_t i = 0; i < rl; i++)
			if ((unsigned char)rid[i] < 0x20 || (unsigned char)rid[i] > 0x7e)
				raw_hello = 0;
	}
	uint8_t first = fz_u8(f);
	uint16_t type = first < 240 ? WIRE_HELLO : first < 248 ? WIRE_PROOF : WIRE_PING;
	if (type != WIRE_HELLO)
		hello_ok = 0;
	size_t before = out.len;
	hs_frame(f, &out, type, w.buf, w.len, 0);
	if (out.len - before != WIRE_HDR_LEN + w.len)
		hello_ok = 0; /* a payload on it (a flag or a corr changes nothing) */
	wire_w_fini(&w);
	if (fn_write(L, sv[1], out.p, out.len) != 0 || fn_read_frame(L, sv[1], &in, &h, meta, sizeof meta) != 1 ||
	    h.type != WIRE_CHALLENGE) {
		if (hello_ok)
			fz_violation("a valid HELLO got no CHALLENGE");
		proved = 0;
		goto end;
	}
	if (!hello_ok && raw_hello && type == WIRE_HELLO) {
		proved = 0; /* a HELLO after all, of a transcript we cannot prove */
		goto end;
	}
	if (!hello_ok)
		fz_violation("a malformed HELLO was answered with a CHALLENGE");
	wire_r_init(&r, meta, h.meta_len);
	wire_r_str(&r, ch.server_id, sizeof ch.server_id);
	const uint8_t *nonce = wire_r_raw(&r, AUTH_NONCE_LEN);
	uint8_t smode = wire_r_u8(&r);
	if (wire_r_end(&r) != 0 || !nonce || smode != KVN_INTEGRITY_HEADER)
		fz_violation("the CHALLENGE does not decode");
	memcpy(ch.nonce, nonce, AUTH_NONCE_LEN);
	if (auth_client_proof(&hs, &ch, &proof) != 0)
		fz_violation("the CHALLENGE is refused by the client state machine");
	(void)auth_client_proof(&hs_wrong, &ch, &pw);

	/* PROOF */
	int v = mac_variant(f);
	struct auth_proof sent = proof;
	if (v == 1)
		sent = pw;
	else if (v == 2)
		sent.mac[fz_u8(f) % AUTH_MAC_LEN] ^= (uint8_t)(1u << (fz_u8(f) % 8));
	else if (v == 3)
		for (int i = 0; i < AUTH_MAC_LEN; i++)
			sent.mac[i] = fz_u8(f);
	proved = memcmp(sent.mac, proof.mac, AUTH_MAC_LEN) == 0;
	out.len = 0;
	uint8_t shape = fz_u8(f);
	if (shape < 230) {
		hs_frame(f, &out, WIRE_PROOF, sent.mac, AUTH_MAC_LEN, 0);
		if (out.len != WIRE_HDR_LEN + AUTH_MAC_LEN)
			proved = 0; /* a payload on it */
	} else if (shape < 240) {
		hs_frame(f, &out, WIRE_PROOF, sent.mac, AUTH_MAC_LEN - 1, 0);
		proved = 0;
	} else {
		hs_frame(f, &out, WIRE_HELLO, meta, 3, 0); /* out of turn */
		proved = 0;
	}
	if (fn_write(L, sv[1], out.p, out.len) != 0 || fn_read_frame(L, sv[1], &in, &h, meta, sizeof meta) != 1 ||
	    h.type != WIRE_ACCEPT) {
		fn_pump(L);
		if (proved)
			fz_violation("a valid PROOF was not accepted");
		if (O.up)
			fz_violation("authenticated without an ACCEPT");
		goto end;
	}
	fn_pump(L);
	if (!proved)
		fz_violation("a PROOF that is not the valid secret's was accepted");
	if (!O.up)
		fz_violation("ACCEPT sent but the owner got no NET_UP");
	memcpy(acc.mac, meta, AUTH_MAC_LEN);
	if (h.meta_len != AUTH_MAC_LEN || auth_client_finish(&hs, &acc, &sess) != 0)
		fz_violation("the server's ACCEPT does not prove the secret");

	/* same keys: a tagged PING is delivered */
	{
		struct auth_tag *t = auth_tag_new();
		struct wire_hdr ph = { .type = WIRE_PING };
		out.len = 0;
		fn_frame(&out, &ph, NULL, 0, NULL, 0, sess, t, 0);
		auth_tag_free(t);
		if (fn_write(L, sv[1], out.p, out.len) == 0) {
			for (int i = 0; i < 50 && !O.got; i++)
				fn_pump(L);
			if (!O.got || O.got_type != WIRE_PING)
				fz_violation("a frame tagged under the handshake's session was not delivered");
		}
	}
end:
	close(sv[1]);
	for (int i = 0; i < 3000 && cnt.open; i++) {
		fn_pump(L);
		if (i > 30)
			usleep(50);
	}
	if (cnt.open)
		fz_violation("the accepted connection is still open after the client closed");
	auth_hs_fini(&hs);
	auth_hs_fini(&hs_wrong);
	auth_session_free(sess);
	fn_free(&out);
	fn_free(&in);
}

/* ---- the client side: the harness is the server ---- */

static int accept_one(void)
{
	for (int i = 0; i < 3000; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		fn_pump(L);
		if (i > 30)
			usleep(50);
	}
	return -1;
}

static void client_side(struct fz *f)
{
	struct net_opts o;
	struct net_creds cr = { .role = fz_u8(f) & 1 ? AUTH_ROLE_CLIENT : AUTH_ROLE_PEER, .node_id = "fz-node",
				.secret = &fn_secret };
	struct fn_buf out = { 0 }, in = { 0 };
	struct auth_hs hs = { 0 };
	struct auth_hello hello = { 0 };
	struct auth_challenge ch;
	struct auth_proof proof, acc;
	struct auth_session *sess = NULL;
	struct wire_hdr h;
	struct wire_w w;
	struct wire_r r;
	uint8_t meta[600];
	actor_id proxy;
	int fd, accepted = 0;

	net_opts_default(&o);
	o.reconnect = 0;
	if (net_connect(own, laddr, &cr, &o, &proxy) != 0)
		kvn_fatal("net_connect %s", laddr);
	/* a message queued before the connection is up: written, tagged, once it is */
	struct actor_msg *q = actor_msg_new(WIRE_PING);
	if (actor_send(proxy, q) != 0)
		actor_msg_free(q);
	fd = accept_one();
	if (fd < 0)
		fz_violation("net_connect never reached the listener");
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);

	/* HELLO from the connection */
	if (fn_read_frame(L, fd, &in, &h, meta, sizeof meta) != 1 || h.type != WIRE_HELLO)
		fz_violation("the connection did not say HELLO");
	wire_r_init(&r, meta, h.meta_len);
	hello.role = wire_r_u8(&r);
	wire_r_str(&r, hello.node_id, sizeof hello.node_id);
	const uint8_t *n = wire_r_raw(&r, AUTH_NONCE_LEN);
	uint8_t cmode = wire_r_u8(&r);
	if (wire_r_end(&r) != 0 || !n || cmode != KVN_INTEGRITY_HEADER)
		fz_violation("the connection's HELLO does not decode");
	memcpy(hello.nonce, n, AUTH_NONCE_LEN);
	if (auth_server_hello(&hs, &fn_pol, &hello, &ch) != 0)
		fz_violation("the connection's HELLO is refused by the server state machine");

	/* CHALLENGE (or something else) */
	uint8_t sel = fz_u8(f);
	int ch_ok = 1;
	wire_w_init(&w);
	if (sel < 200) {
		char sid[80];
		fuzz_id(f, sid, sizeof sid, ch.server_id);
		if (strcmp(sid, ch.server_id) != 0) {
			/* a different server id: the proof covers the id sent */
			ch_ok = 0;
			snprintf(ch.server_id, sizeof ch.server_id, "%s", sid);
		}
		wire_w_str(&w, sid);
		uint8_t shape = fz_u8(f);
		if (shape < 230) {
			wire_w_raw(&w, ch.nonce, AUTH_NONCE_LEN);
			wire_w_u8(&w, KVN_INTEGRITY_HEADER);
		} else if (shape < 240) {
			/* the other integrity mode: the client must refuse */
			wire_w_raw(&w, ch.nonce, AUTH_NONCE_LEN);
			wire_w_u8(&w, KVN_INTEGRITY_FRAME);
			ch_ok = -1;
		} else {
			wire_w_raw(&w, ch.nonce, AUTH_NONCE_LEN - 1);
			ch_ok = -1;
		}
		hs_frame(f, &out, WIRE_CHALLENGE, w.buf, w.len, 0);
	} else if (sel < 230) {
		uint8_t st = fz_u8(f);
		int32_t status = st < 128 ? KVN_EAUTH : st < 200 ? 0 : (int32_t)fz_u32(f);
		hs_frame(f, &out, WIRE_REJECT, NULL, 0, status);
		ch_ok = -1;
	} else {
		const uint8_t *p;
		size_t k = fz_bytes(f, 128, &p);
		hs_frame(f, &out, sel < 240 ? WIRE_ACCEPT : WIRE_CHALLENGE, p, (uint32_t)k, 0);
		ch_ok = -1;
		if (sel >= 240) {
			/* fuzzed bytes may still make a well-formed CHALLENGE: then
			 * the client answers it, over the transcript it names */
			struct auth_challenge fc = { 0 };
			wire_r_init(&r, p, (uint32_t)k);
			wire_r_str(&r, fc.server_id, sizeof fc.server_id);
			const uint8_t *fn = wire_r_raw(&r, AUTH_NONCE_LEN);
			uint8_t fmode = wire_r_u8(&r);
			size_t idn = strlen(fc.server_id);
			int printable = idn >= 1 && idn <= AUTH_ID_MAX;
			for (size_t i = 0; i < idn; i++)
				if ((unsigned char)fc.server_id[i] < 0x20 || (unsigned char)fc.server_id[i] > 0x7e)
					printable = 0;
			if (wire_r_end(&r) == 0 && fn && printable && fmode == KVN_INTEGRITY_HEADER)
				ch_ok = strcmp(fc.server_id, ch.server_id) == 0 &&
					memcmp(fn, ch.nonce, AUTH_NONCE_LEN) == 0;
		}
	}
	wire_w_fini(&w);
	if (fn_write(L, fd, out.p, out.len) != 0)
		goto end;
	if (fn_read_frame(L, fd, &in, &h, meta, sizeof meta) != 1 || h.type != WIRE_PROOF) {
		if (ch_ok == 1 && out.len == WIRE_HDR_LEN + 2 + strlen(ch.server_id) + AUTH_NONCE_LEN + 1)
			fz_violation("a valid CHALLENGE got no PROOF");
		goto end;
	}
	if (ch_ok < 0)
		fz_violation("a malformed CHALLENGE or a REJECT was answered with a PROOF");
	if (h.meta_len != AUTH_MAC_LEN)
		fz_violation("the PROOF has %u bytes", h.meta_len);
	memcpy(proof.mac, meta, AUTH_MAC_LEN);
	/* the proof covers the server id the harness sent, so the state machine
	 * (which knows the policy's id) accepts it only when that id was sent */
	int verify = auth_server_verify(&hs, &proof, &acc, &sess);
	if ((verify == 0) != (ch_ok == 1))
		fz_violation("the client's proof %s the valid secret's for the transcript",
			     verify == 0 ? "matches, though the challenge was altered," : "is not");

	/* ACCEPT */
	int v = mac_variant(f);
	struct auth_proof sent = acc;
	if (verify != 0)
		v = v ? v : 3; /* no valid ACCEPT exists for this transcript */
	if (v == 1)
		sent.mac[0] ^= 0x80;
	else if (v == 2)
		sent.mac[fz_u8(f) % AUTH_MAC_LEN] ^= (uint8_t)(1u << (fz_u8(f) % 8));
	else if (v == 3)
		for (int i = 0; i < AUTH_MAC_LEN; i++)
			sent.mac[i] = fz_u8(f);
	accepted = verify == 0 && memcmp(sent.mac, acc.mac, AUTH_MAC_LEN) == 0;
	out.len = 0;
	hs_frame(f, &out, WIRE_ACCEPT, sent.mac, AUTH_MAC_LEN, 0);
	if (out.len != WIRE_HDR_LEN + AUTH_MAC_LEN)
		accepted = 0; /* a payload on it */
	if (fn_write(L, fd, out.p, out.len) != 0)
		goto end;
	for (int i = 0; i < 50 && !O.up && !O.down; i++)
		fn_pump(L);
	if (O.up && !accepted)
		fz_violation("the client went up on an ACCEPT that does not prove the secret");
	if (accepted && !O.up)
		fz_violation("the client did not go up on a valid ACCEPT");
	if (accepted) {
		/* the queued PING arrives tagged under the same session */
		struct fn_buf raw = { 0 };
		for (int i = 0; i < 400 && raw.len < in.len + WIRE_HDR_LEN + WIRE_TAG_LEN; i++) {
			fn_pump(L);
			fn_drain(fd, &raw);
			if (i > 20)
				usleep(50);
		}
		fn_add(&in, raw.p, raw.len);
		fn_free(&raw);
		if (in.len < WIRE_HDR_LEN + WIRE_TAG_LEN)
			fz_violation("the queued message was not sent once the connection was up");
		struct wire_hdr ph;
		if (wire_hdr_decode(in.p, 1 << 20, &ph) != 0 || ph.type != WIRE_PING || ph.meta_len || ph.payload_len)
			fz_violation("the queued message arrived as something else");
		struct auth_tag *t = auth_tag_new();
		if (auth_tag_begin(t, sess, AUTH_RECV) != 0)
			kvn_fatal("auth_tag_begin");
		auth_tag_update(t, in.p, WIRE_HDR_LEN);
		if (auth_tag_verify(t, in.p + WIRE_HDR_LEN) != 0)
			fz_violation("the first tagged frame does not verify under the handshake's session");
		auth_tag_free(t);
	}
end:
	close(fd);
	pump_until_end(&O.down, 1);
	if (!O.down)
		fz_violation("the outgoing connection did not end after the server closed");
	auth_hs_fini(&hs);
	auth_session_free(sess);
	fn_free(&out);
	fn_free(&in);
}

/* ---- the state machine alone, messages fuzzed, calls in any order ---- */

static void machine(struct fz *f)
{
	struct auth_hs c = { 0 }, s = { 0 };
	struct auth_hello hello = { 0 };
	struct auth_challenge ch = { 0 };
	struct auth_proof p = { { 0 } }, a = { { 0 } };
	struct auth_session *cs = NULL, *ss = NULL;

	for (int i = 0; i < 8 && fz_left(f); i++) {
		uint8_t op = fz_u8(f);
		switch (op % 6) {
		case 0:
			(void)auth_client_start(&c, fz_u8(f) % 5, fz_u8(f) < 200 ? "fz-node" : "", &fn_secret, &hello);
			break;
		case 1:
			if (fz_u8(f) < 128)
				fuzz_id(f, hello.node_id, sizeof hello.node_id, "fz-node");
			hello.role = fz_u8(f) % 5;
			(void)auth_server_hello(&s, &fn_pol, &hello, &ch);
			break;
		case 2:
			if (fz_u8(f) < 64)
				fuzz_id(f, ch.server_id, sizeof ch.server_id, "fz-server");
			(void)auth_client_proof(&c, &ch, &p);
			break;
		case 3:
			if (fz_u8(f) < 64)
				p.mac[fz_u8(f) % AUTH_MAC_LEN] ^= 1;
			auth_session_free(ss);
			ss = NULL;
			(void)auth_server_verify(&s, &p, &a, &ss);
			break;
		case 4:
			auth_session_free(cs);
			cs = NULL;
			(void)auth_client_finish(&c, &a, &cs);
			break;
		default:
			memset(op & 0x80 ? &c : &s, 0, sizeof c);
			break;
		}
	}
	if (cs && ss) {
		/* both finished: the same keys, or one of them must have failed */
		struct auth_tag *t1 = auth_tag_new(), *t2 = auth_tag_new();
		uint8_t tag[WIRE_TAG_LEN];
		auth_tag_begin(t1, cs, AUTH_SEND);
		auth_tag_update(t1, "x", 1);
		auth_tag_final(t1, tag);
		auth_tag_begin(t2, ss, AUTH_RECV);
		auth_tag_update(t2, "x", 1);
		if (auth_tag_verify(t2, tag) != 0)
			fz_violation("both sides finished the handshake with different session keys");
		auth_tag_free(t1);
		auth_tag_free(t2);
	}
	auth_session_free(cs);
	auth_session_free(ss);
	auth_hs_fini(&c);
	auth_hs_fini(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;
	fz_init(&f, data, size);
	memset(&O, 0, sizeof O);
	uint8_t mode = fz_u8(&f);
	if (mode < 112)
		server_side(&f);
	else if (mode < 224)
		client_side(&f);
	else
		machine(&f);
	return 0;
}
