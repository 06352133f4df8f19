/* noise.c: Noise_KK and Noise_IK with 25519, ChaChaPoly and BLAKE2b, written from the Noise
 * Protocol Framework, revision 34 (section numbers below refer to it). Sans-I/O and
 * deterministic: no clock, no randomness, no allocation, no logging. Every secret on the stack
 * is wiped through one `out:` label; every comparison of secrets is constant-time. */
#include "core/noise.h"

#include <sodium.h>
#include <string.h>

#include "core/assert.h"

#define NOISE_BLOCK_LEN 128u /* BLOCKLEN of BLAKE2b, used by HMAC (section 4.3) */
#define NOISE_TOKENS_MAX 4u

_Static_assert(NOISE_KEY_LEN == crypto_scalarmult_BYTES, "DHLEN is X25519's");
_Static_assert(NOISE_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "cipher key");
_Static_assert(NOISE_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "cipher tag");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "96-bit nonce");
_Static_assert(NOISE_HASH_LEN <= crypto_generichash_BYTES_MAX, "BLAKE2b-512");
_Static_assert(NOISE_HASH_LEN <= NOISE_BLOCK_LEN, "HMAC keys fit one block");

enum noise_token {
    NOISE_TOKEN_END = 0,
    NOISE_TOKEN_E,
    NOISE_TOKEN_S,
    NOISE_TOKEN_EE,
    NOISE_TOKEN_ES,
    NOISE_TOKEN_SE,
    NOISE_TOKEN_SS
};

/* Message patterns (section 7.5): KK is "-> e, es, ss / <- e, ee, se" and IK is
 * "-> e, es, s, ss / <- e, ee, se". Indexed by [pattern == IK][message index]. */
static const uint8_t noise_patterns[2][2][NOISE_TOKENS_MAX + 1] = {
    {{NOISE_TOKEN_E, NOISE_TOKEN_ES, NOISE_TOKEN_SS, NOISE_TOKEN_END},
     {NOISE_TOKEN_E, NOISE_TOKEN_EE, NOISE_TOKEN_SE, NOISE_TOKEN_END}},
    {{NOISE_TOKEN_E, NOISE_TOKEN_ES, NOISE_TOKEN_S, NOISE_TOKEN_SS, NOISE_TOKEN_END},
     {NOISE_TOKEN_E, NOISE_TOKEN_EE, NOISE_TOKEN_SE, NOISE_TOKEN_END}},
};

static const uint8_t *noise_tokens(const struct noise_handshake *hs)
{
    TRONE_ASSERT(hs->message_idx < 2);
    return noise_patterns[hs->pattern == NOISE_PATTERN_IK][hs->message_idx];
}

/* ----- CipherState (section 5.1) ----- */

/* ChaChaPoly's nonce (section 12.3): 32 zero bits, then n as 64-bit little-endian. */
static void noise_nonce_format(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (unsigned i = 0; i < 8; i++) {
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
    }
}

int noise_cipher_encrypt(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                         size_t ad_size, const uint8_t *plaintext, size_t size, uint8_t *out)
{
    TRONE_ASSERT(c != NULL && out != NULL);
    if (!c->has_key) {
        return TRONE_EINVAL;
    }
    if (n == NOISE_NONCE_MAX) {
        return TRONE_EREPLAY;
    }
    if (size > NOISE_MESSAGE_MAX - NOISE_TAG_LEN) {
        return TRONE_ETOOBIG;
    }
    uint8_t nonce[12];
    noise_nonce_format(nonce, n);
    unsigned long long out_size = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &out_size, plaintext, size, ad, ad_size, NULL,
                                              nonce, c->k);
    TRONE_ASSERT(out_size == size + NOISE_TAG_LEN);
    return 0;
}

int noise_cipher_decrypt(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                         size_t ad_size, const uint8_t *ciphertext, size_t size, uint8_t *out)
{
    TRONE_ASSERT(c != NULL && out != NULL);
    if (!c->has_key) {
        return TRONE_EINVAL;
    }
    if (size < NOISE_TAG_LEN || size > NOISE_MESSAGE_MAX) {
        return TRONE_EBADMSG;
    }
    if (n == NOISE_NONCE_MAX) {
        return TRONE_EREPLAY;
    }
    uint8_t nonce[12];
    noise_nonce_format(nonce, n);
    unsigned long long out_size = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &out_size, NULL, ciphertext, size, ad,
                                                  ad_size, nonce, c->k) != 0) {
        memset(out, 0, size - NOISE_TAG_LEN);
        return TRONE_EAUTH;
    }
    TRONE_ASSERT(out_size == size - NOISE_TAG_LEN);
    return 0;
}

