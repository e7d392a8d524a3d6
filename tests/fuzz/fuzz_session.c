/* libFuzzer target: the SMTP session state machine fed arbitrary byte streams. Each input is
 * what one client sends on one connection (a socketpair handed to session_start, as the
 * listener hands an accepted socket), followed by end of stream; the real server runs its
 * event loop and worker pool until the session is gone, while everything it answers is read
 * and thrown away. Commands, pipelining, DATA with dot-stuffing and smuggling sequences, RSET
 * and error limits all run for real: a crash, a sanitizer report, a leak or a session that never
 * ends (libFuzzer's -timeout) is a finding. Accepted messages go to a drop action, so nothing
 * is written to disk. */
#include "config/config.h"
#include "core/log.h"
#include "receiver/server.h"
#include "receiver/session.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <gmime/gmime.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A client may send much more, but nothing new happens past a few messages' worth. */
#define INPUT_CAP (256 * 1024)

static struct server *srv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_mime_init();
    log_set_level(LOG_ERR);
    char dir[] = "/tmp/sluice-fuzz-session-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/sluice.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fprintf(
        f,
        "server { listen = { \"127.0.0.1:0\" }, hostname = \"mx.example.test\",\n"
        "  domains = { \"example.test\" }, data_dir = \"%s/var\", workers = 1,\n"
        "  max_message_size = 65536, max_recipients = 20 }\n"
        "rule_set \"main\" {\n"
        "  rule { name = \"drop\", recipients = { \"example.test\" }, actions = { drop {} } },\n"
        "}\n",
        dir);
    fclose(f);
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "fuzz_session: %s\n", err);
        abort();
    }
    srv = server_new(cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "fuzz_session: %s\n", err);
        abort();
    }
    unlink(path);
    rmdir(dir); /* empty: the drop action writes nothing */
    return 0;
}

struct client {
    int fd;
    const uint8_t *data;
    size_t size, off;
    int shut;
    struct event *ev;
};

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    if (what & EV_READ) {
        char sink[16384];
        while (read(fd, sink, sizeof sink) > 0)
            ;
    }
    if ((what & EV_WRITE) && !c->shut) {
        if (c->off < c->size) {
            ssize_t w = write(fd, c->data + c->off, c->size - c->off);
            if (w > 0)
                c->off += (size_t)w;
        }
        if (c->off >= c->size) {
            shutdown(fd, SHUT_WR);
            c->shut = 1;
            event_del(c->ev);
            event_assign(c->ev, server_base(srv), fd, EV_READ | EV_PERSIST, on_client, c);
            event_add(c->ev, NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > INPUT_CAP)
        return 0;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
        abort();
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000)};
    inet_pton(AF_INET, "192.0.2.1", &peer.sin_addr);
    session_start(srv, fds[0], (const struct sockaddr *)&peer, "127.0.0.1:0", 0);

    /* The client end lives on the same event loop, so that neither side can stall the
     * other: it feeds the input as the socket takes it and reads every reply. */
    struct client c = {.fd = fds[1], .data = data, .size = size};
    c.ev = event_new(server_base(srv), fds[1], EV_READ | EV_WRITE | EV_PERSIST, on_client, &c);
    event_add(c.ev, NULL);
    while (server_nsessions(srv) > 0)
        event_base_loop(server_base(srv), EVLOOP_ONCE);
    event_free(c.ev);
    close(fds[1]);
    return 0;
}
