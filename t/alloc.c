/*
 * t/alloc: the DRAM arena and its bitmap page allocator: sizes, filling,
 * fragmentation, coalescing, exact stats, a randomized run against a shadow
 * bitmap, pre-faulting (RSS) and the double-free invariant.
 */
#include "config.h"

#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#include "base/base.h"
#include "store/store.h"

#define PS 4096u

static struct alloc_arena *arena(uint64_t pages, uint64_t ps)
{
	struct alloc_arena *a = NULL;
	int rc = alloc_arena_new(pages * ps, ps, 0, &a);
	if (rc || !a)
		kvn_fatal("alloc_arena_new(%" PRIu64 " pages): %d", pages, rc);
	return a;
}

static uint64_t free_pages(const struct alloc_arena *a)
{
	struct alloc_stats st;
	alloc_get_stats(a, &st);
	return st.free_pages;
}

static uint64_t ext_pages(const struct alloc_extent *e, int n)
{
	uint64_t s = 0;
	for (int i = 0; i < n; i++)
		s += e[i].npages;
	return s;
}

/* ---- cases -------------------------------------------------------------- */

static void t_bad_sizes(void)
{
	struct alloc_arena *a = (struct alloc_arena *)1;
	struct alloc_extent e[4];

	is_int(alloc_arena_new(0, PS, 0, &a), KVN_EINVAL, "size 0");
	ok(a == NULL, "*out cleared on error");
	is_int(alloc_arena_new(1 << 20, 0, 0, &a), KVN_EINVAL, "page size 0");
	is_int(alloc_arena_new(1 << 20, 2048, 0, &a), KVN_EINVAL, "page size below 4096");
	is_int(alloc_arena_new(1 << 20, 6144, 0, &a), KVN_EINVAL, "page size not a power of two");
	is_int(alloc_arena_new(3 * PS + 1, PS, 0, &a), KVN_EINVAL, "size not a page multiple");
	is_int(alloc_arena_new(PS, 2 * PS, 0, &a), KVN_EINVAL, "size smaller than a page");
	is_int(alloc_arena_new((UINT64_C(1) << 32) * PS, PS, 0, &a), KVN_EINVAL,
	       "more pages than 32-bit extents can name");
	is_int(alloc_arena_new(1 << 20, PS, 0, NULL), KVN_EINVAL, "NULL out");

	a = arena(8, PS);
	is_int(alloc_pages(a, PS, e, 0), KVN_EINVAL, "max_ext 0");
	is_int(alloc_pages(a, PS, NULL, 4), KVN_EINVAL, "NULL extents");
	is_int(alloc_pages(a, 0, e, 4), 0, "0 bytes: 0 extents");
	is_int(free_pages(a), 8, "nothing allocated by the refusals");
	alloc_arena_free(a);
	alloc_arena_free(NULL);
}

static void t_fill_enospc_reuse(void)
{
	enum { N = 130 }; /* not a multiple of 64: the bitmap tail matters */
	struct alloc_arena *a = arena(N, PS);
	struct alloc_extent e[N], x[2];
	struct alloc_stats st;
	bool seen[N] = { false };
	int distinct = 1, one_each = 1, i;
	uint64_t len;
	uint8_t *base = alloc_base(a, &len);

	is_int(len, (uint64_t)N * PS, "alloc_base length");
	for (i = 0; i < N; i++) {
		if (alloc_pages(a, PS, &e[i], 1) != 1 || e[i].npages != 1) {
			one_each = 0;
			break;
		}
		if (e[i].page >= N || seen[e[i].page])
			distinct = 0;
		else
			seen[e[i].page] = true;
	}
	ok(one_each, "%d single pages allocated", N);
	ok(distinct, "pages distinct and inside the arena");
	is_int(alloc_pages(a, 1, x, 2), KVN_ENOSPC, "full arena: ENOSPC");
	alloc_get_stats(a, &st);
	is_int(st.free_pages, 0, "no free page");
	is_int(st.used_bytes, (uint64_t)N * PS, "used bytes = arena");
	is_int(st.largest_free_run, 0, "no free run");
	is_int(st.enospc, 1, "ENOSPC counted");
	is_int(st.allocs, N, "allocs counted");

	/* every page is writable and distinct in memory */
	for (i = 0; i < N; i++)
		memset(alloc_addr(a, e[i].page), i & 0xff, PS);
	int intact = 1;
	for (i = 0; i < N; i++) {
		uint8_t *p = alloc_addr(a, e[i].page);
		if (p < base || p + PS > base + len || p[0] != (i & 0xff) || p[PS - 1] != (i & 0xff))
			intact = 0;
	}
	ok(intact, "each page holds its own bytes, all inside the region");
	ok((uint8_t *)alloc_addr(a, 0) == base && (uint8_t *)alloc_addr(a, N - 1) == base + (N - 1) * PS,
	   "alloc_addr is base + page * page_size");

	alloc_release(a, &e[77], 1);
	is_int(alloc_pages(a, 100, x, 2), 1, "a freed page is reused");
	is_int(x[0].page, e[77].page, "the same page comes back");
	alloc_get_stats(a, &st);
	is_int(st.frees, 1, "frees counted");
	for (i = 0; i < N; i++)
		alloc_release(a, &e[i], 1);
	is_int(free_pages(a), N, "all free again");
	alloc_arena_free(a);
}

