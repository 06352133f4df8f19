/* assert.h: assertions that stay on in every build (STYLE.md rule 7).
 * TRONE_ASSERT is for programmer errors only: bytes from peers, disk or users are validated
 * and rejected with an error code, never asserted. */
#ifndef TRONE_ASSERT_H
#define TRONE_ASSERT_H

/* Logs level=fatal with the expression, file and line, then aborts. Never returns. */
_Noreturn void trone_assert_fail(const char *expr, const char *file, int line);

#define TRONE_ASSERT(expr) \
    ((expr) ? (void)0 : trone_assert_fail(#expr, __FILE__, __LINE__))

/* O(n) checks: on only in debug, test and simulator builds. */
#if defined(TRONE_SLOW_ASSERTS)
#define TRONE_ASSERT_SLOW(expr) TRONE_ASSERT(expr)
#else
#define TRONE_ASSERT_SLOW(expr) ((void)0)
#endif

#endif
