/* rt_events_api.c: the public client API (include/trone/trone.h) over rt_client (control
 * operations: a channel's class is learnt from an agreed `channel show`, never from one
 * replica) and rt_events (the event path). Blocking, single-threaded: every call runs the
 * shared loop until its condition or timeout. */
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "broker/brk_op.h"
#include "core/assert.h"
#include "core/cfg.h"
#include "core/key.h"
#include "core/log.h"
#include "rt/rt_ctl.h"
#include "rt/rt_events.h"
#include "trone/trone.h"

/* How long one control operation (class lookup, subscribe) may wait for agreement. */
#define TRONE_CONTROL_TIMEOUT_MS 20000u
/* HA/PKE publishers look at the channel's subscriber set this often (while publishing) and
 * make a new channel key when it changed (docs/QOP.md). */
#define TRONE_QOP_RECHECK_MS 3000u
/* Bound on loop runs inside one blocking call (each ends at an event or the deadline). */
#define TRONE_WAIT_ROUNDS_MAX 1000000u

struct trone_client {
    struct rt_client *rtc;
    struct rt_events *events;
    struct cfg_cluster cluster;
    char key_path[PATH_MAX];
    trone_event_cb callbacks[RT_EVENTS_SUBS_MAX];
    void *callback_ctx[RT_EVENTS_SUBS_MAX];
    bool held; /* an entry returned by trone_receive is still in its queue */
    uint32_t held_idx;
    struct buf bytes; /* control results */
    struct brk_op *op;
    struct brk_channel_info *info;
    struct brk_channel_keys *keys; /* CHANNEL_KEYS results (HA/PKE publishers) */
    uint64_t *keys_due_ms;         /* per publishing channel: next subscriber-set check */
    char last_error[512];
};

static void trone_error_set(struct trone_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trone_error_set(struct trone_client *c, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, args);
    va_end(args);
}

const char *trone_last_error(const struct trone_client *c)
{
    return c != NULL ? c->last_error : "";
}

/* Drops the entry trone_receive returned last: its data was valid until this call. */
static void trone_release(struct trone_client *c)
{
    if (c->held && rt_events_sub_active(c->events, c->held_idx)) {
        rt_events_queue_pop(rt_events_sub_queue(c->events, c->held_idx));
    }
    c->held = false;
}

/* ---- Opening ------------------------------------------------------------------------------ */

/* The CLI's defaults (src/cli/cmd_common.c): $TRONE_CLUSTER, ./cluster/cluster.conf; $TRONE_KEY,
 * keys/admin.key beside the cluster file. */
static int trone_paths(const char *cluster_in, const char *key_in, char *cluster_path,
                       char *key_path)
{
    const char *env = getenv("TRONE_CLUSTER");
    const char *cluster = cluster_in != NULL              ? cluster_in
                          : env != NULL && env[0] != '\0' ? env
                                                          : "./cluster/cluster.conf";
    if (strlen(cluster) >= PATH_MAX) {
        return TRONE_EINVAL;
    }
    snprintf(cluster_path, PATH_MAX, "%s", cluster);
    env = getenv("TRONE_KEY");
    if (key_in != NULL || (env != NULL && env[0] != '\0')) {
        const char *key = key_in != NULL ? key_in : env;
        int length = snprintf(key_path, PATH_MAX, "%s", key);
        return length >= 0 && length < PATH_MAX ? 0 : TRONE_EINVAL;
    }
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", cluster);
    int length = snprintf(key_path, PATH_MAX, "%s/keys/admin.key", dirname(copy));
    return length >= 0 && length < PATH_MAX ? 0 : TRONE_EINVAL;
}

static int trone_start(struct trone_client *c, const struct key_identity *key)
{
    c->rtc = rt_client_create(&c->cluster, key);
    if (c->rtc == NULL) {
        return TRONE_ENOMEM;
    }
    uint64_t epoch = rt_events_epoch_pick(c->key_path); /* distinct among this key's processes */
    return rt_events_create(c->rtc, key, epoch, &c->events);
}

