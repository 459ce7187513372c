/*
 * t/auth: the mutual attach handshake and frame tags (tamper, replay,
 * reorder, chunking), with known-answer checks computed independently
 * through EVP_Q_mac.  Secret files are in t/auth_secret.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tap.h"
#include "auth_common.h"

#include "auth/auth.h"
#include "base/base.h"

static void t_role_names(void)
{
	is_str(auth_role_name(AUTH_ROLE_PEER), "peer", "peer");
	is_str(auth_role_name(AUTH_ROLE_CLIENT), "client", "client");
	is_str(auth_role_name(AUTH_ROLE_MASTER), "master", "master");
	is_str(auth_role_name(AUTH_ROLE_INTERNAL), "internal", "internal");
	is_str(auth_role_name(42), "unknown", "out of range");
}

/* ---- handshake ------------------------------------------------------------- */

/* Run a full handshake.  Returns the first error; *cs / *ss get the sessions
 * on success.  If fake_accept is set, it replaces the server's ACCEPT. */
static int run_hs(const struct auth_policy *pol, int role, const struct auth_secret *k,
		  struct auth_session **cs, struct auth_session **ss, int *server_rc)
{
	struct auth_hs c = { 0 }, s = { 0 };
	struct auth_hello hello;
	struct auth_challenge ch;
	struct auth_proof proof, accept;
	int rc;

	*cs = *ss = NULL;
	*server_rc = 0;
	rc = auth_client_start(&c, role, "node-a", k, &hello);
	if (!rc)
		rc = *server_rc = auth_server_hello(&s, pol, &hello, &ch);
	if (!rc)
		rc = auth_client_proof(&c, &ch, &proof);
	if (!rc)
		rc = *server_rc = auth_server_verify(&s, &proof, &accept, ss);
	if (!rc)
		rc = auth_client_finish(&c, &accept, cs);
	auth_hs_fini(&c);
	auth_hs_fini(&s);
	return rc;
}

/* Tag a frame on `from` (send side), verify it on `to` (recv side). */
static int frame_roundtrip(struct auth_session *from, struct auth_session *to, const char *msg)
{
	struct auth_tag *t = auth_tag_new();
	uint8_t tag[AUTH_TAG_LEN];
	int rc;

	rc = auth_tag_begin(t, from, AUTH_SEND);
	auth_tag_update(t, msg, strlen(msg));
	if (!rc)
		rc = auth_tag_final(t, tag);
	if (!rc)
		rc = auth_tag_begin(t, to, AUTH_RECV);
	auth_tag_update(t, msg, strlen(msg));
	if (!rc)
		rc = auth_tag_verify(t, tag);
	auth_tag_free(t);
	return rc;
}

struct fixture {
	struct auth_keyring peer, client;
	struct auth_policy pol;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof *f);
	pattern_secret(&f->peer.s[0], 100, 32);
	f->peer.n = 1;
	pattern_secret(&f->client.s[0], 200, 48);
	f->client.n = 1;
	f->pol.peer = &f->peer;
	f->pol.client = &f->client;
	snprintf(f->pol.server_id, sizeof f->pol.server_id, "master-1");
}

static void t_hs_success(void)
{
	struct fixture f;
	static const int roles[] = { AUTH_ROLE_PEER, AUTH_ROLE_CLIENT };

	fixture_init(&f);
	for (int i = 0; i < 2; i++) {
		const struct auth_secret *k = roles[i] == AUTH_ROLE_PEER ? &f.peer.s[0] : &f.client.s[0];
		const char *rn = auth_role_name(roles[i]);
		struct auth_session *cs, *ss;
		int src;

		is_int(run_hs(&f.pol, roles[i], k, &cs, &ss, &src), 0, "%s attaches", rn);
		ok(cs && ss, "%s: both sides have a session", rn);
		is_int(frame_roundtrip(cs, ss, "c2s frame 0"), 0, "%s: client -> server verifies", rn);
		is_int(frame_roundtrip(ss, cs, "s2c frame 0"), 0, "%s: server -> client verifies", rn);
		is_int(frame_roundtrip(cs, ss, "c2s frame 1"), 0, "%s: and the next c2s frame", rn);
		is_int(frame_roundtrip(ss, cs, "s2c frame 1"), 0, "%s: and the next s2c frame", rn);
		auth_session_free(cs);
		auth_session_free(ss);

		/* the two directions use different keys: a client frame reflected
		 * back to the client does not verify */
		is_int(run_hs(&f.pol, roles[i], k, &cs, &ss, &src), 0, "%s attaches again", rn);
		is_int(frame_roundtrip(cs, cs, "reflected"), KVN_EAUTH,
		       "%s: c2s frame fails on the client's own recv side", rn);
		auth_session_free(cs);
		auth_session_free(ss);
	}

	/* two handshakes with the same secret get different session keys */
	struct auth_session *c1, *s1, *c2, *s2;
	int src;
	run_hs(&f.pol, AUTH_ROLE_PEER, &f.peer.s[0], &c1, &s1, &src);
	run_hs(&f.pol, AUTH_ROLE_PEER, &f.peer.s[0], &c2, &s2, &src);
	ok(c1 && s2, "two sessions");
	is_int(frame_roundtrip(c1, s2, "cross"), KVN_EAUTH,
	       "a frame from one connection fails on another");
	auth_session_free(c1);
	auth_session_free(s1);
	auth_session_free(c2);
	auth_session_free(s2);
}

