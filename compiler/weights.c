/* weights.c — see weights.h. */
#include "weights.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/quant.h"
#include "llmc/abi.h"
#include "llmc/row_groups.h"

static bool is_quantized(llmc_dtype_t t) {
  return t == LLMC_DTYPE_Q8_0 || t == LLMC_DTYPE_Q4_0 || t == LLMC_DTYPE_Q4_K || t == LLMC_DTYPE_Q6_K;
}

static bool is_half(llmc_dtype_t t) { return t == LLMC_DTYPE_F16 || t == LLMC_DTYPE_BF16; }

/* Elements per block of the half-precision kernels (kernels_quant.h): an
 * f16 or bf16 matrix is kept as it is only when its rows are whole blocks. */
enum { HALF_BLOCK = 16 };

/* n rounded up to a multiple of LLMC_WEIGHTS_ALIGN: where the next item
 * of the section starts. */
static uint64_t aligned(uint64_t n) {
  return (n + LLMC_WEIGHTS_ALIGN - 1) / LLMC_WEIGHTS_ALIGN * LLMC_WEIGHTS_ALIGN;
}

/* The ggml type number of a quantized dtype (quant.h speaks ggml's). */
static llmc_ggml_type_t ggml_type(llmc_dtype_t t) {
  switch (t) {
  case LLMC_DTYPE_Q8_0: return LLMC_GGML_Q8_0;
  case LLMC_DTYPE_Q4_0: return LLMC_GGML_Q4_0;
  case LLMC_DTYPE_Q4_K: return LLMC_GGML_Q4_K;
  case LLMC_DTYPE_Q6_K: return LLMC_GGML_Q6_K;
  default: return LLMC_GGML_F32;
  }
}

/* Does a matmul (as its weight) or an embed (as its table) read node v? */
static bool read_as_matrix(const llmc_ir_module_t *m, llmc_ir_value_t v) {
  for (llmc_ir_value_t u = 1; u < m->n_nodes; u++) {
    const llmc_ir_node_t *n = &m->nodes[u];
    if (!n->dead && ((n->op == LLMC_OP_MATMUL && n->args[1] == v) || (n->op == LLMC_OP_EMBED && n->args[0] == v)))
      return true;
  }
  return false;
}

/* Can node v (a weight of rows [N, K]) be stored in groups of 16 rows for
 * the kernels of targets/cpu/kernels_int8.h: read only as the weight of
 * matmuls, with N (and under glu each half of N) whole groups? */
static bool groupable(const llmc_ir_module_t *m, llmc_ir_value_t v, int64_t rows) {
  bool read = false;
  for (llmc_ir_value_t u = 1; u < m->n_nodes; u++) {
    const llmc_ir_node_t *n = &m->nodes[u];
    if (n->dead) continue;
    for (int a = 0; a < n->n_args; a++) {
      if (n->args[a] != v) continue;
      if (n->op != LLMC_OP_MATMUL || a != 1) return false;
      bool glu = llmc_ir_get_string(n, "glu", NULL) != NULL;
      if (rows % (glu ? 2 * LLMC_ROW_GROUP : LLMC_ROW_GROUP) != 0) return false;
      read = true;
    }
  }
  return read;
}

/* Can weight-table entry `index` be written in its own half dtype by
 * copying bytes: a file range of that dtype, or a concatenation of such? A
 * derived scalar op (add_scalar, mul_scalar) has to go through f32. */
static bool half_as_is(const llmc_ir_module_t *m, uint32_t index, llmc_dtype_t dtype) {
  const llmc_ir_weight_t *w = &m->weights[index];
  if (w->kind == LLMC_WEIGHT_FILE) return w->dtype == dtype;
  if (w->kind != LLMC_WEIGHT_DERIVED || w->op != LLMC_OP_CONCAT) return false;
  for (int a = 0; a < w->n_args; a++)
    if (!half_as_is(m, w->args[a], dtype)) return false;
  return true;
}

/* The dtype weight-table entry `index` is stored in: see
 * llmc_weight_plan_make. */
