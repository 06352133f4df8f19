/* limits.h: every size and bound of TRONE in one place (STYLE.md rule 10).
 * _Static_assert checks the relations between them. */
#ifndef TRONE_LIMITS_H
#define TRONE_LIMITS_H

#include <stdint.h>

/* Largest application message (after reassembly of transport frames). */
#define TRONE_MESSAGE_MAX (8u * 1024 * 1024)
/* Largest Noise transport message (Noise spec section 3). */
#define TRONE_NOISE_MESSAGE_MAX 65535u
/* Replicas: f_max = 4 Byzantine faults. */
#define TRONE_F_MAX 4u
#define TRONE_REPLICAS_MAX (3u * TRONE_F_MAX + 1u)
/* One control operation (a channel with its authorisation lists) and one request. */
#define TRONE_OP_MAX (24u * 1024)
#define TRONE_RESULT_MAX (256u * 1024)
/* Requests per agreement batch. */
#define TRONE_BATCH_MAX 256u
/* Control table. */
#define TRONE_CHANNELS_MAX 4096u
#define TRONE_CLIENTS_MAX 4096u
#define TRONE_TAG_MAX 128u
#define TRONE_NAME_MAX 64u
#define TRONE_CHANNEL_MEMBERS_MAX 256u
/* Keys. */
#define TRONE_KEY_LEN 32u
#define TRONE_SECRET_KEY_LEN 64u
#define TRONE_SIG_LEN 64u
#define TRONE_HASH_LEN 32u
/* Per-connection output queue (bytes) before the peer is treated as too slow. */
#define TRONE_CONN_OUTPUT_SOFT (16u * 1024 * 1024)
#define TRONE_CONN_OUTPUT_HARD (64u * 1024 * 1024)

_Static_assert(TRONE_REPLICAS_MAX <= 64, "replica sets are 64-bit masks");
_Static_assert(TRONE_BATCH_MAX * (TRONE_OP_MAX + 256u) <= TRONE_MESSAGE_MAX,
               "a full batch of largest requests fits one message");
_Static_assert(TRONE_RESULT_MAX + 1024u <= TRONE_MESSAGE_MAX, "a reply fits one message");

#endif
