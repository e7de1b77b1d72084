/* test_ticket.c - tickets and tokens. */
#include <criterion/criterion.h>
#include <string.h>

#include "portico/ticket.h"

Test(ticket, fresh_tickets_are_43_urlsafe_chars_and_differ, .timeout = 10)
{
	char a[PT_TICKET_LEN + 1], b[PT_TICKET_LEN + 1];

	cr_assert_eq(pt_ticket_new(a), 0);
	cr_assert_eq(pt_ticket_new(b), 0);
	cr_assert_eq(strlen(a), 43);
	cr_assert(pt_ticket_valid(a));
	cr_assert_str_neq(a, b);
	cr_assert_eq(strcspn(a, "+/="), 43, "not URL-safe: %s", a);
}

Test(ticket, malformed_tickets_are_invalid, .timeout = 10)
{
	char t[PT_TICKET_LEN + 1];

	pt_ticket_new(t);
	cr_assert_not(pt_ticket_valid(NULL));
	cr_assert_not(pt_ticket_valid(""));
	t[10] = '/';
	cr_assert_not(pt_ticket_valid(t));
	t[10] = 'A';
	t[42] = '\0';
	cr_assert_not(pt_ticket_valid(t));
	cr_assert_not(pt_ticket_valid("../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

Test(ticket, hash_is_sha256_hex, .timeout = 10)
{
	char h[PT_TICKET_HASH_LEN + 1];

	pt_ticket_hash("abc", h);
	cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
