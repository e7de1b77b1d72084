/*
 * cli.h - what `portico` and `portico-admin` share: where the broker is,
 * the login token, calls to the broker, tables.
 *
 * Settings come from the command line (--broker URL, --ca FILE), else from
 * ~/.config/portico/config ("broker = URL", "ca = FILE"), else from the
 * last login.  The broker may be a list of URLs of brokers side by side
 * ("https://b1:8443, https://b2:8443", portico/urls.h), tried in turn.  The
 * token is kept in ~/.config/portico/token (0600) with the broker it
 * belongs to.
 */
#ifndef CLIENT_CLI_H
#define CLIENT_CLI_H

#include <jansson.h>

#include "portico/api.h"

/* Exit statuses: 0 done, 1 refused or failed, 2 usage. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* portico-admin pki ... (argv[0] is "pki"): a CA and the nodes'
 * certificates.  CLI_OK, CLI_FAIL or CLI_USAGE. */
int cli_pki(int argc, char **argv);

struct cli {
	const char *prog;
	char broker[PT_URLS_LEN + 1];
	char ca[512];
	char token[128];
	int json; /* --json */
	struct pt_api_conf api;
};

/* Take the global options (--broker, --ca, --json) off argv; fill c from
 * them, the config file and the saved login.  Returns the index of the
 * first argument that is not a global option, or -1 after a usage
 * message. */
int cli_init(struct cli *c, const char *prog, int argc, char **argv);

/* The broker must be known, and a good list of URLs: 0, or -1 with a
 * message naming what is wrong. */
int cli_need_broker(struct cli *c);
/* A login must exist: 0, or -1 with "log in first". */
int cli_need_token(struct cli *c);

/* Call the broker.  Returns the HTTP status with *out the JSON answer (or
 * NULL), or -1 after printing why no answer came ("cannot reach the broker
 * at URL: ..."). */
int cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out);

/* Print the broker's error message for a failed answer; CLI_FAIL. */
int cli_refused(struct cli *c, int status, json_t *doc);

/* Save or forget the token (the broker and CA it came from are kept). */
int cli_save_token(struct cli *c, const char *token);
void cli_forget_token(struct cli *c);

/* `login [USER]`: ask for what is missing, log in, keep the token.  When
 * PAM asks for more (a one-time code: the broker's 401 "challenge"), its
 * question is asked, hidden unless PAM says echo, and answered, as often
 * as it asks.  A CLI exit status (usage() for bad arguments). */
int cli_login(struct cli *c, int argc, char **argv, int (*usage)(void));

/* Print a JSON document for --json (NULL: {}). */
void cli_print_json(json_t *doc);

/* Read a line from the terminal; with echo off for passwords.  When stdin
 * is not a terminal it reads a line from stdin (scripts, tests). */
int cli_prompt(const char *question, int secret, char *buf, size_t len);

/* A table: header names, then rows of the same number of cells; printed
 * with columns aligned. */
struct cli_table;
struct cli_table *cli_table_new(int ncols, const char *const *header);
void cli_table_add(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t); /* and frees it */

/* Short text of a JSON value for a table cell ("-" for null). */
const char *cli_cell(json_t *v, char *buf, size_t len);

/* "3m", "2h 5m", "4 s": a duration for people. */
const char *cli_ago(long long ms, char *buf, size_t len);

#endif
