/* brk_events_replay.c: durable channels on the replica side (issue 4, docs/PROTOCOL.md 11):
 * storing accepted events through the runtime's store functions (brk_events_durable), and
 * replaying a channel's stored events to an attachment that asked for a start, stream by
 * stream in stream id order, in chunks paced by the connection's flush budget (memory stays
 * bounded: nothing is read before the socket can take it), then switching to the live
 * stream. A replay announces each stream with REPLAY(first position it sends) before its
 * events and ends with REPLAY END, so the subscriber knows where each replica's copies start
 * and when a replica has nothing more to replay. No I/O of its own, no clock. */
#include <stdio.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "chan/chan_durable.h"
#include "core/assert.h"

_Static_assert(sizeof(((struct brk_events *)0)->desc) == CHAN_DURABLE_DESC_MAX,
               "the cached descriptor fits");

uint64_t brk_events__durable_stream(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                    uint64_t epoch, bool total)
{
    struct chan_durable_stream d;
    memset(&d, 0, sizeof(d));
    d.total = total;
    memcpy(d.publisher, publisher, TRONE_KEY_LEN);
    d.epoch = epoch;
    snprintf(d.tag, sizeof(d.tag), "%s", tag);
    return chan_durable_stream_id(&d);
}

uint64_t brk_events__pending_stream(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                    uint64_t epoch)
{
    struct chan_durable_stream d;
    memset(&d, 0, sizeof(d));
    d.pending = true;
    memcpy(d.publisher, publisher, TRONE_KEY_LEN);
    d.epoch = epoch;
    snprintf(d.tag, sizeof(d.tag), "%s", tag);
    return chan_durable_stream_id(&d);
}

int brk_events__durable_put(struct brk_events *e, const struct brk_channel *ch,
                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t stream, bool pending,
                            uint64_t position, const uint8_t *event, size_t event_size)
{
    TRONE_ASSERT(e->config.durable.put != NULL);
    TRONE_ASSERT(event_size >= 24u);
    bool total = ch->cls.order == BRK_ORDER_TOTAL;
    if (pending) {
        TRONE_ASSERT(total);
    }
    if (e->desc_stream != stream) {
        /* The descriptor is built once per stream change, not per event. */
        struct chan_durable_stream d;
        memset(&d, 0, sizeof(d));
        d.total = total && !pending;
        d.pending = pending;
        if (!d.total) {
            memcpy(d.publisher, publisher, TRONE_KEY_LEN);
            d.epoch = buf_load_u64(event);
        }
        size_t tag_size = strlen(ch->tag);
        memcpy(d.tag, ch->tag, tag_size + 1);
        e->desc_size = chan_durable_desc_encode(&d, e->desc);
        e->desc_stream = stream;
    }
    const uint8_t *desc = e->desc;
    size_t desc_size = e->desc_size;
    /* The record: publisher key | wire event (whose time is at offset 16). */
    uint8_t record[BRK_EVENTS_EVENT_MAX + TRONE_KEY_LEN];
    TRONE_ASSERT(event_size <= BRK_EVENTS_EVENT_MAX);
    memcpy(record, publisher, TRONE_KEY_LEN);
    memcpy(record + TRONE_KEY_LEN, event, event_size);
    if (e->group == 0 || e->group_pending != pending || strcmp(e->group_tag, ch->tag) != 0) {
        /* One hash per tag or kind change, not per event. */
        e->group = pending ? chan_durable_pending_group(ch->tag) : chan_durable_group(ch->tag);
        e->group_pending = pending;
        snprintf(e->group_tag, sizeof(e->group_tag), "%s", ch->tag);
    }
    int rc = e->config.durable.put(e->config.durable.ctx, e->group, stream,
                                   desc, desc_size, position, buf_load_u64(event + 16), record,
                                   TRONE_KEY_LEN + event_size, ch->cls.retain_ms,
                                   ch->cls.retain_bytes);
    if (rc != 0) {
        e->stats.store_refused++;
        e->store_status = rc;
        return rc;
    }
    if (pending) {
        e->stats.pending_stored++;
    } else {
        e->stats.stored++;
    }
    e->store_status = 0;
    return 0;
}

void brk_events_durable_set(struct brk_events *e, const struct brk_events_durable *d)
{
    TRONE_ASSERT((d->put == NULL) == (d->read == NULL));
    TRONE_ASSERT((d->put == NULL) == (d->stream_next == NULL));
    TRONE_ASSERT((d->insert == NULL) == (d->info == NULL));
    TRONE_ASSERT((d->insert == NULL) == (d->hole == NULL));
    TRONE_ASSERT(d->insert == NULL || d->put != NULL);
    TRONE_ASSERT(d->drop == NULL || d->put != NULL);
    e->config.durable = *d;
}

int32_t brk_events_store_status(const struct brk_events *e) { return e->store_status; }

