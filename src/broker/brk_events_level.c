/* brk_events_level.c: the per-connection queue of the event path (brk_events.h): one FIFO of
 * records per urgency level, bounded in events and bytes per connection. On overflow the oldest
 * event of the least urgent non-empty level goes (or the new event, if it is less urgent than
 * everything queued), counted per (tag, publisher) for the GAP that flush sends before the next
 * DELIVER of that pair. No I/O; buffers grow by doubling, never once per event. */
#include <stdlib.h>
#include <string.h>

#include "broker/brk_events_internal.h"
#include "core/assert.h"

/* An emptied level keeps a buffer up to this size for reuse; larger ones are freed. */
#define BRK_EVENTS_LEVEL_KEEP (64u * 1024)
#define BRK_EVENTS_LEVEL_FIRST 4096u
#define BRK_EVENTS_GAP_FIRST 8u

void brk_events__record_read(const uint8_t *p, struct brk_events_record *rec)
{
    rec->size = buf_load_u32(p);
    rec->tag_size = p[4];
    rec->tag = (const char *)p + 5;
    rec->publisher = p + 5 + rec->tag_size;
    rec->position = buf_load_u64(rec->publisher + TRONE_KEY_LEN);
    rec->event = rec->publisher + TRONE_KEY_LEN + 8;
    TRONE_ASSERT(rec->size > 5u + rec->tag_size + TRONE_KEY_LEN + 8u);
    rec->event_size = rec->size - (5u + rec->tag_size + TRONE_KEY_LEN + 8u);
}

void brk_events__level_pop(struct brk_events *e, struct brk_events_conn *c, uint32_t level)
{
    (void)e;
    struct brk_events_level *lv = &c->levels[level];
    TRONE_ASSERT(lv->count > 0);
    size_t end = lv->wrap != 0 ? lv->wrap : lv->tail;
    TRONE_ASSERT(lv->head + 4 <= end);
    size_t size = buf_load_u32(lv->data + lv->head);
    TRONE_ASSERT(lv->head + size <= end);
    lv->head += size;
    lv->count--;
    if (lv->wrap != 0 && lv->head == lv->wrap) {
        lv->head = 0; /* the records written from the start of the buffer come next */
        lv->wrap = 0;
    }
    TRONE_ASSERT(c->queued_events > 0 && c->queued_bytes >= size);
    c->queued_events--;
    c->queued_bytes -= size;
    if (lv->count == 0) {
        TRONE_ASSERT(lv->head == lv->tail && lv->wrap == 0);
        lv->head = 0;
        lv->tail = 0;
        if (lv->capacity > BRK_EVENTS_LEVEL_KEEP) {
            free(lv->data);
            lv->data = NULL;
            lv->capacity = 0;
        }
    }
}

/* Copies the live records to the start of a buffer of want bytes (the old one or a new one)
 * and unwraps the ring. False on ENOMEM (the level is unchanged). */
static bool brk_events_level_linearize(struct brk_events_level *lv, size_t want)
{
    size_t first = (lv->wrap != 0 ? lv->wrap : lv->tail) - lv->head;
    size_t second = lv->wrap != 0 ? lv->tail : 0;
    if (lv->wrap == 0) {
        /* realloc can grow a large buffer in place (mremap) without copying it. */
        uint8_t *data = want != lv->capacity ? realloc(lv->data, want) : lv->data;
        if (data == NULL) {
            return false;
        }
        lv->data = data;
        lv->capacity = want;
        if (lv->head > 0) {
            memmove(lv->data, lv->data + lv->head, first);
        }
    } else {
        uint8_t *data = malloc(want);
        if (data == NULL) {
            return false;
        }
        if (first > 0) {
            memcpy(data, lv->data + lv->head, first);
        }
        if (second > 0) {
            memcpy(data + first, lv->data, second);
        }
        free(lv->data);
        lv->data = data;
        lv->capacity = want;
    }
    lv->head = 0;
    lv->tail = first + second;
    lv->wrap = 0;
    return true;
}

/* Room for size more contiguous bytes at the tail. The level is a ring, so a queue drained
 * slowly from the head is not moved for every event appended: a record goes after the last
 * one, or at the start of the buffer once the head left room there. Only when the free bytes
 * are too fragmented for the record, or the buffer must grow, are the live records copied
 * (once each per doubling, or once per lap when the buffer is at cap). cap is the connection's
 * byte bound, which the live bytes plus size never exceed. False on ENOMEM. */
static bool brk_events_level_reserve(struct brk_events_level *lv, size_t size, size_t cap)
{
    if (lv->wrap == 0 && lv->tail + size <= lv->capacity) {
        return true;
    }
    if (lv->wrap == 0 && lv->count > 0 && size <= lv->head) {
        lv->wrap = lv->tail;
        lv->tail = 0;
        return true;
    }
    if (lv->wrap != 0 && lv->tail + size <= lv->head) {
        return true;
    }
    size_t live = (lv->wrap != 0 ? lv->wrap - lv->head + lv->tail : lv->tail - lv->head);
    TRONE_ASSERT(live + size <= cap);
    size_t want = lv->capacity > 0 ? lv->capacity : BRK_EVENTS_LEVEL_FIRST;
    for (uint32_t i = 0; i < 64 && (want < live + size || want == lv->capacity) && want < cap;
         i++) {
        want *= 2;
    }
    want = want > cap ? cap : want;
    if (!brk_events_level_linearize(lv, want)) {
        return false;
    }
    TRONE_ASSERT(lv->tail + size <= lv->capacity);
    return true;
}

/* Drops everything a connection holds: it is to be closed (its GAP table overflowed, or its
 * queue filled under BRK_EVENTS_DISCONNECT). */
