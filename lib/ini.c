/* ini.c - see include/portico/ini.h
 *
 * One pass over the text, one line at a time.  The items' strings are
 * copied into one scratch buffer (key and value of at most a line each),
 * so the text itself stays read-only and may come from a fuzzer or a file.
 */
#include "portico/ini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ini_reader {
	const char *text;
	struct pt_ini_error *err;
	int line;
	const char *line_start; /* of the line being read, for columns */
	/* the key a continuation line goes on with: offsets into text */
	bool have_prev;
	size_t prev_key, prev_len;
	char *scratch; /* room for a key and a value, each NUL-terminated */
};

static int ini_fail(struct ini_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int ini_fail(struct ini_reader *r, const char *fmt, ...)
{
	va_list ap;

	r->err->line = r->line;
	va_start(ap, fmt);
	vsnprintf(r->err->msg, sizeof(r->err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Check that s[0..n) is UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF) without C1 controls, which some terminals obey as
 * escape sequences when a value is shown in a log line. */
static int ini_utf8(struct ini_reader *r, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		uint32_t cp, min;
		size_t k, i;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			goto bad;
		}
		if ((size_t)(end - p) <= k)
			goto bad;
		for (i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		if (cp <= 0x9f)
			return ini_fail(r, "line contains control character U+%04X", (unsigned)cp);
		p += k + 1;
	}
	return 0;
bad:
	return ini_fail(r, "line is not UTF-8 text (byte 0x%02x at column %zu)", *p,
			(size_t)((const char *)p - r->line_start) + 1);
}

/* Hand one item to the callback, its strings copied into scratch. */
static int ini_emit(struct ini_reader *r, pt_ini_cb cb, void *arg, int kind, const char *name,
		    size_t nlen, const char *value, size_t vlen)
{
	struct pt_ini_item item = { .kind = kind, .line = r->line };
	char *n = r->scratch, *v = r->scratch + nlen + 1;

	memcpy(n, name, nlen);
	n[nlen] = '\0';
	memcpy(v, value, vlen);
	v[vlen] = '\0';
	item.name = n;
	item.value = v;
	return cb(arg, &item);
}

/* How much of s[0..n) comes before an inline comment: a ';' right after a
 * blank.  s[-1] is part of the line (a blank, or the '=' of a key). */
static size_t ini_comment(const char *s, size_t n)
{
	const char *p;

	/* p[-1], not s[i - 1]: i - 1 with i = 0 is an unsigned wrap */
	for (p = s; p < s + n; p++)
		if (*p == ';' && is_blank(p[-1]))
			return (size_t)(p - s);
	return n;
}

static size_t ini_rtrim(const char *s, size_t n)
{
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	return n;
}

/* One line: s[0..n) with its line end gone. */
static int ini_line(struct ini_reader *r, const char *line, size_t n, pt_ini_cb cb, void *arg)
{
	const char *s = line, *end = line + n, *close, *rest, *v, *k;
	size_t i, vlen, klen;
	int rc;

	r->line_start = line;
	if (memchr(line, '\0', n))
		return ini_fail(r, "line contains a NUL byte (not a text file?)");
	if (n > PT_INI_LINE_MAX)
		return ini_fail(r, "line is longer than %d bytes", PT_INI_LINE_MAX);
	/* an escape sequence or a stray CR would end up in user names, paths
	 * and log lines */
	for (i = 0; i < n; i++) {
		unsigned char c = line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return ini_fail(r, "line contains control character 0x%02x", c);
	}

	while (s < end && is_blank(*s))
		s++;
	end = s + ini_rtrim(s, end - s);
	if (s == end || *s == ';' || *s == '#')
		return 0; /* blank lines and comments do not end a continuation */

	if (s > line && r->have_prev) {
		const char *key = r->text + r->prev_key;

		vlen = ini_rtrim(s, ini_comment(s, end - s));
		if (*s == '[')
			return ini_fail(r,
					"indented section header is read as more of '%.*s'; "
					"remove the indentation",
					(int)(r->prev_len > 64 ? 64 : r->prev_len), key);
		if (memchr(s, '=', vlen))
			return ini_fail(r,
					"indented 'key = value' line is read as more of '%.*s'; "
					"remove the indentation",
					(int)(r->prev_len > 64 ? 64 : r->prev_len), key);
		if ((rc = ini_utf8(r, s, vlen)))
			return rc;
		return ini_emit(r, cb, arg, PT_INI_MORE, key, r->prev_len, s, vlen);
	}

	if (*s == '[') {
		r->have_prev = false;
		if (!(close = memchr(s, ']', end - s)))
			return ini_fail(r, "syntax error: section header without ']'");
		for (rest = close + 1; rest < end && is_blank(*rest); rest++)
			;
		if (rest < end && *rest != ';')
			return ini_fail(r, "syntax error: text after ']' of the section header");
		if ((rc = ini_utf8(r, s + 1, close - s - 1)))
			return rc;
		return ini_emit(r, cb, arg, PT_INI_SECTION, s + 1, close - s - 1, "", 0);
	}

	/* key = value: the key ends at '=', and a ':' or a comment first is an
	 * error, as is a blank inside the key (a forgotten '=': "listen x") */
	for (v = s; v < end && *v != '=' && *v != ':'; v++)
		if (*v == ';' && is_blank(v[-1])) /* v > s: *s is no ';' */
			break;
	klen = ini_rtrim(s, v - s);
	for (k = s; k < s + klen && !is_blank(*k); k++)
		;
	if (v == end || *v != '=' || k < s + klen)
		return ini_fail(r,
				"syntax error: expected 'key = value', '[section]' or a comment");
	for (v++; v < end && is_blank(*v); v++)
		;
	vlen = ini_rtrim(v, ini_comment(v, end - v));
	if ((rc = ini_utf8(r, s, klen)) || (rc = ini_utf8(r, v, vlen)))
		return rc;
	r->have_prev = true;
	r->prev_key = s - r->text;
	r->prev_len = klen;
	return ini_emit(r, cb, arg, PT_INI_KEY, s, klen, v, vlen);
}

int pt_ini_parse(const char *text, size_t len, pt_ini_cb cb, void *arg, struct pt_ini_error *err)
{
	struct ini_reader r = { .text = text, .err = err };
	size_t pos = 0, room;
	int rc = 0;

	err->line = 0;
	err->msg[0] = '\0';
	if (len > PT_INI_FILE_MAX) {
		snprintf(err->msg, sizeof(err->msg), "larger than %d bytes", PT_INI_FILE_MAX);
		return -EFBIG;
	}
	/* a key and a value, each at most a line (and a line is at most the
	 * text, or one byte past the limit before it is refused) */
	room = len < PT_INI_LINE_MAX ? len : PT_INI_LINE_MAX;
	if (!(r.scratch = malloc(2 * room + 2))) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -ENOMEM;
	}
	if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
		pos = 3;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = (nl ? (size_t)(nl - text) : len) - pos;

		r.line++;
		if (n > 0 && text[pos + n - 1] == '\r')
			n--;
		if ((rc = ini_line(&r, text + pos, n, cb, arg)))
			break;
		pos = nl ? (size_t)(nl - text) + 1 : len;
	}
	free(r.scratch);
	return rc;
}

int pt_ini_parse_file(const char *path, pt_ini_cb cb, void *arg, struct pt_ini_error *err)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *nb;
	ssize_t n;
	int fd, rc;

	err->line = 0;
	err->msg[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = -errno;
		snprintf(err->msg, sizeof(err->msg), "cannot open: %s", strerror(-rc));
		return rc;
	}
	/* read to the end, whatever fstat says (pipes, /proc), but never more
	 * than one byte past the limit */
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 64 * 1024;
			if (cap > (size_t)PT_INI_FILE_MAX + 1)
				cap = (size_t)PT_INI_FILE_MAX + 1;
			if (len == cap) {
				snprintf(err->msg, sizeof(err->msg), "larger than %d bytes",
					 PT_INI_FILE_MAX);
				rc = -EFBIG;
				goto out;
			}
			if (!(nb = realloc(buf, cap))) {
				snprintf(err->msg, sizeof(err->msg), "out of memory");
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			snprintf(err->msg, sizeof(err->msg), "cannot read: %s", strerror(-rc));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	rc = pt_ini_parse(buf, len, cb, arg, err);
out:
	free(buf);
	close(fd);
	return rc;
}
