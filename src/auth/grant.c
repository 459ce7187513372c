/*
 * grant: the master's permission for one put (docs/protocol.md, "Grants").
 * Owns the grant key (one per attachment between a peer and its master,
 * derived on both sides from what they already share, never sent), the MAC
 * over (node, key, gen, size, expiry) and its constant-time check.
 *
 * Why: a peer cannot know which generation the master handed out for a key,
 * so without a grant any client could store a generation of its choosing
 * (2^63-1 pins a key for ever; larger ones poisoned the event stream).  The
 * grant is computed once per item on the master and checked once per item
 * on the peer before any byte is accepted: one HMAC-SHA256 under a context
 * keyed once per attachment (EVP_MAC_init with a NULL key only resets it),
 * no allocation per item.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "base/base.h"

#define LABEL_GRANT "kvnode grant v1"
#define LABEL_LOCAL "kvnode grant local v1"

struct auth_grant_key {
	struct auth_hmac *h; /* keyed once with the grant key */
};

int auth_grant_key_new(const uint8_t material[AUTH_MAC_LEN], struct auth_grant_key **out)
{
	struct auth_grant_key *g;
	uint8_t k[AUTH_MAC_LEN];
	int rc;

	if (!material || !out)
		return KVN_EINVAL;
	*out = NULL;
	g = calloc(1, sizeof *g);
	if (!g)
		return KVN_ENOMEM;
	/* one more step under its own label: the grant key is never a key
	 * anything else uses */
	rc = auth_hmac_sha256(material, AUTH_MAC_LEN, LABEL_GRANT, strlen(LABEL_GRANT), k);
	if (!rc)
		rc = auth_hmac_new(k, sizeof k, &g->h);
	OPENSSL_cleanse(k, sizeof k);
	if (rc) {
		auth_grant_key_free(g);
		return rc;
	}
	*out = g;
	return 0;
}

void auth_grant_key_free(struct auth_grant_key *g)
{
	if (!g)
		return;
	auth_hmac_free(g->h);
	free(g);
}

static size_t put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return 8;
}

/* MAC input: len(1) node_id | klen(le16) key | gen | size | expiry (le64
 * each): no two field lists encode alike. */
static int grant_mac(const struct auth_grant_key *g, const char *node_id, const void *key, size_t klen,
		     uint64_t gen, uint64_t size, uint64_t expiry_ms, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t msg[1 + AUTH_ID_MAX + 2 + 1024 + 24];
	size_t nl = node_id ? strnlen(node_id, AUTH_ID_MAX + 1) : 0, n = 0;

	if (!g || nl > AUTH_ID_MAX || !key || klen == 0 || klen > 1024)
		return KVN_EINVAL;
	msg[n++] = (uint8_t)nl;
	memcpy(msg + n, node_id, nl);
	n += nl;
	msg[n++] = (uint8_t)klen;
	msg[n++] = (uint8_t)(klen >> 8);
	memcpy(msg + n, key, klen);
	n += klen;
	n += put_le64(msg + n, gen);
	n += put_le64(msg + n, size);
	n += put_le64(msg + n, expiry_ms);
	return auth_hmac_once(g->h, msg, n, out);
}

int auth_grant_sign(const struct auth_grant_key *g, const char *node_id, const void *key, size_t klen,
		    uint64_t gen, uint64_t size, uint64_t expiry_ms, uint8_t mac[AUTH_GRANT_MAC_LEN])
{
	uint8_t full[AUTH_MAC_LEN];
	int rc = grant_mac(g, node_id, key, klen, gen, size, expiry_ms, full);

	if (rc == 0)
		memcpy(mac, full, AUTH_GRANT_MAC_LEN);
	OPENSSL_cleanse(full, sizeof full);
	return rc;
}

int auth_grant_check(const struct auth_grant_key *g, const char *node_id, const void *key, size_t klen,
		     uint64_t gen, uint64_t size, uint64_t expiry_ms, const uint8_t mac[AUTH_GRANT_MAC_LEN])
{
	uint8_t full[AUTH_MAC_LEN];
	int rc;

	if (!g)
		return KVN_EAUTH; /* no attachment: nothing was granted */
	rc = grant_mac(g, node_id, key, klen, gen, size, expiry_ms, full);
	if (rc == 0 && CRYPTO_memcmp(full, mac, AUTH_GRANT_MAC_LEN) != 0)
		rc = KVN_EAUTH;
	OPENSSL_cleanse(full, sizeof full);
	return rc == KVN_EINVAL ? KVN_EAUTH : rc;
}

/* ---- material ---- */

static pthread_once_t local_once = PTHREAD_ONCE_INIT;
static uint8_t local_secret[AUTH_MAC_LEN];
static int local_ok;

static void local_init(void)
{
	local_ok = kvn_random(local_secret, sizeof local_secret) == 0;
}

int auth_grant_local_material(uint64_t boot_id, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t msg[sizeof LABEL_LOCAL - 1 + 8];

	pthread_once(&local_once, local_init);
	if (!local_ok)
		return KVN_EIO;
	memcpy(msg, LABEL_LOCAL, sizeof LABEL_LOCAL - 1);
	put_le64(msg + sizeof LABEL_LOCAL - 1, boot_id);
	return auth_hmac_sha256(local_secret, sizeof local_secret, msg, sizeof msg, out);
}
