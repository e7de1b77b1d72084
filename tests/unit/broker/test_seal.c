/* The password sealed for single sign-on opens only with its own token,
 * and not at all once altered. */
#include <criterion/criterion.h>
#include <string.h>

#include "portico/ticket.h"
#include "seal.h"

static char key[PT_TICKET_LEN + 1], other[PT_TICKET_LEN + 1];

static void setup(void)
{
	cr_assert_eq(pt_ticket_new(key), 0);
	cr_assert_eq(pt_ticket_new(other), 0);
}

TestSuite(seal, .init = setup);

Test(seal, round_trip_and_fresh_nonce)
{
	char a[1024], b[1024], out[600];

	cr_assert_eq(brk_seal(key, "correct horse battery staple", a, sizeof(a)), 0);
	cr_assert_eq(brk_seal(key, "correct horse battery staple", b, sizeof(b)), 0);
	cr_assert_str_neq(a, b, "each seal has its own nonce");
	cr_assert_null(strstr(a, "horse"));
	cr_assert_eq(brk_unseal(key, a, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "correct horse battery staple");
	cr_assert_eq(brk_unseal(key, b, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "correct horse battery staple");
}

Test(seal, empty_and_longest_passwords)
{
	char pw[512], s[1024], out[600];

	cr_assert_eq(brk_seal(key, "", s, sizeof(s)), 0);
	cr_assert_eq(brk_unseal(key, s, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	cr_assert_eq(brk_seal(key, pw, s, sizeof(s)), 0);
	cr_assert_eq(brk_unseal(key, s, out, sizeof(out)), 0);
	cr_assert_str_eq(out, pw);
	cr_assert_eq(brk_unseal(key, s, out, 100), -1, "an answer too long for out is refused");
	cr_assert_eq(brk_seal(key, pw, s, 100), -1, "out too small is refused");
}

Test(seal, wrong_key_refused)
{
	char s[1024], out[600];

	cr_assert_eq(brk_seal(key, "secret", s, sizeof(s)), 0);
	cr_assert_eq(brk_unseal(other, s, out, sizeof(out)), -1);
}

Test(seal, altered_truncated_or_garbage_refused)
{
	char s[1024], t[1024], out[600];
	size_t len;

	cr_assert_eq(brk_seal(key, "secret", s, sizeof(s)), 0);
	len = strlen(s);
	for (size_t i = 0; i < len; i++) { /* every byte flipped in turn */
		strcpy(t, s);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		cr_assert_eq(brk_unseal(key, t, out, sizeof(out)), -1, "flip at %zu", i);
	}
	strcpy(t, s);
	t[len - 4] = '\0';
	cr_assert_eq(brk_unseal(key, t, out, sizeof(out)), -1);
	cr_assert_eq(brk_unseal(key, "", out, sizeof(out)), -1);
	cr_assert_eq(brk_unseal(key, "AAAA", out, sizeof(out)), -1);
	cr_assert_eq(brk_unseal(key, "not base64 at all!!!", out, sizeof(out)), -1);
	memset(t, 'A', sizeof(t) - 4);
	t[sizeof(t) - 4] = '\0';
	cr_assert_eq(brk_unseal(key, t, out, sizeof(out)), -1);
}
