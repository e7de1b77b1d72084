/*
 * ipc-inject - send one message of our choosing down a running daemon's
 * privilege-separation socketpair, as a compromised network side would.
 *
 *   ipc-inject PID short|type|unterminated|valid
 *   ipc-inject PID answer-stray|cancel-stray|answer-short|answer-unterminated|chal
 *   ipc-inject PID sess [KEY=VALUE]...
 *
 * PID is the network side.  Its end of the SOCK_SEQPACKET socketpair is
 * copied out of it with pidfd_getfd(2) (needs ptrace rights over it: root in
 * the tests), so the daemon under test runs unmodified; the message goes
 * to the root side, at the other end.
 *   short         a datagram shorter than any message
 *   type          the right size, an unknown type
 *   unterminated  an auth request whose user name has no NUL
 *   valid         a well-formed auth request (the control case)
 *   answer-stray  a well-formed answer to a challenge of a request nobody
 *                 made (id 4000000000): the PAM process ignores it
 *   cancel-stray  a well-formed cancel of such a request: ignored too
 *   answer-short  an answer one byte short
 *   answer-unterminated  an answer whose text has no NUL
 *   chal          a challenge, which only the PAM process sends
 *   sess          a well-formed session request to portico-sessiond's root
 *                 side, of the test's choosing: op=start|stop|spare (or a
 *                 number), id=N, user=, pool=, kind=desktop|app|N,
 *                 driver=xvnc|qemu|static|N, command=, image=, geometry=,
 *                 reason=, persistent=0|1, protocol=vnc|rdp|console|N,
 *                 guest_port=N, boot_timeout=MS, password= (defaults:
 *                 start, id 1, kind desktop, driver xvnc, protocol
 *                 console, the rest empty).  Values are taken
 *                 byte for byte (a newline stays one).  hidden=TEXT puts
 *                 TEXT after the NUL that ends command (give it after
 *                 command=), what no network side of ours sends.
 * Exit 0 when the message was sent.  The answer goes to the network side,
 * which logs a failure: the test reads it in sessiond's log.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "portico/conf.h"
#include "portico/ipc.h"

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_getfd_(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/* The target's AF_UNIX SOCK_SEQPACKET descriptor, copied into us. */
static int grab(pid_t pid)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int pidfd = pidfd_open_(pid), found = -1;

	if (pidfd < 0) {
		perror("pidfd_open");
		return -1;
	}
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	while (found < 0 && (e = readdir(d)) != NULL) {
		int type = 0, domain = 0, fd;
		socklen_t l = sizeof(int);
		if (e->d_name[0] == '.')
			continue;
		fd = pidfd_getfd_(pidfd, atoi(e->d_name));
		if (fd < 0)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) == 0 &&
		    type == SOCK_SEQPACKET && domain == AF_UNIX)
			found = fd;
		else
			close(fd);
	}
	closedir(d);
	close(pidfd);
	return found;
}

static int pick(const char *v, const char *const names[], int n)
{
	for (int i = 0; i < n; i++)
		if (names[i] && !strcmp(v, names[i]))
			return i;
	return atoi(v);
}

