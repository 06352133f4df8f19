/* smr_sig.h: what each protocol signature covers, and signing/verifying it. Every signed
 * byte string starts with a context label naming the message type, so a signature for one
 * message can never be replayed as another (STYLE.md rule 16). Ed25519 via libsodium. */
#ifndef TRONE_SMR_SIG_H
#define TRONE_SMR_SIG_H

#include <stdbool.h>
#include <stdint.h>

#include "smr/smr_msg.h"

void smr_sign_request(struct smr_request *m, const uint8_t secret[TRONE_SECRET_KEY_LEN]);
bool smr_verify_request(const struct smr_request *m);

void smr_sign_pre_prepare(struct smr_pre_prepare *m, const uint8_t secret[TRONE_SECRET_KEY_LEN]);
bool smr_verify_pre_prepare(const struct smr_pre_prepare *m, const uint8_t key[TRONE_KEY_LEN]);

/* Signs a PREPARE vote (view, seq, digest, replica). */
void smr_sign_prepare(struct smr_vote *m, const uint8_t secret[TRONE_SECRET_KEY_LEN]);
bool smr_verify_prepare(const struct smr_vote *m, const uint8_t key[TRONE_KEY_LEN]);

void smr_sign_checkpoint(struct smr_checkpoint *m, const uint8_t secret[TRONE_SECRET_KEY_LEN]);
bool smr_verify_checkpoint(const struct smr_checkpoint *m, const uint8_t key[TRONE_KEY_LEN]);

/* Whole-message signatures (VIEW_CHANGE, NEW_VIEW): over label || body. */
void smr_sign_body(const char *label, const uint8_t *body, size_t size,
                   const uint8_t secret[TRONE_SECRET_KEY_LEN], uint8_t sig[TRONE_SIG_LEN]);
bool smr_verify_body(const char *label, const uint8_t *body, size_t size,
                     const uint8_t sig[TRONE_SIG_LEN], const uint8_t key[TRONE_KEY_LEN]);

#endif
