/*
 * rdp_open.h - how `portico connect` opens an RDP session in xfreerdp.
 *
 * The ticket goes to xfreerdp in an .rdp file of mode 0600 in a directory
 * of its own (0700, under $XDG_RUNTIME_DIR or /tmp), never on a command
 * line, which every local user can read (ps); the file and the directory
 * are removed when xfreerdp exits.  Through the RD Gateway, portico first
 * checks the gateway's certificate against the CAs (the configured one and
 * the system's) and the gateway's name, and then lets xfreerdp accept that
 * certificate alone (/cert:deny with its fingerprint): no trust on first
 * use, no question to the user.
 */
#ifndef CLIENT_RDP_OPEN_H
#define CLIENT_RDP_OPEN_H

#include <stddef.h>

/* A launch answer for RDP.  address is the full address: the gateway's
 * RDP listener, or the desktop behind rd_gateway ("host:port"; NULL:
 * directly).  shell is the alternate shell, "||name" a RemoteApp, or NULL.
 * The RD Gateway's certificate must chain to ca (a file; "": none) or to
 * one of the system's CAs. */
struct cli_rdp {
	const char *viewer; /* the program (xfreerdp, or --viewer) */
	const char *address;
	const char *rd_gateway;
	const char *ticket;
	const char *shell;
	const char *ca;
};

/* Check the TLS certificate of hostport ("host:port", "[v6]:port") against
 * ca (a PEM file; NULL or "": none) and the system's CAs, and the host's
 * name or address.  0 with its SHA-256 fingerprint in fp ("ab:cd:..."); -1 when
 * it is not to be trusted, -2 when it cannot be reached; the reason in
 * err. */
int cli_tls_check(const char *hostport, const char *ca, char *fp, size_t fplen, char *err,
		  size_t errlen);

/* The .rdp file for r, in text.  NULL when a value holds a line break (it
 * would add keys) or on no memory.  The caller frees it. */
char *cli_rdp_text(const struct cli_rdp *r);

/* Check the RD Gateway (when there is one), write the file, run the viewer
 * on it and wait for it, remove the file.  SIGINT, SIGTERM and SIGHUP are
 * passed on to the viewer.  A CLI exit status (the viewer's own when it
 * ran). */
int cli_rdp_open(const struct cli_rdp *r);

#endif
