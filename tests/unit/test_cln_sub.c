/* test_cln_sub.c: the subscriber core (cln_sub.h): CFT first copy and dedup; BFT voting with
 * a Byzantine replica that alters, forges, replays, reorders or drops everything (never
 * delivered, FIFO holds, nothing lost); PKS one-copy delivery and forged signatures; gap
 * timeouts; epoch changes; the window bound; bad input; signatures checked outside the core
 * (cln_sub_receive_checked, cln_sub_verify_wanted); replays of durable channels (start at
 * the lowest announced position, holes held while a replay may fill them, a Byzantine low
 * claim, retention gaps, a replica that goes away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "client/cln_sub.h"
#include "client/cln_sub_internal.h"

#define TAG "alpha"
#define EPOCH 5000u
#define GAP_US 2000u

/* ---- Fixture ---- */

struct fx {
    struct cln_sub sub;
    uint8_t pk[TRONE_KEY_LEN];
    uint8_t sk[TRONE_SECRET_KEY_LEN];
    uint8_t evil_pk[TRONE_KEY_LEN];
    uint8_t evil_sk[TRONE_SECRET_KEY_LEN];
    bool pks;
    uint64_t delivered[64]; /* seqs delivered, in order */
    uint32_t delivered_count;
    uint64_t gap_seq, gap_count;
    enum cln_sub_gap_reason gap_reason;
    uint32_t gaps;
    uint64_t deadline;
};

/* n=4, f=1, one channel of class cls_text; listed says whether the publisher list is known. */
static void fx_make(struct fx *x, const char *cls_text, bool listed, uint32_t window)
{
    memset(x, 0, sizeof(*x));
    uint8_t seed[32];
    memset(seed, 1, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(x->pk, x->sk, seed), 0);
    memset(seed, 2, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(x->evil_pk, x->evil_sk, seed), 0);
    struct cln_sub_config cfg = {.n = 4, .f = 1, .gap_wait_us = GAP_US, .window = window};
    assert_int_equal(cln_sub_init(&x->sub, &cfg), 0);
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, cls_text, NULL, 0), 0);
    x->pks = cls.method == BRK_METHOD_PKS || cls.method == BRK_METHOD_PKE; /* signed */
    const uint8_t(*list)[TRONE_KEY_LEN] = (const uint8_t(*)[TRONE_KEY_LEN])x->pk;
    assert_int_equal(cln_sub_channel_add(&x->sub, TAG, &cls, listed ? list : NULL, listed ? 1 : 0),
                     0);
}

static void fx_close(struct fx *x)
{
    cln_sub_close(&x->sub); /* asserts that every held byte was released */
}

/* ---- Helpers ---- */

/* The payload the publisher sends at seq (tweak != 0 makes an altered one). */
static void payload_of(uint8_t out[16], uint64_t epoch, uint64_t seq, uint8_t tweak)
{
    memset(out, 0, 16);
    snprintf((char *)out, 16, "e%llu-s%llu", (unsigned long long)(epoch % 1000),
             (unsigned long long)seq);
    out[15] = tweak;
}

static void fx_output(struct fx *x, const struct cln_sub_output *out)
{
    x->deadline = out->deadline_us;
    for (uint32_t i = 0; i < out->item_count; i++) {
        const struct cln_sub_item *it = &out->items[i];
        if (it->kind == CLN_SUB_EVENT) {
            uint8_t want[16];
            payload_of(want, it->epoch, it->seq, 0);
            assert_int_equal(it->payload_size, 16);
            assert_memory_equal(it->payload, want, 16); /* unmodified */
            assert_memory_equal(it->publisher, x->pk, TRONE_KEY_LEN);
            assert_true(x->delivered_count < 64);
            x->delivered[x->delivered_count++] = it->epoch * 1000 + it->seq;
        } else if (it->kind == CLN_SUB_GAP) {
            x->gaps++;
            x->gap_seq = it->seq;
            x->gap_count = it->count;
            x->gap_reason = it->reason;
        }
    }
}

/* No check given: the message goes through cln_sub_receive (the core verifies itself). */
#define UNCHECKED 0xffu

/* Replica sends one DELIVER with one event. sign_sk: the key that signs (PKS); tweak alters
 * the payload after signing; check: the enum cln_sub_check the runtime attached to the event
 * (cln_sub_receive_checked), or UNCHECKED. */
static void send_checked(struct fx *x, uint32_t replica, const uint8_t *claimed_pk,
                         const uint8_t *sign_sk, uint64_t epoch, uint64_t seq, uint8_t tweak,
                         uint64_t now, uint8_t check)
{
    uint8_t payload[16], sig[CHAN_AUTH_PKS_SIZE];
    payload_of(payload, epoch, seq, 0);
    struct chan_event e = {.epoch = epoch,
                           .seq = seq,
                           .time_us = seq * 10,
                           .payload = payload,
                           .payload_size = sizeof(payload)};
    if (x->pks) {
        chan_auth_sign(sig, sign_sk, TAG, &e);
        e.auth = sig;
        e.auth_size = sizeof(sig);
    }
    payload[15] = tweak;
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_DELIVER, .event_count = 1};
    strcpy(m.tag, TAG);
    memcpy(m.publisher, claimed_pk, TRONE_KEY_LEN);
    chan_msg_put_header(&b, &m);
    chan_msg_put_event(&b, &e);
    assert_int_equal(b.error, 0);
    struct cln_sub_output out;
    if (check == UNCHECKED) {
        assert_int_equal(cln_sub_receive(&x->sub, replica, b.data, b.used, now, &out), 0);
    } else {
        assert_int_equal(
            cln_sub_receive_checked(&x->sub, replica, b.data, b.used, &check, 1, now, &out), 0);
    }
    buf_close(&b);
    fx_output(x, &out);
}

static void send_ex(struct fx *x, uint32_t replica, const uint8_t *claimed_pk,
                    const uint8_t *sign_sk, uint64_t epoch, uint64_t seq, uint8_t tweak,
                    uint64_t now)
{
    send_checked(x, replica, claimed_pk, sign_sk, epoch, seq, tweak, now, UNCHECKED);
}

static void send(struct fx *x, uint32_t replica, uint64_t seq, uint64_t now)
{
    send_ex(x, replica, x->pk, x->sk, EPOCH, seq, 0, now);
}

static void tick(struct fx *x, uint64_t now)
{
    struct cln_sub_output out;
    assert_int_equal(cln_sub_tick(&x->sub, now, &out), 0);
    fx_output(x, &out);
}

static void expect_seqs(const struct fx *x, uint64_t first, uint32_t count)
{
    assert_int_equal(x->delivered_count, count);
    for (uint32_t i = 0; i < count; i++) {
        assert_int_equal(x->delivered[i], (uint64_t)EPOCH * 1000 + first + i);
    }
}

/* ---- Scenarios ---- */

/* CFT: the first copy is delivered, copies from the other replicas are dropped; a seq that
 * arrives early from another replica waits for its turn (FIFO). */
static void test_cft_first_copy_dedup(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft", false, 0);
    send(&x, 0, 1, 0);
    send(&x, 1, 1, 0);
    send(&x, 1, 3, 0);
    expect_seqs(&x, 1, 1);
    send(&x, 0, 2, 0);
    send(&x, 0, 3, 0);
    send(&x, 2, 2, 0);
    expect_seqs(&x, 1, 3);
    assert_int_equal(x.deadline, UINT64_MAX);
    fx_close(&x);
}

