/*
 * The flood benchmark's sender (bench/flood.bench.ts compiles it with `cc -O2` into the lab
 * folder and runs it inside the flooder's network namespace; nothing else uses it).
 *
 * Sends RESETS HARD_RESET_CLIENT_V2 packets and GARBAGE malformed datagrams to DST:PORT, as fast
 * as one thread can: a raw socket (IPPROTO_RAW, so the IP header is ours) and sendmmsg in
 * batches of 64, resets and garbage interleaved batch by batch. Every packet has a random source
 * port and a random source address inside SRC/BITS (the caller routes that prefix back to this
 * namespace, so replies stay inside the lab), and every reset a random session id. Bounded twice:
 * it stops after RESETS + GARBAGE packets or MAX_SECONDS, whichever comes first, and prints one
 * JSON line with what it sent.
 *
 * WRAP says what the resets look like: "tls-crypt" (the 2.6 layout with the early-negotiation
 * replay id and a random 32-byte tag, so only the server's HMAC check can refuse it), "tls-auth"
 * (a random 20-byte HMAC-SHA1 field, replay id 1 and the time, then a plain body: again only the
 * HMAC check refuses it), "tls-crypt-v2" (a HARD_RESET_CLIENT_V3 laid out as tls-crypt's with a
 * random WKc of a 2.6 client's size after it: 32-byte tag, 256-byte key and 9 bytes of metadata
 * encrypted, the length; only the server key's check of the WKc refuses it) or "none" (a plain
 * reset the server must answer: ack count 0, message id 0).
 *
 * Garbage is a third each of: random bytes of random length (1..1400); a valid opcode byte cut
 * short (1..13 bytes, shorter than any control header); a valid opcode with a body of random
 * bytes (control opcodes, and P_DATA_V2 with a random peer-id).
 *
 * usage: flooder DST PORT SRC BITS RESETS GARBAGE MAX_SECONDS WRAP
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PACKET 1500
#define HEADERS (sizeof(struct iphdr) + sizeof(struct udphdr))

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void) {
  /* xorshift64*: fast and good enough to make every packet differ. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dULL;
}

static void random_bytes(uint8_t *out, size_t n) {
  while (n >= 8) {
    uint64_t r = next_random();
    memcpy(out, &r, 8);
    out += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t r = next_random();
    memcpy(out, &r, n);
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* OpenVPN opcodes (ssl_pkt.h), shifted into the first byte with key_id 0. */
enum { P_CONTROL_HARD_RESET_CLIENT_V3 = 10, P_CONTROL_HARD_RESET_CLIENT_V2 = 7, P_CONTROL_V1 = 4, P_ACK_V1 = 5, P_DATA_V2 = 9, P_CONTROL_WKC_V1 = 11 };
#define OP(op) ((uint8_t)((op) << 3))

enum wrap { WRAP_NONE, WRAP_TLS_AUTH, WRAP_TLS_CRYPT, WRAP_TLS_CRYPT_V2 };

static size_t build_reset(uint8_t *p, enum wrap wrap) {
  size_t n = 0;
  p[n++] = OP(wrap == WRAP_TLS_CRYPT_V2 ? P_CONTROL_HARD_RESET_CLIENT_V3 : P_CONTROL_HARD_RESET_CLIENT_V2);
  random_bytes(p + n, 8); /* session id */
  n += 8;
  if (wrap == WRAP_TLS_AUTH) {
    random_bytes(p + n, 20); /* HMAC-SHA1 field */
    n += 20;
    uint32_t replay = htonl(1u);
    uint32_t stamp = htonl((uint32_t)time(NULL));
    memcpy(p + n, &replay, 4);
    memcpy(p + n + 4, &stamp, 4);
    n += 8;
  }
  if (wrap == WRAP_TLS_CRYPT || wrap == WRAP_TLS_CRYPT_V2) {
    uint32_t replay = htonl(0x0f000001u); /* EARLY_NEG_START | 1, as a 2.6 client sends */
    uint32_t stamp = htonl((uint32_t)time(NULL));
    memcpy(p + n, &replay, 4);
    memcpy(p + n + 4, &stamp, 4);
    n += 8;
    random_bytes(p + n, 32 + 11); /* tag, then the encrypted body (acks, message id, TLV) */
    n += 32 + 11;
  } else {
    p[n++] = 0; /* no acks */
    memset(p + n, 0, 4); /* message id 0 */
    n += 4;
  }
  if (wrap == WRAP_TLS_CRYPT_V2) {
    const size_t wkc = 32 + 256 + 9 + 2;
    random_bytes(p + n, wkc - 2);
    p[n + wkc - 2] = (uint8_t)(wkc >> 8);
    p[n + wkc - 1] = (uint8_t)(wkc & 0xff);
    n += wkc;
  }
  return n;
}