int trone_open(const char *cluster_path, const char *key_path, struct trone_client **out)
{
    if (out == NULL) {
        return TRONE_EINVAL;
    }
    *out = NULL;
    if (sodium_init() < 0) {
        return TRONE_ENOMEM;
    }
    struct trone_client *c = calloc(1, sizeof(*c));
    char *cluster_file = calloc(1, PATH_MAX);
    if (c == NULL || cluster_file == NULL) {
        free(c);
        free(cluster_file);
        return TRONE_ENOMEM;
    }
    struct key_identity key;
    memset(&key, 0, sizeof(key));
    int rc = trone_paths(cluster_path, key_path, cluster_file, c->key_path);
    if (rc == 0) {
        rc = cfg_cluster_load(&c->cluster, cluster_file, c->last_error, sizeof(c->last_error));
    }
    if (rc == 0) {
        rc = key_identity_load(&key, c->key_path, c->last_error, sizeof(c->last_error));
        rc = rc == TRONE_EIO || rc == 0 ? rc : TRONE_ECONFIG;
    }
    buf_init(&c->bytes, TRONE_RESULT_MAX);
    c->op = rc == 0 ? calloc(1, sizeof(*c->op)) : NULL;
    c->info = rc == 0 ? calloc(1, sizeof(*c->info)) : NULL;
    c->keys = rc == 0 ? calloc(1, sizeof(*c->keys)) : NULL;
    c->keys_due_ms = rc == 0 ? calloc(CLN_PUB_CHANNELS_DEFAULT, sizeof(uint64_t)) : NULL;
    if (rc == 0 &&
        (c->op == NULL || c->info == NULL || c->keys == NULL || c->keys_due_ms == NULL)) {
        rc = TRONE_ENOMEM;
    }
    if (rc == 0) {
        rc = trone_start(c, &key);
    }
    key_identity_wipe(&key);
    free(cluster_file);
    if (rc != 0) {
        trone_close(c);
        return rc;
    }
    c->last_error[0] = '\0';
    *out = c;
    return 0;
}

void trone_close(struct trone_client *c)
{
    if (c == NULL) {
        return;
    }
    rt_events_destroy(c->events);
    rt_client_destroy(c->rtc);
    buf_close(&c->bytes);
    free(c->op);
    free(c->info);
    free(c->keys);
    free(c->keys_due_ms);
    free(c);
}

/* ---- Control operations ------------------------------------------------------------------- */

/* Runs one control op on tag through the replicas (holding the key's lock, rt_ctl.h). Returns
 * 0 with *res filled, the agreed refusal, or the failure; last_error says why. */
static int trone_control(struct trone_client *c, enum brk_op_kind kind, const char *tag,
                         struct brk_result *res)
{
    brk_op_init(c->op, kind);
    if (brk_op_set_tag(c->op, tag) != 0) {
        trone_error_set(c, "invalid channel tag '%.*s'", (int)TRONE_TAG_MAX, tag);
        return TRONE_EINVAL;
    }
    char errmsg[400];
    int lock = rt_ctl_key_lock(c->key_path);
    int rc = rt_ctl_call(c->rtc, c->op, TRONE_CONTROL_TIMEOUT_MS, &c->bytes, res, errmsg,
                         sizeof(errmsg));
    rt_ctl_key_unlock(lock);
    if (rc != 0) {
        trone_error_set(c, "%s %s: %s", brk_op_kind_name(kind), tag, errmsg);
        return rc;
    }
    if (res->status != 0) {
        trone_error_set(c, "%s %s: %s", brk_op_kind_name(kind), tag,
                        res->message[0] != '\0' ? res->message : trone_strerror(res->status));
        return res->status;
    }
    return 0;
}

/* Learns tag's class from an agreed `channel show`. */
static int trone_channel_class(struct trone_client *c, const char *tag, struct brk_class *cls)
{
    struct brk_result res;
    int rc = trone_control(c, BRK_OP_CHANNEL_SHOW, tag, &res);
    if (rc != 0) {
        return rc;
    }
    struct brk_channel_iter it;
    rc = brk_channel_iter_init(&it, res.body, res.body_size);
    if (rc == 0) {
        rc = brk_channel_iter_next(&it, c->info);
    }
    if (rc != 1 || strcmp(c->info->tag, tag) != 0) {
        trone_error_set(c, "channel show %s: the replicas agreed on a malformed answer", tag);
        return TRONE_EBADMSG;
    }
    *cls = c->info->cls;
    return 0;
}

/* ---- Publishing --------------------------------------------------------------------------- */

static uint64_t trone_now_ms(struct trone_client *c);

