/* test_brk_events.c: the replica side of the event path (brk_events.h) against a real control
 * table built by executing real ops: authorization, FIFO streams (duplicates, gaps, epochs),
 * urgency order of flushed DELIVERs, flow control with a subscriber that never drains, and
 * durable channels (storing, replay stream by stream and the exact switch to live, a full
 * store refusing events) against a store in memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "broker/brk_events.h"
#include "broker/brk_events_internal.h"
#include "chan/chan_durable.h"

/* ---- Fixture ---- */

enum { ADMIN = 0, PUB = 1, SUB = 2, OUTSIDER = 3, KEYS = 4 };
#define CONN_PUB 100u
#define CONN_SUB 200u
#define CONN_OUT 300u

struct fixture {
    uint8_t keys[KEYS][TRONE_KEY_LEN];
    struct brk_table table;
    struct brk_events ev;
    struct brk_op *op;
    struct buf encoded;
    struct buf result;
    struct buf msg;
    const struct brk_events_out *out;
};

static void key_make(uint8_t key[TRONE_KEY_LEN], uint32_t n)
{
    uint8_t seed[crypto_sign_SEEDBYTES] = {0};
    uint8_t secret[crypto_sign_SECRETKEYBYTES];
    memcpy(seed, &n, sizeof(n));
    seed[31] = 0x77;
    assert_int_equal(crypto_sign_seed_keypair(key, secret, seed), 0);
}

static void run_op(struct fixture *f)
{
    buf_reset(&f->encoded);
    assert_int_equal(brk_op_encode(f->op, &f->encoded), 0);
    buf_reset(&f->result);
    brk_table_execute(&f->table, 1, f->keys[ADMIN], f->encoded.data, f->encoded.used, &f->result);
    struct brk_result res;
    assert_int_equal(brk_result_decode(f->result.data, f->result.used, &res), 0);
    assert_int_equal(res.status, 0);
}

static void make_channel(struct fixture *f, const char *tag, const char *cls)
{
    brk_op_init(f->op, BRK_OP_CHANNEL_CREATE);
    assert_int_equal(brk_op_set_tag(f->op, tag), 0);
    assert_int_equal(brk_class_parse(&f->op->cls, cls, NULL, 0), 0);
    assert_int_equal(brk_name_list_add(&f->op->publishers, "pub"), 0);
    assert_int_equal(brk_name_list_add(&f->op->subscribers, "sub"), 0);
    run_op(f);
}

/* The class of c.total (the durable total-order tests make it durable). */
static const char *total_class = "cft,total";

static void fixture_make(struct fixture *f, const struct brk_events_config *cfg)
{
    for (uint32_t i = 0; i < KEYS; i++) {
        key_make(f->keys[i], i);
    }
    assert_int_equal(brk_table_init(&f->table, f->keys[ADMIN]), 0);
    f->op = calloc(1, sizeof(*f->op));
    assert_non_null(f->op);
    buf_init(&f->encoded, 0);
    buf_init(&f->result, TRONE_RESULT_MAX);
    buf_init(&f->msg, 0);
    const char *names[KEYS] = {NULL, "pub", "sub", "outsider"};
    for (uint32_t i = PUB; i < KEYS; i++) {
        brk_op_init(f->op, BRK_OP_REGISTER);
        assert_int_equal(brk_op_set_register(f->op, names[i], f->keys[i]), 0);
        run_op(f);
    }
    make_channel(f, "c.lo", "cft,fifo,urgency=0");
    make_channel(f, "c.hi", "bft,fifo,urgency=7");
    make_channel(f, "c.total", total_class);
    assert_int_equal(brk_events_init(&f->ev, cfg), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    fixture_make(f, &cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    brk_events_close(&f->ev);
    brk_table_close(&f->table);
    buf_close(&f->encoded);
    buf_close(&f->result);
    buf_close(&f->msg);
    free(f->op);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

/* Publishes seqs first..first+count-1 of epoch on tag from (conn, key); returns the message's
 * result code. Payload "e<seq>". */
static int publish(struct fixture *f, uint64_t conn, uint32_t who, const char *tag,
                   uint64_t epoch, uint64_t first, uint32_t count)
{
    buf_reset(&f->msg);
    struct chan_msg m = {.type = CHAN_MSG_PUBLISH};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_msg_put_header(&f->msg, &m);
    for (uint32_t i = 0; i < count; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof(payload), "e%llu", (unsigned long long)(first + i));
        struct chan_event e = {.epoch = epoch, .seq = first + i, .time_us = 5,
                               .payload = (const uint8_t *)payload, .payload_size = (uint32_t)n};
        chan_msg_put_event(&f->msg, &e);
    }
    chan_msg_events_end(&f->msg, 0, count);
    assert_int_equal(f->msg.error, 0);
    return brk_events_message(&f->ev, &f->table, 1000, conn, f->keys[who], f->msg.data,
                              f->msg.used, &f->out);
}

/* The last ACK in the output: its seq; checks status and epoch. */
static uint64_t last_ack(struct fixture *f, uint64_t conn, uint64_t epoch, int32_t status)
{
    assert_true(f->out->send_count >= 1);
    const struct brk_events_send *s = &f->out->sends[f->out->send_count - 1];
    assert_true(s->conn_id == conn);
    struct buf_reader r;
    struct chan_msg m;
    assert_int_equal(chan_msg_read_header(&r, s->data, s->size, &m), 0);
    assert_int_equal(m.type, CHAN_MSG_ACK);
    assert_int_equal(m.status, status);
    assert_true(m.epoch == epoch);
    return m.seq;
}

static int32_t tag_message(struct fixture *f, uint64_t conn, uint32_t who, uint8_t type,
                           const char *tag)
{
    buf_reset(&f->msg);
    struct chan_msg m = {.type = (enum chan_msg_type)type};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_msg_put_header(&f->msg, &m);
    assert_int_equal(brk_events_message(&f->ev, &f->table, 1000, conn, f->keys[who], f->msg.data,
                                        f->msg.used, &f->out),
                     0);
    if (type == CHAN_MSG_DETACH) {
        assert_int_equal(f->out->send_count, 0);
        return 0;
    }
    assert_int_equal(f->out->send_count, 1);
    struct buf_reader r;
    struct chan_msg a;
    assert_int_equal(chan_msg_read_header(&r, f->out->sends[0].data, f->out->sends[0].size, &a),
                     0);
    assert_int_equal(a.type, CHAN_MSG_ATTACHED);
    return a.status;
}

/* What one flush sent to conn: DELIVERed seqs in order (tags in tags[], one char per message:
 * 'l' c.lo, 'h' c.hi), and the GAP total. Returns the number of seqs. */
struct seen {
    uint64_t seqs[20000];
    uint32_t count;
    char tags[20000];
    uint32_t messages;
    uint64_t gap_lo;
    uint64_t gap_hi;
    uint32_t first_deliver_idx; /* send index of the first DELIVER */
    uint32_t last_gap_idx;
};

static void flush_into(struct fixture *f, uint64_t conn, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    s->first_deliver_idx = UINT32_MAX;
    brk_events_flush(&f->ev, &f->table, 777, &f->out);
    for (size_t i = 0; i < f->out->send_count; i++) {
        const struct brk_events_send *snd = &f->out->sends[i];
        if (snd->conn_id != conn) {
            continue;
        }
        struct buf_reader r;
        struct chan_msg m;
        assert_int_equal(chan_msg_check(snd->data, snd->size), 0);
        assert_int_equal(chan_msg_read_header(&r, snd->data, snd->size, &m), 0);
        bool hi = strcmp(m.tag, "c.hi") == 0;
        assert_memory_equal(m.publisher, f->keys[PUB], TRONE_KEY_LEN);
        if (m.type == CHAN_MSG_GAP) {
            *(hi ? &s->gap_hi : &s->gap_lo) += m.dropped;
            s->last_gap_idx = (uint32_t)i;
            continue;
        }
        assert_int_equal(m.type, CHAN_MSG_DELIVER);
        assert_true(m.replica_time_us == 777);
        if (s->first_deliver_idx == UINT32_MAX) {
            s->first_deliver_idx = (uint32_t)i;
        }
        s->tags[s->messages++] = hi ? 'h' : 'l';
        for (uint32_t k = 0; k < m.event_count; k++) {
            struct chan_event e;
            chan_msg_read_event(&r, &e);
            char payload[32];
            int n = snprintf(payload, sizeof(payload), "e%llu", (unsigned long long)e.seq);
            assert_int_equal(e.payload_size, n);
            assert_memory_equal(e.payload, payload, (size_t)n);
            s->seqs[s->count++] = e.seq;
        }
        assert_int_equal(buf_reader_finish(&r), 0);
    }
}

/* ---- Scenarios ---- */

/* Unknown channels and unauthorized clients are refused with the right status, and nothing of
 * theirs reaches an attached subscriber. */
static void test_authorization_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(publish(f, CONN_OUT, OUTSIDER, "c.lo", 1, 1, 3), 0);
    last_ack(f, CONN_OUT, 1, TRONE_EPERM);
    assert_int_equal(publish(f, CONN_PUB, PUB, "nope", 1, 1, 3), 0);
    last_ack(f, CONN_PUB, 1, TRONE_ENOENT);
    assert_int_equal(tag_message(f, CONN_OUT, OUTSIDER, CHAN_MSG_ATTACH, "c.lo"), TRONE_EPERM);
    assert_int_equal(tag_message(f, CONN_OUT, OUTSIDER, CHAN_MSG_ATTACH, "nope"), TRONE_ENOENT);
    /* A publisher may not subscribe unless listed: "pub" is not a subscriber. */
    assert_int_equal(tag_message(f, CONN_PUB, PUB, CHAN_MSG_ATTACH, "c.lo"), TRONE_EPERM);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->count, 0);
    assert_int_equal(f->out->send_count, 0);
    assert_true(brk_events_stats(&f->ev)->rejected == 5);
    assert_true(brk_events_stats(&f->ev)->accepted == 0);
    free(s);
}