/* BFT: a Byzantine replica (3) alters a payload, forges an event in the publisher's name,
 * replays old events and reorders; only f+1 matching copies are delivered, in order. */
static void test_bft_byzantine_replica(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 1, 9, 0); /* altered */
    send(&x, 0, 1, 0);
    assert_int_equal(x.delivered_count, 0);     /* one correct copy is not enough */
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 1, 0, 0); /* a second vote by 3 does not count */
    assert_int_equal(x.delivered_count, 0);
    send(&x, 1, 1, 0);
    expect_seqs(&x, 1, 1);
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 2, 7, 0); /* forged seq 2 */
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 3, 7, 0);
    send(&x, 3, 1, 0); /* replay */
    send(&x, 2, 3, 0); /* correct 3 before 2 (reordered) */
    send(&x, 0, 3, 0);
    expect_seqs(&x, 1, 1);
    send(&x, 1, 2, 0);
    send(&x, 2, 2, 0);
    expect_seqs(&x, 1, 3);
    send(&x, 0, 2, 0);
    send(&x, 3, 3, 0);
    expect_seqs(&x, 1, 3);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* BFT: a Byzantine replica that drops everything loses nothing: the 2f+1 others suffice. */
static void test_bft_mute_replica(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        send(&x, 0, seq, 0);
        send(&x, 2, seq, 0);
    }
    for (uint64_t seq = 1; seq <= 10; seq++) {
        send(&x, 1, seq, 0);
    }
    expect_seqs(&x, 1, 10);
    fx_close(&x);
}

/* PKS with a known publisher: one copy whose signature verifies is delivered; a copy with a
 * payload altered after signing, or signed by another key, is refused even with f votes. */
static void test_pks_one_copy(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 1, 5, 0);           /* altered after signing */
    send_ex(&x, 3, x.pk, x.evil_sk, EPOCH, 2, 0, 0);      /* forged signature */
    send_ex(&x, 3, x.evil_pk, x.evil_sk, EPOCH, 1, 0, 0); /* a publisher not authorized */
    assert_int_equal(x.delivered_count, 0);
    send(&x, 0, 1, 0);
    expect_seqs(&x, 1, 1);
    send(&x, 1, 2, 0);
    expect_seqs(&x, 1, 2);
    fx_close(&x);
}

/* PKS without a publisher list: BFT falls back to f+1 votes (a lone signature proves only
 * that someone holds the key it names). */
static void test_pks_unlisted_needs_votes(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", false, 0);
    send(&x, 0, 1, 0);
    assert_int_equal(x.delivered_count, 0);
    send(&x, 2, 1, 0);
    expect_seqs(&x, 1, 1);
    fx_close(&x);
}

/* A missing seq is waited for gap_wait_us after a later one is decided, then skipped and
 * reported; the deadline names the exact time. */
static void test_gap_timeout(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft", false, 0);
    send(&x, 0, 1, 100);
    send(&x, 0, 4, 200);
    send(&x, 1, 5, 300);
    expect_seqs(&x, 1, 1);
    assert_int_equal(x.deadline, 200 + GAP_US);
    tick(&x, 199 + GAP_US);
    expect_seqs(&x, 1, 1);
    tick(&x, 200 + GAP_US);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 2);
    assert_int_equal(x.gap_count, 2);
    assert_int_equal(x.delivered_count, 3);
    assert_int_equal(x.delivered[1], (uint64_t)EPOCH * 1000 + 4);
    assert_int_equal(x.delivered[2], (uint64_t)EPOCH * 1000 + 5);
    send(&x, 1, 2, 5000); /* too late: dropped */
    assert_int_equal(x.delivered_count, 3);
    assert_int_equal(x.deadline, UINT64_MAX);
    fx_close(&x);
}

/* A higher epoch (a restarted publisher, or another process of the same key) starts a new
 * stream at its seq 1; the older epoch goes on beside it (its process may still run: before,
 * the newer epoch closed it and its later events were dropped), and its replays stay
 * dropped. */
static void test_epoch_change(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,pks", true, 0);
    send(&x, 0, 1, 0);
    send(&x, 0, 2, 0);
    send_ex(&x, 0, x.pk, x.sk, EPOCH + 1, 1, 0, 10);
    assert_int_equal(x.delivered_count, 3);
    assert_int_equal(x.delivered[2], (uint64_t)(EPOCH + 1) * 1000 + 1);
    tick(&x, 10);
    send(&x, 1, 3, 20);
    send(&x, 1, 1, 20); /* a replay: dropped */
    assert_int_equal(x.delivered_count, 4);
    assert_int_equal(x.delivered[3], (uint64_t)EPOCH * 1000 + 3);
    send_ex(&x, 1, x.pk, x.sk, EPOCH + 1, 2, 0, 30);
    assert_int_equal(x.delivered_count, 5);
    fx_close(&x);
}

/* CLN_SUB_EPOCHS epochs of one publisher run side by side; one more makes the oldest left:
 * its copies are then dropped as replays, even new seqs with a valid signature. */
static void test_epoch_left(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,pks", true, 0);
    for (uint64_t k = 0; k < CLN_SUB_EPOCHS; k++) {
        send_ex(&x, 0, x.pk, x.sk, EPOCH + k, 1, 0, 10 * k);
    }
    assert_int_equal(x.delivered_count, CLN_SUB_EPOCHS);
    for (uint64_t k = 0; k < CLN_SUB_EPOCHS; k++) {
        send_ex(&x, 1, x.pk, x.sk, EPOCH + k, 2, 0, 100);
    }
    assert_int_equal(x.delivered_count, 2 * CLN_SUB_EPOCHS); /* all of them go on */
    send_ex(&x, 0, x.pk, x.sk, EPOCH + CLN_SUB_EPOCHS, 1, 0, 200);
    assert_int_equal(x.delivered_count, 2 * CLN_SUB_EPOCHS + 1);
    tick(&x, 200 + GAP_US); /* the oldest epoch's stream closes */
    send(&x, 1, 3, 300);
    assert_int_equal(x.delivered_count, 2 * CLN_SUB_EPOCHS + 1);
    send_ex(&x, 1, x.pk, x.sk, EPOCH + 1, 3, 0, 300);
    assert_int_equal(x.delivered_count, 2 * CLN_SUB_EPOCHS + 2);
    fx_close(&x);
}

/* A stream more than window seqs ahead moves the window once a replica that cannot be lying
 * (CFT: any) went there, reporting what it skipped; held events are still delivered. */
static void test_window_slide(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft", false, 4);
    send(&x, 0, 1, 0);
    send(&x, 0, 3, 0);
    send(&x, 0, 8, 0); /* window is seqs 2..5: slides to 5..8 */
    assert_int_equal(x.gaps, 2);
    assert_int_equal(x.delivered_count, 2);
    assert_int_equal(x.delivered[1], (uint64_t)EPOCH * 1000 + 3);
    send(&x, 1, 5, 0);
    send(&x, 1, 6, 0);
    send(&x, 1, 7, 0);
    assert_int_equal(x.delivered_count, 6);
    fx_close(&x);
}

/* BFT: one replica alone cannot move the window (it could make us skip real events). */
static void test_window_byzantine(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 4);
    send(&x, 0, 1, 0);
    send(&x, 1, 1, 0);
    send(&x, 3, 1000, 0);
    assert_int_equal(x.gaps, 0);
    send(&x, 0, 2, 0);
    send(&x, 1, 2, 0);
    expect_seqs(&x, 1, 2);
    fx_close(&x);
}

