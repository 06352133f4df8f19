/* cmd_spawn.h: child processes of this same binary for `trone bench` and `trone demo`: a
 * temporary directory, `trone init` and `trone replica` children (fork/exec of /proc/self/exe,
 * output to log files), stopping them by PID with a bounded wait, and a guard that runs the
 * command in a thread while the main thread waits for SIGINT/SIGTERM, so that every path
 * kills the children and removes the directory. Only for the CLI: no protocol code here. */
#ifndef TRONE_CMD_SPAWN_H
#define TRONE_CMD_SPAWN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/cfg.h"
#include "core/limits.h"
#include "rt/rt_client.h"
#include "trone/error.h"

#define SPAWN_PATH_MAX 1024u
/* Children alive at once: every replica of a few clusters, plus an init. */
#define SPAWN_CHILDREN_MAX 64u

/* Every child started through it and the temporary directory. Shared by the command's thread
 * (which starts and stops children) and the main thread (which cleans up on a signal). */
struct spawn_set {
    pthread_mutex_t lock;
    bool closing;                   /* cleanup began: no new child */
    bool keep_dir;                  /* leave dir in place at close */
    char exe[SPAWN_PATH_MAX];       /* this binary */
    char dir[SPAWN_PATH_MAX];       /* the temporary directory */
    pid_t pids[SPAWN_CHILDREN_MAX]; /* 0: free slot; a pid stays here until it is reaped */
};

/* Makes a fresh directory $TMPDIR/<prefix>-XXXXXX (mode 0700) and finds this binary. Returns 0
 * or TRONE_EIO with a one-line reason in errmsg. */
TRONE_MUST_CHECK int spawn_set_init(struct spawn_set *s, const char *prefix, char *errmsg,
                                    size_t errmsg_size);
/* Stops every child still registered (SIGTERM, up to 3 s, then SIGKILL), reaps them and removes
 * the directory unless keep_dir. Safe to call twice. */
void spawn_set_close(struct spawn_set *s);

/* Starts `<exe> argv...` (argv NULL-terminated, without the program name) with stdin from
 * /dev/null and stdout and stderr appended to log_path. The child gets SIGKILL if this
 * process dies. Returns 0 with *pid set, TRONE_ECLOSED after cleanup began, TRONE_EFULL
 * with SPAWN_CHILDREN_MAX children, or TRONE_EIO (reason in errmsg). */
TRONE_MUST_CHECK int spawn_start(struct spawn_set *s, char *const argv[], const char *log_path,
                                 pid_t *pid, char *errmsg, size_t errmsg_size);
/* As spawn_start, but runs exe (NULL: this binary) with env ("NAME=value", NULL: none) added
 * to this process's environment. */
TRONE_MUST_CHECK int spawn_start_exe(struct spawn_set *s, const char *exe, const char *env,
                                     char *const argv[], const char *log_path, pid_t *pid,
                                     char *errmsg, size_t errmsg_size);
/* As spawn_start, for another program (an absolute path; argv[0] becomes that path), such as a
 * baseline broker of `trone bench events`. Call it from a thread that outlives the child: the
 * child gets SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG). */
TRONE_MUST_CHECK int spawn_start_program(struct spawn_set *s, const char *program,
                                         char *const argv[], const char *log_path, pid_t *pid,
                                         char *errmsg, size_t errmsg_size);
/* Reaps pid if it has exited: returns true and its wait status in *wstatus (if not NULL); false
 * while it runs. A pid that is not registered counts as exited with status 0. */
bool spawn_exited(struct spawn_set *s, pid_t pid, int *wstatus);
/* Sends sig to pid, waits at most wait_ms for it to exit, then sends SIGKILL and reaps it.
 * Returns 0 if it exited within wait_ms (wait status in *wstatus), TRONE_ETIMEDOUT if it had
 * to be killed. */
int spawn_stop(struct spawn_set *s, pid_t pid, int sig, uint64_t wait_ms, int *wstatus);
/* Runs `<exe> argv...` to completion (at most timeout_ms, then it is killed). Returns 0 when it
 * exited with status 0; otherwise TRONE_EIO or TRONE_ETIMEDOUT with a reason naming log_path. */
