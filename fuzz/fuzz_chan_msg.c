/* fuzz_chan_msg.c: arbitrary bytes into the event path's decoders; a message that decodes is
 * re-encoded and must give back the same bytes; a DELIVER_TOTAL's positions are valid. */
#include "../src/chan/chan_msg.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (chan_msg_check(data, size) != 0) {
        return 0;
    }
    struct buf_reader r;
    struct chan_msg m;
    if (chan_msg_read_header(&r, data, size, &m) != 0) {
        abort(); /* check accepted it */
    }
    if (m.type == CHAN_MSG_DELIVER_TOTAL &&
        (m.position == 0 || m.event_count == 0 || m.position > UINT64_MAX - m.event_count)) {
        abort(); /* positions start at 1 and a message's range never wraps */
    }
    struct buf out = {0};
    size_t start = out.used;
    chan_msg_put_header(&out, &m);
    for (uint32_t i = 0; i < m.event_count; i++) {
        struct chan_event e;
        chan_msg_read_event(&r, &e);
        chan_msg_put_event(&out, &e);
    }
    chan_msg_events_end(&out, start, m.event_count);
    if (out.error != 0 || out.used != size || memcmp(out.data, data, size) != 0) {
        abort();
    }
    buf_close(&out);
    return 0;
}
