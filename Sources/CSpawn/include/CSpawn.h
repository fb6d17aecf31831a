#ifndef CSPAWN_H
#define CSPAWN_H

#include <spawn.h>

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34), which <spawn.h> declares only under
/// _GNU_SOURCE and Swift's Glibc module therefore does not show: the child closes every
/// descriptor from `lowest` on.
int cspawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowest);

#endif
