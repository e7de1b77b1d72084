/*
 * buf.h - fixed-size chunks for the data path.
 *
 * Every byte the relay and the TLS streams move sits in a chunk of
 * PT_CHUNK_SIZE bytes.  Chunks come from a per-thread free list, so the data
 * path allocates nothing per chunk once warm, and an idle connection holds
 * none: memory follows the traffic, not the connection count.
 */
#ifndef PORTICO_BUF_H
#define PORTICO_BUF_H

#include <stddef.h>
#include <stdint.h>

#define PT_CHUNK_SIZE (128 * 1024)

/* A chunk of PT_CHUNK_SIZE bytes, or NULL when memory is exhausted. */
char *pt_chunk_get(void);

/* Give a chunk back (NULL-safe). */
void pt_chunk_put(char *chunk);

/* Free this thread's cache of spare chunks; a thread that used chunks
 * calls it before it exits. */
void pt_chunk_release_thread(void);

/* Chunks handed out and not yet given back, by all threads. */
int64_t pt_chunk_in_use(void);

/* A byte queue over one chunk, taken when the first byte arrives and given
 * back when the last one leaves.  Readable bytes are data[off .. off+len). */
struct pt_buf {
	char *data;
	size_t off;
	size_t len;
};

/* Free space at the tail (compacting first if that helps), taking a chunk if
 * the buffer has none.  Returns NULL when there is no space or memory. */
char *pt_buf_space(struct pt_buf *b, size_t *avail);

/* n bytes were written at the pointer pt_buf_space returned. */
void pt_buf_commit(struct pt_buf *b, size_t n);

/* Drop n bytes from the front; the chunk goes back when the buffer empties. */
void pt_buf_consume(struct pt_buf *b, size_t n);

/* Drop everything and give the chunk back. */
void pt_buf_reset(struct pt_buf *b);

#endif
