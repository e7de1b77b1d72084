/*
 * drv_xvnc.c - the xvnc driver (see monitor.h): an Xvnc of the user's and,
 * in it, [sessiond] xsession (a desktop) or the pool's program alone (an
 * application, which ends the session when it exits).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "monitor.h"
#include "portico/rfb.h"

/* As the user, before exec'ing Xvnc: its password file and the X
 * authority file that it and the session's programs share. */
static int prep_display(struct sd_mon *m)
{
	unsigned char obf[8], xa[64], *p = xa;
	static const char proto[] = "MIT-MAGIC-COOKIE-1";

	if (pt_rfb_vnc_obfuscate(m->st.secret, obf) || sd_write_file(m, "passwd", obf, 8))
		return -1;
	/* One entry, FamilyWild with no address and no display number: it
	 * matches this display whatever number Xvnc picks. */
	*p++ = 0xff, *p++ = 0xff;
	*p++ = 0, *p++ = 0;
	*p++ = 0, *p++ = 0;
	*p++ = 0, *p++ = sizeof(proto) - 1;
	memcpy(p, proto, sizeof(proto) - 1);
	p += sizeof(proto) - 1;
	*p++ = 0, *p++ = sizeof(m->xcookie);
	memcpy(p, m->xcookie, sizeof(m->xcookie));
	p += sizeof(m->xcookie);
	return sd_write_file(m, "Xauthority", xa, (size_t)(p - xa));
}

/* Wait for Xvnc to write its display number on fd; -1 on timeout or if it
 * exits first. */
static int read_display(int fd)
{
	char buf[32];
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (got < sizeof(buf) - 1) {
		int rc = poll(&p, 1, DISPLAY_WAIT_MS);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != 1)
			return -1;
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	return atoi(buf);
}

/* The displays on which an X server listens: a listening unix socket
 * named /tmp/.X11-unix/XN (or @/tmp/.X11-unix/XN, its abstract twin) in
 * /proc/net/unix.  Not /tmp/.XN-lock: Xvnc -displayfd takes no lock.  An
 * X server binds its sockets before it compiles its keymap, and they go
 * with it, whatever killed it. */
static void live_displays(unsigned char *live, size_t n)
{
	char line[512];
	FILE *f = fopen("/proc/net/unix", "re");

	memset(live, 0, n / 8);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long flags;
		const char *x = strstr(line, "/tmp/.X11-unix/X");
		char *end;
		long d;
		/* "Num: RefCount Protocol Flags Type St Inode Path" */
		if (!x || sscanf(line, "%*s %*s %*s %lx", &flags) != 1 || !(flags & 0x10000))
			continue;
		d = strtol(x + 16, &end, 10);
		if (end != x + 16 && (*end == '\n' || *end == '\0') && d >= 0 && (size_t)d < n)
			live[d / 8] |= (unsigned char)(1u << (d % 8));
	}
	fclose(f);
}

/* An X server run by a user compiles its keymap into /tmp/server-N.xkm (N
 * its display; /var/lib/xkb is root's) and removes it once read.  One
 * killed while it starts leaves the file behind, its user's and, /tmp
 * being sticky, nobody else's to replace: every later X server of another
 * user on display N then fails ("Failed to activate virtual core
 * keyboard"), and -displayfd picks the lowest free display, that one,
 * every time.  So, as root, before each start: remove every such file
 * whose display has no X server listening (live_displays); a starting
 * server listens before it writes its file. */
static void sweep_xkm(void)
{
	static unsigned char live[65536 / 8];
	DIR *d = opendir("/tmp");
	struct dirent *e;

	if (!d)
		return;
	live_displays(live, 65536);
	while ((e = readdir(d)) != NULL) {
		const char *p = e->d_name;
		struct stat sb;
		long n = 0;

		if (strncmp(p, "server-", 7))
			continue;
		for (p += 7; *p >= '0' && *p <= '9' && n < 65536; p++)
			n = n * 10 + (*p - '0');
		if (p == e->d_name + 7 || n >= 65536 || strcmp(p, ".xkm") ||
		    (live[n / 8] & (1u << (n % 8))) ||
		    fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) || !S_ISREG(sb.st_mode))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			pt_log_info("removed /tmp/%s, left by an X server of uid %u killed as it "
				    "started",
				    e->d_name, (unsigned)sb.st_uid);
	}
	closedir(d);
}

