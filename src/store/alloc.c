/*
 * alloc: the peer's DRAM arena and its page allocator.  Owns one shared
 * mapping of a sealed memfd (huge pages when asked and available, always
 * pre-faulted; the fd is what a same-host client maps read-only, see
 * docs/architecture.md "Same-host clients") and a bitmap of
 * its pages (1 = in use).  Allocation is next-fit for one contiguous run,
 * falling back to the largest free runs when the arena is fragmented; a free
 * only clears bits, so neighbouring free runs coalesce by construction.
 * Not thread-safe: the peer actor owns it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/base.h"
#include "store/store.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL */
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* linux/memfd.h */
#endif
#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif

#define HUGE_2M (2ull << 20)

enum backing { BACK_PLAIN = 0, BACK_HUGETLB = 1, BACK_THP = 2 };

struct alloc_arena {
	uint8_t *base;
	uint64_t size;
	uint64_t page_size;
	unsigned page_shift;
	uint64_t npages;
	uint64_t nwords;
	uint64_t *bits;      /* bit set = page in use; bits past npages stay set */
	uint64_t free_pages; /* kept in step with the bitmap; checked in get_stats */
	uint64_t hint;       /* next-fit: where the last allocation ended */
	uint64_t allocs, frees, enospc;
	int backing;
	int huge; /* the memory is really backed by huge pages */
	int fd;   /* the memfd behind base (sealed against shrink and grow), or -1 */
};

/* ---- bitmap ------------------------------------------------------------- */

/* First page >= from whose bit is clear, or limit. */
static uint64_t next_free(const struct alloc_arena *a, uint64_t from, uint64_t limit)
{
	if (from >= limit)
		return limit;
	uint64_t w = from >> 6;
	uint64_t x = ~a->bits[w] & (~0ull << (from & 63));
	uint64_t wend = (limit + 63) >> 6;
	for (;;) {
		if (x) {
			uint64_t r = (w << 6) + (uint64_t)__builtin_ctzll(x);
			return r < limit ? r : limit;
		}
		if (++w >= wend)
			return limit;
		x = ~a->bits[w];
	}
}

/* First page >= from whose bit is set, or limit. */
static uint64_t next_used(const struct alloc_arena *a, uint64_t from, uint64_t limit)
{
	if (from >= limit)
		return limit;
	uint64_t w = from >> 6;
	uint64_t x = a->bits[w] & (~0ull << (from & 63));
	uint64_t wend = (limit + 63) >> 6;
	for (;;) {
		if (x) {
			uint64_t r = (w << 6) + (uint64_t)__builtin_ctzll(x);
			return r < limit ? r : limit;
		}
		if (++w >= wend)
			return limit;
		x = a->bits[w];
	}
}

static inline uint64_t range_mask(uint64_t bit, uint64_t n)
{
	return (n >= 64 ? ~0ull : ((1ull << n) - 1)) << bit;
}

/* Mark [s, s+n) used; every page must have been free. */
static void bits_set(struct alloc_arena *a, uint64_t s, uint64_t n)
{
	while (n > 0) {
		uint64_t w = s >> 6, bit = s & 63;
		uint64_t k = 64 - bit < n ? 64 - bit : n;
		uint64_t m = range_mask(bit, k);
		KVN_ASSERT((a->bits[w] & m) == 0);
		a->bits[w] |= m;
		s += k;
		n -= k;
	}
}

/* Mark [s, s+n) free; every page must have been in use (a double free or a
 * stray extent is a bug in the caller's bookkeeping, not an input error). */
static void bits_clear(struct alloc_arena *a, uint64_t s, uint64_t n)
{
	while (n > 0) {
		uint64_t w = s >> 6, bit = s & 63;
		uint64_t k = 64 - bit < n ? 64 - bit : n;
		uint64_t m = range_mask(bit, k);
		KVN_ASSERT((a->bits[w] & m) == m);
		a->bits[w] &= ~m;
		s += k;
		n -= k;
	}
}

/* ---- region ------------------------------------------------------------- */

