/* brk_events_flush.c: turns the per-connection queues of the event path into GAP and DELIVER
 * messages (brk_events.h): most urgent level first, consecutive events of one (tag, publisher)
 * in one DELIVER (DELIVER_TOTAL for consecutive positions of a total-order channel), bounded
 * bytes per connection and per flush, connections taken round robin. No I/O; the time stamped on DELIVERs comes in the input. */
#include <stdio.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "core/assert.h"

/* Emits one GAP per (tag, publisher) that lost events. False if the output cannot hold them
 * (nothing is emitted then, and the connection must wait: no DELIVER may precede its GAP). */
static bool brk_events_flush_gaps(struct brk_events *e, struct brk_events_conn *c)
{
    if (c->gap_count == 0) {
        return true;
    }
    if (buf_reserve(&e->out_data, (size_t)c->gap_count * BRK_EVENTS_SMALL_MSG_MAX) != 0) {
        e->out_data.error = 0; /* nothing was written; a later flush retries */
        return false;
    }
    for (uint32_t i = 0; i < c->gap_count; i++) {
        const struct brk_events_gap *g = &c->gaps[i];
        struct chan_msg m;
        memset(&m, 0, sizeof(m));
        m.type = CHAN_MSG_GAP;
        snprintf(m.tag, sizeof(m.tag), "%s", g->tag);
        memcpy(m.publisher, g->publisher, TRONE_KEY_LEN);
        m.dropped = g->dropped;
        size_t start = e->out_data.used;
        chan_msg_put_header(&e->out_data, &m);
        brk_events__out_add(e, c->id, start);
    }
    c->gap_count = 0;
    return e->out_data.error == 0;
}

/* May the connection in slot still receive events of tag: attached, the channel exists, and
 * its key is authorized to subscribe (the table may have changed since the event was queued). */
static bool brk_events_flush_allowed(const struct brk_events *e, const struct brk_table *table,
                                     uint32_t slot, const char *tag)
{
    if (brk_events__attach_find(e, slot, tag) == BRK_EVENTS_NONE) {
        return false;
    }
    const struct brk_channel *ch = brk_table_find_channel(table, tag);
    return ch != NULL && brk_table_channel_may_subscribe(table, ch, e->conns[slot].key);
}

/* Moves the run of events of one (tag, publisher) at the head of a level into one DELIVER (or
 * discards it if the connection may no longer have it). False if the output is full. */
static bool brk_events_flush_run(struct brk_events *e, const struct brk_table *table,
                                 uint32_t slot, uint32_t level, uint64_t now_us)
{
    struct brk_events_conn *c = &e->conns[slot];
    struct brk_events_level *lv = &c->levels[level];
    size_t room = BRK_EVENTS_SMALL_MSG_MAX + e->config.deliver_bytes_max + BRK_EVENTS_RECORD_MAX;
    if (buf_reserve(&e->out_data, room) != 0) {
        e->out_data.error = 0; /* nothing was written; the events stay queued */
        return false;
    }
    struct brk_events_record first;
    brk_events__record_read(lv->data + lv->head, &first);
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    /* Events of total-order channels carry their positions: a run holds consecutive ones. */
    m.type = first.position != 0 ? CHAN_MSG_DELIVER_TOTAL : CHAN_MSG_DELIVER;
    memcpy(m.tag, first.tag, first.tag_size);
    memcpy(m.publisher, first.publisher, TRONE_KEY_LEN);
    m.replica_time_us = now_us;
    m.position = first.position;
    bool allowed = brk_events_flush_allowed(e, table, slot, m.tag);
    size_t start = e->out_data.used;
    if (allowed) {
        chan_msg_put_header(&e->out_data, &m);
    }
    uint32_t count = 0;
    for (uint32_t n = 0; n < CHAN_EVENTS_PER_MSG_MAX && lv->count > 0; n++) {
        struct brk_events_record rec;
        brk_events__record_read(lv->data + lv->head, &rec);
        if (rec.tag_size != first.tag_size || memcmp(rec.tag, m.tag, rec.tag_size) != 0 ||
            memcmp(rec.publisher, m.publisher, TRONE_KEY_LEN) != 0 ||
            (first.position != 0 && rec.position != first.position + count) ||
            (first.position == 0 && rec.position != 0)) {
            break;
        }
        if (count > 0 && e->out_data.used - start + rec.event_size > e->config.deliver_bytes_max) {
            break;
        }
        if (allowed) {
            buf_put_bytes(&e->out_data, rec.event, rec.event_size);
        }
        count++;
        brk_events__level_pop(e, c, level); /* after the copy: popping may free the buffer */
    }
    TRONE_ASSERT(count > 0);
    if (!allowed) {
        e->stats.unauthorized += count;
        return true;
    }
    TRONE_ASSERT(e->out_data.error == 0); /* inside the reservation */
    chan_msg_events_end(&e->out_data, start, count);
    brk_events__out_add(e, c->id, start);
    e->stats.delivered += count;
    return true;
}

/* Flushes one connection within budget bytes; returns the bytes emitted. */
static size_t brk_events_flush_conn(struct brk_events *e, const struct brk_table *table,
                                    uint32_t slot, uint64_t now_us, size_t budget)
{
    struct brk_events_conn *c = &e->conns[slot];
    size_t start = e->out_data.used;
    if (!brk_events_flush_gaps(e, c)) {
        return e->out_data.used - start;
    }
    for (uint32_t k = 0; k < BRK_EVENTS_LEVELS; k++) {
        uint32_t level = BRK_EVENTS_LEVELS - 1 - k; /* most urgent first (DESIGN.md 2) */
        for (uint32_t n = 0; n <= e->config.queue_events_max && c->levels[level].count > 0; n++) {
            if (e->out_data.used - start >= budget) {
                return e->out_data.used - start;
            }
            if (!brk_events_flush_run(e, table, slot, level, now_us)) {
                return e->out_data.used - start;
            }
        }
    }
    size_t used = e->out_data.used - start;
    if (used < budget && brk_events__replay_pending(e, slot)) {
        brk_events__replay_flush(e, table, slot, now_us, budget - used);
    }
    return e->out_data.used - start;
}

void brk_events_flush(struct brk_events *e, const struct brk_table *table, uint64_t now_us,
                      const struct brk_events_out **out)
{
    TRONE_ASSERT(e->conns != NULL);
    brk_events__out_reset(e);
    *out = &e->out;
    size_t total = 0;
    uint32_t high = e->conn_high;
    for (uint32_t k = 0; k < high; k++) {
        uint32_t slot = (e->flush_cursor + k) % high;
        struct brk_events_conn *c = &e->conns[slot];
        if (c->used && c->doomed) {
            TRONE_ASSERT(e->close_count < e->config.conn_max);
            e->closes[e->close_count++] = c->id;
            continue;
        }
        if (!c->used || c->paused ||
            (c->queued_events == 0 && c->gap_count == 0 && !brk_events__replay_pending(e, slot))) {
            continue;
        }
        if (total >= e->config.flush_total_bytes_max) {
            e->out.more = true;
            continue;
        }
        size_t budget = e->config.flush_total_bytes_max - total;
        budget = budget > e->config.flush_conn_bytes_max ? e->config.flush_conn_bytes_max : budget;
        total += brk_events_flush_conn(e, table, slot, now_us, budget);
        e->out.more = e->out.more || c->queued_events > 0 || c->gap_count > 0 ||
                      brk_events__replay_pending(e, slot);
    }
    e->flush_cursor = high > 0 ? (e->flush_cursor + 1) % high : 0;
    brk_events__out_finish(e);
}
