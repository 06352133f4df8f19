/* chan_durable.h: how a durable channel's events are named in a replica's store (issue 4),
 * shared by the replica (brk_events, which stores and replays them) and the subscriber
 * (cln_sub, which follows a replay stream by stream). A durable channel is a store *group*;
 * each of its streams is a store *channel*: one per (tag, publisher, epoch) on FIFO channels,
 * whose positions are the publisher's seqs, and one per tag on total-order channels, whose
 * positions are the agreed ones. Ids are keyed hashes of fixed labels, so every replica and
 * every subscriber computes the same ones, and a replay walks a group's streams in id order.
 * A durable total-order channel has a second group, its *pending* group (docs/PROTOCOL.md
 * 11.1): one stream per (tag, publisher, epoch), position = seq, where a replica stages each
 * event it accepts until the event is stored at its agreed position in the total stream. It
 * is per-replica staging: replays and the anti-entropy walk the channel's group only.
 * Pure functions: no I/O. */
#ifndef TRONE_CHAN_DURABLE_H
#define TRONE_CHAN_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

/* A stream's descriptor in the store's index: u8 kind (0 FIFO, 1 total, 2 pending) |
 * publisher key | u64 epoch | u8 tag length | tag. Total-order streams have a zero publisher
 * and epoch. */
#define CHAN_DURABLE_DESC_MAX (1u + TRONE_KEY_LEN + 8u + 1u + TRONE_TAG_MAX)

struct chan_durable_stream {
    bool total;   /* the agreed stream of a total-order channel */
    bool pending; /* a total-order channel's staging stream (total is false) */
    uint8_t publisher[TRONE_KEY_LEN];
    uint64_t epoch;
    char tag[TRONE_TAG_MAX + 1];
};

/* The store group of a channel tag (never 0). */
uint64_t chan_durable_group(const char *tag);
/* The store group of a total-order channel's pending streams (never 0, never a
 * chan_durable_group). */
uint64_t chan_durable_pending_group(const char *tag);
/* The store channel of a stream (never 0): the high 20 bits hash (kind, publisher, tag), the
 * low 44 bits are the epoch in ms (the publisher's start time: 2^44 ms is 557 years), so a
 * replay, which walks stream ids in order, gives a publisher's epochs oldest first (a
 * subscriber drops an older epoch once it delivered a newer one). Two streams sharing an id
 * need the same hash and the same start millisecond; the store refuses the second one. */
#define CHAN_DURABLE_EPOCH_BITS 44u
#define CHAN_DURABLE_EPOCH_MASK ((UINT64_C(1) << CHAN_DURABLE_EPOCH_BITS) - 1u)
uint64_t chan_durable_stream_id(const struct chan_durable_stream *d);
/* Writes d's descriptor to out (CHAN_DURABLE_DESC_MAX bytes suffice); returns its size. */
size_t chan_durable_desc_encode(const struct chan_durable_stream *d, uint8_t *out);
/* Reads a descriptor: 0, or TRONE_ECORRUPT for a malformed one. */
int chan_durable_desc_decode(struct chan_durable_stream *d, const uint8_t *data, size_t size);

#endif
