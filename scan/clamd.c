/* clamd's INSTREAM command: "zINSTREAM\0", then chunks (4-byte big-endian length + data), a
 * zero-length chunk, and one NUL-terminated reply line ("stream: OK", "stream: NAME FOUND",
 * "... ERROR"). Non-blocking socket, every wait bounded by the deadline. */
#include "core/sockaddr.h"
#include "scan/scanners.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

/* Waits for events on fd until the deadline; returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - scan_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_clamd(const char *addr, long long deadline, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", addr + 5);
        sl = sizeof *un;
    } else if (sockaddr_parse(addr, &ss, &sl) < 0) {
        snprintf(err, errlen, "clamd %s: not an address", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "clamd %s: socket: %s", addr, strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            snprintf(err, errlen, "clamd %s: connect: %s", addr, strerror(errno));
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
            snprintf(err, errlen, "clamd %s: connect: %s", addr,
                     r == 0 ? "timed out" : strerror(soerr ? soerr : errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -1;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0) {
            errno = r == 0 ? ETIMEDOUT : errno;
            return -1;
        }
    }
    return 0;
}

/* Reads up to the reply's NUL (or EOF) into out. */
static int read_reply(int fd, char *out, size_t outlen, long long deadline)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, out + len, outlen - 1 - len, 0);
        if (r > 0) {
            len += (size_t)r;
            out[len] = '\0';
            if (memchr(out, '\0', len) || len == outlen - 1)
                return 0;
            continue;
        }
        if (r == 0) {
            out[len] = '\0';
            return len ? 0 : (errno = ECONNRESET, -1);
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -1;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) {
            errno = w == 0 ? ETIMEDOUT : errno;
            return -1;
        }
    }
}

static void parse_reply(char *reply, struct virus_result *out)
{
    size_t n = strcspn(reply, "\r\n");
    reply[n] = '\0';
    const char *r = strncmp(reply, "stream: ", 8) == 0 ? reply + 8 : reply;
    size_t rl = strlen(r);
    if (strcmp(r, "OK") == 0) {
        out->verdict = VERDICT_PASS;
    } else if (rl > 6 && strcmp(r + rl - 6, " FOUND") == 0) {
        out->verdict = VERDICT_FAIL;
        size_t k = 0;
        /* The name goes into a header and a reply: printable ASCII only. */
        for (size_t i = 0; i < rl - 6 && k + 1 < sizeof out->name; i++)
            if (r[i] > 0x20 && r[i] < 0x7f)
                out->name[k++] = r[i];
        out->name[k] = '\0';
    } else {
        snprintf(out->error, sizeof out->error, "clamd: %.200s", reply);
    }
}

void clamd_check(const char *addr, const char *data, size_t len, long long deadline,
                 struct virus_result *out)
{
    out->verdict = VERDICT_PROCESSING_FAILED;
    if (deadline - scan_now_ms() <= 0) {
        snprintf(out->error, sizeof out->error, "clamd: no time left in timeout_ms");
        return;
    }
    int fd = connect_clamd(addr, deadline, out->error, sizeof out->error);
    if (fd < 0)
        return;
    int rc = send_all(fd, "zINSTREAM", 10, deadline);
    for (size_t off = 0; rc == 0 && off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        uint32_t be = htonl((uint32_t)n);
        rc = send_all(fd, (const char *)&be, 4, deadline);
        if (rc == 0)
            rc = send_all(fd, data + off, n, deadline);
    }
    uint32_t end = 0;
    if (rc == 0)
        rc = send_all(fd, (const char *)&end, 4, deadline);
    char reply[512];
    /* clamd answers early (and closes) when the stream exceeds its StreamMaxLength: read the
     * reply even after a failed send. */
    int saved = errno;
    if (read_reply(fd, reply, sizeof reply, deadline) == 0)
        parse_reply(reply, out);
    else
        snprintf(out->error, sizeof out->error, "clamd %s: %s", addr,
                 strerror(rc < 0 ? saved : errno));
    close(fd);
}