static int text(char *dst, size_t len, const char *key, const char *v)
{
	if (strlen(v) >= len) {
		fprintf(stderr, "ipc-inject: %s is longer than %zu bytes\n", key, len - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* A session request from KEY=VALUE arguments; 0, or -1 on a bad one. */
static int sess_req(struct pt_ipc_sess_req *r, int argc, char **argv)
{
	static const char *const ops[] = { NULL, "start", "stop", NULL, NULL,
					   NULL, NULL,	  "spare", NULL, "notice" };
	static const char *const kinds[] = { "desktop", "app" };
	static const char *const drivers[] = { "xvnc", "qemu", "static" };
	static const char *const protocols[] = { "vnc", "rdp", "console" };

	memset(r, 0, sizeof(*r));
	r->type = PT_IPC_SESS_REQ;
	r->op = PT_SESS_START;
	r->id = 1;
	r->protocol = PT_PROTO_CONSOLE;
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '='), *k = argv[i], *v;
		int bad = 0;
		if (!eq) {
			fprintf(stderr, "ipc-inject: expected KEY=VALUE, not '%s'\n", argv[i]);
			return -1;
		}
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(k, "op"))
			r->op = (uint32_t)pick(v, ops, 10);
		else if (!strcmp(k, "id"))
			r->id = strtoll(v, NULL, 10);
		else if (!strcmp(k, "kind"))
			r->kind = pick(v, kinds, 2);
		else if (!strcmp(k, "driver"))
			r->driver = pick(v, drivers, 3);
		else if (!strcmp(k, "persistent"))
			r->persistent = atoi(v);
		else if (!strcmp(k, "protocol"))
			r->protocol = pick(v, protocols, 3);
		else if (!strcmp(k, "guest_port"))
			r->guest_port = atoi(v);
		else if (!strcmp(k, "boot_timeout"))
			r->boot_timeout_ms = strtoll(v, NULL, 10);
		else if (!strcmp(k, "password"))
			bad = text(r->password, sizeof(r->password), k, v);
		else if (!strcmp(k, "user"))
			bad = text(r->user, sizeof(r->user), k, v);
		else if (!strcmp(k, "pool"))
			bad = text(r->pool, sizeof(r->pool), k, v);
		else if (!strcmp(k, "command"))
			bad = text(r->command, sizeof(r->command), k, v);
		else if (!strcmp(k, "image"))
			bad = text(r->image, sizeof(r->image), k, v);
		else if (!strcmp(k, "geometry"))
			bad = text(r->geometry, sizeof(r->geometry), k, v);
		else if (!strcmp(k, "reason"))
			bad = text(r->reason, sizeof(r->reason), k, v);
		else if (!strcmp(k, "hidden")) {
			size_t at = strlen(r->command) + 1;
			bad = at >= sizeof(r->command) ||
			      text(r->command + at, sizeof(r->command) - at, k, v);
		} else {
			fprintf(stderr, "ipc-inject: unknown key '%s'\n", k);
			return -1;
		}
		if (bad)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pt_ipc_auth_req req;
	struct pt_ipc_sess_req sreq;
	struct pt_ipc_auth_answer ans;
	struct pt_ipc_auth_cancel can;
	struct pt_ipc_auth_chal chal;
	const void *msg = &req;
	size_t len = sizeof(req);
	int fd;

	if (argc == 3 && (!strncmp(argv[2], "answer-", 7) || !strcmp(argv[2], "cancel-stray") ||
			  !strcmp(argv[2], "chal"))) {
		if (!strcmp(argv[2], "cancel-stray")) {
			can.type = PT_IPC_AUTH_CANCEL;
			can.id = 4000000000u;
			msg = &can;
			len = sizeof(can);
		} else if (!strcmp(argv[2], "chal")) {
			memset(&chal, 0, sizeof(chal));
			chal.type = PT_IPC_AUTH_CHAL;
			chal.id = 1;
			snprintf(chal.prompt, sizeof(chal.prompt), "Code: ");
			msg = &chal;
			len = sizeof(chal);
		} else {
			memset(&ans, 0, sizeof(ans));
			ans.type = PT_IPC_AUTH_ANSWER;
			ans.id = 4000000000u;
			snprintf(ans.answer, sizeof(ans.answer), "123456");
			msg = &ans;
			len = sizeof(ans);
			if (!strcmp(argv[2], "answer-short"))
				len--;
			else if (!strcmp(argv[2], "answer-unterminated"))
				memset(ans.answer, '7', sizeof(ans.answer));
			else if (strcmp(argv[2], "answer-stray")) {
				fprintf(stderr, "ipc-inject: unknown message kind '%s'\n", argv[2]);
				return 2;
			}
		}
		goto send;
	}
	if (argc >= 3 && !strcmp(argv[2], "sess")) {
		if (sess_req(&sreq, argc - 3, argv + 3))
			return 2;
		msg = &sreq;
		len = sizeof(sreq);
		goto send;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: ipc-inject PID short|type|unterminated|valid\n"
				"       ipc-inject PID answer-stray|cancel-stray|answer-short|"
				"answer-unterminated|chal\n"
				"       ipc-inject PID sess [KEY=VALUE]...\n");
		return 2;
	}
	memset(&req, 0, sizeof(req));
	req.type = PT_IPC_AUTH_REQ;
	req.id = 1;
	snprintf(req.service, sizeof(req.service), "portico");
	snprintf(req.user, sizeof(req.user), "alice");
	snprintf(req.password, sizeof(req.password), "wrong");
	snprintf(req.rhost, sizeof(req.rhost), "192.0.2.1");
	if (!strcmp(argv[2], "short"))
		len = 3;
	else if (!strcmp(argv[2], "type"))
		req.type = 0x12345678;
	else if (!strcmp(argv[2], "unterminated"))
		memset(req.user, 'a', sizeof(req.user));
	else if (strcmp(argv[2], "valid")) {
		fprintf(stderr, "ipc-inject: unknown message kind '%s'\n", argv[2]);
		return 2;
	}
send:
	fd = grab((pid_t)atoi(argv[1]));
	if (fd < 0) {
		fprintf(stderr, "ipc-inject: no SOCK_SEQPACKET socket in process %s\n", argv[1]);
		return 1;
	}
	if (send(fd, msg, len, 0) != (ssize_t)len) {
		perror("send");
		return 1;
	}
	return 0;
}
