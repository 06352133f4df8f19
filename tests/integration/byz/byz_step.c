/* byz_step.c: smr_step of the TEST-ONLY trone-byz binary. It runs the honest core (smr.c built
 * with -Dsmr_step=smr_step_honest) and passes its output through the behaviour named by
 * TRONE_BYZ (equivocate|corrupt|mute|replay), logged once at the first step; with an event-path
 * mode (ev-*, byz_events.c) it passes everything. The production trone never contains this
 * file. One core per process, so the filter state is one static. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byz.h"
#include "core/assert.h"
#include "core/log.h"
#include "smr/smr_internal.h"
#include "smr/smr_msg.h"

#define BYZ_COMP "byz"

/* The honest core's entry point: smr.c compiled with smr_step renamed. */
TRONE_MUST_CHECK int smr_step_honest(struct smr *s, const struct smr_input *in,
                                     const struct smr_output **out);

/* The filter's state: trone-byz runs exactly one core, and smr_step's signature (which
 * rt_replica.c calls) has no room for a context pointer. */
static struct byz byz_state;

static const char *const byz_mode_names[] = {"honest", "equivocate", "corrupt", "mute", "replay"};

size_t byz__begin(struct byz *b) { return b->data.used; }

void byz__done(struct byz *b, size_t start, enum smr_dest dest, uint32_t replica,
               const uint8_t *client)
{
    TRONE_ASSERT(start <= b->data.used || b->data.error != 0);
    if (b->data.error != 0 || b->envelope_count >= BYZ_ENVELOPES_MAX) {
        b->data.used = start;
        b->data.error = 0;
        return;
    }
    struct smr_envelope *e = &b->envelopes[b->envelope_count];
    memset(e, 0, sizeof(*e));
    e->dest = dest;
    e->replica = replica;
    if (client != NULL) {
        memcpy(e->client, client, TRONE_KEY_LEN);
    }
    e->size = b->data.used - start;
    b->offsets[b->envelope_count] = start;
    b->envelope_count++;
}

void byz__emit(struct byz *b, enum smr_dest dest, uint32_t replica, const uint8_t *client,
               const uint8_t *data, size_t size)
{
    size_t start = byz__begin(b);
    buf_put_bytes(&b->data, data, size);
    byz__done(b, start, dest, replica, client);
}

void byz__pass(struct byz *b, const struct smr_envelope *e)
{
    byz__emit(b, e->dest, e->replica, e->dest == SMR_DEST_CLIENT ? e->client : NULL, e->data,
              e->size);
}

/* splitmix64: a test binary needs no cryptographic randomness, and a logged seed
 * (TRONE_BYZ_SEED) lets a run's choices be repeated. */
uint64_t byz__rand(struct byz *b)
{
    uint64_t z = (b->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint32_t byz__below(struct byz *b, uint32_t bound)
{
    TRONE_ASSERT(bound > 0);
    return (uint32_t)(byz__rand(b) % bound);
}

uint32_t byz__other(struct byz *b)
{
    TRONE_ASSERT(b->replica_count > 1);
    return (b->self + 1 + byz__below(b, b->replica_count - 1)) % b->replica_count;
}

const uint8_t *byz__secret_key(const struct byz *b) { return b->core->config.secret_key; }

void byz__log(struct byz *b, const char *what, uint32_t to, const uint8_t *data, size_t size)
{
    b->actions++;
    if (b->actions > BYZ_LOG_FIRST && b->actions % 100 != 0) {
        return;
    }
    log_info(BYZ_COMP,
             "msg=\"byzantine action\" mode=%s action=%s replica=%u to=%u type=%d "
             "size=%zu actions=%llu",
             byz_mode_names[b->mode], what, b->self, to, smr_msg_type(data, size), size,
             (unsigned long long)b->actions);
}

static enum byz_mode byz_mode_parse(const char *text)
{
    if (text == NULL || text[0] == '\0' ||
        strncmp(text, BYZ_EV_PREFIX, strlen(BYZ_EV_PREFIX)) == 0) {
        return BYZ_HONEST; /* event-path modes (byz_events.c) leave agreement honest */
    }
    for (size_t i = 1; i < sizeof(byz_mode_names) / sizeof(byz_mode_names[0]); i++) {
        if (strcmp(text, byz_mode_names[i]) == 0) {
            return (enum byz_mode)i;
        }
    }
    log_write(LOG_FATAL, BYZ_COMP,
              "msg=\"unknown TRONE_BYZ mode\" value=%s "
              "want=equivocate|corrupt|mute|replay|ev-alter|ev-forge|ev-replay|ev-reorder|"
              "ev-drop|ev-ack-lie",
              text);
    exit(2);
}

/* First step: reads the mode and seed from the environment and logs them. */
static void byz_start(struct byz *b, struct smr *s)
{
    b->mode = byz_mode_parse(getenv("TRONE_BYZ"));
    const char *seed = getenv("TRONE_BYZ_SEED");
    if (seed != NULL && seed[0] != '\0') {
        b->rng = strtoull(seed, NULL, 10);
    } else {
        randombytes_buf(&b->rng, sizeof(b->rng));
    }
    b->core = s;
    b->self = s->config.self;
    b->replica_count = s->config.replica_count;
    buf_init(&b->data, 0);
    buf_init(&b->scratch, 0);
    b->started = true;
    log_write(b->mode == BYZ_HONEST ? LOG_WARN : LOG_INFO, BYZ_COMP,
              "msg=\"TEST-ONLY byzantine replica\" mode=%s replica=%u seed=%llu",
              byz_mode_names[b->mode], b->self, (unsigned long long)b->rng);
}

static void byz_filter(struct byz *b, const struct smr_envelope *e)
{
    switch (b->mode) {
    case BYZ_MUTE:
        return;
    case BYZ_EQUIVOCATE:
        byz__equivocate(b, e);
        return;
    case BYZ_CORRUPT:
        byz__corrupt(b, e);
        return;
    case BYZ_REPLAY:
        byz__pass(b, e);
        byz__replay_observe(b, e->dest, e->client, e->data, e->size);
        return;
    case BYZ_HONEST:
    default:
        byz__pass(b, e);
        return;
    }
}

int smr_step(struct smr *s, const struct smr_input *in, const struct smr_output **out)
{
    struct byz *b = &byz_state;
    if (!b->started) {
        byz_start(b, s);
    }
    TRONE_ASSERT(b->core == s);
    if (b->mode == BYZ_REPLAY && in->kind != SMR_IN_TICK && in->data != NULL) {
        /* Peers' messages and clients' requests are worth replaying too. */
        byz__replay_observe(b, SMR_DEST_REPLICA, NULL, in->data, in->size);
    }
    const struct smr_output *honest = NULL;
    int rc = smr_step_honest(s, in, &honest);
    if (rc != 0) {
        return rc;
    }
    b->output = *honest;
    b->envelope_count = 0;
    buf_reset(&b->data);
    for (size_t i = 0; i < honest->envelope_count; i++) {
        byz_filter(b, &honest->envelopes[i]);
    }
    if (b->mode == BYZ_REPLAY) {
        byz__replay_extra(b);
    }
    for (size_t i = 0; i < b->envelope_count; i++) {
        b->envelopes[i].data = b->data.data + b->offsets[i];
    }
    b->output.envelope_count = b->envelope_count;
    b->output.envelopes = b->envelopes;
    *out = &b->output;
    return 0;
}
