/* chan_sync.c: encoding and strict decoding of the SYNC messages (chan_sync.h). */
#include "chan/chan_sync.h"

#include <string.h>

bool chan_sync_is_type(const uint8_t *data, size_t size)
{
    return size > 0 && data[0] >= CHAN_MSG_SYNC_ASK && data[0] <= CHAN_MSG_SYNC_EVENTS;
}

void chan_sync_put_header(struct buf *out, const struct chan_sync_msg *m)
{
    buf_put_u8(out, (uint8_t)m->type);
    buf_put_str(out, m->tag);
    switch (m->type) {
    case CHAN_MSG_SYNC_ASK:
        buf_put_u64(out, m->after);
        break;
    case CHAN_MSG_SYNC_LIST:
        buf_put_u64(out, m->after);
        buf_put_u8(out, m->flags);
        buf_put_u32(out, m->count);
        break;
    case CHAN_MSG_SYNC_GET:
        buf_put_u64(out, m->stream);
        buf_put_u64(out, m->from);
        buf_put_u32(out, m->count);
        break;
    case CHAN_MSG_SYNC_EVENTS:
        buf_put_u64(out, m->stream);
        buf_put_u8(out, m->desc_size);
        buf_put_bytes(out, m->desc, m->desc_size);
        buf_put_u64(out, m->from);
        buf_put_u64(out, m->next);
        buf_put_u32(out, m->count);
        break;
    default:
        break;
    }
}

void chan_sync_put_entry(struct buf *out, const struct chan_sync_entry *e)
{
    buf_put_u64(out, e->stream);
    buf_put_u8(out, e->desc_size);
    buf_put_bytes(out, e->desc, e->desc_size);
    buf_put_u64(out, e->first);
    buf_put_u64(out, e->last);
    buf_put_u64(out, e->count);
}

void chan_sync_put_item(struct buf *out, const struct chan_sync_item *it)
{
    buf_put_u64(out, it->position);
    buf_put_blob(out, it->record, it->size);
}

void chan_sync_end(struct buf *out, size_t start, uint32_t count)
{
    if (out->error != 0 || out->used < start + 4u) {
        return;
    }
    /* The count is the header's last field, written just before the first entry or item. */
    struct buf_reader r;
    buf_reader_init(&r, out->data + start, out->used - start);
    uint8_t type = buf_get_u8(&r);
    char tag[TRONE_TAG_MAX + 1];
    buf_get_str(&r, tag, TRONE_TAG_MAX);
    if (type == CHAN_MSG_SYNC_LIST) {
        (void)buf_get_ref(&r, 8u + 1u);
    } else if (type == CHAN_MSG_SYNC_EVENTS) {
        (void)buf_get_u64(&r);
        uint8_t desc_size = buf_get_u8(&r);
        (void)buf_get_ref(&r, (size_t)desc_size + 16u);
    } else {
        return;
    }
    if (r.error == 0 && buf_reader_left(&r) >= 4u) {
        buf_store_u32(out->data + start + r.used, count);
    }
}

