/* rt_client.h: a blocking client of the replicated control table, for the CLI. It keeps a
 * Noise IK session to every replica (retrying unreachable ones with backoff while a call is
 * in progress), runs the protocol's client core (smr_client) and waits for an agreed result.
 * One thread; progress happens only inside rt_client_call and rt_client_status. */
#ifndef TRONE_RT_CLIENT_H
#define TRONE_RT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/cfg.h"
#include "core/key.h"
#include "rt/rt_msg.h"
#include "trone/error.h"

struct rt_client;

/* Creates a client for cluster acting as key and starts connecting to every replica. Both are
 * copied (the secret is wiped at destroy). Returns NULL on out of memory or a loop failure. */
struct rt_client *rt_client_create(const struct cfg_cluster *cluster,
                                   const struct key_identity *key);
/* Closes every connection and frees the client. NULL is allowed. */
void rt_client_destroy(struct rt_client *c);

/* Submits one operation and waits at most timeout_ms for the agreed result (f+1 matching
 * replies under BFT, one under CFT). Returns 0 with the result bytes appended to result, or a
 * TRONE_E* code with a one-line reason in errmsg: TRONE_ETIMEDOUT ("no 2 matching replies
 * within 20 s: reached 1 of 4 replicas (replica 0: connection refused)"), TRONE_ESTALE, or
 * the buffer's error. */
TRONE_MUST_CHECK int rt_client_call(struct rt_client *c, const void *op, size_t op_size,
                                    uint64_t timeout_ms, struct buf *result, char *errmsg,
                                    size_t errmsg_size);

/* What one replica said, or why it did not. */
struct rt_client_replica_status {
    bool answered;
    struct rt_status status; /* when answered */
    char error[128];         /* when not: "connection refused", "no answer" */
};

struct rt_client_status_report {
    uint32_t replica_count;
    uint32_t answered_count;
    struct rt_client_replica_status replicas[TRONE_REPLICAS_MAX];
};

/* Asks every replica for its status and waits until each has answered or failed to connect
 * since the query began, or timeout_ms passed. Fills report; returns the number of replicas
 * that answered (never an error: unreachable replicas are reported in report). */
uint32_t rt_client_status(struct rt_client *c, uint64_t timeout_ms,
                          struct rt_client_status_report *report);

#endif
