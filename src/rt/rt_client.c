/* rt_client.c: the blocking control-table client: one libuv loop per client, run only while a
 * call waits (or rt_client_run runs it for the event path). Requests go to every replica with
 * an open session; a session that opens during a call gets the request at once instead of
 * waiting for the core's retransmission. Event-path messages are handed to the hooks. */
#include "rt/rt_client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uv.h>

#include "chan/chan_msg.h"
#include "core/assert.h"
#include "core/log.h"
#include "rt/rt_conn.h"
#include "smr/smr_client.h"

#define RT_CLIENT_COMP "client"
#define RT_CLIENT_RETRANSMIT_MS 500u
/* A call gives up early once every replica refused this many handshakes since it began. */
#define RT_CLIENT_REFUSALS 3u
/* Request messages of the current call kept for sessions that open later. */
#define RT_CLIENT_PENDING_MAX 4u

enum rt_client_mode {
    RT_CLIENT_IDLE = 0,
    RT_CLIENT_CALL = 1,
    RT_CLIENT_STATUS = 2,
    RT_CLIENT_ASYNC = 3, /* rt_client_submit in flight */
};

struct rt_client {
    uv_loop_t loop;
    struct rt_net net;
    struct rt_dialer dialers[TRONE_REPLICAS_MAX];
    uv_timer_t tick_timer; /* the core's deadline */
    uv_timer_t wait_timer; /* the end of the current call */
    struct cfg_cluster cluster;
    uint32_t replica_count;
    struct smr_client *core;
    uint8_t public_key[TRONE_KEY_LEN];
    uint8_t secret_key[TRONE_SECRET_KEY_LEN]; /* to renew the core; wiped at destroy */
    uint64_t last_request_id;
    struct rt_client_hooks hooks;
    enum rt_client_mode mode;
    bool timed_out;
    uint64_t reached; /* replicas with an open session during the current call */
    /* RT_CLIENT_CALL */
    uint64_t call_id;
    bool call_done;
    int call_status;
    struct buf *call_result;
    size_t pending_count;
    struct buf pending[RT_CLIENT_PENDING_MAX];
    uint32_t failures_at_start[TRONE_REPLICAS_MAX]; /* dialer failures when the wait began */
    /* RT_CLIENT_STATUS */
    struct rt_client_status_report *report;
    /* RT_CLIENT_ASYNC */
    rt_client_done_cb async_done;
    void *async_ctx;
    struct buf async_result;
    bool call_waiting; /* rt_client_call waits for the submission to end: no new one */
};

static uint64_t rt_client_now(struct rt_client *c) { return uv_now(&c->loop); }

static void rt_client_send_all(struct rt_client *c, const uint8_t *data, size_t size)
{
    for (uint32_t j = 0; j < c->replica_count; j++) {
        struct rt_conn *conn = rt_dialer_open_conn(&c->dialers[j]);
        if (conn != NULL) {
            (void)rt_conn_send(conn, data, size); /* a failure closes conn; it is retried */
        }
    }
}

static void rt_client_on_tick(uv_timer_t *timer);
static int rt_client_core_init(struct rt_client *c);

