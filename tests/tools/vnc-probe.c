/*
 * vnc-probe - a real VNC client (libvncclient) that looks at a desktop.
 *
 *   vnc-probe [-1] [-u USER -C CAFILE] TARGET PASSWORD [SECONDS]
 *
 * With -u and -C it logs in with VeNCrypt (X509Plain or TLSPlain, through
 * libvncclient's GnuTLS), as a viewer does at portico-gateway: USER and
 * PASSWORD inside TLS, the server's certificate checked against CAFILE.
 * TARGET is host:port or the path of a unix socket.  Connects, answers VNC
 * authentication with PASSWORD (empty: expects no authentication), asks for
 * the whole framebuffer, waits for it and prints one line:
 *
 *   size=WxH name=NAME painted=N hash=H
 *
 * painted counts pixels that are not black; hash is FNV-1a over the
 * framebuffer, so two probes of one unchanged desktop print the same.
 * With -w it stays connected after that until the server ends the
 * connection, and exits 3 then ("connection lost"); meanwhile it asks for
 * the whole screen again after each update and prints "update N" for each.
 * With -b SECONDS it measures a bulk stream instead: raw encoding, whole
 * frames asked for one after the other for SECONDS, and prints
 *   frames=N mbytes_per_s=X
 * With -1 it stops at the first framebuffer update, whatever it paints
 * (the benchmarks time that).
 * Exit 0 when a full update arrived, 1 when the connection or the
 * authentication failed, 2 on bad usage.
 */
#include <rfb/rfbclient.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static char *password, *user, *cafile;
static int updated;
static uint64_t area; /* pixels received, for the bulk stream */

static rfbCredential *get_credential(rfbClient *c, int type)
{
	rfbCredential *cr = calloc(1, sizeof(*cr));

	if (!cr)
		return NULL;
	if (type == rfbCredentialTypeX509) {
		cr->x509Credential.x509CACertFile = strdup(cafile ? cafile : "");
		cr->x509Credential.x509CrlVerifyMode = rfbX509CrlVerifyNone;
	} else if (type == rfbCredentialTypeUser) {
		cr->userCredential.username = strdup(user ? user : "");
		cr->userCredential.password = strdup(password);
	} else {
		free(cr);
		return NULL;
	}
	return cr;
}

/* Only the log lines that say something failed (the server's refusal
 * reason among them). */
static void failures(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strstr(line, "fail") || strstr(line, "rror"))
		fputs(line, stderr);
}

/* libvncclient's errors (the server's refusal reason among them) on
 * stderr, where the tests read them. */
