/*
 * audit.c - the gateway's records in the audit trail ([gateway] audit_log,
 * portico/audit.h): each session connection relayed and ended, with the
 * user, the client's address, the protocol (a browser's VNC is "vnc-ws"),
 * the session and its backend, and at the end why and how many bytes.
 * Sign-ins and tickets are the broker's records.
 */
#include "gateway.h"
#include "portico/audit.h"
#include "portico/relay.h"

void gw_audit_conn(const struct gw_conn *c, const char *event, const char *why,
		   const struct pt_relay_stats *st)
{
	json_t *r;

	if (!pt_audit_enabled() || c->login_step)
		return;
	r = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "event", event, "protocol",
		      c->client_ws ? "vnc-ws" : c->proto->name, "user", c->user, "addr", c->peer,
		      "session", (json_int_t)c->session, "backend", c->backend_addr);
	if (r && why)
		json_object_set_new(r, "reason", json_string(why));
	if (r && st) {
		json_object_set_new(r, "bytes_up", json_integer((json_int_t)st->bytes_up));
		json_object_set_new(r, "bytes_down", json_integer((json_int_t)st->bytes_down));
		json_object_set_new(r, "duration_ms",
				    json_integer((json_int_t)(st->end_ms - st->start_ms)));
	}
	pt_audit(r);
}
