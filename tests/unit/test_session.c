/* test_session.c: unit tests of src/core/session.c. Two in-memory sessions exchange the bytes
 * of their `out` buffers; hostile variants tamper with, replay, reorder, drop or forge bytes
 * and check the exact error and that the victim session is FAILED for good. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/session.h"

/* ----- Fixture ----- */

#define REPLICAS 4u
#define HELLO_LEN 11u
#define FRAGMENT_MAX (NOISE_MESSAGE_MAX - NOISE_TAG_LEN - 1u)

struct identity {
    uint8_t pk[TRONE_KEY_LEN];
    uint8_t sk[TRONE_SECRET_KEY_LEN];
};

/* The cluster as the responder knows it: replica keys by id, and the allowed clients. */
struct world {
    struct identity replica[REPLICAS];
    struct identity client;
    struct identity stranger;
    uint32_t client_asks; /* client_allowed calls */
    bool client_refused;
};

static struct world world;

static void identity_make(struct identity *id, uint8_t seed_byte)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(id->pk, id->sk, seed), 0);
}

static int world_replica_key(void *ctx, uint32_t id, uint8_t ed_public[TRONE_KEY_LEN])
{
    struct world *w = ctx;
    if (id >= REPLICAS) {
        return TRONE_ENOENT;
    }
    memcpy(ed_public, w->replica[id].pk, TRONE_KEY_LEN);
    return 0;
}

static int world_client_allowed(void *ctx, const uint8_t ed_public[TRONE_KEY_LEN])
{
    struct world *w = ctx;
    w->client_asks++;
    if (w->client_refused || memcmp(ed_public, w->client.pk, TRONE_KEY_LEN) != 0) {
        return TRONE_EPERM;
    }
    return 0;
}

static int setup(void **state)
{
    assert_true(sodium_init() >= 0);
    memset(&world, 0, sizeof(world));
    for (uint8_t i = 0; i < REPLICAS; i++) {
        identity_make(&world.replica[i], (uint8_t)(i + 1));
    }
    identity_make(&world.client, 100);
    identity_make(&world.stranger, 200);
    return 0;
}

/* ----- Helpers ----- */

static const uint8_t seed_a[32] = {1, 2, 3};
static const uint8_t seed_b[32] = {4, 5, 6};

static void responder_start(struct sess *r, uint32_t self)
{
    struct sess_peer_lookup lookup = {&world, world_replica_key, world_client_allowed};
    assert_int_equal(
        sess_init_responder(r, world.replica[self].pk, world.replica[self].sk, &lookup, seed_b), 0);
}

static void replica_dial(struct sess *i, uint32_t self, uint32_t peer)
{
    assert_int_equal(sess_init_initiator(i, SESS_ROLE_REPLICA, self, world.replica[self].pk,
                                         world.replica[self].sk, peer, world.replica[peer].pk,
                                         seed_a),
                     0);
}

static void client_dial(struct sess *i, const struct identity *who, uint32_t peer)
{
    assert_int_equal(sess_init_initiator(i, SESS_ROLE_CLIENT, 0, who->pk, who->sk, peer,
                                         world.replica[peer].pk, seed_a),
                     0);
}

/* Moves everything `from` wrote into `to` and runs sess_next until it stops. Returns the last
 * sess_next result; copies the last message into last/last_size (if not NULL). */
static int deliver(struct sess *from, struct sess *to, uint8_t *last, size_t *last_size,
                   int *messages)
{
    int rc = sess_feed(to, from->out.data, from->out.used);
    buf_reset(&from->out);
    if (rc != 0) {
        return rc;
    }
    for (int n = 0; n < 1000; n++) {
        const uint8_t *msg = NULL;
        size_t size = 0;
        rc = sess_next(to, &msg, &size);
        if (rc <= 0) {
            return rc;
        }
        if (last != NULL) {
            memcpy(last, msg, size);
            *last_size = size;
        }
        if (messages != NULL) {
            (*messages)++;
        }
    }
    fail_msg("deliver did not stop");
    return -1;
}