/* Duplicates are acked with the highest contiguous seq but forwarded once; a seq beyond
 * accepted + 1 is dropped until the publisher resends from its unacked start. */
static void test_duplicates_and_gaps(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 9, 1, 5), 0);
    assert_true(last_ack(f, CONN_PUB, 9, 0) == 5);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 9, 3, 5), 0); /* 3..7: 3 duplicates */
    assert_true(last_ack(f, CONN_PUB, 9, 0) == 7);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 9, 10, 2), 0); /* 8, 9 missing */
    assert_true(last_ack(f, CONN_PUB, 9, 0) == 7);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 9, 8, 4), 0); /* resend 8..11 */
    assert_true(last_ack(f, CONN_PUB, 9, 0) == 11);
    const struct brk_events_stats *st = brk_events_stats(&f->ev);
    assert_true(st->duplicates == 3);
    assert_true(st->out_of_order == 2);
    assert_true(st->accepted == 11);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->count, 11);
    for (uint32_t i = 0; i < 11; i++) {
        assert_true(s->seqs[i] == i + 1);
    }
    assert_int_equal(s->messages, 1); /* one (tag, publisher) run: one DELIVER */
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->count, 0);
    free(s);
}

/* A new epoch starts a fresh stream at whatever seq comes first (the publisher may have
 * retired acked events); the old epoch keeps its own state. */
static void test_new_epoch(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 10, 1, 3), 0);
    assert_true(last_ack(f, CONN_PUB, 10, 0) == 3);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 20, 100, 2), 0);
    assert_true(last_ack(f, CONN_PUB, 20, 0) == 101);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 10, 4, 1), 0);
    assert_true(last_ack(f, CONN_PUB, 10, 0) == 4);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->count, 6);
    assert_true(s->seqs[0] == 1 && s->seqs[2] == 3 && s->seqs[3] == 100 && s->seqs[5] == 4);
    free(s);
}

/* Events of the more urgent channel are flushed first even when queued later; events
 * published before the attach are never forwarded. */
static void test_urgency_order(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 1, 5), 0); /* before the attach */
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.hi"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 6, 3), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.hi", 1, 1, 2), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 9, 1), 0);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->messages, 2);
    assert_int_equal(s->tags[0], 'h');
    assert_int_equal(s->tags[1], 'l');
    const uint64_t want[] = {1, 2, 6, 7, 8, 9};
    assert_int_equal(s->count, 6);
    for (uint32_t i = 0; i < 6; i++) {
        assert_true(s->seqs[i] == want[i]);
    }
    /* After a DETACH nothing more comes. */
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_DETACH, "c.lo"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 10, 1), 0);
    flush_into(f, CONN_SUB, s);
    assert_int_equal(s->count, 0);
    free(s);
}

/* Malformed input and replica-to-client types are refused without a change. */
static void test_bad_messages(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 1, 3), 0);
    size_t cut = f->msg.used - 1;
    assert_int_equal(brk_events_message(&f->ev, &f->table, 1, CONN_PUB, f->keys[PUB],
                                        f->msg.data, cut, &f->out),
                     TRONE_EBADMSG);
    assert_int_equal(f->out->send_count, 0);
    f->msg.data[0] = CHAN_MSG_DELIVER;
    assert_int_equal(brk_events_message(&f->ev, &f->table, 1, CONN_PUB, f->keys[PUB],
                                        f->msg.data, f->msg.used, &f->out),
                     TRONE_EPROTO);
    assert_int_equal(brk_events_message(&f->ev, &f->table, 1, CONN_PUB, f->keys[PUB],
                                        f->msg.data, 0, &f->out),
                     TRONE_EBADMSG);
    assert_true(brk_events_stats(&f->ev)->accepted == 3);
}