/* Touch one byte per base page: the fallback when MADV_POPULATE_WRITE is not
 * known to the kernel. */
static void touch_pages(uint8_t *p, uint64_t len)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t step = ps > 0 ? (uint64_t)ps : 4096;
	for (uint64_t off = 0; off < len; off += step)
		((volatile uint8_t *)p)[off] = 0;
}

/* Does the VMA holding p carry transparent huge pages?  Reads /proc/self/smaps
 * once at start so the stat reports what the kernel gave, not what we asked. */
static int thp_backed(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0, found = 0;
	uintptr_t addr = (uintptr_t)p;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, kb;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = addr >= lo && addr < hi;
			continue;
		}
		/* the arena is a shared memfd: shmem huge pages show here */
		if (in && (sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1 ||
			   sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) && kb > 0) {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/* A shared mapping of fd (len bytes), aligned to 2 MiB when that is useful
 * for THP: reserve a little more address space, map the file over it at the
 * aligned address, give back the rest. */
static void *map_fd(int fd, uint64_t len, int align_huge)
{
	uint64_t extra = align_huge ? HUGE_2M : 0;
	uint8_t *r = mmap(NULL, len + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return NULL;
	uint64_t head = extra ? (HUGE_2M - ((uintptr_t)r & (HUGE_2M - 1))) & (HUGE_2M - 1) : 0;
	uint8_t *p = mmap(r + head, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		munmap(r, len + extra);
		return NULL;
	}
	if (head)
		munmap(r, head);
	if (extra - head)
		munmap(p + len, extra - head);
	return p;
}

/* A memfd of len bytes, sealed so its size can never change again: a
 * client that maps it can never be made to fault past the end (SIGBUS) by
 * a truncate, and cannot grow it either. */
static int memfd_sized(uint64_t len, unsigned extra_flags)
{
	int fd = memfd_create("kvnode-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING | extra_flags);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int map_region(struct alloc_arena *a, int hugepages)
{
	uint64_t len = a->size;
	uint8_t *p;
	int fd;

	if (hugepages && len % HUGE_2M == 0) {
		/* hugetlb reserves at mmap time, so a short pool fails here and
		 * not later at a page fault */
		fd = memfd_sized(len, MFD_HUGETLB | MFD_HUGE_2MB);
		if (fd >= 0) {
			p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
			if (p != MAP_FAILED) {
				a->base = p;
				a->fd = fd;
				a->backing = BACK_HUGETLB;
				a->huge = 1;
				return 0;
			}
			close(fd);
		}
		log_debug("arena: hugetlb memfd for %" PRIu64 " bytes failed (%s), trying THP", len,
			  strerror(errno));
	}
	fd = memfd_sized(len, 0);
	if (fd < 0)
		return KVN_ENOMEM;
	p = map_fd(fd, len, hugepages && len >= HUGE_2M);
	if (!p) {
		close(fd);
		return KVN_ENOMEM;
	}
	a->base = p;
	a->fd = fd;
	a->backing = BACK_PLAIN;
	if (hugepages) {
		/* shmem THP follows /sys/kernel/mm/transparent_hugepage/shmem_enabled */
		if (madvise(p, len, MADV_HUGEPAGE) == 0)
			a->backing = BACK_THP;
	} else {
		(void)madvise(p, len, MADV_NOHUGEPAGE);
	}
	if (madvise(p, len, MADV_POPULATE_WRITE) != 0) {
		if (errno == ENOMEM || errno == EFAULT) {
			munmap(p, len);
			close(fd);
			a->base = NULL;
			a->fd = -1;
			return KVN_ENOMEM;
		}
		touch_pages(p, len);
	}
	a->huge = a->backing == BACK_THP && thp_backed(p);
	return 0;
}

/* ---- public ------------------------------------------------------------- */

int alloc_arena_new(uint64_t size, uint64_t page_size, int hugepages, struct alloc_arena **out)
{
	struct alloc_arena *a;
	uint64_t t0 = kvn_now_ns();
	int rc;

	if (!out)
		return KVN_EINVAL;
	*out = NULL;
	if (page_size < 4096 || (page_size & (page_size - 1)) != 0)
		return KVN_EINVAL;
	if (size == 0 || size % page_size != 0 || size > (uint64_t)SIZE_MAX / 2)
		return KVN_EINVAL;
	if (size / page_size > UINT32_MAX) /* extents carry 32-bit page numbers */
		return KVN_EINVAL;

	a = kvn_xcalloc(1, sizeof *a);
	a->size = size;
	a->page_size = page_size;
	a->page_shift = (unsigned)__builtin_ctzll(page_size);
	a->npages = size / page_size;
	a->nwords = (a->npages + 63) / 64;
	a->bits = kvn_xcalloc(a->nwords, sizeof *a->bits);
	if (a->npages & 63) /* the tail of the last word is never free */
		a->bits[a->nwords - 1] = ~0ull << (a->npages & 63);
	a->free_pages = a->npages;
	a->fd = -1;

	rc = map_region(a, hugepages != 0);
	if (rc) {
		free(a->bits);
		free(a);
		return rc;
	}
	log_info("arena: %" PRIu64 " bytes, %" PRIu64 "-byte pages, %s%s, pre-faulted in %" PRIu64
		 " ms",
		 size, page_size,
		 a->backing == BACK_HUGETLB ? "hugetlb"
		 : a->backing == BACK_THP   ? "THP requested"
					    : "base pages",
		 a->backing == BACK_THP ? (a->huge ? " (granted)" : " (not granted)") : "",
		 (kvn_now_ns() - t0) / 1000000);
	*out = a;
	return 0;
}

void alloc_arena_free(struct alloc_arena *a)
{
	if (!a)
		return;
	munmap(a->base, a->size);
	if (a->fd >= 0)
		close(a->fd);
	free(a->bits);
	free(a);
}

/* Keep the `cap` largest runs seen so far in ext[], largest first. */
static void topk_insert(struct alloc_extent *ext, int cap, int *nk, uint64_t s, uint64_t len)
{
	int i = *nk;
	if (i == cap) {
		if (len <= ext[cap - 1].npages)
			return;
		i--;
	} else {
		(*nk)++;
	}
	while (i > 0 && ext[i - 1].npages < len) {
		ext[i] = ext[i - 1];
		i--;
	}
	ext[i].page = (uint32_t)s;
	ext[i].npages = (uint32_t)len;
}

/* First free run of >= n pages that starts in [pos, stop); UINT64_MAX if
 * none.  Each run is only followed as far as n pages, so a large free area
 * costs n/64 words, not a walk to its end. */
static uint64_t find_run(const struct alloc_arena *a, uint64_t pos, uint64_t stop, uint64_t n)
{
	for (;;) {
		uint64_t s = next_free(a, pos, a->npages);
		if (s >= stop)
			return UINT64_MAX;
		uint64_t lim = a->npages - s > n ? s + n : a->npages;
		uint64_t e = next_used(a, s, lim);
		if (e - s >= n)
			return s;
		pos = e;
	}
}

/* No run of n pages exists: take the largest runs first, so the value needs
 * as few extents as possible and failure means max_ext runs cannot hold it.
 * Returns the number of extents, or 0. */
static int gather_runs(struct alloc_arena *a, uint64_t n, struct alloc_extent *ext, int max_ext)
{
	uint64_t pos = 0, need = n;
	int nk = 0, used = 0;

	while (pos < a->npages) {
		uint64_t s = next_free(a, pos, a->npages);
		if (s >= a->npages)
			break;
		uint64_t e = next_used(a, s, a->npages);
		topk_insert(ext, max_ext, &nk, s, e - s);
		pos = e;
	}
	while (used < nk && need > 0) {
		if (ext[used].npages > need)
			ext[used].npages = (uint32_t)need;
		need -= ext[used].npages;
		used++;
	}
	if (need > 0)
		return 0;
	/* address order: the caller fills the value front to back */
	for (int i = 1; i < used; i++) {
		struct alloc_extent x = ext[i];
		int j = i;
		while (j > 0 && ext[j - 1].page > x.page) {
			ext[j] = ext[j - 1];
			j--;
		}
		ext[j] = x;
	}
	return used;
}

int alloc_pages(struct alloc_arena *a, uint64_t bytes, struct alloc_extent *ext, int max_ext)
{
	uint64_t n, s;
	int used;

	if (!a || !ext || max_ext < 1)
		return KVN_EINVAL;
	if (bytes == 0)
		return 0;
	n = (bytes >> a->page_shift) + ((bytes & (a->page_size - 1)) != 0);
	if (n > a->free_pages) {
		a->enospc++;
		return KVN_ENOSPC;
	}

	/* Next-fit: from the hint to the end (a free run the hint falls into
	 * counts from the hint), then runs starting before the hint, whole. */
	s = find_run(a, a->hint, a->npages, n);
	if (s == UINT64_MAX)
		s = find_run(a, 0, a->hint, n);
	if (s != UINT64_MAX) {
		bits_set(a, s, n);
		a->free_pages -= n;
		a->hint = s + n < a->npages ? s + n : 0;
		ext[0].page = (uint32_t)s;
		ext[0].npages = (uint32_t)n;
		a->allocs++;
		return 1;
	}
	used = gather_runs(a, n, ext, max_ext);
	if (used == 0) {
		a->enospc++;
		return KVN_ENOSPC;
	}
	for (int i = 0; i < used; i++)
		bits_set(a, ext[i].page, ext[i].npages);
	a->free_pages -= n;
	uint64_t end = (uint64_t)ext[used - 1].page + ext[used - 1].npages;
	a->hint = end < a->npages ? end : 0;
	a->allocs++;
	return used;
}

void alloc_release(struct alloc_arena *a, const struct alloc_extent *ext, int n)
{
	if (!a || n <= 0)
		return;
	KVN_ASSERT(ext != NULL);
	for (int i = 0; i < n; i++) {
		uint64_t s = ext[i].page, k = ext[i].npages;
		KVN_ASSERT(k > 0 && s < a->npages && k <= a->npages - s);
		bits_clear(a, s, k);
		a->free_pages += k;
	}
	a->frees++;
}

void *alloc_addr(const struct alloc_arena *a, uint32_t page)
{
	KVN_ASSERT(page < a->npages);
	return a->base + ((uint64_t)page << a->page_shift);
}

uint64_t alloc_page_size(const struct alloc_arena *a)
{
	return a->page_size;
}

uint64_t alloc_free_bytes(const struct alloc_arena *a)
{
	return a->free_pages << a->page_shift;
}

void alloc_get_stats(const struct alloc_arena *a, struct alloc_stats *st)
{
	uint64_t used = 0, largest = 0, pos = 0;

	memset(st, 0, sizeof *st);
	for (uint64_t w = 0; w < a->nwords; w++)
		used += (uint64_t)__builtin_popcountll(a->bits[w]);
	used -= a->nwords * 64 - a->npages; /* the never-free tail bits */
	KVN_ASSERT(a->npages - used == a->free_pages);
	while (pos < a->npages) {
		uint64_t s = next_free(a, pos, a->npages);
		if (s >= a->npages)
			break;
		uint64_t e = next_used(a, s, a->npages);
		if (e - s > largest)
			largest = e - s;
		pos = e;
	}
	st->total_bytes = a->size;
	st->used_bytes = used << a->page_shift;
	st->page_size = a->page_size;
	st->total_pages = a->npages;
	st->free_pages = a->npages - used;
	st->largest_free_run = largest;
	st->allocs = a->allocs;
	st->frees = a->frees;
	st->enospc = a->enospc;
	st->hugepages = (uint64_t)a->huge;
}

void alloc_stats_each(const struct alloc_stats *st, kvn_stat_fn fn, void *arg)
{
	ALLOC_STATS_FIELDS(KVN_STAT_VISIT)
}

void *alloc_base(const struct alloc_arena *a, uint64_t *len)
{
	if (len)
		*len = a->size;
	return a->base;
}

int alloc_fd(const struct alloc_arena *a)
{
	return a->fd;
}
