/*
 * roles.h - who is asking the broker: the one role a credential carries
 * (docs/security.md).
 *
 * A node (gateway, session host, broker) is named by the client
 * certificate that [tls] ca verified, or carries its role's shared secret
 * as a bearer token; a user carries a token from login.  Node credentials
 * are told apart here, on the loop thread; a user's token needs the store
 * and is looked up by the route's job.
 */
#ifndef BROKER_ROLES_H
#define BROKER_ROLES_H

#include <stddef.h>

#include "portico/conf.h"
#include "portico/httpd.h"

/* Roles, as bits: a route names the set it admits. */
enum brk_role {
	BRK_ROLE_NONE = 0,
	BRK_ROLE_USER = 1 << 0,	   /* a token from login */
	BRK_ROLE_ADMIN = 1 << 1,   /* ... of a member of admin_group, checked per request */
	BRK_ROLE_GATEWAY = 1 << 2, /* a certificate CN in [broker] gateways, or gateway_secret */
	BRK_ROLE_HOST = 1 << 3,	   /* a session host: its certificate, or host_secret */
	BRK_ROLE_BROKER = 1 << 4,  /* a broker (session hosts' peer; no broker route) */
	BRK_ROLE_ANYONE = 1 << 5,  /* a route that takes no credential (login) */
};

/* The node role of the request's credential, or BRK_ROLE_NONE when it
 * carries none (a user's token, or nothing).  name gets the node's name
 * (its certificate's CN), or "" for a shared secret, which names no node.
 * A certificate that [tls] ca verified decides alone: a bearer beside it
 * is not looked at.  -EACCES when the certificate names no role this
 * broker grants (a CN that [broker] gateways does not list but that
 * pki issued as a gateway's, an unknown role). */
int brk_node_role(const struct pt_conf *conf, const struct pt_http_req *req, char *name,
		  size_t len);

/* "gateway", "session host", ... for log lines and messages. */
const char *brk_role_name(int role);

/* Blocking (NSS), thread pool only: the names of user's groups,
 * NULL-terminated (empty for an unknown user; NULL when out of memory).
 * Free with brk_groups_free. */
char **brk_user_groups(const char *user);
void brk_groups_free(char **groups);
/* Blocking (NSS): whether user is a member of group now.  The broker asks
 * on every admin request, so that leaving admin_group takes effect at once
 * (as fast as NSS tells: nscd or sssd may cache for a while). */
int brk_user_in_group(const char *user, const char *group);

#endif
