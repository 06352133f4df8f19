/* rt_replica.c: the replica process: turns libuv events into smr_step inputs and carries out
 * the outputs in order. It sends to replica j only over its own connection to j and hears j
 * only on the connection j dialled; a message for an unconnected replica is dropped (the
 * protocol retransmits). Event-path messages from clients go to brk_events (no agreement),
 * whose queued DELIVERs are flushed once per loop turn, after every read of that turn. No
 * protocol decisions are made here. */
#include "rt/rt_replica.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "broker/brk_events.h"
#include "broker/brk_table.h"
#include "chan/chan_msg.h"
#include "core/assert.h"
#include "core/log.h"
#include "rt/rt_conn.h"
#include "rt/rt_msg.h"
#include "rt/rt_wire_dump.h"
#include "rt/rt_store.h"
#include "smr/smr.h"

#define RT_REPLICA_COMP "replica"
/* Warnings about rejected protocol messages: at most this many per window. */
#define RT_REJECT_BURST 20u
#define RT_REJECT_WINDOW_MS 10000u
/* A subscriber connection with this many bytes not yet written to its socket gets no more
 * DELIVERs until it drains: events then wait (and drop, bounded) in brk_events' queues. */
#define RT_EVENTS_PAUSE_BYTES (1024u * 1024u)
/* Events fetched from peers between two "durable sync progress" lines. */
#define RT_SYNC_PROGRESS_EVENTS 10000u

struct rt_replica {
    uv_loop_t loop;
    struct rt_net net;
    struct rt_dialer dialers[TRONE_REPLICAS_MAX];
    uv_timer_t timer;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    const struct rt_replica_config *config;
    uint32_t self;
    uint32_t replica_count;
    struct brk_table table;
    struct smr_app app;
    struct smr *smr;
    struct rt_store store;
    struct brk_events events;
    uv_check_t events_check; /* flushes brk_events once per loop turn, after the reads */
    uv_idle_t events_idle;   /* active while unpaused connections still hold events */
    uv_timer_t events_timer; /* brk_events_deadline: ORDERs waiting for missing events */
    bool stopping;
    bool net_ready;   /* net initialised: rt_net_close needed */
    bool timer_ready; /* each handle below initialised: uv_close needed */
    bool sigint_ready;
    bool sigterm_ready;
    bool check_ready;
    bool idle_ready;
    bool events_timer_ready;
    uv_timer_t retention_timer; /* durable channels' retention, in small steps */
    bool retention_timer_ready;
    struct rt_ratelimit reject_limit;
    struct rt_ratelimit event_reject_limit;
    struct buf scratch;
    /* The table digest for status answers, cached per executed seq: the table changes only
     * by executing or installing a checkpoint, and equal seqs mean equal tables. */
    bool digest_valid;
    uint64_t digest_seq;
    uint8_t digest[TRONE_HASH_LEN];
    FILE *wire_dump; /* TRONE_DEBUG_EVENT_DUMP (rt_wire_dump.h); NULL when off */
    uint64_t sync_logged; /* anti-entropy counters at the last "durable sync" line */
    uint64_t sync_progress; /* events fetched at the last "durable sync progress" line */
};

/* ---- Who may connect ---------------------------------------------------------------------- */

static int rt_replica_lookup_key(void *ctx, uint32_t id, uint8_t ed_public[TRONE_KEY_LEN])
{
    struct rt_replica *r = ctx;
    if (id >= r->replica_count || id == r->self) {
        return TRONE_ENOENT;
    }
    memcpy(ed_public, r->config->cluster.replicas[id].public_key, TRONE_KEY_LEN);
    return 0;
}

/* A client is accepted if it is the admin or registered in this replica's control table. */
static int rt_replica_client_allowed(void *ctx, const uint8_t ed_public[TRONE_KEY_LEN])
{
    struct rt_replica *r = ctx;
    if (sodium_memcmp(ed_public, r->config->cluster.admin_key, TRONE_KEY_LEN) == 0) {
        return 0;
    }
    if (brk_table_client_by_key(&r->table, ed_public) != NULL) {
        return 0;
    }
    return TRONE_EPERM;
}

static bool rt_replica_conn_is_client(const struct rt_conn *c)
{
    return c->dialer == NULL && c->opened && c->sess.role == SESS_ROLE_CLIENT;
}

static bool rt_replica_conn_is_replica(const struct rt_conn *c)
{
    return c->dialer == NULL && c->opened && c->sess.role == SESS_ROLE_REPLICA;
}

/* Bit j set when sessions with replica j are open in both directions. */
static uint64_t rt_replica_peers(const struct rt_replica *r)
{
    uint64_t incoming = 0;
    const struct rt_conn *c = r->net.conns;
    for (size_t i = 0; i <= RT_CONNS_MAX && c != NULL; i++) {
        if (rt_replica_conn_is_replica(c) && c->sess.peer_replica < r->replica_count) {
            incoming |= UINT64_C(1) << c->sess.peer_replica;
        }
        c = c->next;
    }
    uint64_t peers = 0;
    for (uint32_t j = 0; j < r->replica_count; j++) {
        if (j != r->self && rt_dialer_open_conn(&r->dialers[j]) != NULL) {
            peers |= UINT64_C(1) << j;
        }
    }
    return peers & incoming;
}

/* ---- Carrying out the core's output ------------------------------------------------------- */

