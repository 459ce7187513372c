/*
 * tag: sessions and frame tags.  Owns struct auth_session (per direction an
 * HMAC-SHA256 context keyed once with K_dir, plus the implicit sequence
 * number), the process-wide EVP_MAC fetches, and the per-frame tag: Poly1305
 * under the one-time key HMAC-SHA256(K_dir, "frame" | seq_le64).
 *
 * The per-frame cost is the point of this file: the MACs are fetched once per
 * process, the HMAC key schedule is done once per session (EVP_MAC_init with
 * a NULL key only resets it), and one Poly1305 context per auth_tag is
 * re-keyed per frame, so a frame costs two SHA-256 blocks plus Poly1305.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth/auth.h"
#include "base/base.h"

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_hmac, *mac_poly; /* process lifetime, never freed */

static void mac_fetch(void)
{
	mac_hmac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	mac_poly = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_POLY1305, NULL);
}

/* 0, or KVN_ECONFIG when the configured providers lack HMAC or Poly1305 (an
 * openssl.cnf that loads only a FIPS provider, say). */
static int macs_ready(void)
{
	pthread_once(&mac_once, mac_fetch);
	return mac_hmac && mac_poly ? 0 : KVN_ECONFIG;
}

static EVP_MAC_CTX *hmac_new(const void *key, size_t keylen)
{
	static char sha256[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(mac_hmac);

	if (c && !EVP_MAC_init(c, key, keylen, params)) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

int auth_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
		     uint8_t out[AUTH_MAC_LEN])
{
	EVP_MAC_CTX *c;
	size_t len = 0;
	int rc = macs_ready();

	if (rc)
		return rc;
	c = hmac_new(key, keylen);
	if (!c)
		return KVN_ENOMEM;
	if (!EVP_MAC_update(c, data, n) || !EVP_MAC_final(c, out, &len, AUTH_MAC_LEN) ||
	    len != AUTH_MAC_LEN)
		rc = KVN_ENOMEM;
	EVP_MAC_CTX_free(c); /* the provider cleanses its key copy */
	return rc;
}

struct auth_dir_state {
	EVP_MAC_CTX *hmac; /* keyed with K_dir; reset, not re-keyed, per frame */
	uint64_t seq;      /* next frame's sequence number */
};

struct auth_session {
	struct auth_dir_state d[2]; /* indexed by enum auth_dir */
};

void auth_session_free(struct auth_session *s)
{
	if (!s)
		return;
	for (int i = 0; i < 2; i++)
		EVP_MAC_CTX_free(s->d[i].hmac);
	free(s);
}

int auth_session_new(const uint8_t *k_send, const uint8_t *k_recv, struct auth_session **out)
{
	struct auth_session *s;
	int rc;

	if (!out)
		return KVN_EINVAL;
	*out = NULL;
	if (!k_send || !k_recv)
		return KVN_EINVAL;
	rc = macs_ready();
	if (rc)
		return rc;
	s = calloc(1, sizeof *s);
	if (!s)
		return KVN_ENOMEM;
	s->d[AUTH_SEND].hmac = hmac_new(k_send, AUTH_MAC_LEN);
	s->d[AUTH_RECV].hmac = hmac_new(k_recv, AUTH_MAC_LEN);
	if (!s->d[AUTH_SEND].hmac || !s->d[AUTH_RECV].hmac) {
		auth_session_free(s);
		return KVN_ENOMEM;
	}
	*out = s;
	return 0;
}

/* OpenSSL's AVX-512 Poly1305 runs its 8-block loop only when a call hands
 * it a block count whose remainder mod 8 is below 4; otherwise the whole
 * call goes through the 4-block loop at half the speed (measured here: 6.0
 * against 12.0 GB/s for 64 KiB).  Frames reach the MAC in pieces of any
 * length (header, metadata, socket reads), so updates are re-cut here: every
 * call into OpenSSL carries a multiple of TAG_QUANTUM bytes and the tail
 * waits in carry for the next piece or the final. */
#define TAG_QUANTUM 128

struct auth_tag {
	EVP_MAC_CTX *poly; /* re-keyed with the one-time key by every begin */
	int open;          /* begun and not yet finished */
	int broken;        /* an update failed: final/verify must not succeed */
	size_t ncarry;     /* bytes waiting in carry, < TAG_QUANTUM */
	uint8_t carry[TAG_QUANTUM];
};

struct auth_tag *auth_tag_new(void)
{
	struct auth_tag *t;

	if (macs_ready() != 0)
		return NULL;
	t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->poly = EVP_MAC_CTX_new(mac_poly);
	if (!t->poly) {
		free(t);
		return NULL;
	}
	return t;
}

void auth_tag_free(struct auth_tag *t)
{
	if (!t)
		return;
	EVP_MAC_CTX_free(t->poly); /* the provider cleanses the Poly1305 state */
	free(t);
}

int auth_tag_begin(struct auth_tag *t, struct auth_session *s, enum auth_dir dir)
{
	struct auth_dir_state *d;
	uint8_t msg[5 + 8] = { 'f', 'r', 'a', 'm', 'e' };
	uint8_t otk[AUTH_MAC_LEN];
	size_t len = 0;
	int ok;

	if (!t || !s || (dir != AUTH_SEND && dir != AUTH_RECV))
		return KVN_EINVAL;
	t->open = 0;
	t->broken = 0;
	t->ncarry = 0;
	d = &s->d[dir];
	/* 2^64 frames will not happen, but wrapping would reuse one-time keys */
	if (d->seq == UINT64_MAX)
		return KVN_ESTATE;
	for (int i = 0; i < 8; i++)
		msg[5 + i] = (uint8_t)(d->seq >> (8 * i));
	ok = EVP_MAC_init(d->hmac, NULL, 0, NULL) && EVP_MAC_update(d->hmac, msg, sizeof msg) &&
	     EVP_MAC_final(d->hmac, otk, &len, sizeof otk) && len == sizeof otk;
	/* Advance even on failure: a sequence number is never offered twice. */
	d->seq++;
	ok = ok && EVP_MAC_init(t->poly, otk, sizeof otk, NULL);
	OPENSSL_cleanse(otk, sizeof otk);
	if (!ok)
		return KVN_ENOMEM;
	t->open = 1;
	return 0;
}

static void tag_feed(struct auth_tag *t, const uint8_t *p, size_t n)
{
	if (n && !EVP_MAC_update(t->poly, p, n))
		t->broken = 1;
}

void auth_tag_update(struct auth_tag *t, const void *data, size_t n)
{
	const uint8_t *p = data;

	if (!t || !t->open || n == 0)
		return;
	if (t->ncarry) {
		size_t k = TAG_QUANTUM - t->ncarry;
		if (k > n)
			k = n;
		memcpy(t->carry + t->ncarry, p, k);
		t->ncarry += k;
		p += k;
		n -= k;
		if (t->ncarry < TAG_QUANTUM)
			return;
		tag_feed(t, t->carry, TAG_QUANTUM);
		t->ncarry = 0;
	}
	size_t bulk = n - n % TAG_QUANTUM;
	tag_feed(t, p, bulk);
	memcpy(t->carry, p + bulk, n - bulk);
	t->ncarry = n - bulk;
}

int auth_tag_final(struct auth_tag *t, uint8_t out[AUTH_TAG_LEN])
{
	size_t len = 0;
	int ok;

	if (!t || !out)
		return KVN_EINVAL;
	if (!t->open)
		return KVN_ESTATE;
	t->open = 0;
	tag_feed(t, t->carry, t->ncarry);
	OPENSSL_cleanse(t->carry, sizeof t->carry);
	t->ncarry = 0;
	ok = EVP_MAC_final(t->poly, out, &len, AUTH_TAG_LEN) && len == AUTH_TAG_LEN;
	if (!ok || t->broken) {
		OPENSSL_cleanse(out, AUTH_TAG_LEN);
		return KVN_ENOMEM;
	}
	return 0;
}

int auth_tag_verify(struct auth_tag *t, const uint8_t tag[AUTH_TAG_LEN])
{
	uint8_t want[AUTH_TAG_LEN];
	int rc;

	if (!t || !tag)
		return KVN_EINVAL;
	rc = auth_tag_final(t, want);
	if (rc == 0 && CRYPTO_memcmp(want, tag, AUTH_TAG_LEN) != 0)
		rc = KVN_EAUTH;
	OPENSSL_cleanse(want, sizeof want);
	return rc;
}

/* ---- keyed HMAC contexts reused per message (grant.c) ---- */

struct auth_hmac {
	EVP_MAC_CTX *c;
};

int auth_hmac_new(const void *key, size_t keylen, struct auth_hmac **out)
{
	struct auth_hmac *h;
	int rc = macs_ready();

	*out = NULL;
	if (rc)
		return rc;
	h = calloc(1, sizeof *h);
	if (!h)
		return KVN_ENOMEM;
	h->c = hmac_new(key, keylen);
	if (!h->c) {
		free(h);
		return KVN_ENOMEM;
	}
	*out = h;
	return 0;
}

void auth_hmac_free(struct auth_hmac *h)
{
	if (!h)
		return;
	EVP_MAC_CTX_free(h->c); /* the provider cleanses its key copy */
	free(h);
}

int auth_hmac_once(struct auth_hmac *h, const void *data, size_t n, uint8_t out[AUTH_MAC_LEN])
{
	size_t len = 0;

	if (!EVP_MAC_init(h->c, NULL, 0, NULL) || !EVP_MAC_update(h->c, data, n) ||
	    !EVP_MAC_final(h->c, out, &len, AUTH_MAC_LEN) || len != AUTH_MAC_LEN)
		return KVN_ENOMEM;
	return 0;
}

/* The same on both ends of a session: HMAC(K_c2s, label) xor HMAC(K_s2c,
 * label), whichever end holds which as its send key.  Each side's contexts
 * are only reset here, on the owner's thread, between frames. */
int auth_session_material(struct auth_session *s, const char *label, uint8_t out[AUTH_MAC_LEN])
{
	uint8_t a[AUTH_MAC_LEN], b[AUTH_MAC_LEN];
	size_t la = 0, lb = 0, n = strlen(label);
	int ok;

	if (!s || !out)
		return KVN_EINVAL;
	ok = EVP_MAC_init(s->d[AUTH_SEND].hmac, NULL, 0, NULL) && EVP_MAC_update(s->d[AUTH_SEND].hmac, (const unsigned char *)label, n) &&
	     EVP_MAC_final(s->d[AUTH_SEND].hmac, a, &la, sizeof a) && la == sizeof a &&
	     EVP_MAC_init(s->d[AUTH_RECV].hmac, NULL, 0, NULL) && EVP_MAC_update(s->d[AUTH_RECV].hmac, (const unsigned char *)label, n) &&
	     EVP_MAC_final(s->d[AUTH_RECV].hmac, b, &lb, sizeof b) && lb == sizeof b;
	for (size_t i = 0; i < AUTH_MAC_LEN; i++)
		out[i] = a[i] ^ b[i];
	OPENSSL_cleanse(a, sizeof a);
	OPENSSL_cleanse(b, sizeof b);
	if (!ok) {
		OPENSSL_cleanse(out, AUTH_MAC_LEN);
		return KVN_ENOMEM;
	}
	return 0;
}
