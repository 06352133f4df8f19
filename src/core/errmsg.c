/* errmsg.c: see errmsg.h. */
#include "core/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

void errmsg_set(char *errmsg, size_t errmsg_size, const char *fmt, ...)
{
    if (errmsg == NULL || errmsg_size == 0) {
        return;
    }
    va_list args;
    va_start(args, fmt);
    vsnprintf(errmsg, errmsg_size, fmt, args);
    va_end(args);
}
