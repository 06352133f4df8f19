/* smr_client.h: the client side of the replication protocol. It signs requests, sends them to
 * every replica, retransmits, and accepts a result once enough replicas agree (f+1 matching
 * replies under BFT, one under CFT). No I/O, no clock. */
#ifndef TRONE_SMR_CLIENT_H
#define TRONE_SMR_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "smr/smr.h"

struct smr_client_config {
    uint32_t replica_count;
    uint32_t fault_count;
    enum smr_fault_model model;
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN];
    uint64_t first_request_id;  /* ids grow from here; the runtime uses wall-clock ns */
    uint64_t retransmit_ms;     /* resend an unanswered request this often */
    uint32_t inflight_max;      /* requests outstanding at once */
};

/* A request that completed: its id, status (0, or TRONE_ESTALE) and agreed result bytes,
 * valid until the next call into the client. */
struct smr_client_done {
    uint64_t request_id;
    int status;
    const uint8_t *result;
    size_t result_size;
};

#define SMR_CLIENT_DONE_MAX 64

struct smr_client_output {
    /* Messages to send: each goes to every replica. data valid until the next call. */
    size_t message_count;
    const struct buf *messages;
    size_t done_count;
    struct smr_client_done done[SMR_CLIENT_DONE_MAX];
    size_t rejected_count;  /* replies dropped as malformed or unmatched, for logging */
    uint64_t deadline_ms;
};

struct smr_client;

/* Returns NULL on a bad config or out of memory. */
struct smr_client *smr_client_create(const struct smr_client_config *config);
void smr_client_destroy(struct smr_client *c);

/* Signs op and queues it for every replica. Returns the request id (> 0) through *id.
 * TRONE_EBUSY if inflight_max requests are outstanding, TRONE_ETOOBIG if op is too large. */
TRONE_MUST_CHECK int smr_client_submit(struct smr_client *c, uint64_t now_ms, const void *op,
                                       size_t op_size, uint64_t *id,
                                       const struct smr_client_output **out);
/* A REPLY from replica `from` (authenticated by its session). */
TRONE_MUST_CHECK int smr_client_receive(struct smr_client *c, uint64_t now_ms, uint32_t from,
                                        const uint8_t *data, size_t size,
                                        const struct smr_client_output **out);
/* Time passed: retransmits what is due. */
TRONE_MUST_CHECK int smr_client_tick(struct smr_client *c, uint64_t now_ms,
                                     const struct smr_client_output **out);
size_t smr_client_inflight(const struct smr_client *c);

#endif
