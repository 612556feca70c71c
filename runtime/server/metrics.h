/* metrics.h — the scheduler's statistics as Prometheus text (GET /metrics).
 * Private to runtime/server/. */
#ifndef LLMC_SERVER_METRICS_H
#define LLMC_SERVER_METRICS_H

#include <stddef.h>

#include "scheduler.h"
#include "support/status.h"

/* Writes stats in the Prometheus text exposition format 0.0.4: every
 * series prefixed llmc_, with # HELP and # TYPE lines; counters end in
 * _total, histograms have _bucket{le=...}, _sum and _count. *out_text is
 * malloc'ed (the caller frees it), *out_len its length. */
llmc_status_t llmc_server_metrics_format(const llmc_scheduler_stats_t *stats, char **out_text,
                                         size_t *out_len);

#endif /* LLMC_SERVER_METRICS_H */
