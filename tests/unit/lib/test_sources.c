/* test_sources.c - counts per source (pt_sources_*) and what a peer's source
 * is (pt_net_peer_of, pt_net_peer over a real loopback connection). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

#include "portico/net.h"
#include "portico/sources.h"

Test(sources, counts_go_up_and_down_per_source, .timeout = 10)
{
	struct pt_sources *t = pt_sources_new();

	cr_assert_not_null(t);
	cr_assert_eq(pt_sources_get(t, "192.0.2.7"), 0);
	cr_assert_eq(pt_sources_add(t, "192.0.2.7", 1), 1);
	cr_assert_eq(pt_sources_add(t, "192.0.2.7", 1), 2);
	cr_assert_eq(pt_sources_add(t, "192.0.2.8", 1), 1);
	cr_assert_eq(pt_sources_add(t, "2001:db8:0:1::/64", 3), 3);
	cr_assert_eq(pt_sources_get(t, "192.0.2.7"), 2);
	cr_assert_eq(pt_sources_get(t, "192.0.2.8"), 1);
	cr_assert_eq(pt_sources_get(t, "2001:db8:0:1::/64"), 3);
	cr_assert_eq(pt_sources_add(t, "192.0.2.7", -1), 1);
	cr_assert_eq(pt_sources_add(t, "192.0.2.7", -1), 0);
	cr_assert_eq(pt_sources_get(t, "192.0.2.7"), 0);
	cr_assert_eq(pt_sources_get(t, "192.0.2.8"), 1, "another source's count moved");
	pt_sources_free(t);
}

Test(sources, a_count_never_goes_below_zero, .timeout = 10)
{
	struct pt_sources *t = pt_sources_new();

	cr_assert_eq(pt_sources_add(t, "198.51.100.1", -1), 0);
	cr_assert_eq(pt_sources_get(t, "198.51.100.1"), 0);
	cr_assert_eq(pt_sources_add(t, "198.51.100.1", 2), 2);
	cr_assert_eq(pt_sources_add(t, "198.51.100.1", -5), 0);
	cr_assert_eq(pt_sources_add(t, "198.51.100.1", 1), 1, "the entry came back wrong");
	pt_sources_free(t);
}

Test(sources, the_unknown_peer_is_a_source_of_its_own, .timeout = 10)
{
	struct pt_sources *t = pt_sources_new();

	cr_assert_eq(pt_sources_add(t, "", 1), 1);
	cr_assert_eq(pt_sources_get(t, ""), 1);
	cr_assert_eq(pt_sources_get(t, "0.0.0.0"), 0);
	pt_sources_free(t);
}

/* More sources than buckets: every chain holds several, each keeps its own
 * count, and removing some leaves the others right. */
Test(sources, many_sources_share_buckets_and_keep_their_counts, .timeout = 30)
{
	struct pt_sources *t = pt_sources_new();
	char s[64];

	for (int i = 0; i < 20000; i++) {
		snprintf(s, sizeof(s), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		cr_assert_eq(pt_sources_add(t, s, 1 + i % 3), 1 + i % 3);
	}
	for (int i = 0; i < 20000; i += 2) {
		snprintf(s, sizeof(s), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		cr_assert_eq(pt_sources_add(t, s, -(1 + i % 3)), 0);
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(s, sizeof(s), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		cr_assert_eq(pt_sources_get(t, s), i % 2 ? 1 + i % 3 : 0, "%s", s);
	}
	pt_sources_free(t);
	pt_sources_free(NULL);
}

static void peer_of(const char *text, char *addr, char *src, int *rc)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(443);
		cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1, "%s", text);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(443);
		cr_assert_eq(inet_pton(AF_INET, text, &in4->sin_addr), 1, "%s", text);
	}
	*rc = pt_net_peer_of((struct sockaddr *)&ss, addr, 80, src, 64);
}

