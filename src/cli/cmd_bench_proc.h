/* cmd_bench_proc.h: process figures and latency percentiles shared by `trone bench control`
 * (cmd_bench.c) and `trone bench events` (cmd_bench_harness.c). Linux /proc; CLI only. */
#ifndef TRONE_CMD_BENCH_PROC_H
#define TRONE_CMD_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* User+system CPU time of a process in microseconds, from /proc/<pid>/stat; 0 if unreadable. */
uint64_t bench_process_cpu_us(pid_t pid);
/* Peak resident memory (VmHWM) of a process in KiB, from /proc/<pid>/status; 0 if unreadable. */
uint64_t bench_process_peak_kib(pid_t pid);
/* User+system CPU time of this process in microseconds. */
uint64_t bench_self_cpu_us(void);
/* qsort comparator of uint64_t. */
int bench_compare_u64(const void *a, const void *b);
/* Nearest-rank percentile p (0..1) of count sorted nanosecond values, in ms. */
double bench_percentile_ms(const uint64_t *sorted, uint64_t count, double p);

#endif
