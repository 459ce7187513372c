/*
 * auth: shared-secret authentication.  Owns secret files (load, permission
 * check, keygen), the mutual attach handshake as a pure state machine (no
 * I/O: the transport carries the messages), per-direction session keys, and
 * the per-frame tag: Poly1305 under a one-time key
 * HMAC-SHA256(K_dir, "frame" | seq_le64), seq implicit per direction.
 *
 * Nothing here ever logs or formats a secret, proof, tag or session key.
 */
#ifndef KVN_AUTH_H
#define KVN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_SECRET_MIN 32   /* bytes */
#define AUTH_SECRET_MAX 64
#define AUTH_MAX_SECRETS 8   /* accepted at once, for rotation */
#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN 32      /* HMAC-SHA256 proofs */
#define AUTH_TAG_LEN 16      /* Poly1305 frame tags */
#define AUTH_ID_MAX 64       /* node_id / server_id bytes, without NUL */

enum auth_role {
	AUTH_ROLE_NONE = 0,
	AUTH_ROLE_MASTER = 1,
	AUTH_ROLE_PEER = 2,
	AUTH_ROLE_CLIENT = 3,
	AUTH_ROLE_INTERNAL = 4, /* in-process sender: never on the wire */
};
const char *auth_role_name(int role);

struct auth_secret {
	uint8_t key[AUTH_SECRET_MAX];
	size_t len;
};

/* A secret file: text, one hex-encoded secret (>= 32 bytes = 64 hex digits)
 * per line; blank lines and '#' comments ignored.  The first secret is the one
 * this node attaches with; every secret in the file is accepted from others,
 * so rotation is: prepend a new line everywhere, then remove the old one. */
struct auth_keyring {
	struct auth_secret s[AUTH_MAX_SECRETS];
	size_t n;
};

/* Load a secret file.  Refuses a file that is group- or world-readable
 * (KVN_EPERM), missing or unreadable (KVN_EIO), or malformed / holding a
 * secret shorter than 32 bytes or more than AUTH_MAX_SECRETS lines
 * (KVN_ECONFIG).  err gets "PATH: reason" (never file contents). */
int auth_keyring_load(struct auth_keyring *kr, const char *path, char *err, size_t errlen);
/* Zero the key material. */
void auth_keyring_wipe(struct auth_keyring *kr);
/* SIGHUP: load path again into a live keyring that handshakes on other
 * threads read (through an auth_policy, or auth_keyring_first).  The new
 * keyring is built aside and copied in under the process-wide keyring lock,
 * so a handshake sees the old or the new one whole; established sessions
 * are not touched.  On failure kr is unchanged and err says why (as
 * auth_keyring_load).  *added / *removed: secrets new in the file / gone
 * from it. */
int auth_keyring_reload(struct auth_keyring *kr, const char *path, int *added, int *removed, char *err,
			size_t errlen);
/* Copy the first secret of a live keyring (the one to attach with) under
 * the lock. */
void auth_keyring_first(const struct auth_keyring *kr, struct auth_secret *out);
/* The lock auth_keyring_reload takes to write; readers of a live keyring
 * (the server handshake) hold it to read.  Below src/auth only. */
void auth_keyring_rdlock(void);
void auth_keyring_unlock(void);
/* Write a new file holding one fresh 32-byte random secret, mode 0600,
 * created with O_EXCL (KVN_EEXIST if it exists).  Parent directory must
 * exist. */
int auth_keygen(const char *path, char *err, size_t errlen);
/* Prepend a fresh secret to an existing file (rotation step 1), keeping the
 * others; atomically (temp file + rename), mode 0600. */
int auth_keygen_rotate(const char *path, char *err, size_t errlen);

/* The RESP gateway's AUTH token of a client secret: hex of
 * HMAC-SHA256(secret, "kvnode resp token v1"), AUTH_RESP_TOKEN_LEN
 * characters and a NUL.  0, or an error as auth_hmac_sha256.  `kvnode keygen
 * --resp-token FILE` prints it for FILE's first secret. */
#define AUTH_RESP_TOKEN_LEN (2 * AUTH_MAC_LEN)
int auth_resp_token(const struct auth_secret *k, char out[AUTH_RESP_TOKEN_LEN + 1]);
/* 0 when tok[0..len) is the token of any secret of kr (so a rotated-in and
 * a rotated-out secret both work), else KVN_EAUTH; constant time in the
 * token's bytes. */
