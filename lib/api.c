/*
 * api.c - HTTPS client for Portico's APIs, on libcurl (see api.h).
 */
#include "portico/api.h"

#include "portico/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static pthread_key_t curl_key;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_thread_free(void *p)
{
	curl_easy_cleanup(p);
}

static void curl_key_init(void)
{
	pthread_key_create(&curl_key, curl_thread_free);
}

int pt_api_global_init(void)
{
	pthread_once(&curl_once, curl_key_init);
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* This thread's handle, reset between calls; reset keeps its connections. */
static CURL *thread_curl(void)
{
	CURL *h;

	pthread_once(&curl_once, curl_key_init);
	h = pthread_getspecific(curl_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h)
		pthread_setspecific(curl_key, h);
	return h;
}

void pt_api_conf_tls(struct pt_api_conf *c, const struct pt_tls_conf *tls)
{
	c->ca = tls->ca && *tls->ca ? tls->ca : NULL;
	c->cert = tls->cert;
	c->key = tls->key;
}

static int slurp(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < 1 << 20 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		fclose(f);
		*out = buf;
		*len = (size_t)n;
		return 0;
	}
	free(buf);
	fclose(f);
	return -EIO;
}

int pt_api_conf_load_identity(struct pt_api_conf *c)
{
	int rc;

	if (!c->cert || !c->key || access(c->cert, F_OK) || access(c->key, F_OK))
		return 0;
	rc = slurp(c->cert, &c->cert_pem, &c->cert_len);
	if (rc == 0 && (rc = slurp(c->key, &c->key_pem, &c->key_len)) != 0) {
		free(c->cert_pem);
		c->cert_pem = NULL;
	}
	return rc;
}

struct sink {
	struct pt_api_resp *r;
	size_t cap;
	int too_long;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	if (s->r->len + len > PT_API_BODY_MAX) {
		s->too_long = 1;
		return 0;
	}
	if (s->r->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->r->len + len + 1)
			cap *= 2;
		char *b = realloc(s->r->body, cap);
		if (!b)
			return 0;
		s->r->body = b;
		s->cap = cap;
	}
	memcpy(s->r->body + s->r->len, p, len);
	s->r->len += len;
	s->r->body[s->r->len] = '\0';
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct pt_api_resp *r = arg;
	size_t len = size * n;

	char *to = NULL;
	size_t cap = 0;

	if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		p += 13, len -= 13, to = r->ctype, cap = sizeof(r->ctype);
	} else if (len > 20 && !strncasecmp(p, "Content-Disposition:", 20)) {
		p += 20, len -= 20, to = r->disposition, cap = sizeof(r->disposition);
	}
	if (to) {
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
			len--;
		if (len >= cap)
			len = cap - 1;
		memcpy(to, p, len);
		to[len] = '\0';
	}
	return size * n;
}

static int readable(const char *path)
{
	return path && *path && access(path, R_OK) == 0;
}

/* --- several URLs ----------------------------------------------------------
 *
 * When may a request go to the next broker?
 *  - Nothing of it was sent (connection refused, host unreachable, TLS
 *    handshake or certificate failure, connect timeout): always; no broker
 *    saw it.  "Nothing sent" is libcurl's own count of request bytes it
 *    wrote (CURLINFO_REQUEST_SIZE, 0), whatever the error code says.
 *  - A 503: the broker says it cannot serve now (its database is down,
 *    no capacity, busy) and has done nothing for the request.  Brokers
 *    that share a database may give the same 503; the caller then gets the
 *    last of them, whose message it shows.
 *  - Sent, no answer (read timeout, reset or close after the request): the
 *    broker may have carried it out.  GET, PUT, DELETE (and HEAD,
 *    OPTIONS) are idempotent in HTTP and in Portico's API (PUT sets a
 *    pool to what is sent; DELETE of what is gone answers 404), so they go
 *    on.  POST (and PATCH) do not: a launch, a login, a ticket redeemed, an
 *    event reported could happen twice, so the call fails naming that
 *    broker, and the caller (a user, the gateway's next login, the
 *    session host's next heartbeat) decides whether to try again.
 * Any other answer (2xx, 4xx, other 5xx) is the broker's word and ends the
 * call.  One time budget (timeout_ms) covers every URL tried. */

enum outcome {
	ANSWERED,  /* any status but 503: this server serves */
	BUSY,	   /* 503 */
	NOT_SENT,  /* no byte of the request left this process */
	NO_ANSWER, /* the request went out (or part of it), no answer came */
	STOP,	   /* what no other server would mend (an answer too long) */
};

