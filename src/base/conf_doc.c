/*
 * conf_doc: renders the config table for people: the --help listing, the
 * example etc/kvnode.conf and the Markdown tables of docs/configuration.md
 * (t/conf checks the committed files against these).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base.h"
#include "conf_int.h"

/* ---- rendering the table ---------------------------------------------------------- */

#define FOR_KEYS_IN(k, sec)                                                      \
	for (const struct conf_key *k = conf_keys; k < conf_keys + conf_nkeys; k++) \
		if (strcmp(k->section, (sec)) == 0)

/* Word-wrap text to `width` columns, each line starting with prefix. */
static void write_wrapped(FILE *out, const char *prefix, const char *text, size_t width)
{
	size_t col = 0, plen = strlen(prefix);

	while (*text) {
		size_t w = strcspn(text, " ");
		if (col > 0 && col + 1 + w > width) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0) {
			fputs(prefix, out);
			col = plen;
		} else {
			fputc(' ', out);
			col++;
		}
		fwrite(text, 1, w, out);
		col += w;
		text += w;
		text += strspn(text, " ");
	}
	if (col > 0)
		fputc('\n', out);
}

static const char paths_text[] =
	"A relative path in a config file is relative to the file's directory; one given "
	"with --set, or a default when no config file is read, to the working directory.";

/* Values the shipped etc/kvnode.conf shows instead of the default: it lives
 * in etc/, so "../var" is the var/ beside it that `./kvnode --config
 * etc/kvnode.conf` (and README's `sqlite3 var/master.db`) use. */
static const struct {
	const char *section, *name, *value;
} example_values[] = {
	{ "node", "data_dir", "../var" },
};

const char *conf_example_value(const struct conf_key *k)
{
	for (size_t i = 0; i < sizeof example_values / sizeof example_values[0]; i++)
		if (strcmp(k->section, example_values[i].section) == 0 &&
		    strcmp(k->name, example_values[i].name) == 0)
			return example_values[i].value;
	return NULL;
}

/* The default as the docs show it: how a derived one is made, what an
 * empty one means (node.pid_file: none), else the value. */
static const char *shown_default(const struct conf_key *k)
{
	return (k->flags & F_DERIVED) || (!*k->def && k->derived) ? k->derived : k->def;
}

static const char units_text[] =
	"Sizes take a unit: B, K or KiB, M or MiB, G or GiB, T or TiB (powers of 1024), "
	"KB, MB, GB, TB (powers of 1000); fractions are fine (1.5G). Durations need one: "
	"us, ms, s, m, h, d (250ms, 10s, 1.5m).";

void kvn_conf_write_help(FILE *out)
{
	char range[128];

	fprintf(out, "Configuration keys (in the file under [section], or --set section.key=value):\n");
	write_wrapped(out, "", units_text, 78);
	write_wrapped(out, "", paths_text, 78);
	for (size_t s = 0; s < conf_nsections; s++) {
		fprintf(out, "\n[%s]\n", conf_sections[s].name);
		FOR_KEYS_IN(k, conf_sections[s].name) {
			conf_range_text(k, range, sizeof range);
			fprintf(out, "  %-20s %-9s default %s%s%s%s\n", k->name, conf_type_names[k->type],
				shown_default(k), range[0] ? " (" : "",
				range, range[0] ? ")" : "");
			write_wrapped(out, "      ", k->help, 78);
		}
	}
}

void kvn_conf_write_example(FILE *out)
{
	char range[128];

	fprintf(out,
		"# kvnode configuration: every key with its default value.\n"
		"#\n"
		"# Generated from the key table in src/base/conf.c; t/conf checks that\n"
		"# the two agree.  Change the table, not this file, and regenerate with\n"
		"#   t/conf --write-example > etc/kvnode.conf\n"
		"#\n"
		"# Format: [section] lines, then key = value.  Comments start with # or ;\n"
		"# at the start of a line or after a blank.  A key given twice: the last\n"
		"# one wins.  --set section.key=value on the command line overrides this\n"
		"# file.  See docs/configuration.md.\n"
		"#\n");
	write_wrapped(out, "# ", units_text, 76);
	write_wrapped(out, "# ", paths_text, 76);
	for (size_t s = 0; s < conf_nsections; s++) {
		fprintf(out, "\n");
		write_wrapped(out, "# ", conf_sections[s].help, 76);
		fprintf(out, "[%s]\n", conf_sections[s].name);
		FOR_KEYS_IN(k, conf_sections[s].name) {
			conf_range_text(k, range, sizeof range);
			fprintf(out, "\n");
			write_wrapped(out, "# ", k->help, 76);
			fprintf(out, "# %s%s%s\n", conf_type_names[k->type], range[0] ? ": " : "", range);
			if ((k->flags & F_DERIVED) || (!*k->def && k->derived))
				fprintf(out, "# %s = (default: %s)\n", k->name, shown_default(k));
			else if (conf_example_value(k))
				fprintf(out, "# (built-in default: %s)\n%s = %s\n", k->def, k->name,
					conf_example_value(k));
			else
				fprintf(out, "%s = %s\n", k->name, k->def);
		}
	}
}

