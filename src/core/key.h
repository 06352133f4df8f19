/* key.h: Ed25519 identities, their key files, and hex encoding of keys.
 * A key file is text, mode 0600: "name = ...", "public = <64 hex>", "secret = <128 hex>". */
#ifndef TRONE_KEY_H
#define TRONE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "trone/error.h"

struct key_identity {
    char name[TRONE_NAME_MAX + 1];
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];
};

/* Makes a fresh identity with libsodium's randomness. Fails only on a bad name (EINVAL). */
TRONE_MUST_CHECK int key_identity_generate(struct key_identity *id, const char *name);
/* Writes the key file with mode 0600 (refuses to overwrite: TRONE_EEXIST). */
TRONE_MUST_CHECK int key_identity_save(const struct key_identity *id, const char *path);
/* Loads and checks a key file (the public key must match the secret). On error, id is zeroed
 * and, if errmsg is not NULL, a one-line reason is written there. */
TRONE_MUST_CHECK int key_identity_load(struct key_identity *id, const char *path,
                                       char *errmsg, size_t errmsg_size);
/* Wipes the secret. */
void key_identity_wipe(struct key_identity *id);

/* X25519 keys for Noise, derived from the Ed25519 identity (DESIGN.md section 2). */
TRONE_MUST_CHECK int key_x25519_public(const uint8_t ed_public[TRONE_KEY_LEN],
                                       uint8_t x_public[TRONE_KEY_LEN]);
TRONE_MUST_CHECK int key_x25519_secret(const uint8_t ed_secret[TRONE_SECRET_KEY_LEN],
                                       uint8_t x_secret[TRONE_KEY_LEN]);

/* Lower-case hex. out must hold 2*size+1 bytes. */
void key_hex_encode(char *out, const uint8_t *data, size_t size);
/* Exactly 2*size hex digits; on error out is zeroed and TRONE_EINVAL returned. */
TRONE_MUST_CHECK int key_hex_decode(uint8_t *out, size_t size, const char *hex);

#endif