static int start_display(struct sd_mon *m)
{
	const struct pt_sessiond_conf *sc = &m->conf->sessiond;
	char fdarg[8] = "3", geometry[24], sock[600], port[16], desktop[200];
	char passwd[600], xauth[600];
	char *argv[48];
	int pfd[2], n = 0, tcp = strcmp(sc->vnc_listen, "unix") != 0;
	pid_t pid;

	snprintf(geometry, sizeof(geometry), "%s",
		 m->req->geometry[0] ? m->req->geometry : "1280x800");
	snprintf(desktop, sizeof(desktop), "%.64s (%.120s)", m->req->pool, m->req->user);
	snprintf(sock, sizeof(sock), "%s/vnc.sock", m->dir);
	snprintf(passwd, sizeof(passwd), "%s/passwd", m->dir);
	snprintf(xauth, sizeof(xauth), "%s/Xauthority", m->dir);
	argv[n++] = sc->xvnc;
	argv[n++] = "-displayfd";
	argv[n++] = fdarg;
	argv[n++] = "-geometry";
	argv[n++] = geometry;
	argv[n++] = "-depth";
	argv[n++] = "24";
	argv[n++] = "-desktop";
	argv[n++] = desktop;
	argv[n++] = "-SecurityTypes";
	argv[n++] = "VncAuth";
	argv[n++] = "-PasswordFile";
	argv[n++] = passwd;
	argv[n++] = "-auth";
	argv[n++] = xauth;
	/* Many users reach Xvnc from the gateway's one address. */
	argv[n++] = "-BlacklistThreshold";
	argv[n++] = "1000000";
	/* A TigerVNC viewer asking for exclusive access must not drop
	 * others (the gateway sends shared=1 too). */
	argv[n++] = "-AlwaysShared";
	argv[n++] = "-nolisten";
	argv[n++] = "tcp";
	if (tcp) {
		int p = sd_free_port(sc->vnc_listen);
		if (p < 0) {
			sd_mon_report(m, PT_SESS_FAILED, "no free port for a display on %s",
				      sc->vnc_listen);
			return -1;
		}
		snprintf(port, sizeof(port), "%d", p);
		argv[n++] = "-interface";
		argv[n++] = sc->vnc_listen;
		argv[n++] = "-rfbport";
		argv[n++] = port;
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", sc->vnc_listen, p);
	} else {
		argv[n++] = "-rfbunixpath";
		argv[n++] = sock;
		argv[n++] = "-rfbunixmode";
		argv[n++] = "0600";
		argv[n++] = "-rfbport";
		argv[n++] = "-1";
		snprintf(m->st.backend, sizeof(m->st.backend), "unix:%.240s", sock);
	}
	/* An application session ends with its program: Xvnc ends at the
	 * server reset that the last X client's exit causes. */
	if (m->req->kind == PT_POOL_APP)
		argv[n++] = "-terminate";
	argv[n] = NULL;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	sweep_xkm();
	pid = sd_spawn(m, NULL, argv, pfd[1], prep_display);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		sd_mon_report(m, PT_SESS_FAILED, "%s cannot run: %s", sc->xvnc,
			      strerror((int)-pid));
		return -1;
	}
	m->display = pid;
	m->st.pgid[0] = pid;
	m->display_no = read_display(pfd[0]);
	close(pfd[0]);
	if (m->display_no < 0) {
		char why[160];
		sd_mon_log_tail(m, why, sizeof(why));
		pt_log_warnx("session %lld: %s did not start: %s", (long long)m->req->id, sc->xvnc,
			     why);
		sd_mon_report(m, PT_SESS_FAILED, "the display server did not start: %s", why);
		return -1;
	}
	/* Only the gateway may open the console socket: handed over if it
	 * is the socket Xvnc (the user) made, nothing else. */
	if (!tcp) {
		struct passwd *gw = getpwnam(sc->gateway_user);
		if (!gw || sd_hand_socket(m->dir_fd, "vnc.sock", m->ck.pw.pw_uid, gw->pw_uid,
					  gw->pw_gid)) {
			sd_mon_report(m, PT_SESS_FAILED,
				      "cannot hand the display socket to user %s",
				      sc->gateway_user);
			return -1;
		}
	}
	return 0;
}

