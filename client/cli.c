/* cli.c - see cli.h */
#include "cli.h"

#include "portico/ticket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

/* Questions PAM may ask after the password (one-time codes), at most. */
#define CLI_CHALLENGES_MAX 8

/* ~/.config/portico (or $XDG_CONFIG_HOME/portico) into buf. */
static int config_dir(char *buf, size_t len, int create)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char parent[512];

	if (xdg && *xdg)
		snprintf(parent, sizeof(parent), "%s", xdg);
	else if (home && *home)
		snprintf(parent, sizeof(parent), "%s/.config", home);
	else
		return -1;
	snprintf(buf, len, "%.480s/portico", parent);
	if (create) {
		if (mkdir(parent, 0700) == -1 && errno != EEXIST)
			return -1;
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* "key = value" lines; unknown keys are ignored (newer clients). */
static void read_kv(const char *path, struct cli *c, int with_token)
{
	char line[PT_URLS_LEN + 64];
	FILE *f = fopen(path, "re");

	while (f && fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '='), *k = line, *v;
		if (!eq || line[0] == '#' || line[0] == ';')
			continue;
		*eq = '\0';
		v = eq + 1;
		while (*k == ' ' || *k == '\t')
			k++;
		for (char *e = eq - 1; e >= k && (*e == ' ' || *e == '\t'); e--)
			*e = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\r\n")] = '\0';
		if (!strcmp(k, "broker") && !c->broker[0])
			snprintf(c->broker, sizeof(c->broker), "%s", v);
		else if (!strcmp(k, "ca") && !c->ca[0])
			snprintf(c->ca, sizeof(c->ca), "%s", v);
		else if (!strcmp(k, "token") && with_token)
			snprintf(c->token, sizeof(c->token), "%s", v);
	}
	if (f)
		fclose(f);
}

int cli_init(struct cli *c, const char *prog, int argc, char **argv)
{
	char dir[600], path[700], tok_broker[sizeof(c->broker)] = "";
	int i;

	memset(c, 0, sizeof(*c));
	c->prog = prog;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			c->json = 1;
		} else if ((!strcmp(a, "--broker") || !strcmp(a, "--ca")) && i + 1 < argc) {
			char *dst = a[2] == 'b' ? c->broker : c->ca;
			size_t len = a[2] == 'b' ? sizeof(c->broker) : sizeof(c->ca);
			struct pt_urls u;
			char why[300];
			if (strlen(argv[i + 1]) >= len) {
				fprintf(stderr, "%s: %s is too long\n", prog, a);
				return -1;
			}
			if (a[2] == 'b' && pt_urls_parse(argv[i + 1], &u, why, sizeof(why))) {
				fprintf(stderr, "%s: --broker: %s\n", prog, why);
				return -1;
			}
			snprintf(dst, len, "%s", argv[++i]);
		} else if (!strcmp(a, "--broker") || !strcmp(a, "--ca")) {
			fprintf(stderr, "%s: %s needs a value\n", prog, a);
			return -1;
		} else {
			break;
		}
	}
	if (config_dir(dir, sizeof(dir), 0) == 0) {
		/* The saved login first: its broker is the one its token is for,
		 * unless another one was named. */
		struct cli saved;
		memset(&saved, 0, sizeof(saved));
		snprintf(path, sizeof(path), "%s/token", dir);
		read_kv(path, &saved, 1);
		snprintf(tok_broker, sizeof(tok_broker), "%s", saved.broker);
		snprintf(path, sizeof(path), "%s/config", dir);
		read_kv(path, c, 0);
		if (!c->broker[0])
			snprintf(c->broker, sizeof(c->broker), "%s", saved.broker);
		if (!c->ca[0])
			snprintf(c->ca, sizeof(c->ca), "%s", saved.ca);
		if (saved.token[0] && !strcmp(tok_broker, c->broker))
			snprintf(c->token, sizeof(c->token), "%s", saved.token);
		explicit_bzero(&saved, sizeof(saved));
	}
	c->api.base = c->broker;
	c->api.ca = c->ca[0] ? c->ca : NULL;
	c->api.bearer = c->token[0] ? c->token : NULL;
	c->api.timeout_ms = 120000; /* a VM may take a while to start */
	pt_api_global_init();
	return i;
}

