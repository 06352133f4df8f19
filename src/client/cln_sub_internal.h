/* cln_sub_internal.h: private state of the subscriber core shared by cln_sub.c (config,
 * channels, messages, output) and cln_sub_stream.c (per-stream voting, FIFO window, gaps).
 * No I/O, no clock, no randomness. */
#ifndef TRONE_CLN_SUB_INTERNAL_H
#define TRONE_CLN_SUB_INTERNAL_H

#include "chan/chan_msg.h"
#include "client/cln_sub.h"

struct cln_sub_channel {
    char tag[TRONE_TAG_MAX + 1];
    struct brk_class cls;
    /* Replay of a durable channel (cln_sub_replay): where it starts, the replicas asked that
     * have not finished (bit r), and the stream id each one announced last (its cursor:
     * streams are replayed in id order; UINT64_MAX once it finished). */
    uint8_t replay_mode; /* enum chan_start; CHAN_START_LIVE: no replay */
    uint64_t replay_start;
    uint64_t replaying;
    uint64_t cursor[TRONE_REPLICAS_MAX];
    uint32_t publisher_count;
    uint8_t (*publishers)[TRONE_KEY_LEN]; /* owned; NULL when the list is unknown */
};

/* One distinct copy (by match digest) of a seq, with the replicas that sent it. */
struct cln_sub_copy {
    uint8_t digest[TRONE_HASH_LEN];
    uint64_t voters; /* bit r: replica r sent this copy */
    uint64_t time_us;
    uint8_t *bytes; /* owned: auth then payload */
    uint16_t auth_size;
    uint32_t payload_size;
    bool verify_tried; /* its PKS signature was checked (and failed, or it was decided) */
};

/* A seq held in a stream's window. */
struct cln_sub_slot {
    uint64_t seq;        /* 0: empty */
    uint64_t voted;      /* bit r: replica r already sent a copy of this seq */
    int32_t decided;     /* index of the decided copy, -1 while undecided */
    uint64_t decided_us; /* when it was decided */
    uint32_t copy_count;
    struct cln_sub_copy *copies; /* copies_max entries inside the stream's array */
};

/* A vote of a copy that came beyond a stream's window: its bytes were dropped, its vote is
 * kept (the last CLN_SUB_VOTES_KEPT per replica) and counts once a copy of the same seq and
 * digest is held. Without it a correct replica's early copy was lost with its vote, and an
 * event two correct replicas delivered could stay undecided (trone-sim --events). */
#define CLN_SUB_VOTES_KEPT 32u
struct cln_sub_vote {
    uint64_t seq; /* 0: unused */
    uint8_t digest[TRONE_HASH_LEN];
};

/* One (channel, publisher, epoch) stream. */
struct cln_sub_stream {
    bool used;
    uint32_t channel_idx;
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    uint64_t next_seq;         /* next seq to deliver; 0 while not started */
    uint64_t wait_since_us;    /* UINT64_MAX unless waiting for next_seq */
    uint64_t wait_seq;         /* the next_seq being waited for */
    uint64_t closing_since_us; /* UINT64_MAX while open */
    uint64_t last_use;         /* logical clock of the last copy */
    bool ever_decided;
    uint64_t senders;            /* bit r: replica r sent a copy while the stream had not started */
    uint32_t held_count;         /* used slots */
    uint32_t decided_held;       /* decided slots (all above next_seq) */
    uint32_t copies_max;         /* copies per slot: 1 (CFT without PKS) or n */
    struct cln_sub_slot *slots;  /* window entries, indexed by seq % window */
    struct cln_sub_copy *copies; /* window * copies_max */
    uint32_t floor_idx;          /* cached index of the publisher's floor (checked on use) */
    uint64_t ahead[TRONE_REPLICAS_MAX]; /* highest seq beyond the window sent by replica r */
    /* Replay (durable channels): the stream's id in the replicas' stores (chan_durable.h), the
     * first position replica r announced it replays (0: none), the highest seq r sent. */
    uint64_t durable_id;
    uint64_t announced[TRONE_REPLICAS_MAX];
    uint64_t seen[TRONE_REPLICAS_MAX];
    struct cln_sub_vote *votes; /* n * CLN_SUB_VOTES_KEPT, NULL when copies_max is 1 */
    uint32_t vote_next[TRONE_REPLICAS_MAX];
};

/* Epochs remembered per (channel, publisher): processes of one key publishing at once. */
#define CLN_SUB_EPOCHS 8u

