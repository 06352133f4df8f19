/* cln_sub.c: the subscriber core's entry points (cln_sub.h): config, channels, decoding of
 * DELIVER and GAP messages, ticks and the output. The stream logic is in cln_sub_stream.c.
 * No I/O, no clock, no randomness. */
#include "client/cln_sub.h"

#include <stdlib.h>
#include <string.h>

#include "broker/brk_op.h"
#include "client/cln_pub.h"
#include "client/cln_sub_internal.h"
#include "core/assert.h"

_Static_assert(CLN_SUB_WINDOW_DEFAULT >= 2u * CLN_PUB_UNACKED_EVENTS_DEFAULT,
               "the window covers two publisher windows");
_Static_assert(CLN_SUB_WINDOW_DEFAULT >= 2u * BRK_ORDER_COUNT_MAX,
               "the window covers two ORDER ranges");
_Static_assert(CLN_SUB_WINDOW_DEFAULT <= CLN_SUB_WINDOW_MAX, "the default window fits");

/* Output items and payload bytes of one call are bounded by what the streams can hold. */
#define CLN_SUB_ITEMS_BYTES_MAX ((size_t)1 << 31)

/* ---- Config and channels ---- */

static int cln_sub_config_fill(struct cln_sub_config *c)
{
    if (c->n == 0 || c->n > TRONE_REPLICAS_MAX || c->n < 2u * c->f + 1u) {
        return TRONE_ECONFIG;
    }
    c->channels_max = c->channels_max ? c->channels_max : CLN_SUB_CHANNELS_DEFAULT;
    c->streams_max = c->streams_max ? c->streams_max : CLN_SUB_STREAMS_DEFAULT;
    c->publishers_max = c->publishers_max ? c->publishers_max : CLN_SUB_PUBLISHERS_DEFAULT;
    c->window = c->window ? c->window : CLN_SUB_WINDOW_DEFAULT;
    c->held_bytes_max = c->held_bytes_max ? c->held_bytes_max : CLN_SUB_HELD_BYTES_DEFAULT;
    c->gap_wait_us = c->gap_wait_us ? c->gap_wait_us : CLN_SUB_GAP_WAIT_US_DEFAULT;
    if (c->channels_max > TRONE_CHANNELS_MAX || c->window > CLN_SUB_WINDOW_MAX ||
        c->streams_max > 65536u || c->publishers_max > 1048576u ||
        c->held_bytes_max > CLN_SUB_ITEMS_BYTES_MAX / 2) {
        return TRONE_ECONFIG;
    }
    return 0;
}

int cln_sub_init(struct cln_sub *s, const struct cln_sub_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    int err = cln_sub_config_fill(&s->cfg);
    if (err == 0) {
        s->channels = calloc(s->cfg.channels_max, sizeof(*s->channels));
        s->streams = calloc(s->cfg.streams_max, sizeof(*s->streams));
        s->floors = calloc(s->cfg.publishers_max, sizeof(*s->floors));
        if (s->channels == NULL || s->streams == NULL || s->floors == NULL) {
            err = TRONE_ENOMEM;
        }
    }
    if (err != 0) {
        cln_sub_close(s);
        return err;
    }
    buf_init(&s->items, CLN_SUB_ITEMS_BYTES_MAX);
    buf_init(&s->arena, CLN_SUB_ITEMS_BYTES_MAX);
    return 0;
}

void cln_sub_close(struct cln_sub *s)
{
    if (s->streams != NULL) {
        for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
            if (s->streams[i].used) {
                cln_sub__stream_close(s, &s->streams[i]);
            }
        }
    }
    if (s->channels != NULL) {
        for (uint32_t i = 0; i < s->channel_count; i++) {
            free(s->channels[i].publishers);
        }
    }
    TRONE_ASSERT(s->held_bytes == 0);
    free(s->channels);
    free(s->streams);
    free(s->floors);
    buf_close(&s->items);
    buf_close(&s->arena);
    memset(s, 0, sizeof(*s));
}

