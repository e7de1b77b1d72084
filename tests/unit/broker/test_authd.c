/*
 * test_authd.c - the PAM process and its messages, against real PAM.
 *
 * PAM comes through pam_wrapper + pam_matrix, so nothing in /etc changes.
 * pam_wrapper is an LD_PRELOAD library that sets itself up from the
 * environment when it is loaded, so the PAM process cannot be this test
 * process: each test that needs PAM re-executes this very binary with the
 * wrapper preloaded and PT_TEST_AUTHD_FD set, and the constructor below
 * turns that copy into brk_authd_run() on the socketpair before Criterion
 * starts.  No environment is needed from the test runner.  Tests that never
 * reach PAM (malformed messages, EOF) call brk_authd_run() in-process.
 *
 * The services live in a fresh directory per test: pam_matrix stacks, one
 * with pam_faildelay, one that maps the user name, one with modules that
 * print messages, a broken one, and etc/pam.d/portico itself with the
 * system's common-auth and common-account.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "authd.h"
#include "portico/ipc.h"

#define HELPER_FD 3

/* The re-executed copy: be the PAM process, never the test runner. */
__attribute__((constructor)) static void authd_helper(void)
{
	const char *pin = getenv("PT_TEST_AUTHD_SERVICE");

	if (!getenv("PT_TEST_AUTHD_FD"))
		return;
	exit(pin ? brk_authd_run_service(HELPER_FD, pin) : brk_authd_run(HELPER_FD));
}

/* --- helpers ---------------------------------------------------------------- */

