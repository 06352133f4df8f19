/* rt_events.c: the client's event path runtime: turns session events of the shared rt_client
 * into inputs of the publisher and subscriber cores and carries out their outputs (PUBLISH
 * messages per replica, deliveries into the application's queues, one timer at the earliest
 * deadline). ATTACH is sent on every session that opens, so a reconnect re-attaches. */
#include "rt/rt_events.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "chan/chan_msg.h"
#include "client/cln_qop.h"
#include "client/cln_sub.h"
#include "core/assert.h"
#include "core/log.h"
#include "rt/rt_conn.h"
#include "rt/rt_verify.h"


#define RT_EVENTS_COMP "events"
/* Unwritten bytes per connection above which no more PUBLISH messages are built for it. */
#define RT_EVENTS_BACKLOG_MAX (1024u * 1024u)
/* While a connection is backlogged, look again this often (a drained write queue also wakes
 * us: rt_events_on_drained). */
#define RT_EVENTS_BACKLOG_RETRY_MS 20u
/* A replica that refused an ATTACH is asked again this often (its table may lag). */
#define RT_EVENTS_ATTACH_RETRY_MS 1000u
/* A subscription fails once f+1 replicas refused it this many times in a row. */
#define RT_EVENTS_REFUSALS_MAX 3u
#define RT_EVENTS_WARN_BURST 10u
#define RT_EVENTS_WARN_WINDOW_MS 10000u

struct rt_events_sub {
    bool active;
    uint8_t urgency; /* of the channel's class */
    char tag[TRONE_TAG_MAX + 1];
    int core_idx; /* the channel in the subscriber core */
    struct rt_events_queue queue;
    uint64_t attached;                        /* replicas that accepted the ATTACH */
    uint32_t refusals[TRONE_REPLICAS_MAX];    /* consecutive refusals per replica */
    int32_t refusal;                          /* the last refusal status */
    bool announced;                           /* "attached" was logged */
    bool announced_all;                       /* "attached to every replica" was logged */
    int error;                                /* sticky */
    uint8_t start_mode;                       /* enum chan_start: a durable replay */
    uint64_t start;
};

struct rt_events {
    struct rt_client *rtc;
    uint32_t n;
    uint32_t f;
    uv_timer_t timer;
    struct cln_pub pub;
    struct cln_sub sub;
    struct cln_qop qop;        /* HA/PKE checks after the subscriber core (docs/QOP.md) */
    uint64_t qop_rejected;     /* qop.counts.rejected already logged */
    uint64_t sub_deadline_us;
    bool backlogged;
    bool attach_retry;
    bool order_wait; /* an ORDER waits for the protocol client to be free */
    uint64_t arrival;
    struct buf scratch;
    struct rt_verify *verify; /* PKS/PKE checks off the loop thread; NULL: the core verifies */
    uint8_t wanted[CHAN_EVENTS_PER_MSG_MAX];
    struct rt_ratelimit warn_limit;
    struct rt_events_sub subs[RT_EVENTS_SUBS_MAX];
};

static uint64_t rt_events_now_us(void) { return uv_hrtime() / 1000u; }

static uint64_t rt_events_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t rt_events_epoch_pick(const char *key_path)
{
    /* A POSIX record lock, independent of rt_ctl_key_lock's flock (rt_ctl.c) on Linux:
     * picking an epoch never waits for a running control command. */
    int fd = key_path != NULL ? open(key_path, O_RDWR | O_CLOEXEC) : -1;
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    bool locked = false;
    for (int attempt = 0; fd >= 0 && attempt < 100 && !locked; attempt++) {
        locked = fcntl(fd, F_SETLKW, &lock) == 0;
        if (!locked && errno != EINTR) {
            break;
        }
    }
    uint64_t epoch = rt_events_wall_us();
    if (locked) {
        /* The next process of this key reads a later millisecond (at most 1 ms here; the
         * clock moving backwards ends the wait too). */
        uint64_t now = epoch;
        for (uint32_t spin = 0; spin < 1000000u && now / 1000u == epoch / 1000u; spin++) {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 50000L};
            nanosleep(&pause, NULL);
            now = rt_events_wall_us();
        }
        lock.l_type = F_UNLCK;
        (void)fcntl(fd, F_SETLK, &lock);
    }
    if (fd >= 0) {
        close(fd);
    }
    return epoch;
}

