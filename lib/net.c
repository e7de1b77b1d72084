/* net.c - see include/portico/net.h */
#include "portico/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pt_net_split_hostport(const char *s, int default_port, char *host, size_t hostlen, int *port)
{
	const char *h, *colon, *p;
	size_t n;
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			return -EINVAL;
		h = s + 1;
		n = close - h;
		if (close[1] == '\0')
			colon = NULL;
		else if (close[1] == ':')
			colon = close + 1;
		else
			return -EINVAL;
	} else {
		h = s;
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			return -EINVAL; /* a bare IPv6 address needs brackets */
		n = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (h[i] == ' ' || h[i] == '/' || (unsigned char)h[i] < 0x21)
			return -EINVAL;
	if (colon) {
		p = colon + 1;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || *end || v < 1 || v > 65535)
			return -EINVAL;
	} else {
		if (default_port < 0)
			return -EINVAL;
		v = default_port;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)v;
	return 0;
}

int pt_net_parse_addr(const char *s, int default_port, struct sockaddr_storage *ss)
{
	char host[256];
	int port;
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (pt_net_split_hostport(s, default_port, host, sizeof(host), &port))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

const char *pt_net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%d", a, ntohs(in4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%d", a, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		snprintf(buf, len, "unix");
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

int pt_net_peer_of(const struct sockaddr *sa, char *addr, size_t addrlen, char *source,
		   size_t srclen)
{
	char a[INET6_ADDRSTRLEN] = "", s[INET6_ADDRSTRLEN + 4] = "";

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
		snprintf(s, sizeof(s), "%s", a);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *in6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			inet_ntop(AF_INET, &in6->s6_addr[12], a, sizeof(a));
			snprintf(s, sizeof(s), "%s", a);
		} else {
			/* One household or one cloud instance gets a /64:
			 * counting per address would let it take every slot. */
			struct in6_addr net = *in6;
			memset(net.s6_addr + 8, 0, 8);
			inet_ntop(AF_INET6, in6, a, sizeof(a));
			inet_ntop(AF_INET6, &net, s, INET6_ADDRSTRLEN);
			strcat(s, "/64");
		}
	}
	if (addr)
		snprintf(addr, addrlen, "%s", a);
	if (source)
		snprintf(source, srclen, "%s", s);
	return a[0] ? 0 : -EAFNOSUPPORT;
}

int pt_net_peer(const uv_tcp_t *tcp, char *addr, size_t addrlen, char *source, size_t srclen)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	int rc = uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl);

	if (rc < 0) {
		if (addr && addrlen)
			addr[0] = '\0';
		if (source && srclen)
			source[0] = '\0';
		return rc;
	}
	return pt_net_peer_of((struct sockaddr *)&ss, addr, addrlen, source, srclen);
}

int pt_net_listen(uv_tcp_t *tcp, const char *addr, int backlog, uv_connection_cb cb)
{
	struct sockaddr_storage ss;
	int rc;

	if (pt_net_parse_addr(addr, -1, &ss))
		return -EINVAL;
	rc = uv_tcp_bind(tcp, (const struct sockaddr *)&ss, 0);
	if (rc)
		return rc;
	return uv_listen((uv_stream_t *)tcp, backlog, cb);
}
