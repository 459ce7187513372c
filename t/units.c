/*
 * t/units: size and duration parsing (every unit, fractions, rounding,
 * overflow, junk), formatting that parses back to the same value, the
 * plain number and bool syntaxes, backoff with jitter, the warning rate limit
 * and the quoting of untrusted strings for logs.
 */
#include "config.h"

#include "base/base.h"
#include "tap.h"

static const char WHY_SIZE[] = "not a size (use e.g. 64KiB, 4GiB, 1.5G)";

static void size_is(const char *s, uint64_t want)
{
	uint64_t got = 12345;
	const char *why = NULL;
	int rc = kvn_parse_size(s, &got, &why);
	if (!ok(rc == 0 && got == want, "size '%s' = %llu", s, (unsigned long long)want))
		tap_diag("  rc %d, got %llu, why %s", rc, (unsigned long long)got, why ? why : "-");
}

/* Rejected, with a reason containing `reason`; *out untouched. */
static void size_bad(const char *s, const char *reason)
{
	uint64_t got = 777;
	const char *why = NULL;
	int rc = kvn_parse_size(s, &got, &why);
	if (!ok(rc == KVN_EINVAL && got == 777 && why && strstr(why, reason),
		"size '%s' rejected: %s", s ? s : "(null)", reason))
		tap_diag("  rc %d, got %llu, why %s", rc, (unsigned long long)got, why ? why : "-");
}

static void dur_is(const char *s, uint64_t want)
{
	uint64_t got = 12345;
	const char *why = NULL;
	int rc = kvn_parse_duration_ms(s, &got, &why);
	if (!ok(rc == 0 && got == want, "duration '%s' = %llums", s, (unsigned long long)want))
		tap_diag("  rc %d, got %llu, why %s", rc, (unsigned long long)got, why ? why : "-");
}

static void dur_bad(const char *s, const char *reason)
{
	uint64_t got = 777;
	const char *why = NULL;
	int rc = kvn_parse_duration_ms(s, &got, &why);
	if (!ok(rc == KVN_EINVAL && got == 777 && why && strstr(why, reason),
		"duration '%s' rejected: %s", s ? s : "(null)", reason))
		tap_diag("  rc %d, got %llu, why %s", rc, (unsigned long long)got, why ? why : "-");
}

static void test_size_units(void)
{
	size_is("0", 0);
	size_is("17", 17);
	size_is("17B", 17);
	size_is("3K", 3ull << 10);
	size_is("3KiB", 3ull << 10);
	size_is("3KB", 3000);
	size_is("5M", 5ull << 20);
	size_is("5MiB", 5ull << 20);
	size_is("5MB", 5000000);
	size_is("7G", 7ull << 30);
	size_is("7GiB", 7ull << 30);
	size_is("7GB", 7000000000ull);
	size_is("2T", 2ull << 40);
	size_is("2TiB", 2ull << 40);
	size_is("2TB", 2000000000000ull);
	/* units ignore case */
	size_is("64kib", 64ull << 10);
	size_is("4gb", 4000000000ull);
	size_is("1m", 1ull << 20);
	size_is("9b", 9);
	/* whitespace around and between number and unit */
	size_is("64 KiB", 64ull << 10);
	size_is("  64KiB\t", 64ull << 10);
	size_is("1.5 G", 1610612736ull);
	size_is("007K", 7ull << 10);
}

static void test_size_fractions(void)
{
	size_is("1.5G", 1610612736ull);
	size_is("1.5GiB", 1610612736ull);
	size_is("0.5K", 512);
	size_is("0.25M", 1ull << 18);
	size_is("2.5KB", 2500);
	size_is("0.0", 0);
	size_is("1.000000000000000000T", 1ull << 40);
	/* fractions round up to a whole byte */
	size_is("1.1K", 1127); /* 1126.4 */
	size_is("1.5", 2);
	size_is("0.001K", 2); /* 1.024 */
	size_is("0.0001K", 1); /* 0.1024: non-zero never becomes 0 */
	size_is("0.000000000000000001T", 1);
	size_is("0.999999999999999999B", 1);
	size_bad("1.0000000000000000001T", "too many digits");
}

