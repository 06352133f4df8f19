/* fuzz_rt_msg.c: libFuzzer target for the runtime status query and answer decoders
 * (rt_msg.c). Properties: decoding never crashes; a decoded answer re-encodes to exactly the
 * input bytes (the encoding is canonical); only the one-byte query decodes as a query. */
#include "../src/rt/rt_msg.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int type = rt_msg_type(data, size);
    if (rt_msg_decode_status_query(data, size) == 0 && (size != 1 || type != RT_MSG_STATUS_QUERY)) {
        abort();
    }
    struct rt_status st;
    if (rt_msg_decode_status_answer(data, size, &st) != 0) {
        return 0;
    }
    if (type != RT_MSG_STATUS_ANSWER) {
        abort();
    }
    struct buf out;
    buf_init(&out, 0);
    rt_msg_encode_status_answer(&out, &st);
    if (out.error != 0 || out.used != size || memcmp(out.data, data, size) != 0) {
        abort(); /* a decoded answer must re-encode to the same bytes */
    }
    buf_close(&out);
    return 0;
}
