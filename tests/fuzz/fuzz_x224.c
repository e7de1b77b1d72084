/*
 * fuzz_x224 - libFuzzer target for the X.224 Connection Request parser,
 * the first bytes anybody on the RDP port sends.
 *
 *   make fuzz                       builds build/fuzz/fuzz_x224 (clang)
 *   build/fuzz/fuzz_x224 -runs=1000000
 *
 * Whatever the input: no crash, no read outside it, and a request that
 * parses rewrites into one that parses again with the same negotiation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/x224.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pt_x224_cr cr, again;
	uint8_t out[70000];
	ssize_t n = pt_x224_parse_cr(data, size, &cr), m;

	if (n <= 0)
		return 0;
	if ((size_t)n > size)
		abort();
	m = pt_x224_rewrite_cr(data, &cr, "alice", out, sizeof(out));
	if (m <= 0)
		return 0;
	if (pt_x224_parse_cr(out, (size_t)m, &again) != m || strcmp(again.cookie, "alice") ||
	    again.has_neg != cr.has_neg || again.protocols != cr.protocols)
		abort();
	return 0;
}
