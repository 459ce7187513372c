/*
 * conf_path: where a path in a config file points.  A relative path in a
 * file means next to the file, wherever kvnode was started from, so an
 * installed or a checked-out config finds its data_dir from any working
 * directory; --set values and built-in defaults stay relative to the
 * working directory (conf.c decides which values come here).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "conf_int.h"

char *conf_path_join(const char *dir, const char *file)
{
	size_t n = strlen(dir);
	char *p;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	p = kvn_xmalloc(n + strlen(file) + 2);
	sprintf(p, "%.*s/%s", (int)n, dir, file);
	return p;
}

char *conf_path_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? kvn_xstrdup(path) : kvn_xstrdup(".");
	char *real;

	if (slash)
		dir[slash == path ? 1 : slash - path] = '\0';
	real = realpath(dir, NULL);
	if (!real)
		return dir;
	free(dir);
	return real;
}

char *conf_path_under(const char *dir, const char *v)
{
	/* dir is a real path (conf_path_dir_of): its ".." are its parents */
	char *d = kvn_xstrdup(dir), *cut, *abs;

	for (;; v += 3) {
		while (v[0] == '.' && v[1] == '/')
			v += 2;
		if (strncmp(v, "../", 3) != 0 || d[0] != '/' || !(cut = strrchr(d, '/')) || !cut[1])
			break;
		cut[cut == d] = '\0';
	}
	abs = conf_path_join(d, *v ? v : ".");
	free(d);
	return abs;
}
