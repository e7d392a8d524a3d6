/* Maildir delivery in two phases so that a message is either fully delivered to every target or
 * to none: stage (write tmp/ file + fsync) for each copy, then commit (rename into new/ +
 * fsync of each new/ directory once) only when every action of the chain succeeded. */
#ifndef SLUICE_MAILDIR_H
#define SLUICE_MAILDIR_H

#include <stddef.h>

#include "core/buf.h"

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

/* Writes head then body to root/tmp/<unique>, fsyncs it; creates root/{tmp,new,cur} on demand.
 * Returns 0, or a negative errno with a message in err. */
int maildir_stage(struct maildir_batch *b, const char *root, const struct buf *head,
                  const struct buf *body, int tag, char *err, size_t errlen);
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
