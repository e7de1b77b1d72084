/*
 * checks.c - what the root side believes of a request: nothing it has not
 * checked itself (see session.h).
 *
 * The network side checks requests too, but it faces the network: if it
 * is taken over, these checks are what stands between it and root.  So
 * they are made twice, in the root process before a monitor is forked and
 * in the monitor before it acts, and every refusal says why in words an
 * operator can act on.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "session.h"

#define LOGIN_DEFS	"/etc/login.defs"
#define UID_MIN_DEFAULT 1000
/* Above it: nobody (65534), systemd's dynamic users (61184 and up). */
#define UID_MAX_DEFAULT 60000

int sd_name_safe(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255 || name[0] == '.' || name[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == ',')
			return 0;
	}
	return 1;
}

int sd_text_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

void sd_printable(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	if (len == 0)
		return;
	for (; src[i] && i < len - 1; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

/* A number of /etc/login.defs (UID_MIN, UID_MAX), or def when it says
 * none we can read. */
static unsigned long login_defs(const char *key, unsigned long def)
{
	char line[256];
	unsigned long v = def;
	size_t kl = strlen(key);
	FILE *f = fopen(LOGIN_DEFS, "re");

	if (!f)
		return def;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		while (isblank((unsigned char)*p))
			p++;
		if (strncmp(p, key, kl) || !isblank((unsigned char)p[kl]))
			continue;
		errno = 0;
		unsigned long u = strtoul(p + kl, &end, 10);
		while (isspace((unsigned char)*end))
			end++;
		/* A value we cannot read is no reason to let uid 1 in. */
		if (!errno && end != p + kl && !*end && u > 0 && u < 0x7fffffff)
			v = u;
	}
	fclose(f);
	return v;
}

uid_t sd_uid_min(void)
{
	return (uid_t)login_defs("UID_MIN", UID_MIN_DEFAULT);
}

uid_t sd_uid_max(void)
{
	return (uid_t)login_defs("UID_MAX", UID_MAX_DEFAULT);
}

static int listed(const struct pt_strlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return 1;
	return 0;
}

/* The account an xvnc session runs as: the user's own. */
static int check_user(const struct pt_conf *conf, const char *user, struct sd_checked *out,
		      char *why, size_t len)
{
	struct passwd *res = NULL;
	uid_t min, max;

	if (getpwnam_r(user, &out->pw, out->pwbuf, sizeof(out->pwbuf), &res) != 0 || !res) {
		snprintf(why, len, "user %s does not exist on %s", user, conf->sessiond.name);
		return -ENOENT;
	}
	if (out->pw.pw_uid == 0) {
		snprintf(why, len, "sessions never run as root (user %s has uid 0)", user);
		return -EPERM;
	}
	min = sd_uid_min();
	max = sd_uid_max();
	if ((out->pw.pw_uid < min || out->pw.pw_uid > max) &&
	    !listed(&conf->sessiond.allow_users, user)) {
		snprintf(why, len,
			 "user %s is a system account (uid %u, %s %s %u): sessions run for it "
			 "only if [sessiond] allow_users names it",
			 user, (unsigned)out->pw.pw_uid, out->pw.pw_uid < min ? "below" : "above",
			 out->pw.pw_uid < min ? "UID_MIN" : "UID_MAX",
			 (unsigned)(out->pw.pw_uid < min ? min : max));
		return -EPERM;
	}
	return 0;
}

/* Every directory from path's up to /: root's, and neither its group nor
 * others may write in it (a sticky one above the program's own is fine:
 * they cannot rename root's entries in it). */
static int check_dirs(const char *prog, char *why, size_t len)
{
	char dir[PATH_MAX];
	struct stat sb;
	int first = 1;

	snprintf(dir, sizeof(dir), "%s", prog);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			return 0;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &sb) == -1) {
			snprintf(why, len, "%s: directory %s: %s", prog, dir, strerror(errno));
			return -errno;
		}
		if (sb.st_uid != 0) {
			snprintf(why, len, "%s: directory %s is not owned by root", prog, dir);
			return -EPERM;
		}
		if ((sb.st_mode & (S_IWGRP | S_IWOTH)) && (first || !(sb.st_mode & S_ISVTX))) {
			snprintf(why, len, "%s: directory %s is writable by %s", prog, dir,
				 sb.st_mode & S_IWOTH ? "others" : "its group");
			return -EPERM;
		}
		if (!strcmp(dir, "/"))
			return 0;
		first = 0;
	}
}

