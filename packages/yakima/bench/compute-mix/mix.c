/* A CoreMark-like compute mix (our own; the same kinds of work as EEMBC CoreMark: list
 * processing, matrix manipulation, a state machine, CRC), shared by the Denali image and the
 * native 32-bit build in bench:cpu. No libc: only stdint. */
#include "mix.h"

#define LIST_N 256
#define MAT_N 24

struct node { struct node *next; uint32_t key, val; };
static struct node pool[LIST_N];
static int32_t ma[MAT_N * MAT_N], mb[MAT_N * MAT_N], mc[MAT_N * MAT_N];
static const char text[] = "123,456 -78.9e+2 0x1f 5012 +4 bad! 3.14159 -0.5e-3 77 99,100 end ";

static uint16_t crc16(uint16_t crc, uint8_t b) {
  crc ^= b;
  for (int i = 0; i < 8; i++) crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
  return crc;
}

static uint32_t list_work(uint32_t seed) {
  struct node *head = 0;
  for (int i = 0; i < LIST_N; i++) {
    pool[i].key = (seed * 2654435761u + (uint32_t)i * 40503u) & 0xffff;
    pool[i].val = (uint32_t)i;
    pool[i].next = head;
    head = &pool[i];
  }
  uint32_t found = 0;
  for (uint32_t q = 0; q < 16; q++) {
    uint32_t want = (seed + q * 977u) & 0xffff;
    for (struct node *n = head; n; n = n->next)
      if (n->key >= want) { found += n->val; break; }
  }
  struct node *prev = 0;
  while (head) { struct node *nx = head->next; head->next = prev; prev = head; head = nx; }
  for (struct node *n = prev; n; n = n->next) found = found * 31u + n->key;
  return found;
}

static uint32_t matrix_work(uint32_t seed) {
  for (int i = 0; i < MAT_N * MAT_N; i++) {
    ma[i] = (int32_t)((seed + (uint32_t)i * 7u) % 97u) - 48;
    mb[i] = (int32_t)((seed * 3u + (uint32_t)i * 13u) % 89u) - 44;
  }
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++) {
      int32_t s = 0;
      for (int k = 0; k < MAT_N; k++) s += ma[i * MAT_N + k] * mb[k * MAT_N + j];
      mc[i * MAT_N + j] = s;
    }
  uint32_t sum = 0;
  for (int i = 0; i < MAT_N * MAT_N; i++) sum += (uint32_t)mc[i] ^ (uint32_t)i;
  return sum;
}

enum { START, INT, FRAC, EXP_SIGN, EXP, HEX, BAD };

static uint32_t state_work(uint32_t seed) {
  uint32_t counts[7] = {0};
  int st = START;
  for (uint32_t i = 0; text[i]; i++) {
    char c = (char)(text[i] ^ (char)((seed >> (i & 7)) & 0));
    switch (st) {
    case START: st = (c >= '0' && c <= '9') ? INT : (c == '+' || c == '-') ? INT : (c == ' ' || c == ',') ? START : BAD; break;
    case INT: st = (c >= '0' && c <= '9') ? INT : c == '.' ? FRAC : (c == 'e' || c == 'E') ? EXP_SIGN : c == 'x' ? HEX : (c == ' ' || c == ',') ? START : BAD; break;
    case FRAC: st = (c >= '0' && c <= '9') ? FRAC : (c == 'e' || c == 'E') ? EXP_SIGN : (c == ' ' || c == ',') ? START : BAD; break;
    case EXP_SIGN: st = (c == '+' || c == '-' || (c >= '0' && c <= '9')) ? EXP : BAD; break;
    case EXP: st = (c >= '0' && c <= '9') ? EXP : (c == ' ' || c == ',') ? START : BAD; break;
    case HEX: st = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ? HEX : (c == ' ' || c == ',') ? START : BAD; break;
    default: st = (c == ' ') ? START : BAD; break;
    }
    counts[st]++;
  }
  uint32_t r = seed;
  for (int i = 0; i < 7; i++) r = r * 33u + counts[i];
  return r;
}

uint32_t compute_mix(uint32_t iterations) {
  uint16_t crc = 0xffff;
  for (uint32_t it = 0; it < iterations; it++) {
    uint32_t r[3] = {list_work(it), matrix_work(it), state_work(it)};
    for (int k = 0; k < 3; k++)
      for (int b = 0; b < 4; b++) crc = crc16(crc, (uint8_t)(r[k] >> (8 * b)));
  }
  return crc;
}