static llmc_dtype_t storage_dtype(const llmc_ir_module_t *m, uint32_t index, bool matrix, llmc_dtype_t quant) {
  const llmc_ir_weight_t *w = &m->weights[index];
  if (!matrix || w->shape.rank != 2) return LLMC_DTYPE_F32;
  if (is_quantized(w->dtype)) return w->dtype;
  if (quant != LLMC_DTYPE_NONE)
    return w->shape.dims[1] % llmc_dtype_block_elems(quant) == 0 ? quant : LLMC_DTYPE_F32;
  if (is_half(w->dtype) && w->shape.dims[1] % HALF_BLOCK == 0 && half_as_is(m, index, w->dtype)) return w->dtype;
  return LLMC_DTYPE_F32;
}

llmc_status_t llmc_weight_plan_make(llmc_ir_module_t *m, llmc_dtype_t quant, bool group_rows,
                                    llmc_weight_plan_t *out) {
  if (quant != LLMC_DTYPE_NONE && !is_quantized(quant))
    return LLMC_ERROR(INVALID_ARGUMENT, "--quant: %s is not a quantized type (q8_0, q4_0, q4_K, q6_K)",
                      llmc_dtype_name(quant));
  memset(out, 0, sizeof *out);
  size_t n = m->n_weights + 1;
  out->slot = llmc_arena_alloc(m->arena, n * sizeof *out->slot);
  out->weight = llmc_arena_alloc(m->arena, n * sizeof *out->weight);
  out->dtype = llmc_arena_alloc(m->arena, n * sizeof *out->dtype);
  out->kept_f32 = llmc_arena_alloc(m->arena, n * sizeof *out->kept_f32);
  out->grouped = llmc_arena_alloc(m->arena, n * sizeof *out->grouped);
  out->offset = llmc_arena_alloc(m->arena, n * sizeof *out->offset);
  out->bytes = llmc_arena_alloc(m->arena, n * sizeof *out->bytes);
  for (uint32_t w = 0; w < m->n_weights; w++) out->slot[w] = -1;
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) {
    const llmc_ir_node_t *node = &m->nodes[v];
    if (node->dead || node->op != LLMC_OP_WEIGHT || out->slot[node->weight] >= 0) continue;
    const llmc_ir_weight_t *w = &m->weights[node->weight];
    uint32_t i = out->n++;
    out->slot[node->weight] = i;
    out->weight[i] = node->weight;
    bool matrix = read_as_matrix(m, v);
    out->dtype[i] = storage_dtype(m, node->weight, matrix, quant);
    out->kept_f32[i] = quant != LLMC_DTYPE_NONE && matrix && w->shape.rank == 2 && out->dtype[i] == LLMC_DTYPE_F32;
    out->grouped[i] = group_rows && is_quantized(out->dtype[i]) && groupable(m, v, w->shape.dims[0]);
    out->offset[i] = out->total;
    out->bytes[i] = out->grouped[i] ? (uint64_t)llmc_quant_grouped_bytes(ggml_type(out->dtype[i]), w->shape.dims[0],
                                                                        w->shape.dims[1])
                                    : llmc_dtype_nbytes(out->dtype[i], (uint64_t)llmc_shape_numel(&w->shape));
    out->total += aligned(out->bytes[i]);
  }
  return LLMC_OK;
}

uint64_t llmc_weight_plan_add_tokenizer(llmc_weight_plan_t *plan, const uint8_t *data, uint64_t bytes) {
  uint64_t offset = plan->total;
  plan->tokenizer = data;
  plan->tokenizer_bytes = bytes;
  plan->total += aligned(bytes);
  return offset;
}

bool llmc_weight_plan_grouped(const llmc_weight_plan_t *plan, uint32_t w) {
  return plan->slot[w] >= 0 && plan->grouped[plan->slot[w]];
}

llmc_dtype_t llmc_weight_plan_dtype(const llmc_weight_plan_t *plan, uint32_t w) {
  return plan->slot[w] >= 0 ? plan->dtype[plan->slot[w]] : LLMC_DTYPE_NONE;
}