/* The client proof, recomputed from the encoding documented in auth.h. */
static void t_hs_known_answer(void)
{
	struct fixture f;
	struct auth_hs c = { 0 }, s = { 0 };
	struct auth_hello hello;
	struct auth_challenge ch;
	struct auth_proof proof, accept;
	struct auth_session *cs = NULL, *ss = NULL;
	uint8_t msg[512], want[EVP_MAX_MD_SIZE];
	size_t n = 0, wl = 0;

	fixture_init(&f);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello), 0, "hello");
	is_int(hello.role, AUTH_ROLE_PEER, "HELLO carries the role");
	is_str(hello.node_id, "node-a", "and the node id");
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), 0, "challenge");
	is_str(ch.server_id, "master-1", "CHALLENGE carries the server id");
	ok(memcmp(hello.nonce, ch.nonce, AUTH_NONCE_LEN) != 0, "the two nonces differ");
	is_int(auth_client_proof(&c, &ch, &proof), 0, "proof");

	msg[n++] = 20;
	memcpy(msg + n, "kvnode-attach-client", 20), n += 20;
	msg[n++] = AUTH_ROLE_PEER;
	msg[n++] = 6;
	memcpy(msg + n, "node-a", 6), n += 6;
	msg[n++] = 8;
	memcpy(msg + n, "master-1", 8), n += 8;
	memcpy(msg + n, hello.nonce, AUTH_NONCE_LEN), n += AUTH_NONCE_LEN;
	memcpy(msg + n, ch.nonce, AUTH_NONCE_LEN), n += AUTH_NONCE_LEN;
	ok(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, f.peer.s[0].key, f.peer.s[0].len, msg, n,
		     want, sizeof want, &wl) != NULL && wl == AUTH_MAC_LEN,
	   "independent HMAC-SHA256");
	is_mem(proof.mac, want, AUTH_MAC_LEN, "the proof matches the documented encoding");

	memcpy(msg + 1, "kvnode-attach-server", 20);
	EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, f.peer.s[0].key, f.peer.s[0].len, msg, n,
		  want, sizeof want, &wl);
	is_int(auth_server_verify(&s, &proof, &accept, &ss), 0, "verify");
	is_mem(accept.mac, want, AUTH_MAC_LEN, "the ACCEPT matches the documented encoding");
	is_int(auth_client_finish(&c, &accept, &cs), 0, "finish");
	auth_session_free(cs);
	auth_session_free(ss);
	auth_hs_fini(&c);
	auth_hs_fini(&s);
}

static void t_hs_wrong_secret(void)
{
	struct fixture f;
	struct auth_secret wrong;
	struct auth_session *cs, *ss;
	int src;

	fixture_init(&f);
	pattern_secret(&wrong, 123, 32);
	is_int(run_hs(&f.pol, AUTH_ROLE_CLIENT, &wrong, &cs, &ss, &src), KVN_EAUTH,
	       "a wrong client secret fails");
	is_int(src, KVN_EAUTH, "at the server");
	ok(!cs && !ss, "no session on either side");
	/* one byte off */
	wrong = f.client.s[0];
	wrong.key[wrong.len - 1] ^= 1;
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &wrong, &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "a secret differing in its last bit fails");
	/* a prefix of the right secret */
	wrong = f.client.s[0];
	wrong.len = 32;
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &wrong, &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "a prefix of the right secret fails");
}

