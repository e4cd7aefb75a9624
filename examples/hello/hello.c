/* The smallest Ilwaco service: greets, shows its boot arguments, exits 0. */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello from Denali VM %s!\n", argv[0]);
    printf("argc = %d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d] = \"%s\"\n", i, argv[i]);
    return 0;
}
