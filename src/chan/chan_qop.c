/* chan_qop.c: HA and PKE primitives of event channels: envelope and key-block codec, key
 * wrapping (sealed boxes with derived ephemeral keys), the HA MAC and PKE encryption (layouts
 * in chan_qop.h). Pure functions over libsodium; no I/O, no clock, no randomness. */
#include "chan/chan_qop.h"

#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"

#define CHAN_QOP_KID_LABEL "trone-qop-kid"
#define CHAN_QOP_HA_LABEL "trone-ha"
#define CHAN_QOP_PKE_LABEL "trone-pke"
#define CHAN_QOP_LABEL_SIZE 12u
/* label | u8 tag length | tag padded | publisher | epoch | seq | time. */
#define CHAN_QOP_CONTEXT_SIZE (CHAN_QOP_LABEL_SIZE + 1u + TRONE_TAG_MAX + TRONE_KEY_LEN + 24u)

_Static_assert(CHAN_QOP_SEALED_SIZE == crypto_box_SEALBYTES + CHAN_QOP_KEY_SIZE, "sealed size");
_Static_assert(CHAN_QOP_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(CHAN_QOP_TAG_SIZE == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(sizeof(CHAN_QOP_PKE_LABEL) <= CHAN_QOP_LABEL_SIZE, "label fits");
_Static_assert(sizeof(CHAN_QOP_HA_LABEL) <= CHAN_QOP_LABEL_SIZE, "label fits");

/* ---- Codec ---- */

int chan_qop_block_check(const uint8_t *block, size_t size)
{
    if (block == NULL || size < 1) {
        return TRONE_EBADMSG;
    }
    uint32_t count = block[0];
    if (count == 0 || count > CHAN_QOP_RECIPIENTS_MAX ||
        size != 1u + (size_t)count * CHAN_QOP_ENTRY_SIZE) {
        return TRONE_EBADMSG;
    }
    return (int)count;
}

int chan_qop_envelope_read(const uint8_t *payload, size_t size, struct chan_qop_envelope *env)
{
    memset(env, 0, sizeof(*env));
    struct buf_reader r;
    buf_reader_init(&r, payload, size);
    uint8_t flags = buf_get_u8(&r);
    buf_get_bytes(&r, env->key_id, CHAN_QOP_KEY_ID_SIZE);
    if (r.error != 0 || (flags & ~CHAN_QOP_FLAG_KEYS) != 0) {
        memset(env, 0, sizeof(*env));
        return TRONE_EBADMSG;
    }
    if ((flags & CHAN_QOP_FLAG_KEYS) != 0) {
        uint16_t block_size = buf_get_u16(&r);
        const uint8_t *block = buf_get_ref(&r, block_size);
        if (r.error != 0 || chan_qop_block_check(block, block_size) < 0) {
            memset(env, 0, sizeof(*env));
            return TRONE_EBADMSG;
        }
        env->block = block;
        env->block_size = block_size;
    }
    env->flags = flags;
    env->header_size = r.used;
    env->body = payload + r.used;
    env->body_size = size - r.used;
    return 0;
}

/* ---- Keys ---- */

void chan_qop_key_id(uint8_t id[CHAN_QOP_KEY_ID_SIZE], const uint8_t key[CHAN_QOP_KEY_SIZE])
{
    crypto_generichash(id, CHAN_QOP_KEY_ID_SIZE, (const uint8_t *)CHAN_QOP_KID_LABEL,
                       sizeof(CHAN_QOP_KID_LABEL) - 1, key, CHAN_QOP_KEY_SIZE);
}

void chan_qop_hint(uint8_t hint[CHAN_QOP_HINT_SIZE], const uint8_t recipient[TRONE_KEY_LEN])
{
    crypto_generichash(hint, CHAN_QOP_HINT_SIZE, recipient, TRONE_KEY_LEN, NULL, 0);
}

/* The layout of crypto_box_seal (libsodium): ephemeral public key | crypto_box_easy of the
 * message with nonce BLAKE2b-192(ephemeral public key | recipient public key). Writing it with
 * an ephemeral key derived from the caller's seed keeps the core free of randomness while
 * crypto_box_seal_open still opens it. */
int chan_qop_wrap(uint8_t entry[CHAN_QOP_ENTRY_SIZE], const uint8_t key[CHAN_QOP_KEY_SIZE],
                  const uint8_t recipient[TRONE_KEY_LEN], const uint8_t eph_seed[32])
{
    uint8_t x_public[crypto_box_PUBLICKEYBYTES];
    uint8_t eph_public[crypto_box_PUBLICKEYBYTES];
    uint8_t eph_secret[crypto_box_SECRETKEYBYTES];
    uint8_t nonce[crypto_box_NONCEBYTES];
    int rc = TRONE_EINVAL;
    if (crypto_sign_ed25519_pk_to_curve25519(x_public, recipient) != 0) {
        goto out;
    }
    crypto_generichash(eph_secret, sizeof(eph_secret), (const uint8_t *)"trone-qop-eph", 13,
                       eph_seed, 32);
    if (crypto_scalarmult_base(eph_public, eph_secret) != 0) {
        goto out;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(nonce));
    crypto_generichash_update(&st, eph_public, sizeof(eph_public));
    crypto_generichash_update(&st, x_public, sizeof(x_public));
    crypto_generichash_final(&st, nonce, sizeof(nonce));
    chan_qop_hint(entry, recipient);
    uint8_t *sealed = entry + CHAN_QOP_HINT_SIZE;
    memcpy(sealed, eph_public, sizeof(eph_public));
    if (crypto_box_easy(sealed + sizeof(eph_public), key, CHAN_QOP_KEY_SIZE, nonce, x_public,
                        eph_secret) != 0) {
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(eph_secret, sizeof(eph_secret));
    if (rc != 0) {
        memset(entry, 0, CHAN_QOP_ENTRY_SIZE);
    }
    return rc;
}

int chan_qop_unwrap(uint8_t key[CHAN_QOP_KEY_SIZE], const uint8_t *block, size_t block_size,
                    const uint8_t secret[TRONE_SECRET_KEY_LEN],
                    const uint8_t key_id[CHAN_QOP_KEY_ID_SIZE])
{
    int count = chan_qop_block_check(block, block_size);
    if (count < 0) {
        return TRONE_EBADMSG;
    }
    uint8_t x_public[crypto_box_PUBLICKEYBYTES];
    uint8_t x_secret[crypto_box_SECRETKEYBYTES];
    uint8_t hint[CHAN_QOP_HINT_SIZE];
    uint8_t candidate[CHAN_QOP_KEY_SIZE];
    uint8_t id[CHAN_QOP_KEY_ID_SIZE];
    int rc = TRONE_ENOENT;
    /* The public half of an Ed25519 secret key is its last 32 bytes. */
    chan_qop_hint(hint, secret + 32);
    if (crypto_sign_ed25519_pk_to_curve25519(x_public, secret + 32) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(x_secret, secret) != 0) {
        goto out;
    }
    for (int i = 0; i < count; i++) {
        const uint8_t *entry = block + 1 + (size_t)i * CHAN_QOP_ENTRY_SIZE;
        if (sodium_memcmp(entry, hint, CHAN_QOP_HINT_SIZE) != 0) {
            continue;
        }
        if (crypto_box_seal_open(candidate, entry + CHAN_QOP_HINT_SIZE, CHAN_QOP_SEALED_SIZE,
                                 x_public, x_secret) != 0) {
            continue; /* a hint collision: try the next entry */
        }
        chan_qop_key_id(id, candidate);
        if (sodium_memcmp(id, key_id, CHAN_QOP_KEY_ID_SIZE) != 0) {
            rc = TRONE_EAUTH;
            continue;
        }
        memcpy(key, candidate, CHAN_QOP_KEY_SIZE);
        rc = 0;
        break;
    }
out:
    sodium_memzero(x_secret, sizeof(x_secret));
    sodium_memzero(candidate, sizeof(candidate));
    return rc;
}

/* ---- HA and PKE ---- */

static void chan_qop_context(uint8_t out[CHAN_QOP_CONTEXT_SIZE], const char *label, const char *tag,
                             const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch, uint64_t seq,
                             uint64_t time_us)
{
    size_t tag_size = strnlen(tag, TRONE_TAG_MAX + 1);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);
    memset(out, 0, CHAN_QOP_CONTEXT_SIZE);
    uint8_t *p = out;
    memcpy(p, label, strlen(label));
    p += CHAN_QOP_LABEL_SIZE;
    *p++ = (uint8_t)tag_size;
    memcpy(p, tag, tag_size);
    p += TRONE_TAG_MAX;
    memcpy(p, publisher, TRONE_KEY_LEN);
    p += TRONE_KEY_LEN;
    buf_store_u64(p, epoch);
    buf_store_u64(p + 8, seq);
    buf_store_u64(p + 16, time_us);
    p += 24;
    TRONE_ASSERT((size_t)(p - out) == CHAN_QOP_CONTEXT_SIZE);
}

void chan_qop_mac(uint8_t mac[CHAN_QOP_MAC_SIZE], const uint8_t key[CHAN_QOP_KEY_SIZE],
                  const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                  const struct chan_event *e)
{
    TRONE_ASSERT(e->payload != NULL || e->payload_size == 0);
    uint8_t context[CHAN_QOP_CONTEXT_SIZE];
    chan_qop_context(context, CHAN_QOP_HA_LABEL, tag, publisher, e->epoch, e->seq, e->time_us);
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, CHAN_QOP_KEY_SIZE, CHAN_QOP_MAC_SIZE);
    crypto_generichash_update(&st, context, sizeof(context));
    crypto_generichash_update(&st, e->payload, e->payload_size);
    crypto_generichash_final(&st, mac, CHAN_QOP_MAC_SIZE);
}

int chan_qop_mac_verify(const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                        const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e)
{
    if (e->auth == NULL || e->auth_size != CHAN_QOP_MAC_SIZE) {
        return TRONE_EAUTH;
    }
    uint8_t mac[CHAN_QOP_MAC_SIZE];
    chan_qop_mac(mac, key, tag, publisher, e);
    return sodium_memcmp(mac, e->auth, CHAN_QOP_MAC_SIZE) == 0 ? 0 : TRONE_EAUTH;
}

static void chan_qop_nonce(uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
                           uint64_t epoch, uint64_t seq)
{
    memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    buf_store_u64(nonce, epoch);
    buf_store_u64(nonce + 8, seq);
}

/* Associated data: the context and the envelope header (flags, key id, block). */
static void chan_qop_ad(uint8_t *ad, const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                        uint64_t epoch, uint64_t seq, uint64_t time_us, const uint8_t *header,
                        size_t header_size)
{
    chan_qop_context(ad, CHAN_QOP_PKE_LABEL, tag, publisher, epoch, seq, time_us);
    memcpy(ad + CHAN_QOP_CONTEXT_SIZE, header, header_size);
}

#define CHAN_QOP_AD_MAX (CHAN_QOP_CONTEXT_SIZE + CHAN_QOP_ENVELOPE_MAX)

void chan_qop_seal(uint8_t *out, const uint8_t *plain, size_t plain_size,
                   const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                   const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch, uint64_t seq,
                   uint64_t time_us, const uint8_t *header, size_t header_size)
{
    TRONE_ASSERT(header_size <= CHAN_QOP_ENVELOPE_MAX);
    TRONE_ASSERT(plain != NULL || plain_size == 0);
    uint8_t ad[CHAN_QOP_AD_MAX];
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    chan_qop_ad(ad, tag, publisher, epoch, seq, time_us, header, header_size);
    chan_qop_nonce(nonce, epoch, seq);
    unsigned long long out_size = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(out, &out_size, plain, plain_size, ad,
                                                        CHAN_QOP_CONTEXT_SIZE + header_size, NULL,
                                                        nonce, key);
    TRONE_ASSERT(rc == 0);
    TRONE_ASSERT(out_size == plain_size + CHAN_QOP_TAG_SIZE);
}

int chan_qop_open(uint8_t *out, const struct chan_qop_envelope *env,
                  const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                  const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch, uint64_t seq,
                  uint64_t time_us, const uint8_t *payload)
{
    if (env->body_size < CHAN_QOP_TAG_SIZE || env->header_size > CHAN_QOP_ENVELOPE_MAX) {
        return TRONE_EAUTH;
    }
    uint8_t ad[CHAN_QOP_AD_MAX];
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    chan_qop_ad(ad, tag, publisher, epoch, seq, time_us, payload, env->header_size);
    chan_qop_nonce(nonce, epoch, seq);
    unsigned long long out_size = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &out_size, NULL, env->body, env->body_size,
                                                   ad, CHAN_QOP_CONTEXT_SIZE + env->header_size,
                                                   nonce, key) != 0) {
        return TRONE_EAUTH;
    }
    TRONE_ASSERT(out_size == env->body_size - CHAN_QOP_TAG_SIZE);
    return 0;
}
