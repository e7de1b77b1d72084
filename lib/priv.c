/* priv.c - see include/portico/priv.h */
#include "portico/priv.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "portico/log.h"

void pt_drop_privileges(const char *user, const char *key)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	pw = getpwnam(user);
	if (!pw)
		pt_fatalx("%s '%s' does not exist: create it (adduser --system %s) or name another",
			  key, user, user);
	if (pw->pw_uid == 0)
		pt_fatalx("%s '%s' is root: network-facing processes must not run as root", key,
			  user);
	if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		pt_fatal("cannot become %s", user);
	if (setuid(0) != -1 || geteuid() == 0)
		pt_fatalx("could regain root after dropping to %s: refusing to run", user);
}
