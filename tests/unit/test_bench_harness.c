/* test_bench_harness.c: the harness of `trone bench events` (src/cli/cmd_bench_harness.c),
 * included as a .c so the test needs no CLI library. A benchmark that lost, duplicated or
 * reordered events must fail instead of printing a throughput, so these tests feed it exactly
 * those deliveries; they also check the publishers' pacing (rate, window, total) and the
 * figures of a measured phase run by an in-process loopback "system". No clock is asserted:
 * times are passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/cli/cmd_bench_harness.c"
#include "../../src/cli/cmd_bench_proc.c"

/* ---- Fixture ------------------------------------------------------------------------------ */

static struct evb_run *run_new(uint32_t pubs, uint32_t subs, uint64_t events_per_pub,
                               double rate_per_pub, uint64_t window)
{
    struct evb_run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->pub_count = pubs;
    r->sub_count = subs;
    r->size = 100;
    r->events_per_pub = events_per_pub;
    r->rate_per_pub = rate_per_pub;
    r->window = window;
    assert_int_equal(evb_run_init(r), 0);
    return r;
}

static void run_free(struct evb_run *r)
{
    evb_run_close(r);
    free(r);
}

/* Delivers event seq of publisher pub, sent at sent_ns, to subscriber sub at now_ns. */
static int deliver(struct evb_run *r, uint32_t sub, uint32_t pub, uint64_t seq, uint64_t sent_ns,
                   uint64_t now_ns)
{
    uint8_t payload[100] = {0};
    evb_payload_fill(payload, pub, seq, sent_ns);
    return evb_sub_deliver(r, sub, payload, sizeof(payload), now_ns);
}

/* ---- Exactly once, in order --------------------------------------------------------------- */

/* Goal: consecutive events after the warm-up are accepted and their delays recorded. */
static void test_in_order_accepted(void **state)
{
    (void)state;
    struct evb_run *r = run_new(2, 1, 3, 0, 100);
    assert_false(evb_sub_warm(r, 0));
    assert_int_equal(deliver(r, 0, 0, 0, 10, 20), 0);
    assert_int_equal(deliver(r, 0, 1, 0, 10, 20), 0);
    assert_true(evb_sub_warm(r, 0));
    for (uint64_t seq = 1; seq <= 3; seq++) {
        assert_int_equal(deliver(r, 0, 0, seq, 1000 * seq, 1000 * seq + 7), 0);
        assert_int_equal(deliver(r, 0, 1, seq, 1000 * seq, 1000 * seq + 9), 0);
    }
    assert_false(evb_failed(r));
    assert_int_equal(r->latency_count[0], 6);
    assert_int_equal(r->latency_ns[0][0], 7);
    assert_int_equal(r->latency_ns[0][1], 9);
    assert_int_equal(atomic_load(&r->received[0][1]), 3);
    run_free(r);
}

/* Goal: a missing event (seq 3 after 1) fails the run and says so. */
static void test_loss_fails(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 1, 10, 0, 100);
    assert_int_equal(deliver(r, 0, 0, 0, 1, 2), 0);
    assert_int_equal(deliver(r, 0, 0, 1, 1, 2), 0);
    assert_int_equal(deliver(r, 0, 0, 3, 1, 2), -1);
    assert_true(evb_failed(r));
    assert_non_null(strstr(r->errmsg, "event 3 delivered after event 1"));
    run_free(r);
}

/* Goal: a duplicate and a reordered event each fail the run; only the first reason is kept. */
static void test_duplicate_and_reorder_fail(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 2, 10, 0, 100);
    for (uint32_t sub = 0; sub < 2; sub++) {
        assert_int_equal(deliver(r, sub, 0, 0, 1, 2), 0);
        assert_int_equal(deliver(r, sub, 0, 1, 1, 2), 0);
        assert_int_equal(deliver(r, sub, 0, 2, 1, 2), 0);
    }
    assert_int_equal(deliver(r, 0, 0, 2, 1, 2), -1); /* duplicate */
    assert_non_null(strstr(r->errmsg, "subscriber 0"));
    assert_int_equal(deliver(r, 1, 0, 1, 1, 2), -1); /* reordered */
    assert_non_null(strstr(r->errmsg, "subscriber 0"));
    run_free(r);
}