static void t_bytes_rounding(void)
{
	struct alloc_arena *a = arena(16, 16384);
	struct alloc_extent e[2];

	is_int(alloc_page_size(a), 16384, "page size");
	is_int(alloc_pages(a, 1, e, 2), 1, "1 byte");
	is_int(e[0].npages, 1, "1 byte takes one page");
	alloc_release(a, e, 1);
	is_int(alloc_pages(a, 16385, e, 2), 1, "one page + 1 byte");
	is_int(e[0].npages, 2, "rounded up to 2 pages");
	alloc_release(a, e, 1);
	is_int(alloc_pages(a, 32768, e, 2), 1, "exactly 2 pages");
	is_int(e[0].npages, 2, "exact multiple not rounded up");
	alloc_release(a, e, 1);
	is_int(alloc_pages(a, 16 * 16384 + 1, e, 2), KVN_ENOSPC, "one byte more than the arena");
	is_int(alloc_pages(a, UINT64_MAX, e, 2), KVN_ENOSPC, "UINT64_MAX bytes");
	is_int(free_pages(a), 16, "nothing leaked");
	alloc_arena_free(a);
}

static void t_fragmentation(void)
{
	struct alloc_arena *a = arena(64, PS);
	struct alloc_extent run[16], e[16];
	struct alloc_stats st;
	int i, n;

	for (i = 0; i < 16; i++)
		if (alloc_pages(a, 4 * PS, &run[i], 1) != 1)
			break;
	is_int(i, 16, "16 runs of 4 pages fill 64 pages");
	for (i = 0; i < 16; i += 2)
		alloc_release(a, &run[i], 1);
	alloc_get_stats(a, &st);
	is_int(st.free_pages, 32, "32 pages free");
	is_int(st.largest_free_run, 4, "in runs of 4");

	is_int(alloc_pages(a, 32 * PS, e, 4), KVN_ENOSPC, "32 pages in 4 extents: ENOSPC");
	is_int(free_pages(a), 32, "ENOSPC allocated nothing");
	is_int(alloc_pages(a, 5 * PS, e, 1), KVN_ENOSPC, "5 pages in one extent: ENOSPC");
	n = alloc_pages(a, 32 * PS, e, 16);
	is_int(n, 8, "32 pages in 8 extents");
	if (n > 0) {
		is_int(ext_pages(e, n), 32, "extents add up to the request");
		int sorted = 1, disjoint = 1;
		for (i = 1; i < n; i++) {
			if (e[i - 1].page >= e[i].page)
				sorted = 0;
			if (e[i - 1].page + e[i - 1].npages > e[i].page)
				disjoint = 0;
		}
		ok(sorted && disjoint, "extents in address order, disjoint");
		is_int(free_pages(a), 0, "arena full");
		alloc_release(a, e, n);
	}
	n = alloc_pages(a, 6 * PS, e, 2);
	is_int(n, 2, "6 pages in 2 extents");
	if (n == 2)
		ok(ext_pages(e, n) == 6 && (e[0].npages == 4 || e[1].npages == 4),
		   "one whole run plus part of another");
	if (n > 0)
		alloc_release(a, e, n);
	for (i = 1; i < 16; i += 2)
		alloc_release(a, &run[i], 1);
	alloc_get_stats(a, &st);
	is_int(st.free_pages, 64, "nothing leaked");
	is_int(st.largest_free_run, 64, "one free run again");
	alloc_arena_free(a);
}

