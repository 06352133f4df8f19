/* fuzz_brk_op.c: libFuzzer target for the control op and result decoders (brk_op.c,
 * brk_result.c). Properties: decoding never crashes; a decoded op re-encodes to exactly the
 * input bytes (the encoding is canonical); a result body walk stops at the bytes it was given;
 * a CHANNEL_KEYS body that decodes re-encodes to the same bytes. */
#include "../src/broker/brk_class.c"
#include "../src/broker/brk_op.c"
#include "../src/broker/brk_result.c"

#include <stdlib.h>

static struct brk_op fuzz_op;
static struct brk_op fuzz_again;
static struct brk_channel_info fuzz_info;

static void fuzz_check_op(const uint8_t *data, size_t size)
{
    if (brk_op_decode(data, size, &fuzz_op) != 0) {
        return;
    }
    struct buf out;
    buf_init(&out, 0);
    if (brk_op_encode(&fuzz_op, &out) != 0 || out.used != size ||
        memcmp(out.data, data, size) != 0) {
        abort(); /* a decoded op must re-encode to the same bytes */
    }
    if (brk_op_decode(out.data, out.used, &fuzz_again) != 0 ||
        memcmp(&fuzz_op, &fuzz_again, sizeof(fuzz_op)) != 0) {
        abort();
    }
    buf_close(&out);
}

static void fuzz_check_result(const uint8_t *data, size_t size)
{
    struct brk_result res;
    if (brk_result_decode(data, size, &res) != 0) {
        return;
    }
    struct brk_channel_iter it;
    if (brk_channel_iter_init(&it, res.body, res.body_size) != 0) {
        return;
    }
    struct buf text;
    buf_init(&text, 0);
    for (uint32_t n = 0; n <= it.count; n++) {
        int got = brk_channel_iter_next(&it, &fuzz_info);
        if (got != 1) {
            break;
        }
        brk_channel_info_format(&fuzz_info, &text);
        brk_channel_info_json(&fuzz_info, &text);
    }
    buf_close(&text);
}

static struct brk_channel_keys fuzz_keys;

/* A CHANNEL_KEYS body that decodes re-encodes to the same bytes (the decoder is strict). */
static void fuzz_check_keys(const uint8_t *data, size_t size)
{
    if (brk_channel_keys_decode(data, size, &fuzz_keys) != 0) {
        return;
    }
    struct buf out;
    buf_init(&out, 0);
    brk_channel_keys_put(&out, &fuzz_keys);
    if (out.error != 0 || out.used != size || memcmp(out.data, data, size) != 0) {
        abort();
    }
    buf_close(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_op(data, size);
    fuzz_check_result(data, size);
    fuzz_check_keys(data, size);
    return 0;
}
