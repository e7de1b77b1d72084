/*
 * authd_pam.c - one request's PAM conversation, in a child of the PAM
 * process (see authd.h).
 *
 * PAM's conversation function is synchronous: a module that asks for a
 * one-time code waits inside pam_authenticate until it has one.  So each
 * request gets a process of its own (forked by authd.c, root like it), and
 * a prompt beyond the password becomes a challenge sent up to authd.c,
 * which relays it to the network side and relays the user's answer back.
 * This process never talks to the network side directly.
 */
#include "authd.h"

#include <errno.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "portico/ipc.h"
#include "portico/log.h"

/* What the conversation and the delay function need (PAM's appdata_ptr). */
struct authd_ctx {
	const struct pt_ipc_auth_req *req;
	pam_handle_t *h;
	int fd;		   /* to authd.c */
	int password_used; /* the first hidden prompt got the password */
	int cancelled;	   /* nobody answers: every further prompt fails at once */
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

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A visible prompt for the user name ("login:", or the service's
 * PAM_USER_PROMPT): we were given the name, so we answer it. */
static int authd_user_prompt(struct authd_ctx *c, const char *prompt)
{
	const void *item = NULL;
	size_t n = strlen(prompt);

	while (n > 0 && prompt[n - 1] == ' ')
		n--;
	if (pam_get_item(c->h, PAM_USER_PROMPT, &item) == PAM_SUCCESS && item) {
		size_t m = strlen(item);
		while (m > 0 && ((const char *)item)[m - 1] == ' ')
			m--;
		if (m == n && strncmp(item, prompt, n) == 0)
			return 1;
	}
	return (n == 6 && !strncasecmp(prompt, "login:", 6)) ||
	       (n == 9 && !strncasecmp(prompt, "username:", 9));
}

/* Ask the user through authd.c and wait for the answer, at most
 * PT_AUTH_ANSWER_MS.  A malloc'd answer, or NULL (cancelled, late, authd
 * gone: the conversation fails). */
static char *authd_challenge(struct authd_ctx *c, const char *prompt, int echo)
{
	static const uint32_t types[] = { PT_IPC_AUTH_ANSWER, PT_IPC_AUTH_CANCEL };
	struct pt_ipc_auth_chal chal = { .type = PT_IPC_AUTH_CHAL, .id = c->req->id, .echo = echo };
	union {
		struct pt_ipc_auth_answer a;
		struct pt_ipc_auth_cancel x;
	} in;
	int64_t until = mono_ms() + PT_AUTH_ANSWER_MS, left;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	char *answer = NULL;
	ssize_t n;
	int rc;

	if (c->cancelled)
		return NULL;
	snprintf(chal.prompt, sizeof(chal.prompt), "%s", prompt);
	if (pt_ipc_send(c->fd, &chal, sizeof(chal)) < 0)
		goto cancel;
	for (;;) {
		left = until - mono_ms();
		if (left <= 0) {
			pt_log_warnx("authd: request %u: no answer to PAM's question within %d s",
				     c->req->id, PT_AUTH_ANSWER_MS / 1000);
			goto cancel;
		}
		rc = poll(&p, 1, (int)left);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			goto cancel;
		if (rc == 0)
			continue;
		n = pt_ipc_recv_any(c->fd, &in, sizeof(in), types, 2);
		if (n == -EAGAIN || n == -EINTR)
			continue;
		if (n <= 0)
			goto cancel;
		/* authd.c sends this process only its own request's answers. */
		if (in.a.type != PT_IPC_AUTH_ANSWER || in.a.id != c->req->id)
			goto cancel;
		answer = strdup(in.a.answer);
		explicit_bzero(&in, sizeof(in));
		if (!answer)
			goto cancel;
		return answer;
	}
cancel:
	explicit_bzero(&in, sizeof(in));
	c->cancelled = 1;
	return NULL;
}

/* The password answers the first hidden prompt and the user name the login
 * prompt; informational messages are dropped (they are for a terminal we
 * do not have); any other prompt (a one-time code) is a challenge for the
 * user, relayed by authd.c. */
static int authd_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *arg)
{
	struct authd_ctx *c = arg;
	struct pam_response *r;
	const char *prompt;
	int style;

	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc(n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		style = msg[i]->msg_style;
		prompt = msg[i]->msg ? msg[i]->msg : "";
		switch (style) {
		case PAM_PROMPT_ECHO_OFF:
			if (!c->password_used) {
				c->password_used = 1;
				r[i].resp = strdup(c->req->password);
			} else {
				r[i].resp = authd_challenge(c, prompt, 0);
			}
			break;
		case PAM_PROMPT_ECHO_ON:
			if (authd_user_prompt(c, prompt))
				r[i].resp = strdup(c->req->user);
			else
				r[i].resp = authd_challenge(c, prompt, 1);
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			continue;
		default:
			goto fail;
		}
		if (!r[i].resp)
			goto fail;
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	authd_free_resp(r, n);
	return PAM_CONV_ERR;
}

/* PAM_FAIL_DELAY: libpam calls this instead of sleeping.  The network side
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

static void authd_check(struct authd_ctx *c, struct pt_ipc_auth_rep *rep)
{
	const struct pt_ipc_auth_req *req = c->req;
	struct pam_conv conv = { authd_conv, c };
	pam_handle_t *h = NULL;
	const char *what = "pam_start";
	const void *item = NULL;
	int rc;

	rep->result = PT_AUTH_ERROR;
	brk_authd_start_lock(1);
	rc = pam_start(req->service, req->user, &conv, &h);
	brk_authd_start_lock(0);
	if (rc != PAM_SUCCESS) {
		h = NULL;
		goto fail;
	}
	c->h = h;
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
		rep->fail_delay_ms = c->delay_ms;
		/* A question nobody answered is a "no" too, not PAM failing. */
		if (authd_denied(rc) || (c->cancelled && rc == PAM_CONV_ERR)) {
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

int brk_authd_pam(int fd, const struct pt_ipc_auth_req *req)
{
	struct authd_ctx c = { .req = req, .fd = fd };
	struct pt_ipc_auth_rep rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rep.type = PT_IPC_AUTH_REP;
	rep.id = req->id;
	authd_check(&c, &rep);
	rc = pt_ipc_send(fd, &rep, sizeof(rep));
	return rc < 0 ? 1 : 0;
}