/* Completes a handshake: hello and message 1, then message 2. */
static void handshake(struct sess *i, struct sess *r)
{
    assert_int_equal(deliver(i, r, NULL, NULL, NULL), 0);
    assert_true(sess_is_open(r));
    assert_int_equal(deliver(r, i, NULL, NULL, NULL), 0);
    assert_true(sess_is_open(i));
}

/* Sends msg from a to b and checks it arrives intact, feeding `chunk` bytes at a time. */
static void exchange(struct sess *a, struct sess *b, const uint8_t *msg, size_t size, size_t chunk)
{
    assert_int_equal(sess_send(a, msg, size), 0);
    int messages = 0;
    size_t got_size = 0;
    uint8_t *got = malloc(size + 1);
    assert_non_null(got);
    size_t total = a->out.used;
    for (size_t at = 0; at < total; at += chunk) {
        size_t n = total - at < chunk ? total - at : chunk;
        assert_int_equal(sess_feed(b, a->out.data + at, n), 0);
        for (int k = 0; k < 4; k++) {
            const uint8_t *m = NULL;
            size_t m_size = 0;
            int rc = sess_next(b, &m, &m_size);
            assert_true(rc >= 0);
            if (rc == 0) {
                break;
            }
            assert_int_equal(m_size, size);
            memcpy(got, m, m_size);
            got_size = m_size;
            messages++;
        }
    }
    buf_reset(&a->out);
    assert_int_equal(messages, 1);
    assert_int_equal(got_size, size);
    assert_memory_equal(got, msg, size);
    free(got);
}

static void open_replica_pair(struct sess *i, struct sess *r)
{
    replica_dial(i, 1, 2);
    responder_start(r, 2);
    handshake(i, r);
}

static void assert_failed(struct sess *s, int error)
{
    assert_int_equal(s->state, SESS_FAILED);
    assert_int_equal(s->error, error);
    const uint8_t *msg = NULL;
    size_t size = 0;
    /* Data after failure is refused with the same error. */
    assert_int_equal(sess_feed(s, (const uint8_t *)"x", 1), error);
    assert_int_equal(sess_next(s, &msg, &size), error);
    assert_int_equal(sess_send(s, (const uint8_t *)"x", 1), error);
}

/* Writes a transport frame into s->out with the sender's cipher: any flags, any nonce. */
static void forge_frame(struct sess *s, uint64_t nonce, uint8_t flags, size_t fragment)
{
    uint8_t *frame = buf_append(&s->out, 4 + 8 + 1 + fragment + NOISE_TAG_LEN);
    assert_non_null(frame);
    buf_store_u32(frame, (uint32_t)(8 + 1 + fragment + NOISE_TAG_LEN));
    buf_store_u64(frame + 4, nonce);
    frame[12] = flags;
    assert_int_equal(
        noise_cipher_encrypt(&s->send, nonce, NULL, 0, frame + 12, 1 + fragment, frame + 12), 0);
}

/* ----- Scenarios ----- */

/* Replicas: KK handshake, the responder learns who dialled, messages flow both ways. */
static void test_replica_kk_session(void **state)
{
    static struct sess i, r;
    open_replica_pair(&i, &r);
    assert_int_equal(r.role, SESS_ROLE_REPLICA);
    assert_int_equal(r.peer_replica, 1);
    assert_memory_equal(r.peer_key, world.replica[1].pk, TRONE_KEY_LEN);
    exchange(&i, &r, (const uint8_t *)"prepare", 7, 1 << 20);
    exchange(&r, &i, (const uint8_t *)"commit", 6, 1 << 20);
    exchange(&i, &r, (const uint8_t *)"", 0, 1 << 20);
    sess_close(&i);
    sess_close(&r);
}

/* Clients: IK handshake, the responder learns and checks the client's Ed25519 key. */
static void test_client_ik_session(void **state)
{
    static struct sess i, r;
    client_dial(&i, &world.client, 3);
    responder_start(&r, 3);
    handshake(&i, &r);
    assert_int_equal(r.role, SESS_ROLE_CLIENT);
    assert_int_equal(world.client_asks, 1);
    assert_memory_equal(r.peer_key, world.client.pk, TRONE_KEY_LEN);
    exchange(&i, &r, (const uint8_t *)"publish", 7, 1 << 20);
    exchange(&r, &i, (const uint8_t *)"event", 5, 1 << 20);
    sess_close(&i);
    sess_close(&r);
}