/* An agreed CHANNEL_KEYS of tag into c->keys: its publishers and key recipients. */
static int trone_channel_keys(struct trone_client *c, const char *tag)
{
    struct brk_result res;
    int rc = trone_control(c, BRK_OP_CHANNEL_KEYS, tag, &res);
    if (rc != 0) {
        return rc;
    }
    if (brk_channel_keys_decode(res.body, res.body_size, c->keys) != 0) {
        trone_error_set(c, "channel keys %s: the replicas agreed on a malformed answer", tag);
        return TRONE_EBADMSG;
    }
    return 0;
}

/* HA/PKE: learns the channel's subscriber keys from an agreed CHANNEL_KEYS and hands them to
 * the publisher core, which makes a new channel key when the set changed (docs/QOP.md). */
static int trone_pub_keys(struct trone_client *c, const char *tag, uint32_t idx)
{
    int rc = trone_channel_keys(c, tag);
    if (rc != 0) {
        return rc;
    }
    rc = rt_events_pub_recipients(c->events, idx, c->keys->recipients, c->keys->recipient_count);
    if (rc < 0) {
        trone_error_set(c, "cannot key channel %s for its %u subscribers: %s", tag,
                        c->keys->recipient_count, trone_strerror(rc));
        return rc;
    }
    if (rc == 1) {
        log_info("events", "msg=\"new channel key\" tag=%s recipients=%u", tag,
                 c->keys->recipient_count);
    }
    c->keys_due_ms[idx] = trone_now_ms(c) + TRONE_QOP_RECHECK_MS;
    return 0;
}

/* PKS/PKE: the channel's publishers from an agreed CHANNEL_KEYS, so that one copy whose
 * signature verifies decides for them (DESIGN.md 2); *count stays 0 when every registered
 * client may publish. A publisher added later is believed on f+1 replicas' word (cln_sub.h). */
static int trone_sub_publishers(struct trone_client *c, const char *tag,
                                const struct brk_class *cls, uint32_t *count)
{
    *count = 0;
    if (cls->method != BRK_METHOD_PKS && cls->method != BRK_METHOD_PKE) {
        return 0;
    }
    int rc = trone_channel_keys(c, tag);
    if (rc == 0) {
        *count = c->keys->publishers_any ? 0 : c->keys->publisher_count;
    }
    return rc;
}

static bool trone_pub_keyed(const struct brk_class *cls)
{
    return cls->method == BRK_METHOD_HA || cls->method == BRK_METHOD_PKE;
}

/* The publishing index of tag, opening it (class lookup) on first use. */
static int trone_pub_channel(struct trone_client *c, const char *tag)
{
    if (tag == NULL || !brk_tag_valid(tag)) {
        trone_error_set(c, "invalid channel tag");
        return TRONE_EINVAL;
    }
    int idx = rt_events_pub_find(c->events, tag);
    if (idx >= 0) {
        /* A failed re-check keeps the current key (retried at the next check). */
        if (trone_pub_keyed(rt_events_pub_class(c->events, (uint32_t)idx)) &&
            trone_now_ms(c) >= c->keys_due_ms[idx] && trone_pub_keys(c, tag, (uint32_t)idx) != 0) {
            c->keys_due_ms[idx] = trone_now_ms(c) + TRONE_QOP_RECHECK_MS;
        }
        return idx;
    }
    struct brk_class cls;
    int rc = trone_channel_class(c, tag, &cls);
    if (rc != 0) {
        return rc;
    }
    idx = rt_events_pub_open(c->events, tag, &cls);
    if (idx < 0) {
        trone_error_set(c, "cannot publish on %s: %s", tag, trone_strerror(idx));
        return idx;
    }
    TRONE_ASSERT(idx < (int)CLN_PUB_CHANNELS_DEFAULT);
    if (trone_pub_keyed(&cls)) {
        rc = trone_pub_keys(c, tag, (uint32_t)idx);
        if (rc != 0) {
            return rc; /* the channel stays open without a key: the next publish retries */
        }
    }
    return idx;
}

