// What a cache line costs when the other CPU wrote it last: two threads, pinned to CPU 0 and
// CPU 1, each write half of a buffer with 64-byte stores, then meet at a barrier, over and over.
//   same     each thread writes the same half every time (the lines stay in its own cache);
//   swapped  the halves swap every time (each line was last written by the other CPU);
//   read     each thread reads the other's half, which it wrote the time before, then writes its
//            own (a layer reading rows the other thread computed).
// Prints each case's time per round and the bytes each thread moves a second. Where the two
// vCPUs sit far apart (Benchmarks/core_roundtrip.c over 300 ns, different L3 caches) the other
// CPU's lines come at a fraction of the rate of one's own (BENCHMARKS.md, 2026-11-30 06:17 UTC).
//   gcc -O2 -mavx2 -pthread -o /tmp/cross_core_lines Benchmarks/cross_core_lines.c
//   /tmp/cross_core_lines [MiB, default 1.6] [rounds, default 1000]
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SAME, SWAPPED, READ };
static const char *const names[] = {"same", "swapped", "read"};

static size_t half_floats;
static long rounds;
static int mode;
static float *buffer;
static _Alignas(64) _Atomic long arrived[2][16];
static double seconds_taken;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Both threads past round `round`.
static void barrier(int self, long round) {
    atomic_store(&arrived[self][0], round);
    while (atomic_load(&arrived[1 - self][0]) < round) _mm_pause();
}

static void *run(void *argument) {
    int self = (int)(long)argument;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(self, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    barrier(self, 1);
    double start = now();
    for (long round = 0; round < rounds; round++) {
        int half = mode == SWAPPED ? self ^ (int)(round & 1) : self;
        __m256 value = _mm256_set1_ps((float)round);
        if (mode == READ) {
            const float *other = buffer + (size_t)(1 - half) * half_floats;
            __m256 sum = _mm256_setzero_ps();
            for (size_t i = 0; i < half_floats; i += 8) sum = _mm256_add_ps(sum, _mm256_load_ps(other + i));
            value = _mm256_add_ps(value, _mm256_mul_ps(sum, _mm256_setzero_ps()));
        }
        float *mine = buffer + (size_t)half * half_floats;
        for (size_t i = 0; i < half_floats; i += 8) _mm256_store_ps(mine + i, value);
        barrier(self, round + 2);
    }
    if (self == 0) seconds_taken = now() - start;
    return NULL;
}

int main(int argc, char **argv) {
    double mib = argc > 1 ? atof(argv[1]) : 1.6;
    rounds = argc > 2 ? atol(argv[2]) : 1000;
    if (!(mib > 0 && mib < 4096) || rounds < 1) {
        fprintf(stderr, "usage: %s [MiB, 0-4096] [rounds, at least 1]\n", argv[0]);
        return 2;
    }
    // Two halves of whole 64-byte lines.
    half_floats = ((size_t)(mib * 1048576) / 2 / 64) * 16;
    if (half_floats == 0) half_floats = 16;
    buffer = aligned_alloc(64, 2 * half_floats * sizeof(float));
    if (!buffer) return 1;
    memset(buffer, 0, 2 * half_floats * sizeof(float));
    for (mode = SAME; mode <= READ; mode++) {
        memset(arrived, 0, sizeof arrived);
        pthread_t threads[2];
        for (long i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, (void *)i);
        for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
        double per_round = seconds_taken / rounds;
        double bytes = (double)half_floats * sizeof(float) * (mode == READ ? 2 : 1);
        printf("%.2f MiB %-8s %8.2f us a round, %6.1f GB/s per thread\n", 2.0 * half_floats * sizeof(float) / 1048576, names[mode],
               per_round * 1e6, bytes / per_round / 1e9);
    }
    free(buffer);
    return 0;
}
