/* brk_table_snapshot.c: canonical serialization of the control table, its validated restore
 * and its digest (format in brk_table.h). Restore decodes into a fresh table and replaces the
 * live one only when every check passed (decode, verify, then commit). No I/O. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "broker/brk_table.h"
#include "broker/brk_table_internal.h"
#include "core/assert.h"

/* Worst case: every client with the longest name, every channel with the longest tag and
 * full member lists. It must fit one message so a replica can ship it to a peer. */
#define BRK_SNAPSHOT_CLIENT_MAX (TRONE_KEY_LEN + 2u + TRONE_NAME_MAX)
#define BRK_SNAPSHOT_FLOOR_SIZE (2u + 3u * 8u)
#define BRK_SNAPSHOT_CHANNEL_MAX                                                              \
    (2u + TRONE_TAG_MAX + BRK_CLASS_WIRE_MAX + 3u * (2u + 2u * TRONE_CHANNEL_MEMBERS_MAX) + \
     8u + 1u + BRK_ORDER_FLOORS_MAX * BRK_SNAPSHOT_FLOOR_SIZE)
#define BRK_SNAPSHOT_MAX                                           \
    (1u + 4u + TRONE_CLIENTS_MAX * BRK_SNAPSHOT_CLIENT_MAX + 4u + \
     TRONE_CHANNELS_MAX * BRK_SNAPSHOT_CHANNEL_MAX)
_Static_assert(BRK_SNAPSHOT_MAX <= TRONE_MESSAGE_MAX, "a full table snapshot fits one message");

static void brk_snapshot_members(struct buf *out, const struct brk_member_list *list,
                                 const uint16_t *rank)
{
    TRONE_ASSERT(list->count <= TRONE_CHANNEL_MEMBERS_MAX);
    buf_put_u16(out, (uint16_t)list->count);
    for (uint32_t i = 0; i < list->count; i++) {
        uint16_t id = list->ids[i];
        /* Lists are in key order and ranks are key order, so the output ascends. */
        buf_put_u16(out, id == BRK_CLIENT_ANY ? BRK_CLIENT_ANY : rank[id]);
    }
}

/* Is floor a before floor b in the snapshot's order (client index, then epoch)? */
static bool brk_floor_before(const struct brk_order_floor *a, const struct brk_order_floor *b,
                             const uint16_t *rank)
{
    return rank[a->client] != rank[b->client] ? rank[a->client] < rank[b->client]
                                              : a->epoch < b->epoch;
}

/* The order state: u64 order_next | u8 count | floors ascending by (client index, epoch). */
static void brk_snapshot_floors(struct buf *out, const struct brk_channel *ch,
                                const uint16_t *rank)
{
    TRONE_ASSERT(ch->floor_count <= BRK_ORDER_FLOORS_MAX);
    uint32_t order[BRK_ORDER_FLOORS_MAX];
    for (uint32_t i = 0; i < ch->floor_count; i++) {
        uint32_t j = i;
        for (; j > 0 && brk_floor_before(&ch->floors[i], &ch->floors[order[j - 1]], rank); j--) {
            order[j] = order[j - 1];
        }
        order[j] = i;
    }
    buf_put_u64(out, ch->order_next);
    buf_put_u8(out, (uint8_t)ch->floor_count);
    for (uint32_t i = 0; i < ch->floor_count; i++) {
        const struct brk_order_floor *fl = &ch->floors[order[i]];
        buf_put_u16(out, rank[fl->client]);
        buf_put_u64(out, fl->epoch);
        buf_put_u64(out, fl->seq);
        buf_put_u64(out, fl->position);
    }
}

int brk_table_snapshot(const struct brk_table *t, struct buf *out)
{
    TRONE_ASSERT(t != NULL && t->clients != NULL);
    TRONE_ASSERT(t->client_count >= 1 && t->client_count <= TRONE_CLIENTS_MAX);
    if (out->error != 0) {
        return out->error;
    }
    size_t start = out->used;
    uint16_t rank[TRONE_CLIENTS_MAX];
    buf_put_u8(out, BRK_SNAPSHOT_VERSION);
    buf_put_u32(out, t->client_count);
    for (uint32_t i = 0; i < t->client_count; i++) {
        const struct brk_client *c = &t->clients[t->clients_by_key[i]];
        rank[t->clients_by_key[i]] = (uint16_t)i;
        buf_put_bytes(out, c->key, TRONE_KEY_LEN);
        buf_put_str(out, c->name);
    }
    buf_put_u32(out, t->channel_count);
    for (uint32_t i = 0; i < t->channel_count; i++) {
        const struct brk_channel *ch = &t->channels[t->channels_by_tag[i]];
        TRONE_ASSERT(ch->used);
        buf_put_str(out, ch->tag);
        brk_class_encode(&ch->cls, out);
        brk_snapshot_members(out, &ch->publishers, rank);
        brk_snapshot_members(out, &ch->subscribers, rank);
        brk_snapshot_members(out, &ch->subscribed, rank);
        brk_snapshot_floors(out, ch, rank);
    }
    if (out->error != 0) {
        out->used = start;
        return out->error;
    }
    return 0;
}

