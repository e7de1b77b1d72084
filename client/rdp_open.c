/*
 * rdp_open.c - `portico connect` for RDP: the gateway's certificate, the
 * private .rdp file, xfreerdp run on it (rdp_open.h).
 *
 * The CAs: the configured one (portico --ca, "ca =" of the client's
 * config: Portico's CA, which also signs the broker) and the system's.
 *
 * Why a check of our own: FreeRDP 2.11 has no option naming a CA, and
 * one certificate policy for the RD Gateway and the desktop behind it
 * (/cert:tofu, /cert:deny, fingerprints).  So portico checks the gateway's
 * chain and name with OpenSSL, then runs xfreerdp with /cert:deny and that
 * certificate's fingerprint: xfreerdp accepts that certificate and denies
 * any other without asking.  The desktop's own certificate, which TLS end
 * to end inside the tunnel shows, is not checked ("authentication
 * level:i:0", as mstsc's setting of that name): pooled desktops are cloned
 * with fresh certificates, no CA of ours signs them, and FreeRDP would
 * otherwise deny them too.  The gateway, the part exposed to the networks
 * between user and site, is what the CA vouches for.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "rdp_open.h"

/* How long the gateway may take to connect and finish its handshake. */
#define RDP_CHECK_TIMEOUT_S 10

/* "host:port" or "[v6]:port" into host and port; -1 when malformed. */
static int split_hostport(const char *hp, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon, *h = hp;
	size_t n;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');
		if (!close || close[1] != ':')
			return -1;
		h = hp + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(hp, ':');
		if (!colon || strchr(hp, ':') != colon)
			return -1;
		n = (size_t)(colon - hp);
	}
	if (n == 0 || n >= hlen || !colon[1] || strlen(colon + 1) >= plen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) < 1 ||
	    atoi(colon + 1) > 65535)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static int connect_to(const char *host, const char *port, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = RDP_CHECK_TIMEOUT_S };
	int fd = -1, rc, e = 0;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		/* SO_SNDTIMEO bounds connect() too (socket(7)). */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "%s", strerror(e ? e : ECONNREFUSED));
	return fd;
}

int cli_tls_check(const char *hostport, const char *ca, char *fp, size_t fplen, char *err,
		  size_t errlen)
{
	char host[256], port[8], why[256] = "";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	int fd = -1, rc = -1, ip;
	struct in6_addr a6;

	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "'%s' is no host:port", hostport);
		return -1;
	}
	ip = inet_pton(AF_INET, host, &a6) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
	if (!(ctx = SSL_CTX_new(TLS_client_method())))
		goto tls_fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* The configured CA, and the system's: the gateway's public
	 * certificate is one a browser trusts (the portal is on the same
	 * front), never one of Portico's CA when the gateway takes RDP
	 * logins (docs/security.md), so the system's CAs vouch for it as
	 * often as the configured file does. */
	if (ca && *ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		snprintf(err, errlen, "cannot read the CA %s", ca);
		goto out;
	}
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto tls_fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (!(ssl = SSL_new(ctx)))
		goto tls_fail;
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1
	       : SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
		goto tls_fail;
	if ((fd = connect_to(host, port, why, sizeof(why))) == -1) {
		snprintf(err, errlen, "%s", why);
		rc = -2;
		goto out;
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			snprintf(err, errlen, "its certificate does not verify against %s%s%s (%s)",
				 ca && *ca ? "the CA " : "", ca && *ca ? ca : "",
				 ca && *ca ? " or the system's CAs" : "the system's CAs",
				 X509_verify_cert_error_string(v));
		else
			snprintf(err, errlen, "no TLS handshake: %s",
				 ERR_reason_error_string(ERR_peek_last_error())
					 ? ERR_reason_error_string(ERR_peek_last_error())
					 : "the connection closed");
		goto out;
	}
	if (!(peer = SSL_get1_peer_certificate(ssl)) ||
	    X509_digest(peer, EVP_sha256(), md, &mdlen) != 1)
		goto tls_fail;
	if (fplen < mdlen * 3)
		goto tls_fail;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(fp + 3 * i, fplen - 3 * i, i + 1 < mdlen ? "%02x:" : "%02x", md[i]);
	rc = 0;
	goto out;
tls_fail:
	snprintf(err, errlen, "TLS: %s",
		 ERR_reason_error_string(ERR_peek_last_error())
			 ? ERR_reason_error_string(ERR_peek_last_error())
			 : "out of memory");
out:
	X509_free(peer);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd != -1)
		close(fd);
	ERR_clear_error();
	return rc;
}

static int one_line(const char *s)
{
	return !s || !strpbrk(s, "\r\n");
}