static int setup_small(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.queue_events_max = 100;
    cfg.queue_bytes_max = BRK_EVENTS_RECORD_MAX;
    fixture_make(f, &cfg);
    *state = f;
    return 0;
}

/* A queue drained a little at a time while events keep arriving: a flush emits at most
 * flush_conn_bytes_max per connection, so the head of the queue moves slowly. */
static int setup_slow(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.deliver_bytes_max = 200;
    cfg.flush_conn_bytes_max = 200;
    fixture_make(f, &cfg);
    *state = f;
    return 0;
}

/* The per-level queue is a ring (brk_events_level.c): with a head that moves slowly, records
 * are written again from the start of the buffer (the ring wraps) instead of moving the queue,
 * and the subscriber still gets every event once, in order, with nothing dropped; the buffer
 * stays within twice the most bytes ever queued. */
static void test_slow_drain_ring(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    struct seen *s = calloc(1, sizeof(*s));
    uint64_t *got = calloc(20000, sizeof(*got));
    assert_non_null(s);
    assert_non_null(got);
    uint32_t got_count = 0;
    uint64_t next = 1;
    bool wrapped = false;
    size_t queued_max = 0;
    for (uint32_t round = 0; round < 4000 && got_count < 15000; round++) {
        if (next <= 15000) {
            uint32_t count = round < 300 ? 9 : 4; /* first fill, then drain faster than fill */
            assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 3, next, count), 0);
            next += count;
        }
        size_t bytes = 0;
        size_t allocated = 0;
        (void)brk_events_conn_queued(&f->ev, CONN_SUB, &bytes, &allocated);
        queued_max = bytes > queued_max ? bytes : queued_max;
        assert_true(allocated <= 2 * queued_max + 8192u);
        for (uint32_t k = 0; k < f->ev.conn_high; k++) {
            wrapped = wrapped || (f->ev.conns[k].used && f->ev.conns[k].levels[0].wrap != 0);
        }
        flush_into(f, CONN_SUB, s);
        for (uint32_t i = 0; i < s->count && got_count < 20000; i++) {
            got[got_count++] = s->seqs[i];
        }
    }
    assert_true(wrapped);
    assert_int_equal(got_count, 15000);
    for (uint32_t i = 0; i < got_count; i++) {
        assert_true(got[i] == i + 1u);
    }
    assert_true(brk_events_stats(&f->ev)->dropped == 0);
    assert_int_equal(brk_events_conn_queued(&f->ev, CONN_SUB, NULL, NULL), 0);
    free(got);
    free(s);
}

/* A subscriber that never drains: the queue stays within its bounds whatever arrives, and
 * once it drains it gets one GAP with the exact number of dropped events, then the newest
 * queue_events_max events in order. */
static void test_flow_control(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    brk_events_conn_pause(&f->ev, CONN_SUB, true);
    const uint32_t total = 10000;
    for (uint32_t i = 0; i < total / 50; i++) {
        assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 3, 1 + i * 50, 50), 0);
        brk_events_flush(&f->ev, &f->table, 1, &f->out);
        assert_int_equal(f->out->send_count, 0);
        size_t bytes = 0;
        size_t allocated = 0;
        uint32_t queued = brk_events_conn_queued(&f->ev, CONN_SUB, &bytes, &allocated);
        assert_true(queued <= 100);
        assert_true(bytes <= BRK_EVENTS_RECORD_MAX);
        assert_true(allocated <= BRK_EVENTS_LEVELS * (size_t)BRK_EVENTS_RECORD_MAX + 1024u * 256u);
    }
    assert_true(brk_events_stats(&f->ev)->dropped == total - 100);
    brk_events_conn_pause(&f->ev, CONN_SUB, false);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_true(s->gap_lo == total - 100);
    assert_true(s->last_gap_idx < s->first_deliver_idx);
    assert_int_equal(s->count, 100);
    for (uint32_t i = 0; i < 100; i++) {
        assert_true(s->seqs[i] == total - 100 + 1 + i);
    }
    size_t allocated = 0;
    assert_int_equal(brk_events_conn_queued(&f->ev, CONN_SUB, NULL, &allocated), 0);
    free(s);
}

/* Overflow drops from the least urgent level: urgent events survive, and a less urgent new
 * event is dropped itself; each loss is reported per channel. */
static void test_flow_control_urgency(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.hi"), 0);
    brk_events_conn_pause(&f->ev, CONN_SUB, true);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 1, 30), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.hi", 1, 1, 90), 0); /* drops 20 lo */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.hi", 1, 91, 15), 0); /* drops 10 lo, 5 hi */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 1, 31, 7), 0);  /* all 7 dropped */
    brk_events_conn_pause(&f->ev, CONN_SUB, false);
    struct seen *s = calloc(1, sizeof(*s));
    flush_into(f, CONN_SUB, s);
    assert_true(s->gap_lo == 37);
    assert_true(s->gap_hi == 5);
    assert_int_equal(s->count, 100);
    assert_true(s->seqs[0] == 6 && s->seqs[99] == 105);
    assert_int_equal(s->tags[0], 'h');
    brk_events_conn_close(&f->ev, CONN_SUB);
    assert_false(brk_events_pending(&f->ev));
    free(s);
}

/* ---- Total order ---- */

/* The digest of seqs first..first+count-1 of epoch as publish() encodes them. */
static void range_digest(uint64_t epoch, uint64_t first, uint32_t count,
                         uint8_t digest[TRONE_HASH_LEN])
{
    uint8_t(*hashes)[TRONE_HASH_LEN] = calloc(count, TRONE_HASH_LEN);
    assert_non_null(hashes);
    struct buf b;
    buf_init(&b, 0);
    for (uint32_t i = 0; i < count; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof(payload), "e%llu", (unsigned long long)(first + i));
        struct chan_event e = {.epoch = epoch, .seq = first + i, .time_us = 5,
                               .payload = (const uint8_t *)payload, .payload_size = (uint32_t)n};
        buf_reset(&b);
        chan_msg_put_event(&b, &e);
        brk_order_event_hash(hashes[i], b.data, b.used);
    }
    brk_order_digest(digest, (const uint8_t(*)[TRONE_HASH_LEN])hashes, count);
    buf_close(&b);
    free(hashes);
}

