/* buf.h: little-endian wire encoding into a growable buffer and bounds-checked decoding.
 * Errors are sticky: after the first failure every call is a no-op and the error is kept,
 * so a codec checks once at the end. Never casts a struct onto the wire (STYLE.md rule 12). */
#ifndef TRONE_BUF_H
#define TRONE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trone/error.h"

/* A byte buffer that grows up to size_max. Zero-initialise, or use buf_init. */
struct buf {
    uint8_t *data;
    size_t used;
    size_t capacity;
    size_t size_max; /* 0 means TRONE_MESSAGE_MAX */
    int error;       /* first error, 0 if none */
};

void buf_init(struct buf *b, size_t size_max);
/* Frees the storage; the buf may be reused after buf_init. */
void buf_close(struct buf *b);
/* Empties the buffer and clears the error, keeping the storage for reuse. */
void buf_reset(struct buf *b);
/* Ensures room for extra more bytes; sets TRONE_ETOOBIG or TRONE_ENOMEM on failure. */
TRONE_MUST_CHECK int buf_reserve(struct buf *b, size_t extra);
/* Appends size bytes, returns a pointer to them (zeroed) or NULL on error. */
uint8_t *buf_append(struct buf *b, size_t size);
/* As buf_append without zeroing, for a caller that writes every one of the size bytes before
 * the buffer is read or sent (copies, framing): on the event path each byte would otherwise
 * be written twice. */
uint8_t *buf_append_uninit(struct buf *b, size_t size);

void buf_put_u8(struct buf *b, uint8_t v);
void buf_put_u16(struct buf *b, uint16_t v);
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_u64(struct buf *b, uint64_t v);
void buf_put_bytes(struct buf *b, const void *data, size_t size);
/* u32 length then the bytes. */
void buf_put_blob(struct buf *b, const void *data, size_t size);
/* u16 length then the bytes of a NUL-terminated string (at most 65535 bytes). */
void buf_put_str(struct buf *b, const char *s);

/* Reads from borrowed bytes; never allocates. */
struct buf_reader {
    const uint8_t *data;
    size_t size;
    size_t used;
    int error;
};

void buf_reader_init(struct buf_reader *r, const void *data, size_t size);
uint8_t buf_get_u8(struct buf_reader *r);
uint16_t buf_get_u16(struct buf_reader *r);
uint32_t buf_get_u32(struct buf_reader *r);
uint64_t buf_get_u64(struct buf_reader *r);
/* Copies size bytes into out (zeroed on error). */
void buf_get_bytes(struct buf_reader *r, void *out, size_t size);
/* Returns a pointer to the next size bytes inside the input, or NULL on error. */
const uint8_t *buf_get_ref(struct buf_reader *r, size_t size);
/* A u32-length blob of at most size_max bytes; returns its bytes (inside the input), sets *size. */
const uint8_t *buf_get_blob(struct buf_reader *r, size_t size_max, size_t *size);
/* A u16-length string of at most size_max bytes without NUL bytes, copied into out
 * (capacity size_max + 1) and terminated. */
void buf_get_str(struct buf_reader *r, char *out, size_t size_max);
size_t buf_reader_left(const struct buf_reader *r);
/* 0 if every byte was consumed without error; TRONE_EBADMSG on trailing bytes or any error. */
TRONE_MUST_CHECK int buf_reader_finish(const struct buf_reader *r);

/* Plain helpers for fixed layouts. */
static inline void buf_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t buf_load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void buf_store_u64(uint8_t *p, uint64_t v)
{
    buf_store_u32(p, (uint32_t)v);
    buf_store_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t buf_load_u64(const uint8_t *p)
{
    return (uint64_t)buf_load_u32(p) | (uint64_t)buf_load_u32(p + 4) << 32;
}

#endif
