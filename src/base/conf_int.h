/*
 * conf_int: the config key table, shared by conf.c (parsing, --set,
 * finalize) and conf_doc.c (--help, the example file, the Markdown table).
 */
#ifndef KVN_CONF_INT_H
#define KVN_CONF_INT_H

#include <stddef.h>
#include <stdint.h>

/* T_FRACTION: a decimal in 0..1 ("0.95"), stored as parts per million in a
 * uint64_t (min and max too), so every number key shares one range check. */
enum conf_type { T_STRING, T_PATH, T_ADDR, T_SIZE, T_DURATION, T_UINT, T_BOOL, T_ENUM, T_FRACTION };

enum conf_flag {
	F_DERIVED = 1, /* empty default: kvn_conf_finalize fills it from other keys */
	F_POW2 = 2,    /* value must be a power of two */
	F_EMPTY_OFF = 4, /* empty turns the feature off (an address: no listener; a path:
			  * no file, and `derived` says so in the docs) */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	const char *def;            /* default, as text: parsed like a file value */
	uint64_t min, max;          /* inclusive; T_STRING: max is the length limit */
	unsigned flags;             /* enum conf_flag */
	const char *derived;        /* F_DERIVED: how finalize derives the default */
	/* T_ENUM: names; the index is the stored value.  T_PATH: keywords
	 * taken as they are, never as a file name (node.log's stderr) */
	const char *const *choices;
	size_t off;                 /* offsetof(struct kvn_conf, field) */
	const char *help;
};

struct conf_section {
	const char *name, *help;
};

extern const char *const conf_type_names[];
extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;
extern const struct conf_section conf_sections[];
extern const size_t conf_nsections;
/* The value etc/kvnode.conf shows for k when it is not the default
 * (node.data_dir = ../var: the file lives in etc/), else NULL. */
const char *conf_example_value(const struct conf_key *k);
/* "1MiB..1TiB", "0..100", "" for keys without a range. */
void conf_range_text(const struct conf_key *k, char *out, size_t cap);

/* ---- conf_path.c: paths in a config file ---- */
/* dir/file in a new string (the caller frees it). */
char *conf_path_join(const char *dir, const char *file);
/* The directory of the config file at path, as a real path when it can
 * be resolved (the caller frees it). */
char *conf_path_dir_of(const char *path);
/* A relative value v of a file whose directory is dir, made absolute
 * against it, its leading "./" and "../" folded into dir (the caller
 * frees it). */
char *conf_path_under(const char *dir, const char *v);

#endif
