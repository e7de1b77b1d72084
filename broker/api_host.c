/*
 * api_host.c - the session hosts' routes (docs/api.md, "sessiond ->
 * broker"): register, heartbeat, and sessions that ended on their own.
 * Only a session host's credential reaches these handlers (api.c,
 * admit()), and a host's certificate speaks only for the host it names.
 * What the broker does with a host's report is hosts.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "portico/urls.h"
#include "portico/log.h"

/* A session host's certificate speaks only for the host its CN names; the
 * shared host_secret names no host, and speaks for any. */
static int speaks_for(struct brk_call *c, const char *name)
{
	if (!c->node[0] || !strcmp(c->node, name))
		return 1;
	pt_log_warnx("session host %s (%s) tried to speak for host %s: refused", c->node,
		     c->req->peer, name);
	brk_call_fail(c, -EPERM, "forbidden", "your certificate is host %s's, not %s's", c->node,
		      name);
	return 0;
}

/* The errno for a status hosts.c answers with. */
static int status_err(int status)
{
	return status == 400 ? -EINVAL : status == 503 ? -ENOMEM : -EIO;
}

void brk_host_hello(struct brk_call *c)
{
	const char *name = brk_call_str(c, "name"), *address = brk_call_str(c, "address");
	json_t *sessions = json_object_get(c->in, "sessions"), *none = NULL, *out, *starting;
	char msg[300];
	int rc, status = 500;

	if (!name || !brk_name_ok(name, 127)) {
		brk_call_fail(c, -EINVAL, "bad_request", "name is required");
		return;
	}
	if (!speaks_for(c, name))
		return;
	if (sessions && !json_is_array(sessions)) {
		brk_call_fail(c, -EINVAL, "bad_request", "sessions must be a list");
		return;
	}
	if (c->route->op == BRK_OP_REGISTER) {
		/* One URL, as the API client will read it (a comma would make
		 * it a list of hosts to try). */
		struct pt_urls u;
		char why[300];
		if (!address || strlen(address) > 255 || pt_urls_parse(address, &u, why, sizeof(why)) ||
		    u.n != 1) {
			brk_call_fail(c, -EINVAL, "bad_request",
				      "address is required: one https://host:port of the agent");
			return;
		}
		rc = brk_store_host_register(c->b->store, name, address, brk_now_ms());
		if (rc == 0)
			pt_log(PT_LOG_INFO, c->req->id, "session host %s registered at %s", name,
			       address);
	} else {
		rc = brk_store_host_heartbeat(
			c->b->store, name, json_number_value(json_object_get(c->in, "load")),
			json_integer_value(json_object_get(c->in, "mem_free_kb")), brk_now_ms());
	}
	if (rc == -ENOENT) {
		brk_call_fail(c, -ENOENT, "no_such_host", "host %s has not registered", name);
		return;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	if (!sessions)
		sessions = none = json_array();
	/* A host that says what it is starting (older ones do not). */
	starting = json_object_get(c->in, "starting");
	out = brk_host_reconcile(c->b, name, sessions, json_is_array(starting) ? starting : NULL,
				 &status, msg, sizeof(msg));
	json_decref(none);
	if (!out) {
		brk_call_fail(c, status_err(status), status == 400 ? "bad_request" : "internal",
			      "%s", msg);
		return;
	}
	brk_call_ok(c, 200, out);
}

/* A session ended on its own (the app exited, the user logged out of the
 * desktop, the VM powered off). */
void brk_host_events(struct brk_call *c)
{
	const char *name = brk_call_str(c, "name"), *ev = brk_call_str(c, "event");
	const char *reason = brk_call_str(c, "reason");
	json_t *id = json_object_get(c->in, "session_id");
	struct brk_session s;
	char why[64];
	int rc;

	if (!name || !json_is_integer(id) || !ev || strcmp(ev, "ended")) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "name, session_id and event (ended) are required");
		return;
	}
	if (!speaks_for(c, name))
		return;
	rc = brk_store_session_get(c->b->store, json_integer_value(id), &s);
	if (rc == -ENOENT || (rc == 0 && strcmp(s.host, name))) {
		brk_call_fail(c, -ENOENT, "no_such_session", "no session %lld on %s",
			      (long long)json_integer_value(id), name);
		return;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	/* Printable only: it is shown to admins and users. */
	snprintf(why, sizeof(why), "%s", reason && *reason ? reason : "ended on the session host");
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	rc = brk_store_session_end(c->b->store, s.id, why, brk_now_ms(), NULL);
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	if (s.state != BRK_ENDED)
		pt_log(PT_LOG_INFO, c->req->id, "session %lld of %s on %s ended: %s",
		       (long long)s.id, s.user, name, why);
	brk_call_ok(c, 200, NULL);
}
