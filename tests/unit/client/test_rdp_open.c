/*
 * portico connect's .rdp file and its check of the RD Gateway's address
 * (client/rdp_open.c): the text xfreerdp reads, and what the broker's
 * answer or a configuration could hold that must not get into it; host and
 * port as malformed as they come.  The certificate checks themselves run
 * against a real gateway in tests/integration/test_client_rdp.sh.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rdp_open.h"

#define TICKET "AAAAbbbbCCCCddddEEEEffffGGGGhhhhIIIIjjjjKKK"

Test(rdp_text, direct, .timeout = 5)
{
	struct cli_rdp r = { "xfreerdp", "gw.example.org:3389", NULL, TICKET, NULL, "" };
	char *t = cli_rdp_text(&r);

	cr_assert_not_null(t);
	cr_assert_str_eq(t, "full address:s:gw.example.org:3389\r\n"
			    "loadbalanceinfo:s:Cookie: msts=" TICKET "\r\n"
			    "screen mode id:i:1\r\nsession bpp:i:32\r\n");
	free(t);
}

Test(rdp_text, rd_gateway, .timeout = 5)
{
	struct cli_rdp r = { "xfreerdp", "10.0.0.5:3389", "gw.example.org:443", TICKET, NULL, "" };
	char *t = cli_rdp_text(&r);

	cr_assert_not_null(t);
	cr_assert_str_eq(t, "full address:s:10.0.0.5:3389\r\n"
			    "gatewayhostname:s:gw.example.org:443\r\n"
			    "gatewayusagemethod:i:1\r\ngatewaycredentialssource:i:5\r\n"
			    "gatewayprofileusagemethod:i:1\r\n"
			    "gatewayaccesstoken:s:" TICKET "\r\n"
			    "authentication level:i:0\r\n"
			    "screen mode id:i:1\r\nsession bpp:i:32\r\n");
	cr_assert_null(strstr(t, "loadbalanceinfo"), "the ticket twice");
	free(t);
}

Test(rdp_text, programs, .timeout = 5)
{
	struct cli_rdp r = {
		"xfreerdp", "h:3389", NULL, TICKET, "/usr/bin/xclock -title it's", ""
	};
	char *t = cli_rdp_text(&r);

	cr_assert_not_null(strstr(t, "\r\nalternate shell:s:/usr/bin/xclock -title it's\r\n"));
	cr_assert_null(strstr(t, "remoteapplication"));
	free(t);
	r.shell = "||notepad";
	t = cli_rdp_text(&r);
	cr_assert_not_null(strstr(t, "\r\nremoteapplicationmode:i:1\r\n"
				     "remoteapplicationprogram:s:||notepad\r\n"
				     "remoteapplicationname:s:notepad\r\n"));
	cr_assert_null(strstr(t, "alternate shell"));
	free(t);
}

/* A line break in any value would add a key of the sender's choosing
 * (another gateway, another address, a drive to redirect). */
Test(rdp_text, line_breaks_refused, .timeout = 5)
{
	static const char *const bad[] = { "x\r\ndrivestoredirect:s:*", "x\ngatewayhostname:s:evil",
					   "x\r", "\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cli_rdp r = { "xfreerdp", "h:3389", "g:443", TICKET, NULL, "" };
		r.ticket = bad[i];
		cr_assert_null(cli_rdp_text(&r), "ticket %zu", i);
		r.ticket = TICKET;
		r.address = bad[i];
		cr_assert_null(cli_rdp_text(&r), "address %zu", i);
		r.address = "h:3389";
		r.rd_gateway = bad[i];
		cr_assert_null(cli_rdp_text(&r), "gateway %zu", i);
		r.rd_gateway = "g:443";
		r.shell = bad[i];
		cr_assert_null(cli_rdp_text(&r), "shell %zu", i);
	}
	struct cli_rdp none = { "xfreerdp", "h:3389", NULL, NULL, NULL, "" };
	cr_assert_null(cli_rdp_text(&none));
	none.ticket = TICKET;
	none.address = NULL;
	cr_assert_null(cli_rdp_text(&none));
}

Test(tls_check, malformed_addresses, .timeout = 5)
{
	static const char *const bad[] = { "",	      "gw.example.org", "gw:",	    ":443",
					   "gw:44x",  "gw:-1",		"gw:+443",  "[::1]443",
					   "[::1",    "::1:443",	"a:b:c",    "[]:443",
					   "gw: 443", "gw:0",		"gw:65536", "gw:00000" };
	char fp[100], err[300], lng[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(cli_tls_check(bad[i], "", fp, sizeof(fp), err, sizeof(err)), -1,
			     "'%s'", bad[i]);
		cr_assert(strstr(err, "is no host:port"), "'%s': %s", bad[i], err);
	}
	memset(lng, 'a', sizeof(lng));
	strcpy(lng + 300, ":443");
	cr_assert_eq(cli_tls_check(lng, "", fp, sizeof(fp), err, sizeof(err)), -1);
	strcpy(lng, "127.0.0.1:443999999");
	cr_assert_eq(cli_tls_check(lng, "", fp, sizeof(fp), err, sizeof(err)), -1);
}

Test(tls_check, unreachable_and_bad_ca, .timeout = 15)
{
	char fp[100], err[300];

	/* Port 1 on loopback: nobody listens (refused at once). */
	cr_assert_eq(cli_tls_check("127.0.0.1:1", "", fp, sizeof(fp), err, sizeof(err)), -2);
	cr_assert_str_eq(err, "Connection refused");
	cr_assert_eq(cli_tls_check("[::1]:1", "", fp, sizeof(fp), err, sizeof(err)) < 0, 1);
	/* A CA file that is not there is said before any connection. */
	cr_assert_eq(cli_tls_check("127.0.0.1:1", "/nonexistent/ca.pem", fp, sizeof(fp), err,
				   sizeof(err)),
		     -1);
	cr_assert_str_eq(err, "cannot read the CA /nonexistent/ca.pem");
}