void noise_cipher_close(struct noise_cipher *c) { sodium_memzero(c, sizeof(*c)); }

static void noise_cipher_set_key(struct noise_cipher *c, const uint8_t k[NOISE_KEY_LEN])
{
    memcpy(c->k, k, NOISE_KEY_LEN);
    c->n = 0;
    c->has_key = true;
}

/* ----- Hash functions (section 4.3): HASH, HMAC-HASH and HKDF over BLAKE2b ----- */

static void noise_hash2(uint8_t out[NOISE_HASH_LEN], const uint8_t *a, size_t a_size,
                        const uint8_t *b, size_t b_size)
{
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
    crypto_generichash_update(&state, a, a_size);
    crypto_generichash_update(&state, b, b_size);
    crypto_generichash_final(&state, out, NOISE_HASH_LEN);
    sodium_memzero(&state, sizeof(state));
}

/* HMAC as RFC 2104 defines it, with BLOCKLEN 128 (not BLAKE2b's own keyed mode, which Noise
 * does not use). data is the concatenation of data1 and data2. */
static void noise_hmac(uint8_t out[NOISE_HASH_LEN], const uint8_t key[NOISE_HASH_LEN],
                       const uint8_t *data1, size_t data1_size, const uint8_t *data2,
                       size_t data2_size)
{
    uint8_t block[NOISE_BLOCK_LEN];
    uint8_t inner[NOISE_HASH_LEN];
    crypto_generichash_state state;

    memset(block, 0, sizeof(block));
    memcpy(block, key, NOISE_HASH_LEN);
    for (unsigned i = 0; i < NOISE_BLOCK_LEN; i++) {
        block[i] ^= 0x36;
    }
    crypto_generichash_init(&state, NULL, 0, NOISE_HASH_LEN);
    crypto_generichash_update(&state, block, sizeof(block));
    crypto_generichash_update(&state, data1, data1_size);
    crypto_generichash_update(&state, data2, data2_size);
    crypto_generichash_final(&state, inner, NOISE_HASH_LEN);
    for (unsigned i = 0; i < NOISE_BLOCK_LEN; i++) {
        block[i] ^= 0x36 ^ 0x5c;
    }
    noise_hash2(out, block, sizeof(block), inner, sizeof(inner));

    sodium_memzero(block, sizeof(block));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&state, sizeof(state));
}

/* HKDF(chaining_key, input_key_material, 2) of section 4.3. */
static void noise_hkdf2(const uint8_t ck[NOISE_HASH_LEN], const uint8_t *ikm, size_t ikm_size,
                        uint8_t out1[NOISE_HASH_LEN], uint8_t out2[NOISE_HASH_LEN])
{
    static const uint8_t one = 0x01;
    static const uint8_t two = 0x02;
    uint8_t temp_key[NOISE_HASH_LEN];

    TRONE_ASSERT(ikm_size == 0 || ikm_size == NOISE_KEY_LEN);
    noise_hmac(temp_key, ck, ikm, ikm_size, NULL, 0);
    noise_hmac(out1, temp_key, &one, 1, NULL, 0);
    noise_hmac(out2, temp_key, out1, NOISE_HASH_LEN, &two, 1);
    sodium_memzero(temp_key, sizeof(temp_key));
}

/* ----- SymmetricState (section 5.2) ----- */

static void noise_mix_hash(struct noise_symmetric *sym, const uint8_t *data, size_t size)
{
    uint8_t h[NOISE_HASH_LEN];
    noise_hash2(h, sym->h, NOISE_HASH_LEN, data, size);
    memcpy(sym->h, h, NOISE_HASH_LEN);
}

/* MixKey: with HASHLEN 64 the new cipher key is the first 32 bytes of temp_k. */
static void noise_mix_key(struct noise_symmetric *sym, const uint8_t ikm[NOISE_KEY_LEN])
{
    uint8_t ck[NOISE_HASH_LEN];
    uint8_t temp_k[NOISE_HASH_LEN];
    noise_hkdf2(sym->ck, ikm, NOISE_KEY_LEN, ck, temp_k);
    memcpy(sym->ck, ck, NOISE_HASH_LEN);
    noise_cipher_set_key(&sym->cipher, temp_k);
    sodium_memzero(ck, sizeof(ck));
    sodium_memzero(temp_k, sizeof(temp_k));
}