static size_t build_garbage(uint8_t *p, uint64_t i) {
  static const uint8_t opcodes[] = {P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_V1, P_ACK_V1, P_CONTROL_WKC_V1, P_DATA_V2};
  uint64_t r = next_random();
  size_t n;
  switch (i % 3) {
    case 0: /* random bytes, random length */
      n = 1 + (size_t)(r % 1400);
      random_bytes(p, n);
      return n;
    case 1: /* a valid opcode, truncated before the end of any header */
      n = 1 + (size_t)(r % 13);
      random_bytes(p, n);
      p[0] = OP(opcodes[(r >> 32) % 5]);
      return n;
    default: /* a valid opcode, a body of random bytes */
      n = 14 + (size_t)(r % 200);
      random_bytes(p, n);
      p[0] = OP(opcodes[(r >> 32) % 5]);
      return n;
  }
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: %s DST PORT SRC BITS RESETS GARBAGE MAX_SECONDS WRAP\n", argv[0]);
    return 2;
  }
  struct in_addr dst, src;
  if (inet_pton(AF_INET, argv[1], &dst) != 1 || inet_pton(AF_INET, argv[3], &src) != 1) {
    fprintf(stderr, "flooder: bad address\n");
    return 2;
  }
  const uint16_t port = (uint16_t)atoi(argv[2]);
  const int bits = atoi(argv[4]);
  const uint64_t resets = strtoull(argv[5], NULL, 10);
  const uint64_t garbage = strtoull(argv[6], NULL, 10);
  const double max_seconds = atof(argv[7]);
  const enum wrap wrap = strcmp(argv[8], "tls-crypt") == 0      ? WRAP_TLS_CRYPT
                         : strcmp(argv[8], "tls-crypt-v2") == 0 ? WRAP_TLS_CRYPT_V2
                         : strcmp(argv[8], "tls-auth") == 0     ? WRAP_TLS_AUTH
                                                                : WRAP_NONE;
  if (bits < 8 || bits > 32 || (wrap == WRAP_NONE && strcmp(argv[8], "none") != 0)) {
    fprintf(stderr, "flooder: BITS must be 8..32 and WRAP tls-crypt, tls-crypt-v2, tls-auth or none\n");
    return 2;
  }
  const uint32_t host_mask = bits == 32 ? 0 : (0xffffffffu >> bits);
  const uint32_t base = ntohl(src.s_addr) & ~host_mask;
  rng_state ^= (uint64_t)getpid() << 17 ^ (uint64_t)time(NULL);

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    perror("flooder: socket(SOCK_RAW)");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  static uint8_t packets[BATCH][MAX_PACKET];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst, .sin_port = 0};
  memset(msgs, 0, sizeof msgs);
  for (int k = 0; k < BATCH; k++) {
    iov[k].iov_base = packets[k];
    msgs[k].msg_hdr.msg_iov = &iov[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
    msgs[k].msg_hdr.msg_name = &to;
    msgs[k].msg_hdr.msg_namelen = sizeof to;
  }

  uint64_t sent_resets = 0, sent_garbage = 0, refused = 0, batches = 0;
  const double start = now_seconds();
  double elapsed = 0;
  while (sent_resets < resets || sent_garbage < garbage) {
    /* Alternate batch kinds; once one kind is done, only the other. */
    int want_reset = sent_resets < resets && (sent_garbage >= garbage || (batches & 1) == 0);
    uint64_t left = want_reset ? resets - sent_resets : garbage - sent_garbage;
    int count = left < BATCH ? (int)left : BATCH;
    for (int k = 0; k < count; k++) {
      uint8_t *p = packets[k];
      size_t payload = want_reset ? build_reset(p + HEADERS, wrap) : build_garbage(p + HEADERS, sent_garbage + (uint64_t)k);
      struct iphdr *ip = (struct iphdr *)p;
      struct udphdr *udp = (struct udphdr *)(p + sizeof(struct iphdr));
      uint64_t r = next_random();
      ip->version = 4;
      ip->ihl = 5;
      ip->tos = 0;
      ip->tot_len = htons((uint16_t)(HEADERS + payload)); /* the kernel fills it in too */
      ip->id = 0;                                          /* 0: the kernel picks one */
      ip->frag_off = htons(IP_DF);
      ip->ttl = 64;
      ip->protocol = IPPROTO_UDP;
      ip->check = 0; /* the kernel computes it */
      ip->saddr = htonl(base | ((uint32_t)r & host_mask));
      ip->daddr = dst.s_addr;
      udp->source = htons((uint16_t)(1024 + ((r >> 32) % 64512)));
      udp->dest = htons(port);
      udp->len = htons((uint16_t)(sizeof(struct udphdr) + payload));
      udp->check = 0; /* optional over IPv4 */
      iov[k].iov_len = HEADERS + payload;
    }
    int done = sendmmsg(fd, msgs, (unsigned)count, 0);
    if (done < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
        perror("flooder: sendmmsg");
        return 1;
      }
      /* The device queue is full: these packets are refused (counted), never retried. */
      done = 0;
    }
    if (want_reset)
      sent_resets += (uint64_t)count;
    else
      sent_garbage += (uint64_t)count;
    refused += (uint64_t)(count - done);
    batches++;
    if ((batches & 63) == 0) {
      elapsed = now_seconds() - start;
      if (elapsed > max_seconds) break;
    }
  }
  elapsed = now_seconds() - start;
  printf("{\"resets\":%llu,\"garbage\":%llu,\"refused\":%llu,\"seconds\":%.3f}\n", (unsigned long long)sent_resets,
         (unsigned long long)sent_garbage, (unsigned long long)refused, elapsed);
  return 0;
}
