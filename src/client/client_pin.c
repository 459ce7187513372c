/*
 * client_pin: kvn_batch_pin, kvn_batch_unpin and kvn_batch_evict.  Each is
 * a get-like call (client_get_like): the master routes the keys
 * (ROUTE_GET), then one PIN, UNPIN or EVICT_KEY request goes to each
 * destination peer with the routed generations, and an item that raced a
 * put (KVN_ESTALE) is routed again.  The peer is the authority on what
 * holds a value; these calls only ask it.
 */
#include "config.h"

#include "client/client_int.h"

int kvn_batch_pin(struct kvn_client *c, struct kvn_item *items, size_t n, uint64_t ttl_ms)
{
	if (ttl_ms == 0)
		return KVN_EINVAL;
	if (ttl_ms > PROTO_TTL_MAX_MS)
		ttl_ms = PROTO_TTL_MAX_MS; /* the node cuts it much shorter anyway */
	return client_get_like(c, items, n, WIRE_PIN, 0, NULL, ttl_ms);
}

int kvn_batch_unpin(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return client_get_like(c, items, n, WIRE_UNPIN, 0, NULL, 0);
}

int kvn_batch_evict(struct kvn_client *c, struct kvn_item *items, size_t n)
{
	return client_get_like(c, items, n, WIRE_EVICT_KEY, 0, NULL, 0);
}
