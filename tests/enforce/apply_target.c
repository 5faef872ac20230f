/* A pthreads program that keeps working while hostguard applies a filter to it.
 *
 * Workers loop: each iteration counts and tries mkdir(DIR/w<N>) (removed again when it
 * succeeds), keeping the last errno. Other threads block in one call each, forever or until
 * released: futex (a condition variable), nanosleep (SLEEP_MS), epoll_wait (no timeout: it
 * returns only when interrupted), read (a pipe). The main thread answers one command per line on stdin:
 *   status   -> "status I0 E0 I1 E1 ..." (iterations and last errno of each worker)
 *   new      -> "new E" (a new thread tries mkdir once: its errno, 0 when it succeeded)
 *   release  -> wakes the futex and read threads; then "released"
 *   results  -> "results futex=R sleep=R/ERRNO epoll=R/ERRNO read=R" once all four returned
 *   own      -> the two "own" threads (started with argv[3] == "own") load their own filter
 * The first line, once every thread runs: "ready futex=TID nanosleep=TID epoll_wait=TID
 * read=TID" (the blocked threads), or "ready" with "own".
 * Usage: apply_target DIR SLEEP_MS [own]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
static const char *dir;
static long sleep_ms;
static volatile long iterations[WORKERS];
static volatile int last_errno[WORKERS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int released, done;
static int pipe_fds[2];
static volatile int tids[4];
static char futex_result[32], sleep_result[32], epoll_result[32], read_result[32];

static int try_mkdir(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (mkdir(path, 0700) == 0) { rmdir(path); return 0; }
    return errno;
}

static void *worker(void *arg) {
    long n = (long)arg;
    char name[32];
    snprintf(name, sizeof name, "w%ld", n);
    for (;;) {
        last_errno[n] = try_mkdir(name);
        iterations[n]++;
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void finish(char *slot, const char *text) {
    pthread_mutex_lock(&lock);
    snprintf(slot, 32, "%s", text);
    done++;
    pthread_mutex_unlock(&lock);
}

static void *futex_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    tids[0] = gettid();
    while (!released) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    finish(futex_result, "0");
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec t = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000};
    char text[32];
    tids[1] = gettid();
    int r = nanosleep(&t, NULL);
    snprintf(text, sizeof text, "%d/%d", r, r ? errno : 0);
    finish(sleep_result, text);
    return NULL;
}

static void *epoller(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev;
    char text[32];
    tids[2] = gettid();
    int r = epoll_wait(ep, &ev, 1, -1);
    snprintf(text, sizeof text, "%d/%d", r, r < 0 ? errno : 0);
    finish(epoll_result, text);
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char byte, text[32];
    tids[3] = gettid();
    ssize_t r = read(pipe_fds[0], &byte, 1);
    snprintf(text, sizeof text, "%zd", r);
    finish(read_result, text);
    return NULL;
}

static void *own_filter(void *arg) {
    /* Allow everything, in a filter of this thread only (no TSYNC): its stack diverges. */
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void *new_thread(void *arg) {
    *(int *)arg = try_mkdir("new");
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t;
    if (argc < 3) return 2;
    dir = argv[1];
    sleep_ms = atol(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (pipe(pipe_fds)) return 1;
    if (argc > 3 && strcmp(argv[3], "own") == 0) {
        /* The main thread and one more each carry one filter of their own: same count,
           different stacks, which only the kernel's TSYNC check can tell. */
        struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {1, allow};
        pthread_create(&t, NULL, own_filter, NULL);
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
        usleep(100000);
    } else {
        for (long i = 0; i < WORKERS; i++) pthread_create(&t, NULL, worker, (void *)i);
        pthread_create(&t, NULL, futex_waiter, NULL);
        pthread_create(&t, NULL, sleeper, NULL);
        pthread_create(&t, NULL, epoller, NULL);
        pthread_create(&t, NULL, reader, NULL);
    }
    if (argc > 3) {
        printf("ready\n");
    } else {
        while (!tids[0] || !tids[1] || !tids[2] || !tids[3]) usleep(1000);
        printf("ready futex=%d nanosleep=%d epoll_wait=%d read=%d\n", tids[0], tids[1],
               tids[2], tids[3]);
    }
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "status", 6) == 0) {
            printf("status");
            for (int i = 0; i < WORKERS; i++) printf(" %ld %d", iterations[i], last_errno[i]);
            printf("\n");
        } else if (strncmp(line, "new", 3) == 0) {
            int result = -1;
            pthread_create(&t, NULL, new_thread, &result);
            pthread_join(t, NULL);
            printf("new %d\n", result);
        } else if (strncmp(line, "release", 7) == 0) {
            pthread_mutex_lock(&lock);
            released = 1;
            pthread_cond_broadcast(&cond);
            pthread_mutex_unlock(&lock);
            if (write(pipe_fds[1], "x", 1) != 1) return 1;
            printf("released\n");
        } else if (strncmp(line, "results", 7) == 0) {
            for (;;) {
                pthread_mutex_lock(&lock);
                int all = done == 4;
                pthread_mutex_unlock(&lock);
                if (all) break;
                usleep(10000);
            }
            printf("results futex=%s sleep=%s epoll=%s read=%s\n", futex_result, sleep_result,
                   epoll_result, read_result);
        }
    }
    return 0;
}
