/* chan_auth.c: the signed input, PKS sign/verify and the BFT match digest of an event
 * (see chan_auth.h for the layout). Pure functions over libsodium; no I/O, no allocation. */
#include "chan/chan_auth.h"

#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"

_Static_assert(sizeof(CHAN_AUTH_LABEL) <= CHAN_AUTH_LABEL_SIZE, "label fits its field");
_Static_assert(TRONE_TAG_MAX <= 255u, "tag length fits one byte");

void chan_auth_input(uint8_t out[CHAN_AUTH_INPUT_SIZE], const char *tag,
                     const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e)
{
    TRONE_ASSERT(tag != NULL);
    TRONE_ASSERT(e->payload != NULL || e->payload_size == 0);
    size_t tag_size = strnlen(tag, TRONE_TAG_MAX + 1);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);

    memset(out, 0, CHAN_AUTH_INPUT_SIZE);
    uint8_t *p = out;
    memcpy(p, CHAN_AUTH_LABEL, sizeof(CHAN_AUTH_LABEL) - 1);
    p += CHAN_AUTH_LABEL_SIZE;
    *p++ = (uint8_t)tag_size;
    memcpy(p, tag, tag_size);
    p += TRONE_TAG_MAX;
    memcpy(p, publisher, TRONE_KEY_LEN);
    p += TRONE_KEY_LEN;
    buf_store_u64(p, e->epoch);
    buf_store_u64(p + 8, e->seq);
    buf_store_u64(p + 16, e->time_us);
    p += 24;
    crypto_generichash(p, TRONE_HASH_LEN, e->payload, e->payload_size, NULL, 0);
    p += TRONE_HASH_LEN;
    TRONE_ASSERT((size_t)(p - out) == CHAN_AUTH_INPUT_SIZE);
}

void chan_auth_sign(uint8_t sig[CHAN_AUTH_PKS_SIZE], const uint8_t secret[TRONE_SECRET_KEY_LEN],
                    const char *tag, const struct chan_event *e)
{
    uint8_t publisher[TRONE_KEY_LEN];
    uint8_t input[CHAN_AUTH_INPUT_SIZE];
    int rc = crypto_sign_ed25519_sk_to_pk(publisher, secret);
    TRONE_ASSERT(rc == 0);
    chan_auth_input(input, tag, publisher, e);
    rc = crypto_sign_detached(sig, NULL, input, sizeof(input), secret);
    TRONE_ASSERT(rc == 0);
}

int chan_auth_verify(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                     const struct chan_event *e)
{
    if (e->auth == NULL || e->auth_size != CHAN_AUTH_PKS_SIZE) {
        return TRONE_EAUTH;
    }
    uint8_t input[CHAN_AUTH_INPUT_SIZE];
    chan_auth_input(input, tag, publisher, e);
    if (crypto_sign_verify_detached(e->auth, input, sizeof(input), publisher) != 0) {
        return TRONE_EAUTH;
    }
    return 0;
}

void chan_auth_digest(uint8_t digest[TRONE_HASH_LEN], const char *tag,
                      const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e)
{
    TRONE_ASSERT(e->auth != NULL || e->auth_size == 0);
    uint8_t input[CHAN_AUTH_INPUT_SIZE];
    uint8_t auth_size[2] = {(uint8_t)e->auth_size, (uint8_t)(e->auth_size >> 8)};
    crypto_generichash_state st;
    chan_auth_input(input, tag, publisher, e);
    crypto_generichash_init(&st, NULL, 0, TRONE_HASH_LEN);
    crypto_generichash_update(&st, input, sizeof(input));
    crypto_generichash_update(&st, auth_size, sizeof(auth_size));
    crypto_generichash_update(&st, e->auth, e->auth_size);
    crypto_generichash_final(&st, digest, TRONE_HASH_LEN);
}
