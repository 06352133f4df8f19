/* brk_table.c: the control table's storage, lookups and data-path queries.
 * Clients keep their id (registration order) for life; sorted index arrays give
 * deterministic lookups by key, name and tag. No I/O, no clock, no allocation after init. */
#include "broker/brk_table.h"

#include <stdlib.h>
#include <string.h>

#include "broker/brk_table_internal.h"
#include "core/assert.h"

int brk__table_alloc(struct brk_table *t, const uint8_t admin_key[TRONE_KEY_LEN])
{
    memset(t, 0, sizeof(*t));
    memcpy(t->admin_key, admin_key, TRONE_KEY_LEN);
    t->admin_id = BRK_CLIENT_NONE;
    t->clients = calloc(TRONE_CLIENTS_MAX, sizeof(t->clients[0]));
    t->clients_by_key = calloc(TRONE_CLIENTS_MAX, sizeof(t->clients_by_key[0]));
    t->clients_by_name = calloc(TRONE_CLIENTS_MAX, sizeof(t->clients_by_name[0]));
    t->channels = calloc(TRONE_CHANNELS_MAX, sizeof(t->channels[0]));
    t->channels_by_tag = calloc(TRONE_CHANNELS_MAX, sizeof(t->channels_by_tag[0]));
    t->op = calloc(1, sizeof(*t->op));
    t->info = calloc(1, sizeof(*t->info));
    if (t->clients == NULL || t->clients_by_key == NULL || t->clients_by_name == NULL ||
        t->channels == NULL || t->channels_by_tag == NULL || t->op == NULL || t->info == NULL) {
        brk_table_close(t);
        return TRONE_ENOMEM;
    }
    return 0;
}

int brk_table_init(struct brk_table *t, const uint8_t admin_key[TRONE_KEY_LEN])
{
    TRONE_ASSERT(t != NULL);
    TRONE_ASSERT(admin_key != NULL);
    int err = brk__table_alloc(t, admin_key);
    if (err != 0) {
        return err;
    }
    struct brk_client *admin = &t->clients[0];
    memcpy(admin->key, admin_key, TRONE_KEY_LEN);
    memcpy(admin->name, BRK_NAME_ADMIN, sizeof(BRK_NAME_ADMIN));
    t->clients_by_key[0] = 0;
    t->clients_by_name[0] = 0;
    t->client_count = 1;
    t->admin_id = 0;
    return 0;
}

void brk__table_reset(struct brk_table *t)
{
    TRONE_ASSERT(t->channel_slots_used <= TRONE_CHANNELS_MAX);
    memset(t->clients, 0, TRONE_CLIENTS_MAX * sizeof(t->clients[0]));
    memset(t->clients_by_key, 0, TRONE_CLIENTS_MAX * sizeof(t->clients_by_key[0]));
    memset(t->clients_by_name, 0, TRONE_CLIENTS_MAX * sizeof(t->clients_by_name[0]));
    memset(t->channels, 0, t->channel_slots_used * sizeof(t->channels[0]));
    memset(t->channels_by_tag, 0, TRONE_CHANNELS_MAX * sizeof(t->channels_by_tag[0]));
    t->client_count = 0;
    t->channel_count = 0;
    t->channel_slots_used = 0;
    t->admin_id = BRK_CLIENT_NONE;
}

void brk_table_close(struct brk_table *t)
{
    if (t->spare != NULL) {
        TRONE_ASSERT(t->spare->spare == NULL);
        brk_table_close(t->spare); /* not recursive beyond one level: spare has no spare */
        free(t->spare);
    }
    free(t->clients);
    free(t->clients_by_key);
    free(t->clients_by_name);
    free(t->channels);
    free(t->channels_by_tag);
    free(t->op);
    free(t->info);
    memset(t, 0, sizeof(*t));
}

