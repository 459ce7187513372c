/*
 * units: the syntax of values in config files and flags: sizes ("64KiB",
 * "1.5G") and durations ("250ms", "10s"), parsed exactly (no floating point,
 * so "1.5G" is 1610612736 on every machine) and formatted back in a form that
 * parses to the same number; plain counts and on/off switches.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "base.h"

struct unit {
	const char *name;
	uint64_t mult;
};

/* Matched case-insensitively: "64kib", "4gb" and "1G" all mean what they say. */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "K", 1ull << 10 },    { "KiB", 1ull << 10 },   { "KB", 1000ull },
	{ "M", 1ull << 20 },    { "MiB", 1ull << 20 },   { "MB", 1000000ull },
	{ "G", 1ull << 30 },    { "GiB", 1ull << 30 },   { "GB", 1000000000ull },
	{ "T", 1ull << 40 },    { "TiB", 1ull << 40 },   { "TB", 1000000000000ull },
};

/* In microseconds, so "us" is a whole unit.  Case matters here: "M" could be
 * read as months. */
static const struct unit duration_units[] = {
	{ "us", 1 },
	{ "ms", 1000ull },
	{ "s", 1000000ull },
	{ "m", 60000000ull },
	{ "h", 3600000000ull },
	{ "d", 86400000000ull },
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FRAC_DIGITS 18 /* 10^18 fits in uint64_t */

static const char WHY_SIZE[] = "not a size (use e.g. 64KiB, 4GiB, 1.5G)";
static const char WHY_DURATION[] = "not a duration (use e.g. 250ms, 10s, 1.5m; units us ms s m h d)";
static const char WHY_UNIT[] = "duration needs a unit: us, ms, s, m, h or d";
static const char WHY_LARGE[] = "value too large";
static const char WHY_FRAC[] = "too many digits after the decimal point";

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* A number split as ip.frac, with frac holding nfrac decimal digits. */
struct decimal {
	uint64_t ip;
	uint64_t frac;
	unsigned nfrac;
	int nonzero;
};

/* Parse `\s*[0-9]+(\.[0-9]+)?\s*` from *sp and leave *sp on the unit.
 * `shape` is the reason given for anything that is not a number. */
static int parse_decimal(const char **sp, struct decimal *d, const char *shape,
			 const char *negative, const char **why)
{
	const char *s = *sp;
	unsigned __int128 ip = 0;

	memset(d, 0, sizeof *d);
	while (is_space(*s))
		s++;
	if (*s == '-') {
		*why = negative;
		return KVN_EINVAL;
	}
	if (!is_digit(*s)) {
		*why = shape;
		return KVN_EINVAL;
	}
	for (; is_digit(*s); s++) {
		ip = ip * 10 + (unsigned)(*s - '0');
		if (ip > UINT64_MAX) {
			*why = WHY_LARGE;
			return KVN_EINVAL;
		}
		d->nonzero |= *s != '0';
	}
	d->ip = (uint64_t)ip;
	if (*s == '.') {
		s++;
		if (!is_digit(*s)) {
			*why = shape;
			return KVN_EINVAL;
		}
		for (; is_digit(*s); s++) {
			if (d->nfrac == MAX_FRAC_DIGITS) {
				*why = WHY_FRAC;
				return KVN_EINVAL;
			}
			d->frac = d->frac * 10 + (uint64_t)(*s - '0');
			d->nfrac++;
			d->nonzero |= *s != '0';
		}
	}
	while (is_space(*s))
		s++;
	*sp = s;
	return 0;
}

/* The unit spelled by s up to trailing whitespace, or NULL. */
static const struct unit *find_unit(const struct unit *units, size_t n, const char *s, int icase)
{
	size_t len = strlen(s);

	while (len > 0 && is_space(s[len - 1]))
		len--;
	for (size_t i = 0; i < n; i++) {
		if (strlen(units[i].name) != len)
			continue;
		if (icase ? strncasecmp(units[i].name, s, len) == 0
			  : strncmp(units[i].name, s, len) == 0)
			return &units[i];
	}
	return NULL;
}

/* ceil(d * num / den), or KVN_EINVAL if it does not fit in 64 bits.  The
 * whole and fractional parts are scaled separately so nothing overflows
 * 128 bits: ip * num < 2^101, frac * num < 2^101, den * 10^18 < 2^70. */
static int scale_ceil(const struct decimal *d, uint64_t num, uint64_t den, uint64_t *out)
{
	unsigned __int128 whole = (unsigned __int128)d->ip * num;
	unsigned __int128 q = whole / den, r = whole % den;
	unsigned __int128 pow10 = 1;

	for (unsigned i = 0; i < d->nfrac; i++)
		pow10 *= 10;
	/* remaining fraction of one output unit: (r + frac*num/10^nfrac) / den */
	unsigned __int128 rest = r * pow10 + (unsigned __int128)d->frac * num;
	unsigned __int128 rden = (unsigned __int128)den * pow10;
	q += (rest + rden - 1) / rden;
	if (q > UINT64_MAX)
		return KVN_EINVAL;
	*out = (uint64_t)q;
	return 0;
}

int kvn_parse_size(const char *s, uint64_t *out, const char **why)
{
	static const char empty[] = "empty (use e.g. 64KiB, 4GiB, 1.5G)";
	static const char negative[] = "a size cannot be negative";
	const char *why_local;
	struct decimal d;
	const struct unit *u;

	if (!why)
		why = &why_local;
	if (!s || !s[strspn(s, " \t\r\n\v\f")]) {
		*why = empty;
		return KVN_EINVAL;
	}
	if (parse_decimal(&s, &d, WHY_SIZE, negative, why) < 0)
		return KVN_EINVAL;
	u = find_unit(size_units, ARRAY_LEN(size_units), s, 1);
	if (!u) {
		*why = WHY_SIZE;
		return KVN_EINVAL;
	}
	if (scale_ceil(&d, u->mult, 1, out) < 0) {
		*why = WHY_LARGE;
		return KVN_EINVAL;
	}
	return 0;
}

int kvn_parse_duration_ms(const char *s, uint64_t *out, const char **why)
{
	static const char empty[] = "empty (use e.g. 250ms, 10s, 1.5m)";
	static const char negative[] = "a duration cannot be negative";
	const char *why_local;
	struct decimal d;
	const struct unit *u;

	if (!why)
		why = &why_local;
	if (!s || !s[strspn(s, " \t\r\n\v\f")]) {
		*why = empty;
		return KVN_EINVAL;
	}
	if (parse_decimal(&s, &d, WHY_DURATION, negative, why) < 0)
		return KVN_EINVAL;
	if (!*s) {
		/* zero is zero in any unit; anything else must say which */
		if (d.nonzero) {
			*why = WHY_UNIT;
			return KVN_EINVAL;
		}
		*out = 0;
		return 0;
	}
	u = find_unit(duration_units, ARRAY_LEN(duration_units), s, 0);
	if (!u) {
		*why = WHY_DURATION;
		return KVN_EINVAL;
	}
	if (scale_ceil(&d, u->mult, 1000, out) < 0) {
		*why = WHY_LARGE;
		return KVN_EINVAL;
	}
	return 0;
}

int kvn_parse_uint(const char *s, uint64_t *out, const char **why)
{
	const char *why_local;
	struct decimal d;

	if (!why)
		why = &why_local;
	if (!s || !s[strspn(s, " \t\r\n\v\f")]) {
		*why = "empty (use a whole number)";
		return KVN_EINVAL;
	}
	if (parse_decimal(&s, &d, "not a whole number", "cannot be negative", why) < 0)
		return KVN_EINVAL;
	if (*s || d.nfrac) {
		*why = "not a whole number";
		return KVN_EINVAL;
	}
	*out = d.ip;
	return 0;
}

int kvn_parse_bool(const char *s, int *out, const char **why)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (size_t i = 0; s && i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	}
	if (why)
		*why = "not a bool (use on or off)";
	return KVN_EINVAL;
}

