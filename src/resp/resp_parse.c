/*
 * resp_parse: the Redis protocol's wire format: requests (multibulk
 * arrays of bulk strings, and inline lines) parsed from a contiguous
 * buffer without copying, and the reply encoders over an evbuffer.  Pure:
 * no I/O, no state beyond the caller's argument vector, so t/resp_parse
 * drives it with any bytes.
 */
#include "config.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "resp/resp.h"

void resp_argv_free(struct resp_argv *av)
{
	free(av->a);
	memset(av, 0, sizeof *av);
}

static void argv_push(struct resp_argv *av, const char *p, size_t len)
{
	if (av->n == av->cap) {
		size_t cap = av->cap ? av->cap * 2 : 64;
		struct resp_arg *a = realloc(av->a, cap * sizeof *a);
		if (!a)
			kvn_fatal("out of memory");
		av->a = a;
		av->cap = cap;
	}
	av->a[av->n].p = p;
	av->a[av->n].len = len;
	av->n++;
}

/* A decimal integer filling p[0..n) exactly, optional '-': 0, or -1. */
static int parse_ll(const char *p, size_t n, long long *out)
{
	int neg = 0;
	unsigned long long v = 0;
	size_t i = 0;

	if (n > 0 && p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n || n - i > 18) /* 18 digits: no overflow check needed */
		return -1;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

/* The line at buf[pos..len) up to CRLF, at most `max` bytes before it.
 * 1 with *end the CR's offset; 0 incomplete; -1 too long or a CR
 * not followed by LF. */
static int find_line(const char *buf, size_t len, size_t pos, size_t max, size_t *end)
{
	size_t avail = len - pos, look = avail < max + 2 ? avail : max + 2;
	const char *cr = memchr(buf + pos, '\r', look);

	if (!cr)
		return avail >= max + 2 ? -1 : 0;
	size_t at = (size_t)(cr - buf);
	if (at + 1 >= len)
		return 0;
	if (buf[at + 1] != '\n')
		return -1;
	*end = at;
	return 1;
}

static int parse_inline(const char *buf, size_t len, struct resp_argv *av, size_t *used, const char **why)
{
	const char *nl = memchr(buf, '\n', len < RESP_MAX_INLINE ? len : RESP_MAX_INLINE);
	if (!nl) {
		if (len >= RESP_MAX_INLINE) {
			*why = "ERR Protocol error: too big inline request";
			return RESP_EPROTO;
		}
		return RESP_NEED;
	}
	size_t end = (size_t)(nl - buf), i = 0;
	*used = end + 1;
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	while (i < end) {
		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		size_t s = i;
		while (i < end && buf[i] != ' ' && buf[i] != '\t')
			i++;
		if (i > s)
			argv_push(av, buf + s, i - s);
	}
	return RESP_CMD;
}

int resp_parse(const char *buf, size_t len, const struct resp_limits *lim, struct resp_argv *av, size_t *used,
	       size_t *need, const char **why)
{
	size_t start_n = av->n, pos, end;
	long long count, blen;
	int rc;

	*need = 0;
	*used = 0;
	if (len == 0)
		return RESP_NEED;
	if (buf[0] != '*') {
		rc = parse_inline(buf, len, av, used, why);
		if (rc != RESP_CMD)
			av->n = start_n;
		return rc;
	}
	rc = find_line(buf, len, 1, 20, &end);
	if (rc == 0)
		return RESP_NEED;
	if (rc < 0 || parse_ll(buf + 1, end - 1, &count) != 0 || count > (long long)RESP_MAX_ARGS) {
		*why = "ERR Protocol error: invalid multibulk length";
		return RESP_EPROTO;
	}
	pos = end + 2;
	for (long long i = 0; i < count; i++) {
		if (pos >= len)
			goto more;
		if (buf[pos] != '$') {
			*why = "ERR Protocol error: expected '$'";
			goto bad;
		}
		rc = find_line(buf, len, pos + 1, 20, &end);
		if (rc == 0)
			goto more;
		if (rc < 0 || parse_ll(buf + pos + 1, end - pos - 1, &blen) != 0 || blen < 0) {
			*why = "ERR Protocol error: invalid bulk length";
			goto bad;
		}
		if ((uint64_t)blen > lim->max_bulk) {
			*why = "ERR value too large (over node.max_value_size)";
			av->n = start_n;
			return RESP_ETOOBIG;
		}
		pos = end + 2;
		/* the request so far, this argument and the CRLF after it */
		if ((uint64_t)pos + (uint64_t)blen + 2 > lim->max_request) {
			*why = "ERR request too large (over resp.max_input)";
			av->n = start_n;
			return RESP_ETOOBIG;
		}
		if (len - pos < (size_t)blen + 2) {
			*need = pos + (size_t)blen + 2;
			goto more;
		}
		if (buf[pos + (size_t)blen] != '\r' || buf[pos + (size_t)blen + 1] != '\n') {
			*why = "ERR Protocol error: bulk not followed by CRLF";
			goto bad;
		}
		argv_push(av, buf + pos, (size_t)blen);
		pos += (size_t)blen + 2;
	}
	*used = pos;
	return RESP_CMD;
more:
	av->n = start_n;
	return RESP_NEED;
bad:
	av->n = start_n;
	return RESP_EPROTO;
}

/* ---- replies ---- */

void resp_put_simple(struct evbuffer *out, const char *s)
{
	evbuffer_add_printf(out, "+%s\r\n", s);
}

void resp_put_error(struct evbuffer *out, const char *s)
{
	char line[512];
	size_t n = strlen(s);
	if (n > sizeof line - 1)
		n = sizeof line - 1;
	for (size_t i = 0; i < n; i++)
		line[i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
	line[n] = '\0';
	evbuffer_add_printf(out, "-%s\r\n", line);
}

void resp_put_errorf(struct evbuffer *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	resp_put_error(out, line);
}

void resp_put_int(struct evbuffer *out, long long v)
{
	evbuffer_add_printf(out, ":%lld\r\n", v);
}

void resp_put_bulk(struct evbuffer *out, const void *p, size_t n)
{
	evbuffer_add_printf(out, "$%zu\r\n", n);
	evbuffer_add(out, p, n);
	evbuffer_add(out, "\r\n", 2);
}

void resp_put_str(struct evbuffer *out, const char *s)
{
	resp_put_bulk(out, s, strlen(s));
}

void resp_put_null(struct evbuffer *out, int proto)
{
	if (proto == 3)
		evbuffer_add(out, "_\r\n", 3);
	else
		evbuffer_add(out, "$-1\r\n", 5);
}

void resp_put_array(struct evbuffer *out, size_t n)
{
	evbuffer_add_printf(out, "*%zu\r\n", n);
}

void resp_put_map(struct evbuffer *out, size_t n, int proto)
{
	if (proto == 3)
		evbuffer_add_printf(out, "%%%zu\r\n", n);
	else
		evbuffer_add_printf(out, "*%zu\r\n", 2 * n);
}