static bool cln_sub_tag_valid(const char *tag)
{
    size_t size = strnlen(tag, TRONE_TAG_MAX + 1);
    if (size == 0 || size > TRONE_TAG_MAX) {
        return false;
    }
    for (size_t i = 0; i < size; i++) {
        char c = tag[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

const struct brk_class *cln_sub_channel_class(const struct cln_sub *s, uint32_t idx)
{
    TRONE_ASSERT(idx < s->channel_count);
    return &s->channels[idx].cls;
}

int cln_sub_channel_find(const struct cln_sub *s, const char *tag)
{
    for (uint32_t i = 0; i < s->channel_count; i++) {
        if (strcmp(s->channels[i].tag, tag) == 0) {
            return (int)i;
        }
    }
    return TRONE_ENOENT;
}

int cln_sub_channel_add(struct cln_sub *s, const char *tag, const struct brk_class *cls,
                        const uint8_t (*publishers)[TRONE_KEY_LEN], uint32_t publisher_count)
{
    if (tag == NULL || !cln_sub_tag_valid(tag) || cls == NULL || !brk_class_valid(cls) ||
        publisher_count > TRONE_CHANNEL_MEMBERS_MAX + 1u || (publisher_count > 0 && !publishers)) {
        return TRONE_EINVAL;
    }
    if (cls->fault == BRK_FAULT_BFT && s->cfg.n < 3u * s->cfg.f + 1u) {
        return TRONE_ECONFIG;
    }
    if (cln_sub_channel_find(s, tag) >= 0) {
        return TRONE_EEXIST;
    }
    if (s->channel_count >= s->cfg.channels_max) {
        return TRONE_EFULL;
    }
    struct cln_sub_channel *ch = &s->channels[s->channel_count];
    memset(ch, 0, sizeof(*ch));
    if (publisher_count > 0) {
        ch->publishers = malloc((size_t)publisher_count * TRONE_KEY_LEN);
        if (ch->publishers == NULL) {
            return TRONE_ENOMEM;
        }
        memcpy(ch->publishers, publishers, (size_t)publisher_count * TRONE_KEY_LEN);
    }
    ch->publisher_count = publisher_count;
    memcpy(ch->tag, tag, strlen(tag) + 1);
    ch->cls = *cls;
    s->channel_count++;
    return (int)(s->channel_count - 1);
}

bool cln_sub__listed(const struct cln_sub_channel *ch, const uint8_t publisher[TRONE_KEY_LEN])
{
    for (uint32_t i = 0; i < ch->publisher_count; i++) {
        if (memcmp(ch->publishers[i], publisher, TRONE_KEY_LEN) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- Output ---- */

static struct cln_sub_item *cln_sub_item_add(struct cln_sub *s, const struct cln_sub_stream *st,
                                             enum cln_sub_item_kind kind)
{
    struct cln_sub_item *item = (struct cln_sub_item *)buf_append(&s->items, sizeof(*item));
    if (item == NULL) {
        return NULL;
    }
    memset(item, 0, sizeof(*item));
    item->kind = kind;
    item->channel_idx = st->channel_idx;
    item->tag = s->channels[st->channel_idx].tag;
    memcpy(item->publisher, st->publisher, TRONE_KEY_LEN);
    item->epoch = st->epoch;
    s->item_count++;
    return item;
}

void cln_sub__emit_event(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t seq,
                         uint64_t time_us, const uint8_t *auth, uint16_t auth_size,
                         const uint8_t *payload, uint32_t payload_size)
{
    /* Only HA/PKE channels need the auth field after the decision (cln_qop.c). */
    bool keep_auth = s->channels[st->channel_idx].cls.method == BRK_METHOD_HA ||
                     s->channels[st->channel_idx].cls.method == BRK_METHOD_PKE;
    size_t auth_offset = s->arena.used;
    if (keep_auth && auth_size > 0) {
        buf_put_bytes(&s->arena, auth, auth_size);
    }
    size_t offset = s->arena.used;
    if (payload_size > 0) {
        buf_put_bytes(&s->arena, payload, payload_size);
    }
    struct cln_sub_item *item = cln_sub_item_add(s, st, CLN_SUB_EVENT);
    if (item == NULL || s->arena.error != 0) {
        return;
    }
    item->seq = seq;
    item->time_us = time_us;
    /* The arena may still move: the offset is turned into a pointer by cln_sub_output_end. */
    item->payload = (const uint8_t *)(uintptr_t)offset;
    item->payload_size = payload_size;
    item->auth = (const uint8_t *)(uintptr_t)auth_offset;
    item->auth_size = keep_auth ? auth_size : 0;
}

void cln_sub__emit_total(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t position,
                         uint64_t time_us, const uint8_t *header, uint32_t header_size,
                         const uint8_t *payload, uint32_t payload_size)
{
    TRONE_ASSERT(header_size >= CLN_SUB_TOTAL_HEADER);
    TRONE_ASSERT(header_size - CLN_SUB_TOTAL_HEADER <= CHAN_AUTH_MAX);
    cln_sub__emit_event(s, st, position, time_us, header + CLN_SUB_TOTAL_HEADER,
                        (uint16_t)(header_size - CLN_SUB_TOTAL_HEADER), payload, payload_size);
    if (s->items.error != 0 || s->arena.error != 0) {
        return;
    }
    struct cln_sub_item *item =
        (struct cln_sub_item *)(s->items.data + s->items.used - sizeof(*item));
    memcpy(item->publisher, header, TRONE_KEY_LEN);
    item->epoch = buf_load_u64(header + TRONE_KEY_LEN);
    item->seq = buf_load_u64(header + TRONE_KEY_LEN + 8);
    item->position = position;
}

void cln_sub__emit_gap(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t seq,
                       uint64_t count, enum cln_sub_gap_reason reason)
{
    TRONE_ASSERT(count > 0);
    struct cln_sub_item *item = cln_sub_item_add(s, st, CLN_SUB_GAP);
    if (item != NULL) {
        item->seq = seq;
        item->count = count;
        item->reason = reason;
    }
}

static void cln_sub_output_begin(struct cln_sub *s)
{
    buf_reset(&s->items);
    buf_reset(&s->arena);
    s->item_count = 0;
    s->dropped = 0;
}

static uint64_t cln_sub_deadline(const struct cln_sub *s)
{
    uint64_t deadline = UINT64_MAX;
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        if (s->streams[i].used) {
            uint64_t at = cln_sub__stream_deadline(s, &s->streams[i]);
            deadline = at < deadline ? at : deadline;
        }
    }
    return deadline;
}

static int cln_sub_output_end(struct cln_sub *s, struct cln_sub_output *out)
{
    memset(out, 0, sizeof(*out));
    out->deadline_us = cln_sub_deadline(s);
    out->dropped = s->dropped;
    if (s->items.error != 0 || s->arena.error != 0) {
        s->item_count = 0;
        return TRONE_ENOMEM;
    }
    struct cln_sub_item *items = (struct cln_sub_item *)s->items.data;
    for (uint32_t i = 0; i < s->item_count; i++) {
        if (items[i].kind == CLN_SUB_EVENT) {
            uintptr_t offset = (uintptr_t)items[i].payload;
            items[i].payload = items[i].payload_size > 0 ? s->arena.data + offset : NULL;
            uintptr_t auth_offset = (uintptr_t)items[i].auth;
            items[i].auth = items[i].auth_size > 0 ? s->arena.data + auth_offset : NULL;
        }
    }
    out->item_count = s->item_count;
    out->items = items;
    return 0;
}

/* ---- Messages ---- */

static bool cln_sub_stream_is(const struct cln_sub_stream *st, uint32_t channel_idx,
                              const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch)
{
    return st != NULL && st->used && st->epoch == epoch && st->channel_idx == channel_idx &&
           memcmp(st->publisher, publisher, TRONE_KEY_LEN) == 0;
}

/* The stream an event goes to, opened if needed; NULL if it is a replay of an epoch the
 * publisher left (or no memory). */
static struct cln_sub_stream *cln_sub_stream_for(struct cln_sub *s, uint32_t channel_idx,
                                                 const uint8_t publisher[TRONE_KEY_LEN],
                                                 uint64_t epoch)
{
    struct cln_sub_stream *st = cln_sub__stream_find(s, channel_idx, publisher, epoch);
    return st != NULL ? st : cln_sub__stream_open(s, channel_idx, publisher, epoch);
}

static void cln_sub_deliver(struct cln_sub *s, uint32_t replica, struct buf_reader *r,
                            const struct chan_msg *m, const uint8_t *checks, uint32_t check_count,
                            uint64_t now_us)
{
    int idx = cln_sub_channel_find(s, m->tag);
    if (idx < 0 || s->channels[idx].cls.order != BRK_ORDER_FIFO) {
        s->dropped += m->event_count;
        return;
    }
    struct cln_sub_stream *st = NULL;
    for (uint32_t i = 0; i < m->event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(r, &e);
        TRONE_ASSERT(r->error == 0); /* the whole message was checked first */
        if (!cln_sub_stream_is(st, (uint32_t)idx, m->publisher, e.epoch)) {
            st = cln_sub_stream_for(s, (uint32_t)idx, m->publisher, e.epoch);
        }
        if (st == NULL) {
            s->dropped++;
            continue;
        }
        uint8_t check = i < check_count ? checks[i] : (uint8_t)CLN_SUB_CHECK_NONE;
        cln_sub__stream_copy(s, st, replica, &e, check, now_us);
    }
}

/* DELIVER_TOTAL: every event becomes a copy of its position in the channel's one stream
 * (publisher zero, epoch 0). The copy's authenticator is prefixed with the event's publisher,
 * epoch and seq, so that copies match (and vote together) only if all of them agree. */
static void cln_sub_deliver_total(struct cln_sub *s, uint32_t replica, struct buf_reader *r,
                                  const struct chan_msg *m, const uint8_t *checks,
                                  uint32_t check_count, uint64_t now_us)
{
    static const uint8_t zero[TRONE_KEY_LEN];
    int idx = cln_sub_channel_find(s, m->tag);
    if (idx < 0 || s->channels[idx].cls.order != BRK_ORDER_TOTAL) {
        s->dropped += m->event_count;
        return;
    }
    struct cln_sub_stream *st = cln_sub_stream_for(s, (uint32_t)idx, zero, 0);
    if (st == NULL) {
        s->dropped += m->event_count;
        return;
    }
    uint8_t header[CLN_SUB_TOTAL_HEADER + CHAN_AUTH_MAX];
    memcpy(header, m->publisher, TRONE_KEY_LEN);
    for (uint32_t i = 0; i < m->event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(r, &e);
        TRONE_ASSERT(r->error == 0); /* the whole message was checked first */
        buf_store_u64(header + TRONE_KEY_LEN, e.epoch);
        buf_store_u64(header + TRONE_KEY_LEN + 8, e.seq);
        if (e.auth_size > 0) {
            memcpy(header + CLN_SUB_TOTAL_HEADER, e.auth, e.auth_size);
        }
        struct chan_event copy = {.epoch = 0,
                                  .seq = m->position + i, /* no wrap: checked by the decoder */
                                  .time_us = e.time_us,
                                  .auth = header,
                                  .auth_size = (uint16_t)(CLN_SUB_TOTAL_HEADER + e.auth_size),
                                  .payload = e.payload,
                                  .payload_size = e.payload_size};
        uint8_t check = i < check_count ? checks[i] : (uint8_t)CLN_SUB_CHECK_NONE;
        cln_sub__stream_copy(s, st, replica, &copy, check, now_us);
    }
}

/* Every unstarted stream of channel idx: the replays moved (a REPLAY, an END, a replica down). */
static void cln_sub_replay_moved(struct cln_sub *s, uint32_t channel_idx, uint64_t now_us)
{
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        struct cln_sub_stream *st = &s->streams[i];
        if (st->used && st->channel_idx == channel_idx) {
            cln_sub__stream_replay_moved(s, st, now_us);
        }
    }
}

static void cln_sub_replay_message(struct cln_sub *s, uint32_t replica, const struct chan_msg *m,
                                   uint64_t now_us)
{
    static const uint8_t zero[TRONE_KEY_LEN];
    int idx = cln_sub_channel_find(s, m->tag);
    if (idx < 0 || s->channels[idx].replay_mode == CHAN_START_LIVE) {
        s->dropped++;
        return;
    }
    struct cln_sub_channel *ch = &s->channels[idx];
    uint64_t bit = (uint64_t)1 << replica;
    if ((ch->replaying & bit) == 0) {
        s->dropped++;
        return;
    }
    if (m->flags == CHAN_REPLAY_END) {
        ch->replaying &= ~bit;
        ch->cursor[replica] = UINT64_MAX;
        cln_sub_replay_moved(s, (uint32_t)idx, now_us);
        return;
    }
    bool total = ch->cls.order == BRK_ORDER_TOTAL;
    if (total && (m->epoch != 0 || memcmp(m->publisher, zero, TRONE_KEY_LEN) != 0)) {
        s->dropped++;
        return;
    }
    struct cln_sub_stream *st = total
                                    ? cln_sub_stream_for(s, (uint32_t)idx, zero, 0)
                                    : cln_sub_stream_for(s, (uint32_t)idx, m->publisher, m->epoch);
    if (st == NULL) {
        s->dropped++;
        return;
    }
    cln_sub__stream_announce(s, st, replica, m->first, now_us);
    cln_sub_replay_moved(s, (uint32_t)idx, now_us);
}

int cln_sub_replay(struct cln_sub *s, uint32_t channel_idx, uint8_t mode, uint64_t start)
{
    if (channel_idx >= s->channel_count || !s->channels[channel_idx].cls.durable ||
        (mode != CHAN_START_FROM && mode != CHAN_START_SINCE)) {
        return TRONE_EINVAL;
    }
    struct cln_sub_channel *ch = &s->channels[channel_idx];
    ch->replay_mode = mode;
    ch->replay_start = start;
    return 0;
}

void cln_sub_replay_expect(struct cln_sub *s, uint32_t channel_idx, uint32_t replica)
{
    TRONE_ASSERT(replica < s->cfg.n);
    TRONE_ASSERT(channel_idx < s->channel_count);
    struct cln_sub_channel *ch = &s->channels[channel_idx];
    if (ch->replay_mode == CHAN_START_LIVE) {
        return;
    }
    ch->replaying |= (uint64_t)1 << replica;
    ch->cursor[replica] = 0;
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        struct cln_sub_stream *st = &s->streams[i];
        if (st->used && st->channel_idx == channel_idx) {
            st->announced[replica] = 0;
            st->seen[replica] = 0;
        }
    }
}

int cln_sub_replica_down(struct cln_sub *s, uint32_t replica, uint32_t channel_idx, uint64_t now_us,
                         struct cln_sub_output *out)
{
    TRONE_ASSERT(replica < s->cfg.n);
    cln_sub_output_begin(s);
    uint64_t bit = (uint64_t)1 << replica;
    for (uint32_t i = 0; i < s->channel_count; i++) {
        struct cln_sub_channel *ch = &s->channels[i];
        if ((ch->replaying & bit) != 0 && (channel_idx == UINT32_MAX || channel_idx == i)) {
            ch->replaying &= ~bit;
            ch->cursor[replica] = UINT64_MAX;
            cln_sub_replay_moved(s, i, now_us);
        }
    }
    return cln_sub_output_end(s, out);
}

static void cln_sub_notice(struct cln_sub *s, uint32_t replica, const struct chan_msg *m)
{
    int idx = cln_sub_channel_find(s, m->tag);
    if (idx < 0) {
        s->dropped++;
        return;
    }
    struct cln_sub_item *item = (struct cln_sub_item *)buf_append(&s->items, sizeof(*item));
    if (item == NULL) {
        return;
    }
    memset(item, 0, sizeof(*item));
    item->kind = CLN_SUB_NOTICE;
    item->channel_idx = (uint32_t)idx;
    item->tag = s->channels[idx].tag;
    memcpy(item->publisher, m->publisher, TRONE_KEY_LEN);
    item->count = m->dropped;
    item->replica = replica;
    item->trusted = s->channels[idx].cls.fault == BRK_FAULT_CFT;
    s->item_count++;
}

int cln_sub_receive(struct cln_sub *s, uint32_t replica, const uint8_t *data, size_t size,
                    uint64_t now_us, struct cln_sub_output *out)
{
    return cln_sub_receive_checked(s, replica, data, size, NULL, 0, now_us, out);
}

/* The stream of (idx, publisher, epoch) if open, else NULL; *replay says whether an epoch
 * without a stream is older than the publisher's newest (cln_sub_stream_for drops it). Follows
 * cln_sub_stream_for without changing anything. */
static const struct cln_sub_stream *cln_sub_stream_peek(const struct cln_sub *s, uint32_t idx,
                                                        const uint8_t publisher[TRONE_KEY_LEN],
                                                        uint64_t epoch, bool *replay)
{
    *replay = false;
    for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
        const struct cln_sub_stream *st = &s->streams[i];
        if (st->used && st->epoch == epoch && st->channel_idx == idx &&
            memcmp(st->publisher, publisher, TRONE_KEY_LEN) == 0) {
            return st;
        }
    }
    for (uint32_t i = 0; i < s->cfg.publishers_max; i++) {
        const struct cln_sub_floor *fl = &s->floors[i];
        if (fl->used && fl->channel_idx == idx &&
            memcmp(fl->publisher, publisher, TRONE_KEY_LEN) == 0) {
            *replay = epoch <= fl->left;
            break;
        }
    }
    return NULL;
}

/* DELIVER_TOTAL: only CFT channels with PKS or PKE decide on a signature (cln_sub_decides),
 * and only positions not yet decided need one. */
static int cln_sub_verify_wanted_total(const struct cln_sub *s, struct buf_reader *r,
                                       const struct chan_msg *m,
                                       uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX])
{
    static const uint8_t zero[TRONE_KEY_LEN];
    TRONE_ASSERT(m->event_count <= CHAN_EVENTS_PER_MSG_MAX); /* checked by the decoder */
    int idx = cln_sub_channel_find(s, m->tag);
    const struct cln_sub_channel *ch = idx >= 0 ? &s->channels[idx] : NULL;
    bool verifies = ch != NULL && ch->cls.order == BRK_ORDER_TOTAL &&
                    ch->cls.fault == BRK_FAULT_CFT &&
                    (ch->cls.method == BRK_METHOD_PKS || ch->cls.method == BRK_METHOD_PKE);
    bool replay = false;
    const struct cln_sub_stream *st =
        verifies ? cln_sub_stream_peek(s, (uint32_t)idx, zero, 0, &replay) : NULL;
    for (uint32_t i = 0; i < m->event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(r, &e);
        TRONE_ASSERT(r->error == 0); /* the whole message was checked first */
        struct chan_event probe = {.seq = m->position + i};
        wanted[i] = verifies && (st == NULL || cln_sub__stream_wants_verify(s, st, &probe));
    }
    return (int)m->event_count;
}

int cln_sub_verify_wanted(const struct cln_sub *s, const uint8_t *data, size_t size,
                          uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX])
{
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&r, data, size, &m) != 0) {
        return TRONE_EBADMSG;
    }
    if (m.type == CHAN_MSG_DELIVER_TOTAL) {
        return cln_sub_verify_wanted_total(s, &r, &m, wanted);
    }
    if (m.type != CHAN_MSG_DELIVER) {
        return m.type == CHAN_MSG_GAP || m.type == CHAN_MSG_REPLAY ? 0 : TRONE_EBADMSG;
    }
    TRONE_ASSERT(m.event_count <= CHAN_EVENTS_PER_MSG_MAX); /* checked by the decoder */
    int idx = cln_sub_channel_find(s, m.tag);
    const struct cln_sub_channel *ch = idx >= 0 ? &s->channels[idx] : NULL;
    bool verifies = ch != NULL && ch->cls.order == BRK_ORDER_FIFO &&
                    (ch->cls.method == BRK_METHOD_PKS || ch->cls.method == BRK_METHOD_PKE) &&
                    (ch->cls.fault == BRK_FAULT_CFT || cln_sub__listed(ch, m.publisher));
    const struct cln_sub_stream *st = NULL;
    bool replay = false;
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        TRONE_ASSERT(r.error == 0); /* the whole message was checked first */
        wanted[i] = 0;
        if (!verifies) {
            continue;
        }
        if (st == NULL || st->epoch != e.epoch) { /* one lookup per run of one epoch */
            st = cln_sub_stream_peek(s, (uint32_t)idx, m.publisher, e.epoch, &replay);
        }
        bool want = st != NULL ? cln_sub__stream_wants_verify(s, st, &e) : !replay;
        wanted[i] = want ? 1u : 0u;
    }
    return (int)m.event_count;
}