/* Carries out the core's output: sends, completes the call, re-arms the tick timer. */
static void rt_client_apply(struct rt_client *c, const struct smr_client_output *out)
{
    for (size_t i = 0; i < out->message_count; i++) {
        const struct buf *m = &out->messages[i];
        rt_client_send_all(c, m->data, m->used);
    }
    bool async_done = false;
    int async_status = 0;
    for (size_t i = 0; i < out->done_count; i++) {
        const struct smr_client_done *d = &out->done[i];
        if (c->mode == RT_CLIENT_ASYNC && d->request_id == c->call_id && !async_done) {
            async_done = true;
            async_status = d->status;
            buf_reset(&c->async_result);
            if (d->status == 0) {
                buf_put_bytes(&c->async_result, d->result, d->result_size);
                async_status = c->async_result.error;
            }
            continue;
        }
        if (c->mode != RT_CLIENT_CALL || d->request_id != c->call_id || c->call_done) {
            continue;
        }
        c->call_done = true;
        c->call_status = d->status;
        if (d->status == 0) {
            buf_put_bytes(c->call_result, d->result, d->result_size);
            c->call_status = c->call_result->error;
        }
    }
    if (out->rejected_count > 0) {
        log_debug(RT_CLIENT_COMP, "msg=\"replies rejected\" count=%zu", out->rejected_count);
    }
    uint64_t now = rt_client_now(c);
    uint64_t delay = out->deadline_ms > now ? out->deadline_ms - now : 0;
    int rc = uv_timer_start(&c->tick_timer, rt_client_on_tick, delay, 0);
    TRONE_ASSERT(rc == 0);
    if (async_done) {
        /* Last: the callback may submit again, which reuses the core's output. */
        c->mode = RT_CLIENT_IDLE;
        rt_client_done_cb done = c->async_done;
        c->async_done = NULL;
        done(c->async_ctx, async_status, c->async_result.data, c->async_result.used);
    }
}

static void rt_client_on_tick(uv_timer_t *timer)
{
    struct rt_client *c = timer->data;
    const struct smr_client_output *out = NULL;
    if (smr_client_tick(c->core, rt_client_now(c), &out) == 0) {
        rt_client_apply(c, out);
    }
    rt_net_flush(&c->net);
}

static void rt_client_on_wait_timeout(uv_timer_t *timer)
{
    struct rt_client *c = timer->data;
    c->timed_out = true;
}

/* ---- Connections -------------------------------------------------------------------------- */

static void rt_client_status_query(struct rt_client *c, struct rt_conn *conn)
{
    uint8_t query[1];
    struct buf b;
    buf_init(&b, sizeof(query));
    rt_msg_encode_status_query(&b);
    TRONE_ASSERT(b.error == 0 && b.used == 1);
    memcpy(query, b.data, 1);
    buf_close(&b);
    (void)rt_conn_send(conn, query, sizeof(query));
}

static void rt_client_on_opened(void *ctx, struct rt_conn *conn)
{
    struct rt_client *c = ctx;
    TRONE_ASSERT(conn->dialer != NULL);
    uint32_t j = conn->dialer->peer_id;
    c->reached |= UINT64_C(1) << j;
    if (c->hooks.opened != NULL) {
        c->hooks.opened(c->hooks.ctx, j);
    }
    if ((c->mode == RT_CLIENT_CALL && !c->call_done) || c->mode == RT_CLIENT_ASYNC) {
        for (size_t i = 0; i < c->pending_count; i++) {
            (void)rt_conn_send(conn, c->pending[i].data, c->pending[i].used);
        }
    } else if (c->mode == RT_CLIENT_STATUS && !c->report->replicas[j].answered) {
        rt_client_status_query(c, conn);
    }
}

static void rt_client_status_answer(struct rt_client *c, struct rt_conn *conn, const uint8_t *msg,
                                    size_t size)
{
    uint32_t j = conn->dialer->peer_id;
    struct rt_status st;
    int rc = rt_msg_decode_status_answer(msg, size, &st);
    if (rc == 0 && st.replica != j) {
        rc = TRONE_EAUTH;
    }
    if (rc != 0) {
        log_warn(RT_CLIENT_COMP, "msg=\"bad status answer\" replica=%u err=%s", j,
                 trone_err_name(rc));
        rt_conn_close(conn, rc);
        return;
    }
    if (c->mode != RT_CLIENT_STATUS || c->report->replicas[j].answered) {
        return;
    }
    c->report->replicas[j].answered = true;
    c->report->replicas[j].status = st;
    c->report->replicas[j].error[0] = '\0';
    c->report->answered_count++;
}

