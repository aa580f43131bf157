// The worker threads behind nnb_parallel_for. A job is a count of items and one shared counter:
// the caller and every worker that joins take the next unstarted item until none is left, so a
// worker the scheduler has put off (another process on its core) costs the items it has started
// and no more: the caller runs the rest itself. Between jobs a worker spins for a short while
// before it sleeps, so that the many small parallel steps of one inference (a batch-1
// convolution takes 30 µs) do not each pay a thread wake-up, yet an idle process does not burn a
// core.
#include "CKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

// The job in progress. `claim` holds the job's generation (high 32 bits) and its next unstarted
// item (low 32 bits): a worker takes an item with a compare-and-swap that fails when the job has
// changed, so a late worker never takes an item of a job it did not read. The other fields are
// atomics because a late worker may read them while the next job is written; it then discards
// what it read, since its compare-and-swap fails.
static _Atomic uint64_t claim;
static _Atomic(nnb_task) job_task;
static _Atomic(void *) job_context;
static _Atomic long job_count;
static _Atomic long job_finished;
static _Atomic long job_seats;  // workers that may still join the job

static _Atomic long sleepers;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static long worker_count;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
// Held while a job runs: a second caller (another thread, or a task asking for threads itself)
// runs its items in order on its own thread instead of waiting.
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

// Runs items of job `generation` until none is left unstarted; returns how many it ran.
static long take_items(uint32_t generation) {
    long ran = 0;
    for (;;) {
        uint64_t word = atomic_load(&claim);
        if ((uint32_t)(word >> 32) != generation) return ran;
        long index = (long)(word & 0xffffffffu);
        nnb_task task = atomic_load_explicit(&job_task, memory_order_relaxed);
        void *context = atomic_load_explicit(&job_context, memory_order_relaxed);
        if (index >= atomic_load_explicit(&job_count, memory_order_relaxed)) return ran;
        if (!atomic_compare_exchange_weak(&claim, &word, word + 1)) continue;
        task(context, index);
        atomic_fetch_add_explicit(&job_finished, 1, memory_order_release);
        ran++;
    }
}

static void *worker_main(void *argument) {
    (void)argument;
    uint32_t seen = 0;
    for (;;) {
        double start = seconds_now();
        long spins = 0;
        while ((uint32_t)(atomic_load(&claim) >> 32) == seen) {
            relax();
            if (++spins % 128 == 0 && seconds_now() - start > spin_seconds) {
                // sleepers is raised before claim is read again, and the caller changes claim
                // before it reads sleepers (both sequentially consistent): either this thread sees
                // the new job or the caller sees it asleep and wakes it under the lock.
                pthread_mutex_lock(&sleep_lock);
                atomic_fetch_add(&sleepers, 1);
                while ((uint32_t)(atomic_load(&claim) >> 32) == seen) pthread_cond_wait(&wake, &sleep_lock);
                atomic_fetch_sub(&sleepers, 1);
                pthread_mutex_unlock(&sleep_lock);
            }
        }
        seen = (uint32_t)(atomic_load(&claim) >> 32);
        if (atomic_fetch_sub(&job_seats, 1) <= 0) continue;
        take_items(seen);
    }
    return NULL;
}

static void start_pool(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long wanted = cores > 1 ? cores - 1 : 0;
    for (long i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, NULL) != 0) break;
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
    if (participants <= 1 || count > 0xffffffffL || pthread_mutex_trylock(&pool_busy) != 0) {
        for (long index = 0; index < count; index++) task(context, index);
        return;
    }
    // The job's fields first, then the new generation with item 0, which publishes them.
    uint32_t generation = (uint32_t)(atomic_load(&claim) >> 32) + 1;
    atomic_store_explicit(&job_task, task, memory_order_relaxed);
    atomic_store_explicit(&job_context, context, memory_order_relaxed);
    atomic_store_explicit(&job_count, count, memory_order_relaxed);
    atomic_store_explicit(&job_finished, 0, memory_order_relaxed);
    atomic_store(&job_seats, participants - 1);
    atomic_store(&claim, (uint64_t)generation << 32);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    take_items(generation);
    // Every item is taken; wait only for those a worker is still running. Spin while one is
    // likely running, then yield, in case it waits for this very core.
    long spins = 0;
    while (atomic_load_explicit(&job_finished, memory_order_acquire) < count) {
        if (++spins < 4096) relax();
        else sched_yield();
    }
    pthread_mutex_unlock(&pool_busy);
}
