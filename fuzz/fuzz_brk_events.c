/* fuzz_brk_events.c: arbitrary event-path messages from arbitrary connections (and closes,
 * pauses and flushes in any order) into the replica's forwarding core, against a real control
 * table. Checks that nothing crashes, every output decodes, and the queue bounds hold.
 * Input: records of u8 action | u8 connection | u8 key | u16 length | bytes. Action 4 tells the
 * core about an executed ORDER on "t" (u64 epoch | u64 first seq | u8 count | digest from the
 * bytes) and ticks it, so the total-order pool and release run against arbitrary input; with
 * bit 3 set it feeds the bytes as a peer replica's FETCH or FETCHED instead. */
#include "../src/broker/brk_events.c"
#include "../src/broker/brk_events_flush.c"
#include "../src/broker/brk_events_level.c"
#include "../src/broker/brk_events_queue.c"
#include "../src/broker/brk_events_total.c"

#include <stdlib.h>

#define FUZZ_KEYS 3u

static struct brk_table fuzz_table;
static uint8_t fuzz_keys[FUZZ_KEYS][TRONE_KEY_LEN];
static bool fuzz_ready;

static void fuzz_op(struct brk_op *op)
{
    struct buf encoded = {0};
    struct buf result = {0};
    if (brk_op_encode(op, &encoded) != 0) {
        abort();
    }
    brk_table_execute(&fuzz_table, 1, fuzz_keys[0], encoded.data, encoded.used, &result);
    buf_close(&encoded);
    buf_close(&result);
}

/* Keys 0 (admin), 1 ("p", publisher and subscriber of every channel) and 2 (registered, no
 * rights); channels "a" (urgency 0), "b" (urgency 7), "t" (total order). */
static void fuzz_setup(void)
{
    for (uint32_t i = 0; i < FUZZ_KEYS; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES] = {(uint8_t)(i + 1)};
        uint8_t secret[crypto_sign_SECRETKEYBYTES];
        crypto_sign_seed_keypair(fuzz_keys[i], secret, seed);
    }
    if (brk_table_init(&fuzz_table, fuzz_keys[0]) != 0) {
        abort();
    }
    struct brk_op *op = calloc(1, sizeof(*op));
    const char *names[] = {"p", "q"};
    for (uint32_t i = 0; i < 2; i++) {
        brk_op_init(op, BRK_OP_REGISTER);
        if (brk_op_set_register(op, names[i], fuzz_keys[i + 1]) != 0) {
            abort();
        }
        fuzz_op(op);
    }
    const char *tags[] = {"a", "b", "t"};
    const char *classes[] = {"cft,fifo", "bft,fifo,urgency=7", "cft,total"};
    for (uint32_t i = 0; i < 3; i++) {
        brk_op_init(op, BRK_OP_CHANNEL_CREATE);
        if (brk_op_set_tag(op, tags[i]) != 0 ||
            brk_class_parse(&op->cls, classes[i], NULL, 0) != 0 ||
            brk_name_list_add(&op->publishers, "p") != 0 ||
            brk_name_list_add(&op->subscribers, "p") != 0) {
            abort();
        }
        fuzz_op(op);
    }
    free(op);
    fuzz_ready = true;
}

static void fuzz_check_out(const struct brk_events_out *out)
{
    for (size_t i = 0; i < out->send_count; i++) {
        if (chan_msg_check(out->sends[i].data, out->sends[i].size) != 0) {
            abort();
        }
    }
    for (size_t i = 0; i < out->peer_send_count; i++) {
        if (chan_msg_check(out->peer_sends[i].data, out->peer_sends[i].size) != 0) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_ready) {
        fuzz_setup();
    }
    struct brk_events_config cfg;
    brk_events_config_defaults(&cfg);
    cfg.conn_max = 4;
    cfg.attach_max = 6;
    cfg.attach_per_conn_max = 2;
    cfg.stream_max = 4;
    cfg.queue_events_max = 16;
    cfg.queue_bytes_max = BRK_EVENTS_RECORD_MAX;
    cfg.gap_max = 2;
    cfg.deliver_bytes_max = 200;
    cfg.flush_conn_bytes_max = 400;
    cfg.flush_total_bytes_max = 800;
    cfg.pool_events_max = 8;
    cfg.pool_bytes_max = BRK_EVENTS_RECORD_MAX;
    cfg.total_channels_max = 1;
    cfg.orders_max = 4;
    cfg.total_wait_us = 3;
    struct brk_events ev;
    if (brk_events_init(&ev, &cfg) != 0) {
        abort();
    }
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    for (uint32_t step = 0; step < 4096 && buf_reader_left(&r) >= 5; step++) {
        uint8_t action = buf_get_u8(&r);
        uint64_t conn = buf_get_u8(&r) % 6u;
        const uint8_t *key = fuzz_keys[buf_get_u8(&r) % FUZZ_KEYS];
        size_t length = buf_get_u16(&r);
        length = length > buf_reader_left(&r) ? buf_reader_left(&r) : length;
        const uint8_t *bytes = buf_get_ref(&r, length);
        const struct brk_events_out *out = NULL;
        switch (action % 5u) {
        case 0:
            if (brk_events_message(&ev, &fuzz_table, step, conn, key, bytes, length, &out) == 0) {
                fuzz_check_out(out);
            }
            break;
        case 1:
            brk_events_conn_close(&ev, conn);
            break;
        case 2:
            brk_events_conn_pause(&ev, conn, (action & 4u) != 0);
            break;
        case 4: {
            if ((action & 8u) != 0) {
                if (brk_events_peer_message(&ev, &fuzz_table, step, conn, bytes, length, &out) ==
                    0) {
                    fuzz_check_out(out);
                }
                break;
            }
            uint8_t order_bytes[17 + TRONE_HASH_LEN] = {0};
            memcpy(order_bytes, bytes, length < sizeof(order_bytes) ? length : sizeof(order_bytes));
            uint64_t first = buf_load_u64(order_bytes + 8);
            struct brk_order_exec o = {.tag = "t",
                                       .publisher = key,
                                       .epoch = buf_load_u64(order_bytes),
                                       .first_seq = first == 0 || first > UINT64_MAX - 16 ? 1
                                                                                          : first,
                                       .count = (uint32_t)(order_bytes[16] % 8u) + 1u,
                                       .digest = order_bytes + 17,
                                       .first_position = step + 1};
            brk_events_order(&ev, &fuzz_table, step, &o);
            brk_events_tick(&ev, &fuzz_table, step, &out);
            fuzz_check_out(out);
            break;
        }
        default:
            brk_events_flush(&ev, &fuzz_table, step, &out);
            fuzz_check_out(out);
            for (size_t i = 0; i < out->close_count; i++) {
                brk_events_conn_close(&ev, out->closes[i]);
            }
            break;
        }
        for (uint64_t c = 0; c < 6; c++) {
            size_t bytes_queued = 0;
            if (brk_events_conn_queued(&ev, c, &bytes_queued, NULL) > cfg.queue_events_max ||
                bytes_queued > cfg.queue_bytes_max) {
                abort();
            }
        }
    }
    struct brk_events_pool_stats ps;
    brk_events_pool_stats(&ev, &ps);
    if (ps.events > cfg.pool_events_max || ps.bytes > cfg.pool_bytes_max ||
        ps.orders > cfg.orders_max) {
        abort();
    }
    brk_events_close(&ev);
    return 0;
}