static void rt_client_on_message(void *ctx, struct rt_conn *conn, const uint8_t *msg, size_t size)
{
    struct rt_client *c = ctx;
    TRONE_ASSERT(conn->dialer != NULL);
    if (chan_msg_is_event_type(msg, size)) {
        if (c->hooks.message != NULL) {
            c->hooks.message(c->hooks.ctx, conn->dialer->peer_id, msg, size);
        }
        return;
    }
    if (rt_msg_type(msg, size) == RT_MSG_STATUS_ANSWER) {
        rt_client_status_answer(c, conn, msg, size);
        return;
    }
    const struct smr_client_output *out = NULL;
    int rc = smr_client_receive(c->core, rt_client_now(c), conn->dialer->peer_id, msg, size, &out);
    if (rc != 0) {
        log_debug(RT_CLIENT_COMP, "msg=\"reply not accepted\" replica=%u err=%s",
                  conn->dialer->peer_id, trone_err_name(rc));
        return;
    }
    rt_client_apply(c, out);
}

static void rt_client_on_closed(void *ctx, struct rt_conn *conn, int err)
{
    struct rt_client *c = ctx;
    if (conn->dialer != NULL && conn->opened && c->hooks.closed != NULL) {
        c->hooks.closed(c->hooks.ctx, conn->dialer->peer_id, err);
    }
}

static void rt_client_on_drained(void *ctx, struct rt_conn *conn)
{
    struct rt_client *c = ctx;
    if (conn->dialer != NULL && c->hooks.drained != NULL) {
        c->hooks.drained(c->hooks.ctx, conn->dialer->peer_id);
    }
}

/* ---- Waiting ------------------------------------------------------------------------------ */

/* Runs the loop until done says so or timeout_ms passes (0: one non-blocking turn). The loop
 * always has the wait timer armed, so every turn ends within the timeout. */
static bool rt_client_wait(struct rt_client *c, uint64_t timeout_ms, rt_client_until_cb done,
                           void *ctx)
{
    rt_net_flush(&c->net);
    if (timeout_ms == 0) {
        (void)uv_run(&c->loop, UV_RUN_NOWAIT);
        rt_net_flush(&c->net);
        return done != NULL && done(ctx);
    }
    c->timed_out = false;
    uv_update_time(&c->loop);
    int rc = uv_timer_start(&c->wait_timer, rt_client_on_wait_timeout, timeout_ms, 0);
    TRONE_ASSERT(rc == 0);
    bool reached = done != NULL && done(ctx);
    while (!reached && !c->timed_out) {
        (void)uv_run(&c->loop, UV_RUN_ONCE);
        rt_net_flush(&c->net);
        reached = done != NULL && done(ctx);
    }
    uv_timer_stop(&c->wait_timer);
    return reached;
}

static void rt_client_failures_mark(struct rt_client *c)
{
    for (uint32_t j = 0; j < c->replica_count; j++) {
        c->failures_at_start[j] = c->dialers[j].failures;
    }
}

/* True when no session ever opened during this call and every replica hung up during the
 * handshake several times: the replicas do not accept this key, and waiting will not help. */
static bool rt_client_all_refused(const struct rt_client *c)
{
    if (c->reached != 0) {
        return false;
    }
    for (uint32_t j = 0; j < c->replica_count; j++) {
        const struct rt_dialer *d = &c->dialers[j];
        bool refused = d->last_uv_error == UV_EOF || d->last_uv_error == UV_ECONNRESET;
        if (!refused || d->failures < c->failures_at_start[j] + RT_CLIENT_REFUSALS) {
            return false;
        }
    }
    return true;
}

static bool rt_client_call_done(void *ctx)
{
    struct rt_client *c = ctx;
    return c->call_done || rt_client_all_refused(c);
}

static uint32_t rt_client_popcount(uint64_t mask)
{
    uint32_t count = 0;
    for (uint32_t j = 0; j < 64; j++) {
        count += (uint32_t)((mask >> j) & 1u);
    }
    return count;
}

/* "no 2 matching replies within 20 s: reached 1 of 4 replicas (replica 0: connection
 * refused)". */