/* A 1 MiB message crosses as 17 fragments both ways, fed in odd-sized chunks; so does the
 * largest message; one byte more is refused by the sender. */
static void test_large_messages_fragment(void **state)
{
    static struct sess i, r;
    open_replica_pair(&i, &r);
    size_t size = 1u << 20;
    uint8_t *big = malloc(TRONE_MESSAGE_MAX + 1);
    assert_non_null(big);
    for (size_t n = 0; n <= TRONE_MESSAGE_MAX; n++) {
        big[n] = (uint8_t)(n * 31 + (n >> 16));
    }
    exchange(&i, &r, big, size, 7919);
    exchange(&r, &i, big + 1, size, 65536);
    assert_int_equal(i.send.n, (size + FRAGMENT_MAX - 1) / FRAGMENT_MAX);
    exchange(&i, &r, big, TRONE_MESSAGE_MAX, 1 << 20);
    assert_int_equal(sess_send(&i, big, TRONE_MESSAGE_MAX + 1), TRONE_ETOOBIG);
    assert_true(sess_is_open(&i));
    free(big);
    sess_close(&i);
    sess_close(&r);
}

/* Several messages in one read come out one per sess_next call, in order. */
static void test_many_messages_one_read(void **state)
{
    static struct sess i, r;
    open_replica_pair(&i, &r);
    assert_int_equal(sess_send(&i, (const uint8_t *)"one", 3), 0);
    assert_int_equal(sess_send(&i, (const uint8_t *)"two", 3), 0);
    assert_int_equal(sess_send(&i, (const uint8_t *)"three", 5), 0);
    assert_int_equal(sess_feed(&r, i.out.data, i.out.used), 0);
    const char *want[3] = {"one", "two", "three"};
    for (int n = 0; n < 3; n++) {
        const uint8_t *msg = NULL;
        size_t size = 0;
        assert_int_equal(sess_next(&r, &msg, &size), 1);
        assert_int_equal(size, strlen(want[n]));
        assert_memory_equal(msg, want[n], size);
    }
    const uint8_t *msg = NULL;
    size_t size = 0;
    assert_int_equal(sess_next(&r, &msg, &size), 0);
    sess_close(&i);
    sess_close(&r);
}

/* Flipping a byte of a transport frame fails decryption. */
static void test_tampered_frame(void **state)
{
    static struct sess i, r;
    open_replica_pair(&i, &r);
    assert_int_equal(sess_send(&i, (const uint8_t *)"payload", 7), 0);
    i.out.data[i.out.used - 3] ^= 0x40;
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EAUTH);
    assert_failed(&r, TRONE_EAUTH);
    sess_close(&i);
    sess_close(&r);
}

/* A replayed frame, a reordered pair and a dropped frame are all refused by the nonce. */
static void test_replay_reorder_drop(void **state)
{
    static struct sess i, r;
    uint8_t frame[256], second[256];
    for (int variant = 0; variant < 3; variant++) {
        open_replica_pair(&i, &r);
        assert_int_equal(sess_send(&i, (const uint8_t *)"first", 5), 0);
        size_t size = i.out.used;
        memcpy(frame, i.out.data, size);
        buf_reset(&i.out);
        assert_int_equal(sess_send(&i, (const uint8_t *)"again", 5), 0);
        memcpy(second, i.out.data, size);
        buf_reset(&i.out);
        if (variant == 0) { /* replay: first, first */
            buf_put_bytes(&i.out, frame, size);
            buf_put_bytes(&i.out, frame, size);
        } else if (variant == 1) { /* reorder: second, first */
            buf_put_bytes(&i.out, second, size);
            buf_put_bytes(&i.out, frame, size);
        } else { /* drop the first */
            buf_put_bytes(&i.out, second, size);
        }
        assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EREPLAY);
        assert_failed(&r, TRONE_EREPLAY);
        sess_close(&i);
        sess_close(&r);
    }
}

