/* cln_pub.h: the publisher core of the event path (issue 3, DESIGN.md 2), sans-I/O: no I/O,
 * no clock (time comes in as now_us), no randomness. It numbers a channel's events 1,2,3...
 * within the publisher's epoch, signs them (method PKS), keeps them until the ack quorum of
 * replicas acknowledged them (f+1 CFT, 2f+1 BFT), and builds PUBLISH messages per replica
 * (every replica gets every event; most urgent channels first; batched up to a byte budget).
 *
 * How the runtime drives it:
 *   cln_pub_init; cln_pub_channel_open per channel (class from an agreed `channel show`);
 *   connection to replica r open   -> cln_pub_replica_up(r)   (resends everything unacked)
 *   connection to replica r closed -> cln_pub_replica_down(r)
 *   a message from replica r       -> cln_pub_receive(r, bytes)  (ACK)
 *   the application publishes      -> cln_pub_publish            (TRONE_EBUSY: back off)
 *   after any of these, for every replica r that can take more bytes:
 *       while (cln_pub_next_message(p, r, now, &data, &size) > 0) send data to r;
 *   keep one timer at cln_pub_deadline(p); when it fires call cln_pub_tick(now).
 * Total-order channels (docs/PROTOCOL.md section 10): besides the PUBLISH path, each event's
 * range must be ORDERed through the replication protocol. Whenever no ORDER is in flight:
 *       if (cln_pub_order_next(p, &op, &size) > 0) submit op (smr client, non-blocking);
 *   and when the agreed result comes back -> cln_pub_order_done(p, status, result, size).
 * One ORDER is in flight per publisher (the protocol's one-request-per-client rule); it covers
 * every event published since the last one (up to BRK_ORDER_COUNT_MAX), so ORDERs batch
 * naturally while one is being agreed. An event of a total-order channel counts as
 * acknowledged once the ack quorum has it AND its ORDER completed with status 0.
 * Done (for `trone pub`) when cln_pub_counts(p).pending == 0; a channel error (a refusal
 * agreed by f+1 replicas, e.g. TRONE_EPERM) is sticky and returned by later publishes.
 *
 * Memory: each opened channel allocates its queue once (unacked_events_max slots and a
 * byte ring of 2 * unacked_bytes_max); no allocation per event. Events acknowledged by the quorum
 * stay queued for slower replicas until their room is needed. */
#ifndef TRONE_CLN_PUB_H
#define TRONE_CLN_PUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "broker/brk_op.h"
#include "chan/chan_qop.h"
#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

/* Defaults used when a config field is 0. */
#define CLN_PUB_CHANNELS_DEFAULT 64u
#define CLN_PUB_UNACKED_EVENTS_DEFAULT 4096u
#define CLN_PUB_UNACKED_BYTES_DEFAULT (4u * 1024 * 1024)
#define CLN_PUB_MESSAGE_BYTES_DEFAULT (256u * 1024)
#define CLN_PUB_RETRANSMIT_US_DEFAULT 1000000u
#define CLN_PUB_CHANNELS_MAX TRONE_CHANNELS_MAX

struct cln_pub_config {
    uint32_t n; /* replicas, 1..TRONE_REPLICAS_MAX */
    uint32_t f; /* faults tolerated by the cluster */
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN]; /* copied; wiped at close */
    uint64_t epoch;                /* wall-clock µs at publisher start, > 0 */
    uint32_t channels_max;         /* channels open at once */
    uint32_t unacked_events_max;   /* per channel */
    uint64_t unacked_bytes_max;    /* per channel: payload + auth bytes */
    uint32_t message_bytes_max;    /* budget of one PUBLISH message */
    uint64_t retransmit_us;        /* resend to a replica whose acks made no progress */
    uint8_t seed[32];              /* secret randomness for HA/PKE channel keys (rt: random) */
};

struct cln_pub_counts {
    uint64_t published;    /* events accepted by cln_pub_publish */
    uint64_t acknowledged; /* events acked by the ack quorum */
    uint64_t pending;      /* published - acknowledged */
    int error;             /* the channel's sticky error, 0 if none (totals: first error) */
};

/* Private: one queued event; its auth and payload bytes are in the channel's byte ring. */
struct cln_pub_slot {
    uint64_t time_us;
    uint64_t offset; /* in the byte ring (mod size): auth then payload */
    uint32_t payload_size;
    uint16_t auth_size;
    uint32_t stored_size; /* bytes the slot occupies in the ring, padding included */
};