void brk_events__replay_start(struct brk_events *e, uint32_t attach_idx, uint8_t mode,
                              uint64_t start)
{
    TRONE_ASSERT(attach_idx != BRK_EVENTS_NONE);
    struct brk_events_attach *a = &e->attaches[attach_idx];
    if (!a->replaying) {
        e->replaying++;
    }
    a->replaying = true;
    a->replay_announced = false;
    a->start_mode = mode;
    a->start = start;
    a->replay_stream = 0;
    a->replay_next = 0;
    e->stats.replays++;
}

void brk_events__replay_stop(struct brk_events *e, uint32_t attach_idx)
{
    struct brk_events_attach *a = &e->attaches[attach_idx];
    if (a->replaying) {
        TRONE_ASSERT(e->replaying > 0);
        e->replaying--;
        a->replaying = false;
    }
}

/* Appends a REPLAY for the attachment's current stream (or its END) for connection c. */
static void brk_events_replay_notice(struct brk_events *e, const struct brk_events_attach *a,
                                     uint64_t conn_id, bool end, uint64_t first)
{
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_REPLAY;
    snprintf(m.tag, sizeof(m.tag), "%s", a->tag);
    m.flags = end ? CHAN_REPLAY_END : 0;
    if (!end) {
        if (!a->replay_total) {
            memcpy(m.publisher, a->replay_publisher, TRONE_KEY_LEN);
            m.epoch = a->replay_epoch;
        }
        m.first = first;
    }
    size_t start = e->out_data.used;
    chan_msg_put_header(&e->out_data, &m);
    brk_events__out_add(e, conn_id, start);
}

/* One chunk being turned into DELIVER (FIFO) or DELIVER_TOTAL messages. */
struct brk_events_replay_ctx {
    struct brk_events *e;
    struct brk_events_attach *a;
    uint64_t conn_id;
    uint64_t now_us;
    size_t msg_start;      /* where the open message starts; SIZE_MAX: none open */
    uint32_t msg_count;
    uint8_t msg_publisher[TRONE_KEY_LEN];
    uint64_t msg_next;     /* total: the position the open message continues with */
    uint64_t last;         /* last position consumed */
    uint32_t read;         /* records consumed */
    size_t limit;          /* stop before out_data.used passes this */
    bool stopped;          /* stopped for the budget: the cursor stays at last + 1 */
    int corrupt;
};

static void brk_events_replay_close_msg(struct brk_events_replay_ctx *x)
{
    if (x->msg_start == SIZE_MAX) {
        return;
    }
    chan_msg_events_end(&x->e->out_data, x->msg_start, x->msg_count);
    brk_events__out_add(x->e, x->conn_id, x->msg_start);
    x->e->stats.replayed += x->msg_count;
    x->msg_start = SIZE_MAX;
}

static int brk_events_replay_record(void *ctx, uint64_t position, const uint8_t *record,
                                    size_t size)
{
    struct brk_events_replay_ctx *x = ctx;
    struct brk_events *e = x->e;
    struct brk_events_attach *a = x->a;
    if (x->read > 0 && (e->out_data.used >= x->limit ||
                        buf_reserve(&e->out_data, size + 3u * BRK_EVENTS_SMALL_MSG_MAX) != 0)) {
        e->out_data.error = 0;
        x->stopped = true; /* this record is left for the next flush */
        return 1;
    }
    if (buf_reserve(&e->out_data, size + 3u * BRK_EVENTS_SMALL_MSG_MAX) != 0) {
        e->out_data.error = 0;
        x->stopped = true;
        return 1;
    }
    x->read++;
    x->last = position;
    /* Stored bytes were checksummed by the store; check the shape anyway (never assert). */
    if (size < TRONE_KEY_LEN + 24u + 2u + 4u || size > TRONE_KEY_LEN + BRK_EVENTS_EVENT_MAX) {
        x->corrupt = 1;
        return 1;
    }
    const uint8_t *publisher = record;
    const uint8_t *event = record + TRONE_KEY_LEN;
    size_t event_size = size - TRONE_KEY_LEN;
    if (a->start_mode == CHAN_START_SINCE && buf_load_u64(event + 16) < a->start) {
        return 0; /* published before the start time */
    }
    if (!a->replay_announced) {
        a->replay_announced = true;
        brk_events_replay_notice(e, a, x->conn_id, false, position);
    }
    bool same = x->msg_start != SIZE_MAX &&
                memcmp(x->msg_publisher, publisher, TRONE_KEY_LEN) == 0 &&
                (!a->replay_total || position == x->msg_next) &&
                e->out_data.used - x->msg_start + event_size <= e->config.deliver_bytes_max &&
                x->msg_count < CHAN_EVENTS_PER_MSG_MAX;
    if (!same) {
        brk_events_replay_close_msg(x);
        struct chan_msg m;
        memset(&m, 0, sizeof(m));
        m.type = a->replay_total ? CHAN_MSG_DELIVER_TOTAL : CHAN_MSG_DELIVER;
        snprintf(m.tag, sizeof(m.tag), "%s", a->tag);
        memcpy(m.publisher, publisher, TRONE_KEY_LEN);
        m.replica_time_us = x->now_us;
        m.position = position;
        x->msg_start = e->out_data.used;
        x->msg_count = 0;
        memcpy(x->msg_publisher, publisher, TRONE_KEY_LEN);
        chan_msg_put_header(&e->out_data, &m);
    }
    buf_put_bytes(&e->out_data, event, event_size);
    x->msg_count++;
    x->msg_next = position + 1;
    return 0;
}

