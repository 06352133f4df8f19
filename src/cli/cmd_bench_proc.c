/* cmd_bench_proc.c: what both benchmarks measure of processes (CPU time, peak memory) and how
 * they summarise latencies (see cmd_bench_proc.h). */
#include "cli/cmd_bench_proc.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

uint64_t bench_process_cpu_us(pid_t pid)
{
    char path[64];
    char line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces */
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2) {
        return 0;
    }
    long ticks = sysconf(_SC_CLK_TCK);
    return (utime + stime) * 1000000u / (unsigned long long)(ticks > 0 ? ticks : 100);
}

uint64_t bench_process_peak_kib(pid_t pid)
{
    char path[64];
    char line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    unsigned long long kib = 0;
    for (uint32_t i = 0; i < 128 && fgets(line, sizeof(line), f) != NULL; i++) {
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

uint64_t bench_self_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    uint64_t user = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
    return user + (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

int bench_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Nearest-rank percentile of sorted values, in ms. */
double bench_percentile_ms(const uint64_t *sorted, uint64_t count, double p)
{
    uint64_t rank = (uint64_t)(p * (double)count + 0.999999);
    rank = rank < 1 ? 1 : rank > count ? count : rank;
    return (double)sorted[rank - 1] / 1e6;
}