/* BFT: a Byzantine replica (3) that reorders gets seq 2 decided (its real copy and replica
 * 0's) while seq 1 still has one vote; the stream must start at seq 1, not at the first seq
 * decided, or seq 1 is lost for good (found by tests/integration/test_byz_events.sh). */
static void test_bft_reordered_first_seq(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    send(&x, 0, 1, 0);
    send(&x, 0, 2, 0);
    send(&x, 3, 2, 0); /* before its seq 1 */
    assert_int_equal(x.delivered_count, 0);
    send(&x, 1, 1, 10);
    expect_seqs(&x, 1, 2);
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 1, 4, 20); /* its altered seq 1, too late anyway */
    send(&x, 2, 1, 20);
    send(&x, 2, 2, 20);
    expect_seqs(&x, 1, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* PKS (BFT with a known publisher, or CFT): the Byzantine replica's real, signed seq 2 arrives
 * first and is decided on its signature; the stream waits for a second sender (it could be a mid-stream
 * start) and starts at seq 1 when a correct replica's copy comes. */
static void test_pks_first_copy_out_of_order(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    send(&x, 3, 2, 0);
    assert_int_equal(x.delivered_count, 0);
    assert_int_equal(x.deadline, GAP_US);
    send(&x, 0, 1, 10);
    expect_seqs(&x, 1, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);

    /* The same on a CFT channel with PKS: its one-copy rule must not let a lying replica's
     * early copy cut off the seqs before it. */
    fx_make(&x, "cft,pks", false, 0);
    send(&x, 3, 2, 0);
    assert_int_equal(x.delivered_count, 0);
    send(&x, 0, 1, 10);
    expect_seqs(&x, 1, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* A subscriber that joins mid-stream: a forged lower seq from the Byzantine replica makes the
 * stream wait gap_wait_us and report a gap, never deliver the forgery nor lose the real seqs;
 * and a stream that only ever hears from one replica still starts after gap_wait_us. */
static void test_start_forged_low_and_lone_sender(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    send_ex(&x, 3, x.pk, x.sk, EPOCH, 5, 8, 0); /* forged, below the real stream */
    send(&x, 0, 7, 100);
    send(&x, 1, 7, 100);
    send(&x, 0, 8, 100);
    send(&x, 1, 8, 100);
    assert_int_equal(x.delivered_count, 0);
    assert_int_equal(x.deadline, 100 + GAP_US);
    tick(&x, 100 + GAP_US);
    expect_seqs(&x, 7, 2);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 5);
    assert_int_equal(x.gap_count, 2);
    fx_close(&x);

    fx_make(&x, "bft,pks", true, 0);
    send(&x, 2, 3, 0);
    send(&x, 2, 4, 0);
    assert_int_equal(x.delivered_count, 0);
    tick(&x, GAP_US);
    expect_seqs(&x, 3, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* PKS without a publisher list, on a CFT channel: events well signed by a key the lying
 * replica made up (and names as the publisher) are never delivered, not even after gap_wait;
 * the real publisher is delivered once f+1 replicas forwarded its events. */
static void made_up_key_case(const char *cls)
{
    struct fx x;
    fx_make(&x, cls, false, 0);
    send_ex(&x, 3, x.evil_pk, x.evil_sk, EPOCH, 1, 0, 0);
    send_ex(&x, 3, x.evil_pk, x.evil_sk, EPOCH, 2, 0, 0);
    tick(&x, GAP_US);
    tick(&x, 3 * GAP_US);
    assert_int_equal(x.delivered_count, 0); /* fx_output also checks every publisher */
    assert_true(x.deadline > 3 * GAP_US && x.deadline != UINT64_MAX);
    send(&x, 0, 1, 4 * GAP_US);
    assert_int_equal(x.delivered_count, 0);
    send(&x, 1, 1, 4 * GAP_US);
    send(&x, 0, 2, 4 * GAP_US);
    expect_seqs(&x, 1, 2);
    fx_close(&x);
}

/* The list the subscriber learned names another key (the real publisher was authorized
 * after it subscribed): the real publisher is not dropped but, like any unlisted one, believed
 * on f+1 replicas' word only (BFT: f+1 votes; CFT: f+1 replicas sent its stream), never on one
 * replica's well-signed copies. */
static void test_pks_publisher_not_in_list(void **state)
{
    (void)state;
    static const char *classes[] = {"bft,pks", "cft,pks", "cft,pke"};
    for (uint32_t k = 0; k < 3; k++) {
        struct fx x;
        fx_make(&x, classes[k], false, 0);
        cln_sub_close(&x.sub);
        struct cln_sub_config cfg = {.n = 4, .f = 1, .gap_wait_us = GAP_US};
        assert_int_equal(cln_sub_init(&x.sub, &cfg), 0);
        struct brk_class cls;
        assert_int_equal(brk_class_parse(&cls, classes[k], NULL, 0), 0);
        assert_int_equal(
            cln_sub_channel_add(&x.sub, TAG, &cls, (const uint8_t(*)[TRONE_KEY_LEN])x.evil_pk, 1),
            0);
        send(&x, 0, 1, 0);
        send(&x, 0, 2, 0);
        tick(&x, 3 * GAP_US);
        assert_int_equal(x.delivered_count, 0);
        send(&x, 1, 1, 3 * GAP_US);
        send(&x, 1, 2, 3 * GAP_US);
        expect_seqs(&x, 1, 2);
        fx_close(&x);
    }
}

static void test_pks_unlisted_made_up_key(void **state)
{
    (void)state;
    made_up_key_case("cft,pks");
}

/* PKE events are signed like PKS ones (the ciphertext), so the same rule applies: a replica
 * that names a key of its own (it could also wrap a channel key of its own for us) is not
 * believed before f+1 replicas forwarded that publisher's events. */
static void test_pke_unlisted_made_up_key(void **state)
{
    (void)state;
    made_up_key_case("cft,pke");
}

/* Malformed bytes and the wrong message types are refused; GAP notices are reported with the
 * replica that sent them (a warning on BFT channels). */
static void test_bad_input_and_notice(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    struct cln_sub_output out;
    uint8_t junk[4] = {CHAN_MSG_DELIVER, 1, 0, 'a'};
    assert_int_equal(cln_sub_receive(&x.sub, 0, junk, sizeof(junk), 0, &out), TRONE_EBADMSG);
    assert_int_equal(out.item_count, 0);
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_GAP, .dropped = 12};
    strcpy(m.tag, TAG);
    memcpy(m.publisher, x.pk, TRONE_KEY_LEN);
    chan_msg_put_header(&b, &m);
    assert_int_equal(cln_sub_receive(&x.sub, 2, b.data, b.used, 0, &out), 0);
    assert_int_equal(out.item_count, 1);
    assert_int_equal(out.items[0].kind, CLN_SUB_NOTICE);
    assert_int_equal(out.items[0].count, 12);
    assert_int_equal(out.items[0].replica, 2);
    assert_false(out.items[0].trusted);
    buf_reset(&b);
    m.type = CHAN_MSG_ACK;
    chan_msg_put_header(&b, &m);
    assert_int_equal(cln_sub_receive(&x.sub, 2, b.data, b.used, 0, &out), TRONE_EBADMSG);
    buf_close(&b);
    fx_close(&x);
}

/* ---- Checks made outside the core (cln_sub_receive_checked) ---- */

/* A copy the runtime marked invalid never decides on its own, and the core does not verify it
 * again (here its signature is in fact good, so only the mark can have stopped it), nor an
 * identical copy from another replica (one check per distinct copy, as when the core
 * verifies); the seq is skipped after the gap wait like any event that never came. */
static void test_checked_invalid_never_decides(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,pks", true, 0);
    send_checked(&x, 0, x.pk, x.sk, EPOCH, 1, 0, 0, CLN_SUB_CHECK_INVALID);
    send_checked(&x, 1, x.pk, x.sk, EPOCH, 1, 0, 0, UNCHECKED);
    send_checked(&x, 2, x.pk, x.sk, EPOCH, 1, 0, 0, CLN_SUB_CHECK_VALID);
    assert_int_equal(x.delivered_count, 0);
    send_checked(&x, 0, x.pk, x.sk, EPOCH, 2, 0, 10, CLN_SUB_CHECK_VALID);
    assert_int_equal(x.delivered_count, 0); /* decided, waits for seq 1 */
    tick(&x, 10 + GAP_US);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 1);
    expect_seqs(&x, 2, 1);
    fx_close(&x);
}

/* A copy marked valid decides exactly as a copy the core verified itself: the same deliveries
 * from the same inputs, with and without marks, on CFT and on BFT with a publisher list. The
 * core trusts the mark (it skips its own verification, which is the point): a copy whose
 * signature is bad but is marked valid is delivered, so the runtime must mark truthfully. */
static void test_checked_valid_decides_like_verified(void **state)
{
    (void)state;
    static const char *classes[] = {"cft,pks", "bft,pks", "cft,pke"};
    for (uint32_t k = 0; k < 3; k++) {
        struct fx a, b;
        fx_make(&a, classes[k], true, 0);
        fx_make(&b, classes[k], true, 0);
        static const uint64_t seqs[] = {2, 1, 1, 3, 5, 4, 4, 5};
        for (uint32_t i = 0; i < 8; i++) {
            uint32_t replica = i % 4u;
            send_checked(&a, replica, a.pk, a.sk, EPOCH, seqs[i], 0, i, UNCHECKED);
            send_checked(&b, replica, b.pk, b.sk, EPOCH, seqs[i], 0, i, CLN_SUB_CHECK_VALID);
            assert_int_equal(a.delivered_count, b.delivered_count);
        }
        expect_seqs(&b, 1, 5);
        fx_close(&a);
        fx_close(&b);
    }
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    send_checked(&x, 3, x.pk, x.evil_sk, EPOCH, 1, 0, 0, CLN_SUB_CHECK_VALID);
    expect_seqs(&x, 1, 1);
    fx_close(&x);
}

/* BFT with a publisher list and a Byzantine replica: its forged copies (payload altered after
 * signing, or signed by another key), truthfully marked invalid, are never delivered; correct
 * copies marked valid are delivered on one copy; a forged copy still needs f+1 votes, as when
 * the core verifies, and one Byzantine replica cannot give them. */
static void test_checked_bft_forged_never_delivered(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    for (uint64_t seq = 1; seq <= 6; seq++) {
        uint8_t tweak = seq % 2 == 0 ? 7 : 0;
        const uint8_t *sk = seq % 2 == 0 ? x.sk : x.evil_sk;
        send_checked(&x, 3, x.pk, sk, EPOCH, seq, tweak, seq, CLN_SUB_CHECK_INVALID);
        send_checked(&x, 3, x.pk, sk, EPOCH, seq, tweak, seq, CLN_SUB_CHECK_INVALID);
        assert_int_equal(x.delivered_count, seq - 1); /* fx_output checks every payload */
        send_checked(&x, (uint32_t)(seq % 3), x.pk, x.sk, EPOCH, seq, 0, seq, CLN_SUB_CHECK_VALID);
        expect_seqs(&x, 1, (uint32_t)seq);
    }
    send_checked(&x, 3, x.pk, x.evil_sk, EPOCH, 7, 0, 7, CLN_SUB_CHECK_INVALID);
    send_checked(&x, 0, x.pk, x.sk, EPOCH, 7, 0, 7, CLN_SUB_CHECK_INVALID); /* not this copy */
    assert_int_equal(x.delivered_count, 6);
    send_checked(&x, 1, x.pk, x.sk, EPOCH, 7, 0, 7, UNCHECKED); /* the 2nd vote of the copy */
    expect_seqs(&x, 1, 7);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* Builds a DELIVER of seqs first..first+count-1 by x's publisher on tag. */
static void deliver_build(struct fx *x, struct buf *b, const char *tag, uint64_t first,
                          uint32_t count)
{
    struct chan_msg m = {.type = CHAN_MSG_DELIVER, .event_count = count};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    memcpy(m.publisher, x->pk, TRONE_KEY_LEN);
    buf_reset(b);
    chan_msg_put_header(b, &m);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t payload[16], sig[CHAN_AUTH_PKS_SIZE];
        payload_of(payload, EPOCH, first + i, 0);
        struct chan_event e = {.epoch = EPOCH,
                               .seq = first + i,
                               .time_us = (first + i) * 10,
                               .payload = payload,
                               .payload_size = sizeof(payload)};
        chan_auth_sign(sig, x->sk, tag, &e);
        e.auth = sig;
        e.auth_size = sizeof(sig);
        chan_msg_put_event(b, &e);
    }
    assert_int_equal(b->error, 0);
}

/* cln_sub_verify_wanted asks for checks only where a verified copy could decide: PKS/PKE
 * channels that decide on one copy, seqs neither delivered nor decided; never on BFT without
 * a publisher list, SI, unknown channels or GAP messages; and it changes nothing. */
static void test_verify_wanted(void **state)
{
    (void)state;
    static uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX];
    struct buf b = {0};
    struct fx x;
    fx_make(&x, "cft,pks", true, 0);
    deliver_build(&x, &b, TAG, 1, 4);
    assert_int_equal(cln_sub_verify_wanted(&x.sub, b.data, b.used, wanted), 4);
    assert_memory_equal(wanted, ((uint8_t[]){1, 1, 1, 1}), 4);
    send(&x, 0, 1, 0);
    send(&x, 0, 3, 0); /* decided, held behind seq 2 */
    assert_int_equal(cln_sub_verify_wanted(&x.sub, b.data, b.used, wanted), 4);
    assert_memory_equal(wanted, ((uint8_t[]){0, 1, 0, 1}), 4);
    expect_seqs(&x, 1, 1);
    deliver_build(&x, &b, "other", 1, 2);
    assert_int_equal(cln_sub_verify_wanted(&x.sub, b.data, b.used, wanted), 2);
    assert_memory_equal(wanted, ((uint8_t[]){0, 0}), 2);
    uint8_t junk[4] = {CHAN_MSG_DELIVER, 1, 0, 'a'};
    assert_int_equal(cln_sub_verify_wanted(&x.sub, junk, sizeof(junk), wanted), TRONE_EBADMSG);
    struct chan_msg m = {.type = CHAN_MSG_GAP, .dropped = 1};
    strcpy(m.tag, TAG);
    buf_reset(&b);
    chan_msg_put_header(&b, &m);
    assert_int_equal(cln_sub_verify_wanted(&x.sub, b.data, b.used, wanted), 0);
    fx_close(&x);
    static const char *none[] = {"bft,pks", "cft", "bft"};
    for (uint32_t k = 0; k < 3; k++) {
        fx_make(&x, none[k], k != 0, 0); /* BFT PKS without a list decides by votes only */
        deliver_build(&x, &b, TAG, 1, 2);
        assert_int_equal(cln_sub_verify_wanted(&x.sub, b.data, b.used, wanted), 2);
        assert_memory_equal(wanted, ((uint8_t[]){0, 0}), 2);
        fx_close(&x);
    }
    buf_close(&b);
}

/* ---- Total order ---- */

/* What a subscriber delivered on a total-order channel, in order. */
struct tot {
    struct cln_sub sub;
    uint8_t pub[2][TRONE_KEY_LEN];
    uint8_t sk[2][TRONE_SECRET_KEY_LEN];
    uint64_t positions[64];
    uint32_t publishers[64];
    uint64_t seqs[64];
    uint32_t count;
    uint32_t gaps;
    uint64_t gap_position;
    uint64_t gap_count;
};

static void tot_make(struct tot *t, const char *cls_text)
{
    memset(t, 0, sizeof(*t));
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t seed[32];
        memset(seed, (int)(10 + i), sizeof(seed));
        assert_int_equal(crypto_sign_seed_keypair(t->pub[i], t->sk[i], seed), 0);
    }
    struct cln_sub_config cfg = {.n = 4, .f = 1, .gap_wait_us = GAP_US, .window = 16};
    assert_int_equal(cln_sub_init(&t->sub, &cfg), 0);
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, cls_text, NULL, 0), 0);
    assert_int_equal(cln_sub_channel_add(&t->sub, TAG, &cls, NULL, 0), 0);
}

