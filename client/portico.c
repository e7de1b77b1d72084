/*
 * portico - the thin client: log in, see your desktops and applications,
 * open one in the viewer you have.
 *
 *   portico [--broker URL] [--ca FILE] COMMAND ...
 *
 *   login [USER]            ask for the password, keep the login
 *   logout
 *   list                    what you may open
 *   connect NAME [--print] [--viewer PROGRAM] [--geometry WxH]
 *   sessions                your running sessions
 *   end NAME                log off your session in NAME
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "rdp_open.h"

static const char usage_text[] =
	"usage: portico [--broker URL] [--ca FILE] COMMAND\n"
	"  login [USER]                         log in (the password is asked for)\n"
	"  logout\n"
	"  list                                 the desktops and applications you may open\n"
	"  connect NAME [--print] [--viewer PROGRAM] [--geometry WxH]\n"
	"                                       open one (reconnects to a running session)\n"
	"  sessions                             your running sessions\n"
	"  end NAME                             log off your session in NAME\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return CLI_USAGE;
}

static double now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static int cmd_logout(struct cli *c, int argc, char **argv)
{
	json_t *out;

	if (argc != 1)
		return usage();
	if (c->token[0] && c->broker[0] && cli_call(c, "POST", "/logout", NULL, &out) >= 0)
		json_decref(out);
	cli_forget_token(c);
	printf("logged out\n");
	return CLI_OK;
}

static int cmd_list(struct cli *c, int argc, char **argv)
{
	static const char *const head[] = { "NAME", "KIND", "PROTOCOL", "SESSION" };
	json_t *out, *r;
	size_t i;
	int st;

	if (argc != 1)
		return usage();
	if (cli_need_token(c))
		return CLI_FAIL;
	st = cli_call(c, "GET", "/resources", NULL, &out);
	if (st < 0)
		return CLI_FAIL;
	if (st != 200)
		return cli_refused(c, st, out);
	if (c->json) {
		cli_print_json(out);
		json_decref(out);
		return CLI_OK;
	}
	struct cli_table *t = cli_table_new(4, head);
	json_array_foreach(json_object_get(out, "resources"), i, r)
	{
		char a[80], b[20], k[20], s[64];
		json_t *sess = json_object_get(r, "session");
		snprintf(s, sizeof(s), "%s",
			 json_is_object(sess) ? json_string_value(json_object_get(sess, "state"))
					      : "-");
		const char *row[] = { cli_cell(json_object_get(r, "name"), a, sizeof(a)),
				      cli_cell(json_object_get(r, "kind"), k, sizeof(k)),
				      cli_cell(json_object_get(r, "protocol"), b, sizeof(b)), s };
		cli_table_add(t, row);
	}
	cli_table_print(t);
	json_decref(out);
	return CLI_OK;
}

/* An application pool's command "||alias" names a RemoteApp of a Windows
 * RDS host (xfreerdp /app:); anything else is an alternate shell (/shell:). */
static int remote_app(const char *command)
{
	return !strncmp(command, "||", 2);
}

/* The viewer's command line for a launch answer.  The ticket travels in
 * the environment (VNC) or the .rdp file's cookie, not in a log. */
/* Through the RD Gateway (the launch answer names rd_gateway and target):
 * the ticket is the gateway's access token, the target the desktop. */
struct rdg_via {
	const char *gateway, *target;
};

static void viewer_command(struct cli *c, const char *protocol, const char *gateway,
			   const char *ticket, const char *shell, const char *viewer,
			   const struct rdg_via *rdg, char *cmd, size_t len)
{
	char host[300];
	const char *colon = strrchr(gateway, ':');

	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - gateway) : (int)strlen(gateway),
		 gateway);
	if (!strcmp(protocol, "rdp")) {
		/* The program in single quotes for a POSIX shell: ' is '\''. */
		char q[1200] = "";
		size_t n = 0;
		for (const char *p = shell; p && *p && n + 5 < sizeof(q); p++)
			n += (size_t)snprintf(q + n, sizeof(q) - n, *p == '\'' ? "'\\''" : "%c",
					      *p);
		if (rdg->gateway)
			snprintf(cmd, len, "%s /v:%s /g:%s /gat:%s /cert:tofu%s%s%s",
				 viewer ? viewer : "xfreerdp", rdg->target, rdg->gateway, ticket,
				 !shell		     ? ""
				 : remote_app(shell) ? " '/app:"
						     : " '/shell:",
				 q, shell ? "'" : "");
		else
			snprintf(cmd, len,
				 "%s /v:%s /load-balance-info:'Cookie: msts=%s' /cert:tofu%s%s%s",
				 viewer ? viewer : "xfreerdp", gateway, ticket,
				 !shell		     ? ""
				 : remote_app(shell) ? " '/app:"
						     : " '/shell:",
				 q, shell ? "'" : "");
	} else {
		snprintf(cmd, len,
			 "VNC_USERNAME=ticket VNC_PASSWORD=%s %s -SecurityTypes X509Plain%s%s "
			 "%s::%s",
			 ticket, viewer ? viewer : "xtigervncviewer", c->ca[0] ? " -X509CA " : "",
			 c->ca, host, colon ? colon + 1 : "5900");
	}
}

