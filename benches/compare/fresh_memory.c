/* What fresh memory costs on this machine: touch one byte per 4 KiB page of a new anonymous
 * mapping (each touch is a page fault: the kernel finds, zeroes and maps a page), then touch
 * the same pages again (no fault). Twice, each time with a new mapping.
 *
 *   gcc -O2 -o /tmp/fresh_memory benches/compare/fresh_memory.c && /tmp/fresh_memory 2
 *
 * The OneID batch at 10M rows touches about 2 GB of memory it did not have; this says what
 * that alone costs in system time. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  size_t gb = argc > 1 ? (size_t)atol(argv[1]) : 2;
  size_t n = gb << 30;
  for (int round = 0; round < 2; round++) {
    char *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    double t = now();
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    double first = now() - t;
    t = now();
    for (size_t i = 0; i < n; i += 4096) p[i] = 2;
    double second = now() - t;
    printf("round %d: first touch %.3f s/GB, touched again %.3f s/GB\n", round, first / gb,
           second / gb);
    munmap(p, n);
  }
  return 0;
}
