/*
 * handshake: the mutual attach handshake as a pure state machine (no I/O).
 * Owns the MAC input encoding (documented in auth.h), role -> keyring
 * selection on the server, the constant-time search of the keyring, and the
 * derivation of the two per-direction session keys.
 */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "base/base.h"

enum { SIDE_CLIENT = 1, SIDE_SERVER = 2 };
/* hs->step: 0 fresh; client 1 HELLO sent, 2 PROOF sent; server 1 CHALLENGE
 * sent; both 3 done.  HS_DEAD after any error. */
enum { HS_FRESH = 0, HS_HELLO = 1, HS_PROOF = 2, HS_DONE = 3, HS_DEAD = -1 };

#define LABEL_CLIENT "kvnode-attach-client"
#define LABEL_SERVER "kvnode-attach-server"
#define LABEL_C2S "kvnode-session-c2s"
#define LABEL_S2C "kvnode-session-s2c"
#define MSG_MAX (1 + 32 + 1 + 1 + AUTH_ID_MAX + 1 + AUTH_ID_MAX + 2 * AUTH_NONCE_LEN)

void auth_hs_fini(struct auth_hs *hs)
{
	if (hs)
		OPENSSL_cleanse(hs, sizeof *hs);
}

/* Every error ends the handshake: wipe what it knew and refuse further steps. */
static int hs_fail(struct auth_hs *hs, int rc)
{
	auth_hs_fini(hs);
	hs->step = HS_DEAD;
	return rc;
}

/* 1..AUTH_ID_MAX printable ASCII bytes, NUL-terminated within id[AUTH_ID_MAX]. */
static int id_valid(const char *id)
{
	size_t n = strnlen(id, AUTH_ID_MAX + 1);

	if (n == 0 || n > AUTH_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || (unsigned char)id[i] > 0x7e)
			return 0;
	return 1;
}

