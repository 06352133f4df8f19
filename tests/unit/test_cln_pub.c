/* test_cln_pub.c: the publisher core (cln_pub.h): ack quorums (f+1 CFT, 2f+1 BFT), resend on
 * reconnect and on the retransmission timer, backpressure, refusals, urgency and batching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "client/cln_pub.h"

#include <stdlib.h>

#define EPOCH 1000000u

/* ---- Fixture ---- */

static void config_make(struct cln_pub_config *cfg, uint32_t n, uint32_t f)
{
    uint8_t seed[32];
    memset(cfg, 0, sizeof(*cfg));
    memset(seed, 3, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(cfg->public_key, cfg->secret_key, seed), 0);
    cfg->n = n;
    cfg->f = f;
    cfg->epoch = EPOCH;
    cfg->retransmit_us = 500;
}

static int open_channel(struct cln_pub *p, const char *tag, const char *cls_text)
{
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, cls_text, NULL, 0), 0);
    int idx = cln_pub_channel_open(p, tag, &cls);
    assert_true(idx >= 0);
    return idx;
}

/* ---- Helpers ---- */

static void publish_n(struct cln_pub *p, uint32_t ch, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        uint8_t payload[8] = {(uint8_t)i};
        assert_true(cln_pub_publish(p, ch, payload, sizeof(payload), 5000 + i, 0) > 0);
    }
}

static void ack(struct cln_pub *p, uint32_t replica, const char *tag, uint64_t seq,
                int32_t status, int expect)
{
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_ACK, .epoch = EPOCH, .seq = seq, .status = status};
    strcpy(m.tag, tag);
    chan_msg_put_header(&b, &m);
    assert_int_equal(b.error, 0);
    assert_int_equal(cln_pub_receive(p, replica, b.data, b.used, 0), expect);
    buf_close(&b);
}

/* Takes the next PUBLISH for replica, checks its tag, and returns its seq range. */
static uint32_t next_publish(struct cln_pub *p, uint32_t replica, const char *tag,
                             uint64_t *first, uint64_t *last)
{
    const uint8_t *data;
    size_t size;
    int rc = cln_pub_next_message(p, replica, 0, &data, &size);
    assert_true(rc >= 0);
    if (rc == 0) {
        return 0;
    }
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, data, size, &m), 0);
    assert_int_equal(m.type, CHAN_MSG_PUBLISH);
    assert_string_equal(m.tag, tag);
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        assert_int_equal(e.epoch, EPOCH);
        *last = e.seq;
        if (i == 0) {
            *first = e.seq;
        }
    }
    assert_int_equal(buf_reader_finish(&r), 0);
    return m.event_count;
}

static void counts(struct cln_pub *p, uint32_t ch, uint64_t published, uint64_t acked,
                   int error)
{
    struct cln_pub_counts c;
    cln_pub_channel_counts(p, ch, &c);
    assert_int_equal(c.published, published);
    assert_int_equal(c.acknowledged, acked);
    assert_int_equal(c.pending, published - acked);
    assert_int_equal(c.error, error);
}

/* ---- Scenarios ---- */

/* CFT: an event is acknowledged once f+1 replicas acked it; acks are cumulative. */
static void test_quorum_cft(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 3, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "cft.ch", "cft");
    publish_n(&p, ch, 3);
    ack(&p, 0, "cft.ch", 3, 0, 0);
    counts(&p, ch, 3, 0, 0);
    ack(&p, 1, "cft.ch", 2, 0, 0);
    counts(&p, ch, 3, 2, 0);
    ack(&p, 1, "cft.ch", 1, 0, 0); /* an older ack changes nothing */
    counts(&p, ch, 3, 2, 0);
    ack(&p, 2, "cft.ch", 3, 0, 0);
    counts(&p, ch, 3, 3, 0);
    ack(&p, 2, "cft.ch", 4, 0, TRONE_EBADMSG); /* never published */
    cln_pub_close(&p);
}

/* BFT: 2f+1 acks are needed; f+1 are not enough. */
static void test_quorum_bft(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 4, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "bft.ch", "bft,pks");
    publish_n(&p, ch, 2);
    ack(&p, 3, "bft.ch", 2, 0, 0);
    ack(&p, 0, "bft.ch", 2, 0, 0);
    counts(&p, ch, 2, 0, 0);
    ack(&p, 1, "bft.ch", 1, 0, 0);
    counts(&p, ch, 2, 1, 0);
    ack(&p, 2, "bft.ch", 2, 0, 0);
    counts(&p, ch, 2, 2, 0);
    struct cln_pub_config small;
    config_make(&small, 3, 1);
    struct cln_pub q;
    assert_int_equal(cln_pub_init(&q, &small), 0);
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, "bft", NULL, 0), 0);
    assert_int_equal(cln_pub_channel_open(&q, "bft.ch", &cls), TRONE_ECONFIG);
    cln_pub_close(&q);
    cln_pub_close(&p);
}

