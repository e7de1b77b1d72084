/*
 * fuzz_ipc - libFuzzer target for the privilege-separation messages as the
 * root sides read them: one datagram from a network side that may be an
 * attacker's.
 *
 *   make fuzz      builds $(BUILD)-fuzz/fuzz/fuzz_ipc
 *   build-fuzz/fuzz/fuzz_ipc -runs=10000000 WORK tests/fuzz/corpus/fuzz_ipc
 *
 * The first byte says who reads the rest, sent as one datagram on a
 * SOCK_SEQPACKET socketpair (the real transport):
 *   even  portico-sessiond's root side: pt_ipc_recv (lib/ipc.c), then what
 *         root.c does with a request, in its order, short of acting:
 *         sd_check_msg (a violation ends the network side), for a stop the
 *         reason made printable, for a start or a spare VM sd_check_req
 *         (session/checks.c: users, pool, geometry, command, image, with a
 *         configuration whose image_dir exists).  Nothing is forked.
 *   odd   portico-broker's PAM process (broker/authd.c,
 *         brk_authd_run_service with the service pinned as the broker
 *         pins it): it reads the datagram, checks it, and for a good one
 *         would call PAM.  PAM never runs here: this target defines
 *         pam_start, which the static library binds to, records the
 *         request and fails, so authd answers PT_AUTH_ERROR.
 * Properties beyond "no crash": pt_ipc_recv accepts exactly the
 * datagrams of the right size and type whose strings all end inside their
 * arrays (computed here independently); a request the root side accepts
 * satisfies what the checks promise (a valid pool name, a safe user, a
 * geometry in range, an app's command of at most SD_CMD_WORDS words of at
 * most SD_CMD_WORD bytes, no control character); every refusal has a
 * printable reason; authd reaches PAM exactly for well-formed requests for
 * the pinned service, and answers each with its id.
 */
#include <errno.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authd.h"
#include "portico/ipc.h"
#include "portico/log.h"
#include "session.h"

#define SERVICE "portico" /* what portico-broker pins ([broker] pam_service) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Every input makes and frees blocks (jansson's, the requests'): ASan's
 * default 256 MiB quarantine puts each on fresh pages, a page fault each;
 * 16 MiB still keeps a freed block for thousands of inputs. */
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

static struct pt_conf *conf;
static int sess_fd[2] = { -1, -1 };
static char image_dir[64];

/* --- PAM, replaced: authd must not get this far unless the request is good - */

/* authd runs each request's PAM in a child it forks (authd_pam.c): what
 * the replaced pam_start saw lives in memory shared with it. */
static struct pam_seen {
	int reached;
	char service[64], user[256];
} *seen;
#define pam_reached (seen->reached)
#define pam_service (seen->service)
#define pam_user    (seen->user)

int pam_start(const char *service, const char *user, const struct pam_conv *conv,
	      pam_handle_t **pamh)
{
	pam_reached++;
	snprintf(pam_service, sizeof(pam_service), "%s", service);
	snprintf(pam_user, sizeof(pam_user), "%s", user ? user : "");
	*pamh = NULL;
	return PAM_ABORT;
}

static void remove_image_dir(void)
{
	rmdir(image_dir);
}

