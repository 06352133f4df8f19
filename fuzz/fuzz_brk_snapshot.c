/* fuzz_brk_snapshot.c: libFuzzer target for the control table's snapshot decoder and for
 * op execution (brk_table_snapshot.c, brk_table_exec.c). Properties: restore never crashes;
 * a refused restore leaves the table unchanged; an accepted snapshot re-serializes to exactly
 * the input (canonical); executing any bytes as an op never crashes, always yields a
 * decodable result, and leaves a table whose snapshot restores to the same digest. Besides
 * the raw input, the baseline snapshot with the input XORed over its last bytes is restored,
 * which reaches the checks deep inside a snapshot. */
#include "../src/broker/brk_table.c"
#include "../src/broker/brk_table_exec.c"
#include "../src/broker/brk_table_snapshot.c"

#include <stdlib.h>

static struct brk_table fuzz_table;
static struct brk_table fuzz_copy;
static struct buf fuzz_baseline;
static uint8_t fuzz_keys[3][TRONE_KEY_LEN];

static void fuzz_run(const struct brk_op *op, const uint8_t *key)
{
    struct buf encoded;
    struct buf result;
    buf_init(&encoded, 0);
    buf_init(&result, 0);
    if (brk_op_encode(op, &encoded) != 0) {
        abort();
    }
    brk_table_execute(&fuzz_table, 1, key, encoded.data, encoded.used, &result);
    buf_close(&encoded);
    buf_close(&result);
}

/* A table with the admin, two clients, a channel and a subscription; its snapshot is the
 * baseline every input starts from. */
static void fuzz_init(void)
{
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES] = {(uint8_t)(i + 1)};
        uint8_t secret[crypto_sign_SECRETKEYBYTES];
        crypto_sign_seed_keypair(fuzz_keys[i], secret, seed);
    }
    if (brk_table_init(&fuzz_table, fuzz_keys[0]) != 0 ||
        brk_table_init(&fuzz_copy, fuzz_keys[0]) != 0) {
        abort();
    }
    static struct brk_op op;
    const char *names[2] = {"probe", "console"};
    for (uint32_t i = 0; i < 2; i++) {
        brk_op_init(&op, BRK_OP_REGISTER);
        if (brk_op_set_register(&op, names[i], fuzz_keys[i + 1]) != 0) {
            abort();
        }
        fuzz_run(&op, fuzz_keys[0]);
    }
    brk_op_init(&op, BRK_OP_CHANNEL_CREATE);
    if (brk_op_set_tag(&op, "os.metrics") != 0 ||
        brk_name_list_add(&op.publishers, "probe") != 0 ||
        brk_name_list_add(&op.subscribers, "*") != 0) {
        abort();
    }
    op.cls.order = BRK_ORDER_TOTAL; /* so the baseline holds order state (floors) */
    fuzz_run(&op, fuzz_keys[0]);
    const uint8_t digest[TRONE_HASH_LEN] = {7};
    brk_op_init(&op, BRK_OP_ORDER);
    if (brk_op_set_order(&op, "os.metrics", 5, 1, 3, digest) != 0) {
        abort();
    }
    fuzz_run(&op, fuzz_keys[1]);
    brk_op_init(&op, BRK_OP_SUBSCRIBE);
    if (brk_op_set_tag(&op, "os.metrics") != 0) {
        abort();
    }
    fuzz_run(&op, fuzz_keys[2]);
    buf_init(&fuzz_baseline, 0);
    if (brk_table_snapshot(&fuzz_table, &fuzz_baseline) != 0 ||
        brk_table_channel_count(&fuzz_table) != 1 ||
        brk_table_find_channel(&fuzz_table, "os.metrics")->order_next != 4) {
        abort();
    }
}

static void fuzz_restore(const uint8_t *data, size_t size)
{
    uint8_t before[TRONE_HASH_LEN];
    uint8_t after[TRONE_HASH_LEN];
    if (brk_table_digest(&fuzz_table, before) != 0) {
        abort();
    }
    int err = brk_table_restore(&fuzz_table, data, size);
    if (err == 0) {
        struct buf again;
        buf_init(&again, 0);
        if (brk_table_snapshot(&fuzz_table, &again) != 0 || again.used != size ||
            memcmp(again.data, data, size) != 0) {
            abort(); /* an accepted snapshot is canonical */
        }
        buf_close(&again);
        return;
    }
    if (err != TRONE_ECORRUPT || brk_table_digest(&fuzz_table, after) != 0 ||
        memcmp(before, after, TRONE_HASH_LEN) != 0) {
        abort(); /* a refused restore changes nothing */
    }
}

static void fuzz_execute(const uint8_t *data, size_t size)
{
    for (uint32_t i = 0; i < 3; i++) {
        struct buf result;
        struct brk_result res;
        buf_init(&result, 0);
        brk_table_execute(&fuzz_table, 1, fuzz_keys[i], data, size, &result);
        if (result.error != 0 || brk_result_decode(result.data, result.used, &res) != 0) {
            abort();
        }
        buf_close(&result);
    }
    struct buf snap;
    buf_init(&snap, 0);
    uint8_t d1[TRONE_HASH_LEN];
    uint8_t d2[TRONE_HASH_LEN];
    if (brk_table_snapshot(&fuzz_table, &snap) != 0 ||
        brk_table_restore(&fuzz_copy, snap.data, snap.used) != 0 ||
        brk_table_digest(&fuzz_table, d1) != 0 || brk_table_digest(&fuzz_copy, d2) != 0 ||
        memcmp(d1, d2, TRONE_HASH_LEN) != 0) {
        abort();
    }
    buf_close(&snap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        fuzz_init();
        ready = true;
    }
    if (brk_table_restore(&fuzz_table, fuzz_baseline.data, fuzz_baseline.used) != 0) {
        abort();
    }
    fuzz_restore(data, size);
    /* Near-valid snapshots: the baseline with the input XORed over its last bytes. */
    if (size > 0 && size <= fuzz_baseline.used) {
        static uint8_t patched[4096];
        if (fuzz_baseline.used <= sizeof(patched)) {
            memcpy(patched, fuzz_baseline.data, fuzz_baseline.used);
            for (size_t i = 0; i < size; i++) {
                patched[fuzz_baseline.used - size + i] ^= data[i];
            }
            fuzz_restore(patched, fuzz_baseline.used);
        }
    }
    if (brk_table_restore(&fuzz_table, fuzz_baseline.data, fuzz_baseline.used) != 0) {
        abort();
    }
    fuzz_execute(data, size);
    return 0;
}
