/* fuzz_chan_qop.c: arbitrary bytes into the HA/PKE decoders (chan_qop.c): the envelope and
 * key-block decoders, the unwrap of a block with a fixed subscriber key, the MAC check and
 * the PKE decryption. Properties: nothing crashes or reads out of bounds; a decoded envelope
 * re-encodes to the same bytes; an unwrap only succeeds with a key whose id matches. */
#include "../src/chan/chan_qop.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static uint8_t pk[TRONE_KEY_LEN];
    static uint8_t sk[TRONE_SECRET_KEY_LEN];
    if (!ready) {
        uint8_t seed[32];
        memset(seed, 9, sizeof(seed));
        if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, seed) != 0) {
            abort();
        }
        ready = true;
    }
    struct chan_qop_envelope env;
    if (chan_qop_envelope_read(data, size, &env) != 0) {
        return 0;
    }
    struct buf out;
    buf_init(&out, 0);
    buf_put_u8(&out, env.flags);
    buf_put_bytes(&out, env.key_id, sizeof(env.key_id));
    if (env.block != NULL) {
        buf_put_u16(&out, env.block_size);
        buf_put_bytes(&out, env.block, env.block_size);
    }
    buf_put_bytes(&out, env.body, env.body_size);
    if (out.error != 0 || out.used != size || memcmp(out.data, data, size) != 0 ||
        env.header_size + env.body_size != size) {
        abort();
    }
    buf_close(&out);
    uint8_t key[CHAN_QOP_KEY_SIZE];
    if (env.block != NULL && chan_qop_unwrap(key, env.block, env.block_size, sk, env.key_id) == 0) {
        uint8_t id[CHAN_QOP_KEY_ID_SIZE];
        chan_qop_key_id(id, key);
        if (memcmp(id, env.key_id, sizeof(id)) != 0) {
            abort();
        }
    }
    memset(key, 0x42, sizeof(key));
    struct chan_event e = {.epoch = 1,
                           .seq = 2,
                           .time_us = 3,
                           .auth = data,
                           .auth_size = size < CHAN_QOP_MAC_SIZE ? (uint16_t)size : 16,
                           .payload = data,
                           .payload_size = (uint32_t)size};
    (void)chan_qop_mac_verify(key, "fuzz", pk, &e);
    uint8_t *plain = malloc(env.body_size + 1);
    if (plain == NULL) {
        abort();
    }
    (void)chan_qop_open(plain, &env, key, "fuzz", pk, 1, 2, 3, data);
    free(plain);
    return 0;
}
