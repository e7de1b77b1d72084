/* buf.c - see include/portico/buf.h */
#include "portico/buf.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Enough free chunks to feed a busy loop without going back to malloc; more
 * than that goes back to the system so a burst does not stay resident. */
#define FREE_MAX 64

struct free_chunk {
	struct free_chunk *next;
};

static _Thread_local struct free_chunk *free_list;
static _Thread_local int free_count;
static atomic_int_fast64_t in_use;

char *pt_chunk_get(void)
{
	char *c;

	if (free_list) {
		c = (char *)free_list;
		free_list = free_list->next;
		free_count--;
	} else {
		c = malloc(PT_CHUNK_SIZE);
		if (!c)
			return NULL;
	}
	atomic_fetch_add(&in_use, 1);
	return c;
}

void pt_chunk_put(char *chunk)
{
	struct free_chunk *f;

	if (!chunk)
		return;
	atomic_fetch_sub(&in_use, 1);
	if (free_count >= FREE_MAX) {
		free(chunk);
		return;
	}
	f = (struct free_chunk *)chunk;
	f->next = free_list;
	free_list = f;
	free_count++;
}

void pt_chunk_release_thread(void)
{
	while (free_list) {
		struct free_chunk *f = free_list;
		free_list = f->next;
		free(f);
	}
	free_count = 0;
}

int64_t pt_chunk_in_use(void)
{
	return atomic_load(&in_use);
}

char *pt_buf_space(struct pt_buf *b, size_t *avail)
{
	if (!b->data) {
		b->data = pt_chunk_get();
		if (!b->data)
			return NULL;
		b->off = b->len = 0;
	}
	if (b->off + b->len == PT_CHUNK_SIZE && b->off > 0) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	*avail = PT_CHUNK_SIZE - b->off - b->len;
	if (*avail == 0)
		return NULL;
	return b->data + b->off + b->len;
}

void pt_buf_commit(struct pt_buf *b, size_t n)
{
	b->len += n;
}

void pt_buf_consume(struct pt_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		pt_buf_reset(b);
}

void pt_buf_reset(struct pt_buf *b)
{
	pt_chunk_put(b->data);
	b->data = NULL;
	b->off = b->len = 0;
}
