/*
 * audit.h - the broker's records in the audit trail ([broker] audit_log,
 * portico/audit.h; each writes nothing when no trail is open).
 */
#ifndef BROKER_AUDIT_H
#define BROKER_AUDIT_H

#include <jansson.h>

#include "store.h"

struct brk_call;

/* A call answered: sign-ins (result, user, address, via which front),
 * sign-outs and refused launches, by the call's route and status. */
void brk_audit_call_done(const struct brk_call *c);
/* A launch or reconnect that got its ticket. */
void brk_audit_launch(const struct brk_call *c, const struct brk_session *s, int reconnect);
/* A ticket redeemed by gateway c (result "success" or "refused"; s NULL
 * when refused) for a client at addr. */
void brk_audit_redeem(const struct brk_call *c, const char *result, const struct brk_session *s,
		      const char *addr);
/* A session ended (whoever ended it: the row changed). */
void brk_audit_session_end(const struct brk_session *s, const char *reason);
/* An admin route's target before its handler runs ({"before": ...}, or
 * NULL when no trail or not an admin's change), then the record with the
 * action, its result and the target after (rec taken).  On the thread
 * pool (the store). */
json_t *brk_audit_admin_before(struct brk_call *c);
void brk_audit_admin_after(struct brk_call *c, json_t *rec);

/* GET /admin/audit (a route's handler). */
void brk_admin_audit(struct brk_call *c);

#endif