int sd_command_split(const char *cmd, char *buf, size_t len, char *argv[SD_CMD_WORDS + 1])
{
	size_t n = strlen(cmd);
	int words = 0;
	char *p;

	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(buf, cmd, n + 1);
	for (p = buf;;) {
		p += strspn(p, " \t");
		if (!*p)
			break;
		if (words == SD_CMD_WORDS) {
			argv[0] = NULL;
			return -E2BIG;
		}
		argv[words++] = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = '\0';
	}
	argv[words] = NULL;
	return words;
}

/* The length of the UTF-8 sequence at s (1 to 4), or 0 when it is not one:
 * truncated, overlong, a surrogate, above U+10FFFF, or a C1 control
 * (U+0080 to U+009F, which terminals obey as they do C0's). */
static size_t utf8_char(const unsigned char *s)
{
	unsigned c = s[0];
	unsigned long cp;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

/*
 * An app's command, before its program is looked at.  The words become
 * the program's argv as they are (no shell), so what is checked is what
 * the program and the logs see: the whole field terminated with nothing
 * hidden after its NUL, no control character (C0, DEL or C1), valid UTF-8,
 * at most SD_CMD_WORDS words of at most SD_CMD_WORD bytes each (more
 * words are refused, not cut: a dropped argument changes what runs).
 * What the arguments mean to the program is the pool's definer's choice
 * (docs/security.md).
 */
static int check_words(const char *field, size_t size, char *argv[SD_CMD_WORDS + 1],
		       char *buf, size_t buflen, char *why, size_t len)
{
	size_t n = strnlen(field, size);
	int words;

	for (size_t i = n; i < size; i++)
		if (field[i]) {
			snprintf(why, len, "the pool's command holds a NUL byte (byte %zu)", n);
			return -EINVAL;
		}
	for (size_t i = 0, k; i < n; i += k) {
		unsigned char c = (unsigned char)field[i];
		k = utf8_char((const unsigned char *)field + i);
		if (c < 0x20 || c == 0x7f || (k == 0 && c == 0xc2 && i + 1 < n &&
					      (unsigned char)field[i + 1] >= 0x80 &&
					      (unsigned char)field[i + 1] <= 0x9f)) {
			snprintf(why, len, "the pool's command holds a control character (byte %zu)",
				 i);
			return -EINVAL;
		}
		if (k == 0) {
			snprintf(why, len, "the pool's command is not valid UTF-8 (byte %zu)", i);
			return -EILSEQ;
		}
	}
	words = sd_command_split(field, buf, buflen, argv);
	if (words == -E2BIG) {
		snprintf(why, len,
			 "the pool's command has more than %d words (the program and its "
			 "arguments)",
			 SD_CMD_WORDS);
		return -E2BIG;
	}
	if (words <= 0) {
		snprintf(why, len, "the pool names no program to run");
		return -EINVAL;
	}
	for (int i = 0; i < words; i++)
		if (strlen(argv[i]) > SD_CMD_WORD) {
			snprintf(why, len, "the pool's command: word %d is longer than %d bytes",
				 i + 1, SD_CMD_WORD);
			return -E2BIG;
		}
	return words;
}

/* An app's command: its words (check_words), then its program, the first
 * word. */
static int check_command(const struct pt_ipc_sess_req *req, struct sd_checked *out, char *why,
			 size_t len)
{
	char buf[sizeof(req->command)], *argv[SD_CMD_WORDS + 1];
	const char *word;
	struct stat sb;
	int e;

	e = check_words(req->command, sizeof(req->command), argv, buf, sizeof(buf), why, len);
	if (e < 0)
		return e;
	word = argv[0];
	if (word[0] != '/') {
		snprintf(why, len, "%s: the pool's program must be named by an absolute path",
			 word);
		return -EINVAL;
	}
	/* What runs is the file the links lead to: checked here, and
	 * exec'd by this name (spawn.c), so no link can change in between. */
	if (!realpath(word, out->program)) {
		e = errno;
		snprintf(why, len, "%s: %s", word,
			 e == ENOENT || e == ENOTDIR ? "no such program" : strerror(e));
		return -e;
	}
	if (stat(out->program, &sb) == -1) {
		e = errno;
		snprintf(why, len, "%s: %s", word, strerror(e));
		return -e;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(why, len, "%s: not a regular file", word);
		return -EACCES;
	}
	if (!(sb.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
		snprintf(why, len, "%s: not executable", word);
		return -EACCES;
	}
	if (sb.st_uid != 0) {
		snprintf(why, len, "%s: not owned by root (uid %u owns it)", word,
			 (unsigned)sb.st_uid);
		return -EPERM;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, len, "%s: writable by group or others (mode %04o)", word,
			 (unsigned)(sb.st_mode & 07777));
		return -EPERM;
	}
	return check_dirs(out->program, why, len);
}

/*
 * A VM's golden image: below [sessiond] image_dir, a regular file, and no
 * symbolic link on the way (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 * from a descriptor of image_dir, which root owns and others cannot write
 * in).
 *
 * What remains: qemu-img later opens the image by its path (a qcow2
 * overlay records its backing file's name, so it must be a path, not a
 * descriptor), and the file could be replaced in between.  Only root, or
 * a group the admin gave image_dir to, can do that, and they could change
 * the pool's image anyway; and qemu-img and QEMU run as [sessiond] vm_user,
 * so whatever they open then is only what vm_user may read (which also
 * bounds a golden image's own backing file).
 */
static int check_image(const struct pt_conf *conf, const char *image, char *why, size_t len)
{
	const char *dir = conf->sessiond.image_dir;
	size_t n = strlen(dir);
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	struct stat sb;
	int dfd, fd, e;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (!image[0]) {
		snprintf(why, len, "the pool names no image");
		return -EINVAL;
	}
	if (strncmp(image, dir, n) || image[n] != '/' || !image[n + 1]) {
		snprintf(why, len, "image %s is not below [sessiond] image_dir %s", image, dir);
		return -EPERM;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		e = errno;
		snprintf(why, len, "[sessiond] image_dir %s cannot be opened: %s", dir,
			 strerror(e));
		return -e;
	}
	if (fstat(dfd, &sb) == -1 || sb.st_uid != 0 || (sb.st_mode & S_IWOTH)) {
		close(dfd);
		snprintf(why, len,
			 "[sessiond] image_dir %s must be owned by root and not writable by others",
			 dir);
		return -EPERM;
	}
	fd = (int)syscall(SYS_openat2, dfd, image + n + 1, &how, sizeof(how));
	e = errno;
	close(dfd);
	if (fd == -1) {
		if (e == ELOOP)
			snprintf(why, len,
				 "image %s cannot be read: symbolic links below [sessiond] "
				 "image_dir are not followed",
				 image);
		else if (e == EXDEV)
			snprintf(why, len, "image %s is not below [sessiond] image_dir %s", image,
				 dir);
		else
			snprintf(why, len, "image %s cannot be read: %s", image, strerror(e));
		return -e;
	}
	e = fstat(fd, &sb) == -1 ? errno : S_ISREG(sb.st_mode) ? 0 : EINVAL;
	close(fd);
	if (e) {
		snprintf(why, len, "image %s is not a regular file", image);
		return -e;
	}
	return 0;
}

static int check_geometry(const char *g)
{
	unsigned w, h;
	char end;

	if (!g[0])
		return 1;
	return strspn(g, "0123456789x") == strlen(g) && sscanf(g, "%4ux%4u%c", &w, &h, &end) == 2 &&
	       w >= 200 && h >= 200 && w <= 8192 && h <= 8192;
}

int sd_notice_ok(const char *text)
{
	size_t n = strnlen(text, SD_NOTICE_MAX + 1);

	if (n == 0 || n > SD_NOTICE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)text[i] < 0x20 && text[i] != '\n') || text[i] == 0x7f)
			return 0;
	return 1;
}