static void t_hs_role_scope(void)
{
	struct fixture f;
	struct auth_session *cs, *ss;
	int src;

	fixture_init(&f);
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &f.peer.s[0], &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "a peer-only secret cannot attach as a client");
	run_hs(&f.pol, AUTH_ROLE_PEER, &f.client.s[0], &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "a client-only secret cannot attach as a peer");

	/* the same secret in both files works for both */
	f.client.s[1] = f.peer.s[0];
	f.client.n = 2;
	is_int(run_hs(&f.pol, AUTH_ROLE_CLIENT, &f.peer.s[0], &cs, &ss, &src), 0,
	       "a secret listed in both files attaches as a client");
	auth_session_free(cs);
	auth_session_free(ss);

	f.pol.client = NULL;
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &f.client.s[0], &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "no client keyring: clients refused at HELLO");
	struct auth_keyring empty = { .n = 0 };
	f.pol.client = &empty;
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &f.client.s[0], &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "an empty client keyring: refused");

	/* roles that never attach over the wire */
	static const uint8_t bad_roles[] = { AUTH_ROLE_NONE, AUTH_ROLE_MASTER, AUTH_ROLE_INTERNAL, 99 };
	fixture_init(&f);
	for (size_t i = 0; i < sizeof bad_roles; i++) {
		struct auth_hs s = { 0 };
		struct auth_hello hello = { .role = bad_roles[i], .node_id = "x" };
		struct auth_challenge ch;
		is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_EAUTH,
		       "server refuses HELLO role %u", bad_roles[i]);
		struct auth_hs c = { 0 };
		is_int(auth_client_start(&c, bad_roles[i], "x", &f.peer.s[0], &hello), KVN_EINVAL,
		       "client refuses to start as role %u", bad_roles[i]);
	}
}

static void t_hs_rotation(void)
{
	struct fixture f;
	struct auth_secret k_old, k_new, k_other;
	struct auth_session *cs, *ss;
	int src;

	fixture_init(&f);
	pattern_secret(&k_new, 30, 32);
	pattern_secret(&k_old, 31, 40);
	pattern_secret(&k_other, 32, 32);
	f.client.s[0] = k_new;
	f.client.s[1] = k_old;
	f.client.n = 2;
	is_int(run_hs(&f.pol, AUTH_ROLE_CLIENT, &k_new, &cs, &ss, &src), 0,
	       "server {new, old} accepts a client with new");
	is_int(frame_roundtrip(cs, ss, "x"), 0, "and the session works");
	auth_session_free(cs);
	auth_session_free(ss);
	is_int(run_hs(&f.pol, AUTH_ROLE_CLIENT, &k_old, &cs, &ss, &src), 0,
	       "server {new, old} accepts a client with old");
	is_int(frame_roundtrip(cs, ss, "x"), 0, "and derives the session from the matching one");
	is_int(frame_roundtrip(ss, cs, "y"), 0, "both ways");
	auth_session_free(cs);
	auth_session_free(ss);
	run_hs(&f.pol, AUTH_ROLE_CLIENT, &k_other, &cs, &ss, &src);
	is_int(src, KVN_EAUTH, "a third secret is refused");

	/* the match is found whatever its position in a full keyring */
	for (int i = 0; i < AUTH_MAX_SECRETS; i++)
		pattern_secret(&f.client.s[i], 150 + i, 32);
	f.client.n = AUTH_MAX_SECRETS;
	int all = 1;
	for (int i = 0; i < AUTH_MAX_SECRETS; i++) {
		if (run_hs(&f.pol, AUTH_ROLE_CLIENT, &f.client.s[i], &cs, &ss, &src) != 0 ||
		    frame_roundtrip(cs, ss, "z") != 0)
			all = 0;
		auth_session_free(cs);
		auth_session_free(ss);
	}
	ok(all, "each of %d accepted secrets attaches with a working session", AUTH_MAX_SECRETS);
}

