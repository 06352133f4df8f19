/* chan_auth.h: what an event's end-to-end PKS signature covers, signing and verifying it
 * (libsodium Ed25519), and the match digest subscribers vote on for BFT channels.
 * Pure functions: no I/O, no clock, no randomness, no allocation.
 *
 * Signed input (fixed size, CHAN_AUTH_INPUT_SIZE bytes, no length ambiguity):
 *   "trone-event" padded with NUL to 12 bytes | u8 tag length | tag padded with NUL to
 *   TRONE_TAG_MAX bytes | publisher key (32) | u64 epoch | u64 seq | u64 time_us |
 *   BLAKE2b-256(payload)
 * Match digest: BLAKE2b-256 over the signed input | u16 auth size | auth bytes (PKS: the
 * signature; SI: none), so two copies match only if every field and the authenticator do. */
#ifndef TRONE_CHAN_AUTH_H
#define TRONE_CHAN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "chan/chan_msg.h"
#include "core/limits.h"
#include "trone/error.h"

#define CHAN_AUTH_LABEL "trone-event"
#define CHAN_AUTH_LABEL_SIZE 12u
#define CHAN_AUTH_INPUT_SIZE \
    (CHAN_AUTH_LABEL_SIZE + 1u + TRONE_TAG_MAX + TRONE_KEY_LEN + 3u * 8u + TRONE_HASH_LEN)
/* A PKS authenticator is exactly one Ed25519 signature. */
#define CHAN_AUTH_PKS_SIZE TRONE_SIG_LEN

_Static_assert(CHAN_AUTH_PKS_SIZE <= CHAN_AUTH_MAX, "a signature fits the auth field");

/* Fills the fixed-size signed input of event e (its epoch, seq, time_us and payload; e->auth
 * is ignored) on channel tag (NUL-terminated, at most TRONE_TAG_MAX bytes: asserted, decoded
 * tags always are) by publisher. Cannot fail. */
void chan_auth_input(uint8_t out[CHAN_AUTH_INPUT_SIZE], const char *tag,
                     const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e);

/* Signs event e (e->auth ignored) with the publisher's Ed25519 secret key, writing
 * CHAN_AUTH_PKS_SIZE bytes to sig. The public key is taken from the secret key. Cannot fail. */
void chan_auth_sign(uint8_t sig[CHAN_AUTH_PKS_SIZE], const uint8_t secret[TRONE_SECRET_KEY_LEN],
                    const char *tag, const struct chan_event *e);

/* Verifies e->auth as publisher's PKS signature of e on channel tag. Returns 0 if it verifies,
 * TRONE_EAUTH otherwise (wrong size, bad signature, key not a valid point). Costs one Ed25519
 * verification (about 60 µs, DESIGN.md 7): callers verify each distinct copy at most once. */
TRONE_MUST_CHECK int chan_auth_verify(const char *tag, const uint8_t publisher[TRONE_KEY_LEN],
                                      const struct chan_event *e);

/* The match digest of event e (auth included) on channel tag by publisher. Cannot fail. */
void chan_auth_digest(uint8_t digest[TRONE_HASH_LEN], const char *tag,
                      const uint8_t publisher[TRONE_KEY_LEN], const struct chan_event *e);

#endif