static void rt_events_warn(struct rt_events *e, uint32_t replica, const char *what, int err)
{
    uint32_t suppressed = 0;
    if (rt_ratelimit_allow(&e->warn_limit, uv_now(rt_client_loop(e->rtc)), RT_EVENTS_WARN_BURST,
                           RT_EVENTS_WARN_WINDOW_MS, &suppressed)) {
        log_warn(RT_EVENTS_COMP, "msg=\"%s\" replica=%u err=%s suppressed=%u", what, replica,
                 trone_err_name(err), suppressed);
    }
}

/* ---- Sending ------------------------------------------------------------------------------ */

/* Builds PUBLISH messages for replica j while its connection has room. */
static void rt_events_pump_one(struct rt_events *e, uint32_t j, uint64_t now_us)
{
    for (uint32_t i = 0; i < CLN_PUB_UNACKED_EVENTS_DEFAULT; i++) {
        size_t backlog = rt_client_replica_backlog(e->rtc, j);
        if (backlog == SIZE_MAX) {
            return;
        }
        if (backlog >= RT_EVENTS_BACKLOG_MAX) {
            e->backlogged = true;
            return;
        }
        const uint8_t *data = NULL;
        size_t size = 0;
        int rc = cln_pub_next_message(&e->pub, j, now_us, &data, &size);
        if (rc <= 0) {
            return;
        }
        if (rt_client_send(e->rtc, j, data, size) != 0) {
            return; /* the connection closed; cln_pub resends after the reconnect */
        }
    }
}

static void rt_events_arm(struct rt_events *e);
static void rt_events_order_pump(struct rt_events *e);

/* The ORDER in flight completed (called from the rt_client's loop). */
static void rt_events_on_order_done(void *ctx, int status, const uint8_t *result, size_t size)
{
    struct rt_events *e = ctx;
    cln_pub_order_done(&e->pub, status, result, size);
    if (status != 0) {
        log_debug(RT_EVENTS_COMP, "msg=\"order not agreed, retrying\" err=%s",
                  trone_err_name(status));
    }
    rt_events_order_pump(e);
    rt_events_arm(e);
}

/* Submits the next ORDER of the total-order channels when the protocol client is free
 * (cln_pub.h: one in flight; it covers everything published meanwhile). */
static void rt_events_order_pump(struct rt_events *e)
{
    e->order_wait = false;
    if (cln_pub_order_inflight(&e->pub)) {
        return;
    }
    if (rt_client_busy(e->rtc)) {
        e->order_wait = true; /* a blocking call of the application: look again soon */
        return;
    }
    const uint8_t *op = NULL;
    size_t size = 0;
    if (cln_pub_order_next(&e->pub, &op, &size) <= 0) {
        return;
    }
    int rc = rt_client_submit(e->rtc, op, size, rt_events_on_order_done, e);
    if (rc != 0) {
        cln_pub_order_done(&e->pub, rc, NULL, 0); /* the same range is built again later */
        e->order_wait = true;
    }
}

void rt_events_pump(struct rt_events *e)
{
    uint64_t now_us = rt_events_now_us();
    e->backlogged = false;
    for (uint32_t j = 0; j < e->n; j++) {
        rt_events_pump_one(e, j, now_us);
    }
    rt_events_order_pump(e);
    rt_events_arm(e);
}

/* Sends a tag-only message (ATTACH or DETACH) to replica j if its session is open. */
static void rt_events_send_tag(struct rt_events *e, uint32_t j, enum chan_msg_type type,
                               const char *tag)
{
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    buf_reset(&e->scratch);
    chan_msg_put_header(&e->scratch, &m);
    if (e->scratch.error == 0) {
        (void)rt_client_send(e->rtc, j, e->scratch.data, e->scratch.used);
    }
}

/* Sends the ATTACH of subscription s to replica j (with its replay start, if any): a replica
 * that gets it replays from the start again, which the subscriber core expects. */