int cli_need_broker(struct cli *c)
{
	struct pt_urls u;
	char why[300];

	if (c->broker[0] && pt_urls_parse(c->broker, &u, why, sizeof(why)) == 0)
		return 0;
	if (c->broker[0]) {
		/* from the config file or the saved login: --broker was checked */
		fprintf(stderr, "%s: bad broker in ~/.config/portico: %s\n", c->prog, why);
		return -1;
	}
	fprintf(stderr,
		"%s: which broker? Give --broker https://HOST:8443 (once: it is remembered "
		"at login) or put \"broker = URL\" in ~/.config/portico/config\n",
		c->prog);
	return -1;
}

int cli_need_token(struct cli *c)
{
	if (cli_need_broker(c))
		return -1;
	if (c->token[0])
		return 0;
	fprintf(stderr, "%s: not logged in to %s: run \"%s login\" first\n", c->prog, c->broker,
		c->prog);
	return -1;
}

int cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out)
{
	struct pt_api_resp r;
	char err[PT_URLS_MAX * 300], full[700];
	int rc;

	*out = NULL;
	snprintf(full, sizeof(full), "/api/v1%s", path);
	rc = pt_api_call(&c->api, method, full, body, &r, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: cannot reach %s: %s\n", c->prog,
			strchr(c->broker, ',') ? "any broker" : "the broker", err);
		pt_api_resp_free(&r);
		return -1;
	}
	rc = r.status;
	*out = r.json;
	r.json = NULL;
	pt_api_resp_free(&r);
	return rc;
}

int cli_refused(struct cli *c, int status, json_t *doc)
{
	const char *m = json_string_value(json_object_get(doc, "message"));

	if (status == 401 && c->token[0])
		fprintf(stderr, "%s: %s\n", c->prog,
			m ? m : "your login has expired: log in again");
	else
		fprintf(stderr, "%s: %s\n", c->prog, m ? m : "the broker refused");
	json_decref(doc);
	return CLI_FAIL;
}

int cli_save_token(struct cli *c, const char *token)
{
	char dir[600], path[700], tmp[720];
	FILE *f;
	int fd;

	if (config_dir(dir, sizeof(dir), 1)) {
		fprintf(stderr, "%s: no home directory to keep the login in\n", c->prog);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/token", dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "%s: cannot write %s: %s\n", c->prog, tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fprintf(f, "broker = %s\nca = %s\ntoken = %s\n", c->broker, c->ca, token);
	if (fclose(f) != 0 || rename(tmp, path) == -1) {
		fprintf(stderr, "%s: cannot write %s: %s\n", c->prog, path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

void cli_forget_token(struct cli *c)
{
	/* The broker and CA stay remembered for the next login. */
	c->token[0] = '\0';
	cli_save_token(c, "");
}

int cli_prompt(const char *question, int secret, char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO), ok;

	if (tty) {
		fputs(question, stderr);
		fflush(stderr);
	}
	if (tty && secret && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		ok = fgets(buf, (int)len, stdin) != NULL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	} else {
		ok = fgets(buf, (int)len, stdin) != NULL;
	}
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

struct cli_table {
	int ncols, nrows, cap;
	char **cells; /* nrows * ncols, row 0 the header */
};

struct cli_table *cli_table_new(int ncols, const char *const *header)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	cli_table_add(t, header);
	return t;
}

void cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (!t)
		return;
	if (t->nrows == t->cap) {
		int cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, (size_t)cap * (size_t)t->ncols * sizeof(char *));
		if (!n)
			return;
		t->cells = n;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "-");
	t->nrows++;
}

void cli_table_print(struct cli_table *t)
{
	int w[16] = { 0 };

	if (!t)
		return;
	for (int r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncols && i < 16; i++) {
			const char *s = t->cells[r * t->ncols + i];
			int n = s ? (int)strlen(s) : 0;
			if (n > w[i])
				w[i] = n;
		}
	for (int r = 0; r < t->nrows; r++) {
		for (int i = 0; i < t->ncols && i < 16; i++) {
			const char *s = t->cells[r * t->ncols + i];
			if (i == t->ncols - 1)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s  ", w[i], s ? s : "");
		}
	}
	for (int k = 0; k < t->nrows * t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t);
}

const char *cli_cell(json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		snprintf(buf, len, "-");
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v)) {
		size_t i, o = 0;
		json_t *e;
		buf[0] = '\0';
		json_array_foreach(v, i, e)
		{
			if (o < len)
				o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
						      json_is_string(e) ? json_string_value(e)
									: "?");
		}
		if (!i)
			snprintf(buf, len, "-");
	} else {
		char *d = json_dumps(v, JSON_COMPACT);
		snprintf(buf, len, "%s", d ? d : "?");
		free(d);
	}
	return buf;
}

