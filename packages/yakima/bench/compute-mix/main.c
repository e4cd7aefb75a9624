/* bench:cpu's compute mix as a Denali image: argv[1] iterations (default 200). */
#include <stdio.h>
#include <stdlib.h>
#include "mix.h"

int main(int argc, char **argv) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
  if (n < 0) n = 0;
  printf("compute mix x%ld = %04x\n", n, (unsigned)compute_mix((uint32_t)n));
  return 0;
}