/* Tells the core about an executed ORDER of PUB's events on c.total. */
static void order(struct fixture *f, uint64_t now_us, uint64_t epoch, uint64_t first,
                  uint32_t count, uint64_t position, bool good_digest)
{
    uint8_t digest[TRONE_HASH_LEN];
    range_digest(epoch, first, count, digest);
    digest[0] ^= good_digest ? 0 : 1;
    struct brk_order_exec o = {.tag = "c.total", .publisher = f->keys[PUB], .epoch = epoch,
                               .first_seq = first, .count = count, .digest = digest,
                               .first_position = position};
    brk_events_order(&f->ev, &f->table, now_us, &o);
}

/* What one flush sent to conn on c.total: positions and seqs in order (every message a
 * DELIVER_TOTAL of consecutive positions). Returns the number of events. */
static uint32_t flush_total(struct fixture *f, uint64_t conn, uint64_t *positions, uint64_t *seqs,
                            uint32_t max)
{
    uint32_t count = 0;
    brk_events_flush(&f->ev, &f->table, 777, &f->out);
    for (size_t i = 0; i < f->out->send_count; i++) {
        const struct brk_events_send *snd = &f->out->sends[i];
        if (snd->conn_id != conn) {
            continue;
        }
        struct buf_reader r;
        struct chan_msg m;
        assert_int_equal(chan_msg_check(snd->data, snd->size), 0);
        assert_int_equal(chan_msg_read_header(&r, snd->data, snd->size, &m), 0);
        assert_int_equal(m.type, CHAN_MSG_DELIVER_TOTAL);
        assert_string_equal(m.tag, "c.total");
        for (uint32_t k = 0; k < m.event_count; k++) {
            struct chan_event e;
            chan_msg_read_event(&r, &e);
            assert_true(count < max);
            positions[count] = m.position + k;
            seqs[count++] = e.seq;
        }
    }
    return count;
}

/* Events of a total-order channel wait in the pool until their ORDER, then go out at their
 * positions, whichever of ORDER and payload arrives first. */
static void test_total_release(void **state)
{
    struct fixture *f = *state;
    uint64_t pos[16];
    uint64_t seqs[16];
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 4, 1, 3), 0);
    assert_true(last_ack(f, CONN_PUB, 4, 0) == 3);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    order(f, 1000, 4, 1, 3, 1, true);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_true(pos[i] == 1 + i && seqs[i] == 1 + i);
    }
    /* ORDER first, payload later. */
    order(f, 1000, 4, 4, 2, 4, true);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 4, 4, 2), 0);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 2);
    assert_true(pos[0] == 4 && seqs[0] == 4 && pos[1] == 5 && seqs[1] == 5);
    struct brk_events_pool_stats ps;
    brk_events_pool_stats(&f->ev, &ps);
    assert_int_equal(ps.events, 0);
    assert_int_equal(ps.orders, 0);
    assert_true(brk_events_stats(&f->ev)->released == 5);
}

/* A later ORDER never overtakes an earlier one of its channel: positions go out in order. */
static void test_total_positions_in_order(void **state)
{
    struct fixture *f = *state;
    uint64_t pos[16];
    uint64_t seqs[16];
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 2, 3, 2), 0); /* new stream at 3 */
    order(f, 1000, 2, 1, 2, 10, true); /* seqs 1-2 not here yet */
    order(f, 1000, 2, 3, 2, 12, true);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    /* A second epoch's events arrive; the stream of epoch 2 accepted 3..4 already. */
    assert_int_equal(brk_events_deadline(&f->ev), 1000 + 200000u); /* asks the peers first */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 3, 1, 2), 0);
    order(f, 1000, 3, 1, 2, 14, true);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    /* The wait ends: positions 10-11 are skipped here, the rest goes out in order. */
    const struct brk_events_out *tick_out = NULL;
    brk_events_tick(&f->ev, &f->table, 1000 + 3000000u, &tick_out);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 4);
    assert_true(pos[0] == 12 && pos[1] == 13 && pos[2] == 14 && pos[3] == 15);
    assert_true(seqs[0] == 3 && seqs[1] == 4 && seqs[2] == 1 && seqs[3] == 2);
    assert_true(brk_events_stats(&f->ev)->skipped == 2);
    assert_int_equal(brk_events_deadline(&f->ev), UINT64_MAX);
}

/* Pooled events that do not match the agreed digest are never released. */
static void test_total_digest_mismatch(void **state)
{
    struct fixture *f = *state;
    uint64_t pos[16];
    uint64_t seqs[16];
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 1, 1, 4), 0);
    order(f, 50, 1, 1, 2, 1, false);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    assert_true(brk_events_stats(&f->ev)->mismatched == 1);
    order(f, 60, 1, 3, 2, 3, true); /* waits behind the bad one */
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 0);
    const struct brk_events_out *tick_out = NULL;
    brk_events_tick(&f->ev, &f->table, 50 + 3000000u, &tick_out);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 2);
    assert_true(pos[0] == 3 && seqs[0] == 3 && pos[1] == 4 && seqs[1] == 4);
    assert_true(brk_events_stats(&f->ev)->released == 2);
    assert_true(brk_events_stats(&f->ev)->skipped == 2);
}

/* The pool keeps at most pool_events_max events, evicting the oldest unordered ones. */
static void test_total_pool_bound(void **state)
{
    struct fixture *f = *state;
    uint64_t pos[16];
    uint64_t seqs[16];
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 1, 1, 10), 0);
    struct brk_events_pool_stats ps;
    brk_events_pool_stats(&f->ev, &ps);
    assert_int_equal(ps.events, 4);
    assert_true(brk_events_stats(&f->ev)->pool_evicted == 6);
    assert_true(ps.bytes <= 4u * BRK_EVENTS_RECORD_MAX);
    order(f, 1, 1, 7, 4, 1, true); /* the 4 kept ones */
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 4);
    assert_true(seqs[0] == 7 && seqs[3] == 10);
    brk_events_pool_stats(&f->ev, &ps);
    assert_int_equal(ps.events, 0);
}

/* A replica that lacks the payloads of an ORDERed range fetches them from a peer that has
 * them; a peer's altered copy of the range is refused, whoever sends it. */