static int brk_name_id_compare(const void *a, const void *b, void *ctx)
{
    const struct brk_client *clients = ctx;
    return strcmp(clients[*(const uint16_t *)a].name, clients[*(const uint16_t *)b].name);
}

/* Reads the clients (strictly ascending keys, valid distinct names, the admin entry). */
static int brk_restore_clients(struct buf_reader *r, struct brk_table *fresh)
{
    uint32_t count = buf_get_u32(r);
    if (r->error != 0 || count < 1 || count > TRONE_CLIENTS_MAX) {
        return TRONE_ECORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct brk_client *c = &fresh->clients[i];
        buf_get_bytes(r, c->key, TRONE_KEY_LEN);
        buf_get_str(r, c->name, TRONE_NAME_MAX);
        if (r->error != 0 || !brk_name_valid(c->name)) {
            return TRONE_ECORRUPT;
        }
        if (i > 0 && memcmp(fresh->clients[i - 1].key, c->key, TRONE_KEY_LEN) >= 0) {
            return TRONE_ECORRUPT;
        }
        fresh->clients_by_key[i] = (uint16_t)i;
        fresh->clients_by_name[i] = (uint16_t)i;
    }
    fresh->client_count = count;
    /* Names ordered with a total order (ties only between equal names, refused next). */
    qsort_r(fresh->clients_by_name, count, sizeof(uint16_t), brk_name_id_compare,
            fresh->clients);
    for (uint32_t i = 1; i < count; i++) {
        if (strcmp(fresh->clients[fresh->clients_by_name[i - 1]].name,
                   fresh->clients[fresh->clients_by_name[i]].name) == 0) {
            return TRONE_ECORRUPT;
        }
    }
    uint16_t admin = brk__client_id_by_key(fresh, fresh->admin_key);
    if (admin == BRK_CLIENT_NONE || strcmp(fresh->clients[admin].name, BRK_NAME_ADMIN) != 0) {
        return TRONE_ECORRUPT;
    }
    fresh->admin_id = admin;
    return 0;
}

/* Reads a member list: strictly ascending client indices, then at most one ANY. */
static int brk_restore_members(struct buf_reader *r, const struct brk_table *fresh,
                               struct brk_member_list *list, bool any_ok)
{
    memset(list, 0, sizeof(*list));
    uint16_t count = buf_get_u16(r);
    if (r->error != 0 || count > TRONE_CHANNEL_MEMBERS_MAX) {
        return TRONE_ECORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint16_t id = buf_get_u16(r);
        if (r->error != 0) {
            return TRONE_ECORRUPT;
        }
        bool valid = id == BRK_CLIENT_ANY ? any_ok : id < fresh->client_count;
        if (!valid || (i > 0 && list->ids[i - 1] >= id)) {
            return TRONE_ECORRUPT;
        }
        list->ids[i] = id;
        list->count = i + 1;
    }
    return 0;
}

/* Reads the order state: order_next >= 1, floors strictly ascending by (client index,
 * epoch), epoch and seq >= 1, distinct positions below order_next. */
static int brk_restore_floors(struct buf_reader *r, const struct brk_table *fresh,
                              struct brk_channel *ch)
{
    ch->order_next = buf_get_u64(r);
    uint8_t count = buf_get_u8(r);
    if (r->error != 0 || ch->order_next < 1 || count > BRK_ORDER_FLOORS_MAX) {
        return TRONE_ECORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct brk_order_floor *fl = &ch->floors[i];
        fl->client = buf_get_u16(r);
        fl->epoch = buf_get_u64(r);
        fl->seq = buf_get_u64(r);
        fl->position = buf_get_u64(r);
        if (r->error != 0 || fl->client >= fresh->client_count || fl->epoch < 1 ||
            fl->seq < 1 || fl->position < 1 || fl->position >= ch->order_next ||
            (i > 0 && (ch->floors[i - 1].client > fl->client ||
                       (ch->floors[i - 1].client == fl->client &&
                        ch->floors[i - 1].epoch >= fl->epoch)))) {
            return TRONE_ECORRUPT;
        }
        for (uint32_t k = 0; k < i; k++) {
            if (ch->floors[k].position == fl->position) {
                return TRONE_ECORRUPT;
            }
        }
        ch->floor_count = i + 1;
    }
    return 0;
}

