/* fuzz_noise.c: libFuzzer target for noise_handshake_read (src/core/noise.c) on arbitrary
 * handshake messages. Byte 0 picks the pattern (KK or IK), the side that reads (the responder
 * reading message 1 or the initiator reading message 2) and whether the rest of the input
 * replaces a genuine message or is XORed into one, so both parsing and the crypto checks of
 * an almost-valid message are reached. Nothing may crash; a message that is accepted must
 * leave a consistent state. */
#include "../src/core/noise.c"

#include <stdlib.h>

static void fuzz_noise_keys(uint8_t k[4][NOISE_KEY_LEN], uint8_t p[2][NOISE_KEY_LEN])
{
    for (unsigned key = 0; key < 4; key++) {
        for (unsigned n = 0; n < NOISE_KEY_LEN; n++) {
            k[key][n] = (uint8_t)(key * 32 + n + 1);
        }
    }
    if (crypto_scalarmult_base(p[0], k[0]) != 0 || crypto_scalarmult_base(p[1], k[1]) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t message[NOISE_MESSAGE_MAX];
    static uint8_t payload[NOISE_MESSAGE_MAX];
    uint8_t k[4][NOISE_KEY_LEN]; /* s_i, s_r, e_i, e_r */
    uint8_t p[2][NOISE_KEY_LEN]; /* public s_i, s_r */
    struct noise_handshake i, r;
    if (size < 1 || size > NOISE_MESSAGE_MAX + 1) {
        return 0;
    }
    fuzz_noise_keys(k, p);
    enum noise_pattern pattern = (data[0] & 1) ? NOISE_PATTERN_IK : NOISE_PATTERN_KK;
    bool initiator_reads = (data[0] & 2) != 0;
    bool mutate = (data[0] & 4) != 0;
    const uint8_t prologue[] = "fuzz";
    if (noise_handshake_init(&i, pattern, true, prologue, 4, k[0], p[1], k[2]) != 0 ||
        noise_handshake_init(&r, pattern, false, prologue, 4, k[1],
                             pattern == NOISE_PATTERN_KK ? p[0] : NULL, k[3]) != 0) {
        abort();
    }
    size_t message_size = 0, payload_size = 0;
    if (noise_handshake_write(&i, NULL, 0, message, sizeof(message), &message_size) != 0) {
        abort();
    }
    struct noise_handshake *reader = &r;
    if (initiator_reads) {
        if (noise_handshake_read(&r, message, message_size, payload, sizeof(payload),
                                 &payload_size) != 0 ||
            noise_handshake_write(&r, NULL, 0, message, sizeof(message), &message_size) != 0) {
            abort();
        }
        reader = &i;
    }
    if (mutate) {
        for (size_t n = 1; n < size && n - 1 < message_size; n++) {
            message[n - 1] ^= data[n];
        }
    } else {
        message_size = size - 1;
        memcpy(message, data + 1, message_size);
    }
    int rc = noise_handshake_read(reader, message, message_size, payload, sizeof(payload),
                                  &payload_size);
    if (rc == 0 && initiator_reads != noise_handshake_done(reader)) {
        abort();
    }
    if (rc != 0 && !reader->failed) {
        abort();
    }
    noise_handshake_close(&i);
    noise_handshake_close(&r);
    return 0;
}
