/* test_throttle.c - the failed-login penalty table. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "throttle.h"

Test(throttle, limit_within_window_blocks_then_wears_off, .timeout = 10)
{
	struct brk_throttle *t = brk_throttle_new(1024, 3, 3000);

	for (int i = 0; i < 3; i++) {
		cr_assert_not(brk_throttle_blocked(t, "addr:10.0.0.1", 1000));
		brk_throttle_fail(t, "addr:10.0.0.1", 1000);
	}
	cr_assert(brk_throttle_blocked(t, "addr:10.0.0.1", 1000));
	cr_assert_not(brk_throttle_blocked(t, "addr:10.0.0.2", 1000), "another source is not hit");
	/* Locked for one window from the failure that reached the limit. */
	cr_assert(brk_throttle_blocked(t, "addr:10.0.0.1", 3900));
	cr_assert_not(brk_throttle_blocked(t, "addr:10.0.0.1", 4100));
	brk_throttle_free(t);
}

Test(throttle, slow_failures_never_block, .timeout = 10)
{
	struct brk_throttle *t = brk_throttle_new(1024, 3, 3000);

	for (int i = 0; i < 100; i++) {
		brk_throttle_fail(t, "user:bob", i * 1600);
		cr_assert_not(brk_throttle_blocked(t, "user:bob", i * 1600), "at failure %d", i);
	}
	brk_throttle_free(t);
}

Test(throttle, ipv6_counts_per_64, .timeout = 10)
{
	char a[96], b[96], c[96], d[96];

	brk_throttle_addr_key("2001:db8:1:2:aaaa::1", a, sizeof(a));
	brk_throttle_addr_key("2001:db8:1:2:bbbb::7", b, sizeof(b));
	brk_throttle_addr_key("2001:db8:1:3::1", c, sizeof(c));
	brk_throttle_addr_key("192.0.2.1", d, sizeof(d));
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_str_eq(d, "addr:192.0.2.1");
}

Test(throttle, full_table_keeps_the_worst_offender, .timeout = 10)
{
	struct brk_throttle *t = brk_throttle_new(64, 5, 60000);
	char key[64];

	for (int i = 0; i < 10; i++)
		brk_throttle_fail(t, "addr:attacker", 0);
	cr_assert(brk_throttle_blocked(t, "addr:attacker", 0));
	/* A flood of one-off keys fills the table; the blocked key stays. */
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "user:spray%d", i);
		brk_throttle_fail(t, key, 0);
	}
	cr_assert(brk_throttle_blocked(t, "addr:attacker", 0));
	brk_throttle_free(t);
}

Test(throttle, attempts_in_flight_count_and_successes_are_forgiven, .timeout = 10)
{
	struct brk_throttle *t = brk_throttle_new(1024, 5, 60000);
	int admitted = 0;

	/* 64 at once, each counted as it starts: 5 get through. */
	for (int i = 0; i < 64; i++) {
		if (brk_throttle_blocked(t, "user:bob", 1000))
			continue;
		brk_throttle_fail(t, "user:bob", 1000);
		admitted++;
	}
	cr_assert_eq(admitted, 5);
	brk_throttle_free(t);

	/* Successes take their attempt back: a user who logs in often is
	 * never locked out. */
	t = brk_throttle_new(1024, 3, 60000);
	for (int i = 0; i < 100; i++) {
		cr_assert_not(brk_throttle_blocked(t, "user:alice", 1000 + i), "at login %d", i);
		brk_throttle_fail(t, "user:alice", 1000 + i);
		brk_throttle_forgive(t, "user:alice", 1000 + i);
	}
	brk_throttle_forgive(t, "user:nobody", 1000); /* unknown: nothing */
	cr_assert_not(brk_throttle_blocked(t, "user:nobody", 1000));
	brk_throttle_free(t);
}