static void test_size_limits(void)
{
	size_is("18446744073709551615", UINT64_MAX);
	size_is("18446744073709551615B", UINT64_MAX);
	size_is("16777215T", 16777215ull << 40);
	size_is("17179869183G", 17179869183ull << 30);
	size_bad("18446744073709551616", "value too large");
	size_bad("99999999999999999999999999", "value too large");
	size_bad("16777216T", "value too large");  /* exactly 2^64 */
	size_bad("17179869184GiB", "value too large");
	size_bad("16777215.999999999999999999T", "value too large");
	size_bad("18446744073709551615.5", "value too large");
	size_bad("18446744073709552K", "value too large");
}

static void test_size_junk(void)
{
	size_bad("12XB", WHY_SIZE);
	size_bad("64KiBx", WHY_SIZE);
	size_bad("64 K iB", WHY_SIZE);
	size_bad("KiB", WHY_SIZE);
	size_bad("1.G", WHY_SIZE);
	size_bad(".5G", WHY_SIZE);
	size_bad("1..5G", WHY_SIZE);
	size_bad("1,5G", WHY_SIZE);
	size_bad("0x10", WHY_SIZE);
	size_bad("1e3", WHY_SIZE);
	size_bad("+5", WHY_SIZE);
	size_bad("5PiB", WHY_SIZE);
	size_bad("5 5", WHY_SIZE);
	size_bad("-1", "negative");
	size_bad("-1K", "negative");
	size_bad(" -0", "negative");
	size_bad("", "empty");
	size_bad("   ", "empty");
	size_bad(NULL, "empty");
	/* the reason pointer is optional */
	uint64_t v = 5;
	is_int(kvn_parse_size("junk", &v, NULL), KVN_EINVAL, "why may be NULL");
	is_int(v, 5, "output untouched on error");
}

static void test_duration_units(void)
{
	dur_is("250ms", 250);
	dur_is("10s", 10000);
	dur_is("2m", 120000);
	dur_is("3h", 10800000);
	dur_is("1d", 86400000);
	dur_is("1000us", 1);
	dur_is("4000us", 4);
	dur_is("1.5s", 1500);
	dur_is("1.5m", 90000);
	dur_is("0.5h", 1800000);
	dur_is("10 s", 10000);
	dur_is(" 10s ", 10000);
	dur_is("0ms", 0);
	dur_is("0", 0);
	dur_is("0.000", 0);
	/* rounding up to a whole millisecond */
	dur_is("1us", 1);
	dur_is("1001us", 2);
	dur_is("1.2ms", 2);
	dur_is("0.5us", 1);
	dur_is("0.0001ms", 1);
	dur_is("1.0001s", 1001);
}

static void test_duration_bad(void)
{
	dur_bad("10", "duration needs a unit");
	dur_bad("1.5", "duration needs a unit");
	dur_bad("10S", "not a duration");
	dur_bad("10sec", "not a duration");
	dur_bad("10 ms x", "not a duration");
	dur_bad("ms", "not a duration");
	dur_bad("1..5s", "not a duration");
	dur_bad("-1s", "negative");
	dur_bad("", "empty");
	dur_bad(" \t", "empty");
	dur_bad(NULL, "empty");
	dur_is("18446744073709551615ms", UINT64_MAX);
	dur_bad("18446744073709551616ms", "value too large");
	dur_bad("18446744073709551615s", "value too large");
	dur_bad("300000000000d", "value too large");
	dur_is("18446744073709551615us", 18446744073709552ull);
}