static void errors(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static char *get_password(rfbClient *c)
{
	return strdup(password);
}

static void on_update(rfbClient *c, int x, int y, int w, int h)
{
	updated = 1;
	area += (uint64_t)w * (uint64_t)h;
}

static void quiet(const char *fmt, ...)
{
}

int main(int argc, char **argv)
{
	rfbClient *c;
	char host[512];
	int port = 0, seconds, first = 0, stay = 0, bulk = 0;
	struct timeval start, now;

	for (;;) {
		if (argc > 1 && !strcmp(argv[1], "-1")) {
			first = 1;
			argv++;
			argc--;
		} else if (argc > 2 && !strcmp(argv[1], "-b")) {
			bulk = atoi(argv[2]);
			argv += 2;
			argc -= 2;
		} else if (argc > 1 && !strcmp(argv[1], "-w")) {
			stay = 1;
			argv++;
			argc--;
		} else if (argc > 2 && !strcmp(argv[1], "-u")) {
			user = argv[2];
			argv += 2;
			argc -= 2;
		} else if (argc > 2 && !strcmp(argv[1], "-C")) {
			cafile = argv[2];
			argv += 2;
			argc -= 2;
		} else {
			break;
		}
	}
	seconds = argc > 3 ? atoi(argv[3]) : 10;

	if (argc < 3 || argc > 4 || seconds <= 0) {
		fprintf(stderr, "usage: vnc-probe TARGET PASSWORD [SECONDS]\n");
		return 2;
	}
	password = argv[2];
	snprintf(host, sizeof(host), "%s", argv[1]);
	if (host[0] != '/') {
		char *colon = strrchr(host, ':');
		if (!colon)
			return 2;
		*colon = '\0';
		port = atoi(colon + 1);
	}
	rfbClientLog = quiet;
	rfbClientErr = errors;
	if (user) /* the gateway's refusal reason comes as a log line */
		rfbClientLog = failures;
	c = rfbGetClient(8, 3, 4);
	c->GetPassword = get_password;
	c->GetCredential = get_credential;
	c->GotFrameBufferUpdate = on_update;
	if (bulk)
		c->appData.encodingsString = "raw";
	c->canHandleNewFBSize = TRUE;
	c->serverHost = strdup(host);
	c->serverPort = port;
	/* A unix socket path as the host: libvncclient connects to it. */
	if (!rfbInitClient(c, NULL, NULL)) {
		fprintf(stderr, "vnc-probe: cannot connect to or log in at %s\n", argv[1]);
		/* rfbInitClient has freed the client, but libvncclient 0.9.14
		 * keeps the GnuTLS credentials of a refused VeNCrypt login and a
		 * copy of argv[0]: not ours to free, and a refusal is what the
		 * tests want to see, so no exit handler (LeakSanitizer) runs. */
		fflush(NULL);
		_exit(1);
	}
	if (bulk) {
		double t;
		gettimeofday(&start, NULL);
		int frames = 0;
		uint64_t full = (uint64_t)c->width * (uint64_t)c->height;
		area = 0;
		do {
			/* Raw rectangles: the bytes on the wire are the pixels. */
			uint64_t want = area + full;
			SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, FALSE);
			frames++;
			while (area < want) {
				int n = WaitForMessage(c, 1000000);
				if (n < 0 || (n > 0 && !HandleRFBServerMessage(c))) {
					fprintf(stderr, "vnc-probe: connection lost\n");
					return 1;
				}
			}
			gettimeofday(&now, NULL);
			t = (double)(now.tv_sec - start.tv_sec) +
			    (now.tv_usec - start.tv_usec) / 1e6;
		} while (t < bulk);
		printf("frames=%d mbytes_per_s=%.1f\n", frames, (double)area * 4 / t / 1e6);
		free(c->frameBuffer);
		c->frameBuffer = NULL;
		rfbClientCleanup(c);
		return 0;
	}
	SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, FALSE);
	gettimeofday(&start, NULL);
	for (;;) {
		int n = WaitForMessage(c, 100000);
		if (n < 0 || (n > 0 && !HandleRFBServerMessage(c))) {
			fprintf(stderr, "vnc-probe: connection lost\n");
			return 1;
		}
		gettimeofday(&now, NULL);
		if (updated && first)
			break;
		if (updated && n == 0)
			break; /* the update is complete and nothing more comes */
		if (now.tv_sec - start.tv_sec >= seconds) {
			if (updated)
				break;
			fprintf(stderr, "vnc-probe: no framebuffer update in %d s\n", seconds);
			return 1;
		}
	}
	if (stay) {
		int updates = 0;
		printf("connected\n");
		fflush(stdout);
		updated = 0;
		for (;;) {
			int n = WaitForMessage(c, 500000);
			if (n < 0 || (n > 0 && !HandleRFBServerMessage(c))) {
				printf("connection lost\n");
				return 3;
			}
			/* Still there: the whole screen again, every update counted
			 * ("update N"), for tests that watch a running session. */
			if (updated || n == 0) {
				if (updated) {
					printf("update %d\n", ++updates);
					usleep(200000); /* a few a second are enough */
				}
				fflush(stdout);
				updated = 0;
				SendFramebufferUpdateRequest(c, 0, 0, c->width, c->height, FALSE);
			}
		}
	}
	uint32_t *px = (uint32_t *)c->frameBuffer;
	uint64_t hash = 1469598103934665603ULL;
	long painted = 0, n = (long)c->width * c->height;
	for (long i = 0; i < n; i++) {
		uint32_t v = px[i] & 0x00ffffff;
		if (v)
			painted++;
		for (int b = 0; b < 3; b++) {
			hash ^= (v >> (8 * b)) & 0xff;
			hash *= 1099511628211ULL;
		}
	}
	printf("size=%dx%d name=%s painted=%ld hash=%016llx\n", c->width, c->height,
	       c->desktopName ? c->desktopName : "", painted, (unsigned long long)hash);
	/* libvncclient leaves the framebuffer it allocated to its user. */
	free(c->frameBuffer);
	c->frameBuffer = NULL;
	rfbClientCleanup(c);
	return 0;
}
