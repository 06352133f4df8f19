/* chan_qop.h: the QoP methods HA and PKE of event channels (DESIGN.md 2, docs/QOP.md): the
 * envelope an HA/PKE event's payload carries, the wrapped-key block, the HA MAC, the PKE
 * encryption and the key wrapping. Pure functions over libsodium: no I/O, no clock, no
 * randomness (the ephemeral keys of a wrap are derived from a secret seed the caller gives),
 * no allocation. Decoders check every length and reject trailing or unknown bytes.
 *
 * Envelope (the wire payload of every event on an HA or PKE channel):
 *   u8 flags (bit 0: a key block follows; other bits 0) | key id (8) |
 *   [u16 block size | block] | body
 *   HA: body = the application's payload; PKE: body = XChaCha20-Poly1305 ciphertext (+16).
 * Block: u8 count (1..CHAN_QOP_RECIPIENTS_MAX) | count * (hint (8) | sealed key (80))
 *   hint = BLAKE2b-64(recipient's Ed25519 public key); sealed key = a libsodium sealed box
 *   (crypto_box_seal format) of the 32-byte channel key K to the recipient's X25519 key.
 * Key id = BLAKE2b-64 keyed by K of "trone-qop-kid": names K without revealing it, and lets
 *   a recipient check that what it unwrapped is the key the events use.
 * Auth field: an event whose envelope carries a block, and every PKE event, is signed with
 *   the publisher's Ed25519 key over the whole envelope (chan_auth_sign, as PKS). Other HA
 *   events carry CHAN_QOP_MAC_SIZE bytes: BLAKE2b keyed by K over the context
 *   ("trone-ha", tag, publisher, epoch, seq, time) and the envelope.
 * PKE: nonce = u64 epoch | u64 seq | 8 zero bytes (unique: a K serves one publisher epoch on
 *   one channel, and seqs never repeat there); associated data = the context ("trone-pke",
 *   tag, publisher, epoch, seq, time) and the envelope's bytes before the body. */
#ifndef TRONE_CHAN_QOP_H
#define TRONE_CHAN_QOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan/chan_auth.h"
#include "chan/chan_msg.h"
#include "core/limits.h"
#include "trone/error.h"

#define CHAN_QOP_KEY_SIZE 32u
#define CHAN_QOP_KEY_ID_SIZE 8u
#define CHAN_QOP_HINT_SIZE 8u
/* crypto_box_SEALBYTES (48) + the key. */
#define CHAN_QOP_SEALED_SIZE (48u + CHAN_QOP_KEY_SIZE)
#define CHAN_QOP_ENTRY_SIZE (CHAN_QOP_HINT_SIZE + CHAN_QOP_SEALED_SIZE)
/* Subscribers a key block names at most (a bigger set is refused with TRONE_EFULL). */
#define CHAN_QOP_RECIPIENTS_MAX 64u
#define CHAN_QOP_BLOCK_MAX (1u + CHAN_QOP_RECIPIENTS_MAX * CHAN_QOP_ENTRY_SIZE)
#define CHAN_QOP_FLAG_KEYS 0x01u
/* flags + key id. */
#define CHAN_QOP_HEADER_SIZE (1u + CHAN_QOP_KEY_ID_SIZE)
/* Envelope bytes besides the body: header, block size and the largest block. */
#define CHAN_QOP_ENVELOPE_MAX (CHAN_QOP_HEADER_SIZE + 2u + CHAN_QOP_BLOCK_MAX)
/* The HA MAC and the PKE tag. */
#define CHAN_QOP_MAC_SIZE 16u
#define CHAN_QOP_TAG_SIZE 16u
/* Largest application payload on an HA/PKE channel: the wire payload must hold it with the
 * largest envelope and the PKE tag. */
#define CHAN_QOP_BODY_MAX (64u * 1024)

_Static_assert(CHAN_QOP_BODY_MAX + CHAN_QOP_TAG_SIZE + CHAN_QOP_ENVELOPE_MAX <= CHAN_PAYLOAD_MAX,
               "an HA/PKE event of the API's largest payload fits the wire");
_Static_assert(CHAN_QOP_MAC_SIZE <= CHAN_AUTH_MAX, "the MAC fits the auth field");
_Static_assert(CHAN_QOP_RECIPIENTS_MAX <= 255u, "the count fits one byte");