char *cli_rdp_text(const struct cli_rdp *r)
{
	char *via = NULL, *app = NULL, *text = NULL;
	const char *sh = r->shell;
	int n;

	if (!r->address || !r->ticket || !one_line(r->address) || !one_line(r->ticket) ||
	    !one_line(r->rd_gateway) || !one_line(sh))
		return NULL;
	if (r->rd_gateway)
		n = asprintf(&via,
			     "full address:s:%s\r\ngatewayhostname:s:%s\r\n"
			     "gatewayusagemethod:i:1\r\ngatewaycredentialssource:i:5\r\n"
			     "gatewayprofileusagemethod:i:1\r\ngatewayaccesstoken:s:%s\r\n"
			     "authentication level:i:0\r\n",
			     r->address, r->rd_gateway, r->ticket);
	else
		n = asprintf(&via, "full address:s:%s\r\nloadbalanceinfo:s:Cookie: msts=%s\r\n",
			     r->address, r->ticket);
	if (n < 0)
		return NULL;
	if (sh && !strncmp(sh, "||", 2))
		n = asprintf(&app,
			     "remoteapplicationmode:i:1\r\nremoteapplicationprogram:s:%s\r\n"
			     "remoteapplicationname:s:%s\r\n",
			     sh, sh + 2);
	else
		n = asprintf(&app, "%s%s%s", sh ? "alternate shell:s:" : "", sh ? sh : "",
			     sh ? "\r\n" : "");
	if (n >= 0 &&
	    asprintf(&text, "%sscreen mode id:i:1\r\nsession bpp:i:32\r\n%s", via, app) < 0)
		text = NULL;
	if (via)
		explicit_bzero(via, strlen(via));
	free(via);
	free(app);
	return text;
}

/* The viewer while portico waits for it: the signals a user or a session
 * manager sends portico are meant for it. */
static volatile sig_atomic_t viewer_pid;

static void pass_on(int sig)
{
	if (viewer_pid > 0)
		kill((pid_t)viewer_pid, sig);
}

/* A directory of our own: $XDG_RUNTIME_DIR (the user's, 0700, a tmpfs)
 * when it is one, else /tmp. */
static int private_dir(char *dir, size_t len)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	struct stat sb;

	if (!base || base[0] != '/' || stat(base, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    sb.st_uid != getuid())
		base = "/tmp";
	if ((size_t)snprintf(dir, len, "%s/portico-XXXXXX", base) >= len)
		return -1;
	return mkdtemp(dir) ? 0 : -1;
}

/* What xfreerdp is to accept: through the RD Gateway, the certificate
 * checked here and no other; directly, TLS runs end to end to the desktop,
 * whose certificate no CA of ours signs, trusted on first use as before.
 * 0, or -1 after saying why not. */
static int cert_option(const struct cli_rdp *r, char *opt, size_t len)
{
	char fp[EVP_MAX_MD_SIZE * 3 + 1], err[512];
	int rc;

	if (!r->rd_gateway) {
		snprintf(opt, len, "/cert:tofu");
		return 0;
	}
	rc = cli_tls_check(r->rd_gateway, r->ca, fp, sizeof(fp), err, sizeof(err));
	if (rc == -2)
		fprintf(stderr, "portico: cannot reach the RD Gateway at %s: %s\n", r->rd_gateway,
			err);
	else if (rc)
		fprintf(stderr,
			"portico: the RD Gateway at %s is not trusted: %s; not connecting\n",
			r->rd_gateway, err);
	else
		snprintf(opt, len, "/cert:deny,fingerprint:sha256:%s", fp);
	return rc ? -1 : 0;
}

int cli_rdp_open(const struct cli_rdp *r)
{
	char dir[4096], path[4200], certarg[300];
	char *text, *argv[5];
	struct sigaction sa = { .sa_handler = pass_on }, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	int fd, status, st = CLI_FAIL, k = 0;
	pid_t pid;
	size_t len;

	if (cert_option(r, certarg, sizeof(certarg)))
		return CLI_FAIL;
	if (!(text = cli_rdp_text(r))) {
		fprintf(stderr, "portico: the broker's answer holds a line break in a field\n");
		return CLI_FAIL;
	}
	len = strlen(text);
	if (private_dir(dir, sizeof(dir))) {
		fprintf(stderr, "portico: cannot make a private directory for the .rdp file: %s\n",
			strerror(errno));
		goto out_text;
	}
	snprintf(path, sizeof(path), "%s/connect.rdp", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len || close(fd) == -1) {
		fprintf(stderr, "portico: cannot write %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		goto out_file;
	}
	argv[k++] = (char *)r->viewer;
	argv[k++] = path;
	argv[k++] = certarg;
	argv[k] = NULL;
	fflush(stdout);
	fflush(stderr);
	/* Passed on, not taken: installed before the fork so that none is
	 * lost between it and the wait. */
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 3; i++)
			sigaction(sigs[i], &old[i], NULL);
		execvp(argv[0], argv);
		fprintf(stderr,
			"portico: cannot run %s: %s (install it, or name another with --viewer)\n",
			argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "portico: cannot start %s: %s\n", r->viewer, strerror(errno));
		goto out_sig;
	}
	viewer_pid = pid;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	viewer_pid = 0;
	st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (st == 127)
		st = CLI_FAIL;
out_sig:
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
out_file:
	unlink(path);
	rmdir(dir);
out_text:
	explicit_bzero(text, len);
	free(text);
	return st;
}
