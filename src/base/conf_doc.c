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
