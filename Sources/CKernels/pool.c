// The worker threads behind nnb_parallel_for. A job is a count of items cut into one contiguous
// range per taking part thread (its seat: the caller's is 0, worker i's is i + 1), each range with
// its own counter. A thread takes the next unstarted item of its own range, then of the others',
// until none is left, so a worker the scheduler has put off (another process on its core) costs
// the items it has started and no more: the caller runs the rest itself. Without stealing, a
// thread runs the same share of every job: the kernels cut a batch-1 layer by output rows in
// order, so a thread reads mostly the rows it wrote itself in the layer before. That matters where
// the two vCPUs sit far apart (different L3 caches: a cache line's round trip of 350-400 ns
// against 75 ns): with one shared counter, items went to whichever thread came first, half of
// every layer's input came from the other core's cache, and MobileNetV2 at batch 1 ran 1.1× as
// fast on two threads as on one. Between jobs a worker spins for a short while
// before it sleeps, so that the many small parallel steps of one inference (a batch-1
// convolution takes 30 µs) do not each pay a thread wake-up, yet an idle process does not burn a
// core. The while counts from the last job that seated the worker, not its last job: a worker
// left out of the jobs (a call asking for fewer threads than the pool has) sleeps, and each
// worker sleeps on its own condition, woken only by a job that seats it. (With one shared condition, every job
// woke every sleeping worker, and a worker seated in no job still spun through every job: five
// workers on a 2-core VM ran two-seat jobs 31% slower, and on a large machine a call asking for
// two threads kept every core spinning.)
//
// On a busy machine (another process on the cores) two things can still make two threads slower
// than one, and the pool handles both here, for every job alike:
// - A worker descheduled in the middle of an item holds the caller until it runs again, a
//   scheduler time slice of milliseconds against a job of tens of microseconds. The caller waits
//   for such a straggler asleep, not spinning, so that its core is free for the straggler itself.
// - When that happens (a stall: the caller waited much longer than its own items took), the
//   worker is not reliably there, and each job it joins risks the same. The pool then runs jobs
//   on the caller alone for a while, doubling that while from 16 ms up to 1 s as stalls recur,
//   and tries the workers again after it. On an idle machine there are no stalls and nothing
//   changes; under steady contention a stall costs a few milliseconds per second at most.
// - With more runnable threads than cores (a busy process beside the caller and its worker), no
//   single job need stall, yet the caller gets about two thirds of a core, and the job's items
//   wait for it: two threads ran cnn_cifar at batch 1 at 40-70% of one thread's speed. So before
//   a job the pool counts the threads other than its own that are runnable on the machine (the
//   "running" count of /proc/loadavg, less the caller and the workers not asleep; read every 4 ms
//   at most, 0.8 µs a read) and takes part with no more threads than the cores they leave: on
//   two cores beside one busy process, the caller alone, with no part cutting either
//   (nnb_pool_backing_off). The smaller of the two last readings counts, so a thread that ran
//   for an instant changes nothing: on the idle 2-vCPU VM, 2-3% of the readings during a model's
//   run counted one thread more than ran for long. This replaced watching the caller's share of
//   the CPU over windows of jobs, which lost two windows (8 ms) before it acted, then kept the
//   caller alone for a backoff of up to a second whether or not the other process had stopped,
//   and on a machine of more cores knew only "alone" or "all".
#define _GNU_SOURCE  // sched_getaffinity, CPU_COUNT
#include "CKernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sched.h>
#include <fcntl.h>
#include <unistd.h>

// The job in progress. Each seat's range has a word `next`, holding the job's generation (high 32
// bits) and the range's next unstarted item (low 32 bits), and its end, on a cache line of its
// own: a thread takes an item with a compare-and-swap that fails when the job has changed, so a
// late worker never takes an item of a job it did not read. Jobs have even generations; before
// writing the next job's fields the caller closes the seats it will use by setting their words
// to the odd generation between (no item left), so that a worker still holding an old word fails
// its compare-and-swap even if it read some of the new fields. The caller writes them with
// release stores, in that order, and the workers read them with (sequentially consistent) loads
// that see them in that order; only the last store of the generation is sequentially consistent
// (the handshake with a sleeping worker needs its full fence). A sequentially consistent store is
// a locked instruction on x86 that waits for its cache line: eleven of them per job, each taking
// the line back from the worker spinning on it, cost 0.26 µs a job of two empty items against
// 0.16 µs now (the AMD EPYC, vCPUs 120 ns apart). `job_generation` is the job's generation alone,
// on a line of its own, what idle workers watch; `job_participants` how many seats the job has,
// with the job's other fields on the next line; `job_finished` on a third, which the worker
// raises and the caller watches.
enum { MAX_SEATS = 64 };
typedef struct {
    _Alignas(64) _Atomic uint64_t next;
    _Atomic long end;
} seat_range;
static seat_range seat_ranges[MAX_SEATS];
static _Alignas(64) _Atomic uint64_t job_generation;
static _Alignas(64) _Atomic long job_participants;
static _Atomic(nnb_task) job_task;
static _Atomic(void *) job_context;
static _Atomic long job_count;
static _Alignas(64) _Atomic long job_finished;
// Set while the caller sleeps waiting for a worker's last items (`finished`, under finish_lock).
static _Atomic int caller_sleeping;
static pthread_mutex_t finish_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;

