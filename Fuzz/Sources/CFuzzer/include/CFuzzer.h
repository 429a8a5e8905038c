#ifndef TASKMESH_CFUZZER_H
#define TASKMESH_CFUZZER_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry for a program with its own main (llvm.org/docs/LibFuzzer.html): it parses
// libFuzzer's flags from argc/argv and calls `callback` with each input.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