static void t_hs_mutual(void)
{
	struct fixture f;
	struct auth_hello hello;
	struct auth_challenge ch;
	struct auth_proof proof, accept;
	struct auth_session *cs = NULL, *ss = NULL;

	fixture_init(&f);
	/* 1: random ACCEPT */
	struct auth_hs c = { 0 }, s = { 0 };
	auth_client_start(&c, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello);
	memset(&ch, 0, sizeof ch);
	snprintf(ch.server_id, sizeof ch.server_id, "impostor");
	kvn_random(ch.nonce, sizeof ch.nonce);
	is_int(auth_client_proof(&c, &ch, &proof), 0, "client answers an impostor's challenge");
	kvn_random(accept.mac, sizeof accept.mac);
	is_int(auth_client_finish(&c, &accept, &cs), KVN_EAUTH, "a random ACCEPT is rejected");
	ok(cs == NULL, "no session");
	is_int(auth_client_finish(&c, &accept, &cs), KVN_ESTATE, "and the handshake is dead");
	auth_hs_fini(&c);

	/* 2: the impostor reflects the client's own proof */
	memset(&c, 0, sizeof c);
	auth_client_start(&c, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello);
	auth_client_proof(&c, &ch, &proof);
	is_int(auth_client_finish(&c, &proof, &cs), KVN_EAUTH,
	       "the client's own proof reflected as ACCEPT is rejected");
	auth_hs_fini(&c);

	/* 3: an impostor server whose keyring lacks K cannot verify, so cannot
	 * produce an ACCEPT; replaying a genuine server's ACCEPT from another
	 * handshake does not help it */
	struct fixture imp;
	fixture_init(&imp);
	pattern_secret(&imp.peer.s[0], 222, 32);
	memset(&c, 0, sizeof c);
	memset(&s, 0, sizeof s);
	auth_client_start(&c, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello);
	auth_server_hello(&s, &imp.pol, &hello, &ch);
	auth_client_proof(&c, &ch, &proof);
	is_int(auth_server_verify(&s, &proof, &accept, &ss), KVN_EAUTH,
	       "a server without K refuses the proof");
	struct auth_hs c2 = { 0 }, s2 = { 0 };
	struct auth_hello hello2;
	struct auth_challenge ch2;
	struct auth_proof proof2, accept2;
	auth_client_start(&c2, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello2);
	auth_server_hello(&s2, &f.pol, &hello2, &ch2);
	auth_client_proof(&c2, &ch2, &proof2);
	is_int(auth_server_verify(&s2, &proof2, &accept2, &ss), 0, "a genuine handshake elsewhere");
	auth_session_free(ss);
	is_int(auth_client_finish(&c, &accept2, &cs), KVN_EAUTH,
	       "its ACCEPT replayed to this client is rejected");
	auth_hs_fini(&c);
	auth_hs_fini(&s);
	auth_hs_fini(&c2);
	auth_hs_fini(&s2);

	/* 4: the server_id is bound: a challenge relayed with another id */
	memset(&c, 0, sizeof c);
	memset(&s, 0, sizeof s);
	auth_client_start(&c, AUTH_ROLE_PEER, "node-a", &f.peer.s[0], &hello);
	auth_server_hello(&s, &f.pol, &hello, &ch);
	snprintf(ch.server_id, sizeof ch.server_id, "master-2");
	auth_client_proof(&c, &ch, &proof);
	is_int(auth_server_verify(&s, &proof, &accept, &ss), KVN_EAUTH,
	       "a proof made for another server id is refused");
	auth_hs_fini(&c);
	auth_hs_fini(&s);
}

static void t_hs_order(void)
{
	struct fixture f;
	struct auth_hs c = { 0 }, s = { 0 };
	struct auth_hello hello;
	struct auth_challenge ch = { .server_id = "m" };
	struct auth_proof proof = { { 0 } }, accept;
	struct auth_session *out = NULL;

	fixture_init(&f);
	is_int(auth_client_proof(&c, &ch, &proof), KVN_ESTATE, "proof before start");
	memset(&c, 0, sizeof c);
	is_int(auth_client_finish(&c, &proof, &out), KVN_ESTATE, "finish before start");
	is_int(auth_server_verify(&s, &proof, &accept, &out), KVN_ESTATE, "verify before hello");

	memset(&c, 0, sizeof c);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello), 0, "start");
	is_int(auth_client_finish(&c, &proof, &out), KVN_ESTATE, "finish before proof");
	is_int(auth_client_proof(&c, &ch, &proof), KVN_ESTATE, "after an error the handshake is dead");

	memset(&c, 0, sizeof c);
	auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello), KVN_ESTATE,
	       "start twice");
	memset(&c, 0, sizeof c);
	auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello);
	is_int(auth_server_hello(&c, &f.pol, &hello, &ch), KVN_ESTATE,
	       "a server step on a client handshake");

	memset(&s, 0, sizeof s);
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), 0, "server hello");
	is_int(auth_client_proof(&s, &ch, &proof), KVN_ESTATE, "a client step on a server handshake");
	memset(&s, 0, sizeof s);
	auth_server_hello(&s, &f.pol, &hello, &ch);
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_ESTATE, "hello twice");

	/* completed handshakes accept no further step */
	memset(&c, 0, sizeof c);
	memset(&s, 0, sizeof s);
	struct auth_session *cs, *ss;
	auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello);
	auth_server_hello(&s, &f.pol, &hello, &ch);
	auth_client_proof(&c, &ch, &proof);
	auth_server_verify(&s, &proof, &accept, &ss);
	is_int(auth_client_finish(&c, &accept, &cs), 0, "a full handshake");
	is_int(auth_client_finish(&c, &accept, &out), KVN_ESTATE, "finish again");
	is_int(auth_server_verify(&s, &proof, &accept, &out), KVN_ESTATE, "verify again");
	ok(out == NULL, "no session from a refused step");
	auth_session_free(cs);
	auth_session_free(ss);
	auth_hs_fini(&c);
	auth_hs_fini(&s);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello), 0,
	       "after fini the struct is fresh again");
	auth_hs_fini(&c);
}