/* Goal: an event before its publisher's warm-up, a second warm-up, a wrong size and an unknown
 * publisher are all refused. */
static void test_malformed_deliveries_fail(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 1, 10, 0, 100);
    assert_int_equal(deliver(r, 0, 0, 1, 1, 2), -1);
    run_free(r);

    r = run_new(1, 1, 10, 0, 100);
    assert_int_equal(deliver(r, 0, 0, 0, 1, 2), 0);
    assert_int_equal(deliver(r, 0, 0, 0, 1, 2), -1);
    run_free(r);

    r = run_new(1, 1, 10, 0, 100);
    uint8_t small[EVB_HEADER_SIZE] = {0};
    assert_int_equal(evb_sub_deliver(r, 0, small, sizeof(small), 5), -1);
    assert_non_null(strstr(r->errmsg, "expected 100"));
    run_free(r);

    r = run_new(1, 1, 10, 0, 100);
    assert_int_equal(deliver(r, 0, 5, 0, 1, 2), -1);
    assert_non_null(strstr(r->errmsg, "unknown publisher"));
    run_free(r);
}

/* ---- Publisher pacing --------------------------------------------------------------------- */

/* Goal: a publisher never runs more than the window ahead of its slowest subscriber, and stops
 * (final count set) once it sent its total; subscribers then know they are complete. */
static void test_window_and_total(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 2, 10, 0, 4);
    bool done = true;
    assert_int_equal(evb_pub_allowed(r, 0, 0, 1, &done), 4);
    assert_false(done);
    evb_pub_sent(r, 0, 4);
    assert_int_equal(evb_pub_allowed(r, 0, 0, 1, &done), 0);
    for (uint32_t sub = 0; sub < 2; sub++) {
        assert_int_equal(deliver(r, sub, 0, 0, 1, 2), 0);
        assert_int_equal(deliver(r, sub, 0, 1, 1, 2), 0);
    }
    assert_int_equal(deliver(r, 0, 0, 2, 1, 2), 0);
    assert_int_equal(evb_pub_allowed(r, 0, 0, 1, &done), 1); /* slowest got 1: 1 + 4 - 4 */
    evb_pub_sent(r, 0, 6);
    assert_int_equal(evb_pub_allowed(r, 0, 0, 1, &done), 0);
    assert_true(done);
    assert_int_equal(atomic_load(&r->final[0]), 10);
    assert_false(evb_sub_complete(r, 0));
    for (uint64_t seq = 3; seq <= 10; seq++) {
        assert_int_equal(deliver(r, 0, 0, seq, 1, 2), 0);
    }
    assert_true(evb_sub_complete(r, 0));
    assert_false(evb_sub_complete(r, 1));
    run_free(r);
}

/* Goal: with an offered rate, a publisher may send what is due since its start (plus one). */
static void test_rate(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 1, 1000000, 1000.0, 1000000);
    bool done = false;
    uint64_t start = 5000000000u;
    assert_int_equal(evb_pub_allowed(r, 0, start, start, &done), 1);
    assert_int_equal(evb_pub_allowed(r, 0, start, start + 10000000u, &done), 11);
    evb_pub_sent(r, 0, 11);
    assert_int_equal(evb_pub_allowed(r, 0, start, start + 10500000u, &done), 0);
    assert_int_equal(evb_pub_allowed(r, 0, start, start + 1000000000u, &done), 1001 - 11);
    run_free(r);
}

