/* daemon.c - see include/portico/daemon.h */
#include "portico/daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

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

int64_t pt_daemon_nofile(int per_conn, int headroom, int64_t want, const char *what)
{
	struct rlimit rl;
	int64_t fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			pt_log_warn("raising the open-file limit from %llu", (unsigned long long)old);
			rl.rlim_cur = old;
		}
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)INT64_MAX / 2)
		return want;
	fit = ((int64_t)rl.rlim_cur - headroom) / (per_conn > 0 ? per_conn : 1);
	if (fit < 1)
		fit = 1;
	if (fit < want) {
		pt_log_warnx("%s: %lld (open-file limit %llu, %d per connection); raise "
			     "LimitNOFILE= to allow %lld",
			     what, (long long)fit, (unsigned long long)rl.rlim_cur, per_conn,
			     (long long)want);
		return fit;
	}
	pt_log_info("%s: %lld (open-file limit %llu)", what, (long long)want,
		    (unsigned long long)rl.rlim_cur);
	return want;
}
