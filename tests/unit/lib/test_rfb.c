/* RFB pieces: version strings, VNC authentication, the password file. */
#include <criterion/criterion.h>
#include <string.h>

#include "portico/rfb.h"

Test(rfb, versions, .timeout = 5)
{
	cr_assert_eq(pt_rfb_version_minor("RFB 003.008\n"), 8);
	cr_assert_eq(pt_rfb_version_minor("RFB 003.007\n"), 7);
	cr_assert_eq(pt_rfb_version_minor("RFB 003.003\n"), 3);
	cr_assert_eq(pt_rfb_version_minor("RFB 003.889\n"), 8, "Apple's 3.889 is 3.8");
	cr_assert_eq(pt_rfb_version_minor("RFB 004.001\n"), -1);
	cr_assert_eq(pt_rfb_version_minor("RFB 003.008 "), -1);
	cr_assert_eq(pt_rfb_version_minor("GET / HTTP/1"), -1);
	cr_assert_eq(pt_rfb_version_minor("RFB 0x3.008\n"), -1);
	cr_assert_eq(pt_rfb_version_minor("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n"), -1);
}

/* Computed apart from the code under test: `printf secret12 | openssl enc
 * -des-ecb -provider legacy -K e84ad660c4721ae0 -nopad | xxd -p`; the
 * session agent's test has a real Xvnc accept the file. */
Test(rfb, password_file_matches_vncpasswd, .timeout = 5)
{
	uint8_t out[8];
	static const uint8_t want[8] = { 0x24, 0xb5, 0xae, 0x4c, 0xe1, 0x55, 0x03, 0xc6 };

	cr_assert_eq(pt_rfb_vnc_obfuscate("secret12", out), 0);
	cr_assert_arr_eq(out, want, 8);
	/* Only the first 8 bytes count. */
	cr_assert_eq(pt_rfb_vnc_obfuscate("secret12-and-more", out), 0);
	cr_assert_arr_eq(out, want, 8);
}

/* The known answer from `openssl enc -des-ecb -provider legacy -K
 * 8646c626a666e616` ("abcdefgh" with each byte's bits reversed). */
Test(rfb, vnc_response_depends_on_password_and_challenge, .timeout = 5)
{
	uint8_t ch[16], a[16], b[16], c[16];
	static const uint8_t want[16] = { 0x8a, 0xd9, 0x74, 0x84, 0x61, 0x32, 0xdc, 0x3e,
					  0x06, 0xc5, 0x5b, 0x08, 0xca, 0x66, 0x70, 0x2f };

	for (int i = 0; i < 16; i++)
		ch[i] = (uint8_t)(i * 17);
	cr_assert_eq(pt_rfb_vnc_response("abcdefgh", ch, a), 0);
	cr_assert_arr_eq(a, want, 16);
	cr_assert_eq(pt_rfb_vnc_response("abcdefgh-ignored", ch, b), 0);
	cr_assert_arr_eq(a, b, 16);
	cr_assert_eq(pt_rfb_vnc_response("abcdefgX", ch, c), 0);
	cr_assert_arr_neq(a, c, 16);
	ch[0] ^= 1;
	cr_assert_eq(pt_rfb_vnc_response("abcdefgh", ch, c), 0);
	cr_assert_arr_neq(a, c, 16);
}
