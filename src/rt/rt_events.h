/* rt_events.h: the libuv runtime of the event path on the client side. It shares the loop and
 * the Noise sessions of an rt_client (one session per replica), carries PUBLISH/ACK and
 * ATTACH/ATTACHED/DELIVER/GAP, drives the publisher core (cln_pub) and the subscriber core
 * (cln_sub), re-attaches after every reconnect, and queues what the subscriber core delivers
 * for the application (rt_events_queue). Nothing here decides what to deliver or when an event
 * is acknowledged: the cores do. Progress happens only while the rt_client's loop runs. */
#ifndef TRONE_RT_EVENTS_H
#define TRONE_RT_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "client/cln_pub.h"
#include "core/key.h"
#include "rt/rt_client.h"
#include "rt/rt_events_queue.h"
#include "trone/error.h"

/* Channels one client subscribes to at once. */
#define RT_EVENTS_SUBS_MAX 64u
/* Delivered events queued per subscribed channel for the application, and their bytes. */
#define RT_EVENTS_QUEUE_SLOTS 16384u
#define RT_EVENTS_QUEUE_BYTES (8u * 1024u * 1024u)

struct rt_events;

/* A publisher epoch (wall-clock µs) that no other process of this key file on this host
 * picks, not even within the same millisecond (durable stream ids use the epoch in ms): a
 * short POSIX lock on the key file's first byte, held until the clock passed the next
 * millisecond. Two processes of one key with one epoch would share a stream, and the replicas
 * would take the second one's events for duplicates. Without the lock (a read-only key file)
 * the plain clock. */
uint64_t rt_events_epoch_pick(const char *key_path);

/* Creates the event path over rtc for key (the publisher's identity; the secret is copied and
 * wiped at destroy). epoch is the publisher epoch (wall-clock µs at start, > 0). Installs
 * rtc's hooks. Returns 0 and *out, or TRONE_ENOMEM / TRONE_ECONFIG (nothing to destroy). */
TRONE_MUST_CHECK int rt_events_create(struct rt_client *rtc, const struct key_identity *key,
                                      uint64_t epoch, struct rt_events **out);
/* Removes the hooks, closes the timer (running one loop turn) and frees e. rtc must still be
 * alive. NULL is allowed. */
void rt_events_destroy(struct rt_events *e);

/* Sends what the cores have ready to every replica that can take it; call before running the
 * loop so that a burst of publishes leaves in few messages. */
void rt_events_pump(struct rt_events *e);

/* ---- Publishing --------------------------------------------------------------------------- */

/* Opens tag for publishing with its agreed class: its index (>= 0) or a cln_pub_channel_open
 * error. An already open tag returns its index. */
TRONE_MUST_CHECK int rt_events_pub_open(struct rt_events *e, const char *tag,
                                        const struct brk_class *cls);
/* The index of an open tag or TRONE_ENOENT. */
int rt_events_pub_find(const struct rt_events *e, const char *tag);
/* HA/PKE: the subscribers' keys the channel key is wrapped for (cln_pub_channel_recipients):
 * 1 new key, 0 unchanged, or its error. */
TRONE_MUST_CHECK int rt_events_pub_recipients(struct rt_events *e, uint32_t channel_idx,
                                              const uint8_t (*keys)[TRONE_KEY_LEN],
                                              uint32_t count);
/* The class of an open channel. */
const struct brk_class *rt_events_pub_class(const struct rt_events *e, uint32_t channel_idx);
/* Queues one event (copied); sent at the next pump. Returns 0 or a cln_pub_publish error
 * (TRONE_EBUSY, TRONE_ETOOBIG, the channel's sticky refusal). */
TRONE_MUST_CHECK int rt_events_publish(struct rt_events *e, uint32_t channel_idx,
                                       const void *data, size_t size);
/* Counts over every channel (error: the first channel's sticky error). Cannot fail. */
void rt_events_pub_counts(const struct rt_events *e, struct cln_pub_counts *counts);

/* ---- Subscribing -------------------------------------------------------------------------- */

/* Subscribes tag with its agreed class: attaches on every open session and after every
 * reconnect. publishers: the channel's authorized publishers from the agreed control table
 * (cln_sub_channel_add; NULL and 0 when anyone registered may publish or the method has no
 * signature). start_mode (enum chan_start) and start ask a durable channel's replicas to replay
 * their stored events first (cln_sub_replay). Returns the subscription's index (>= 0),
 * TRONE_EEXIST, TRONE_EFULL, TRONE_ENOMEM, TRONE_EINVAL (a start on a channel that is not
 * durable) or a cln_sub_channel_add error. Unchanged on error. */
TRONE_MUST_CHECK int rt_events_sub_add(struct rt_events *e, const char *tag,
                                       const struct brk_class *cls,
                                       const uint8_t (*publishers)[TRONE_KEY_LEN],
                                       uint32_t publisher_count, uint8_t start_mode,
                                       uint64_t start);
/* Detaches tag on every replica and drops its queue. Returns 0 or TRONE_ENOENT. */
TRONE_MUST_CHECK int rt_events_sub_remove(struct rt_events *e, const char *tag);
/* The index of a subscribed tag or TRONE_ENOENT. */
int rt_events_sub_find(const struct rt_events *e, const char *tag);
/* The subscription's tag, queue and sticky error (0, or the refusal f+1 replicas kept
 * repeating). idx must be a subscribed index. */
const char *rt_events_sub_tag(const struct rt_events *e, uint32_t idx);
struct rt_events_queue *rt_events_sub_queue(struct rt_events *e, uint32_t idx);
int rt_events_sub_error(const struct rt_events *e, uint32_t idx);
/* True if idx (< RT_EVENTS_SUBS_MAX) is a subscription. */
bool rt_events_sub_active(const struct rt_events *e, uint32_t idx);
/* The urgency (0..7) of subscription idx's channel. */
uint8_t rt_events_sub_urgency(const struct rt_events *e, uint32_t idx);
/* Counts each delivery so queues can be read in delivery order; the next arrival number. */
uint64_t rt_events_arrival_next(struct rt_events *e);

#endif
