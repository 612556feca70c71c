/* weights.c — see weights.h. */
#include "weights.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llmc/abi.h"

llmc_status_t llmc_weight_plan_make(llmc_ir_module_t *m, llmc_weight_plan_t *out) {
  memset(out, 0, sizeof *out);
  out->slot = llmc_arena_alloc(m->arena, (m->n_weights + 1) * sizeof *out->slot);
  out->weight = llmc_arena_alloc(m->arena, (m->n_weights + 1) * sizeof *out->weight);
  out->offset = llmc_arena_alloc(m->arena, (m->n_weights + 1) * sizeof *out->offset);
  out->bytes = llmc_arena_alloc(m->arena, (m->n_weights + 1) * sizeof *out->bytes);
  for (uint32_t w = 0; w < m->n_weights; w++) out->slot[w] = -1;
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) {
    const llmc_ir_node_t *n = &m->nodes[v];
    if (n->dead || n->op != LLMC_OP_WEIGHT || out->slot[n->weight] >= 0) continue;
    const llmc_ir_weight_t *w = &m->weights[n->weight];
    out->slot[n->weight] = out->n;
    out->weight[out->n] = n->weight;
    out->offset[out->n] = out->total;
    out->bytes[out->n] = (uint64_t)llmc_shape_numel(&w->shape) * sizeof(float);
    out->total += (out->bytes[out->n] + LLMC_WEIGHTS_ALIGN - 1) / LLMC_WEIGHTS_ALIGN * LLMC_WEIGHTS_ALIGN;
    out->n++;
  }
  return LLMC_OK;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, mant = h & 1023, bits;
  if (exp == 0) {
    if (!mant) {
      bits = sign;
    } else { /* subnormal: renormalise */
      int e = -1;
      do {
        e++;
        mant <<= 1;
      } while (!(mant & 1024));
      bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 1023) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Reads the FILE entry w as f32 values into out[numel]. */
static llmc_status_t read_file_tensor(const llmc_ir_weight_t *w, float *out, uint64_t numel) {
  int elem = w->dtype == LLMC_DTYPE_F32 ? 4 : 2;
  if (w->dtype != LLMC_DTYPE_F32 && w->dtype != LLMC_DTYPE_F16 && w->dtype != LLMC_DTYPE_BF16)
    return LLMC_ERROR(UNIMPLEMENTED, "tensor %s: dtype %s is not supported by the CPU kernels yet",
                      w->name, llmc_dtype_name(w->dtype));
  FILE *f = fopen(w->file, "rb");
  if (!f) return LLMC_ERROR(IO, "cannot open %s: %s", w->file, strerror(errno));
  uint64_t nbytes = numel * (uint64_t)elem;
  void *raw = elem == 4 ? (void *)out : malloc(nbytes);
  bool ok = raw && fseeko(f, (off_t)w->offset, SEEK_SET) == 0 && fread(raw, 1, nbytes, f) == nbytes;
  fclose(f);
  if (!ok) {
    if (raw != out) free(raw);
    return LLMC_ERROR(IO, "tensor %s: cannot read %llu bytes at offset %llu of %s (truncated file?)",
                      w->name, (unsigned long long)nbytes, (unsigned long long)w->offset, w->file);
  }
  const uint16_t *h = raw;
  if (w->dtype == LLMC_DTYPE_F16)
    for (uint64_t i = 0; i < numel; i++) out[i] = half_to_float(h[i]);
  else if (w->dtype == LLMC_DTYPE_BF16)
    for (uint64_t i = 0; i < numel; i++) {
      uint32_t bits = (uint32_t)h[i] << 16;
      memcpy(&out[i], &bits, sizeof bits);
    }
  if (raw != out) free(raw);
  return LLMC_OK;
}

/* Computes weight-table entry w as f32 into out[numel of w]. */
static llmc_status_t materialise(const llmc_ir_module_t *m, uint32_t index, float *out) {
  const llmc_ir_weight_t *w = &m->weights[index];
  uint64_t numel = (uint64_t)llmc_shape_numel(&w->shape);
  switch (w->kind) {
  case LLMC_WEIGHT_FILE: return read_file_tensor(w, out, numel);
  case LLMC_WEIGHT_DATA: memcpy(out, w->data, numel * sizeof *out); return LLMC_OK;
  case LLMC_WEIGHT_DERIVED: break;
  }
  if (w->op == LLMC_OP_CONCAT) {
    uint64_t at = 0;
    for (int a = 0; a < w->n_args; a++) {
      LLMC_RETURN_IF_ERROR(materialise(m, w->args[a], out + at), "concatenating into %s", w->name);
      at += (uint64_t)llmc_shape_numel(&m->weights[w->args[a]].shape);
    }
    return LLMC_OK;
  }
  LLMC_RETURN_IF_ERROR(materialise(m, w->args[0], out), "computing %s", w->name);
  float value = (float)w->value;
  if (w->op == LLMC_OP_ADD_SCALAR)
    for (uint64_t i = 0; i < numel; i++) out[i] += value;
  else if (w->op == LLMC_OP_MUL_SCALAR)
    for (uint64_t i = 0; i < numel; i++) out[i] *= value;
  else
    return LLMC_ERROR(INTERNAL, "weight %s: cannot derive with op %s", w->name, llmc_ir_op_name(w->op));
  return LLMC_OK;
}

llmc_status_t llmc_weights_write(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, FILE *f,
                                 void (*progress)(uint64_t done, uint64_t total)) {
  static const char zeros[LLMC_WEIGHTS_ALIGN];
  uint64_t written = 0;
  for (uint32_t i = 0; i < plan->n; i++) {
    float *data = malloc(plan->bytes[i] ? plan->bytes[i] : 1);
    if (!data) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s", m->weights[plan->weight[i]].name);
    llmc_status_t s = materialise(m, plan->weight[i], data);
    if (!s && fwrite(data, 1, plan->bytes[i], f) != plan->bytes[i])
      s = LLMC_ERROR(IO, "writing tensor %s: %s", m->weights[plan->weight[i]].name, strerror(errno));
    free(data);
    if (s) return s;
    written += plan->bytes[i];
    uint64_t pad = (LLMC_WEIGHTS_ALIGN - written % LLMC_WEIGHTS_ALIGN) % LLMC_WEIGHTS_ALIGN;
    if (pad && fwrite(zeros, 1, pad, f) != pad) return LLMC_ERROR(IO, "writing weights: %s", strerror(errno));
    written += pad;
    if (progress) progress(written, plan->total);
  }
  return LLMC_OK;
}