static void t_coalescing(void)
{
	struct alloc_arena *a = arena(24, PS);
	struct alloc_extent r[3], e[4];
	struct alloc_stats st;

	for (int i = 0; i < 3; i++)
		is_int(alloc_pages(a, 8 * PS, &r[i], 1), 1, "run %d of 8 pages", i);
	alloc_release(a, &r[1], 1);
	alloc_release(a, &r[0], 1);
	alloc_get_stats(a, &st);
	is_int(st.largest_free_run, 16, "neighbours freed separately form one run");
	is_int(alloc_pages(a, 16 * PS, e, 1), 1, "16 contiguous pages fit in the coalesced run");
	is_int(e[0].npages, 16, "one extent of 16");
	alloc_release(a, e, 1);
	alloc_release(a, &r[2], 1);
	is_int(alloc_pages(a, 24 * PS, e, 1), 1, "the whole arena as one run");
	alloc_release(a, e, 1);
	alloc_arena_free(a);
}

/* ---- randomized against a shadow bitmap --------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64*, fixed seed: reproducible */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

#define RP 1000 /* pages */
#define RMAX 256

struct live {
	struct alloc_extent e[8];
	int n;
	uint64_t tag;
};

/* Could max_ext runs of the shadow hold `need` pages?  Sum of the largest. */
static int shadow_fits(const bool *used, uint64_t need, int max_ext, uint64_t *largest)
{
	uint64_t top[8] = { 0 };
	*largest = 0;
	for (int p = 0; p < RP;) {
		if (used[p]) {
			p++;
			continue;
		}
		int s = p;
		while (p < RP && !used[p])
			p++;
		uint64_t len = (uint64_t)(p - s);
		if (len > *largest)
			*largest = len;
		for (int i = 0; i < max_ext; i++)
			if (len > top[i]) {
				uint64_t t = top[i];
				top[i] = len;
				len = t;
			}
	}
	uint64_t sum = 0;
	for (int i = 0; i < max_ext; i++)
		sum += top[i];
	return sum >= need;
}

static void t_random_shadow(void)
{
	struct alloc_arena *a = arena(RP, PS);
	static bool used[RP];
	static struct live live[RMAX];
	int nlive = 0, bad_alloc = 0, bad_enospc = 0, bad_stats = 0, bad_data = 0, bad_contig = 0;
	int allocs = 0, enospcs = 0, multi = 0;
	struct alloc_stats st;

	memset(used, 0, sizeof used);
	for (int step = 0; step < 20000; step++) {
		if (nlive < RMAX && (nlive == 0 || rnd() % 100 < 55)) {
			uint64_t need = 1 + rnd() % 40;
			uint64_t bytes = need * PS - rnd() % PS; /* not a page multiple */
			int max_ext = 1 + (int)(rnd() % 8);
			uint64_t free_before = 0, largest;
			for (int p = 0; p < RP; p++)
				free_before += !used[p];
			int fits = shadow_fits(used, need, max_ext, &largest);
			struct live *l = &live[nlive];
			int n = alloc_pages(a, bytes, l->e, max_ext);
			if (n == KVN_ENOSPC) {
				enospcs++;
				if (fits)
					bad_enospc++;
				continue;
			}
			if (n < 1 || n > max_ext || !fits || ext_pages(l->e, n) != need) {
				bad_alloc++;
				continue;
			}
			if (largest >= need && n != 1)
				bad_contig++;
			multi += n > 1;
			l->n = n;
			l->tag = rnd();
			for (int i = 0; i < n; i++)
				for (uint32_t p = l->e[i].page; p < l->e[i].page + l->e[i].npages; p++) {
					if (p >= RP || used[p])
						bad_alloc++;
					else
						used[p] = true;
					memcpy(alloc_addr(a, p), &l->tag, sizeof l->tag);
				}
			nlive++;
			allocs++;
		} else {
			int k = (int)(rnd() % (uint64_t)nlive);
			struct live *l = &live[k];
			for (int i = 0; i < l->n; i++)
				for (uint32_t p = l->e[i].page; p < l->e[i].page + l->e[i].npages; p++) {
					uint64_t got;
					memcpy(&got, alloc_addr(a, p), sizeof got);
					if (got != l->tag)
						bad_data++;
					used[p] = false;
				}
			alloc_release(a, l->e, l->n);
			live[k] = live[--nlive];
		}
		if (step % 97 == 0) {
			uint64_t fp = 0, largest;
			for (int p = 0; p < RP; p++)
				fp += !used[p];
			shadow_fits(used, 0, 1, &largest);
			alloc_get_stats(a, &st);
			if (st.free_pages != fp || st.used_bytes != (RP - fp) * PS ||
			    st.largest_free_run != largest)
				bad_stats++;
		}
	}
	tap_diag("%d allocations (%d in several extents), %d ENOSPC", allocs, multi, enospcs);
	ok(allocs > 1000 && multi > 0 && enospcs > 0, "the run exercised all three outcomes");
	is_int(bad_alloc, 0, "every allocation matches the request and the shadow");
	is_int(bad_enospc, 0, "ENOSPC only when max_ext runs cannot hold it");
	is_int(bad_contig, 0, "one extent whenever a run is large enough");
	is_int(bad_data, 0, "no allocation overwrote another");
	is_int(bad_stats, 0, "stats equal the shadow at every check");
	while (nlive > 0) {
		nlive--;
		alloc_release(a, live[nlive].e, live[nlive].n);
	}
	alloc_get_stats(a, &st);
	is_int(st.free_pages, RP, "all free at the end");
	is_int(st.largest_free_run, RP, "and coalesced into one run");
	alloc_arena_free(a);
}