static size_t put_lv(uint8_t *p, const void *s, size_t n)
{
	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

/* HMAC(K, len label | role | len node_id | len server_id | nonce_c | nonce_s) */
static int hs_mac(const struct auth_hs *hs, const struct auth_secret *k, const char *label,
		  uint8_t out[AUTH_MAC_LEN])
{
	uint8_t msg[MSG_MAX];
	size_t n = 0;
	int rc;

	n += put_lv(msg + n, label, strlen(label));
	msg[n++] = hs->role;
	n += put_lv(msg + n, hs->node_id, strlen(hs->node_id));
	n += put_lv(msg + n, hs->server_id, strlen(hs->server_id));
	memcpy(msg + n, hs->nonce_c, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	memcpy(msg + n, hs->nonce_s, AUTH_NONCE_LEN);
	n += AUTH_NONCE_LEN;
	KVN_ASSERT(n <= sizeof msg);
	rc = auth_hmac_sha256(k->key, k->len, msg, n, out);
	OPENSSL_cleanse(msg, sizeof msg);
	return rc;
}

/* The session for this side: the client sends with K_c2s, the server with K_s2c. */
static int hs_session(const struct auth_hs *hs, struct auth_session **out)
{
	uint8_t c2s[AUTH_MAC_LEN], s2c[AUTH_MAC_LEN];
	int rc;

	rc = hs_mac(hs, &hs->k, LABEL_C2S, c2s);
	if (!rc)
		rc = hs_mac(hs, &hs->k, LABEL_S2C, s2c);
	if (!rc)
		rc = hs->side == SIDE_CLIENT ? auth_session_new(c2s, s2c, out)
					     : auth_session_new(s2c, c2s, out);
	OPENSSL_cleanse(c2s, sizeof c2s);
	OPENSSL_cleanse(s2c, sizeof s2c);
	return rc;
}

static int hs_done(struct auth_hs *hs)
{
	int side = hs->side;

	auth_hs_fini(hs); /* the secret and nonces are no longer needed */
	hs->side = side;
	hs->step = HS_DONE;
	return 0;
}

int auth_client_start(struct auth_hs *hs, int role, const char *node_id,
		      const struct auth_secret *k, struct auth_hello *out)
{
	if (!hs)
		return KVN_EINVAL;
	if (hs->side != 0 || hs->step != HS_FRESH)
		return hs_fail(hs, KVN_ESTATE);
	if (!out || !k || !node_id || (role != AUTH_ROLE_PEER && role != AUTH_ROLE_CLIENT) ||
	    !id_valid(node_id) || k->len < AUTH_SECRET_MIN || k->len > AUTH_SECRET_MAX)
		return hs_fail(hs, KVN_EINVAL);
	hs->side = SIDE_CLIENT;
	hs->role = (uint8_t)role;
	memcpy(hs->node_id, node_id, strlen(node_id) + 1); /* id_valid: <= AUTH_ID_MAX */
	hs->k = *k;
	if (kvn_random(hs->nonce_c, sizeof hs->nonce_c) != 0)
		return hs_fail(hs, KVN_EIO);
	memset(out, 0, sizeof *out);
	out->role = hs->role;
	memcpy(out->node_id, hs->node_id, sizeof out->node_id);
	memcpy(out->nonce, hs->nonce_c, sizeof out->nonce);
	hs->step = HS_HELLO;
	return 0;
}

int auth_client_proof(struct auth_hs *hs, const struct auth_challenge *in, struct auth_proof *out)
{
	int rc;

	if (!hs)
		return KVN_EINVAL;
	if (hs->side != SIDE_CLIENT || hs->step != HS_HELLO)
		return hs_fail(hs, KVN_ESTATE);
	if (!in || !out || !id_valid(in->server_id))
		return hs_fail(hs, KVN_EINVAL);
	memcpy(hs->server_id, in->server_id, sizeof hs->server_id);
	memcpy(hs->nonce_s, in->nonce, sizeof hs->nonce_s);
	rc = hs_mac(hs, &hs->k, LABEL_CLIENT, out->mac);
	if (rc)
		return hs_fail(hs, rc);
	hs->step = HS_PROOF;
	return 0;
}

int auth_client_finish(struct auth_hs *hs, const struct auth_proof *server_proof,
		       struct auth_session **out)
{
	uint8_t want[AUTH_MAC_LEN];
	int rc;

	if (out)
		*out = NULL;
	if (!hs)
		return KVN_EINVAL;
	if (hs->side != SIDE_CLIENT || hs->step != HS_PROOF)
		return hs_fail(hs, KVN_ESTATE);
	if (!server_proof || !out)
		return hs_fail(hs, KVN_EINVAL);
	rc = hs_mac(hs, &hs->k, LABEL_SERVER, want);
	if (!rc && CRYPTO_memcmp(want, server_proof->mac, AUTH_MAC_LEN) != 0)
		rc = KVN_EAUTH;
	OPENSSL_cleanse(want, sizeof want);
	if (!rc)
		rc = hs_session(hs, out);
	return rc ? hs_fail(hs, rc) : hs_done(hs);
}

static const struct auth_keyring *keyring_for(const struct auth_policy *pol, int role)
{
	const struct auth_keyring *kr = NULL;

	if (role == AUTH_ROLE_PEER)
		kr = pol->peer;
	else if (role == AUTH_ROLE_CLIENT)
		kr = pol->client;
	return kr && kr->n > 0 && kr->n <= AUTH_MAX_SECRETS ? kr : NULL;
}

int auth_server_hello(struct auth_hs *hs, const struct auth_policy *pol, const struct auth_hello *in,
		      struct auth_challenge *out)
{
	if (!hs)
		return KVN_EINVAL;
	if (hs->side != 0 || hs->step != HS_FRESH)
		return hs_fail(hs, KVN_ESTATE);
	if (!pol || !in || !out || !id_valid(pol->server_id) || !id_valid(in->node_id))
		return hs_fail(hs, KVN_EINVAL);
	auth_keyring_rdlock();
	int have = keyring_for(pol, in->role) != NULL;
	auth_keyring_unlock();
	if (!have)
		return hs_fail(hs, KVN_EAUTH);
	hs->side = SIDE_SERVER;
	hs->role = in->role;
	hs->pol = pol;
	memcpy(hs->node_id, in->node_id, sizeof hs->node_id);
	memcpy(hs->server_id, pol->server_id, sizeof hs->server_id);
	memcpy(hs->nonce_c, in->nonce, sizeof hs->nonce_c);
	if (kvn_random(hs->nonce_s, sizeof hs->nonce_s) != 0)
		return hs_fail(hs, KVN_EIO);
	memset(out, 0, sizeof *out);
	memcpy(out->server_id, hs->server_id, sizeof out->server_id);
	memcpy(out->nonce, hs->nonce_s, sizeof out->nonce);
	hs->step = HS_HELLO;
	return 0;
}

int auth_server_verify(struct auth_hs *hs, const struct auth_proof *in, struct auth_proof *accept_out,
		       struct auth_session **out)
{
	const struct auth_keyring *kr;
	uint8_t want[AUTH_MAC_LEN];
	unsigned found = 0;
	size_t idx = 0;
	int rc = 0;

	if (out)
		*out = NULL;
	if (!hs)
		return KVN_EINVAL;
	if (hs->side != SIDE_SERVER || hs->step != HS_HELLO)
		return hs_fail(hs, KVN_ESTATE);
	if (!in || !accept_out || !out)
		return hs_fail(hs, KVN_EINVAL);
	/* a SIGHUP reload (auth_keyring_reload) swaps the keyring under the
	 * write lock: this handshake sees the old one or the new one whole */
	auth_keyring_rdlock();
	kr = keyring_for(hs->pol, hs->role);
	if (!kr) {
		auth_keyring_unlock();
		return hs_fail(hs, KVN_EAUTH);
	}
	/* Every secret is tried and the first match is selected without a
	 * branch, so the time taken does not say which secret matched. */
	for (size_t i = 0; i < kr->n && !rc; i++) {
		rc = hs_mac(hs, &kr->s[i], LABEL_CLIENT, want);
		unsigned eq = (unsigned)(CRYPTO_memcmp(want, in->mac, AUTH_MAC_LEN) == 0);
		size_t take = (size_t)0 - (size_t)(eq & (found ^ 1u));
		idx = (idx & ~take) | (i & take);
		found |= eq;
	}
	OPENSSL_cleanse(want, sizeof want);
	if (!rc && !found)
		rc = KVN_EAUTH;
	if (!rc)
		hs->k = kr->s[idx];
	auth_keyring_unlock();
	if (rc)
		return hs_fail(hs, rc);
	rc = hs_mac(hs, &hs->k, LABEL_SERVER, accept_out->mac);
	if (!rc)
		rc = hs_session(hs, out);
	if (rc) {
		OPENSSL_cleanse(accept_out, sizeof *accept_out);
		return hs_fail(hs, rc);
	}
	return hs_done(hs);
}