static void rt_replica_send_replica(struct rt_replica *r, uint32_t j, const uint8_t *data,
                                    size_t size)
{
    if (j >= r->replica_count || j == r->self) {
        return;
    }
    struct rt_conn *c = rt_dialer_open_conn(&r->dialers[j]);
    if (c != NULL) {
        (void)rt_conn_send(c, data, size); /* a failure closes c; the protocol retransmits */
    }
}

static void rt_replica_send_client(struct rt_replica *r, const uint8_t key[TRONE_KEY_LEN],
                                   const uint8_t *data, size_t size)
{
    struct rt_conn *c = r->net.conns;
    for (size_t i = 0; i <= RT_CONNS_MAX && c != NULL; i++) {
        struct rt_conn *next = c->next; /* sending may close c, which unlinks only c */
        if (rt_replica_conn_is_client(c) && memcmp(c->sess.peer_key, key, TRONE_KEY_LEN) == 0) {
            (void)rt_conn_send(c, data, size);
        }
        c = next;
    }
}

/* A rejected message: routine ones (stale, busy) at debug, suspicious ones as a rate-limited
 * warning. `from` is UINT32_MAX for a client's message. */
static void rt_replica_trace_rejected(struct rt_replica *r, const struct smr_trace *t)
{
    char from[24];
    if (t->from == UINT32_MAX) {
        snprintf(from, sizeof(from), "client");
    } else {
        snprintf(from, sizeof(from), "%u", t->from);
    }
    if (t->err == TRONE_ESTALE || t->err == TRONE_EREPLAY || t->err == TRONE_EBUSY) {
        log_debug(RT_REPLICA_COMP, "msg=\"message rejected\" from=%s err=%s view=%llu", from,
                  trone_err_name(t->err), (unsigned long long)t->view);
        return;
    }
    uint32_t suppressed = 0;
    if (rt_ratelimit_allow(&r->reject_limit, uv_now(&r->loop), RT_REJECT_BURST, RT_REJECT_WINDOW_MS,
                           &suppressed)) {
        log_warn(RT_REPLICA_COMP,
                 "msg=\"message rejected\" from=%s err=%s view=%llu seq=%llu suppressed=%u", from,
                 trone_err_name(t->err), (unsigned long long)t->view, (unsigned long long)t->seq,
                 suppressed);
    }
}

static void rt_replica_trace(struct rt_replica *r, const struct smr_trace *t)
{
    switch (t->kind) {
    case SMR_TRACE_REJECTED:
        rt_replica_trace_rejected(r, t);
        break;
    case SMR_TRACE_VIEW_CHANGE:
        log_info(RT_REPLICA_COMP, "msg=\"view change started\" view=%llu",
                 (unsigned long long)t->view);
        break;
    case SMR_TRACE_NEW_VIEW:
        log_info(RT_REPLICA_COMP, "msg=\"new view\" view=%llu leader=%u",
                 (unsigned long long)t->view, smr_leader(r->smr));
        break;
    case SMR_TRACE_CHECKPOINT:
        log_info(RT_REPLICA_COMP, "msg=\"stable checkpoint\" seq=%llu", (unsigned long long)t->seq);
        break;
    case SMR_TRACE_STATE_INSTALLED:
        log_info(RT_REPLICA_COMP, "msg=\"state installed from peers\" seq=%llu",
                 (unsigned long long)t->seq);
        break;
    default:
        log_debug(RT_REPLICA_COMP, "msg=trace kind=%d", (int)t->kind);
        break;
    }
}

static void rt_replica_on_timer(uv_timer_t *timer);

static void rt_replica_apply(struct rt_replica *r, const struct smr_output *out)
{
    /* Write-ahead: the records join this turn's transaction, committed by the flush hook
     * before any envelope queued below reaches a socket (when one of them is sync). */
    rt_store_records(&r->store, out);
    for (size_t i = 0; i < out->envelope_count; i++) {
        const struct smr_envelope *e = &out->envelopes[i];
        if (e->dest == SMR_DEST_REPLICA) {
            rt_replica_send_replica(r, e->replica, e->data, e->size);
        } else if (e->dest == SMR_DEST_ALL) {
            for (uint32_t j = 0; j < r->replica_count; j++) {
                rt_replica_send_replica(r, j, e->data, e->size);
            }
        } else {
            rt_replica_send_client(r, e->client, e->data, e->size);
        }
    }
    for (size_t i = 0; i < out->executed_count && log_enabled(LOG_DEBUG); i++) {
        log_debug(RT_REPLICA_COMP, "msg=executed seq=%llu request=%llu",
                  (unsigned long long)out->executed[i].seq,
                  (unsigned long long)out->executed[i].request_id);
    }
    TRONE_ASSERT(out->trace_count <= SMR_TRACE_MAX);
    for (size_t i = 0; i < out->trace_count; i++) {
        rt_replica_trace(r, &out->trace[i]);
    }
    uint64_t now = uv_now(&r->loop);
    uint64_t delay = out->deadline_ms > now ? out->deadline_ms - now : 0;
    int rc = uv_timer_start(&r->timer, rt_replica_on_timer, delay, 0);
    TRONE_ASSERT(rc == 0);
}

static void rt_replica_step(struct rt_replica *r, struct smr_input *in)
{
    if (r->stopping) {
        return;
    }
    in->now_ms = uv_now(&r->loop);
    const struct smr_output *out = NULL;
    int rc = smr_step(r->smr, in, &out);
    if (rc != 0) {
        /* The core's state is unchanged; the peer or the timer will bring the input again. */
        log_error(RT_REPLICA_COMP, "msg=\"step failed\" err=%s", trone_err_name(rc));
        return;
    }
    rt_replica_apply(r, out);
}

