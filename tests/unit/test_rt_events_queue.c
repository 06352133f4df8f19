/* test_rt_events_queue.c: the bounded delivery queue between the subscriber core and the
 * application (src/rt/rt_events_queue.c). When the application falls behind, the oldest
 * entries make room and one gap entry counts them; an entry the application holds (pinned)
 * is never touched, and new events are dropped and counted instead. Properties checked on
 * every run: what comes out is in order, every event pushed is either taken or counted in a
 * gap, and the newest event is never the one lost while nothing is pinned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt/rt_events_queue.h"

/* Pushes a data entry whose seq and payload (size bytes of the seq's low byte) identify it. */
static int push_event(struct rt_events_queue *q, uint64_t seq, uint32_t size)
{
    static uint8_t payload[TRONE_EVENT_PAYLOAD_MAX];
    memset(payload, (int)(seq & 0xffu), size);
    struct rt_events_entry e;
    memset(&e, 0, sizeof(e));
    e.kind = TRONE_EVENT_DATA;
    e.seq = seq;
    e.arrival = seq;
    e.payload_size = size;
    return rt_events_queue_push(q, &e, payload);
}

/* What the application took: events in order, lost counts of fell_behind gaps. */
struct taken {
    uint64_t events;
    uint64_t last_seq;
    uint64_t lost;
    uint64_t gaps;
};

/* Takes one entry, checking its payload and that seqs only grow. */
static void take_one(struct rt_events_queue *q, struct taken *t)
{
    const uint8_t *payload = NULL;
    const struct rt_events_entry *e = rt_events_queue_peek(q, 0, &payload);
    assert_non_null(e);
    if (e->kind == TRONE_EVENT_GAP) {
        assert_true(e->fell_behind);
        t->lost += e->lost;
        t->gaps++;
    } else {
        assert_true(e->seq > t->last_seq);
        for (uint32_t i = 0; i < e->payload_size; i++) {
            assert_int_equal(payload[i], e->seq & 0xffu);
        }
        t->last_seq = e->seq;
        t->events++;
    }
    rt_events_queue_pop(q);
}

/* Takes everything, as the application does: peeking an empty queue turns events dropped
 * while it was pinned into a gap entry. */
static void take_all(struct rt_events_queue *q, struct taken *t)
{
    const uint8_t *payload = NULL;
    for (int n = 0; n < 1000000 && rt_events_queue_peek(q, 0, &payload) != NULL; n++) {
        take_one(q, t);
    }
    assert_int_equal(rt_events_queue_count(q), 0);
    assert_int_equal(q->dropped, 0);
}

/* Slot bound: 8 slots, 100 events pushed with nobody taking: one gap of the oldest, then the
 * newest events, the last one included. */
static void test_oldest_go_first_slots(void **state)
{
    (void)state;
    struct rt_events_queue q;
    assert_int_equal(rt_events_queue_init(&q, 8, TRONE_EVENT_PAYLOAD_MAX), 0);
    for (uint64_t s = 1; s <= 100; s++) {
        assert_int_equal(push_event(&q, s, 10), 0);
    }
    const uint8_t *payload = NULL;
    const struct rt_events_entry *first = rt_events_queue_peek(&q, 0, &payload);
    assert_int_equal(first->kind, TRONE_EVENT_GAP); /* the report comes before the rest */
    struct taken t = {0};
    take_all(&q, &t);
    assert_int_equal(t.gaps, 1);
    assert_int_equal(t.events, 7);
    assert_int_equal(t.last_seq, 100);
    assert_int_equal(t.events + t.lost, 100);
    assert_int_equal(t.lost, 93); /* the 93 oldest, in one gap */
    rt_events_queue_close(&q);
}

/* Byte bound: a 64 KiB ring and 10000-byte events: what fits of the newest, in order. */
static void test_oldest_go_first_bytes(void **state)
{
    (void)state;
    struct rt_events_queue q;
    assert_int_equal(rt_events_queue_init(&q, 1024, TRONE_EVENT_PAYLOAD_MAX), 0);
    for (uint64_t s = 1; s <= 50; s++) {
        assert_int_equal(push_event(&q, s, 10000), 0);
    }
    struct taken t = {0};
    take_all(&q, &t);
    assert_int_equal(t.last_seq, 50);
    assert_true(t.events >= 5 && t.events <= 6);
    assert_int_equal(t.events + t.lost, 50);
    rt_events_queue_close(&q);
}

/* A pinned entry (the application holds its payload) is never evicted: new events are dropped
 * and counted, and reported by a gap before the next event once the queue has room. */
