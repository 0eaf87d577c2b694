#define _GNU_SOURCE
// A minimal push load driver for A/B runs of server builds (scripts/push-ab; docs/benchmarks.md,
// "Session 22"). Not a benchmark of record: cairn-bench is. Blocking sockets, one thread per
// client, no allocation per request: it measures the server, not its own thread switches.
//
//   push-driver PORT SECONDS CLIENTS [PREFIX]
//
// Each client registers an account, then sends `POST /api/sync/push` bodies of 100 bookmark
// creates over one keep-alive connection until SECONDS have passed (registering a new account
// every 800 pushes: the API's rate limit is per user). Prints the creates per second of all.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
static int port; static double seconds; static const char *prefix;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0); int one = 1; setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(0x7f000001);
  if (connect(fd, (void *)&a, sizeof a)) { perror("connect"); exit(1); } return fd;
}
static void send_all(int fd, const char *bytes, int count) {
  while (count > 0) {
    ssize_t n = write(fd, bytes, count);
    if (n <= 0) { perror("write"); exit(1); }
    bytes += n; count -= n;
  }
}
static char *exchange(int fd, const char *head, const char *body, int blen, int *status, char *buf, int cap) {
  char h[2304]; int hl = snprintf(h, sizeof h, "%sContent-Length: %d\r\n\r\n", head, blen);
  send_all(fd, h, hl); send_all(fd, body, blen);
  int got = 0; char *end = NULL;
  while (!end) { int n = read(fd, buf + got, cap - got - 1); if (n <= 0) { perror("read"); exit(1); } got += n; buf[got] = 0; end = strstr(buf, "\r\n\r\n"); }
  *status = atoi(buf + 9);
  // The length from the head only; answers without one (chunked) are not expected.
  *end = 0; char *cl = strcasestr(buf, "\r\ncontent-length:"); *end = '\r';
  if (!cl) { fprintf(stderr, "an answer without Content-Length\n"); exit(1); }
  int need = (end + 4 - buf) + atoi(cl + 17);
  if (need >= cap) { fprintf(stderr, "an answer of %d bytes\n", need); exit(1); }
  while (got < need) { int n = read(fd, buf + got, cap - got - 1); if (n <= 0) { perror("read"); exit(1); } got += n; }
  buf[got] = 0; return end + 4;
}
static void reg(int fd, char *buf, char *hdr, long id) {
  char body[256]; int bl = snprintf(body, sizeof body, "{\"email\":\"d%ld-%ld@bench.example\",\"password\":\"bench-password-123\"}", id, (long)random());
  int st; char *b = exchange(fd, "POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", body, bl, &st, buf, 1 << 20);
  char *t = strstr(b, "\"token\":\""); if (!t) { fprintf(stderr, "no token %d %s\n", st, b); exit(1); } t += 9; char *e = strchr(t, '"');
  snprintf(hdr, 2048, "POST /api/sync/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %.*s\r\n", (int)(e - t), t);
}
static long totals[64];
static void *run(void *arg) {
  long id = (long)arg; int fd = conn(); char *buf = malloc(1 << 20); char hdr[2048]; reg(fd, buf, hdr, id);
  const int cap = 1 << 17; char *body = malloc(cap); double start = now(); long n = 0;
  while (now() - start < seconds) {
    int bl = snprintf(body, cap, "{\"clientId\":\"drv%ld\",\"operations\":[", id);
    for (int i = 0; i < 100 && bl < cap; i++)
      bl += snprintf(body + bl, cap - bl, "%s{\"opId\":\"%s%ld-c-%ld-%d\",\"type\":\"create\",\"collection\":\"bookmarks\",\"id\":\"%s%ld-%ld-%d\",\"data\":{\"title\":\"Bookmark %d\",\"url\":\"https://example.com/%s/%ld/%d\"},\"parentId\":\"other\"}",
        i ? "," : "", prefix, id, n, i, prefix, id, n, i, i, prefix, n, i);
    if (bl < cap) bl += snprintf(body + bl, cap - bl, "]}");
    if (bl >= cap) { fprintf(stderr, "PREFIX too long\n"); exit(1); }
    int st; exchange(fd, hdr, body, bl, &st, buf, 1 << 20);
    if (st != 200) { fprintf(stderr, "status %d %s\n", st, buf); exit(1); }
    n++; if (n % 800 == 0) reg(fd, buf, hdr, id * 1000 + n);
  }
  totals[id] = n; return NULL;
}
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: push-driver PORT SECONDS CLIENTS [PREFIX]\n"); return 2; }
  port = atoi(argv[1]); seconds = atof(argv[2]); int clients = atoi(argv[3]); prefix = argc > 4 ? argv[4] : "x"; srandom(getpid());
  if (clients < 1 || clients > 64 || strlen(prefix) > 64) { fprintf(stderr, "1 to 64 clients, a PREFIX of at most 64 bytes\n"); return 2; }
  pthread_t t[64]; double s = now();
  for (long i = 0; i < clients; i++) pthread_create(&t[i], NULL, run, (void *)i);
  long total = 0; for (int i = 0; i < clients; i++) { pthread_join(t[i], NULL); total += totals[i]; }
  printf("%d clients: %ld pushes in %.2fs: %.0f creates/s\n", clients, total, now() - s, total * 100 / (now() - s));
}