static void rt_events_send_attach(struct rt_events *e, uint32_t j, const struct rt_events_sub *s)
{
    struct chan_msg m;
    memset(&m, 0, sizeof(m));
    m.type = CHAN_MSG_ATTACH;
    snprintf(m.tag, sizeof(m.tag), "%s", s->tag);
    m.start_mode = s->start_mode;
    m.start = s->start;
    buf_reset(&e->scratch);
    chan_msg_put_header(&e->scratch, &m);
    if (e->scratch.error == 0 && rt_client_send(e->rtc, j, e->scratch.data, e->scratch.used) == 0 &&
        s->start_mode != CHAN_START_LIVE) {
        cln_sub_replay_expect(&e->sub, (uint32_t)s->core_idx, j);
    }
}

/* ---- Deliveries --------------------------------------------------------------------------- */

static struct rt_events_sub *rt_events_sub_of_core(struct rt_events *e, uint32_t core_idx)
{
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        if (e->subs[i].active && e->subs[i].core_idx == (int)core_idx) {
            return &e->subs[i];
        }
    }
    return NULL;
}

/* Queues one item of the subscriber core's output for the application. */
static void rt_events_deliver(struct rt_events *e, const struct cln_sub_item *item)
{
    if (item->kind == CLN_SUB_NOTICE) {
        log_debug(RT_EVENTS_COMP, "msg=\"replica dropped events for us\" replica=%u count=%llu",
                  item->replica, (unsigned long long)item->count);
        return;
    }
    struct rt_events_sub *s = rt_events_sub_of_core(e, item->channel_idx);
    if (s == NULL) {
        return; /* unsubscribed meanwhile */
    }
    struct rt_events_entry entry;
    memset(&entry, 0, sizeof(entry));
    entry.kind = item->kind == CLN_SUB_EVENT ? TRONE_EVENT_DATA : TRONE_EVENT_GAP;
    memcpy(entry.publisher, item->publisher, TRONE_KEY_LEN);
    entry.epoch = item->epoch;
    entry.seq = item->seq;
    entry.position = item->position;
    if (item->kind == CLN_SUB_EVENT && item->position == 0 &&
        cln_sub_channel_class(&e->sub, item->channel_idx)->durable) {
        entry.position = item->seq; /* a durable FIFO stream's position is its seq */
    }
    entry.not_kept = item->kind == CLN_SUB_GAP && item->reason == CLN_SUB_GAP_RETENTION;
    if (entry.not_kept) {
        log_info(RT_EVENTS_COMP,
                 "msg=\"replay starts after events the replicas no longer keep\" tag=%s "
                 "first_missing=%llu missing=%llu", s->tag, (unsigned long long)item->seq,
                 (unsigned long long)item->count);
    }
    entry.time_us = item->time_us;
    entry.received_us = rt_events_wall_us();
    entry.lost = item->kind == CLN_SUB_GAP ? item->count : 0;
    entry.arrival = e->arrival++;
    entry.payload_size = item->kind == CLN_SUB_EVENT ? item->payload_size : 0;
    if (entry.payload_size > TRONE_EVENT_PAYLOAD_MAX) {
        return; /* the core never delivers more than CHAN_PAYLOAD_MAX */
    }
    if (rt_events_queue_push(&s->queue, &entry, item->payload) != 0) {
        log_debug(RT_EVENTS_COMP, "msg=\"queue full, event dropped\" tag=%s", s->tag);
    }
}

static void rt_events_sub_output(struct rt_events *e, const struct cln_sub_output *out)
{
    for (uint32_t i = 0; i < out->item_count; i++) {
        rt_events_deliver(e, &out->items[i]);
    }
    e->sub_deadline_us = out->deadline_us;
    if (e->qop.counts.rejected != e->qop_rejected) {
        rt_events_warn(e, UINT32_MAX, "events failed their HA/PKE check and were dropped",
                       TRONE_EAUTH);
        e->qop_rejected = e->qop.counts.rejected;
    }
}

/* Runs one output of the subscriber core through the HA/PKE checks, then delivers. */
static void rt_events_sub_filter(struct rt_events *e, const struct cln_sub_output *in,
                                 uint64_t now_us)
{
    struct cln_sub_output out;
    if (cln_qop_filter(&e->qop, in, now_us, &out) != 0) {
        rt_events_warn(e, UINT32_MAX, "out of memory checking HA/PKE events", TRONE_ENOMEM);
        e->sub_deadline_us = in->deadline_us;
        return;
    }
    rt_events_sub_output(e, &out);
}