/* The URL of each list that answered last, process-wide, so that a dead
 * first broker costs one failed connection when it dies, not one per
 * call.  Lists are few (a daemon has one; the broker's calls to session
 * hosts have one URL each and need no entry): a small table, kept for the
 * process's life. */
#define PREF_MAX 32
static struct pref {
	char *base;
	atomic_uint at;
} prefs[PREF_MAX];
static size_t nprefs;
static pthread_mutex_t pref_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_uint *pref_of(const char *base)
{
	atomic_uint *at = NULL;
	size_t i;

	pthread_mutex_lock(&pref_lock);
	for (i = 0; i < nprefs && !at; i++)
		if (!strcmp(prefs[i].base, base))
			at = &prefs[i].at;
	if (!at && nprefs < PREF_MAX && (prefs[nprefs].base = strdup(base)) != NULL) {
		atomic_init(&prefs[nprefs].at, 0);
		at = &prefs[nprefs++].at;
	}
	pthread_mutex_unlock(&pref_lock);
	return at;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One call across the URLs of its list. */
struct call {
	const struct pt_api_conf *c;
	CURL *h;
	const char *path;
	int idempotent;
	int64_t deadline;
	struct pt_api_resp *r;	   /* the caller's: the answer, or the last 503 */
	int answered, busy, other; /* what came: an answer, a 503, a failure */
	int unsafe;		   /* a POST went out unanswered: nowhere else */
	char *err;
	size_t errlen, eo;
	char primary[64]; /* the address the last attempt connected to */
};

/* "URL[ (ADDR)]: WHY" onto the call's error, "; " between. */
static void note(struct call *k, const struct pt_url *u, const char *addr, const char *why)
{
	int n;

	if (k->eo >= k->errlen)
		return;
	n = snprintf(k->err + k->eo, k->errlen - k->eo, "%s%.*s%s%s%s: %s", k->eo ? "; " : "",
		     (int)u->len, u->s, addr ? " (" : "", addr ? addr : "", addr ? ")" : "", why);
	k->eo += n > 0 ? (size_t)n : 0;
}

/* One request to one URL; at addr when set (the URL's host name pinned to
 * that address with CURLOPT_CONNECT_TO: TLS still checks the certificate
 * against the name).  r is this attempt's answer. */
static enum outcome try_one(struct call *k, const struct pt_url *u, const char *addr,
			    struct pt_api_resp *r, char *why, size_t whylen)
{
	char url[PT_URLS_LEN + 1024], pin[600], curl_err[CURL_ERROR_SIZE] = "", msg[200];
	struct curl_slist to = { pin, NULL };
	struct sink sink = { .r = r };
	int64_t left = k->deadline - now_ms();
	long status = 0, sent = 0, oserr = 0;
	const char *text, *es;
	char *ip = NULL, eb[128];
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	k->primary[0] = '\0';
	if (left <= 0) {
		snprintf(why, whylen, "not tried: the call's %ld ms were up",
			 k->c->timeout_ms > 0 ? k->c->timeout_ms : 15000L);
		return NOT_SENT;
	}
	if (snprintf(url, sizeof(url), "%.*s%s", (int)u->len, u->s, k->path) >= (int)sizeof(url)) {
		snprintf(why, whylen, "URL too long");
		return STOP;
	}
	curl_easy_setopt(k->h, CURLOPT_URL, url);
	if (addr) {
		snprintf(pin, sizeof(pin), strchr(addr, ':') ? "%s:%d:[%s]:%d" : "%s:%d:%s:%d",
			 u->host, u->port, addr, u->port);
		curl_easy_setopt(k->h, CURLOPT_CONNECT_TO, &to);
	}
	curl_easy_setopt(k->h, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(k->h, CURLOPT_CONNECTTIMEOUT_MS, left < 5000 ? (long)left : 5000L);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(k->h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(k->h, CURLOPT_HEADERDATA, r);
	cc = curl_easy_perform(k->h);
	/* Nothing of this attempt may stay pointed at. */
	curl_easy_setopt(k->h, CURLOPT_CONNECT_TO, NULL);
	curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, NULL);
	if (curl_easy_getinfo(k->h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip)
		snprintf(k->primary, sizeof(k->primary), "%s", ip);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &status);
		r->status = (int)status;
		if (r->body && !strncasecmp(r->ctype, "application/json", 16))
			r->json = json_loadb(r->body, r->len, 0, NULL);
		if (status != 503)
			return ANSWERED;
		pt_api_message(r, msg, sizeof(msg));
		if (!strcmp(msg, "HTTP 503"))
			snprintf(why, whylen, "HTTP 503");
		else
			snprintf(why, whylen, "HTTP 503 (%s)", msg);
		return BUSY;
	}
	if (sink.too_long) {
		snprintf(why, whylen, "answer longer than %d bytes", PT_API_BODY_MAX);
		return STOP;
	}
	/* libcurl's words ("Failed to connect to h port p after 0 ms: Couldn't
	 * connect to server") and the system's, when they are not in them */
	text = curl_err[0] ? curl_err : curl_easy_strerror(cc);
	if (curl_easy_getinfo(k->h, CURLINFO_OS_ERRNO, &oserr) != CURLE_OK || oserr <= 0 ||
	    strstr(text, (es = strerror_r((int)oserr, eb, sizeof(eb)))))
		snprintf(why, whylen, "%s", text);
	else
		snprintf(why, whylen, "%s (%s)", text, es);
	if (curl_easy_getinfo(k->h, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK)
		sent = 1; /* not known: as if sent */
	return sent == 0 ? NOT_SENT : NO_ANSWER;
}

/* Take what one attempt brought; 1 when the call is over. */
static int settle(struct call *k, enum outcome o, const struct pt_url *u, const char *addr,
		  struct pt_api_resp *r, const char *why)
{
	switch (o) {
	case ANSWERED:
		pt_api_resp_free(k->r);
		*k->r = *r;
		k->answered = 1;
		return 1;
	case BUSY:
		/* kept: when every one says 503, the caller shows the last */
		pt_api_resp_free(k->r);
		*k->r = *r;
		k->busy = 1;
		note(k, u, addr, why);
		return 0;
	case NOT_SENT:
	case NO_ANSWER:
	case STOP:
		pt_api_resp_free(r);
		k->other = 1;
		note(k, u, addr, why);
		if (o == NO_ANSWER && !k->idempotent) {
			k->unsafe = 1;
			return 1;
		}
		return o == STOP;
	}
	return 1;
}

/* After a 503 from a host name: its other addresses, each in turn (libcurl
 * moves to the next address only when one cannot be reached). */
#define ADDRS_MAX 8
static int try_addresses(struct call *k, const struct pt_url *u)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char addrs[ADDRS_MAX][INET6_ADDRSTRLEN], port[8], why[CURL_ERROR_SIZE + 64];
	struct pt_api_resp r;
	size_t n = 0, i;
	enum outcome o;

	snprintf(port, sizeof(port), "%d", u->port);
	if (getaddrinfo(u->host, port, &hints, &res) != 0)
		return 0;
	for (ai = res; ai && n < ADDRS_MAX; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN + 16];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, a, sizeof(a), NULL, 0,
				NI_NUMERICHOST) != 0 ||
		    strchr(a, '%') || strlen(a) >= sizeof(addrs[0]) || !strcmp(a, k->primary))
			continue;
		for (i = 0; i < n && strcmp(addrs[i], a); i++)
			;
		if (i == n)
			memcpy(addrs[n++], a, strlen(a) + 1);
	}
	freeaddrinfo(res);
	for (i = 0; i < n; i++) {
		o = try_one(k, u, addrs[i], &r, why, sizeof(why));
		if (settle(k, o, u, addrs[i], &r, why))
			return 1;
	}
	return 0;
}

