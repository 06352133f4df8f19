/* smr_sig.c: the byte strings each protocol signature covers, and Ed25519 over them.
 * Each starts with a distinct context label so signatures never cross message types. */
#include "smr/smr_sig.h"

#include "core/assert.h"

#include <sodium.h>
#include <string.h>

enum { SIG_INPUT_MAX = 128 };

/* Builds label || fields into a fixed stack buffer; the fields are fixed-size. */
struct sig_input {
    uint8_t bytes[SIG_INPUT_MAX];
    size_t used;
};

static void sig_input_add(struct sig_input *in, const void *data, size_t size)
{
    TRONE_ASSERT(size <= SIG_INPUT_MAX - in->used);
    memcpy(in->bytes + in->used, data, size);
    in->used += size;
}

static void sig_input_u64(struct sig_input *in, uint64_t v)
{
    uint8_t bytes[8];
    buf_store_u64(bytes, v);
    sig_input_add(in, bytes, 8);
}

static void sig_input_label(struct sig_input *in, const char *label)
{
    in->used = 0;
    sig_input_add(in, label, strlen(label) + 1);
}

static void sign(const struct sig_input *in, const uint8_t secret[TRONE_SECRET_KEY_LEN],
                 uint8_t sig[TRONE_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, in->bytes, in->used, secret);
}

static bool verify(const struct sig_input *in, const uint8_t sig[TRONE_SIG_LEN],
                   const uint8_t key[TRONE_KEY_LEN])
{
    return crypto_sign_verify_detached(sig, in->bytes, in->used, key) == 0;
}

/* A request's signature covers the hash of its op, so the input stays fixed-size. */
static void request_input(struct sig_input *in, const struct smr_request *m)
{
    uint8_t op_hash[TRONE_HASH_LEN];
    crypto_generichash(op_hash, sizeof(op_hash), m->op, m->op_size, NULL, 0);
    sig_input_label(in, "trone-request");
    sig_input_add(in, m->client, TRONE_KEY_LEN);
    sig_input_u64(in, m->request_id);
    sig_input_u64(in, m->op_size);
    sig_input_add(in, op_hash, sizeof(op_hash));
}

void smr_sign_request(struct smr_request *m, const uint8_t secret[TRONE_SECRET_KEY_LEN])
{
    struct sig_input in;
    request_input(&in, m);
    sign(&in, secret, m->sig);
}

bool smr_verify_request(const struct smr_request *m)
{
    struct sig_input in;
    request_input(&in, m);
    return verify(&in, m->sig, m->client);
}

static void pre_prepare_input(struct sig_input *in, const struct smr_pre_prepare *m)
{
    sig_input_label(in, "trone-pre-prepare");
    sig_input_u64(in, m->view);
    sig_input_u64(in, m->seq);
    sig_input_add(in, m->digest, TRONE_HASH_LEN);
}

void smr_sign_pre_prepare(struct smr_pre_prepare *m, const uint8_t secret[TRONE_SECRET_KEY_LEN])
{
    struct sig_input in;
    pre_prepare_input(&in, m);
    sign(&in, secret, m->sig);
}

bool smr_verify_pre_prepare(const struct smr_pre_prepare *m, const uint8_t key[TRONE_KEY_LEN])
{
    struct sig_input in;
    pre_prepare_input(&in, m);
    return verify(&in, m->sig, key);
}

static void prepare_input(struct sig_input *in, const struct smr_vote *m)
{
    sig_input_label(in, "trone-prepare");
    sig_input_u64(in, m->view);
    sig_input_u64(in, m->seq);
    sig_input_add(in, m->digest, TRONE_HASH_LEN);
    sig_input_u64(in, m->replica);
}

void smr_sign_prepare(struct smr_vote *m, const uint8_t secret[TRONE_SECRET_KEY_LEN])
{
    struct sig_input in;
    prepare_input(&in, m);
    sign(&in, secret, m->sig);
}

bool smr_verify_prepare(const struct smr_vote *m, const uint8_t key[TRONE_KEY_LEN])
{
    struct sig_input in;
    prepare_input(&in, m);
    return verify(&in, m->sig, key);
}

static void checkpoint_input(struct sig_input *in, const struct smr_checkpoint *m)
{
    sig_input_label(in, "trone-checkpoint");
    sig_input_u64(in, m->seq);
    sig_input_add(in, m->digest, TRONE_HASH_LEN);
    sig_input_u64(in, m->replica);
}

void smr_sign_checkpoint(struct smr_checkpoint *m, const uint8_t secret[TRONE_SECRET_KEY_LEN])
{
    struct sig_input in;
    checkpoint_input(&in, m);
    sign(&in, secret, m->sig);
}

bool smr_verify_checkpoint(const struct smr_checkpoint *m, const uint8_t key[TRONE_KEY_LEN])
{
    struct sig_input in;
    checkpoint_input(&in, m);
    return verify(&in, m->sig, key);
}

/* Large bodies are hashed first so the signed input stays fixed-size. */
static void body_input(struct sig_input *in, const char *label, const uint8_t *body, size_t size)
{
    uint8_t hash[TRONE_HASH_LEN];
    crypto_generichash(hash, sizeof(hash), body, size, NULL, 0);
    sig_input_label(in, label);
    sig_input_u64(in, size);
    sig_input_add(in, hash, sizeof(hash));
}

void smr_sign_body(const char *label, const uint8_t *body, size_t size,
                   const uint8_t secret[TRONE_SECRET_KEY_LEN], uint8_t sig[TRONE_SIG_LEN])
{
    struct sig_input in;
    body_input(&in, label, body, size);
    sign(&in, secret, sig);
}

bool smr_verify_body(const char *label, const uint8_t *body, size_t size,
                     const uint8_t sig[TRONE_SIG_LEN], const uint8_t key[TRONE_KEY_LEN])
{
    struct sig_input in;
    body_input(&in, label, body, size);
    return verify(&in, sig, key);
}
