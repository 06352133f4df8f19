/* chan_msg.c: encoding and strict decoding of the event path's messages (chan_msg.h). */
#include "chan/chan_msg.h"

#include <stdbool.h>
#include <string.h>

int chan_msg_is_event_type(const uint8_t *data, size_t size)
{
    return size > 0 && ((data[0] >= CHAN_MSG_PUBLISH && data[0] <= CHAN_MSG_REPLAY) ||
                        (data[0] >= CHAN_MSG_SYNC_ASK && data[0] <= CHAN_MSG_SYNC_EVENTS));
}

static int has_events(enum chan_msg_type type)
{
    return type == CHAN_MSG_PUBLISH || type == CHAN_MSG_DELIVER || type == CHAN_MSG_DELIVER_TOTAL ||
           type == CHAN_MSG_FETCHED;
}

void chan_msg_put_header(struct buf *out, const struct chan_msg *m)
{
    buf_put_u8(out, (uint8_t)m->type);
    buf_put_str(out, m->tag);
    switch (m->type) {
    case CHAN_MSG_PUBLISH:
        buf_put_u32(out, m->event_count);
        break;
    case CHAN_MSG_ACK:
        buf_put_u64(out, m->epoch);
        buf_put_u64(out, m->seq);
        buf_put_u32(out, (uint32_t)m->status);
        break;
    case CHAN_MSG_ATTACHED:
        buf_put_u32(out, (uint32_t)m->status);
        break;
    case CHAN_MSG_DELIVER:
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u64(out, m->replica_time_us);
        buf_put_u32(out, m->event_count);
        break;
    case CHAN_MSG_GAP:
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u64(out, m->dropped);
        break;
    case CHAN_MSG_DELIVER_TOTAL:
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u64(out, m->replica_time_us);
        buf_put_u64(out, m->position);
        buf_put_u32(out, m->event_count);
        break;
    case CHAN_MSG_FETCH:
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u64(out, m->epoch);
        buf_put_u64(out, m->seq);
        buf_put_u32(out, m->range_count);
        break;
    case CHAN_MSG_FETCHED:
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u32(out, m->event_count);
        break;
    case CHAN_MSG_ATTACH:
        if (m->start_mode != CHAN_START_LIVE) {
            buf_put_u8(out, m->start_mode);
            buf_put_u64(out, m->start);
        }
        break;
    case CHAN_MSG_REPLAY:
        buf_put_u8(out, m->flags);
        buf_put_bytes(out, m->publisher, TRONE_KEY_LEN);
        buf_put_u64(out, m->epoch);
        buf_put_u64(out, m->first);
        break;
    case CHAN_MSG_DETACH:
    default:
        break;
    }
}

void chan_msg_put_event(struct buf *out, const struct chan_event *e)
{
    buf_put_u64(out, e->epoch);
    buf_put_u64(out, e->seq);
    buf_put_u64(out, e->time_us);
    buf_put_u16(out, e->auth_size);
    buf_put_bytes(out, e->auth, e->auth_size);
    buf_put_blob(out, e->payload, e->payload_size);
}

void chan_msg_events_end(struct buf *out, size_t start, uint32_t count)
{
    if (out->error != 0) {
        return;
    }
    struct buf_reader r;
    buf_reader_init(&r, out->data + start, out->used - start);
    uint8_t type = buf_get_u8(&r);
    char tag[TRONE_TAG_MAX + 1];
    buf_get_str(&r, tag, TRONE_TAG_MAX);
    if (type == CHAN_MSG_DELIVER) {
        (void)buf_get_ref(&r, TRONE_KEY_LEN + 8);
    } else if (type == CHAN_MSG_DELIVER_TOTAL) {
        (void)buf_get_ref(&r, TRONE_KEY_LEN + 16);
    } else if (type == CHAN_MSG_FETCHED) {
        (void)buf_get_ref(&r, TRONE_KEY_LEN);
    }
    if (r.error == 0 && has_events((enum chan_msg_type)type) && buf_reader_left(&r) >= 4) {
        buf_store_u32(out->data + start + r.used, count);
    }
}

