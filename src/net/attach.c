/*
 * attach: the attach handshake on frames (DESIGN.md section 9), for both
 * ends of a connection: HELLO, CHALLENGE, PROOF, ACCEPT or REJECT.  The
 * cryptography lives in src/auth/; this file moves its messages and logs one
 * line per refused attach, naming the remote address and the claimed
 * principal, never a secret or a proof.
 *
 * HELLO and CHALLENGE each carry the sender's integrity mode
 * (auth.integrity) after the nonce, and each side refuses a mode other than
 * its own with KVN_ECONFIG, naming both: one cluster, one mode.  The byte is
 * not in the proof's MAC and need not be: each end tags and checks frames
 * in its own configured mode, so a mode rewritten in flight ends in a
 * refusal or in the first frame's bad tag, never in a weaker mode than the
 * one an end was configured with.
 */
#include "config.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uthash.h>

#include "base/base.h"
#include "base/metrics.h"
#include "net/net_int.h"

void conn_up(struct conn *c)
{
	struct actor_msg *m;

	c->state = C_UP;
	evtimer_del(c->timer);
	if (c->cnt && !c->counted) {
		/* authenticated: out of the pre-auth pool, into max_connections */
		conn_preauth_leave(c);
		pthread_mutex_lock(&c->cnt->mu);
		c->cnt->open++;
		if (c->role <= AUTH_ROLE_INTERNAL)
			c->cnt->open_by_role[c->role]++;
		pthread_mutex_unlock(&c->cnt->mu);
		c->counted = 1;
		kvn_metric_conn_open(c->o.metrics_role, c->role, +1);
	}
	conn_link_publish(c); /* before NET_UP and any frame reach the owner */
	kvn_backoff_reset(&c->backoff);
	if (c->outgoing && c->down_logged) {
		log_info("connection to %s is back", c->addr);
		c->down_logged = 0;
	}
	conn_notify_owner(c, NET_UP, 0);
	while ((m = TAILQ_FIRST(&c->queued))) {
		TAILQ_REMOVE(&c->queued, m, link);
		c->nqueued--;
		if (conn_write_msg(c, m) != 0)
			conn_fail_msg(m, KVN_EPROTO);
		actor_msg_free(m);
	}
}

/* One line per refused attach, naming the remote address and the claimed
 * principal (quoted: it is whatever the remote sent); never the secret or a
 * proof.  Rate-limited per listener: a flood of bad handshakes is a few
 * lines and a count. */
void conn_reject(struct conn *c, int err, const char *why)
{
	uint64_t supp = 0;

	NSTAT_ADD(auth_fail, 1);
	if (conn_log_ok(c, &supp))
		log_warn("auth: rejected %s %s from %s: %s%s", auth_role_name(c->role), conn_who(c), c->remote,
			 why, CONN_SUPP(supp));
	conn_send_hs(c, WIRE_REJECT, NULL, err);
	c->closing = 1;
	c->flush_then_close = 1;
	event_del(c->rev);
	conn_flush(c);
}

static const char *integrity_name(int mode)
{
	return mode == KVN_INTEGRITY_HEADER ? "header" : mode == KVN_INTEGRITY_FRAME ? "frame" : "unknown";
}

/* A handshake message that does not decode, or comes out of turn. */
static void hs_malformed(struct conn *c)
{
	NSTAT_ADD(proto_err, 1);
	conn_fail(c, KVN_EPROTO);
}

void conn_hs_server(struct conn *c)
{
	struct wire_r r;
	struct wire_w w;
	int rc;

	wire_r_init(&r, c->meta, c->h.meta_len);
	if (c->h.type == WIRE_HELLO && c->hs.step == 0) {
		struct auth_hello hello;
		struct auth_challenge ch;
		memset(&hello, 0, sizeof hello);
		hello.role = wire_r_u8(&r);
		wire_r_str(&r, hello.node_id, sizeof hello.node_id);
		const uint8_t *n = wire_r_raw(&r, AUTH_NONCE_LEN);
		uint8_t mode = wire_r_u8(&r);
		if (wire_r_end(&r) != 0 || !n) {
			hs_malformed(c);
			return;
		}
		memcpy(hello.nonce, n, AUTH_NONCE_LEN);
		/* the claimed principal, for log lines until the proof confirms it
		 * (conn_who quotes it: control bytes and quotes come out escaped) */
		c->role = hello.role;
		conn_set_node_id(c, hello.node_id);
		if (mode != c->o.integrity) {
			char why[96];
			snprintf(why, sizeof why, "auth.integrity is %s there, %s here: one mode per cluster",
				 integrity_name(mode), integrity_name(c->o.integrity));
			conn_reject(c, KVN_ECONFIG, why);
			return;
		}
		rc = auth_server_hello(&c->hs, c->pol, &hello, &ch);
		if (rc) {
			conn_reject(c, KVN_EAUTH, rc == KVN_EAUTH ? "role not accepted here" : "malformed hello");
			return;
		}
		wire_w_init(&w);
		wire_w_str(&w, ch.server_id);
		wire_w_raw(&w, ch.nonce, AUTH_NONCE_LEN);
		wire_w_u8(&w, (uint8_t)c->o.integrity);
		conn_send_hs(c, WIRE_CHALLENGE, &w, 0);
		wire_w_fini(&w);
		conn_flush(c);
		return;
	}
	if (c->h.type == WIRE_PROOF && c->hs.step != 0) {
		struct auth_proof proof, acc;
		struct auth_session *sess = NULL;
		const uint8_t *p = wire_r_raw(&r, AUTH_MAC_LEN);
		if (wire_r_end(&r) != 0 || !p) {
			hs_malformed(c);
			return;
		}
		memcpy(proof.mac, p, AUTH_MAC_LEN);
		rc = auth_server_verify(&c->hs, &proof, &acc, &sess);
		if (rc) {
			conn_reject(c, KVN_EAUTH, "wrong secret");
			return;
		}
		uint32_t open = 0;
		if (c->cnt) {
			pthread_mutex_lock(&c->cnt->mu);
			open = c->cnt->open;
			pthread_mutex_unlock(&c->cnt->mu);
		}
		if (c->cnt && open >= c->o.max_conns) {
			/* the pre-auth pool is apart; authenticated ones still honour
			 * max_connections */
			auth_session_free(sess);
			conn_reject(c, KVN_EBUSY, "max_connections reached");
			return;
		}
		wire_w_init(&w);
		wire_w_raw(&w, acc.mac, AUTH_MAC_LEN);
		conn_send_hs(c, WIRE_ACCEPT, &w, 0);
		wire_w_fini(&w);
		c->sess = sess;
		auth_hs_fini(&c->hs);
		conn_up(c);
		conn_flush(c);
		return;
	}
	{
		uint64_t supp = 0;
		if (conn_log_ok(c, &supp))
			log_warn("auth: unexpected %s during handshake from %s: closing%s", wire_type_name(c->h.type),
				 c->remote, CONN_SUPP(supp));
	}
	hs_malformed(c);
}