static void t_hs_ids(void)
{
	struct fixture f;
	struct auth_hello hello;
	struct auth_challenge ch;
	struct auth_proof proof;
	char id64[AUTH_ID_MAX + 1], id65[AUTH_ID_MAX + 2];

	fixture_init(&f);
	memset(id64, 'a', AUTH_ID_MAX);
	id64[AUTH_ID_MAX] = '\0';
	memset(id65, 'a', AUTH_ID_MAX + 1);
	id65[AUTH_ID_MAX + 1] = '\0';
	struct {
		const char *id;
		int want;
	} cases[] = { { "", KVN_EINVAL }, { id65, KVN_EINVAL }, { "tab\there", KVN_EINVAL },
		      { "del\x7f", KVN_EINVAL }, { "hi\xc3\xa9", KVN_EINVAL }, { id64, 0 },
		      { "a b~", 0 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct auth_hs c = { 0 };
		is_int(auth_client_start(&c, AUTH_ROLE_PEER, cases[i].id, &f.peer.s[0], &hello),
		       cases[i].want, "client node_id case %zu", i);
		auth_hs_fini(&c);
	}

	/* the server checks what arrives: an unterminated node_id */
	struct auth_hs c = { 0 }, s = { 0 };
	auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello);
	memset(hello.node_id, 'a', sizeof hello.node_id);
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_EINVAL,
	       "server refuses an unterminated node_id");
	hello.node_id[1] = '\0';
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_ESTATE,
	       "and the refused handshake stays dead");
	memset(&s, 0, sizeof s);
	hello.node_id[0] = '\0';
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_EINVAL, "and an empty one");
	/* ... and the client checks the challenge */
	memset(&ch, 0, sizeof ch);
	ch.server_id[0] = '\x01';
	is_int(auth_client_proof(&c, &ch, &proof), KVN_EINVAL, "client refuses a control-char server_id");
	auth_hs_fini(&c);
	/* a bad policy server id */
	memset(&s, 0, sizeof s);
	memset(&c, 0, sizeof c);
	auth_client_start(&c, AUTH_ROLE_PEER, "n", &f.peer.s[0], &hello);
	f.pol.server_id[0] = '\0';
	is_int(auth_server_hello(&s, &f.pol, &hello, &ch), KVN_EINVAL, "empty policy server_id");
	auth_hs_fini(&c);

	/* secrets of the wrong size */
	struct auth_secret k;
	pattern_secret(&k, 1, 31);
	memset(&c, 0, sizeof c);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "n", &k, &hello), KVN_EINVAL,
	       "a 31-byte secret is refused");
	k.len = AUTH_SECRET_MAX + 1;
	memset(&c, 0, sizeof c);
	is_int(auth_client_start(&c, AUTH_ROLE_PEER, "n", &k, &hello), KVN_EINVAL,
	       "an oversized length is refused");
}

/* ---- frame tags ------------------------------------------------------------ */

static const uint8_t K_A[AUTH_MAC_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t K_B[AUTH_MAC_LEN] = "fedcba9876543210fedcba9876543210";

/* A sender (sends with K_A) and a receiver (receives with K_A). */
static void pair(struct auth_session **tx, struct auth_session **rx)
{
	if (auth_session_new(K_A, K_B, tx) || auth_session_new(K_B, K_A, rx))
		kvn_fatal("auth_session_new failed");
}

struct frame {
	uint8_t hdr[24], meta[40], payload[300], tag[AUTH_TAG_LEN];
};

static int tag_frame(struct auth_tag *t, struct auth_session *s, enum auth_dir dir,
		     struct frame *fr, int verify)
{
	int rc = auth_tag_begin(t, s, dir);
	if (rc)
		return rc;
	auth_tag_update(t, fr->hdr, sizeof fr->hdr);
	auth_tag_update(t, fr->meta, sizeof fr->meta);
	auth_tag_update(t, fr->payload, sizeof fr->payload);
	return verify ? auth_tag_verify(t, fr->tag) : auth_tag_final(t, fr->tag);
}

static void t_tag_known_answer(void)
{
	struct auth_session *tx, *rx;
	struct auth_tag *t = auth_tag_new();
	uint8_t data[100], tag[AUTH_TAG_LEN], otk[EVP_MAX_MD_SIZE], want[AUTH_TAG_LEN];
	size_t l;

	ok(t != NULL, "auth_tag_new");
	pair(&tx, &rx);
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)i;
	for (uint64_t seq = 0; seq < 3; seq++) {
		uint8_t msg[13] = { 'f', 'r', 'a', 'm', 'e' };
		for (int i = 0; i < 8; i++)
			msg[5 + i] = (uint8_t)(seq >> (8 * i));
		EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, K_A, sizeof K_A, msg, sizeof msg, otk,
			  sizeof otk, &l);
		EVP_Q_mac(NULL, "POLY1305", NULL, NULL, NULL, otk, 32, data, sizeof data, want,
			  sizeof want, &l);
		auth_tag_begin(t, tx, AUTH_SEND);
		auth_tag_update(t, data, 10);
		auth_tag_update(t, data + 10, sizeof data - 10);
		is_int(auth_tag_final(t, tag), 0, "final, seq %" PRIu64, seq);
		is_mem(tag, want, AUTH_TAG_LEN,
		       "tag = Poly1305(HMAC(K_dir, \"frame\"|seq_le64), data), seq %" PRIu64, seq);
	}
	auth_session_free(tx);
	auth_session_free(rx);
	auth_tag_free(t);
}

