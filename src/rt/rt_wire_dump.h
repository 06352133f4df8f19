/* rt_wire_dump.h: a debugging aid for tests of what replicas can see (docs/QOP.md): when the
 * environment variable TRONE_DEBUG_EVENT_DUMP names a file, a replica appends to it the raw
 * bytes of every PUBLISH it receives and every DELIVER it sends (after the Noise session's
 * decryption, i.e. exactly what the replica handles and would store or forward). Off by
 * default; never used for anything but this dump. */
#ifndef TRONE_RT_WIRE_DUMP_H
#define TRONE_RT_WIRE_DUMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RT_WIRE_DUMP_ENV "TRONE_DEBUG_EVENT_DUMP"

/* Opens the dump file named by the environment (append mode), or returns NULL when the
 * variable is unset or empty, or the file cannot be opened (logged). */
FILE *rt_wire_dump_open(void);
/* Appends one record "u8 type | u32 size | bytes" for PUBLISH and DELIVER messages; other
 * types and a NULL file are ignored. Write errors are ignored (a debugging aid). */
void rt_wire_dump_write(FILE *file, const uint8_t *msg, size_t size);
/* Closes a file from rt_wire_dump_open; NULL is allowed. */
void rt_wire_dump_close(FILE *file);

#endif
