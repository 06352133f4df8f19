/* store.h: a replica's durable storage (issue 4): records in, records out. The store knows
 * nothing of the protocol: the replication log is a set of opaque records keyed (kind, seq)
 * that the smr core produces and takes back at start, and durable events are opaque payloads
 * keyed (channel, position). Every value carries a BLAKE2b checksum bound to its key, checked
 * at every read; a data directory of another replica or cluster, of a newer format, truncated
 * or corrupt is refused at open with a one-line reason. Writes are grouped: one transaction
 * and one fsync per batch. The LMDB adapter (store_io.c) is the only file including lmdb.h. */
#ifndef TRONE_STORE_H
#define TRONE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "trone/error.h"

/* The on-disk format this build writes and reads. A newer one is refused at open. */
#define STORE_FORMAT_VERSION 1u
/* Default LMDB map size: the most the store may grow to (the file grows as needed). */
#define STORE_MAP_SIZE_DEFAULT (1ull << 30)
/* Largest value of one record or event. */
#define STORE_VALUE_MAX TRONE_MESSAGE_MAX

struct store_config {
    const char *dir;                    /* an existing directory */
    uint32_t replica;                   /* who owns this directory */
    uint8_t cluster_id[TRONE_HASH_LEN]; /* which cluster (a hash of its replica keys) */
    uint64_t map_size_bytes;            /* 0: STORE_MAP_SIZE_DEFAULT */
    bool no_sync;                       /* skip fsync at commit: tests and benchmarks only */
};

struct store;

/* What the store holds, for logs and tests. */
struct store_stats {
    bool created;         /* the directory held no store before this open */
    bool full;            /* a write hit the map size or ENOSPC: durable events refused */
    uint64_t log_records; /* replication log records */
    uint64_t events;      /* durable events, all channels */
    uint64_t commits;     /* batches committed since open */
};

/* Opens (creating when the directory holds none) the store of replica config->replica in
 * config->dir, checks its meta record (format, replica, cluster) and the checksum of every
 * replication log record. Errors, with a one-line reason in errmsg:
 * TRONE_ECONFIG (another replica's or cluster's directory, a newer format), TRONE_ECORRUPT
 * (truncated or corrupt), TRONE_EIO (cannot open), TRONE_ENOMEM. On error *out is NULL. */
TRONE_MUST_CHECK int store_open(const struct store_config *config, struct store **out, char *errmsg,
                                size_t errmsg_size);
/* Closes the store (aborting a batch left open). NULL is allowed. */
void store_close(struct store *s);
/* Removes the store files of dir (to rebuild from peers). 0, or TRONE_EIO with a reason. */
TRONE_MUST_CHECK int store_wipe(const char *dir, char *errmsg, size_t errmsg_size);
void store_stats_get(const struct store *s, struct store_stats *out);
/* Is the store full (a write hit the disk or map limit, or store_event_room found too little
 * room; durable events are refused until store_space_refresh or retention frees space)?
 * Cheap: no transaction. */
bool store_full(const struct store *s);
/* Is there room for a durable event of size bytes while keeping a reserve of the file
 * system's free bytes and of the map for the replication records? 0, or TRONE_EFULL (the
 * store is then full: refuse the event before it joins a batch, whose commit would otherwise
 * fail whole). Checks the file system every 256 KiB of events (statvfs). */
TRONE_MUST_CHECK int store_event_room(struct store *s, size_t size);
/* Checks the free space again after a refusal: clears the full state once the file system
 * and the map have twice the reserve free. Returns true if it cleared it. */
bool store_space_refresh(struct store *s);

/* ---- Grouped writes: begin, any number of puts and drops, then one commit (one fsync). ---- */

/* Opens the batch. TRONE_EBUSY if one is open, TRONE_EIO. */
TRONE_MUST_CHECK int store_batch_begin(struct store *s);
/* Commits the batch durably. On error (TRONE_EFULL for a full disk or map, TRONE_EIO) the
 * batch is rolled back whole: the store holds exactly what it held before the batch. An
 * error of a put inside the batch is returned here too. */
TRONE_MUST_CHECK int store_batch_commit(struct store *s);
/* Rolls the batch back. */
void store_batch_abort(struct store *s);

/* Replication log: sets the record (kind, seq) to data (replacing it). Needs an open batch.
 * Errors are sticky for the batch (see store_batch_commit). */
int store_log_put(struct store *s, uint8_t kind, uint64_t seq, const uint8_t *data, size_t size);
/* Deletes every record of kind with seq <= seq_max. Needs an open batch. */
int store_log_drop_upto(struct store *s, uint8_t kind, uint64_t seq_max);
/* Calls cb for every log record in (kind, seq) order, after checking its checksum. Stops at
 * the first non-zero return of cb and returns it. TRONE_ECORRUPT on a checksum mismatch. The
 * data pointer is valid during the call only. */
typedef int (*store_log_cb)(void *ctx, uint8_t kind, uint64_t seq, const uint8_t *data,
                            size_t size);
TRONE_MUST_CHECK int store_log_each(struct store *s, store_log_cb cb, void *ctx);

/* ---- Durable events, keyed (channel, position). Positions grow per channel. ---- */

/* Appends the event at position (above the channel's last) in the open batch. TRONE_EFULL
 * while the store is full (a previous write hit the disk or map limit): durable events are
 * refused until retention frees space, never half-written. TRONE_EINVAL for a position not
 * above the channel's last. */
int store_event_put(struct store *s, uint64_t channel, uint64_t position, uint64_t time_ms,
                    const uint8_t *data, size_t size);