static void setup(void)
{
	pt_log_init("fuzz", PT_LOG_ERR, 0);
	seen = mmap(NULL, sizeof(*seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (seen == MAP_FAILED)
		abort();
	conf = pt_conf_defaults();
	if (!conf ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sess_fd) == -1)
		abort();
	/* A real image_dir (root's when run as root), so that image paths
	 * below it reach openat2. */
	snprintf(image_dir, sizeof(image_dir), "/tmp/fuzz-ipc-images.%d", (int)getpid());
	if (mkdir(image_dir, 0755) == -1 && errno != EEXIST)
		abort();
	atexit(remove_image_dir);
	free(conf->sessiond.image_dir);
	conf->sessiond.image_dir = strdup(image_dir);
}

static int terminated(const char *a, size_t n)
{
	return memchr(a, '\0', n) != NULL;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* What pt_ipc_recv must accept, worked out without it. */
static int sess_well_formed(const uint8_t *d, size_t n)
{
	struct pt_ipc_sess_req r;

	if (n != sizeof(r))
		return 0;
	memcpy(&r, d, n);
	return r.type == PT_IPC_SESS_REQ && terminated(r.user, sizeof(r.user)) &&
	       terminated(r.pool, sizeof(r.pool)) && terminated(r.command, sizeof(r.command)) &&
	       terminated(r.image, sizeof(r.image)) && terminated(r.geometry, sizeof(r.geometry)) &&
	       terminated(r.reason, sizeof(r.reason));
}

static int auth_well_formed(const uint8_t *d, size_t n)
{
	struct pt_ipc_auth_req r;

	if (n != sizeof(r))
		return 0;
	memcpy(&r, d, n);
	return r.type == PT_IPC_AUTH_REQ && terminated(r.service, sizeof(r.service)) &&
	       terminated(r.user, sizeof(r.user)) && terminated(r.password, sizeof(r.password)) &&
	       terminated(r.rhost, sizeof(r.rhost));
}

/* What the root side's checks promise of a request they accept. */
static void check_accepted(const struct pt_ipc_sess_req *req)
{
	char buf[sizeof(req->command)], *argv[SD_CMD_WORDS + 1];
	int words;

	if (!pt_conf_pool_name_valid(req->pool) ||
	    ((req->op != PT_SESS_SPARE || req->user[0]) && !sd_name_safe(req->user)) ||
	    !sd_text_safe(req->command) || !sd_text_safe(req->image) ||
	    (req->kind != PT_POOL_DESKTOP && req->kind != PT_POOL_APP) ||
	    (req->driver != PT_DRIVER_XVNC && req->driver != PT_DRIVER_QEMU)) {
		fprintf(stderr, "the root side accepted a request its checks refuse\n");
		abort();
	}
	if (req->geometry[0]) {
		unsigned w, h;
		char end;
		if (sscanf(req->geometry, "%4ux%4u%c", &w, &h, &end) != 2 || w < 200 || h < 200 ||
		    w > 8192 || h > 8192)
			abort();
	}
	if (req->driver == PT_DRIVER_XVNC && req->kind == PT_POOL_APP) {
		words = sd_command_split(req->command, buf, sizeof(buf), argv);
		if (words < 1 || words > SD_CMD_WORDS || argv[0][0] != '/')
			abort();
		for (int i = 0; i < words; i++)
			if (strlen(argv[i]) > SD_CMD_WORD)
				abort();
	}
}

static void sessiond_root(const uint8_t *d, size_t n)
{
	struct pt_ipc_sess_req req;
	struct sd_checked *ck;
	const char *why;
	char reason[256], stop_reason[64];
	int good = sess_well_formed(d, n);
	ssize_t got;

	if (send(sess_fd[0], d, n, MSG_NOSIGNAL) != (ssize_t)n)
		return; /* larger than the socket takes: nobody could send it */
	got = pt_ipc_recv(sess_fd[1], &req, sizeof(req), PT_IPC_SESS_REQ);
	if (n == 0 && got == -EPROTO)
		return; /* an empty datagram is malformed too, not a hang-up */
	if ((got == (ssize_t)sizeof(req)) != good) {
		fprintf(stderr, "pt_ipc_recv %s a %s datagram of %zu bytes (%zd)\n",
			good ? "refused" : "accepted", good ? "good" : "bad", n, got);
		abort();
	}
	if (!good)
		return;
	if (sd_check_msg(&req, &why) != 0) {
		if (!why || !printable(why))
			abort();
		return; /* the root side ends the network side */
	}
	if (req.op == PT_SESS_STOP) {
		sd_printable(stop_reason, sizeof(stop_reason), req.reason[0] ? req.reason : "stopped");
		if (!printable(stop_reason))
			abort();
		return;
	}
	ck = malloc(sizeof(*ck));
	if (!ck)
		abort();
	reason[0] = '\0';
	if (sd_check_req(conf, &req, ck, reason, sizeof(reason)) == 0)
		check_accepted(&req);
	else if (!reason[0] || !printable(reason)) {
		fprintf(stderr, "a refusal without a printable reason: '%s'\n", reason);
		abort();
	}
	explicit_bzero(ck, sizeof(*ck));
	free(ck);
}

static void authd(const uint8_t *d, size_t n)
{
	struct pt_ipc_auth_req req;
	struct pt_ipc_auth_rep rep;
	int good = auth_well_formed(d, n), sv[2], rc, answered;

	if (good) {
		memcpy(&req, d, sizeof(req));
		good = !strcmp(req.service, SERVICE);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (send(sv[0], d, n, MSG_NOSIGNAL) != (ssize_t)n) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	shutdown(sv[0], SHUT_WR); /* then the conversation ends */
	pam_reached = 0;
	rc = brk_authd_run_service(sv[1], SERVICE);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	answered = pt_ipc_recv(sv[0], &rep, sizeof(rep), PT_IPC_AUTH_REP) == (ssize_t)sizeof(rep);
	close(sv[0]);
	close(sv[1]);
	if (pam_reached != good || answered != good || (good && rc != 0) ||
	    (!good && n > 0 && rc != 1)) {
		fprintf(stderr, "authd: good=%d pam=%d answered=%d rc=%d (%zu bytes)\n", good,
			pam_reached, answered, rc, n);
		abort();
	}
	if (good && (rep.id != req.id || rep.result != PT_AUTH_ERROR ||
		     strcmp(pam_service, SERVICE) || strcmp(pam_user, req.user)))
		abort();
	explicit_bzero(&req, sizeof(req));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!conf)
		setup();
	if (size < 1 || size > 8192)
		return 0;
	if (data[0] & 1)
		authd(data + 1, size - 1);
	else
		sessiond_root(data + 1, size - 1);
	return 0;
}