/* ---- Session events ----------------------------------------------------------------------- */

static void rt_events_on_opened(void *ctx, uint32_t replica)
{
    struct rt_events *e = ctx;
    cln_pub_replica_up(&e->pub, replica, rt_events_now_us());
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        struct rt_events_sub *s = &e->subs[i];
        if (s->active && s->error == 0) {
            rt_events_send_attach(e, replica, s);
        }
    }
    rt_events_pump(e);
}

static void rt_events_on_closed(void *ctx, uint32_t replica, int err)
{
    struct rt_events *e = ctx;
    cln_pub_replica_down(&e->pub, replica);
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        e->subs[i].attached &= ~(UINT64_C(1) << replica);
    }
    struct cln_sub_output out;
    uint64_t now_us = rt_events_now_us();
    if (cln_sub_replica_down(&e->sub, replica, UINT32_MAX, now_us, &out) == 0) {
        rt_events_sub_filter(e, &out, now_us); /* replays that waited on it may go on */
    }
    log_debug(RT_EVENTS_COMP, "msg=\"session closed\" replica=%u err=%s", replica,
              trone_err_name(err));
}

/* A connection's writes completed: a publisher held back by the backlog bound goes on now
 * rather than at its next retry (RT_EVENTS_BACKLOG_RETRY_MS capped large events to about
 * one backlog per retry per connection). */
static void rt_events_on_drained(void *ctx, uint32_t replica)
{
    struct rt_events *e = ctx;
    (void)replica;
    if (e->backlogged) {
        rt_events_pump(e);
        rt_client_flush(e->rtc);
    }
}

static uint32_t rt_events_popcount(uint64_t mask)
{
    uint32_t count = 0;
    for (uint32_t j = 0; j < 64; j++) {
        count += (uint32_t)((mask >> j) & 1u);
    }
    return count;
}

/* An ATTACHED answer: accepted, or refused (retried later; a refusal that f+1 replicas keep
 * repeating fails the subscription, since at most f replicas lie or lag for long). */
static int rt_events_on_attached(struct rt_events *e, uint32_t replica, const uint8_t *msg,
                                 size_t size)
{
    struct buf_reader r;
    struct chan_msg m;
    int rc = chan_msg_read_header(&r, msg, size, &m);
    if (rc != 0) {
        return rc;
    }
    int idx = rt_events_sub_find(e, m.tag);
    if (idx < 0) {
        return 0; /* detached meanwhile */
    }
    struct rt_events_sub *s = &e->subs[idx];
    if (m.status == 0) {
        s->attached |= UINT64_C(1) << replica;
        s->refusals[replica] = 0;
        uint32_t count = rt_events_popcount(s->attached);
        if (!s->announced && count >= e->n - e->f) {
            s->announced = true; /* once per subscription: tests and operators wait for it */
            log_info(RT_EVENTS_COMP, "msg=\"attached\" tag=%s replicas=%u of=%u", s->tag, count,
                     e->n);
        }
        if (!s->announced_all && count == e->n) {
            s->announced_all = true; /* the demo waits for it before a Byzantine round */
            log_info(RT_EVENTS_COMP, "msg=\"attached to every replica\" tag=%s", s->tag);
        }
        return 0;
    }
    s->attached &= ~(UINT64_C(1) << replica);
    s->refusal = m.status;
    s->refusals[replica]++;
    if (s->start_mode != CHAN_START_LIVE) {
        struct cln_sub_output out;
        uint64_t now_us = rt_events_now_us();
        if (cln_sub_replica_down(&e->sub, replica, (uint32_t)s->core_idx, now_us, &out) == 0) {
            rt_events_sub_filter(e, &out, now_us); /* it will not replay: do not wait for it */
        }
    }
    e->attach_retry = true;
    uint32_t persistent = 0;
    for (uint32_t j = 0; j < e->n; j++) {
        persistent += s->refusals[j] >= RT_EVENTS_REFUSALS_MAX ? 1u : 0u;
    }
    if (persistent >= e->f + 1 && s->error == 0) {
        s->error = m.status < 0 && m.status >= TRONE_EUNAVAIL ? m.status : TRONE_EPERM;
        log_info(RT_EVENTS_COMP, "msg=\"subscription refused\" tag=%s err=%s", s->tag,
                 trone_err_name(s->error));
    }
    return 0;
}