static int brk_restore_channel(struct buf_reader *r, struct brk_table *fresh, uint32_t i)
{
    struct brk_channel *ch = &fresh->channels[i];
    fresh->channel_slots_used = i + 1; /* before any write, so a reset clears it */
    buf_get_str(r, ch->tag, TRONE_TAG_MAX);
    if (r->error != 0 || !brk_tag_valid(ch->tag)) {
        return TRONE_ECORRUPT;
    }
    if (i > 0 && strcmp(fresh->channels[i - 1].tag, ch->tag) >= 0) {
        return TRONE_ECORRUPT;
    }
    if (brk_class_decode(r, &ch->cls) != 0 ||
        brk_restore_members(r, fresh, &ch->publishers, true) != 0 ||
        brk_restore_members(r, fresh, &ch->subscribers, true) != 0 ||
        brk_restore_members(r, fresh, &ch->subscribed, false) != 0 ||
        brk_restore_floors(r, fresh, ch) != 0) {
        return TRONE_ECORRUPT;
    }
    /* Invariant kept by execute: every current subscriber is authorized. */
    for (uint32_t k = 0; k < ch->subscribed.count; k++) {
        if (!brk__members_authorize(fresh, &ch->subscribers, ch->subscribed.ids[k])) {
            return TRONE_ECORRUPT;
        }
    }
    ch->used = true;
    fresh->channels_by_tag[i] = (uint16_t)i;
    return 0;
}

static int brk_restore_decode(struct brk_table *fresh, const uint8_t *data, size_t size)
{
    struct buf_reader r;
    buf_reader_init(&r, data, size);
    if (buf_get_u8(&r) != BRK_SNAPSHOT_VERSION || r.error != 0) {
        return TRONE_ECORRUPT;
    }
    int err = brk_restore_clients(&r, fresh);
    if (err != 0) {
        return err;
    }
    uint32_t count = buf_get_u32(&r);
    if (r.error != 0 || count > TRONE_CHANNELS_MAX) {
        return TRONE_ECORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        err = brk_restore_channel(&r, fresh, i);
        if (err != 0) {
            return err;
        }
        fresh->channel_count = i + 1;
    }
    return buf_reader_finish(&r) == 0 ? 0 : TRONE_ECORRUPT;
}

/* The spare table restore decodes into: allocated once, emptied before each use. */
static int brk_restore_spare(struct brk_table *t, struct brk_table **spare)
{
    if (t->spare == NULL) {
        struct brk_table *fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL) {
            return TRONE_ENOMEM;
        }
        int err = brk__table_alloc(fresh, t->admin_key);
        if (err != 0) {
            free(fresh);
            return err;
        }
        t->spare = fresh;
    }
    brk__table_reset(t->spare);
    TRONE_ASSERT(t->spare->spare == NULL);
    *spare = t->spare;
    return 0;
}

int brk_table_restore(struct brk_table *t, const uint8_t *data, size_t size)
{
    TRONE_ASSERT(t != NULL && t->clients != NULL);
    if (data == NULL || size == 0 || size > BRK_SNAPSHOT_MAX) {
        return TRONE_ECORRUPT;
    }
    struct brk_table *spare;
    int err = brk_restore_spare(t, &spare);
    if (err != 0) {
        return err;
    }
    err = brk_restore_decode(spare, data, size);
    if (err != 0) {
        return err; /* the spare is emptied before its next use */
    }
    /* Swap contents: the decoded state becomes live, the old arrays become the spare. */
    struct brk_table old = *t;
    *t = *spare;
    *spare = old;
    t->spare = spare;
    spare->spare = NULL;
    t->order_fn = old.order_fn; /* the hook belongs to the table's owner, not to the state */
    t->order_ctx = old.order_ctx;
    spare->order_fn = NULL;
    spare->order_ctx = NULL;
    return 0;
}

int brk_table_digest(const struct brk_table *t, uint8_t out[TRONE_HASH_LEN])
{
    struct buf snapshot;
    buf_init(&snapshot, BRK_SNAPSHOT_MAX);
    int err = brk_table_snapshot(t, &snapshot);
    if (err != 0) {
        buf_close(&snapshot);
        memset(out, 0, TRONE_HASH_LEN);
        return err;
    }
    crypto_generichash(out, TRONE_HASH_LEN, snapshot.data, snapshot.used, NULL, 0);
    buf_close(&snapshot);
    return 0;
}