static void t_tag_tamper(void)
{
	struct auth_session *tx, *rx_ok, *rx_bad, *junk;
	struct auth_tag *t = auth_tag_new();
	struct frame fr;
	struct {
		const char *name;
		size_t off, len;
	} parts[] = {
		{ "header", offsetof(struct frame, hdr), sizeof fr.hdr },
		{ "metadata", offsetof(struct frame, meta), sizeof fr.meta },
		{ "payload", offsetof(struct frame, payload), sizeof fr.payload },
		{ "tag", offsetof(struct frame, tag), sizeof fr.tag },
	};

	pair(&tx, &rx_ok);
	pair(&junk, &rx_bad);
	for (size_t i = 0; i < sizeof fr; i++)
		((uint8_t *)&fr)[i] = (uint8_t)(i * 7 + 3);
	for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
		int good = 0, rejected = 0;
		for (size_t i = 0; i < parts[p].len; i++) {
			struct frame bad;
			tag_frame(t, tx, AUTH_SEND, &fr, 0);
			bad = fr;
			((uint8_t *)&bad)[parts[p].off + i] ^= 0xff;
			/* both receivers are at the same sequence number */
			good += tag_frame(t, rx_ok, AUTH_RECV, &fr, 1) == 0;
			rejected += tag_frame(t, rx_bad, AUTH_RECV, &bad, 1) == KVN_EAUTH;
		}
		is_int(good, (int)parts[p].len, "%s: the intact frame verifies every time",
		       parts[p].name);
		is_int(rejected, (int)parts[p].len, "%s: each of %zu flipped bytes is rejected",
		       parts[p].name, parts[p].len);
	}
	/* a single flipped bit, too */
	struct frame bad;
	tag_frame(t, tx, AUTH_SEND, &fr, 0);
	bad = fr;
	bad.payload[150] ^= 0x10;
	is_int(tag_frame(t, rx_bad, AUTH_RECV, &bad, 1), KVN_EAUTH, "a one-bit flip is rejected");
	/* a truncated payload (the header's lengths are the transport's to check;
	 * the tag still catches the missing byte) */
	tag_frame(t, tx, AUTH_SEND, &fr, 0);
	auth_tag_begin(t, rx_ok, AUTH_RECV);
	auth_tag_update(t, fr.hdr, sizeof fr.hdr);
	auth_tag_update(t, fr.meta, sizeof fr.meta);
	auth_tag_update(t, fr.payload, sizeof fr.payload - 1);
	is_int(auth_tag_verify(t, fr.tag), KVN_EAUTH, "a truncated payload is rejected");
	auth_session_free(tx);
	auth_session_free(rx_ok);
	auth_session_free(rx_bad);
	auth_session_free(junk);
	auth_tag_free(t);
}

