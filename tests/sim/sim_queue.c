/* sim_queue.c: the event queue, a binary heap ordered by (time, node index, kind, insertion),
 * which is the simulator's tie-breaking rule (STYLE.md rule 18): lower node first, then tick
 * before network. Bounded by SIM_EVENTS_MAX; a full queue drops the message like a network. */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

void sim_queue_init(struct sim_queue *q)
{
    memset(q, 0, sizeof(*q));
}

void sim_queue_close(struct sim_queue *q)
{
    for (size_t i = 0; i < q->count; i++) {
        free(q->heap[i].data);
    }
    free(q->heap);
    memset(q, 0, sizeof(*q));
}

bool sim_event_before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->time_ms != b->time_ms) {
        return a->time_ms < b->time_ms;
    }
    if (a->node != b->node) {
        return a->node < b->node;
    }
    if (a->kind != b->kind) {
        return a->kind < b->kind;
    }
    return a->order < b->order;
}

static void heap_swap(struct sim_queue *q, size_t i, size_t j)
{
    struct sim_event t = q->heap[i];
    q->heap[i] = q->heap[j];
    q->heap[j] = t;
}

static bool queue_grow(struct sim_queue *q)
{
    size_t capacity = q->capacity == 0 ? 1024 : q->capacity * 2;
    if (capacity > SIM_EVENTS_MAX) {
        return false;
    }
    struct sim_event *heap = realloc(q->heap, capacity * sizeof(*heap));
    if (heap == NULL) {
        return false;
    }
    q->heap = heap;
    q->capacity = capacity;
    return true;
}

bool sim_queue_push(struct sim_queue *q, struct sim_event *ev)
{
    if (q->count == q->capacity && !queue_grow(q)) {
        free(ev->data);
        ev->data = NULL;
        return false;
    }
    ev->order = q->order_next++;
    size_t i = q->count++;
    q->heap[i] = *ev;
    while (i > 0) { /* bounded by the heap depth */
        size_t parent = (i - 1) / 2;
        if (!sim_event_before(&q->heap[i], &q->heap[parent])) {
            break;
        }
        heap_swap(q, i, parent);
        i = parent;
    }
    return true;
}

const struct sim_event *sim_queue_peek(const struct sim_queue *q)
{
    return q->count == 0 ? NULL : &q->heap[0];
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *ev)
{
    if (q->count == 0) {
        return false;
    }
    *ev = q->heap[0];
    q->count--;
    if (q->count == 0) {
        return true;
    }
    q->heap[0] = q->heap[q->count];
    size_t i = 0;
    for (;;) { /* bounded by the heap depth */
        size_t left = 2 * i + 1;
        size_t right = left + 1;
        size_t best = i;
        if (left < q->count && sim_event_before(&q->heap[left], &q->heap[best])) {
            best = left;
        }
        if (right < q->count && sim_event_before(&q->heap[right], &q->heap[best])) {
            best = right;
        }
        if (best == i) {
            break;
        }
        heap_swap(q, i, best);
        i = best;
    }
    TRONE_ASSERT(q->count < q->capacity);
    return true;
}