/* An initiator that expects another responder key, or claims a replica id whose key it does
 * not hold, fails the handshake. */
static void test_wrong_keys(void **state)
{
    static struct sess i, r;
    /* The client believes replica 3 has the stranger's key. */
    assert_int_equal(sess_init_initiator(&i, SESS_ROLE_CLIENT, 0, world.client.pk, world.client.sk,
                                         3, world.stranger.pk, seed_a),
                     0);
    responder_start(&r, 3);
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EAUTH);
    assert_failed(&r, TRONE_EAUTH);
    sess_close(&i);
    sess_close(&r);
    /* The stranger claims to be replica 1. */
    assert_int_equal(sess_init_initiator(&i, SESS_ROLE_REPLICA, 1, world.stranger.pk,
                                         world.stranger.sk, 2, world.replica[2].pk, seed_a),
                     0);
    responder_start(&r, 2);
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EAUTH);
    assert_failed(&r, TRONE_EAUTH);
    sess_close(&i);
    sess_close(&r);
}

/* Unknown replica ids and refused clients are turned away. */
static void test_unknown_replica_and_refused_client(void **state)
{
    static struct sess i, r;
    assert_int_equal(sess_init_initiator(&i, SESS_ROLE_REPLICA, 9, world.stranger.pk,
                                         world.stranger.sk, 2, world.replica[2].pk, seed_a),
                     0);
    responder_start(&r, 2);
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_ENOENT);
    assert_failed(&r, TRONE_ENOENT);
    sess_close(&i);
    sess_close(&r);

    client_dial(&i, &world.stranger, 2);
    responder_start(&r, 2);
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EPERM);
    assert_failed(&r, TRONE_EPERM);
    assert_int_equal(r.out.used, 0); /* no message 2 for a refused client */
    sess_close(&i);
    sess_close(&r);
}

/* An IK client whose payload names an Ed25519 key that is not the one behind its static key
 * is refused even if that key is allowed. Built by hand with noise.h. */
static void test_client_key_mismatch(void **state)
{
    static struct sess r;
    static struct noise_handshake hs;
    uint8_t hello[HELLO_LEN] = {'T', 'R', 'O', 'N', 'E', '1', SESS_ROLE_CLIENT, 0, 0, 0, 0};
    uint8_t prologue[16 + HELLO_LEN];
    memcpy(prologue, "trone-session-v1", 16);
    memcpy(prologue + 16, hello, HELLO_LEN);
    uint8_t x_secret[32], rs[32], frame[4 + 200];
    assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(x_secret, world.stranger.sk), 0);
    assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(rs, world.replica[0].pk), 0);
    assert_int_equal(noise_handshake_init(&hs, NOISE_PATTERN_IK, true, prologue, sizeof(prologue),
                                          x_secret, rs, seed_a),
                     0);
    size_t size = 0;
    assert_int_equal(
        noise_handshake_write(&hs, world.client.pk, TRONE_KEY_LEN, frame + 4, 200, &size), 0);
    buf_store_u32(frame, (uint32_t)size);
    responder_start(&r, 0);
    assert_int_equal(sess_feed(&r, hello, sizeof(hello)), 0);
    assert_int_equal(sess_feed(&r, frame, 4 + size), 0);
    const uint8_t *msg = NULL;
    assert_int_equal(sess_next(&r, &msg, &size), TRONE_EAUTH);
    assert_failed(&r, TRONE_EAUTH);
    assert_int_equal(world.client_asks, 0); /* refused before the lookup */
    sess_close(&r);
}

/* A tampered hello: bad magic or role is a protocol error; another client id field changes
 * only the prologue, and the handshake then fails; another replica id fails on its key. */
static void test_tampered_hello(void **state)
{
    static struct sess i, r;
    const struct {
        unsigned at;
        uint8_t xor_mask;
        int error;
        bool client;
    } cases[] = {
        {0, 0x01, TRONE_EPROTO, false},
        {6, 0x07, TRONE_EPROTO, false},
        {7, 0x01, TRONE_EAUTH, true},
        {7, 0x03, TRONE_EAUTH, false},
    };
    for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]); n++) {
        if (cases[n].client) {
            client_dial(&i, &world.client, 2);
        } else {
            replica_dial(&i, 1, 2);
        }
        responder_start(&r, 2);
        i.out.data[cases[n].at] ^= cases[n].xor_mask;
        assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), cases[n].error);
        assert_failed(&r, cases[n].error);
        sess_close(&i);
        sess_close(&r);
    }
}

