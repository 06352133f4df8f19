/* buf.c: growable little-endian encoder and bounds-checked decoder. */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/limits.h"

void buf_init(struct buf *b, size_t size_max)
{
    memset(b, 0, sizeof(*b));
    b->size_max = size_max;
}

void buf_close(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void buf_reset(struct buf *b)
{
    b->used = 0;
    b->error = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (b->error != 0) {
        return b->error;
    }
    size_t limit = b->size_max != 0 ? b->size_max : TRONE_MESSAGE_MAX;
    if (extra > limit || b->used > limit - extra) {
        b->error = TRONE_ETOOBIG;
        return b->error;
    }
    size_t need = b->used + extra;
    if (need <= b->capacity) {
        return 0;
    }
    size_t capacity = b->capacity < 256 ? 256 : b->capacity;
    while (capacity < need) {
        capacity *= 2; /* bounded: need <= limit, so at most ~64 doublings */
    }
    if (capacity > limit) {
        capacity = limit;
    }
    uint8_t *data = realloc(b->data, capacity);
    if (data == NULL) {
        b->error = TRONE_ENOMEM;
        return b->error;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

uint8_t *buf_append_uninit(struct buf *b, size_t size)
{
    if (buf_reserve(b, size) != 0) {
        return NULL;
    }
    uint8_t *p = b->data + b->used;
    b->used += size;
    return p;
}

uint8_t *buf_append(struct buf *b, size_t size)
{
    uint8_t *p = buf_append_uninit(b, size);
    if (p != NULL) {
        memset(p, 0, size);
    }
    return p;
}

void buf_put_u8(struct buf *b, uint8_t v)
{
    uint8_t *p = buf_append(b, 1);
    if (p != NULL) {
        p[0] = v;
    }
}

void buf_put_u16(struct buf *b, uint16_t v)
{
    uint8_t *p = buf_append(b, 2);
    if (p != NULL) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
    }
}

void buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t *p = buf_append(b, 4);
    if (p != NULL) {
        buf_store_u32(p, v);
    }
}

void buf_put_u64(struct buf *b, uint64_t v)
{
    uint8_t *p = buf_append(b, 8);
    if (p != NULL) {
        buf_store_u64(p, v);
    }
}

void buf_put_bytes(struct buf *b, const void *data, size_t size)
{
    if (size == 0) {
        return;
    }
    uint8_t *p = buf_append_uninit(b, size);
    if (p != NULL) {
        memcpy(p, data, size);
    }
}

void buf_put_blob(struct buf *b, const void *data, size_t size)
{
    if (size > UINT32_MAX) {
        b->error = b->error != 0 ? b->error : TRONE_ETOOBIG;
        return;
    }
    buf_put_u32(b, (uint32_t)size);
    buf_put_bytes(b, data, size);
}

void buf_put_str(struct buf *b, const char *s)
{
    size_t size = strlen(s);
    if (size > UINT16_MAX) {
        b->error = b->error != 0 ? b->error : TRONE_ETOOBIG;
        return;
    }
    buf_put_u16(b, (uint16_t)size);
    buf_put_bytes(b, s, size);
}

void buf_reader_init(struct buf_reader *r, const void *data, size_t size)
{
    r->data = data;
    r->size = size;
    r->used = 0;
    r->error = 0;
}

const uint8_t *buf_get_ref(struct buf_reader *r, size_t size)
{
    if (r->error != 0) {
        return NULL;
    }
    if (size > r->size - r->used) {
        r->error = TRONE_EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->data + r->used;
    r->used += size;
    return p;
}

uint8_t buf_get_u8(struct buf_reader *r)
{
    const uint8_t *p = buf_get_ref(r, 1);
    return p != NULL ? p[0] : 0;
}

uint16_t buf_get_u16(struct buf_reader *r)
{
    const uint8_t *p = buf_get_ref(r, 2);
    return p != NULL ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t buf_get_u32(struct buf_reader *r)
{
    const uint8_t *p = buf_get_ref(r, 4);
    return p != NULL ? buf_load_u32(p) : 0;
}

uint64_t buf_get_u64(struct buf_reader *r)
{
    const uint8_t *p = buf_get_ref(r, 8);
    return p != NULL ? buf_load_u64(p) : 0;
}

void buf_get_bytes(struct buf_reader *r, void *out, size_t size)
{
    const uint8_t *p = buf_get_ref(r, size);
    if (p != NULL) {
        memcpy(out, p, size);
    } else if (size > 0) {
        memset(out, 0, size);
    }
}

const uint8_t *buf_get_blob(struct buf_reader *r, size_t size_max, size_t *size)
{
    uint32_t length = buf_get_u32(r);
    *size = 0;
    if (r->error != 0) {
        return NULL;
    }
    if (length > size_max) {
        r->error = TRONE_EBADMSG;
        return NULL;
    }
    const uint8_t *p = buf_get_ref(r, length);
    if (p != NULL) {
        *size = length;
    }
    return p;
}

void buf_get_str(struct buf_reader *r, char *out, size_t size_max)
{
    out[0] = '\0';
    uint16_t length = buf_get_u16(r);
    if (r->error != 0) {
        return;
    }
    if (length > size_max) {
        r->error = TRONE_EBADMSG;
        return;
    }
    const uint8_t *p = buf_get_ref(r, length);
    if (p == NULL) {
        return;
    }
    if (memchr(p, '\0', length) != NULL) {
        r->error = TRONE_EBADMSG;
        return;
    }
    memcpy(out, p, length);
    out[length] = '\0';
}

size_t buf_reader_left(const struct buf_reader *r) { return r->size - r->used; }

int buf_reader_finish(const struct buf_reader *r)
{
    if (r->error != 0 || r->used != r->size) {
        return TRONE_EBADMSG;
    }
    return 0;
}
