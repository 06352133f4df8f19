/* cln_pub_qop.c: the publisher's side of HA and PKE (docs/QOP.md): channel keys derived from
 * the secret seed, wrapped for the channel's subscribers; per event the envelope (key id, the
 * block when due, the body, encrypted under PKE) and its auth (MAC under HA, the publisher's
 * signature under PKE and on every event that carries a block). No I/O, no clock, no
 * randomness, no allocation here (the channel's cln_pub_qop is allocated at channel open). */
#include "client/cln_pub_qop.h"

#include <sodium.h>
#include <string.h>

#include "core/assert.h"
#include "core/buf.h"

static bool cln_pub_qop_method(const struct brk_class *cls)
{
    return cls->method == BRK_METHOD_HA || cls->method == BRK_METHOD_PKE;
}

/* A secret derived from the seed for (label, channel tag, generation, index). */
static void cln_pub_qop_derive(uint8_t out[32], const uint8_t seed[32], const char *label,
                               const char *tag, uint64_t generation, uint32_t index)
{
    uint8_t numbers[12];
    buf_store_u64(numbers, generation);
    buf_store_u32(numbers + 8, index);
    crypto_generichash_state st;
    crypto_generichash_init(&st, seed, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&st, (const uint8_t *)tag, strlen(tag) + 1);
    crypto_generichash_update(&st, numbers, sizeof(numbers));
    crypto_generichash_final(&st, out, 32);
}

/* Sorts keys (insertion sort, count <= CHAN_QOP_RECIPIENTS_MAX) dropping duplicates; returns
 * the number kept. */
static uint32_t cln_pub_qop_sort(uint8_t (*sorted)[TRONE_KEY_LEN],
                                 const uint8_t (*keys)[TRONE_KEY_LEN], uint32_t count)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t j = kept;
        bool duplicate = false;
        for (uint32_t k = 0; k < kept; k++) {
            duplicate = duplicate || memcmp(sorted[k], keys[i], TRONE_KEY_LEN) == 0;
        }
        if (duplicate) {
            continue;
        }
        for (; j > 0 && memcmp(sorted[j - 1], keys[i], TRONE_KEY_LEN) > 0; j--) {
            memcpy(sorted[j], sorted[j - 1], TRONE_KEY_LEN);
        }
        memcpy(sorted[j], keys[i], TRONE_KEY_LEN);
        kept++;
    }
    return kept;
}

int cln_pub_channel_recipients(struct cln_pub *p, uint32_t channel_idx,
                               const uint8_t (*keys)[TRONE_KEY_LEN], uint32_t count,
                               uint64_t now_us)
{
    TRONE_ASSERT(channel_idx < p->channel_count);
    struct cln_pub_channel *ch = &p->channels[channel_idx];
    if (!cln_pub_qop_method(&ch->cls) || ch->qop == NULL || (count > 0 && keys == NULL)) {
        return TRONE_EINVAL;
    }
    if (count > TRONE_CHANNEL_MEMBERS_MAX * 2u) {
        return TRONE_EFULL;
    }
    uint8_t sorted[TRONE_CHANNEL_MEMBERS_MAX * 2u][TRONE_KEY_LEN];
    uint32_t kept = cln_pub_qop_sort(sorted, keys, count);
    if (kept > CHAN_QOP_RECIPIENTS_MAX) {
        return TRONE_EFULL;
    }
    uint8_t digest[TRONE_HASH_LEN];
    crypto_generichash(digest, sizeof(digest), &sorted[0][0], (size_t)kept * TRONE_KEY_LEN, NULL,
                       0);
    struct cln_pub_qop *q = ch->qop;
    if (q->keyed && q->recipient_count == kept &&
        sodium_memcmp(digest, q->recipients_digest, sizeof(digest)) == 0) {
        return 0;
    }
    /* Build the new generation aside so that an invalid key leaves the channel unchanged. */
    uint64_t generation = q->generation + 1;
    uint8_t key[CHAN_QOP_KEY_SIZE];
    uint8_t block[CHAN_QOP_BLOCK_MAX];
    cln_pub_qop_derive(key, p->cfg.seed, "trone-qop-key", ch->tag, generation, 0);
    block[0] = (uint8_t)kept;
    int rc = 0;
    for (uint32_t i = 0; i < kept && rc == 0; i++) {
        uint8_t eph_seed[32];
        cln_pub_qop_derive(eph_seed, p->cfg.seed, "trone-qop-eph", ch->tag, generation, i);
        rc = chan_qop_wrap(block + 1 + (size_t)i * CHAN_QOP_ENTRY_SIZE, key, sorted[i], eph_seed);
        sodium_memzero(eph_seed, sizeof(eph_seed));
    }
    if (rc != 0) {
        sodium_memzero(key, sizeof(key));
        return TRONE_EINVAL;
    }
    q->generation = generation;
    memcpy(q->key, key, sizeof(key));
    chan_qop_key_id(q->key_id, key);
    memcpy(q->recipients_digest, digest, sizeof(digest));
    q->recipient_count = kept;
    q->block_size = kept > 0 ? 1u + kept * CHAN_QOP_ENTRY_SIZE : 0;
    memcpy(q->block, block, q->block_size);
    q->block_due = kept > 0;
    q->since_block = 0;
    q->block_us = now_us;
    q->keyed = true;
    sodium_memzero(key, sizeof(key));
    return 1;
}

