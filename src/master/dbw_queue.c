/*
 * dbw_queue: the SQLite writer's side of the consumer queue: DBW_QUEUE
 * (layout at the top of dbw.c), one meta_queue call per operation, each
 * operation's result kept for the reply so the master hands out only the
 * leases master.db recorded.
 */
#include "config.h"

#include <stdlib.h>

#include "master/dbw_int.h"

/* Consumer-queue operations (master_queue.c): each one's result is
 * answered, so the master hands out only the leases that were recorded. */
int dbw_on_queue(struct dbw *d, struct actor_msg *m)
{
	struct dbw_wfail f = { 0 };
	struct wire_r r;
	uint32_t n;
	int rc;

	wire_r_init(&r, m->meta, m->meta_len);
	n = wire_r_u32(&r);
	if (r.err || n > 2 * PROTO_MAX_ITEMS)
		return KVN_EPROTO;
	if ((rc = dbw_group_join(d)) != 0)
		return rc;
	d->urgent = 1;
	d->group_writes += n;
	free(d->res);
	d->res = kvn_xcalloc(n ? n : 1, 1);
	d->nres = n;
	for (uint32_t i = 0; i < n && !r.err; i++) {
		struct meta_lease l = { 0 };
		char holder[PROTO_HOLDER_MAX + 1];
		uint16_t klen = 0;
		uint8_t op = wire_r_u8(&r), keep;
		uint32_t pn;
		rc = 0;
		switch (op) {
		case DBW_Q_LEASE:
			l.lease_id = wire_r_u64(&r);
			l.key = wire_r_key(&r, &klen);
			l.klen = klen;
			l.gen = wire_r_u64(&r);
			wire_r_str(&r, holder, sizeof holder);
			l.holder = holder;
			l.part_i = wire_r_u32(&r);
			l.part_n = wire_r_u32(&r);
			l.deadline_ms = wire_r_u64(&r);
			if (!r.err)
				rc = meta_lease_put(d->db, &l);
			break;
		case DBW_Q_RENEW:
			l.lease_id = wire_r_u64(&r);
			l.deadline_ms = wire_r_u64(&r);
			if (!r.err)
				rc = meta_lease_renew(d->db, l.lease_id, l.deadline_ms);
			break;
		case DBW_Q_RETURN:
			l.lease_id = wire_r_u64(&r);
			if (!r.err)
				rc = meta_lease_del(d->db, l.lease_id);
			break;
		case DBW_Q_CONSUME:
			l.lease_id = wire_r_u64(&r);
			l.key = wire_r_key(&r, &klen);
			l.gen = wire_r_u64(&r);
			keep = wire_r_u8(&r);
			if (!r.err)
				rc = meta_sample_consume(d->db, l.lease_id, l.key, klen, l.gen, keep);
			break;
		case DBW_Q_PART:
			pn = wire_r_u32(&r);
			keep = wire_r_u8(&r);
			if (!r.err)
				rc = meta_queue_part(d->db, pn, kvn_wall_ms(), keep) == 0;
			break;
		default:
			r.err = KVN_EPROTO;
		}
		if (rc < 0)
			dbw_wfail_note(&f, rc, l.key, klen, l.gen);
		else if (!r.err)
			d->res[i] = (uint8_t)rc;
	}
	if ((rc = wire_r_end(&r)) != 0) {
		log_error("dbw: malformed queue request");
		return rc;
	}
	return dbw_wfail_end(d, &f, "queue operations", "(queue)", n);
}