/* A DELIVER checked by the pool, in arrival order (rt_verify_feed_cb). */
static void rt_events_on_verified(void *ctx, uint32_t replica, const uint8_t *msg, size_t size,
                                  const uint8_t *checks, uint32_t check_count)
{
    struct rt_events *e = ctx;
    uint64_t now_us = rt_events_now_us();
    struct cln_sub_output out;
    int rc = cln_sub_receive_checked(&e->sub, replica, msg, size, checks, check_count, now_us,
                                     &out);
    if (rc == 0) {
        rt_events_sub_filter(e, &out, now_us);
    } else {
        rt_events_warn(e, replica, "bad event message after its check", rc); /* checked at push */
    }
    rt_events_arm(e);
}

/* DELIVER, DELIVER_TOTAL, GAP, REPLAY: to the subscriber core, through the verification pool when
 * some event wants its signature checked or earlier messages are still held there (so that
 * the core sees every message in arrival order). */
static int rt_events_sub_message(struct rt_events *e, uint32_t replica, const uint8_t *msg,
                                 size_t size, uint64_t now_us)
{
    if (e->verify != NULL) {
        int count = cln_sub_verify_wanted(&e->sub, msg, size, e->wanted);
        if (count < 0) {
            return count;
        }
        bool any = false;
        for (int i = 0; i < count && !any; i++) {
            any = e->wanted[i] != 0;
        }
        if ((any || rt_verify_holding(e->verify)) &&
            rt_verify_push(e->verify, replica, msg, size, any ? e->wanted : NULL,
                           any ? (uint32_t)count : 0) == 0) {
            return 0;
        }
        /* Not held (no memory or no thread): nothing is held any more, so the core takes it
         * now, in order, and verifies itself. */
    }
    struct cln_sub_output out;
    int rc = cln_sub_receive(&e->sub, replica, msg, size, now_us, &out);
    if (rc == 0) {
        rt_events_sub_filter(e, &out, now_us);
    }
    return rc;
}

static void rt_events_on_message(void *ctx, uint32_t replica, const uint8_t *msg, size_t size)
{
    struct rt_events *e = ctx;
    uint64_t now_us = rt_events_now_us();
    int rc = TRONE_EBADMSG;
    switch ((enum chan_msg_type)msg[0]) {
    case CHAN_MSG_ACK:
        rc = cln_pub_receive(&e->pub, replica, msg, size, now_us);
        break;
    case CHAN_MSG_ATTACHED:
        rc = rt_events_on_attached(e, replica, msg, size);
        break;
    case CHAN_MSG_DELIVER:
    case CHAN_MSG_DELIVER_TOTAL:
    case CHAN_MSG_GAP:
    case CHAN_MSG_REPLAY:
        rc = rt_events_sub_message(e, replica, msg, size, now_us);
        break;
    default:
        break; /* PUBLISH, ATTACH, DETACH never come from a replica */
    }
    if (rc != 0) {
        rt_events_warn(e, replica, "bad event message, dropping the connection", rc);
        rt_client_replica_drop(e->rtc, replica, rc);
    }
    rt_events_pump(e);
}

/* ---- Timer -------------------------------------------------------------------------------- */

static void rt_events_attach_retry(struct rt_events *e)
{
    e->attach_retry = false;
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        struct rt_events_sub *s = &e->subs[i];
        if (!s->active || s->error != 0) {
            continue;
        }
        for (uint32_t j = 0; j < e->n; j++) {
            if (s->refusals[j] > 0 && rt_client_replica_open(e->rtc, j)) {
                rt_events_send_attach(e, j, s);
            }
        }
    }
}

static void rt_events_on_timer(uv_timer_t *timer)
{
    struct rt_events *e = timer->data;
    uint64_t now_us = rt_events_now_us();
    if (cln_pub_deadline(&e->pub) <= now_us) {
        cln_pub_tick(&e->pub, now_us);
    }
    if (e->sub_deadline_us <= now_us) {
        struct cln_sub_output out;
        if (cln_sub_tick(&e->sub, now_us, &out) == 0) {
            rt_events_sub_filter(e, &out, now_us);
        } else {
            e->sub_deadline_us = now_us + 1000u * RT_EVENTS_BACKLOG_RETRY_MS;
        }
    }
    if (cln_qop_deadline(&e->qop) <= now_us) {
        struct cln_sub_output out;
        if (cln_qop_tick(&e->qop, now_us, &out) == 0) {
            uint64_t sub_deadline_us = e->sub_deadline_us;
            rt_events_sub_output(e, &out);
            e->sub_deadline_us = sub_deadline_us;
        }
    }
    if (e->attach_retry) {
        rt_events_attach_retry(e);
    }
    rt_events_pump(e);
}

