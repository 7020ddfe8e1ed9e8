/* The little libc the tests use: memory/string helpers, a polled 16550
 * console and a small printf (%d %i %u %x %X %p %s %c %%, l/ll/z sizes,
 * '0'/'-' flags and a field width). */
#ifndef MOTETEST_LIB_H_
#define MOTETEST_LIB_H_

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

void* memcpy(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strcmp(const char* a, const char* b);
int strncmp(const char* a, const char* b, size_t n);

void console_putc(char c);
/* Polled input: the next received byte, or -1 once `deadline` (deadline_ms) passes. */
int console_getc(uint64_t deadline);
void console_write(const char* s, size_t n);
/* printf takes a console lock so lines from different CPUs never interleave. */
int printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char* fmt, va_list ap);
/* Lock-free variant for the ring-0 exception path (the lock may be held by
 * the very code that faulted). */
int printf_unlocked(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats into buf (always NUL-terminated when size > 0); returns the length
 * the full output would have had. */
int snprintf(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char* buf, size_t size, const char* fmt, va_list ap);

#endif /* MOTETEST_LIB_H_ */