static void test_total_fetch(void **state)
{
    struct fixture *f = *state;
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    struct brk_events *lacking = calloc(1, sizeof(*lacking));
    assert_non_null(lacking);
    assert_int_equal(brk_events_init(lacking, &cfg), 0);
    uint64_t pos[16];
    uint64_t seqs[16];
    /* Replica "f->ev" got the PUBLISH, replica "lacking" did not; both execute the ORDER. */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 6, 1, 3), 0);
    uint8_t digest[TRONE_HASH_LEN];
    range_digest(6, 1, 3, digest);
    struct brk_order_exec o = {.tag = "c.total", .publisher = f->keys[PUB], .epoch = 6,
                               .first_seq = 1, .count = 3, .digest = digest,
                               .first_position = 1};
    brk_events_order(&f->ev, &f->table, 100, &o);
    brk_events_order(lacking, &f->table, 100, &o);
    const struct brk_events_out *out = NULL;
    brk_events_tick(lacking, &f->table, 100 + cfg.fetch_delay_us - 1, &out);
    assert_int_equal(out->peer_send_count, 0);
    assert_true(brk_events_deadline(lacking) == 100 + cfg.fetch_delay_us);
    brk_events_tick(lacking, &f->table, 100 + cfg.fetch_delay_us, &out);
    assert_int_equal(out->peer_send_count, 1);
    assert_true(out->peer_sends[0].replica == BRK_EVENTS_ALL_PEERS);
    struct buf fetch;
    buf_init(&fetch, 0);
    buf_put_bytes(&fetch, out->peer_sends[0].data, out->peer_sends[0].size);
    /* The peer answers from its pool (the events were released there, and kept). */
    const struct brk_events_out *answer = NULL;
    assert_int_equal(brk_events_peer_message(&f->ev, &f->table, 200, 3, fetch.data, fetch.used,
                                             &answer),
                     0);
    assert_int_equal(answer->peer_send_count, 1);
    assert_true(answer->peer_sends[0].replica == 3);
    struct buf fetched;
    buf_init(&fetched, 0);
    buf_put_bytes(&fetched, answer->peer_sends[0].data, answer->peer_sends[0].size);
    /* An altered copy (last payload byte) is refused and changes nothing. */
    fetched.data[fetched.used - 1] ^= 1;
    assert_int_equal(brk_events_peer_message(lacking, &f->table, 300, 1, fetched.data,
                                             fetched.used, &out),
                     0);
    assert_true(brk_events_stats(lacking)->fetch_refused == 1);
    assert_true(brk_events_stats(lacking)->released == 0);
    fetched.data[fetched.used - 1] ^= 1;
    /* The true copy is taken and released at the agreed positions. */
    uint8_t sub_key[TRONE_KEY_LEN];
    memcpy(sub_key, f->keys[SUB], TRONE_KEY_LEN);
    buf_reset(&f->msg);
    struct chan_msg m = {.type = CHAN_MSG_ATTACH};
    snprintf(m.tag, sizeof(m.tag), "c.total");
    chan_msg_put_header(&f->msg, &m);
    assert_int_equal(brk_events_message(lacking, &f->table, 300, CONN_SUB, sub_key, f->msg.data,
                                        f->msg.used, &out),
                     0);
    assert_int_equal(brk_events_peer_message(lacking, &f->table, 300, 1, fetched.data,
                                             fetched.used, &out),
                     0);
    assert_true(brk_events_stats(lacking)->fetched == 1);
    assert_true(brk_events_stats(lacking)->released == 3);
    /* Swap the cores so flush_total reads the lacking replica's output. */
    struct brk_events tmp = f->ev;
    f->ev = *lacking;
    *lacking = tmp;
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 16), 3);
    assert_true(pos[0] == 1 && seqs[0] == 1 && pos[2] == 3 && seqs[2] == 3);
    assert_int_equal(brk_events_deadline(&f->ev), UINT64_MAX);
    /* Malformed peer input is refused; a FETCH for a range nobody holds gets no answer. */
    uint8_t junk[3] = {CHAN_MSG_FETCH, 0, 0};
    assert_int_equal(brk_events_peer_message(&f->ev, &f->table, 400, 2, junk, sizeof(junk), &out),
                     TRONE_EBADMSG);
    /* A peer that asks too often is answered fetch_answers_max times per second. */
    for (uint32_t k = 0; k < cfg.fetch_answers_max + 3; k++) {
        assert_int_equal(brk_events_peer_message(&f->ev, &f->table, 500, 2, fetch.data, fetch.used,
                                                 &out),
                         0);
        assert_int_equal(out->peer_send_count, k < cfg.fetch_answers_max ? 1 : 0);
    }
    assert_true(brk_events_stats(&f->ev)->fetch_throttled == 3);
    assert_int_equal(brk_events_peer_message(&f->ev, &f->table, 500 + 1000000u, 2, fetch.data,
                                             fetch.used, &out),
                     0);
    assert_int_equal(out->peer_send_count, 1); /* a new second */
    fetch.data[fetch.used - 4] = 200; /* count 200: more than anyone holds */
    assert_int_equal(brk_events_peer_message(&f->ev, &f->table, 400, 2, fetch.data, fetch.used,
                                             &out),
                     0);
    assert_int_equal(out->peer_send_count, 0);
    brk_events_close(lacking);
    free(lacking);
    buf_close(&fetch);
    buf_close(&fetched);
}

/* With the replicas named, a blocked ORDER asks one peer at a time, in turn after itself. */
static void test_total_fetch_rotation(void **state)
{
    struct fixture *f = *state;
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.replicas = 4;
    cfg.self = 2;
    struct brk_events *r2 = calloc(1, sizeof(*r2));
    assert_non_null(r2);
    assert_int_equal(brk_events_init(r2, &cfg), 0);
    uint8_t digest[TRONE_HASH_LEN] = {1};
    struct brk_order_exec o = {.tag = "c.total", .publisher = f->keys[PUB], .epoch = 6,
                               .first_seq = 1, .count = 3, .digest = digest,
                               .first_position = 1};
    brk_events_order(r2, &f->table, 0, &o);
    const uint32_t want[] = {3, 0, 1, 3, 0};
    uint64_t now = cfg.fetch_delay_us;
    for (uint32_t k = 0; k < 5; k++) {
        const struct brk_events_out *out = NULL;
        brk_events_tick(r2, &f->table, now, &out);
        assert_int_equal(out->peer_send_count, 1);
        assert_int_equal(out->peer_sends[0].replica, want[k]);
        now += cfg.fetch_retry_us;
    }
    const struct brk_events_out *out = NULL;
    brk_events_tick(r2, &f->table, cfg.total_wait_us, &out); /* skipped, no more FETCH */
    assert_int_equal(out->peer_send_count, 0);
    assert_true(brk_events_stats(r2)->skipped == 3);
    cfg.self = 4;
    assert_int_equal(brk_events_config_check(&cfg), TRONE_EINVAL);
    brk_events_close(r2);
    free(r2);
}

static int setup_pool(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.pool_events_max = 4;
    fixture_make(f, &cfg);
    *state = f;
    return 0;
}

/* The disconnect policy: a subscriber whose queue fills is closed (listed in the flush's
 * closes, counted), nothing more is queued for it, and the replica's memory for it is freed;
 * another subscriber of the same channel is not affected. */
static int setup_disconnect(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.queue_events_max = 100;
    cfg.queue_bytes_max = BRK_EVENTS_RECORD_MAX;
    cfg.overflow = BRK_EVENTS_DISCONNECT;
    fixture_make(f, &cfg);
    *state = f;
    return 0;
}