/* Stores the event at position if the channel does not hold that position yet, at any
 * position (also below the channel's last: a hole filled from a peer, docs/PROTOCOL.md 11),
 * in the open batch; the channel's first, last, count and bytes follow. 0 (stored),
 * TRONE_EEXIST (the position is held, or retention deleted it already: nothing written), TRONE_EFULL while the store is full
 * (as store_event_put), TRONE_EINVAL (position 0, no batch). */
int store_event_insert(struct store *s, uint64_t channel, uint64_t position, uint64_t time_ms,
                       const uint8_t *data, size_t size);
/* Deletes, in the open batch, at most delete_max of the channel's oldest events whose
 * position is <= position_max (a total-order channel's pending events once they are stored
 * at their agreed positions, docs/PROTOCOL.md 11.1); the channel's first, count and bytes
 * follow. Sets *deleted. 0 (also for a channel that holds nothing), TRONE_EINVAL (no batch),
 * or an error, sticky for the batch. Cost: one cursor walk over the deleted keys. */
int store_event_drop_upto(struct store *s, uint64_t channel, uint64_t position_max,
                          uint32_t delete_max, uint32_t *deleted);
/* Finds the first position >= from that channel does not hold, looking at no more than
 * scan_max held positions: *hole is that position and *hole_end the first held position
 * above it (UINT64_MAX when none); if scan_max held positions follow from without a hole,
 * *hole = *hole_end = the next position not looked at, and TRONE_EBUSY is returned (call
 * again from there). 0, TRONE_EBUSY, or an error. Cost: one cursor walk over
 * at most scan_max keys, no value read. */
TRONE_MUST_CHECK int store_event_hole(struct store *s, uint64_t channel, uint64_t from,
                                      uint32_t scan_max, uint64_t *hole, uint64_t *hole_end);
/* Calls cb for up to count_max events of channel from position on, in position order, after
 * checking each checksum; cb returns non-zero to stop (returned). TRONE_ECORRUPT. */
typedef int (*store_event_cb)(void *ctx, uint64_t position, uint64_t time_ms, const uint8_t *data,
                              size_t size);
TRONE_MUST_CHECK int store_event_read(struct store *s, uint64_t channel, uint64_t position,
                                      uint32_t count_max, store_event_cb cb, void *ctx);

struct store_channel_info {
    uint64_t first;      /* oldest position kept, 0 if none */
    uint64_t last;       /* newest position ever stored, 0 if none */
    uint64_t count;      /* events kept */
    uint64_t bytes;      /* payload bytes kept */
    uint64_t age_ms_max; /* retention by age, 0 = none */
    uint64_t bytes_max;  /* retention by size, 0 = none */
    uint64_t trimmed;    /* highest position retention deleted, 0 if none: never taken back */
};

/* TRONE_ENOENT for a channel that never stored an event nor had a retention set. */
TRONE_MUST_CHECK int store_channel_info(struct store *s, uint64_t channel,
                                        struct store_channel_info *out);
/* Sets a channel's retention (0 = unlimited) in its own small transaction, or inside the open
 * batch if there is one (no write when unchanged; errors then sticky for the batch). */
TRONE_MUST_CHECK int store_retention_set(struct store *s, uint64_t channel, uint64_t age_ms_max,
                                         uint64_t bytes_max);
/* Applies retention incrementally: deletes at most delete_max of the oldest events that are
 * older than their channel's age limit or beyond its size limit, in one short transaction.
 * The size limit of channels that share a group of the stream index (the streams of one
 * durable channel) bounds their bytes together, oldest event by time first. Short steps, so
 * traffic never waits long. Sets *deleted; call again while it equals delete_max. A
 * successful deletion clears the full state. */
TRONE_MUST_CHECK int store_retention_step(struct store *s, uint64_t now_ms, uint32_t delete_max,
                                          uint32_t *deleted);

/* ---- Stream index: which event channels (streams) a group (a durable channel) holds. ---- */

/* Largest descriptor of one stream. */
#define STORE_STREAM_DESC_MAX 256u
/* Records that group holds stream channel, described by data (opaque, at most
 * STORE_STREAM_DESC_MAX bytes), in the open batch; rewriting the same entry costs no write.
 * TRONE_EEXIST (not sticky) if channel is indexed with another descriptor. Other errors are
 * sticky for the batch, as store_log_put's; TRONE_EINVAL without a batch. */
int store_stream_put(struct store *s, uint64_t group, uint64_t channel, const uint8_t *data,
                     size_t size);
/* The first stream of group whose channel id is above after (0: the first one), in
 * channel id order: sets *channel and copies its descriptor (at most data_max bytes) to
 * data, *size. 0, TRONE_ENOENT when there is none, TRONE_ECORRUPT. Reads the open batch when
 * there is one (so it sees the batch's own writes). */
TRONE_MUST_CHECK int store_stream_next(struct store *s, uint64_t group, uint64_t after,
                                       uint64_t *channel, uint8_t *data, size_t data_max,
                                       size_t *size);

/* Calls cb for every indexed stream, all groups, in (group, channel) order (the order of
 * their ids, the same at every replica), after checking each descriptor's checksum; cb
 * returns non-zero to stop (returned). TRONE_ECORRUPT. For offline dumps and tests. */
typedef int (*store_stream_cb)(void *ctx, uint64_t group, uint64_t channel, const uint8_t *data,
                               size_t size);
TRONE_MUST_CHECK int store_stream_each(struct store *s, store_stream_cb cb, void *ctx);

#endif
