/*
 * tls.h - TLS for every Portico connection.
 *
 * Three layers:
 *  - contexts: server and client SSL_CTX from [tls] (TLS 1.2 minimum,
 *    configured ciphers, TLS 1.3 session tickets off, renegotiation off), and
 *    a self-signed ECDSA P-256 pair generated on first start;
 *  - the engine (pt_tls): OpenSSL on memory buffers, knowing nothing of
 *    sockets.  Ciphertext goes in with pt_tls_in_*, comes out with
 *    pt_tls_out_*; plaintext with pt_tls_read/pt_tls_write;
 *  - the stream: the engine run over another pt_stream (a plain TCP or unix
 *    socket, or one that already carried a cleartext prologue such as RFB's
 *    VeNCrypt negotiation), itself a pt_stream.
 */
#ifndef PORTICO_TLS_H
#define PORTICO_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

#include "portico/conf.h"
#include "portico/stream.h"

/* --- contexts ----------------------------------------------------------- */

/* A server context with the configured certificate and key.  When neither
 * file exists, a self-signed ECDSA P-256 pair is generated there first and a
 * log line says so.  When conf->ca is set, peers presenting a certificate are
 * verified against it (clients need not present one).  NULL with err set on
 * failure. */
SSL_CTX *pt_tls_server_ctx(const struct pt_tls_conf *conf, char *err, size_t errlen);

/* A client context that verifies servers against conf->ca (the system store
 * when NULL) and presents conf->cert/key when both are readable. */
SSL_CTX *pt_tls_client_ctx(const struct pt_tls_conf *conf, char *err, size_t errlen);

/* Write a new self-signed ECDSA P-256 certificate for `cn` (also a DNS or IP
 * subjectAltName) and its key (mode 0600).  Returns 0 or -errno/-EPROTO. */
int pt_tls_make_self_signed(const char *cert_path, const char *key_path, const char *cn, char *err,
			    size_t errlen);

/* What pt_tls_make_cert makes: an ECDSA P-256 key and its certificate. */
struct pt_tls_cert_req {
	const char *cn;		 /* subject CN: the node's name */
	const char *ou;		 /* subject OU (the role pki issued it for), or NULL */
	const char *san;	 /* subjectAltName, OpenSSL syntax; NULL: DNS or IP of cn */
	int ca;			 /* a CA (signs certificates, nothing else) */
	int days;		 /* validity; 0: 3650 */
	const char *issuer_cert; /* the CA that signs it (PEM paths); NULL: self-signed */
	const char *issuer_key;
};

/* Write a new key (mode 0600, never over an existing file) and its
 * certificate (0644).  0 or -errno/-EPROTO with err set. */
int pt_tls_make_cert(const char *cert_path, const char *key_path, const struct pt_tls_cert_req *r,
		     char *err, size_t errlen);

/* The most recent OpenSSL error of this thread as text, queue cleared. */
const char *pt_tls_error_string(char *buf, size_t len);

/* --- the engine --------------------------------------------------------- */

struct pt_tls;

/* host: the name to verify (and send as SNI) on a client; NULL on servers. */
struct pt_tls *pt_tls_new(SSL_CTX *ctx, int server, const char *host);
void pt_tls_free(struct pt_tls *t); /* NULL-safe */

/* Ciphertext in: space to receive into, then commit what arrived. */
char *pt_tls_in_space(struct pt_tls *t, size_t *avail);
void pt_tls_in_commit(struct pt_tls *t, size_t n);
/* Take a chunk of n received bytes (zero copy when nothing is queued). */
void pt_tls_in_chunk(struct pt_tls *t, char *chunk, size_t n);
/* The peer closed its side of the transport. */
void pt_tls_in_eof(struct pt_tls *t);
/* Bytes received and not yet consumed by OpenSSL. */
size_t pt_tls_in_queued(const struct pt_tls *t);
/* True when no more received data can be queued until OpenSSL consumes some
 * (the reader must pause the transport). */
int pt_tls_in_full(const struct pt_tls *t);

/* Run the handshake: 0 when complete, -EAGAIN to wait for input (after
 * sending pending output), -EPROTO on failure (see pt_tls_last_error). */
int pt_tls_handshake(struct pt_tls *t);
int pt_tls_handshake_done(const struct pt_tls *t);

/* Plaintext out: bytes (> 0), 0 at the end of the peer's data (close_notify
 * or transport EOF), -EAGAIN for more input, -EPROTO on failure. */
ssize_t pt_tls_read(struct pt_tls *t, char *buf, size_t len);
/* Plaintext that can be read without more input. */
int pt_tls_read_pending(const struct pt_tls *t);
/* Plaintext in: bytes taken (> 0), -EAGAIN when the output queue is full
 * (send it, then call again with the same arguments), -EPROTO on failure. */
ssize_t pt_tls_write(struct pt_tls *t, const char *buf, size_t len);
/* Queue a close_notify.  0, -EAGAIN (flush and call again) or -EPROTO. */
int pt_tls_shutdown(struct pt_tls *t);

/* Ciphertext out: what is ready to send, then how much was sent. */
size_t pt_tls_out_pending(const struct pt_tls *t, const char **data);
void pt_tls_out_consume(struct pt_tls *t, size_t n);

/* Give OpenSSL's record buffers back while nothing is pending (idle
 * connections then cost only the SSL object). */
void pt_tls_release_buffers(struct pt_tls *t);

/* Why the last call failed, for the log line ("certificate verify failed:
 * unable to get local issuer certificate", "wrong version number", ...). */
const char *pt_tls_last_error(const struct pt_tls *t);

SSL *pt_tls_ssl(struct pt_tls *t);

/* --- the stream --------------------------------------------------------- */

typedef void (*pt_tls_handshake_cb)(struct pt_stream *s, int status);

/* TLS over `inner`, which it owns from now on (closed with it).  Returns
 * NULL on memory exhaustion (inner is then still the caller's). */
struct pt_stream *pt_tls_stream_new(struct pt_stream *inner, SSL_CTX *ctx, int server,
				    const char *host);

/* Drive the handshake now; cb fires once with 0 or a negative error.
 * Reading or writing without this also runs the handshake first. */
int pt_tls_stream_handshake(struct pt_stream *s, pt_tls_handshake_cb cb);

/* The engine under a TLS stream (for the peer certificate, the version,
 * the error text). */
struct pt_tls *pt_tls_stream_engine(struct pt_stream *s);

#endif
