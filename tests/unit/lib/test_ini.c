/* test_ini.c - lib/ini.c, the INI reader under portico.conf: what it hands
 * on, line by line, and what it refuses. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/ini.h"

/* The items as text, one per line: "LINE [name]", "LINE key=value" or
 * "LINE +key=value" for a continued line. */
struct record {
	char out[4096];
	size_t len;
	int stop_at; /* line at which the callback returns 42; 0: never */
};

static int record_cb(void *arg, const struct pt_ini_item *it)
{
	struct record *r = arg;
	int n;

	if (it->kind == PT_INI_SECTION) {
		cr_assert_str_eq(it->value, "");
		n = snprintf(r->out + r->len, sizeof(r->out) - r->len, "%d [%s]\n", it->line,
			     it->name);
	} else {
		cr_assert(it->kind == PT_INI_KEY || it->kind == PT_INI_MORE);
		n = snprintf(r->out + r->len, sizeof(r->out) - r->len, "%d %s%s=%s\n", it->line,
			     it->kind == PT_INI_MORE ? "+" : "", it->name, it->value);
	}
	cr_assert_lt((size_t)n, sizeof(r->out) - r->len);
	r->len += (size_t)n;
	return it->line == r->stop_at ? 42 : 0;
}

/* Read len bytes of text; the items must be `want`. */
static void expect_items_n(const char *text, size_t len, const char *want)
{
	struct record r = { .len = 0 };
	struct pt_ini_error err;
	int rc = pt_ini_parse(text, len, record_cb, &r, &err);

	cr_assert_eq(rc, 0, "refused: %d: %s", err.line, err.msg);
	cr_assert_str_eq(err.msg, "");
	r.out[r.len] = '\0';
	cr_assert_str_eq(r.out, want);
}

static void expect_items(const char *text, const char *want)
{
	expect_items_n(text, strlen(text), want);
}

/* The text must be refused at `line` with a message holding `what`. */
static void expect_refusal_n(const char *text, size_t len, int line, const char *what)
{
	struct record r = { .len = 0 };
	struct pt_ini_error err;
	int rc = pt_ini_parse(text, len, record_cb, &r, &err);

	cr_assert_eq(rc, -EINVAL, "rc %d for line %d (%s)", rc, line, what);
	cr_assert_eq(err.line, line, "refused at line %d, not %d: %s", err.line, line, err.msg);
	cr_assert_not_null(strstr(err.msg, what), "\"%s\" does not say \"%s\"", err.msg, what);
	for (const char *m = err.msg; *m; m++)
		cr_assert_geq((unsigned char)*m, 0x20, "control byte in \"%s\"", err.msg);
}

static void expect_refusal(const char *text, int line, const char *what)
{
	expect_refusal_n(text, strlen(text), line, what);
}

Test(ini, items_in_order, .timeout = 10)
{
	expect_items("; comment\n"
		     "# another\n"
		     "\n"
		     "[tls]\n"
		     "cert = /a b/c.pem\n"
		     "key=/k\n"
		     "key2 \t=\t v \t\n"
		     "[pool office]\n"
		     "users = alice,\n"
		     "    bob, carol   ; the night shift\n"
		     "  ; an indented comment does not end the list\n"
		     "\n"
		     "\tdave\n"
		     "empty =\n"
		     "[ spaced name ]\n",
		     "4 [tls]\n"
		     "5 cert=/a b/c.pem\n"
		     "6 key=/k\n"
		     "7 key2=v\n"
		     "8 [pool office]\n"
		     "9 users=alice,\n"
		     "10 +users=bob, carol\n"
		     "13 +users=dave\n"
		     "14 empty=\n"
		     "15 [ spaced name ]\n");
}

Test(ini, empty_text, .timeout = 10)
{
	expect_items("", "");
	expect_items("\n\n\n", "");
	expect_items("\xEF\xBB\xBF", "");
	expect_items_n(NULL, 0, "");
}

/* ';' opens a comment only after a blank; '#' only at the start. */
Test(ini, inline_comments, .timeout = 10)
{
	expect_items("[s] ; header comment\n"
		     "a = x;y\n"
		     "b = x ;y\n"
		     "c =;x\n"
		     "d = ;x\n"
		     "e = x # not a comment\n"
		     "f = x\t; tab before\n"
		     "[t];tight\n",
		     "1 [s]\n2 a=x;y\n3 b=x\n4 c=;x\n5 d=\n6 e=x # not a comment\n7 f=x\n8 [t]\n");
}

