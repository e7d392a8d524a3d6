/* Making a directory's entries durable: after a create, rename or link in dir, the new name
 * survives a crash only once the directory itself has been fsync'd. */
#ifndef SLUICE_FSYNC_DIR_H
#define SLUICE_FSYNC_DIR_H

/* fsyncs dir now (delivery/dir_sync.h groups concurrent callers). Returns 0 or a negative
 * errno. */
int fsync_dir(const char *dir);

#endif