static void rt_client_timeout_message(struct rt_client *c, uint64_t timeout_ms, char *errmsg,
                                      size_t errmsg_size)
{
    uint32_t quorum = c->cluster.bft ? c->cluster.fault_count + 1 : 1;
    char what[48];
    if (quorum > 1) {
        snprintf(what, sizeof(what), "no %u matching replies", quorum);
    } else {
        snprintf(what, sizeof(what), "no reply");
    }
    int used =
        snprintf(errmsg, errmsg_size, "%s within %.3g s: reached %u of %u replicas", what,
                 (double)timeout_ms / 1000.0, rt_client_popcount(c->reached), c->replica_count);
    for (uint32_t j = 0; j < c->replica_count && used > 0 && (size_t)used < errmsg_size; j++) {
        if ((c->reached >> j) & 1u) {
            continue;
        }
        used += snprintf(errmsg + used, errmsg_size - (size_t)used, " (replica %u: %s)", j,
                         rt_dialer_error(&c->dialers[j]));
        break; /* one reason keeps the line short */
    }
}

static void rt_client_pending_keep(struct rt_client *c, const struct smr_client_output *out)
{
    c->pending_count = 0;
    for (size_t i = 0; i < out->message_count && i < RT_CLIENT_PENDING_MAX; i++) {
        buf_reset(&c->pending[i]);
        buf_put_bytes(&c->pending[i], out->messages[i].data, out->messages[i].used);
        if (c->pending[i].error == 0) {
            c->pending_count = i + 1;
        }
    }
}

static void rt_client_mark_open(struct rt_client *c)
{
    c->reached = 0;
    for (uint32_t j = 0; j < c->replica_count; j++) {
        if (rt_dialer_open_conn(&c->dialers[j]) != NULL) {
            c->reached |= UINT64_C(1) << j;
        }
    }
}

static bool rt_client_idle(void *ctx) { return ((struct rt_client *)ctx)->mode == RT_CLIENT_IDLE; }

int rt_client_submit(struct rt_client *c, const void *op, size_t op_size, rt_client_done_cb done,
                     void *ctx)
{
    TRONE_ASSERT(done != NULL);
    if (c->mode != RT_CLIENT_IDLE || c->call_waiting) {
        return TRONE_EBUSY;
    }
    uv_update_time(&c->loop);
    const struct smr_client_output *out = NULL;
    uint64_t id = 0;
    int rc = rt_client_core_init(c);
    if (rc == 0) {
        rc = smr_client_submit(c->core, rt_client_now(c), op, op_size, &id, &out);
    }
    if (rc != 0) {
        return rc;
    }
    c->last_request_id = id;
    c->mode = RT_CLIENT_ASYNC;
    c->call_id = id;
    c->async_done = done;
    c->async_ctx = ctx;
    rt_client_pending_keep(c, out);
    rt_client_apply(c, out);
    return 0;
}

bool rt_client_busy(const struct rt_client *c) { return c->mode != RT_CLIENT_IDLE; }

void rt_client_submit_cancel(struct rt_client *c)
{
    if (c->mode == RT_CLIENT_ASYNC) {
        c->mode = RT_CLIENT_IDLE; /* the core's request is dropped at the next renewal */
        c->async_done = NULL;
    }
}

