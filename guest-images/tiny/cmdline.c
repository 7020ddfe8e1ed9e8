/* key=value lookup on the kernel command line (space-separated words; the
 * last occurrence of a key wins, as in Linux). */
#include "boot.h"
#include "lib.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

bool cmdline_get(const char* key, char* buf, unsigned size) {
  size_t klen = strlen(key);
  bool found = false;
  const char* p = boot.cmdline;
  while (*p) {
    while (is_space(*p)) ++p;
    const char* word = p;
    while (*p && !is_space(*p)) ++p;
    if (strncmp(word, key, klen) != 0) continue;
    const char* v = word + klen;
    if (v != p) {              /* not a bare "key" */
      if (*v != '=') continue; /* a longer key with the same prefix */
      ++v;
    }
    found = true;
    unsigned n = 0;
    while (v < p && n + 1 < size) buf[n++] = *v++;
    if (size) buf[n] = '\0';
  }
  return found;
}

uint64_t cmdline_u64(const char* key, uint64_t def) {
  char buf[24];
  if (!cmdline_get(key, buf, sizeof(buf)) || !buf[0]) return def;
  const char* s = buf;
  unsigned base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
  }
  uint64_t v = 0;
  for (; *s; ++s) {
    unsigned d;
    if (*s >= '0' && *s <= '9')
      d = *s - '0';
    else if (base == 16 && *s >= 'a' && *s <= 'f')
      d = *s - 'a' + 10;
    else if (base == 16 && *s >= 'A' && *s <= 'F')
      d = *s - 'A' + 10;
    else
      return def;
    v = v * base + d;
  }
  return v;
}
