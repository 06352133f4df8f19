/* chan_msg.h: the event path's wire messages (DESIGN.md 2, issue 3). Events do not go through
 * agreement on FIFO channels: a publisher sends each event to every replica, every replica
 * forwards it to the attached subscribers, and subscribers de-duplicate (CFT) or vote (BFT).
 * Codec only: no I/O. Decoders check every length and reject trailing bytes.
 *
 *   PUBLISH  publisher -> replica : tag | u32 count | event*
 *   ACK      replica -> publisher : tag | epoch | seq (highest contiguous accepted) | i32 status
 *   ATTACH   subscriber -> replica: tag [| u8 start mode | u64 start] (stream the channel to
 *                                   me; durable channels: first replay the stored events after
 *                                   position `start` (mode 1, FROM) or published at or after
 *                                   `start` µs (mode 2, SINCE), then the live stream)
 *   ATTACHED replica -> subscriber: tag | i32 status
 *   DETACH   subscriber -> replica: tag
 *   DELIVER  replica -> subscriber: tag | publisher key | u64 replica time (µs) | u32 count |
 *                                   event*
 *   GAP      replica -> subscriber: tag | publisher key | u64 events dropped for this
 *                                   subscriber by flow control
 *   DELIVER_TOTAL replica -> subscriber (total-order channels): tag | publisher key |
 *                                   u64 replica time (µs) | u64 first position (>= 1) |
 *                                   u32 count | event* (events of one publisher at the
 *                                   consecutive positions first, first+1, ...; no wrap)
 *   FETCH    replica -> replica   : tag | publisher key | u64 epoch | u64 first seq | u32 count
 *                                   (send me these events of an ORDERed range you hold;
 *                                   1 <= count <= CHAN_EVENTS_PER_MSG_MAX, first seq >= 1)
 *   FETCHED  replica -> replica   : tag | publisher key | u32 count | event* (a whole range,
 *                                   checked by the receiver against the agreed digest)
 *   REPLAY   replica -> subscriber: tag | u8 flags | publisher key | u64 epoch | u64 first
 *                                   (durable replay: flags 0: the events of stream (publisher,
 *                                   epoch) that follow start at position first (>= 1); total
 *                                   order: publisher and epoch zero, first is a channel
 *                                   position. flags 1 (END): this replica's replay of the
 *                                   channel is over, live events follow; publisher, epoch and
 *                                   first are zero)
 *   event = u64 epoch | u64 seq | u64 publisher time (µs) | u16-length auth | u32-length payload
 *
 * (epoch, seq) orders a publisher's events on a channel: epoch is fixed per publisher process
 * (its start time in µs, so a restarted publisher's epoch is larger) and seq counts from 1. */
#ifndef TRONE_CHAN_MSG_H
#define TRONE_CHAN_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"

enum chan_msg_type {
    CHAN_MSG_PUBLISH = 40,
    CHAN_MSG_ACK = 41,
    CHAN_MSG_ATTACH = 42,
    CHAN_MSG_ATTACHED = 43,
    CHAN_MSG_DETACH = 44,
    CHAN_MSG_DELIVER = 45,
    CHAN_MSG_GAP = 46,
    CHAN_MSG_DELIVER_TOTAL = 47,
    CHAN_MSG_FETCH = 48,
    CHAN_MSG_FETCHED = 49,
    CHAN_MSG_REPLAY = 50,
    /* Durable-stream anti-entropy between replicas (chan_sync.h). */
    CHAN_MSG_SYNC_ASK = 60,
    CHAN_MSG_SYNC_LIST = 61,
    CHAN_MSG_SYNC_GET = 62,
    CHAN_MSG_SYNC_EVENTS = 63,
};

/* Where an ATTACH starts. */
enum chan_start {
    CHAN_START_LIVE = 0,  /* live events only (no start field on the wire) */
    CHAN_START_FROM = 1,  /* stored events at positions above start, then live */
    CHAN_START_SINCE = 2, /* stored events with publisher time >= start (µs), then live */
};
#define CHAN_REPLAY_END 1u

/* Largest event payload and authenticator. */
/* Wire payload: the API's 64 KiB plus room for an HA/PKE envelope (chan_qop.h). */
#define CHAN_PAYLOAD_MAX (64u * 1024 + 8u * 1024)
#define CHAN_AUTH_MAX 128u
/* Events per PUBLISH or DELIVER message. */
#define CHAN_EVENTS_PER_MSG_MAX 4096u

struct chan_event {
    uint64_t epoch;
    uint64_t seq;
    uint64_t time_us;
    const uint8_t *auth; /* borrowed */
    uint16_t auth_size;
    const uint8_t *payload; /* borrowed */
    uint32_t payload_size;
};

/* Message headers; the events follow and are read one at a time with chan_msg_read_event. */
struct chan_msg {
    enum chan_msg_type type;
    char tag[TRONE_TAG_MAX + 1];
    uint8_t publisher[TRONE_KEY_LEN]; /* DELIVER, GAP, DELIVER_TOTAL, FETCH, FETCHED */
    uint64_t epoch;                   /* ACK, FETCH */
    uint64_t seq;                     /* ACK; FETCH: first seq */
    int32_t status;                   /* ACK, ATTACHED */
    uint64_t replica_time_us;         /* DELIVER, DELIVER_TOTAL */
    uint64_t position;                /* DELIVER_TOTAL: position of the first event */
    uint64_t dropped;                 /* GAP */
    uint32_t event_count;             /* PUBLISH, DELIVER, DELIVER_TOTAL, FETCHED */
    uint32_t range_count;             /* FETCH: events asked for */
    uint8_t start_mode;               /* ATTACH: enum chan_start */
    uint64_t start;                   /* ATTACH: position or time (µs) */
    uint8_t flags;                    /* REPLAY */
    uint64_t first;                   /* REPLAY: first position that follows */
};

/* Encoders. A PUBLISH or DELIVER is written as a header (event_count filled in by
 * chan_msg_events_end) followed by chan_msg_put_event calls. Errors are the buffer's sticky
 * error (TRONE_ETOOBIG, TRONE_ENOMEM). */
void chan_msg_put_header(struct buf *out, const struct chan_msg *m);
void chan_msg_put_event(struct buf *out, const struct chan_event *e);
/* Patches the event count of the message that starts at offset start in out. */
void chan_msg_events_end(struct buf *out, size_t start, uint32_t count);

/* Decodes the header of any event-path message and leaves r at the first event. Returns 0 or
 * TRONE_EBADMSG. For messages without events, also checks that nothing follows. */
TRONE_MUST_CHECK int chan_msg_read_header(struct buf_reader *r, const uint8_t *data, size_t size,
                                          struct chan_msg *m);
/* Reads the next event; pointers point into the message. r->error is set on malformed input;
 * after the last event call buf_reader_finish(r). */
void chan_msg_read_event(struct buf_reader *r, struct chan_event *e);
/* Validates a whole message (header and every event) without keeping anything. */
TRONE_MUST_CHECK int chan_msg_check(const uint8_t *data, size_t size);

/* Is this message type one of the event path's (FETCH, FETCHED, REPLAY and the SYNC
 * messages of chan_sync.h included)? */
int chan_msg_is_event_type(const uint8_t *data, size_t size);

#endif