// Where each worker sleeps: `asleep` is set under `lock` before the worker waits on `wake`;
// sleepers counts the workers asleep.
typedef struct {
    _Alignas(64) pthread_mutex_t lock;
    pthread_cond_t wake;
    _Atomic int asleep;
} seat_sleep;
static seat_sleep sleep_slots[MAX_SEATS];
static _Atomic long sleepers;

static long worker_count;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
// Held while a job runs: a second caller (another thread, or a task asking for threads itself)
// runs its items in order on its own thread instead of waiting.
static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;

// How long a worker spins after a job before it sleeps.
static const double spin_seconds = 200e-6;
// How long the caller spins for a worker's last items before it sleeps: about a batch-1 item.
static const double straggler_spin_seconds = 50e-6;

// Contention state, read and written only by the thread holding pool_busy: until when jobs run
// on the caller alone, the current length of that while, and when the last stall was.
static double serial_until;
// serial_until as other threads read it (nnb_pool_backing_off).
static _Atomic double serial_until_published;
static double serial_backoff;
// A stall: the caller waited for workers more than twice its own items' time plus this.
static const double stall_margin_seconds = 200e-6;
static const double first_backoff_seconds = 16e-3, longest_backoff_seconds = 1.0;
// A stall whose wait is more than stall_share_recurring of the time the workers ran since the
// last backoff ended is the same busy spell, and the backoff doubles; else it starts again, at
// most first_backoff_seconds and at most stall_backoff_per_wait times the wait. The idle 2-core
// VM has sporadic stalls: a kernel thread takes a vCPU for about a millisecond, about twice a
// second (on a period of 512 ms). The rule before counted a stall within four backoffs of the
// last one's end as recurring, a memory that reached that period once the backoff was 128 ms, so
// a few close stalls set it doubling on every sporadic one after: MobileNetV2 at batch 1 on two
// threads ran alone for most of a run (425 samples/s against 520-550). A busy spell stalls again
// within a few milliseconds of the workers' return, for as long as a scheduler slice.
static const double stall_share_recurring = 1.0 / 8, stall_backoff_per_wait = 8;
// The machine's other runnable threads (see above), read at most every load_check_seconds by
// whichever thread asks first then (a job's caller, or a kernel asking nnb_pool_backing_off: one
// that does not split while the pool has no room would otherwise never look again); the
// smaller of the last two readings counts. machine_room: the threads a job may have at most.
static const double load_check_seconds = 4e-3;
static _Atomic double load_checked_at = -1;
static _Atomic long others_now, machine_room;

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

// The threads runnable on the machine now that are not this pool's (/proc/loadavg's "running"
// count, which takes in every runnable thread, less the caller and the workers not asleep), or
// 0 when it cannot be read (no /proc: the stall rule alone guards then). The file is opened
// once, with the pool.
static int loadavg_descriptor = -1;

static long other_runnable_threads(void) {
    if (loadavg_descriptor < 0) return 0;
    char text[128];
    ssize_t length = pread(loadavg_descriptor, text, sizeof text - 1, 0);
    if (length <= 0) return 0;
    text[length] = 0;
    // "0.52 0.58 0.59 3/245 12345": the fourth field, before its slash.
    const char *field = text;
    for (int spaces = 0; spaces < 3; field++) {
        if (!*field) return 0;
        if (*field == ' ') spaces++;
    }
    long running = 0;
    for (; *field >= '0' && *field <= '9'; field++) running = running * 10 + (*field - '0');
    if (*field != '/') return 0;
    long ours = 1 + worker_count - atomic_load(&sleepers);
    return running > ours ? running - ours : 0;
}

