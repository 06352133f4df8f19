/* byz.h: the TEST-ONLY Byzantine filter of trone-byz. smr_step (byz_step.c) runs the honest
 * core (smr.c built with smr_step renamed to smr_step_honest) and rewrites its output here.
 * Never linked into the production trone; no file of src/ knows about it. */
#ifndef TRONE_BYZ_H
#define TRONE_BYZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "smr/smr.h"

enum byz_mode {
    BYZ_HONEST = 0,     /* TRONE_BYZ unset: the output passes unchanged */
    BYZ_EQUIVOCATE = 1, /* leader: different PRE_PREPAREs per replica; votes for unseen digests */
    BYZ_CORRUPT = 2,    /* flipped bytes, truncation, forged replica ids, broken signatures */
    BYZ_MUTE = 3,       /* sends nothing at all */
    BYZ_REPLAY = 4,     /* resends old messages (its own and its peers') later */
};
/* TRONE_BYZ values starting with "ev-" select an event-path behaviour (enum byz_ev_mode);
 * the agreement filter then passes everything. */
#define BYZ_EV_PREFIX "ev-"

/* The event path's behaviours (byz_events.c), chosen by the same TRONE_BYZ variable; with one
 * of them the agreement protocol runs honestly, and with an agreement mode the event path does.
 * They rewrite what brk_events_flush (DELIVER, GAP) and brk_events_message (ACK) output. */
enum byz_ev_mode {
    /* forge, replay and reorder first cut DELIVERs into ones of 1-32 events (as an honest
     * replica may), so that they act many times per burst. */
    BYZ_EV_HONEST = 0,
    BYZ_EV_ALTER = 1,   /* ev-alter: about 1 event in 3 of a DELIVER altered: a payload bit
                           flipped (most), its seq moved by one, its time or auth changed */
    BYZ_EV_FORGE = 2,   /* ev-forge: before every DELIVER, a DELIVER of 1-3 events nobody
                           published, in the real publisher's name: seqs just ahead of the real
                           stream, a real seq with other content, or a higher epoch ("restarted
                           publisher"); random bytes where a PKS signature goes; or, 1 time in 5,
                           events well signed by a key of its own that it names as publisher */
    BYZ_EV_REPLAY = 3,  /* ev-replay: keeps old DELIVERs (64, then 1 in 4 replaces one) and
                           after every other DELIVER resends 1-3 of them on its connection, as
                           they were or re-stamped with the current replica time */
    BYZ_EV_REORDER = 4, /* ev-reorder: events of a DELIVER reversed or shuffled; 1 DELIVER in 2
                           held back and sent after the connection's next one */
    BYZ_EV_DROP = 5,    /* ev-drop: accepts and ACKs publishes honestly, forwards nothing (no
                           DELIVER, no GAP): a lying replica the publisher cannot tell apart */
    BYZ_EV_ACK_LIE = 6, /* ev-ack-lie: ev-drop, and 1 PUBLISH in 4 is never accepted but ACKed
                           up to its last event, so the publisher does not resend it */
    BYZ_EV_MODES = 7,
};

/* Output capacity: the core's envelope table (4096) expanded to one envelope per replica,
 * plus the extra messages of a filter. Messages beyond it are dropped (the protocol
 * retransmits), exactly as the core drops its own overflow. */
#define BYZ_ENVELOPES_MAX 16384u
#define BYZ_REPLAY_MAX 64u
#define BYZ_LOG_FIRST 20u /* the first actions of each kind are logged, then every 100th */

struct byz_replay_entry {
    uint8_t *data; /* malloc'd copy */
    size_t size;
    enum smr_dest dest; /* SMR_DEST_CLIENT entries go back to that client */
    uint8_t client[TRONE_KEY_LEN];
};

struct byz {
    enum byz_mode mode;
    bool started;
    uint64_t rng;
    struct smr *core;
    uint32_t self;
    uint32_t replica_count;
    /* The rewritten output: bytes of every message, then envelopes pointing into them. */
    struct buf data;
    size_t offsets[BYZ_ENVELOPES_MAX];
    struct smr_envelope envelopes[BYZ_ENVELOPES_MAX];
    size_t envelope_count;
    struct smr_output output;
    struct buf scratch;
    struct byz_replay_entry replay[BYZ_REPLAY_MAX];
    uint32_t replay_count;
    uint64_t actions; /* Byzantine actions taken, for the log */
};

/* byz_step.c: output building, randomness and logging shared by the behaviours. */
/* Starts a message: returns the offset the caller encodes from (into b->data). */
size_t byz__begin(struct byz *b);
/* Records the bytes appended since start as one envelope (dropped on overflow or error). */
void byz__done(struct byz *b, size_t start, enum smr_dest dest, uint32_t replica,
               const uint8_t *client);
/* Copies a message into the output. */
void byz__emit(struct byz *b, enum smr_dest dest, uint32_t replica, const uint8_t *client,
               const uint8_t *data, size_t size);
/* Emits e unchanged, as the honest core meant it. */
void byz__pass(struct byz *b, const struct smr_envelope *e);
uint64_t byz__rand(struct byz *b);
/* A uniform number in [0, bound); bound > 0. */
uint32_t byz__below(struct byz *b, uint32_t bound);
/* A replica id other than self, chosen at random. */
uint32_t byz__other(struct byz *b);
/* Logs one Byzantine action (rate-limited: the first BYZ_LOG_FIRST, then every 100th). */
void byz__log(struct byz *b, const char *what, uint32_t to, const uint8_t *data, size_t size);
/* The secret key the core signs with (its config, smr_internal.h). */
const uint8_t *byz__secret_key(const struct byz *b);

/* byz_equivocate.c: a PRE_PREPARE or vote envelope rewritten per recipient. */
void byz__equivocate(struct byz *b, const struct smr_envelope *e);

/* byz_corrupt.c: one envelope damaged (or passed) per recipient. */
void byz__corrupt(struct byz *b, const struct smr_envelope *e);

/* byz_replay.c: remembers messages and resends old ones to random replicas. */
void byz__replay_observe(struct byz *b, enum smr_dest dest, const uint8_t *client,
                         const uint8_t *data, size_t size);
void byz__replay_extra(struct byz *b);

#endif