int cln_sub_receive_checked(struct cln_sub *s, uint32_t replica, const uint8_t *data, size_t size,
                            const uint8_t *checks, uint32_t check_count, uint64_t now_us,
                            struct cln_sub_output *out)
{
    TRONE_ASSERT(replica < s->cfg.n);
    TRONE_ASSERT(checks != NULL || check_count == 0);
    cln_sub_output_begin(s);
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_check(data, size) != 0 || chan_msg_read_header(&r, data, size, &m) != 0 ||
        (m.type != CHAN_MSG_DELIVER && m.type != CHAN_MSG_GAP && m.type != CHAN_MSG_DELIVER_TOTAL &&
         m.type != CHAN_MSG_REPLAY)) {
        (void)cln_sub_output_end(s, out);
        return TRONE_EBADMSG;
    }
    if (m.type == CHAN_MSG_DELIVER) {
        cln_sub_deliver(s, replica, &r, &m, checks, check_count, now_us);
    } else if (m.type == CHAN_MSG_DELIVER_TOTAL) {
        cln_sub_deliver_total(s, replica, &r, &m, checks, check_count, now_us);
    } else if (m.type == CHAN_MSG_REPLAY) {
        cln_sub_replay_message(s, replica, &m, now_us);
    } else {
        cln_sub_notice(s, replica, &m);
    }
    return cln_sub_output_end(s, out);
}

int cln_sub_tick(struct cln_sub *s, uint64_t now_us, struct cln_sub_output *out)
{
    cln_sub_output_begin(s);
    for (int u = (int)BRK_URGENCY_MAX; u >= 0; u--) {
        for (uint32_t i = 0; i < s->cfg.streams_max; i++) {
            struct cln_sub_stream *st = &s->streams[i];
            if (st->used && s->channels[st->channel_idx].cls.urgency == (uint8_t)u) {
                cln_sub__stream_tick(s, st, now_us);
            }
        }
    }
    return cln_sub_output_end(s, out);
}