TRONE_MUST_CHECK int spawn_run(struct spawn_set *s, char *const argv[], const char *log_path,
                               uint64_t timeout_ms, char *errmsg, size_t errmsg_size);
/* "exited with status 3", "killed by signal 9" (for messages). */
void spawn_describe_status(int wstatus, char *out, size_t out_size);

/* Runs body(ctx) in a new thread with SIGINT, SIGTERM and SIGHUP blocked; the calling thread
 * waits for the body or for one of those signals. Returns the body's result after
 * spawn_set_close. On a signal it prints "trone <cmd>: interrupted" to stderr, closes the set
 * and ends the process with status 1 (the body's thread may still be inside a call). */
int spawn_guard_run(struct spawn_set *s, const char *cmd, int (*body)(void *ctx), void *ctx);

/* A local cluster made by `trone init` inside the set's directory, and its replica children. */
struct spawn_cluster {
    struct spawn_set *set;
    char dir[SPAWN_PATH_MAX];          /* <set dir>/<name> */
    char cluster_path[SPAWN_PATH_MAX]; /* <dir>/cluster.conf */
    char admin_key_path[SPAWN_PATH_MAX];
    uint32_t replica_count;
    uint32_t batch_max;             /* 0: the replica's default; else --batch-max */
    pid_t pids[TRONE_REPLICAS_MAX]; /* 0: not running */
    struct cfg_cluster config;      /* as loaded after init */
};

/* Runs `trone init <set dir>/<name> --replicas n --fault-model bft|cft` (output in
 * <dir>/init.log) and loads the cluster file. Returns 0 or a TRONE_E* code with errmsg. */
TRONE_MUST_CHECK int spawn_cluster_init(struct spawn_cluster *c, struct spawn_set *s,
                                        const char *name, uint32_t replica_count, bool bft,
                                        char *errmsg, size_t errmsg_size);
/* Starts `trone replica --id id --cluster ... --data <dir>/data<id> [--batch-max N]`, output
 * appended to <dir>/replica<id>.log. Returns 0 or the code of spawn_start. */
TRONE_MUST_CHECK int spawn_replica_start(struct spawn_cluster *c, uint32_t id, char *errmsg,
                                         size_t errmsg_size);
/* As spawn_replica_start, with another replica binary (the test-only trone-byz, for the demo)
 * and one environment entry (see spawn_start_exe). */
TRONE_MUST_CHECK int spawn_replica_start_exe(struct spawn_cluster *c, uint32_t id,
                                             const char *exe, const char *env, char *errmsg,
                                             size_t errmsg_size);
/* The log file of replica id. */
void spawn_replica_log(const struct spawn_cluster *c, uint32_t id, char *out, size_t out_size);
/* Stops replica id with sig (see spawn_stop); a replica not running gives 0 and status 0. */
int spawn_replica_stop(struct spawn_cluster *c, uint32_t id, int sig, uint64_t wait_ms,
                       int *wstatus);
/* Returns 0 if every started replica still runs, else TRONE_EIO naming the first that exited
 * and how (it is then marked not running). */
TRONE_MUST_CHECK int spawn_cluster_check_alive(struct spawn_cluster *c, char *errmsg,
                                               size_t errmsg_size);
/* Stops every running replica with SIGTERM (bounded wait). Returns 0 if each exited with status
 * 0 by itself, else TRONE_EIO naming the first that did not. */
int spawn_cluster_stop(struct spawn_cluster *c, char *errmsg, size_t errmsg_size);

/* Polls status through client until every replica in mask answers in a normal (not changing)
 * view, with sessions to every other replica in mask, all in one view, and all with the same
 * table digest and executed seq when same_state is true; at most timeout_ms. Returns 0 with the
 * last report, or TRONE_ETIMEDOUT with a reason in errmsg. Also fails early if a running
 * replica exited. */
TRONE_MUST_CHECK int spawn_cluster_wait(struct spawn_cluster *c, struct rt_client *client,
                                        uint64_t mask, bool same_state, uint64_t timeout_ms,
                                        struct rt_client_status_report *report, char *errmsg,
                                        size_t errmsg_size);

/* Monotonic clock. */
uint64_t spawn_now_ns(void);
uint64_t spawn_now_ms(void);

#endif
