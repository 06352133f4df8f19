/* brk_op.h: control operations of the broker (the ops that the replication core orders and
 * brk_table executes) and their results: structs, wire codec, validation of tags and names,
 * builders for the CLI, and human/JSON formatting of channel descriptions. No I/O.
 *
 * Op wire format (little-endian, STYLE.md rule 12), at most TRONE_OP_MAX bytes:
 *   u8 version (BRK_OP_VERSION) | u8 kind | fields of the kind
 *   REGISTER        str name | key[32]
 *   CHANNEL_CREATE  str tag | class[5] | list publishers | list subscribers
 *   CHANNEL_ALTER   str tag | u8 has_class | [class[5]] | list publishers to add |
 *                   list publishers to remove | list subscribers to add |
 *                   list subscribers to remove
 *   CHANNEL_DELETE, SUBSCRIBE, UNSUBSCRIBE, CHANNEL_SHOW, CHANNEL_KEYS   str tag
 *   CHANNEL_LIST    str after (may be empty: list the channels whose tag sorts after it)
 *   ORDER           str tag | u64 epoch | u64 first_seq | u32 count | digest[32]
 *                   (a publisher asks for positions in a total-order channel for its events
 *                   epoch/first_seq..first_seq+count-1; digest = brk_order_digest of them;
 *                   1 <= count <= BRK_ORDER_COUNT_MAX, epoch >= 1, first_seq >= 1, no wrap)
 *   str = u16 length | bytes (no NUL); list = u16 count (<= TRONE_CHANNEL_MEMBERS_MAX) | str*
 *
 * Result wire format, at most TRONE_RESULT_MAX bytes:
 *   i32 status (0 or TRONE_E*) | str message (<= BRK_MESSAGE_MAX) | body
 *   body of CHANNEL_SHOW and CHANNEL_LIST (status 0):
 *   u32 count | channel* | u8 more (1 if CHANNEL_LIST stopped early: ask again after the last)
 *   channel = str tag | class[5] | list publishers | list subscribers | list subscribed
 *   body of ORDER (status 0): u64 first position (positions of a channel count from 1)
 *   body of CHANNEL_KEYS (status 0; the keys HA/PKE publishers need, docs/QOP.md):
 *   u8 publishers_any | u16 count | key[32]* (authorized publishers, the admin included) |
 *   u16 count | key[32]* (recipients: listed subscribers and current subscriptions)
 *   each key list strictly increasing (so without duplicates)
 *   Other ops and refused ops have an empty body. */
#ifndef TRONE_BRK_OP_H
#define TRONE_BRK_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/brk_class.h"
#include "core/buf.h"
#include "core/limits.h"
#include "trone/error.h"

#define BRK_OP_VERSION 1u
/* In a publisher or subscriber list, "*" authorizes every registered client. */
#define BRK_NAME_ANY "*"
/* The administrator's name: the table registers the admin key under it at init. */
#define BRK_NAME_ADMIN "admin"
/* Longest result message (bytes, without NUL). */
#define BRK_MESSAGE_MAX 200u

enum brk_op_kind {
    BRK_OP_REGISTER = 1,
    BRK_OP_CHANNEL_CREATE = 2,
    BRK_OP_CHANNEL_ALTER = 3,
    BRK_OP_CHANNEL_DELETE = 4,
    BRK_OP_SUBSCRIBE = 5,
    BRK_OP_UNSUBSCRIBE = 6,
    BRK_OP_CHANNEL_LIST = 7,
    BRK_OP_CHANNEL_SHOW = 8,
    BRK_OP_ORDER = 9,
    BRK_OP_CHANNEL_KEYS = 10,
};

/* Events one ORDER covers at most (one DELIVER's worth). */
#define BRK_ORDER_COUNT_MAX 4096u
/* Domain labels of the total-order hashes (brk_order_event_hash, brk_order_digest). */
#define BRK_ORDER_EVENT_LABEL "trone-total-event"
#define BRK_ORDER_DIGEST_LABEL "trone-total-range"

/* The per-event hash of a total-order event: BLAKE2b-256 over the label
 * BRK_ORDER_EVENT_LABEL (17 bytes, no NUL) followed by the event exactly as it is encoded on
 * the wire (chan_msg.h: u64 epoch | u64 seq | u64 publisher time | u16 auth length | auth |
 * u32 payload length | payload). event points at those bytes. Cannot fail. */
void brk_order_event_hash(uint8_t out[TRONE_HASH_LEN], const uint8_t *event, size_t event_size);
/* The digest of a range: BLAKE2b-256 over BRK_ORDER_DIGEST_LABEL (17 bytes) | u32 count |
 * the count per-event hashes in seq order. Cannot fail. */
