/*
 * keytab_lease: the read leases of the key table (uthash on the lease id):
 * taken on a committed generation (in DRAM or on disk), released once,
 * expired by deadline unless an in-flight write holds them.  A lease keeps
 * its generation's pages (and disk file) until its release, even after the
 * generation left its key.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "store/keytab_int.h"

static void lease_drop(struct keytab *kt, struct kt_lease *l)
{
	struct kt_slot *s = l->slot;

	HASH_DELETE(hh, kt->leases, l);
	free(l);
	kt->st.leases--;
	KVN_ASSERT(s->leases > 0);
	s->leases--;
	keytab_i_doomed_check(kt, s);
}

int keytab_lease(struct keytab *kt, const void *key, size_t klen, uint64_t gen, uint64_t now_ms,
		 uint64_t ttl_ms, uint64_t *lease_id, struct keytab_view *view)
{
	struct kt_slot *s;
	struct kt_lease *l;
	int rc;

	if (!kt || !lease_id)
		return KVN_EINVAL;
	if ((rc = keytab_i_get(kt, key, klen, gen, &now_ms, &s)))
		return rc;
	l = kvn_xcalloc(1, sizeof *l);
	l->id = ++kt->last_lease_id;
	l->deadline = kt_deadline_of(now_ms, ttl_ms);
	l->slot = s;
	HASH_ADD(hh, kt->leases, id, sizeof l->id, l);
	s->leases++;
	kt->st.leases++;
	keytab_i_touch(kt, s);
	*lease_id = l->id;
	keytab_i_view(kt, view, s);
	return 0;
}

int keytab_release(struct keytab *kt, uint64_t lease_id)
{
	struct kt_lease *l = NULL;

	if (!kt)
		return KVN_EINVAL;
	HASH_FIND(hh, kt->leases, &lease_id, sizeof lease_id, l);
	if (!l) {
		kt->st.refused++;
		return KVN_ESTATE;
	}
	lease_drop(kt, l);
	return 0;
}

int keytab_lease_hold(struct keytab *kt, uint64_t lease_id, void *owner)
{
	struct kt_lease *l = NULL;

	if (!kt || !owner)
		return KVN_EINVAL;
	HASH_FIND(hh, kt->leases, &lease_id, sizeof lease_id, l);
	if (!l)
		return KVN_ESTATE;
	l->owner = owner;
	return 0;
}

/* A lease past its deadline is counted once.  Without an owner (a pin) it
 * is released now, its pages freed if its generation is gone.  With one,
 * the pages are still being written out of (a GET reply's evbuffer
 * references them): freeing them would hand pages under an in-flight write
 * to the next put, so the lease stays until that reference's cleanup calls
 * keytab_release; fn is told, so its owner can cut the write short (close
 * the connection).  fn runs after the walk, by lease id looked up again: it
 * may release any lease (one connection's cut ends all its references). */
int keytab_expire_leases_fn(struct keytab *kt, uint64_t now_ms, keytab_expired_fn fn, void *arg)
{
	struct kt_lease *l, *tmp;
	uint64_t *held = NULL;
	size_t nheld = 0, cap = 0;
	int n = 0;

	if (!kt)
		return 0;
	HASH_ITER(hh, kt->leases, l, tmp)
	{
		if (now_ms < l->deadline || l->expired)
			continue;
		kt->st.lease_expired++;
		n++;
		if (!l->owner) {
			lease_drop(kt, l);
			continue;
		}
		l->expired = 1;
		if (!fn)
			continue;
		if (nheld == cap) {
			cap = cap ? cap * 2 : 16;
			held = realloc(held, cap * sizeof *held);
			if (!held)
				kvn_fatal("out of memory");
		}
		held[nheld++] = l->id;
	}
	for (size_t i = 0; i < nheld; i++) {
		HASH_FIND(hh, kt->leases, &held[i], sizeof held[i], l);
		if (l)
			fn(arg, l->id, l->owner);
	}
	free(held);
	return n;
}

int keytab_expire_leases(struct keytab *kt, uint64_t now_ms)
{
	return keytab_expire_leases_fn(kt, now_ms, NULL, NULL);
}
