/*
 * roles.c - the role of a node's credential (see roles.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "roles.h"

static int listed(const struct pt_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

int brk_node_role(const struct pt_conf *conf, const struct pt_http_req *req, char *name,
		  size_t len)
{
	const struct pt_broker_conf *bc = &conf->broker;
	const char *ou = req->peer_ou;

	name[0] = '\0';
	if (req->peer_verified) {
		snprintf(name, len, "%s", req->peer_cn);
		/* The CN is the node's name; the OU, when pki wrote one, the
		 * role it was issued for, and the two must agree. */
		if (listed(&bc->gateways, req->peer_cn))
			return !*ou || !strcmp(ou, "gateway") ? BRK_ROLE_GATEWAY : -EACCES;
		if (!strcmp(ou, "broker"))
			return BRK_ROLE_BROKER;
		if (!*ou || !strcmp(ou, "host"))
			return BRK_ROLE_HOST;
		return -EACCES;
	}
	if (pt_http_bearer_is(req, bc->gateway_secret))
		return BRK_ROLE_GATEWAY;
	if (pt_http_bearer_is(req, bc->host_secret))
		return BRK_ROLE_HOST;
	if (pt_http_bearer_is(req, bc->broker_secret))
		return BRK_ROLE_BROKER;
	return BRK_ROLE_NONE;
}

const char *brk_role_name(int role)
{
	switch (role) {
	case BRK_ROLE_USER:
		return "user";
	case BRK_ROLE_ADMIN:
		return "admin";
	case BRK_ROLE_GATEWAY:
		return "gateway";
	case BRK_ROLE_HOST:
		return "session host";
	case BRK_ROLE_BROKER:
		return "broker";
	default:
		return "nobody";
	}
}
