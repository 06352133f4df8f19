/* session.c: one encrypted connection (session.h): hello, Noise KK/IK handshake, then framed,
 * fragmented transport messages with explicit nonces. Sans-I/O: it never touches a socket,
 * the clock or a random source, and never logs (the runtime logs the error it returns).
 * Every byte from the peer is validated; a failure leaves the session FAILED for good. */
#include "core/session.h"

#include <sodium.h>
#include <string.h>

#include "core/assert.h"

#define SESS_MAGIC "TRONE1"
#define SESS_MAGIC_LEN 6u
#define SESS_HELLO_LEN (SESS_MAGIC_LEN + 1u + 4u)
#define SESS_LABEL "trone-session-v1"
#define SESS_LABEL_LEN 16u
#define SESS_PROLOGUE_LEN (SESS_LABEL_LEN + SESS_HELLO_LEN)
#define SESS_FRAME_HEADER_LEN 4u
#define SESS_NONCE_LEN 8u
#define SESS_FRAME_BODY_MAX (SESS_NONCE_LEN + NOISE_MESSAGE_MAX)
#define SESS_FLAG_MORE 0x01u
/* One transport frame carries flags and at most this many bytes of a message. */
#define SESS_FRAGMENT_MAX (NOISE_MESSAGE_MAX - NOISE_TAG_LEN - 1u)
#define SESS_FRAME_OVERHEAD (SESS_FRAME_HEADER_LEN + SESS_NONCE_LEN + 1u + NOISE_TAG_LEN)
/* Input buffered between two sess_next loops: a whole largest message with its framing. */
#define SESS_INPUT_MAX (2u * TRONE_MESSAGE_MAX)

_Static_assert(sizeof(SESS_MAGIC) - 1 == SESS_MAGIC_LEN, "magic length");
_Static_assert(sizeof(SESS_LABEL) - 1 == SESS_LABEL_LEN, "label length");
_Static_assert(TRONE_KEY_LEN == NOISE_KEY_LEN, "X25519 keys are TRONE keys");
_Static_assert(TRONE_NOISE_MESSAGE_MAX == NOISE_MESSAGE_MAX, "one Noise limit");
_Static_assert(TRONE_MESSAGE_MAX / SESS_FRAGMENT_MAX * SESS_FRAME_OVERHEAD < TRONE_MESSAGE_MAX,
               "framing of a largest message fits the input bound");

static const uint8_t sess_empty[1] = {0};

/* ----- helpers ----- */

/* Marks the session FAILED with error, wipes its keys and returns error. */
static int sess_fail(struct sess *s, int error)
{
    TRONE_ASSERT(error < 0);
    if (s->state != SESS_FAILED) {
        s->state = SESS_FAILED;
        s->error = error;
    }
    noise_handshake_close(&s->hs);
    noise_cipher_close(&s->send);
    noise_cipher_close(&s->recv);
    sodium_memzero(s->self_x_secret, sizeof(s->self_x_secret));
    return s->error;
}

static void sess_hello_encode(uint8_t hello[SESS_HELLO_LEN], enum sess_role role, uint32_t id)
{
    memcpy(hello, SESS_MAGIC, SESS_MAGIC_LEN);
    hello[SESS_MAGIC_LEN] = (uint8_t)role;
    buf_store_u32(hello + SESS_MAGIC_LEN + 1, id);
}

static void sess_prologue(uint8_t prologue[SESS_PROLOGUE_LEN], const uint8_t hello[SESS_HELLO_LEN])
{
    memcpy(prologue, SESS_LABEL, SESS_LABEL_LEN);
    memcpy(prologue + SESS_LABEL_LEN, hello, SESS_HELLO_LEN);
}

/* Derives the X25519 keys of our own Ed25519 identity; EINVAL if the pair is not valid. */
static int sess_self_keys(struct sess *s, const uint8_t ed_public[TRONE_KEY_LEN],
                          const uint8_t ed_secret[TRONE_SECRET_KEY_LEN])
{
    uint8_t check[TRONE_KEY_LEN];
    int rc = 0;
    if (sodium_init() < 0) {
        rc = TRONE_EIO;
        goto out;
    }
    memcpy(s->self_ed_public, ed_public, TRONE_KEY_LEN);
    if (crypto_sign_ed25519_pk_to_curve25519(s->self_x_public, ed_public) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(s->self_x_secret, ed_secret) != 0 ||
        crypto_scalarmult_base(check, s->self_x_secret) != 0 ||
        sodium_memcmp(check, s->self_x_public, TRONE_KEY_LEN) != 0) {
        rc = TRONE_EINVAL;
    }
out:
    sodium_memzero(check, sizeof(check));
    return rc;
}