// The threads a job may have now: the cores less the other runnable threads, at least 1. Any
// thread may call it; one at a time reads the file (the one whose compare-and-swap moves
// load_checked_at on), the others take the last figure. Timed by the coarse clock (a tick of
// 4 ms, 4 ns a read against 21 for the fine one): nnb_pool_backing_off asks this on every
// product a kernel may split, at batch 1 a few hundred times per inference of a recurrent model.
static double coarse_seconds_now(void) {
    struct timespec t;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
#else
    clock_gettime(CLOCK_MONOTONIC, &t);
#endif
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static long room_on_machine(void) {
    double now = coarse_seconds_now();
    double checked = atomic_load_explicit(&load_checked_at, memory_order_relaxed);
    if (now - checked >= load_check_seconds &&
        atomic_compare_exchange_strong_explicit(&load_checked_at, &checked, now, memory_order_relaxed, memory_order_relaxed)) {
        long now_others = other_runnable_threads(), before = atomic_exchange_explicit(&others_now, now_others, memory_order_relaxed);
        long others = before < now_others ? before : now_others;
        long room = worker_count + 1 - others;
        atomic_store_explicit(&machine_room, room > 1 ? room : 1, memory_order_relaxed);
    }
    return atomic_load_explicit(&machine_room, memory_order_relaxed);
}

// A stall at `now` that held the caller for `wait`: jobs run on the caller alone for the backoff,
// which doubles while stalls recur (stall_share_recurring).
static void back_off(double now, double wait) {
    double ran = now - wait - serial_until;
    int recurring = serial_backoff > 0 && wait > stall_share_recurring * ran;
    double first = stall_backoff_per_wait * wait < first_backoff_seconds ? stall_backoff_per_wait * wait : first_backoff_seconds;
    serial_backoff = !recurring ? first
        : (serial_backoff * 2 < longest_backoff_seconds ? serial_backoff * 2 : longest_backoff_seconds);
    serial_until = now + serial_backoff;
    atomic_store_explicit(&serial_until_published, serial_until, memory_order_relaxed);
}

// How far apart the caller and the first worker sit: a cache line's round trip between them, as
// Benchmarks/core_roundtrip.c measures it (two threads passing a value back and forth on one
// line), the smallest over a window of `round_trip_window` samples. One job in
// `round_trip_every` that seats a worker spinning for jobs is a sample: after publishing it the
// caller waits for seat 1 to announce itself on the line, then they pass the value
// `ping_rounds` times each way before taking their items (about 2 µs per 64 jobs; fewer rounds
// measured the Intel Xeon 210-250 ns against core_roundtrip.c's 175-190); either side
// gives up after `round_trip_patience` (a thread put off: no sample). The round trip decides
// whether a thread may read what the other wrote in the layer before at small cost: on the AMD
// EPYC VM it was 75-125 ns or 330-410 ns depending on where the vCPUs sat on the host, and in the
// far placement splitting cnn_cifar's small convolutions cost 9%; on the Intel Xeon (family 6,
// model 207) it is 150-200 ns, and splitting them made cnn_cifar at batch 1 15% faster (2,860 →
// 3,300 samples/s, four alternating rounds). The threshold lies between. (The measure before,
// the one-way time from a job's publication to the worker's clock reading, was 64 ns in the AMD
// EPYC's near placement but 170-340 ns on the Intel Xeon, whose `pause` between the spinning
// worker's loads takes about 50 ns: that machine counted as far apart.) Written by the caller
// under pool_busy (and the ball by seat 1); read by any thread.
static _Alignas(64) _Atomic uint64_t ping_ball;      // (generation << 8) | step
static _Alignas(64) _Atomic uint32_t ping_generation;  // the job that is a sample, set before it is published
static double round_trip_smallest = 1;
static int round_trip_samples;
static long jobs_since_sample;
static _Atomic double last_round_trip;  // the last complete window's smallest; 0 before one
enum { round_trip_window = 4, round_trip_every = 64, ping_rounds = 8 };
static const double round_trip_patience = 5e-6, far_round_trip_seconds = 270e-9;

// Spins until the ball holds `value`; 0 when round_trip_patience passes first (from `since`).
static int await_ball(uint64_t value, double since) {
    for (long spins = 1; atomic_load_explicit(&ping_ball, memory_order_acquire) != value; spins++)
        if (spins % 64 == 0 && seconds_now() - since > round_trip_patience) return 0;
    return 1;
}

// Whether the next job, `generation`, is a sample (seat 1 taking part and not asleep): then it is
// announced to seat 1 before the job is published.
static int will_sample_round_trip(uint32_t generation) {
    if (++jobs_since_sample < round_trip_every || atomic_load(&sleep_slots[1].asleep)) return 0;
    jobs_since_sample = 0;
    atomic_store_explicit(&ping_generation, generation, memory_order_release);
    return 1;
}

// The caller's side of a sample, after publishing job `generation`.
static void sample_round_trip(uint32_t generation) {
    uint64_t base = (uint64_t)generation << 8;
    double start = seconds_now();
    if (!await_ball(base + 1, start)) return;
    start = seconds_now();
    for (uint64_t round = 0; round < ping_rounds; round++) {
        atomic_store_explicit(&ping_ball, base + 2 + 2 * round, memory_order_release);
        if (!await_ball(base + 3 + 2 * round, start)) return;
    }
    double trip = (seconds_now() - start) / ping_rounds;
    if (trip < round_trip_smallest) round_trip_smallest = trip;
    if (++round_trip_samples < round_trip_window) return;
    atomic_store_explicit(&last_round_trip, round_trip_smallest, memory_order_relaxed);
    round_trip_smallest = 1;
    round_trip_samples = 0;
}

// Seat 1's side of a sample of job `generation`.
static void answer_round_trip(uint32_t generation) {
    uint64_t base = (uint64_t)generation << 8;
    atomic_store_explicit(&ping_ball, base + 1, memory_order_release);
    double start = seconds_now();
    for (uint64_t round = 0; round < ping_rounds; round++) {
        if (!await_ball(base + 2 + 2 * round, start)) return;
        atomic_store_explicit(&ping_ball, base + 3 + 2 * round, memory_order_release);
    }
}

// Each seat's speed against the caller's (seat 0's, 1), what nnb_pool_share splits by. Two vCPUs
// of a VM do not run at one speed: a host thread beside one of them (its hyperthread sibling, its
// core's other tenant) slows it for seconds at a time, and in a job cut into one part per thread
// the faster thread then waits for the other. Timed per item over 4-second runs of MobileNetV2 at
// batch 1 on the Intel Xeon (family 6, model 207), the worker's items took 3,844 ms against the
// caller's 3,226 in one run and 2,858 against 3,760 in the next; over its layers the worker ran
// at 0.84-1.10 of the caller's speed (0.93-0.95 overall), each job's ratio scattered about that
// by about a fifth. A job whose parts were weighed (nnb_parallel_for_weighted) is a sample when
// each seat ran its own part, one each: the part's weight over the time from the job's
// publication to the part's end, against the caller's (from the same moment), moves the seat's
// speed a 32nd of the way (speed_sample_weight: a job's scatter averages out over an inference's
// few dozen jobs, a drift of seconds is followed), within [1/4, 4] of the caller's. Read by any
// thread (the kernels cutting parts), written by the caller under pool_busy.
static _Atomic double seat_speeds[MAX_SEATS];
static const double speed_sample_weight = 1.0 / 32, slowest_relative_speed = 0.25;
// Of a weighed job of one item per seat: which seat ran each item, and when it ended.
typedef struct {
    _Alignas(64) _Atomic long seat;
    _Atomic double ended;
} item_record;
static item_record item_records[MAX_SEATS];
static _Atomic int job_recorded;

double nnb_pool_share(long seat, long seats) {
    if (seats <= 1 || seat < 0 || seat >= seats || seats > MAX_SEATS) return seats >= 1 ? 1.0 / (double)seats : 1;
    double total = 0;
    for (long index = 0; index < seats; index++) {
        double speed = atomic_load_explicit(&seat_speeds[index], memory_order_relaxed);
        total += speed > 0 ? speed : 1;
    }
    double own = atomic_load_explicit(&seat_speeds[seat], memory_order_relaxed);
    return (own > 0 ? own : 1) / total;
}

// After a weighed job of one item per seat that every seat took its own of: each seat's speed
// against the caller's, from when its item ended (the job published at `published`).
static void learn_speeds(long participants, const double *weights, double published) {
    double caller_time = atomic_load(&item_records[0].ended) - published;
    if (caller_time <= 0 || weights[0] <= 0) return;
    for (long seat = 1; seat < participants; seat++) {
        double time = atomic_load(&item_records[seat].ended) - published;
        if (time <= 0 || weights[seat] <= 0) continue;
        double relative = (weights[seat] / time) / (weights[0] / caller_time);
        if (relative < slowest_relative_speed) relative = slowest_relative_speed;
        if (relative > 1 / slowest_relative_speed) relative = 1 / slowest_relative_speed;
        double old = atomic_load_explicit(&seat_speeds[seat], memory_order_relaxed);
        if (old <= 0) old = 1;
        atomic_store_explicit(&seat_speeds[seat], old + speed_sample_weight * (relative - old), memory_order_relaxed);
    }
}

int nnb_pool_far_apart(void) {
    return nnb_pool_round_trip() > far_round_trip_seconds;
}

double nnb_pool_round_trip(void) {
    return atomic_load_explicit(&last_round_trip, memory_order_relaxed);
}

static void start_pool(void);

int nnb_pool_backing_off(void) {
    pthread_once(&pool_once, start_pool);
    if (worker_count > 0 && room_on_machine() == 1) return 1;
    // (A backoff of 16 ms or more read on the coarse clock, which lags by up to a tick: it ends
    // for the kernels at most 4 ms after it ends for the pool.)
    return coarse_seconds_now() < atomic_load_explicit(&serial_until_published, memory_order_relaxed);
}

// Runs items of job `generation` from seat `seat`'s range, then from the others' in turn, until
// none is left unstarted; returns how many it ran.
static long take_items(uint32_t generation, long seat) {
    long ran = 0, participants = atomic_load(&job_participants);
    if (participants > MAX_SEATS) participants = MAX_SEATS;
    for (long turn = 0; turn < participants; turn++) {
        seat_range *range = &seat_ranges[(seat + turn) % participants];
        for (;;) {
            uint64_t word = atomic_load(&range->next);
            // Another generation: the job is over (its seats are published before workers see it).
            if ((uint32_t)(word >> 32) != generation) return ran;
            long index = (long)(word & 0xffffffffu);
            nnb_task task = atomic_load(&job_task);
            void *context = atomic_load(&job_context);
            long count = atomic_load(&job_count);
            if (index >= atomic_load(&range->end)) break;
            if (!atomic_compare_exchange_weak(&range->next, &word, word + 1)) continue;
            task(context, index);
            if (index < MAX_SEATS && atomic_load_explicit(&job_recorded, memory_order_relaxed)) {
                atomic_store_explicit(&item_records[index].seat, seat, memory_order_relaxed);
                atomic_store_explicit(&item_records[index].ended, seconds_now(), memory_order_relaxed);
            }
            // The job's last item: wake the caller if it sleeps. job_finished is raised before
            // caller_sleeping is read, and the caller sets caller_sleeping before it reads
            // job_finished (both sequentially consistent), so one of the two sees the other.
            if (atomic_fetch_add(&job_finished, 1) + 1 == count && atomic_load(&caller_sleeping)) {
                pthread_mutex_lock(&finish_lock);
                pthread_cond_signal(&finished);
                pthread_mutex_unlock(&finish_lock);
            }
            ran++;
        }
    }
    return ran;
}

// Whether a job (an even generation) other than generation `seen` is published.
static int is_new_job(uint32_t seen) {
    uint32_t generation = (uint32_t)atomic_load(&job_generation);
    return generation != seen && (generation & 1) == 0;
}

// Sleeps until a job other than `seen` is published that seats worker `seat`. The slot's
// `asleep` is raised before the job's generation and seats are read again, and the caller
// publishes the generation before it reads `asleep` (all sequentially consistent): either this
// thread sees the new job or the caller sees it asleep and wakes it under the slot's lock.
static void sleep_until_seated(long seat, uint32_t seen) {
    seat_sleep *slot = &sleep_slots[seat];
    pthread_mutex_lock(&slot->lock);
    atomic_store(&slot->asleep, 1);
    atomic_fetch_add(&sleepers, 1);
    while (!is_new_job(seen) || seat >= atomic_load(&job_participants)) pthread_cond_wait(&slot->wake, &slot->lock);
    atomic_fetch_sub(&sleepers, 1);
    atomic_store(&slot->asleep, 0);
    pthread_mutex_unlock(&slot->lock);
}

static void *worker_main(void *argument) {
    long seat = (long)(intptr_t)argument;
    uint32_t seen = 0;
    double idle_since = seconds_now();
    for (;;) {
        long spins = 0;
        while (!is_new_job(seen)) {
            relax();
            if (++spins % 128 == 0 && seconds_now() - idle_since > spin_seconds) {
                sleep_until_seated(seat, seen);
                idle_since = seconds_now();
            }
        }
        seen = (uint32_t)atomic_load(&job_generation);
        // Closed again since (the next job is being written): wait for that one.
        if (seen & 1) { seen--; continue; }
        // A job of fewer seats than this worker's: its items are the others'. The worker spins on
        // for what is left of its while, then sleeps until a job seats it.
        if (seat >= atomic_load(&job_participants)) continue;
        // Seated: the while starts again, whether or not the caller has left it an item (a
        // worker that came late to every job, and so ran none, slept between them all:
        // bilstm_text at batch 1 woke its worker 6,000 times a second).
        idle_since = seconds_now();
        if (seat == 1 && atomic_load_explicit(&ping_generation, memory_order_acquire) == seen) answer_round_trip(seen);
        take_items(seen, seat);
        idle_since = seconds_now();
    }
    return NULL;
}

// The cores this process may run on: the CPUs online, fewer when its affinity mask (taskset, a
// container's cpuset) allows fewer, and fewer again under a cgroup v2 CPU quota (cpu.max,
// rounded up). A pool sized by the CPUs online alone gave a process confined to one CPU a worker
// on the caller's own core: cnn_cifar at batch 1 ran at 4,871 samples/s on "two threads" against
// 8,062 on one, MobileNetV2 at 171 against 292. Sets *confined when the mask leaves out some
// CPUs: the machine's runnable threads (/proc/loadavg) then run on other cores than these.
static long usable_cores(int *confined) {
    long online = sysconf(_SC_NPROCESSORS_ONLN), cores = online > 0 ? online : 1;
    *confined = 0;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        long allowed = CPU_COUNT(&set);
        if (allowed > 0 && allowed < cores) {
            cores = allowed;
            *confined = 1;
        }
    }
    FILE *limit = fopen("/sys/fs/cgroup/cpu.max", "re");
    if (limit) {
        char quota[32] = {0};
        long period = 0;
        // "max 100000" (no quota) or "150000 100000" (1.5 CPUs' time).
        // (A quota past any sensible size, or a period that does not parse, leaves the count.)
        if (fscanf(limit, "%31s %ld", quota, &period) == 2 && period > 0 && period < (1L << 40) && quota[0] >= '0' && quota[0] <= '9') {
            long time = strtol(quota, NULL, 10);
            long share = time > 0 && time < (1L << 40) ? (time + period - 1) / period : 0;
            if (share >= 1 && share < cores) cores = share;
        }
        fclose(limit);
    }
#endif
    return cores;
}