static void rt_replica_on_timer(uv_timer_t *timer)
{
    struct rt_replica *r = timer->data;
    struct smr_input in = {.kind = SMR_IN_TICK};
    rt_replica_step(r, &in);
    rt_net_flush(&r->net);
}

/* ---- Connections -------------------------------------------------------------------------- */

static void rt_replica_status_answer(struct rt_replica *r, struct rt_conn *c)
{
    struct rt_status st;
    memset(&st, 0, sizeof(st));
    st.replica = r->self;
    st.view = smr_view(r->smr);
    st.leader = smr_leader(r->smr);
    st.view_changing = smr_view_changing(r->smr);
    st.executed = smr_executed_seq(r->smr);
    st.checkpoint = smr_stable_seq(r->smr);
    st.peers = rt_replica_peers(r);
    if (r->store.store != NULL) {
        struct store_stats ss;
        store_stats_get(r->store.store, &ss);
        st.durable_events = ss.events;
    }
    st.durable_fetched = brk_events_stats(&r->events)->sync_fetched;
    st.durable_served = brk_events_stats(&r->events)->sync_served;
    if (!r->digest_valid || r->digest_seq != st.executed) {
        if (brk_table_digest(&r->table, r->digest) != 0) {
            r->digest_valid = false;
            log_error(RT_REPLICA_COMP, "msg=\"table digest failed\" err=%s",
                      trone_err_name(TRONE_ENOMEM));
            return;
        }
        r->digest_valid = true;
        r->digest_seq = st.executed;
    }
    memcpy(st.digest, r->digest, TRONE_HASH_LEN);
    buf_reset(&r->scratch);
    rt_msg_encode_status_answer(&r->scratch, &st);
    TRONE_ASSERT(r->scratch.error == 0);
    (void)rt_conn_send(c, r->scratch.data, r->scratch.used);
}

/* ---- The event path ----------------------------------------------------------------------- */

/* brk_events names a connection by its address: the core forgets an id when the connection
 * closes (rt_replica_on_closed), and a closed connection's memory lives until the loop's
 * close callback, so an id in an output always names a live or closing connection. */
static uint64_t rt_replica_conn_id(const struct rt_conn *c) { return (uint64_t)(uintptr_t)c; }

static struct rt_conn *rt_replica_conn_of(uint64_t id) { return (struct rt_conn *)(uintptr_t)id; }

/* Wall-clock microseconds, stamped on DELIVERs so subscribers can measure latency. */
static uint64_t rt_replica_now_us(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0) {
        return 0;
    }
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void rt_replica_events_apply(struct rt_replica *r, const struct brk_events_out *out)
{
    for (size_t i = 0; i < out->send_count; i++) {
        const struct brk_events_send *s = &out->sends[i];
        rt_wire_dump_write(r->wire_dump, s->data, s->size);
        (void)rt_conn_send(rt_replica_conn_of(s->conn_id), s->data, s->size);
    }
    for (size_t i = 0; i < out->close_count; i++) {
        struct rt_conn *c = rt_replica_conn_of(out->closes[i]);
        char name[64];
        log_warn(RT_REPLICA_COMP,
                 "msg=\"subscriber too slow, closing\" peer=%s reason=\"gap table full\"",
                 rt_conn_name(c, name, sizeof(name)));
        rt_conn_close(c, TRONE_EFULL);
    }
    (void)r;
}

static void rt_replica_events_rejected(struct rt_replica *r, struct rt_conn *c,
                                       const struct brk_events_out *out)
{
    if (out->status == TRONE_EFULL) {
        log_debug(RT_REPLICA_COMP, "msg=\"attach refused\" tag=%s err=%s", out->tag,
                  trone_err_name(out->status));
        return;
    }
    uint32_t suppressed = 0;
    if (rt_ratelimit_allow(&r->event_reject_limit, uv_now(&r->loop), RT_REJECT_BURST,
                           RT_REJECT_WINDOW_MS, &suppressed)) {
        char name[64];
        log_warn(RT_REPLICA_COMP, "msg=\"%s refused\" peer=%s tag=%s err=%s suppressed=%u",
                 out->type == CHAN_MSG_PUBLISH ? "publish" : "attach",
                 rt_conn_name(c, name, sizeof(name)), out->tag, trone_err_name(out->status),
                 suppressed);
    }
}

static void rt_replica_event_message(struct rt_replica *r, struct rt_conn *c, const uint8_t *msg,
                                     size_t size)
{
    const struct brk_events_out *out = NULL;
    rt_wire_dump_write(r->wire_dump, msg, size);
    int rc = brk_events_message(&r->events, &r->table, rt_replica_now_us(), rt_replica_conn_id(c),
                                c->sess.peer_key, msg, size, &out);
    if (rc != 0) {
        uint32_t suppressed = 0;
        if (rt_ratelimit_allow(&r->event_reject_limit, uv_now(&r->loop), RT_REJECT_BURST,
                               RT_REJECT_WINDOW_MS, &suppressed)) {
            char name[64];
            char sample[129];
            log_warn(RT_REPLICA_COMP,
                     "msg=\"bad event message, closing\" peer=%s err=%s sample=%s suppressed=%u",
                     rt_conn_name(c, name, sizeof(name)), trone_err_name(rc),
                     log_hex_sample(sample, msg, size), suppressed);
        }
        rt_conn_close(c, rc);
        return;
    }
    if (out->status != 0) {
        rt_replica_events_rejected(r, c, out);
    }
    rt_replica_events_apply(r, out);
}

