/*
 * daemon.h - what every Portico daemon does first: its command line
 * (-c FILE, -v, -t), its log, its configuration.
 */
#ifndef PORTICO_DAEMON_H
#define PORTICO_DAEMON_H

#include <stdint.h>

#include "portico/conf.h"

/* Parse "[-c FILE] [-v] [-t]" (usage and exit 2 otherwise), start the log
 * as `role`, load the configuration (a one-line reason and exit 1 when it is
 * wrong).  *test_only is set for -t: the caller checks what it checks
 * itself, then prints "FILE: configuration OK" with pt_daemon_test_ok(). */
struct pt_conf *pt_daemon_start(int argc, char **argv, const char *role, int *test_only);

/* -t: say the file is good and leave (exit 0). */
_Noreturn void pt_daemon_test_ok(const struct pt_conf *conf);

/* Raise the soft RLIMIT_NOFILE to the hard limit and say how many
 * connections it allows: (limit - headroom) / per_conn, where per_conn is
 * the descriptors one connection takes at most and headroom what the
 * process needs besides (listeners, the store, the broker client, logs).
 * Returns min(want, that), at least 1, and logs the figure as `what` when
 * it is below want.  Call it as root, before dropping privileges: an
 * unprivileged process cannot raise its hard limit later. */
int64_t pt_daemon_nofile(int per_conn, int headroom, int64_t want, const char *what);

#endif