static void start_pool(void) {
    int confined = 0;
    long cores = usable_cores(&confined);
    // The machine-wide count of runnable threads says nothing of a subset of its CPUs.
    if (!confined) loadavg_descriptor = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    long wanted = cores > 1 ? cores - 1 : 0;
    if (wanted > MAX_SEATS - 1) wanted = MAX_SEATS - 1;
    for (long seat = 0; seat < MAX_SEATS; seat++) {
        pthread_mutex_init(&sleep_slots[seat].lock, NULL);
        pthread_cond_init(&sleep_slots[seat].wake, NULL);
    }
    for (long i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, worker_main, (void *)(intptr_t)(i + 1)) != 0) break;
        pthread_detach(thread);
        worker_count = i + 1;
    }
}

long nnb_pool_threads(void) {
    pthread_once(&pool_once, start_pool);
    return worker_count + 1;
}

// Publishes a job: the last one closed, the new one's fields written, then its generation with
// item 0. Returns the generation. Called holding pool_busy.
static uint32_t publish_job(long count, long participants, nnb_task task, void *context) {
    // The seats this job uses closed first (their words at the odd generation between, no item
    // left), so that a worker still holding an old word fails its compare-and-swap even if it
    // read some of the new fields or the new end; then the new fields, the seats' ranges, and
    // last the generation the workers watch. (A seat this job leaves out keeps an old word whose
    // items are all taken, against its old end.)
    uint32_t generation = (uint32_t)atomic_load(&job_generation) + 2;
    uint64_t closed = ((uint64_t)(generation - 1) << 32) | 0xffffffffu;
    const memory_order release = memory_order_release;
    atomic_store_explicit(&job_generation, generation - 1, release);
    for (long seat = 0; seat < participants; seat++) atomic_store_explicit(&seat_ranges[seat].next, closed, release);
    atomic_store_explicit(&job_task, task, release);
    atomic_store_explicit(&job_context, context, release);
    atomic_store_explicit(&job_count, count, release);
    atomic_store_explicit(&job_finished, 0, release);
    atomic_store_explicit(&caller_sleeping, 0, release);
    atomic_store_explicit(&job_participants, participants, release);
    for (long seat = 0; seat < participants; seat++) {
        atomic_store_explicit(&seat_ranges[seat].end, (seat + 1) * count / participants, release);
        atomic_store_explicit(&seat_ranges[seat].next, ((uint64_t)generation << 32) | (uint64_t)(seat * count / participants), release);
    }
    int sample = will_sample_round_trip(generation);
    atomic_store(&job_generation, generation);
    // The seated workers that sleep, each woken alone.
    for (long seat = 1; seat < participants && atomic_load(&sleepers) > 0; seat++) {
        seat_sleep *slot = &sleep_slots[seat];
        if (!atomic_load(&slot->asleep)) continue;
        pthread_mutex_lock(&slot->lock);
        pthread_cond_signal(&slot->wake);
        pthread_mutex_unlock(&slot->lock);
    }
    if (sample) sample_round_trip(generation);
    return generation;
}

