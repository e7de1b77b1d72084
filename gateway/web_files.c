/*
 * web_files.c - the files the HTTPS front serves (the portal's, noVNC's),
 * read into memory once at start (gateway.h, gw_files_load).
 *
 * Why in memory: serving a file then needs no disk read on the loop thread
 * (the house rule: nothing blocks it) and no path from a request ever
 * reaches the file system, so no request can name a file outside the tree,
 * whatever it encodes; and the trees are small (the portal a few files,
 * Debian's noVNC about 1 MiB).  A file changed on disk is served once the
 * gateway restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway.h"
#include "portico/log.h"

#define FILES_MAX	4096
#define FILE_MAX	(16 * 1024 * 1024)
#define FILES_BYTES_MAX (128 * 1024 * 1024)

static const struct {
	const char *ext, *ctype;
} ctypes[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".json", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".woff2", "font/woff2" },
	{ ".wasm", "application/wasm" },
};

static const char *ctype_of(const char *path)
{
	size_t n = strlen(path);

	for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++) {
		size_t e = strlen(ctypes[i].ext);
		if (n > e && !strcmp(path + n - e, ctypes[i].ext))
			return ctypes[i].ctype;
	}
	return "application/octet-stream";
}

/* nftw has no argument for its callback: the load in progress. */
static struct {
	struct gw_files *f;
	const char *prefix;
	size_t root_len;
	char *err;
	size_t errlen;
} walk;

static int read_file(const char *path, size_t size, char **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	char *buf;

	if (fd == -1)
		return -errno;
	buf = malloc(size ? size : 1);
	while (buf && got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != size) {
		free(buf);
		return buf ? -EIO : -ENOMEM;
	}
	*out = buf;
	return 0;
}

static int add_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	struct gw_files *f = walk.f;
	const char *rel = path + walk.root_len;
	struct gw_file *nv, *e;
	char *data = NULL;
	int rc;

	/* Hidden files and folders (".git", editors' backups) are not served. */
	if (ftw->level > 0 && path[ftw->base] == '.')
		return type == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE;
	if (type != FTW_F)
		return FTW_CONTINUE;
	if (!S_ISREG(sb->st_mode))
		return FTW_CONTINUE;
	if (f->n >= FILES_MAX || sb->st_size > FILE_MAX ||
	    f->bytes + (size_t)sb->st_size > FILES_BYTES_MAX) {
		snprintf(walk.err, walk.errlen,
			 "%s: too many files or too large (at most %d files of %d MiB, %d MiB "
			 "in all)",
			 path, FILES_MAX, FILE_MAX >> 20, FILES_BYTES_MAX >> 20);
		return FTW_STOP;
	}
	if ((rc = read_file(path, (size_t)sb->st_size, &data))) {
		snprintf(walk.err, walk.errlen, "cannot read %s: %s", path, strerror(-rc));
		return FTW_STOP;
	}
	nv = realloc(f->v, (f->n + 1) * sizeof(*f->v));
	if (!nv) {
		free(data);
		snprintf(walk.err, walk.errlen, "out of memory");
		return FTW_STOP;
	}
	f->v = nv;
	e = &f->v[f->n];
	if (asprintf(&e->path, "%s%s", walk.prefix, rel) < 0) {
		free(data);
		snprintf(walk.err, walk.errlen, "out of memory");
		return FTW_STOP;
	}
	e->data = data;
	e->len = (size_t)sb->st_size;
	e->ctype = ctype_of(rel);
	f->n++;
	f->bytes += e->len;
	return FTW_CONTINUE;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct gw_file *)a)->path, ((const struct gw_file *)b)->path);
}

int gw_files_load(struct gw_files *f, const char *root, const char *prefix, char *err,
		  size_t errlen)
{
	char real[PATH_MAX];
	size_t n0 = f->n;
	int rc;

	if (!realpath(root, real)) {
		snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	walk.f = f;
	walk.prefix = prefix;
	walk.root_len = strlen(real);
	walk.err = err;
	walk.errlen = errlen;
	err[0] = '\0';
	/* Symbolic links are followed (Debian's noVNC links its vendored
	 * libraries): the tree is the admin's, not a client's. */
	rc = nftw(real, add_one, 16, FTW_ACTIONRETVAL);
	/* Sorted whatever happened: a caller that goes on without this tree
	 * still finds the files of the others. */
	if (f->n)
		qsort(f->v, f->n, sizeof(*f->v), by_path);
	if (rc != 0 || err[0]) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", root, strerror(errno));
		return -1;
	}
	if (f->n == n0) {
		snprintf(err, errlen, "%s: no files to serve", root);
		return -1;
	}
	return 0;
}

const struct gw_file *gw_files_find(const struct gw_files *f, const char *path)
{
	struct gw_file key = { .path = (char *)path };

	if (!f || !f->n)
		return NULL;
	return bsearch(&key, f->v, f->n, sizeof(*f->v), by_path);
}

void gw_files_free(struct gw_files *f)
{
	for (size_t i = 0; f && i < f->n; i++) {
		free(f->v[i].path);
		free(f->v[i].data);
	}
	if (f) {
		free(f->v);
		memset(f, 0, sizeof(*f));
	}
}
