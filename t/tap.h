/*
 * tap.h: a tiny TAP producer for the C unit tests.  A test file defines a
 * table of {name, fn} cases and calls tap_run(); each case makes assertions
 * with ok()/is_int()/is_str()/is_mem() and may skip with tap_skip().
 * Output follows TAP 13 so both automake's tap-driver.sh and prove read it.
 */
#ifndef KVN_TAP_H
#define KVN_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvnode.h"

static int tap_n, tap_failed, tap_planned = -1;
static const char *tap_case = "";

static inline void tap_plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%s %d - %s%s", cond ? "ok" : "not ok", tap_n, tap_case, *tap_case ? ": " : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                        \
	do {                                                                          \
		long long g_ = (long long)(got), w_ = (long long)(want);              \
		if (!ok(g_ == w_, __VA_ARGS__))                                       \
			tap_diag("  got %lld, want %lld", g_, w_);                    \
	} while (0)
#define is_str(got, want, ...)                                                        \
	do {                                                                          \
		const char *g_ = (got), *w_ = (want);                                 \
		if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                \
			tap_diag("  got '%s', want '%s'", g_ ? g_ : "(null)",         \
				 w_ ? w_ : "(null)");                                 \
	} while (0)
#define is_mem(got, want, n, ...) ok(memcmp((got), (want), (n)) == 0, __VA_ARGS__)

static inline void tap_skip(int count, const char *why)
{
	for (int i = 0; i < count; i++) {
		tap_n++;
		printf("ok %d - %s # SKIP %s\n", tap_n, tap_case, why);
	}
	fflush(stdout);
}

/* The library logs nowhere unless asked (kvn_set_log): a test logs to
 * stderr at INFO, as the server does, so its log stays useful.  Runs before
 * main(), so a test's own kvn_log_set_level() there still wins. */
static void tap_log_on(void) __attribute__((constructor, unused));
static void tap_log_on(void)
{
	kvn_set_log(KVN_LOG_INFO, NULL);
}

struct tap_test {
	const char *name;
	void (*fn)(void);
};

/* Run every case (or only those named on the command line, in table order);
 * exits non-zero if any assertion failed or a name matches no case.
 * `--list` prints the case names, one a line, and runs nothing
 * (t/each_case.sh runs each case alone from that list). */
static inline int tap_run(const struct tap_test *tests, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (const struct tap_test *t = tests; t->name; t++)
			printf("%s\n", t->name);
		fflush(stdout);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		const struct tap_test *t = tests;
		while (t->name && strcmp(argv[i], t->name) != 0)
			t++;
		if (!t->name) {
			printf("Bail out! no case named '%s' (--list names them)\n", argv[i]);
			fflush(stdout);
			return 1;
		}
	}
	for (const struct tap_test *t = tests; t->name; t++) {
		if (argc > 1) {
			int want = 0;
			for (int i = 1; i < argc; i++)
				if (strcmp(argv[i], t->name) == 0)
					want = 1;
			if (!want)
				continue;
		}
		tap_case = t->name;
		t->fn();
	}
	tap_case = "";
	if (tap_planned < 0)
		printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#endif
