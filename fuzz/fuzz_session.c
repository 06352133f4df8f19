/* fuzz_session.c: libFuzzer target for the session decoder (src/core/session.c): arbitrary
 * bytes fed to a fresh responder (hello, handshake frames) and to an OPEN session (transport
 * frames), in chunks whose sizes the input chooses. Byte 0 picks the target and pattern; in
 * the OPEN case bit 2 XORs the input into genuine frames instead of replacing them. Nothing
 * may crash or assert, and every error must leave the session FAILED. */
#include "../src/core/noise.c"
#include "../src/core/session.c"

#include <stdlib.h>

struct fuzz_world {
    uint8_t pk[3][TRONE_KEY_LEN]; /* replica 0, replica 1, client */
    uint8_t sk[3][TRONE_SECRET_KEY_LEN];
};

static struct fuzz_world fuzz_world;

static int fuzz_replica_key(void *ctx, uint32_t id, uint8_t ed_public[TRONE_KEY_LEN])
{
    if (id > 1) {
        return TRONE_ENOENT;
    }
    memcpy(ed_public, fuzz_world.pk[id], TRONE_KEY_LEN);
    return 0;
}

static int fuzz_client_allowed(void *ctx, const uint8_t ed_public[TRONE_KEY_LEN])
{
    return memcmp(ed_public, fuzz_world.pk[2], TRONE_KEY_LEN) == 0 ? 0 : TRONE_EPERM;
}

static void fuzz_setup(void)
{
    static bool done;
    if (done) {
        return;
    }
    for (unsigned n = 0; n < 3; n++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        memset(seed, (int)n + 1, sizeof(seed));
        if (crypto_sign_seed_keypair(fuzz_world.pk[n], fuzz_world.sk[n], seed) != 0) {
            abort();
        }
    }
    done = true;
}

/* Feeds data to s in chunks of 1 + data[k] bytes and drains sess_next after each. */
static void fuzz_feed(struct sess *s, const uint8_t *data, size_t size)
{
    size_t at = 0;
    while (at < size) {
        size_t chunk = 1u + data[at];
        chunk = chunk < size - at ? chunk : size - at;
        int rc = sess_feed(s, data + at, chunk);
        at += chunk;
        for (unsigned n = 0; rc == 0 && n < 100000; n++) {
            const uint8_t *msg = NULL;
            size_t msg_size = 0;
            rc = sess_next(s, &msg, &msg_size);
            if (rc == 1 && (msg == NULL || msg_size > TRONE_MESSAGE_MAX)) {
                abort();
            }
            rc = rc == 1 ? 0 : (rc == 0 ? 1 : rc);
        }
        if (rc < 0 && (s->state != SESS_FAILED || s->error != rc)) {
            abort();
        }
        buf_reset(&s->out);
    }
}

/* Opens a pair: replica 0 dials replica 1 (KK) or the client dials replica 1 (IK). */
static void fuzz_open(struct sess *i, struct sess *r, bool client)
{
    static const uint8_t seed_i[32] = {1};
    static const uint8_t seed_r[32] = {2};
    struct sess_peer_lookup lookup = {NULL, fuzz_replica_key, fuzz_client_allowed};
    unsigned self = client ? 2 : 0;
    if (sess_init_initiator(i, client ? SESS_ROLE_CLIENT : SESS_ROLE_REPLICA, self,
                            fuzz_world.pk[self], fuzz_world.sk[self], 1, fuzz_world.pk[1],
                            seed_i) != 0 ||
        sess_init_responder(r, fuzz_world.pk[1], fuzz_world.sk[1], &lookup, seed_r) != 0) {
        abort();
    }
    const uint8_t *msg = NULL;
    size_t size = 0;
    if (sess_feed(r, i->out.data, i->out.used) != 0 || sess_next(r, &msg, &size) != 0 ||
        sess_feed(i, r->out.data, r->out.used) != 0 || sess_next(i, &msg, &size) != 0 ||
        !sess_is_open(i) || !sess_is_open(r)) {
        abort();
    }
    buf_reset(&i->out);
    buf_reset(&r->out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sess i, r;
    if (size < 1) {
        return 0;
    }
    fuzz_setup();
    bool client = (data[0] & 2) != 0;
    if ((data[0] & 1) == 0) {
        struct sess_peer_lookup lookup = {NULL, fuzz_replica_key, fuzz_client_allowed};
        static const uint8_t seed[32] = {3};
        if (sess_init_responder(&r, fuzz_world.pk[1], fuzz_world.sk[1], &lookup, seed) != 0) {
            abort();
        }
        fuzz_feed(&r, data + 1, size - 1);
        sess_close(&r);
        return 0;
    }
    fuzz_open(&i, &r, client);
    if ((data[0] & 4) != 0) {
        /* Genuine frames of a message as long as the input, with the input XORed in. */
        if (sess_send(&i, data, size) != 0) {
            abort();
        }
        for (size_t n = 1; n < size && n < i.out.used; n++) {
            i.out.data[n] ^= data[n];
        }
        fuzz_feed(&r, i.out.data, i.out.used);
    } else {
        fuzz_feed(&r, data + 1, size - 1);
    }
    sess_close(&i);
    sess_close(&r);
    return 0;
}
