/* test_rt_verify.c: the subscriber's signature-check pool (rt_verify.h) with real threads and a
 * real libuv loop: messages come back in arrival order with the right check per event (good,
 * forged, altered), identical copies from several replicas cost one verification, a message
 * without checks keeps its place, and past the bounds the loop thread verifies itself
 * (caller runs) without losing order. No timing: the tests wait for counts, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "client/cln_sub.h"
#include "rt/rt_verify.h"

#define TAG "alpha"
#define EPOCH 77u
#define FED_MAX 700u

/* ---- Fixture ---- */

struct fed {
    uint32_t replica;
    uint8_t type;
    uint64_t first_seq; /* DELIVER: the seq of its first event */
    uint32_t check_count;
    uint8_t checks[4];
};

struct fx {
    uv_loop_t loop;
    struct rt_verify *v;
    uint8_t pk[TRONE_KEY_LEN], sk[TRONE_SECRET_KEY_LEN];
    uint8_t evil_sk[TRONE_SECRET_KEY_LEN];
    struct fed fed[FED_MAX];
    uint32_t fed_count;
};

static void fx_feed(void *ctx, uint32_t replica, const uint8_t *msg, size_t size,
                    const uint8_t *checks, uint32_t check_count)
{
    struct fx *x = ctx;
    assert_true(x->fed_count < FED_MAX);
    struct fed *f = &x->fed[x->fed_count++];
    memset(f, 0, sizeof(*f));
    f->replica = replica;
    f->type = msg[0];
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, msg, size, &m), 0);
    if (m.type == CHAN_MSG_DELIVER) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        f->first_seq = e.seq;
    }
    f->check_count = check_count;
    assert_true(check_count <= 4);
    if (check_count > 0) {
        memcpy(f->checks, checks, check_count);
    }
}

static void fx_make(struct fx *x, uint32_t threads)
{
    memset(x, 0, sizeof(*x));
    uint8_t seed[32];
    memset(seed, 1, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(x->pk, x->sk, seed), 0);
    uint8_t evil_pk[TRONE_KEY_LEN];
    memset(seed, 2, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(evil_pk, x->evil_sk, seed), 0);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    assert_int_equal(rt_verify_create(&x->loop, threads, fx_feed, x, &x->v), 0);
}

/* Closes the pool and the loop: a leaked handle fails uv_loop_close. */
static void fx_close(struct fx *x)
{
    rt_verify_close(x->v);
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

/* ---- Helpers ---- */

/* Runs the loop until count messages were fed (bounded in turns, not in time). */
static void fx_wait(struct fx *x, uint32_t count)
{
    for (uint32_t turn = 0; turn < 1000000u && x->fed_count < count; turn++) {
        (void)uv_run(&x->loop, UV_RUN_ONCE);
    }
    assert_int_equal(x->fed_count, count);
}

/* How event i of a message is made. */
enum how { GOOD = 0, FORGED = 1, ALTERED = 2 };

/* A DELIVER of count events from first, event i made as hows[i]. */
static void deliver_build(struct fx *x, struct buf *b, uint64_t first, uint32_t count,
                          const enum how *hows)
{
    struct chan_msg m = {.type = CHAN_MSG_DELIVER, .event_count = count};
    strcpy(m.tag, TAG);
    memcpy(m.publisher, x->pk, TRONE_KEY_LEN);
    buf_reset(b);
    chan_msg_put_header(b, &m);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t payload[24] = "payload", sig[CHAN_AUTH_PKS_SIZE];
        payload[8] = (uint8_t)(first + i);
        struct chan_event e = {.epoch = EPOCH,
                               .seq = first + i,
                               .time_us = first + i,
                               .payload = payload,
                               .payload_size = sizeof(payload)};
        chan_auth_sign(sig, hows[i] == FORGED ? x->evil_sk : x->sk, TAG, &e);
        payload[9] = hows[i] == ALTERED ? 1 : 0;
        e.auth = sig;
        e.auth_size = sizeof(sig);
        chan_msg_put_event(b, &e);
    }
    assert_int_equal(b->error, 0);
}

static void push(struct fx *x, uint32_t replica, const struct buf *b, bool all_wanted)
{
    static const uint8_t wanted[4] = {1, 1, 1, 1};
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, b->data, b->used, &m), 0);
    uint32_t count = all_wanted ? m.event_count : 0;
    assert_true(count <= 4);
    assert_int_equal(rt_verify_push(x->v, replica, b->data, b->used, count ? wanted : NULL, count),
                     0);
}