/* Replay floor of one (channel, publisher): the CLN_SUB_EPOCHS newest epochs it decided
 * something in, each with its next seq (epochs[k] 0: unused), and `left`: every epoch at or
 * below it is one the publisher left (its copies are replays, dropped). Several processes of
 * one key each publish their own epoch; the oldest remembered epoch is forgotten (and left)
 * when a newer one does not fit. */
struct cln_sub_floor {
    bool used;
    uint32_t channel_idx;
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t left;
    uint64_t epochs[CLN_SUB_EPOCHS];
    uint64_t next_seqs[CLN_SUB_EPOCHS];
    uint64_t last_use;
};

/* A total-order copy's authenticator starts with publisher key | u64 epoch | u64 seq. */
#define CLN_SUB_TOTAL_HEADER (TRONE_KEY_LEN + 16u)
_Static_assert(CLN_SUB_TOTAL_HEADER + CHAN_AUTH_MAX <= UINT16_MAX, "header and auth fit u16");

/* Output (cln_sub.c). Errors are sticky in s->items / s->arena and reported at the end. */
void cln_sub__emit_event(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t seq,
                         uint64_t time_us, const uint8_t *auth, uint16_t auth_size,
                         const uint8_t *payload, uint32_t payload_size);
/* An event of a total-order stream at position; header is the copy's authenticator
 * (CLN_SUB_TOTAL_HEADER bytes naming the event's publisher, epoch and seq, then its auth). */
void cln_sub__emit_total(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t position,
                         uint64_t time_us, const uint8_t *header, uint32_t header_size,
                         const uint8_t *payload, uint32_t payload_size);
void cln_sub__emit_gap(struct cln_sub *s, const struct cln_sub_stream *st, uint64_t seq,
                       uint64_t count, enum cln_sub_gap_reason reason);

/* Replay (cln_sub_stream.c): replica announced that it replays st from position first. */
void cln_sub__stream_announce(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                              uint64_t first, uint64_t now_us);
/* Replays of st's channel moved on (a replica finished or went away): start or unblock st. */
void cln_sub__stream_replay_moved(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us);

/* Floors (cln_sub_stream.c). */
/* Is publisher in the channel's list (the authorized publishers the subscriber learned from
 * the agreed control table)? A listed publisher's signature alone proves an event; any other
 * publisher needs f+1 replicas' word (its events forwarded by them) before it is believed. */
bool cln_sub__listed(const struct cln_sub_channel *ch, const uint8_t publisher[TRONE_KEY_LEN]);
/* The next seq remembered for epoch (0: not remembered). */
uint64_t cln_sub__floor_next(const struct cln_sub_floor *fl, uint64_t epoch);
/* Did the subscriber follow this publisher in an epoch older than epoch? */
bool cln_sub__floor_older(const struct cln_sub_floor *fl, uint64_t epoch);
struct cln_sub_floor *cln_sub__floor_find(struct cln_sub *s, uint32_t channel_idx,
                                          const uint8_t publisher[TRONE_KEY_LEN]);

/* Streams (cln_sub_stream.c). */
struct cln_sub_stream *cln_sub__stream_find(struct cln_sub *s, uint32_t channel_idx,
                                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch);
/* Opens a stream, evicting (and flushing) the least useful one when the table is full.
 * NULL on allocation failure, or for an epoch the publisher left (known before, or learned
 * from the eviction). */
struct cln_sub_stream *cln_sub__stream_open(struct cln_sub *s, uint32_t channel_idx,
                                            const uint8_t publisher[TRONE_KEY_LEN], uint64_t epoch);
/* One copy of an event from replica into st; check is an enum cln_sub_check for it. */
void cln_sub__stream_copy(struct cln_sub *s, struct cln_sub_stream *st, uint32_t replica,
                          const struct chan_event *e, uint8_t check, uint64_t now_us);
/* Would a verified signature of e decide something in st (cln_sub_verify_wanted)? */
bool cln_sub__stream_wants_verify(const struct cln_sub *s, const struct cln_sub_stream *st,
                                  const struct chan_event *e);
/* Gap timeout and closing of one stream. */
void cln_sub__stream_tick(struct cln_sub *s, struct cln_sub_stream *st, uint64_t now_us);
/* Delivers what st holds in order (gaps between reported), then frees it. */
void cln_sub__stream_close(struct cln_sub *s, struct cln_sub_stream *st);
uint64_t cln_sub__stream_deadline(const struct cln_sub *s, const struct cln_sub_stream *st);

#endif
