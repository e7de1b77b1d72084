/*
 * fuzz_rdp_login - the RDP login step's parameters as the gateway reads
 * them (gateway/rdp_login_proc.c): the one question a login process sends
 * (an untrusted process facing an unauthenticated client: gateway.h has
 * the message), and the broker's answer the gateway turns into the
 * process's answer.
 *
 * Input: byte 0 picks what the rest is.
 *   even   a login process's question (the JSON text of one message)
 *   odd    the broker's answer to gateway/authorize: byte 1 picks the HTTP
 *          status (or unreachable), the rest is its body
 *
 * Checked besides no crash, no leak, no undefined behaviour:
 *   - a question taken becomes a body with exactly the user name and
 *     password asked, the client's address as the gateway knows it (never
 *     the process's say), and the domain as the pool when the user name
 *     names none; anything else in the question refuses it;
 *   - the process's own form of the question (rdp_login.c's json_pack with
 *     the fields taken) is taken again the same way (round trip);
 *   - an answer is either {"ticket","user","session_id"} with a valid
 *     ticket, only for status 200 and protocol "rdp", or {"refused": one
 *     of credentials, unavailable, denied}, and fits GW_LOGIN_ANSWER_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ticket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER "203.0.113.9"

static void check_body(json_t *body, const char *u, const char *p, const char *d)
{
	const char *pool = json_string_value(json_object_get(body, "pool"));
	int want_pool = *d && !strchr(u, '#');

	if (strcmp(json_string_value(json_object_get(body, "username")) ?: "", u) ||
	    strcmp(json_string_value(json_object_get(body, "password")) ?: "", p) ||
	    strcmp(json_string_value(json_object_get(body, "client_addr")) ?: "", PEER) ||
	    json_object_size(body) != (size_t)(3 + want_pool) ||
	    (want_pool && (!pool || strcmp(pool, d))))
		abort();
}

static void question(const uint8_t *data, size_t size)
{
	char user[GW_LOGIN_FIELD_MAX + 1];
	const char *why;
	json_t *q, *body, *again;
	char *text;

	if (size > GW_LOGIN_ASK_MAX)
		return; /* on_ask refuses it by its size before reading it */
	body = gw_login_question((const char *)data, size, PEER, user, sizeof(user), &why);
	if (!body) {
		if (!why)
			abort();
		return;
	}
	/* What the question said, read independently. */
	q = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const char *u = json_string_value(json_object_get(q, "username"));
	const char *d = json_string_value(json_object_get(q, "domain"));
	const char *p = json_string_value(json_object_get(body, "password"));
	if (!q || !u || !d || !p || !*u || !*p || strlen(u) > GW_LOGIN_FIELD_MAX ||
	    strlen(p) > GW_LOGIN_FIELD_MAX || strlen(d) > GW_LOGIN_FIELD_MAX || strcmp(user, u))
		abort();
	check_body(body, u, p, d);
	/* The process's own form of the same question is taken the same way. */
	again = json_pack("{s:s,s:s,s:s}", "username", u, "password", p, "domain", d);
	text = again ? json_dumps(again, JSON_COMPACT) : NULL;
	if (text && strlen(text) <= GW_LOGIN_ASK_MAX) {
		json_t *b2 = gw_login_question(text, strlen(text), PEER, user, sizeof(user), &why);
		if (!b2)
			abort();
		check_body(b2, u, p, d);
		json_decref(b2);
	}
	free(text);
	json_decref(again);
	json_decref(q);
	json_decref(body);
}

static void answer(const uint8_t *data, size_t size)
{
	static const int statuses[8] = { 200, 200, 200, 401, 403, 429, 503, 500 };
	struct pt_api_resp resp = { 0 };
	char why[300] = "";
	int rc = 0;
	json_t *a;
	char *text;

	if (size < 1)
		return;
	rc = data[0] == 0xff ? -1 : 0;
	resp.status = statuses[data[0] & 7];
	resp.json = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	a = gw_login_answer(rc, rc ? NULL : &resp, why, sizeof(why));
	if (!a)
		abort();
	text = json_dumps(a, JSON_COMPACT);
	const char *refused = json_string_value(json_object_get(a, "refused"));
	const char *ticket = json_string_value(json_object_get(a, "ticket"));
	if (!text || strlen(text) > GW_LOGIN_ANSWER_MAX)
		abort();
	if (refused) {
		if (json_object_size(a) != 1 || !*why ||
		    (strcmp(refused, "credentials") && strcmp(refused, "unavailable") &&
		     strcmp(refused, "denied")))
			abort();
	} else if (rc || resp.status != 200 || !ticket || !pt_ticket_valid(ticket) ||
		   json_object_size(a) != 3 ||
		   strcmp(json_string_value(json_object_get(resp.json, "protocol")) ?: "", "rdp")) {
		abort();
	}
	free(text);
	json_decref(a);
	json_decref(resp.json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;

	if (!init) {
		pt_log_init("fuzz", PT_LOG_ERR, 0);
		init = 1;
	}
	if (size < 1)
		return 0;
	if (data[0] & 1)
		answer(data + 1, size - 1);
	else
		question(data + 1, size - 1);
	return 0;
}