static void tot_output(struct tot *t, const struct cln_sub_output *out)
{
    for (uint32_t i = 0; i < out->item_count; i++) {
        const struct cln_sub_item *it = &out->items[i];
        if (it->kind == CLN_SUB_GAP) {
            t->gaps++;
            t->gap_position = it->seq;
            t->gap_count = it->count;
            continue;
        }
        assert_int_equal(it->kind, CLN_SUB_EVENT);
        uint32_t who = memcmp(it->publisher, t->pub[0], TRONE_KEY_LEN) == 0 ? 0u : 1u;
        assert_memory_equal(it->publisher, t->pub[who], TRONE_KEY_LEN);
        uint8_t want[16];
        payload_of(want, it->epoch, it->seq, (uint8_t)who);
        assert_int_equal(it->payload_size, 16);
        assert_memory_equal(it->payload, want, 16); /* unmodified */
        assert_true(it->epoch == EPOCH);
        assert_true(t->count < 64);
        t->positions[t->count] = it->position;
        t->publishers[t->count] = who;
        t->seqs[t->count++] = it->seq;
    }
}

/* Replica sends e of publisher who at position in a DELIVER_TOTAL; check: what the runtime's
 * verification said (cln_sub_receive_checked), or UNCHECKED (cln_sub_receive). */
