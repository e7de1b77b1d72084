/*
 * tls.c - TLS contexts, the OpenSSL engine on memory buffers, and the TLS
 * pt_stream that runs the engine over another stream.  See tls.h.
 *
 * The engine talks to OpenSSL through a small custom BIO whose buffers are
 * pool chunks (buf.h) rather than a BIO pair or BIO_s_mem: received chunks
 * are handed to OpenSSL without a copy, several records collect in one
 * outgoing chunk so the socket sees one large write instead of one per
 * 16 KiB record, and an idle connection holds no buffer at all.
 */
#include "portico/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "portico/buf.h"
#include "portico/log.h"

/* ------------------------------------------------------------------------ */
/* contexts                                                                 */

const char *pt_tls_error_string(char *buf, size_t len)
{
	/* The first error queued is the specific one ("no start line"); those
	 * after it only say which layer gave up ("PEM lib"). */
	unsigned long first = ERR_get_error();
	const char *reason;

	ERR_clear_error();
	if (!first) {
		snprintf(buf, len, "unknown TLS error");
		return buf;
	}
	reason = ERR_reason_error_string(first);
	if (reason)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(first, buf, len);
	return buf;
}

static int file_exists(const char *path)
{
	return path && access(path, F_OK) == 0;
}

static int write_pem(const char *path, int mode, int (*writer)(FILE *, void *), void *obj)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd == -1)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	ok = writer(f, obj);
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		unlink(path);
		return -EIO;
	}
	return 0;
}

static int pem_write_key(FILE *f, void *k)
{
	return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}

static int pem_write_cert(FILE *f, void *x)
{
	return PEM_write_X509(f, x);
}

static int add_ext(X509V3_CTX *ctx, X509 *x, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!ext)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* Load a PEM certificate or key (an issuer's). */
static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return x;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return k;
}

