/* test_cln_qop.c: HA and PKE end to end through the real cores: the publisher core (cln_pub)
 * builds PUBLISH messages, the test forwards their events as DELIVER messages of n replicas,
 * the subscriber core (cln_sub) decides them and the QoP core (cln_qop) checks, decrypts and
 * delivers. Covers: identical streams for recipients, no plaintext in what replicas carry
 * (PKE), a non-recipient reads nothing, a late subscriber gets the key from the repeated
 * block, re-keying when the subscriber set changes, and forged or tampered events refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_msg.h"
#include "chan/chan_qop.h"
#include "client/cln_pub.h"
#include "client/cln_pub_qop.h"
#include "client/cln_qop.h"
#include "client/cln_sub.h"

#define EPOCH 1000000u
#define TAG "qop.chan"
#define N 4u
#define F 1u

/* ---- Fixture ---- */

struct subscriber {
    uint8_t pk[TRONE_KEY_LEN];
    uint8_t sk[TRONE_SECRET_KEY_LEN];
    struct cln_sub sub;
    struct cln_qop qop;
    char got[64][64]; /* delivered payloads, as strings */
    uint32_t got_count;
    uint64_t gaps; /* events reported missing */
};

struct fixture {
    struct cln_pub pub;
    uint8_t pub_pk[TRONE_KEY_LEN];
    int ch;
    struct subscriber subs[3]; /* 0, 1 recipients; 2 an outsider */
    struct buf deliver;
    struct buf wire; /* every DELIVER built, as a replica would store or forward it */
};

static void keypair(uint8_t pk[TRONE_KEY_LEN], uint8_t sk[TRONE_SECRET_KEY_LEN], uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void subscriber_init(struct subscriber *s, uint8_t fill, const char *cls_text)
{
    memset(s, 0, sizeof(*s));
    keypair(s->pk, s->sk, fill);
    struct cln_sub_config sc = {.n = N, .f = F, .gap_wait_us = 1000};
    assert_int_equal(cln_sub_init(&s->sub, &sc), 0);
    struct cln_qop_config qc = {.hold_us = 50000};
    memcpy(qc.secret_key, s->sk, sizeof(qc.secret_key));
    assert_int_equal(cln_qop_init(&s->qop, &qc), 0);
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, cls_text, NULL, 0), 0);
    int idx = cln_sub_channel_add(&s->sub, TAG, &cls, NULL, 0);
    assert_int_equal(idx, 0);
    assert_int_equal(cln_qop_channel_set(&s->qop, 0, cls.method), 0);
}

static void fixture_init(struct fixture *f, const char *cls_text)
{
    memset(f, 0, sizeof(*f));
    struct cln_pub_config pc = {.n = N, .f = F, .epoch = EPOCH};
    keypair(pc.public_key, pc.secret_key, 1);
    memcpy(f->pub_pk, pc.public_key, TRONE_KEY_LEN);
    memset(pc.seed, 0x77, sizeof(pc.seed));
    assert_int_equal(cln_pub_init(&f->pub, &pc), 0);
    struct brk_class cls;
    assert_int_equal(brk_class_parse(&cls, cls_text, NULL, 0), 0);
    f->ch = cln_pub_channel_open(&f->pub, TAG, &cls);
    assert_int_equal(f->ch, 0);
    for (uint32_t r = 0; r < N; r++) {
        cln_pub_replica_up(&f->pub, r, 0);
    }
    for (uint32_t i = 0; i < 3; i++) {
        subscriber_init(&f->subs[i], (uint8_t)(10 + i), cls_text);
    }
    buf_init(&f->deliver, TRONE_MESSAGE_MAX);
    buf_init(&f->wire, TRONE_MESSAGE_MAX);
}

static void fixture_close(struct fixture *f)
{
    cln_pub_close(&f->pub);
    for (uint32_t i = 0; i < 3; i++) {
        cln_sub_close(&f->subs[i].sub);
        cln_qop_close(&f->subs[i].qop);
    }
    buf_close(&f->deliver);
    buf_close(&f->wire);
}

/* ---- Helpers ---- */

static void recipients(struct fixture *f, uint32_t count, int expect)
{
    uint8_t keys[2][TRONE_KEY_LEN];
    for (uint32_t i = 0; i < count; i++) {
        memcpy(keys[i], f->subs[i].pk, TRONE_KEY_LEN);
    }
    assert_int_equal(cln_pub_channel_recipients(&f->pub, (uint32_t)f->ch, keys, count, 0), expect);
}