static void test_format_size(void)
{
	static const struct {
		uint64_t v;
		const char *text;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1000, "1 KB" },
		{ 1500, "1500 B" },
		{ 1500000, "1500 KB" },
		{ 1048064, "1048064 B" }, /* 1023.5 KiB */
		{ 999424, "976 KiB" },
		{ 1022976, "999 KiB" },
		{ 1023488, "999.5 KiB" },
		{ 1126, "1126 B" },
		{ 64ull << 10, "64 KiB" },
		{ 64ull << 20, "64 MiB" },
		{ 1610612736ull, "1.5 GiB" },
		{ 1342177280ull, "1.25 GiB" },
		{ 1207959552ull, "1.125 GiB" },
		{ 3ull << 40, "3 TiB" },
		{ 5000000000000ull, "5 TB" },
		{ 4096ull << 40, "4096 TiB" },
		{ UINT64_MAX, "18446744073709551615 B" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kvn_format_size(buf, sizeof buf, cases[i].v);
		is_str(buf, cases[i].text, "format_size(%llu)", (unsigned long long)cases[i].v);
	}
	memset(buf, 'x', sizeof buf);
	kvn_format_size(buf, 4, 64ull << 10);
	is_str(buf, "64 ", "truncated to cap, NUL-terminated");
	ok(buf[4] == 'x', "nothing written past cap");
}