int pt_tls_make_cert(const char *cert_path, const char *key_path, const struct pt_tls_cert_req *r,
		     char *err, size_t errlen)
{
	EVP_PKEY *key = NULL, *ikey = NULL;
	X509 *x = NULL, *issuer = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	unsigned char serial[16];
	char san[700];
	BIGNUM *bn = NULL;
	int rc = -EPROTO;

	if (r->issuer_cert) {
		issuer = load_cert(r->issuer_cert);
		ikey = issuer ? load_key(r->issuer_key) : NULL;
		if (!issuer || !ikey) {
			snprintf(err, errlen, "%s: cannot load the CA's %s",
				 issuer ? r->issuer_key : r->issuer_cert,
				 issuer ? "key" : "certificate");
			ERR_clear_error();
			rc = -EINVAL;
			goto out;
		}
	}
	key = EVP_EC_gen("P-256");
	x = X509_new();
	if (!key || !x)
		goto ssl_fail;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto ssl_fail;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto ssl_fail;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)(r->days > 0 ? r->days : 3650) * 24 * 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Portico", -1,
				   -1, 0);
	if (r->ou)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC, (const unsigned char *)r->ou,
					   -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)r->cn, -1, -1,
				   0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	if (r->san)
		snprintf(san, sizeof(san), "%s", r->san);
	else if (strspn(r->cn, "0123456789.") == strlen(r->cn))
		snprintf(san, sizeof(san), "IP:%s,DNS:localhost,IP:127.0.0.1,IP:::1", r->cn);
	else
		snprintf(san, sizeof(san), "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", r->cn);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!add_ext(&v3, x, NID_subject_key_identifier, "hash") ||
	    (issuer && !add_ext(&v3, x, NID_authority_key_identifier, "keyid:always")))
		goto ssl_fail;
	if (r->ca) {
		if (!add_ext(&v3, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		    !add_ext(&v3, x, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto ssl_fail;
	} else if ((*san && !add_ext(&v3, x, NID_subject_alt_name, san)) ||
		   (issuer && !add_ext(&v3, x, NID_basic_constraints, "critical,CA:FALSE")) ||
		   !add_ext(&v3, x, NID_ext_key_usage, "serverAuth,clientAuth")) {
		goto ssl_fail;
	}
	if (!X509_sign(x, ikey ? ikey : key, EVP_sha256()))
		goto ssl_fail;
	rc = write_pem(key_path, 0600, pem_write_key, key);
	if (rc) {
		snprintf(err, errlen, "%s: %s", key_path, strerror(-rc));
		goto out;
	}
	rc = write_pem(cert_path, 0644, pem_write_cert, x);
	if (rc) {
		snprintf(err, errlen, "%s: %s", cert_path, strerror(-rc));
		unlink(key_path);
		goto out;
	}
	goto out;
ssl_fail:
	snprintf(err, errlen, "cannot generate a certificate: ");
	pt_tls_error_string(err + strlen(err), errlen - strlen(err));
	rc = -EPROTO;
out:
	BN_free(bn);
	X509_free(x);
	X509_free(issuer);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ikey);
	return rc;
}

int pt_tls_make_self_signed(const char *cert_path, const char *key_path, const char *cn, char *err,
			    size_t errlen)
{
	struct pt_tls_cert_req r = { .cn = cn };

	return pt_tls_make_cert(cert_path, key_path, &r, err, errlen);
}

static int ctx_common(SSL_CTX *ctx, const struct pt_tls_conf *conf, char *err, size_t errlen)
{
	char e[256];

	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* No renegotiation (a DoS lever, and nothing here needs it); a peer
	 * that closes without close_notify ends the stream like a FIN does:
	 * RDP and RFB carry their own framing. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
					 SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (conf->ciphers && *conf->ciphers && !SSL_CTX_set_cipher_list(ctx, conf->ciphers)) {
		snprintf(err, errlen, "[tls] ciphers '%s': %s", conf->ciphers,
			 pt_tls_error_string(e, sizeof(e)));
		return -EINVAL;
	}
	if (conf->ciphersuites && *conf->ciphersuites &&
	    !SSL_CTX_set_ciphersuites(ctx, conf->ciphersuites)) {
		snprintf(err, errlen, "[tls] ciphersuites '%s': %s", conf->ciphersuites,
			 pt_tls_error_string(e, sizeof(e)));
		return -EINVAL;
	}
	return 0;
}

static int ctx_load_pair(SSL_CTX *ctx, const struct pt_tls_conf *conf, char *err, size_t errlen)
{
	char e[256];

	if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert) != 1) {
		snprintf(err, errlen, "%s: cannot load certificate: %s", conf->cert,
			 pt_tls_error_string(e, sizeof(e)));
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, conf->key, SSL_FILETYPE_PEM) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			snprintf(err, errlen, "%s does not match %s", conf->key, conf->cert);
		} else {
			snprintf(err, errlen, "%s: cannot load key: %s", conf->key,
				 pt_tls_error_string(e, sizeof(e)));
		}
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s does not match %s", conf->key, conf->cert);
		return -EINVAL;
	}
	return 0;
}

static int ctx_load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen)
{
	char e[256];

	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		snprintf(err, errlen, "%s: cannot load CA: %s", ca,
			 pt_tls_error_string(e, sizeof(e)));
		return -EINVAL;
	}
	return 0;
}

SSL_CTX *pt_tls_server_ctx(const struct pt_tls_conf *conf, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	char host[256];

	if (!conf->cert || !conf->key) {
		snprintf(err, errlen, "[tls] cert and key must be set");
		return NULL;
	}
	if (!file_exists(conf->cert) && !file_exists(conf->key)) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		if (pt_tls_make_self_signed(conf->cert, conf->key, host, err, errlen))
			return NULL;
		pt_log_info("generated a self-signed ECDSA P-256 certificate for %s in %s "
			    "(key %s); clients will not trust it until you install your own "
			    "or hand them this one",
			    host, conf->cert, conf->key);
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (ctx_common(ctx, conf, err, errlen) || ctx_load_pair(ctx, conf, err, errlen))
		goto fail;
	/* TigerVNC 1.12 hangs on TLS 1.3 session tickets; nothing here
	 * resumes sessions, so issue none and keep no server-side cache. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (conf->ca && *conf->ca) {
		if (ctx_load_ca(ctx, conf->ca, err, errlen))
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *pt_tls_client_ctx(const struct pt_tls_conf *conf, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (ctx_common(ctx, conf, err, errlen))
		goto fail;
	if (conf->ca && *conf->ca) {
		if (ctx_load_ca(ctx, conf->ca, err, errlen))
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(err, errlen, "cannot load the system CA store");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (file_exists(conf->cert) && file_exists(conf->key) &&
	    ctx_load_pair(ctx, conf, err, errlen))
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* the engine                                                               */

/* Received ciphertext: at most two chunks, the tail of a record that was cut
 * by a chunk boundary and the chunk after it. */
#define IN_CHUNKS 2

struct pt_tls {
	SSL *ssl;
	BIO *bio;
	struct pt_buf in[IN_CHUNKS];
	int nin;
	int eof;
	struct pt_buf out;
	char *err; /* set on failure only: idle connections stay small */
};

static BIO_METHOD *bio_meth;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
	struct pt_tls *t = BIO_get_data(b);
	size_t avail;
	char *p;

	BIO_clear_retry_flags(b);
	p = pt_buf_space(&t->out, &avail);
	if (!p) {
		BIO_set_retry_write(b);
		return -1;
	}
	if ((size_t)len > avail)
		len = (int)avail;
	memcpy(p, data, len);
	pt_buf_commit(&t->out, len);
	return len;
}