int rt_client_call(struct rt_client *c, const void *op, size_t op_size, uint64_t timeout_ms,
                   struct buf *result, char *errmsg, size_t errmsg_size)
{
    if (c->mode == RT_CLIENT_ASYNC) {
        c->call_waiting = true;
        bool idle = rt_client_wait(c, timeout_ms, rt_client_idle, c);
        c->call_waiting = false;
        if (!idle) {
            rt_client_timeout_message(c, timeout_ms, errmsg, errmsg_size);
            return TRONE_ETIMEDOUT;
        }
    }
    TRONE_ASSERT(c->mode == RT_CLIENT_IDLE);
    uv_update_time(&c->loop);
    const struct smr_client_output *out = NULL;
    uint64_t id = 0;
    int rc = rt_client_core_init(c);
    if (rc == 0) {
        rc = smr_client_submit(c->core, rt_client_now(c), op, op_size, &id, &out);
    }
    if (rc == 0) {
        c->last_request_id = id;
    } else {
        snprintf(errmsg, errmsg_size, "cannot submit the request: %s", trone_strerror(rc));
        return rc;
    }
    c->mode = RT_CLIENT_CALL;
    c->call_id = id;
    c->call_done = false;
    c->call_status = 0;
    c->call_result = result;
    rt_client_mark_open(c);
    rt_client_failures_mark(c);
    rt_client_pending_keep(c, out);
    rt_client_apply(c, out);
    (void)rt_client_wait(c, timeout_ms, rt_client_call_done, c);
    c->mode = RT_CLIENT_IDLE;
    c->call_result = NULL;
    if (!c->call_done && rt_client_all_refused(c)) {
        snprintf(errmsg, errmsg_size,
                 "every replica refused the session: this key is not the "
                 "admin's and not registered (see trone register)");
        return TRONE_EPERM;
    }
    if (!c->call_done) {
        rt_client_timeout_message(c, timeout_ms, errmsg, errmsg_size);
        return TRONE_ETIMEDOUT;
    }
    if (c->call_status == TRONE_ESTALE) {
        snprintf(errmsg, errmsg_size,
                 "the replicas refused the request as stale: other processes using this key "
                 "had 16 newer requests executed meanwhile, or the wall clock went "
                 "backwards (the operation may or may not have been applied)");
    } else if (c->call_status != 0) {
        snprintf(errmsg, errmsg_size, "cannot keep the result: %s", trone_strerror(c->call_status));
    }
    return c->call_status;
}

/* ---- Status ------------------------------------------------------------------------------- */

/* Done when every replica answered or failed to connect since the query began. */
static bool rt_client_status_done(void *ctx)
{
    struct rt_client *c = ctx;
    for (uint32_t j = 0; j < c->replica_count; j++) {
        if (!c->report->replicas[j].answered && c->dialers[j].failures == c->failures_at_start[j]) {
            return false;
        }
    }
    return true;
}

uint32_t rt_client_status(struct rt_client *c, uint64_t timeout_ms,
                          struct rt_client_status_report *report)
{
    TRONE_ASSERT(c->mode == RT_CLIENT_IDLE);
    memset(report, 0, sizeof(*report));
    report->replica_count = c->replica_count;
    c->report = report;
    c->mode = RT_CLIENT_STATUS;
    rt_client_failures_mark(c);
    for (uint32_t j = 0; j < c->replica_count; j++) {
        struct rt_conn *conn = rt_dialer_open_conn(&c->dialers[j]);
        if (conn != NULL) {
            rt_client_status_query(c, conn);
        }
    }
    (void)rt_client_wait(c, timeout_ms, rt_client_status_done, c);
    for (uint32_t j = 0; j < c->replica_count; j++) {
        struct rt_client_replica_status *r = &report->replicas[j];
        if (r->answered) {
            continue;
        }
        const struct rt_dialer *d = &c->dialers[j];
        if (d->failures != c->failures_at_start[j]) {
            snprintf(r->error, sizeof(r->error), "%s", rt_dialer_error(d));
        } else if (d->conn != NULL && !d->conn->opened) {
            snprintf(r->error, sizeof(r->error), "no answer within %.3g s (session not open)",
                     (double)timeout_ms / 1000.0);
        } else if (d->conn == NULL) {
            snprintf(r->error, sizeof(r->error), "%s", rt_dialer_error(d));
        } else {
            snprintf(r->error, sizeof(r->error), "no answer within %.3g s",
                     (double)timeout_ms / 1000.0);
        }
    }
    c->mode = RT_CLIENT_IDLE;
    c->report = NULL;
    return report->answered_count;
}

/* ---- Create and destroy ------------------------------------------------------------------- */

/* (Re)creates the protocol core. Its first request id is the wall-clock nanosecond (and
 * above every id used before). The replicas execute the requests of one key in any id order
 * (several processes may share a key, docs/PROTOCOL.md 4) but remember only the newest ids
 * of each key, so ids from the clock keep every process's ids near the others'; nanoseconds
 * make two processes choosing one id (told TRONE_ESTALE, never given the other's result)
 * practically impossible. */