/* Frame lengths: over the limit, zero, a handshake frame over 65535, and bodies too short
 * for a transport frame or a handshake message are refused (the first three on the header
 * alone, before the body arrives). */
static void test_bad_frame_lengths(void **state)
{
    static struct sess i, r;
    uint8_t header[4];
    const struct {
        uint32_t length;
        bool open;
        int error;
    } cases[] = {
        {8 + 65535 + 1, true, TRONE_ETOOBIG}, {0, true, TRONE_EBADMSG},
        {65536, false, TRONE_EBADMSG},        {8 + 16, true, TRONE_EBADMSG},
        {20, false, TRONE_EBADMSG},
    };
    for (size_t n = 0; n < sizeof(cases) / sizeof(cases[0]); n++) {
        replica_dial(&i, 1, 2);
        responder_start(&r, 2);
        if (cases[n].open) {
            handshake(&i, &r);
        } else {
            buf_reset(&i.out);
            buf_put_bytes(&i.out, "TRONE1\x01\x01\x00\x00\x00", HELLO_LEN);
        }
        buf_store_u32(header, cases[n].length);
        buf_put_bytes(&i.out, header, 4);
        if (cases[n].length <= 64) {
            assert_true(cases[n].length == 0 || buf_append(&i.out, cases[n].length) != NULL);
        }
        assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), cases[n].error);
        assert_failed(&r, cases[n].error);
        sess_close(&i);
        sess_close(&r);
    }
}

/* Reassembly stops at TRONE_MESSAGE_MAX: a peer that never ends a message is cut off. */
static void test_reassembly_limit(void **state)
{
    static struct sess i, r;
    open_replica_pair(&i, &r);
    size_t frames = TRONE_MESSAGE_MAX / FRAGMENT_MAX + 1;
    int rc = 0;
    for (size_t n = 0; n < frames && rc == 0; n++) {
        forge_frame(&i, i.send.n, 0x01, FRAGMENT_MAX);
        i.send.n++;
        rc = deliver(&i, &r, NULL, NULL, NULL);
    }
    assert_int_equal(rc, TRONE_ETOOBIG);
    assert_failed(&r, TRONE_ETOOBIG);
    sess_close(&i);
    sess_close(&r);
}

/* Unknown flag bits are refused; sending before the handshake ends is an invalid call. */
static void test_bad_flags_and_early_send(void **state)
{
    static struct sess i, r;
    replica_dial(&i, 1, 2);
    assert_int_equal(sess_send(&i, (const uint8_t *)"early", 5), TRONE_EINVAL);
    responder_start(&r, 2);
    handshake(&i, &r);
    forge_frame(&i, i.send.n, 0x02, 3);
    assert_int_equal(deliver(&i, &r, NULL, NULL, NULL), TRONE_EBADMSG);
    assert_failed(&r, TRONE_EBADMSG);
    sess_close(&i);
    sess_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_replica_kk_session, setup),
        cmocka_unit_test_setup(test_client_ik_session, setup),
        cmocka_unit_test_setup(test_large_messages_fragment, setup),
        cmocka_unit_test_setup(test_many_messages_one_read, setup),
        cmocka_unit_test_setup(test_tampered_frame, setup),
        cmocka_unit_test_setup(test_replay_reorder_drop, setup),
        cmocka_unit_test_setup(test_wrong_keys, setup),
        cmocka_unit_test_setup(test_unknown_replica_and_refused_client, setup),
        cmocka_unit_test_setup(test_client_key_mismatch, setup),
        cmocka_unit_test_setup(test_tampered_hello, setup),
        cmocka_unit_test_setup(test_bad_frame_lengths, setup),
        cmocka_unit_test_setup(test_reassembly_limit, setup),
        cmocka_unit_test_setup(test_bad_flags_and_early_send, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