int sd_check_msg(const struct pt_ipc_sess_req *req, const char **why)
{
	*why = NULL;
	if (req->op != PT_SESS_START && req->op != PT_SESS_STOP && req->op != PT_SESS_SPARE &&
	    req->op != PT_SESS_NOTICE)
		*why = "unknown operation";
	else if (req->op == PT_SESS_NOTICE && !sd_notice_ok(req->command))
		*why = "a notice that is not 1 to 400 bytes of text";
	else if (req->id <= 0)
		*why = "session id not positive";
	else if ((req->op == PT_SESS_SPARE) != (req->id >= PT_SESS_SPARE_BASE))
		*why = "a spare VM's id for a session or the other way round";
	else if (req->op == PT_SESS_SPARE && req->driver != PT_DRIVER_QEMU)
		*why = "a spare VM of another driver than qemu";
	else if (req->password[0] && (req->op != PT_SESS_START || req->driver != PT_DRIVER_QEMU))
		*why = "a password for something else than a VM's start";
	return *why ? -EPROTO : 0;
}

int sd_check_req(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
		 struct sd_checked *out, char *why, size_t len)
{
	char shown[256];
	struct passwd *res = NULL;

	memset(out, 0, sizeof(*out));
	if (req->kind != PT_POOL_DESKTOP && req->kind != PT_POOL_APP) {
		snprintf(why, len, "pool kind %d is unknown", (int)req->kind);
		return -EINVAL;
	}
	if (req->driver != PT_DRIVER_XVNC && req->driver != PT_DRIVER_QEMU &&
	    req->driver != PT_DRIVER_STATIC) {
		snprintf(why, len, "pool driver %d is unknown", (int)req->driver);
		return -EINVAL;
	}
	if (!pt_conf_pool_name_valid(req->pool)) {
		sd_printable(shown, 80, req->pool);
		snprintf(why, len,
			 "pool name \"%s\" is not valid: 1 to 64 letters, digits, '_', '.' or '-' "
			 "(not . or ..)",
			 shown);
		return -EINVAL;
	}
	/* A spare VM is for nobody yet; everything else is for somebody. */
	if ((req->op != PT_SESS_SPARE || req->user[0]) && !sd_name_safe(req->user)) {
		sd_printable(shown, 80, req->user);
		snprintf(why, len,
			 "user name \"%s\" is not safe: 1 to 255 bytes, no control character, '/' "
			 "or ',', not starting with '.' or '-'",
			 shown);
		return -EINVAL;
	}
	if (!check_geometry(req->geometry)) {
		sd_printable(shown, 30, req->geometry);
		snprintf(why, len, "geometry \"%s\" is not WIDTHxHEIGHT, each from 200 to 8192",
			 shown);
		return -EINVAL;
	}
	if (!sd_text_safe(req->command) || !sd_text_safe(req->image)) {
		snprintf(why, len, "the pool's command or image holds a control character");
		return -EINVAL;
	}
	switch (req->driver) {
	case PT_DRIVER_STATIC:
		snprintf(why, len, "static pools have nothing to start");
		return -EINVAL;
	case PT_DRIVER_QEMU:
		/* A VM belongs to no host account: it runs as [sessiond]
		 * vm_user, and the user logs in to the guest. */
		if (getpwnam_r(conf->sessiond.vm_user, &out->pw, out->pwbuf, sizeof(out->pwbuf),
			       &res) != 0 ||
		    !res || out->pw.pw_uid == 0) {
			snprintf(why, len, "[sessiond] vm_user %s does not exist or is root",
				 conf->sessiond.vm_user);
			return -EPERM;
		}
		if (req->protocol != PT_PROTO_VNC && req->protocol != PT_PROTO_RDP &&
		    req->protocol != PT_PROTO_CONSOLE) {
			snprintf(why, len, "pool protocol %d is unknown", (int)req->protocol);
			return -EINVAL;
		}
		if (req->protocol != PT_PROTO_CONSOLE &&
		    (req->guest_port < 1 || req->guest_port > 65535 ||
		     req->boot_timeout_ms < 10000 || req->boot_timeout_ms > 3600000)) {
			snprintf(why, len,
				 "a VM's guest port (1 to 65535) or boot timeout (10 s to 1 h) is "
				 "out of range");
			return -EINVAL;
		}
		return check_image(conf, req->image, why, len);
	default: {
		int rc = check_user(conf, req->user, out, why, len);
		if (rc)
			return rc;
		if (req->kind == PT_POOL_APP)
			return check_command(req, out, why, len);
		return 0;
	}
	}
}