static int bio_read(BIO *b, char *data, int len)
{
	struct pt_tls *t = BIO_get_data(b);
	int done = 0;

	BIO_clear_retry_flags(b);
	while (done < len && t->nin > 0) {
		struct pt_buf *in = &t->in[0];
		size_t n = in->len < (size_t)(len - done) ? in->len : (size_t)(len - done);

		memcpy(data + done, in->data + in->off, n);
		done += n;
		pt_buf_consume(in, n);
		if (in->len == 0) {
			t->in[0] = t->in[1];
			memset(&t->in[1], 0, sizeof(t->in[1]));
			t->nin--;
		}
	}
	if (done > 0)
		return done;
	if (t->eof)
		return 0;
	BIO_set_retry_read(b);
	return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct pt_tls *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return (long)pt_tls_in_queued(t);
	case BIO_CTRL_WPENDING:
		return (long)t->out.len;
	case BIO_CTRL_EOF:
		return t->eof && t->nin == 0;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void bio_meth_init(void)
{
	bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portico");
	if (!bio_meth)
		return;
	BIO_meth_set_write(bio_meth, bio_write);
	BIO_meth_set_read(bio_meth, bio_read);
	BIO_meth_set_ctrl(bio_meth, bio_ctrl);
	BIO_meth_set_create(bio_meth, bio_create);
}

struct pt_tls *pt_tls_new(SSL_CTX *ctx, int server, const char *host)
{
	struct pt_tls *t;

	pthread_once(&bio_once, bio_meth_init);
	if (!bio_meth)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ssl = SSL_new(ctx);
	t->bio = BIO_new(bio_meth);
	if (!t->ssl || !t->bio)
		goto fail;
	BIO_set_data(t->bio, t);
	/* One BIO for both directions: SSL_set_bio takes the one reference. */
	SSL_set_bio(t->ssl, t->bio, t->bio);
	if (server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (host && *host) {
			if (strspn(host, "0123456789.:") != strlen(host))
				SSL_set_tlsext_host_name(t->ssl, host);
			if (!SSL_set1_host(t->ssl, host))
				goto fail;
		}
	}
	return t;
fail:
	if (t->ssl && SSL_get_rbio(t->ssl) == t->bio)
		t->bio = NULL; /* freed with the SSL */
	SSL_free(t->ssl);
	BIO_free(t->bio);
	free(t);
	return NULL;
}

void pt_tls_free(struct pt_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	for (int i = 0; i < t->nin; i++)
		pt_buf_reset(&t->in[i]);
	pt_buf_reset(&t->out);
	free(t->err);
	free(t);
}

char *pt_tls_in_space(struct pt_tls *t, size_t *avail)
{
	char *p;

	if (t->nin > 0) {
		p = pt_buf_space(&t->in[t->nin - 1], avail);
		if (p)
			return p;
		if (t->nin == IN_CHUNKS)
			return NULL;
	}
	p = pt_buf_space(&t->in[t->nin], avail);
	if (p)
		t->nin++;
	return p;
}

void pt_tls_in_commit(struct pt_tls *t, size_t n)
{
	pt_buf_commit(&t->in[t->nin - 1], n);
}

void pt_tls_in_chunk(struct pt_tls *t, char *chunk, size_t n)
{
	if (t->nin < IN_CHUNKS) {
		struct pt_buf *b = &t->in[t->nin++];
		b->data = chunk;
		b->off = 0;
		b->len = n;
		return;
	}
	/* Only reached if a caller reads while two chunks are queued; copy
	 * what fits so the bound on memory holds. */
	while (n > 0) {
		size_t avail;
		char *p = pt_buf_space(&t->in[IN_CHUNKS - 1], &avail);
		if (!p)
			break;
		if (avail > n)
			avail = n;
		memcpy(p, chunk, avail);
		pt_buf_commit(&t->in[IN_CHUNKS - 1], avail);
		chunk += avail;
		n -= avail;
	}
	pt_chunk_put(chunk);
}

void pt_tls_in_eof(struct pt_tls *t)
{
	t->eof = 1;
}

size_t pt_tls_in_queued(const struct pt_tls *t)
{
	size_t n = 0;

	for (int i = 0; i < t->nin; i++)
		n += t->in[i].len;
	return n;
}

int pt_tls_in_full(const struct pt_tls *t)
{
	return t->nin == IN_CHUNKS;
}

static void set_error(struct pt_tls *t, const char *fmt, ...) PT_PRINTF(2, 3);
static void set_error(struct pt_tls *t, const char *fmt, ...)
{
	va_list ap;

	free(t->err);
	va_start(ap, fmt);
	if (vasprintf(&t->err, fmt, ap) == -1)
		t->err = NULL;
	va_end(ap);
}

/* Turn an OpenSSL failure into -EAGAIN or -EPROTO with a message. */
static int engine_error(struct pt_tls *t, int ret)
{
	int e = SSL_get_error(t->ssl, ret);
	char buf[200];
	long v;

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		ERR_clear_error();
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		set_error(t, "%s",
			  t->eof ? "connection closed during the TLS handshake"
				 : "TLS transport error");
		return -EPROTO;
	default:
		pt_tls_error_string(buf, sizeof(buf));
		v = SSL_get_verify_result(t->ssl);
		if (v != X509_V_OK)
			set_error(t, "%s: %s", buf, X509_verify_cert_error_string(v));
		else
			set_error(t, "%s", buf);
		return -EPROTO;
	}
}