static void test_flow_control_disconnect(void **state)
{
    struct fixture *f = *state;
    const uint64_t other = CONN_SUB + 100;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    assert_int_equal(tag_message(f, other, SUB, CHAN_MSG_ATTACH, "c.lo"), 0);
    brk_events_conn_pause(&f->ev, CONN_SUB, true);
    /* 100 events fit the paused queue; the other connection drains every time. */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 3, 1, 100), 0);
    brk_events_flush(&f->ev, &f->table, 1, &f->out);
    assert_int_equal(f->out->close_count, 0);
    assert_int_equal(brk_events_conn_queued(&f->ev, CONN_SUB, NULL, NULL), 100);
    /* One more: the paused queue is full, so its connection is to be closed. */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.lo", 3, 101, 1), 0);
    brk_events_flush(&f->ev, &f->table, 2, &f->out);
    assert_int_equal(f->out->close_count, 1);
    assert_true(f->out->closes[0] == CONN_SUB);
    assert_true(brk_events_stats(&f->ev)->disconnected == 1);
    assert_true(brk_events_stats(&f->ev)->dropped == 101);
    assert_int_equal(brk_events_conn_queued(&f->ev, CONN_SUB, NULL, NULL), 0);
    assert_int_equal(brk_events_conn_queued(&f->ev, other, NULL, NULL), 0);
    brk_events_conn_close(&f->ev, CONN_SUB);
    /* The other subscriber got all 101 events: the policy cost only the slow one. */
    assert_true(brk_events_stats(&f->ev)->delivered == 101);
}


/* ---- Durable channels: a store in memory ---- */

#define FAKE_RECORDS 256
struct fake_store {
    bool full;
    uint32_t count;
    struct {
        uint64_t stream;
        uint64_t position;
        uint8_t data[256];
        size_t size;
    } rec[FAKE_RECORDS];
    uint32_t stream_count;
    struct {
        uint64_t group;
        uint64_t id;
        uint8_t desc[CHAN_DURABLE_DESC_MAX];
        size_t size;
    } streams[16];
};
static struct fake_store fake;

static int fake_put(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                    size_t desc_size, uint64_t position, uint64_t time_us, const uint8_t *record,
                    size_t size, uint64_t retain_ms, uint64_t retain_bytes)
{
    (void)ctx;
    (void)time_us;
    (void)retain_ms;
    (void)retain_bytes;
    if (fake.full) {
        return TRONE_EFULL;
    }
    bool known = false;
    for (uint32_t i = 0; i < fake.stream_count; i++) {
        known = known || fake.streams[i].id == stream;
    }
    if (!known) {
        assert_true(fake.stream_count < 16);
        fake.streams[fake.stream_count].group = group;
        fake.streams[fake.stream_count].id = stream;
        memcpy(fake.streams[fake.stream_count].desc, desc, desc_size);
        fake.streams[fake.stream_count++].size = desc_size;
    }
    for (uint32_t i = 0; i < fake.count; i++) {
        if (fake.rec[i].stream == stream && fake.rec[i].position >= position) {
            return 0; /* held already */
        }
    }
    assert_true(fake.count < FAKE_RECORDS && size <= 256);
    fake.rec[fake.count].stream = stream;
    fake.rec[fake.count].position = position;
    memcpy(fake.rec[fake.count].data, record, size);
    fake.rec[fake.count++].size = size;
    return 0;
}

static int fake_stream_next(void *ctx, uint64_t group, uint64_t after, uint64_t *stream,
                            uint8_t *desc, size_t desc_max, size_t *desc_size)
{
    (void)ctx;
    int best = -1;
    for (uint32_t i = 0; i < fake.stream_count; i++) {
        if (fake.streams[i].group == group && fake.streams[i].id > after &&
            (best < 0 || fake.streams[i].id < fake.streams[best].id)) {
            best = (int)i;
        }
    }
    if (best < 0) {
        return TRONE_ENOENT;
    }
    assert_true(fake.streams[best].size <= desc_max);
    *stream = fake.streams[best].id;
    memcpy(desc, fake.streams[best].desc, fake.streams[best].size);
    *desc_size = fake.streams[best].size;
    return 0;
}

static int fake_read(void *ctx, uint64_t stream, uint64_t position, uint32_t count_max,
                     brk_events_read_cb cb, void *cb_ctx)
{
    (void)ctx;
    uint32_t n = 0;
    for (uint32_t i = 0; i < fake.count && n < count_max; i++) { /* positions grow per stream */
        if (fake.rec[i].stream == stream && fake.rec[i].position >= position) {
            n++;
            int rc = cb(cb_ctx, fake.rec[i].position, fake.rec[i].data, fake.rec[i].size);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int setup_durable(void **state)
{
    memset(&fake, 0, sizeof(fake));
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.replay_chunk = 2; /* several steps per replay */
    fixture_make(f, &cfg);
    make_channel(f, "c.dur", "cft,fifo,durable");
    struct brk_events_durable d = {.put = fake_put, .stream_next = fake_stream_next,
                                   .read = fake_read};
    brk_events_durable_set(&f->ev, &d);
    *state = f;
    return 0;
}

static int32_t attach_from(struct fixture *f, const char *tag, uint8_t mode, uint64_t start)
{
    buf_reset(&f->msg);
    struct chan_msg m = {.type = CHAN_MSG_ATTACH, .start_mode = mode, .start = start};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_msg_put_header(&f->msg, &m);
    assert_int_equal(brk_events_message(&f->ev, &f->table, 1000, CONN_SUB, f->keys[SUB],
                                        f->msg.data, f->msg.used, &f->out),
                     0);
    assert_int_equal(f->out->send_count, 1);
    struct buf_reader r;
    struct chan_msg a;
    assert_int_equal(chan_msg_read_header(&r, f->out->sends[0].data, f->out->sends[0].size, &a),
                     0);
    assert_int_equal(a.type, CHAN_MSG_ATTACHED);
    return a.status;
}

/* Everything flushes to CONN_SUB until nothing is pending, as text: "R<epoch>:<first> " for a
 * REPLAY, "E " for its end, "<epoch>.<seq> " per delivered event. */
static void drain_text(struct fixture *f, char *text, size_t size)
{
    size_t used = 0;
    text[0] = '\0';
    for (int round = 0; round < 100 && brk_events_pending(&f->ev); round++) {
        brk_events_flush(&f->ev, &f->table, 777, &f->out);
        for (size_t i = 0; i < f->out->send_count; i++) {
            const struct brk_events_send *snd = &f->out->sends[i];
            assert_true(snd->conn_id == CONN_SUB);
            struct buf_reader r;
            struct chan_msg m;
            assert_int_equal(chan_msg_check(snd->data, snd->size), 0);
            assert_int_equal(chan_msg_read_header(&r, snd->data, snd->size, &m), 0);
            if (m.type == CHAN_MSG_REPLAY) {
                used += (size_t)snprintf(text + used, size - used,
                                         m.flags == CHAN_REPLAY_END ? "E " : "R%llu:%llu ",
                                         (unsigned long long)m.epoch,
                                         (unsigned long long)m.first);
                continue;
            }
            assert_int_equal(m.type, CHAN_MSG_DELIVER);
            for (uint32_t k = 0; k < m.event_count; k++) {
                struct chan_event e;
                chan_msg_read_event(&r, &e);
                used += (size_t)snprintf(text + used, size - used, "%llu.%llu ",
                                         (unsigned long long)(e.epoch / 1000000u),
                                         (unsigned long long)e.seq);
            }
        }
    }
    assert_false(brk_events_pending(&f->ev));
}

/* A durable channel stores every accepted event; a subscriber asking from position 0 gets the
 * stored streams in stream id order (a publisher's epochs oldest first), each announced,
 * events accepted during the replay exactly once (read by the cursor, not queued live), then
 * REPLAY END and live events. */
static void test_durable_replay_switch(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 2000000, 1, 2), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 1, 3), 0);
    assert_int_equal(fake.count, 5);
    assert_int_equal(brk_events_stats(&f->ev)->stored, 5);
    assert_int_equal(attach_from(f, "c.dur", CHAN_START_FROM, 0), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 4, 1), 0); /* during replay */
    char text[512];
    drain_text(f, text, sizeof(text));
    assert_string_equal(text, "R1000000:1 1.1 1.2 1.3 1.4 R2000000:1 2.1 2.2 E ");
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 2000000, 3, 1), 0); /* live now */
    drain_text(f, text, sizeof(text));
    assert_string_equal(text, "2.3 ");
    assert_int_equal(fake.count, 7);

    /* FROM 2: each stream from position 3 on; a stream with nothing there is not announced. */
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_DETACH, "c.dur"), 0);
    assert_int_equal(attach_from(f, "c.dur", CHAN_START_FROM, 2), 0);
    drain_text(f, text, sizeof(text));
    assert_string_equal(text, "R1000000:3 1.3 1.4 R2000000:3 2.3 E ");
    /* A start on a channel that keeps nothing is refused. */
    assert_int_equal(attach_from(f, "c.lo", CHAN_START_FROM, 0), TRONE_EINVAL);
}

