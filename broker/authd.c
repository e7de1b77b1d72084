/*
 * authd.c - the broker's PAM process (see authd.h).
 *
 * This file runs as root and reads what a network-facing process sends it,
 * so it stays small: one loop, one PAM handle per request, no state kept
 * between requests.  Modelled on OpenSMTPD's parent_auth_pam.
 */
#include "authd.h"

#include <errno.h>
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/ipc.h"
#include "portico/log.h"

/* What the conversation and the delay function need (PAM's appdata_ptr). */
struct authd_ctx {
	const char *user;
	const char *password;
	uint32_t delay_ms;
};

static void authd_free_resp(struct pam_response *r, int n)
{
	for (int i = 0; i < n; i++) {
		if (r[i].resp) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
}

/* There is nobody to talk to: the password and user name we were given are
 * the only answers; informational messages are dropped (they are for a
 * terminal we do not have), and anything else fails the conversation. */
static int authd_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *arg)
{
	struct authd_ctx *c = arg;
	struct pam_response *r;
	const char *answer;

	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc(n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			answer = c->password;
			break;
		case PAM_PROMPT_ECHO_ON:
			answer = c->user;
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			continue;
		default:
			goto fail;
		}
		r[i].resp = strdup(answer);
		if (!r[i].resp)
			goto fail;
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	authd_free_resp(r, n);
	return PAM_CONV_ERR;
}

/* PAM_FAIL_DELAY: libpam calls this instead of sleeping.  Sleeping here
 * would hold every other login up behind this one, and the network side
 * makes all failures take the same time anyway; we only report. */
static void authd_delay(int status, unsigned int usec, void *arg)
{
	struct authd_ctx *c = arg;

	/* libpam calls this after successes too (with the delay a module set
	 * up front, as pam_unix does); only a failure's delay counts. */
	if (status != PAM_SUCCESS)
		c->delay_ms = (uint32_t)((usec + 999u) / 1000u);
}

/* Answers that mean "no" for this user; every other code is PAM failing. */
static int authd_denied(int rc)
{
	switch (rc) {
	case PAM_AUTH_ERR:
	case PAM_USER_UNKNOWN:
	case PAM_MAXTRIES:
	case PAM_CRED_INSUFFICIENT:
	case PAM_PERM_DENIED:
	case PAM_ACCT_EXPIRED:
	case PAM_NEW_AUTHTOK_REQD:
	case PAM_AUTHTOK_EXPIRED:
		return 1;
	default:
		return 0;
	}
}

static void authd_check(const struct pt_ipc_auth_req *req, struct pt_ipc_auth_rep *rep)
{
	struct authd_ctx c = { .user = req->user, .password = req->password };
	struct pam_conv conv = { authd_conv, &c };
	pam_handle_t *h = NULL;
	const char *what = "pam_start";
	const void *item = NULL;
	int rc;

	rep->result = PT_AUTH_ERROR;
	rc = pam_start(req->service, req->user, &conv, &h);
	if (rc != PAM_SUCCESS) {
		h = NULL;
		goto fail;
	}
	what = "pam_set_item";
	rc = pam_set_item(h, PAM_RHOST, req->rhost);
	if (rc == PAM_SUCCESS)
		rc = pam_set_item(h, PAM_FAIL_DELAY, (const void *)authd_delay);
	if (rc != PAM_SUCCESS)
		goto fail;
	what = "pam_authenticate";
	rc = pam_authenticate(h, PAM_DISALLOW_NULL_AUTHTOK);
	if (rc == PAM_SUCCESS) {
		what = "pam_acct_mgmt";
		rc = pam_acct_mgmt(h, 0);
	}
	if (rc != PAM_SUCCESS) {
		rep->fail_delay_ms = c.delay_ms;
		if (authd_denied(rc)) {
			rep->result = PT_AUTH_DENIED;
			goto done;
		}
		goto fail;
	}
	/* A module may have mapped the name (case, aliases, a realm): the
	 * account that logs in is the one PAM ends up with. */
	what = "pam_get_item(PAM_USER)";
	rc = pam_get_item(h, PAM_USER, &item);
	if (rc == PAM_SUCCESS &&
	    (!item || !*(const char *)item || strlen(item) >= sizeof(rep->user)))
		rc = PAM_BAD_ITEM;
	if (rc != PAM_SUCCESS)
		goto fail;
	memcpy(rep->user, item, strlen(item) + 1);
	rep->result = PT_AUTH_OK;
	goto done;
fail:
	pt_log_warnx("authd: request %u, service %s: %s: %s", req->id, req->service, what,
		     pam_strerror(h, rc));
done:
	if (h)
		pam_end(h, rc);
}

/* The network side only ever sends the one service in its configuration;
 * an empty name or a path means it is no longer the program we started. */
static const char *authd_bad_service(const char *s, const char *pinned)
{
	if (!*s || *s == '.' || strchr(s, '/'))
		return "bad PAM service name";
	if (pinned && strcmp(s, pinned) != 0)
		return "PAM service not allowed";
	return NULL;
}

int brk_authd_run_service(int fd, const char *service)
{
	struct pt_ipc_auth_req req;
	struct pt_ipc_auth_rep rep;
	const char *why;
	ssize_t n;
	int rc;

	for (;;) {
		n = pt_ipc_recv(fd, &req, sizeof(req), PT_IPC_AUTH_REQ);
		if (n == 0)
			return 0;
		if (n == -EPROTO) {
			pt_log_warnx("authd: malformed message from the net side (%s)",
				     pt_ipc_error());
			return 1;
		}
		if (n < 0) {
			errno = (int)-n;
			pt_log_warn("authd: cannot read from the net side");
			return 1;
		}
		why = authd_bad_service(req.service, service);
		if (why) {
			explicit_bzero(&req, sizeof(req));
			pt_log_warnx("authd: malformed message from the net side (%s)", why);
			return 1;
		}
		memset(&rep, 0, sizeof(rep));
		rep.type = PT_IPC_AUTH_REP;
		rep.id = req.id;
		authd_check(&req, &rep);
		explicit_bzero(&req, sizeof(req));
		rc = pt_ipc_send(fd, &rep, sizeof(rep));
		/* A net side that died between asking and hearing the answer
		 * is the caller's to notice (waitpid), like a plain EOF. */
		if (rc == -EPIPE || rc == -ECONNRESET)
			return 0;
		if (rc < 0) {
			errno = -rc;
			pt_log_warn("authd: cannot answer the net side");
			return 1;
		}
	}
}

int brk_authd_run(int fd)
{
	return brk_authd_run_service(fd, NULL);
}