/* Tells the core which subscriber sockets are backed up, so their events wait in its bounded
 * queues instead of in unbounded socket buffers. */
static void rt_replica_events_pause(struct rt_replica *r)
{
    struct rt_conn *c = r->net.conns;
    for (size_t i = 0; i <= RT_CONNS_MAX && c != NULL; i++) {
        if (rt_replica_conn_is_client(c)) {
            size_t unwritten = c->output_bytes + c->sess.out.used;
            brk_events_conn_pause(&r->events, rt_replica_conn_id(c),
                                  unwritten >= RT_EVENTS_PAUSE_BYTES);
        }
        c = c->next;
    }
}

static void rt_replica_on_idle(uv_idle_t *idle) { (void)idle; }

/* An executed ORDER (the table's order hook, called inside smr_step): brk_events releases its
 * range once the events are here; the next check flushes what it queued. */
static void rt_replica_on_order(void *ctx, const struct brk_order_exec *order)
{
    struct rt_replica *r = ctx;
    brk_events_order(&r->events, &r->table, rt_replica_now_us(), order);
}

/* Sends the core's FETCH / FETCHED messages to peer replicas. */
static void rt_replica_events_peers(struct rt_replica *r, const struct brk_events_out *out)
{
    for (size_t i = 0; i < out->peer_send_count; i++) {
        const struct brk_events_peer_send *s = &out->peer_sends[i];
        for (uint32_t j = 0; j < r->replica_count; j++) {
            if (s->replica == BRK_EVENTS_ALL_PEERS || s->replica == j) {
                rt_replica_send_replica(r, j, s->data, s->size);
            }
        }
    }
}

/* One line per anti-entropy round that changed something: durable events held, fetched from
 * peers (and how many of those this process stored), served to peers, refused. */
static void rt_replica_sync_log(struct rt_replica *r)
{
    const struct brk_events_stats *st = brk_events_stats(&r->events);
    uint64_t moved = st->sync_fetched + st->sync_served + st->sync_refused;
    if (r->store.store == NULL || moved == r->sync_logged) {
        return;
    }
    r->sync_logged = moved;
    struct store_stats ss;
    store_stats_get(r->store.store, &ss);
    log_info(RT_REPLICA_COMP,
             "msg=\"durable sync\" held=%llu fetched=%llu served=%llu refused=%llu "
             "votes_dropped=%llu rounds=%llu",
             (unsigned long long)ss.events, (unsigned long long)st->sync_fetched,
             (unsigned long long)st->sync_served, (unsigned long long)st->sync_refused,
             (unsigned long long)st->sync_votes_dropped, (unsigned long long)st->sync_rounds);
}

static void rt_replica_on_events_timer(uv_timer_t *timer)
{
    struct rt_replica *r = timer->data;
    const struct brk_events_out *out = NULL;
    uint64_t rounds = brk_events_stats(&r->events)->sync_rounds;
    brk_events_tick(&r->events, &r->table, rt_replica_now_us(), &out); /* the check flushes */
    rt_replica_events_peers(r, out);
    rt_net_flush(&r->net);
    if (brk_events_stats(&r->events)->sync_rounds != rounds) {
        rt_replica_sync_log(r);
    }
}

/* A FETCH or FETCHED from peer replica j (total order: a range it or we lack). */
static void rt_replica_peer_event(struct rt_replica *r, uint32_t j, const uint8_t *msg,
                                  size_t size)
{
    const struct brk_events_out *out = NULL;
    int rc = brk_events_peer_message(&r->events, &r->table, rt_replica_now_us(), j, msg, size,
                                     &out);
    if (rc != 0) {
        uint32_t suppressed = 0;
        if (rt_ratelimit_allow(&r->reject_limit, uv_now(&r->loop), RT_REJECT_BURST,
                               RT_REJECT_WINDOW_MS, &suppressed)) {
            log_warn(RT_REPLICA_COMP, "msg=\"bad event message from peer\" peer=%u err=%s "
                     "suppressed=%u", j, trone_err_name(rc), suppressed);
        }
        return;
    }
    rt_replica_events_peers(r, out);
    /* A progress line every RT_SYNC_PROGRESS_EVENTS events fetched (catch-up benchmarks read
     * it); the round lines give the rest. */
    uint64_t fetched = brk_events_stats(&r->events)->sync_fetched;
    if (fetched >= r->sync_progress + RT_SYNC_PROGRESS_EVENTS) {
        r->sync_progress = fetched - fetched % RT_SYNC_PROGRESS_EVENTS;
        log_info(RT_REPLICA_COMP, "msg=\"durable sync progress\" fetched=%llu",
                 (unsigned long long)fetched);
    }
}

/* Durable channels: one small retention step per tick (never a long transaction: traffic
 * goes on between steps), a quicker next tick while there is more to delete; and the full
 * store's state, logged once each way. */
#define RT_RETENTION_MS 1000u
#define RT_RETENTION_BUSY_MS 20u
static void rt_replica_on_retention(uv_timer_t *timer)
{
    struct rt_replica *r = timer->data;
    if (r->stopping) {
        return;
    }
    bool more = rt_store_retention(&r->store, rt_replica_now_us() / 1000u);
    if (more) {
        (void)uv_timer_start(&r->retention_timer, rt_replica_on_retention, RT_RETENTION_BUSY_MS,
                             RT_RETENTION_MS);
    }
    rt_net_flush(&r->net);
}