int trone_publish(struct trone_client *c, const char *tag, const void *data, size_t size)
{
    if (c == NULL || (data == NULL && size > 0)) {
        return TRONE_EINVAL;
    }
    if (size > TRONE_EVENT_PAYLOAD_MAX) {
        trone_error_set(c, "an event of %zu bytes exceeds %u", size, TRONE_EVENT_PAYLOAD_MAX);
        return TRONE_ETOOBIG;
    }
    int idx = trone_pub_channel(c, tag);
    if (idx < 0) {
        return idx;
    }
    int rc = rt_events_publish(c->events, (uint32_t)idx, data, size);
    if (rc == TRONE_EBUSY) {
        /* One non-blocking turn: acks already received free room at once. */
        rt_events_pump(c->events);
        (void)rt_client_run(c->rtc, 0, NULL, NULL);
        rc = rt_events_publish(c->events, (uint32_t)idx, data, size);
    }
    if (rc == TRONE_EBUSY) {
        char reach[200];
        rt_client_reach_describe(c->rtc, reach, sizeof(reach));
        trone_error_set(c, "%llu events await acknowledgement on %s; %s",
                        (unsigned long long)trone_unacked(c), tag, reach);
    } else if (rc != 0) {
        trone_error_set(c, "cannot publish on %s: %s", tag, trone_strerror(rc));
    }
    return rc;
}

int trone_publish_batch(struct trone_client *c, const char *tag, const void *const *data,
                        const size_t *sizes, size_t count)
{
    if (c == NULL || (count > 0 && (data == NULL || sizes == NULL)) || count > INT32_MAX) {
        return TRONE_EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        int rc = trone_publish(c, tag, data[i], sizes[i]);
        if (rc != 0) {
            return i > 0 ? (int)i : rc;
        }
    }
    return (int)count;
}

uint64_t trone_unacked(const struct trone_client *c)
{
    struct cln_pub_counts counts;
    rt_events_pub_counts(c->events, &counts);
    return counts.pending;
}

static bool trone_flushed(void *ctx)
{
    struct trone_client *c = ctx;
    struct cln_pub_counts counts;
    rt_events_pub_counts(c->events, &counts);
    return counts.pending == 0 || counts.error != 0;
}

int trone_flush(struct trone_client *c, uint64_t timeout_ms)
{
    if (c == NULL) {
        return TRONE_EINVAL;
    }
    trone_release(c);
    rt_events_pump(c->events);
    (void)rt_client_run(c->rtc, timeout_ms, trone_flushed, c);
    struct cln_pub_counts counts;
    rt_events_pub_counts(c->events, &counts);
    if (counts.error != 0) {
        trone_error_set(c, "the replicas refused the events: %s", trone_strerror(counts.error));
        return counts.error;
    }
    if (counts.pending > 0) {
        char reach[200];
        rt_client_reach_describe(c->rtc, reach, sizeof(reach));
        trone_error_set(c, "no acknowledgement quorum within %.3g s: %s",
                        (double)timeout_ms / 1000.0, reach);
    }
    return counts.pending > INT32_MAX ? INT32_MAX : (int)counts.pending;
}

/* ---- Subscribing -------------------------------------------------------------------------- */

int trone_subscribe(struct trone_client *c, const char *tag, trone_event_cb cb, void *ctx)
{
    return trone_subscribe_from(c, tag, TRONE_START_LIVE, 0, cb, ctx);
}

int trone_subscribe_from(struct trone_client *c, const char *tag, enum trone_start kind,
                         uint64_t start, trone_event_cb cb, void *ctx)
{
    _Static_assert((int)TRONE_START_FROM == (int)CHAN_START_FROM, "start kinds match");
    _Static_assert((int)TRONE_START_SINCE == (int)CHAN_START_SINCE, "start kinds match");
    if (c != NULL && kind != TRONE_START_LIVE && kind != TRONE_START_FROM &&
        kind != TRONE_START_SINCE) {
        trone_error_set(c, "unknown subscription start kind %d", (int)kind);
        return TRONE_EINVAL;
    }
    if (c == NULL || tag == NULL || !brk_tag_valid(tag)) {
        if (c != NULL) {
            trone_error_set(c, "invalid channel tag");
        }
        return TRONE_EINVAL;
    }
    trone_release(c);
    if (rt_events_sub_find(c->events, tag) >= 0) {
        trone_error_set(c, "already subscribed to %s", tag);
        return TRONE_EEXIST;
    }
    /* SUBSCRIBE checks the authorization by agreement and records the subscription; the
     * class then comes from an agreed `channel show` (one replica could lie about it). */
    struct brk_result res;
    int rc = trone_control(c, BRK_OP_SUBSCRIBE, tag, &res);
    struct brk_class cls;
    if (rc == 0) {
        rc = trone_channel_class(c, tag, &cls);
    }
    if (rc != 0) {
        return rc;
    }
    if (kind != TRONE_START_LIVE && !cls.durable) {
        trone_error_set(c,
                        "cannot replay %s: the channel is not durable (its class has no "
                        "'durable')",
                        tag);
        return TRONE_EINVAL;
    }
    uint32_t listed = 0;
    rc = trone_sub_publishers(c, tag, &cls, &listed);
    if (rc != 0) {
        return rc;
    }
    int idx =
        rt_events_sub_add(c->events, tag, &cls,
                          listed > 0 ? (const uint8_t(*)[TRONE_KEY_LEN])c->keys->publishers : NULL,
                          listed, (uint8_t)kind, start);
    if (idx < 0) {
        trone_error_set(c, "cannot subscribe to %s: %s", tag, trone_strerror(idx));
        return idx;
    }
    c->callbacks[idx] = cb;
    c->callback_ctx[idx] = ctx;
    rt_client_flush(c->rtc);
    return 0;
}