/* Zeroes the session and sets up its buffers. */
static void sess_reset(struct sess *s)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->in, SESS_INPUT_MAX);
    buf_init(&s->message, TRONE_MESSAGE_MAX);
    buf_init(&s->out, TRONE_CONN_OUTPUT_HARD);
}

/* Appends a frame holding handshake message payload to s->out. */
static int sess_handshake_send(struct sess *s, const uint8_t *payload, size_t payload_size)
{
    size_t room = NOISE_MESSAGE_MAX;
    uint8_t *frame = buf_append(&s->out, SESS_FRAME_HEADER_LEN + room);
    if (frame == NULL) {
        return s->out.error;
    }
    size_t size = 0;
    int rc = noise_handshake_write(&s->hs, payload, payload_size, frame + SESS_FRAME_HEADER_LEN,
                                   room, &size);
    s->out.used -= room - size; /* give back what the message did not use */
    if (rc != 0) {
        s->out.used -= SESS_FRAME_HEADER_LEN + size;
        return rc;
    }
    buf_store_u32(frame, (uint32_t)size);
    return 0;
}

/* ----- initiator ----- */

int sess_init_initiator(struct sess *s, enum sess_role role, uint32_t self_id,
                        const uint8_t self_ed_public[TRONE_KEY_LEN],
                        const uint8_t self_ed_secret[TRONE_SECRET_KEY_LEN], uint32_t peer_id,
                        const uint8_t peer_ed_public[TRONE_KEY_LEN],
                        const uint8_t ephemeral_seed[32])
{
    TRONE_ASSERT(s != NULL && self_ed_public != NULL);
    TRONE_ASSERT(self_ed_secret != NULL && peer_ed_public != NULL && ephemeral_seed != NULL);
    sess_reset(s);
    s->initiator = true;
    s->role = role;
    s->peer_replica = peer_id;
    memcpy(s->peer_key, peer_ed_public, TRONE_KEY_LEN);
    uint8_t rs[TRONE_KEY_LEN];
    uint8_t hello[SESS_HELLO_LEN];
    uint8_t prologue[SESS_PROLOGUE_LEN];
    int rc = 0;
    if (role != SESS_ROLE_REPLICA && role != SESS_ROLE_CLIENT) {
        rc = TRONE_EINVAL;
        goto out;
    }
    rc = sess_self_keys(s, self_ed_public, self_ed_secret);
    if (rc == 0 && crypto_sign_ed25519_pk_to_curve25519(rs, peer_ed_public) != 0) {
        rc = TRONE_EINVAL;
    }
    if (rc != 0) {
        goto out;
    }
    sess_hello_encode(hello, role, self_id);
    sess_prologue(prologue, hello);
    enum noise_pattern pattern = role == SESS_ROLE_REPLICA ? NOISE_PATTERN_KK : NOISE_PATTERN_IK;
    rc = noise_handshake_init(&s->hs, pattern, true, prologue, sizeof(prologue), s->self_x_secret,
                              rs, ephemeral_seed);
    if (rc != 0) {
        goto out;
    }
    buf_put_bytes(&s->out, hello, sizeof(hello));
    /* IK: the client proves which Ed25519 identity owns its static key (session.h). */
    rc = role == SESS_ROLE_CLIENT ? sess_handshake_send(s, self_ed_public, TRONE_KEY_LEN)
                                  : sess_handshake_send(s, NULL, 0);
    if (rc == 0) {
        s->state = SESS_HANDSHAKE;
    }
out:
    sodium_memzero(rs, sizeof(rs));
    if (rc != 0) {
        sess_fail(s, rc);
    }
    return rc;
}

/* ----- responder ----- */

int sess_init_responder(struct sess *s, const uint8_t self_ed_public[TRONE_KEY_LEN],
                        const uint8_t self_ed_secret[TRONE_SECRET_KEY_LEN],
                        const struct sess_peer_lookup *lookup, const uint8_t ephemeral_seed[32])
{
    TRONE_ASSERT(s != NULL && self_ed_public != NULL && self_ed_secret != NULL);
    TRONE_ASSERT(lookup != NULL && ephemeral_seed != NULL);
    sess_reset(s);
    s->initiator = false;
    s->lookup = *lookup;
    int rc = sess_self_keys(s, self_ed_public, self_ed_secret);
    if (rc != 0) {
        return sess_fail(s, rc);
    }
    /* The pattern is known only once the hello arrives: the ephemeral secret waits in the
     * handshake state, which noise_handshake_init overwrites. */
    memcpy(s->hs.e_secret, ephemeral_seed, sizeof(s->hs.e_secret));
    s->state = SESS_HELLO;
    return 0;
}