/* Goal: in --seconds mode a publisher stops once the time is over, with its count as final. */
static void test_seconds(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 1, 0, 0, 100);
    r->seconds_ns = 1000;
    bool done = false;
    assert_int_equal(evb_pub_allowed(r, 0, 0, 999, &done), 100);
    evb_pub_sent(r, 0, 7);
    assert_int_equal(evb_pub_allowed(r, 0, 0, 1000, &done), 0);
    assert_true(done);
    assert_int_equal(atomic_load(&r->final[0]), 7);
    run_free(r);
}

/* ---- A measured phase --------------------------------------------------------------------- */

/* An in-process loopback "system": the publisher delivers its own events to subscriber 0 with
 * a delay of seq microseconds, so the figures are known in advance. */
static void *loopback_main(void *arg)
{
    struct evb_run *r = arg;
    pthread_barrier_wait(&r->ready);
    assert_int_equal(deliver(r, 0, 0, 0, 1, 1), 0);
    pthread_barrier_wait(&r->start);
    for (uint64_t round = 0; round < 100000; round++) {
        bool done = false;
        uint64_t allowed = evb_pub_allowed(r, 0, 0, 1, &done);
        if (done) {
            break;
        }
        for (uint64_t k = 0; k < allowed; k++) {
            uint64_t seq = atomic_load(&r->published[0]) + 1;
            uint64_t now = evb_now_ns();
            evb_pub_sent(r, 0, 1);
            assert_int_equal(deliver(r, 0, 0, seq, now, now + seq * 1000u), 0);
        }
    }
    return NULL;
}

static void *idle_sub_main(void *arg)
{
    struct evb_run *r = arg;
    pthread_barrier_wait(&r->ready);
    pthread_barrier_wait(&r->start);
    return NULL;
}

/* Goal: evb_measure counts every event, and its percentiles are nearest-rank over every
 * delay (1..1000 µs here: p50 = 0.5 ms, p99 = 0.99 ms, p999 = max = 1 ms). */
static void test_measure_figures(void **state)
{
    (void)state;
    struct evb_run *r = run_new(1, 1, 1000, 0, 64);
    pthread_t threads[2];
    assert_int_equal(pthread_create(&threads[0], NULL, loopback_main, r), 0);
    assert_int_equal(pthread_create(&threads[1], NULL, idle_sub_main, r), 0);
    pid_t self = getpid();
    struct evb_figures fig;
    assert_int_equal(evb_measure(r, threads, 2, &self, 1, &fig), 0);
    assert_int_equal(fig.events, 1000);
    assert_true(fig.seconds > 0);
    assert_true(fig.p50_ms > 0.4999 && fig.p50_ms < 0.5001);
    assert_true(fig.p99_ms > 0.9899 && fig.p99_ms < 0.9901);
    assert_true(fig.p999_ms > 0.9989 && fig.p999_ms < 1.0001);
    assert_true(fig.max_ms > 0.9999 && fig.max_ms < 1.0001);
    assert_int_equal(fig.server_count, 1);
    assert_true(fig.server_peak_kib[0] > 0);
    run_free(r);
}

/* Goal: /proc readers and the free-port helper work on this process and this machine. */
static void test_helpers(void **state)
{
    (void)state;
    assert_true(bench_process_peak_kib(getpid()) > 0);
    assert_int_equal(bench_process_peak_kib(-1), 0);
    assert_int_equal(bench_process_cpu_us(-1), 0);
    assert_true(evb_free_port() > 0);
    char path[256];
    assert_true(evb_find_program("sh", path, sizeof(path)));
    assert_false(evb_find_program("no-such-program-trone", path, sizeof(path)));
    assert_false(evb_format(path, 4, "%s", "too long"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_accepted),
        cmocka_unit_test(test_loss_fails),
        cmocka_unit_test(test_duplicate_and_reorder_fail),
        cmocka_unit_test(test_malformed_deliveries_fail),
        cmocka_unit_test(test_window_and_total),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_measure_figures),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
