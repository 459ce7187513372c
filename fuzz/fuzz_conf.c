/*
 * fuzz_conf: the config parser (src/base/conf.c, the size and duration
 * parsers in units.c).  The input is a config file, then NUL-separated
 * --set assignments.  Invariants beyond "no crash, no sanitizer report":
 *  - a file that fails to load leaves the config exactly as it was;
 *  - every error message is a terminated string that fits its buffer;
 *  - a config that loads and finalizes reads back (kvn_conf_get) key by key,
 *    and those values set into a fresh config give the same text again (what
 *    regen-config and `kvnode config` rely on), and finalize again succeeds.
 */
#include "config.h"

#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

#include "base/conf_int.h"

#define VAL_MAX 4200

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	memfd = memfd_create("fuzz-conf", 0);
	if (memfd < 0)
		kvn_fatal("memfd_create failed");
	snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
	return 0;
}

static void key_name(const struct conf_key *k, char *out, size_t cap)
{
	snprintf(out, cap, "%s.%s", k->section, k->name);
}

/* Every key's text, concatenated (a fingerprint of the whole config). */
static char *conf_text(const struct kvn_conf *c)
{
	size_t cap = conf_nkeys * (VAL_MAX + 2), len = 0;
	char *all = kvn_xmalloc(cap), name[128], v[VAL_MAX];

	all[0] = '\0';
	for (size_t i = 0; i < conf_nkeys; i++) {
		key_name(&conf_keys[i], name, sizeof name);
		int rc = kvn_conf_get(c, name, v, sizeof v);
		if (rc != 0)
			fz_violation("kvn_conf_get(%s) = %d on a config that holds it", name, rc);
		len += (size_t)snprintf(all + len, cap - len, "%s\n", v);
	}
	return all;
}

static void check_err(const char *err, size_t cap, const char *what)
{
	if (!memchr(err, '\0', cap))
		fz_violation("%s: error message not terminated", what);
}

static void roundtrip(const struct kvn_conf *c)
{
	struct kvn_conf fresh;
	char name[128], v[VAL_MAX], v2[VAL_MAX], set[VAL_MAX + 140], err[512];

	kvn_conf_init(&fresh);
	for (size_t i = 0; i < conf_nkeys; i++) {
		key_name(&conf_keys[i], name, sizeof name);
		if (kvn_conf_get(c, name, v, sizeof v) != 0)
			fz_violation("kvn_conf_get(%s) failed", name);
		snprintf(set, sizeof set, "%s=%s", name, v);
		int rc = kvn_conf_set(&fresh, set, err, sizeof err);
		check_err(err, sizeof err, "kvn_conf_set");
		if (rc != 0)
			fz_violation("%s: the value it reads back ('%s') does not set again: %s", name, v, err);
		if (kvn_conf_get(&fresh, name, v2, sizeof v2) != 0 || strcmp(v, v2) != 0)
			fz_violation("%s: '%s' set again reads '%s'", name, v, v2);
	}
	kvn_conf_fini(&fresh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvn_conf c;
	char err[512];
	const uint8_t *nul = memchr(data, '\0', size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	int rc;

	if (size > 64 * 1024)
		return 0;
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, flen, 0) != (ssize_t)flen)
		kvn_fatal("memfd write failed");

	static char *defaults; /* the text of a fresh config: the same every time */
	kvn_conf_init(&c);
	if (!defaults)
		defaults = conf_text(&c);
	char *before = kvn_xstrdup(defaults);
	memset(err, 'x', sizeof err);
	rc = kvn_conf_load(&c, memfd_path, err, sizeof err);
	check_err(err, sizeof err, "kvn_conf_load");
	if (rc != 0) {
		if (rc != KVN_ECONFIG)
			fz_violation("kvn_conf_load: %d, not 0 or KVN_ECONFIG", rc);
		char *after = conf_text(&c);
		if (strcmp(before, after) != 0)
			fz_violation("a file that failed to load (%s) changed the config", err);
		free(after);
	}
	free(before);

	/* the --set assignments after the file */
	const uint8_t *p = nul ? nul + 1 : data + size, *end = data + size;
	int nset = 0;
	while (p < end) {
		const uint8_t *q = memchr(p, '\0', (size_t)(end - p));
		size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
		char *a = kvn_xmalloc(n + 1);
		memcpy(a, p, n);
		a[n] = '\0';
		struct kvn_conf snap;
		kvn_conf_copy(&snap, &c); /* cheap; the text is compared only on a refusal */
		rc = kvn_conf_set(&c, a, err, sizeof err);
		check_err(err, sizeof err, "kvn_conf_set");
		if (rc != 0) {
			char *t1 = conf_text(&snap), *t2 = conf_text(&c);
			if (strcmp(t1, t2) != 0)
				fz_violation("a refused --set changed the config");
			free(t1);
			free(t2);
		}
		kvn_conf_fini(&snap);
		free(a);
		p += n + 1;
		if (++nset >= 16)
			break;
	}

	rc = kvn_conf_finalize(&c, err, sizeof err);
	check_err(err, sizeof err, "kvn_conf_finalize");
	if (rc == 0) {
		roundtrip(&c);
		if (kvn_conf_finalize(&c, err, sizeof err) != 0)
			fz_violation("a finalized config does not finalize again: %s", err);
	}
	kvn_conf_fini(&c);

	/* the unit parsers on the raw first line */
	char s[128];
	size_t sl = flen < sizeof s - 1 ? flen : sizeof s - 1;
	memcpy(s, data, sl);
	s[sl] = '\0';
	uint64_t v;
	const char *why = NULL;
	(void)kvn_parse_size(s, &v, &why);
	(void)kvn_parse_duration_ms(s, &v, &why);
	return 0;
}
