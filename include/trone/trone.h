/* trone.h: the TRONE client API. A client connects to every replica of a cluster, publishes
 * events on channels and subscribes to them, and keeps working while up to f replicas are down
 * or Byzantine: it reconnects in the background, counts an event as published only once the
 * replicas the channel's fault model requires have acknowledged it (f+1 under CFT, 2f+1 under
 * BFT), and delivers an event only when enough replicas agree on it (or its end-to-end
 * signature verifies), exactly once and in each publisher's order.
 *
 * The API is single-threaded and blocking: nothing happens in the background between calls;
 * trone_run, trone_receive and trone_flush run the client's event loop until their condition or
 * timeout. Use one trone_client per thread.
 *
 * Errors: every function returning int returns 0 (or a documented count) on success and a
 * negative TRONE_E* code from trone/error.h on failure; trone_strerror() gives its text and
 * trone_last_error() a one-line reason with context. A failed call leaves the client usable.
 *
 * Ownership: the caller owns every buffer it passes in (they are copied before the call
 * returns). Data in a struct trone_event points into the client and stays valid until the next
 * call on that client. See examples/pubsub.c. */
#ifndef TRONE_TRONE_H
#define TRONE_TRONE_H

#include <stddef.h>
#include <stdint.h>

#include "trone/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct trone_client;

/* Length of a public key (Ed25519) in bytes. */
#define TRONE_PUBLIC_KEY_SIZE 32u
/* Largest event payload in bytes. */
#define TRONE_EVENT_PAYLOAD_MAX (64u * 1024u)

enum trone_event_kind {
    /* A published event. */
    TRONE_EVENT_DATA = 0,
    /* Events of one publisher were lost for this subscriber (flow control dropped them, or
     * they never arrived in time); `lost` says how many, when known (0 if not). */
    TRONE_EVENT_GAP = 1,
};

/* One delivered event. Every pointer points into the client and stays valid until the next
 * call on the client (copy what you keep). */
struct trone_event {
    enum trone_event_kind kind;
    const char *channel;                         /* the channel's tag */
    uint8_t publisher[TRONE_PUBLIC_KEY_SIZE];    /* the publisher's public key */
    const char *publisher_name;                  /* its registered name if known, else "" */
    uint64_t epoch;                              /* the publisher process's epoch */
    uint64_t seq;                                /* 1, 2, ... per publisher, channel, epoch */
    uint64_t time_us;                            /* publisher's clock, µs since 1970 */
    uint64_t received_us;                        /* this client's clock at delivery */
    const uint8_t *payload;                      /* DATA: the event's bytes */
    size_t payload_size;
    uint64_t lost;                               /* GAP: events lost (0 if unknown) */
    /* Total-order channels (class "total"): the event's position in the channel's one agreed
     * sequence (1, 2, ...; every correct subscriber delivers the same event at the same
     * position, in position order). A GAP there has seq = the first missing position and an
     * all-zero publisher. On durable FIFO channels the publisher's seq (what
     * trone_subscribe_from resumes from); 0 on other FIFO channels. */
    uint64_t position;
    /* GAP of a replay (trone_subscribe_from): 1 if these events are no longer kept by the
     * replicas (retention removed them, or the replicas never held them), else 0. */
    int not_kept;
    /* GAP: 1 if this client dropped these events itself because the application did not take
     * them fast enough (its queue per channel holds 16384 events or 8 MiB; the oldest go
     * first, so the newest are kept), else 0. publisher and seq are then all zero. */
    int fell_behind;
};

/* Called by trone_run and trone_receive for each event of a channel subscribed with a
 * callback, in delivery order. ev is valid only during the call. The callback may call
 * trone_publish, trone_publish_batch, trone_unacked and trone_last_error, and nothing else. */
typedef void (*trone_event_cb)(void *ctx, const struct trone_event *ev);

/* Opens a client: loads the cluster file and the key file and starts connecting to every
 * replica in the background. NULL paths take the CLI's defaults: cluster_path
 * $TRONE_CLUSTER, then ./cluster/cluster.conf; key_path $TRONE_KEY, then keys/admin.key
 * beside the cluster file. On success *out owns a client to pass to trone_close. On error
 * *out is NULL and the code is TRONE_EIO (unreadable file), TRONE_ECONFIG (bad cluster or
 * key file), TRONE_ENOMEM or TRONE_EINVAL (NULL out). */
TRONE_MUST_CHECK int trone_open(const char *cluster_path, const char *key_path,
                                struct trone_client **out);
/* Closes every connection and frees the client. Events published but not acknowledged are
 * abandoned: call trone_flush first. NULL is allowed. */
void trone_close(struct trone_client *c);

/* A one-line reason for the last failed call (with context such as the replicas reached);
 * "" if none. Valid until the next call on c. */
const char *trone_last_error(const struct trone_client *c);

/* Publishes one event of size bytes (<= TRONE_EVENT_PAYLOAD_MAX) on channel tag. The first
 * publish on a channel learns its class from the replicas (an agreed control operation,
 * which waits for the cluster) and fails with TRONE_ENOENT (no such channel) or TRONE_EPERM.
 * The event is queued and goes to every replica at the next call that runs the client
 * (trone_run, trone_receive, trone_flush), so a burst of publishes leaves in few messages; it
 * is acknowledged only later (see trone_flush). data is copied. Returns 0, or TRONE_EBUSY
 * when too many events of this channel await acknowledgement (run trone_flush or trone_run,
 * then retry), TRONE_ETOOBIG, TRONE_EINVAL (bad tag), TRONE_EPERM (the replicas refused this
 * publisher), or a failure of the class lookup (TRONE_ETIMEDOUT). */
