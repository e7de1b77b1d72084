/* test_routes.c - the broker's route table: what every row promises, and
 * how a path finds its row (the role check itself is tried over HTTPS by
 * tests/integration/test_routes.sh). */
#include <criterion/criterion.h>
#include <http_parser.h>
#include <string.h>

#include "api.h"

Test(routes, every_row_names_roles_and_loop_rows_admit_no_user, .timeout = 10)
{
	size_t n;
	const struct brk_route *r = brk_api_routes(&n);
	const int known =
		BRK_ROLE_USER | BRK_ROLE_ADMIN | BRK_ROLE_GATEWAY | BRK_ROLE_HOST | BRK_ROLE_ANYONE;

	cr_assert_gt(n, 20);
	for (size_t i = 0; i < n; i++) {
		cr_assert_neq(r[i].roles, 0, "%s admits nobody", r[i].path);
		cr_assert_eq(r[i].roles & ~known, 0, "%s: unknown role bits", r[i].path);
		cr_assert_not(r[i].roles & BRK_ROLE_BROKER, "%s: the broker calls no broker route",
			      r[i].path);
		cr_assert_not_null(r[i].handler, "%s", r[i].path);
		/* A user's token is checked on the thread pool, where a loop
		 * handler must never run. */
		if (r[i].flags & BRK_ROUTE_LOOP)
			cr_assert_not(r[i].roles & (BRK_ROLE_USER | BRK_ROLE_ADMIN),
				      "%s runs on the loop but admits users", r[i].path);
		/* Node roles and user roles are never mixed on one row. */
		if (r[i].roles & (BRK_ROLE_GATEWAY | BRK_ROLE_HOST))
			cr_assert_not(r[i].roles &
					      (BRK_ROLE_USER | BRK_ROLE_ADMIN | BRK_ROLE_ANYONE),
				      "%s", r[i].path);
		/* One row per method and path. */
		for (size_t k = 0; k < i; k++)
			cr_assert(r[k].method != r[i].method || strcmp(r[k].path, r[i].path),
				  "%s %s twice", http_method_str(r[i].method), r[i].path);
	}
}

Test(routes, a_path_finds_its_row_or_says_which_methods, .timeout = 10)
{
	unsigned long allowed;
	const struct brk_route *r;

	r = brk_api_match(HTTP_POST, "/api/v1/resources/office/launch", &allowed);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->path, "/resources/:name/launch");
	r = brk_api_match(HTTP_GET, "/api/v1/resources/office/launch.rdp", &allowed);
	cr_assert_not_null(r);
	cr_assert_eq(r->op, BRK_OP_RDP_FILE);
	r = brk_api_match(HTTP_POST, "/api/v1/admin/hosts/10.0.0.5:5901/drain", &allowed);
	cr_assert_not_null(r);
	cr_assert_eq(r->op, BRK_OP_DRAIN);

	/* Known path, other method: no row, and the methods it takes. */
	cr_assert_null(brk_api_match(HTTP_DELETE, "/api/v1/admin/pools", &allowed));
	cr_assert_eq(allowed, (1UL << HTTP_GET) | (1UL << HTTP_POST));
	cr_assert_null(brk_api_match(HTTP_GET, "/api/v1/login", &allowed));
	cr_assert_eq(allowed, 1UL << HTTP_POST);

	/* Unknown paths: nothing allowed. */
	const char *unknown[] = { "/api/v1/nosuch",
				  "/api/v1/",
				  "/api/v1",
				  "/login",
				  "/api/v2/login",
				  "/api/v1/login/",
				  "/api/v1//login",
				  "/api/v1/resources/office",
				  "/api/v1/admin/pools/a/b/c",
				  "/api/v1/resources/office/launch/x",
				  "" };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		cr_assert_null(brk_api_match(HTTP_POST, unknown[i], &allowed), "%s", unknown[i]);
		cr_assert_eq(allowed, 0, "%s", unknown[i]);
	}
}

Test(routes, the_status_map, .timeout = 10)
{
	cr_assert_eq(brk_api_status(-EINVAL), 400);
	cr_assert_eq(brk_api_status(-EACCES), 401);
	cr_assert_eq(brk_api_status(-EPERM), 403);
	cr_assert_eq(brk_api_status(-ENOENT), 404);
	cr_assert_eq(brk_api_status(-EEXIST), 409);
	cr_assert_eq(brk_api_status(-EUSERS), 429);
	cr_assert_eq(brk_api_status(-EIO), 500);
	cr_assert_eq(brk_api_status(-EREMOTEIO), 502);
	cr_assert_eq(brk_api_status(-ENOSPC), 503);
	cr_assert_eq(brk_api_status(-ENOTRECOVERABLE), 500, "unknown: 500");
}
