/* rt_replica.h: one replica process. Drives the replication core (smr) and the control table
 * (brk_table) with libuv: listens for replicas (Noise KK) and clients (Noise IK), dials every
 * other replica with backoff, feeds messages and one timer to smr_step, sends its output, and
 * answers runtime status queries itself. Event-path messages (PUBLISH, ATTACH, DETACH) go to
 * brk_events without agreement; its DELIVERs are flushed once per loop turn, and a subscriber
 * whose socket is backed up waits in brk_events' bounded queues. With a data directory the
 * core's records are made durable (one store transaction per loop turn) before anything of
 * that turn is sent, and a restarted replica restores its state from disk, then catches up
 * from its peers (rt_store.h). */
#ifndef TRONE_RT_REPLICA_H
#define TRONE_RT_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_events.h"
#include "core/cfg.h"
#include "core/key.h"
#include "trone/error.h"

struct rt_replica_config {
    struct cfg_cluster cluster;
    uint32_t self;               /* this replica's id, < cluster.replica_count */
    struct key_identity key;     /* must match cluster.replicas[self].public_key */
    uint32_t batch_max;          /* 0: the smr default */
    uint32_t pipeline_max;       /* 0: the smr default */
    uint64_t request_timeout_ms; /* 0: the smr default */
    const char *data_dir;        /* an existing directory for the store; NULL: no persistence */
    bool rebuild;                /* wipe the store in data_dir and rebuild from the peers */
    uint32_t queue_events_max;   /* per subscriber connection; 0: the brk_events default */
    uint32_t queue_bytes_max;    /* per subscriber connection; 0: the brk_events default */
    enum brk_events_overflow overflow; /* slow-subscriber policy */
};

/* Runs the replica until SIGINT or SIGTERM, then closes everything. Returns 0 after a clean
 * stop, or a TRONE_E* code with a one-line reason in errmsg when it cannot start (bad config,
 * key mismatch, address in use). The config is borrowed for the call; the caller wipes its
 * secret afterwards. */
TRONE_MUST_CHECK int rt_replica_run(const struct rt_replica_config *config, char *errmsg,
                                    size_t errmsg_size);

#endif