static int tag_valid(const char *tag)
{
    size_t length = strlen(tag);
    if (length == 0) {
        return 0;
    }
    for (size_t i = 0; i < length; i++) {
        char c = tag[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

int chan_msg_read_header(struct buf_reader *r, const uint8_t *data, size_t size,
                         struct chan_msg *m)
{
    memset(m, 0, sizeof(*m));
    buf_reader_init(r, data, size);
    m->type = (enum chan_msg_type)buf_get_u8(r);
    buf_get_str(r, m->tag, TRONE_TAG_MAX);
    switch (m->type) {
    case CHAN_MSG_PUBLISH:
        m->event_count = buf_get_u32(r);
        break;
    case CHAN_MSG_ACK:
        m->epoch = buf_get_u64(r);
        m->seq = buf_get_u64(r);
        m->status = (int32_t)buf_get_u32(r);
        break;
    case CHAN_MSG_ATTACHED:
        m->status = (int32_t)buf_get_u32(r);
        break;
    case CHAN_MSG_DELIVER:
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->replica_time_us = buf_get_u64(r);
        m->event_count = buf_get_u32(r);
        break;
    case CHAN_MSG_GAP:
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->dropped = buf_get_u64(r);
        break;
    case CHAN_MSG_DELIVER_TOTAL:
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->replica_time_us = buf_get_u64(r);
        m->position = buf_get_u64(r);
        m->event_count = buf_get_u32(r);
        if (r->error == 0 && (m->position == 0 || m->event_count == 0 ||
                              m->position > UINT64_MAX - m->event_count)) {
            return TRONE_EBADMSG; /* positions start at 1 and never wrap */
        }
        break;
    case CHAN_MSG_FETCH:
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->epoch = buf_get_u64(r);
        m->seq = buf_get_u64(r);
        m->range_count = buf_get_u32(r);
        if (r->error == 0 && (m->seq == 0 || m->range_count == 0 ||
                              m->range_count > CHAN_EVENTS_PER_MSG_MAX ||
                              m->seq > UINT64_MAX - m->range_count)) {
            return TRONE_EBADMSG;
        }
        break;
    case CHAN_MSG_FETCHED:
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->event_count = buf_get_u32(r);
        break;
    case CHAN_MSG_ATTACH:
        if (r->error == 0 && buf_reader_left(r) > 0) {
            m->start_mode = buf_get_u8(r);
            m->start = buf_get_u64(r);
            if (r->error == 0 && m->start_mode != CHAN_START_FROM &&
                m->start_mode != CHAN_START_SINCE) {
                return TRONE_EBADMSG;
            }
        }
        break;
    case CHAN_MSG_REPLAY: {
        static const uint8_t zero[TRONE_KEY_LEN];
        m->flags = buf_get_u8(r);
        buf_get_bytes(r, m->publisher, TRONE_KEY_LEN);
        m->epoch = buf_get_u64(r);
        m->first = buf_get_u64(r);
        bool end = m->flags == CHAN_REPLAY_END;
        if (r->error == 0 &&
            ((m->flags != 0 && !end) || (!end && m->first == 0) ||
             (end && (m->first != 0 || m->epoch != 0 ||
                      memcmp(m->publisher, zero, TRONE_KEY_LEN) != 0)))) {
            return TRONE_EBADMSG;
        }
        break;
    }
    case CHAN_MSG_DETACH:
        break;
    default:
        return TRONE_EBADMSG;
    }
    if (r->error != 0 || !tag_valid(m->tag) || m->event_count > CHAN_EVENTS_PER_MSG_MAX) {
        return TRONE_EBADMSG;
    }
    if (!has_events(m->type) && buf_reader_finish(r) != 0) {
        return TRONE_EBADMSG;
    }
    return 0;
}

void chan_msg_read_event(struct buf_reader *r, struct chan_event *e)
{
    size_t payload_size = 0;
    e->epoch = buf_get_u64(r);
    e->seq = buf_get_u64(r);
    e->time_us = buf_get_u64(r);
    e->auth_size = buf_get_u16(r);
    if (r->error == 0 && e->auth_size > CHAN_AUTH_MAX) {
        r->error = TRONE_EBADMSG;
    }
    e->auth = buf_get_ref(r, e->auth_size);
    e->payload = buf_get_blob(r, CHAN_PAYLOAD_MAX, &payload_size);
    e->payload_size = (uint32_t)payload_size;
    if (r->error == 0 && e->seq == 0) {
        r->error = TRONE_EBADMSG; /* sequence numbers start at 1 */
    }
}

int chan_msg_check(const uint8_t *data, size_t size)
{
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, data, size, &m) != 0) {
        return TRONE_EBADMSG;
    }
    if (!has_events(m.type)) {
        return 0;
    }
    for (uint32_t i = 0; i < m.event_count && r.error == 0; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
    }
    return buf_reader_finish(&r);
}