// Waits out a job's items that workers still run (every item is taken), then releases
// pool_busy. `own_end` is when the caller's own share ended; a wait much longer than the
// caller's own share (since `start`) is a stall. With `weights` (a job of one item per seat,
// published at `published`), a sample of the seats' speeds when each took its own item
// (learn_speeds).
static void finish_job(double start, double own_end, long count, const double *weights, double published) {
    if (atomic_load_explicit(&job_finished, memory_order_acquire) < count) {
        // Spin about an item's time, then sleep, leaving this core to a worker the scheduler has
        // put off.
        long spins = 0;
        while (atomic_load_explicit(&job_finished, memory_order_acquire) < count) {
            relax();
            if (++spins % 64 == 0 && seconds_now() - own_end > straggler_spin_seconds) {
                atomic_store(&caller_sleeping, 1);
                pthread_mutex_lock(&finish_lock);
                while (atomic_load(&job_finished) < count) pthread_cond_wait(&finished, &finish_lock);
                pthread_mutex_unlock(&finish_lock);
            }
        }
        double end = seconds_now();
        if (end - own_end > 2 * (own_end - start) + stall_margin_seconds) {
            back_off(end, end - own_end);
            weights = NULL;  // a worker put off: not its speed
        }
    }
    if (weights) {
        int own = 1;
        for (long index = 0; index < count && own; index++) own = atomic_load_explicit(&item_records[index].seat, memory_order_relaxed) == index;
        if (own) learn_speeds(count, weights, published);
    }
    pthread_mutex_unlock(&pool_busy);
}