/* Every up replica gets every event, signed under PKS; nothing goes to a down replica; a
 * reconnect resends everything the replica has not acked. */
static void test_resend_on_reconnect(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 4, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "pks.ch", "bft,pks");
    publish_n(&p, ch, 3);
    uint64_t first = 0, last = 0;
    assert_int_equal(next_publish(&p, 0, "pks.ch", &first, &last), 0); /* down */
    cln_pub_replica_up(&p, 0, 0);
    cln_pub_replica_up(&p, 1, 0);
    const uint8_t *data;
    size_t size;
    assert_int_equal(cln_pub_next_message(&p, 1, 0, &data, &size), 1);
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, data, size, &m), 0);
    struct chan_event e;
    chan_msg_read_event(&r, &e);
    assert_int_equal(chan_auth_verify("pks.ch", cfg.public_key, &e), 0);
    assert_int_equal(next_publish(&p, 0, "pks.ch", &first, &last), 3);
    assert_int_equal(first, 1);
    assert_int_equal(last, 3);
    assert_int_equal(next_publish(&p, 0, "pks.ch", &first, &last), 0); /* all sent */
    ack(&p, 0, "pks.ch", 1, 0, 0);
    cln_pub_replica_down(&p, 0);
    cln_pub_replica_up(&p, 0, 0);
    assert_int_equal(next_publish(&p, 0, "pks.ch", &first, &last), 2);
    assert_int_equal(first, 2);
    assert_int_equal(last, 3);
    cln_pub_close(&p);
}

/* A replica whose acks make no progress for retransmit_us gets the unacked events again;
 * the deadline says exactly when. */
static void test_retransmit_timer(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 3, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "cft.ch", "cft");
    assert_int_equal(cln_pub_deadline(&p), UINT64_MAX);
    publish_n(&p, ch, 2);
    cln_pub_replica_up(&p, 2, 100);
    const uint8_t *data;
    size_t size;
    assert_int_equal(cln_pub_next_message(&p, 2, 100, &data, &size), 1);
    assert_int_equal(cln_pub_deadline(&p), 600);
    cln_pub_tick(&p, 599);
    uint64_t first = 0, last = 0;
    assert_int_equal(next_publish(&p, 2, "cft.ch", &first, &last), 0);
    cln_pub_tick(&p, 600);
    assert_int_equal(next_publish(&p, 2, "cft.ch", &first, &last), 2);
    assert_int_equal(first, 1);
    ack(&p, 2, "cft.ch", 2, 0, 0);
    assert_int_equal(cln_pub_deadline(&p), UINT64_MAX);
    cln_pub_close(&p);
}

/* When the unacked limit is reached, publish says TRONE_EBUSY; quorum acks make room. */
static void test_backpressure(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 3, 1);
    cfg.unacked_events_max = 2;
    cfg.unacked_bytes_max = 100;
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "cft.ch", "cft");
    uint8_t payload[60] = {0};
    assert_int_equal(cln_pub_publish(&p, ch, payload, 10, 1, 0), 1);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 10, 1, 0), 2);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 10, 1, 0), TRONE_EBUSY);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 101, 1, 0), TRONE_ETOOBIG);
    ack(&p, 0, "cft.ch", 1, 0, 0);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 10, 1, 0), TRONE_EBUSY);
    ack(&p, 1, "cft.ch", 1, 0, 0);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 60, 1, 0), 3);
    /* 70 bytes pending now: 40 more do not fit until event 2 is acked */
    ack(&p, 0, "cft.ch", 2, 0, 0);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 40, 1, 0), TRONE_EBUSY);
    ack(&p, 1, "cft.ch", 2, 0, 0);
    assert_int_equal(cln_pub_publish(&p, ch, payload, 30, 1, 0), 4);
    counts(&p, ch, 4, 2, 0);
    cln_pub_close(&p);
}

/* One replica's refusal may be a lie (BFT) or a lagging table: f+1 refusals fail the channel
 * with their error, and publishing then returns it. */
static void test_refusal(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 4, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "bft.ch", "bft");
    publish_n(&p, ch, 1);
    ack(&p, 3, "bft.ch", 0, TRONE_EPERM, 0);
    counts(&p, ch, 1, 0, 0);
    publish_n(&p, ch, 1);
    ack(&p, 1, "bft.ch", 0, TRONE_EPERM, 0);
    counts(&p, ch, 2, 0, TRONE_EPERM);
    uint8_t payload[1] = {0};
    assert_int_equal(cln_pub_publish(&p, ch, payload, 1, 1, 0), TRONE_EPERM);
    struct cln_pub_counts c;
    cln_pub_counts(&p, &c);
    assert_int_equal(c.error, TRONE_EPERM);
    cln_pub_close(&p);
}

