/* Numeric socket address parsing and formatting (no DNS: listen addresses must be numeric). */
#include "core/sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sockaddr_parse(const char *hostport, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport || !colon[1])
        return -1;
    size_t hl = (size_t)(colon - hostport);
    if (hostport[0] == '[') {
        if (hostport[hl - 1] != ']' || hl < 3)
            return -1;
        hostport++;
        hl -= 2;
    }
    if (hl >= sizeof host)
        return -1;
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((unsigned short)port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

void sockaddr_ip(const struct sockaddr *sa, char *ip, size_t iplen, int *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(in4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(in6->sin6_port);
    } else {
        snprintf(ip, iplen, "unknown");
        *port = 0;
    }
}