Test(ini, crlf_bom_and_no_final_newline, .timeout = 10)
{
	expect_items("\xEF\xBB\xBF[s]\r\na = 1\r\n  more\r\nb = 2",
		     "1 [s]\n2 a=1\n3 +a=more\n4 b=2\n");
	/* a CR at the very end goes the same way as one before '\n' */
	expect_items("[s]\nb = 2\r", "1 [s]\n2 b=2\n");
	/* a truncated list ends where the text ends */
	expect_items("[s]\nusers = a,\n  b", "1 [s]\n2 users=a,\n3 +users=b\n");
	/* a BOM is only skipped at the very start; elsewhere it is text */
	expect_items("[s]\n\xEF\xBB\xBF"
		     "a = 1\n",
		     "1 [s]\n2 \xEF\xBB\xBF"
		     "a=1\n");
}

Test(ini, continuation, .timeout = 10)
{
	/* right after a header an indented line is an ordinary one */
	expect_items("[s]\n  a = 1\n  more\n[t]\n\tb = 2\n",
		     "1 [s]\n2 a=1\n3 +a=more\n4 [t]\n5 b=2\n");
	/* an indented line before any key or header is an ordinary one too */
	expect_items("  [s]\n", "1 [s]\n");
	/* indented headers and keys would vanish into the key above */
	expect_refusal("[s]\nusers = a\n  [t]\n", 3,
		       "indented section header is read as more of 'users'");
	expect_refusal("[s]\nusers = a\n  b = c\n", 3,
		       "indented 'key = value' line is read as more of 'users'");
	/* an '=' in a comment of a continued line is no key */
	expect_items("[s]\nusers = a\n  b ; x=y\n", "1 [s]\n2 users=a\n3 +users=b\n");
}

Test(ini, syntax_errors, .timeout = 10)
{
	expect_refusal("[s]\nlisten 127.0.0.1:1\n", 2, "syntax error: expected 'key = value'");
	expect_refusal("[s]\nlisten: x\n", 2, "syntax error");
	expect_refusal("[s]\na:b = x\n", 2, "syntax error");
	expect_refusal("[s]\npam service = x\n", 2, "syntax error");
	expect_refusal("[s]\nuser ; = x\n", 2, "syntax error");
	expect_refusal("[s]\njust words\n", 2, "syntax error");
	expect_refusal("[s\n", 1, "section header without ']'");
	/* the name ends at the first ']', comment or not: the caller judges it */
	expect_items("[s ; x]\n", "1 [s ; x]\n");
	expect_refusal("[a]b]\n", 1, "text after ']'");
	expect_refusal("[s] junk\n", 1, "text after ']'");
	expect_refusal("[s] # hash\n", 1, "text after ']'");
	/* a key may be empty: what it means is the caller's to say */
	expect_items("= x\n", "1 =x\n");
	/* ';' without a blank before it belongs to the key */
	expect_items("a;b = x\n", "1 a;b=x\n");
}

Test(ini, refused_bytes, .timeout = 10)
{
	expect_refusal_n("[s]\na = b\0c\n", 10, 2, "NUL byte");
	expect_refusal_n("[s]\n; b\0c\n", 9, 2, "NUL byte");
	expect_refusal("[s]\na = b\033[2Jc\n", 2, "control character 0x1b");
	expect_refusal("[s]\na = b\rc\n", 2, "control character 0x0d");
	expect_refusal("[s]\na = b\r\r\n", 2, "control character 0x0d");
	expect_refusal("[s]\n\x7f\n", 2, "control character 0x7f");
	/* even in a comment */
	expect_refusal("[s]\n; \x01\n", 2, "control character 0x01");
}

Test(ini, utf8, .timeout = 10)
{
	expect_items("[Übersicht]\nname = München ☃ 𝄞\n", "1 [Übersicht]\n2 name=München ☃ 𝄞\n");
	/* comments are not checked: an old Latin-1 note does no harm */
	expect_items("; caf\xe9\n[s]\na = 1 ; na\xefve\n", "2 [s]\n3 a=1\n");

	expect_refusal("[s]\na = caf\xe9\n", 2, "not UTF-8 text (byte 0xe9 at column 8)");
	expect_refusal("[s\xff]\n", 1, "not UTF-8");
	expect_refusal("[s]\nk\xc3 = 1\n", 2, "not UTF-8");
	expect_refusal("[s]\na = x\n  y\xc3\n", 3, "not UTF-8");
	expect_refusal("[s]\na = \xc0\xaf\n", 2, "not UTF-8");	       /* overlong '/' */
	expect_refusal("[s]\na = \xe0\x80\xaf\n", 2, "not UTF-8");     /* overlong '/' */
	expect_refusal("[s]\na = \xed\xa0\x80\n", 2, "not UTF-8");     /* a surrogate */
	expect_refusal("[s]\na = \xf4\x90\x80\x80\n", 2, "not UTF-8"); /* past U+10FFFF */
	expect_refusal("[s]\na = \xe2\x82\n", 2, "not UTF-8");	       /* cut short */
	expect_refusal_n("[s]\na = \xe2\x82", 9, 2, "not UTF-8");      /* at the end */
	expect_refusal("[s]\na = \x80\n", 2, "not UTF-8");	       /* a lone tail */
	expect_refusal("[s]\na = x\xc2\x9b"
		       "2J\n",
		       2, "control character U+009B"); /* CSI */
	expect_refusal("[s]\na = \xc2\x85\n", 2, "control character U+0085");
}