static void collect(struct subscriber *s, const struct cln_sub_output *out)
{
    for (uint32_t i = 0; i < out->item_count; i++) {
        const struct cln_sub_item *it = &out->items[i];
        if (it->kind == CLN_SUB_GAP) {
            s->gaps += it->count;
            continue;
        }
        if (it->kind != CLN_SUB_EVENT) {
            continue;
        }
        assert_true(s->got_count < 64);
        assert_true(it->payload_size < 64);
        memcpy(s->got[s->got_count], it->payload, it->payload_size);
        s->got[s->got_count][it->payload_size] = '\0';
        s->got_count++;
    }
}

/* Feeds one DELIVER from replica r to the subscribers in mask. */
static void feed(struct fixture *f, uint32_t r, unsigned mask, uint64_t now_us)
{
    for (uint32_t i = 0; i < 3; i++) {
        if ((mask & (1u << i)) == 0) {
            continue;
        }
        struct subscriber *s = &f->subs[i];
        struct cln_sub_output out1, out2;
        assert_int_equal(
            cln_sub_receive(&s->sub, r, f->deliver.data, f->deliver.used, now_us, &out1), 0);
        assert_int_equal(cln_qop_filter(&s->qop, &out1, now_us, &out2), 0);
        collect(s, &out2);
    }
}

/* Turns the publisher's next PUBLISH for replica r into a DELIVER (the replica's job); an
 * optional tamper hook changes one event first. Returns false when nothing was pending. */
typedef void (*tamper_fn)(struct chan_event *e, uint8_t *scratch);

static bool relay(struct fixture *f, uint32_t r, tamper_fn tamper)
{
    const uint8_t *data;
    size_t size;
    int rc = cln_pub_next_message(&f->pub, r, 0, &data, &size);
    assert_true(rc >= 0);
    if (rc == 0) {
        return false;
    }
    struct buf_reader rd;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&rd, data, size, &m), 0);
    struct chan_msg d = {
        .type = CHAN_MSG_DELIVER, .replica_time_us = 1, .event_count = m.event_count};
    memcpy(d.tag, m.tag, sizeof(d.tag));
    memcpy(d.publisher, f->pub_pk, TRONE_KEY_LEN);
    buf_reset(&f->deliver);
    chan_msg_put_header(&f->deliver, &d);
    static uint8_t scratch[CHAN_PAYLOAD_MAX + CHAN_AUTH_MAX];
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&rd, &e);
        assert_int_equal(rd.error, 0);
        if (tamper != NULL) {
            tamper(&e, scratch);
        }
        chan_msg_put_event(&f->deliver, &e);
    }
    assert_int_equal(buf_reader_finish(&rd), 0);
    chan_msg_events_end(&f->deliver, 0, m.event_count);
    assert_int_equal(f->deliver.error, 0);
    buf_put_bytes(&f->wire, data, size);                       /* what the replica received ... */
    buf_put_bytes(&f->wire, f->deliver.data, f->deliver.used); /* ... and forwards */
    return true;
}

static void publish(struct fixture *f, const char *text, uint64_t now_us)
{
    assert_true(cln_pub_publish(&f->pub, (uint32_t)f->ch, (const uint8_t *)text,
                                (uint32_t)strlen(text), 5000, now_us) > 0);
}

/* Relays everything pending from every replica to the subscribers in mask. */
static void relay_all(struct fixture *f, unsigned mask, tamper_fn tamper, uint64_t now_us)
{
    for (uint32_t r = 0; r < N; r++) {
        for (uint32_t k = 0; k < 16 && relay(f, r, tamper); k++) {
            feed(f, r, mask, now_us);
        }
    }
}

static void tick(struct fixture *f, uint32_t i, uint64_t now_us)
{
    struct subscriber *s = &f->subs[i];
    struct cln_sub_output out1, out2;
    assert_int_equal(cln_sub_tick(&s->sub, now_us, &out1), 0);
    assert_int_equal(cln_qop_filter(&s->qop, &out1, now_us, &out2), 0);
    collect(s, &out2);
    assert_int_equal(cln_qop_tick(&s->qop, now_us, &out2), 0);
    collect(s, &out2);
}

/* ---- Scenarios ---- */

/* Recipients deliver exactly the published stream on HA and PKE channels, CFT and BFT; the
 * outsider delivers nothing and learns no key. Under PKE nothing a replica carries contains
 * the plaintext; under HA (no confidentiality) it does, so the check can fail. */
