/*
 * net.h - addresses and listening sockets.
 */
#ifndef PORTICO_NET_H
#define PORTICO_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

/* Split "host:port", "[v6addr]:port", or "host" alone when default_port is
 * not -1.  host gets the name without brackets.  Returns 0, or -EINVAL for a
 * malformed string or a port outside 1..65535. */
int pt_net_split_hostport(const char *s, int default_port, char *host, size_t hostlen, int *port);

/* Parse a numeric "addr:port" (no name lookup) into ss; "localhost" is taken
 * as 127.0.0.1.  Returns 0 or -EINVAL. */
int pt_net_parse_addr(const char *s, int default_port, struct sockaddr_storage *ss);

/* Render ss as "addr:port" ("[v6]:port") into buf. */
const char *pt_net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* The peer of a connected TCP handle.  addr gets the address alone
 * ("192.0.2.7", "2001:db8::1"; an IPv4-mapped IPv6 address is shown as
 * IPv4), source the key per-source limits count it under: the address for
 * IPv4, its /64 for IPv6 ("2001:db8:0:1::/64").  Either may be NULL; both
 * are "" when the peer is unknown.  0, or a negative errno. */
int pt_net_peer(const uv_tcp_t *tcp, char *addr, size_t addrlen, char *source, size_t srclen);
/* The same from a socket address (what pt_net_peer does after getpeername). */
int pt_net_peer_of(const struct sockaddr *sa, char *addr, size_t addrlen, char *source,
		   size_t srclen);

/* Bind tcp (already uv_tcp_init'ed) to `addr` with SO_REUSEADDR and listen.
 * Returns 0 or a negative errno. */
int pt_net_listen(uv_tcp_t *tcp, const char *addr, int backlog, uv_connection_cb cb);

#endif
