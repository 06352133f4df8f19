/* log.c: the key=value stderr logger, and the always-on assertion handler. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

static enum log_level log_threshold = LOG_INFO;

static const char *const log_level_names[] = {"debug", "info", "warn", "error", "fatal"};

void log_level_set(enum log_level level) { log_threshold = level; }

void log_level_from_env(void)
{
    const char *value = getenv("TRONE_LOG");
    if (value == NULL) {
        return;
    }
    for (int i = 0; i <= LOG_FATAL; i++) {
        if (strcmp(value, log_level_names[i]) == 0) {
            log_threshold = (enum log_level)i;
        }
    }
}

int log_enabled(enum log_level level) { return level >= log_threshold; }

void log_write(enum log_level level, const char *comp, const char *fmt, ...)
{
    if (level < log_threshold) {
        return;
    }
    char line[1024];
    int used = snprintf(line, sizeof(line), "level=%s comp=%s ", log_level_names[level], comp);
    if (used < 0 || (size_t)used >= sizeof(line)) {
        used = 0;
    }
    va_list args;
    va_start(args, fmt);
    vsnprintf(line + used, sizeof(line) - (size_t)used, fmt, args);
    va_end(args);
    /* One fputs per line so concurrent processes sharing a log file do not interleave. */
    size_t length = strlen(line);
    if (length + 1 < sizeof(line)) {
        line[length] = '\n';
        line[length + 1] = '\0';
    }
    fputs(line, stderr);
}

char *log_hex_sample(char *out, const void *data, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = data;
    size_t count = size < 64 ? size : 64;
    for (size_t i = 0; i < count; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * count] = '\0';
    return out;
}

void trone_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "level=fatal comp=assert expr=\"%s\" file=%s line=%d\n", expr, file, line);
    fflush(stderr);
    abort();
}
