/*
 * roles.c - the role of a node's credential, and a user's groups (see
 * roles.h).
 */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roles.h"

static int listed(const struct pt_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

int brk_node_role(const struct pt_conf *conf, const struct pt_http_req *req, char *name, size_t len)
{
	const struct pt_broker_conf *bc = &conf->broker;
	const char *ou = req->peer_ou;

	name[0] = '\0';
	if (req->peer_verified) {
		snprintf(name, len, "%s", req->peer_cn);
		/* The CN is the node's name (none, or one that could not be
		 * read, names nobody); the OU the role the certificate was
		 * issued for (portico-admin pki writes it).  A gateway is one
		 * that [broker] gateways lists, with no OU or "gateway"; a
		 * session host or a broker must say so in its OU, so that any
		 * other certificate of the CA (a person's, a web server's) is
		 * no node at all. */
		if (!req->peer_cn[0] || !strcmp(req->peer_cn, "?"))
			return -EACCES;
		if (listed(&bc->gateways, req->peer_cn))
			return !*ou || !strcmp(ou, "gateway") ? BRK_ROLE_GATEWAY : -EACCES;
		if (!strcmp(ou, "broker"))
			return BRK_ROLE_BROKER;
		if (!strcmp(ou, "host"))
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
	case BRK_ROLE_ANYONE:
		return "anyone";
	default:
		return "nobody";
	}
}

/* One look-up at a time: getgrouplist walks the group database with shared
 * iteration state in some NSS back-ends (nss_wrapper, some LDAP modules),
 * and the look-ups are not hot enough for the lock to matter. */
static pthread_mutex_t nss_lock = PTHREAD_MUTEX_INITIALIZER;

/* A group's name: its entry lists every member (an LDAP group may have
 * thousands), so the buffer grows on ERANGE, to 16 MiB.  NULL when there
 * is none or it cannot be read (logged: a group silently missing would
 * take the user's pools away without a word). */
static char *group_name(gid_t gid)
{
	for (size_t len = 16384;; len *= 4) {
		struct group gr, *grp = NULL;
		char *buf = malloc(len), *name = NULL;
		int rc;

		if (!buf)
			return NULL;
		errno = 0;
		rc = getgrgid_r(gid, &gr, buf, len, &grp);
		if (rc == -1) /* nss_wrapper's way of saying it: -1 and errno */
			rc = errno ? errno : EIO;
		if (rc == ERANGE && len < (16u << 20)) {
			free(buf);
			continue;
		}
		if (rc == 0 && grp)
			name = strdup(grp->gr_name);
		else if (rc)
			pt_log_warnx("group %u cannot be read: %s", (unsigned)gid, strerror(rc));
		free(buf);
		return name;
	}
}

static char **user_groups_locked(const char *user)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t *gids = NULL;
	int ng = 256;
	char **names = NULL;

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return calloc(1, sizeof(char *));
	/* More groups than room: getgrouplist says how many (NGROUPS_MAX is
	 * 65536 on Linux). */
	for (int tries = 0; tries < 4; tries++) {
		int room = ng;
		gid_t *g = realloc(gids, (size_t)room * sizeof(*gids));
		if (!g)
			goto out;
		gids = g;
		if (getgrouplist(user, pw.pw_gid, gids, &ng) >= 0)
			break;
		if (ng <= room || ng > 65536)
			ng = room; /* what fitted */
	}
	names = calloc((size_t)ng + 1, sizeof(char *));
	for (int i = 0, k = 0; names && i < ng; i++)
		if ((names[k] = group_name(gids[i])) != NULL)
			k++;
out:
	free(gids);
	return names;
}

char **brk_user_groups(const char *user)
{
	char **g;

	pthread_mutex_lock(&nss_lock);
	g = user_groups_locked(user);
	pthread_mutex_unlock(&nss_lock);
	return g;
}

void brk_groups_free(char **groups)
{
	for (size_t i = 0; groups && groups[i]; i++)
		free(groups[i]);
	free(groups);
}

int brk_user_in_group(const char *user, const char *group)
{
	char **g = brk_user_groups(user);
	int in = 0;

	for (size_t i = 0; g && g[i] && !in; i++)
		in = !strcmp(g[i], group);
	brk_groups_free(g);
	return in;
}