static bool tag_ok(const char *tag)
{
    size_t length = strlen(tag);
    if (length == 0) {
        return false;
    }
    for (size_t i = 0; i < length; i++) {
        char c = tag[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* A descriptor must decode and name this message's tag. */
static bool desc_ok(const char *tag, const uint8_t *desc, size_t size)
{
    struct chan_durable_stream d;
    return desc != NULL && chan_durable_desc_decode(&d, desc, size) == 0 && strcmp(d.tag, tag) == 0;
}

void chan_sync_read_entry(struct buf_reader *r, struct chan_sync_entry *e)
{
    e->stream = buf_get_u64(r);
    e->desc_size = buf_get_u8(r);
    e->desc = buf_get_ref(r, e->desc_size);
    e->first = buf_get_u64(r);
    e->last = buf_get_u64(r);
    e->count = buf_get_u64(r);
}

void chan_sync_read_item(struct buf_reader *r, struct chan_sync_item *it)
{
    size_t size = 0;
    it->position = buf_get_u64(r);
    it->record = buf_get_blob(r, CHAN_SYNC_RECORD_MAX, &size);
    it->size = (uint32_t)size;
}

static int chan_sync_check_entries(struct buf_reader *r, const struct chan_sync_msg *m)
{
    uint64_t previous = m->after;
    for (uint32_t i = 0; i < m->count && r->error == 0; i++) {
        struct chan_sync_entry e;
        chan_sync_read_entry(r, &e);
        if (r->error != 0) {
            break;
        }
        bool range = e.count == 0
                         ? e.first == 0 && e.last == 0
                         : e.first >= 1 && e.first <= e.last && e.count - 1 <= e.last - e.first;
        if (e.stream <= previous || !range || !desc_ok(m->tag, e.desc, e.desc_size)) {
            return TRONE_EBADMSG; /* ids strictly increase: pages never overlap */
        }
        previous = e.stream;
    }
    return r->error != 0 ? TRONE_EBADMSG : 0;
}

static int chan_sync_check_items(struct buf_reader *r, const struct chan_sync_msg *m)
{
    uint64_t at = m->from; /* the lowest position the next item may have */
    for (uint32_t i = 0; i < m->count && r->error == 0; i++) {
        struct chan_sync_item it;
        chan_sync_read_item(r, &it);
        if (r->error != 0) {
            break;
        }
        if (it.position < at || it.position >= m->next || it.size < CHAN_SYNC_RECORD_MIN) {
            return TRONE_EBADMSG;
        }
        at = it.position + 1; /* no wrap: position < next */
    }
    return r->error != 0 ? TRONE_EBADMSG : 0;
}

static int chan_sync_read_fields(struct buf_reader *r, struct chan_sync_msg *m)
{
    switch (m->type) {
    case CHAN_MSG_SYNC_ASK:
        m->after = buf_get_u64(r);
        return 0;
    case CHAN_MSG_SYNC_LIST:
        m->after = buf_get_u64(r);
        m->flags = buf_get_u8(r);
        m->count = buf_get_u32(r);
        return r->error == 0 && (m->flags > CHAN_SYNC_LIST_END || m->count > CHAN_SYNC_LIST_MAX)
                   ? TRONE_EBADMSG
                   : 0;
    case CHAN_MSG_SYNC_GET:
        m->stream = buf_get_u64(r);
        m->from = buf_get_u64(r);
        m->count = buf_get_u32(r);
        return r->error == 0 && (m->stream == 0 || m->from == 0 || m->count == 0 ||
                                 m->count > CHAN_SYNC_GET_MAX || m->from > UINT64_MAX - m->count)
                   ? TRONE_EBADMSG
                   : 0;
    case CHAN_MSG_SYNC_EVENTS: {
        m->stream = buf_get_u64(r);
        m->desc_size = buf_get_u8(r);
        const uint8_t *desc = m->desc_size <= sizeof(m->desc) ? buf_get_ref(r, m->desc_size) : NULL;
        m->from = buf_get_u64(r);
        m->next = buf_get_u64(r);
        m->count = buf_get_u32(r);
        if (r->error != 0) {
            return TRONE_EBADMSG;
        }
        if (desc == NULL || m->stream == 0 || m->from == 0 || m->next <= m->from ||
            m->count > CHAN_SYNC_GET_MAX || m->count > m->next - m->from) {
            return TRONE_EBADMSG;
        }
        memcpy(m->desc, desc, m->desc_size);
        return desc_ok(m->tag, m->desc, m->desc_size) ? 0 : TRONE_EBADMSG;
    }
    default:
        return TRONE_EBADMSG;
    }
}

int chan_sync_read(struct buf_reader *r, const uint8_t *data, size_t size, struct chan_sync_msg *m)
{
    memset(m, 0, sizeof(*m));
    buf_reader_init(r, data, size);
    m->type = (enum chan_msg_type)buf_get_u8(r);
    buf_get_str(r, m->tag, TRONE_TAG_MAX);
    if (r->error != 0 || !tag_ok(m->tag) || chan_sync_read_fields(r, m) != 0 || r->error != 0) {
        return TRONE_EBADMSG;
    }
    struct buf_reader body = *r;
    int rc = 0;
    if (m->type == CHAN_MSG_SYNC_LIST) {
        rc = chan_sync_check_entries(&body, m);
    } else if (m->type == CHAN_MSG_SYNC_EVENTS) {
        rc = chan_sync_check_items(&body, m);
    }
    if (rc != 0 || buf_reader_finish(&body) != 0) {
        return TRONE_EBADMSG;
    }
    return 0;
}
