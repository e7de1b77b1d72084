/* daemon.c - see include/portico/daemon.h */
#include "portico/daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "portico/log.h"

struct pt_conf *pt_daemon_start(int argc, char **argv, const char *role, int *test_only)
{
	const char *path = PT_CONF_DEFAULT_PATH;
	int verbose = 0, opt;
	struct pt_conf *conf;
	char err[1024];

	*test_only = 0;
	while ((opt = getopt(argc, argv, "c:vt")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 't':
			*test_only = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	pt_log_init(role, verbose ? PT_LOG_DEBUG : PT_LOG_INFO, 0);
	conf = pt_conf_load(path, err, sizeof(err));
	if (!conf)
		pt_fatalx("%s", err);
	return conf;
usage:
	fprintf(stderr, "usage: portico-%s [-c FILE] [-v] [-t]\n",
		role[0] == 's' ? "sessiond" : role);
	exit(2);
}

_Noreturn void pt_daemon_test_ok(const struct pt_conf *conf)
{
	printf("%s: configuration OK\n", conf->path ? conf->path : "(defaults)");
	exit(0);
}
