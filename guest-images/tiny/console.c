/* Polled output on the COM1 16550 and a small printf. Every byte costs two
 * port exits (LSR poll + THR write), so the tests keep their output short. */
#include "arch.h"
#include "lib.h"
#include "platform.h"
#include "test.h"

#define UART_THR 0
#define UART_RBR 0
#define UART_LSR 5
#define UART_LSR_DR 0x01
#define UART_LSR_THRE 0x20

static spinlock_t console_lock;

void console_putc(char c) {
  while (!(inb(COM1_PORT + UART_LSR) & UART_LSR_THRE)) cpu_relax();
  outb(COM1_PORT + UART_THR, (uint8_t)c);
}

int console_getc(uint64_t deadline) {
  while (!(inb(COM1_PORT + UART_LSR) & UART_LSR_DR)) {
    if (deadline_passed(deadline)) return -1;
    cpu_relax();
  }
  return inb(COM1_PORT + UART_RBR);
}

void console_write(const char* s, size_t n) {
  while (n--) console_putc(*s++);
}

/* Output target of the formatter: the console, or a bounded buffer. */
struct sink {
  char* buf; /* NULL: console */
  size_t size;
  size_t len; /* characters produced so far */
};

static void emit(struct sink* out, char c) {
  if (!out->buf) {
    console_putc(c);
  } else if (out->len + 1 < out->size) {
    out->buf[out->len] = c;
  }
  out->len++;
}

static void emit_padded(struct sink* out, const char* s, size_t n, int width, char pad, int left) {
  int fill = width > (int)n ? width - (int)n : 0;
  if (!left) {
    while (fill-- > 0) emit(out, pad);
  }
  while (n--) emit(out, *s++);
  if (left) {
    while (fill-- > 0) emit(out, ' ');
  }
}

static void format(struct sink* out, const char* fmt, va_list ap) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      emit(out, *fmt);
      continue;
    }
    ++fmt;
    char pad = ' ';
    int left = 0, width = 0, longs = 0;
    for (;; ++fmt) {
      if (*fmt == '0')
        pad = '0';
      else if (*fmt == '-')
        left = 1;
      else
        break;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    for (;; ++fmt) {
      if (*fmt == 'l' || *fmt == 'z')
        longs++;
      else
        break;
    }
    char tmp[24];
    const char* s = tmp;
    size_t n = 0;
    switch (*fmt) {
      case 'c':
        tmp[0] = (char)va_arg(ap, int);
        n = 1;
        break;
      case 's':
        s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        n = strlen(s);
        break;
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'p': {
        uint64_t v;
        int negative = 0;
        if (*fmt == 'p') {
          v = (uint64_t)va_arg(ap, void*);
        } else if (*fmt == 'd' || *fmt == 'i') {
          int64_t sv = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
          negative = sv < 0;
          v = negative ? -(uint64_t)sv : (uint64_t)sv;
        } else {
          v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
        }
        unsigned base = (*fmt == 'd' || *fmt == 'i' || *fmt == 'u') ? 10 : 16;
        const char* digits = *fmt == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
        char* p = tmp + sizeof(tmp);
        do {
          *--p = digits[v % base];
          v /= base;
        } while (v);
        if (*fmt == 'p') {
          *--p = 'x';
          *--p = '0';
        }
        if (negative) {
          if (pad == '0' && width) { /* sign before the zeros */
            emit(out, '-');
            width--;
          } else {
            *--p = '-';
          }
        }
        s = p;
        n = tmp + sizeof(tmp) - p;
        break;
      }
      case '%':
        tmp[0] = '%';
        n = 1;
        break;
      case '\0':
        return;
      default: /* unknown: print it as is, easier to spot than dropping it */
        tmp[0] = '%';
        tmp[1] = *fmt;
        n = 2;
        break;
    }
    emit_padded(out, s, n, width, pad, left);
  }
}

int vsnprintf(char* buf, size_t size, const char* fmt, va_list ap) {
  struct sink out = {buf, size, 0};
  format(&out, fmt, ap);
  if (size) buf[out.len < size ? out.len : size - 1] = '\0';
  return (int)out.len;
}

int snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

int vprintf(const char* fmt, va_list ap) {
  struct sink out = {NULL, 0, 0};
  spin_lock(&console_lock);
  format(&out, fmt, ap);
  spin_unlock(&console_lock);
  return (int)out.len;
}

int printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}

int printf_unlocked(const char* fmt, ...) {
  struct sink out = {NULL, 0, 0};
  va_list ap;
  va_start(ap, fmt);
  format(&out, fmt, ap);
  va_end(ap);
  return (int)out.len;
}