/* CURLOPT_XFERINFOFUNCTION: libcurl calls it about once a second even on
 * a quiet connection; non-zero aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const volatile int *cancel = arg;

	return *cancel != 0;
}

static int call_raw(const struct pt_api_conf *c, const char *method, const char *path,
		    const char *text, size_t text_len, const struct pt_api_fwd *fwd,
		    struct pt_api_resp *r, char *err, size_t errlen)
{
	char auth[1100], why[CURL_ERROR_SIZE + 64];
	struct curl_slist *hdr = NULL;
	struct call k = { .c = c, .path = path, .r = r, .err = err, .errlen = errlen };
	struct pt_api_resp one;
	struct pt_urls u;
	atomic_uint *pref = NULL;
	size_t first = 0, n, i = 0;
	enum outcome o;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (errlen)
		err[0] = '\0';
	if (pt_urls_parse(c->base ? c->base : "", &u, why, sizeof(why))) {
		snprintf(err, errlen, "bad URL: %s", why);
		return -1;
	}
	k.h = thread_curl();
	if (!k.h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k.idempotent = strcmp(method, "POST") && strcmp(method, "PATCH");
	k.deadline = now_ms() + (c->timeout_ms > 0 ? c->timeout_ms : 15000L);
	curl_easy_setopt(k.h, CURLOPT_CUSTOMREQUEST, method);
	/* The daemons and clients speak https only (docs/security.md). */
	curl_easy_setopt(k.h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(k.h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k.h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->insecure) {
		curl_easy_setopt(k.h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(k.h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca)
		curl_easy_setopt(k.h, CURLOPT_CAINFO, c->ca);
	if (c->cert_pem && c->key_pem) {
		struct curl_blob cb = { c->cert_pem, c->cert_len, CURL_BLOB_NOCOPY };
		struct curl_blob kb = { c->key_pem, c->key_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(k.h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(k.h, CURLOPT_SSLKEY_BLOB, &kb);
	} else if (readable(c->cert) && readable(c->key)) {
		curl_easy_setopt(k.h, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(k.h, CURLOPT_SSLKEY, c->key);
	}
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (c->bearer) {
		snprintf(auth, sizeof(auth), "%s: %s%s",
			 fwd ? PT_API_GATEWAY_HEADER : "Authorization", fwd ? "" : "Bearer ",
			 c->bearer);
		hdr = curl_slist_append(hdr, auth);
	}
	for (size_t h = 0; fwd && h < sizeof(fwd->headers) / sizeof(fwd->headers[0]); h++)
		if (fwd->headers[h])
			hdr = curl_slist_append(hdr, fwd->headers[h]);
	if (text) {
		if (!fwd)
			hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(k.h, CURLOPT_POSTFIELDSIZE, (long)text_len);
		curl_easy_setopt(k.h, CURLOPT_POSTFIELDS, text);
	} else if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(k.h, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(k.h, CURLOPT_HTTPHEADER, hdr);
	/* The thread's handle keeps its options from call to call: set or
	 * clear, every time. */
	curl_easy_setopt(k.h, CURLOPT_NOPROGRESS, c->cancel ? 0L : 1L);
	curl_easy_setopt(k.h, CURLOPT_XFERINFOFUNCTION, c->cancel ? on_progress : NULL);
	curl_easy_setopt(k.h, CURLOPT_XFERINFODATA, (void *)c->cancel);
	curl_easy_setopt(k.h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(k.h, CURLOPT_HEADERFUNCTION, on_header);

	if (u.n > 1 && (pref = pref_of(c->base)) != NULL)
		first = atomic_load(pref) % u.n;
	for (n = 0; n < u.n; n++) {
		i = (first + n) % u.n;
		o = try_one(&k, &u.v[i], NULL, &one, why, sizeof(why));
		if (settle(&k, o, &u.v[i], NULL, &one, why))
			break;
		if (o == BUSY && !u.v[i].is_ip && try_addresses(&k, &u.v[i]))
			break;
	}
	if (k.answered) {
		if (pref && atomic_exchange(pref, (unsigned)i) != i && c->log_failover)
			pt_log_warnx("%.*s answered%s%s", (int)u.v[i].len, u.v[i].s,
				     k.eo ? " after " : "", k.eo ? err : "");
		if (errlen)
			err[0] = '\0';
		rc = 0;
	} else if (k.busy && !k.other) {
		rc = 0; /* every one said 503: its words for the caller */
	} else {
		if (k.unsafe && k.eo < errlen && n + 1 < u.n)
			snprintf(err + k.eo, errlen - k.eo,
				 " (a %s is not sent again to another server: this one may have "
				 "carried it out)",
				 method);
		pt_api_resp_free(r);
	}
	/* The request is done: nothing of it may stay pointed at. */
	curl_easy_setopt(k.h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	return rc;
}

int pt_api_call(const struct pt_api_conf *c, const char *method, const char *path, json_t *body,
		struct pt_api_resp *r, char *err, size_t errlen)
{
	char *text = NULL;
	int rc;

	if (body && !(text = json_dumps(body, JSON_COMPACT))) {
		memset(r, 0, sizeof(*r));
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = call_raw(c, method, path, text, text ? strlen(text) : 0, NULL, r, err, errlen);
	if (text) /* it may hold a password */
		explicit_bzero(text, strlen(text));
	free(text);
	return rc;
}

int pt_api_forward(const struct pt_api_conf *c, const char *method, const char *path,
		   const char *body, size_t len, const struct pt_api_fwd *fwd,
		   struct pt_api_resp *r, char *err, size_t errlen)
{
	return call_raw(c, method, path, body, len, fwd, r, err, errlen);
}

void pt_api_resp_free(struct pt_api_resp *r)
{
	if (r->json)
		json_decref(r->json);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

const char *pt_api_message(const struct pt_api_resp *r, char *buf, size_t len)
{
	const char *m = json_string_value(json_object_get(r->json, "message"));

	if (m && *m)
		snprintf(buf, len, "%s", m);
	else
		snprintf(buf, len, "HTTP %d", r->status);
	return buf;
}
