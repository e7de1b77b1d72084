/*
 * monitor.h - the parts of a session monitor (see session.h): the
 * lifecycle with PAM (monitor.c), starting the session's processes
 * (spawn.c) and one driver per kind of session (drv_xvnc.c, drv_qemu.c)
 * behind struct sd_driver.  Private to those files.
 */
#ifndef SESSION_MONITOR_H
#define SESSION_MONITOR_H

#include <security/pam_appl.h>

#include "portico/log.h"
#include "session.h"

#define DISPLAY_WAIT_MS 15000 /* the display (Xvnc, a VM's console) up and listening */

struct sd_driver;

/* One session, owned by its monitor process. */
struct sd_mon {
	const struct pt_conf *conf;
	const struct pt_ipc_sess_req *req;
	const struct sd_driver *drv;
	int report_fd;
	struct sd_checked ck; /* ck.pw: the account the session runs as */
	pam_handle_t *pam;
	int pam_open, pam_cred;
	char **pam_env;
	char dir[512];		 /* RUN_DIR/sessions/ID, the user's: for the user's programs */
	int sessions_fd, dir_fd; /* RUN_DIR/sessions and RUN_DIR/sessions/ID: for root */
	struct sd_state st;
	pid_t display, program;
	int display_no;
	unsigned char xcookie[16];
	int vm_fd;	       /* qemu: STATE_DIR/vms/POOL, vm_user's; -1: none */
	char overlay[600];     /* qemu: the VM's disk, for QEMU (as vm_user) */
	char overlay_name[96]; /* ... its name in vm_fd, for root */
	int keep_overlay;      /* persistent pools keep one per user */
	char qga[600];	       /* qemu: the guest agent's socket, for root */
	int assigned;	       /* a spare VM handed over (drv_qemu.c) */
};

/* What one kind of session does in its monitor.  NULL hooks are skipped. */
struct sd_driver {
	const char *name;
	/* 1: a PAM session of the user's, with the user's groups (a host
	 * account runs it); 0: the process runs as ck.pw with its groups
	 * (initgroups) and no PAM. */
	int pam;
	/* Start it: 0, or -1 with FAILED reported. */
	int (*start)(struct sd_mon *m);
	/* SIGUSR1: the root side handed it to a session (spare VMs); the
	 * driver reports STARTED (as the session) or FAILED.  0, or -1: the
	 * session ends. */
	int (*assign)(struct sd_mon *m);
	/* After a child exited: why the session is over, or NULL. */
	const char *(*ended)(struct sd_mon *m);
	/* At the end, before its processes are killed: a clean shutdown
	 * (a VM's guest agent), waited for a while. */
	void (*stop)(struct sd_mon *m);
	/* At the end, after its processes are gone: its own files. */
	void (*cleanup)(struct sd_mon *m);
	/* An admin's notice for the user (SD_NOTICE_MAX bytes of text), shown
	 * on the session's display: 0, or -1 (logged). */
	int (*notice)(struct sd_mon *m, const char *text);
};

extern const struct sd_driver sd_drv_xvnc, sd_drv_qemu;

/* monitor.c: report STARTED or FAILED to the root side (once); -1 when
 * it could not (EPIPE: the root side that forked this monitor is gone). */
int sd_mon_report(struct sd_mon *m, int op, const char *fmt, ...) PT_PRINTF(3, 4);
/* monitor.c: the last non-empty line of the session's log (why a display
 * failed, in its own words), control characters blanked. */
void sd_mon_log_tail(struct sd_mon *m, char *out, size_t len);

/* spawn.c: run in the child as the user, before exec (files of its own). */
typedef int (*sd_prep_cb)(struct sd_mon *m);
/* spawn.c: start argv as m->ck.pw in a process group of its own, with a
 * clean environment, fd 3 = keep_fd (or none), output to the session's
 * log.  path is the file to exec (NULL: argv[0] looked up in PATH).  The
 * pid, or -errno when it could not be started (the exec's own errno:
 * ENOENT for a missing program). */
pid_t sd_spawn(struct sd_mon *m, const char *path, char *const argv[], int keep_fd,
	       sd_prep_cb prep);
/* spawn.c: sd_spawn and wait for its end; 0 when it exits 0. */
int sd_run_wait(struct sd_mon *m, char *const argv[]);
/* spawn.c: write a file of the session's (as the user, in a prep_cb). */
int sd_write_file(struct sd_mon *m, const char *name, const void *data, size_t len);
/* spawn.c: a free TCP port on addr for a console or a VM's forward, in
 * 5910..6909 (from a place of the calling process's own); -1: none. */
int sd_free_port(const char *addr);

#endif
