/* pltest.h: the shared test fixtures (tests/lib, library pltest).
 *
 *   test-skip.h    the one way to skip: SKIP line, 77, or a failure under
 *                  PL_TESTS_REQUIRED=1; test_run_group()
 *   test-files.h   temporary directories, reading and writing small files
 *   test-sh.h      shell command lines, with or without their output
 *   test-golden.h  golden files (PL_UPDATE_GOLDEN=1 rewrites them)
 *
 * and, included on their own where needed: test-net.h (a test's own network
 * namespace, `ip` output), agent-harness.h (the real agent
 * on a socket or a pty), registry-harness.h (a real registry on loopback,
 * test images), ext4-read.h (reading an ext4 image back with libext2fs).
 * Include cmocka before this header. */
#pragma once

#include "lib/test-files.h"
#include "lib/test-golden.h"
#include "lib/test-sh.h"
#include "lib/test-skip.h"
