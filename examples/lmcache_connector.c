/* examples/lmcache_connector.c: the connector of lmcache_connector.h. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "lmcache_connector.h"

#define KEY_MAX 160

struct lmc {
	struct kvn_client *c;
	char prefix[KEY_MAX - 17]; /* "model/layout/" */
};

static size_t key_of(const struct lmc *l, uint64_t hash, char *key)
{
	return (size_t)snprintf(key, KEY_MAX, "%s%016llx", l->prefix, (unsigned long long)hash);
}

int lmc_open(const char *config, const char *model, const char *layout, struct lmc **out)
{
	struct kvn_options o = { .config_path = config };
	struct lmc *l = calloc(1, sizeof *l);
	int rc = l ? 0 : KVN_ENOMEM;
	size_t pmax = sizeof l->prefix;

	if (rc == 0 && snprintf(l->prefix, pmax, "%s/%s/", model, layout) >= (int)pmax)
		rc = KVN_EKEYLEN;
	if (rc == 0 && (rc = kvn_connect(&o, &l->c)) == 0)
		*out = l;
	else
		free(l);
	return rc;
}

int lmc_store(struct lmc *l, uint64_t hash, const void *chunk, size_t len)
{
	char key[KEY_MAX];
	return kvn_put(l->c, key, key_of(l, hash, key), chunk, len, 0);
}

/* n items, then their keys, in one block to free: NULL on ENOMEM. */
static struct kvn_item *items_new(const struct lmc *l, const uint64_t *hashes, size_t n)
{
	struct kvn_item *it = calloc(1, n * (sizeof *it + KEY_MAX) + 1);

	for (size_t i = 0; it && i < n; i++) {
		it[i].key = (char *)(it + n) + i * KEY_MAX;
		it[i].klen = key_of(l, hashes[i], (char *)(it + n) + i * KEY_MAX);
	}
	return it;
}

int lmc_contains_prefix(struct lmc *l, const uint64_t *hashes, size_t n, size_t *count)
{
	struct kvn_item *it = items_new(l, hashes, n);
	if (!it)
		return KVN_ENOMEM;
	int rc = kvn_exists_prefix(l->c, it, n, count);
	free(it);
	return rc;
}

int lmc_retrieve(struct lmc *l, const uint64_t *hashes, size_t n, void *const *bufs, size_t cap, size_t *lens)
{
	struct kvn_item *it = items_new(l, hashes, n);
	if (!it)
		return KVN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		it[i].val = bufs[i];
		it[i].cap = cap;
	}
	int rc = kvn_batch_get(l->c, it, n);
	for (size_t i = 0; i < n; i++)
		lens[i] = it[i].status == 0 ? it[i].vlen : 0;
	free(it);
	return rc;
}

int lmc_store_async(struct lmc *l, const uint64_t *hashes, const void *const *chunks, size_t len, size_t n)
{
	uint64_t id;
	struct kvn_item *it = items_new(l, hashes, n);
	if (!it)
		return KVN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		it[i].val = (void *)chunks[i];
		it[i].vlen = len;
	}
	int rc = kvn_submit_put(l->c, it, n, 0, &id);
	if (rc)
		free(it); /* not started: nothing refers to it */
	return rc;
}

int lmc_fd(struct lmc *l)
{
	return kvn_fd(l->c);
}

int lmc_reap(struct lmc *l, size_t *failed)
{
	struct kvn_completion done[16];
	int n = kvn_reap(l->c, done, 16);

	for (int i = 0; i < n; i++) {
		for (size_t j = 0; j < done[i].n; j++)
			*failed += done[i].items[j].status != 0;
		free(done[i].items); /* the block items_new allocated */
	}
	return n;
}

void lmc_close(struct lmc *l)
{
	struct pollfd p = { .fd = kvn_fd(l->c), .events = POLLIN };
	size_t failed = 0;

	/* each submission completes by its deadline: reap them all here so
	 * their blocks are freed (kvn_close would drop the completions) */
	while (p.fd >= 0 && kvn_submit_pending(l->c) > 0)
		if (poll(&p, 1, 1000) >= 0)
			lmc_reap(l, &failed);
	kvn_close(l->c);
	free(l);
}
