/* The table of action types: adding an action touches its own file and one line here. */
#include "actions/action.h"

#include <stdlib.h>
#include <string.h>

extern const struct action_type action_store;
extern const struct action_type action_add_header;
extern const struct action_type action_stop;

const struct action_type *const action_types[] = {
    &action_store,
    &action_add_header,
    &action_stop,
    NULL,
};

const struct action_type *action_type_find(const char *name)
{
    for (size_t i = 0; action_types[i]; i++)
        if (strcmp(action_types[i]->name, name) == 0)
            return action_types[i];
    return NULL;
}

void action_free(struct action *a)
{
    if (!a)
        return;
    if (a->type && a->type->free_state)
        a->type->free_state(a->state);
    free(a);
}