static llmc_status_t read_bytes(const llmc_ir_weight_t *w, void *out, uint64_t nbytes) {
  FILE *f = fopen(w->file, "rb");
  if (!f) return LLMC_ERROR(IO, "cannot open %s: %s", w->file, strerror(errno));
  bool ok = fseeko(f, (off_t)w->offset, SEEK_SET) == 0 && fread(out, 1, nbytes, f) == nbytes;
  fclose(f);
  if (!ok)
    return LLMC_ERROR(IO, "tensor %s: cannot read %llu bytes at offset %llu of %s (truncated file?)", w->name,
                      (unsigned long long)nbytes, (unsigned long long)w->offset, w->file);
  return LLMC_OK;
}

/* Reads the FILE entry w as f32 values into out[numel]. */
static llmc_status_t read_file_f32(const llmc_ir_weight_t *w, float *out, uint64_t numel) {
  uint64_t nbytes = llmc_dtype_nbytes(w->dtype, numel);
  if (w->dtype == LLMC_DTYPE_F32) return read_bytes(w, out, nbytes);
  void *raw = malloc(nbytes ? nbytes : 1);
  if (!raw) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s", w->name);
  llmc_status_t s = read_bytes(w, raw, nbytes);
  const uint16_t *h = raw;
  if (!s && w->dtype == LLMC_DTYPE_F16) {
    for (uint64_t i = 0; i < numel; i++) out[i] = llmc_quant_f16_to_f32(h[i]);
  } else if (!s && w->dtype == LLMC_DTYPE_BF16) {
    for (uint64_t i = 0; i < numel; i++) {
      uint32_t bits = (uint32_t)h[i] << 16;
      memcpy(&out[i], &bits, sizeof bits);
    }
  } else if (!s && is_quantized(w->dtype)) {
    int64_t cols = w->shape.dims[w->shape.rank - 1], rows = (int64_t)numel / cols;
    int64_t row_bytes = llmc_quant_row_bytes(ggml_type(w->dtype), cols);
    for (int64_t r = 0; !s && r < rows; r++)
      s = llmc_quant_dequantize_row(ggml_type(w->dtype), (const uint8_t *)raw + r * row_bytes, out + r * cols, cols);
  } else if (!s) {
    s = LLMC_ERROR(UNIMPLEMENTED, "tensor %s: dtype %s cannot be read", w->name, llmc_dtype_name(w->dtype));
  }
  free(raw);
  return s;
}

/* Computes weight-table entry `index` as f32 into out[numel of the entry]. */
static llmc_status_t materialise_f32(const llmc_ir_module_t *m, uint32_t index, float *out) {
  const llmc_ir_weight_t *w = &m->weights[index];
  uint64_t numel = (uint64_t)llmc_shape_numel(&w->shape);
  switch (w->kind) {
  case LLMC_WEIGHT_FILE: return read_file_f32(w, out, numel);
  case LLMC_WEIGHT_DATA: memcpy(out, w->data, numel * sizeof *out); return LLMC_OK;
  case LLMC_WEIGHT_DERIVED: break;
  }
  if (w->op == LLMC_OP_CONCAT) {
    uint64_t at = 0;
    for (int a = 0; a < w->n_args; a++) {
      LLMC_RETURN_IF_ERROR(materialise_f32(m, w->args[a], out + at), "concatenating into %s", w->name);
      at += (uint64_t)llmc_shape_numel(&m->weights[w->args[a]].shape);
    }
    return LLMC_OK;
  }
  LLMC_RETURN_IF_ERROR(materialise_f32(m, w->args[0], out), "computing %s", w->name);
  float value = (float)w->value;
  if (w->op == LLMC_OP_ADD_SCALAR)
    for (uint64_t i = 0; i < numel; i++) out[i] += value;
  else if (w->op == LLMC_OP_MUL_SCALAR)
    for (uint64_t i = 0; i < numel; i++) out[i] *= value;
  else
    return LLMC_ERROR(INTERNAL, "weight %s: cannot derive with op %s", w->name, llmc_ir_op_name(w->op));
  return LLMC_OK;
}

/* Writes entry `index` in `dtype` (its stored type) into out. Quantized or
 * half bytes that are already in that type (file ranges, concatenations of
 * them) are copied; anything else goes through f32 and is quantized row by
 * row (the plan stores halves only where they can be copied). */
