/*
 * client_env: what t/spec and t/via read of a client, through the getters
 * of client/client.h (no private fields).
 */
#ifndef KVN_T_CLIENT_ENV_H
#define KVN_T_CLIENT_ENV_H

#include "client/client.h"

/* c's counters, read through the getter */
static inline struct client_stats stats(struct kvn_client *c)
{
	struct client_stats s;
	client_get_stats(c, &s);
	return s;
}

/* The peers route answers have named (up to 2). */
static inline int nseen(struct kvn_client *c)
{
	int n = 0;
	client_sole_get(c, NULL, &n);
	return n;
}

#endif
