/* brk_table_exec.c: execution of control operations against the table (rules in brk_table.h).
 * Every handler validates everything before changing anything, so a refused op leaves the
 * table unchanged. Deterministic: no clock, no randomness, no allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "broker/brk_table.h"
#include "broker/brk_table_internal.h"
#include "core/assert.h"

/* One execution: the caller, the decoded op, and the result being built. */
struct brk_exec {
    struct brk_table *t;
    const struct brk_op *op;
    uint16_t caller; /* client id or BRK_CLIENT_NONE */
    bool admin;
    struct buf *result;
    bool written; /* the handler wrote the whole result (SHOW, LIST) */
    char message[BRK_MESSAGE_MAX + 1];
};

/* Member ids resolved from op names, in op order. */
struct brk_ids {
    uint32_t count;
    uint16_t ids[TRONE_CHANNEL_MEMBERS_MAX];
};

static int brk_exec_refuse(struct brk_exec *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int brk_exec_refuse(struct brk_exec *x, int status, const char *fmt, ...)
{
    TRONE_ASSERT(status < 0);
    va_list args;
    va_start(args, fmt);
    vsnprintf(x->message, sizeof(x->message), fmt, args);
    va_end(args);
    return status;
}

static int brk_exec_register(struct brk_exec *x)
{
    struct brk_table *t = x->t;
    const struct brk_op *op = x->op;
    if (brk__client_id_by_name(t, op->name) != BRK_CLIENT_NONE) {
        return brk_exec_refuse(x, TRONE_EEXIST, "name '%s' is already registered", op->name);
    }
    bool found;
    uint32_t key_pos = brk__client_key_pos(t, op->key, &found);
    if (found) {
        return brk_exec_refuse(x, TRONE_EEXIST, "key is already registered as '%s'",
                               t->clients[t->clients_by_key[key_pos]].name);
    }
    if (crypto_core_ed25519_is_valid_point(op->key) != 1) {
        return brk_exec_refuse(x, TRONE_EINVAL, "key is not a valid Ed25519 public key");
    }
    if (t->client_count == TRONE_CLIENTS_MAX) {
        return brk_exec_refuse(x, TRONE_EFULL, "client table is full (%u clients)",
                               TRONE_CLIENTS_MAX);
    }
    uint32_t name_pos = brk__client_name_pos(t, op->name, &found);
    TRONE_ASSERT(!found);
    uint16_t id = (uint16_t)t->client_count;
    memcpy(t->clients[id].key, op->key, TRONE_KEY_LEN);
    memcpy(t->clients[id].name, op->name, sizeof(op->name));
    uint32_t n = t->client_count;
    memmove(&t->clients_by_key[key_pos + 1], &t->clients_by_key[key_pos],
            (n - key_pos) * sizeof(t->clients_by_key[0]));
    t->clients_by_key[key_pos] = id;
    memmove(&t->clients_by_name[name_pos + 1], &t->clients_by_name[name_pos],
            (n - name_pos) * sizeof(t->clients_by_name[0]));
    t->clients_by_name[name_pos] = id;
    t->client_count++;
    snprintf(x->message, sizeof(x->message), "registered '%s'", op->name);
    return 0;
}

/* Resolves names to ids ("*" to BRK_CLIENT_ANY); refuses an unknown name. */
static int brk_exec_resolve(struct brk_exec *x, const struct brk_name_list *names,
                            struct brk_ids *ids)
{
    TRONE_ASSERT(names->count <= TRONE_CHANNEL_MEMBERS_MAX);
    ids->count = 0;
    for (uint32_t i = 0; i < names->count; i++) {
        uint16_t id = strcmp(names->names[i], BRK_NAME_ANY) == 0
                          ? (uint16_t)BRK_CLIENT_ANY
                          : brk__client_id_by_name(x->t, names->names[i]);
        if (id == BRK_CLIENT_NONE) {
            return brk_exec_refuse(x, TRONE_ENOENT, "unknown client '%s'", names->names[i]);
        }
        ids->ids[ids->count++] = id;
    }
    return 0;
}

static void brk_exec_members_set(const struct brk_table *t, struct brk_member_list *list,
                                 const struct brk_ids *ids)
{
    memset(list, 0, sizeof(*list));
    for (uint32_t i = 0; i < ids->count; i++) {
        brk__members_insert(t, list, ids->ids[i]);
    }
}

/* The lowest free channel slot; the caller checked that one exists. */
static uint16_t brk_exec_free_slot(const struct brk_table *t)
{
    for (uint32_t slot = 0; slot < TRONE_CHANNELS_MAX; slot++) {
        if (slot >= t->channel_slots_used || !t->channels[slot].used) {
            return (uint16_t)slot;
        }
    }
    TRONE_ASSERT(0 && "no free channel slot below the channel count");
    return 0;
}

static int brk_exec_create(struct brk_exec *x)
{
    struct brk_table *t = x->t;
    const struct brk_op *op = x->op;
    bool found;
    uint32_t pos = brk__channel_pos(t, op->tag, &found);
    if (found) {
        return brk_exec_refuse(x, TRONE_EEXIST, "channel '%s' already exists", op->tag);
    }
    if (t->channel_count == TRONE_CHANNELS_MAX) {
        return brk_exec_refuse(x, TRONE_EFULL, "channel table is full (%u channels)",
                               TRONE_CHANNELS_MAX);
    }
    struct brk_ids publishers;
    struct brk_ids subscribers;
    int err = brk_exec_resolve(x, &op->publishers, &publishers);
    if (err == 0) {
        err = brk_exec_resolve(x, &op->subscribers, &subscribers);
    }
    if (err != 0) {
        return err;
    }
    uint16_t slot = brk_exec_free_slot(t);
    if (slot >= t->channel_slots_used) {
        t->channel_slots_used = (uint32_t)slot + 1;
    }
    struct brk_channel *ch = &t->channels[slot];
    memset(ch, 0, sizeof(*ch));
    ch->used = true;
    memcpy(ch->tag, op->tag, sizeof(ch->tag));
    ch->cls = op->cls;
    brk_exec_members_set(t, &ch->publishers, &publishers);
    brk_exec_members_set(t, &ch->subscribers, &subscribers);
    ch->order_next = 1;
    memmove(&t->channels_by_tag[pos + 1], &t->channels_by_tag[pos],
            (t->channel_count - pos) * sizeof(t->channels_by_tag[0]));
    t->channels_by_tag[pos] = slot;
    t->channel_count++;
    snprintf(x->message, sizeof(x->message), "created channel '%s'", op->tag);
    return 0;
}

/* Applies removals then additions of one list to a copy; refuses without side effects. */
static int brk_exec_alter_list(struct brk_exec *x, struct brk_member_list *list,
                               const struct brk_name_list *add_names,
                               const struct brk_name_list *remove_names, const char *role)
{
    struct brk_ids add;
    struct brk_ids remove;
    int err = brk_exec_resolve(x, add_names, &add);
    if (err == 0) {
        err = brk_exec_resolve(x, remove_names, &remove);
    }
    if (err != 0) {
        return err;
    }
    for (uint32_t i = 0; i < remove.count; i++) {
        if (brk_name_list_contains(add_names, remove_names->names[i])) {
            return brk_exec_refuse(x, TRONE_EINVAL, "'%s' is both added and removed as %s",
                                   remove_names->names[i], role);
        }
        if (!brk__members_contain(x->t, list, remove.ids[i])) {
            return brk_exec_refuse(x, TRONE_ENOENT, "'%s' is not a %s of '%s'",
                                   remove_names->names[i], role, x->op->tag);
        }
        brk__members_remove(x->t, list, remove.ids[i]);
    }
    for (uint32_t i = 0; i < add.count; i++) {
        bool present = brk__members_contain(x->t, list, add.ids[i]);
        if (!present && list->count == TRONE_CHANNEL_MEMBERS_MAX) {
            return brk_exec_refuse(x, TRONE_EFULL, "too many %ss on '%s' (at most %u)", role,
                                   x->op->tag, TRONE_CHANNEL_MEMBERS_MAX);
        }
        brk__members_insert(x->t, list, add.ids[i]);
    }
    return 0;
}

/* Drops the subscriptions of clients that are no longer authorized subscribers. */
static void brk_exec_prune_subscribed(const struct brk_table *t, struct brk_channel *ch)
{
    struct brk_member_list kept;
    memset(&kept, 0, sizeof(kept));
    for (uint32_t i = 0; i < ch->subscribed.count; i++) {
        uint16_t id = ch->subscribed.ids[i];
        if (brk__members_authorize(t, &ch->subscribers, id)) {
            kept.ids[kept.count++] = id; /* order kept: still sorted */
        }
    }
    ch->subscribed = kept;
}

static int brk_exec_alter(struct brk_exec *x)
{
    struct brk_table *t = x->t;
    const struct brk_op *op = x->op;
    bool found;
    uint32_t pos = brk__channel_pos(t, op->tag, &found);
    if (!found) {
        return brk_exec_refuse(x, TRONE_ENOENT, "no channel '%s'", op->tag);
    }
    struct brk_channel *ch = &t->channels[t->channels_by_tag[pos]];
    struct brk_channel copy = *ch;
    int err = brk_exec_alter_list(x, &copy.publishers, &op->publishers,
                                  &op->publishers_removed, "publisher");
    if (err == 0) {
        err = brk_exec_alter_list(x, &copy.subscribers, &op->subscribers,
                                  &op->subscribers_removed, "subscriber");
    }
    if (err != 0) {
        return err;
    }
    if (op->has_class) {
        copy.cls = op->cls;
    }
    brk_exec_prune_subscribed(t, &copy);
    *ch = copy;
    snprintf(x->message, sizeof(x->message), "altered channel '%s'", op->tag);
    return 0;
}

static int brk_exec_delete(struct brk_exec *x)
{
    struct brk_table *t = x->t;
    bool found;
    uint32_t pos = brk__channel_pos(t, x->op->tag, &found);
    if (!found) {
        return brk_exec_refuse(x, TRONE_ENOENT, "no channel '%s'", x->op->tag);
    }
    uint16_t slot = t->channels_by_tag[pos];
    memset(&t->channels[slot], 0, sizeof(t->channels[slot])); /* drops its subscriptions */
    memmove(&t->channels_by_tag[pos], &t->channels_by_tag[pos + 1],
            (t->channel_count - pos - 1) * sizeof(t->channels_by_tag[0]));
    t->channel_count--;
    t->channels_by_tag[t->channel_count] = 0;
    snprintf(x->message, sizeof(x->message), "deleted channel '%s'", x->op->tag);
    return 0;
}

/* The channel named by the op for a registered caller, or NULL with the refusal in *err. */
static struct brk_channel *brk_exec_channel(struct brk_exec *x, int *err)
{
    if (x->caller == BRK_CLIENT_NONE) {
        *err = brk_exec_refuse(x, TRONE_EPERM, "client is not registered");
        return NULL;
    }
    bool found;
    uint32_t pos = brk__channel_pos(x->t, x->op->tag, &found);
    if (!found) {
        *err = brk_exec_refuse(x, TRONE_ENOENT, "no channel '%s'", x->op->tag);
        return NULL;
    }
    *err = 0;
    return &x->t->channels[x->t->channels_by_tag[pos]];
}

static int brk_exec_subscribe(struct brk_exec *x)
{
    int err;
    struct brk_channel *ch = brk_exec_channel(x, &err);
    if (ch == NULL) {
        return err;
    }
    if (!brk__members_authorize(x->t, &ch->subscribers, x->caller)) {
        return brk_exec_refuse(x, TRONE_EPERM, "'%s' is not an authorized subscriber of '%s'",
                               x->t->clients[x->caller].name, ch->tag);
    }
    if (brk__members_contain(x->t, &ch->subscribed, x->caller)) {
        snprintf(x->message, sizeof(x->message), "already subscribed to '%s'", ch->tag);
        return 0;
    }
    if (ch->subscribed.count == TRONE_CHANNEL_MEMBERS_MAX) {
        return brk_exec_refuse(x, TRONE_EFULL, "too many subscriptions on '%s' (at most %u)",
                               ch->tag, TRONE_CHANNEL_MEMBERS_MAX);
    }
    brk__members_insert(x->t, &ch->subscribed, x->caller);
    snprintf(x->message, sizeof(x->message), "subscribed to '%s'", ch->tag);
    return 0;
}

static int brk_exec_unsubscribe(struct brk_exec *x)
{
    int err;
    struct brk_channel *ch = brk_exec_channel(x, &err);
    if (ch == NULL) {
        return err;
    }
    if (!brk__members_contain(x->t, &ch->subscribed, x->caller)) {
        return brk_exec_refuse(x, TRONE_ENOENT, "not subscribed to '%s'", ch->tag);
    }
    brk__members_remove(x->t, &ch->subscribed, x->caller);
    snprintf(x->message, sizeof(x->message), "unsubscribed from '%s'", ch->tag);
    return 0;
}

static int brk_exec_show(struct brk_exec *x)
{
    int err;
    struct brk_channel *ch = brk_exec_channel(x, &err);
    if (ch == NULL) {
        return err;
    }
    brk__channel_info_fill(x->t, ch, x->t->info);
    brk_result_put(x->result, 0, "");
    buf_put_u32(x->result, 1);
    brk_channel_info_put(x->result, x->t->info);
    buf_put_u8(x->result, 0);
    x->written = true;
    return 0;
}

/* Writes the keys of two member lists (each ordered by key, BRK_CLIENT_ANY last and skipped)
 * merged in key order without duplicates, as a u16-counted list. */
static void brk_exec_keys_merge(const struct brk_table *t, const struct brk_member_list *a,
                                const struct brk_member_list *b, struct buf *out)
{
    size_t count_at = out->used;
    buf_put_u16(out, 0);
    uint32_t i = 0;
    uint32_t j = 0;
    uint32_t count = 0;
    const uint8_t *last = NULL;
    for (uint32_t n = 0; n < a->count + b->count; n++) {
        bool a_ok = i < a->count && a->ids[i] != BRK_CLIENT_ANY;
        bool b_ok = j < b->count && b->ids[j] != BRK_CLIENT_ANY;
        if (!a_ok && !b_ok) {
            break;
        }
        const uint8_t *ka = a_ok ? t->clients[a->ids[i]].key : NULL;
        const uint8_t *kb = b_ok ? t->clients[b->ids[j]].key : NULL;
        bool take_a = a_ok && (!b_ok || memcmp(ka, kb, TRONE_KEY_LEN) <= 0);
        const uint8_t *key = take_a ? ka : kb;
        i += take_a ? 1u : 0u;
        j += take_a ? 0u : 1u;
        if (last != NULL) {
            int order = memcmp(last, key, TRONE_KEY_LEN);
            TRONE_ASSERT(order <= 0); /* member lists are ordered by key */
            if (order == 0) {
                continue;
            }
        }
        buf_put_bytes(out, key, TRONE_KEY_LEN);
        last = key;
        count++;
    }
    TRONE_ASSERT(count <= BRK_KEYS_RECIPIENTS_MAX);
    if (out->error == 0) {
        out->data[count_at] = (uint8_t)count;
        out->data[count_at + 1] = (uint8_t)(count >> 8);
    }
}

/* CHANNEL_KEYS (docs/QOP.md): the keys of the authorized publishers (the admin always may
 * publish) and of the recipients an HA/PKE channel key is wrapped for: the listed subscribers
 * and the clients subscribed now (under "*", or the admin). Body layout in brk_op.h. */
static int brk_exec_keys(struct brk_exec *x)
{
    int err;
    struct brk_channel *ch = brk_exec_channel(x, &err);
    if (ch == NULL) {
        return err;
    }
    const struct brk_table *t = x->t;
    struct brk_member_list admin = {.count = 1, .ids = {brk__admin_id(t)}};
    bool any = brk__members_contain(t, &ch->publishers, BRK_CLIENT_ANY);
    brk_result_put(x->result, 0, "");
    buf_put_u8(x->result, any ? 1 : 0);
    brk_exec_keys_merge(t, &ch->publishers, &admin, x->result);
    brk_exec_keys_merge(t, &ch->subscribers, &ch->subscribed, x->result);
    x->written = true;
    return 0;
}

/* Encoded size of one channel description in a body. */
static size_t brk_exec_info_size(const struct brk_channel_info *info)
{
    size_t size = 2 + strlen(info->tag) + brk_class_wire_size(&info->cls);
    const struct brk_name_list *lists[3] = {&info->publishers, &info->subscribers,
                                            &info->subscribed};
    for (unsigned l = 0; l < 3; l++) {
        size += 2;
        for (uint32_t i = 0; i < lists[l]->count; i++) {
            size += 2 + strlen(lists[l]->names[i]);
        }
    }
    return size;
}

static int brk_exec_list(struct brk_exec *x)
{
    struct brk_table *t = x->t;
    if (x->caller == BRK_CLIENT_NONE) {
        return brk_exec_refuse(x, TRONE_EPERM, "client is not registered");
    }
    bool found = false;
    uint32_t pos = x->op->tag[0] == '\0' ? 0 : brk__channel_pos(t, x->op->tag, &found);
    if (x->op->tag[0] != '\0' && found) {
        pos++; /* strictly after the given tag */
    }
    size_t start = x->result->used;
    brk_result_put(x->result, 0, "");
    size_t count_at = x->result->used;
    buf_put_u32(x->result, 0);
    uint32_t count = 0;
    bool more = false;
    for (; pos < t->channel_count; pos++) {
        brk__channel_info_fill(t, &t->channels[t->channels_by_tag[pos]], t->info);
        size_t size = brk_exec_info_size(t->info);
        if (x->result->used - start + size + 1 > TRONE_RESULT_MAX) {
            more = true;
            break;
        }
        brk_channel_info_put(x->result, t->info);
        count++;
    }
    buf_put_u8(x->result, more ? 1 : 0);
    if (x->result->error == 0) {
        buf_store_u32(x->result->data + count_at, count);
    }
    x->written = true;
    return 0;
}

/* The floor of (client, epoch) on ch, or NULL. One per epoch: several processes of one key
 * (each its own epoch) may publish on the channel at once. */
static struct brk_order_floor *brk_exec_floor_find(struct brk_channel *ch, uint16_t client,
                                                   uint64_t epoch)
{
    TRONE_ASSERT(ch->floor_count <= BRK_ORDER_FLOORS_MAX);
    for (uint32_t i = 0; i < ch->floor_count; i++) {
        if (ch->floors[i].client == client && ch->floors[i].epoch == epoch) {
            return &ch->floors[i];
        }
    }
    return NULL;
}

/* A floor for client: a free entry, or the one that ordered least recently (positions are
 * unique, so the choice is the same on every replica). */
static struct brk_order_floor *brk_exec_floor_new(struct brk_channel *ch, uint16_t client)
{
    struct brk_order_floor *fl = NULL;
    if (ch->floor_count < BRK_ORDER_FLOORS_MAX) {
        fl = &ch->floors[ch->floor_count++];
    } else {
        fl = &ch->floors[0];
        for (uint32_t i = 1; i < ch->floor_count; i++) {
            if (ch->floors[i].position < fl->position) {
                fl = &ch->floors[i];
            }
        }
    }
    memset(fl, 0, sizeof(*fl));
    fl->client = client;
    return fl;
}

/* ORDER (brk_table.h): positions for a contiguous range of the caller's events. */
static int brk_exec_order(struct brk_exec *x)
{
    const struct brk_op *op = x->op;
    int err;
    struct brk_channel *ch = brk_exec_channel(x, &err);
    if (ch == NULL) {
        return err;
    }
    if (ch->cls.order != BRK_ORDER_TOTAL) {
        return brk_exec_refuse(x, TRONE_EINVAL, "channel '%s' is not a total-order channel",
                               ch->tag);
    }
    if (!brk__members_authorize(x->t, &ch->publishers, x->caller)) {
        return brk_exec_refuse(x, TRONE_EPERM, "'%s' is not an authorized publisher of '%s'",
                               x->t->clients[x->caller].name, ch->tag);
    }
    uint64_t last = op->first_seq + op->count - 1; /* no wrap: checked by the decoder */
    struct brk_order_floor *fl = brk_exec_floor_find(ch, x->caller, op->epoch);
    if (fl != NULL) {
        if (last <= fl->seq) {
            return brk_exec_refuse(x, TRONE_EEXIST, "seqs up to %llu are already ordered",
                                   (unsigned long long)fl->seq);
        }
        if (op->first_seq != fl->seq + 1) {
            return brk_exec_refuse(x, TRONE_EINVAL, "range starts at %llu, not after %llu",
                                   (unsigned long long)op->first_seq,
                                   (unsigned long long)fl->seq);
        }
    }
    if (ch->order_next > UINT64_MAX - op->count) {
        return brk_exec_refuse(x, TRONE_EFULL, "no positions left on '%s'", ch->tag);
    }
    if (fl == NULL) {
        fl = brk_exec_floor_new(ch, x->caller);
    }
    uint64_t first_position = ch->order_next;
    ch->order_next += op->count;
    fl->epoch = op->epoch;
    fl->seq = last;
    fl->position = ch->order_next - 1;
    TRONE_ASSERT(ch->order_next > first_position);
    brk_result_put(x->result, 0, "");
    buf_put_u64(x->result, first_position);
    x->written = true;
    if (x->t->order_fn != NULL) {
        struct brk_order_exec o = {.tag = ch->tag,
                                   .publisher = x->t->clients[x->caller].key,
                                   .epoch = op->epoch,
                                   .first_seq = op->first_seq,
                                   .count = op->count,
                                   .digest = op->digest,
                                   .first_position = first_position};
        x->t->order_fn(x->t->order_ctx, &o);
    }
    return 0;
}

static int brk_exec_dispatch(struct brk_exec *x)
{
    enum brk_op_kind kind = x->op->kind;
    bool admin_only = kind == BRK_OP_REGISTER || kind == BRK_OP_CHANNEL_CREATE ||
                      kind == BRK_OP_CHANNEL_ALTER || kind == BRK_OP_CHANNEL_DELETE;
    if (admin_only && !x->admin) {
        return brk_exec_refuse(x, TRONE_EPERM, "only the admin may %s", brk_op_kind_name(kind));
    }
    switch (kind) {
    case BRK_OP_REGISTER:
        return brk_exec_register(x);
    case BRK_OP_CHANNEL_CREATE:
        return brk_exec_create(x);
    case BRK_OP_CHANNEL_ALTER:
        return brk_exec_alter(x);
    case BRK_OP_CHANNEL_DELETE:
        return brk_exec_delete(x);
    case BRK_OP_SUBSCRIBE:
        return brk_exec_subscribe(x);
    case BRK_OP_UNSUBSCRIBE:
        return brk_exec_unsubscribe(x);
    case BRK_OP_CHANNEL_LIST:
        return brk_exec_list(x);
    case BRK_OP_CHANNEL_SHOW:
        return brk_exec_show(x);
    case BRK_OP_ORDER:
        return brk_exec_order(x);
    case BRK_OP_CHANNEL_KEYS:
        return brk_exec_keys(x);
    }
    TRONE_ASSERT(0 && "decoded op has a known kind");
    return TRONE_EBADMSG;
}

void brk_table_execute(struct brk_table *t, uint64_t seq, const uint8_t client_key[TRONE_KEY_LEN],
                       const uint8_t *op, size_t op_size, struct buf *result)
{
    TRONE_ASSERT(t != NULL && t->clients != NULL);
    TRONE_ASSERT(client_key != NULL);
    (void)seq;
    struct brk_exec x;
    memset(&x, 0, sizeof(x));
    x.t = t;
    x.op = t->op;
    x.result = result;
    x.caller = brk__client_id_by_key(t, client_key);
    x.admin = sodium_memcmp(client_key, t->admin_key, TRONE_KEY_LEN) == 0;
    if (x.admin) {
        TRONE_ASSERT(x.caller == brk__admin_id(t));
    }
    int status = brk_op_decode(op, op_size, t->op);
    if (status != 0) {
        status = brk_exec_refuse(&x, TRONE_EBADMSG, "malformed operation (%s)",
                                 trone_err_name(status));
    } else {
        status = brk_exec_dispatch(&x);
    }
    if (!x.written) {
        brk_result_put(result, status, x.message);
    }
}

static void brk_table_app_execute(void *ctx, uint64_t seq, const uint8_t client[TRONE_KEY_LEN],
                                  const uint8_t *op, size_t op_size, struct buf *result)
{
    brk_table_execute(ctx, seq, client, op, op_size, result);
}

static int brk_table_app_snapshot(void *ctx, struct buf *out)
{
    return brk_table_snapshot(ctx, out);
}

static int brk_table_app_restore(void *ctx, const uint8_t *data, size_t size)
{
    return brk_table_restore(ctx, data, size);
}

void brk_table_order_hook(struct brk_table *t, brk_table_order_fn fn, void *ctx)
{
    TRONE_ASSERT(t != NULL);
    t->order_fn = fn;
    t->order_ctx = fn != NULL ? ctx : NULL;
}

void brk_table_app(struct brk_table *t, struct smr_app *app)
{
    TRONE_ASSERT(t != NULL);
    memset(app, 0, sizeof(*app));
    app->ctx = t;
    app->execute = brk_table_app_execute;
    app->snapshot = brk_table_app_snapshot;
    app->restore = brk_table_app_restore;
}