static int rt_client_core_init(struct rt_client *c)
{
    if (c->core != NULL) {
        smr_client_destroy(c->core);
        c->core = NULL;
    }
    struct smr_client_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.replica_count = c->cluster.replica_count;
    sc.fault_count = c->cluster.fault_count;
    sc.model = c->cluster.bft ? SMR_BFT : SMR_CFT;
    memcpy(sc.public_key, c->public_key, TRONE_KEY_LEN);
    memcpy(sc.secret_key, c->secret_key, TRONE_SECRET_KEY_LEN);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t id = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    sc.first_request_id = id > c->last_request_id ? id : c->last_request_id + 1;
    sc.retransmit_ms = RT_CLIENT_RETRANSMIT_MS;
    sc.inflight_max = 1;
    c->core = smr_client_create(&sc);
    sodium_memzero(sc.secret_key, sizeof(sc.secret_key));
    return c->core != NULL ? 0 : TRONE_ENOMEM;
}

static int rt_client_net_init(struct rt_client *c, const struct key_identity *key)
{
    struct rt_net_config nc;
    memset(&nc, 0, sizeof(nc));
    nc.role = SESS_ROLE_CLIENT;
    memcpy(nc.ed_public, key->public_key, TRONE_KEY_LEN);
    memcpy(nc.ed_secret, key->secret_key, TRONE_SECRET_KEY_LEN);
    nc.comp = RT_CLIENT_COMP;
    struct rt_net_handler h = {
        .ctx = c,
        .opened = rt_client_on_opened,
        .message = rt_client_on_message,
        .closed = rt_client_on_closed,
        .drained = rt_client_on_drained};
    int rc = rt_net_init(&c->net, &c->loop, &nc, &h);
    sodium_memzero(nc.ed_secret, sizeof(nc.ed_secret));
    if (rc != 0) {
        return rc;
    }
    for (uint32_t j = 0; j < c->replica_count; j++) {
        const struct cfg_replica *peer = &c->cluster.replicas[j];
        rc = rt_dialer_start(&c->dialers[j], &c->net, j, peer->public_key, peer->host, peer->port);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

struct rt_client *rt_client_create(const struct cfg_cluster *cluster,
                                   const struct key_identity *key)
{
    TRONE_ASSERT(cluster->replica_count > 0 && cluster->replica_count <= TRONE_REPLICAS_MAX);
    if (sodium_init() < 0) {
        return NULL;
    }
    struct rt_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    if (uv_loop_init(&c->loop) != 0) {
        free(c);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    c->cluster = *cluster;
    c->replica_count = cluster->replica_count;
    memcpy(c->public_key, key->public_key, TRONE_KEY_LEN);
    memcpy(c->secret_key, key->secret_key, TRONE_SECRET_KEY_LEN);
    for (size_t i = 0; i < RT_CLIENT_PENDING_MAX; i++) {
        buf_init(&c->pending[i], 0);
    }
    buf_init(&c->async_result, TRONE_RESULT_MAX);
    int rc = uv_timer_init(&c->loop, &c->tick_timer);
    TRONE_ASSERT(rc == 0); /* a timer init only links the handle into the loop */
    rc = uv_timer_init(&c->loop, &c->wait_timer);
    TRONE_ASSERT(rc == 0);
    c->tick_timer.data = c;
    c->wait_timer.data = c;
    rc = rt_client_core_init(c);
    if (rc == 0) {
        rc = rt_client_net_init(c, key);
    }
    if (rc != 0) {
        rt_client_destroy(c);
        return NULL;
    }
    return c;
}

void rt_client_destroy(struct rt_client *c)
{
    if (c == NULL) {
        return;
    }
    for (uint32_t j = 0; j < c->replica_count; j++) {
        rt_dialer_stop(&c->dialers[j]);
    }
    if (c->net.loop != NULL) {
        rt_net_close(&c->net);
    }
    uv_close((uv_handle_t *)&c->tick_timer, NULL);
    uv_close((uv_handle_t *)&c->wait_timer, NULL);
    int rc = uv_run(&c->loop, UV_RUN_DEFAULT);
    TRONE_ASSERT(rc == 0);
    rc = uv_loop_close(&c->loop);
    TRONE_ASSERT(rc == 0);
    if (c->core != NULL) {
        smr_client_destroy(c->core);
    }
    for (size_t i = 0; i < RT_CLIENT_PENDING_MAX; i++) {
        buf_close(&c->pending[i]);
    }
    buf_close(&c->async_result);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

/* ---- Sharing the connections -------------------------------------------------------------- */

void rt_client_hooks_set(struct rt_client *c, const struct rt_client_hooks *hooks)
{
    if (hooks == NULL) {
        memset(&c->hooks, 0, sizeof(c->hooks));
    } else {
        c->hooks = *hooks;
    }
}

uv_loop_t *rt_client_loop(struct rt_client *c) { return &c->loop; }

uint32_t rt_client_replica_count(const struct rt_client *c) { return c->replica_count; }

const struct cfg_cluster *rt_client_cluster(const struct rt_client *c) { return &c->cluster; }

bool rt_client_replica_open(const struct rt_client *c, uint32_t replica)
{
    return replica < c->replica_count && rt_dialer_open_conn(&c->dialers[replica]) != NULL;
}

int rt_client_send(struct rt_client *c, uint32_t replica, const uint8_t *msg, size_t size)
{
    if (replica >= c->replica_count) {
        return TRONE_EINVAL;
    }
    struct rt_conn *conn = rt_dialer_open_conn(&c->dialers[replica]);
    if (conn == NULL) {
        return TRONE_ECLOSED;
    }
    return rt_conn_send(conn, msg, size);
}

size_t rt_client_replica_backlog(const struct rt_client *c, uint32_t replica)
{
    if (replica >= c->replica_count) {
        return SIZE_MAX;
    }
    struct rt_conn *conn = rt_dialer_open_conn(&c->dialers[replica]);
    if (conn == NULL) {
        return SIZE_MAX;
    }
    return conn->output_bytes + conn->sess.out.used;
}

void rt_client_replica_drop(struct rt_client *c, uint32_t replica, int err)
{
    if (replica < c->replica_count && c->dialers[replica].conn != NULL) {
        rt_conn_close(c->dialers[replica].conn, err);
    }
}

void rt_client_flush(struct rt_client *c) { rt_net_flush(&c->net); }

bool rt_client_run(struct rt_client *c, uint64_t timeout_ms, rt_client_until_cb until, void *ctx)
{
    TRONE_ASSERT(c->mode == RT_CLIENT_IDLE || c->mode == RT_CLIENT_ASYNC);
    return rt_client_wait(c, timeout_ms, until, ctx);
}

bool rt_client_refused(const struct rt_client *c)
{
    for (uint32_t j = 0; j < c->replica_count; j++) {
        const struct rt_dialer *d = &c->dialers[j];
        bool refused = d->last_uv_error == UV_EOF || d->last_uv_error == UV_ECONNRESET;
        if (d->conn != NULL && d->conn->opened) {
            return false;
        }
        if (!refused || d->failures < RT_CLIENT_REFUSALS) {
            return false;
        }
    }
    return true;
}

void rt_client_reach_describe(const struct rt_client *c, char *out, size_t out_size)
{
    uint32_t open = 0;
    int64_t down = -1;
    for (uint32_t j = 0; j < c->replica_count; j++) {
        if (rt_client_replica_open(c, j)) {
            open++;
        } else if (down < 0) {
            down = j;
        }
    }
    int used = snprintf(out, out_size, "reached %u of %u replicas", open, c->replica_count);
    if (down >= 0 && used > 0 && (size_t)used < out_size) {
        snprintf(out + used, out_size - (size_t)used, " (replica %u: %s)", (uint32_t)down,
                 rt_dialer_error(&c->dialers[down]));
    }
}