static int cmd_connect(struct cli *c, int argc, char **argv)
{
	const char *name = NULL, *viewer = NULL, *geometry = NULL;
	int print = 0, st;
	json_t *out, *body = NULL;
	char cmd[2048];
	double t0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--print"))
			print = 1;
		else if (!strcmp(argv[i], "--viewer") && i + 1 < argc)
			viewer = argv[++i];
		else if (!strcmp(argv[i], "--geometry") && i + 1 < argc)
			geometry = argv[++i];
		else if (argv[i][0] == '-' || name)
			return usage();
		else
			name = argv[i];
	}
	if (!name)
		return usage();
	if (cli_need_token(c))
		return CLI_FAIL;
	if (geometry)
		body = json_pack("{s:s}", "geometry", geometry);
	fprintf(stderr, "starting %s…", name);
	fflush(stderr);
	t0 = now_s();
	char path[200];
	snprintf(path, sizeof(path), "/resources/%.100s/launch", name);
	st = cli_call(c, "POST", path, body, &out);
	json_decref(body);
	if (st < 0) {
		fputc('\n', stderr);
		return CLI_FAIL;
	}
	if (st != 200) {
		fputc('\n', stderr);
		return cli_refused(c, st, out);
	}
	const char *ticket = json_string_value(json_object_get(out, "ticket"));
	const char *gateway = json_string_value(json_object_get(out, "gateway"));
	const char *protocol = json_string_value(json_object_get(out, "protocol"));
	const char *shell = json_string_value(json_object_get(out, "command"));
	int reconnect = json_is_true(json_object_get(out, "reconnect"));
	struct rdg_via rdg = { json_string_value(json_object_get(out, "rd_gateway")),
			       json_string_value(json_object_get(out, "target")) };
	if (!rdg.target)
		rdg.gateway = NULL;
	if (!ticket || !gateway || !protocol) {
		fprintf(stderr, "\nportico: the broker's answer has no ticket\n");
		json_decref(out);
		return CLI_FAIL;
	}
	fprintf(stderr, " %s in %.1f s\n", reconnect ? "your running session" : "ready",
		now_s() - t0);
	if (print) {
		viewer_command(c, protocol, gateway, ticket, shell, viewer, &rdg, cmd, sizeof(cmd));
		printf("%s\n", cmd);
		if (!strcmp(protocol, "rdp") && rdg.gateway)
			printf("\n# as an .rdp file:\nfull address:s:%s\ngatewayhostname:s:%s\n"
			       "gatewayusagemethod:i:1\ngatewaycredentialssource:i:5\n"
			       "gatewayprofileusagemethod:i:1\ngatewayaccesstoken:s:%s\n"
			       "screen mode id:i:1\nsession bpp:i:32\n%s%s%s",
			       rdg.target, rdg.gateway, ticket,
			       !shell		   ? ""
			       : remote_app(shell) ? "remoteapplicationmode:i:1\n"
						     "remoteapplicationprogram:s:"
						   : "alternate shell:s:",
			       shell ? shell : "", shell ? "\n" : "");
		else if (!strcmp(protocol, "rdp"))
			printf("\n# as an .rdp file:\nfull address:s:%s\n"
			       "loadbalanceinfo:s:Cookie: msts=%s\nscreen mode id:i:1\n"
			       "session bpp:i:32\n%s%s%s",
			       gateway, ticket,
			       !shell		   ? ""
			       : remote_app(shell) ? "remoteapplicationmode:i:1\n"
						     "remoteapplicationprogram:s:"
						   : "alternate shell:s:",
			       shell ? shell : "", shell ? "\n" : "");
		json_decref(out);
		return CLI_OK;
	}
	if (!strcmp(protocol, "rdp")) {
		/* The ticket in a private .rdp file, not on a command line;
		 * through the RD Gateway, its certificate checked first. */
		struct cli_rdp r = { viewer ? viewer : "xfreerdp",
				     rdg.gateway ? rdg.target : gateway,
				     rdg.gateway,
				     ticket,
				     shell,
				     c->ca };
		st = cli_rdp_open(&r);
		json_decref(out);
		return st;
	}
	/* Run the viewer itself (no shell): the ticket goes to a VNC viewer
	 * in its environment, as TigerVNC reads it. */
	char target[400], *vargv[10];
	int k = 0;
	const char *colon = strrchr(gateway, ':');
	snprintf(target, sizeof(target), "%.*s::%s",
		 colon ? (int)(colon - gateway) : (int)strlen(gateway), gateway,
		 colon ? colon + 1 : "5900");
	setenv("VNC_USERNAME", "ticket", 1);
	setenv("VNC_PASSWORD", ticket, 1);
	vargv[k++] = (char *)(viewer ? viewer : "xtigervncviewer");
	vargv[k++] = "-SecurityTypes";
	vargv[k++] = "X509Plain";
	if (c->ca[0]) {
		vargv[k++] = "-X509CA";
		vargv[k++] = c->ca;
	}
	vargv[k++] = target;
	vargv[k] = NULL;
	fflush(stdout);
	execvp(vargv[0], vargv);
	fprintf(stderr, "portico: cannot run %s: %s (install it, or name another with --viewer)\n",
		vargv[0], strerror(errno));
	json_decref(out);
	return CLI_FAIL;
}