/* More urgent channels go first; big backlogs are batched under the byte budget. */
static void test_urgency_and_batching(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 3, 1);
    cfg.message_bytes_max = 400;
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t low = (uint32_t)open_channel(&p, "low", "cft,urgency=0");
    uint32_t high = (uint32_t)open_channel(&p, "high", "cft,urgency=7");
    publish_n(&p, low, 3);
    publish_n(&p, high, 20);
    cln_pub_replica_up(&p, 0, 0);
    uint64_t first = 0, last = 0, total = 0;
    uint32_t got = next_publish(&p, 0, "high", &first, &last);
    assert_true(got > 1 && got < 20); /* 42 bytes per event: several, not all */
    total += got;
    while (total < 20) {
        got = next_publish(&p, 0, "high", &first, &last);
        assert_true(got > 0);
        total += got;
    }
    assert_int_equal(last, 20);
    assert_int_equal(next_publish(&p, 0, "low", &first, &last), 3);
    assert_int_equal(next_publish(&p, 0, "low", &first, &last), 0);
    cln_pub_close(&p);
}

/* Malformed input and the wrong message types are refused without touching state; acks of
 * other epochs and unknown channels are ignored. */
static void test_bad_input(void **state)
{
    (void)state;
    struct cln_pub_config cfg;
    struct cln_pub p;
    config_make(&cfg, 3, 1);
    assert_int_equal(cln_pub_init(&p, &cfg), 0);
    uint32_t ch = (uint32_t)open_channel(&p, "cft.ch", "cft");
    publish_n(&p, ch, 1);
    uint8_t junk[3] = {CHAN_MSG_ACK, 1, 0};
    assert_int_equal(cln_pub_receive(&p, 0, junk, sizeof(junk), 0), TRONE_EBADMSG);
    ack(&p, 0, "other", 1, 0, 0);
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_ACK, .epoch = EPOCH + 1, .seq = 1};
    strcpy(m.tag, "cft.ch");
    chan_msg_put_header(&b, &m);
    assert_int_equal(cln_pub_receive(&p, 0, b.data, b.used, 0), 0);
    buf_reset(&b);
    m.type = CHAN_MSG_ATTACH;
    chan_msg_put_header(&b, &m);
    assert_int_equal(cln_pub_receive(&p, 0, b.data, b.used, 0), TRONE_EBADMSG);
    buf_close(&b);
    counts(&p, ch, 1, 0, 0);
    cfg.public_key[0] ^= 1;
    struct cln_pub q;
    assert_int_equal(cln_pub_init(&q, &cfg), TRONE_ECONFIG);
    cln_pub_close(&p);
}

/* ---- Total order ---- */

/* A publisher of 4 replicas (f = 1), every session up. */
static void start_bft4(struct cln_pub *p)
{
    struct cln_pub_config cfg;
    config_make(&cfg, 4, 1);
    assert_int_equal(cln_pub_init(p, &cfg), 0);
    for (uint32_t r = 0; r < 4; r++) {
        cln_pub_replica_up(p, r, 0);
    }
}

/* Takes the next ORDER; checks its fields and that its digest is brk_order_digest over the
 * brk_order_event_hash of the events exactly as the PUBLISHes to replica 0 carried them. */
static void expect_order(struct cln_pub *p, const char *tag, uint64_t first, uint32_t count,
                         const uint8_t (*hashes)[TRONE_HASH_LEN])
{
    const uint8_t *op;
    size_t size;
    assert_int_equal(cln_pub_order_next(p, &op, &size), 1);
    assert_true(cln_pub_order_inflight(p));
    struct brk_op *decoded = calloc(1, sizeof(*decoded));
    assert_non_null(decoded);
    assert_int_equal(brk_op_decode(op, size, decoded), 0);
    assert_int_equal(decoded->kind, BRK_OP_ORDER);
    assert_string_equal(decoded->tag, tag);
    assert_true(decoded->epoch == EPOCH && decoded->first_seq == first);
    assert_int_equal(decoded->count, count);
    uint8_t digest[TRONE_HASH_LEN];
    brk_order_digest(digest, hashes + (first - 1), count);
    assert_memory_equal(decoded->digest, digest, TRONE_HASH_LEN);
    free(decoded);
    assert_int_equal(cln_pub_order_next(p, &op, &size), 0); /* one in flight */
}

/* Hashes (by seq - 1) of the events in the next PUBLISH for replica 0. */
static void publish_hashes(struct cln_pub *p, uint8_t (*hashes)[TRONE_HASH_LEN])
{
    const uint8_t *data;
    size_t size;
    assert_int_equal(cln_pub_next_message(p, 0, 0, &data, &size), 1);
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, data, size, &m), 0);
    for (uint32_t i = 0; i < m.event_count; i++) {
        size_t at = r.used;
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        brk_order_event_hash(hashes[e.seq - 1], data + at, r.used - at);
    }
}

