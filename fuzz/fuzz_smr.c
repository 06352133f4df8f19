/* fuzz_smr.c: arbitrary bytes from peers and clients into a live replica core (replica 0 of a
 * 4-replica BFT cluster, with the real control table) and into every decoder of the
 * replication protocol. Nothing may crash, assert or leak. Input format: records of
 * u8 sender (0-2: replica 1-3, 3: client, 4: tick) | u16 length | bytes. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_table.h"
#include "smr/smr.h"
#include "smr/smr_msg.h"
#include "smr/smr_view_msg.h"

static void decode_all(const uint8_t *data, size_t size)
{
    struct smr_request request;
    struct smr_reply reply;
    struct smr_pre_prepare pp;
    struct smr_vote vote;
    struct smr_checkpoint checkpoint;
    struct smr_status status;
    struct smr_decided decided;
    struct smr_state_request state_request;
    struct smr_vc vc;
    struct smr_nv nv;
    (void)smr_msg_decode_request(data, size, &request);
    (void)smr_msg_decode_reply(data, size, &reply);
    (void)smr_msg_decode_pre_prepare(data, size, &pp);
    (void)smr_msg_decode_vote(data, size, &vote);
    (void)smr_msg_decode_checkpoint(data, size, &checkpoint);
    (void)smr_msg_decode_status(data, size, &status);
    (void)smr_msg_decode_decided(data, size, &decided);
    (void)smr_msg_decode_state_request(data, size, &state_request);
    (void)smr_batch_count(data, size);
    if (smr_vc_decode(data, size, 16, &vc) == 0) {
        smr_vc_free(&vc);
    }
    (void)smr_nv_decode(data, size, &nv);
}

static void config_make(struct smr_config *c, uint8_t admin[TRONE_KEY_LEN])
{
    smr_config_defaults(c);
    c->replica_count = 4;
    c->fault_count = 1;
    c->checkpoint_interval = 4;
    c->window = 8;
    for (uint32_t r = 0; r < 4; r++) {
        uint8_t seed[crypto_sign_SEEDBYTES] = {(uint8_t)(r + 1)};
        uint8_t secret[TRONE_SECRET_KEY_LEN];
        crypto_sign_seed_keypair(c->replica_keys[r], secret, seed);
        if (r == 0) {
            memcpy(c->secret_key, secret, sizeof(secret));
        }
    }
    uint8_t seed[crypto_sign_SEEDBYTES] = {99};
    uint8_t secret[TRONE_SECRET_KEY_LEN];
    crypto_sign_seed_keypair(admin, secret, seed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0) {
        return 0;
    }
    decode_all(data, size);
    struct smr_config config;
    uint8_t admin[TRONE_KEY_LEN];
    config_make(&config, admin);
    struct brk_table *table = calloc(1, sizeof(*table));
    if (table == NULL || brk_table_init(table, admin) != 0) {
        free(table);
        return 0;
    }
    struct smr_app app;
    brk_table_app(table, &app);
    struct smr *s = smr_create(&config, &app);
    uint64_t now = 1;
    size_t at = 0;
    for (int records = 0; s != NULL && records < 64 && size - at >= 3; records++) {
        uint8_t sender = data[at];
        size_t length = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;
        at += 3;
        length = length < size - at ? length : size - at;
        struct smr_input in = {.now_ms = now, .data = data + at, .size = length};
        if (sender % 5 < 3) {
            in.kind = SMR_IN_REPLICA;
            in.from = sender % 5 + 1;
        } else if (sender % 5 == 3) {
            in.kind = SMR_IN_CLIENT;
            in.client = admin;
        } else {
            in.kind = SMR_IN_TICK;
            now += 1000;
            in.now_ms = now;
        }
        const struct smr_output *out;
        (void)smr_step(s, &in, &out);
        at += length;
    }
    smr_destroy(s);
    brk_table_close(table);
    free(table);
    return 0;
}