/* Private: per channel and replica. */
struct cln_pub_peer {
    uint64_t acked_seq;     /* highest contiguous seq acked by this replica */
    uint64_t sent_seq;      /* highest seq sent on the current connection */
    uint64_t progress_us;   /* when acks last progressed or sending started */
    int32_t refusal;        /* last refusal status from this replica, 0 if none */
};

/* Private: the channel key of an HA/PKE channel (cln_pub_qop.c, docs/QOP.md). */
struct cln_pub_qop {
    bool keyed;
    uint64_t generation;             /* keys made so far on this channel */
    uint8_t key[CHAN_QOP_KEY_SIZE];  /* K of the current generation */
    uint8_t key_id[CHAN_QOP_KEY_ID_SIZE];
    uint8_t recipients_digest[TRONE_HASH_LEN]; /* of the sorted key set K was wrapped for */
    uint32_t recipient_count;
    uint32_t block_size;             /* 0 when there is no recipient */
    uint8_t block[CHAN_QOP_BLOCK_MAX];
    uint64_t since_block;            /* events published since the last one with the block */
    uint64_t block_us;               /* when the block was last sent */
    bool block_due;                  /* the next event carries the block */
};

/* Private: one channel opened for publishing. */
struct cln_pub_channel {
    char tag[TRONE_TAG_MAX + 1];
    uint8_t (*hashes)[TRONE_HASH_LEN]; /* total order: per-event hashes, indexed like slots */
    uint64_t ordered_seq;    /* total order: highest seq whose ORDER completed */
    uint64_t order_sent_seq; /* total order: end of the ORDER in flight (or last sent) */
    struct brk_class cls;
    uint32_t quorum;         /* acks needed: f+1 CFT, 2f+1 BFT */
    int error;               /* sticky */
    uint64_t next_seq;       /* seq of the next published event */
    uint64_t base_seq;       /* seq of the oldest queued event */
    uint64_t quorum_seq;     /* highest seq acked by the quorum */
    struct cln_pub_slot *slots; /* unacked_events_max, indexed by seq % max */
    uint8_t *ring;           /* 2 * unacked_bytes_max bytes */
    uint64_t ring_head;      /* total bytes ever reserved (write position) */
    uint64_t ring_tail;      /* total bytes ever released */
    uint64_t bytes_pending;  /* bytes of events not yet acked by the quorum */
    uint64_t published;
    struct cln_pub_qop *qop; /* HA/PKE channels only, owned */
    struct cln_pub_peer peers[TRONE_REPLICAS_MAX];
};

struct cln_pub {
    struct cln_pub_config cfg;
    uint32_t channel_count;
    struct cln_pub_channel *channels; /* channels_max */
    bool up[TRONE_REPLICAS_MAX];
    uint32_t cursor[BRK_URGENCY_MAX + 1]; /* round robin among channels of equal urgency */
    struct buf out;                       /* the message returned by cln_pub_next_message */
    struct brk_op *order_op;              /* scratch for building an ORDER */
    struct buf order_out;                 /* the op returned by cln_pub_order_next */
    bool order_inflight;
    uint32_t order_channel;               /* the channel of the ORDER in flight */
    uint32_t order_cursor;                /* round robin among total-order channels */
};

/* Checks the config (n, f, epoch > 0; zero limits take the defaults) and allocates the
 * channel table. Returns 0, TRONE_ECONFIG for a bad config or TRONE_ENOMEM (p is then
 * closed). The caller owns p and must call cln_pub_close after success. */
TRONE_MUST_CHECK int cln_pub_init(struct cln_pub *p, const struct cln_pub_config *cfg);
/* Frees everything and wipes the secret key. Safe on a zeroed or closed p. */
void cln_pub_close(struct cln_pub *p);

/* Opens channel tag (1..TRONE_TAG_MAX bytes) for publishing with its class. Returns the
 * channel's index (>= 0, used by the other calls) or TRONE_EINVAL (bad tag or class),
 * TRONE_ECONFIG (n too small for the class: BFT needs n >= 3f+1), TRONE_EEXIST (already open),
 * TRONE_EFULL (channels_max reached), TRONE_ENOMEM. Unchanged on error. */
TRONE_MUST_CHECK int cln_pub_channel_open(struct cln_pub *p, const char *tag,
                                          const struct brk_class *cls);
