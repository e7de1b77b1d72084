/*
 * drv_qemu.c - the qemu driver (see monitor.h): a desktop VM per session,
 * QEMU as [sessiond] vm_user on a copy-on-write overlay of the pool's
 * golden image (checked by checks.c: below [sessiond] image_dir), its
 * console a VNC server for the gateway.  Spare VMs boot for nobody and
 * are handed to a session later (assign).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

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

static int qemu_start(struct sd_mon *m)
{
	const struct pt_sessiond_conf *sc = &m->conf->sessiond;
	char mem[24], drive[700], secret[640], vnc[700], name[200], sock[600];
	char *argv[40];
	int n = 0, tcp = strcmp(sc->vnc_listen, "unix") != 0;
	pid_t pid;

	if (make_overlay(m))
		return -1;
	snprintf(mem, sizeof(mem), "%lld", (long long)sc->vm_memory_mb);
	snprintf(drive, sizeof(drive), "file=%s,if=virtio,format=qcow2", m->overlay);
	snprintf(secret, sizeof(secret), "secret,id=vncpw,file=%.580s/passwd", m->dir);
	snprintf(sock, sizeof(sock), "%.580s/vnc.sock", m->dir);
	snprintf(name, sizeof(name), "%.64s (%.120s)", m->req->pool,
		 m->req->user[0] ? m->req->user : "spare");
	if (tcp) {
		int p = sd_free_port(sc->vnc_listen);
		if (p < 0) {
			sd_mon_report(m, PT_SESS_FAILED, "no free port for a console on %s",
				      sc->vnc_listen);
			return -1;
		}
		snprintf(vnc, sizeof(vnc), "%s:%d,password-secret=vncpw", sc->vnc_listen, p - 5900);
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", sc->vnc_listen, p);
	} else {
		snprintf(vnc, sizeof(vnc), "unix:%s,password-secret=vncpw", sock);
		snprintf(m->st.backend, sizeof(m->st.backend), "unix:%.240s", sock);
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
	argv[n++] = "-nic";
	argv[n++] = "user,model=virtio-net-pci";
	argv[n++] = "-object";
	argv[n++] = secret;
	argv[n++] = "-vnc";
	argv[n++] = vnc;
	argv[n++] = "-name";
	argv[n++] = name;
	argv[n] = NULL;
	pid = sd_spawn(m, NULL, argv, -1, prep_vm);
	if (pid < 0) {
		sd_mon_report(m, PT_SESS_FAILED, "%s cannot run: %s", sc->qemu,
			      strerror((int)-pid));
		return -1;
	}
	m->display = m->program = pid;
	m->st.pgid[0] = pid;
	/* Up when its console listens. */
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

/* A spare VM handed to a session: the root side wrote its new id and
 * user to RUN_DIR/state/SPARE.assign (root's). */
static void qemu_assign(struct sd_mon *m)
{
	char path[600], apath[620], old[600], line[300];
	long long id = 0;
	FILE *f;

	if (sd_state_path(m->conf, m->st.id, old, sizeof(old)))
		return;
	snprintf(apath, sizeof(apath), "%s.assign", old);
	f = fopen(apath, "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f))
		id = atoll(line);
	if (id <= 0 || id >= PT_SESS_SPARE_BASE || !fgets(line, sizeof(line), f)) {
		fclose(f);
		unlink(apath);
		return;
	}
	fclose(f);
	unlink(apath);
	line[strcspn(line, "\n")] = '\0';
	if (!sd_name_safe(line)) {
		pt_log_warnx("spare VM %lld: not handed to a user with an unsafe name",
			     (long long)m->st.id);
		return;
	}
	snprintf(m->st.user, sizeof(m->st.user), "%.255s", line);
	m->st.id = id;
	if (sd_state_path(m->conf, id, path, sizeof(path)) == 0 &&
	    sd_state_write(m->conf, &m->st) == 0)
		unlink(old);
	pt_log_info("spare VM is now session %lld of %s", id, m->st.user);
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
	.ended = qemu_ended,
	.cleanup = qemu_cleanup,
};
