/*
 * resp_glob: Redis's glob patterns (SCAN MATCH) on binary strings: *
 * (any run), ? (one byte), [abc] [a-z] [^...] (a class; ranges either
 * way round), and \x (x itself, also inside a class).  Iterative with one
 * backtrack point per *, so a hostile pattern costs O(pattern * key).
 */
#include "config.h"

#include <stddef.h>

#include "resp/resp.h"

/* Does the element at pat[*pi] (not '*') match byte c?  Advances *pi past
 * the element. */
static int elem_match(const char *pat, size_t plen, size_t *pi, unsigned char c)
{
	size_t i = *pi;
	unsigned char pc = (unsigned char)pat[i];

	if (pc == '?') {
		*pi = i + 1;
		return 1;
	}
	if (pc == '\\' && i + 1 < plen) {
		*pi = i + 2;
		return (unsigned char)pat[i + 1] == c;
	}
	if (pc != '[') {
		*pi = i + 1;
		return pc == c;
	}
	/* a class: up to the closing ']', or the pattern's end (as Redis) */
	i++;
	int neg = i < plen && pat[i] == '^', hit = 0;
	if (neg)
		i++;
	while (i < plen && pat[i] != ']') {
		unsigned char a = (unsigned char)pat[i];
		if (a == '\\' && i + 1 < plen) {
			hit |= (unsigned char)pat[i + 1] == c;
			i += 2;
		} else if (i + 2 < plen && pat[i + 1] == '-' && pat[i + 2] != ']') {
			unsigned char b = (unsigned char)pat[i + 2];
			unsigned char lo = a < b ? a : b, hi = a < b ? b : a;
			hit |= c >= lo && c <= hi;
			i += 3;
		} else {
			hit |= a == c;
			i++;
		}
	}
	*pi = i < plen ? i + 1 : i;
	return neg ? !hit : hit;
}

int resp_glob(const char *pat, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0, star_p = 0, star_s = 0;
	int star = 0;

	while (si < slen) {
		if (pi < plen && pat[pi] == '*') {
			while (pi < plen && pat[pi] == '*')
				pi++;
			if (pi == plen)
				return 1;
			star = 1;
			star_p = pi;
			star_s = si;
			continue;
		}
		size_t next = pi;
		if (pi < plen && elem_match(pat, plen, &next, (unsigned char)s[si])) {
			pi = next;
			si++;
			continue;
		}
		if (!star)
			return 0;
		pi = star_p;
		si = ++star_s;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

size_t resp_glob_prefix(const char *pat, size_t plen)
{
	size_t i = 0;
	while (i < plen && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\')
		i++;
	return i;
}
