/* rt_wire_dump.c: the replica's optional dump of PUBLISH and DELIVER bytes (rt_wire_dump.h),
 * used by tests/integration/test_qop.sh to show that PKE payloads never appear in clear. */
#include "rt/rt_wire_dump.h"

#include <stdlib.h>

#include "chan/chan_msg.h"
#include "core/log.h"

FILE *rt_wire_dump_open(void)
{
    const char *path = getenv(RT_WIRE_DUMP_ENV);
    if (path == NULL || path[0] == '\0') {
        return NULL;
    }
    FILE *file = fopen(path, "ae");
    if (file == NULL) {
        log_warn("replica", "msg=\"cannot open the event dump\" path=%s", path);
        return NULL;
    }
    log_warn("replica", "msg=\"dumping every PUBLISH and DELIVER (debugging aid)\" path=%s", path);
    return file;
}

void rt_wire_dump_write(FILE *file, const uint8_t *msg, size_t size)
{
    if (file == NULL || size == 0 || size > UINT32_MAX ||
        (msg[0] != CHAN_MSG_PUBLISH && msg[0] != CHAN_MSG_DELIVER)) {
        return;
    }
    uint8_t header[5] = {msg[0], (uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16),
                         (uint8_t)(size >> 24)};
    (void)fwrite(header, 1, sizeof(header), file);
    (void)fwrite(msg, 1, size, file);
    (void)fflush(file);
}

void rt_wire_dump_close(FILE *file)
{
    if (file != NULL) {
        (void)fclose(file);
    }
}