/* Parses the hello and starts the responder's handshake: KK with the key of the replica it
 * names, or IK for a client, with the hello bound into the prologue. */
static int sess_hello_read(struct sess *s, const uint8_t hello[SESS_HELLO_LEN])
{
    uint8_t ed_public[TRONE_KEY_LEN];
    uint8_t rs[TRONE_KEY_LEN];
    uint8_t e_secret[NOISE_KEY_LEN];
    uint8_t prologue[SESS_PROLOGUE_LEN];
    const uint8_t *remote = NULL;
    int rc = 0;

    memcpy(e_secret, s->hs.e_secret, sizeof(e_secret));
    if (sodium_memcmp(hello, SESS_MAGIC, SESS_MAGIC_LEN) != 0) {
        rc = TRONE_EPROTO;
        goto out;
    }
    uint8_t role = hello[SESS_MAGIC_LEN];
    uint32_t id = buf_load_u32(hello + SESS_MAGIC_LEN + 1);
    if (role == SESS_ROLE_REPLICA) {
        rc = s->lookup.replica_key != NULL ? s->lookup.replica_key(s->lookup.ctx, id, ed_public)
                                           : TRONE_ENOENT;
        if (rc != 0) {
            rc = TRONE_ENOENT;
            goto out;
        }
        if (crypto_sign_ed25519_pk_to_curve25519(rs, ed_public) != 0) {
            rc = TRONE_EAUTH;
            goto out;
        }
        memcpy(s->peer_key, ed_public, TRONE_KEY_LEN);
        s->peer_replica = id;
        remote = rs;
    } else if (role != SESS_ROLE_CLIENT) {
        rc = TRONE_EPROTO;
        goto out;
    }
    s->role = (enum sess_role)role;
    sess_prologue(prologue, hello);
    rc = noise_handshake_init(&s->hs, remote != NULL ? NOISE_PATTERN_KK : NOISE_PATTERN_IK, false,
                              prologue, sizeof(prologue), s->self_x_secret, remote, e_secret);
    if (rc == 0) {
        s->state = SESS_HANDSHAKE;
    }
out:
    sodium_memzero(e_secret, sizeof(e_secret));
    sodium_memzero(rs, sizeof(rs));
    return rc;
}

/* IK: the payload of message 1 is the client's Ed25519 public key, which must convert to the
 * static key the handshake authenticated; then the lookup decides. */
static int sess_client_check(struct sess *s, const uint8_t *payload, size_t size)
{
    uint8_t x_public[TRONE_KEY_LEN];
    const uint8_t *remote = noise_handshake_remote_static(&s->hs);
    int rc = 0;
    TRONE_ASSERT(remote != NULL);
    if (size != TRONE_KEY_LEN) {
        rc = TRONE_EPROTO;
        goto out;
    }
    if (crypto_sign_ed25519_pk_to_curve25519(x_public, payload) != 0 ||
        sodium_memcmp(x_public, remote, TRONE_KEY_LEN) != 0) {
        rc = TRONE_EAUTH;
        goto out;
    }
    if (s->lookup.client_allowed == NULL || s->lookup.client_allowed(s->lookup.ctx, payload)) {
        rc = TRONE_EPERM;
        goto out;
    }
    memcpy(s->peer_key, payload, TRONE_KEY_LEN);
out:
    sodium_memzero(x_public, sizeof(x_public));
    return rc;
}

/* ----- handshake and transport frames ----- */

/* A handshake frame: message 1 at the responder (answered with message 2), or message 2 at
 * the initiator. Either way the session is OPEN afterwards. */
