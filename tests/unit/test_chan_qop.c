/* test_chan_qop.c: the HA/PKE primitives (chan_qop.h): key wrapping for subscribers (and
 * only them), the HA MAC and what it covers, PKE encryption and tamper detection, and the
 * strict envelope decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan/chan_qop.h"

#define TAG "alpha.secret"

/* ---- Fixture ---- */

struct fixture {
    uint8_t pub_pk[TRONE_KEY_LEN]; /* the publisher */
    uint8_t pub_sk[TRONE_SECRET_KEY_LEN];
    uint8_t sub_pk[2][TRONE_KEY_LEN]; /* two subscribers */
    uint8_t sub_sk[2][TRONE_SECRET_KEY_LEN];
    uint8_t out_pk[TRONE_KEY_LEN]; /* a client that is not a subscriber */
    uint8_t out_sk[TRONE_SECRET_KEY_LEN];
    uint8_t key[CHAN_QOP_KEY_SIZE];
    uint8_t key_id[CHAN_QOP_KEY_ID_SIZE];
};

static void keypair(uint8_t pk[TRONE_KEY_LEN], uint8_t sk[TRONE_SECRET_KEY_LEN], uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

static void fixture_make(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    keypair(f->pub_pk, f->pub_sk, 1);
    keypair(f->sub_pk[0], f->sub_sk[0], 2);
    keypair(f->sub_pk[1], f->sub_sk[1], 3);
    keypair(f->out_pk, f->out_sk, 4);
    memset(f->key, 0x5a, sizeof(f->key));
    chan_qop_key_id(f->key_id, f->key);
}

/* A block wrapping f->key for both subscribers. */
static size_t block_make(const struct fixture *f, uint8_t *block)
{
    block[0] = 2;
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t eph[32];
        memset(eph, (int)(0x10 + i), sizeof(eph));
        assert_int_equal(
            chan_qop_wrap(block + 1 + i * CHAN_QOP_ENTRY_SIZE, f->key, f->sub_pk[i], eph), 0);
    }
    return 1 + 2 * CHAN_QOP_ENTRY_SIZE;
}

/* ---- Scenarios ---- */

/* Each subscriber unwraps K from the block; the entry is a standard sealed box that
 * crypto_box_seal_open opens; a client without an entry gets TRONE_ENOENT and no key. */
static void test_wrap_unwrap(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t block[CHAN_QOP_BLOCK_MAX];
    size_t size = block_make(&f, block);
    assert_int_equal(chan_qop_block_check(block, size), 2);
    for (uint32_t i = 0; i < 2; i++) {
        uint8_t key[CHAN_QOP_KEY_SIZE] = {0};
        assert_int_equal(chan_qop_unwrap(key, block, size, f.sub_sk[i], f.key_id), 0);
        assert_memory_equal(key, f.key, sizeof(key));
    }
    uint8_t x_pk[32], x_sk[32], opened[CHAN_QOP_KEY_SIZE];
    assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(x_pk, f.sub_pk[1]), 0);
    assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(x_sk, f.sub_sk[1]), 0);
    const uint8_t *entry = block + 1 + CHAN_QOP_ENTRY_SIZE + CHAN_QOP_HINT_SIZE;
    assert_int_equal(crypto_box_seal_open(opened, entry, CHAN_QOP_SEALED_SIZE, x_pk, x_sk), 0);
    assert_memory_equal(opened, f.key, sizeof(opened));

    uint8_t key[CHAN_QOP_KEY_SIZE];
    memset(key, 0xee, sizeof(key));
    assert_int_equal(chan_qop_unwrap(key, block, size, f.out_sk, f.key_id), TRONE_ENOENT);
    assert_int_equal(chan_qop_unwrap(key, block, size, f.pub_sk, f.key_id), TRONE_ENOENT);
    for (size_t i = 0; i < sizeof(key); i++) {
        assert_int_equal(key[i], 0xee);
    }
}

/* A non-subscriber that copies a subscriber's hint still cannot open its sealed key; an entry
 * that opens to a key of another id is refused (TRONE_EAUTH). */