Test(net_peer, ipv4_is_its_own_source, .timeout = 10)
{
	char addr[80], src[64];
	int rc;

	peer_of("192.0.2.7", addr, src, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(addr, "192.0.2.7");
	cr_assert_str_eq(src, "192.0.2.7");
	peer_of("192.0.2.8", addr, src, &rc);
	cr_assert_str_eq(src, "192.0.2.8", "two IPv4 addresses share a source");
}

Test(net_peer, ipv6_counts_per_64, .timeout = 10)
{
	char addr[80], src[64], src2[64];
	int rc;

	peer_of("2001:db8:0:1:aaaa:bbbb:cccc:dddd", addr, src, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(addr, "2001:db8:0:1:aaaa:bbbb:cccc:dddd");
	cr_assert_str_eq(src, "2001:db8:0:1::/64");
	/* Another address of the same /64: the same source. */
	peer_of("2001:db8:0:1::2", addr, src2, &rc);
	cr_assert_str_eq(addr, "2001:db8:0:1::2");
	cr_assert_str_eq(src2, src);
	/* The next /64: another. */
	peer_of("2001:db8:0:2::2", addr, src2, &rc);
	cr_assert_str_eq(src2, "2001:db8:0:2::/64");
	peer_of("::1", addr, src2, &rc);
	cr_assert_str_eq(addr, "::1");
	cr_assert_str_eq(src2, "::/64");
	peer_of("fe80::1:2:3:4", addr, src2, &rc);
	cr_assert_str_eq(src2, "fe80::/64");
}

Test(net_peer, v4_mapped_is_ipv4, .timeout = 10)
{
	char addr[80], src[64];
	int rc;

	/* A dual-stack listener sees IPv4 clients so: they count as IPv4,
	 * one source per address, not all of them in ::ffff:0:0/64. */
	peer_of("::ffff:192.0.2.7", addr, src, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(addr, "192.0.2.7");
	cr_assert_str_eq(src, "192.0.2.7");
	peer_of("::ffff:192.0.2.8", addr, src, &rc);
	cr_assert_str_eq(src, "192.0.2.8");
}

Test(net_peer, other_families_and_small_buffers, .timeout = 10)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	char addr[80] = "x", src[64] = "x", small[8];

	cr_assert_eq(pt_net_peer_of((struct sockaddr *)&un, addr, sizeof(addr), src, sizeof(src)),
		     -EAFNOSUPPORT);
	cr_assert_str_eq(addr, "");
	cr_assert_str_eq(src, "");
	/* Either may be NULL; a short buffer gets a cut, terminated string. */
	inet_pton(AF_INET6, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", &in6.sin6_addr);
	cr_assert_eq(pt_net_peer_of((struct sockaddr *)&in6, NULL, 0, small, sizeof(small)), 0);
	cr_assert_str_eq(small, "2001:db");
	cr_assert_eq(pt_net_peer_of((struct sockaddr *)&in6, small, sizeof(small), NULL, 0), 0);
	cr_assert_str_eq(small, "2001:db");
}

/* pt_net_peer on a real connection from 127.0.0.2 to 127.0.0.1. */
struct pair {
	uv_tcp_t server, client, accepted;
	uv_connect_t req;
	char addr[80], src[64];
	int rc, done;
};

static void on_conn(uv_stream_t *server, int status)
{
	struct pair *p = server->data;

	cr_assert_eq(status, 0);
	uv_tcp_init(server->loop, &p->accepted);
	cr_assert_eq(uv_accept(server, (uv_stream_t *)&p->accepted), 0);
	p->rc = pt_net_peer(&p->accepted, p->addr, sizeof(p->addr), p->src, sizeof(p->src));
	p->done = 1;
	uv_close((uv_handle_t *)&p->accepted, NULL);
	uv_close((uv_handle_t *)&p->server, NULL);
}

static void on_connected(uv_connect_t *req, int status)
{
	cr_assert_eq(status, 0);
	uv_close((uv_handle_t *)req->handle, NULL);
}

Test(net_peer, a_real_peer_on_loopback, .timeout = 10)
{
	struct pair p = { 0 };
	struct sockaddr_in sa, from;
	int len = sizeof(sa);
	uv_loop_t loop;

	uv_loop_init(&loop);
	uv_tcp_init(&loop, &p.server);
	p.server.data = &p;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	cr_assert_eq(uv_tcp_bind(&p.server, (struct sockaddr *)&sa, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&p.server, 4, on_conn), 0);
	uv_tcp_getsockname(&p.server, (struct sockaddr *)&sa, &len);
	uv_tcp_init(&loop, &p.client);
	uv_ip4_addr("127.0.0.2", 0, &from);
	cr_assert_eq(uv_tcp_bind(&p.client, (struct sockaddr *)&from, 0), 0);
	cr_assert_eq(uv_tcp_connect(&p.req, &p.client, (struct sockaddr *)&sa, on_connected), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(p.done);
	cr_assert_eq(p.rc, 0);
	cr_assert_str_eq(p.addr, "127.0.0.2");
	cr_assert_str_eq(p.src, "127.0.0.2");
	cr_assert_eq(uv_loop_close(&loop), 0);
}
