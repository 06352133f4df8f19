/* test_noise.c: unit tests of src/core/noise.c, the Noise KK and IK handshakes and the
 * transport cipher. Two handshake states talk in memory; known answers come from Debian's
 * python3-dissononce (see tests/interop), so these tests do not only check us against us. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#include "core/noise.h"

/* ----- Fixture ----- */

#define PROLOGUE "trone-interop-v1"

/* Handshake hashes that dissononce computed with the keys of fixture_keys (the same as
 * tests/interop/noise_interop.c) and PROLOGUE, payloads "hello from initiator/responder". */
static const char known_h_kk[] = "4571787464d200d1b6f4f2ba7911b3bbaaec287e1043115d57c66f8558906642"
                                 "e431b18e3803c3bd138c4bbf53ef6048767a29899a9134304328bf4295a56e71";
static const char known_h_ik[] = "2d4e322047e17f3bb27454270f54d5e33886fe96577fc4df4c620e729a593bf6"
                                 "f5b173771fb7a1d9e881229ac4a6e8e659bfdc0681b18d70ebadc2ac6e4f5641";

struct keys {
    uint8_t s_i[NOISE_KEY_LEN], s_r[NOISE_KEY_LEN], e_i[NOISE_KEY_LEN], e_r[NOISE_KEY_LEN];
    uint8_t p_i[NOISE_KEY_LEN], p_r[NOISE_KEY_LEN];
};

struct pair {
    struct noise_handshake i;
    struct noise_handshake r;
    uint8_t message[NOISE_MESSAGE_MAX];
    size_t message_size;
    uint8_t payload[NOISE_MESSAGE_MAX];
    size_t payload_size;
};

static void fixture_keys(struct keys *k)
{
    for (unsigned n = 0; n < NOISE_KEY_LEN; n++) {
        k->s_i[n] = (uint8_t)(n + 1);
        k->s_r[n] = (uint8_t)(n + 33);
        k->e_i[n] = (uint8_t)(n + 65);
        k->e_r[n] = (uint8_t)(n + 97);
    }
    assert_int_equal(crypto_scalarmult_base(k->p_i, k->s_i), 0);
    assert_int_equal(crypto_scalarmult_base(k->p_r, k->s_r), 0);
}

/* ----- Helpers ----- */

static void pair_init(struct pair *p, const struct keys *k, enum noise_pattern pattern)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(noise_handshake_init(&p->i, pattern, true, (const uint8_t *)PROLOGUE,
                                          strlen(PROLOGUE), k->s_i, k->p_r, k->e_i),
                     0);
    const uint8_t *rs = pattern == NOISE_PATTERN_KK ? k->p_i : NULL;
    assert_int_equal(noise_handshake_init(&p->r, pattern, false, (const uint8_t *)PROLOGUE,
                                          strlen(PROLOGUE), k->s_r, rs, k->e_r),
                     0);
}

static int pair_write(struct pair *p, struct noise_handshake *from, const char *payload)
{
    return noise_handshake_write(from, (const uint8_t *)payload, strlen(payload), p->message,
                                 sizeof(p->message), &p->message_size);
}

static int pair_read(struct pair *p, struct noise_handshake *to)
{
    return noise_handshake_read(to, p->message, p->message_size, p->payload, sizeof(p->payload),
                                &p->payload_size);
}

/* Runs both messages and checks the payloads arrive. */
static void pair_handshake(struct pair *p)
{
    assert_int_equal(pair_write(p, &p->i, "hello from initiator"), 0);
    assert_false(noise_handshake_done(&p->i));
    assert_int_equal(pair_read(p, &p->r), 0);
    assert_int_equal(p->payload_size, strlen("hello from initiator"));
    assert_memory_equal(p->payload, "hello from initiator", p->payload_size);
    assert_int_equal(pair_write(p, &p->r, "hello from responder"), 0);
    assert_true(noise_handshake_done(&p->r));
    assert_int_equal(pair_read(p, &p->i), 0);
    assert_int_equal(p->payload_size, strlen("hello from responder"));
    assert_memory_equal(p->payload, "hello from responder", p->payload_size);
    assert_true(noise_handshake_done(&p->i));
    assert_memory_equal(noise_handshake_hash(&p->i), noise_handshake_hash(&p->r), NOISE_HASH_LEN);
}

