/* partition.c — pass "partition": splits the node list into regions.
 *
 * A batchful region is a run of nodes that carry weights or are row-local:
 * it runs once over all T tokens of a step, whichever sequences they come
 * from, so each weight is streamed from memory once per step however many
 * sequences are batched. A batchless region holds attention: it runs per
 * sequence (and head) over that sequence's own KV pages. Regions alternate
 * in node order; each becomes one exported entry point (llmc_region_N) that
 * can be invoked and tested on its own. Nodes that compute nothing at run
 * time (graph inputs, weights) belong to no region (-1). */
#include "pass.h"

static bool runs(const llmc_ir_node_t *n) {
  return n->op != LLMC_OP_WEIGHT && n->op != LLMC_OP_TOKENS && n->op != LLMC_OP_POSITIONS;
}

llmc_status_t llmc_pass_partition(llmc_ir_module_t *m) {
  int32_t region = -1;
  bool last_batchless = false;
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) {
    llmc_ir_node_t *n = &m->nodes[v];
    n->region = -1;
    if (n->dead || !runs(n)) continue;
    bool batchless = llmc_ir_op_flags(n->op) & LLMC_OPF_BATCHLESS;
    if (region < 0 || batchless != last_batchless) region++;
    last_batchless = batchless;
    n->region = region;
  }
  m->n_regions = region + 1;
  return LLMC_OK;
}
