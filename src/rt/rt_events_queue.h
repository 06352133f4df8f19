/* rt_events_queue.h: the bounded queue of delivered events of one subscribed channel, between
 * the subscriber core (which decides deliveries inside libuv callbacks) and the application
 * (which takes them in trone_receive or trone_run). Fixed slots and one byte ring allocated at
 * init: no allocation per event. When the application falls behind and the queue is full, the
 * oldest entries make room for the new one, as the replicas' queues do (DESIGN.md 2: the
 * newest events of a monitoring stream matter most), and one gap entry (fell_behind) in their
 * place counts them. The oldest entry is never evicted while the application holds it
 * (pinned); a new event is then dropped instead, and counted in a gap entry after it. No I/O. */
#ifndef TRONE_RT_EVENTS_QUEUE_H
#define TRONE_RT_EVENTS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "trone/error.h"
#include "trone/trone.h"

struct rt_events_entry {
    enum trone_event_kind kind;
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint64_t seq;
    uint64_t position; /* total-order channels; 0 otherwise */
    uint64_t time_us;
    uint64_t received_us;
    uint64_t lost;    /* GAP */
    bool not_kept;    /* GAP: a replay's retention gap */
    bool fell_behind; /* GAP: events this queue dropped because the application fell behind */
    uint64_t arrival; /* the client's delivery counter: orders entries across queues */
    uint64_t offset;  /* payload position in the ring (total bytes reserved before it) */
    uint32_t payload_size;
    uint32_t stored_size; /* ring bytes the entry occupies, skipped tail included */
};

struct rt_events_queue {
    struct rt_events_entry *slots;
    uint32_t slots_max;
    uint64_t head; /* entries ever pushed */
    uint64_t tail; /* entries ever popped */
    uint8_t *ring;
    uint64_t ring_size;
    uint64_t ring_head; /* bytes ever reserved */
    uint64_t ring_tail; /* bytes ever released */
    uint64_t dropped;   /* new events dropped (while pinned) since the last gap entry */
    bool pinned;        /* the oldest entry is in the application's hands: never evicted */
};

/* Allocates slots_max entries (>= 4) and ring_size bytes (>= TRONE_EVENT_PAYLOAD_MAX).
 * Returns 0, TRONE_EINVAL or TRONE_ENOMEM (q is then closed). */
TRONE_MUST_CHECK int rt_events_queue_init(struct rt_events_queue *q, uint32_t slots_max,
                                          uint64_t ring_size);
/* Frees everything; safe on a zeroed or closed q. */
void rt_events_queue_close(struct rt_events_queue *q);

/* Appends an entry (its offset and stored_size are set here) and copies payload_size bytes of
 * payload. Without room, the oldest entries are evicted until there is (their events are
 * counted by a fell_behind gap entry that takes their place at the head; a gap entry evicted
 * adds its count to it). Returns 0, or TRONE_EFULL when the queue is pinned and full: the
 * event is then counted as dropped, and reported by a gap entry before the next one. */
int rt_events_queue_push(struct rt_events_queue *q, const struct rt_events_entry *entry,
                         const uint8_t *payload);
/* The oldest entry (and *payload its bytes), or NULL if the queue is empty; an empty queue
 * with dropped events first turns them into a gap entry. arrival is given to that entry. */
const struct rt_events_entry *rt_events_queue_peek(struct rt_events_queue *q, uint64_t arrival,
                                                   const uint8_t **payload);
/* Releases the oldest entry (the queue must not be empty) and unpins the queue. */
void rt_events_queue_pop(struct rt_events_queue *q);
/* Pins the oldest entry until the next rt_events_queue_pop: the application holds its
 * payload, so it is not evicted. */
void rt_events_queue_pin(struct rt_events_queue *q);
/* Entries queued. */
uint64_t rt_events_queue_count(const struct rt_events_queue *q);

#endif