/* Arms the timer at the earliest deadline of the cores and the retries. */
static void rt_events_arm(struct rt_events *e)
{
    uint64_t now_us = rt_events_now_us();
    uint64_t deadline = cln_pub_deadline(&e->pub);
    deadline = e->sub_deadline_us < deadline ? e->sub_deadline_us : deadline;
    uint64_t qop_deadline = cln_qop_deadline(&e->qop);
    deadline = qop_deadline < deadline ? qop_deadline : deadline;
    if (e->backlogged || e->order_wait) {
        uint64_t retry = now_us + 1000u * RT_EVENTS_BACKLOG_RETRY_MS;
        deadline = retry < deadline ? retry : deadline;
    }
    if (e->attach_retry) {
        uint64_t retry = now_us + 1000u * RT_EVENTS_ATTACH_RETRY_MS;
        deadline = retry < deadline ? retry : deadline;
    }
    if (deadline == UINT64_MAX) {
        uv_timer_stop(&e->timer);
        return;
    }
    uint64_t delay_ms = deadline > now_us ? (deadline - now_us + 999u) / 1000u : 0;
    int rc = uv_timer_start(&e->timer, rt_events_on_timer, delay_ms, 0);
    TRONE_ASSERT(rc == 0);
}

/* ---- Publishing --------------------------------------------------------------------------- */

int rt_events_pub_open(struct rt_events *e, const char *tag, const struct brk_class *cls)
{
    int idx = cln_pub_channel_find(&e->pub, tag);
    if (idx >= 0) {
        return idx;
    }
    return cln_pub_channel_open(&e->pub, tag, cls);
}

int rt_events_pub_recipients(struct rt_events *e, uint32_t channel_idx,
                             const uint8_t (*keys)[TRONE_KEY_LEN], uint32_t count)
{
    return cln_pub_channel_recipients(&e->pub, channel_idx, keys, count, rt_events_now_us());
}

const struct brk_class *rt_events_pub_class(const struct rt_events *e, uint32_t channel_idx)
{
    TRONE_ASSERT(channel_idx < e->pub.channel_count);
    return &e->pub.channels[channel_idx].cls;
}

int rt_events_pub_find(const struct rt_events *e, const char *tag)
{
    return cln_pub_channel_find(&e->pub, tag);
}

int rt_events_publish(struct rt_events *e, uint32_t channel_idx, const void *data, size_t size)
{
    if (size > CHAN_PAYLOAD_MAX) {
        return TRONE_ETOOBIG;
    }
    int64_t seq = cln_pub_publish(&e->pub, channel_idx, data, (uint32_t)size, rt_events_wall_us(),
                                  rt_events_now_us());
    return seq > 0 ? 0 : (int)seq;
}

void rt_events_pub_counts(const struct rt_events *e, struct cln_pub_counts *counts)
{
    cln_pub_counts(&e->pub, counts);
}

/* ---- Subscribing -------------------------------------------------------------------------- */

int rt_events_sub_find(const struct rt_events *e, const char *tag)
{
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        if (e->subs[i].active && strcmp(e->subs[i].tag, tag) == 0) {
            return (int)i;
        }
    }
    return TRONE_ENOENT;
}

