/* smr_msg.h: the wire messages of the replication protocol and their codec.
 * Pure functions: no I/O, no clock. Decoders check every length and reject trailing bytes;
 * they do not verify signatures (smr_sig.c does), so a decoded message is only well formed.
 * docs/PROTOCOL.md describes each message, who sends it and what the receiver checks. */
#ifndef TRONE_SMR_MSG_H
#define TRONE_SMR_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"

enum smr_msg_type {
    SMR_MSG_REQUEST = 1,      /* client -> every replica: a signed operation */
    SMR_MSG_REPLY = 2,        /* replica -> client: the result of an executed request */
    SMR_MSG_PRE_PREPARE = 3,  /* leader -> backups: batch proposed for (view, seq), signed */
    SMR_MSG_PREPARE = 4,      /* replica -> all: signed vote for (view, seq, digest) */
    SMR_MSG_COMMIT = 5,       /* replica -> all: vote, authenticated by the session only */
    SMR_MSG_CHECKPOINT = 6,   /* replica -> all: signed state digest at seq */
    SMR_MSG_VIEW_CHANGE = 7,  /* replica -> all: signed, with checkpoint and prepared proofs */
    SMR_MSG_NEW_VIEW = 8,     /* new leader -> all: signed, carries the view changes */
    SMR_MSG_STATUS = 9,       /* replica -> all, periodic: where it is (drives retransmission) */
    SMR_MSG_DECIDED = 10,     /* replica -> laggard: a decided batch; f+1 matching are proof */
    SMR_MSG_STATE_REQUEST = 11, /* laggard -> replica: send me your stable checkpoint */
    SMR_MSG_STATE = 12,       /* replica -> laggard: checkpoint proof and state snapshot */
};

#define SMR_MSG_TYPE_MAX 12

/* A client request. The signature covers the context label, client key, id and op. */
struct smr_request {
    uint8_t client[TRONE_KEY_LEN];
    uint64_t request_id;
    const uint8_t *op; /* borrowed */
    uint32_t op_size;
    uint8_t sig[TRONE_SIG_LEN];
};

struct smr_reply {
    uint32_t replica;
    uint64_t view;
    uint64_t request_id;
    int32_t status;         /* 0 executed; TRONE_ESTALE if the id was older than the last one */
    const uint8_t *result;  /* borrowed */
    uint32_t result_size;
};

/* A batch is the encoded request list: u32 count, then each request. Its digest is the
 * BLAKE2b-256 of those bytes; the empty batch (count 0) is the null request of a new view. */
struct smr_pre_prepare {
    uint64_t view;
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
    const uint8_t *batch; /* borrowed */
    uint32_t batch_size;
    uint8_t sig[TRONE_SIG_LEN]; /* leader's, over smr_sig_pre_prepare() */
};

/* PREPARE and COMMIT share one shape; only PREPARE's signature is meaningful. */
struct smr_vote {
    uint64_t view;
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
    uint32_t replica;
    uint8_t sig[TRONE_SIG_LEN];
};

struct smr_checkpoint {
    uint64_t seq;
    uint8_t digest[TRONE_HASH_LEN];
    uint32_t replica;
    uint8_t sig[TRONE_SIG_LEN];
};

struct smr_status {
    uint32_t replica;
    uint64_t view;
    uint8_t view_changing; /* 1 while waiting for NEW_VIEW of `view` */
    uint64_t executed;
    uint64_t stable;       /* last stable checkpoint seq */
};

/* DECIDED: seq was committed with this batch. */
struct smr_decided {
    uint32_t replica;
    uint64_t seq;
    const uint8_t *batch;
    uint32_t batch_size;
};

struct smr_state_request {
    uint32_t replica;
    uint64_t seq;
};

/* Encoders append one whole message to out (type byte first). They cannot fail except by the
 * sticky buffer error (TRONE_ETOOBIG/TRONE_ENOMEM), which the caller checks on out->error. */
void smr_msg_encode_request(struct buf *out, const struct smr_request *m);
void smr_msg_encode_reply(struct buf *out, const struct smr_reply *m);
void smr_msg_encode_pre_prepare(struct buf *out, const struct smr_pre_prepare *m);
void smr_msg_encode_vote(struct buf *out, enum smr_msg_type type, const struct smr_vote *m);
void smr_msg_encode_checkpoint(struct buf *out, const struct smr_checkpoint *m);
void smr_msg_encode_status(struct buf *out, const struct smr_status *m);
void smr_msg_encode_decided(struct buf *out, const struct smr_decided *m);
void smr_msg_encode_state_request(struct buf *out, const struct smr_state_request *m);

/* Decoders read one whole message of the given shape from data; pointers in the result
 * point into data. Return 0 or TRONE_EBADMSG (wrong type, bad length, trailing bytes). */
TRONE_MUST_CHECK int smr_msg_decode_request(const uint8_t *data, size_t size,
                                            struct smr_request *m);
/* Reads one request from inside a batch or message; advances r. */
void smr_msg_read_request(struct buf_reader *r, struct smr_request *m);
TRONE_MUST_CHECK int smr_msg_decode_reply(const uint8_t *data, size_t size, struct smr_reply *m);
TRONE_MUST_CHECK int smr_msg_decode_pre_prepare(const uint8_t *data, size_t size,
                                                struct smr_pre_prepare *m);
TRONE_MUST_CHECK int smr_msg_decode_vote(const uint8_t *data, size_t size,
                                         struct smr_vote *m);
TRONE_MUST_CHECK int smr_msg_decode_checkpoint(const uint8_t *data, size_t size,
                                               struct smr_checkpoint *m);
TRONE_MUST_CHECK int smr_msg_decode_status(const uint8_t *data, size_t size,
                                           struct smr_status *m);
TRONE_MUST_CHECK int smr_msg_decode_decided(const uint8_t *data, size_t size,
                                            struct smr_decided *m);
TRONE_MUST_CHECK int smr_msg_decode_state_request(const uint8_t *data, size_t size,
                                                  struct smr_state_request *m);

/* Batches: count then requests. smr_batch_count checks the whole batch is well formed and
 * returns its request count (>= 0) or TRONE_EBADMSG. */
TRONE_MUST_CHECK int smr_batch_count(const uint8_t *batch, size_t size);
void smr_batch_digest(const uint8_t *batch, size_t size, uint8_t digest[TRONE_HASH_LEN]);

/* The message type of an encoded message, or 0 if empty/unknown. */
int smr_msg_type(const uint8_t *data, size_t size);

#endif