static void send_total_event(struct tot *t, uint32_t replica, uint64_t position, uint32_t who,
                             const struct chan_event *e, uint8_t check)
{
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_DELIVER_TOTAL, .event_count = 1, .position = position};
    strcpy(m.tag, TAG);
    memcpy(m.publisher, t->pub[who], TRONE_KEY_LEN);
    chan_msg_put_header(&b, &m);
    chan_msg_put_event(&b, e);
    assert_int_equal(b.error, 0);
    uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX];
    assert_int_equal(cln_sub_verify_wanted(&t->sub, b.data, b.used, wanted), 1);
    struct cln_sub_output out;
    if (check == UNCHECKED) {
        assert_int_equal(cln_sub_receive(&t->sub, replica, b.data, b.used, 0, &out), 0);
    } else {
        assert_int_equal(wanted[0], 1); /* undecided: the runtime is asked to verify */
        assert_int_equal(
            cln_sub_receive_checked(&t->sub, replica, b.data, b.used, &check, 1, 0, &out), 0);
    }
    buf_close(&b);
    tot_output(t, &out);
}

/* Replica sends a DELIVER_TOTAL with one event of publisher who (seq) at position; tweak
 * alters the payload (an honest payload has tweak == who). */
static void send_total_ex(struct tot *t, uint32_t replica, uint64_t position, uint32_t who,
                          uint64_t seq, uint8_t tweak)
{
    uint8_t payload[16];
    payload_of(payload, EPOCH, seq, tweak);
    struct chan_event e = {.epoch = EPOCH,
                           .seq = seq,
                           .time_us = seq * 10,
                           .payload = payload,
                           .payload_size = sizeof(payload)};
    send_total_event(t, replica, position, who, &e, UNCHECKED);
}

static void send_total(struct tot *t, uint32_t replica, uint64_t position, uint32_t who,
                       uint64_t seq)
{
    send_total_ex(t, replica, position, who, seq, (uint8_t)who);
}

/* The agreed sequence used below: position p -> (publisher, seq). */
static const uint32_t TOT_WHO[8] = {0, 1, 0, 0, 1, 1, 0, 1};
static const uint64_t TOT_SEQ[8] = {1, 1, 2, 3, 2, 3, 4, 4};

/* Replica sends a DELIVER_TOTAL with one event of publisher who (seq) at position, signed by
 * who's key (PKS), then its payload's last byte set to tweak (honest: tweak == who); check:
 * what the runtime's verification said (cln_sub_receive_checked), or UNCHECKED. */
static void send_total_signed(struct tot *t, uint32_t replica, uint64_t position, uint32_t who,
                              uint64_t seq, uint8_t tweak, uint8_t check)
{
    uint8_t payload[16], sig[CHAN_AUTH_PKS_SIZE];
    payload_of(payload, EPOCH, seq, (uint8_t)who);
    struct chan_event e = {.epoch = EPOCH,
                           .seq = seq,
                           .time_us = seq * 10,
                           .payload = payload,
                           .payload_size = sizeof(payload)};
    chan_auth_sign(sig, t->sk[who], TAG, &e);
    e.auth = sig;
    e.auth_size = sizeof(sig);
    payload[15] = tweak;
    send_total_event(t, replica, position, who, &e, check);
}

/* CFT with PKS or PKE: a position is decided only on a copy its publisher signed and f+1
 * replicas (1 and 2) sent, with or without the channel's publisher list (the signature does
 * not cover the position), so a lying replica (0) that alters a payload, signs an event with a
 * key it made up, or moves an event makes no subscriber deliver it. Checked by the core itself
 * and with the runtime's verdicts. */