TRONE_MUST_CHECK int trone_publish(struct trone_client *c, const char *tag, const void *data,
                                   size_t size);
/* Publishes count events in order, as trone_publish does for each. Returns the number queued
 * (count, or fewer when the window fills: the rest were not published) or, if none was
 * queued, a TRONE_E* code. */
TRONE_MUST_CHECK int trone_publish_batch(struct trone_client *c, const char *tag,
                                         const void *const *data, const size_t *sizes,
                                         size_t count);
/* Sends what was published and waits at most timeout_ms until every event published on c is
 * acknowledged as its channel's fault model requires. On a total-order channel an event is
 * acknowledged only once its position was agreed too (its ORDER completed), so after 0 every
 * subscriber that delivers it delivers it at the same position. Returns 0 when all are, else
 * the number still unacknowledged (> 0, capped at INT32_MAX), or the refusal (TRONE_EPERM)
 * when f+1 replicas refused this publisher on a channel (or the agreed ORDER was refused).
 * Callbacks are not called. */
TRONE_MUST_CHECK int trone_flush(struct trone_client *c, uint64_t timeout_ms);
/* Events published on c and not yet acknowledged. Cannot fail. */
uint64_t trone_unacked(const struct trone_client *c);

/* Subscribes to channel tag: learns its class through the replicas (waits for the cluster),
 * then asks every replica to stream the channel (again after every reconnect). With a
 * callback, its events are passed to cb during trone_run, trone_receive and trone_flush;
 * with cb NULL they queue for trone_receive. Returns 0, TRONE_ENOENT (no such channel),
 * TRONE_EPERM (not an authorized subscriber), TRONE_EEXIST (already subscribed on c),
 * TRONE_EFULL (too many channels), TRONE_EINVAL or TRONE_ETIMEDOUT; no callback is ever
 * made for a failed call. */
TRONE_MUST_CHECK int trone_subscribe(struct trone_client *c, const char *tag, trone_event_cb cb,
                                     void *ctx);
/* Where a subscription to a durable channel (class "durable") starts. */
enum trone_start {
    TRONE_START_LIVE = 0,  /* only events published from now on (what trone_subscribe does) */
    TRONE_START_FROM = 1,  /* every kept event after position `start`, then the live ones;
                              start 0: from the oldest event kept */
    TRONE_START_SINCE = 2, /* every kept event the publisher stamped at or after `start`
                              (µs since 1970), then the live ones */
};
/* Subscribes as trone_subscribe does, but on a durable channel the replicas first replay the
 * events they keep (docs/PROTOCOL.md section 11), then the live stream follows with no gap and
 * no duplicate. A position is what struct trone_event.position gives: on total-order
 * channels the agreed position, on FIFO channels the publisher's seq (so FROM applies to each
 * publisher stream of the channel: meant to resume one publisher's stream; SINCE resumes
 * across publisher restarts). Replayed events are decided like live ones (f+1 matching copies,
 * or a verified signature, under BFT). Events no longer kept (retention) are reported as one
 * TRONE_EVENT_GAP per stream. Returns what trone_subscribe returns, and TRONE_EINVAL for a
 * start on a channel that is not durable or an unknown kind. Example:
 *     trone_subscribe_from(c, "dur.events", TRONE_START_FROM, last_position_seen, cb, ctx); */
TRONE_MUST_CHECK int trone_subscribe_from(struct trone_client *c, const char *tag,
                                          enum trone_start kind, uint64_t start,
                                          trone_event_cb cb, void *ctx);
/* Stops the stream of tag on every replica and drops its queued events. Returns 0 or
 * TRONE_ENOENT (not subscribed on c). */
TRONE_MUST_CHECK int trone_unsubscribe(struct trone_client *c, const char *tag);

/* Waits at most timeout_ms (0: do not wait) for the next event of a channel subscribed without
 * a callback and fills *ev (valid until the next call on c). Queued events of the most urgent
 * channel come first; among channels of equal urgency, in delivery order (callbacks too). Returns 0, TRONE_ETIMEDOUT, or
 * TRONE_EPERM when every replica refused a subscription (the reason is in trone_last_error). */
TRONE_MUST_CHECK int trone_receive(struct trone_client *c, struct trone_event *ev,
                                   uint64_t timeout_ms);
/* Runs the client for timeout_ms (0: only what is ready now), calling the callbacks of
 * delivered events. Returns the number of callbacks made (>= 0) or TRONE_EPERM as
 * trone_receive does. */
TRONE_MUST_CHECK int trone_run(struct trone_client *c, uint64_t timeout_ms);

/* A file descriptor that becomes readable when the client has network work to do, for
 * applications that wait on their own descriptors too: poll it together with yours (waiting at
 * most trone_wait_ms), then call trone_run(c, 0). Never fails for an open client. */
int trone_fd(const struct trone_client *c);
/* How long the application may wait before calling trone_run(c, 0) (milliseconds;
 * UINT64_MAX: until trone_fd is readable). */
uint64_t trone_wait_ms(struct trone_client *c);

#ifdef __cplusplus
}
#endif

#endif
