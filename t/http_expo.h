/*
 * t/http_expo.h: a parser of the Prometheus text exposition format 0.0.4
 * for t/http_metrics (promtool is not installed here): every line is a
 * HELP, a TYPE, a comment or a sample; every family has one HELP and one
 * TYPE before its samples; names, labels (with their escapes) and values
 * are well formed; no series twice; a histogram's buckets are in le
 * order, cumulative, end with +Inf equal to _count, and _sum is there.
 * Every name must start with kvnode_.  Header-only (static).
 */
#ifndef KVN_T_HTTP_EXPO_H
#define KVN_T_HTTP_EXPO_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAM 512
#define MAX_SER 4096

struct fam {
	char name[128];
	char type[16];
	int help, typed, samples;
};
struct series {
	char key[512]; /* name{labels as written} */
	double v;
};
struct expo {
	struct fam fam[MAX_FAM];
	int nfam;
	struct series ser[MAX_SER];
	int nser;
	char err[256]; /* the first problem, "" if none */
	int hist_checked;
};

static int name_ok(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return 0;
	return 1;
}

static struct fam *fam_find(struct expo *e, const char *name, size_t n)
{
	for (int i = 0; i < e->nfam; i++)
		if (strlen(e->fam[i].name) == n && strncmp(e->fam[i].name, name, n) == 0)
			return &e->fam[i];
	return NULL;
}

static struct fam *fam_get(struct expo *e, const char *name, size_t n)
{
	struct fam *f = fam_find(e, name, n);
	if (f || e->nfam == MAX_FAM)
		return f;
	f = &e->fam[e->nfam++];
	memset(f, 0, sizeof *f);
	snprintf(f->name, sizeof f->name, "%.*s", (int)n, name);
	return f;
}

static int value_ok(const char *s, double *v)
{
	char *end;
	if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0) {
		*v = strcmp(s, "NaN") == 0 ? NAN : s[0] == '-' ? -INFINITY : INFINITY;
		return 1;
	}
	if (!*s)
		return 0;
	errno = 0;
	*v = strtod(s, &end);
	return *end == '\0' && errno == 0;
}

/* The family a sample belongs to: its name, or for a histogram's
 * _bucket/_sum/_count the base name when that is a declared histogram. */
static struct fam *sample_family(struct expo *e, const char *name, size_t n)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strncmp(name + n - l, sfx[i], l) == 0) {
			struct fam *f = fam_find(e, name, n - l);
			if (f && strcmp(f->type, "histogram") == 0)
				return f;
		}
	}
	return fam_find(e, name, n);
}

#define BAD(...)                                                          \
	do {                                                              \
		if (!e->err[0])                                           \
			snprintf(e->err, sizeof e->err, __VA_ARGS__);     \
		return;                                                   \
	} while (0)

/* labels: {name="value",...} with \\ \" \n escapes; p at '{'; *end after '}' */
static int labels_ok(const char *p, const char **end)
{
	p++;
	while (*p && *p != '}') {
		const char *ls = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		if (!name_ok(ls, (size_t)(p - ls)) || *p++ != '=' || *p++ != '"')
			return 0;
		while (*p && *p != '"') {
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return 0;
			} else if (*p == '\n') {
				return 0;
			}
			p++;
		}
		if (*p++ != '"')
			return 0;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return 0;
	}
	if (*p != '}')
		return 0;
	*end = p + 1;
	return 1;
}