static void test_unwrap_forgeries(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t block[CHAN_QOP_BLOCK_MAX];
    size_t size = block_make(&f, block);
    uint8_t key[CHAN_QOP_KEY_SIZE];
    /* The outsider's hint on subscriber 0's sealed key. */
    chan_qop_hint(block + 1, f.out_pk);
    assert_int_equal(chan_qop_unwrap(key, block, size, f.out_sk, f.key_id), TRONE_ENOENT);
    /* A wrap of another key under the right id is refused after opening. */
    uint8_t other[CHAN_QOP_KEY_SIZE], eph[32];
    memset(other, 0x33, sizeof(other));
    memset(eph, 0x44, sizeof(eph));
    assert_int_equal(chan_qop_wrap(block + 1, other, f.sub_pk[0], eph), 0);
    assert_int_equal(chan_qop_unwrap(key, block, size, f.sub_sk[0], f.key_id), TRONE_EAUTH);
    /* Flipping one byte of a sealed key makes it unopenable. */
    size = block_make(&f, block);
    block[1 + CHAN_QOP_ENTRY_SIZE + 40] ^= 1;
    assert_int_equal(chan_qop_unwrap(key, block, size, f.sub_sk[1], f.key_id), TRONE_ENOENT);
    /* A key that is not an Ed25519 point cannot be wrapped for. */
    uint8_t bad[TRONE_KEY_LEN];
    memset(bad, 0, sizeof(bad));
    bad[0] = 2; /* a small-order / non-canonical encoding */
    uint8_t entry[CHAN_QOP_ENTRY_SIZE];
    int rc = chan_qop_wrap(entry, f.key, bad, eph);
    assert_true(rc == 0 || rc == TRONE_EINVAL);
}

/* The MAC verifies under K; an altered payload, seq, epoch, time, tag or publisher, or another
 * key, or a wrong size is refused. */
static void test_ha_mac(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t payload[64];
    memset(payload, 'p', sizeof(payload));
    uint8_t mac[CHAN_QOP_MAC_SIZE];
    struct chan_event e = {
        .epoch = 9, .seq = 4, .time_us = 123, .payload = payload, .payload_size = sizeof(payload)};
    chan_qop_mac(mac, f.key, TAG, f.pub_pk, &e);
    e.auth = mac;
    e.auth_size = sizeof(mac);
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), 0);

    payload[10] ^= 1;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    payload[10] ^= 1;
    e.seq = 5;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.seq = 4;
    e.epoch = 10;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.epoch = 9;
    e.time_us = 124;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.time_us = 123;
    assert_int_equal(chan_qop_mac_verify(f.key, "alpha.other", f.pub_pk, &e), TRONE_EAUTH);
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.out_pk, &e), TRONE_EAUTH);
    uint8_t wrong[CHAN_QOP_KEY_SIZE];
    memset(wrong, 0x5b, sizeof(wrong));
    assert_int_equal(chan_qop_mac_verify(wrong, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.payload_size--;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.payload_size++;
    e.auth_size = CHAN_QOP_MAC_SIZE - 1;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), TRONE_EAUTH);
    e.auth_size = CHAN_QOP_MAC_SIZE;
    assert_int_equal(chan_qop_mac_verify(f.key, TAG, f.pub_pk, &e), 0);
}

/* Builds a PKE envelope (header, no block) with the body encrypted; returns its size. */
static size_t pke_make(const struct fixture *f, uint8_t *wire, const char *plain, uint64_t seq)
{
    wire[0] = 0;
    memcpy(wire + 1, f->key_id, CHAN_QOP_KEY_ID_SIZE);
    size_t plain_size = strlen(plain);
    chan_qop_seal(wire + CHAN_QOP_HEADER_SIZE, (const uint8_t *)plain, plain_size, f->key, TAG,
                  f->pub_pk, 9, seq, 123, wire, CHAN_QOP_HEADER_SIZE);
    return CHAN_QOP_HEADER_SIZE + plain_size + CHAN_QOP_TAG_SIZE;
}

/* PKE: the ciphertext does not contain the plaintext, decrypts under K to it, and any change
 * (a ciphertext or header byte, the seq, another key) is refused. */
