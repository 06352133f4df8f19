/* test_brk_events_sync.c: durable-stream anti-entropy between replicas (brk_events_sync.c,
 * docs/PROTOCOL.md 11.2) against a real control table and an in-memory store: a replica that
 * missed events fetches them from a peer in bounded chunks (CFT), and under BFT a lying peer
 * never makes it store a forged or altered event: an event is stored only once f+1 = 2 peers
 * sent the same bytes, or once its PKS signature verifies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "broker/brk_events.h"
#include "chan/chan_auth.h"
#include "chan/chan_durable.h"
#include "chan/chan_sync.h"

/* ---- Fixture: an in-memory store ---- */

#define MEM_EVENTS_MAX 8192u
#define MEM_STREAMS_MAX 16u
#define MEM_RECORD_MAX 256u

struct mem_event {
    uint64_t stream;
    uint64_t position;
    uint32_t size;
    uint8_t record[MEM_RECORD_MAX];
};

struct mem_store {
    uint32_t count;
    struct mem_event *events; /* unsorted; every lookup scans (a test store) */
    uint64_t trimmed; /* every stream's retention mark (brk_events_stream_info) */
    uint32_t stream_count;
    struct {
        uint64_t group;
        uint64_t stream;
        size_t desc_size;
        uint8_t desc[CHAN_DURABLE_DESC_MAX];
    } streams[MEM_STREAMS_MAX];
};

static struct mem_event *mem_find(struct mem_store *m, uint64_t stream, uint64_t position)
{
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->events[i].stream == stream && m->events[i].position == position) {
            return &m->events[i];
        }
    }
    return NULL;
}

static void mem_index(struct mem_store *m, uint64_t group, uint64_t stream, const uint8_t *desc,
                      size_t desc_size)
{
    for (uint32_t i = 0; i < m->stream_count; i++) {
        if (m->streams[i].stream == stream) {
            return;
        }
    }
    assert_true(m->stream_count < MEM_STREAMS_MAX);
    m->streams[m->stream_count].group = group;
    m->streams[m->stream_count].stream = stream;
    m->streams[m->stream_count].desc_size = desc_size;
    memcpy(m->streams[m->stream_count].desc, desc, desc_size);
    m->stream_count++;
}

static int mem_insert(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                      size_t desc_size, uint64_t position, uint64_t time_us, const uint8_t *record,
                      size_t size, uint64_t retain_ms, uint64_t retain_bytes)
{
    (void)retain_ms;
    (void)retain_bytes;
    (void)time_us;
    struct mem_store *m = ctx;
    if (mem_find(m, stream, position) != NULL || position <= m->trimmed) {
        return TRONE_EEXIST; /* as the real store: held, or deleted by retention */
    }
    assert_true(m->count < MEM_EVENTS_MAX && size <= MEM_RECORD_MAX);
    mem_index(m, group, stream, desc, desc_size);
    struct mem_event *e = &m->events[m->count++];
    e->stream = stream;
    e->position = position;
    e->size = (uint32_t)size;
    memcpy(e->record, record, size);
    return 0;
}

static int mem_put(void *ctx, uint64_t group, uint64_t stream, const uint8_t *desc,
                   size_t desc_size, uint64_t position, uint64_t time_us, const uint8_t *record,
                   size_t size, uint64_t retain_ms, uint64_t retain_bytes)
{
    int rc = mem_insert(ctx, group, stream, desc, desc_size, position, time_us, record, size,
                        retain_ms, retain_bytes);
    return rc == TRONE_EEXIST ? 0 : rc;
}

static int mem_stream_next(void *ctx, uint64_t group, uint64_t after, uint64_t *stream,
                           uint8_t *desc, size_t desc_max, size_t *desc_size)
{
    struct mem_store *m = ctx;
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < m->stream_count; i++) {
        if (m->streams[i].group == group && m->streams[i].stream > after &&
            (best == UINT32_MAX || m->streams[i].stream < m->streams[best].stream)) {
            best = i;
        }
    }
    if (best == UINT32_MAX) {
        return TRONE_ENOENT;
    }
    assert_true(m->streams[best].desc_size <= desc_max);
    *stream = m->streams[best].stream;
    memcpy(desc, m->streams[best].desc, m->streams[best].desc_size);
    *desc_size = m->streams[best].desc_size;
    return 0;
}