static int sess_handshake_frame(struct sess *s, const uint8_t *body, size_t size)
{
    uint8_t payload[TRONE_KEY_LEN];
    size_t payload_size = 0;
    int rc = noise_handshake_read(&s->hs, body, size, payload, sizeof(payload), &payload_size);
    if (rc == TRONE_ETOOBIG) {
        rc = TRONE_EPROTO; /* a payload we never send */
    }
    if (rc == 0 && !s->initiator) {
        if (s->role == SESS_ROLE_CLIENT) {
            rc = sess_client_check(s, payload, payload_size);
        } else if (payload_size != 0) {
            rc = TRONE_EPROTO;
        }
        if (rc == 0) {
            rc = sess_handshake_send(s, NULL, 0);
        }
    } else if (rc == 0 && payload_size != 0) {
        rc = TRONE_EPROTO;
    }
    if (rc == 0) {
        TRONE_ASSERT(noise_handshake_done(&s->hs));
        noise_handshake_split(&s->hs, &s->send, &s->recv);
        sodium_memzero(s->self_x_secret, sizeof(s->self_x_secret));
        s->state = SESS_OPEN;
    }
    sodium_memzero(payload, sizeof(payload));
    return rc;
}

/* A transport frame: decrypts in place inside s->in and appends the fragment to s->message.
 * Sets *complete when the last fragment arrived. */
static int sess_transport_frame(struct sess *s, uint8_t *body, size_t size, bool *complete)
{
    if (size < SESS_NONCE_LEN + 1u + NOISE_TAG_LEN) {
        return TRONE_EBADMSG;
    }
    uint64_t nonce = buf_load_u64(body);
    if (nonce != s->recv.n) {
        return TRONE_EREPLAY; /* replayed, dropped or reordered */
    }
    uint8_t *plain = body + SESS_NONCE_LEN;
    size_t cipher_size = size - SESS_NONCE_LEN;
    int rc = noise_cipher_decrypt(&s->recv, nonce, NULL, 0, plain, cipher_size, plain);
    if (rc != 0) {
        return rc;
    }
    s->recv.n++;
    size_t fragment_size = cipher_size - NOISE_TAG_LEN - 1u;
    uint8_t flags = plain[0];
    if ((flags & ~SESS_FLAG_MORE) != 0) {
        return TRONE_EBADMSG;
    }
    if (fragment_size > TRONE_MESSAGE_MAX - s->message.used) {
        return TRONE_ETOOBIG;
    }
    buf_put_bytes(&s->message, plain + 1, fragment_size);
    if (s->message.error != 0) {
        return s->message.error;
    }
    *complete = (flags & SESS_FLAG_MORE) == 0;
    return 0;
}

/* ----- input ----- */

/* Moves unconsumed input to the front of s->in. */
static void sess_input_compact(struct sess *s)
{
    TRONE_ASSERT(s->in_read <= s->in.used);
    if (s->in_read == 0) {
        return;
    }
    size_t left = s->in.used - s->in_read;
    if (left > 0) {
        memmove(s->in.data, s->in.data + s->in_read, left);
    }
    s->in.used = left;
    s->in_read = 0;
}

int sess_feed(struct sess *s, const uint8_t *data, size_t size)
{
    TRONE_ASSERT(s != NULL);
    TRONE_ASSERT(data != NULL || size == 0);
    if (s->state == SESS_FAILED) {
        return s->error;
    }
    sess_input_compact(s);
    buf_put_bytes(&s->in, data, size);
    if (s->in.error != 0) {
        return sess_fail(s, s->in.error);
    }
    return 0;
}

/* Takes the next whole frame from the input: 1 with its body, 0 if incomplete, or an error. */
static int sess_frame_take(struct sess *s, uint8_t **body, size_t *size)
{
    size_t left = s->in.used - s->in_read;
    if (left < SESS_FRAME_HEADER_LEN) {
        return 0;
    }
    uint8_t *frame = s->in.data + s->in_read;
    uint32_t length = buf_load_u32(frame);
    if (length > SESS_FRAME_BODY_MAX) {
        return TRONE_ETOOBIG;
    }
    if (length == 0 || (s->state == SESS_HANDSHAKE && length > NOISE_MESSAGE_MAX)) {
        return TRONE_EBADMSG;
    }
    if (left - SESS_FRAME_HEADER_LEN < length) {
        return 0;
    }
    *body = frame + SESS_FRAME_HEADER_LEN;
    *size = length;
    s->in_read += SESS_FRAME_HEADER_LEN + length;
    return 1;
}

/* One step of input processing: 1 when a message completed, 0 when progress was made, and
 * TRONE_EBUSY (not an error) when more bytes are needed. */