static void run_stream(const char *cls_text, bool confidential)
{
    struct fixture f;
    fixture_init(&f, cls_text);
    assert_int_equal(cln_pub_publish(&f.pub, (uint32_t)f.ch, (const uint8_t *)"early", 5, 1, 0),
                     TRONE_EAUTH);
    recipients(&f, 2, 1);
    recipients(&f, 2, 0); /* the same set again: no new key */
    char want[10][32];
    for (uint32_t i = 0; i < 10; i++) {
        snprintf(want[i], sizeof(want[i]), "MARKER-%u", i);
        publish(&f, want[i], 0);
    }
    relay_all(&f, 7u, NULL, 0);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(f.subs[i].got_count, 10);
        for (uint32_t k = 0; k < 10; k++) {
            assert_string_equal(f.subs[i].got[k], want[k]);
        }
        assert_int_equal(f.subs[i].qop.counts.rejected, 0);
        assert_int_equal(f.subs[i].qop.counts.keys_learned, 1);
    }
    assert_int_equal(f.subs[2].got_count, 0);
    assert_int_equal(f.subs[2].qop.counts.keys_learned, 0);
    assert_int_equal(f.subs[2].qop.counts.not_recipient, 1);
    assert_int_equal(f.subs[2].gaps, 10);
    bool leaked = memmem(f.wire.data, f.wire.used, "MARKER", 6) != NULL;
    assert_true(leaked == !confidential);
    fixture_close(&f);
}

static void test_ha_cft(void **state)
{
    (void)state;
    run_stream("cft,ha", false);
}

static void test_ha_bft(void **state)
{
    (void)state;
    run_stream("bft,ha", false);
}

static void test_pke_cft(void **state)
{
    (void)state;
    run_stream("cft,pke", true);
}

static void test_pke_bft(void **state)
{
    (void)state;
    run_stream("bft,pke", true);
}

/* A subscriber that sees only events after the block holds them, and delivers them once the
 * block comes again (the publisher repeats it after CLN_PUB_QOP_REPEAT_US); events it could
 * never read become gaps after hold_us. */
static void test_late_subscriber(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, "cft,pke");
    recipients(&f, 2, 1);
    publish(&f, "first-with-block", 0);
    relay_all(&f, 1u, NULL, 0); /* subscriber 1 misses it */
    publish(&f, "second", 10);
    publish(&f, "third", 20);
    relay_all(&f, 3u, NULL, 20);
    assert_int_equal(f.subs[0].got_count, 3);
    assert_int_equal(f.subs[1].got_count, 0); /* held: no key yet */
    assert_int_equal(f.subs[1].qop.held_count, 2);
    publish(&f, "fourth-with-block-again", CLN_PUB_QOP_REPEAT_US + 30);
    relay_all(&f, 3u, NULL, 40);
    assert_int_equal(f.subs[1].got_count, 3);
    assert_string_equal(f.subs[1].got[0], "second");
    assert_string_equal(f.subs[1].got[2], "fourth-with-block-again");
    assert_int_equal(f.subs[1].qop.held_count, 0);

    /* A fresh subscriber that misses every block: held events expire as gaps. */
    publish(&f, "fifth", CLN_PUB_QOP_REPEAT_US + 50);
    struct subscriber *late = &f.subs[1];
    cln_sub_close(&late->sub);
    cln_qop_close(&late->qop);
    subscriber_init(late, 11, "cft,pke");
    relay_all(&f, 2u, NULL, 100);
    assert_int_equal(late->got_count, 0);
    assert_int_equal(cln_qop_deadline(&late->qop), 100 + 50000);
    tick(&f, 1, 100 + 50000);
    assert_int_equal(late->got_count, 0);
    assert_int_equal(late->gaps, 1);
    assert_int_equal(late->qop.counts.expired, 1);
    fixture_close(&f);
}

/* When the subscriber set changes the publisher makes a new key; a subscriber removed from
 * the set cannot read events of the new generation, the remaining one reads on. */
static void test_rekey(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, "bft,pke");
    recipients(&f, 2, 1);
    uint8_t id1[CHAN_QOP_KEY_ID_SIZE];
    memcpy(id1, f.pub.channels[f.ch].qop->key_id, sizeof(id1));
    publish(&f, "gen1", 0);
    relay_all(&f, 3u, NULL, 0);
    recipients(&f, 1, 1); /* subscriber 1 is no longer authorized */
    assert_memory_not_equal(id1, f.pub.channels[f.ch].qop->key_id, sizeof(id1));
    assert_int_equal(f.pub.channels[f.ch].qop->generation, 2);
    publish(&f, "gen2-a", 10);
    publish(&f, "gen2-b", 20);
    relay_all(&f, 3u, NULL, 20);
    assert_int_equal(f.subs[0].got_count, 3);
    assert_string_equal(f.subs[0].got[2], "gen2-b");
    assert_int_equal(f.subs[1].got_count, 1);
    assert_string_equal(f.subs[1].got[0], "gen1");
    assert_int_equal(f.subs[1].gaps, 2);
    assert_int_equal(f.subs[1].qop.counts.not_recipient, 1);
    fixture_close(&f);
}