/* ---- pre-faulting --------------------------------------------------------- */

static long rss_pages(void)
{
	long size = 0, res = -1;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res;
}

static long meminfo_kb(const char *field)
{
	char line[256];
	long v = -1;
	size_t fl = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void t_prefault(void)
{
	const uint64_t size = 64ull << 20;
	long sys_ps = sysconf(_SC_PAGESIZE);
	struct alloc_arena *a = NULL;
	struct alloc_stats st;

	for (int huge = 0; huge <= 1; huge++) {
		long huge_free_before = meminfo_kb("HugePages_Free");
		long before = rss_pages();
		int rc = alloc_arena_new(size, PS, huge, &a);
		long after = rss_pages();
		long huge_taken = huge_free_before - meminfo_kb("HugePages_Free");
		is_int(rc, 0, "hugepages=%d: 64 MiB arena", huge);
		if (rc)
			continue;
		alloc_get_stats(a, &st);
		tap_diag("hugepages=%d: backed by huge pages: %d, RSS +%ld KiB", huge, (int)st.hugepages,
			 (after - before) * sys_ps / 1024);
		if (huge == 0)
			is_int(st.hugepages, 0, "hugepages=0 is not backed by huge pages");
		if (before < 0 || after < 0) {
			tap_skip(1, "/proc/self/statm unreadable");
		} else if (huge) {
			/* THP pages count in RSS; hugetlb pages come out of the
			 * pool instead (and this may run next to other tests
			 * using it, so only a drop by the full size counts) */
			uint64_t grew = (uint64_t)(after - before) * (uint64_t)sys_ps;
			ok(grew >= size / 10 * 9 || (uint64_t)huge_taken >= size >> 21,
			   "hugepages=1: RSS or the hugetlb pool grew by the arena size");
		} else {
			ok((uint64_t)(after - before) * (uint64_t)sys_ps >= size / 10 * 9,
			   "hugepages=%d: RSS grew by the arena size (%ld KiB)", huge,
			   (after - before) * sys_ps / 1024);
		}
		alloc_arena_free(a);
	}
}

/* ---- invariant: a double free is fatal ----------------------------------- */

/* Run fn in a child; returns its exit status, or -1 if it did not exit by
 * itself within 10 s (then it is killed). */
static int in_child(void (*fn)(void))
{
	pid_t pid = fork();
	if (pid < 0)
		return -2;
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stderr))
			_exit(100);
		fn();
		_exit(0);
	}
	for (int i = 0; i < 1000; i++) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* Children keep their arena in a global so LeakSanitizer, which runs at the
 * exit() inside kvn_fatal, sees it reachable and keeps the exit status. */
static struct alloc_arena *child_arena;

static void child_double_free(void)
{
	struct alloc_arena *a = child_arena = arena(16, PS);
	struct alloc_extent e;
	if (alloc_pages(a, 3 * PS, &e, 1) != 1)
		_exit(101);
	alloc_release(a, &e, 1);
	alloc_release(a, &e, 1);
}

