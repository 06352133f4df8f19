/* fuzz_chan_sync.c: arbitrary bytes into the SYNC decoders (chan_sync.h); a message that
 * decodes is re-encoded and must give back the same bytes, and its ranges hold. */
#include "../src/chan/chan_sync.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf_reader r;
    struct chan_sync_msg m;
    if (chan_sync_read(&r, data, size, &m) != 0) {
        return 0;
    }
    if (!chan_sync_is_type(data, size)) {
        abort();
    }
    struct buf out = {0};
    chan_sync_put_header(&out, &m);
    uint64_t previous = m.type == CHAN_MSG_SYNC_LIST ? m.after : m.from;
    for (uint32_t i = 0; i < m.count && m.type == CHAN_MSG_SYNC_LIST; i++) {
        struct chan_sync_entry e;
        chan_sync_read_entry(&r, &e);
        if (r.error != 0 || e.stream <= previous || (e.count > 0 && e.first > e.last)) {
            abort();
        }
        previous = e.stream;
        chan_sync_put_entry(&out, &e);
    }
    for (uint32_t i = 0; i < m.count && m.type == CHAN_MSG_SYNC_EVENTS; i++) {
        struct chan_sync_item it;
        chan_sync_read_item(&r, &it);
        if (r.error != 0 || it.position < previous || it.position >= m.next) {
            abort();
        }
        previous = it.position + 1;
        chan_sync_put_item(&out, &it);
    }
    if (buf_reader_finish(&r) != 0 || out.error != 0 || out.used != size ||
        memcmp(out.data, data, size) != 0) {
        abort();
    }
    buf_close(&out);
    return 0;
}