/* The user's live session in pool `name`, or 0. */
static long long session_in(json_t *sessions, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(sessions, "sessions"), i, s)
	{
		const char *p = json_string_value(json_object_get(s, "pool"));
		if (p && !strcmp(p, name))
			return (long long)json_integer_value(json_object_get(s, "id"));
	}
	return 0;
}

static int cmd_sessions(struct cli *c, int argc, char **argv, const char *end)
{
	static const char *const head[] = { "ID", "NAME", "HOST", "STATE", "AGE" };
	json_t *out, *s;
	size_t i;
	int st;

	if (argc != (end ? 2 : 1))
		return usage();
	if (cli_need_token(c))
		return CLI_FAIL;
	st = cli_call(c, "GET", "/sessions", NULL, &out);
	if (st < 0)
		return CLI_FAIL;
	if (st != 200)
		return cli_refused(c, st, out);
	if (end) {
		long long id = session_in(out, end);
		char path[64];
		json_decref(out);
		if (!id) {
			fprintf(stderr, "portico: you have no session in %s\n", end);
			return CLI_FAIL;
		}
		snprintf(path, sizeof(path), "/sessions/%lld/logoff", id);
		st = cli_call(c, "POST", path, NULL, &out);
		if (st < 0)
			return CLI_FAIL;
		if (st != 200)
			return cli_refused(c, st, out);
		json_decref(out);
		printf("ended your session in %s\n", end);
		return CLI_OK;
	}
	if (c->json) {
		cli_print_json(out);
		json_decref(out);
		return CLI_OK;
	}
	struct cli_table *t = cli_table_new(5, head);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	long long now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	json_array_foreach(json_object_get(out, "sessions"), i, s)
	{
		char a[32], b[80], h[130], st2[20], age[32];
		const char *row[] = {
			cli_cell(json_object_get(s, "id"), a, sizeof(a)),
			cli_cell(json_object_get(s, "pool"), b, sizeof(b)),
			cli_cell(json_object_get(s, "host"), h, sizeof(h)),
			cli_cell(json_object_get(s, "state"), st2, sizeof(st2)),
			cli_ago(now - (long long)json_integer_value(
					      json_object_get(s, "created_ms")),
				age, sizeof(age)),
		};
		cli_table_add(t, row);
	}
	cli_table_print(t);
	json_decref(out);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	struct cli c;
	int first = cli_init(&c, "portico", argc, argv), n;
	char **args;
	const char *cmd;

	if (first < 0)
		return usage();
	if (first >= argc)
		return usage();
	args = argv + first;
	n = argc - first;
	cmd = args[0];
	if (!strcmp(cmd, "login"))
		return cli_login(&c, n, args, usage);
	if (!strcmp(cmd, "logout"))
		return cmd_logout(&c, n, args);
	if (!strcmp(cmd, "list"))
		return cmd_list(&c, n, args);
	if (!strcmp(cmd, "connect"))
		return cmd_connect(&c, n, args);
	if (!strcmp(cmd, "sessions"))
		return cmd_sessions(&c, n, args, NULL);
	if (!strcmp(cmd, "end"))
		return n == 2 ? cmd_sessions(&c, 2, args, args[1]) : usage();
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return CLI_OK;
	}
	fprintf(stderr, "portico: unknown command '%s'\n", cmd);
	return usage();
}