static void t_tag_replay_reorder(void)
{
	struct auth_session *tx, *rx, *rx2, *junk, *junk2;
	struct auth_tag *t = auth_tag_new();
	struct frame f0, f1;

	pair(&tx, &rx);
	memset(&f0, 1, sizeof f0);
	memset(&f1, 1, sizeof f1); /* same content: only the sequence differs */
	tag_frame(t, tx, AUTH_SEND, &f0, 0);
	tag_frame(t, tx, AUTH_SEND, &f1, 0);
	ok(memcmp(f0.tag, f1.tag, AUTH_TAG_LEN) != 0, "identical frames get different tags");
	is_int(tag_frame(t, rx, AUTH_RECV, &f0, 1), 0, "frame 0 verifies");
	is_int(tag_frame(t, rx, AUTH_RECV, &f0, 1), KVN_EAUTH, "frame 0 replayed fails");
	auth_session_free(rx);

	pair(&junk, &rx);
	pair(&junk2, &rx2); /* a second receiver, for the in-order control */
	is_int(tag_frame(t, rx, AUTH_RECV, &f1, 1), KVN_EAUTH, "frame 1 before frame 0 fails");
	is_int(tag_frame(t, rx2, AUTH_RECV, &f0, 1), 0, "in order: frame 0 verifies");
	is_int(tag_frame(t, rx2, AUTH_RECV, &f1, 1), 0, "in order: frame 1 verifies");
	auth_session_free(tx);
	auth_session_free(rx);
	auth_session_free(rx2);
	auth_session_free(junk);
	auth_session_free(junk2);
	auth_tag_free(t);
}

static void t_tag_empty_and_large(void)
{
	struct auth_session *tx, *rx;
	struct auth_tag *t = auth_tag_new();
	uint8_t hdr[24] = { 9 }, tag[AUTH_TAG_LEN], tag2[AUTH_TAG_LEN];
	size_t big = 1 << 20;
	uint8_t *payload = malloc(big);

	pair(&tx, &rx);
	auth_tag_begin(t, tx, AUTH_SEND);
	auth_tag_update(t, hdr, sizeof hdr);
	auth_tag_update(t, NULL, 0);
	is_int(auth_tag_final(t, tag), 0, "tag a frame with an empty payload");
	auth_tag_begin(t, rx, AUTH_RECV);
	auth_tag_update(t, hdr, sizeof hdr);
	is_int(auth_tag_verify(t, tag), 0, "it verifies");

	auth_tag_begin(t, tx, AUTH_SEND);
	is_int(auth_tag_final(t, tag), 0, "tag a frame of no bytes at all");
	auth_tag_begin(t, rx, AUTH_RECV);
	is_int(auth_tag_verify(t, tag), 0, "it verifies");

	kvn_random(payload, big);
	auth_tag_begin(t, tx, AUTH_SEND);
	auth_tag_update(t, hdr, sizeof hdr);
	auth_tag_update(t, payload, big);
	auth_tag_final(t, tag);
	/* around tag.c's 128-byte re-cut too: a carry that fills, overflows, stays */
	static const size_t chunks[] = { 1, 7, 15, 16, 17, 127, 128, 129, 255, 4093, 65537, 3 };
	size_t off = 0, c = 0;
	auth_tag_begin(t, rx, AUTH_RECV);
	auth_tag_update(t, hdr, 5);
	auth_tag_update(t, hdr + 5, sizeof hdr - 5);
	while (off < big) {
		size_t n = chunks[c++ % (sizeof chunks / sizeof chunks[0])];
		if (n > big - off)
			n = big - off;
		auth_tag_update(t, payload + off, n);
		off += n;
	}
	is_int(auth_tag_verify(t, tag), 0, "1 MiB payload fed in uneven chunks verifies");

	auth_tag_begin(t, tx, AUTH_SEND);
	auth_tag_update(t, payload, big);
	auth_tag_final(t, tag2);
	payload[big - 1] ^= 1;
	auth_tag_begin(t, rx, AUTH_RECV);
	auth_tag_update(t, payload, big);
	is_int(auth_tag_verify(t, tag2), KVN_EAUTH, "its last byte flipped fails");
	free(payload);
	auth_session_free(tx);
	auth_session_free(rx);
	auth_tag_free(t);
}

static void t_tag_misuse(void)
{
	struct auth_session *tx, *rx;
	struct auth_tag *t = auth_tag_new();
	uint8_t tag[AUTH_TAG_LEN] = { 0 };

	pair(&tx, &rx);
	is_int(auth_tag_final(t, tag), KVN_ESTATE, "final before begin");
	auth_tag_update(t, "x", 1);
	is_int(auth_tag_verify(t, tag), KVN_ESTATE, "verify before begin");
	is_int(auth_tag_begin(t, tx, (enum auth_dir)2), KVN_EINVAL, "begin with a bad direction");
	is_int(auth_tag_begin(t, NULL, AUTH_SEND), KVN_EINVAL, "begin without a session");
	is_int(auth_tag_begin(t, tx, AUTH_SEND), 0, "begin");
	is_int(auth_tag_final(t, tag), 0, "final");
	is_int(auth_tag_final(t, tag), KVN_ESTATE, "final twice");
	auth_tag_free(NULL);
	auth_session_free(NULL);
	auth_session_free(tx);
	auth_session_free(rx);
	auth_tag_free(t);
}