// Takes pool_busy for a job of `count` items on up to `threads` threads; returns the threads
// that will take part, or 1 (pool_busy not held) when the caller should run alone: one thread
// asked for or worth having, another job running, the pool backing off, or the machine's cores
// taken by other threads.
static long begin_job(long count, long threads, double *start) {
    pthread_once(&pool_once, start_pool);
    long participants = threads;
    if (participants > worker_count + 1) participants = worker_count + 1;
    if (participants > count) participants = count;
    if (participants <= 1 || count >= 0xffffffffL || pthread_mutex_trylock(&pool_busy) != 0) return 1;
    *start = seconds_now();
    if (*start < serial_until) {
        // A recent stall: the workers are not reliably there.
        pthread_mutex_unlock(&pool_busy);
        return 1;
    }
    long room = room_on_machine();
    if (participants > room) participants = room;
    if (participants <= 1) {
        pthread_mutex_unlock(&pool_busy);
        return 1;
    }
    return participants;
}

void nnb_parallel_for(long count, long threads, nnb_task task, void *context) {
    nnb_parallel_for_weighted(count, threads, task, context, NULL);
}

void nnb_parallel_for_weighted(long count, long threads, nnb_task task, void *context, const double *weights) {
    double start = 0;
    long participants = begin_job(count, threads, &start);
    if (participants <= 1) {
        for (long index = 0; index < count; index++) task(context, index);
        return;
    }
    // A sample of the seats' speeds: one weighed item per seat. (The items' records are written
    // with relaxed stores before each item's count in job_finished, which the caller reads
    // before them.)
    int recorded = weights != NULL && count == participants;
    atomic_store_explicit(&job_recorded, recorded, memory_order_relaxed);
    if (recorded)
        for (long index = 0; index < count; index++) atomic_store_explicit(&item_records[index].seat, -1, memory_order_relaxed);
    double published = recorded ? seconds_now() : 0;
    uint32_t generation = publish_job(count, participants, task, context);
    int sampled_round_trip = atomic_load_explicit(&ping_generation, memory_order_relaxed) == generation;
    take_items(generation, 0);
    finish_job(start, seconds_now(), count, recorded && !sampled_round_trip ? weights : NULL, published);
}

