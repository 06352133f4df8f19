/* chan_durable.c: store names of durable channels' streams (chan_durable.h). */
#include "chan/chan_durable.h"

#include <string.h>

#include <sodium.h>

#include "core/assert.h"
#include "core/buf.h"
#include "trone/error.h"

static uint64_t chan_durable_hash(const char *label, const uint8_t *data, size_t size)
{
    uint8_t h[8];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
    crypto_generichash_update(&st, data, size);
    crypto_generichash_final(&st, h, sizeof(h));
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(h); i++) {
        v = (v << 8) | h[i];
    }
    return v == 0 ? 1 : v;
}

uint64_t chan_durable_group(const char *tag)
{
    return chan_durable_hash("trone-durable-group", (const uint8_t *)tag, strlen(tag));
}

uint64_t chan_durable_pending_group(const char *tag)
{
    return chan_durable_hash("trone-durable-pending", (const uint8_t *)tag, strlen(tag));
}

static uint8_t chan_durable_kind(const struct chan_durable_stream *d)
{
    TRONE_ASSERT(!(d->total && d->pending));
    return d->pending ? 2 : d->total ? 1 : 0;
}

size_t chan_durable_desc_encode(const struct chan_durable_stream *d, uint8_t *out)
{
    size_t tag_size = strlen(d->tag);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);
    out[0] = chan_durable_kind(d);
    memcpy(out + 1, d->publisher, TRONE_KEY_LEN);
    buf_store_u64(out + 1 + TRONE_KEY_LEN, d->epoch);
    out[1 + TRONE_KEY_LEN + 8] = (uint8_t)tag_size;
    memcpy(out + 2 + TRONE_KEY_LEN + 8, d->tag, tag_size);
    return 2u + TRONE_KEY_LEN + 8u + tag_size;
}

uint64_t chan_durable_stream_id(const struct chan_durable_stream *d)
{
    uint8_t key[1 + TRONE_KEY_LEN + TRONE_TAG_MAX];
    size_t tag_size = strlen(d->tag);
    TRONE_ASSERT(tag_size <= TRONE_TAG_MAX);
    key[0] = chan_durable_kind(d);
    memcpy(key + 1, d->publisher, TRONE_KEY_LEN);
    memcpy(key + 1 + TRONE_KEY_LEN, d->tag, tag_size);
    uint64_t high = chan_durable_hash("trone-durable-stream", key, 1 + TRONE_KEY_LEN + tag_size);
    uint64_t epoch_ms = (d->epoch / 1000u) & CHAN_DURABLE_EPOCH_MASK;
    uint64_t id = (high << CHAN_DURABLE_EPOCH_BITS) | epoch_ms;
    return id == 0 ? 1 : id;
}

int chan_durable_desc_decode(struct chan_durable_stream *d, const uint8_t *data, size_t size)
{
    memset(d, 0, sizeof(*d));
    if (size < 2u + TRONE_KEY_LEN + 8u || data[0] > 2) {
        return TRONE_ECORRUPT;
    }
    size_t tag_size = data[1 + TRONE_KEY_LEN + 8];
    if (tag_size == 0 || tag_size > TRONE_TAG_MAX || size != 2u + TRONE_KEY_LEN + 8u + tag_size) {
        return TRONE_ECORRUPT;
    }
    d->total = data[0] == 1;
    d->pending = data[0] == 2;
    memcpy(d->publisher, data + 1, TRONE_KEY_LEN);
    d->epoch = buf_load_u64(data + 1 + TRONE_KEY_LEN);
    memcpy(d->tag, data + 2 + TRONE_KEY_LEN + 8, tag_size);
    d->tag[tag_size] = '\0';
    return 0;
}
