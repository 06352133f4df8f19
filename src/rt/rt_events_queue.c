/* rt_events_queue.c: bounded per-channel delivery queue: fixed slots plus a byte ring whose
 * entries never wrap (a payload that does not fit before the end skips to the start and the
 * skipped bytes are charged to it). No I/O. */
#include "rt/rt_events_queue.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

int rt_events_queue_init(struct rt_events_queue *q, uint32_t slots_max, uint64_t ring_size)
{
    memset(q, 0, sizeof(*q));
    if (slots_max < 2 || ring_size < TRONE_EVENT_PAYLOAD_MAX) {
        return TRONE_EINVAL;
    }
    q->slots = calloc(slots_max, sizeof(*q->slots));
    q->ring = calloc(1, ring_size);
    if (q->slots == NULL || q->ring == NULL) {
        rt_events_queue_close(q);
        return TRONE_ENOMEM;
    }
    q->slots_max = slots_max;
    q->ring_size = ring_size;
    return 0;
}

void rt_events_queue_close(struct rt_events_queue *q)
{
    free(q->slots);
    free(q->ring);
    memset(q, 0, sizeof(*q));
}

uint64_t rt_events_queue_count(const struct rt_events_queue *q)
{
    TRONE_ASSERT(q->head >= q->tail);
    return q->head - q->tail;
}

/* Ring bytes an entry of size bytes needs at the current head: the size, plus the skipped tail
 * of the ring when it does not fit before the end. */
static uint64_t rt_events_queue_need(const struct rt_events_queue *q, uint32_t size)
{
    uint64_t position = q->ring_head % q->ring_size;
    if (size > 0 && position + size > q->ring_size) {
        return (q->ring_size - position) + size;
    }
    return size;
}

static void rt_events_queue_append(struct rt_events_queue *q, const struct rt_events_entry *entry,
                                   const uint8_t *payload)
{
    uint64_t need = rt_events_queue_need(q, entry->payload_size);
    struct rt_events_entry *slot = &q->slots[q->head % q->slots_max];
    *slot = *entry;
    slot->stored_size = (uint32_t)need;
    slot->offset = q->ring_head + (need - entry->payload_size);
    if (entry->payload_size > 0) {
        memcpy(q->ring + slot->offset % q->ring_size, payload, entry->payload_size);
    }
    q->ring_head += need;
    q->head++;
    TRONE_ASSERT(q->ring_head - q->ring_tail <= q->ring_size);
}

/* Queues the gap entry for the dropped events (the caller checked there is a slot). */
static void rt_events_queue_gap(struct rt_events_queue *q, uint64_t arrival)
{
    struct rt_events_entry gap;
    memset(&gap, 0, sizeof(gap));
    gap.kind = TRONE_EVENT_GAP;
    gap.lost = q->dropped;
    gap.arrival = arrival;
    rt_events_queue_append(q, &gap, NULL);
    q->dropped = 0;
}

int rt_events_queue_push(struct rt_events_queue *q, const struct rt_events_entry *entry,
                         const uint8_t *payload)
{
    TRONE_ASSERT(entry->payload_size <= TRONE_EVENT_PAYLOAD_MAX);
    uint64_t slots_needed = q->dropped > 0 ? 2 : 1;
    uint64_t need = rt_events_queue_need(q, entry->payload_size);
    bool room = rt_events_queue_count(q) + slots_needed <= q->slots_max &&
                q->ring_head - q->ring_tail + need <= q->ring_size;
    if (!room) {
        q->dropped++;
        return TRONE_EFULL;
    }
    if (q->dropped > 0) {
        rt_events_queue_gap(q, entry->arrival);
    }
    rt_events_queue_append(q, entry, payload);
    return 0;
}

const struct rt_events_entry *rt_events_queue_peek(struct rt_events_queue *q, uint64_t arrival,
                                                   const uint8_t **payload)
{
    if (rt_events_queue_count(q) == 0 && q->dropped > 0) {
        rt_events_queue_gap(q, arrival);
    }
    if (rt_events_queue_count(q) == 0) {
        *payload = NULL;
        return NULL;
    }
    const struct rt_events_entry *e = &q->slots[q->tail % q->slots_max];
    *payload = q->ring + e->offset % q->ring_size;
    return e;
}

void rt_events_queue_pop(struct rt_events_queue *q)
{
    TRONE_ASSERT(rt_events_queue_count(q) > 0);
    const struct rt_events_entry *e = &q->slots[q->tail % q->slots_max];
    q->ring_tail += e->stored_size;
    TRONE_ASSERT(q->ring_tail <= q->ring_head);
    q->tail++;
}