static int mem_read(void *ctx, uint64_t stream, uint64_t position, uint32_t count_max,
                    brk_events_read_cb cb, void *cb_ctx)
{
    struct mem_store *m = ctx;
    uint32_t sent = 0;
    /* Positions are small in these tests: walk them in order. */
    for (uint64_t p = position; p < position + 100000u && sent < count_max; p++) {
        struct mem_event *e = mem_find(m, stream, p);
        if (e != NULL) {
            sent++;
            int rc = cb(cb_ctx, p, e->record, e->size);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static int mem_info(void *ctx, uint64_t stream, struct brk_events_stream_info *out)
{
    struct mem_store *m = ctx;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < m->count; i++) {
        const struct mem_event *e = &m->events[i];
        if (e->stream == stream) {
            out->first = out->count == 0 || e->position < out->first ? e->position : out->first;
            out->last = e->position > out->last ? e->position : out->last;
            out->count++;
            out->bytes += e->size;
        }
    }
    out->trimmed = m->trimmed;
    return out->count > 0 ? 0 : TRONE_ENOENT;
}

static int mem_hole(void *ctx, uint64_t stream, uint64_t from, uint64_t *hole, uint64_t *hole_end)
{
    struct mem_store *m = ctx;
    uint64_t p = from == 0 ? 1 : from;
    while (mem_find(m, stream, p) != NULL) {
        p++;
    }
    *hole = p;
    *hole_end = UINT64_MAX;
    for (uint32_t i = 0; i < m->count; i++) {
        if (m->events[i].stream == stream && m->events[i].position > p &&
            m->events[i].position < *hole_end) {
            *hole_end = m->events[i].position;
        }
    }
    return 0;
}

/* ---- Fixture: two replicas' cores over one control table ---- */

enum { ADMIN = 0, PUB = 1, KEYS = 2 };
#define CONN_PUB 100u

struct fixture {
    uint8_t keys[KEYS][TRONE_KEY_LEN];
    uint8_t pub_secret[TRONE_SECRET_KEY_LEN];
    struct brk_table table;
    struct brk_op *op;
    struct buf encoded;
    struct buf result;
    struct buf msg;
    struct brk_events ev[2]; /* replica 0 catches up, replica 1 serves */
    struct mem_store mem[2];
    /* Messages from replica 0 to its peers, copied out of its last output. */
    uint32_t out_count;
    uint32_t out_to[128];
    uint8_t *out_data[128];
    size_t out_size[128];
};

static void key_make(uint8_t key[TRONE_KEY_LEN], uint8_t secret[TRONE_SECRET_KEY_LEN], uint32_t n)
{
    uint8_t seed[crypto_sign_SEEDBYTES] = {0};
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    memcpy(seed, &n, sizeof(n));
    seed[31] = 0x55;
    assert_int_equal(crypto_sign_seed_keypair(key, sk, seed), 0);
    if (secret != NULL) {
        memcpy(secret, sk, TRONE_SECRET_KEY_LEN);
    }
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
    run_op(f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    key_make(f->keys[ADMIN], NULL, 0);
    key_make(f->keys[PUB], f->pub_secret, 1);
    assert_int_equal(brk_table_init(&f->table, f->keys[ADMIN]), 0);
    f->op = calloc(1, sizeof(*f->op));
    assert_non_null(f->op);
    buf_init(&f->encoded, 0);
    buf_init(&f->result, TRONE_RESULT_MAX);
    buf_init(&f->msg, 0);
    brk_op_init(f->op, BRK_OP_REGISTER);
    assert_int_equal(brk_op_set_register(f->op, "pub", f->keys[PUB]), 0);
    run_op(f);
    make_channel(f, "d.cft", "cft,fifo,durable");
    make_channel(f, "d.bft", "bft,fifo,durable");
    make_channel(f, "d.pks", "bft,fifo,pks,durable");
    for (uint32_t r = 0; r < 2; r++) {
        struct brk_events_config cfg;
        brk_events_config_defaults(&cfg);
        cfg.replicas = 4;
        cfg.self = r;
        cfg.sync.faults = 1;
        cfg.sync.get_max = 1000; /* several chunks per stream */
        assert_int_equal(brk_events_init(&f->ev[r], &cfg), 0);
        f->mem[r].events = calloc(MEM_EVENTS_MAX, sizeof(struct mem_event));
        assert_non_null(f->mem[r].events);
        struct brk_events_durable d = {.ctx = &f->mem[r],
                                       .put = mem_put,
                                       .stream_next = mem_stream_next,
                                       .read = mem_read,
                                       .info = mem_info,
                                       .hole = mem_hole,
                                       .insert = mem_insert};
        brk_events_durable_set(&f->ev[r], &d);
    }
    *state = f;
    return 0;
}

static void out_clear(struct fixture *f)
{
    for (uint32_t i = 0; i < f->out_count; i++) {
        free(f->out_data[i]);
    }
    f->out_count = 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    out_clear(f);
    for (uint32_t r = 0; r < 2; r++) {
        brk_events_close(&f->ev[r]);
        free(f->mem[r].events);
    }
    brk_table_close(&f->table);
    buf_close(&f->encoded);
    buf_close(&f->result);
    buf_close(&f->msg);
    free(f->op);
    free(f);
    return 0;
}

/* ---- Helpers ---- */

/* Builds one event (payload "e<seq>", signed on PKS channels) into f->msg as a PUBLISH. */
static void publish_to(struct fixture *f, uint32_t r, const char *tag, uint64_t epoch,
                       uint64_t first, uint32_t count, bool sign)
{
    buf_reset(&f->msg);
    struct chan_msg m = {.type = CHAN_MSG_PUBLISH};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_msg_put_header(&f->msg, &m);
    for (uint32_t i = 0; i < count; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof(payload), "e%llu", (unsigned long long)(first + i));
        uint8_t sig[CHAN_AUTH_PKS_SIZE];
        struct chan_event e = {.epoch = epoch,
                               .seq = first + i,
                               .time_us = 5,
                               .payload = (const uint8_t *)payload,
                               .payload_size = (uint32_t)n};
        if (sign) {
            chan_auth_sign(sig, f->pub_secret, tag, &e);
            e.auth = sig;
            e.auth_size = CHAN_AUTH_PKS_SIZE;
        }
        chan_msg_put_event(&f->msg, &e);
    }
    chan_msg_events_end(&f->msg, 0, count);
    assert_int_equal(f->msg.error, 0);
    const struct brk_events_out *out = NULL;
    assert_int_equal(brk_events_message(&f->ev[r], &f->table, 1000, CONN_PUB, f->keys[PUB],
                                        f->msg.data, f->msg.used, &out),
                     0);
    assert_int_equal(out->status, 0);
}

/* Keeps copies of an output's peer messages (the next call into the core reuses them). */
static void out_keep(struct fixture *f, const struct brk_events_out *out)
{
    out_clear(f);
    for (size_t i = 0; i < out->peer_send_count; i++) {
        assert_true(f->out_count < 128);
        f->out_to[f->out_count] = out->peer_sends[i].replica;
        f->out_data[f->out_count] = malloc(out->peer_sends[i].size);
        assert_non_null(f->out_data[f->out_count]);
        memcpy(f->out_data[f->out_count], out->peer_sends[i].data, out->peer_sends[i].size);
        f->out_size[f->out_count] = out->peer_sends[i].size;
        f->out_count++;
    }
}

/* Runs replica 0 against replica 1 (the only peer that answers) until neither has anything to
 * say; returns the messages exchanged. */
static uint32_t exchange(struct fixture *f, uint64_t now_us)
{
    const struct brk_events_out *out = NULL;
    brk_events_tick(&f->ev[0], &f->table, now_us, &out);
    out_keep(f, out);
    uint32_t messages = 0;
    /* Bounded: every turn is one request and its answer. */
    for (uint32_t turn = 0; turn < 1000 && f->out_count > 0; turn++) {
        uint32_t n = f->out_count;
        uint8_t *data[128];
        size_t size[128];
        uint32_t to[128];
        memcpy(data, f->out_data, sizeof(data[0]) * n);
        memcpy(size, f->out_size, sizeof(size[0]) * n);
        memcpy(to, f->out_to, sizeof(to[0]) * n);
        f->out_count = 0;
        uint32_t answers = 0;
        uint8_t *back[256];
        size_t back_size[256];
        for (uint32_t i = 0; i < n; i++) {
            if (to[i] != 1 && to[i] != BRK_EVENTS_ALL_PEERS) {
                free(data[i]);
                continue;
            }
            messages++;
            assert_int_equal(
                brk_events_peer_message(&f->ev[1], &f->table, now_us, 0, data[i], size[i], &out),
                0);
            for (size_t j = 0; j < out->peer_send_count; j++) {
                assert_true(answers < 256);
                back[answers] = malloc(out->peer_sends[j].size);
                memcpy(back[answers], out->peer_sends[j].data, out->peer_sends[j].size);
                back_size[answers++] = out->peer_sends[j].size;
            }
            free(data[i]);
        }
        uint32_t kept = 0;
        uint8_t *next[128];
        size_t next_size[128];
        uint32_t next_to[128];
        for (uint32_t i = 0; i < answers; i++) {
            messages++;
            assert_int_equal(brk_events_peer_message(&f->ev[0], &f->table, now_us, 1, back[i],
                                                     back_size[i], &out),
                             0);
            for (size_t j = 0; j < out->peer_send_count; j++) {
                assert_true(kept < 128);
                next[kept] = malloc(out->peer_sends[j].size);
                memcpy(next[kept], out->peer_sends[j].data, out->peer_sends[j].size);
                next_size[kept] = out->peer_sends[j].size;
                next_to[kept++] = out->peer_sends[j].replica;
            }
            free(back[i]);
        }
        memcpy(f->out_data, next, sizeof(next[0]) * kept);
        memcpy(f->out_size, next_size, sizeof(next_size[0]) * kept);
        memcpy(f->out_to, next_to, sizeof(next_to[0]) * kept);
        f->out_count = kept;
    }
    return messages;
}

static uint64_t stream_of(struct fixture *f, const char *tag, uint64_t epoch)
{
    struct chan_durable_stream d;
    memset(&d, 0, sizeof(d));
    memcpy(d.publisher, f->keys[PUB], TRONE_KEY_LEN);
    d.epoch = epoch;
    snprintf(d.tag, sizeof(d.tag), "%s", tag);
    return chan_durable_stream_id(&d);
}

/* Delivers an EVENTS message from peer `from` to replica 0. */
static void deliver(struct fixture *f, uint32_t from, const struct buf *b)
{
    const struct brk_events_out *out = NULL;
    assert_int_equal(
        brk_events_peer_message(&f->ev[0], &f->table, 2000000, from, b->data, b->used, &out), 0);
}

/* Replica 1's answer to a GET of [from, from + count) of stream, as replica 0 asked it. */
static void honest_answer(struct fixture *f, const char *tag, uint64_t stream, uint64_t from,
                          uint32_t count, struct buf *b)
{
    buf_reset(b);
    struct chan_sync_msg m = {
        .type = CHAN_MSG_SYNC_GET, .stream = stream, .from = from, .count = count};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_sync_put_header(b, &m);
    const struct brk_events_out *out = NULL;
    assert_int_equal(
        brk_events_peer_message(&f->ev[1], &f->table, 2000000, 0, b->data, b->used, &out), 0);
    assert_int_equal(out->peer_send_count, 1);
    buf_reset(b);
    buf_put_bytes(b, out->peer_sends[0].data, out->peer_sends[0].size);
}

/* The same answer with every payload's first byte changed and one forged extra position
 * (a record that names the right publisher, epoch and seq but was never published). */
static void lying_answer(const struct buf *honest, struct buf *b)
{
    struct buf_reader r;
    struct chan_sync_msg m;
    assert_int_equal(chan_sync_read(&r, honest->data, honest->used, &m), 0);
    buf_reset(b);
    struct chan_sync_msg lie = m;
    lie.next = m.next + 1;
    chan_sync_put_header(b, &lie);
    uint8_t record[MEM_RECORD_MAX];
    struct chan_sync_item it;
    for (uint32_t i = 0; i < m.count; i++) {
        chan_sync_read_item(&r, &it);
        assert_true(it.size <= sizeof(record));
        memcpy(record, it.record, it.size);
        record[it.size - 1] ^= 0x01; /* the payload's last byte */
        struct chan_sync_item altered = {
            .position = it.position, .record = record, .size = it.size};
        chan_sync_put_item(b, &altered);
    }
    /* A forged event at position next (seq = position, so it passes the shape checks). */
    memcpy(record + TRONE_KEY_LEN + 8, (uint8_t[8]){0}, 8);
    buf_store_u64(record + TRONE_KEY_LEN + 8, m.next);
    struct chan_sync_item forged = {.position = m.next, .record = record, .size = it.size};
    chan_sync_put_item(b, &forged);
    chan_sync_end(b, 0, m.count + 1);
    assert_int_equal(b->error, 0);
}

/* Makes replica 0 start a chain on stream with peer: a LIST from that peer naming it. */
static void list_from(struct fixture *f, uint32_t peer, const char *tag, uint64_t epoch,
                      uint64_t first, uint64_t last)
{
    struct chan_durable_stream d;
    memset(&d, 0, sizeof(d));
    memcpy(d.publisher, f->keys[PUB], TRONE_KEY_LEN);
    d.epoch = epoch;
    snprintf(d.tag, sizeof(d.tag), "%s", tag);
    uint8_t desc[CHAN_DURABLE_DESC_MAX];
    size_t desc_size = chan_durable_desc_encode(&d, desc);
    buf_reset(&f->msg);
    struct chan_sync_msg m = {.type = CHAN_MSG_SYNC_LIST, .flags = CHAN_SYNC_LIST_END, .count = 1};
    snprintf(m.tag, sizeof(m.tag), "%s", tag);
    chan_sync_put_header(&f->msg, &m);
    struct chan_sync_entry en = {.stream = chan_durable_stream_id(&d),
                                 .desc = desc,
                                 .desc_size = (uint8_t)desc_size,
                                 .first = first,
                                 .last = last,
                                 .count = last - first + 1};
    chan_sync_put_entry(&f->msg, &en);
    const struct brk_events_out *out = NULL;
    assert_int_equal(brk_events_peer_message(&f->ev[0], &f->table, 2000000, peer, f->msg.data,
                                             f->msg.used, &out),
                     0);
    assert_int_equal(out->peer_send_count, 1); /* the first GET */
}

/* ---- Scenarios ---- */

/* A replica that missed 2500 events of a CFT channel and holds 2 of them fetches the others
 * from its peer in chunks of get_max, holes below its last included; then nothing moves. */
static void test_cft_catch_up(void **state)
{
    struct fixture *f = *state;
    publish_to(f, 1, "d.cft", 7, 1, 2500, false);
    publish_to(f, 0, "d.cft", 7, 1200, 1, false); /* replica 0 saw two events only */
    publish_to(f, 0, "d.cft", 7, 1201, 1, false);
    assert_int_equal(f->mem[0].count, 2);
    uint32_t messages = exchange(f, 1000000);
    assert_true(messages >= 6); /* ASK, LIST, at least 2 GET/EVENTS pairs */
    assert_int_equal(f->mem[0].count, 2500);
    uint64_t stream = stream_of(f, "d.cft", 7);
    for (uint64_t p = 1; p <= 2500; p++) {
        struct mem_event *a = mem_find(&f->mem[0], stream, p);
        struct mem_event *b = mem_find(&f->mem[1], stream, p);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(a->size, b->size);
        assert_memory_equal(a->record, b->record, a->size);
    }
    assert_int_equal(brk_events_stats(&f->ev[0])->sync_fetched, 2498);
    /* The next round finds nothing missing: an ASK and a LIST per durable channel, no GET. */
    assert_int_equal(exchange(f, 1000000 + 3000000), 6);
    assert_int_equal(brk_events_stats(&f->ev[0])->sync_fetched, 2498);
}

/* A replica whose retention deleted positions 1..2000 (a size limit) does not fetch them back
 * from a peer whose retention step has not run yet: without the mark the replicas kept
 * deleted events going round between them (one replica's step deletes, it fetches them back
 * from a peer, whose own step had deleted them and fetched them back, and so on). */
static void test_retention_not_undone(void **state)
{
    struct fixture *f = *state;
    publish_to(f, 1, "d.cft", 7, 1, 2500, false);
    publish_to(f, 0, "d.cft", 7, 2001, 500, false);
    f->mem[0].trimmed = 2000;
    uint32_t messages = exchange(f, 1000000);
    assert_int_equal(messages, 6); /* an ASK and a LIST per durable channel, no GET */
    assert_int_equal(f->mem[0].count, 500);
    assert_int_equal(brk_events_stats(&f->ev[0])->sync_fetched, 0);
    /* A hole above the mark is still filled. */
    f->mem[0].trimmed = 1990;
    exchange(f, 1000000 + 3000000);
    assert_int_equal(f->mem[0].count, 510);
    assert_int_equal(brk_events_stats(&f->ev[0])->sync_fetched, 10);
}

/* BFT without signatures: one lying peer (replica 3) sends altered copies of every event
 * and a forged extra one; alone, or together with one honest peer, it makes replica 0 store
 * nothing; a second honest peer's matching copies are stored, the liar's never. */
static void test_bft_lying_peer(void **state)
{
    struct fixture *f = *state;
    publish_to(f, 1, "d.bft", 9, 1, 50, false);
    uint64_t stream = stream_of(f, "d.bft", 9);
    list_from(f, 3, "d.bft", 9, 1, 51); /* the liar also claims a 51st event */
    list_from(f, 1, "d.bft", 9, 1, 50);
    list_from(f, 2, "d.bft", 9, 1, 50);
    struct buf honest = {0};
    struct buf lie = {0};
    honest_answer(f, "d.bft", stream, 1, 50, &honest);
    lying_answer(&honest, &lie);
    deliver(f, 3, &lie);
    assert_int_equal(f->mem[0].count, 0); /* one peer's word is not enough */
    deliver(f, 1, &honest);
    assert_int_equal(f->mem[0].count, 0); /* two copies, but they differ */
    deliver(f, 3, &lie);                  /* the liar repeating itself counts once */
    assert_int_equal(f->mem[0].count, 0);
    deliver(f, 2, &honest);
    assert_int_equal(f->mem[0].count, 50); /* f+1 = 2 matching copies */
    for (uint64_t p = 1; p <= 50; p++) {
        struct mem_event *a = mem_find(&f->mem[0], stream, p);
        struct mem_event *b = mem_find(&f->mem[1], stream, p);
        assert_non_null(a);
        assert_memory_equal(a->record, b->record, b->size);
    }
    assert_null(mem_find(&f->mem[0], stream, 51)); /* the forged one is never stored */
    assert_int_equal(brk_events_stats(&f->ev[0])->sync_fetched, 50);
    buf_close(&honest);
    buf_close(&lie);
}

/* BFT with PKS: one peer's copy is enough when the publisher's signature verifies; the liar's
 * altered copies fail it and are not stored on its word. */
static void test_bft_pks_one_copy(void **state)
{
    struct fixture *f = *state;
    publish_to(f, 1, "d.pks", 4, 1, 20, true);
    uint64_t stream = stream_of(f, "d.pks", 4);
    list_from(f, 3, "d.pks", 4, 1, 21);
    list_from(f, 1, "d.pks", 4, 1, 20);
    struct buf honest = {0};
    struct buf lie = {0};
    honest_answer(f, "d.pks", stream, 1, 20, &honest);
    lying_answer(&honest, &lie);
    deliver(f, 3, &lie);
    assert_int_equal(f->mem[0].count, 0);
    deliver(f, 1, &honest);
    assert_int_equal(f->mem[0].count, 20);
    for (uint64_t p = 1; p <= 20; p++) {
        struct mem_event *a = mem_find(&f->mem[0], stream, p);
        struct mem_event *b = mem_find(&f->mem[1], stream, p);
        assert_non_null(a);
        assert_memory_equal(a->record, b->record, b->size);
    }
    assert_null(mem_find(&f->mem[0], stream, 21));
    buf_close(&honest);
    buf_close(&lie);
}

/* Unsolicited answers (no chain with that peer) and malformed SYNC messages store nothing;
 * a malformed one is reported as such. */
static void test_unsolicited_and_malformed(void **state)
{
    struct fixture *f = *state;
    publish_to(f, 1, "d.cft", 3, 1, 10, false);
    uint64_t stream = stream_of(f, "d.cft", 3);
    struct buf honest = {0};
    honest_answer(f, "d.cft", stream, 1, 10, &honest);
    deliver(f, 2, &honest); /* replica 0 never asked replica 2 */
    assert_int_equal(f->mem[0].count, 0);
    const struct brk_events_out *out = NULL;
    honest.data[honest.used - 1] ^= 1; /* still well-formed: a payload byte */
    for (size_t cut = 1; cut < 40; cut++) {
        assert_int_equal(brk_events_peer_message(&f->ev[0], &f->table, 1, 1, honest.data,
                                                 honest.used - cut, &out),
                         TRONE_EBADMSG);
    }
    assert_int_equal(f->mem[0].count, 0);
    buf_close(&honest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cft_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_not_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bft_lying_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bft_pks_one_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsolicited_and_malformed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