static void assert_hash_is(const struct noise_handshake *hs, const char *hex)
{
    uint8_t want[NOISE_HASH_LEN];
    assert_int_equal(sodium_hex2bin(want, sizeof(want), hex, strlen(hex), NULL, NULL, NULL), 0);
    assert_memory_equal(noise_handshake_hash(hs), want, NOISE_HASH_LEN);
}

/* Sends text with the next nonce of from and checks to decrypts it with its next nonce. */
static void transport_roundtrip(struct noise_cipher *from, struct noise_cipher *to,
                                const char *text)
{
    uint8_t sealed[128];
    uint8_t opened[128];
    size_t size = strlen(text);
    assert_int_equal(
        noise_cipher_encrypt(from, from->n, NULL, 0, (const uint8_t *)text, size, sealed), 0);
    assert_int_equal(noise_cipher_decrypt(to, to->n, NULL, 0, sealed, size + NOISE_TAG_LEN, opened),
                     0);
    assert_memory_equal(opened, text, size);
    from->n++;
    to->n++;
}

/* ----- Scenarios ----- */

/* KK completes, matches dissononce's handshake hash, and both transport directions work. */
static void test_kk_handshake_and_transport(void **state)
{
    static struct pair p;
    struct keys k;
    struct noise_cipher i_send, i_recv, r_send, r_recv;
    fixture_keys(&k);
    pair_init(&p, &k, NOISE_PATTERN_KK);
    pair_handshake(&p);
    assert_hash_is(&p.i, known_h_kk);
    noise_handshake_split(&p.i, &i_send, &i_recv);
    noise_handshake_split(&p.r, &r_send, &r_recv);
    for (int n = 0; n < 3; n++) {
        transport_roundtrip(&i_send, &r_recv, "from initiator");
        transport_roundtrip(&r_send, &i_recv, "from responder");
    }
    noise_handshake_close(&p.i);
    noise_handshake_close(&p.r);
}

/* IK completes, the responder learns the initiator's static key, and h matches dissononce. */
static void test_ik_handshake_learns_static(void **state)
{
    static struct pair p;
    struct keys k;
    struct noise_cipher i_send, i_recv, r_send, r_recv;
    fixture_keys(&k);
    pair_init(&p, &k, NOISE_PATTERN_IK);
    assert_null(noise_handshake_remote_static(&p.r));
    pair_handshake(&p);
    assert_hash_is(&p.r, known_h_ik);
    assert_memory_equal(noise_handshake_remote_static(&p.r), k.p_i, NOISE_KEY_LEN);
    noise_handshake_split(&p.i, &i_send, &i_recv);
    noise_handshake_split(&p.r, &r_send, &r_recv);
    transport_roundtrip(&i_send, &r_recv, "ik one way");
    transport_roundtrip(&r_send, &i_recv, "ik the other way");
}

/* Flipping any single byte of message 1 makes the responder refuse it. */
static void test_tampered_message_rejected(void **state)
{
    static struct pair p;
    struct keys k;
    fixture_keys(&k);
    for (int pattern = NOISE_PATTERN_KK; pattern <= NOISE_PATTERN_IK; pattern++) {
        pair_init(&p, &k, (enum noise_pattern)pattern);
        assert_int_equal(pair_write(&p, &p.i, "payload"), 0);
        size_t size = p.message_size;
        for (size_t at = 0; at < size; at++) {
            pair_init(&p, &k, (enum noise_pattern)pattern);
            assert_int_equal(pair_write(&p, &p.i, "payload"), 0);
            p.message[at] ^= 0x20;
            int rc = pair_read(&p, &p.r);
            /* A flipped e may become a low-order point (EPROTO); otherwise the tag fails. */
            assert_true(rc == TRONE_EAUTH || rc == TRONE_EPROTO);
            assert_false(noise_handshake_done(&p.r));
            /* A failed handshake stays failed. */
            assert_int_equal(pair_write(&p, &p.r, ""), TRONE_EPROTO);
        }
    }
}

/* A responder that expects another initiator key (KK), or an initiator that expects another
 * responder key, fails the handshake. */
