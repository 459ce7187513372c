/*
 * client: what the rest of the tree (the CLI) needs from the client library
 * beyond the public include/kvnode.h.  Not installed, not exported from
 * libkvnode.so.
 */
#ifndef KVN_CLIENT_H
#define KVN_CLIENT_H

/* ---- client (client_api.c) ---- */
struct kvn_conf;
struct kvn_client;
/* kvn_connect with an already loaded and finalized config (the CLI's, with
 * its --set overrides).  Takes ownership of conf's strings. */
int kvn_connect_conf(struct kvn_conf *conf, struct kvn_client **out);

#endif
