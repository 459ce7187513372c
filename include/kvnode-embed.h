/*
 * kvnode embedded mode (libkvnode-embed): a program runs a whole
 * single-node kvnode in its own process (the master with its master.db,
 * the peer with its DRAM arena and optional disk tier) and uses it through
 * the ordinary client API of kvnode.h, with no socket in between.
 *
 * Link with `pkg-config --cflags --libs kvnode-embed` (libkvnode-embed
 * also carries every function of kvnode.h: link it instead of libkvnode,
 * not beside it).  docs/embedding.md has the details.
 *
 * Threads: kvn_embed_open starts the roles on threads of their own (the
 * master and the peer share one, SQLite's writer has one, the disk tier's
 * writer one), which run until kvn_embed_close.  Clients from
 * kvn_embed_connect follow kvnode.h's rules (one per thread); they reach
 * the in-process master and peer by message, as clients: they may do what
 * a client connected over TCP may do, nothing more.
 */
#ifndef KVNODE_EMBED_H
#define KVNODE_EMBED_H

#include <stdint.h>

#include "kvnode.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kvn_embed;

/* What an embedding program sets.  Every field is optional: NULL/0 takes
 * the config file's value (config_path), else the built-in default of
 * docs/configuration.md.  A NULL options pointer is all defaults. */
struct kvn_embed_options {
	/* A kvnode.conf to read first (any key of docs/configuration.md);
	 * NULL: none (etc/kvnode.conf is NOT looked for). */
	const char *config_path;
	/* node.data_dir: master.db, peer.db and the disk tier live there;
	 * one process at a time ({data_dir}/LOCK). */
	const char *data_dir;
	uint64_t dram_size;   /* peer.dram_size: the peer's arena, bytes */
	uint64_t disk_size;   /* peer.disk_size: the disk tier, bytes (0 and none configured: no disk tier) */
	const char *disk_dir; /* peer.disk_dir */
	uint64_t timeout_ms;  /* client.timeout of the embedded clients */
	/* 0 (default): no socket at all.  1: also listen on master.listen and
	 * peer.listen for clients of other processes, authenticated with the
	 * secret files of [auth] (made in data_dir when missing, as kvnode
	 * does). */
	int listen;
};

/* Open the node and start its roles.  On success *out owns it; free it
 * with kvn_embed_close.  Errors (the reason in kvn_last_detail(NULL)):
 * KVN_ECONFIG (a bad option or config key), KVN_EBUSY (data_dir is open
 * in another process, or already in this one), KVN_EDB (master.db),
 * KVN_ENOMEM (the arena), KVN_EIO (the data_dir or the disk tier),
 * KVN_ECONN (listen: a port in use). */
int kvn_embed_open(const struct kvn_embed_options *opt, struct kvn_embed **out);

/* A client of the embedded node for the calling thread, as kvn_connect
 * gives (close it with kvn_close, before kvn_embed_close).  Errors:
 * KVN_ECLOSED (the node is closing), KVN_ETIMEDOUT. */
int kvn_embed_connect(struct kvn_embed *e, struct kvn_client **out);

/* The handle's own client, made by kvn_embed_open on the opening thread
 * and closed by kvn_embed_close: for a program with one thread.  Other
 * threads use kvn_embed_connect. */
struct kvn_client *kvn_embed_client(struct kvn_embed *e);

/* Close the handle's own client (draining its async puts as kvn_close
 * does), stop the roles (with a disk tier and peer.flush_on_stop, the
 * DRAM values are written to disk first, within peer.stop_timeout),
 * commit master.db, release data_dir and free everything.  Clients of
 * kvn_embed_connect still open answer KVN_ECLOSED from then on (kvn_close
 * them anyway).  NULL is ok.  Call it from the thread that opened e. */
void kvn_embed_close(struct kvn_embed *e);

#ifdef __cplusplus
}
#endif
#endif
