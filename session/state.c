/* state.c - a session's state file, RUN_DIR/state/ID (see session.h).
 *
 * "key value" lines, written to a temporary file and renamed, readable by
 * root only (the secret is in it).  A newline in a value would be a line
 * of its own ("uid 0"), so no value with a control character is written,
 * and what is read is checked again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session.h"

int sd_state_path(const struct pt_conf *conf, int64_t id, char *buf, size_t len)
{
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/state", conf->sessiond.run_dir);
	if (mkdir(conf->sessiond.run_dir, 0755) == -1 && errno != EEXIST)
		return -1;
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -1;
	if (id > 0)
		snprintf(buf, len, "%s/%lld", dir, (long long)id);
	else
		snprintf(buf, len, "%s", dir);
	return 0;
}

int sd_state_write(const struct pt_conf *conf, const struct sd_state *st)
{
	char path[600], tmp[620];
	FILE *f;
	int fd, rc;

	if (!sd_text_safe(st->user) || !sd_text_safe(st->pool) || !sd_text_safe(st->backend) ||
	    !sd_text_safe(st->secret) || !sd_text_safe(st->ended))
		return -1;
	if (sd_state_path(conf, st->id, path, sizeof(path)))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || !(f = fdopen(fd, "w"))) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(f,
		"id %lld\nmonitor %d\nuid %u\npgid0 %d\npgid1 %d\nkind %d\ndriver %d\n"
		"user %s\npool %s\nbackend %s\nsecret %s\nended %s\n",
		(long long)st->id, (int)st->monitor, (unsigned)st->uid, (int)st->pgid[0],
		(int)st->pgid[1], st->kind, st->driver, st->user, st->pool, st->backend, st->secret,
		st->ended);
	rc = fflush(f) == 0 && fsync(fd) == 0 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -1;
	if (rc)
		unlink(tmp);
	return rc;
}

static void text(char *dst, size_t len, const char *v)
{
	snprintf(dst, len, "%s", v);
}

int sd_state_read(const char *path, struct sd_state *st)
{
	char line[1024];
	struct stat sb;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	FILE *f;

	memset(st, 0, sizeof(*st));
	if (fd == -1)
		return -1;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_uid != 0 ||
	    !(f = fdopen(fd, "r"))) {
		close(fd);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ' ');
		line[strcspn(line, "\n")] = '\0';
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "id"))
			st->id = strtoll(v, NULL, 10);
		else if (!strcmp(line, "monitor"))
			st->monitor = (pid_t)atoi(v);
		else if (!strcmp(line, "uid"))
			st->uid = (uid_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "pgid0"))
			st->pgid[0] = (pid_t)atoi(v);
		else if (!strcmp(line, "pgid1"))
			st->pgid[1] = (pid_t)atoi(v);
		else if (!strcmp(line, "kind"))
			st->kind = atoi(v);
		else if (!strcmp(line, "driver"))
			st->driver = atoi(v);
		else if (!strcmp(line, "user"))
			text(st->user, sizeof(st->user), v);
		else if (!strcmp(line, "pool"))
			text(st->pool, sizeof(st->pool), v);
		else if (!strcmp(line, "backend"))
			text(st->backend, sizeof(st->backend), v);
		else if (!strcmp(line, "secret"))
			text(st->secret, sizeof(st->secret), v);
		else if (!strcmp(line, "ended"))
			text(st->ended, sizeof(st->ended), v);
	}
	fclose(f);
	if (st->id <= 0 || (st->user[0] && !sd_name_safe(st->user)) ||
	    (st->pool[0] && !pt_conf_pool_name_valid(st->pool))) {
		explicit_bzero(st->secret, sizeof(st->secret));
		return -1;
	}
	return 0;
}
