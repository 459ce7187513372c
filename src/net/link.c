/*
 * link: what a connection's owner may learn of the connection's session:
 * key material derived from it (net_link_material; the master and a peer
 * derive grant keys from the link between them without sending any).  An
 * owner on the connection's loop reads the session itself; for one on
 * another loop (net_opts.spread) the connection publishes its grant
 * material when it comes up, on its own thread, and withdraws it when it
 * ends.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <uthash.h>

#include "base/base.h"
#include "net/net_int.h"

int (*net_sim_material)(struct actor *a, const char *label, uint8_t out[AUTH_MAC_LEN]);

/* The grant material of authenticated connections on another loop than
 * their owner's, by proxy id. */
struct link_mat {
	actor_id id;
	uint8_t mat[AUTH_MAC_LEN];
	UT_hash_handle hh;
};
static pthread_mutex_t links_mu = PTHREAD_MUTEX_INITIALIZER;
static struct link_mat *links;

void conn_link_publish(struct conn *c)
{
	struct link_mat *l;

	/* an owner on the same loop reads the session itself */
	if (c->outgoing || !c->sess || c->link_published || !c->owner_elsewhere)
		return;
	l = kvn_xcalloc(1, sizeof *l);
	l->id = actor_id_of(c->self);
	if (auth_session_material(c->sess, AUTH_GRANT_LABEL, l->mat) != 0) {
		free(l);
		return;
	}
	pthread_mutex_lock(&links_mu);
	HASH_ADD(hh, links, id, sizeof l->id, l);
	pthread_mutex_unlock(&links_mu);
	c->link_published = 1;
}

void conn_link_withdraw(struct conn *c)
{
	struct link_mat *l;
	actor_id id = actor_id_of(c->self);

	if (!c->link_published)
		return;
	pthread_mutex_lock(&links_mu);
	HASH_FIND(hh, links, &id, sizeof id, l);
	if (l)
		HASH_DEL(links, l);
	pthread_mutex_unlock(&links_mu);
	if (l) {
		OPENSSL_cleanse(l->mat, sizeof l->mat);
		free(l);
	}
	c->link_published = 0;
}

static int link_material_remote(actor_id proxy, const char *label, uint8_t out[AUTH_MAC_LEN])
{
	struct link_mat *l;

	if (strcmp(label, AUTH_GRANT_LABEL) != 0)
		return KVN_EINVAL;
	pthread_mutex_lock(&links_mu);
	HASH_FIND(hh, links, &proxy, sizeof proxy, l);
	if (l)
		memcpy(out, l->mat, AUTH_MAC_LEN);
	pthread_mutex_unlock(&links_mu);
	return l ? 0 : KVN_EINVAL;
}

int net_link_material(struct actor_loop *loop, actor_id proxy, const char *label, uint8_t out[AUTH_MAC_LEN])
{
	struct actor *a = actor_lookup_local(loop, proxy);
	if (!a)
		return link_material_remote(proxy, label, out);
	if (!conn_of(a)) {
		int (*sim)(struct actor *, const char *, uint8_t *) =
			__atomic_load_n(&net_sim_material, __ATOMIC_ACQUIRE);
		return sim ? sim(a, label, out) : KVN_EINVAL;
	}
	struct conn *c = conn_of(a);
	if (c->state != C_UP || !c->sess)
		return KVN_ECONN;
	return auth_session_material(c->sess, label, out);
}

