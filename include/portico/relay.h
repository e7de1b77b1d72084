/*
 * relay.h - join two streams and copy bytes both ways.
 *
 * Backpressure: each direction reads one chunk, stops reading, writes it to
 * the other side and reads again only once the write is done, so a slow or
 * stalled side pauses the other and a relay never holds more than a few
 * chunks whatever its peers do.  An EOF from one side is passed on as a
 * shutdown of the other (half-close); the relay ends when both directions
 * have ended, on an error, or after idle_timeout without a byte either way.
 *
 * When both sides are plain sockets the bytes go through splice(2) and a
 * pipe and never enter user space (the RDP passthrough path).
 */
#ifndef PORTICO_RELAY_H
#define PORTICO_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "portico/stream.h"

struct pt_relay;

/* What the session record needs. */
struct pt_relay_stats {
	uint64_t bytes_up;   /* client -> server */
	uint64_t bytes_down; /* server -> client */
	uint64_t start_ms;   /* uv_now() at start */
	uint64_t end_ms;     /* uv_now() at the end */
	uint64_t last_up_ms; /* last client -> server byte (last input) */
	uint64_t last_down_ms;
	int spliced; /* the splice path carried the bytes */
};

/* The relay ended.  status: 0 when both sides finished, UV_ETIMEDOUT after
 * the idle timeout, else the error that ended it.  Both streams are closed
 * (their memory released) by then; the relay may be freed here. */
typedef void (*pt_relay_done_cb)(struct pt_relay *r, int status);

/* Start relaying between client and server, which the relay now owns.
 * idle_timeout_ms 0 disables the timeout.  Returns NULL (and closes nothing)
 * on memory exhaustion. */
struct pt_relay *pt_relay_start(uv_loop_t *loop, struct pt_stream *client, struct pt_stream *server,
				uint64_t idle_timeout_ms, pt_relay_done_cb cb, void *data);

/* End the relay now (closing both sides); done_cb fires with UV_ECANCELED. */
void pt_relay_stop(struct pt_relay *r);

/* Add this relay's bytes to two counters too (a protocol's totals across
 * connections, metrics.h), as they move: one relaxed atomic add per chunk
 * read or spliced, no lock.  What moved before the call is added at once;
 * either may be NULL. */
struct pt_series;
void pt_relay_count(struct pt_relay *r, struct pt_series *up, struct pt_series *down);

const struct pt_relay_stats *pt_relay_stats(const struct pt_relay *r);
void *pt_relay_data(const struct pt_relay *r);
/* The relay's memory is freed after done_cb returns. */

#endif