int cln_pub__qop_plan(const struct cln_pub_channel *ch, uint32_t payload_size, uint64_t now_us,
                      struct cln_pub_qop_plan *plan)
{
    const struct cln_pub_qop *q = ch->qop;
    TRONE_ASSERT(q != NULL);
    memset(plan, 0, sizeof(*plan));
    if (!q->keyed) {
        return TRONE_EAUTH;
    }
    if (payload_size > CHAN_QOP_BODY_MAX) {
        return TRONE_ETOOBIG;
    }
    bool pke = ch->cls.method == BRK_METHOD_PKE;
    plan->with_block =
        q->block_size > 0 && (q->block_due || q->since_block + 1 >= CLN_PUB_QOP_REPEAT_EVENTS ||
                              now_us - q->block_us >= CLN_PUB_QOP_REPEAT_US);
    plan->auth_size = (uint16_t)(pke || plan->with_block ? CHAN_AUTH_PKS_SIZE : CHAN_QOP_MAC_SIZE);
    plan->wire_size = CHAN_QOP_HEADER_SIZE + (plan->with_block ? 2u + q->block_size : 0u) +
                      payload_size + (pke ? CHAN_QOP_TAG_SIZE : 0u);
    return 0;
}

void cln_pub__qop_write(struct cln_pub *p, struct cln_pub_channel *ch,
                        const struct cln_pub_qop_plan *plan, uint8_t *bytes, const uint8_t *payload,
                        uint32_t payload_size, uint64_t seq, uint64_t time_us, uint64_t now_us)
{
    struct cln_pub_qop *q = ch->qop;
    TRONE_ASSERT(q != NULL && q->keyed);
    uint8_t *wire = bytes + plan->auth_size;
    size_t used = 0;
    wire[used++] = plan->with_block ? CHAN_QOP_FLAG_KEYS : 0;
    memcpy(wire + used, q->key_id, CHAN_QOP_KEY_ID_SIZE);
    used += CHAN_QOP_KEY_ID_SIZE;
    if (plan->with_block) {
        wire[used] = (uint8_t)q->block_size;
        wire[used + 1] = (uint8_t)(q->block_size >> 8);
        memcpy(wire + used + 2, q->block, q->block_size);
        used += 2u + q->block_size;
    }
    if (ch->cls.method == BRK_METHOD_PKE) {
        chan_qop_seal(wire + used, payload, payload_size, q->key, ch->tag, p->cfg.public_key,
                      p->cfg.epoch, seq, time_us, wire, used);
        used += payload_size + CHAN_QOP_TAG_SIZE;
    } else if (payload_size > 0) {
        memcpy(wire + used, payload, payload_size);
        used += payload_size;
    }
    TRONE_ASSERT(used == plan->wire_size);
    struct chan_event e = {.epoch = p->cfg.epoch,
                           .seq = seq,
                           .time_us = time_us,
                           .payload = wire,
                           .payload_size = plan->wire_size};
    if (plan->auth_size == CHAN_AUTH_PKS_SIZE) {
        chan_auth_sign(bytes, p->cfg.secret_key, ch->tag, &e);
    } else {
        chan_qop_mac(bytes, q->key, ch->tag, p->cfg.public_key, &e);
    }
    if (plan->with_block) {
        q->block_due = false;
        q->since_block = 0;
        q->block_us = now_us;
    } else {
        q->since_block++;
    }
}