void brk_order_digest(uint8_t out[TRONE_HASH_LEN], const uint8_t (*hashes)[TRONE_HASH_LEN],
                      uint32_t count);

/* A list of client names; each entry is a valid name or "*". Order is kept as given. */
struct brk_name_list {
    uint32_t count;
    char names[TRONE_CHANNEL_MEMBERS_MAX][TRONE_NAME_MAX + 1];
};

/* A decoded operation (about 66 KiB: allocate it on the heap or in a long-lived struct). */
struct brk_op {
    enum brk_op_kind kind;
    char tag[TRONE_TAG_MAX + 1];    /* every kind but REGISTER; CHANNEL_LIST: "after" */
    char name[TRONE_NAME_MAX + 1];  /* REGISTER */
    uint8_t key[TRONE_KEY_LEN];     /* REGISTER: the client's Ed25519 public key */
    bool has_class;                 /* ALTER: set cls; CREATE: always true */
    struct brk_class cls;           /* CREATE, ALTER */
    struct brk_name_list publishers;          /* CREATE; ALTER: publishers to add */
    struct brk_name_list subscribers;         /* CREATE; ALTER: subscribers to add */
    struct brk_name_list publishers_removed;  /* ALTER */
    struct brk_name_list subscribers_removed; /* ALTER */
    uint64_t epoch;                 /* ORDER */
    uint64_t first_seq;             /* ORDER */
    uint32_t count;                 /* ORDER */
    uint8_t digest[TRONE_HASH_LEN]; /* ORDER */
};

/* A tag is 1..TRONE_TAG_MAX bytes of [A-Za-z0-9._-]. */
bool brk_tag_valid(const char *tag);
/* A name is 1..TRONE_NAME_MAX bytes of [A-Za-z0-9._-] ("*" is not a name). */
bool brk_name_valid(const char *name);
/* A member is a name or "*". */
bool brk_member_valid(const char *member);
/* Name of a kind ("register", "channel-create", ...); "?" when unknown. */
const char *brk_op_kind_name(enum brk_op_kind kind);

/* Zeroes op and sets its kind (CREATE gets has_class true and the default class). */
void brk_op_init(struct brk_op *op, enum brk_op_kind kind);
/* Builders for the CLI. Each returns 0, or TRONE_EINVAL (bad tag/name/key text) leaving op
 * unchanged. */
TRONE_MUST_CHECK int brk_op_set_tag(struct brk_op *op, const char *tag);
TRONE_MUST_CHECK int brk_op_set_register(struct brk_op *op, const char *name,
                                         const uint8_t key[TRONE_KEY_LEN]);
/* Appends one member ("*" allowed): TRONE_EINVAL bad member, TRONE_EEXIST already listed,
 * TRONE_EFULL at TRONE_CHANNEL_MEMBERS_MAX. */
TRONE_MUST_CHECK int brk_name_list_add(struct brk_name_list *list, const char *member);
/* Appends every member of a comma list ("probe1,probe2" or "*"); stops at the first bad one
 * with the code of brk_name_list_add (TRONE_EINVAL also for an empty item) and a one-line
 * message naming it in errmsg (if not NULL); the members before it stay added. An empty text
 * adds nothing. */
TRONE_MUST_CHECK int brk_name_list_parse(struct brk_name_list *list, const char *text,
                                         char *errmsg, size_t errmsg_size);
/* True if list holds member. */
bool brk_name_list_contains(const struct brk_name_list *list, const char *member);

/* Appends the encoding of op to out. Returns 0; TRONE_EINVAL if a field is invalid (bad kind,
 * tag, name, member or class, or a duplicate in a list); TRONE_ETOOBIG if the op would exceed
 * TRONE_OP_MAX; or the buffer's error. On error out->used is restored (the buffer's sticky
 * error, if any, stays set). */
TRONE_MUST_CHECK int brk_op_encode(const struct brk_op *op, struct buf *out);
/* Decodes and validates an op (borrowed bytes). Returns 0, TRONE_ETOOBIG for size >
 * TRONE_OP_MAX, TRONE_EBADMSG for anything malformed: unknown version or kind, short input,
 * trailing bytes, bad tag/name/member/class, a count beyond TRONE_CHANNEL_MEMBERS_MAX or a
 * duplicate member. On error op is zeroed. */
TRONE_MUST_CHECK int brk_op_decode(const uint8_t *data, size_t size, struct brk_op *op);

