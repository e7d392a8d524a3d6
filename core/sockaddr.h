/* "host:port" and "[v6]:port" listen addresses, and printable client addresses. */
#ifndef SLUICE_SOCKADDR_H
#define SLUICE_SOCKADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses a numeric "ip:port" / "[ip6]:port" into ss. Returns 0 or -1. */
int sockaddr_parse(const char *hostport, struct sockaddr_storage *ss, socklen_t *len);
/* Writes the numeric IP of sa into ip (IPv4-mapped IPv6 shown as IPv4) and its port. */
void sockaddr_ip(const struct sockaddr *sa, char *ip, size_t iplen, int *port);

#endif
