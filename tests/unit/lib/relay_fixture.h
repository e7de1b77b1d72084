/*
 * relay_fixture.h - a relay front end and a backend on loopback, run by a
 * libuv loop in their own thread, for tests that drive them with real
 * client sockets from the test thread.
 */
#ifndef TEST_RELAY_FIXTURE_H
#define TEST_RELAY_FIXTURE_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

struct back_conn;

enum backend_mode {
	BACKEND_ECHO,	     /* echo every byte, close after the client's EOF */
	BACKEND_STALL,	     /* accept and never read */
	BACKEND_COUNT_REPLY, /* read to EOF, then answer "got N\n" and close */
};

struct relay_fixture {
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t stop;
	uv_timer_t drain;	 /* waits for relays to end at stop */
	struct back_conn *backs; /* open backend connections */
	uv_tcp_t front, back;
	int front_port, back_port;
	SSL_CTX *server_ctx; /* NULL: plain front end */
	enum backend_mode mode;
	uint64_t idle_ms;
	struct sockaddr_storage back_addr;
	/* results, read by the test thread */
	atomic_int relays_started;
	atomic_int relays_done;
	atomic_int last_status;
	atomic_int spliced;
	atomic_ullong bytes_up, bytes_down;
};

/* Start front end and backend; server_ctx NULL for plain. */
void relay_fixture_start(struct relay_fixture *f, SSL_CTX *server_ctx, enum backend_mode mode,
			 uint64_t idle_ms);
/* Close the backend's connections, wait for every relay to end, close
 * the listeners, and check that the loop had nothing left open. */
void relay_fixture_stop(struct relay_fixture *f);

/* A blocking TCP connection to 127.0.0.1:port. */
int fixture_connect(int port);
/* Wait until pred() holds or ms pass; returns whether it held. */
int fixture_wait(int (*pred)(struct relay_fixture *), struct relay_fixture *f, int ms);

#endif