/* A decoded result; body points into the decoded bytes. */
struct brk_result {
    int32_t status;
    char message[BRK_MESSAGE_MAX + 1];
    const uint8_t *body;
    size_t body_size;
};

/* Appends a result header (status, message truncated to BRK_MESSAGE_MAX); the body, if any,
 * is appended after it by the caller. Errors stay in the buffer's sticky error. */
void brk_result_put(struct buf *out, int32_t status, const char *message);
/* Decodes a result header. Returns 0 or TRONE_EBADMSG (short input, a status that is neither
 * 0 nor a TRONE_E* code, a bad message); on error *res is zeroed. */
TRONE_MUST_CHECK int brk_result_decode(const uint8_t *data, size_t size, struct brk_result *res);

/* One channel as described in a CHANNEL_SHOW / CHANNEL_LIST body (about 50 KiB). Lists are
 * sorted by name; "*" (which sorts first) appears in publishers/subscribers when allowed. */
struct brk_channel_info {
    char tag[TRONE_TAG_MAX + 1];
    struct brk_class cls;
    struct brk_name_list publishers;
    struct brk_name_list subscribers;
    struct brk_name_list subscribed; /* clients subscribed now */
};

/* Builds an ORDER op. Returns 0 or TRONE_EINVAL (bad tag, zero epoch or seq, count out of
 * 1..BRK_ORDER_COUNT_MAX, a range that wraps) leaving op unchanged. */
TRONE_MUST_CHECK int brk_op_set_order(struct brk_op *op, const char *tag, uint64_t epoch,
                                      uint64_t first_seq, uint32_t count,
                                      const uint8_t digest[TRONE_HASH_LEN]);

/* Appends one channel description to a body (used by brk_table). */
void brk_channel_info_put(struct buf *out, const struct brk_channel_info *info);

/* Walks the channels of a CHANNEL_SHOW / CHANNEL_LIST body. */
struct brk_channel_iter {
    struct buf_reader reader;
    uint32_t count;
    uint32_t index;
    bool more; /* valid once next returned 0: the list continues after the last tag */
};

/* Starts on a body; TRONE_EBADMSG if it does not start with a valid count. */
TRONE_MUST_CHECK int brk_channel_iter_init(struct brk_channel_iter *it, const uint8_t *body,
                                           size_t body_size);
/* Returns 1 and fills info with the next channel; 0 at the end (after checking the trailer and
 * that no bytes remain); TRONE_EBADMSG on malformed input (info zeroed). */
TRONE_MUST_CHECK int brk_channel_iter_next(struct brk_channel_iter *it,
                                           struct brk_channel_info *info);

/* The body of a CHANNEL_KEYS result (about 25 KiB: allocate it on the heap). */
#define BRK_KEYS_PUBLISHERS_MAX (TRONE_CHANNEL_MEMBERS_MAX + 1u)
#define BRK_KEYS_RECIPIENTS_MAX (2u * TRONE_CHANNEL_MEMBERS_MAX)
struct brk_channel_keys {
    bool publishers_any; /* "*" is among the publishers: every registered client may publish */
    uint32_t publisher_count;
    uint8_t publishers[BRK_KEYS_PUBLISHERS_MAX][TRONE_KEY_LEN];
    uint32_t recipient_count;
    uint8_t recipients[BRK_KEYS_RECIPIENTS_MAX][TRONE_KEY_LEN];
};

/* Appends a CHANNEL_KEYS body (lists must be strictly increasing: asserted). */
void brk_channel_keys_put(struct buf *out, const struct brk_channel_keys *keys);
/* Decodes a CHANNEL_KEYS body. Returns 0 or TRONE_EBADMSG (counts over the bounds, keys not
 * strictly increasing, short input, trailing bytes); keys is zeroed on error. */
TRONE_MUST_CHECK int brk_channel_keys_decode(const uint8_t *body, size_t body_size,
                                             struct brk_channel_keys *keys);

/* Appends a human-readable description (several lines, each ending in '\n', no NUL):
 *   channel <tag>
 *     class        bft,total,pks,urgency=7,durable
 *     publishers   probe1 probe2
 *     subscribers  *
 *     subscribed   console
 * Errors stay in the buffer's sticky error. */
void brk_channel_info_format(const struct brk_channel_info *info, struct buf *out);
/* Appends one JSON object (no newline, no NUL): {"tag":...,"class":"...","fault":"bft",
 * "order":"total","method":"pks","urgency":7,"durable":true,"publishers":[...],
 * "subscribers":[...],"subscribed":[...]}. */
void brk_channel_info_json(const struct brk_channel_info *info, struct buf *out);

#endif
