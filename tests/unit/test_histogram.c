/* core/histogram: a value on a bound falls in that bucket (le is "less or equal"), one above
 * every bound only in +Inf; the rendering is cumulative, ends with +Inf, and _count equals the
 * +Inf bucket; labels are placed before le and on _sum and _count; no labels gives bare
 * names. */
#include "check.h"
#include "core/buf.h"
#include "core/histogram.h"

static const double bounds[] = {0.01, 0.1, 1};

int main(void)
{
    struct histogram h = {.bounds = bounds, .nbounds = 3};
    histogram_observe(&h, 0.01); /* on the first bound */
    histogram_observe(&h, 0.05); /* between */
    histogram_observe(&h, 0.1);  /* on the second */
    histogram_observe(&h, 2.5);  /* above all */
    histogram_observe(&h, -1);   /* a clock step backwards counts as 0 */
    CHECK_INT(atomic_load(&h.counts[0]), 2);
    CHECK_INT(atomic_load(&h.counts[1]), 2);
    CHECK_INT(atomic_load(&h.counts[2]), 0);
    CHECK_INT(atomic_load(&h.counts[3]), 1);

    struct buf b = {0};
    histogram_render(&h, &b, "x_seconds", "action=\"store\"");
    CHECK_STR(buf_cstr(&b), "x_seconds_bucket{action=\"store\",le=\"0.01\"} 2\n"
                            "x_seconds_bucket{action=\"store\",le=\"0.1\"} 4\n"
                            "x_seconds_bucket{action=\"store\",le=\"1\"} 4\n"
                            "x_seconds_bucket{action=\"store\",le=\"+Inf\"} 5\n"
                            "x_seconds_sum{action=\"store\"} 2.660000\n"
                            "x_seconds_count{action=\"store\"} 5\n");
    buf_reset(&b);

    struct histogram empty = {.bounds = bounds, .nbounds = 3};
    histogram_render(&empty, &b, "y", "");
    CHECK_STR(buf_cstr(&b), "y_bucket{le=\"0.01\"} 0\n"
                            "y_bucket{le=\"0.1\"} 0\n"
                            "y_bucket{le=\"1\"} 0\n"
                            "y_bucket{le=\"+Inf\"} 0\n"
                            "y_sum 0.000000\n"
                            "y_count 0\n");
    buf_free(&b);
    return CHECK_DONE();
}
