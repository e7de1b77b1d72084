/*
 * daemon.h - what every Portico daemon does first: its command line
 * (-c FILE, -v, -t), its log, its configuration.
 */
#ifndef PORTICO_DAEMON_H
#define PORTICO_DAEMON_H

#include "portico/conf.h"

/* Parse "[-c FILE] [-v] [-t]" (usage and exit 2 otherwise), start the log
 * as `role`, load the configuration (a one-line reason and exit 1 when it is
 * wrong).  *test_only is set for -t: the caller checks what it checks
 * itself, then prints "FILE: configuration OK" with pt_daemon_test_ok(). */
struct pt_conf *pt_daemon_start(int argc, char **argv, const char *role, int *test_only);

/* -t: say the file is good and leave (exit 0). */
_Noreturn void pt_daemon_test_ok(const struct pt_conf *conf);

#endif
