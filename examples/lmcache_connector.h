/* An LMCache-style connector over include/kvnode.h only: KV-cache chunks
 * under "model/layout/chunkhash", stored, probed by prefix, retrieved in
 * batches, stored in the background with completions on an fd. */
#ifndef LMCACHE_CONNECTOR_H
#define LMCACHE_CONNECTOR_H
#include <kvnode.h>

struct lmc;
/* config: a kvnode config file (NULL: etc/kvnode.conf). */
int lmc_open(const char *config, const char *model, const char *layout, struct lmc **out);
int lmc_store(struct lmc *l, uint64_t hash, const void *chunk, size_t len);
/* *count: how many leading chunks of hashes[0..n) are stored. */
int lmc_contains_prefix(struct lmc *l, const uint64_t *hashes, size_t n, size_t *count);
/* Batch get into bufs[i] (cap bytes each); lens[i]: each size (0: failed). */
int lmc_retrieve(struct lmc *l, const uint64_t *hashes, size_t n, void *const *bufs, size_t cap, size_t *lens);
/* Start storing n chunks of len bytes; they stay valid until reaped. */
int lmc_store_async(struct lmc *l, const uint64_t *hashes, const void *const *chunks, size_t len, size_t n);
/* Readable while finished async stores wait for lmc_reap, which returns
 * how many batches it took and adds the chunks that failed to *failed. */
int lmc_fd(struct lmc *l);
int lmc_reap(struct lmc *l, size_t *failed);
/* Wait for every async store (each bounded by its deadline), then close. */
void lmc_close(struct lmc *l);
#endif
