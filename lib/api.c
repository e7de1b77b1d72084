/*
 * api.c - HTTPS client for Portico's APIs, on libcurl (see api.h).
 */
#include "portico/api.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

	if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		p += 13;
		len -= 13;
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == '\r' || p[len - 1] == '\n' || p[len - 1] == ' '))
			len--;
		if (len >= sizeof(r->ctype))
			len = sizeof(r->ctype) - 1;
		memcpy(r->ctype, p, len);
		r->ctype[len] = '\0';
	}
	return size * n;
}

static int readable(const char *path)
{
	return path && *path && access(path, R_OK) == 0;
}

int pt_api_call(const struct pt_api_conf *c, const char *method, const char *path, json_t *body,
		struct pt_api_resp *r, char *err, size_t errlen)
{
	char url[1024], auth[1100], curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	struct sink sink = { .r = r };
	char *text = NULL;
	CURL *h;
	CURLcode cc;
	long status = 0;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
		snprintf(err, errlen, "URL too long");
		return -1;
	}
	h = thread_curl();
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	/* The daemons and clients speak https only (docs/security.md). */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 15000L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	if (c->cert_pem && c->key_pem) {
		struct curl_blob cb = { c->cert_pem, c->cert_len, CURL_BLOB_NOCOPY };
		struct curl_blob kb = { c->key_pem, c->key_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
	} else if (readable(c->cert) && readable(c->key)) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	}
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (c->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->bearer);
		hdr = curl_slist_append(hdr, auth);
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
	} else if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (sink.too_long)
			snprintf(err, errlen, "%s: answer longer than %d bytes", c->base,
				 PT_API_BODY_MAX);
		else
			snprintf(err, errlen, "%s: %s", c->base,
				 curl_err[0] ? curl_err : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	r->status = (int)status;
	if (r->body && !strncasecmp(r->ctype, "application/json", 16))
		r->json = json_loadb(r->body, r->len, 0, NULL);
	rc = 0;
out:
	/* The request is done: nothing of it may stay pointed at. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdr);
	if (text) /* it may hold a password */
		explicit_bzero(text, strlen(text));
	free(text);
	return rc;
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