/* Write v/unit as "N", or as "N.ddd" when frac_ok, N < 1000 and three
 * decimals are exact; returns 0, or -1 if v/unit cannot be written so (or is
 * below 1).  "1.5 GiB" and "1.5s" read well; "1.023 KB" and "3600.001s" do
 * not, so they fall through to a smaller unit. */
static int format_exact(char *out, size_t cap, uint64_t v, uint64_t unit, int frac_ok,
			const char *sep, const char *name)
{
	uint64_t whole = v / unit;
	unsigned __int128 milli = (unsigned __int128)(v % unit) * 1000;

	if (whole == 0)
		return -1;
	if (milli == 0) {
		snprintf(out, cap, "%llu%s%s", (unsigned long long)whole, sep, name);
		return 0;
	}
	if (!frac_ok || whole >= 1000 || milli % unit != 0)
		return -1;
	unsigned frac = (unsigned)(milli / unit);
	char digits[4] = { (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
			   (char)('0' + frac % 10), '\0' };
	for (int i = 2; i > 0 && digits[i] == '0'; i--)
		digits[i] = '\0';
	snprintf(out, cap, "%llu.%s%s%s", (unsigned long long)whole, digits, sep, name);
	return 0;
}

void kvn_format_size(char *out, size_t cap, uint64_t bytes)
{
	/* Largest first; binary before decimal at each magnitude, so 1024 is
	 * "1 KiB" and 1000 is "1 KB".  Decimal units only for whole numbers. */
	static const struct unit order[] = {
		{ "TiB", 1ull << 40 }, { "TB", 1000000000000ull },
		{ "GiB", 1ull << 30 }, { "GB", 1000000000ull },
		{ "MiB", 1ull << 20 }, { "MB", 1000000ull },
		{ "KiB", 1ull << 10 }, { "KB", 1000ull },
	};

	if (cap == 0)
		return;
	for (size_t i = 0; i < ARRAY_LEN(order); i++)
		if (format_exact(out, cap, bytes, order[i].mult, order[i].mult % 1000 != 0, " ",
				 order[i].name) == 0)
			return;
	snprintf(out, cap, "%llu B", (unsigned long long)bytes);
}

void kvn_format_size_human(char *out, size_t cap, uint64_t bytes)
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int u = -1;

	if (cap == 0)
		return;
	for (int i = 0; i < (int)ARRAY_LEN(names); i++)
		if (bytes >= 1ull << (10 * (i + 1)))
			u = i;
	if (u < 0) {
		snprintf(out, cap, "%llu B", (unsigned long long)bytes);
		return;
	}
	uint64_t unit = 1ull << (10 * (u + 1));
	/* tenths of the unit, rounded half up; 10 and more: whole units */
	uint64_t tenths = (uint64_t)(((unsigned __int128)bytes * 10 + unit / 2) / unit);
	if (tenths >= 100) {
		uint64_t whole = (uint64_t)(((unsigned __int128)bytes + unit / 2) / unit);
		if (whole >= 1024 && u + 1 < (int)ARRAY_LEN(names))
			snprintf(out, cap, "1 %s", names[u + 1]); /* 1023.6 KiB: 1 MiB */
		else
			snprintf(out, cap, "%llu %s", (unsigned long long)whole, names[u]);
	} else if (tenths % 10 == 0) {
		snprintf(out, cap, "%llu %s", (unsigned long long)(tenths / 10), names[u]);
	} else {
		snprintf(out, cap, "%llu.%llu %s", (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10),
			 names[u]);
	}
}

void kvn_format_duration(char *out, size_t cap, uint64_t ms)
{
	static const struct unit order[] = {
		{ "d", 86400000ull }, { "h", 3600000ull }, { "m", 60000ull }, { "s", 1000ull },
	};

	if (cap == 0)
		return;
	for (size_t i = 0; i < ARRAY_LEN(order); i++)
		if (format_exact(out, cap, ms, order[i].mult, 1, "", order[i].name) == 0)
			return;
	snprintf(out, cap, "%llums", (unsigned long long)ms);
}