void kvn_conf_write_markdown(FILE *out)
{
	char range[128];

	for (size_t s = 0; s < conf_nsections; s++) {
		fprintf(out, "%s### [%s]\n\n%s\n\n", s ? "\n" : "", conf_sections[s].name,
			conf_sections[s].help);
		fprintf(out, "| Key | Type | Default | Range | Description |\n"
			     "|-----|------|---------|-------|-------------|\n");
		FOR_KEYS_IN(k, conf_sections[s].name) {
			conf_range_text(k, range, sizeof range);
			fprintf(out, "| `%s` | %s | %s%s%s | %s | %s |\n", k->name,
				conf_type_names[k->type], k->flags & F_DERIVED ? "derived: `" : "`",
				shown_default(k), "`", range,
				k->help);
		}
	}
}

/* ---- kvnode.conf(5) ---------------------------------------------------------------- */

/* Text for a roff line: backslashes and minus signs escaped, `code` spans in
 * bold.  A line never starts with a request character: every caller puts
 * its own text first or starts the line with \&. */
static void roff_text(FILE *out, const char *s)
{
	int code = 0;
	for (; *s; s++) {
		if (*s == '`') {
			fputs(code ? "\\fR" : "\\fB", out);
			code = !code;
		} else if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else
			fputc(*s, out);
	}
	if (code)
		fputs("\\fR", out);
}

/* One paragraph of text: \& first, so a leading '.' or '\'' stays text. */
static void roff_para(FILE *out, const char *s)
{
	fputs("\\&", out);
	roff_text(out, s);
	fputc('\n', out);
}

/* @sysconfdir@ and @docdir@ are left for the build to fill (Makefile.am
 * substitutes them when it makes man/kvnode.conf.5 from the .in file). */
void kvn_conf_write_man(FILE *out)
{
	char range[128];

	fputs(".\\\" Generated from the config key table (src/base/conf_keys.c) by\n"
	      ".\\\" `kvnode --print-config man`; change the table, then `make regen-config`.\n"
	      ".TH KVNODE.CONF 5 \"\" \"kvnode\" \"kvnode manual\"\n"
	      ".SH NAME\n"
	      "kvnode.conf \\- configuration file of kvnode\n"
	      ".SH SYNOPSIS\n"
	      ".I @sysconfdir@/kvnode/kvnode.conf\n"
	      ".SH DESCRIPTION\n"
	      ".BR kvnode (1)\n"
	      "reads its configuration from the file given with \\fB\\-\\-config\\fR.\n"
	      "The file is made of \\fB[section]\\fR lines, each followed by \\fIkey\\fR \\fB=\\fR \\fIvalue\\fR\n"
	      "lines.  Comments start with \\fB#\\fR or \\fB;\\fR at the start of a line or after a blank.\n"
	      "A key given twice: the last one wins.\n"
	      "\\fB\\-\\-set\\fR \\fIsection.key\\fR\\fB=\\fR\\fIvalue\\fR on the command line overrides the file.\n"
	      "An unknown section or key, or a value out of range, is an error (exit status 2).\n"
	      ".PP\n", out);
	roff_para(out, units_text);
	fputs(".PP\n"
	      "Every key, its type, default and range follow, section by section.\n"
	      "A default marked \\fIderived\\fR is computed from other keys when the key is not set.\n"
	      ".SH KEYS\n", out);
	for (size_t s = 0; s < conf_nsections; s++) {
		fprintf(out, ".SS [%s]\n", conf_sections[s].name);
		roff_para(out, conf_sections[s].help);
		FOR_KEYS_IN(k, conf_sections[s].name) {
			conf_range_text(k, range, sizeof range);
			fprintf(out, ".TP\n\\fB%s\\fR (%s; ", k->name, conf_type_names[k->type]);
			if (k->flags & F_DERIVED) {
				fputs("default derived: ", out);
				roff_text(out, k->derived);
			} else {
				fputs("default \\fB", out);
				roff_text(out, k->def[0] ? k->def : "\"\"");
				fputs("\\fR", out);
			}
			if (range[0]) {
				fputs("; ", out);
				roff_text(out, range);
			}
			fputs(")\n", out);
			roff_para(out, k->help);
		}
	}
	fputs(".SH FILES\n"
	      ".TP\n"
	      ".I @sysconfdir@/kvnode/kvnode.conf\n"
	      "The configuration the systemd units kvnode\\-master.service and kvnode\\-peer.service use;\n"
	      "installed from\n"
	      ".I kvnode.conf.example\n"
	      "beside it (every key at its default, data_dir /var/lib/kvnode) unless one was there.\n"
	      ".TP\n"
	      ".I @docdir@/configuration.md\n"
	      "The same keys with more context.\n"
	      ".SH SEE ALSO\n"
	      ".BR kvnode (1)\n", out);
}
