/* noise.h: the Noise Protocol Framework (revision 34) for two patterns, sans-I/O:
 * Noise_KK_25519_ChaChaPoly_BLAKE2b (replica to replica) and Noise_IK_25519_ChaChaPoly_BLAKE2b
 * (client to replica). Deterministic: the caller supplies the ephemeral secret. No I/O, no
 * clock, no randomness, no allocation. Section numbers below refer to the Noise spec. */
#ifndef TRONE_NOISE_H
#define TRONE_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trone/error.h"

#define NOISE_KEY_LEN 32u        /* DHLEN of 25519 and the ChaChaPoly key length */
#define NOISE_HASH_LEN 64u       /* HASHLEN of BLAKE2b */
#define NOISE_TAG_LEN 16u        /* Poly1305 tag */
#define NOISE_MESSAGE_MAX 65535u /* spec section 3: every Noise message */
/* The reserved nonce (section 5.1): a cipher refuses to use it. */
#define NOISE_NONCE_MAX UINT64_MAX
/* Handshake messages of KK and IK with an empty payload. */
#define NOISE_KK_MESSAGE1_MIN (NOISE_KEY_LEN + NOISE_TAG_LEN)
#define NOISE_IK_MESSAGE1_MIN (NOISE_KEY_LEN + NOISE_KEY_LEN + 2u * NOISE_TAG_LEN)

enum noise_pattern { NOISE_PATTERN_KK = 1, NOISE_PATTERN_IK = 2 };

/* A CipherState (section 5.1): a ChaChaPoly key and the next nonce. */
struct noise_cipher {
    uint8_t k[NOISE_KEY_LEN];
    uint64_t n;
    bool has_key;
};

/* A SymmetricState (section 5.2). */
struct noise_symmetric {
    struct noise_cipher cipher;
    uint8_t ck[NOISE_HASH_LEN];
    uint8_t h[NOISE_HASH_LEN];
};

/* A HandshakeState (section 5.3) for one of the two-message patterns KK and IK. */
struct noise_handshake {
    struct noise_symmetric sym;
    enum noise_pattern pattern;
    bool initiator;
    bool failed;         /* a step failed: every later call returns TRONE_EPROTO */
    uint8_t message_idx; /* messages written or read so far: 0, 1 or 2 (done) */
    uint8_t s_secret[NOISE_KEY_LEN];
    uint8_t s_public[NOISE_KEY_LEN];
    uint8_t e_secret[NOISE_KEY_LEN];
    uint8_t e_public[NOISE_KEY_LEN];
    uint8_t rs[NOISE_KEY_LEN];
    uint8_t re[NOISE_KEY_LEN];
    bool has_rs;
    bool has_re;
};

/* Starts a handshake (Initialize, section 5.3). s_secret is the local static X25519 secret,
 * rs the remote static public key (required for KK and for the IK initiator, NULL for the IK
 * responder, which learns it from message 1), e_secret the ephemeral X25519 secret (32 random
 * bytes chosen by the caller). The prologue is borrowed for the call. Returns 0, or
 * TRONE_EINVAL on a wrong combination of arguments, TRONE_EIO if libsodium cannot start (hs is
 * then zeroed). Copies every key. */
TRONE_MUST_CHECK int noise_handshake_init(struct noise_handshake *hs, enum noise_pattern pattern,
                                          bool initiator, const uint8_t *prologue,
                                          size_t prologue_size,
                                          const uint8_t s_secret[NOISE_KEY_LEN], const uint8_t *rs,
                                          const uint8_t e_secret[NOISE_KEY_LEN]);
/* Wipes every secret of the handshake. Cannot fail. */
void noise_handshake_close(struct noise_handshake *hs);

/* WriteMessage: writes the next handshake message carrying payload into out (capacity
 * out_capacity) and sets *out_size. Returns 0; TRONE_EINVAL when it is not our turn;
 * TRONE_ETOOBIG when the message would exceed NOISE_MESSAGE_MAX or out_capacity; TRONE_EPROTO
 * after an earlier failure or on an all-zero DH result (the handshake is then failed). */
TRONE_MUST_CHECK int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload,
                                           size_t payload_size, uint8_t *out, size_t out_capacity,
                                           size_t *out_size);
/* ReadMessage: reads the next handshake message from untrusted bytes, decrypts its payload
 * into payload (capacity payload_capacity) and sets *payload_size. Returns 0; TRONE_EINVAL
 * when it is not the peer's turn; TRONE_EBADMSG on a truncated or oversized message;
 * TRONE_EAUTH on failed decryption; TRONE_EPROTO on an all-zero DH result or after an earlier
 * failure; TRONE_ETOOBIG if payload_capacity is too small. Any error fails the handshake. */
TRONE_MUST_CHECK int noise_handshake_read(struct noise_handshake *hs, const uint8_t *message,
                                          size_t message_size, uint8_t *payload,
                                          size_t payload_capacity, size_t *payload_size);
/* True once both messages went through. */
bool noise_handshake_done(const struct noise_handshake *hs);
/* Split (section 5.2): the transport ciphers, send and recv from our point of view. Requires
 * done. Wipes the handshake's chaining key and DH secrets; h stays for the handshake hash. */
void noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                           struct noise_cipher *recv);
/* The remote static public key, or NULL while it is unknown (IK responder before message 1). */
const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs);
/* GetHandshakeHash: h, NOISE_HASH_LEN bytes; the channel binding once done. */
const uint8_t *noise_handshake_hash(const struct noise_handshake *hs);

/* Encrypts a transport message with the explicit nonce n (ENCRYPT(k, n, ad, plaintext)) into
 * out, which must hold size + NOISE_TAG_LEN bytes (out may equal plaintext). ad may be NULL
 * when ad_size is 0. Returns 0; TRONE_EREPLAY for nonce NOISE_NONCE_MAX; TRONE_ETOOBIG if the
 * ciphertext would exceed NOISE_MESSAGE_MAX; TRONE_EINVAL without a key. */
TRONE_MUST_CHECK int noise_cipher_encrypt(const struct noise_cipher *c, uint64_t n,
                                          const uint8_t *ad, size_t ad_size,
                                          const uint8_t *plaintext, size_t size, uint8_t *out);
/* Decrypts ciphertext (size >= NOISE_TAG_LEN) with nonce n into out (size - NOISE_TAG_LEN
 * bytes; may equal ciphertext). Returns 0; TRONE_EAUTH on a failed tag (out is zeroed);
 * TRONE_EBADMSG if too short or too long; TRONE_EREPLAY for nonce NOISE_NONCE_MAX. */
TRONE_MUST_CHECK int noise_cipher_decrypt(const struct noise_cipher *c, uint64_t n,
                                          const uint8_t *ad, size_t ad_size,
                                          const uint8_t *ciphertext, size_t size, uint8_t *out);
/* Wipes the key. */
void noise_cipher_close(struct noise_cipher *c);

#endif
