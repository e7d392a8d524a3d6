/* Histograms in the Prometheus text format (histogram.h). */
#include "core/histogram.h"
#include "core/buf.h"

void histogram_observe(struct histogram *h, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6 + 0.5));
    int i = 0;
    while (i < h->nbounds && seconds > h->bounds[i])
        i++;
    atomic_fetch_add(&h->counts[i], 1);
}

void histogram_render(const struct histogram *h, struct buf *b, const char *name,
                      const char *labels)
{
    const char *sep = labels[0] ? "," : "";
    unsigned long long cum = 0;
    for (int i = 0; i <= h->nbounds; i++) {
        cum += atomic_load(&h->counts[i]);
        if (i < h->nbounds)
            buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[i], cum);
        else
            buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    buf_printf(b, "%s_sum%s%s%s %.6f\n", name, open, labels, close,
               (double)atomic_load(&h->sum_us) / 1e6);
    buf_printf(b, "%s_count%s%s%s %llu\n", name, open, labels, close, cum);
}