/* A full store refuses durable events: not accepted (nothing forwarded), the ACK says
 * TRONE_EFULL after acknowledging what came before; once there is room they are accepted. */
static void test_durable_full_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.dur"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 1, 2), 0);
    fake.full = true;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 3, 2), 0);
    assert_int_equal(f->out->status, TRONE_EFULL);
    assert_int_equal(f->out->send_count, 2);
    assert_int_equal(last_ack(f, CONN_PUB, 1000000, TRONE_EFULL), 2);
    assert_int_equal(brk_events_stats(&f->ev)->store_refused, 1);
    assert_int_equal(brk_events_store_status(&f->ev), TRONE_EFULL);
    /* Later events, out of order behind the refused one, are refused too (a bare ACK would
     * clear the publisher's view of the refusal). */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 5, 2), 0);
    assert_int_equal(last_ack(f, CONN_PUB, 1000000, TRONE_EFULL), 2);
    char text[512];
    drain_text(f, text, sizeof(text));
    assert_string_equal(text, "1.1 1.2 ");
    fake.full = false;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.dur", 1000000, 3, 2), 0); /* the resend */
    assert_int_equal(last_ack(f, CONN_PUB, 1000000, 0), 4);
    drain_text(f, text, sizeof(text));
    assert_string_equal(text, "1.3 1.4 ");
    assert_int_equal(fake.count, 4);
}

/* ---- Durable total order: the pending stream ---- */

static int fake_drop(void *ctx, uint64_t stream, uint64_t position_max, uint32_t delete_max)
{
    (void)ctx;
    uint32_t kept = 0;
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < fake.count; i++) {
        if (fake.rec[i].stream == stream && fake.rec[i].position <= position_max &&
            dropped < delete_max) {
            dropped++;
            continue;
        }
        fake.rec[kept++] = fake.rec[i];
    }
    fake.count = kept;
    return (int)dropped;
}

/* How many records fake holds of stream. */
static uint32_t fake_held(uint64_t stream)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < fake.count; i++) {
        n += fake.rec[i].stream == stream ? 1 : 0;
    }
    return n;
}

static void fake_expect(uint64_t stream, uint64_t position, uint64_t seq)
{
    for (uint32_t i = 0; i < fake.count; i++) {
        if (fake.rec[i].stream == stream && fake.rec[i].position == position) {
            assert_true(buf_load_u64(fake.rec[i].data + TRONE_KEY_LEN + 8) == seq);
            return;
        }
    }
    fail_msg("position %llu not stored", (unsigned long long)position);
}

static void durable_total_set(struct fixture *f)
{
    struct brk_events_durable d = {.put = fake_put, .stream_next = fake_stream_next,
                                   .read = fake_read, .drop = fake_drop};
    brk_events_durable_set(&f->ev, &d);
}

static int setup_durable_total(void **state)
{
    memset(&fake, 0, sizeof(fake));
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    total_class = "cft,total,durable";
    fixture_make(f, &cfg);
    total_class = "cft,total";
    durable_total_set(f);
    *state = f;
    return 0;
}

/* The replica restarts: a fresh core over the same table and store, the ORDERs of the
 * restored log executed again (before the store is set, as in rt_replica), then the load. */
static void restart(struct fixture *f)
{
    brk_events_close(&f->ev);
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    assert_int_equal(brk_events_init(&f->ev, &cfg), 0);
}

static uint64_t total_stream(void)
{
    static const uint8_t zero[TRONE_KEY_LEN];
    return brk_events__durable_stream("c.total", zero, 0, true);
}

/* On a durable total-order channel the ACK of a PUBLISH comes out of the same call as the
 * store put of every event it covers (the runtime commits that put before the ACK leaves); a
 * refused put is a TRONE_EFULL ACK and the event is neither acked nor pooled. The ORDER then
 * stores the events at their positions and deletes their pending copies. */