static void test_total_cft_pks_forged_copy(void **state)
{
    (void)state;
    static const char *classes[] = {"cft,total,pks", "cft,total,pke"};
    for (uint32_t k = 0; k < 2; k++) {
        for (uint32_t variant = 0; variant < 3; variant++) {
            bool runtime = variant == 1;
            bool listed = variant == 2;
            struct tot t;
            tot_make(&t, classes[k]);
            if (listed) {
                struct brk_class cls;
                assert_int_equal(brk_class_parse(&cls, classes[k], NULL, 0), 0);
                cln_sub_close(&t.sub);
                struct cln_sub_config cfg = {.n = 4, .f = 1, .gap_wait_us = GAP_US, .window = 16};
                assert_int_equal(cln_sub_init(&t.sub, &cfg), 0);
                assert_int_equal(cln_sub_channel_add(&t.sub, TAG, &cls,
                                                     (const uint8_t(*)[TRONE_KEY_LEN])t.pub, 2),
                                 0);
            }
            uint8_t bad = runtime ? (uint8_t)CLN_SUB_CHECK_INVALID : (uint8_t)UNCHECKED;
            uint8_t good = runtime ? (uint8_t)CLN_SUB_CHECK_VALID : (uint8_t)UNCHECKED;
            uint32_t who = TOT_WHO[0];
            send_total_signed(&t, 0, 1, who, TOT_SEQ[0], 9, bad); /* altered */
            send_total_signed(&t, 3, 1, who, TOT_SEQ[0], 9, bad);
            assert_int_equal(t.count, 0); /* even from f+1 replicas */
            send_total_signed(&t, 1, 1, who, TOT_SEQ[0], (uint8_t)who, good);
            assert_int_equal(t.count, 0); /* listed or not: one replica could move it */
            send_total_signed(&t, 2, 1, who, TOT_SEQ[0], (uint8_t)who, good);
            assert_int_equal(t.count, 1);
            assert_true(t.positions[0] == 1 && t.seqs[0] == TOT_SEQ[0]);
            if (!listed) {
                /* Position 2 from replica 0 alone, well signed by a key it made up. */
                uint8_t seed[32];
                memset(seed, 77, sizeof(seed));
                assert_int_equal(crypto_sign_seed_keypair(t.pub[1], t.sk[1], seed), 0);
                send_total_signed(&t, 0, 2, 1, TOT_SEQ[1], 1, good);
                assert_int_equal(t.count, 1);
            }
            cln_sub_close(&t.sub);
        }
    }
}

static void expect_total(const struct tot *t, uint64_t first_position, uint32_t count)
{
    assert_int_equal(t->count, count);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t p = first_position + i;
        assert_true(t->positions[i] == p);
        assert_int_equal(t->publishers[i], TOT_WHO[p - 1]);
        assert_true(t->seqs[i] == TOT_SEQ[p - 1]);
    }
}

/* CFT: the first copy of each position is delivered, in position order, across publishers;
 * duplicates from other replicas are dropped. */
static void test_total_cft_first_copy(void **state)
{
    (void)state;
    struct tot t;
    tot_make(&t, "cft,total");
    send_total(&t, 0, 1, TOT_WHO[0], TOT_SEQ[0]);
    send_total(&t, 1, 1, TOT_WHO[0], TOT_SEQ[0]);
    send_total(&t, 1, 3, TOT_WHO[2], TOT_SEQ[2]); /* early: waits for 2 */
    expect_total(&t, 1, 1);
    send_total(&t, 0, 2, TOT_WHO[1], TOT_SEQ[1]);
    expect_total(&t, 1, 3);
    send_total(&t, 0, 3, TOT_WHO[2], TOT_SEQ[2]);
    expect_total(&t, 1, 3);
    cln_sub_close(&t.sub);
}

/* BFT: two subscribers hear the replicas in different orders, with a Byzantine replica (3)
 * that alters a payload, swaps two positions and invents one; both deliver exactly the agreed
 * sequence, and nothing of replica 3's alone. */
static void test_total_bft_same_sequence(void **state)
{
    (void)state;
    struct tot a;
    struct tot b;
    tot_make(&a, "bft,total,pks");
    tot_make(&b, "bft,total,pks");
    /* Subscriber a: the Byzantine copies arrive first. */
    send_total_ex(&a, 3, 1, TOT_WHO[0], TOT_SEQ[0], 9); /* altered payload */
    send_total(&a, 3, 2, TOT_WHO[2], TOT_SEQ[2]);       /* swapped with 3 */
    send_total(&a, 3, 3, TOT_WHO[1], TOT_SEQ[1]);
    for (uint32_t p = 1; p <= 8; p++) {
        send_total(&a, 0, p, TOT_WHO[p - 1], TOT_SEQ[p - 1]);
    }
    assert_int_equal(a.count, 0); /* one correct copy is not enough */
    for (uint32_t p = 1; p <= 8; p++) {
        send_total(&a, 1, p, TOT_WHO[p - 1], TOT_SEQ[p - 1]);
    }
    expect_total(&a, 1, 8);
    /* Subscriber b: the Byzantine replica names the wrong publisher; replica 2 runs ahead
     * (its later positions wait, decided, for the earlier ones), then replica 1. */
    for (uint32_t p = 1; p <= 8; p++) {
        send_total(&b, 3, p, 1 - TOT_WHO[p - 1], TOT_SEQ[p - 1]);
        send_total(&b, 2, p, TOT_WHO[p - 1], TOT_SEQ[p - 1]);
    }
    assert_int_equal(b.count, 0);
    send_total(&b, 1, 1, TOT_WHO[0], TOT_SEQ[0]);
    expect_total(&b, 1, 1);
    send_total(&b, 1, 3, TOT_WHO[2], TOT_SEQ[2]);
    send_total(&b, 0, 3, TOT_WHO[2], TOT_SEQ[2]);
    expect_total(&b, 1, 1); /* 3 is decided but waits for 2 */
    for (uint32_t p = 2; p <= 8; p++) {
        send_total(&b, 1, p, TOT_WHO[p - 1], TOT_SEQ[p - 1]);
    }
    expect_total(&b, 1, 8);
    for (uint32_t i = 0; i < 8; i++) {
        assert_true(a.positions[i] == b.positions[i] && a.seqs[i] == b.seqs[i] &&
                    a.publishers[i] == b.publishers[i]);
    }
    assert_int_equal(a.gaps + b.gaps, 0);
    cln_sub_close(&a.sub);
    cln_sub_close(&b.sub);
}

/* A missing position is waited for, then reported as a gap; the stream starts at the lowest
 * decided position and ignores earlier ones afterwards. */
static void test_total_gap_and_start(void **state)
{
    (void)state;
    struct tot t;
    tot_make(&t, "bft,total");
    send_total(&t, 0, 4, TOT_WHO[3], TOT_SEQ[3]);
    send_total(&t, 1, 4, TOT_WHO[3], TOT_SEQ[3]);
    expect_total(&t, 4, 1);
    send_total(&t, 0, 2, TOT_WHO[1], TOT_SEQ[1]);
    send_total(&t, 1, 2, TOT_WHO[1], TOT_SEQ[1]);
    expect_total(&t, 4, 1); /* before the start: ignored */
    send_total(&t, 0, 6, TOT_WHO[5], TOT_SEQ[5]);
    send_total(&t, 2, 6, TOT_WHO[5], TOT_SEQ[5]);
    expect_total(&t, 4, 1);
    struct cln_sub_output out;
    assert_int_equal(cln_sub_tick(&t.sub, GAP_US - 1, &out), 0);
    tot_output(&t, &out);
    assert_int_equal(t.gaps, 0);
    assert_int_equal(cln_sub_tick(&t.sub, GAP_US, &out), 0);
    tot_output(&t, &out);
    assert_int_equal(t.gaps, 1);
    assert_true(t.gap_position == 5 && t.gap_count == 1);
    assert_int_equal(t.count, 2);
    assert_true(t.positions[1] == 6 && t.seqs[1] == TOT_SEQ[5]);
    cln_sub_close(&t.sub);
}

/* Holes that waited together are skipped together: seqs 2 and 4 are missing, 3 and 5 were
 * decided at the same time; one gap_wait later both holes go. Timing a hole from when it
 * became the head cost one gap_wait per hole, and under steady losses the subscriber fell
 * behind for good (found by trone-sim --events, seed 6268 of --model bft). */