static void brk_events_conn_doom(struct brk_events *e, struct brk_events_conn *c)
{
    c->doomed = true;
    e->stats.disconnected++;
    for (uint32_t l = 0; l < BRK_EVENTS_LEVELS; l++) {
        for (uint32_t n = 0; n <= e->config.queue_events_max && c->levels[l].count > 0; n++) {
            e->stats.dropped++;
            brk_events__level_pop(e, c, l);
        }
    }
    TRONE_ASSERT(c->queued_events == 0 && c->queued_bytes == 0);
}

/* Counts one event of (tag, publisher) dropped for c. Dooms c when its GAP table is full. */
static void brk_events_gap_count(struct brk_events *e, struct brk_events_conn *c, const char *tag,
                                 size_t tag_size, const uint8_t *publisher)
{
    e->stats.dropped++;
    for (uint32_t i = 0; i < c->gap_count; i++) {
        struct brk_events_gap *g = &c->gaps[i];
        if (memcmp(g->publisher, publisher, TRONE_KEY_LEN) == 0 &&
            strncmp(g->tag, tag, tag_size) == 0 && g->tag[tag_size] == '\0') {
            g->dropped++;
            return;
        }
    }
    if (c->gap_count == c->gap_capacity) {
        uint32_t want = c->gap_capacity == 0 ? BRK_EVENTS_GAP_FIRST : c->gap_capacity * 2;
        want = want > e->config.gap_max ? e->config.gap_max : want;
        struct brk_events_gap *gaps = want > c->gap_capacity
                                          ? realloc(c->gaps, (size_t)want * sizeof(*gaps))
                                          : NULL;
        if (gaps == NULL) {
            brk_events_conn_doom(e, c);
            return;
        }
        c->gaps = gaps;
        c->gap_capacity = want;
    }
    struct brk_events_gap *g = &c->gaps[c->gap_count++];
    memset(g, 0, sizeof(*g));
    memcpy(g->publisher, publisher, TRONE_KEY_LEN);
    memcpy(g->tag, tag, tag_size);
    g->dropped = 1;
}

/* The least urgent level holding events, or BRK_EVENTS_NONE. */
static uint32_t brk_events_least_urgent(const struct brk_events_conn *c)
{
    for (uint32_t l = 0; l < BRK_EVENTS_LEVELS; l++) {
        if (c->levels[l].count > 0) {
            return l;
        }
    }
    return BRK_EVENTS_NONE;
}

/* Makes room for a record of size bytes at level; false if the new event itself is dropped. */
static bool brk_events_make_room(struct brk_events *e, struct brk_events_conn *c, uint8_t level,
                                 size_t size, const char *tag, const uint8_t *publisher)
{
    for (uint32_t n = 0; n <= e->config.queue_events_max; n++) {
        if (c->queued_events < e->config.queue_events_max &&
            c->queued_bytes + size <= e->config.queue_bytes_max) {
            return true;
        }
        if (e->config.overflow == BRK_EVENTS_DISCONNECT) {
            e->stats.dropped++; /* the new event; the queued ones are counted by the doom */
            brk_events_conn_doom(e, c);
            return false;
        }
        uint32_t victim = brk_events_least_urgent(c);
        TRONE_ASSERT(victim != BRK_EVENTS_NONE); /* size <= queue_bytes_max (config check) */
        if (victim > level) {
            /* Everything queued is more urgent: the new event goes. Its level is empty, so no
             * older event of its pair waits behind the GAP. */
            brk_events_gap_count(e, c, tag, strlen(tag), publisher);
            return false;
        }
        struct brk_events_level *lv = &c->levels[victim];
        struct brk_events_record rec;
        brk_events__record_read(lv->data + lv->head, &rec);
        brk_events_gap_count(e, c, rec.tag, rec.tag_size, rec.publisher);
        if (c->doomed) {
            return false;
        }
        brk_events__level_pop(e, c, victim);
    }
    TRONE_ASSERT(0 && "queue bound loop");
    return false;
}

void brk_events__enqueue(struct brk_events *e, uint32_t conn_idx, uint8_t level, const char *tag,
                         const uint8_t publisher[TRONE_KEY_LEN], uint64_t position,
                         const uint8_t *event, size_t event_size)
{
    struct brk_events_conn *c = &e->conns[conn_idx];
    TRONE_ASSERT(c->used);
    TRONE_ASSERT(level < BRK_EVENTS_LEVELS);
    if (c->doomed) {
        return;
    }
    size_t tag_size = strlen(tag);
    size_t size = 5u + tag_size + TRONE_KEY_LEN + 8u + event_size;
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX && size <= BRK_EVENTS_RECORD_MAX);
    if (!brk_events_make_room(e, c, level, size, tag, publisher)) {
        return;
    }
    struct brk_events_level *lv = &c->levels[level];
    if (!brk_events_level_reserve(lv, size, e->config.queue_bytes_max)) {
        brk_events_gap_count(e, c, tag, tag_size, publisher); /* out of memory: a counted drop */
        return;
    }
    uint8_t *p = lv->data + lv->tail;
    buf_store_u32(p, (uint32_t)size);
    p[4] = (uint8_t)tag_size;
    memcpy(p + 5, tag, tag_size);
    memcpy(p + 5 + tag_size, publisher, TRONE_KEY_LEN);
    buf_store_u64(p + 5 + tag_size + TRONE_KEY_LEN, position);
    memcpy(p + 5 + tag_size + TRONE_KEY_LEN + 8, event, event_size);
    lv->tail += size;
    lv->count++;
    c->queued_events++;
    c->queued_bytes += size;
    TRONE_ASSERT(c->queued_events <= e->config.queue_events_max);
    TRONE_ASSERT(c->queued_bytes <= e->config.queue_bytes_max);
}
