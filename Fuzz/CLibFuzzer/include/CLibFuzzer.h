#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer). The harness calls it from its own
   entry point, because SwiftPM names an executable's main itself. Referenced only in builds with
   -DFUZZING, so plain builds never need the symbol. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