static void expect_checks(const struct fed *f, uint32_t replica, uint8_t a, uint8_t b, uint8_t c)
{
    assert_int_equal(f->replica, replica);
    assert_int_equal(f->check_count, 3);
    assert_int_equal(f->checks[0], a);
    assert_int_equal(f->checks[1], b);
    assert_int_equal(f->checks[2], c);
}

/* ---- Scenarios ---- */

/* Four replicas' messages come back in arrival order with one truthful check per event;
 * identical copies share one verification, different bytes get their own; a GAP message with
 * nothing to check waits its turn behind them. */
static void test_order_checks_and_sharing(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, 2);
    struct buf b = {0};
    static const enum how m0[3] = {GOOD, FORGED, GOOD};
    static const enum how m3[3] = {ALTERED, FORGED, GOOD};
    deliver_build(&x, &b, 1, 3, m0);
    push(&x, 0, &b, true);
    push(&x, 1, &b, true); /* the same bytes from another replica */
    struct chan_msg gap = {.type = CHAN_MSG_GAP, .dropped = 3};
    strcpy(gap.tag, TAG);
    struct buf g = {0};
    chan_msg_put_header(&g, &gap);
    push(&x, 2, &g, false);
    deliver_build(&x, &b, 1, 3, m3);
    push(&x, 3, &b, true);
    fx_wait(&x, 4);
    const uint8_t V = CLN_SUB_CHECK_VALID, I = CLN_SUB_CHECK_INVALID;
    expect_checks(&x.fed[0], 0, V, I, V);
    expect_checks(&x.fed[1], 1, V, I, V);
    assert_int_equal(x.fed[2].replica, 2);
    assert_int_equal(x.fed[2].type, CHAN_MSG_GAP);
    assert_int_equal(x.fed[2].check_count, 0);
    expect_checks(&x.fed[3], 3, I, I, V);
    struct rt_verify_counts counts;
    rt_verify_counts(x.v, &counts);
    assert_int_equal(counts.verified, 4); /* 3 distinct copies, then the altered one */
    assert_int_equal(counts.shared, 5);
    assert_false(rt_verify_holding(x.v));
    buf_close(&b);
    buf_close(&g);
    fx_close(&x);
}

/* More messages than the pool holds, pushed without running the loop: the loop thread
 * verifies the oldest itself to make room, and every message still comes back once, in
 * order, correctly checked. Also with one thread, and with messages that need no check mixed
 * in. */
static void test_bounds_caller_runs(void **state)
{
    (void)state;
    for (uint32_t threads = 1; threads <= 2; threads++) {
        struct fx x;
        fx_make(&x, threads);
        struct buf b = {0};
        const uint32_t total = RT_VERIFY_MSGS_MAX + 200u;
        for (uint32_t i = 0; i < total; i++) {
            enum how how[1] = {i % 7 == 3 ? FORGED : GOOD};
            deliver_build(&x, &b, i + 1u, 1, how);
            push(&x, i % 4u, &b, i % 5 != 0);
        }
        assert_true(x.fed_count >= total - RT_VERIFY_MSGS_MAX); /* fed while pushing */
        fx_wait(&x, total);
        for (uint32_t i = 0; i < total; i++) {
            assert_int_equal(x.fed[i].first_seq, i + 1u);
            assert_int_equal(x.fed[i].replica, i % 4u);
            uint8_t want = i % 5 == 0   ? CLN_SUB_CHECK_NONE
                           : i % 7 == 3 ? CLN_SUB_CHECK_INVALID
                                        : CLN_SUB_CHECK_VALID;
            assert_int_equal(x.fed[i].check_count, i % 5 != 0 ? 1u : 0u);
            assert_int_equal(x.fed[i].check_count > 0 ? x.fed[i].checks[0] : 0, want);
        }
        struct rt_verify_counts counts; /* who verified depends on the scheduler, not how many */
        rt_verify_counts(x.v, &counts);
        assert_int_equal(counts.verified, total - (total + 4u) / 5u);
        buf_close(&b);
        fx_close(&x);
    }
}

/* Closing with messages still held drops them without feeding them and frees everything. */
static void test_close_while_holding(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, 1);
    struct buf b = {0};
    static const enum how hows[3] = {GOOD, GOOD, GOOD};
    for (uint32_t i = 0; i < 20; i++) {
        deliver_build(&x, &b, 3u * i + 1u, 3, hows);
        push(&x, 0, &b, true);
    }
    buf_close(&b);
    fx_close(&x);
    assert_true(x.fed_count <= 20);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_checks_and_sharing),
        cmocka_unit_test(test_bounds_caller_runs),
        cmocka_unit_test(test_close_while_holding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