/* HA/PKE channels (docs/QOP.md): sets the Ed25519 keys of the subscribers the channel key is
 * wrapped for (count entries, any order, duplicates ignored; from an agreed control-table
 * query). The first call, and any call whose key set differs from the last one, makes a new
 * channel key (a new generation) whose wrapped-key block the next event carries. Returns 1 on
 * a new key, 0 if the set is unchanged, TRONE_EINVAL (not an HA/PKE channel, a key that is not
 * an Ed25519 point), TRONE_EFULL (more than CHAN_QOP_RECIPIENTS_MAX keys); unchanged on error.
 * Until the first success, publishing on the channel fails with TRONE_EAUTH. */
TRONE_MUST_CHECK int cln_pub_channel_recipients(struct cln_pub *p, uint32_t channel_idx,
                                                const uint8_t (*keys)[TRONE_KEY_LEN],
                                                uint32_t count, uint64_t now_us);

/* Finds an open channel by tag: its index or TRONE_ENOENT. */
int cln_pub_channel_find(const struct cln_pub *p, const char *tag);

/* Queues one event on channel_idx: seq = previous + 1, publisher time time_us (wall clock),
 * signed under PKS, MACed under HA, encrypted and signed under PKE (payload at most
 * CHAN_QOP_BODY_MAX there; TRONE_EAUTH before the first cln_pub_channel_recipients). The
 * payload is copied. Returns the event's seq (> 0) on success, or
 * TRONE_ETOOBIG (payload over CHAN_PAYLOAD_MAX or the channel's byte limit), TRONE_EBUSY
 * (the channel's unacked limit is reached: retry after acks), the channel's sticky error;
 * nothing is queued on error. */
TRONE_MUST_CHECK int64_t cln_pub_publish(struct cln_pub *p, uint32_t channel_idx,
                                         const uint8_t *payload, uint32_t payload_size,
                                         uint64_t time_us, uint64_t now_us);

/* One message from replica (borrowed for the call). Accepts ACK; an ACK for another epoch or
 * an unknown tag is ignored (0). Returns 0, or TRONE_EBADMSG (malformed, a type a publisher
 * does not take, or an ack above what was sent: the caller should drop the connection).
 * Never asserts on message contents. */
TRONE_MUST_CHECK int cln_pub_receive(struct cln_pub *p, uint32_t replica, const uint8_t *data,
                                     size_t size, uint64_t now_us);

/* The connection to replica is open: everything it has not acked will be (re)sent. */
void cln_pub_replica_up(struct cln_pub *p, uint32_t replica, uint64_t now_us);
/* The connection to replica closed: nothing is built for it until it is up again. */
void cln_pub_replica_down(struct cln_pub *p, uint32_t replica);

/* Timer: a replica that is up and made no ack progress for retransmit_us on a channel with
 * unacked events gets them resent. */
void cln_pub_tick(struct cln_pub *p, uint64_t now_us);
/* When cln_pub_tick is next wanted (µs, same clock as now_us); UINT64_MAX for never. */
uint64_t cln_pub_deadline(const struct cln_pub *p);

/* Builds the next PUBLISH message for replica: events it has not been sent yet, from the most
 * urgent channel that has some, up to message_bytes_max (at least one event). Returns 1 and
 * sets *data, *size (core-owned, valid until the next call into p), 0 when there is nothing
 * to send (or replica is down), or TRONE_ENOMEM. */
TRONE_MUST_CHECK int cln_pub_next_message(struct cln_pub *p, uint32_t replica, uint64_t now_us,
                                          const uint8_t **data, size_t *size);

/* The next ORDER op to submit, if none is in flight and a total-order channel has events not
 * ordered yet: returns 1 with *op, *size (core-owned, valid until the next call into p) and
 * marks it in flight; 0 otherwise. After a failed submit (TRONE_ESTALE, a new client core)
 * the same range is built again, so a range applied once is answered TRONE_EEXIST, which
 * counts as ordered. */
TRONE_MUST_CHECK int cln_pub_order_next(struct cln_pub *p, const uint8_t **op, size_t *size);
/* The ORDER in flight completed: status is the protocol client's (0, or TRONE_ESTALE: retried),
 * result the agreed result bytes. A refusal (any status but 0 and TRONE_EEXIST) becomes the
 * channel's sticky error. Ignored if no ORDER is in flight. Cannot fail. */
void cln_pub_order_done(struct cln_pub *p, int status, const uint8_t *result, size_t size);
/* True if an ORDER is in flight. */
bool cln_pub_order_inflight(const struct cln_pub *p);

/* Counts of one channel, or summed over every channel. Cannot fail. */
void cln_pub_channel_counts(const struct cln_pub *p, uint32_t channel_idx,
                            struct cln_pub_counts *c);
void cln_pub_counts(const struct cln_pub *p, struct cln_pub_counts *c);

#endif
