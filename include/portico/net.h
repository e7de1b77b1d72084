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

/* Bind tcp (already uv_tcp_init'ed) to `addr` with SO_REUSEADDR and listen.
 * Returns 0 or a negative errno. */
int pt_net_listen(uv_tcp_t *tcp, const char *addr, int backlog, uv_connection_cb cb);

#endif
