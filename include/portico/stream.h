/*
 * stream.h - one connection interface for plain sockets and TLS.
 *
 * A pt_stream is a byte stream with a small vtable, so the relay, the RFB
 * and X.224 front ends and the API client do not care whether a side is a
 * TCP socket, a unix socket or TLS over either (the Redis connection.h idea).
 *
 * Conventions (libuv's): functions return 0 or a negative errno (UV_E*);
 * if a call fails, its callback never fires.  A stream has at most one write
 * in flight.  Data arrives in chunks from pt_chunk_get() whose ownership
 * passes to the read callback.
 */
#ifndef PORTICO_STREAM_H
#define PORTICO_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct pt_stream;

/* nread > 0: chunk holds nread bytes and now belongs to the callee, which
 * gives it back with pt_chunk_put().  nread == UV_EOF: the peer will send no
 * more.  nread < 0: an error; the stream can only be closed.  chunk is NULL
 * whenever nread <= 0. */
typedef void (*pt_stream_read_cb)(struct pt_stream *s, ssize_t nread, char *chunk);
/* A queued write finished (status 0) or failed. */
typedef void (*pt_stream_write_cb)(struct pt_stream *s, int status);
typedef void (*pt_stream_close_cb)(struct pt_stream *s);

/* write() returns this when every byte left at once; no callback follows. */
#define PT_STREAM_DONE 1

struct pt_stream_ops {
	const char *name;
	int (*read_start)(struct pt_stream *s, pt_stream_read_cb cb);
	int (*read_stop)(struct pt_stream *s);
	/* Send len bytes; data stays valid until the callback (or until the
	 * call returns PT_STREAM_DONE).  One write at a time. */
	int (*write)(struct pt_stream *s, const char *data, size_t len, pt_stream_write_cb cb);
	/* Tell the peer no more data follows, after the write in flight. */
	int (*shutdown)(struct pt_stream *s);
	/* Close; cb (may be NULL) fires once the stream's memory is released. */
	void (*close)(struct pt_stream *s, pt_stream_close_cb cb);
	/* The socket descriptor, or -ENOTSUP where bytes cannot be spliced. */
	int (*fileno)(struct pt_stream *s);
};

struct pt_stream {
	const struct pt_stream_ops *ops;
	uv_loop_t *loop;
	uint64_t id; /* connection id for log lines */
	void *data;  /* the owner's */
};

static inline int pt_stream_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	return s->ops->read_start(s, cb);
}
static inline int pt_stream_read_stop(struct pt_stream *s)
{
	return s->ops->read_stop(s);
}
static inline int pt_stream_write(struct pt_stream *s, const char *d, size_t n,
				  pt_stream_write_cb cb)
{
	return s->ops->write(s, d, n, cb);
}
static inline int pt_stream_shutdown(struct pt_stream *s)
{
	return s->ops->shutdown(s);
}
static inline void pt_stream_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	s->ops->close(s, cb);
}
static inline int pt_stream_fileno(struct pt_stream *s)
{
	return s->ops->fileno(s);
}

/* A plain stream over a TCP socket (kind UV_TCP) or a unix socket
 * (UV_NAMED_PIPE).  pt_plain_uv() gives the handle to accept or connect
 * into before reading.  Returns NULL on memory exhaustion. */
struct pt_stream *pt_plain_new(uv_loop_t *loop, uv_handle_type kind);
uv_stream_t *pt_plain_uv(struct pt_stream *s);

/* True for streams made by pt_plain_new(). */
int pt_stream_is_plain(const struct pt_stream *s);

#endif
