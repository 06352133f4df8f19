/* rt_store.h: the replica runtime's side of persistence (docs/PROTOCOL.md section 11). Opens
 * the replica's store, feeds its records back into a fresh replication core at start, and
 * gathers the records of every core output of one loop turn into ONE store transaction that
 * is committed (one fsync) before anything of that turn is written to a socket; records the
 * core does not mark sync (decisions, checkpoints) may wait for a later commit. A replica
 * that cannot persist stops instead of sending votes it could forget. */
#ifndef TRONE_RT_STORE_H
#define TRONE_RT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker/brk_events.h"
#include "core/cfg.h"
#include "smr/smr.h"
#include "store/store.h"

struct rt_store {
    struct store *store;
    const char *dir;
    bool batch_open;
    bool batch_sync; /* the open batch holds a record that must precede the sends */
    uint64_t batch_opened_ns;
    uint64_t batch_records; /* records in the open batch */
    uint64_t commits;
    uint64_t records;
    uint64_t indexed_stream; /* the last stream put in the stream index (saves a lookup) */
    uint64_t retention_deleted; /* events deleted by retention */
    bool full_logged;           /* the full store was reported */
    uint64_t events;         /* durable events stored */
    uint64_t inserted;       /* durable events stored from peers (anti-entropy) */
    uint64_t pending_dropped; /* total-order pending events deleted once stored */
};

/* The cluster's identity in a data directory: BLAKE2b of its replica keys in id order. */
void rt_store_cluster_id(const struct cfg_cluster *cluster, uint8_t out[TRONE_HASH_LEN]);

/* Opens dir for replica self of cluster. A corrupt or truncated store is refused with a
 * reason naming --rebuild; with rebuild the store files are removed first and the replica
 * starts empty (it catches up from its peers). 0 or a TRONE_E* code with errmsg. */
TRONE_MUST_CHECK int rt_store_open(struct rt_store *st, const char *dir,
                                   const struct cfg_cluster *cluster, uint32_t self, bool rebuild,
                                   char *errmsg, size_t errmsg_size);
/* Restores the core from the store (smr_restore of every record, then smr_restore_finish)
 * and logs what it restored. *out is the core's output to carry out like a step's. */
TRONE_MUST_CHECK int rt_store_restore(struct rt_store *st, struct smr *smr, uint64_t now_ms,
                                      const struct smr_output **out, char *errmsg,
                                      size_t errmsg_size);
/* Adds an output's records to this turn's batch (opened on the first record). Never fails:
 * a replica that cannot persist logs why and exits before sending anything. */
void rt_store_records(struct rt_store *st, const struct smr_output *out);
/* Call before writing to any socket: commits the open batch if it holds a record marked
 * sync, or if it has been open RT_STORE_LAZY_MS (records without sync may follow the sends).
 * Exits on failure. */
void rt_store_flush(struct rt_store *st);
/* Commits the open batch, if any. Exits on failure. */
void rt_store_commit(struct rt_store *st);
void rt_store_close(struct rt_store *st);

/* Durable events for brk_events (its brk_events_durable functions; ctx is the rt_store). The
 * put joins this turn's batch and makes it commit before the turn's writes (so an event is
 * forwarded and acknowledged only once it is on disk). */
int rt_store_event_put(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                       size_t desc_size, uint64_t position, uint64_t time_us,
                       const uint8_t *record, size_t size, uint64_t retain_ms,
                       uint64_t retain_bytes);
/* Deletes a durable total-order channel's pending events up to position_max (at most
 * delete_max) in this turn's batch (brk_events_durable drop): the number deleted, or an
 * error (also refused while the batch failed). Does not make the batch commit before the
 * sends on its own. */
int rt_store_event_drop(void *ctx, uint64_t stream, uint64_t position_max, uint32_t delete_max);
/* Applies retention in one small step (at most RT_STORE_RETENTION_STEP deletions, one short
 * transaction; the turn's open batch is committed first). Returns true if more is due now. */
bool rt_store_retention(struct rt_store *st, uint64_t now_ms);
int rt_store_stream_next(void *ctx, uint64_t group, uint64_t after, uint64_t *stream,
                         uint8_t *desc, size_t desc_max, size_t *desc_size);
typedef int (*rt_store_read_cb)(void *ctx, uint64_t position, const uint8_t *record, size_t size);
int rt_store_event_read(void *ctx, uint64_t stream, uint64_t position, uint32_t count_max,
                        rt_store_read_cb cb, void *cb_ctx);

/* Anti-entropy (brk_events_durable info, hole, insert; docs/PROTOCOL.md 11.2). An insert
 * joins this turn's batch like a put, but does not make it commit before the sends (nothing
 * sent depends on it); it commits with the turn's batch or RT_STORE_LAZY_MS later. */
int rt_store_stream_info(void *ctx, uint64_t stream, struct brk_events_stream_info *out);
int rt_store_event_hole(void *ctx, uint64_t stream, uint64_t from, uint64_t *hole,
                        uint64_t *hole_end);
int rt_store_event_insert(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                          size_t desc_size, uint64_t position, uint64_t time_us,
                          const uint8_t *record, size_t size, uint64_t retain_ms,
                          uint64_t retain_bytes);

/* Prints every durable event of the store in dir (replica self of cluster) to out, one line
 * per event in (group, stream, position) order, the same order at every replica:
 *   <tag> <fifo|total|pending> <publisher hex|-> <epoch> <position> <BLAKE2b-256, hex>
 * (pending: a total-order event staged until its ORDER stored it in the total stream; a
 * replica's own, so two replicas' pending lines may differ)
 * then a last line "events <count>". Reads only; the replica must be stopped (the store is
 * locked while it runs). 0, or a TRONE_E* code with errmsg. */
TRONE_MUST_CHECK int rt_store_dump_events(const char *dir, const struct cfg_cluster *cluster,
                                          uint32_t self, FILE *out, char *errmsg,
                                          size_t errmsg_size);

#endif
