#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite:
#   1. a -Werror build, every ctest label but slow (unit, integration, e2e: real
#      guests under QEMU through libvirt's embedded driver, booting the default
#      guest kernel of scripts/guest-kernel.sh: ours, built by
#      scripts/build-kernel.sh; Debian's cloud kernel from scripts/fetch-kernel.sh
#      is fetched too, for the tests of the module resolver);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: unit, integration, images;
#   3. a clang libFuzzer build whose targets each run for a short, bounded time.
# Every skip is a failure: PL_TESTS_REQUIRED=1 turns the tests' own skips into
# failures, and any test ctest reports as "Not Run", "Skipped" or "Disabled"
# fails the run, named.
# Usage: scripts/test.sh [--quick]   (--quick skips the sanitizer and fuzz builds)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/setup.sh

step() { printf '\n==== %s ====\n' "$*"; }

configure_build() { # dir, cmake args...
        local dir=$1
        shift
        cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPL_WERROR=ON "$@" >"$dir.configure.log" 2>&1 ||
                { cat "$dir.configure.log"; return 1; }
        cmake --build "$dir" -j"$jobs"
}

failed=0
# Every skip is a failure here: PL_TESTS_REQUIRED=1 (exported below) makes the
# tests' own skips fail (tests/lib/test-skip.h, tests/lib/skip.sh), and a test
# ctest reports as "Not Run", "Skipped" or "Disabled" anyway fails the run.
run_ctest() { # dir, ctest args...
        local dir=$1 log
        shift
        log=$dir.ctest.log
        (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | tee "$log" || failed=1
        local not_run
        not_run=$(sed -nE 's/.*Test +#[0-9]+: ([^ ]+) .*\*\*\*(Not Run|Skipped|Disabled).*/  \1 (\2)/p' "$log")
        if [ -n "$not_run" ]; then
                echo "test.sh: in $dir, tests that did not run count as failures:" >&2
                echo "$not_run" >&2
                failed=1
        fi
}

step "guest kernels"
# Debian's, with loadable modules: what the module resolver and the
# initramfs builder are tested against (PL_MODULAR_KERNEL_DIR).
modular_dir=$(bash scripts/fetch-kernel.sh | tail -n 1)
[ -f "$modular_dir/vmlinuz" ] || { echo "test.sh: no kernel in '$modular_dir'" >&2; exit 1; }
# The guests' kernel: the default one (ours unless PL_KERNEL_DIR or
# PL_GUEST_KERNEL says otherwise), built here the first time.
t0=$(date +%s)
kernel_dir=$(bash scripts/guest-kernel.sh | tail -n 1)
[ -f "$kernel_dir/vmlinuz" ] || { echo "test.sh: no kernel in '$kernel_dir'" >&2; exit 1; }
echo "test.sh: guest kernel $kernel_dir ($(($(date +%s) - t0)) s)"
# Every test must run, not skip, here (e2e included).
export PL_KERNEL_DIR=$kernel_dir PL_MODULAR_KERNEL_DIR=$modular_dir PL_TESTS_REQUIRED=1

mkdir -p build
step "build (-Werror)"
configure_build build/ci
step "tests: every label but slow"
# slow (our kernel's fragments checked, a guest booted with it) runs on request:
#   (cd build/ci && ctest -L slow)
run_ctest build/ci -j2 -LE slow

if [ $quick -eq 0 ]; then
        step "build (ASan + UBSan)"
        configure_build build/asan -DPL_SANITIZE=ON
        step "tests under ASan + UBSan: unit, integration, images"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                run_ctest build/asan -L 'unit|integration|images' -j2

        step "fuzz targets (clang, libFuzzer), bounded runs"
        configure_build build/fuzz -DCMAKE_C_COMPILER=clang -DPL_FUZZ=ON
        run_ctest build/fuzz -L fuzz -j2 # one core each: every target still fuzzes for its full bound
fi

if [ $failed -ne 0 ]; then
        echo "test.sh: FAILED" >&2
        exit 1
fi
echo "test.sh: all suites passed"