static void child_free_partly_unallocated(void)
{
	struct alloc_arena *a = child_arena = arena(16, PS);
	struct alloc_extent e, wider;
	if (alloc_pages(a, 2 * PS, &e, 1) != 1)
		_exit(101);
	wider = e;
	wider.npages++;
	alloc_release(a, &wider, 1);
}

static void child_out_of_range(void)
{
	struct alloc_arena *a = child_arena = arena(16, PS);
	struct alloc_extent e = { 15, 2 };
	alloc_release(a, &e, 1);
}

static void child_valid(void)
{
	struct alloc_arena *a = arena(16, PS);
	struct alloc_extent e;
	if (alloc_pages(a, 3 * PS, &e, 1) != 1)
		_exit(101);
	alloc_release(a, &e, 1);
	alloc_arena_free(a);
}

static void t_release_invariant(void)
{
	is_int(in_child(child_valid), 0, "control: alloc + one release exits cleanly");
	is_int(in_child(child_double_free), 1, "double release is fatal");
	is_int(in_child(child_free_partly_unallocated), 1, "releasing a never-allocated page is fatal");
	is_int(in_child(child_out_of_range), 1, "extent past the arena is fatal");
}

static void t_hugepage_request(void)
{
	struct alloc_arena *a = NULL;
	struct alloc_extent e;
	/* not a 2 MiB multiple: MAP_HUGETLB is not tried, THP/plain is used */
	is_int(alloc_arena_new(3 * PS * 100, PS, 1, &a), 0, "hugepages=1 with an odd size works");
	if (a) {
		is_int(alloc_pages(a, 300 * PS, &e, 1), 1, "whole arena allocatable");
		memset(alloc_addr(a, 0), 0x5a, 300 * PS);
		ok(((uint8_t *)alloc_addr(a, 299))[PS - 1] == 0x5a, "writable to its end");
		alloc_release(a, &e, 1);
		alloc_arena_free(a);
	}
}

/* The counters' visitors walk the X-macro list: every field, in struct
 * order, with its name and its value. */
struct visit {
	const uint64_t *fields;
	int n, mismatched;
	const char *first, *last;
};

static void visit_one(void *arg, const char *name, const char *doc, uint64_t value)
{
	struct visit *v = arg;
	if (!doc || !*doc || value != v->fields[v->n])
		v->mismatched++;
	if (!v->first)
		v->first = name;
	v->last = name;
	v->n++;
}

static void t_stats_text(void)
{
	struct alloc_arena *a = arena(64, PS);
	struct alloc_extent ext[1];
	struct alloc_stats st;
	struct visit v = { 0 };

	is_int(alloc_pages(a, 3 * PS, ext, 1), 1, "an allocation to count");
	alloc_get_stats(a, &st);
	v.fields = (const uint64_t *)&st;
	alloc_stats_each(&st, visit_one, &v);
	is_int(v.n, sizeof st / sizeof(uint64_t), "alloc_stats_each visits every field");
	is_int(v.mismatched, 0, "each with its doc and the snapshot's value");
	is_str(v.first, "total_bytes", "in list order: first");
	is_str(v.last, "hugepages", "in list order: last");

	struct keytab *kt = keytab_new(a);
	struct keytab_stats ks;
	keytab_get_stats(kt, &ks);
	v = (struct visit){ .fields = (const uint64_t *)&ks };
	keytab_stats_each(&ks, visit_one, &v);
	is_int(v.n, sizeof ks / sizeof(uint64_t), "keytab_stats_each visits every counter");
	is_int(v.mismatched, 0, "each with its doc and the snapshot's value");
	is_str(v.first, "keys", "in list order: first");
	is_str(v.last, "expired", "in list order: last");
	keytab_free(kt);
	alloc_release(a, ext, 1);
	alloc_arena_free(a);
}

int main(int argc, char **argv)
{
	static const struct tap_test tests[] = {
		{ "bad_sizes", t_bad_sizes },
		{ "fill_enospc_reuse", t_fill_enospc_reuse },
		{ "bytes_rounding", t_bytes_rounding },
		{ "fragmentation", t_fragmentation },
		{ "coalescing", t_coalescing },
		{ "random_shadow", t_random_shadow },
		{ "prefault", t_prefault },
		{ "release_invariant", t_release_invariant },
		{ "hugepage_request", t_hugepage_request },
		{ "stats_text", t_stats_text },
		{ NULL, NULL },
	};
	kvn_log_set_level(KVN_LOG_WARN);
	return tap_run(tests, argc, argv);
}