/* EncryptAndHash: out receives size (+ NOISE_TAG_LEN once a key is set) bytes. */
static int noise_encrypt_and_hash(struct noise_symmetric *sym, const uint8_t *plaintext,
                                  size_t size, uint8_t *out, size_t *out_size)
{
    if (!sym->cipher.has_key) {
        if (size > 0) {
            memmove(out, plaintext, size);
        }
        *out_size = size;
    } else {
        int rc = noise_cipher_encrypt(&sym->cipher, sym->cipher.n, sym->h, NOISE_HASH_LEN,
                                      plaintext, size, out);
        if (rc != 0) {
            return rc;
        }
        sym->cipher.n++;
        *out_size = size + NOISE_TAG_LEN;
    }
    noise_mix_hash(sym, out, *out_size);
    return 0;
}

/* DecryptAndHash: h is mixed with the ciphertext, so it is computed before decrypting. */
static int noise_decrypt_and_hash(struct noise_symmetric *sym, const uint8_t *ciphertext,
                                  size_t size, uint8_t *out, size_t *out_size)
{
    uint8_t h_next[NOISE_HASH_LEN];
    noise_hash2(h_next, sym->h, NOISE_HASH_LEN, ciphertext, size);
    if (!sym->cipher.has_key) {
        if (size > 0) {
            memmove(out, ciphertext, size);
        }
        *out_size = size;
    } else {
        int rc = noise_cipher_decrypt(&sym->cipher, sym->cipher.n, sym->h, NOISE_HASH_LEN,
                                      ciphertext, size, out);
        if (rc != 0) {
            return rc;
        }
        sym->cipher.n++;
        *out_size = size - NOISE_TAG_LEN;
    }
    memcpy(sym->h, h_next, NOISE_HASH_LEN);
    return 0;
}

/* ----- HandshakeState (section 5.3) ----- */

static const char *noise_protocol_name(enum noise_pattern pattern)
{
    return pattern == NOISE_PATTERN_KK ? "Noise_KK_25519_ChaChaPoly_BLAKE2b"
                                       : "Noise_IK_25519_ChaChaPoly_BLAKE2b";
}

/* InitializeSymmetric, MixHash(prologue), then the pre-messages: KK "-> s / <- s" and IK
 * "<- s". The initiator's keys are hashed first (section 7.1). */
static void noise_handshake_start(struct noise_handshake *hs, const uint8_t *prologue,
                                  size_t prologue_size)
{
    const char *name = noise_protocol_name(hs->pattern);
    size_t name_size = strlen(name);
    TRONE_ASSERT(name_size <= NOISE_HASH_LEN);
    memset(hs->sym.h, 0, NOISE_HASH_LEN);
    memcpy(hs->sym.h, name, name_size);
    memcpy(hs->sym.ck, hs->sym.h, NOISE_HASH_LEN);
    noise_mix_hash(&hs->sym, prologue, prologue_size);

    const uint8_t *initiator_s = hs->initiator ? hs->s_public : hs->rs;
    const uint8_t *responder_s = hs->initiator ? hs->rs : hs->s_public;
    if (hs->pattern == NOISE_PATTERN_KK) {
        noise_mix_hash(&hs->sym, initiator_s, NOISE_KEY_LEN);
    }
    noise_mix_hash(&hs->sym, responder_s, NOISE_KEY_LEN);
}