static int start_program(struct sd_mon *m)
{
	int app = m->req->kind == PT_POOL_APP;
	const char *what = app ? m->req->command : m->conf->sessiond.xsession;
	char buf[PATH_MAX], *argv[SD_CMD_WORDS + 1];
	int words = sd_command_split(what, buf, sizeof(buf), argv);
	pid_t pid;

	/* (An app's command was checked: checks.c, check_words.) */
	if (words < 0) {
		sd_mon_report(m, PT_SESS_FAILED, "%s has too many words or is too long",
			      app ? "the pool's command" : "[sessiond] xsession");
		return -1;
	}
	if (words == 0) {
		sd_mon_report(m, PT_SESS_FAILED, "the pool names no program to run");
		return -1;
	}
	/* An app's program by the name checked (checks.c); the desktop's
	 * is the admin's own setting. */
	pid = sd_spawn(m, app ? m->ck.program : NULL, argv, -1, NULL);
	if (pid < 0) {
		sd_mon_report(m, PT_SESS_FAILED, "%s: %s", argv[0],
			      -pid == ENOENT ? "no such program" : strerror((int)-pid));
		return -1;
	}
	m->program = pid;
	m->st.pgid[1] = pid;
	return 0;
}

static int xvnc_start(struct sd_mon *m)
{
	return start_display(m) || start_program(m) ? -1 : 0;
}

static const char *xvnc_ended(struct sd_mon *m)
{
	if (!m->program)
		return m->req->kind == PT_POOL_APP ? "application exited" : "logged out";
	if (!m->display)
		return "display server exited";
	return NULL;
}

/* An admin's notice on the session's display: xmessage (x11-utils) as the
 * user, the text in a file of the session's (written as the user, like its
 * other files: never on xmessage's command line, never taken for an
 * option), for 5 minutes or until the user presses OK.  In a process group
 * of its own; the display's end ends it too. */
static const char *notice_text; /* for notice_prep, in the child */

static int notice_prep(struct sd_mon *m)
{
	return sd_write_file(m, "notice.txt", notice_text, strlen(notice_text));
}

static int xvnc_notice(struct sd_mon *m, const char *text)
{
	char file[600];
	char *const argv[] = { "xmessage", "-center",  "-title", "Message from your administrator",
			       "-buttons", "OK:0",     "-default", "OK",
			       "-timeout", "300",      "-file",  file,
			       NULL };
	pid_t pid;

	if (m->display_no < 0 || !m->display)
		return -1;
	snprintf(file, sizeof(file), "%s/notice.txt", m->dir);
	notice_text = text;
	pid = sd_spawn(m, NULL, argv, -1, notice_prep);
	if (pid < 0) {
		pt_log_warnx("session %lld: the notice cannot be shown: xmessage: %s%s",
			     (long long)m->req->id, strerror((int)-pid),
			     pid == -ENOENT ? " (install x11-utils on the session host)" : "");
		return -1;
	}
	return 0;
}

const struct sd_driver sd_drv_xvnc = {
	.name = "xvnc",
	.pam = 1,
	.start = xvnc_start,
	.ended = xvnc_ended,
	.notice = xvnc_notice,
};
