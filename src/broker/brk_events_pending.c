/* brk_events_pending.c: durable total-order channels across restarts (issue 4,
 * docs/PROTOCOL.md 11.1). A replica stores each event it accepts on such a channel in the
 * channel's pending stream of (tag, publisher, epoch) before it acknowledges it
 * (brk_events.c), and moves it to the total stream when its ORDER releases it
 * (brk_events_total.c). This file reloads the pending events into the pool at start, so the
 * ORDERs executed again from the restored log (or later) find them, and releases from the
 * store an ORDER whose range was stored before a crash and whose pending copies are gone.
 * No I/O of its own (the runtime's store functions), no clock. */
#include <stdio.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "chan/chan_durable.h"
#include "core/assert.h"

/* Records read per store call while loading, and streams walked per channel at most. */
#define BRK_EVENTS_PENDING_CHUNK 256u
#define BRK_EVENTS_PENDING_STREAMS_MAX (1u << 20)

/* ---- Releasing a stored range ---------------------------------------------------------- */

struct brk_events_stored_ctx {
    struct brk_events *e;
    const struct brk_channel *ch;
    uint64_t next;         /* the position expected next */
    uint32_t target_count; /* 0: only check the positions */
};

static int brk_events_stored_record(void *ctx, uint64_t position, const uint8_t *record,
                                    size_t size)
{
    struct brk_events_stored_ctx *x = ctx;
    /* The store checksummed it; check its shape anyway (never assert on disk bytes). */
    if (position != x->next || size < TRONE_KEY_LEN + 24u + 2u + 4u ||
        size > TRONE_KEY_LEN + BRK_EVENTS_EVENT_MAX) {
        return 1;
    }
    for (uint32_t k = 0; k < x->target_count; k++) {
        brk_events__enqueue(x->e, x->e->targets[k], x->ch->cls.urgency, x->ch->tag, record,
                            position, record + TRONE_KEY_LEN, size - TRONE_KEY_LEN);
    }
    x->next++;
    return 0;
}

bool brk_events__order_stored(struct brk_events *e, const struct brk_table *table,
                              const struct brk_channel *ch, const struct brk_events_order *o)
{
    TRONE_ASSERT(e->config.durable.read != NULL);
    TRONE_ASSERT(o->count >= 1 && o->count <= BRK_ORDER_COUNT_MAX);
    static const uint8_t zero[TRONE_KEY_LEN];
    uint64_t stream = brk_events__durable_stream(ch->tag, zero, 0, true);
    struct brk_events_stored_ctx x = {.e = e, .ch = ch, .next = o->first_position};
    int rc = e->config.durable.read(e->config.durable.ctx, stream, o->first_position, o->count,
                                    brk_events_stored_record, &x);
    if (rc < 0 || x.next != o->first_position + o->count) {
        return false;
    }
    x.target_count = brk_events__targets(e, table, ch, stream);
    if (x.target_count > 0) {
        /* A second read queues them: the first one queued nothing, in case one was missing. */
        x.next = o->first_position;
        rc = e->config.durable.read(e->config.durable.ctx, stream, o->first_position, o->count,
                                    brk_events_stored_record, &x);
        if (rc < 0 || x.next != o->first_position + o->count) {
            return false; /* the store failed in between: the wait decides */
        }
    }
    e->stats.released += o->count;
    return true;
}

/* ---- Loading at start -------------------------------------------------------------------- */

struct brk_events_load_ctx {
    struct brk_events *e;
    const struct chan_durable_stream *d;
    uint64_t next; /* the position to read from next */
    uint32_t read; /* records seen in this chunk */
    uint64_t loaded;
};

static int brk_events_load_record(void *ctx, uint64_t position, const uint8_t *record, size_t size)
{
    struct brk_events_load_ctx *x = ctx;
    x->read++;
    x->next = position + 1;
    /* Disk bytes: the shape, the stream's publisher and epoch, and position = seq. */
    if (size < TRONE_KEY_LEN + 24u + 2u + 4u || size > TRONE_KEY_LEN + BRK_EVENTS_EVENT_MAX ||
        memcmp(record, x->d->publisher, TRONE_KEY_LEN) != 0) {
        return 0; /* skipped */
    }
    const uint8_t *event = record + TRONE_KEY_LEN;
    if (buf_load_u64(event) != x->d->epoch || buf_load_u64(event + 8) != position) {
        return 0;
    }
    brk_events__pool_add(x->e, x->d->tag, x->d->publisher, event, size - TRONE_KEY_LEN);
    x->loaded++;
    return 0;
}

/* Loads the pending streams of one channel; returns the events loaded or an error. */
static int64_t brk_events_load_channel(struct brk_events *e, const struct brk_channel *ch)
{
    const struct brk_events_durable *du = &e->config.durable;
    uint64_t group = chan_durable_pending_group(ch->tag);
    uint64_t after = 0;
    int64_t loaded = 0;
    for (uint32_t n = 0; n < BRK_EVENTS_PENDING_STREAMS_MAX; n++) {
        uint8_t desc[CHAN_DURABLE_DESC_MAX];
        size_t desc_size = 0;
        uint64_t id = 0;
        int rc = du->stream_next(du->ctx, group, after, &id, desc, sizeof(desc), &desc_size);
        if (rc == TRONE_ENOENT) {
            return loaded;
        }
        struct chan_durable_stream d;
        if (rc == 0) {
            rc = chan_durable_desc_decode(&d, desc, desc_size);
        }
        if (rc == 0 && (id <= after || !d.pending || strcmp(d.tag, ch->tag) != 0 ||
                        chan_durable_stream_id(&d) != id)) {
            rc = TRONE_ECORRUPT;
        }
        if (rc != 0) {
            return rc;
        }
        after = id;
        struct brk_events_load_ctx x = {.e = e, .d = &d, .next = 1};
        /* Bounded: every chunk but the last reads BRK_EVENTS_PENDING_CHUNK positions. */
        for (uint64_t c = 0; c <= UINT32_MAX; c++) {
            x.read = 0;
            rc =
                du->read(du->ctx, id, x.next, BRK_EVENTS_PENDING_CHUNK, brk_events_load_record, &x);
            if (rc < 0) {
                return rc;
            }
            if (x.read < BRK_EVENTS_PENDING_CHUNK || x.next == 0) {
                break;
            }
        }
        loaded += (int64_t)x.loaded;
    }
    return loaded;
}

int brk_events_pending_load(struct brk_events *e, const struct brk_table *table, uint64_t now_us)
{
    TRONE_ASSERT(e->totals != NULL);
    if (e->config.durable.put == NULL) {
        return 0;
    }
    uint64_t loaded = 0;
    int rc = 0;
    uint32_t count = brk_table_channel_count(table);
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        const struct brk_channel *ch = brk_table_channel_at(table, i);
        if (!ch->cls.durable || ch->cls.order != BRK_ORDER_TOTAL) {
            continue;
        }
        int64_t n = brk_events_load_channel(e, ch);
        if (n < 0) {
            rc = (int)n;
        } else {
            loaded += (uint64_t)n;
        }
    }
    e->stats.pending_loaded += loaded;
    brk_events__total_release_all(e, table, now_us);
    if (rc != 0) {
        return rc;
    }
    return loaded > INT32_MAX ? INT32_MAX : (int)loaded;
}