static void test_durable_total_ack_after_put(void **state)
{
    struct fixture *f = *state;
    uint64_t pending = brk_events__pending_stream("c.total", f->keys[PUB], 7);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 1, 3), 0);
    assert_true(last_ack(f, CONN_PUB, 7, 0) == 3);
    assert_int_equal(fake_held(pending), 3);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        fake_expect(pending, seq, seq);
    }
    assert_int_equal(fake.streams[0].group, chan_durable_pending_group("c.total"));
    assert_true(brk_events_stats(&f->ev)->pending_stored == 3);
    /* Full: refused, not acked beyond 3, not pooled. */
    fake.full = true;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 4, 1), 0);
    assert_int_equal(last_ack(f, CONN_PUB, 7, TRONE_EFULL), 3);
    struct brk_events_pool_stats ps;
    brk_events_pool_stats(&f->ev, &ps);
    assert_int_equal(ps.events, 3);
    fake.full = false;
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 4, 1), 0);
    assert_true(last_ack(f, CONN_PUB, 7, 0) == 4);
    /* The ORDER: stored at positions 10..13, pending copies gone. */
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    order(f, 1000, 7, 1, 4, 10, true);
    assert_int_equal(fake_held(total_stream()), 4);
    for (uint64_t i = 0; i < 4; i++) {
        fake_expect(total_stream(), 10 + i, 1 + i);
    }
    assert_int_equal(fake_held(pending), 0);
    assert_true(brk_events_stats(&f->ev)->pending_dropped == 4);
    uint64_t pos[8];
    uint64_t seqs[8];
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 8), 4);
    assert_true(pos[0] == 10 && pos[3] == 13);
}

/* Acknowledged events whose ORDER executed but did not release them (here: the ORDER came
 * first and the replica crashed before a release) are reloaded from the pending stream at
 * restart and released at the ORDER's positions when it executes again; a range stored
 * before the crash (pending copies deleted) is released from the store without waiting. */
static void test_durable_total_reload(void **state)
{
    struct fixture *f = *state;
    /* Range 1-2 released and stored before the crash; 3-5 acked (pending) only. */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 1, 2), 0);
    order(f, 1000, 7, 1, 2, 1, true);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 3, 3), 0);
    assert_true(last_ack(f, CONN_PUB, 7, 0) == 5);
    assert_int_equal(fake_held(total_stream()), 2);
    restart(f);
    /* The restored log executes both ORDERs again, before the store is set. */
    order(f, 2000, 7, 1, 2, 1, true);
    order(f, 2000, 7, 3, 3, 3, true);
    assert_int_equal(fake_held(total_stream()), 2);
    durable_total_set(f);
    assert_int_equal(brk_events_pending_load(&f->ev, &f->table, 3000), 3);
    assert_true(brk_events_stats(&f->ev)->pending_loaded == 3);
    assert_int_equal(fake_held(total_stream()), 5);
    for (uint64_t i = 0; i < 5; i++) {
        fake_expect(total_stream(), 1 + i, 1 + i);
    }
    assert_int_equal(fake_held(brk_events__pending_stream("c.total", f->keys[PUB], 7)), 0);
    struct brk_events_pool_stats ps;
    brk_events_pool_stats(&f->ev, &ps);
    assert_int_equal(ps.orders, 0);
    assert_int_equal(ps.events, 0);
    assert_true(brk_events_stats(&f->ev)->released == 5);
    assert_true(brk_events_stats(&f->ev)->skipped == 0);
}

/* A refused store write at release delivers nothing live: the ORDER stays blocked until the
 * store takes it (then it goes out) or the wait skips it (then nothing goes out). */
static void test_durable_total_release_refused(void **state)
{
    struct fixture *f = *state;
    uint64_t pos[8];
    uint64_t seqs[8];
    assert_int_equal(tag_message(f, CONN_SUB, SUB, CHAN_MSG_ATTACH, "c.total"), 0);
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 1, 2), 0);
    fake.full = true;
    order(f, 1000, 7, 1, 2, 1, true);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 8), 0);
    assert_true(brk_events_stats(&f->ev)->release_refused == 1);
    assert_int_equal(fake_held(total_stream()), 0);
    fake.full = false;
    const struct brk_events_out *tick_out = NULL;
    brk_events_tick(&f->ev, &f->table, 2000, &tick_out);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 8), 2);
    assert_true(pos[0] == 1 && pos[1] == 2);
    assert_int_equal(fake_held(total_stream()), 2);
    /* Refused until the wait ends: skipped, nothing live. */
    assert_int_equal(publish(f, CONN_PUB, PUB, "c.total", 7, 3, 1), 0);
    fake.full = true;
    order(f, 3000, 7, 3, 1, 3, true);
    brk_events_tick(&f->ev, &f->table, 3000 + 3000000u, &tick_out);
    assert_int_equal(flush_total(f, CONN_SUB, pos, seqs, 8), 0);
    assert_true(brk_events_stats(&f->ev)->skipped == 1);
}

/* A pending stream is its own kind: its descriptor decodes back as pending (not total, not
 * FIFO), its id differs from the FIFO stream of the same (tag, publisher, epoch), and its
 * group from the channel's, so replays and the anti-entropy never walk it. */
static void test_durable_pending_names(void **state)
{
    struct fixture *f = *state;
    struct chan_durable_stream d;
    memset(&d, 0, sizeof(d));
    d.pending = true;
    memcpy(d.publisher, f->keys[PUB], TRONE_KEY_LEN);
    d.epoch = 7000;
    snprintf(d.tag, sizeof(d.tag), "c.total");
    uint8_t desc[CHAN_DURABLE_DESC_MAX];
    size_t size = chan_durable_desc_encode(&d, desc);
    assert_int_equal(desc[0], 2);
    struct chan_durable_stream back;
    assert_int_equal(chan_durable_desc_decode(&back, desc, size), 0);
    assert_true(back.pending && !back.total && back.epoch == 7000);
    assert_true(chan_durable_stream_id(&back) ==
                brk_events__pending_stream("c.total", f->keys[PUB], 7000));
    assert_true(chan_durable_stream_id(&back) !=
                brk_events__durable_stream("c.total", f->keys[PUB], 7000, false));
    assert_true(chan_durable_pending_group("c.total") != chan_durable_group("c.total"));
    desc[0] = 3;
    assert_int_equal(chan_durable_desc_decode(&back, desc, size), TRONE_ECORRUPT);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_authorization_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgency_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_drain_ring, setup_slow, teardown),
        cmocka_unit_test_setup_teardown(test_flow_control, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_flow_control_urgency, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_total_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_positions_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_digest_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_pool_bound, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_total_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_fetch_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flow_control_disconnect, setup_disconnect, teardown),
        cmocka_unit_test_setup_teardown(test_durable_replay_switch, setup_durable, teardown),
        cmocka_unit_test_setup_teardown(test_durable_full_refused, setup_durable, teardown),
        cmocka_unit_test_setup_teardown(test_durable_total_ack_after_put, setup_durable_total,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_durable_total_reload, setup_durable_total,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_durable_total_release_refused,
                                        setup_durable_total, teardown),
        cmocka_unit_test_setup_teardown(test_durable_pending_names, setup_durable_total,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
