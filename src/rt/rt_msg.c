/* rt_msg.c: codec of the runtime-level status query and answer. No I/O, no clock. */
#include "rt/rt_msg.h"

#include <string.h>

#include "core/assert.h"

_Static_assert(RT_MSG_STATUS_ANSWER_SIZE == 98, "status answer layout");
_Static_assert(TRONE_REPLICAS_MAX < 64, "peers is a 64-bit mask");

int rt_msg_type(const uint8_t *data, size_t size)
{
    if (data == NULL || size == 0) {
        return 0;
    }
    if (data[0] == RT_MSG_STATUS_QUERY || data[0] == RT_MSG_STATUS_ANSWER) {
        return data[0];
    }
    return 0;
}

void rt_msg_encode_status_query(struct buf *out) { buf_put_u8(out, RT_MSG_STATUS_QUERY); }

void rt_msg_encode_status_answer(struct buf *out, const struct rt_status *m)
{
    TRONE_ASSERT(m->replica < TRONE_REPLICAS_MAX);
    TRONE_ASSERT(m->leader < TRONE_REPLICAS_MAX);
    TRONE_ASSERT((m->peers & (UINT64_C(1) << m->replica)) == 0);
    buf_put_u8(out, RT_MSG_STATUS_ANSWER);
    buf_put_u32(out, m->replica);
    buf_put_u64(out, m->view);
    buf_put_u32(out, m->leader);
    buf_put_u8(out, m->view_changing ? 1 : 0);
    buf_put_u64(out, m->executed);
    buf_put_u64(out, m->checkpoint);
    buf_put_bytes(out, m->digest, TRONE_HASH_LEN);
    buf_put_u64(out, m->peers);
    buf_put_u64(out, m->durable_events);
    buf_put_u64(out, m->durable_fetched);
    buf_put_u64(out, m->durable_served);
}

int rt_msg_decode_status_query(const uint8_t *data, size_t size)
{
    if (data == NULL || size != 1 || data[0] != RT_MSG_STATUS_QUERY) {
        return TRONE_EBADMSG;
    }
    return 0;
}

/* The range checks of a decoded answer, kept apart from the byte reading. */
static int rt_msg_status_check(const struct rt_status *m, uint8_t view_changing)
{
    if (m->replica >= TRONE_REPLICAS_MAX || m->leader >= TRONE_REPLICAS_MAX) {
        return TRONE_EBADMSG;
    }
    if (view_changing > 1) {
        return TRONE_EBADMSG;
    }
    uint64_t allowed = (UINT64_C(1) << TRONE_REPLICAS_MAX) - 1;
    allowed &= ~(UINT64_C(1) << m->replica);
    if ((m->peers & ~allowed) != 0) {
        return TRONE_EBADMSG;
    }
    return 0;
}

int rt_msg_decode_status_answer(const uint8_t *data, size_t size, struct rt_status *m)
{
    memset(m, 0, sizeof(*m));
    if (data == NULL || size != RT_MSG_STATUS_ANSWER_SIZE) {
        return TRONE_EBADMSG;
    }
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    uint8_t type = buf_get_u8(&r);
    m->replica = buf_get_u32(&r);
    m->view = buf_get_u64(&r);
    m->leader = buf_get_u32(&r);
    uint8_t view_changing = buf_get_u8(&r);
    m->executed = buf_get_u64(&r);
    m->checkpoint = buf_get_u64(&r);
    buf_get_bytes(&r, m->digest, TRONE_HASH_LEN);
    m->peers = buf_get_u64(&r);
    m->durable_events = buf_get_u64(&r);
    m->durable_fetched = buf_get_u64(&r);
    m->durable_served = buf_get_u64(&r);
    int rc = buf_reader_finish(&r);
    if (rc == 0 && type != RT_MSG_STATUS_ANSWER) {
        rc = TRONE_EBADMSG;
    }
    if (rc == 0) {
        rc = rt_msg_status_check(m, view_changing);
    }
    if (rc != 0) {
        memset(m, 0, sizeof(*m));
        return TRONE_EBADMSG;
    }
    m->view_changing = view_changing == 1;
    return 0;
}
