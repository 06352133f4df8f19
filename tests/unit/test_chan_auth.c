/* test_chan_auth.c: what an event's PKS signature covers, and the BFT match digest
 * (chan_auth.h): every field is covered, forgeries and wrong sizes are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_auth.h"

/* ---- Fixture ---- */

struct fixture {
    uint8_t pk[TRONE_KEY_LEN];
    uint8_t sk[TRONE_SECRET_KEY_LEN];
    uint8_t other_pk[TRONE_KEY_LEN];
    uint8_t other_sk[TRONE_SECRET_KEY_LEN];
    uint8_t payload[100];
    uint8_t sig[CHAN_AUTH_PKS_SIZE];
    struct chan_event e;
};

static void fixture_make(struct fixture *f)
{
    uint8_t seed[32];
    memset(f, 0, sizeof(*f));
    memset(seed, 7, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(f->pk, f->sk, seed), 0);
    memset(seed, 8, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(f->other_pk, f->other_sk, seed), 0);
    for (size_t i = 0; i < sizeof(f->payload); i++) {
        f->payload[i] = (uint8_t)i;
    }
    f->e = (struct chan_event){.epoch = 1000, .seq = 5, .time_us = 77, .payload = f->payload,
                               .payload_size = sizeof(f->payload)};
    chan_auth_sign(f->sig, f->sk, "alpha.events", &f->e);
    f->e.auth = f->sig;
    f->e.auth_size = sizeof(f->sig);
}

/* ---- Scenarios ---- */

/* A signed event verifies under its channel and publisher. */
static void test_sign_verify(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &f.e), 0);
}

/* Changing any covered field, the channel or the publisher breaks the signature. */
static void test_every_field_covered(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    struct chan_event e = f.e;
    e.seq++;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    e = f.e;
    e.epoch++;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    e = f.e;
    e.time_us++;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    e = f.e;
    e.payload_size--;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    f.payload[3] ^= 1;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &f.e), TRONE_EAUTH);
    f.payload[3] ^= 1;
    assert_int_equal(chan_auth_verify("alpha.event", f.pk, &f.e), TRONE_EAUTH);
    assert_int_equal(chan_auth_verify("alpha.events", f.other_pk, &f.e), TRONE_EAUTH);
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &f.e), 0);
}

/* A signature by another key, a truncated or missing authenticator are refused. */
static void test_forged_and_wrong_size(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t forged[CHAN_AUTH_PKS_SIZE];
    struct chan_event e = f.e;
    e.auth = NULL;
    e.auth_size = 0;
    chan_auth_sign(forged, f.other_sk, "alpha.events", &e);
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    e.auth = forged;
    e.auth_size = sizeof(forged);
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
    assert_int_equal(chan_auth_verify("alpha.events", f.other_pk, &e), 0);
    e = f.e;
    e.auth_size = CHAN_AUTH_PKS_SIZE - 1;
    assert_int_equal(chan_auth_verify("alpha.events", f.pk, &e), TRONE_EAUTH);
}

/* The signed input has the documented fixed layout. */
static void test_input_layout(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t in[CHAN_AUTH_INPUT_SIZE];
    chan_auth_input(in, "abc", f.pk, &f.e);
    assert_memory_equal(in, "trone-event\0", CHAN_AUTH_LABEL_SIZE);
    assert_int_equal(in[CHAN_AUTH_LABEL_SIZE], 3);
    assert_memory_equal(in + CHAN_AUTH_LABEL_SIZE + 1, "abc\0", 4);
    size_t off = CHAN_AUTH_LABEL_SIZE + 1 + TRONE_TAG_MAX;
    assert_memory_equal(in + off, f.pk, TRONE_KEY_LEN);
    assert_int_equal(in[off + TRONE_KEY_LEN + 8], 5); /* seq, little-endian */
    uint8_t hash[TRONE_HASH_LEN];
    crypto_generichash(hash, sizeof(hash), f.payload, sizeof(f.payload), NULL, 0);
    assert_memory_equal(in + CHAN_AUTH_INPUT_SIZE - TRONE_HASH_LEN, hash, TRONE_HASH_LEN);
}

/* Match digests are equal for equal copies and differ when the payload or auth differ. */
static void test_digest(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t a[TRONE_HASH_LEN], b[TRONE_HASH_LEN];
    chan_auth_digest(a, "alpha.events", f.pk, &f.e);
    chan_auth_digest(b, "alpha.events", f.pk, &f.e);
    assert_memory_equal(a, b, sizeof(a));
    struct chan_event e = f.e;
    e.auth_size = 0;
    chan_auth_digest(b, "alpha.events", f.pk, &e);
    assert_memory_not_equal(a, b, sizeof(a));
    f.payload[0] ^= 1;
    chan_auth_digest(b, "alpha.events", f.pk, &f.e);
    assert_memory_not_equal(a, b, sizeof(a));
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_every_field_covered),
        cmocka_unit_test(test_forged_and_wrong_size),
        cmocka_unit_test(test_input_layout),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