void conn_hs_client(struct conn *c)
{
	struct wire_r r;
	struct wire_w w;
	int rc;

	wire_r_init(&r, c->meta, c->h.meta_len);
	if (c->h.type == WIRE_REJECT) {
		int err = c->h.status ? c->h.status : KVN_EAUTH;
		/* once per outage, not per reconnect attempt: conn_fail's line
		 * (and the owner's) say the rest */
		if (!c->down_logged)
			log_warn("connection to %s: the server refused us: %s", c->addr, kvn_strerror(err));
		conn_fail(c, err);
		return;
	}
	if (c->h.type == WIRE_CHALLENGE) {
		struct auth_challenge ch;
		struct auth_proof proof;
		memset(&ch, 0, sizeof ch);
		wire_r_str(&r, ch.server_id, sizeof ch.server_id);
		const uint8_t *n = wire_r_raw(&r, AUTH_NONCE_LEN);
		uint8_t mode = wire_r_u8(&r);
		if (wire_r_end(&r) != 0 || !n) {
			hs_malformed(c);
			return;
		}
		if (mode != c->o.integrity) {
			/* once per outage, like a refusal */
			if (!c->down_logged)
				log_warn("connection to %s: auth.integrity is %s there, %s here: one mode per "
					 "cluster",
					 c->addr, integrity_name(mode), integrity_name(c->o.integrity));
			conn_fail(c, KVN_ECONFIG);
			return;
		}
		memcpy(ch.nonce, n, AUTH_NONCE_LEN);
		rc = auth_client_proof(&c->hs, &ch, &proof);
		if (rc) {
			conn_fail(c, rc == KVN_ESTATE ? KVN_EPROTO : rc);
			return;
		}
		snprintf(c->server_id, sizeof c->server_id, "%s", ch.server_id);
		wire_w_init(&w);
		wire_w_raw(&w, proof.mac, AUTH_MAC_LEN);
		conn_send_hs(c, WIRE_PROOF, &w, 0);
		wire_w_fini(&w);
		conn_flush(c);
		return;
	}
	if (c->h.type == WIRE_ACCEPT) {
		struct auth_proof sp;
		struct auth_session *sess = NULL;
		const uint8_t *p = wire_r_raw(&r, AUTH_MAC_LEN);
		if (wire_r_end(&r) != 0 || !p) {
			hs_malformed(c);
			return;
		}
		memcpy(sp.mac, p, AUTH_MAC_LEN);
		rc = auth_client_finish(&c->hs, &sp, &sess);
		if (rc) {
			NSTAT_ADD(auth_fail, 1);
			log_warn("auth: server at %s failed to prove it knows the secret: closing", c->addr);
			conn_fail(c, KVN_EAUTH);
			return;
		}
		c->sess = sess;
		auth_hs_fini(&c->hs);
		conn_up(c);
		conn_flush(c);
		return;
	}
	hs_malformed(c);
}

/* Outgoing: the socket is connected; say HELLO. */
void conn_start_handshake(struct conn *c)
{
	struct auth_hello hello;
	struct wire_w w;
	int rc;

	c->state = C_HANDSHAKE;
	if (c->ring)
		auth_keyring_first(c->ring, &c->secret);
	rc = auth_client_start(&c->hs, c->role, c->node_id, &c->secret, &hello);
	if (rc) {
		conn_fail(c, rc);
		return;
	}
	wire_w_init(&w);
	wire_w_u8(&w, hello.role);
	wire_w_str(&w, hello.node_id);
	wire_w_raw(&w, hello.nonce, AUTH_NONCE_LEN);
	wire_w_u8(&w, (uint8_t)c->o.integrity);
	conn_send_hs(c, WIRE_HELLO, &w, 0);
	wire_w_fini(&w);
	conn_flush(c);
}
