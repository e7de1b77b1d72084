/*
 * drv_qemu.c - the qemu driver (see monitor.h): a desktop VM per session,
 * QEMU as [sessiond] vm_user on a copy-on-write overlay of the pool's
 * golden image (checked by checks.c: below [sessiond] image_dir).  Spare
 * VMs boot for nobody and are handed to a session later (assign).
 *
 * What the gateway reaches is the pool's protocol:
 *   console   QEMU's own emulated screen over VNC (a unix socket, or a
 *             port on [sessiond] vnc_listen), up as soon as QEMU listens;
 *   rdp, vnc  the guest's own server on guest_port, forwarded by QEMU's
 *             user network from a port on the host (loopback, or
 *             vnc_listen's address); ready only once the guest agent
 *             (qemu-guest-agent, on a virtio-serial port whose host end is
 *             DIR/qga.sock) answers and the server answers its protocol's
 *             greeting, within the pool's boot_timeout.
 * Every VM's network is QEMU's user network with restrict=on: the guest
 * reaches nothing (not the host, not another VM, not the outside), and
 * only the forwarded port reaches the guest.
 *
 * With sso the user's password is set in the guest through its agent
 * (the account made first when the guest has none) before the session is
 * reported ready, so that the guest's own login (xrdp's PAM) takes the
 * name and password the user signed in to Portico with.  On logoff the
 * agent shuts the guest down (guest-shutdown) before QEMU is killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"
#include "qga.h"

#define QGA_OPEN_MS   1000  /* QEMU listens on qga.sock from its start */
#define QGA_SYNC_MS   3000  /* an agent that is up answers at once */
#define QGA_CALL_MS   15000 /* useradd, chpasswd in a guest under emulation */
#define PROBE_MS      3000  /* the guest's server's greeting */
#define SHUTDOWN_MS   30000 /* a guest's clean shutdown, then QEMU is killed */
#define READY_POLL_MS 500

static struct sd_qga qga = { .fd = -1 }; /* one connection at a time */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *proto_name(int protocol)
{
	return protocol == PT_PROTO_RDP ? "RDP" : protocol == PT_PROTO_VNC ? "VNC" : "console";
}

/* STATE_DIR/vms/POOL, vm_user's, into m->vm_fd; its path into out (for
 * qemu-img and QEMU, which run as vm_user).  Every step from a directory
 * descriptor: the pool's name is checked, but a path joined from it is
 * never what root chowns. */
static int vm_dir(struct sd_mon *m, char *out, size_t len)
{
	struct stat sb;
	int sfd, vfd, pfd, e = 0;

	snprintf(out, len, "%.400s/vms/%.72s", m->conf->sessiond.state_dir, m->req->pool);
	sfd = sd_root_dir(m->conf->sessiond.state_dir, 0755);
	if (sfd < 0) {
		errno = -sfd;
		return -1;
	}
	vfd = sd_dir_at(sfd, "vms", 0755);
	close(sfd);
	if (vfd < 0) {
		errno = -vfd;
		return -1;
	}
	if (fstat(vfd, &sb) == -1 || sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		close(vfd);
		errno = EPERM;
		return -1;
	}
	pfd = sd_dir_at(vfd, m->req->pool, 0700);
	close(vfd);
	if (pfd < 0) {
		errno = -pfd;
		return -1;
	}
	/* Just made (root's), or vm_user's from an earlier session. */
	if (fstat(pfd, &sb) == -1 || (sb.st_uid != 0 && sb.st_uid != m->ck.pw.pw_uid))
		e = EPERM;
	else if (fchown(pfd, m->ck.pw.pw_uid, m->ck.pw.pw_gid) == -1)
		e = errno;
	if (e) {
		close(pfd);
		errno = e;
		return -1;
	}
	m->vm_fd = pfd;
	return 0;
}

/* The VM's disk: a copy-on-write overlay of the pool's golden image, one
 * per session, or one per user that outlives the session (persistent). */
