/* Making new directories and files survive a crash: a new name is durable only once the
 * directory holding it has been fsync'd, and a file's data only once the file has been. Used by
 * every writer that keeps its own tree (the spool, Maildir delivery, DMARC report ingest). */
#ifndef SLUICE_DURABLE_H
#define SLUICE_DURABLE_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode: creates path and every missing parent, fsyncing the parent of each
 * directory it creates. Existing directories are fine. Returns 0 or a negative errno
 * (-ENOTDIR when something other than a directory is in the way). */
int durable_mkdirs(const char *path, mode_t mode);
/* The same, but each directory it creates gets exactly mode (not mode less the umask) and, when
 * gid is not (gid_t)-1, that group, before it is made durable in its parent (a reader such as
 * Dovecot running as another user then never sees it with the wrong owner). Existing
 * directories are left as they are. */
int durable_mkdirs_owned(const char *path, mode_t mode, gid_t gid);

/* Writes len bytes of data to dir/name so that after a crash there is either no new file or
 * all of it: creates dir (durable_mkdirs with dir_mode), writes a temporary dot-file in dir (whose
 * name does not grow with name) (file_mode), fsyncs it, renames it to name and fsyncs dir. Returns
 * 0, or a negative errno with "cannot ...: reason" in err; the temporary file is then removed. */
int durable_write_file(const char *dir, const char *name, const void *data, size_t len,
                       mode_t dir_mode, mode_t file_mode, char *err, size_t errlen);

#endif
