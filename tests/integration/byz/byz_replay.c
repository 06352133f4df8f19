/* byz_replay.c: TRONE_BYZ=replay (TEST-ONLY). The replica behaves honestly but also keeps a
 * sample of old messages (its own, its peers' and clients' requests it received, its replies)
 * and resends some of them later, in its own sessions, to random replicas (replies go back to
 * their client). Replayed peer messages name another replica than the session's. */
#include <stdlib.h>
#include <string.h>

#include "byz.h"
#include "core/assert.h"
#include "smr/smr_msg.h"

#define BYZ_REPLAY_STORE_ONE_IN 6u /* keeps about one message in six */
#define BYZ_REPLAY_SEND_ONE_IN 4u  /* replays in about one step in four */
#define BYZ_REPLAY_BURST_MAX 3u    /* at most this many old messages per step */

void byz__replay_observe(struct byz *b, enum smr_dest dest, const uint8_t *client,
                         const uint8_t *data, size_t size)
{
    if (size == 0 || size > TRONE_NOISE_MESSAGE_MAX || byz__below(b, BYZ_REPLAY_STORE_ONE_IN)) {
        return;
    }
    uint32_t slot =
        b->replay_count < BYZ_REPLAY_MAX ? b->replay_count++ : byz__below(b, BYZ_REPLAY_MAX);
    struct byz_replay_entry *r = &b->replay[slot];
    uint8_t *copy = realloc(r->data, size);
    if (copy == NULL) {
        return; /* keeps the older entry */
    }
    memcpy(copy, data, size);
    r->data = copy;
    r->size = size;
    r->dest = dest == SMR_DEST_CLIENT ? SMR_DEST_CLIENT : SMR_DEST_REPLICA;
    memset(r->client, 0, sizeof(r->client));
    if (dest == SMR_DEST_CLIENT) {
        TRONE_ASSERT(client != NULL);
        memcpy(r->client, client, TRONE_KEY_LEN);
    }
}

void byz__replay_extra(struct byz *b)
{
    if (b->replay_count == 0 || byz__below(b, BYZ_REPLAY_SEND_ONE_IN) != 0) {
        return;
    }
    uint32_t burst = 1 + byz__below(b, BYZ_REPLAY_BURST_MAX);
    for (uint32_t i = 0; i < burst; i++) {
        const struct byz_replay_entry *r = &b->replay[byz__below(b, b->replay_count)];
        if (r->data == NULL) {
            continue;
        }
        if (r->dest == SMR_DEST_CLIENT) {
            byz__log(b, "replay-reply", UINT32_MAX, r->data, r->size);
            byz__emit(b, SMR_DEST_CLIENT, 0, r->client, r->data, r->size);
            continue;
        }
        uint32_t to = byz__other(b);
        byz__log(b, "replay", to, r->data, r->size);
        byz__emit(b, SMR_DEST_REPLICA, to, NULL, r->data, r->size);
    }
}