int noise_handshake_init(struct noise_handshake *hs, enum noise_pattern pattern, bool initiator,
                         const uint8_t *prologue, size_t prologue_size,
                         const uint8_t s_secret[NOISE_KEY_LEN], const uint8_t *rs,
                         const uint8_t e_secret[NOISE_KEY_LEN])
{
    TRONE_ASSERT(hs != NULL && s_secret != NULL && e_secret != NULL);
    TRONE_ASSERT(prologue != NULL || prologue_size == 0);
    sodium_memzero(hs, sizeof(*hs));
    if (sodium_init() < 0) {
        return TRONE_EIO;
    }
    bool rs_needed = pattern == NOISE_PATTERN_KK || initiator;
    if ((pattern != NOISE_PATTERN_KK && pattern != NOISE_PATTERN_IK) || rs_needed != (rs != NULL)) {
        return TRONE_EINVAL;
    }
    hs->pattern = pattern;
    hs->initiator = initiator;
    memcpy(hs->s_secret, s_secret, NOISE_KEY_LEN);
    memcpy(hs->e_secret, e_secret, NOISE_KEY_LEN);
    if (crypto_scalarmult_base(hs->s_public, hs->s_secret) != 0 ||
        crypto_scalarmult_base(hs->e_public, hs->e_secret) != 0) {
        sodium_memzero(hs, sizeof(*hs));
        return TRONE_EINVAL;
    }
    if (rs != NULL) {
        memcpy(hs->rs, rs, NOISE_KEY_LEN);
        hs->has_rs = true;
    }
    noise_handshake_start(hs, prologue, prologue_size);
    return 0;
}

void noise_handshake_close(struct noise_handshake *hs) { sodium_memzero(hs, sizeof(*hs)); }

/* MixKey(DH(...)) for the tokens ee, es, se and ss (section 5.3). X25519 rejects an all-zero
 * result (a low-order point from the peer): that fails the handshake. */
static int noise_token_dh(struct noise_handshake *hs, uint8_t token)
{
    const uint8_t *secret = NULL;
    const uint8_t *public_key = NULL;
    bool e_local = token == NOISE_TOKEN_EE || (token == NOISE_TOKEN_ES && hs->initiator) ||
                   (token == NOISE_TOKEN_SE && !hs->initiator);
    bool e_remote = token == NOISE_TOKEN_EE || (token == NOISE_TOKEN_ES && !hs->initiator) ||
                    (token == NOISE_TOKEN_SE && hs->initiator);
    secret = e_local ? hs->e_secret : hs->s_secret;
    public_key = e_remote ? hs->re : hs->rs;
    TRONE_ASSERT(e_remote ? hs->has_re : hs->has_rs);

    uint8_t shared[NOISE_KEY_LEN];
    int rc = 0;
    if (crypto_scalarmult(shared, secret, public_key) != 0) {
        rc = TRONE_EPROTO;
        goto out;
    }
    noise_mix_key(&hs->sym, shared);
out:
    sodium_memzero(shared, sizeof(shared));
    return rc;
}

/* Bytes a message adds to its payload: e, an encrypted s for IK message 1, and the tag of
 * the payload (a key is always set by then: both patterns mix a DH before the payload). */
static size_t noise_message_overhead(const struct noise_handshake *hs)
{
    if (hs->pattern == NOISE_PATTERN_IK && hs->message_idx == 0) {
        return NOISE_IK_MESSAGE1_MIN;
    }
    return NOISE_KK_MESSAGE1_MIN;
}