static int sess_step(struct sess *s)
{
    if (s->state == SESS_HELLO) {
        if (s->in.used - s->in_read < SESS_HELLO_LEN) {
            return TRONE_EBUSY;
        }
        int rc = sess_hello_read(s, s->in.data + s->in_read);
        s->in_read += SESS_HELLO_LEN;
        return rc;
    }
    uint8_t *body = NULL;
    size_t size = 0;
    int rc = sess_frame_take(s, &body, &size);
    if (rc <= 0) {
        return rc == 0 ? TRONE_EBUSY : rc;
    }
    if (s->state == SESS_HANDSHAKE) {
        return sess_handshake_frame(s, body, size);
    }
    TRONE_ASSERT(s->state == SESS_OPEN);
    bool complete = false;
    rc = sess_transport_frame(s, body, size, &complete);
    return rc != 0 ? rc : (complete ? 1 : 0);
}

int sess_next(struct sess *s, const uint8_t **msg, size_t *size)
{
    TRONE_ASSERT(s != NULL && msg != NULL && size != NULL);
    *msg = NULL;
    *size = 0;
    if (s->state == SESS_FAILED) {
        return s->error;
    }
    if (s->message_ready) {
        buf_reset(&s->message);
        s->message_ready = false;
    }
    /* Each step consumes at least a frame header or the hello, so this bounds the loop. */
    size_t steps_max = (s->in.used - s->in_read) / SESS_FRAME_HEADER_LEN + 1;
    for (size_t i = 0; i < steps_max; i++) {
        int rc = sess_step(s);
        if (rc == TRONE_EBUSY) {
            break;
        }
        if (rc < 0) {
            return sess_fail(s, rc);
        }
        if (rc == 1) {
            s->message_ready = true;
            *msg = s->message.data != NULL ? s->message.data : sess_empty;
            *size = s->message.used;
            return 1;
        }
    }
    sess_input_compact(s);
    return 0;
}

/* ----- output ----- */

int sess_send(struct sess *s, const uint8_t *msg, size_t size)
{
    TRONE_ASSERT(s != NULL);
    TRONE_ASSERT(msg != NULL || size == 0);
    if (s->state == SESS_FAILED) {
        return s->error;
    }
    if (s->state != SESS_OPEN) {
        return TRONE_EINVAL;
    }
    if (size > TRONE_MESSAGE_MAX) {
        return TRONE_ETOOBIG;
    }
    size_t count = size == 0 ? 1 : (size + SESS_FRAGMENT_MAX - 1) / SESS_FRAGMENT_MAX;
    size_t total = count * SESS_FRAME_OVERHEAD + size;
    if (total > s->out.size_max - s->out.used) {
        return TRONE_EBUSY; /* the peer reads too slowly: the caller drains or drops it */
    }
    if (s->send.n >= NOISE_NONCE_MAX - count) {
        return sess_fail(s, TRONE_EFULL); /* nonces exhausted: a new session is needed */
    }
    /* Every byte is written below: length, nonce, flag, fragment, and the tag. */
    uint8_t *frame = buf_append_uninit(&s->out, total);
    if (frame == NULL) {
        return s->out.error == TRONE_ENOMEM ? TRONE_ENOMEM : TRONE_EBUSY;
    }
    size_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        size_t fragment = size - offset < SESS_FRAGMENT_MAX ? size - offset : SESS_FRAGMENT_MAX;
        uint8_t *plain = frame + SESS_FRAME_HEADER_LEN + SESS_NONCE_LEN;
        buf_store_u32(frame, (uint32_t)(SESS_NONCE_LEN + 1u + fragment + NOISE_TAG_LEN));
        buf_store_u64(frame + SESS_FRAME_HEADER_LEN, s->send.n);
        plain[0] = i + 1 < count ? SESS_FLAG_MORE : 0;
        if (fragment > 0) {
            memcpy(plain + 1, msg + offset, fragment);
        }
        int rc = noise_cipher_encrypt(&s->send, s->send.n, NULL, 0, plain, 1u + fragment, plain);
        TRONE_ASSERT(rc == 0); /* key set, nonce checked above, fragment within limits */
        s->send.n++;
        offset += fragment;
        frame += SESS_FRAME_OVERHEAD + fragment;
    }
    TRONE_ASSERT(offset == size);
    return 0;
}

bool sess_is_open(const struct sess *s) { return s->state == SESS_OPEN; }

void sess_close(struct sess *s)
{
    noise_handshake_close(&s->hs);
    noise_cipher_close(&s->send);
    noise_cipher_close(&s->recv);
    if (s->message.data != NULL) {
        sodium_memzero(s->message.data, s->message.capacity);
    }
    buf_close(&s->in);
    buf_close(&s->message);
    buf_close(&s->out);
    sodium_memzero(s, sizeof(*s));
}
