/* brk_table_internal.h: helpers shared by the control table's files (brk_table.c,
 * brk_table_exec.c, brk_table_snapshot.c). Not for use outside src/broker/brk_table*. */
#ifndef TRONE_BRK_TABLE_INTERNAL_H
#define TRONE_BRK_TABLE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/brk_table.h"

/* Sentinel for "no client" (an unregistered caller). */
#define BRK_CLIENT_NONE (UINT16_MAX - 1u)
_Static_assert(TRONE_CLIENTS_MAX < BRK_CLIENT_NONE, "client ids stay below the sentinels");

/* Allocates the arrays of an empty table with no clients (not even the admin).
 * Returns 0 or TRONE_ENOMEM (everything freed, t zeroed). */
int brk__table_alloc(struct brk_table *t, const uint8_t admin_key[TRONE_KEY_LEN]);

/* Empties a table allocated by brk__table_alloc so it holds no clients and no channels,
 * clearing only what was written (clients fully, channel slots below channel_slots_used). */
void brk__table_reset(struct brk_table *t);

/* Binary searches: return the position where the key is or would be; *found says which. */
uint32_t brk__client_key_pos(const struct brk_table *t, const uint8_t key[TRONE_KEY_LEN],
                             bool *found);
uint32_t brk__client_name_pos(const struct brk_table *t, const char *name, bool *found);
uint32_t brk__channel_pos(const struct brk_table *t, const char *tag, bool *found);

/* The id of the client with this key or name, or BRK_CLIENT_NONE. */
uint16_t brk__client_id_by_key(const struct brk_table *t, const uint8_t key[TRONE_KEY_LEN]);
uint16_t brk__client_id_by_name(const struct brk_table *t, const char *name);
/* The id of the admin (always registered). */
uint16_t brk__admin_id(const struct brk_table *t);

/* Member lists are ordered by the clients' keys, BRK_CLIENT_ANY last, so their order is the
 * same on every replica whatever the registration order. */
bool brk__members_contain(const struct brk_table *t, const struct brk_member_list *list,
                          uint16_t id);
/* Inserts id if absent; the caller checked there is room (asserted). */
void brk__members_insert(const struct brk_table *t, struct brk_member_list *list, uint16_t id);
/* Removes id if present. */
void brk__members_remove(const struct brk_table *t, struct brk_member_list *list, uint16_t id);
/* True if client id (not NONE) may subscribe/publish under this list: admin, "*" or listed. */
bool brk__members_authorize(const struct brk_table *t, const struct brk_member_list *list,
                            uint16_t id);

/* Fills info with the channel's names, each list sorted by name. */
void brk__channel_info_fill(const struct brk_table *t, const struct brk_channel *ch,
                            struct brk_channel_info *info);

#endif