static void order_result(struct cln_pub *p, int smr_status, int32_t status)
{
    struct buf b = {0};
    brk_result_put(&b, status, status == 0 ? "" : "refused");
    if (status == 0) {
        buf_put_u64(&b, 1);
    }
    cln_pub_order_done(p, smr_status, b.data, b.used);
    buf_close(&b);
    assert_false(cln_pub_order_inflight(p));
}

/* A total-order event counts as acknowledged only once both the ack quorum and a completed
 * ORDER cover it; ORDERs batch what was published meanwhile, a retry after a stale request
 * rebuilds the same range, EEXIST counts as ordered and a refusal is sticky. */
static void test_total_order(void **state)
{
    (void)state;
    struct cln_pub p;
    start_bft4(&p);
    uint32_t fifo = (uint32_t)open_channel(&p, "f", "bft");
    uint32_t ch = (uint32_t)open_channel(&p, "t", "bft,total,pks");
    uint8_t hashes[16][TRONE_HASH_LEN];
    const uint8_t *op;
    size_t size;
    publish_n(&p, fifo, 2);
    assert_int_equal(cln_pub_order_next(&p, &op, &size), 0); /* FIFO channels need none */
    uint64_t first, last;
    assert_int_equal(next_publish(&p, 0, "f", &first, &last), 2);
    publish_n(&p, ch, 3);
    publish_hashes(&p, hashes);
    expect_order(&p, "t", 1, 3, (const uint8_t(*)[TRONE_HASH_LEN])hashes);
    publish_n(&p, ch, 2);
    publish_hashes(&p, hashes);
    for (uint32_t r = 0; r < 3; r++) {
        ack(&p, r, "t", 5, 0, 0);
    }
    counts(&p, ch, 5, 0, 0); /* acked by the quorum, not ordered */
    order_result(&p, 0, 0);
    counts(&p, ch, 5, 3, 0);
    expect_order(&p, "t", 4, 2, (const uint8_t(*)[TRONE_HASH_LEN])hashes);
    publish_n(&p, ch, 1);
    publish_hashes(&p, hashes);
    order_result(&p, TRONE_ESTALE, 0); /* not agreed: the same range again, not 4..6 */
    counts(&p, ch, 6, 3, 0);
    expect_order(&p, "t", 4, 2, (const uint8_t(*)[TRONE_HASH_LEN])hashes);
    order_result(&p, 0, TRONE_EEXIST); /* applied before: counts as ordered */
    counts(&p, ch, 6, 5, 0);
    expect_order(&p, "t", 6, 1, (const uint8_t(*)[TRONE_HASH_LEN])hashes);
    order_result(&p, 0, TRONE_EPERM);
    counts(&p, ch, 6, 5, TRONE_EPERM);
    uint8_t payload[4] = {0};
    assert_int_equal(cln_pub_publish(&p, ch, payload, sizeof(payload), 1, 0), TRONE_EPERM);
    assert_int_equal(cln_pub_order_next(&p, &op, &size), 0);
    cln_pub_close(&p);
}

/* On HA and PKE channels the wire payload is the envelope (key id, wrapped keys, MAC or
 * ciphertext), longer than the application's: the ORDER digest must cover exactly those
 * bytes, or every replica finds the range mismatched and skips it (found by trone bench). */
static void test_total_order_qop(void **state)
{
    (void)state;
    static const char *classes[] = {"cft,total,ha", "bft,total,pke"};
    for (uint32_t k = 0; k < 2; k++) {
        struct cln_pub p;
        start_bft4(&p);
        uint32_t ch = (uint32_t)open_channel(&p, "t", classes[k]);
        uint8_t recipient[TRONE_KEY_LEN];
        uint8_t secret[crypto_sign_SECRETKEYBYTES];
        crypto_sign_keypair(recipient, secret);
        assert_int_equal(cln_pub_channel_recipients(&p, ch, &recipient, 1, 0), 1);
        uint8_t hashes[4][TRONE_HASH_LEN];
        publish_n(&p, ch, 3);
        publish_hashes(&p, hashes);
        expect_order(&p, "t", 1, 3, (const uint8_t(*)[TRONE_HASH_LEN])hashes);
        cln_pub_close(&p);
    }
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quorum_cft),
        cmocka_unit_test(test_quorum_bft),
        cmocka_unit_test(test_resend_on_reconnect),
        cmocka_unit_test(test_retransmit_timer),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_refusal),
        cmocka_unit_test(test_urgency_and_batching),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_total_order),
        cmocka_unit_test(test_total_order_qop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
