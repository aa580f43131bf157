// How far apart two CPUs are: two threads, pinned to CPU 0 and CPU 1, pass one cache line back
// and forth a million times; prints the time of one round trip. On this project's 2-vCPU VM it
// measured 72-92 ns in some runs and 363-414 ns in others (the host placing the vCPUs near or
// far), and every hand-off between nnbuild's threads costs accordingly (BENCHMARKS.md).
//   gcc -O2 -pthread -o /tmp/core_roundtrip Benchmarks/core_roundtrip.c && /tmp/core_roundtrip
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static _Alignas(64) _Atomic long ball;
enum { ROUNDS = 1000000 };

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Waits for the ball to read `first`, then returns `first` + 1, every other value.
static void play(long first) {
    for (long value = first; value < 2L * ROUNDS; value += 2) {
        while (atomic_load(&ball) != value) {}
        atomic_store(&ball, value + 1);
    }
}

static void *other(void *argument) {
    (void)argument;
    pin(1);
    play(1);
    return NULL;
}

int main(void) {
    pin(0);
    pthread_t thread;
    if (pthread_create(&thread, NULL, other, NULL) != 0) return 1;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    play(0);
    pthread_join(thread, NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) * 1e-9;
    printf("CPU 0 <-> CPU 1 round trip: %.0f ns\n", seconds / ROUNDS * 1e9);
    return 0;
}
