/* fuzz_smr_restore.c: arbitrary persisted records (as read back from a replica's store) into
 * smr_restore and smr_restore_finish of a fresh core (replica 0 of a 4-replica BFT cluster
 * with the real control table), then one tick. The store's checksums catch accidental damage;
 * the record decoders must still refuse any bytes with an error, never crash or leak.
 * Input format: records of u8 kind | u8 seq | u16 length | bytes. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_table.h"
#include "core/buf.h"
#include "smr/smr.h"

/* The decoders under test, compiled here so the fuzzer sees their coverage. */
#include "../src/smr/smr_checkpoint.c"
#include "../src/smr/smr_persist.c"

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
    int rc = s == NULL ? TRONE_ENOMEM : 0;
    size_t at = 0;
    for (int records = 0; rc == 0 && records < 64 && size - at >= 4; records++) {
        uint8_t kind = data[at];
        uint64_t seq = data[at + 1];
        size_t length = (size_t)data[at + 2] | (size_t)data[at + 3] << 8;
        at += 4;
        if (length > size - at) {
            length = size - at;
        }
        rc = smr_restore(s, kind, seq, data + at, length);
        at += length;
    }
    const struct smr_output *out = NULL;
    if (rc == 0) {
        rc = smr_restore_finish(s, 1, &out);
    }
    if (rc == 0) {
        struct smr_input in = {.now_ms = 1000, .kind = SMR_IN_TICK};
        (void)smr_step(s, &in, &out);
    }
    smr_destroy(s);
    brk_table_close(table);
    free(table);
    return 0;
}
