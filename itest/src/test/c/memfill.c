/* memfill MIB [SEED]: fills MIB MiB of anonymous memory (plain malloc, no madvise) with pseudo-random pages that
 * depend only on SEED and the page's index, so processes with the same arguments hold identical memory and no
 * two pages of one process are alike. Prints "filled" and sleeps until killed. A test workload for KSM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    size_t words = mib << 17; /* 8-byte words */
    uint64_t *mem = malloc(words * 8);
    if (!mem) { perror("malloc"); return 1; }
    for (size_t page = 0; page < words / 512; page++) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (page + 1) * 0xBF58476D1CE4E5B9ull;
        for (size_t i = 0; i < 512; i++) { /* xorshift64 */
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            mem[page * 512 + i] = x;
        }
    }
    printf("filled %zu MiB\n", mib);
    fflush(stdout);
    for (;;) pause();
}