static void test_wrong_static_key_rejected(void **state)
{
    static struct pair p;
    struct keys k;
    fixture_keys(&k);
    uint8_t other[NOISE_KEY_LEN];
    memcpy(other, k.p_r, sizeof(other));
    other[0] ^= 1; /* another valid-looking key */
    pair_init(&p, &k, NOISE_PATTERN_KK);
    assert_int_equal(noise_handshake_init(&p.r, NOISE_PATTERN_KK, false, (const uint8_t *)PROLOGUE,
                                          strlen(PROLOGUE), k.s_r, other, k.e_r),
                     0);
    assert_int_equal(pair_write(&p, &p.i, ""), 0);
    assert_int_equal(pair_read(&p, &p.r), TRONE_EAUTH);

    pair_init(&p, &k, NOISE_PATTERN_IK);
    assert_int_equal(noise_handshake_init(&p.i, NOISE_PATTERN_IK, true, (const uint8_t *)PROLOGUE,
                                          strlen(PROLOGUE), k.s_i, other, k.e_i),
                     0);
    assert_int_equal(pair_write(&p, &p.i, ""), 0);
    assert_int_equal(pair_read(&p, &p.r), TRONE_EAUTH);
}

/* Different prologues make the handshake fail: the prologue is authenticated. */
static void test_prologue_mismatch_rejected(void **state)
{
    static struct pair p;
    struct keys k;
    fixture_keys(&k);
    pair_init(&p, &k, NOISE_PATTERN_IK);
    assert_int_equal(noise_handshake_init(&p.r, NOISE_PATTERN_IK, false,
                                          (const uint8_t *)"trone-interop-v2", 16, k.s_r, NULL,
                                          k.e_r),
                     0);
    assert_int_equal(pair_write(&p, &p.i, ""), 0);
    assert_int_equal(pair_read(&p, &p.r), TRONE_EAUTH);
}

/* Truncated, oversized and out-of-turn messages get errors, never a crash. */
static void test_bad_sizes_and_turns(void **state)
{
    static struct pair p;
    struct keys k;
    fixture_keys(&k);
    pair_init(&p, &k, NOISE_PATTERN_IK);
    assert_int_equal(pair_read(&p, &p.i), TRONE_EINVAL);       /* not the peer's turn */
    assert_int_equal(pair_write(&p, &p.r, "x"), TRONE_EINVAL); /* not our turn */
    assert_int_equal(pair_write(&p, &p.i, ""), 0);
    assert_int_equal(p.message_size, NOISE_IK_MESSAGE1_MIN);
    p.message_size--;
    assert_int_equal(pair_read(&p, &p.r), TRONE_EBADMSG);
    pair_init(&p, &k, NOISE_PATTERN_KK);
    static uint8_t huge[NOISE_MESSAGE_MAX + 1];
    assert_int_equal(noise_handshake_read(&p.r, huge, sizeof(huge), p.payload, sizeof(p.payload),
                                          &p.payload_size),
                     TRONE_EBADMSG);
    pair_init(&p, &k, NOISE_PATTERN_KK);
    assert_int_equal(noise_handshake_write(&p.i, huge, NOISE_MESSAGE_MAX, p.message,
                                           sizeof(p.message), &p.message_size),
                     TRONE_ETOOBIG);
    /* The largest payload that fits still works. */
    assert_int_equal(noise_handshake_write(&p.i, huge, NOISE_MESSAGE_MAX - NOISE_KK_MESSAGE1_MIN,
                                           p.message, sizeof(p.message), &p.message_size),
                     0);
    assert_int_equal(p.message_size, NOISE_MESSAGE_MAX);
    assert_int_equal(pair_read(&p, &p.r), 0);
}

/* An all-zero (low-order) ephemeral key from the peer is refused: DH output would be zero. */
static void test_low_order_ephemeral_rejected(void **state)
{
    static struct pair p;
    struct keys k;
    fixture_keys(&k);
    pair_init(&p, &k, NOISE_PATTERN_KK);
    assert_int_equal(pair_write(&p, &p.i, ""), 0);
    memset(p.message, 0, NOISE_KEY_LEN);
    assert_int_equal(pair_read(&p, &p.r), TRONE_EPROTO);
    assert_int_equal(pair_write(&p, &p.r, ""), TRONE_EPROTO);
}

