/* Maildir delivery in two phases so that a message is either fully delivered to every target or
 * to none: stage (write tmp/ file + fsync) for each copy, then commit (rename into new/ +
 * fsync of each new/ directory once) only when every action of the chain succeeded. */
#ifndef SLUICE_MAILDIR_H
#define SLUICE_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "core/buf.h"

/* Who may read what sluice delivers (store { mode, dir_mode, group }), so that an IMAP server
 * running as another user can. */
struct maildir_perms {
    mode_t file_mode; /* of each message file; default 0600 */
    mode_t dir_mode;  /* of each directory created on demand; default 0700 */
    gid_t gid;        /* group of both, (gid_t)-1 to leave it as the process's */
};

#define MAILDIR_PERMS_DEFAULT ((struct maildir_perms){0600, 0700, (gid_t)-1})

struct maildir_staged {
    char *tmp_path;
    char *new_path;
    char *new_dir;
    int tag; /* the recipient the copy is for, so a later refusal can take it back */
};

struct maildir_batch {
    struct maildir_staged *items;
    size_t n;
    size_t cap;
};

/* Writes head then body to root/tmp/<unique> with perms, fsyncs it; creates root/{tmp,new,cur}
 * (and missing parents) on demand with perms. Returns 0, or a negative errno with a message in
 * err. */
int maildir_stage(struct maildir_batch *b, const char *root, const struct maildir_perms *perms,
                  const struct buf *head, const struct buf *body, int tag, char *err,
                  size_t errlen);
/* Removes the staged (uncommitted) copies tagged tag. */
void maildir_discard_tag(struct maildir_batch *b, int tag);
/* Moves every staged file into new/ and makes the renames durable. On failure the files already
 * moved are taken back, so new/ never holds part of a batch. Returns 0 or a negative errno. */
int maildir_commit(struct maildir_batch *b, char *err, size_t errlen);
/* Removes every staged file that was not committed, then empties the batch. */
void maildir_abort(struct maildir_batch *b);
/* Frees the batch's bookkeeping (not the files). */
void maildir_batch_free(struct maildir_batch *b);

#endif