/* Keeps the events timer at the core's deadline (ORDERs whose events are missing). */
static void rt_replica_events_timer_arm(struct rt_replica *r)
{
    uint64_t deadline = brk_events_deadline(&r->events);
    if (deadline == UINT64_MAX) {
        (void)uv_timer_stop(&r->events_timer);
        return;
    }
    uint64_t now = rt_replica_now_us();
    uint64_t delay_ms = deadline > now ? (deadline - now) / 1000u + 1u : 0;
    int rc = uv_timer_start(&r->events_timer, rt_replica_on_events_timer, delay_ms, 0);
    TRONE_ASSERT(rc == 0);
}

/* Once per loop turn, after the reads: flush queued events, write, and keep the loop turning
 * (idle handle) while writable connections still hold events. A backed-up connection resumes
 * when its write completes, which is a loop event. */
static void rt_replica_on_check(uv_check_t *check)
{
    struct rt_replica *r = check->data;
    if (r->stopping) {
        return;
    }
    bool more = false;
    if (brk_events_pending(&r->events)) {
        rt_replica_events_pause(r);
        const struct brk_events_out *out = NULL;
        brk_events_flush(&r->events, &r->table, rt_replica_now_us(), &out);
        more = out->more;
        rt_replica_events_apply(r, out);
        rt_net_flush(&r->net);
    }
    rt_replica_events_timer_arm(r);
    if (more && !uv_is_active((uv_handle_t *)&r->events_idle)) {
        int rc = uv_idle_start(&r->events_idle, rt_replica_on_idle);
        TRONE_ASSERT(rc == 0);
    } else if (!more && uv_is_active((uv_handle_t *)&r->events_idle)) {
        int rc = uv_idle_stop(&r->events_idle);
        TRONE_ASSERT(rc == 0);
    }
}

static void rt_replica_client_message(struct rt_replica *r, struct rt_conn *c, const uint8_t *msg,
                                      size_t size)
{
    if (chan_msg_is_event_type(msg, size)) {
        rt_replica_event_message(r, c, msg, size); /* no agreement on the event path */
        return;
    }
    int type = rt_msg_type(msg, size);
    if (type == 0) {
        struct smr_input in = {
            .kind = SMR_IN_CLIENT, .client = c->sess.peer_key, .data = msg, .size = size};
        rt_replica_step(r, &in);
        return;
    }
    if (type == RT_MSG_STATUS_QUERY && rt_msg_decode_status_query(msg, size) == 0) {
        rt_replica_status_answer(r, c);
        return;
    }
    char name[64];
    char sample[129];
    log_warn(RT_REPLICA_COMP, "msg=\"bad runtime message, closing\" peer=%s err=%s sample=%s",
             rt_conn_name(c, name, sizeof(name)), trone_err_name(TRONE_EBADMSG),
             log_hex_sample(sample, msg, size));
    rt_conn_close(c, TRONE_EBADMSG);
}

static void rt_replica_on_message(void *ctx, struct rt_conn *c, const uint8_t *msg, size_t size)
{
    struct rt_replica *r = ctx;
    if (c->dialer != NULL) {
        /* Replica j talks to us over the connection it dialled, never over ours. */
        log_debug(RT_REPLICA_COMP, "msg=\"unexpected message on outgoing connection\" peer=%u",
                  c->dialer->peer_id);
        return;
    }
    if (c->sess.role == SESS_ROLE_REPLICA && chan_msg_is_event_type(msg, size)) {
        rt_replica_peer_event(r, c->sess.peer_replica, msg, size);
        return;
    }
    if (c->sess.role == SESS_ROLE_REPLICA) {
        struct smr_input in = {
            .kind = SMR_IN_REPLICA, .from = c->sess.peer_replica, .data = msg, .size = size};
        rt_replica_step(r, &in);
        return;
    }
    rt_replica_client_message(r, c, msg, size);
}

/* A new session from replica j replaces any older one from j (a half-open leftover). */
static void rt_replica_on_opened(void *ctx, struct rt_conn *c)
{
    struct rt_replica *r = ctx;
    if (c->dialer != NULL) {
        log_info(RT_REPLICA_COMP, "msg=\"connected to peer\" peer=%u", c->dialer->peer_id);
        return;
    }
    if (c->sess.role != SESS_ROLE_REPLICA) {
        char name[64];
        log_debug(RT_REPLICA_COMP, "msg=\"client connected\" peer=%s address=%s",
                  rt_conn_name(c, name, sizeof(name)), c->address);
        return;
    }
    uint32_t j = c->sess.peer_replica;
    if (j >= r->replica_count || j == r->self) {
        rt_conn_close(c, TRONE_EAUTH); /* the session already refused such ids; be sure */
        return;
    }
    struct rt_conn *other = r->net.conns;
    for (size_t i = 0; i <= RT_CONNS_MAX && other != NULL; i++) {
        struct rt_conn *next = other->next;
        if (other != c && rt_replica_conn_is_replica(other) && other->sess.peer_replica == j) {
            rt_conn_close(other, TRONE_ECLOSED);
        }
        other = next;
    }
    log_info(RT_REPLICA_COMP, "msg=\"peer connected\" peer=%u address=%s", j, c->address);
}