int rt_events_sub_add(struct rt_events *e, const char *tag, const struct brk_class *cls,
                      const uint8_t (*publishers)[TRONE_KEY_LEN], uint32_t publisher_count,
                      uint8_t start_mode, uint64_t start)
{
    if (start_mode != CHAN_START_LIVE && !cls->durable) {
        return TRONE_EINVAL; /* only durable channels keep events to replay */
    }
    if (rt_events_sub_find(e, tag) >= 0) {
        return TRONE_EEXIST;
    }
    uint32_t idx = RT_EVENTS_SUBS_MAX;
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX && idx == RT_EVENTS_SUBS_MAX; i++) {
        idx = e->subs[i].active ? idx : i;
    }
    if (idx == RT_EVENTS_SUBS_MAX) {
        return TRONE_EFULL;
    }
    /* A channel unsubscribed before stays in the core (it has no removal): reuse it. */
    int core_idx = cln_sub_channel_find(&e->sub, tag);
    if (core_idx < 0) {
        core_idx = cln_sub_channel_add(&e->sub, tag, cls, publishers, publisher_count);
    }
    if (core_idx < 0) {
        return core_idx;
    }
    int rc = cln_qop_channel_set(&e->qop, (uint32_t)core_idx, cls->method);
    if (rc == 0 && start_mode != CHAN_START_LIVE) {
        rc = cln_sub_replay(&e->sub, (uint32_t)core_idx, start_mode, start);
    }
    if (rc != 0) {
        return rc;
    }
    struct rt_events_sub *s = &e->subs[idx];
    memset(s, 0, sizeof(*s));
    rc = rt_events_queue_init(&s->queue, RT_EVENTS_QUEUE_SLOTS, RT_EVENTS_QUEUE_BYTES);
    if (rc != 0) {
        return rc;
    }
    s->active = true;
    s->urgency = cls->urgency;
    s->core_idx = core_idx;
    snprintf(s->tag, sizeof(s->tag), "%s", tag);
    s->start_mode = start_mode;
    s->start = start;
    for (uint32_t j = 0; j < e->n; j++) {
        rt_events_send_attach(e, j, s);
    }
    return (int)idx;
}

int rt_events_sub_remove(struct rt_events *e, const char *tag)
{
    int idx = rt_events_sub_find(e, tag);
    if (idx < 0) {
        return idx;
    }
    for (uint32_t j = 0; j < e->n; j++) {
        rt_events_send_tag(e, j, CHAN_MSG_DETACH, tag);
    }
    rt_events_queue_close(&e->subs[idx].queue);
    memset(&e->subs[idx], 0, sizeof(e->subs[idx]));
    return 0;
}

const char *rt_events_sub_tag(const struct rt_events *e, uint32_t idx)
{
    TRONE_ASSERT(idx < RT_EVENTS_SUBS_MAX && e->subs[idx].active);
    return e->subs[idx].tag;
}

struct rt_events_queue *rt_events_sub_queue(struct rt_events *e, uint32_t idx)
{
    TRONE_ASSERT(idx < RT_EVENTS_SUBS_MAX && e->subs[idx].active);
    return &e->subs[idx].queue;
}

int rt_events_sub_error(const struct rt_events *e, uint32_t idx)
{
    TRONE_ASSERT(idx < RT_EVENTS_SUBS_MAX && e->subs[idx].active);
    return e->subs[idx].error;
}

bool rt_events_sub_active(const struct rt_events *e, uint32_t idx)
{
    return idx < RT_EVENTS_SUBS_MAX && e->subs[idx].active;
}

uint8_t rt_events_sub_urgency(const struct rt_events *e, uint32_t idx)
{
    TRONE_ASSERT(idx < RT_EVENTS_SUBS_MAX && e->subs[idx].active);
    return e->subs[idx].urgency;
}

uint64_t rt_events_arrival_next(struct rt_events *e) { return e->arrival++; }

/* ---- Create and destroy ------------------------------------------------------------------- */

static int rt_events_cores_init(struct rt_events *e, const struct key_identity *key,
                                uint64_t epoch)
{
    struct cln_pub_config pc;
    memset(&pc, 0, sizeof(pc));
    pc.n = e->n;
    pc.f = e->f;
    memcpy(pc.public_key, key->public_key, TRONE_KEY_LEN);
    memcpy(pc.secret_key, key->secret_key, TRONE_SECRET_KEY_LEN);
    pc.epoch = epoch;
    randombytes_buf(pc.seed, sizeof(pc.seed)); /* HA/PKE channel keys derive from it */
    int rc = cln_pub_init(&e->pub, &pc);
    sodium_memzero(pc.secret_key, sizeof(pc.secret_key));
    sodium_memzero(pc.seed, sizeof(pc.seed));
    if (rc != 0) {
        return rc;
    }
    struct cln_qop_config qc;
    memset(&qc, 0, sizeof(qc));
    memcpy(qc.secret_key, key->secret_key, TRONE_SECRET_KEY_LEN);
    qc.channels_max = CLN_SUB_CHANNELS_DEFAULT; /* indexes of the subscriber core below */
    rc = cln_qop_init(&e->qop, &qc);
    sodium_memzero(qc.secret_key, sizeof(qc.secret_key));
    if (rc != 0) {
        return rc;
    }
    struct cln_sub_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.n = e->n;
    sc.f = e->f;
    /* sc.window = 0: the core's default, which covers two publisher windows and two ORDER
     * ranges by construction (cln_sub.h). */
    return cln_sub_init(&e->sub, &sc);
}