/* Runs the tokens of the current message for the writer; out has room for them. */
static int noise_write_tokens(struct noise_handshake *hs, uint8_t *out, size_t *used)
{
    const uint8_t *tokens = noise_tokens(hs);
    for (unsigned i = 0; i < NOISE_TOKENS_MAX && tokens[i] != NOISE_TOKEN_END; i++) {
        int rc = 0;
        size_t size = 0;
        if (tokens[i] == NOISE_TOKEN_E) {
            memcpy(out + *used, hs->e_public, NOISE_KEY_LEN);
            noise_mix_hash(&hs->sym, hs->e_public, NOISE_KEY_LEN);
            *used += NOISE_KEY_LEN;
        } else if (tokens[i] == NOISE_TOKEN_S) {
            rc = noise_encrypt_and_hash(&hs->sym, hs->s_public, NOISE_KEY_LEN, out + *used, &size);
            *used += size;
        } else {
            rc = noise_token_dh(hs, tokens[i]);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload, size_t payload_size,
                          uint8_t *out, size_t out_capacity, size_t *out_size)
{
    TRONE_ASSERT(hs != NULL && out != NULL && out_size != NULL);
    TRONE_ASSERT(payload != NULL || payload_size == 0);
    if (hs->failed) {
        return TRONE_EPROTO;
    }
    if (hs->message_idx >= 2 || (hs->message_idx == 0) != hs->initiator) {
        return TRONE_EINVAL;
    }
    size_t overhead = noise_message_overhead(hs);
    if (payload_size > NOISE_MESSAGE_MAX - overhead || overhead + payload_size > out_capacity) {
        return TRONE_ETOOBIG;
    }
    size_t used = 0;
    size_t size = 0;
    int rc = noise_write_tokens(hs, out, &used);
    if (rc == 0) {
        rc = noise_encrypt_and_hash(&hs->sym, payload, payload_size, out + used, &size);
    }
    if (rc != 0) {
        hs->failed = true;
        sodium_memzero(out, out_capacity);
        return TRONE_EPROTO;
    }
    used += size;
    TRONE_ASSERT(used == overhead + payload_size);
    hs->message_idx++;
    *out_size = used;
    return 0;
}

/* Runs the tokens of the current message for the reader over message[*used...]; the caller
 * checked that the message holds at least the overhead. */
static int noise_read_tokens(struct noise_handshake *hs, const uint8_t *message, size_t *used)
{
    const uint8_t *tokens = noise_tokens(hs);
    for (unsigned i = 0; i < NOISE_TOKENS_MAX && tokens[i] != NOISE_TOKEN_END; i++) {
        int rc = 0;
        size_t size = 0;
        if (tokens[i] == NOISE_TOKEN_E) {
            memcpy(hs->re, message + *used, NOISE_KEY_LEN);
            hs->has_re = true;
            noise_mix_hash(&hs->sym, hs->re, NOISE_KEY_LEN);
            *used += NOISE_KEY_LEN;
        } else if (tokens[i] == NOISE_TOKEN_S) {
            TRONE_ASSERT(!hs->has_rs);
            TRONE_ASSERT(hs->sym.cipher.has_key);
            rc = noise_decrypt_and_hash(&hs->sym, message + *used, NOISE_KEY_LEN + NOISE_TAG_LEN,
                                        hs->rs, &size);
            hs->has_rs = rc == 0;
            *used += NOISE_KEY_LEN + NOISE_TAG_LEN;
        } else {
            rc = noise_token_dh(hs, tokens[i]);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int noise_handshake_read(struct noise_handshake *hs, const uint8_t *message, size_t message_size,
                         uint8_t *payload, size_t payload_capacity, size_t *payload_size)
{
    TRONE_ASSERT(hs != NULL && payload_size != NULL);
    TRONE_ASSERT(message != NULL || message_size == 0);
    TRONE_ASSERT(payload != NULL || payload_capacity == 0);
    if (hs->failed) {
        return TRONE_EPROTO;
    }
    if (hs->message_idx >= 2 || (hs->message_idx == 1) != hs->initiator) {
        return TRONE_EINVAL;
    }
    int rc = 0;
    size_t overhead = noise_message_overhead(hs);
    size_t used = 0;
    size_t size = 0;
    if (message_size > NOISE_MESSAGE_MAX || message_size < overhead) {
        rc = TRONE_EBADMSG;
        goto out;
    }
    if (message_size - overhead > payload_capacity) {
        rc = TRONE_ETOOBIG;
        goto out;
    }
    rc = noise_read_tokens(hs, message, &used);
    if (rc == 0) {
        rc = noise_decrypt_and_hash(&hs->sym, message + used, message_size - used, payload, &size);
    }
    if (rc == 0) {
        TRONE_ASSERT(size == message_size - overhead);
        hs->message_idx++;
        *payload_size = size;
    }
out:
    if (rc != 0) {
        hs->failed = true;
        *payload_size = 0;
    }
    return rc;
}

bool noise_handshake_done(const struct noise_handshake *hs)
{
    return !hs->failed && hs->message_idx == 2;
}

void noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                           struct noise_cipher *recv)
{
    TRONE_ASSERT(noise_handshake_done(hs));
    uint8_t k1[NOISE_HASH_LEN];
    uint8_t k2[NOISE_HASH_LEN];
    noise_hkdf2(hs->sym.ck, NULL, 0, k1, k2);
    noise_cipher_set_key(hs->initiator ? send : recv, k1);
    noise_cipher_set_key(hs->initiator ? recv : send, k2);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    /* The handshake is over: keep h (channel binding) and the public keys only. */
    sodium_memzero(hs->sym.ck, sizeof(hs->sym.ck));
    sodium_memzero(&hs->sym.cipher, sizeof(hs->sym.cipher));
    sodium_memzero(hs->s_secret, sizeof(hs->s_secret));
    sodium_memzero(hs->e_secret, sizeof(hs->e_secret));
}

const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

const uint8_t *noise_handshake_hash(const struct noise_handshake *hs) { return hs->sym.h; }
