/* t/list_env.h: what t/list and t/list_model share: a LIST request's
 * metadata written field by field, so a test can send values the encoder
 * (proto_list_enc) would never write. */
#ifndef KVN_T_LIST_ENV_H
#define KVN_T_LIST_ENV_H

#include "actors/actor.h"
#include "base/base.h"
#include "net/net.h"
#include "net/proto.h"

/* A WIRE_LIST message: cursor, max, a prefix length and (prefix non-NULL)
 * that many bytes of prefix, then one byte more when trailing. */
static inline struct actor_msg *list_msg(uint64_t cursor, uint32_t max, uint32_t plen, const void *prefix,
					 int trailing)
{
	struct wire_w w;
	struct actor_msg *m = actor_msg_new(WIRE_LIST);
	wire_w_init(&w);
	wire_w_u64(&w, cursor);
	wire_w_u32(&w, max);
	wire_w_u32(&w, plen);
	wire_w_raw(&w, prefix, prefix ? plen : 0);
	if (trailing)
		wire_w_u8(&w, 0);
	if (wire_w_to_msg(&w, m) != 0)
		kvn_fatal("list_msg");
	return m;
}

#endif