static void rt_replica_on_closed(void *ctx, struct rt_conn *c, int err)
{
    struct rt_replica *r = ctx;
    if (rt_replica_conn_is_client(c)) {
        brk_events_conn_close(&r->events, rt_replica_conn_id(c));
    }
    if (!c->opened) {
        return; /* failed attempts are retried quietly; hostile ones were logged already */
    }
    char name[64];
    if (c->dialer != NULL || c->sess.role == SESS_ROLE_REPLICA) {
        log_info(RT_REPLICA_COMP, "msg=\"peer disconnected\" peer=%s direction=%s err=%s",
                 rt_conn_name(c, name, sizeof(name)), c->dialer != NULL ? "out" : "in",
                 trone_err_name(err));
    } else {
        const struct brk_events_stats *st = brk_events_stats(&r->events);
        log_debug(RT_REPLICA_COMP,
                  "msg=\"client disconnected\" peer=%s err=%s events_accepted=%llu "
                  "duplicates=%llu out_of_order=%llu rejected=%llu dropped=%llu delivered=%llu",
                  rt_conn_name(c, name, sizeof(name)), trone_err_name(err),
                  (unsigned long long)st->accepted, (unsigned long long)st->duplicates,
                  (unsigned long long)st->out_of_order, (unsigned long long)st->rejected,
                  (unsigned long long)st->dropped, (unsigned long long)st->delivered);
    }
}

/* ---- Start and stop ----------------------------------------------------------------------- */

static void rt_replica_stop(struct rt_replica *r)
{
    if (r->stopping) {
        return;
    }
    r->stopping = true;
    rt_replica_sync_log(r);
    const struct brk_events_stats *st = brk_events_stats(&r->events);
    if (st->orders > 0) {
        log_info(RT_REPLICA_COMP,
                 "msg=\"total order\" orders=%llu pooled=%llu released=%llu skipped=%llu "
                 "mismatched=%llu pool_evicted=%llu fetches=%llu fetched=%llu fetch_served=%llu "
                 "fetch_throttled=%llu",
                 (unsigned long long)st->orders, (unsigned long long)st->pooled,
                 (unsigned long long)st->released, (unsigned long long)st->skipped,
                 (unsigned long long)st->mismatched, (unsigned long long)st->pool_evicted,
                 (unsigned long long)st->fetches, (unsigned long long)st->fetched,
                 (unsigned long long)st->fetch_served,
                 (unsigned long long)st->fetch_throttled);
    }
    for (uint32_t j = 0; j < r->replica_count; j++) {
        rt_dialer_stop(&r->dialers[j]);
    }
    if (r->net_ready) {
        rt_net_close(&r->net);
    }
    if (r->timer_ready) {
        uv_close((uv_handle_t *)&r->timer, NULL);
    }
    if (r->sigint_ready) {
        uv_close((uv_handle_t *)&r->sigint, NULL);
    }
    if (r->sigterm_ready) {
        uv_close((uv_handle_t *)&r->sigterm, NULL);
    }
    if (r->check_ready) {
        uv_close((uv_handle_t *)&r->events_check, NULL);
    }
    if (r->idle_ready) {
        uv_close((uv_handle_t *)&r->events_idle, NULL);
    }
    if (r->events_timer_ready) {
        uv_close((uv_handle_t *)&r->events_timer, NULL);
    }
    if (r->retention_timer_ready) {
        uv_close((uv_handle_t *)&r->retention_timer, NULL);
    }
}

static void rt_replica_on_signal(uv_signal_t *handle, int signum)
{
    struct rt_replica *r = handle->data;
    log_info(RT_REPLICA_COMP, "msg=stopping signal=%d replica=%u", signum, r->self);
    rt_replica_stop(r);
}

static int rt_replica_events_init(struct rt_replica *r)
{
    struct brk_events_config ec;
    brk_events_config_defaults(&ec);
    ec.conn_max = RT_CONNS_MAX;
    ec.attach_max = RT_CONNS_MAX;
    ec.replicas = r->replica_count; /* FETCH asks one peer at a time */
    ec.self = r->self;
    ec.sync.faults = r->config->cluster.fault_count;
    if (r->config->queue_events_max > 0) {
        ec.queue_events_max = r->config->queue_events_max;
    }
    if (r->config->queue_bytes_max > 0) {
        ec.queue_bytes_max = r->config->queue_bytes_max;
    }
    ec.overflow = r->config->overflow;
    randombytes_buf(ec.hash_key, sizeof(ec.hash_key));
    int rc = brk_events_init(&r->events, &ec);
    sodium_memzero(ec.hash_key, sizeof(ec.hash_key));
    return rc;
}