int trone_unsubscribe(struct trone_client *c, const char *tag)
{
    if (c == NULL || tag == NULL) {
        return TRONE_EINVAL;
    }
    trone_release(c);
    int idx = rt_events_sub_find(c->events, tag);
    if (idx < 0) {
        trone_error_set(c, "not subscribed to %s", tag);
        return TRONE_ENOENT;
    }
    int rc = rt_events_sub_remove(c->events, tag);
    TRONE_ASSERT(rc == 0);
    c->callbacks[idx] = NULL;
    c->callback_ctx[idx] = NULL;
    rt_client_flush(c->rtc);
    struct brk_result res;
    return trone_control(c, BRK_OP_UNSUBSCRIBE, tag, &res);
}

/* ---- Receiving ---------------------------------------------------------------------------- */

static void trone_event_fill(struct trone_client *c, uint32_t idx,
                             const struct rt_events_entry *entry, const uint8_t *payload,
                             struct trone_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = entry->kind;
    ev->channel = rt_events_sub_tag(c->events, idx);
    memcpy(ev->publisher, entry->publisher, TRONE_KEY_LEN);
    bool admin = sodium_memcmp(entry->publisher, c->cluster.admin_key, TRONE_KEY_LEN) == 0;
    ev->publisher_name = admin ? BRK_NAME_ADMIN : "";
    ev->epoch = entry->epoch;
    ev->seq = entry->seq;
    ev->position = entry->position;
    ev->time_us = entry->time_us;
    ev->received_us = entry->received_us;
    ev->payload = entry->payload_size > 0 ? payload : (const uint8_t *)"";
    ev->payload_size = entry->payload_size;
    ev->lost = entry->lost;
    ev->not_kept = entry->not_kept ? 1 : 0;
    ev->fell_behind = entry->fell_behind ? 1 : 0;
}

/* The subscription to hand over next among those with (callback true) or without (false) a
 * callback: the most urgent channel with something queued, then the entry that arrived first
 * (the last hop of the urgency promise: an application that fell behind gets the urgent
 * events it has waiting before older ones of less urgent channels); -1 if none has one. */
static int trone_oldest(struct trone_client *c, bool callback)
{
    int best = -1;
    int best_urgency = -1;
    uint64_t best_arrival = UINT64_MAX;
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        if (!rt_events_sub_active(c->events, i) || (c->callbacks[i] != NULL) != callback) {
            continue;
        }
        const uint8_t *payload = NULL;
        const struct rt_events_entry *entry = rt_events_queue_peek(
            rt_events_sub_queue(c->events, i), rt_events_arrival_next(c->events), &payload);
        int urgency = (int)rt_events_sub_urgency(c->events, i);
        if (entry != NULL && (urgency > best_urgency ||
                              (urgency == best_urgency && entry->arrival < best_arrival))) {
            best = (int)i;
            best_urgency = urgency;
            best_arrival = entry->arrival;
        }
    }
    return best;
}

/* Calls the callbacks of every queued entry of callback subscriptions, in delivery order.
 * Bounded by what is queued now: entries queued by a callback wait for the next call. */
static int trone_dispatch(struct trone_client *c)
{
    int made = 0;
    for (uint32_t n = 0; n < RT_EVENTS_SUBS_MAX * RT_EVENTS_QUEUE_SLOTS; n++) {
        int idx = trone_oldest(c, true);
        if (idx < 0) {
            break;
        }
        struct rt_events_queue *q = rt_events_sub_queue(c->events, (uint32_t)idx);
        const uint8_t *payload = NULL;
        const struct rt_events_entry *entry = rt_events_queue_peek(q, 0, &payload);
        struct trone_event ev;
        trone_event_fill(c, (uint32_t)idx, entry, payload, &ev);
        rt_events_queue_pin(q); /* a trone_publish in the callback may run the loop */
        c->callbacks[idx](c->callback_ctx[idx], &ev);
        rt_events_queue_pop(q);
        made = made < INT32_MAX ? made + 1 : made;
    }
    return made;
}

