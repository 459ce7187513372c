/*
 * embed_int: what embed.c (kvn_embed_open/close: the roles of one node in
 * this process) and embed_link.c (the in-process links its clients reach
 * the master and the peer through) share.
 */
#ifndef KVN_EMBED_INT_H
#define KVN_EMBED_INT_H

#include <pthread.h>
#include <stdint.h>

#include "actors/actor.h"

/* Where an embedded node's actors are, for its clients' connectors.
 * Shared by the handle and every client (each holds a reference), since
 * a client may outlive the handle: the actor ids then name nothing, and a
 * send to them fails (KVN_ECLOSED) instead of reaching freed memory. */
struct embed_dir {
	pthread_mutex_t mu;
	int refs;
	int closed; /* kvn_embed_close began: no new links */
	actor_id master, peer;
	/* the peer itself, for the local path's map step (embed_local_map):
	 * used only under mu while !closed, when it is alive */
	struct actor *peer_actor;
	char node_id[65]; /* the peer's (and master's) node id */
};

struct embed_dir *embed_dir_new(void);
/* void *: it is also a client_connector's ref */
void embed_dir_ref(void *arg);
/* client_connector.release: drop a reference (the last frees). */
void embed_dir_unref(void *d);
/* client_connector.connect: an in-process link from the client actor
 * owner to the master (node_id NULL) or to the peer node_id (this node's
 * only; another one is KVN_ECONN). */
int embed_connect(void *dir, void *owner, const char *node_id, const char *addr, uint64_t *proxy);

/* client_connector.local_map / local_unmap: the same-host path of an
 * embedded client (peer_local_redeem over the link `link`, which must be
 * to this node's peer). */
struct net_region;
int embed_local_map(void *dir, uint64_t link, const uint8_t *token, struct net_region *arena,
		    struct net_region *staging, void **pin);
void embed_local_unmap(void *pin);
/* Tests: value bytes the links of this process have carried as message
 * payloads (requests and replies), since it started. */
uint64_t embed_link_payload_bytes(void);

/* Tests (t/embed_roles): the directory of an open handle. */
struct kvn_embed;
struct embed_dir *embed_dir_of(struct kvn_embed *e);

#endif