static llmc_status_t materialise(const llmc_ir_module_t *m, uint32_t index, llmc_dtype_t dtype, uint8_t *out) {
  const llmc_ir_weight_t *w = &m->weights[index];
  uint64_t numel = (uint64_t)llmc_shape_numel(&w->shape);
  bool as_is = is_quantized(dtype) || is_half(dtype);
  if (as_is && w->kind == LLMC_WEIGHT_FILE && w->dtype == dtype)
    return read_bytes(w, out, llmc_dtype_nbytes(dtype, numel));
  if (as_is && w->kind == LLMC_WEIGHT_DERIVED && w->op == LLMC_OP_CONCAT) {
    /* Blocks never span rows, so concatenating rows is concatenating bytes. */
    for (int a = 0; a < w->n_args; a++) {
      LLMC_RETURN_IF_ERROR(materialise(m, w->args[a], dtype, out), "concatenating into %s", w->name);
      out += llmc_dtype_nbytes(dtype, (uint64_t)llmc_shape_numel(&m->weights[w->args[a]].shape));
    }
    return LLMC_OK;
  }
  if (is_half(dtype))
    return LLMC_ERROR(INTERNAL, "tensor %s: cannot store as %s", w->name, llmc_dtype_name(dtype));
  if (!is_quantized(dtype)) return materialise_f32(m, index, (float *)out);
  float *f32 = malloc(numel * sizeof *f32);
  if (!f32) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s", w->name);
  llmc_status_t s = materialise_f32(m, index, f32);
  int64_t cols = w->shape.dims[w->shape.rank - 1], rows = (int64_t)numel / cols;
  int64_t row_bytes = llmc_quant_row_bytes(ggml_type(dtype), cols);
  for (int64_t r = 0; !s && r < rows; r++)
    s = llmc_quant_quantize_row(ggml_type(dtype), f32 + r * cols, out + r * row_bytes, cols);
  free(f32);
  return s;
}

/* Replaces *data (stored tensor i, as ggml lays out its rows) by its rows
 * in groups of 16 (llmc_quant_group_rows; plan->bytes[i] of them). */
static llmc_status_t group_rows(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, uint32_t i,
                                uint8_t **data) {
  const llmc_ir_weight_t *w = &m->weights[plan->weight[i]];
  uint8_t *grouped = malloc(plan->bytes[i]);
  if (!grouped) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s", w->name);
  llmc_status_t s = llmc_quant_group_rows(ggml_type(plan->dtype[i]), *data, grouped, w->shape.dims[0],
                                          w->shape.dims[1]);
  free(*data);
  *data = grouped;
  return s;
}

/* Writes n bytes at data, then zeros up to aligned(n); adds both to
 * *written. `what` names the item in errors. */
static llmc_status_t write_padded(FILE *f, const void *data, uint64_t n, const char *what,
                                  uint64_t *written) {
  static const char zeros[LLMC_WEIGHTS_ALIGN];
  uint64_t pad = aligned(n) - n;
  if (fwrite(data, 1, n, f) != n || (pad && fwrite(zeros, 1, pad, f) != pad))
    return LLMC_ERROR(IO, "writing %s: %s", what, strerror(errno));
  *written += n + pad;
  return LLMC_OK;
}

llmc_status_t llmc_weights_write(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, FILE *f,
                                 void (*progress)(uint64_t done, uint64_t total)) {
  uint64_t written = 0;
  for (uint32_t i = 0; i < plan->n; i++) {
    const char *name = m->weights[plan->weight[i]].name;
    uint8_t *data = malloc(plan->bytes[i] ? plan->bytes[i] : 1);
    if (!data) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s", name);
    llmc_status_t s = materialise(m, plan->weight[i], plan->dtype[i], data);
    if (!s && plan->grouped[i]) s = group_rows(m, plan, i, &data);
    if (!s) s = llmc_status_annotate(write_padded(f, data, plan->bytes[i], "weights", &written),
                                     "tensor %s", name);
    free(data);
    if (s) return s;
    if (progress) progress(written, plan->total);
  }
  if (plan->tokenizer) {
    LLMC_PROPAGATE(write_padded(f, plan->tokenizer, plan->tokenizer_bytes, "the tokenizer", &written));
    if (progress) progress(written, plan->total);
  }
  return LLMC_OK;
}