struct pamenv {
	char dir[64]; /* services/, passdb, authd.log */
	int fd;	      /* our end: we play the net side */
	pid_t pid;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static void copy_file(const char *from, const char *dir, const char *name)
{
	static char text[16384];
	size_t n;
	FILE *f = fopen(from, "r");

	cr_assert_not_null(f, "%s: %s", from, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	write_file(dir, name, text);
}

/* pam_matrix lives next to libpam in the multiarch directory; asking the
 * loader where libpam is avoids hard-coding the triplet. */
static void module_dir(char *out, size_t cap)
{
	Dl_info info;
	char *slash;

	cr_assert(dladdr((void *)pam_start, &info) && info.dli_fname, "where is libpam?");
	snprintf(out, cap, "%s", info.dli_fname);
	slash = strrchr(out, '/');
	cr_assert_not_null(slash);
	*slash = '\0';
}

/* Service files: each test user is allowed one service (pam_matrix's
 * account check), bob none of ours. */
static void write_services(const char *dir)
{
	char lib[200], matrix[300], sub[128], stack[1024], buf[2048];

	module_dir(lib, sizeof(lib));
	snprintf(matrix, sizeof(matrix), "%s/pam_wrapper/pam_matrix.so", lib);
	cr_assert_eq(access(matrix, R_OK), 0, "%s missing: apt-get install libpam-wrapper", matrix);
	snprintf(sub, sizeof(sub), "%s/services", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);

	snprintf(stack, sizeof(stack),
		 "auth required %s passdb=%s/passdb\n"
		 "account required %s passdb=%s/passdb\n",
		 matrix, dir, matrix, dir);
	write_file(sub, "portico-test", stack);
	snprintf(buf, sizeof(buf), "auth optional pam_faildelay.so delay=3000000\n%s", stack);
	write_file(sub, "portico-delay", buf);
	/* pam_set_items copies PAM_USER from the environment: a module that
	 * maps the name, as pam_ldap or pam_sss may. */
	snprintf(buf, sizeof(buf), "auth required %s/pam_wrapper/pam_set_items.so\n%s", lib, stack);
	write_file(sub, "portico-map", buf);
	/* Modules that talk: an error message (pam_nologin, made to fail
	 * harmlessly) and an info message (pam_echo) before the prompt.
	 * Debian's own modules, which answer through libpam's pam_prompt;
	 * pam_chatty would leak the responses under LeakSanitizer. */
	write_file(dir, "nologin", "maintenance tonight\n");
	snprintf(buf, sizeof(buf),
		 "auth [default=ignore] pam_nologin.so file=%s/nologin\n"
		 "auth optional pam_echo.so Welcome, %%u\n%s",
		 dir, stack);
	write_file(sub, "portico-chatty", buf);
	/* libpam complains on every pam_start when "other" is missing. */
	write_file(sub, "other", "auth required pam_deny.so\naccount required pam_deny.so\n");
	write_file(sub, "portico-broken",
		   "auth required /nonexistent/pam_nothing.so\n"
		   "account required /nonexistent/pam_nothing.so\n");
	/* The service file we ship, with the system's stacks it includes. */
	copy_file("etc/pam.d/portico", sub, "portico");
	if (access("/etc/pam.d/common-auth", R_OK) == 0) {
		copy_file("/etc/pam.d/common-auth", sub, "common-auth");
		copy_file("/etc/pam.d/common-account", sub, "common-account");
	}
	write_file(dir, "passdb",
		   "alice:secret:portico-test\n"
		   "bob:secret:someone-else\n"
		   "carol:secret:portico-map\n"
		   "dave:secret:portico-delay\n"
		   "erin:secret:portico-chatty\n");
}

/* Start the PAM process under pam_wrapper.  extra: one more NAME=value for
 * its environment, or NULL. */
static void start_authd(struct pamenv *e, const char *extra)
{
	char svc[128], asan[512], logpath[128];
	char *envp[16];
	char *argv[] = { "authd-under-test", NULL };
	const char *prev;
	int sv[2], n = 0, logfd;

	snprintf(e->dir, sizeof(e->dir), "/tmp/portico-authd.XXXXXX");
	cr_assert_not_null(mkdtemp(e->dir));
	write_services(e->dir);
	snprintf(svc, sizeof(svc), "PAM_WRAPPER_SERVICE_DIR=%s/services", e->dir);
	/* A preloaded library comes before the ASan runtime in the link
	 * order, which ASan refuses unless told otherwise. */
	prev = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0", prev ? prev : "",
		 prev && *prev ? ":" : "");
	envp[n++] = "LD_PRELOAD=libpam_wrapper.so";
	envp[n++] = "PAM_WRAPPER=1";
	envp[n++] = svc;
	/* RTLD_DEEPBIND and the sanitizers' interceptors do not mix.
	 * pam_wrapper 1.1.4 (Debian 12) reads the switch under uid_wrapper's
	 * name; later releases under its own. */
	envp[n++] = "PAM_WRAPPER_DISABLE_DEEPBIND=1";
	envp[n++] = "UID_WRAPPER_DISABLE_DEEPBIND=1";
	envp[n++] = "PT_TEST_AUTHD_FD=3";
	envp[n++] = asan;
	if ((prev = getenv("LSAN_OPTIONS")) != NULL) {
		static char lsan[1024];
		snprintf(lsan, sizeof(lsan), "LSAN_OPTIONS=%s", prev);
		envp[n++] = lsan;
	}
	if ((prev = getenv("UBSAN_OPTIONS")) != NULL) {
		static char ubsan[512];
		snprintf(ubsan, sizeof(ubsan), "UBSAN_OPTIONS=%s", prev);
		envp[n++] = ubsan;
	}
	if (extra)
		envp[n++] = (char *)extra;
	envp[n] = NULL;

	snprintf(logpath, sizeof(logpath), "%s/authd.log", e->dir);
	logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(logfd, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	/* dup2 onto itself would leave close-on-exec set: the end the child
	 * keeps must not already be fd 3 (it never is: logfd came first). */
	cr_assert_gt(sv[1], HELPER_FD);
	e->pid = fork();
	cr_assert_neq(e->pid, -1);
	if (e->pid == 0) {
		/* stderr first: logfd itself may be fd 3. */
		if (dup2(logfd, STDERR_FILENO) == -1 || dup2(sv[1], HELPER_FD) == -1)
			_exit(99);
		execve("/proc/self/exe", argv, envp);
		_exit(98);
	}
	close(sv[1]);
	close(logfd);
	e->fd = sv[0];
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static char *read_log(const char *dir)
{
	static char buf[8192];
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/authd.log", dir);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Close our end and return the PAM process's exit status. */
static int stop_authd(struct pamenv *e)
{
	int status;

	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	while (waitpid(e->pid, &status, 0) == -1)
		cr_assert_eq(errno, EINTR);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static struct pamenv env = { .fd = -1 };

/* Close the conversation and check how the PAM process ended; its stderr
 * (sanitizer reports included) goes into the failure message. */
static void expect_exit(int want)
{
	int got = stop_authd(&env);

	cr_assert_eq(got, want, "the PAM process exited %d, not %d:\n%s", got, want,
		     read_log(env.dir));
}

/* .fini runs after a failed assertion too: no process or directory is left
 * behind by a failing test. */
static void authd_teardown(void)
{
	if (env.fd >= 0)
		stop_authd(&env);
	if (env.dir[0])
		nftw(env.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ask(int fd, uint32_t id, const char *service, const char *user, const char *password,
		struct pt_ipc_auth_rep *rep)
{
	struct pt_ipc_auth_req req;

	memset(&req, 0, sizeof(req));
	req.type = PT_IPC_AUTH_REQ;
	req.id = id;
	snprintf(req.service, sizeof(req.service), "%s", service);
	snprintf(req.user, sizeof(req.user), "%s", user);
	snprintf(req.password, sizeof(req.password), "%s", password);
	snprintf(req.rhost, sizeof(req.rhost), "192.0.2.7");
	cr_assert_eq(pt_ipc_send(fd, &req, sizeof(req)), 0);
	explicit_bzero(&req, sizeof(req));
	cr_assert_eq(pt_ipc_recv(fd, rep, sizeof(*rep), PT_IPC_AUTH_REP), (ssize_t)sizeof(*rep),
		     "the PAM process gave no answer to request %u", id);
	cr_assert_eq(rep->id, id);
}

/* --- PAM through pam_wrapper --------------------------------------------------- */

Test(authd, good_password_is_ok_with_pams_user_name, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;

	start_authd(&env, NULL);
	ask(env.fd, 7, "portico-test", "alice", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	cr_assert_str_eq(rep.user, "alice");
	cr_assert_eq(rep.fail_delay_ms, 0);
	expect_exit(0);
	cr_assert_str_eq(read_log(env.dir), "", "nothing logged for a good login");
}

Test(authd, the_name_pam_maps_to_is_the_one_answered, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;

	start_authd(&env, "PAM_USER=carol");
	ask(env.fd, 1, "portico-map", "CAROL@EXAMPLE", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	cr_assert_str_eq(rep.user, "carol");
	expect_exit(0);
}

Test(authd, wrong_password_unknown_user_and_refused_account_are_denied, .timeout = 20,
     .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;

	start_authd(&env, NULL);
	ask(env.fd, 1, "portico-test", "alice", "Secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED, "wrong password");
	cr_assert_str_eq(rep.user, "");
	ask(env.fd, 2, "portico-test", "mallory", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED, "unknown user");
	cr_assert_str_eq(rep.user, "");
	ask(env.fd, 3, "portico-test", "bob", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED, "right password, account not allowed here");
	ask(env.fd, 4, "portico-test", "alice", "", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED, "empty password");
	/* One handle per request: an earlier failure leaves nothing behind. */
	ask(env.fd, 5, "portico-test", "alice", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	expect_exit(0);
	cr_assert_str_eq(read_log(env.dir), "", "the net side logs auth failures, not authd");
}

Test(authd, fail_delay_is_reported_not_slept, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;
	int64_t t0, took;

	start_authd(&env, NULL);
	/* First answer includes exec and pam_wrapper's start-up: not timed. */
	ask(env.fd, 1, "portico-delay", "dave", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	cr_assert_eq(rep.fail_delay_ms, 0, "no delay after a success");

	t0 = now_ms();
	ask(env.fd, 2, "portico-delay", "dave", "wrong", &rep);
	took = now_ms() - t0;
	cr_assert_eq(rep.result, PT_AUTH_DENIED);
	/* pam_faildelay asked for 3 s; libpam randomises it by up to 50%. */
	cr_assert(rep.fail_delay_ms >= 1500 && rep.fail_delay_ms <= 4500, "fail_delay_ms %u",
		  rep.fail_delay_ms);
	cr_assert_lt(took, 1000, "the PAM process slept %lld ms", (long long)took);

	t0 = now_ms();
	ask(env.fd, 3, "portico-delay", "nobody-here", "wrong", &rep);
	took = now_ms() - t0;
	cr_assert_eq(rep.result, PT_AUTH_DENIED);
	cr_assert(rep.fail_delay_ms >= 1500 && rep.fail_delay_ms <= 4500,
		  "an unknown user gets a delay too: %u", rep.fail_delay_ms);
	cr_assert_lt(took, 1000);
	expect_exit(0);
}

Test(authd, module_messages_do_not_break_the_conversation, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;

	start_authd(&env, NULL);
	ask(env.fd, 1, "portico-chatty", "erin", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	cr_assert_str_eq(rep.user, "erin");
	ask(env.fd, 2, "portico-chatty", "erin", "nope", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED);
	expect_exit(0);
	/* Both modules ignore a refused message, but libpam logs it, and
	 * pam_wrapper hands libpam's syslog lines to stderr. */
	cr_assert_null(strstr(read_log(env.dir), "conversation failed"), "%s", read_log(env.dir));
}

Test(authd, a_broken_pam_stack_is_an_error_and_logged, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;
	const char *log;

	start_authd(&env, NULL);
	ask(env.fd, 9, "portico-broken", "alice", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_ERROR);
	cr_assert_str_eq(rep.user, "");
	expect_exit(0);
	log = read_log(env.dir);
	cr_assert_not_null(strstr(log, "authd: request 9, service portico-broken: pam_"), "%s",
			   log);
	cr_assert_null(strstr(log, "secret"), "the password is never logged");
}

Test(authd, shipped_service_file_denies_an_unknown_user, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;

	/* Debian 12, the platform, always has them (libpam-runtime is a
	 * required package): their absence is a broken system, not a skip. */
	cr_assert_eq(access("/etc/pam.d/common-auth", R_OK), 0,
		     "no /etc/pam.d/common-auth: the shipped service file cannot be checked");
	start_authd(&env, NULL);
	/* Denied, not an error: the file parses and its stack runs, down to
	 * pam_unix and pam_deny. */
	ask(env.fd, 1, "portico", "no-such-user-portico", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_DENIED, "result %d:\n%s", rep.result, read_log(env.dir));
	/* pam_unix asks for 2 s (randomised by libpam), we only report it. */
	cr_assert(rep.fail_delay_ms >= 1000 && rep.fail_delay_ms <= 3000, "fail_delay_ms %u",
		  rep.fail_delay_ms);
	expect_exit(0);
}

Test(authd, malformed_message_after_good_ones_stops_the_process, .timeout = 20,
     .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;
	char junk[100] = { 0 };

	start_authd(&env, NULL);
	ask(env.fd, 1, "portico-test", "alice", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	cr_assert_eq(pt_ipc_send(env.fd, junk, sizeof(junk)), 0);
	expect_exit(1);
	cr_assert_not_null(strstr(read_log(env.dir), "authd: malformed message from the net side ("
						     "datagram of 100 bytes, expected 904)"));
}

Test(authd, pinned_service_refuses_another, .timeout = 20, .fini = authd_teardown)
{
	struct pt_ipc_auth_rep rep;
	struct pt_ipc_auth_req req = { .type = PT_IPC_AUTH_REQ, .id = 2 };

	start_authd(&env, "PT_TEST_AUTHD_SERVICE=portico-test");
	ask(env.fd, 1, "portico-test", "alice", "secret", &rep);
	cr_assert_eq(rep.result, PT_AUTH_OK);
	/* su's pam_rootok would let a root caller in without a password. */
	strcpy(req.service, "su");
	strcpy(req.user, "root");
	cr_assert_eq(pt_ipc_send(env.fd, &req, sizeof(req)), 0);
	cr_assert_eq(pt_ipc_recv(env.fd, &rep, sizeof(rep), PT_IPC_AUTH_REP), 0, "no answer, EOF");
	expect_exit(1);
	cr_assert_not_null(strstr(read_log(env.dir), "(PAM service not allowed)"));
}

/* --- malformed messages, in-process (they never reach PAM) ---------------------- */

/* Run brk_authd_run on a socketpair that already holds `msg`, with stderr
 * caught; returns its result and the log in log[]. */
static int run_with(const void *msg, size_t len, int close_after, char *log, size_t cap)
{
	char path[] = "/tmp/portico-authd-log.XXXXXX";
	int sv[2], saved, tmp, rc;
	ssize_t n;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	if (msg)
		cr_assert_eq(pt_ipc_send(sv[1], msg, len), 0);
	if (close_after) {
		close(sv[1]);
		sv[1] = -1;
	}
	tmp = mkstemp(path);
	cr_assert_geq(tmp, 0);
	unlink(path);
	saved = dup(STDERR_FILENO);
	dup2(tmp, STDERR_FILENO);
	rc = brk_authd_run(sv[0]);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(tmp, log, cap - 1, 0);
	log[n > 0 ? n : 0] = '\0';
	close(tmp);
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	return rc;
}

static void good_req(struct pt_ipc_auth_req *req)
{
	memset(req, 0, sizeof(*req));
	req->type = PT_IPC_AUTH_REQ;
	req->id = 1;
	strcpy(req->service, "portico");
	strcpy(req->user, "alice");
	strcpy(req->password, "hunter2");
	strcpy(req->rhost, "192.0.2.1");
}

#define MALFORMED "authd: malformed message from the net side ("

Test(authd_malformed, six_hundred_byte_user_name, .timeout = 10)
{
	/* What a net side that ignores the layout might send. */
	struct {
		uint32_t type, id;
		char service[64], user[600], password[512], rhost[64];
	} big;
	char log[4096];

	memset(&big, 0, sizeof(big));
	big.type = PT_IPC_AUTH_REQ;
	strcpy(big.service, "portico");
	memset(big.user, 'a', sizeof(big.user) - 1);
	strcpy(big.password, "hunter2");
	cr_assert_eq(run_with(&big, sizeof(big), 0, log, sizeof(log)), 1);
	cr_assert_not_null(strstr(log, MALFORMED "datagram of 1248 bytes, expected 904)"), "%s",
			   log);
	cr_assert_null(strstr(log, "hunter2"));
}

Test(authd_malformed, short_datagram, .timeout = 10)
{
	struct pt_ipc_auth_req req;
	char log[4096];

	good_req(&req);
	cr_assert_eq(run_with(&req, sizeof(req) - 1, 0, log, sizeof(log)), 1);
	cr_assert_not_null(strstr(log, MALFORMED "datagram of 903 bytes"), "%s", log);
}

Test(authd_malformed, empty_datagram, .timeout = 10)
{
	char log[4096];

	/* recv() returns 0 for it, as for EOF: it must not pass for one. */
	cr_assert_eq(run_with("", 0, 0, log, sizeof(log)), 1);
	cr_assert_not_null(strstr(log, MALFORMED "datagram of 0 bytes"), "%s", log);
}

Test(authd_malformed, wrong_type, .timeout = 10)
{
	struct pt_ipc_auth_req req;
	char log[4096];

	good_req(&req);
	req.type = PT_IPC_AUTH_REP;
	cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1);
	cr_assert_not_null(strstr(log, MALFORMED "message type"), "%s", log);
}

Test(authd_malformed, unterminated_strings, .timeout = 10)
{
	struct pt_ipc_auth_req req;
	char log[4096];

	good_req(&req);
	memset(req.service, 'x', sizeof(req.service));
	cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1, "service");
	cr_assert_not_null(strstr(log, MALFORMED "string at offset 8 "), "%s", log);

	good_req(&req);
	memset(req.user, 'x', sizeof(req.user));
	cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1, "user");

	good_req(&req);
	memset(req.password, 'x', sizeof(req.password));
	cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1, "password");
	cr_assert_null(strstr(log, "xxxx"));

	good_req(&req);
	memset(req.rhost, 'x', sizeof(req.rhost));
	cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1, "rhost");
}

Test(authd_malformed, bad_service_names, .timeout = 10)
{
	static const char *const bad[] = { "", "../../tmp/evil", "/etc/pam.d/su", ".hidden" };
	struct pt_ipc_auth_req req;
	char log[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		good_req(&req);
		strcpy(req.service, bad[i]);
		cr_assert_eq(run_with(&req, sizeof(req), 0, log, sizeof(log)), 1, "'%s'", bad[i]);
		cr_assert_not_null(strstr(log, MALFORMED "bad PAM service name)"), "%s", log);
	}
}

Test(authd_malformed, eof_returns_zero_quietly, .timeout = 10)
{
	char log[4096];

	cr_assert_eq(run_with(NULL, 0, 1, log, sizeof(log)), 0);
	cr_assert_str_eq(log, "");
}

/* --- ipc ----------------------------------------------------------------------- */

static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

Test(ipc, round_trip_both_messages, .timeout = 10)
{
	struct pt_ipc_auth_req req, in;
	struct pt_ipc_auth_rep rep = { .type = PT_IPC_AUTH_REP,
				       .id = 42,
				       .result = PT_AUTH_OK,
				       .fail_delay_ms = 0 },
			       rin;
	int sv[2];

	pair(sv);
	good_req(&req);
	cr_assert_eq(pt_ipc_send(sv[0], &req, sizeof(req)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REQ), (ssize_t)sizeof(in));
	cr_assert_eq(memcmp(&req, &in, sizeof(req)), 0);
	strcpy(rep.user, "alice");
	cr_assert_eq(pt_ipc_send(sv[1], &rep, sizeof(rep)), 0);
	cr_assert_eq(pt_ipc_recv(sv[0], &rin, sizeof(rin), PT_IPC_AUTH_REP), (ssize_t)sizeof(rin));
	cr_assert_eq(rin.id, 42);
	cr_assert_str_eq(rin.user, "alice");
	close(sv[0]);
	close(sv[1]);
}

Test(ipc, oversize_is_eproto_and_the_buffer_wiped, .timeout = 10)
{
	char big[sizeof(struct pt_ipc_auth_req) + 1];
	struct pt_ipc_auth_req req, in;
	static const struct pt_ipc_auth_req zero;
	int sv[2];

	pair(sv);
	good_req(&req);
	memcpy(big, &req, sizeof(req));
	big[sizeof(req)] = 'x';
	cr_assert_eq(pt_ipc_send(sv[0], big, sizeof(big)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REQ), -EPROTO);
	cr_assert_eq(memcmp(&in, &zero, sizeof(in)), 0, "the password copy is wiped");
	cr_assert_str_eq(pt_ipc_error(), "datagram of 905 bytes, expected 904");
	/* The next, well-formed datagram is read whole: nothing was left over. */
	cr_assert_eq(pt_ipc_send(sv[0], &req, sizeof(req)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REQ), (ssize_t)sizeof(in));
	close(sv[0]);
	close(sv[1]);
}

Test(ipc, undersize_wrong_type_and_unterminated_are_eproto, .timeout = 10)
{
	struct pt_ipc_auth_rep rep = { .type = PT_IPC_AUTH_REP }, in;
	int sv[2];

	pair(sv);
	cr_assert_eq(pt_ipc_send(sv[0], &rep, sizeof(rep) - 4), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), -EPROTO);
	rep.type = PT_IPC_AUTH_REQ;
	cr_assert_eq(pt_ipc_send(sv[0], &rep, sizeof(rep)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), -EPROTO);
	rep.type = PT_IPC_AUTH_REP;
	memset(rep.user, 'u', sizeof(rep.user));
	cr_assert_eq(pt_ipc_send(sv[0], &rep, sizeof(rep)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), -EPROTO);
	rep.user[sizeof(rep.user) - 1] = '\0';
	cr_assert_eq(pt_ipc_send(sv[0], &rep, sizeof(rep)), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), (ssize_t)sizeof(in),
		     "255 characters and a NUL fit");
	close(sv[0]);
	close(sv[1]);
}

Test(ipc, eof_empty_datagram_and_caller_errors, .timeout = 10)
{
	struct pt_ipc_auth_rep in;
	int sv[2];

	pair(sv);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in) - 1, PT_IPC_AUTH_REP), -EINVAL,
		     "len that does not match the type");
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), 12345), -EINVAL, "unknown type");
	cr_assert_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), -EAGAIN);
	cr_assert_eq(pt_ipc_send(sv[0], "", 0), 0);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), -EPROTO,
		     "an empty datagram is not EOF");
	close(sv[0]);
	cr_assert_eq(pt_ipc_recv(sv[1], &in, sizeof(in), PT_IPC_AUTH_REP), 0);
	cr_assert_eq(pt_ipc_send(sv[1], &in, sizeof(in)), -EPIPE);
	close(sv[1]);
}
