/* session.h: one encrypted, authenticated connection, sans-I/O. It drives a Noise handshake
 * (KK between replicas, IK from a client to a replica; 25519, ChaChaPoly, BLAKE2b, see
 * noise.h), then frames, encrypts, fragments and reassembles application messages.
 * The caller moves bytes: it feeds what the socket read and writes what `out` holds.
 *
 * Wire format of a connection:
 *   hello (cleartext, initiator only): "TRONE1" | u8 role (1 replica, 2 client) | u32 replica id
 *   then frames: u32 length | body, with length <= 8 + 65535
 *     handshake frame body: a Noise handshake message
 *     transport frame body: u64 nonce | ChaChaPoly ciphertext; the nonce must equal the next
 *       expected counter, so replayed, dropped or reordered frames are rejected
 *   transport plaintext: u8 flags (bit 0: more fragments follow) | fragment
 * The Noise prologue is "trone-session-v1" followed by the hello bytes, so a tampered hello
 * fails the handshake. */
#ifndef TRONE_SESSION_H
#define TRONE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/noise.h"

enum sess_role { SESS_ROLE_REPLICA = 1, SESS_ROLE_CLIENT = 2 };

/* How a responder decides whom it talks to. A replica hello names a replica id, whose key
 * must be in the cluster file (KK). A client (IK) proves its static key in the handshake and
 * sends its Ed25519 public key as the payload of its first message; the responder checks that
 * this key converts to the static key used, then asks client_allowed. */
struct sess_peer_lookup {
    void *ctx;
    /* Fill the Ed25519 public key of replica id; TRONE_ENOENT if unknown. */
    int (*replica_key)(void *ctx, uint32_t id, uint8_t ed_public[TRONE_KEY_LEN]);
    /* Accept or refuse a client by its Ed25519 public key (sent encrypted as the payload of
     * the first IK message, and checked to convert to the static X25519 key used). */
    int (*client_allowed)(void *ctx, const uint8_t ed_public[TRONE_KEY_LEN]);
};

enum sess_state { SESS_HELLO, SESS_HANDSHAKE, SESS_OPEN, SESS_FAILED };

struct sess {
    enum sess_state state;
    bool initiator;
    enum sess_role role;            /* of the initiator */
    uint32_t peer_replica;          /* replica id of the peer, when it is a replica */
    uint8_t peer_key[TRONE_KEY_LEN]; /* Ed25519 public key of the peer, once known */
    struct noise_handshake hs;
    struct noise_cipher send;
    struct noise_cipher recv;
    struct buf in;       /* unconsumed input bytes */
    size_t in_read;      /* bytes at the front of `in` already consumed */
    struct buf message;  /* reassembly of the current application message */
    bool message_ready;  /* `message` holds a message returned by sess_next: reset it next */
    struct buf out;      /* bytes to write to the socket; the caller drains and resets it */
    int error;           /* why the session failed */
    struct sess_peer_lookup lookup;
    uint8_t self_ed_public[TRONE_KEY_LEN];
    uint8_t self_x_secret[TRONE_KEY_LEN];
    uint8_t self_x_public[TRONE_KEY_LEN];
};

/* Starts an initiator: a replica (role REPLICA, self_id its id) dialling replica peer_id with
 * KK, or a client (role CLIENT) dialling a replica with IK. The hello and first handshake
 * message are appended to s->out. ephemeral_seed gives the Noise ephemeral key (32 random
 * bytes from the runtime). Returns 0 or a TRONE_E* code. */
TRONE_MUST_CHECK int sess_init_initiator(struct sess *s, enum sess_role role, uint32_t self_id,
                                         const uint8_t self_ed_public[TRONE_KEY_LEN],
                                         const uint8_t self_ed_secret[TRONE_SECRET_KEY_LEN],
                                         uint32_t peer_id,
                                         const uint8_t peer_ed_public[TRONE_KEY_LEN],
                                         const uint8_t ephemeral_seed[32]);
/* Starts a responder (a replica accepting a connection). */
TRONE_MUST_CHECK int sess_init_responder(struct sess *s,
                                         const uint8_t self_ed_public[TRONE_KEY_LEN],
                                         const uint8_t self_ed_secret[TRONE_SECRET_KEY_LEN],
                                         const struct sess_peer_lookup *lookup,
                                         const uint8_t ephemeral_seed[32]);
/* Wipes keys and frees buffers. */
void sess_close(struct sess *s);

/* Appends bytes read from the socket. Returns 0 or an error (the session is then FAILED and
 * the connection must be closed). */
TRONE_MUST_CHECK int sess_feed(struct sess *s, const uint8_t *data, size_t size);
/* Processes buffered input. Returns 1 and sets *msg and *size to a complete application message
 * (valid until the next call), 0 when more bytes are needed, or a negative error (FAILED:
 * bad frame, failed decryption, replay, oversize, unknown peer). Handshake progress may
 * append bytes to s->out; call in a loop until it returns <= 0. */
TRONE_MUST_CHECK int sess_next(struct sess *s, const uint8_t **msg, size_t *size);
/* Encrypts one application message (<= TRONE_MESSAGE_MAX) into s->out, fragmenting it.
 * TRONE_EINVAL before the session is OPEN. */
TRONE_MUST_CHECK int sess_send(struct sess *s, const uint8_t *msg, size_t size);
bool sess_is_open(const struct sess *s);

#endif
