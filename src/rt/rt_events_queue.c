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
    if (slots_max < 4 || ring_size < TRONE_EVENT_PAYLOAD_MAX) { /* an event and two gaps */
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
    gap.fell_behind = true;
    gap.arrival = arrival;
    rt_events_queue_append(q, &gap, NULL);
    q->dropped = 0;
}

/* Is there room for an entry of size payload bytes plus extra_slots more entries? */
static bool rt_events_queue_room(const struct rt_events_queue *q, uint32_t size,
                                 uint64_t extra_slots)
{
    return rt_events_queue_count(q) + 1u + extra_slots <= q->slots_max &&
           q->ring_head - q->ring_tail + rt_events_queue_need(q, size) <= q->ring_size;
}

/* Evicts the oldest entries until an entry of size bytes fits beside extra_slots more
 * entries and the gap entry, and puts that gap entry at the head, counting what went. An
 * entry's payload bytes are freed only when every older one is (the ring is FIFO), which
 * eviction from the head provides. */
static void rt_events_queue_evict(struct rt_events_queue *q, uint32_t size, uint64_t extra_slots)
{
    TRONE_ASSERT(!q->pinned);
    uint64_t lost = 0;
    uint64_t arrival = 0;
    bool first = true;
    while (rt_events_queue_count(q) > 0 && !rt_events_queue_room(q, size, 1u + extra_slots)) {
        const struct rt_events_entry *e = &q->slots[q->tail % q->slots_max];
        arrival = first ? e->arrival : arrival;
        first = false;
        lost += e->kind == TRONE_EVENT_GAP ? e->lost : 1u;
        q->ring_tail += e->stored_size;
        q->tail++;
    }
    if (first) {
        return; /* nothing was evicted */
    }
    if (rt_events_queue_count(q) == 0) {
        q->ring_head = q->ring_tail = 0; /* empty: the next payload starts at the ring's start */
    }
    /* The gap takes the slot before the new head; it has no payload (stored_size 0). */
    q->tail--;
    struct rt_events_entry *gap = &q->slots[q->tail % q->slots_max];
    memset(gap, 0, sizeof(*gap));
    gap->kind = TRONE_EVENT_GAP;
    gap->lost = lost;
    gap->fell_behind = true;
    gap->arrival = arrival;
    gap->offset = q->ring_tail;
}

int rt_events_queue_push(struct rt_events_queue *q, const struct rt_events_entry *entry,
                         const uint8_t *payload)
{
    TRONE_ASSERT(entry->payload_size <= TRONE_EVENT_PAYLOAD_MAX);
    uint64_t gap_slots = q->dropped > 0 ? 1 : 0;
    if (!rt_events_queue_room(q, entry->payload_size, gap_slots)) {
        if (q->pinned) {
            q->dropped++; /* the oldest is in the application's hands: drop the new one */
            return TRONE_EFULL;
        }
        rt_events_queue_evict(q, entry->payload_size, gap_slots);
        TRONE_ASSERT(rt_events_queue_room(q, entry->payload_size, gap_slots));
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
    q->pinned = false;
}

void rt_events_queue_pin(struct rt_events_queue *q) { q->pinned = true; }