const char *cli_ago(long long ms, char *buf, size_t len)
{
	long long s = ms / 1000;

	if (s < 60)
		snprintf(buf, len, "%lld s", s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm", s / 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh %lldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%lldd %lldh", s / 86400, s / 3600 % 24);
	return buf;
}

/* PAM's question as a prompt: printable (the broker's words, which are a
 * module's), ending in one space; a default when it gave none. */
static void cli_question(char *q, size_t len, const char *prompt)
{
	size_t n;

	snprintf(q, len, "%s", prompt && *prompt ? prompt : "Code: ");
	for (char *p = q; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	n = strlen(q);
	if (n > 0 && q[n - 1] != ' ' && n + 1 < len) {
		q[n] = ' ';
		q[n + 1] = '\0';
	}
}

int cli_login(struct cli *c, int argc, char **argv, int (*usage)(void))
{
	char user[256] = "", pw[512] = "", ago[32];
	json_t *out, *body;
	const char *tok;
	int st, admin;

	if (argc > 2)
		return usage();
	if (cli_need_broker(c))
		return CLI_FAIL;
	if (argc == 2) {
		snprintf(user, sizeof(user), "%s", argv[1]);
	} else if (cli_prompt("User name: ", 0, user, sizeof(user)) || !user[0]) {
		fprintf(stderr, "%s: no user name\n", c->prog);
		return CLI_FAIL;
	}
	if (cli_prompt("Password: ", 1, pw, sizeof(pw))) {
		fprintf(stderr, "%s: no password\n", c->prog);
		return CLI_FAIL;
	}
	body = json_pack("{s:s,s:s}", "username", user, "password", pw);
	explicit_bzero(pw, sizeof(pw));
	c->api.bearer = NULL;
	st = cli_call(c, "POST", "/login", body, &out);
	json_decref(body);
	/* PAM asks for more (a one-time code): its question, as many times
	 * as it asks, each answered once. */
	for (int round = 0; st == 401 && round < CLI_CHALLENGES_MAX; round++) {
		const char *err = json_string_value(json_object_get(out, "error"));
		const char *id = json_string_value(json_object_get(out, "challenge"));
		const char *prompt = json_string_value(json_object_get(out, "prompt"));
		char q[600];

		if (!err || strcmp(err, "challenge") || !id)
			break;
		cli_question(q, sizeof(q), prompt);
		if (cli_prompt(q, !json_is_true(json_object_get(out, "echo")), pw, sizeof(pw))) {
			fprintf(stderr, "%s: no answer to \"%s\"\n", c->prog, q);
			json_decref(out);
			return CLI_FAIL;
		}
		body = json_pack("{s:s,s:s}", "challenge", id, "answer", pw);
		explicit_bzero(pw, sizeof(pw));
		json_decref(out);
		out = NULL;
		st = body ? cli_call(c, "POST", "/login", body, &out) : -1;
		json_decref(body);
	}
	if (st < 0)
		return CLI_FAIL;
	if (st != 200)
		return cli_refused(c, st, out);
	tok = json_string_value(json_object_get(out, "token"));
	admin = json_is_true(json_object_get(out, "admin"));
	if (!tok || !pt_ticket_valid(tok) || cli_save_token(c, tok)) {
		json_decref(out);
		return CLI_FAIL;
	}
	printf("logged in to %s as %s%s, for %s\n", c->broker,
	       json_string_value(json_object_get(out, "user")), admin ? " (an administrator)" : "",
	       cli_ago(json_integer_value(json_object_get(out, "expires_in_ms")), ago,
		       sizeof(ago)));
	json_decref(out);
	return CLI_OK;
}

void cli_print_json(json_t *doc)
{
	char *d = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;

	puts(d ? d : "{}");
	free(d);
}