static void test_pke_seal_open(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    const char *plain = "MARKER-secret-temperature-42";
    uint8_t wire[256];
    size_t size = pke_make(&f, wire, plain, 7);
    assert_null(memmem(wire, size, "MARKER", 6));
    struct chan_qop_envelope env;
    assert_int_equal(chan_qop_envelope_read(wire, size, &env), 0);
    assert_null(env.block);
    assert_int_equal(env.body_size, strlen(plain) + CHAN_QOP_TAG_SIZE);
    uint8_t out[256];
    assert_int_equal(chan_qop_open(out, &env, f.key, TAG, f.pub_pk, 9, 7, 123, wire), 0);
    assert_memory_equal(out, plain, strlen(plain));

    assert_int_equal(chan_qop_open(out, &env, f.key, TAG, f.pub_pk, 9, 8, 123, wire), TRONE_EAUTH);
    assert_int_equal(chan_qop_open(out, &env, f.key, TAG, f.out_pk, 9, 7, 123, wire), TRONE_EAUTH);
    uint8_t wrong[CHAN_QOP_KEY_SIZE];
    memset(wrong, 1, sizeof(wrong));
    assert_int_equal(chan_qop_open(out, &env, wrong, TAG, f.pub_pk, 9, 7, 123, wire), TRONE_EAUTH);
    for (size_t i = 0; i < size; i++) {
        wire[i] ^= 0x80;
        struct chan_qop_envelope tampered;
        if (chan_qop_envelope_read(wire, size, &tampered) == 0) {
            assert_int_equal(chan_qop_open(out, &tampered, f.key, TAG, f.pub_pk, 9, 7, 123, wire),
                             TRONE_EAUTH);
        }
        wire[i] ^= 0x80;
    }
}

/* The envelope decoder accepts exactly the layout: unknown flags, a short header, a bad block
 * count or size are refused; a body of any size (HA) is accepted. */
static void test_envelope_strict(void **state)
{
    (void)state;
    struct fixture f;
    fixture_make(&f);
    uint8_t wire[2048];
    struct chan_qop_envelope env;
    memset(wire, 0, sizeof(wire));
    assert_int_equal(chan_qop_envelope_read(wire, CHAN_QOP_HEADER_SIZE, &env), 0);
    assert_int_equal(env.body_size, 0);
    assert_int_equal(chan_qop_envelope_read(wire, CHAN_QOP_HEADER_SIZE - 1, &env), TRONE_EBADMSG);
    wire[0] = 0x02;
    assert_int_equal(chan_qop_envelope_read(wire, 20, &env), TRONE_EBADMSG);
    wire[0] = CHAN_QOP_FLAG_KEYS;
    uint8_t block[CHAN_QOP_BLOCK_MAX];
    size_t block_size = block_make(&f, block);
    wire[CHAN_QOP_HEADER_SIZE] = (uint8_t)block_size;
    wire[CHAN_QOP_HEADER_SIZE + 1] = (uint8_t)(block_size >> 8);
    memcpy(wire + CHAN_QOP_HEADER_SIZE + 2, block, block_size);
    size_t header = CHAN_QOP_HEADER_SIZE + 2 + block_size;
    assert_int_equal(chan_qop_envelope_read(wire, header + 5, &env), 0);
    assert_int_equal(env.block_size, block_size);
    assert_int_equal(env.header_size, header);
    assert_int_equal(env.body_size, 5);
    assert_int_equal(chan_qop_envelope_read(wire, header - 1, &env), TRONE_EBADMSG);
    wire[CHAN_QOP_HEADER_SIZE + 2] = 3; /* count says 3 entries, the size holds 2 */
    assert_int_equal(chan_qop_envelope_read(wire, header + 5, &env), TRONE_EBADMSG);
    wire[CHAN_QOP_HEADER_SIZE + 2] = 0;
    assert_int_equal(chan_qop_envelope_read(wire, header + 5, &env), TRONE_EBADMSG);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_unwrap),     cmocka_unit_test(test_unwrap_forgeries),
        cmocka_unit_test(test_ha_mac),          cmocka_unit_test(test_pke_seal_open),
        cmocka_unit_test(test_envelope_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