static int make_overlay(struct sd_mon *m)
{
	const char *image = m->req->image;
	char dir[600], why[160];
	char *argv[] = { "qemu-img",	"create", "-q",	   "-f",       "qcow2", "-b",
			 (char *)image, "-F",	  "qcow2", m->overlay, NULL };
	struct stat sb;

	if (vm_dir(m, dir, sizeof(dir))) {
		sd_mon_report(m, PT_SESS_FAILED, "cannot make %s: %s", dir, strerror(errno));
		return -1;
	}
	/* The user's name is a safe one (checks.c): no '/', no ','.  Whole,
	 * or refused: two names cut to the same length would share a disk. */
	if (m->req->persistent &&
	    snprintf(m->overlay_name, sizeof(m->overlay_name), "user-%s.qcow2", m->req->user) >=
		    (int)sizeof(m->overlay_name)) {
		sd_mon_report(m, PT_SESS_FAILED,
			      "user name %.64s... is too long for a persistent VM's disk name",
			      m->req->user);
		return -1;
	} else if (!m->req->persistent)
		snprintf(m->overlay_name, sizeof(m->overlay_name), "%lld.qcow2",
			 (long long)m->req->id);
	snprintf(m->overlay, sizeof(m->overlay), "%.500s/%s", dir, m->overlay_name);
	if (m->req->persistent) {
		m->keep_overlay = 1;
		if (fstatat(m->vm_fd, m->overlay_name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			pt_log_info("session %lld: %s's own disk %s", (long long)m->req->id,
				    m->req->user, m->overlay);
			return 0;
		}
	}
	if (sd_run_wait(m, argv)) {
		sd_mon_log_tail(m, why, sizeof(why));
		sd_mon_report(m, PT_SESS_FAILED, "image %s is not a usable disk image: %s", image,
			      why);
		m->keep_overlay = 0;
		return -1;
	}
	return 0;
}

static int prep_vm(struct sd_mon *m)
{
	return sd_write_file(m, "passwd", m->st.secret, strlen(m->st.secret));
}

/* Whether the guest's server answers on addr:port, through QEMU's forward:
 * RDP an X.224 Connection Confirm (or any TPKT) to a Connection Request,
 * VNC its "RFB " greeting.  QEMU accepts on the host whether or not
 * anything listens in the guest, so a connect alone says nothing. */
static int server_answers(const char *addr, int port, int protocol)
{
	/* TPKT, X.224 Connection Request, RDP_NEG_REQ (TLS | CredSSP) */
	static const unsigned char cr[19] = { 3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0,
					      0, 1, 0, 8,  0,  3,    0, 0, 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	unsigned char got[12];
	size_t have = 0, want = protocol == PT_PROTO_RDP ? 6 : 4;
	int64_t until = now_ms() + PROBE_MS;
	int fd, ok = 0;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    (protocol == PT_PROTO_RDP && send(fd, cr, sizeof(cr), MSG_NOSIGNAL) != sizeof(cr))) {
		close(fd);
		return 0;
	}
	while (have < want) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = until - now_ms();
		ssize_t n;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = recv(fd, got + have, want - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (have == want)
		ok = protocol == PT_PROTO_RDP
			     ? got[0] == 3 && got[1] == 0 && (got[5] & 0xf0) == 0xd0
			     : memcmp(got, "RFB ", 4) == 0;
	close(fd);
	return ok;
}

/* Talk to the guest's agent: connected and in step, or -1. */
static int agent_open(struct sd_mon *m)
{
	sd_qga_close(&qga);
	if (sd_qga_open(&qga, m->qga, QGA_OPEN_MS) == 0 && sd_qga_sync(&qga, QGA_SYNC_MS) == 0)
		return 0;
	sd_qga_close(&qga);
	return -1;
}

/* The user's account in the guest with the user's password (sso): made
 * when the guest has none (useradd; a guest without it, Windows, must
 * have the account already), then guest-set-user-password.  0, or -1
 * with why. */
static int guest_login(struct sd_mon *m, const char *user, const char *password, char *why,
		       size_t len)
{
	char *useradd[] = {
		"/usr/sbin/useradd", "-m", "-s", "/bin/bash", "--", (char *)user, NULL
	};
	char err[256];
	int status = -1, rc;
	int64_t t0 = now_ms(), t1;

	/* The agent's channel takes one client at a time (an admin's may
	 * hold it a moment): tried again for a while. */
	for (int64_t until = now_ms() + QGA_CALL_MS; agent_open(m); usleep(200000))
		if (now_ms() >= until) {
			snprintf(why, len, "the guest agent does not answer");
			return -1;
		}
	rc = sd_qga_exec(&qga, useradd, &status, QGA_CALL_MS, err, sizeof(err));
	if (rc == 0 && status != 0 && status != 9) /* 9: the account exists */
		pt_log_warnx("session %lld: useradd %s in the guest exited %d", (long long)m->st.id,
			     user, status);
	else if (rc)
		pt_log_info(
			"session %lld: no useradd in the guest (%s): %s's account must be there",
			(long long)m->st.id, err, user);
	t1 = now_ms();
	rc = sd_qga_set_password(&qga, user, password, QGA_CALL_MS, err, sizeof(err));
	sd_qga_close(&qga);
	if (rc) {
		snprintf(why, len, "the guest did not take %s's password: %s", user, err);
		return -1;
	}
	pt_log_info("session %lld: %s's password set in the guest (single sign-on) in %lld ms "
		    "(the account %lld ms)",
		    (long long)m->st.id, user, (long long)(now_ms() - t0), (long long)(t1 - t0));
	return 0;
}

/* Boot to ready: the guest agent answers, then the guest's server on the
 * forwarded port; within the pool's boot_timeout.  0, or -1 with FAILED
 * reported. */
static int wait_ready(struct sd_mon *m, const char *addr, int port)
{
	const struct pt_ipc_sess_req *r = m->req;
	const char *what = r->op == PT_SESS_SPARE ? "spare VM" : "session";
	int64_t start = now_ms(), until = start + r->boot_timeout_ms;
	int agent = 0;
	char why[200], tail[160];

	snprintf(why, sizeof(why), "its guest agent never answered");
	while (now_ms() < until) {
		if (waitpid(m->program, NULL, WNOHANG) == m->program) {
			m->display = m->program = 0;
			sd_mon_log_tail(m, tail, sizeof(tail));
			sd_mon_report(m, PT_SESS_FAILED, "the VM stopped while it booted: %s",
				      tail);
			return -1;
		}
		if (!agent && agent_open(m) == 0) {
			agent = 1;
			sd_qga_close(&qga);
			pt_log_info("%s %lld of pool %s: the guest agent answered after %.1f s",
				    what, (long long)r->id, r->pool, (now_ms() - start) / 1000.0);
			snprintf(why, sizeof(why),
				 "its guest agent answered, but not its %s server on port %d",
				 proto_name(r->protocol), (int)r->guest_port);
		}
		if (agent && server_answers(addr, port, r->protocol)) {
			/* Its address, as the guest has it by now (DHCP): what a
			 * tap network would connect to; here the forward is. */
			char ip[64] = "", err[160];
			if (agent_open(m) ||
			    sd_qga_ipv4(&qga, ip, sizeof(ip), QGA_SYNC_MS, err, sizeof(err)))
				snprintf(ip, sizeof(ip), "unknown");
			sd_qga_close(&qga);
			pt_log_info(
				"%s %lld of pool %s: the guest's %s server answers: ready after "
				"%.1f s (guest address %s, reached at %s:%d)",
				what, (long long)r->id, r->pool, proto_name(r->protocol),
				(now_ms() - start) / 1000.0, ip, addr, port);
			return 0;
		}
		usleep(READY_POLL_MS * 1000);
	}
	pt_log_warnx("%s %lld of pool %s: not ready within %lld s (%s): thrown away", what,
		     (long long)r->id, r->pool, (long long)(r->boot_timeout_ms / 1000), why);
	sd_mon_report(m, PT_SESS_FAILED, "the VM was not ready within %lld s: %s",
		      (long long)(r->boot_timeout_ms / 1000), why);
	return -1;
}

static int qemu_start(struct sd_mon *m)
{
	const struct pt_sessiond_conf *sc = &m->conf->sessiond;
	const struct pt_ipc_sess_req *r = m->req;
	char mem[24], drive[700], secret[640], vnc[700], name[200], sock[600], nic[200],
		chardev[700], serial[620];
	char *argv[48];
	int n = 0, tcp = strcmp(sc->vnc_listen, "unix") != 0,
	    console = r->protocol == PT_PROTO_CONSOLE;
	const char *fwd_addr = tcp ? sc->vnc_listen : "127.0.0.1";
	int port = -1;
	pid_t pid;

	if (make_overlay(m))
		return -1;
	snprintf(mem, sizeof(mem), "%lld", (long long)sc->vm_memory_mb);
	snprintf(drive, sizeof(drive), "file=%s,if=virtio,format=qcow2", m->overlay);
	snprintf(secret, sizeof(secret), "secret,id=vncpw,file=%.580s/passwd", m->dir);
	snprintf(sock, sizeof(sock), "%.580s/vnc.sock", m->dir);
	snprintf(m->qga, sizeof(m->qga), "%.580s/qga.sock", m->dir);
	snprintf(chardev, sizeof(chardev), "socket,id=qga0,path=%s,server=on,wait=off", m->qga);
	snprintf(serial, sizeof(serial), "file:%.580s/console.log", m->dir);
	snprintf(name, sizeof(name), "%.64s (%.120s)", r->pool, r->user[0] ? r->user : "spare");
	if (tcp || !console) {
		port = sd_free_port(fwd_addr);
		if (port < 0) {
			sd_mon_report(m, PT_SESS_FAILED, "no free port on %s for the VM", fwd_addr);
			return -1;
		}
	}
	/* Its own network, which reaches nothing (restrict=on); the guest's
	 * server reached through one forwarded port. */
	if (console)
		snprintf(nic, sizeof(nic), "user,id=n0,restrict=on");
	else
		snprintf(nic, sizeof(nic), "user,id=n0,restrict=on,hostfwd=tcp:%s:%d-:%d", fwd_addr,
			 port, (int)r->guest_port);
	if (console && tcp) {
		snprintf(vnc, sizeof(vnc), "%s:%d,password-secret=vncpw", sc->vnc_listen,
			 port - 5900);
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", sc->vnc_listen, port);
	} else if (console) {
		snprintf(vnc, sizeof(vnc), "unix:%s,password-secret=vncpw", sock);
		snprintf(m->st.backend, sizeof(m->st.backend), "unix:%.240s", sock);
	} else {
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", fwd_addr, port);
	}
	argv[n++] = sc->qemu;
	argv[n++] = "-accel";
	argv[n++] = sc->vm_accel;
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-vga";
	argv[n++] = "std";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-drive";
	argv[n++] = drive;
	argv[n++] = "-netdev";
	argv[n++] = nic;
	argv[n++] = "-device";
	argv[n++] = "virtio-net-pci,netdev=n0";
	argv[n++] = "-chardev";
	argv[n++] = chardev;
	argv[n++] = "-device";
	argv[n++] = "virtio-serial-pci";
	argv[n++] = "-device";
	argv[n++] = "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0";
	argv[n++] = "-serial";
	argv[n++] = serial;
	if (console) {
		argv[n++] = "-object";
		argv[n++] = secret;
		argv[n++] = "-vnc";
		argv[n++] = vnc;
	}
	argv[n++] = "-name";
	argv[n++] = name;
	argv[n] = NULL;
	pid = sd_spawn(m, NULL, argv, -1, console ? prep_vm : NULL);
	if (pid < 0) {
		sd_mon_report(m, PT_SESS_FAILED, "%s cannot run: %s", sc->qemu,
			      strerror((int)-pid));
		return -1;
	}
	m->display = m->program = pid;
	m->st.pgid[0] = pid;
	if (!console) {
		if (wait_ready(m, fwd_addr, port))
			return -1;
		if (r->op == PT_SESS_START && r->password[0]) {
			char why[300];
			m->st.id = r->id;
			snprintf(m->st.user, sizeof(m->st.user), "%s", r->user);
			if (guest_login(m, r->user, r->password, why, sizeof(why))) {
				sd_mon_report(m, PT_SESS_FAILED, "%s", why);
				return -1;
			}
		}
		return 0;
	}
	/* A console is up when it listens. */
	for (int i = 0; i < DISPLAY_WAIT_MS / 20; i++) {
		struct stat sb;
		if (tcp ? i > 5 : fstatat(m->dir_fd, "vnc.sock", &sb, AT_SYMLINK_NOFOLLOW) == 0)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			char why[160];
			m->display = m->program = 0;
			sd_mon_log_tail(m, why, sizeof(why));
			sd_mon_report(m, PT_SESS_FAILED, "the VM did not start: %s", why);
			return -1;
		}
		usleep(20000);
	}
	if (!tcp) {
		struct passwd *gw = getpwnam(sc->gateway_user);
		if (!gw || sd_hand_socket(m->dir_fd, "vnc.sock", m->ck.pw.pw_uid, gw->pw_uid,
					  gw->pw_gid)) {
			sd_mon_report(m, PT_SESS_FAILED, "the VM's console did not come up");
			return -1;
		}
	}
	return 0;
}

/* A spare VM handed to a session: the root side wrote its new id, user
 * and (sso) the user's password to RUN_DIR/state/SPARE.assign (root's,
 * in a directory only root may enter): "ID\nUSER\nPASSWORD" (the password
 * to the end of the file, which may hold any byte but NUL).  Reports
 * STARTED as the session once the guest has the password. */
static int qemu_assign(struct sd_mon *m)
{
	char path[600], apath[620], old[600], buf[1400], why[300];
	char *user, *pw = NULL, *nl;
	long long id;
	ssize_t n = -1;
	int fd, rc = 0;

	if (m->assigned || sd_state_path(m->conf, m->st.id, old, sizeof(old)))
		return 0;
	snprintf(apath, sizeof(apath), "%s.assign", old);
	fd = open(apath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		unlink(apath);
	}
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	id = atoll(buf);
	user = strchr(buf, '\n');
	if (id <= 0 || id >= PT_SESS_SPARE_BASE || !user) {
		explicit_bzero(buf, sizeof(buf));
		return 0;
	}
	*user++ = '\0';
	if ((nl = strchr(user, '\n')) != NULL) {
		*nl = '\0';
		pw = nl + 1;
	}
	m->assigned = 1;
	m->st.id = id;
	snprintf(m->st.user, sizeof(m->st.user), "%.255s", user);
	if (!sd_name_safe(user)) {
		sd_mon_report(m, PT_SESS_FAILED,
			      "a spare VM is not handed to a user with an "
			      "unsafe name");
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	if (pw && *pw && guest_login(m, user, pw, why, sizeof(why))) {
		sd_mon_report(m, PT_SESS_FAILED, "%s", why);
		rc = -1;
	}
	explicit_bzero(buf, sizeof(buf));
	if (rc)
		return -1;
	if (sd_state_path(m->conf, id, path, sizeof(path)) == 0 &&
	    sd_state_write(m->conf, &m->st) == 0)
		unlink(old);
	pt_log_info("spare VM is now session %lld of %s", id, m->st.user);
	return sd_mon_report(m, PT_SESS_STARTED, "started") ? -1 : 0;
}

/* A user's VM (not a spare, not a console) is asked to shut down through
 * its agent, and given SHUTDOWN_MS to do it: its disk is then clean,
 * which a persistent user gets back. */
static void qemu_stop(struct sd_mon *m)
{
	char err[200];
	int64_t start = now_ms();

	if (!m->program || !m->st.user[0] || m->req->protocol == PT_PROTO_CONSOLE)
		return;
	if (agent_open(m) || sd_qga_shutdown(&qga, 2000, err, sizeof(err))) {
		sd_qga_close(&qga);
		pt_log_info("session %lld: the guest agent did not take the shutdown: the VM is "
			    "stopped",
			    (long long)m->st.id);
		return;
	}
	sd_qga_close(&qga);
	while (now_ms() - start < SHUTDOWN_MS) {
		if (waitpid(m->program, NULL, WNOHANG) == m->program) {
			m->display = m->program = 0;
			pt_log_info("session %lld: the guest shut down in %.1f s",
				    (long long)m->st.id, (now_ms() - start) / 1000.0);
			return;
		}
		usleep(100000);
	}
	pt_log_warnx("session %lld: the guest did not shut down within %d s: the VM is stopped",
		     (long long)m->st.id, SHUTDOWN_MS / 1000);
}

static const char *qemu_ended(struct sd_mon *m)
{
	return m->program ? NULL : "the VM powered off";
}

static void qemu_cleanup(struct sd_mon *m)
{
	if (m->vm_fd < 0 || !m->overlay_name[0] || m->keep_overlay)
		return;
	if (unlinkat(m->vm_fd, m->overlay_name, 0) == -1 && errno != ENOENT)
		pt_log_warn("session %lld: cannot remove %s", (long long)m->req->id, m->overlay);
}

const struct sd_driver sd_drv_qemu = {
	.name = "qemu",
	.pam = 0,
	.start = qemu_start,
	.assign = qemu_assign,
	.stop = qemu_stop,
	.ended = qemu_ended,
	.cleanup = qemu_cleanup,
};
