/* parse-util.h: strict number and size parsing for everything a user or a
 * peer types: command-line options, kernel command line values, /etc/passwd
 * ids (libc only).
 *
 * strtoul() and friends skip leading blanks, accept a sign on unsigned
 * types (negating the value), stop silently at trailing garbage and report
 * overflow only through errno; atoi() reports nothing. These functions take
 * the whole string or nothing. */
#pragma once

#include <stdint.h>

/* Parses s, decimal digits only (no sign, no blanks, no base prefix), into
 * *ret. Returns 0, -EINVAL for NULL, "" or any other character (including a
 * leading "-" or "+" and trailing garbage), or -ERANGE when the value does
 * not fit. *ret is only written on success. */
int safe_atou64(const char *s, uint64_t *ret);
int safe_atou32(const char *s, uint32_t *ret);

/* Parses s, an optional "-" and decimal digits, into *ret. Errors as
 * safe_atou64(): -EINVAL for a bad string, -ERANGE outside [INT_MIN, INT_MAX]. */
int safe_atoi(const char *s, int *ret);

/* Parses a byte count: decimal digits with an optional single suffix K, M, G
 * or T (either case; base 1024), e.g. "512", "64M", "2g". Returns 0, -EINVAL
 * for a bad string (a sign, blanks, an unknown or second suffix), or -ERANGE
 * when the bytes overflow 64 bits. */
int parse_size(const char *s, uint64_t *ret);