/* Moves the cursor to the next stream of the channel; false when there is none (or the
 * store failed: the replay ends there, the subscriber's gap rules take over). */
static bool brk_events_replay_next_stream(struct brk_events *e, struct brk_events_attach *a)
{
    uint8_t desc[CHAN_DURABLE_DESC_MAX];
    size_t desc_size = 0;
    uint64_t id = 0;
    int rc = e->config.durable.stream_next(e->config.durable.ctx, chan_durable_group(a->tag),
                                           a->replay_stream, &id, desc, sizeof(desc),
                                           &desc_size);
    struct chan_durable_stream d;
    if (rc == 0) {
        rc = chan_durable_desc_decode(&d, desc, desc_size);
    }
    if (rc == 0 && (id <= a->replay_stream || d.pending || strcmp(d.tag, a->tag) != 0)) {
        rc = TRONE_ECORRUPT;
    }
    if (rc != 0) {
        return false;
    }
    a->replay_stream = id;
    a->replay_total = d.total;
    memcpy(a->replay_publisher, d.publisher, TRONE_KEY_LEN);
    a->replay_epoch = d.epoch;
    a->replay_announced = false;
    a->replay_next = a->start_mode == CHAN_START_FROM && a->start < UINT64_MAX ? a->start + 1 : 1;
    return true;
}

/* Replays attachment a within budget bytes; returns the bytes emitted. Ends the replay (REPLAY
 * END, then live) once the last stream is read to its end. */
static size_t brk_events_replay_attach(struct brk_events *e, struct brk_events_attach *a,
                                       uint64_t conn_id, uint64_t now_us, size_t budget)
{
    size_t begin = e->out_data.used;
    /* Bounded: each round reads a chunk or moves to the next stream. */
    for (uint32_t round = 0; round < 1024u && e->out_data.used - begin < budget; round++) {
        if (buf_reserve(&e->out_data, 2u * BRK_EVENTS_SMALL_MSG_MAX) != 0) {
            e->out_data.error = 0;
            break; /* the next flush retries */
        }
        if (e->config.durable.put == NULL ||
            (a->replay_next == 0 && !brk_events_replay_next_stream(e, a))) {
            brk_events_replay_notice(e, a, conn_id, true, 0);
            a->replay_stream = UINT64_MAX; /* every stream passed: all live */
            brk_events__replay_stop(e, (uint32_t)(a - e->attaches));
            break;
        }
        struct brk_events_replay_ctx x = {.e = e, .a = a, .conn_id = conn_id, .now_us = now_us,
                                          .msg_start = SIZE_MAX, .limit = begin + budget};
        uint32_t chunk = e->config.replay_chunk;
        int rc = e->config.durable.read(e->config.durable.ctx, a->replay_stream, a->replay_next,
                                        chunk, brk_events_replay_record, &x);
        brk_events_replay_close_msg(&x);
        if (x.stopped) {
            a->replay_next = x.read > 0 ? x.last + 1 : a->replay_next;
            break;
        }
        if ((rc != 0 && !x.stopped) || x.corrupt || x.read < chunk || x.last == UINT64_MAX) {
            a->replay_next = 0; /* this stream is done (or unreadable): the next one */
        } else {
            a->replay_next = x.last + 1;
        }
    }
    return e->out_data.used - begin;
}

bool brk_events__replay_pending(const struct brk_events *e, uint32_t conn_idx)
{
    if (e->replaying == 0) {
        return false;
    }
    uint32_t i = e->conns[conn_idx].attach_first;
    for (uint32_t n = 0; n <= e->config.attach_per_conn_max && i != BRK_EVENTS_NONE; n++) {
        if (e->attaches[i].replaying) {
            return true;
        }
        i = e->attaches[i].conn_next;
    }
    return false;
}

size_t brk_events__replay_flush(struct brk_events *e, const struct brk_table *table,
                                uint32_t conn_idx, uint64_t now_us, size_t budget)
{
    (void)table;
    struct brk_events_conn *c = &e->conns[conn_idx];
    size_t begin = e->out_data.used;
    uint32_t i = c->attach_first;
    for (uint32_t n = 0; n <= e->config.attach_per_conn_max && i != BRK_EVENTS_NONE; n++) {
        struct brk_events_attach *a = &e->attaches[i];
        i = a->conn_next;
        size_t used = e->out_data.used - begin;
        if (a->replaying && used < budget) {
            brk_events_replay_attach(e, a, c->id, now_us, budget - used);
        }
    }
    return e->out_data.used - begin;
}