/* Grants (issue 11 item 1): the MAC covers node, key, gen, size and
 * expiry; both ends of a session derive the same key material; in-process
 * material differs per boot id; the check is all or nothing. */
static void t_grant(void)
{
	uint8_t k1[AUTH_MAC_LEN], k2[AUTH_MAC_LEN], m1[AUTH_MAC_LEN], m2[AUTH_MAC_LEN];
	uint8_t mac[AUTH_GRANT_MAC_LEN], bad[AUTH_GRANT_MAC_LEN];
	struct auth_session *a = NULL, *b = NULL;
	struct auth_grant_key *g = NULL, *h = NULL;

	memset(k1, 1, sizeof k1);
	memset(k2, 2, sizeof k2);
	is_int(auth_session_new(k1, k2, &a), 0, "one end's session");
	is_int(auth_session_new(k2, k1, &b), 0, "the other end's (send and receive swapped)");
	is_int(auth_session_material(a, AUTH_GRANT_LABEL, m1), 0, "material at one end");
	is_int(auth_session_material(b, AUTH_GRANT_LABEL, m2), 0, "at the other");
	ok(memcmp(m1, m2, sizeof m1) == 0, "the same bytes at both ends, never sent");
	ok(memcmp(m1, k1, sizeof m1) != 0 && memcmp(m1, k2, sizeof m1) != 0, "and not a session key");
	is_int(auth_grant_key_new(m1, &g), 0, "grant key");
	is_int(auth_grant_sign(g, "p1", "key", 3, 42, 100, 5000, mac), 0, "sign");
	is_int(auth_grant_check(g, "p1", "key", 3, 42, 100, 5000, mac), 0, "checks");
	is_int(auth_grant_check(g, "p2", "key", 3, 42, 100, 5000, mac), KVN_EAUTH, "another node: refused");
	is_int(auth_grant_check(g, "p1", "kez", 3, 42, 100, 5000, mac), KVN_EAUTH, "another key: refused");
	is_int(auth_grant_check(g, "p1", "key", 3, 43, 100, 5000, mac), KVN_EAUTH, "another gen: refused");
	is_int(auth_grant_check(g, "p1", "key", 3, 42, 101, 5000, mac), KVN_EAUTH, "another size: refused");
	is_int(auth_grant_check(g, "p1", "key", 3, 42, 100, 5001, mac), KVN_EAUTH, "another expiry: refused");
	memcpy(bad, mac, sizeof bad);
	bad[15] ^= 0x80;
	is_int(auth_grant_check(g, "p1", "key", 3, 42, 100, 5000, bad), KVN_EAUTH, "one bit flipped: refused");
	is_int(auth_grant_check(NULL, "p1", "key", 3, 42, 100, 5000, mac), KVN_EAUTH, "no key: refused");
	is_int(auth_grant_sign(g, "p1", "key", 0, 42, 100, 5000, mac), KVN_EINVAL, "an empty key: not signed");
	is_int(auth_grant_local_material(1, m1), 0, "in-process material");
	is_int(auth_grant_local_material(2, m2), 0, "for another boot id");
	ok(memcmp(m1, m2, sizeof m1) != 0, "differs per boot id");
	is_int(auth_grant_key_new(m1, &h), 0, "its key");
	is_int(auth_grant_sign(h, "p1", "key", 3, 42, 100, 5000, bad), 0, "sign under it");
	ok(memcmp(bad, mac, sizeof bad) != 0, "another attachment's key signs differently");
	is_int(auth_grant_check(g, "p1", "key", 3, 42, 100, 5000, bad), KVN_EAUTH, "and its grants do not check here");
	auth_grant_key_free(g);
	auth_grant_key_free(h);
	auth_session_free(a);
	auth_session_free(b);
}

static const struct tap_test tests[] = {
	{ "role_names", t_role_names },
	{ "hs_success", t_hs_success },
	{ "hs_known_answer", t_hs_known_answer },
	{ "hs_wrong_secret", t_hs_wrong_secret },
	{ "hs_role_scope", t_hs_role_scope },
	{ "hs_rotation", t_hs_rotation },
	{ "hs_mutual", t_hs_mutual },
	{ "hs_order", t_hs_order },
	{ "hs_ids", t_hs_ids },
	{ "tag_known_answer", t_tag_known_answer },
	{ "tag_tamper", t_tag_tamper },
	{ "tag_replay_reorder", t_tag_replay_reorder },
	{ "tag_empty_and_large", t_tag_empty_and_large },
	{ "tag_misuse", t_tag_misuse },
	{ "grant", t_grant },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return tap_run(tests, argc, argv);
}
