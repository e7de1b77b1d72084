/*
 * priv.h - dropping root for good, as every network-facing process does.
 */
#ifndef PORTICO_PRIV_H
#define PORTICO_PRIV_H

/* Become `user` (supplementary groups cleared, then group, then user) and
 * check that root cannot be regained; `key` names the setting for the
 * error ("[broker] user").  Exits with a one-line reason on failure, or if
 * the user is unknown or root.  Does nothing when not running as root. */
void pt_drop_privileges(const char *user, const char *key);

#endif
