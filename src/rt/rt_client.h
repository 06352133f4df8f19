/* rt_client.h: a blocking client of the replicated control table, for the CLI and the client
 * API. It keeps a Noise IK session to every replica (retrying unreachable ones with backoff
 * while its loop runs), runs the protocol's client core (smr_client) and waits for an agreed
 * result. The event path (rt_events) shares its loop and connections through hooks, so one
 * process keeps one session per replica. One thread; progress happens only inside
 * rt_client_call, rt_client_status and rt_client_run. */
#ifndef TRONE_RT_CLIENT_H
#define TRONE_RT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

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

/* ---- Sharing the connections (rt_events) ------------------------------------------------- */

/* What another user of the connections is told. Calls happen only while the loop runs. */
struct rt_client_hooks {
    void *ctx;
    /* The session with replica j opened. */
    void (*opened)(void *ctx, uint32_t replica);
    /* An event-path message (chan_msg_is_event_type) from replica j, borrowed for the call. */
    void (*message)(void *ctx, uint32_t replica, const uint8_t *msg, size_t size);
    /* The session with replica j closed (err says why); the dialer retries in the background. */
    void (*closed)(void *ctx, uint32_t replica, int err);
    /* Optional: everything queued for replica j was written to its socket. */
    void (*drained)(void *ctx, uint32_t replica);
};

/* Installs hooks (copied); NULL removes them. Cannot fail. */
void rt_client_hooks_set(struct rt_client *c, const struct rt_client_hooks *hooks);
/* The client's loop, for timers of the hooks' owner. */
uv_loop_t *rt_client_loop(struct rt_client *c);
uint32_t rt_client_replica_count(const struct rt_client *c);
/* The cluster the client was created for (borrowed, valid until destroy). */
const struct cfg_cluster *rt_client_cluster(const struct rt_client *c);
/* True if the session with replica j is open. */
bool rt_client_replica_open(const struct rt_client *c, uint32_t replica);
/* Queues msg for replica j (written at the next flush). Returns 0, TRONE_ECLOSED if the
 * session is not open, or the session's error (the connection is then closed and retried). */
int rt_client_send(struct rt_client *c, uint32_t replica, const uint8_t *msg, size_t size);
/* Bytes queued for replica j and not yet written to its socket; SIZE_MAX if not open. */
size_t rt_client_replica_backlog(const struct rt_client *c, uint32_t replica);
/* Closes the connection to replica j (a hostile message); the dialer reconnects later. */
void rt_client_replica_drop(struct rt_client *c, uint32_t replica, int err);
/* Writes everything queued. */
void rt_client_flush(struct rt_client *c);

/* ---- Non-blocking requests (rt_events' ORDERs) ------------------------------------------ */

/* Told once the request of rt_client_submit completed: status 0 with the agreed result bytes
 * (borrowed for the call), or TRONE_ESTALE. It may submit the next request. */
typedef void (*rt_client_done_cb)(void *ctx, int status, const uint8_t *result, size_t size);

/* Submits op (copied) without waiting; done(ctx, ...) is called from the loop when it
 * completes. Returns 0, TRONE_EBUSY while a call or another submission is in flight (the
 * protocol allows one request per client), or the submit error. rt_client_call made while a
 * submission is in flight first waits for it. */
TRONE_MUST_CHECK int rt_client_submit(struct rt_client *c, const void *op, size_t op_size,
                                      rt_client_done_cb done, void *ctx);
/* Forgets the submission in flight: its callback is never called. Cannot fail. */
void rt_client_submit_cancel(struct rt_client *c);
/* True while a call or submission is in flight. */
bool rt_client_busy(const struct rt_client *c);

typedef bool (*rt_client_until_cb)(void *ctx);
/* Runs the loop until until(ctx) is true or timeout_ms passed (0: one non-blocking turn).
 * until may be NULL (run for the whole timeout). Returns true if until became true. */
bool rt_client_run(struct rt_client *c, uint64_t timeout_ms, rt_client_until_cb until, void *ctx);
/* True once, since the current rt_client_run began, every replica hung up during the handshake
 * several times and no session opened: the replicas do not accept this key. */
bool rt_client_refused(const struct rt_client *c);
/* A one-line summary of which replicas are reachable ("reached 3 of 4 replicas (replica 2:
 * connection refused)"), written into out. */
void rt_client_reach_describe(const struct rt_client *c, char *out, size_t out_size);

#endif