static int count_cb(void *arg, const struct pt_ini_item *it)
{
	(*(size_t *)arg) += strlen(it->value);
	return 0;
}

Test(ini, line_lengths, .timeout = 10)
{
	size_t len = 4 + PT_INI_LINE_MAX + 2, got = 0;
	char *text = malloc(len + 1);
	struct pt_ini_error err;

	cr_assert_not_null(text);
	/* "[s]\n" and a line of exactly PT_INI_LINE_MAX bytes, CRLF */
	memcpy(text, "[s]\nk=", 6);
	memset(text + 6, 'v', PT_INI_LINE_MAX - 2);
	memcpy(text + 4 + PT_INI_LINE_MAX, "\r\n", 3);
	cr_assert_eq(pt_ini_parse(text, len, count_cb, &got, &err), 0, "%s", err.msg);
	cr_assert_eq(got, PT_INI_LINE_MAX - 2);
	/* one byte more is refused */
	text[4 + PT_INI_LINE_MAX] = 'v';
	text[4 + PT_INI_LINE_MAX + 1] = '\n';
	expect_refusal_n(text, len, 2, "line is longer than 65536 bytes");
	free(text);
}

Test(ini, too_large, .timeout = 10)
{
	struct pt_ini_error err;
	struct record r = { .len = 0 };
	char *text = malloc(PT_INI_FILE_MAX + 1);

	cr_assert_not_null(text);
	/* comment lines of 1 KiB: quick to read even under the sanitizers */
	memset(text, ';', PT_INI_FILE_MAX + 1);
	for (size_t i = 1023; i < PT_INI_FILE_MAX + 1; i += 1024)
		text[i] = '\n';
	cr_assert_eq(pt_ini_parse(text, PT_INI_FILE_MAX, record_cb, &r, &err), 0);
	cr_assert_eq(pt_ini_parse(text, PT_INI_FILE_MAX + 1, record_cb, &r, &err), -EFBIG);
	cr_assert_eq(err.line, 0);
	cr_assert_str_eq(err.msg, "larger than 16777216 bytes");
	free(text);
}

Test(ini, callback_stops, .timeout = 10)
{
	struct record r = { .len = 0, .stop_at = 2 };
	struct pt_ini_error err;
	int rc = pt_ini_parse("[s]\na = 1\nb = 2\n", 16, record_cb, &r, &err);

	cr_assert_eq(rc, 42);
	cr_assert_str_eq(err.msg, "", "the reader itself found nothing");
	r.out[r.len] = '\0';
	cr_assert_str_eq(r.out, "1 [s]\n2 a=1\n");
}

Test(ini, files, .timeout = 10)
{
	char path[] = "/tmp/portico-ini-XXXXXX";
	struct record r = { .len = 0 };
	struct pt_ini_error err;
	int fd = mkstemp(path);

	cr_assert_neq(fd, -1);
	cr_assert_eq(write(fd, "[s]\na = 1\n", 10), 10);
	close(fd);
	cr_assert_eq(pt_ini_parse_file(path, record_cb, &r, &err), 0, "%s", err.msg);
	r.out[r.len] = '\0';
	cr_assert_str_eq(r.out, "1 [s]\n2 a=1\n");

	/* larger than the limit: refused once one byte too many is read */
	cr_assert_eq(truncate(path, (off_t)PT_INI_FILE_MAX + 1), 0);
	cr_assert_eq(pt_ini_parse_file(path, record_cb, &r, &err), -EFBIG);
	cr_assert_eq(err.line, 0);
	cr_assert_str_eq(err.msg, "larger than 16777216 bytes");
	unlink(path);

	cr_assert_eq(pt_ini_parse_file(path, record_cb, &r, &err), -ENOENT);
	cr_assert_eq(err.line, 0);
	cr_assert_str_eq(err.msg, "cannot open: No such file or directory");
	cr_assert_eq(pt_ini_parse_file("/tmp", record_cb, &r, &err), -EISDIR);
	cr_assert_str_eq(err.msg, "cannot read: Is a directory");
}