static void test_gap_holes_wait_together(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft", false, 0);
    send(&x, 0, 1, 0);
    send(&x, 0, 3, 100);
    send(&x, 0, 5, 100);
    assert_int_equal(x.deadline, 100 + GAP_US);
    tick(&x, 100 + GAP_US);
    assert_int_equal(x.gaps, 2);
    assert_int_equal(x.gap_seq, 4);
    assert_int_equal(x.delivered_count, 3);
    assert_int_equal(x.delivered[2], (uint64_t)EPOCH * 1000 + 5);
    assert_int_equal(x.deadline, UINT64_MAX);
    fx_close(&x);
}

/* BFT, stream start: a Byzantine replica (3) holds back seq 1 and sends the real seq 2 at
 * once, so seq 2 is decided (3 and 0 agree) while seq 1 has one correct copy. The stream must
 * start at seq 1 and wait for it: starting at seq 2 used to drop seq 1 as a replay although
 * every correct replica delivered it (found by trone-sim --events, seed 68). */
static void test_bft_start_outrun(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 0);
    send(&x, 0, 1, 0);
    send(&x, 3, 2, 0);
    send(&x, 0, 2, 0);
    assert_int_equal(x.delivered_count, 0);
    send(&x, 1, 1, 10);
    expect_seqs(&x, 1, 2);
    send(&x, 1, 2, 10);
    send(&x, 2, 1, 10);
    send(&x, 2, 2, 10);
    expect_seqs(&x, 1, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* PKS with a known publisher, stream start: the Byzantine replica's early copy of the real,
 * validly signed seq 2 is decided but does not start the stream on its own word; the correct
 * replicas' seq 1 then comes first (found by trone-sim --events, seed 121). */
static void test_pks_start_outrun(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    send(&x, 3, 2, 0);
    assert_int_equal(x.delivered_count, 0);
    assert_int_equal(x.deadline, GAP_US); /* it starts on its own after gap_wait at worst */
    send(&x, 0, 1, 5);
    expect_seqs(&x, 1, 2);
    send(&x, 0, 2, 5);
    send(&x, 1, 1, 5);
    expect_seqs(&x, 1, 2);
    assert_int_equal(x.deadline, UINT64_MAX);
    fx_close(&x);
}

/* A stream that only one replica feeds (joined mid-stream, the others slow) still starts:
 * after gap_wait, at its lowest held seq; and f+1 replicas vouching start it at once. */
static void test_start_vouched_or_timer(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,pks", true, 0);
    send(&x, 2, 40, 100);
    assert_int_equal(x.delivered_count, 0);
    tick(&x, 99 + GAP_US);
    assert_int_equal(x.delivered_count, 0);
    tick(&x, 100 + GAP_US);
    expect_seqs(&x, 40, 1);
    fx_close(&x);
    fx_make(&x, "bft,pks", true, 0);
    send(&x, 2, 40, 100);
    send(&x, 1, 40, 100);
    expect_seqs(&x, 40, 1);
    fx_close(&x);
}

/* CFT, publisher restart: the subscriber followed epoch EPOCH; the new epoch's seq 3 arrives
 * first from a replica that re-attached to us late (it forwards from the middle), its seqs 1
 * and 2 then from another. The new stream starts at seq 1: starting at the first copy (3)
 * dropped 1 and 2 as replays (found by trone-sim --events, seed 353 of --model mixed). */
static void test_cft_new_epoch_starts_at_one(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft", false, 0);
    send(&x, 0, 1, 0);
    send(&x, 0, 2, 0);
    expect_seqs(&x, 1, 2);
    send_ex(&x, 2, x.pk, x.sk, EPOCH + 1, 3, 0, 10);
    assert_int_equal(x.delivered_count, 2);
    send_ex(&x, 0, x.pk, x.sk, EPOCH + 1, 1, 0, 20);
    send_ex(&x, 0, x.pk, x.sk, EPOCH + 1, 2, 0, 20);
    assert_int_equal(x.delivered_count, 5);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(x.delivered[2 + i], (uint64_t)(EPOCH + 1) * 1000 + 1 + i);
    }
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* BFT, window: a correct replica's copy of seq 6 comes while 6 is beyond the window (the
 * stream waits at a hole, seq 2) and is dropped; the second correct replica's copy moves the
 * window. The first one's vote was kept, so 6 is decided by the two: dropping the vote with
 * the bytes left it undecided for good (found by trone-sim --scenario events-window-votes). */
static void test_window_keeps_votes(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft", false, 4);
    send(&x, 0, 1, 0);
    send(&x, 1, 1, 0);
    for (uint64_t seq = 3; seq <= 6; seq++) {
        send(&x, 0, seq, 0); /* 6 is beyond the window 2..5 */
    }
    for (uint64_t seq = 3; seq <= 6; seq++) {
        send(&x, 1, seq, 0); /* 6 moves the window, skipping the hole at 2 */
    }
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 2);
    assert_int_equal(x.delivered_count, 5);
    assert_int_equal(x.delivered[4], (uint64_t)EPOCH * 1000 + 6);
    fx_close(&x);
}

/* ---- Replay of a durable channel ---- */

/* Replay from `start` (FROM) asked of every replica. */
static void replay_begin(struct fx *x, uint64_t start)
{
    assert_int_equal(cln_sub_replay(&x->sub, 0, CHAN_START_FROM, start), 0);
    for (uint32_t r = 0; r < 4; r++) {
        cln_sub_replay_expect(&x->sub, 0, r);
    }
}

/* Replica sends REPLAY: the publisher's stream follows from first (0: REPLAY END). */
static void replay_notice(struct fx *x, uint32_t replica, uint64_t first, uint64_t now)
{
    struct buf b = {0};
    struct chan_msg m = {.type = CHAN_MSG_REPLAY};
    strcpy(m.tag, TAG);
    if (first == 0) {
        m.flags = CHAN_REPLAY_END;
    } else {
        memcpy(m.publisher, x->pk, TRONE_KEY_LEN);
        m.epoch = EPOCH;
        m.first = first;
    }
    chan_msg_put_header(&b, &m);
    assert_int_equal(b.error, 0);
    struct cln_sub_output out;
    assert_int_equal(cln_sub_receive(&x->sub, replica, b.data, b.used, now, &out), 0);
    buf_close(&b);
    fx_output(x, &out);
}

static void send_range(struct fx *x, uint32_t replica, uint64_t first, uint64_t last, uint64_t now)
{
    for (uint64_t seq = first; seq <= last; seq++) {
        send(x, replica, seq, now);
    }
}

/* CFT: a replica whose copy starts late (it holds 5..8 only) and replays first must not make
 * the stream start at 5: it waits until the other replaying replicas announced it or passed
 * it, then starts at the lowest first position announced. */