/* Verification threads: TRONE_VERIFY_THREADS (0 turns the pool off), else one per online
 * core up to 4 (more only queue for the same cores), none on a single core (nothing to
 * gain over verifying on the loop thread). */
static uint32_t rt_events_verify_threads(void)
{
    const char *text = getenv("TRONE_VERIFY_THREADS");
    if (text != NULL && text[0] != '\0') {
        char *end = NULL;
        unsigned long v = strtoul(text, &end, 10);
        if (*end == '\0' && v <= RT_VERIFY_THREADS_MAX) {
            return (uint32_t)v;
        }
        log_warn(RT_EVENTS_COMP, "msg=\"TRONE_VERIFY_THREADS ignored\" value=\"%.16s\" max=%u",
                 text, RT_VERIFY_THREADS_MAX);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores <= 1 ? 0u : cores > 4 ? 4u : (uint32_t)cores;
}

int rt_events_create(struct rt_client *rtc, const struct key_identity *key, uint64_t epoch,
                     struct rt_events **out)
{
    *out = NULL;
    struct rt_events *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return TRONE_ENOMEM;
    }
    const struct cfg_cluster *cluster = rt_client_cluster(rtc);
    e->rtc = rtc;
    e->n = cluster->replica_count;
    e->f = cluster->fault_count;
    e->sub_deadline_us = UINT64_MAX;
    buf_init(&e->scratch, 1024);
    int rc = rt_events_cores_init(e, key, epoch);
    if (rc != 0) {
        cln_pub_close(&e->pub);
        cln_sub_close(&e->sub);
        cln_qop_close(&e->qop);
        buf_close(&e->scratch);
        free(e);
        return rc;
    }
    uint32_t threads = rt_events_verify_threads();
    if (threads > 0 && rt_verify_create(rt_client_loop(rtc), threads, rt_events_on_verified, e,
                                        &e->verify) != 0) {
        e->verify = NULL; /* the core verifies on the loop thread, as without threads */
    }
    rc = uv_timer_init(rt_client_loop(rtc), &e->timer);
    TRONE_ASSERT(rc == 0); /* a timer init only links the handle into the loop */
    e->timer.data = e;
    struct rt_client_hooks hooks = {.ctx = e,
                                    .opened = rt_events_on_opened,
                                    .message = rt_events_on_message,
                                    .closed = rt_events_on_closed,
                                    .drained = rt_events_on_drained};
    rt_client_hooks_set(rtc, &hooks);
    for (uint32_t j = 0; j < e->n; j++) {
        if (rt_client_replica_open(rtc, j)) {
            cln_pub_replica_up(&e->pub, j, rt_events_now_us());
        }
    }
    *out = e;
    return 0;
}

void rt_events_destroy(struct rt_events *e)
{
    if (e == NULL) {
        return;
    }
    rt_client_hooks_set(e->rtc, NULL);
    rt_client_submit_cancel(e->rtc);
    uv_close((uv_handle_t *)&e->timer, NULL);
    rt_verify_close(e->verify); /* joins its threads; held messages are dropped */
    (void)rt_client_run(e->rtc, 0, NULL, NULL); /* one turn runs the closes */
    for (uint32_t i = 0; i < RT_EVENTS_SUBS_MAX; i++) {
        rt_events_queue_close(&e->subs[i].queue);
    }
    cln_pub_close(&e->pub);
    cln_sub_close(&e->sub);
    cln_qop_close(&e->qop);
    buf_close(&e->scratch);
    sodium_memzero(e, sizeof(*e));
    free(e);
}