int pt_tls_handshake(struct pt_tls *t)
{
	int ret;

	if (SSL_is_init_finished(t->ssl))
		return 0;
	ret = SSL_do_handshake(t->ssl);
	if (ret == 1)
		return 0;
	ret = engine_error(t, ret);
	if (ret == 0) {
		set_error(t, "peer closed during the TLS handshake");
		return -EPROTO;
	}
	return ret;
}

int pt_tls_handshake_done(const struct pt_tls *t)
{
	return SSL_is_init_finished(t->ssl);
}

ssize_t pt_tls_read(struct pt_tls *t, char *buf, size_t len)
{
	size_t n;
	int ret = SSL_read_ex(t->ssl, buf, len, &n);

	if (ret == 1)
		return (ssize_t)n;
	return engine_error(t, ret);
}

int pt_tls_read_pending(const struct pt_tls *t)
{
	return SSL_has_pending(t->ssl);
}

ssize_t pt_tls_write(struct pt_tls *t, const char *buf, size_t len)
{
	size_t n;
	int ret = SSL_write_ex(t->ssl, buf, len, &n);

	if (ret == 1)
		return (ssize_t)n;
	ret = engine_error(t, ret);
	return ret == 0 ? -EPIPE : ret;
}

int pt_tls_shutdown(struct pt_tls *t)
{
	int ret;

	if (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)
		return 0;
	ret = SSL_shutdown(t->ssl);
	if (ret >= 0)
		return 0;
	return engine_error(t, ret);
}

size_t pt_tls_out_pending(const struct pt_tls *t, const char **data)
{
	*data = t->out.data ? t->out.data + t->out.off : NULL;
	return t->out.len;
}

void pt_tls_out_consume(struct pt_tls *t, size_t n)
{
	pt_buf_consume(&t->out, n);
}

void pt_tls_release_buffers(struct pt_tls *t)
{
	if (t->nin == 0 && t->out.len == 0 && !SSL_has_pending(t->ssl))
		SSL_free_buffers(t->ssl);
}

const char *pt_tls_last_error(const struct pt_tls *t)
{
	return t->err ? t->err : "no error";
}

SSL *pt_tls_ssl(struct pt_tls *t)
{
	return t->ssl;
}