// The rounds of nnb_parallel_steps. `round_word` holds the round's id (high 32 bits, counting up
// across calls, so that a part claimed with a stale word fails its compare-and-swap) and its
// next unclaimed part; `round_done` counts the parts of the round that have finished. A follower
// (a worker that joined) claims parts while `team_open` is set, then leaves.
// Each on its own cache line: the follower spins reading round_word while the caller's and its
// own increments of round_done would otherwise take the line away from it.
static _Alignas(64) _Atomic uint64_t round_word;
static _Alignas(64) _Atomic long round_done;
static _Alignas(64) _Atomic int team_open;
static _Atomic long team_followed;  // parts the follower ran
static _Atomic int team_joined;     // set when the follower starts
static uint32_t round_counter;
static nnb_step_task team_task;
static void *team_context;
static long team_parts;

// Claims and runs parts of the round `round_id` (step `step`) until none is left unclaimed.
static void run_round_parts(uint32_t round_id, long step, int follower) {
    for (;;) {
        uint64_t word = atomic_load(&round_word);
        long part = (long)(word & 0xffffffffu);
        if ((uint32_t)(word >> 32) != round_id || part >= team_parts) return;
        if (!atomic_compare_exchange_weak(&round_word, &word, word + 1)) continue;
        team_task(team_context, step, part);
        atomic_fetch_add(&round_done, 1);
        if (follower) atomic_fetch_add_explicit(&team_followed, 1, memory_order_relaxed);
    }
}

// The follower: the job's one item. It takes parts of each round as it opens, spinning between
// rounds (a step takes about a microsecond), until the caller closes the team.
static void follow_team(void *context, long index) {
    (void)context;
    (void)index;
    atomic_store(&team_joined, 1);
    while (atomic_load(&team_open)) {
        uint64_t word = atomic_load(&round_word);
        uint32_t round_id = (uint32_t)(word >> 32);
        long part = (long)(word & 0xffffffffu);
        if (part < team_parts) {
            // The step of a round is its id's distance from the team's first round.
            long step = (long)(uint32_t)(round_id - (uint32_t)(uintptr_t)context);
            run_round_parts(round_id, step, 1);
        } else {
            relax();
        }
    }
}

// Whether a team pays, per call site (`tuning`, read and written under pool_busy). A round
// costs its slowest part plus hand-offs between cores, and where the cores are far apart a team
// loses: this 2-vCPU VM's two vCPUs land on different parts of the host from run to run (a cache
// line's round trip measured 74 ns in some runs and 380 ns in others), and gru_text's team ran at
// 0.66x the speed of one thread in the slow placement, 1.4x in the fast one. So each call site
// keeps the seconds per step of both ways, runs the faster, and times the other again every
// probe_seconds (a moving average: the way it runs weighs a new call by a quarter, a probe by a
// half). Calls of another key (a batch of other rows) start the measurement again.
// A team is timed from the step at which its worker joined: waking a worker that slept (after
// alone calls, it has) costs tens of microseconds, which steady team calls do not pay, and timed
// in, it kept a site alone that ran 1.4x faster as a team. One call counts at most twice the
// average so far (a stall is one call, not the placement).
static const double probe_seconds = 0.05;

