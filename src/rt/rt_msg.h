/* rt_msg.h: runtime-level messages between a client and one replica, answered by the replica
 * runtime itself rather than ordered by the protocol: the status query and its answer.
 * Pure codec: no I/O. Type bytes 32 and up are reserved for the runtime; smr uses 1..12. */
#ifndef TRONE_RT_MSG_H
#define TRONE_RT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

enum rt_msg_type {
    RT_MSG_STATUS_QUERY = 32,  /* client -> replica, empty body */
    RT_MSG_STATUS_ANSWER = 33, /* replica -> client */
};

/* Wire size of a status answer: type, replica, view, leader, view_changing, executed,
 * checkpoint, digest, peers, durable events held, fetched from peers, served to peers. */
#define RT_MSG_STATUS_ANSWER_SIZE                                                               \
    (1u + 4u + 8u + 4u + 1u + 8u + 8u + TRONE_HASH_LEN + 8u + 8u + 8u + 8u)

/* What one replica says about itself. peers has bit j set when this replica has sessions
 * with replica j open in both directions (its own bit is never set). */
struct rt_status {
    uint32_t replica;
    uint64_t view;
    uint32_t leader;
    bool view_changing;
    uint64_t executed;
    uint64_t checkpoint;            /* last stable checkpoint seq */
    uint8_t digest[TRONE_HASH_LEN]; /* control table digest */
    uint64_t peers;
    uint64_t durable_events;  /* durable events in this replica's store */
    uint64_t durable_fetched; /* of which fetched from peers since start (anti-entropy) */
    uint64_t durable_served;  /* durable events sent to peers since start */
};

/* The runtime message type of data (RT_MSG_*), or 0 if it is not a runtime message. */
int rt_msg_type(const uint8_t *data, size_t size);

/* Encoders append one whole message; errors are the sticky buffer error on out->error.
 * The answer encoder asserts the fields are in range (the runtime fills them itself). */
void rt_msg_encode_status_query(struct buf *out);
void rt_msg_encode_status_answer(struct buf *out, const struct rt_status *m);

/* Strict decoders: 0, or TRONE_EBADMSG on a wrong type or length, trailing bytes, a replica
 * or leader id >= TRONE_REPLICAS_MAX, view_changing other than 0/1, or a peers bit outside
 * the replica range or equal to the replica's own id. On error *m is zeroed. */
TRONE_MUST_CHECK int rt_msg_decode_status_query(const uint8_t *data, size_t size);
TRONE_MUST_CHECK int rt_msg_decode_status_answer(const uint8_t *data, size_t size,
                                                 struct rt_status *m);

#endif
