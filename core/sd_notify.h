/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to
 * $NOTIFY_SOCKET. Does nothing when the variable is not set. */
#ifndef SLUICE_SD_NOTIFY_H
#define SLUICE_SD_NOTIFY_H

/* Sends state, e.g. "READY=1", "RELOADING=1", "STOPPING=1". Returns 0, or -1 when it could
 * not be sent (the service manager then times out, which says more than a log line). */
int sd_notify_send(const char *state);

#endif
