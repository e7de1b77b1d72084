/*
 * pki.c - portico-admin pki: the certificates of Portico's own trust model
 * (docs/security.md), without reading OpenSSL's manual.
 *
 *   portico-admin pki init DIR [--days N]
 *   portico-admin pki issue DIR --role gateway|host|broker NAME [--san A,B] [--days N]
 *
 * init makes a CA (DIR/ca.pem, DIR/ca.key 0600) that signs only Portico's
 * nodes; issue makes a node's key and certificate (DIR/NAME.pem, .key):
 * CN = NAME (the name the broker and session hosts know the node by), OU =
 * the role, subjectAltName = NAME and the --san names (what peers dial),
 * for both server and client use.  Nothing is ever written over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "portico/tls.h"

#define NAME_MAX_LEN 64
#define NAME_CHARS   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_:"

static const char pki_usage[] =
	"usage: portico-admin pki init DIR [--days N]\n"
	"       portico-admin pki issue DIR --role gateway|host|broker NAME [--san NAME,IP...] "
	"[--days N]\n";

static int usage(void)
{
	fputs(pki_usage, stderr);
	return CLI_USAGE;
}

/* A node name or subjectAltName entry: a host name or an IP address. */
static int name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= NAME_MAX_LEN && strspn(s, NAME_CHARS) == n && s[0] != '.' &&
	       s[0] != '-' && strcmp(s, "ca");
}

static int is_ip(const char *s)
{
	return strspn(s, "0123456789.") == strlen(s) || strchr(s, ':');
}

/* "DNS:a,IP:1.2.3.4" from the node's name and the --san list. */
static int make_san(const char *name, const char *extra, char *out, size_t len)
{
	char list[600], *save, *t;
	size_t o;

	o = (size_t)snprintf(out, len, "%s:%s", is_ip(name) ? "IP" : "DNS", name);
	if (!extra)
		return 0;
	if (strlen(extra) >= sizeof(list))
		return -1;
	snprintf(list, sizeof(list), "%s", extra);
	for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		if (!name_ok(t))
			return -1;
		o += (size_t)snprintf(out + o, o < len ? len - o : 0, ",%s:%s",
				      is_ip(t) ? "IP" : "DNS", t);
		if (o >= len)
			return -1;
	}
	return 0;
}

static int days_arg(const char *s, int *days)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end || v < 1 || v > 36500)
		return -1;
	*days = (int)v;
	return 0;
}

static int pki_init(const char *dir, int days)
{
	char cert[4200], key[4200], err[512];
	struct pt_tls_cert_req r = { .cn = "Portico CA", .ca = 1, .days = days };

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "portico-admin: %s: %s\n", dir, strerror(errno));
		return CLI_FAIL;
	}
	snprintf(cert, sizeof(cert), "%s/ca.pem", dir);
	snprintf(key, sizeof(key), "%s/ca.key", dir);
	if (pt_tls_make_cert(cert, key, &r, err, sizeof(err))) {
		fprintf(stderr, "portico-admin: %s%s\n", err,
			strstr(err, "File exists") ? " (a CA is there already)" : "");
		return CLI_FAIL;
	}
	printf("CA made: %s (hand it to every node as [tls] ca), %s (keep it here, "
	       "offline if you can)\n",
	       cert, key);
	return CLI_OK;
}

static int pki_issue(const char *dir, const char *role, const char *name, const char *san_list,
		     int days)
{
	char ca[4200], cakey[4200], cert[4200], key[4200], san[800], err[512];
	struct pt_tls_cert_req r = { .cn = name, .ou = role, .san = san, .days = days };

	if (strcmp(role, "gateway") && strcmp(role, "host") && strcmp(role, "broker")) {
		fprintf(stderr, "portico-admin: --role must be gateway, host or broker, not '%.64s'\n",
			role);
		return CLI_USAGE;
	}
	if (!name_ok(name)) {
		fprintf(stderr,
			"portico-admin: '%.80s' is not a node name (1 to %d letters, digits, "
			"'.', '-', '_' or ':', not 'ca')\n",
			name, NAME_MAX_LEN);
		return CLI_USAGE;
	}
	if (make_san(name, san_list, san, sizeof(san))) {
		fprintf(stderr, "portico-admin: --san takes host names and IP addresses, "
				"separated by commas\n");
		return CLI_USAGE;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cakey, sizeof(cakey), "%s/ca.key", dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	r.issuer_cert = ca;
	r.issuer_key = cakey;
	if (pt_tls_make_cert(cert, key, &r, err, sizeof(err))) {
		fprintf(stderr, "portico-admin: %s%s\n", err,
			strstr(err, "File exists") ? " (issued already: remove both files to issue "
						     "again)"
						   : "");
		return CLI_FAIL;
	}
	printf("issued %s %s: %s, %s\n", role, name, cert, key);
	if (!strcmp(role, "gateway"))
		printf("  its [gateway] cert and key; the broker's [broker] gateways lists %s\n",
		       name);
	else if (!strcmp(role, "host"))
		printf("  its [sessiond] cert and key; [sessiond] name = %s\n", name);
	else
		printf("  the broker's [broker] cert and key; session hosts' [sessiond] "
		       "broker_name = %s\n",
		       name);
	return CLI_OK;
}

int cli_pki(int argc, char **argv)
{
	const char *role = NULL, *san = NULL, *pos[2] = { NULL, NULL };
	int days = 0, npos = 0;

	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--role") && i + 1 < argc) {
			role = argv[++i];
		} else if (!strcmp(argv[i], "--san") && i + 1 < argc) {
			san = argv[++i];
		} else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
			if (days_arg(argv[++i], &days))
				return usage();
		} else if (argv[i][0] == '-' || npos == 2) {
			return usage();
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (!strcmp(argv[1], "init") && npos == 1 && !role && !san)
		return pki_init(pos[0], days);
	if (!strcmp(argv[1], "issue") && npos == 2 && role)
		return pki_issue(pos[0], role, pos[1], san, days);
	return usage();
}