static void parse_line(struct expo *e, char *line, int lineno)
{
	if (line[0] == '#') {
		char kw[8], name[160];
		int off = 0;
		if (sscanf(line, "# %7s %159s %n", kw, name, &off) < 2) {
			if (strncmp(line, "# HELP", 6) == 0 || strncmp(line, "# TYPE", 6) == 0)
				BAD("line %d: incomplete %s", lineno, line);
			return; /* a comment */
		}
		if (strcmp(kw, "HELP") != 0 && strcmp(kw, "TYPE") != 0)
			return;
		if (!name_ok(name, strlen(name)))
			BAD("line %d: bad metric name '%s'", lineno, name);
		struct fam *f = fam_get(e, name, strlen(name));
		if (!f)
			BAD("too many families");
		if (f->samples)
			BAD("line %d: %s %s after its samples", lineno, kw, name);
		if (kw[0] == 'H') {
			if (f->help++)
				BAD("line %d: second HELP for %s", lineno, name);
			if (!line[off])
				BAD("line %d: empty HELP for %s", lineno, name);
		} else {
			const char *t = line + off;
			if (f->typed++)
				BAD("line %d: second TYPE for %s", lineno, name);
			if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") && strcmp(t, "summary") &&
			    strcmp(t, "untyped"))
				BAD("line %d: unknown type '%s'", lineno, t);
			snprintf(f->type, sizeof f->type, "%s", t);
		}
		return;
	}
	/* a sample: name[{labels}] value */
	const char *p = line, *ns = line;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
		p++;
	size_t nlen = (size_t)(p - ns);
	if (!name_ok(ns, nlen))
		BAD("line %d: bad sample name in '%s'", lineno, line);
	if (strncmp(ns, "kvnode_", 7) != 0)
		BAD("line %d: '%.*s' is not a kvnode_* name", lineno, (int)nlen, ns);
	const char *lend = p;
	if (*p == '{' && !labels_ok(p, &lend))
		BAD("line %d: bad labels in '%s'", lineno, line);
	if (*lend != ' ')
		BAD("line %d: no value in '%s'", lineno, line);
	double v;
	char val[64];
	snprintf(val, sizeof val, "%s", lend + 1);
	char *sp = strchr(val, ' '); /* an optional timestamp */
	if (sp)
		*sp = '\0';
	if (!value_ok(val, &v))
		BAD("line %d: value '%s' is not a number", lineno, val);
	struct fam *f = sample_family(e, ns, nlen);
	if (!f || !f->help || !f->typed)
		BAD("line %d: sample of %.*s without HELP and TYPE before it", lineno, (int)nlen, ns);
	if (strcmp(f->type, "counter") == 0 && v < 0)
		BAD("line %d: negative counter", lineno);
	f->samples++;
	if (e->nser == MAX_SER)
		BAD("too many series");
	for (int i = 0; i < e->nser; i++)
		if (strlen(e->ser[i].key) == (size_t)(lend - ns) && strncmp(e->ser[i].key, ns, (size_t)(lend - ns)) == 0)
			BAD("line %d: series %.*s twice", lineno, (int)(lend - ns), ns);
	struct series *s = &e->ser[e->nser++];
	snprintf(s->key, sizeof s->key, "%.*s", (int)(lend - ns), ns);
	s->v = v;
}

static double series_val(const struct expo *e, const char *key, int *found)
{
	for (int i = 0; i < e->nser; i++)
		if (strcmp(e->ser[i].key, key) == 0) {
			if (found)
				*found = 1;
			return e->ser[i].v;
		}
	if (found)
		*found = 0;
	return 0;
}

/* Every histogram: buckets in the order written, le ascending, counts
 * never decreasing, the last le="+Inf" and equal to _count, _sum there. */
static void check_histograms(struct expo *e)
{
	for (int f = 0; f < e->nfam; f++) {
		if (strcmp(e->fam[f].type, "histogram") != 0)
			continue;
		const char *name = e->fam[f].name;
		char pre[160];
		double last_le = -INFINITY, last_c = -1;
		int nb = 0, inf = 0;
		snprintf(pre, sizeof pre, "%s_bucket{le=\"", name);
		for (int i = 0; i < e->nser; i++) {
			if (strncmp(e->ser[i].key, pre, strlen(pre)) != 0)
				continue;
			double le;
			char lv[32];
			snprintf(lv, sizeof lv, "%s", e->ser[i].key + strlen(pre));
			lv[strcspn(lv, "\"")] = '\0';
			if (inf || !value_ok(lv, &le) || le <= last_le)
				BAD("%s: bucket le=%s out of order", name, lv);
			if (e->ser[i].v < last_c)
				BAD("%s: bucket le=%s not cumulative", name, lv);
			last_le = le;
			last_c = e->ser[i].v;
			inf = isinf(le);
			nb++;
		}
		char k[160];
		int found;
		snprintf(k, sizeof k, "%s_count", name);
		double cnt = series_val(e, k, &found);
		if (!nb || !inf)
			BAD("%s: no +Inf bucket", name);
		if (!found || cnt != last_c)
			BAD("%s: +Inf bucket %g != _count %g", name, last_c, cnt);
		snprintf(k, sizeof k, "%s_sum", name);
		series_val(e, k, &found);
		if (!found)
			BAD("%s: no _sum", name);
		e->hist_checked++;
	}
}

/* Parse text into e (zeroed); e->err says the first problem. */
static void expo_parse(struct expo *e, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	int lineno = 0;
	memset(e, 0, sizeof *e);
	if (!*text || text[strlen(text) - 1] != '\n')
		snprintf(e->err, sizeof e->err, "the text does not end with a newline");
	for (char *l = strtok_r(copy, "\n", &save); l && !e->err[0]; l = strtok_r(NULL, "\n", &save))
		parse_line(e, l, ++lineno);
	free(copy);
	for (int i = 0; i < e->nfam && !e->err[0]; i++)
		if (!e->fam[i].help || !e->fam[i].typed)
			snprintf(e->err, sizeof e->err, "%s lacks %s", e->fam[i].name, e->fam[i].help ? "TYPE" : "HELP");
	if (!e->err[0])
		check_histograms(e);
}

#undef BAD

#endif