static void test_pinned_is_kept(void **state)
{
    (void)state;
    struct rt_events_queue q;
    assert_int_equal(rt_events_queue_init(&q, 4, TRONE_EVENT_PAYLOAD_MAX), 0);
    for (uint64_t s = 1; s <= 4; s++) {
        assert_int_equal(push_event(&q, s, 100), 0);
    }
    const uint8_t *held = NULL;
    const struct rt_events_entry *e = rt_events_queue_peek(&q, 0, &held);
    assert_int_equal(e->seq, 1);
    rt_events_queue_pin(&q);
    for (uint64_t s = 5; s <= 9; s++) {
        assert_int_equal(push_event(&q, s, 100), TRONE_EFULL);
    }
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(held[i], 1); /* untouched */
    }
    rt_events_queue_pop(&q); /* released: unpinned */
    assert_false(q.pinned);
    assert_int_equal(push_event(&q, 10, 100), 0);
    struct taken t = {.last_seq = 1, .events = 1};
    take_all(&q, &t);
    assert_int_equal(t.last_seq, 10);
    assert_int_equal(t.events + t.lost, 10);
    rt_events_queue_close(&q);
}

/* A gap entry of the core that is evicted adds its count to the eviction's gap. */
static void test_evicted_gap_is_counted(void **state)
{
    (void)state;
    struct rt_events_queue q;
    assert_int_equal(rt_events_queue_init(&q, 4, TRONE_EVENT_PAYLOAD_MAX), 0);
    struct rt_events_entry gap;
    memset(&gap, 0, sizeof(gap));
    gap.kind = TRONE_EVENT_GAP;
    gap.lost = 5;
    assert_int_equal(rt_events_queue_push(&q, &gap, NULL), 0);
    for (uint64_t s = 6; s <= 20; s++) {
        assert_int_equal(push_event(&q, s, 100), 0);
    }
    struct taken t = {0};
    take_all(&q, &t);
    assert_int_equal(t.last_seq, 20);
    assert_int_equal(t.events + t.lost, 20);
    rt_events_queue_close(&q);
}

/* Events the queue accounts for: data entries, gap counts, and dropped ones not yet reported. */
static uint64_t queued_count(const struct rt_events_queue *q)
{
    uint64_t n = q->dropped;
    for (uint64_t i = q->tail; i < q->head; i++) {
        const struct rt_events_entry *e = &q->slots[i % q->slots_max];
        n += e->kind == TRONE_EVENT_GAP ? e->lost : 1u;
    }
    return n;
}

/* Random pushes (random sizes), takes and holds: order kept, nothing unaccounted, and while
 * nothing is pinned the newest event pushed is always in the queue. */
static void test_random_interleaving(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 200; seed++) {
        srand(seed);
        struct rt_events_queue q;
        uint32_t slots = 4u + (uint32_t)rand() % 60u;
        assert_int_equal(rt_events_queue_init(&q, slots, TRONE_EVENT_PAYLOAD_MAX), 0);
        struct taken t = {0};
        uint64_t pushed = 0;
        bool holding = false;
        for (int step = 0; step < 3000; step++) {
            uint64_t held_count = holding ? 1u : 0u;
            if (t.events + t.lost + queued_count(&q) - held_count != pushed) {
                fail_msg("seed %u step %d: %llu taken + %llu lost + %llu queued - %llu held "
                         "!= %llu pushed", seed, step, (unsigned long long)t.events,
                         (unsigned long long)t.lost, (unsigned long long)queued_count(&q),
                         (unsigned long long)held_count, (unsigned long long)pushed);
            }
            int r = rand() % 10;
            if (r < 6) {
                uint32_t size = (uint32_t)rand() % 3u == 0 ? (uint32_t)rand() % 20000u
                                                            : (uint32_t)rand() % 200u;
                (void)push_event(&q, ++pushed, size);
                if (!holding) {
                    /* The newest is the last entry. */
                    const struct rt_events_entry *last =
                        &q.slots[(q.head - 1u) % q.slots_max];
                    assert_int_equal(last->seq, pushed);
                }
            } else if (r < 9 && rt_events_queue_count(&q) > 0) {
                if (holding) {
                    rt_events_queue_pop(&q); /* the held one was taken already */
                    holding = false;
                } else {
                    take_one(&q, &t);
                }
            } else if (!holding && rt_events_queue_count(&q) > 0) {
                const uint8_t *payload = NULL;
                const struct rt_events_entry *e = rt_events_queue_peek(&q, 0, &payload);
                if (e->kind == TRONE_EVENT_DATA) { /* taken now, released later */
                    assert_true(e->seq > t.last_seq);
                    t.last_seq = e->seq;
                    t.events++;
                    rt_events_queue_pin(&q);
                    holding = true;
                } else {
                    take_one(&q, &t);
                }
            }
        }
        if (holding) {
            rt_events_queue_pop(&q);
        }
        take_all(&q, &t);
        assert_int_equal(t.events + t.lost, pushed);
        rt_events_queue_close(&q);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oldest_go_first_slots),
        cmocka_unit_test(test_oldest_go_first_bytes),
        cmocka_unit_test(test_pinned_is_kept),
        cmocka_unit_test(test_evicted_gap_is_counted),
        cmocka_unit_test(test_random_interleaving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