static double moving(double old, double value, double weight) {
    if (old <= 0) return value;
    if (value > 2 * old) value = 2 * old;
    return old + weight * (value - old);
}

static void run_alone(long steps, long parts, nnb_step_task task, nnb_step_end end, void *context) {
    for (long step = 0; step < steps; step++) {
        for (long part = 0; part < parts; part++) task(context, step, part);
        if (end) end(context, step);
    }
}

long nnb_parallel_steps(long steps, long parts, long threads, nnb_step_task task, nnb_step_end end, void *context,
                        nnb_step_tuning *tuning, long key) {
    double start = 0;
    long participants = parts > 1 && steps > 0 ? begin_job(1 + 1, threads, &start) : 1;
    if (participants <= 1) {
        run_alone(steps, parts, task, end, context);
        return 0;
    }
    int probing = 0;
    if (tuning) {
        if (tuning->key != key) {
            tuning->key = key;
            tuning->team_seconds_per_step = tuning->alone_seconds_per_step = tuning->probe_after = 0;
        }
        int team = tuning->alone_seconds_per_step <= 0 ? 0
            : tuning->team_seconds_per_step <= 0 ? 1 : tuning->team_seconds_per_step < tuning->alone_seconds_per_step;
        if (tuning->alone_seconds_per_step > 0 && tuning->team_seconds_per_step > 0 && start >= tuning->probe_after) {
            team = !team;
            probing = 1;
            tuning->probe_after = start + probe_seconds;
        }
        if (!team) {
            // Alone, timed, still holding the pool (no other caller's job runs meanwhile).
            run_alone(steps, parts, task, end, context);
            tuning->alone_seconds_per_step = moving(tuning->alone_seconds_per_step, (seconds_now() - start) / steps, probing ? 0.5 : 0.25);
            pthread_mutex_unlock(&pool_busy);
            return 0;
        }
    }
    team_task = task;
    atomic_store(&team_followed, 0);
    atomic_store(&team_joined, 0);
    long joined_step = -1;
    double joined_at = 0;
    team_context = context;
    team_parts = parts;
    uint32_t first_round = round_counter + 1;
    atomic_store(&round_word, ((uint64_t)round_counter << 32) | 0xffffffffu);
    atomic_store(&team_open, 1);
    // One item, the follower's seat; the first round's id rides in its context.
    uint32_t generation = publish_job(1, 2, follow_team, (void *)(uintptr_t)first_round);
    for (long step = 0; step < steps; step++) {
        uint32_t round_id = ++round_counter;
        // Release stores (plain stores on x86): the follower, which sees the new word, sees the
        // count reset and what the step before wrote; no load here must wait for them.
        atomic_store_explicit(&round_done, 0, memory_order_release);
        atomic_store_explicit(&round_word, (uint64_t)round_id << 32, memory_order_release);
        if (joined_step < 0 && tuning && atomic_load_explicit(&team_joined, memory_order_relaxed)) {
            joined_step = step;
            joined_at = seconds_now();
        }
        run_round_parts(round_id, step, 0);
        if (atomic_load_explicit(&round_done, memory_order_acquire) < parts) {
            // A part the follower runs: spin about its time. A follower put off by the scheduler
            // in the middle of a part holds the round: then the caller yields its core, and once
            // the part is in, the team closes and the pool backs off, as for a stall. The clock
            // is read only once the wait outlasts 64 spins: most rounds end sooner.
            double waited_from = 0;
            long spins = 0;
            int stalled = 0;
            while (atomic_load_explicit(&round_done, memory_order_acquire) < parts) {
                relax();
                if (++spins % 64 != 0) continue;
                double now = seconds_now();
                if (waited_from == 0) waited_from = now;
                else if (now - waited_from > straggler_spin_seconds) {
                    sched_yield();
                    stalled = 1;
                }
            }
            // The caller alone closes the team, so team_open is its own record of it.
            if (stalled && atomic_load(&team_open)) {
                atomic_store(&team_open, 0);
                double now = seconds_now();
                back_off(now, now - waited_from);
            }
        }
        if (end) end(context, step);
    }
    atomic_store(&team_open, 0);
    atomic_store(&round_word, ((uint64_t)round_counter << 32) | 0xffffffffu);
    // The follower's seat, if no worker took it: the caller takes it and leaves at once.
    take_items(generation, 0);
    double finished_at = seconds_now();
    if (tuning && joined_step < 0) {
        // The worker never came: the team was the caller alone, paying for the job.
        tuning->team_seconds_per_step = moving(tuning->team_seconds_per_step, (finished_at - start) / steps, probing ? 0.5 : 0.25);
    } else if (tuning && 2 * (steps - joined_step) >= steps) {
        tuning->team_seconds_per_step = moving(tuning->team_seconds_per_step, (finished_at - joined_at) / (steps - joined_step),
                                               probing ? 0.5 : 0.25);
    }
    finish_job(start, finished_at, 1, NULL, 0);
    return atomic_load(&team_followed);
}
