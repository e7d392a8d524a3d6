/* Group commit of directory fsyncs: concurrent deliveries into the same Maildir new/ share one
 * fsync of the directory instead of one each, without weakening the promise: dir_sync()
 * returns only after an fsync that began after the caller's rename has completed. */
#ifndef SLUICE_DIR_SYNC_H
#define SLUICE_DIR_SYNC_H

/* Makes every rename into dir that finished before this call durable. Returns 0 or a negative
 * errno. Thread-safe; blocks while another thread's fsync of dir is running. */
int dir_sync(const char *dir);

#endif