int auth_resp_token_check(const struct auth_keyring *kr, const void *tok, size_t len);

/* Server side: which secrets are accepted for which attaching role.  A
 * secret in `peer` cannot attach as a client and vice versa unless the same
 * secret is listed in both files.  Either pointer may be NULL: that role is
 * refused. */
struct auth_policy {
	const struct auth_keyring *peer;
	const struct auth_keyring *client;
	char server_id[AUTH_ID_MAX + 1];
};

/* Handshake messages (the transport encodes them). */
struct auth_hello {
	uint8_t role; /* enum auth_role: PEER or CLIENT */
	char node_id[AUTH_ID_MAX + 1];
	uint8_t nonce[AUTH_NONCE_LEN];
};
struct auth_challenge {
	char server_id[AUTH_ID_MAX + 1];
	uint8_t nonce[AUTH_NONCE_LEN];
};
struct auth_proof {
	uint8_t mac[AUTH_MAC_LEN];
};

/* Session: per-direction keys and implicit sequence numbers.  Opaque
 * contents; made by auth_client_finish / auth_server_verify (or
 * auth_session_new), freed by the caller with auth_session_free.  A session
 * may be used from one thread at a time per direction. */
struct auth_session;

/* Handshake state (both sides).  Zero-initialise, then use the calls in
 * order; any error leaves it unusable.  auth_hs_fini wipes it. */
struct auth_hs {
	int side; /* 1 client, 2 server */
	int step;
	uint8_t role;
	char node_id[AUTH_ID_MAX + 1];
	char server_id[AUTH_ID_MAX + 1];
	uint8_t nonce_c[AUTH_NONCE_LEN];
	uint8_t nonce_s[AUTH_NONCE_LEN];
	struct auth_secret k; /* client: its secret; server: the one that matched */
	const struct auth_policy *pol;
};
void auth_hs_fini(struct auth_hs *hs);

/* Client: HELLO -> (CHALLENGE) -> PROOF -> (ACCEPT carrying the server's
 * proof) -> session.  auth_client_finish returns KVN_EAUTH when the server's
 * proof is wrong (mutual authentication). */
int auth_client_start(struct auth_hs *hs, int role, const char *node_id,
		      const struct auth_secret *k, struct auth_hello *out);
int auth_client_proof(struct auth_hs *hs, const struct auth_challenge *in, struct auth_proof *out);
int auth_client_finish(struct auth_hs *hs, const struct auth_proof *server_proof,
		       struct auth_session **out);

/* Server: (HELLO) -> CHALLENGE -> (PROOF) -> ACCEPT + session.
 * auth_server_hello refuses a role the policy has no keyring for (KVN_EAUTH);
 * pol and its keyrings must stay valid until auth_server_verify returns.
 * auth_server_verify tries every accepted secret for the role with a
 * constant-time compare; no match -> KVN_EAUTH. */
int auth_server_hello(struct auth_hs *hs, const struct auth_policy *pol, const struct auth_hello *in,
		      struct auth_challenge *out);
int auth_server_verify(struct auth_hs *hs, const struct auth_proof *in, struct auth_proof *accept_out,
		       struct auth_session **out);

void auth_session_free(struct auth_session *s); /* NULL ok; wipes keys */

/* What the handshake MACs (all HMAC-SHA256 under K, each field of variable
 * length prefixed by one length byte, so no two field lists encode alike):
 *   T     = role(1) | len(1) node_id | len(1) server_id | nonce_c(32) | nonce_s(32)
 *   mac_L = HMAC(K, len(1) L | T)
 * client proof L = "kvnode-attach-client", server proof (ACCEPT)
 * L = "kvnode-attach-server", K_c2s L = "kvnode-session-c2s", K_s2c
 * L = "kvnode-session-s2c".  Frame one-time key: HMAC(K_dir, "frame" | seq_le64).
 *
 * Below: shared by the files of src/auth/ (and tests), not for other modules. */
/* A session from its two keys (AUTH_MAC_LEN bytes each, not kept by the
 * caller's buffers).  0, KVN_ENOMEM, or KVN_ECONFIG if OpenSSL lacks HMAC or
 * Poly1305.  *out is owned by the caller (auth_session_free). */
int auth_session_new(const uint8_t *k_send, const uint8_t *k_recv, struct auth_session **out);
/* One-shot HMAC-SHA256 with the process-wide fetched EVP_MAC.  0 or an error
 * as auth_session_new. */
