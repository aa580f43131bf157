// The worker threads behind nnb_parallel_for. Each worker owns a mailbox (a task range and a
// state); the calling thread fills the mailboxes, runs the first range itself and waits for the
// others. Between jobs a worker spins for a short while before it sleeps, so that the many small
// parallel steps of one inference (a batch-1 convolution takes 30 µs) do not each pay a thread
// wake-up, yet an idle process does not burn a core.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { IDLE = 0, READY = 1, DONE = 2 };

typedef struct {
    _Atomic int state;
    _Atomic int sleeping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    nnb_task task;
    void *context;
    long begin, end;
} worker;

static worker *workers;
static long worker_count;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
// Held while a job runs: a second caller (another thread, or a task asking for threads itself)
// runs its tasks in order on its own thread instead of waiting.
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;

// How long a worker spins after a job before it sleeps.
static const double spin_seconds = 200e-6;

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *worker_main(void *argument) {
    worker *w = argument;
    for (;;) {
        double start = seconds_now();
        long spins = 0;
        while (atomic_load_explicit(&w->state, memory_order_acquire) != READY) {
            relax();
            if (++spins % 128 == 0 && seconds_now() - start > spin_seconds) {
                // sleeping is set before state is read again, and the caller sets state before
                // it reads sleeping (both sequentially consistent): either this thread sees READY
                // or the caller sees it sleeping and signals under the lock.
                pthread_mutex_lock(&w->lock);
                atomic_store(&w->sleeping, 1);
                while (atomic_load(&w->state) != READY) pthread_cond_wait(&w->wake, &w->lock);
                atomic_store(&w->sleeping, 0);
                pthread_mutex_unlock(&w->lock);
            }
        }
        for (long index = w->begin; index < w->end; index++) w->task(w->context, index);
        atomic_store_explicit(&w->state, DONE, memory_order_release);
    }
    return NULL;
}

static void start_pool(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long wanted = cores > 1 ? cores - 1 : 0;
    workers = calloc(wanted > 0 ? wanted : 1, sizeof(worker));
    if (!workers) return;
    for (long i = 0; i < wanted; i++) {
        worker *w = &workers[i];
        atomic_init(&w->state, IDLE);
        atomic_init(&w->sleeping, 0);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, w) != 0) break;
        pthread_detach(thread);
        worker_count = i + 1;
    }
}

long nnb_pool_threads(void) {
    pthread_once(&pool_once, start_pool);
    return worker_count + 1;
}

void nnb_parallel_for(long count, long threads, nnb_task task, void *context) {
    pthread_once(&pool_once, start_pool);
    long participants = threads;
    if (participants > worker_count + 1) participants = worker_count + 1;
    if (participants > count) participants = count;
    if (participants <= 1 || pthread_mutex_trylock(&pool_busy) != 0) {
        for (long index = 0; index < count; index++) task(context, index);
        return;
    }
    for (long p = 1; p < participants; p++) {
        worker *w = &workers[p - 1];
        w->task = task;
        w->context = context;
        w->begin = p * count / participants;
        w->end = (p + 1) * count / participants;
        atomic_store(&w->state, READY);
        if (atomic_load(&w->sleeping)) {
            pthread_mutex_lock(&w->lock);
            pthread_cond_signal(&w->wake);
            pthread_mutex_unlock(&w->lock);
        }
    }
    for (long index = 0; index < count / participants; index++) task(context, index);
    for (long p = 1; p < participants; p++) {
        worker *w = &workers[p - 1];
        // Spin while the worker is likely running; then yield, in case it waits for this very
        // core (a worker just woken, or sharing the core with us): spinning on regardless held
        // it off until the scheduler's next tick, 4 ms in a one-sample `nnbuild infer`.
        long spins = 0;
        while (atomic_load_explicit(&w->state, memory_order_acquire) != DONE) {
            if (++spins < 4096) relax();
            else sched_yield();
        }
        atomic_store_explicit(&w->state, IDLE, memory_order_relaxed);
    }
    pthread_mutex_unlock(&pool_busy);
}