/* Creates the table and the cores. */
static int rt_replica_core_init(struct rt_replica *r, char *errmsg, size_t errmsg_size)
{
    const struct rt_replica_config *config = r->config;
    struct smr_config sc;
    smr_config_defaults(&sc);
    sc.replica_count = config->cluster.replica_count;
    sc.fault_count = config->cluster.fault_count;
    sc.model = config->cluster.bft ? SMR_BFT : SMR_CFT;
    sc.self = config->self;
    for (uint32_t j = 0; j < sc.replica_count; j++) {
        memcpy(sc.replica_keys[j], config->cluster.replicas[j].public_key, TRONE_KEY_LEN);
    }
    memcpy(sc.secret_key, config->key.secret_key, TRONE_SECRET_KEY_LEN);
    sc.batch_max = config->batch_max != 0 ? config->batch_max : sc.batch_max;
    sc.pipeline_max = config->pipeline_max != 0 ? config->pipeline_max : sc.pipeline_max;
    if (config->request_timeout_ms != 0) {
        sc.request_timeout_ms = config->request_timeout_ms;
    }
    int rc = smr_config_check(&sc);
    if (rc != 0) {
        snprintf(errmsg, errmsg_size,
                 "invalid replication settings (batch-max 1..%u, "
                 "pipeline 1..%u)",
                 (unsigned)TRONE_BATCH_MAX, (unsigned)sc.window);
    } else if (brk_table_init(&r->table, config->cluster.admin_key) != 0) {
        rc = TRONE_ENOMEM;
        snprintf(errmsg, errmsg_size, "out of memory creating the control table");
    } else if ((rc = rt_replica_events_init(r)) != 0) {
        snprintf(errmsg, errmsg_size, "cannot create the event queues: %s", trone_strerror(rc));
    } else {
        brk_table_app(&r->table, &r->app);
        brk_table_order_hook(&r->table, rt_replica_on_order, r);
        r->smr = smr_create(&sc, &r->app);
        if (r->smr == NULL) {
            rc = TRONE_ENOMEM;
            snprintf(errmsg, errmsg_size, "out of memory creating the replication core");
        }
    }
    sodium_memzero(sc.secret_key, sizeof(sc.secret_key));
    return rc;
}

static void rt_replica_before_flush(void *ctx)
{
    struct rt_replica *r = ctx;
    rt_store_flush(&r->store);
}

/* Opens the data directory and restores the core from it; the restore's output (records,
 * checkpoint votes) is carried out like a step's. */
static int rt_replica_store_init(struct rt_replica *r, char *errmsg, size_t errmsg_size)
{
    const struct rt_replica_config *config = r->config;
    if (config->data_dir == NULL) {
        return 0;
    }
    int rc = rt_store_open(&r->store, config->data_dir, &config->cluster, r->self,
                           config->rebuild, errmsg, errmsg_size);
    const struct smr_output *out = NULL;
    if (rc == 0) {
        rc = rt_store_restore(&r->store, r->smr, uv_now(&r->loop), &out, errmsg, errmsg_size);
    }
    if (rc == 0) {
        rt_replica_apply(r, out);
        rt_store_commit(&r->store);
        struct brk_events_durable durable = {.ctx = &r->store,
                                             .put = rt_store_event_put,
                                             .stream_next = rt_store_stream_next,
                                             .read = rt_store_event_read,
                                             .info = rt_store_stream_info,
                                             .hole = rt_store_event_hole,
                                             .insert = rt_store_event_insert,
                                             .drop = rt_store_event_drop};
        if (getenv("TRONE_DEBUG_NO_SYNC") != NULL) {
            /* Only to prove that the catch-up tests fail without anti-entropy. */
            log_warn(RT_REPLICA_COMP, "msg=\"durable anti-entropy disabled (TRONE_DEBUG_NO_SYNC)\"");
            durable.info = NULL;
            durable.hole = NULL;
            durable.insert = NULL;
        }
        brk_events_durable_set(&r->events, &durable);
        /* The pending events of durable total-order channels back into the pool, so the
         * ORDERs executed again from the restored log (already waiting) or later release
         * them at their positions; what is released now is committed before any send. */
        int loaded = brk_events_pending_load(&r->events, &r->table, rt_replica_now_us());
        if (loaded < 0) {
            log_warn(RT_REPLICA_COMP, "msg=\"cannot reload the pending total-order events\" "
                     "err=%s", trone_err_name(loaded));
        } else if (loaded > 0) {
            log_info(RT_REPLICA_COMP, "msg=\"reloaded pending total-order events\" events=%d "
                     "released=%llu", loaded,
                     (unsigned long long)brk_events_stats(&r->events)->released);
        }
        rt_store_commit(&r->store);
        if (uv_timer_start(&r->retention_timer, rt_replica_on_retention, RT_RETENTION_MS,
                           RT_RETENTION_MS) != 0) {
            snprintf(errmsg, errmsg_size, "cannot start the retention timer");
            rc = TRONE_EIO;
        }
    }
    return rc;
}

static int rt_replica_net_init(struct rt_replica *r, char *errmsg, size_t errmsg_size)
{
    const struct rt_replica_config *config = r->config;
    struct rt_net_config nc;
    memset(&nc, 0, sizeof(nc));
    nc.role = SESS_ROLE_REPLICA;
    nc.self_id = r->self;
    memcpy(nc.ed_public, config->key.public_key, TRONE_KEY_LEN);
    memcpy(nc.ed_secret, config->key.secret_key, TRONE_SECRET_KEY_LEN);
    nc.lookup.ctx = r;
    nc.lookup.replica_key = rt_replica_lookup_key;
    nc.lookup.client_allowed = rt_replica_client_allowed;
    nc.comp = RT_REPLICA_COMP;
    struct rt_net_handler h = {.ctx = r,
                               .opened = rt_replica_on_opened,
                               .message = rt_replica_on_message,
                               .closed = rt_replica_on_closed,
                               .before_flush = rt_replica_before_flush};
    int rc = rt_net_init(&r->net, &r->loop, &nc, &h);
    sodium_memzero(nc.ed_secret, sizeof(nc.ed_secret));
    if (rc != 0) {
        snprintf(errmsg, errmsg_size, "cannot start networking: %s", trone_strerror(rc));
        return rc;
    }
    r->net_ready = true;
    const struct cfg_replica *me = &config->cluster.replicas[r->self];
    rc = rt_net_listen(&r->net, me->host, me->port, errmsg, errmsg_size);
    for (uint32_t j = 0; rc == 0 && j < r->replica_count; j++) {
        if (j == r->self) {
            continue;
        }
        const struct cfg_replica *peer = &config->cluster.replicas[j];
        rc = rt_dialer_start(&r->dialers[j], &r->net, j, peer->public_key, peer->host, peer->port);
        if (rc != 0) {
            snprintf(errmsg, errmsg_size, "cannot dial replica %u: %s", j, trone_strerror(rc));
        }
    }
    return rc;
}

