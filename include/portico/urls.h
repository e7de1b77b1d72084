/*
 * urls.h - lists of broker URLs: "https://b1:8443, https://b2:8443".
 *
 * What a gateway, a session host, portico and portico-admin are given as
 * their broker ([gateway] broker, [sessiond] broker, --broker): one URL, or
 * several that share the work (issue 14: brokers side by side on one
 * database), tried in turn by pt_api_call (api.h).  One parser for the
 * configuration, the command line and the API client, so that what was
 * accepted when loaded is what is called.
 */
#ifndef PORTICO_URLS_H
#define PORTICO_URLS_H

#include <stddef.h>

#define PT_URLS_MAX 16	 /* URLs in one list */
#define PT_URLS_LEN 4096 /* bytes of the whole list's text */

/* One URL of a list, pointing into the parsed text. */
struct pt_url {
	const char *s; /* "https://host[:port][/path]", not NUL-terminated */
	size_t len;
	char host[256]; /* without the brackets of an IPv6 address */
	int port;	/* 443 when not written */
	int is_ip;	/* host is an address, not a name to resolve */
};

struct pt_urls {
	size_t n;
	struct pt_url v[PT_URLS_MAX];
};

/* Parse s: 1 to PT_URLS_MAX URLs separated by commas, blanks around each
 * allowed, at most PT_URLS_LEN bytes.  Each is https:// (the daemons and
 * clients speak TLS only), a host name ([A-Za-z0-9._-]) or an address (IPv6
 * in brackets), an optional port 1..65535 and an optional path prefix
 * ("/portico" behind a reverse proxy); no user name, query, fragment or
 * blank inside, and none listed twice.  u points into s afterwards.
 * Returns 0, or -EINVAL with err naming the URL at fault by its place and
 * text ("URL 2 of 3, 'http://b2:8443', is not https://"). */
int pt_urls_parse(const char *s, struct pt_urls *u, char *err, size_t errlen);

#endif
