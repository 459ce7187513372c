/*
 * t/json_get: a strict JSON checker for the shell tests (CI machines have
 * neither python3 nor jq).  Reads standard input, which must hold exactly
 * one JSON object (RFC 8259: strings with valid escapes and UTF-8, no
 * control bytes, numbers in JSON's grammar, no trailing commas or junk),
 * and prints, one line each, the JSON text of the value at every PATH
 * given: dot-separated object keys and array indexes ("nodes.0.alive").
 *
 *   t/json_get [PATH...] < FILE
 *
 * Exit status: 0; 1 not valid JSON or not an object (why and where on
 * stderr); 3 a PATH is not there (the others are printed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_PATHS 32

struct parser {
	const char *s, *p, *end;
	char path[1024]; /* where the parser is: ".key.0.key" */
	size_t plen;
	const char *want[MAX_PATHS];
	const char *got[MAX_PATHS], *got_end[MAX_PATHS];
	int nwant;
	const char *err;
};

static int fail(struct parser *ps, const char *why)
{
	if (!ps->err)
		ps->err = why;
	return -1;
}

static void ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence at p (its first byte >= 0x80): its length, or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n = *p >= 0xf0 && *p <= 0xf4 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 && *p <= 0xdf ? 2 : 0;
	if (n == 0 || (size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static int string(struct parser *ps)
{
	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "a string wanted");
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20)
			return fail(ps, "a control byte in a string");
		if (c == '\\') {
			if (ps->end - ps->p < 2)
				return fail(ps, "an unfinished escape");
			char e = ps->p[1];
			if (e == 'u') {
				if (ps->end - ps->p < 6 || !hex(ps->p[2]) || !hex(ps->p[3]) || !hex(ps->p[4]) ||
				    !hex(ps->p[5]))
					return fail(ps, "\\u wants 4 hex digits");
				ps->p += 6;
			} else if (strchr("\"\\/bfnrt", e) && e) {
				ps->p += 2;
			} else {
				return fail(ps, "an unknown escape");
			}
		} else if (c >= 0x80) {
			size_t n = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!n)
				return fail(ps, "not UTF-8");
			ps->p += n;
		} else {
			ps->p++;
		}
	}
	if (ps->p >= ps->end)
		return fail(ps, "an unterminated string");
	ps->p++;
	return 0;
}

static int digits(struct parser *ps)
{
	const char *s = ps->p;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
		ps->p++;
	return ps->p > s ? 0 : fail(ps, "digits wanted");
}

static int number(struct parser *ps)
{
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (digits(ps))
		return -1;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (digits(ps))
			return -1;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (digits(ps))
			return -1;
	}
	return 0;
}

static int value(struct parser *ps, int depth);

/* Push ".name" onto the path; the length to restore. */
static size_t push(struct parser *ps, const char *name, size_t n)
{
	size_t old = ps->plen;
	if (ps->plen + 1 + n < sizeof ps->path) {
		ps->path[ps->plen++] = '.';
		memcpy(ps->path + ps->plen, name, n);
		ps->plen += n;
	}
	ps->path[ps->plen] = '\0';
	return old;
}

static void pop(struct parser *ps, size_t old)
{
	ps->plen = old;
	ps->path[old] = '\0';
}

static int object(struct parser *ps, int depth)
{
	ps->p++; /* { */
	ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return 0;
	}
	for (;;) {
		ws(ps);
		const char *k = ps->p + 1;
		if (string(ps))
			return -1;
		size_t old = push(ps, k, (size_t)(ps->p - 1 - k));
		ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return fail(ps, "':' wanted");
		ps->p++;
		if (value(ps, depth + 1))
			return -1;
		pop(ps, old);
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return 0;
		}
		return fail(ps, "',' or '}' wanted");
	}
}

static int array(struct parser *ps, int depth)
{
	ps->p++; /* [ */
	ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return 0;
	}
	for (unsigned i = 0;; i++) {
		char idx[16];
		int n = snprintf(idx, sizeof idx, "%u", i);
		size_t old = push(ps, idx, (size_t)n);
		if (value(ps, depth + 1))
			return -1;
		pop(ps, old);
		ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return 0;
		}
		return fail(ps, "',' or ']' wanted");
	}
}

static int value(struct parser *ps, int depth)
{
	int rc;

	if (depth > MAX_DEPTH)
		return fail(ps, "nested too deep");
	ws(ps);
	const char *start = ps->p;
	if (ps->p >= ps->end)
		return fail(ps, "a value wanted");
	switch (*ps->p) {
	case '{':
		rc = object(ps, depth);
		break;
	case '[':
		rc = array(ps, depth);
		break;
	case '"':
		rc = string(ps);
		break;
	case 't':
	case 'f':
	case 'n': {
		static const char *const lit[] = { "true", "false", "null" };
		size_t n = 0;
		for (int i = 0; i < 3 && !n; i++)
			if ((size_t)(ps->end - ps->p) >= strlen(lit[i]) && memcmp(ps->p, lit[i], strlen(lit[i])) == 0)
				n = strlen(lit[i]);
		ps->p += n;
		rc = n ? 0 : fail(ps, "an unknown word");
		break;
	}
	default:
		rc = *ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9') ? number(ps) : fail(ps, "a value wanted");
	}
	if (rc == 0)
		for (int i = 0; i < ps->nwant; i++)
			if (!ps->got[i] && strcmp(ps->path + (ps->plen ? 1 : 0), ps->want[i]) == 0 && ps->plen) {
				ps->got[i] = start;
				ps->got_end[i] = ps->p;
			}
	return rc;
}

int main(int argc, char **argv)
{
	static char buf[1 << 22];
	struct parser ps;
	size_t n = fread(buf, 1, sizeof buf, stdin);
	int missing = 0;

	memset(&ps, 0, sizeof ps);
	if (n == sizeof buf) {
		fprintf(stderr, "json_get: input over %zu bytes\n", sizeof buf - 1);
		return 1;
	}
	ps.s = ps.p = buf;
	ps.end = buf + n;
	for (int i = 1; i < argc && ps.nwant < MAX_PATHS; i++)
		ps.want[ps.nwant++] = argv[i];
	ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{') {
		fprintf(stderr, "json_get: not a JSON object\n");
		return 1;
	}
	if (value(&ps, 0) == 0) {
		ws(&ps);
		if (ps.p != ps.end)
			fail(&ps, "more after the object");
	}
	if (ps.err) {
		fprintf(stderr, "json_get: not valid JSON at byte %td: %s\n", ps.p - ps.s, ps.err);
		return 1;
	}
	for (int i = 0; i < ps.nwant; i++) {
		if (ps.got[i])
			printf("%.*s\n", (int)(ps.got_end[i] - ps.got[i]), ps.got[i]);
		else
			missing = 1;
	}
	return missing ? 3 : 0;
}