/* Tampering hooks: flip a payload byte (HA: MAC fails; PKE: signature, then AEAD), or set a
 * MAC made under another key. */
static void tamper_payload(struct chan_event *e, uint8_t *scratch)
{
    if (e->seq != 3) {
        return;
    }
    memcpy(scratch, e->payload, e->payload_size);
    scratch[e->payload_size - 1] ^= 1;
    e->payload = scratch;
}

static void tamper_mac(struct chan_event *e, uint8_t *scratch)
{
    if (e->seq != 3) {
        return;
    }
    uint8_t other[CHAN_QOP_KEY_SIZE];
    memset(other, 0x99, sizeof(other));
    uint8_t pk[TRONE_KEY_LEN], sk[TRONE_SECRET_KEY_LEN];
    keypair(pk, sk, 1);
    chan_qop_mac(scratch, other, TAG, pk, e);
    e->auth = scratch;
    e->auth_size = CHAN_QOP_MAC_SIZE;
}

/* CFT channels decide on the first copy; a copy altered on the way is refused end to end and
 * reported as a gap (HA: bad MAC, counted as rejected). Under PKE the signature check of the
 * subscriber core refuses it before it is decided, so the intact copy of another replica is
 * delivered. */
static void run_tamper(const char *cls_text, tamper_fn tamper, bool intact)
{
    struct fixture f;
    fixture_init(&f, cls_text);
    recipients(&f, 2, 1);
    for (uint32_t i = 0; i < 5; i++) {
        char text[16];
        snprintf(text, sizeof(text), "ev-%u", i);
        publish(&f, text, 0);
    }
    /* Replica 0 tampers, the others relay faithfully; replica 0 is heard first. */
    for (uint32_t k = 0; k < 16 && relay(&f, 0, tamper); k++) {
        feed(&f, 0, 1u, 0);
    }
    for (uint32_t r = 1; r < N; r++) {
        for (uint32_t k = 0; k < 16 && relay(&f, r, NULL); k++) {
            feed(&f, r, 1u, 0);
        }
    }
    struct subscriber *s = &f.subs[0];
    if (intact) {
        assert_int_equal(s->got_count, 5);
        assert_int_equal(s->qop.counts.rejected, 0);
    } else {
        assert_int_equal(s->got_count, 4);
        assert_int_equal(s->qop.counts.rejected, 1);
        assert_int_equal(s->gaps, 1);
        assert_string_equal(s->got[2], "ev-3");
    }
    fixture_close(&f);
}

/* The recipient a forged block is wrapped for (set by the fixture users below). */
static uint8_t forge_recipient[TRONE_KEY_LEN];

/* A replica's own key K' wrapped for the subscriber, an HA event "FORGED" under it, and the
 * event signed by the replica (it cannot sign as the publisher). */
static void tamper_block(struct chan_event *e, uint8_t *scratch)
{
    if (e->seq != 3) {
        return;
    }
    uint8_t key[CHAN_QOP_KEY_SIZE], eph[32], pk[TRONE_KEY_LEN], sk[TRONE_SECRET_KEY_LEN];
    memset(key, 0x66, sizeof(key));
    memset(eph, 0x67, sizeof(eph));
    keypair(pk, sk, 99); /* the Byzantine replica's identity */
    uint8_t *auth = scratch;
    uint8_t *wire = scratch + CHAN_AUTH_PKS_SIZE;
    size_t used = 0;
    wire[used++] = CHAN_QOP_FLAG_KEYS;
    chan_qop_key_id(wire + used, key);
    used += CHAN_QOP_KEY_ID_SIZE;
    uint16_t block_size = 1 + CHAN_QOP_ENTRY_SIZE;
    wire[used++] = (uint8_t)block_size;
    wire[used++] = (uint8_t)(block_size >> 8);
    wire[used++] = 1;
    assert_int_equal(chan_qop_wrap(wire + used, key, forge_recipient, eph), 0);
    used += CHAN_QOP_ENTRY_SIZE;
    memcpy(wire + used, "FORGED", 6);
    used += 6;
    e->payload = wire;
    e->payload_size = (uint32_t)used;
    chan_auth_sign(auth, sk, TAG, e);
    e->auth = auth;
    e->auth_size = CHAN_AUTH_PKS_SIZE;
}