/* The first sticky subscription failure (last_error set), or 0. */
static int trone_sub_failure(struct trone_client *c)
{
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        if (rt_events_sub_active(c->events, i) && rt_events_sub_error(c->events, i) != 0) {
            int err = rt_events_sub_error(c->events, i);
            trone_error_set(c, "the replicas refused the subscription to %s: %s",
                            rt_events_sub_tag(c->events, i), trone_strerror(err));
            return err;
        }
    }
    if (rt_client_refused(c->rtc)) {
        trone_error_set(c, "every replica refused the session: this key is not the admin's and "
                           "not registered (see trone register)");
        return TRONE_EPERM;
    }
    return 0;
}

/* Until predicates: something queued for the caller. */
static bool trone_any_queued(struct trone_client *c, bool callbacks_only)
{
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        if (!rt_events_sub_active(c->events, i)) {
            continue;
        }
        if (callbacks_only && c->callbacks[i] == NULL) {
            continue;
        }
        if (rt_events_queue_count(rt_events_sub_queue(c->events, i)) > 0 ||
            rt_events_sub_error(c->events, i) != 0) {
            return true;
        }
    }
    return rt_client_refused(c->rtc);
}

static bool trone_until_any(void *ctx) { return trone_any_queued(ctx, false); }

static bool trone_until_callback(void *ctx) { return trone_any_queued(ctx, true); }

static uint64_t trone_now_ms(struct trone_client *c)
{
    uv_update_time(rt_client_loop(c->rtc));
    return uv_now(rt_client_loop(c->rtc));
}

int trone_receive(struct trone_client *c, struct trone_event *ev, uint64_t timeout_ms)
{
    if (c == NULL || ev == NULL) {
        return TRONE_EINVAL;
    }
    trone_release(c);
    uint64_t deadline = trone_now_ms(c) + timeout_ms;
    for (uint32_t round = 0; round < TRONE_WAIT_ROUNDS_MAX; round++) {
        (void)trone_dispatch(c);
        int idx = trone_oldest(c, false);
        if (idx >= 0) {
            const uint8_t *payload = NULL;
            struct rt_events_queue *q = rt_events_sub_queue(c->events, (uint32_t)idx);
            const struct rt_events_entry *entry = rt_events_queue_peek(q, 0, &payload);
            trone_event_fill(c, (uint32_t)idx, entry, payload, ev);
            rt_events_queue_pin(q); /* ev points into it until the next call */
            c->held = true;
            c->held_idx = (uint32_t)idx;
            return 0;
        }
        int err = trone_sub_failure(c);
        if (err != 0) {
            return err;
        }
        uint64_t now = trone_now_ms(c);
        if (round > 0 && now >= deadline) {
            break;
        }
        rt_events_pump(c->events);
        (void)rt_client_run(c->rtc, deadline > now ? deadline - now : 0, trone_until_any, c);
    }
    return TRONE_ETIMEDOUT;
}

int trone_run(struct trone_client *c, uint64_t timeout_ms)
{
    if (c == NULL) {
        return TRONE_EINVAL;
    }
    trone_release(c);
    uint64_t deadline = trone_now_ms(c) + timeout_ms;
    int made = 0;
    for (uint32_t round = 0; round < TRONE_WAIT_ROUNDS_MAX; round++) {
        rt_events_pump(c->events);
        uint64_t now = trone_now_ms(c);
        (void)rt_client_run(c->rtc, deadline > now ? deadline - now : 0, trone_until_callback, c);
        int got = trone_dispatch(c);
        made = made <= INT32_MAX - got ? made + got : INT32_MAX;
        int err = trone_sub_failure(c);
        if (err != 0) {
            return err;
        }
        if (trone_now_ms(c) >= deadline) {
            break;
        }
    }
    return made;
}

int trone_fd(const struct trone_client *c) { return uv_backend_fd(rt_client_loop(c->rtc)); }

uint64_t trone_wait_ms(struct trone_client *c)
{
    uv_loop_t *loop = rt_client_loop(c->rtc);
    uv_update_time(loop);
    int timeout = uv_backend_timeout(loop);
    return timeout < 0 ? UINT64_MAX : (uint64_t)timeout;
}