static void test_replay_start_lowest_announced(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,durable", false, 0);
    replay_begin(&x, 0);
    replay_notice(&x, 1, 5, 0);
    send_range(&x, 1, 5, 8, 0);
    replay_notice(&x, 1, 0, 0);
    replay_notice(&x, 2, 0, 0); /* replicas 2 and 3 hold nothing */
    replay_notice(&x, 3, 0, 0);
    tick(&x, 10 * GAP_US); /* replica 0 has not reached the stream: no start, however long */
    assert_int_equal(x.delivered_count, 0);
    assert_int_equal(x.gaps, 0);
    replay_notice(&x, 0, 1, 10 * GAP_US);
    send_range(&x, 0, 1, 4, 10 * GAP_US);
    expect_seqs(&x, 1, 8);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* CFT, different holes: replica 1 lacks 3..5 and replays faster than replica 0, which lacks
 * nothing. Neither the window slide (replica 1 beyond the window) nor the gap timer may skip
 * 3..5 while replica 0 replays and has not passed them; a hole nobody holds (11) is reported
 * once every replay passed it. */
static void test_replay_different_holes(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,durable", false, 4);
    replay_begin(&x, 0);
    replay_notice(&x, 2, 0, 0);
    replay_notice(&x, 3, 0, 0);
    replay_notice(&x, 0, 1, 0);
    send_range(&x, 0, 1, 1, 0);
    replay_notice(&x, 1, 1, 0);
    send_range(&x, 1, 1, 2, 0);
    send_range(&x, 1, 6, 10, 0); /* beyond the window of 4: must not slide over 3..5 */
    send_range(&x, 1, 12, 12, 0);
    replay_notice(&x, 1, 0, 0);
    expect_seqs(&x, 1, 2);
    tick(&x, 10 * GAP_US);
    assert_int_equal(x.gaps, 0);
    send_range(&x, 0, 2, 10, 10 * GAP_US); /* replica 0 catches up: nothing was lost */
    expect_seqs(&x, 1, 10);
    assert_int_equal(x.gaps, 0);
    send_range(&x, 0, 12, 12, 10 * GAP_US); /* 11 is held by nobody */
    replay_notice(&x, 0, 0, 10 * GAP_US);
    tick(&x, 20 * GAP_US);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 11);
    assert_int_equal(x.gap_count, 1);
    assert_int_equal(x.delivered_count, 11);
    assert_int_equal(x.delivered[10], (uint64_t)EPOCH * 1000 + 12);
    fx_close(&x);
}

/* BFT: a Byzantine replica announces a lower first position (1) than the correct ones (3:
 * retention removed 1..2) and then sends nothing and never finishes. The stream starts at
 * the f+1st lowest announced position (3), reports 1..2 as no longer kept, and delivers the
 * replayed events on f+1 matching copies without waiting for the liar. */
static void test_replay_bft_low_claim_never_sends(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "bft,durable", false, 0);
    replay_begin(&x, 0);
    replay_notice(&x, 3, 1, 0); /* the liar */
    for (uint32_t r = 0; r < 3; r++) {
        replay_notice(&x, r, 3, 0);
    }
    send_range(&x, 0, 3, 6, 0);
    send_range(&x, 1, 3, 6, 0);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 1);
    assert_int_equal(x.gap_count, 2);
    assert_int_equal(x.gap_reason, CLN_SUB_GAP_RETENTION);
    assert_int_equal(x.delivered_count, 4);
    assert_int_equal(x.delivered[0], (uint64_t)EPOCH * 1000 + 3);
    /* A hole (8) held by no correct replica is reported despite the liar that "may" send it. */
    send_range(&x, 0, 9, 9, 0);
    send_range(&x, 2, 9, 9, 0);
    send_range(&x, 0, 7, 7, 0);
    send_range(&x, 2, 7, 7, 0);
    for (uint32_t r = 0; r < 3; r++) {
        replay_notice(&x, r, 0, 0);
    }
    tick(&x, 2 * GAP_US);
    assert_int_equal(x.gaps, 2);
    assert_int_equal(x.gap_seq, 8);
    assert_int_equal(x.delivered_count, 6);
    fx_close(&x);
}

/* CFT: --from 10 where every replica keeps only from 15: one retention gap 11..14 as soon as
 * every replay announced or passed the stream, then 15. A replica announcing a first position
 * below the requested start cannot move the start below it. */
static void test_replay_retention_gap(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,durable", false, 0);
    replay_begin(&x, 10);
    replay_notice(&x, 0, 15, 0);
    replay_notice(&x, 1, 15, 0);
    replay_notice(&x, 2, 0, 0);
    assert_int_equal(x.gaps, 0); /* replica 3 may still hold 11..14 */
    replay_notice(&x, 3, 0, 0);
    assert_int_equal(x.gaps, 1);
    assert_int_equal(x.gap_seq, 11);
    assert_int_equal(x.gap_count, 4);
    assert_int_equal(x.gap_reason, CLN_SUB_GAP_RETENTION);
    send(&x, 1, 15, 0);
    expect_seqs(&x, 15, 1);
    fx_close(&x);

    fx_make(&x, "cft,durable", false, 0);
    replay_begin(&x, 10);
    replay_notice(&x, 0, 2, 0);
    for (uint32_t r = 1; r < 4; r++) {
        replay_notice(&x, r, 0, 0);
    }
    send_range(&x, 0, 2, 12, 0);
    expect_seqs(&x, 11, 2);
    assert_int_equal(x.gaps, 0);
    fx_close(&x);
}

/* A replica that goes away while replaying no longer holds a stream back. */
static void test_replay_replica_down(void **state)
{
    (void)state;
    struct fx x;
    fx_make(&x, "cft,durable", false, 0);
    replay_begin(&x, 0);
    replay_notice(&x, 1, 1, 0);
    send_range(&x, 1, 1, 3, 0);
    for (uint32_t r = 1; r < 4; r++) {
        replay_notice(&x, r, 0, 0);
    }
    assert_int_equal(x.delivered_count, 0); /* replica 0 may hold lower positions */
    struct cln_sub_output out;
    assert_int_equal(cln_sub_replica_down(&x.sub, 0, UINT32_MAX, 5, &out), 0);
    fx_output(&x, &out);
    expect_seqs(&x, 1, 3);
    fx_close(&x);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cft_first_copy_dedup),
        cmocka_unit_test(test_bft_byzantine_replica),
        cmocka_unit_test(test_bft_mute_replica),
        cmocka_unit_test(test_pks_one_copy),
        cmocka_unit_test(test_pks_unlisted_needs_votes),
        cmocka_unit_test(test_gap_timeout),
        cmocka_unit_test(test_epoch_change),
        cmocka_unit_test(test_epoch_left),
        cmocka_unit_test(test_window_slide),
        cmocka_unit_test(test_window_byzantine),
        cmocka_unit_test(test_bft_reordered_first_seq),
        cmocka_unit_test(test_pks_first_copy_out_of_order),
        cmocka_unit_test(test_start_forged_low_and_lone_sender),
        cmocka_unit_test(test_pks_unlisted_made_up_key),
        cmocka_unit_test(test_pks_publisher_not_in_list),
        cmocka_unit_test(test_pke_unlisted_made_up_key),
        cmocka_unit_test(test_bad_input_and_notice),
        cmocka_unit_test(test_total_cft_first_copy),
        cmocka_unit_test(test_total_cft_pks_forged_copy),
        cmocka_unit_test(test_total_bft_same_sequence),
        cmocka_unit_test(test_total_gap_and_start),
        cmocka_unit_test(test_gap_holes_wait_together),
        cmocka_unit_test(test_bft_start_outrun),
        cmocka_unit_test(test_pks_start_outrun),
        cmocka_unit_test(test_start_vouched_or_timer),
        cmocka_unit_test(test_cft_new_epoch_starts_at_one),
        cmocka_unit_test(test_window_keeps_votes),
        cmocka_unit_test(test_checked_invalid_never_decides),
        cmocka_unit_test(test_checked_valid_decides_like_verified),
        cmocka_unit_test(test_checked_bft_forged_never_delivered),
        cmocka_unit_test(test_verify_wanted),
        cmocka_unit_test(test_replay_start_lowest_announced),
        cmocka_unit_test(test_replay_different_holes),
        cmocka_unit_test(test_replay_bft_low_claim_never_sends),
        cmocka_unit_test(test_replay_retention_gap),
        cmocka_unit_test(test_replay_replica_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