static int rt_replica_handles_init(struct rt_replica *r)
{
    r->timer_ready = uv_timer_init(&r->loop, &r->timer) == 0;
    r->sigint_ready = uv_signal_init(&r->loop, &r->sigint) == 0;
    r->sigterm_ready = uv_signal_init(&r->loop, &r->sigterm) == 0;
    r->check_ready = uv_check_init(&r->loop, &r->events_check) == 0;
    r->idle_ready = uv_idle_init(&r->loop, &r->events_idle) == 0;
    r->events_timer_ready = uv_timer_init(&r->loop, &r->events_timer) == 0;
    r->retention_timer_ready = uv_timer_init(&r->loop, &r->retention_timer) == 0;
    if (!r->timer_ready || !r->sigint_ready || !r->sigterm_ready || !r->check_ready ||
        !r->idle_ready || !r->events_timer_ready || !r->retention_timer_ready) {
        return TRONE_EIO;
    }
    r->retention_timer.data = r;
    r->events_timer.data = r;
    r->events_check.data = r;
    r->events_idle.data = r;
    if (uv_check_start(&r->events_check, rt_replica_on_check) != 0) {
        return TRONE_EIO;
    }
    r->timer.data = r;
    r->sigint.data = r;
    r->sigterm.data = r;
    if (uv_signal_start(&r->sigint, rt_replica_on_signal, SIGINT) != 0 ||
        uv_signal_start(&r->sigterm, rt_replica_on_signal, SIGTERM) != 0) {
        return TRONE_EIO;
    }
    return 0;
}

static int rt_replica_check_config(const struct rt_replica_config *config, char *errmsg,
                                   size_t errmsg_size)
{
    if (config->self >= config->cluster.replica_count) {
        snprintf(errmsg, errmsg_size, "replica id %u is not in the cluster (it has %u replicas)",
                 config->self, config->cluster.replica_count);
        return TRONE_EINVAL;
    }
    const uint8_t *expected = config->cluster.replicas[config->self].public_key;
    if (sodium_memcmp(expected, config->key.public_key, TRONE_KEY_LEN) != 0) {
        snprintf(errmsg, errmsg_size,
                 "the key file is not replica %u's key (its public key differs from the "
                 "cluster file)",
                 config->self);
        return TRONE_EAUTH;
    }
    return 0;
}

/* Closes every handle, lets the loop finish them, then frees the cores. */
static void rt_replica_teardown(struct rt_replica *r)
{
    rt_replica_stop(r);
    int rc = uv_run(&r->loop, UV_RUN_DEFAULT);
    TRONE_ASSERT(rc == 0);
    rc = uv_loop_close(&r->loop);
    TRONE_ASSERT(rc == 0);
    rt_store_close(&r->store);
    smr_destroy(r->smr);
    brk_events_close(&r->events);
    brk_table_close(&r->table);
    buf_close(&r->scratch);
    rt_wire_dump_close(r->wire_dump);
}

int rt_replica_run(const struct rt_replica_config *config, char *errmsg, size_t errmsg_size)
{
    int rc = rt_replica_check_config(config, errmsg, errmsg_size);
    if (rc != 0) {
        return rc;
    }
    if (sodium_init() < 0) {
        snprintf(errmsg, errmsg_size, "libsodium failed to initialise");
        return TRONE_EIO;
    }
    struct rt_replica *r = calloc(1, sizeof(*r));
    if (r == NULL || uv_loop_init(&r->loop) != 0) {
        free(r);
        snprintf(errmsg, errmsg_size, "out of memory");
        return TRONE_ENOMEM;
    }
    signal(SIGPIPE, SIG_IGN);
    r->config = config;
    r->self = config->self;
    r->replica_count = config->cluster.replica_count;
    buf_init(&r->scratch, 0);
    r->wire_dump = rt_wire_dump_open();
    rc = rt_replica_core_init(r, errmsg, errmsg_size);
    if (rc == 0) {
        rc = rt_replica_handles_init(r);
        if (rc != 0) {
            snprintf(errmsg, errmsg_size, "cannot create timers or signal handlers");
        }
    }
    if (rc == 0) {
        rc = rt_replica_store_init(r, errmsg, errmsg_size);
    }
    if (rc == 0) {
        rc = rt_replica_net_init(r, errmsg, errmsg_size);
    }
    if (rc == 0) {
        const struct cfg_replica *me = &config->cluster.replicas[r->self];
        log_info(RT_REPLICA_COMP, "msg=started replica=%u address=%s:%u n=%u f=%u model=%s",
                 r->self, me->host, (unsigned)me->port, r->replica_count,
                 config->cluster.fault_count, config->cluster.bft ? "bft" : "cft");
        struct smr_input in = {.kind = SMR_IN_TICK};
        rt_replica_step(r, &in);
        rt_net_flush(&r->net);
        uv_run(&r->loop, UV_RUN_DEFAULT);
    }
    rt_replica_teardown(r);
    free(r);
    return rc;
}
