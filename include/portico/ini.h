/*
 * ini.h - a small reader of INI text, the syntax of portico.conf.
 *
 * Written here rather than taken from libinih: inih cuts lines and section
 * names at fixed lengths without a word, has no line numbers in its Debian
 * build and takes syntax we do not want ("key: value"), and working around
 * that took more code than this reader.  It knows nothing of Portico's
 * keys; lib/conf.c does.
 *
 * The text, line by line ('\n' ends a line; a '\r' before it is dropped,
 * and the last line needs no '\n'):
 *
 *   [name]          a section; name is everything between '[' and the
 *                   first ']', blanks included.  After the ']' only blanks
 *                   or a ';' comment may follow.
 *   key = value     key: no blanks, no ':' (one syntax: "key: value" is
 *                   an error); blanks around key and value are dropped.
 *   ; text, # text  a comment line (it may be indented).
 *   value ; text    an inline comment: a ';' right after a blank (space
 *                   or tab), in a value or a continuation line.
 *     more          an indented line after a key = value line (blank and
 *                   comment lines may come between) goes on with that key:
 *                   the caller decides whether the key may continue.  It
 *                   may not start with '[' nor hold '=' (an indented
 *                   header or key would otherwise vanish into the value).
 *                   Right after a section header an indented line is an
 *                   ordinary one.
 *
 * Refused, with the line's number: a NUL byte, a control character other
 * than tab (a '\r' only just before '\n'), a line over PT_INI_LINE_MAX
 * bytes, bytes that are not UTF-8 or that encode a C1 control in a section
 * name, key or value (comments are not checked for UTF-8), and text over
 * PT_INI_FILE_MAX bytes in all.  A UTF-8 byte order mark opening the text
 * is skipped.
 */
#ifndef PORTICO_INI_H
#define PORTICO_INI_H

#include <stddef.h>

/* Longest line, without its line end. */
#define PT_INI_LINE_MAX 65536
/* Largest text. */
#define PT_INI_FILE_MAX (16 * 1024 * 1024)

enum pt_ini_kind {
	PT_INI_SECTION = 1, /* "[name]": name */
	PT_INI_KEY,	    /* "key = value": name is the key */
	PT_INI_MORE,	    /* an indented line going on with the key above:
			     * name is that key, value the line */
};

/* One item of the text.  The strings hold no NUL byte, are NUL-terminated
 * and are valid during the callback only. */
struct pt_ini_item {
	int kind;	   /* enum pt_ini_kind */
	int line;	   /* 1 for the first line */
	const char *name;  /* see pt_ini_kind */
	const char *value; /* "" for a section */
};

/* Called for each item in the order of the text.  0 goes on; anything else
 * stops the reading and is what pt_ini_parse returns. */
typedef int (*pt_ini_cb)(void *arg, const struct pt_ini_item *item);

/* What the reader found wrong. */
struct pt_ini_error {
	int line;      /* 0: not about one line (a file that cannot be read) */
	char msg[160]; /* without file and line; "" when the reader found nothing */
};

/* Read len bytes of INI text.  Returns 0 once every item was handed to cb,
 * the callback's non-zero value if it stopped, or when the text is refused
 * -EINVAL (-EFBIG: too large, -ENOMEM) with err filled. */
int pt_ini_parse(const char *text, size_t len, pt_ini_cb cb, void *arg, struct pt_ini_error *err);

/* pt_ini_parse on the whole file at path; a file that cannot be opened or
 * read returns -errno with err->line 0 and "cannot open: ..." or "cannot
 * read: ..." in err->msg. */
int pt_ini_parse_file(const char *path, pt_ini_cb cb, void *arg, struct pt_ini_error *err);

#endif