/* Bad arguments to init are refused: KK needs rs on both sides, the IK responder must not
 * have it, and the pattern must be known. */
static void test_init_arguments(void **state)
{
    struct noise_handshake hs;
    struct keys k;
    fixture_keys(&k);
    assert_int_equal(noise_handshake_init(&hs, NOISE_PATTERN_KK, true, NULL, 0, k.s_i, NULL, k.e_i),
                     TRONE_EINVAL);
    assert_int_equal(
        noise_handshake_init(&hs, NOISE_PATTERN_IK, false, NULL, 0, k.s_r, k.p_i, k.e_r),
        TRONE_EINVAL);
    assert_int_equal(
        noise_handshake_init(&hs, (enum noise_pattern)7, true, NULL, 0, k.s_i, k.p_r, k.e_i),
        TRONE_EINVAL);
    assert_int_equal(
        noise_handshake_init(&hs, NOISE_PATTERN_IK, true, NULL, 0, k.s_i, k.p_r, k.e_i), 0);
}

/* The transport cipher: wrong nonce, tampering and the reserved nonce 2^64-1 are refused. */
static void test_cipher_rules(void **state)
{
    struct noise_cipher c;
    memset(&c, 0, sizeof(c));
    uint8_t sealed[64 + NOISE_TAG_LEN];
    uint8_t opened[64];
    const uint8_t text[5] = "hello";
    assert_int_equal(noise_cipher_encrypt(&c, 0, NULL, 0, text, 5, sealed), TRONE_EINVAL);
    memset(c.k, 7, sizeof(c.k));
    c.has_key = true;
    assert_int_equal(noise_cipher_encrypt(&c, 5, NULL, 0, text, 5, sealed), 0);
    assert_int_equal(noise_cipher_decrypt(&c, 5, NULL, 0, sealed, 5 + NOISE_TAG_LEN, opened), 0);
    assert_memory_equal(opened, text, 5);
    assert_int_equal(noise_cipher_decrypt(&c, 6, NULL, 0, sealed, 5 + NOISE_TAG_LEN, opened),
                     TRONE_EAUTH);
    sealed[2] ^= 1;
    assert_int_equal(noise_cipher_decrypt(&c, 5, NULL, 0, sealed, 5 + NOISE_TAG_LEN, opened),
                     TRONE_EAUTH);
    assert_int_equal(noise_cipher_decrypt(&c, 5, NULL, 0, sealed, NOISE_TAG_LEN - 1, opened),
                     TRONE_EBADMSG);
    assert_int_equal(noise_cipher_encrypt(&c, UINT64_MAX, NULL, 0, text, 5, sealed), TRONE_EREPLAY);
    assert_int_equal(
        noise_cipher_decrypt(&c, UINT64_MAX, NULL, 0, sealed, 5 + NOISE_TAG_LEN, opened),
        TRONE_EREPLAY);
    /* The largest nonce below the reserved one still works. */
    assert_int_equal(noise_cipher_encrypt(&c, UINT64_MAX - 1, NULL, 0, text, 5, sealed), 0);
    assert_int_equal(
        noise_cipher_decrypt(&c, UINT64_MAX - 1, NULL, 0, sealed, 5 + NOISE_TAG_LEN, opened), 0);
    assert_int_equal(noise_cipher_encrypt(&c, 0, NULL, 0, text, NOISE_MESSAGE_MAX, sealed),
                     TRONE_ETOOBIG);
    noise_cipher_close(&c);
    assert_false(c.has_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kk_handshake_and_transport),
        cmocka_unit_test(test_ik_handshake_learns_static),
        cmocka_unit_test(test_tampered_message_rejected),
        cmocka_unit_test(test_wrong_static_key_rejected),
        cmocka_unit_test(test_prologue_mismatch_rejected),
        cmocka_unit_test(test_bad_sizes_and_turns),
        cmocka_unit_test(test_low_order_ephemeral_rejected),
        cmocka_unit_test(test_init_arguments),
        cmocka_unit_test(test_cipher_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