/* A decoded envelope; pointers point into the payload it was read from. */
struct chan_qop_envelope {
    uint8_t flags;
    uint8_t key_id[CHAN_QOP_KEY_ID_SIZE];
    const uint8_t *block; /* NULL unless flags has CHAN_QOP_FLAG_KEYS */
    uint16_t block_size;
    size_t header_size; /* bytes before the body (the PKE associated data's tail) */
    const uint8_t *body;
    size_t body_size;
};

/* Decodes an envelope. Returns 0 or TRONE_EBADMSG (short, unknown flags, a block that is
 * not a well-formed block, a PKE body shorter than its tag is NOT checked here). */
TRONE_MUST_CHECK int chan_qop_envelope_read(const uint8_t *payload, size_t size,
                                            struct chan_qop_envelope *env);
/* Checks a block's layout: count in 1..CHAN_QOP_RECIPIENTS_MAX and exactly count entries.
 * Returns the count (> 0) or TRONE_EBADMSG. */
TRONE_MUST_CHECK int chan_qop_block_check(const uint8_t *block, size_t size);

/* The key id of K. Cannot fail. */
void chan_qop_key_id(uint8_t id[CHAN_QOP_KEY_ID_SIZE], const uint8_t key[CHAN_QOP_KEY_SIZE]);
/* The hint naming a recipient in a block. Cannot fail. */
void chan_qop_hint(uint8_t hint[CHAN_QOP_HINT_SIZE], const uint8_t recipient[TRONE_KEY_LEN]);

/* Wraps K for recipient (an Ed25519 public key) as one block entry (hint | sealed box).
 * eph_seed (32 secret bytes, distinct per call) gives the sealed box's ephemeral key, so the
 * output is a function of the inputs; crypto_box_seal_open opens it. Returns 0 or TRONE_EINVAL
 * (the recipient key is not a valid Ed25519 point). */
TRONE_MUST_CHECK int chan_qop_wrap(uint8_t entry[CHAN_QOP_ENTRY_SIZE],
                                   const uint8_t key[CHAN_QOP_KEY_SIZE],
                                   const uint8_t recipient[TRONE_KEY_LEN],
                                   const uint8_t eph_seed[32]);
/* Finds the entry of the recipient owning secret (Ed25519, 64 bytes) in a checked block and
 * unwraps K whose key id must be key_id. Returns 0, TRONE_ENOENT (no entry opens for this
 * key: not a recipient) or TRONE_EAUTH (an entry opened to a key with another id). K is
 * written only on success. */
TRONE_MUST_CHECK int chan_qop_unwrap(uint8_t key[CHAN_QOP_KEY_SIZE], const uint8_t *block,
                                     size_t block_size, const uint8_t secret[TRONE_SECRET_KEY_LEN],
                                     const uint8_t key_id[CHAN_QOP_KEY_ID_SIZE]);

/* HA: the MAC of event e (e->auth ignored; e->payload is the envelope) under K. */
void chan_qop_mac(uint8_t mac[CHAN_QOP_MAC_SIZE], const uint8_t key[CHAN_QOP_KEY_SIZE],
                  const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                  const struct chan_event *e);
/* HA: 0 if e->auth is the MAC of e under K (constant-time compare), else TRONE_EAUTH. */
TRONE_MUST_CHECK int chan_qop_mac_verify(const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                                         const uint8_t publisher[TRONE_KEY_LEN],
                                         const struct chan_event *e);

/* PKE: encrypts plain (plain_size bytes) into out (plain_size + CHAN_QOP_TAG_SIZE bytes)
 * under K for the event (epoch, seq, time_us) whose envelope header (header_size bytes,
 * everything before the body) is header. out may not overlap plain. Cannot fail. */
void chan_qop_seal(uint8_t *out, const uint8_t *plain, size_t plain_size,
                   const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                   const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch, uint64_t seq,
                   uint64_t time_us, const uint8_t *header, size_t header_size);
/* PKE: decrypts the body of env (of event epoch, seq, time_us) into out (body_size - 16
 * bytes). Returns 0, or TRONE_EAUTH (short body, tampered bytes, wrong key or context). */
TRONE_MUST_CHECK int chan_qop_open(uint8_t *out, const struct chan_qop_envelope *env,
                                   const uint8_t key[CHAN_QOP_KEY_SIZE], const char *tag,
                                   const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch,
                                   uint64_t seq, uint64_t time_us, const uint8_t *payload);

#endif