int auth_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
		     uint8_t out[AUTH_MAC_LEN]);

/* Frame tags.  One auth_tag context per direction per connection is reused.
 * auth_tag_begin derives the one-time key for that direction's next sequence
 * number and advances it; then update with header, metadata and payload in
 * order; then final (sender) or verify (receiver, constant time, KVN_EAUTH
 * on mismatch).  Because the sequence is implicit, a replayed, dropped or
 * reordered frame fails verification. */
enum auth_dir { AUTH_SEND = 0, AUTH_RECV = 1 };
struct auth_tag;
/* NULL if out of memory or OpenSSL lacks HMAC/Poly1305.  Freed by the caller
 * with auth_tag_free (NULL ok). */
struct auth_tag *auth_tag_new(void);
void auth_tag_free(struct auth_tag *t);
int auth_tag_begin(struct auth_tag *t, struct auth_session *s, enum auth_dir dir);
void auth_tag_update(struct auth_tag *t, const void *p, size_t n);
int auth_tag_final(struct auth_tag *t, uint8_t out[AUTH_TAG_LEN]);
int auth_tag_verify(struct auth_tag *t, const uint8_t tag[AUTH_TAG_LEN]);
/* begin: 0, KVN_EINVAL, KVN_ENOMEM (OpenSSL failure; the sequence number is
 * consumed anyway).  update without a successful begin is ignored; final and
 * verify then return KVN_ESTATE.  Treat any non-zero verify as a rejection. */

/* ---- grants (grant.c; docs/protocol.md "Grants") ----
 * The master's permission for one put: a MAC under a key that only the
 * master and that one peer hold, over node_id, key, gen, size and an
 * expiry.  The key is made per attachment from `material` that both ends
 * already share: auth_session_material of the connection they attached
 * over (remote peer), or auth_grant_local_material of the peer's boot id
 * (the peer of the master's own process: the material never leaves its
 * memory).  One key is used from one thread at a time. */
#define AUTH_GRANT_MAC_LEN 16
#define AUTH_GRANT_LABEL "kvnode grant v1" /* for net_link_material */
struct auth_grant_key;
/* 0, KVN_EINVAL, KVN_ENOMEM or KVN_ECONFIG; *out freed with
 * auth_grant_key_free (NULL ok, wipes the key). */
int auth_grant_key_new(const uint8_t material[AUTH_MAC_LEN], struct auth_grant_key **out);
void auth_grant_key_free(struct auth_grant_key *g);
/* mac = first 16 bytes of HMAC-SHA256(K_grant, len(1) node_id | le16 klen
 * key | le64 gen | le64 size | le64 expiry_ms).  0 or KVN_EINVAL (a key
 * or node_id of a bad length) / KVN_ENOMEM. */
int auth_grant_sign(const struct auth_grant_key *g, const char *node_id, const void *key, size_t klen,
		    uint64_t gen, uint64_t size, uint64_t expiry_ms, uint8_t mac[AUTH_GRANT_MAC_LEN]);
/* Constant-time check of a grant: 0, or KVN_EAUTH (no key, bad input or
 * mismatch).  Expiry is the caller's to judge (it is covered by the MAC). */
int auth_grant_check(const struct auth_grant_key *g, const char *node_id, const void *key, size_t klen,
		     uint64_t gen, uint64_t size, uint64_t expiry_ms, const uint8_t mac[AUTH_GRANT_MAC_LEN]);
/* HMAC(process-wide random secret, "kvnode grant local v1" | le64 boot_id):
 * for a peer and master that share a process and no connection. */
int auth_grant_local_material(uint64_t boot_id, uint8_t out[AUTH_MAC_LEN]);
/* The same 32 bytes on both ends of a session: HMAC(K_c2s, label) xor
 * HMAC(K_s2c, label).  Call on the thread that owns the session's
 * connection, between frames.  0, KVN_EINVAL or KVN_ENOMEM. */
int auth_session_material(struct auth_session *s, const char *label, uint8_t out[AUTH_MAC_LEN]);
/* A keyed HMAC-SHA256 context, reset (not re-keyed) per message. */
struct auth_hmac;
int auth_hmac_new(const void *key, size_t keylen, struct auth_hmac **out);
void auth_hmac_free(struct auth_hmac *h);
int auth_hmac_once(struct auth_hmac *h, const void *data, size_t n, uint8_t out[AUTH_MAC_LEN]);

#endif
