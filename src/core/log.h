/* log.h: one line per event, "level=... comp=... key=value", to stderr (DESIGN.md 6).
 * Only runtimes, the CLI and tools log; protocol cores report trace records instead. */
#ifndef TRONE_LOG_H
#define TRONE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_FATAL = 4 };

/* Lines below this level are dropped. Default LOG_INFO; TRONE_LOG=debug|info|warn|error. */
void log_level_set(enum log_level level);
void log_level_from_env(void);
int log_enabled(enum log_level level);

/* Writes "level=L comp=C " followed by the formatted key=value text and a newline. */
void log_write(enum log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats at most 64 bytes of data as hex into out (size >= 129); returns out. Used to log a
 * sample of hostile input. */
char *log_hex_sample(char *out, const void *data, size_t size);

#define log_debug(comp, ...) \
    (log_enabled(LOG_DEBUG) ? log_write(LOG_DEBUG, comp, __VA_ARGS__) : (void)0)
#define log_info(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)

#endif