uint32_t brk__client_key_pos(const struct brk_table *t, const uint8_t key[TRONE_KEY_LEN],
                             bool *found)
{
    uint32_t low = 0;
    uint32_t high = t->client_count;
    *found = false;
    while (low < high) { /* bounded: halves each turn */
        uint32_t mid = low + (high - low) / 2;
        int cmp = memcmp(t->clients[t->clients_by_key[mid]].key, key, TRONE_KEY_LEN);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

uint32_t brk__client_name_pos(const struct brk_table *t, const char *name, bool *found)
{
    uint32_t low = 0;
    uint32_t high = t->client_count;
    *found = false;
    while (low < high) {
        uint32_t mid = low + (high - low) / 2;
        int cmp = strcmp(t->clients[t->clients_by_name[mid]].name, name);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

uint32_t brk__channel_pos(const struct brk_table *t, const char *tag, bool *found)
{
    uint32_t low = 0;
    uint32_t high = t->channel_count;
    *found = false;
    while (low < high) {
        uint32_t mid = low + (high - low) / 2;
        int cmp = strcmp(t->channels[t->channels_by_tag[mid]].tag, tag);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

uint16_t brk__client_id_by_key(const struct brk_table *t, const uint8_t key[TRONE_KEY_LEN])
{
    bool found;
    uint32_t pos = brk__client_key_pos(t, key, &found);
    return found ? t->clients_by_key[pos] : (uint16_t)BRK_CLIENT_NONE;
}

uint16_t brk__client_id_by_name(const struct brk_table *t, const char *name)
{
    bool found;
    uint32_t pos = brk__client_name_pos(t, name, &found);
    return found ? t->clients_by_name[pos] : (uint16_t)BRK_CLIENT_NONE;
}

uint16_t brk__admin_id(const struct brk_table *t)
{
    TRONE_ASSERT(t->admin_id < t->client_count);
    return t->admin_id;
}

/* Order of member ids: by the clients' keys, BRK_CLIENT_ANY after every client. */
static int brk_member_compare(const struct brk_table *t, uint16_t a, uint16_t b)
{
    if (a == b) {
        return 0;
    }
    if (a == BRK_CLIENT_ANY || b == BRK_CLIENT_ANY) {
        return a == BRK_CLIENT_ANY ? 1 : -1;
    }
    TRONE_ASSERT(a < t->client_count);
    TRONE_ASSERT(b < t->client_count);
    return memcmp(t->clients[a].key, t->clients[b].key, TRONE_KEY_LEN);
}

/* Position of id in list or where it would go. */
static uint32_t brk_members_pos(const struct brk_table *t, const struct brk_member_list *list,
                                uint16_t id, bool *found)
{
    TRONE_ASSERT(list->count <= TRONE_CHANNEL_MEMBERS_MAX);
    uint32_t low = 0;
    uint32_t high = list->count;
    *found = false;
    while (low < high) { /* bounded: halves each turn */
        uint32_t mid = low + (high - low) / 2;
        int cmp = brk_member_compare(t, list->ids[mid], id);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

bool brk__members_contain(const struct brk_table *t, const struct brk_member_list *list,
                          uint16_t id)
{
    bool found;
    (void)brk_members_pos(t, list, id, &found);
    return found;
}

void brk__members_insert(const struct brk_table *t, struct brk_member_list *list, uint16_t id)
{
    bool found;
    uint32_t pos = brk_members_pos(t, list, id, &found);
    if (found) {
        return;
    }
    TRONE_ASSERT(list->count < TRONE_CHANNEL_MEMBERS_MAX);
    memmove(&list->ids[pos + 1], &list->ids[pos], (list->count - pos) * sizeof(list->ids[0]));
    list->ids[pos] = id;
    list->count++;
}

void brk__members_remove(const struct brk_table *t, struct brk_member_list *list, uint16_t id)
{
    bool found;
    uint32_t pos = brk_members_pos(t, list, id, &found);
    if (!found) {
        return;
    }
    memmove(&list->ids[pos], &list->ids[pos + 1],
            (list->count - pos - 1) * sizeof(list->ids[0]));
    list->count--;
    list->ids[list->count] = 0;
}

bool brk__members_authorize(const struct brk_table *t, const struct brk_member_list *list,
                            uint16_t id)
{
    TRONE_ASSERT(id != BRK_CLIENT_NONE);
    TRONE_ASSERT(id < t->client_count);
    return id == brk__admin_id(t) || brk__members_contain(t, list, BRK_CLIENT_ANY) ||
           brk__members_contain(t, list, id);
}

static int brk_name_compare(const void *a, const void *b) { return strcmp(a, b); }

static void brk_info_names(const struct brk_table *t, const struct brk_member_list *ids,
                           struct brk_name_list *names)
{
    TRONE_ASSERT(ids->count <= TRONE_CHANNEL_MEMBERS_MAX);
    names->count = ids->count;
    for (uint32_t i = 0; i < ids->count; i++) {
        const char *name =
            ids->ids[i] == BRK_CLIENT_ANY ? BRK_NAME_ANY : t->clients[ids->ids[i]].name;
        memcpy(names->names[i], name, strlen(name) + 1);
    }
    /* Names are distinct, so strcmp is a total order and qsort's instability is harmless. */
    qsort(names->names, names->count, sizeof(names->names[0]), brk_name_compare);
}

void brk__channel_info_fill(const struct brk_table *t, const struct brk_channel *ch,
                            struct brk_channel_info *info)
{
    TRONE_ASSERT(ch->used);
    memcpy(info->tag, ch->tag, sizeof(info->tag));
    info->cls = ch->cls;
    brk_info_names(t, &ch->publishers, &info->publishers);
    brk_info_names(t, &ch->subscribers, &info->subscribers);
    brk_info_names(t, &ch->subscribed, &info->subscribed);
}

const struct brk_channel *brk_table_find_channel(const struct brk_table *t, const char *tag)
{
    bool found;
    uint32_t pos = brk__channel_pos(t, tag, &found);
    return found ? &t->channels[t->channels_by_tag[pos]] : NULL;
}

const struct brk_client *brk_table_client_by_key(const struct brk_table *t,
                                                 const uint8_t key[TRONE_KEY_LEN])
{
    uint16_t id = brk__client_id_by_key(t, key);
    return id == BRK_CLIENT_NONE ? NULL : &t->clients[id];
}

const struct brk_client *brk_table_client_by_name(const struct brk_table *t, const char *name)
{
    uint16_t id = brk__client_id_by_name(t, name);
    return id == BRK_CLIENT_NONE ? NULL : &t->clients[id];
}

bool brk_table_channel_may_publish(const struct brk_table *t, const struct brk_channel *ch,
                                   const uint8_t key[TRONE_KEY_LEN])
{
    uint16_t id = brk__client_id_by_key(t, key);
    return ch != NULL && id != BRK_CLIENT_NONE && brk__members_authorize(t, &ch->publishers, id);
}

bool brk_table_channel_may_subscribe(const struct brk_table *t, const struct brk_channel *ch,
                                     const uint8_t key[TRONE_KEY_LEN])
{
    uint16_t id = brk__client_id_by_key(t, key);
    return ch != NULL && id != BRK_CLIENT_NONE &&
           brk__members_authorize(t, &ch->subscribers, id);
}

bool brk_table_may_publish(const struct brk_table *t, const char *tag,
                           const uint8_t key[TRONE_KEY_LEN])
{
    return brk_table_channel_may_publish(t, brk_table_find_channel(t, tag), key);
}

bool brk_table_may_subscribe(const struct brk_table *t, const char *tag,
                             const uint8_t key[TRONE_KEY_LEN])
{
    return brk_table_channel_may_subscribe(t, brk_table_find_channel(t, tag), key);
}

bool brk_table_channel_subscribed(const struct brk_table *t, const struct brk_channel *ch,
                                  const uint8_t key[TRONE_KEY_LEN])
{
    uint16_t id = brk__client_id_by_key(t, key);
    return id != BRK_CLIENT_NONE && brk__members_contain(t, &ch->subscribed, id);
}

const struct brk_client *brk_table_subscriber(const struct brk_table *t,
                                              const struct brk_channel *ch, uint32_t index)
{
    TRONE_ASSERT(index < ch->subscribed.count);
    uint16_t id = ch->subscribed.ids[index];
    TRONE_ASSERT(id < t->client_count);
    return &t->clients[id];
}

uint32_t brk_table_channel_count(const struct brk_table *t) { return t->channel_count; }

uint32_t brk_table_client_count(const struct brk_table *t) { return t->client_count; }

const struct brk_channel *brk_table_channel_at(const struct brk_table *t, uint32_t index)
{
    TRONE_ASSERT(index < t->channel_count);
    return &t->channels[t->channels_by_tag[index]];
}