/* A forged block (a replica's own key, signed by the replica) is refused: under CFT the copy
 * was decided first, so it becomes a rejected gap; under BFT its single vote decides nothing
 * and the publisher's event is delivered. The forged payload is never delivered. */
static void run_forged_block(const char *cls_text, bool bft)
{
    struct fixture f;
    fixture_init(&f, cls_text);
    memcpy(forge_recipient, f.subs[0].pk, TRONE_KEY_LEN);
    recipients(&f, 2, 1);
    for (uint32_t i = 0; i < 5; i++) {
        char text[16];
        snprintf(text, sizeof(text), "ev-%u", i);
        publish(&f, text, 0);
    }
    for (uint32_t k = 0; k < 16 && relay(&f, 0, tamper_block); k++) {
        feed(&f, 0, 1u, 0);
    }
    for (uint32_t r = 1; r < N; r++) {
        for (uint32_t k = 0; k < 16 && relay(&f, r, NULL); k++) {
            feed(&f, r, 1u, 0);
        }
    }
    struct subscriber *s = &f.subs[0];
    for (uint32_t i = 0; i < s->got_count; i++) {
        assert_string_not_equal(s->got[i], "FORGED");
    }
    assert_int_equal(s->got_count, bft ? 5 : 4);
    assert_int_equal(s->qop.counts.rejected, bft ? 0 : 1);
    assert_int_equal(s->qop.counts.keys_learned, 1);
    fixture_close(&f);
}

static void test_forged_block(void **state)
{
    (void)state;
    run_forged_block("cft,ha", false);
    run_forged_block("bft,ha", true);
    run_forged_block("bft,pke", true);
}

/* Under BFT a single replica that alters events changes nothing: its copies lack the f+1
 * votes (HA) or the publisher's signature (PKE); every event is delivered intact. */
static void test_bft_tamper(void **state)
{
    (void)state;
    run_tamper("bft,ha", tamper_payload, true);
    run_tamper("bft,ha", tamper_mac, true);
    run_tamper("bft,pke", tamper_payload, true);
}

static void test_tamper_ha(void **state)
{
    (void)state;
    run_tamper("cft,ha", tamper_payload, false);
    run_tamper("cft,ha", tamper_mac, false);
}

static void test_tamper_pke(void **state)
{
    (void)state;
    run_tamper("cft,pke", tamper_payload, true);
}

/* Publishing before the first recipient set fails with TRONE_EAUTH; a payload over
 * CHAN_QOP_BODY_MAX is refused; HA/PKE helpers refuse SI channels. */
static void test_publisher_errors(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, "cft,ha");
    assert_int_equal(cln_pub_publish(&f.pub, (uint32_t)f.ch, (const uint8_t *)"x", 1, 1, 0),
                     TRONE_EAUTH);
    recipients(&f, 2, 1);
    static uint8_t big[CHAN_QOP_BODY_MAX + 1];
    assert_int_equal(cln_pub_publish(&f.pub, (uint32_t)f.ch, big, sizeof(big), 1, 0),
                     TRONE_ETOOBIG);
    assert_true(cln_pub_publish(&f.pub, (uint32_t)f.ch, big, CHAN_QOP_BODY_MAX, 1, 0) > 0);
    struct brk_class si;
    brk_class_default(&si);
    int other = cln_pub_channel_open(&f.pub, "si.chan", &si);
    assert_true(other >= 0);
    uint8_t keys[1][TRONE_KEY_LEN];
    memcpy(keys[0], f.subs[0].pk, TRONE_KEY_LEN);
    assert_int_equal(cln_pub_channel_recipients(&f.pub, (uint32_t)other, keys, 1, 0), TRONE_EINVAL);
    fixture_close(&f);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ha_cft),           cmocka_unit_test(test_ha_bft),
        cmocka_unit_test(test_pke_cft),          cmocka_unit_test(test_pke_bft),
        cmocka_unit_test(test_late_subscriber),  cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_tamper_ha),        cmocka_unit_test(test_tamper_pke),
        cmocka_unit_test(test_publisher_errors), cmocka_unit_test(test_forged_block),
        cmocka_unit_test(test_bft_tamper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
