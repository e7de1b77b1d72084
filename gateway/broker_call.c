/* broker_call.c - the gateway's calls to the broker (see gateway.h):
 * libcurl on the thread pool, answers on the loop. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "gateway.h"
#include "portico/log.h"

struct call {
	uv_work_t work;
	struct gw *g;
	char path[64];
	json_t *body;
	struct gw_fwd *fwd; /* or a user's request, passed on */
	struct pt_api_resp resp;
	int rc;
	char err[2048]; /* every broker of the list tried, and why */
	gw_call_cb cb;
	void *arg;
};

int64_t gw_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void call_work(uv_work_t *w)
{
	struct call *c = w->data;
	struct gw_fwd *f = c->fwd;

	if (f) {
		struct pt_api_fwd x = { { f->headers[0], f->headers[1], f->headers[2],
					  f->headers[3] } };
		c->rc = pt_api_forward(&c->g->api, f->method, f->path, f->body, f->len, &x,
				       &c->resp, c->err, sizeof(c->err));
		return;
	}
	c->rc = pt_api_call(&c->g->api, "POST", c->path, c->body, &c->resp, c->err, sizeof(c->err));
}

void gw_fwd_free(struct gw_fwd *f)
{
	if (!f)
		return;
	if (f->body) /* a login's password */
		explicit_bzero(f->body, f->len);
	free(f->body);
	for (size_t i = 0; i < sizeof(f->headers) / sizeof(f->headers[0]); i++) {
		if (f->headers[i]) /* a user's token */
			explicit_bzero(f->headers[i], strlen(f->headers[i]));
		free(f->headers[i]);
	}
	free(f);
}

static void call_done(uv_work_t *w, int status)
{
	struct call *c = w->data;
	json_t *pw = json_object_get(c->body, "password");

	c->g->works--;
	if (c->cb)
		c->cb(c->arg, c->rc, &c->resp, c->err);
	/* A user's password (authorize): jansson frees its copy unwiped. */
	if (json_is_string(pw))
		explicit_bzero((char *)json_string_value(pw), json_string_length(pw));
	json_decref(c->body);
	gw_fwd_free(c->fwd);
	pt_api_resp_free(&c->resp);
	free(c);
}

static int queue(struct gw *g, struct call *c)
{
	c->g = g;
	c->work.data = c;
	if (uv_queue_work(g->loop, &c->work, call_work, call_done) != 0)
		return -1;
	g->works++;
	return 0;
}

int gw_forward(struct gw *g, struct gw_fwd *f, gw_call_cb cb, void *arg)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c || !f) {
		gw_fwd_free(f);
		free(c);
		return -1;
	}
	c->fwd = f;
	c->cb = cb;
	c->arg = arg;
	if (queue(g, c)) {
		gw_fwd_free(f);
		free(c);
		return -1;
	}
	return 0;
}

int gw_call(struct gw *g, const char *path, json_t *body, gw_call_cb cb, void *arg)
{
	struct call *c;

	if (g->call)
		return g->call(g, path, body, cb, arg);
	c = calloc(1, sizeof(*c));

	if (!c || !body) {
		json_decref(body);
		free(c);
		return -1;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->body = body;
	c->cb = cb;
	c->arg = arg;
	if (queue(g, c)) {
		json_decref(body);
		free(c);
		return -1;
	}
	return 0;
}

static void event_done(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	char msg[200];

	/* Said, not lost silently: the broker's session list is wrong until
	 * the session host's next report. */
	if (rc)
		pt_log_warnx("cannot report to the broker: %s", err);
	else if (resp->status != 200 && resp->status != 404)
		pt_log_warnx("the broker refused an event: %s",
			     pt_api_message(resp, msg, sizeof(msg)));
}

void gw_event(struct gw *g, int64_t session_id, const char *event, int64_t at_ms, uint64_t bytes_up,
	      uint64_t bytes_down)
{
	if (gw_call(g, "/api/v1/gateway/events",
		    json_pack("{s:I,s:s,s:I,s:I,s:I}", "session_id", (json_int_t)session_id,
			      "event", event, "at_ms", (json_int_t)at_ms, "bytes_up",
			      (json_int_t)bytes_up, "bytes_down", (json_int_t)bytes_down),
		    event_done, NULL))
		pt_log_warnx("session %lld: cannot report '%s' to the broker (out of memory)",
			     (long long)session_id, event);
}