static void test_format_size_human(void)
{
	static const struct {
		uint64_t v;
		const char *text;
	} cases[] = {
		{ 0, "0 B" },
		{ 1023, "1023 B" },
		{ 1024, "1 KiB" },
		{ 1536, "1.5 KiB" },
		{ 1126, "1.1 KiB" },
		{ 10239, "10 KiB" },
		{ 323232ull << 10, "316 MiB" },  /* 323232 KiB */
		{ 312ull << 20, "312 MiB" },
		{ (312ull << 20) + (1ull << 19), "313 MiB" }, /* 312.5: half up */
		{ 1610612736ull, "1.5 GiB" },
		{ 1342177280ull, "1.3 GiB" },   /* 1.25 */
		{ 1048064, "1 MiB" },           /* 1023.5 KiB: 1024 KiB is 1 MiB */
		{ 1048575, "1 MiB" },           /* 1023.999 KiB */
		{ 3ull << 40, "3 TiB" },
		{ UINT64_MAX, "16 EiB" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kvn_format_size_human(buf, sizeof buf, cases[i].v);
		is_str(buf, cases[i].text, "format_size_human(%llu)", (unsigned long long)cases[i].v);
	}
}

static void test_format_duration(void)
{
	static const struct {
		uint64_t v;
		const char *text;
	} cases[] = {
		{ 0, "0ms" },          { 1, "1ms" },         { 250, "250ms" },
		{ 1000, "1s" },        { 1500, "1.5s" },     { 1001, "1.001s" },
		{ 10000, "10s" },      { 60000, "1m" },      { 90000, "1.5m" },
		{ 61000, "61s" },      { 3600000, "1h" },    { 5400000, "1.5h" },
		{ 86400000, "1d" },    { 86400001, "86400001ms" }, { 3600001, "3600001ms" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kvn_format_duration(buf, sizeof buf, cases[i].v);
		is_str(buf, cases[i].text, "format_duration(%llu)", (unsigned long long)cases[i].v);
	}
	kvn_format_duration(buf, sizeof buf, UINT64_MAX);
	is_str(buf, "18446744073709551615ms", "largest duration");
}

/* format -> parse gives the same value, for edge values and a fixed
 * pseudo-random sample of magnitudes. */
static void test_round_trip(void)
{
	uint64_t x = 88172645463325252ull;
	int size_ok = 1, dur_ok = 1;
	char buf[32];

	for (int i = 0; i < 20000; i++) {
		uint64_t v, got;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		switch (i % 4) {
		case 0: v = x; break;
		case 1: v = x >> (x % 64); break;
		case 2: v = (x % 5000) << (10 * (x % 5)); break;
		default: v = (x % 10000) * (uint64_t[]){ 1, 1000, 60000, 3600000, 86400000 }[x % 5];
		}
		kvn_format_size(buf, sizeof buf, v);
		if (kvn_parse_size(buf, &got, NULL) != 0 || got != v) {
			if (size_ok)
				tap_diag("  size %llu -> '%s' -> %llu", (unsigned long long)v, buf,
					 (unsigned long long)got);
			size_ok = 0;
		}
		kvn_format_duration(buf, sizeof buf, v);
		if (kvn_parse_duration_ms(buf, &got, NULL) != 0 || got != v) {
			if (dur_ok)
				tap_diag("  duration %llu -> '%s' -> %llu", (unsigned long long)v, buf,
					 (unsigned long long)got);
			dur_ok = 0;
		}
	}
	ok(size_ok, "20000 sizes survive format and parse");
	ok(dur_ok, "20000 durations survive format and parse");
}

static void test_uint_bool(void)
{
	uint64_t v = 9;
	const char *why = NULL;
	int b = 9;

	ok(kvn_parse_uint("4096", &v, &why) == 0 && v == 4096, "uint 4096");
	ok(kvn_parse_uint(" 0 ", &v, &why) == 0 && v == 0, "uint 0 with blanks");
	ok(kvn_parse_uint("18446744073709551615", &v, &why) == 0 && v == UINT64_MAX, "uint max");
	v = 9;
	ok(kvn_parse_uint("18446744073709551616", &v, &why) == KVN_EINVAL && v == 9 &&
		   strcmp(why, "value too large") == 0,
	   "uint overflow");
	ok(kvn_parse_uint("4k", &v, &why) == KVN_EINVAL && strcmp(why, "not a whole number") == 0,
	   "uint with a unit");
	ok(kvn_parse_uint("1.5", &v, &why) == KVN_EINVAL && strcmp(why, "not a whole number") == 0,
	   "uint with a fraction");
	ok(kvn_parse_uint("-1", &v, &why) == KVN_EINVAL && strcmp(why, "cannot be negative") == 0,
	   "uint negative");
	ok(kvn_parse_uint("", &v, &why) == KVN_EINVAL && strstr(why, "empty"), "uint empty");
	ok(kvn_parse_uint(NULL, &v, NULL) == KVN_EINVAL && v == 9, "uint NULL");

	static const char *const yes[] = { "on", "ON", "true", "True", "yes", "1" };
	static const char *const no[] = { "off", "Off", "false", "FALSE", "no", "0" };
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		b = 9;
		ok(kvn_parse_bool(yes[i], &b, &why) == 0 && b == 1, "bool '%s' is 1", yes[i]);
		b = 9;
		ok(kvn_parse_bool(no[i], &b, &why) == 0 && b == 0, "bool '%s' is 0", no[i]);
	}
	b = 9;
	ok(kvn_parse_bool("2", &b, &why) == KVN_EINVAL && b == 9 && strstr(why, "not a bool"),
	   "bool '2' rejected");
	ok(kvn_parse_bool("onn", &b, &why) == KVN_EINVAL && b == 9, "bool 'onn' rejected");
	ok(kvn_parse_bool("", &b, NULL) == KVN_EINVAL && kvn_parse_bool(NULL, &b, NULL) == KVN_EINVAL,
	   "bool empty and NULL rejected");
}


/* kvn_backoff: every delay lies in [step/2, step], the step doubles to the
 * cap, delays are not all equal (jitter), reset starts over. */
static void test_backoff(void)
{
	struct kvn_backoff b;
	kvn_backoff_init(&b, 100, 5000);
	uint64_t step = 100, d[64];
	int in_range = 1, distinct = 0;
	for (int i = 0; i < 64; i++) {
		d[i] = kvn_backoff_next(&b);
		if (d[i] < step / 2 || d[i] > step)
			in_range = 0;
		step = step * 2 > 5000 ? 5000 : step * 2;
		if (i > 0 && d[i] != d[i - 1])
			distinct++;
	}
	ok(in_range, "backoff: each delay within [step/2, step], step doubling to 5000");
	ok(d[63] >= 2500 && d[63] <= 5000, "backoff: capped at max (last %llu)", (unsigned long long)d[63]);
	ok(distinct > 32, "backoff: delays are jittered (%d of 63 differ from the one before)", distinct);
	ok(b.attempts == 64, "backoff: attempts counted");
	kvn_backoff_reset(&b);
	uint64_t first = kvn_backoff_next(&b);
	ok(first >= 50 && first <= 100 && b.attempts == 1, "backoff: reset starts at min again");
	kvn_backoff_init(&b, 0, 0);
	ok(kvn_backoff_next(&b) >= 1, "backoff: a zero min still waits");
}

/* kvn_ratelimit under a virtual clock: a burst passes, the rest is counted
 * and reported with the next line let through. */
static void test_ratelimit(void)
{
	uint64_t now = 1000, sup = 99;
	struct kvn_ratelimit rl;
	kvn_clock_virtual(&now);
	kvn_ratelimit_init(&rl, 1000, 3);
	int passed = 0;
	for (int i = 0; i < 100; i++)
		passed += kvn_ratelimit_ok(&rl, &sup);
	ok(passed == 3 && sup == 0, "ratelimit: 3 of 100 pass in one interval (%d)", passed);
	now += 999;
	ok(!kvn_ratelimit_ok(&rl, &sup), "ratelimit: still closed just before the interval ends");
	now += 1;
	ok(kvn_ratelimit_ok(&rl, &sup) && sup == 98, "ratelimit: next interval passes and reports 98 suppressed (%llu)",
	   (unsigned long long)sup);
	ok(kvn_ratelimit_ok(&rl, &sup) && sup == 0, "ratelimit: the count starts over");
	kvn_clock_virtual(NULL);
}

static void quote_is(const void *in, size_t len, size_t cap, const char *want)
{
	char out[256];
	memset(out, 'Z', sizeof out);
	kvn_str_quote(out, cap, in, len);
	if (!ok(strcmp(out, want) == 0 && strlen(out) < cap, "quote cap %zu -> %s", cap, want))
		tap_diag("  got %s", out);
}

static void test_str_quote(void)
{
	quote_is("node-1", 6, 64, "\"node-1\"");
	quote_is("a\"b\\c", 5, 64, "\"a\\\"b\\\\c\"");
	quote_is("x\ny\x1b[31m", 8, 64, "\"x\\x0ay\\x1b[31m\"");
	quote_is("\xff\x00", 2, 64, "\"\\xff\\x00\"");
	quote_is("abcdefghijklmnop", 16, 10, "\"abcd...\"");
	quote_is("", 0, 8, "\"\"");
	quote_is("abc", 3, 8, "\"abc\"");
	char big[4096];
	memset(big, '\n', sizeof big);
	char out[64];
	kvn_str_quote(out, sizeof out, big, sizeof big);
	ok(strlen(out) < sizeof out && !strchr(out, '\n') && strstr(out, "...\""),
	   "quote: 4096 newlines fit 64 bytes with no raw newline");
}

/* KVN_Q: a plain name as it is, anything else quoted */
static void test_str_q(void)
{
	is_str(KVN_Q("client-host_1.x"), "client-host_1.x", "KVN_Q: a plain name stays as it is");
	is_str(KVN_Q("p1 attached"), "\"p1 attached\"", "KVN_Q: a space quotes it");
	is_str(KVN_Q("a'b\"c"), "\"a'b\\\"c\"", "KVN_Q: quotes quoted and escaped");
	is_str(KVN_Q("x\x1b"), "\"x\\x1b\"", "KVN_Q: control bytes escaped");
	is_str(KVN_Q(""), "\"\"", "KVN_Q: empty");
	is_str(KVN_Q(NULL), "\"\"", "KVN_Q: NULL");
}

static const struct tap_test tests[] = {
	{ "size_units", test_size_units },
	{ "size_fractions", test_size_fractions },
	{ "size_limits", test_size_limits },
	{ "size_junk", test_size_junk },
	{ "duration_units", test_duration_units },
	{ "duration_bad", test_duration_bad },
	{ "format_size", test_format_size },
	{ "format_size_human", test_format_size_human },
	{ "format_duration", test_format_duration },
	{ "round_trip", test_round_trip },
	{ "uint_bool", test_uint_bool },
	{ "backoff", test_backoff },
	{ "ratelimit", test_ratelimit },
	{ "str_quote", test_str_quote },
	{ "str_q", test_str_q },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return tap_run(tests, argc, argv);
}
