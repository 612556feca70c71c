/* codegen.c — the one file that talks to the LLVM C API.
 *
 * The partitioned IR becomes, inside the kernel library's own module:
 *
 *   llmc_node_V(env, task, n_tasks)   one per node: loads its buffers from
 *       env, computes weight addresses as constants off step->weights, and
 *       calls its kernel with every shape as a constant. LLVM inlines the
 *       kernel where its cost model allows; the big ones (matmuls,
 *       attention), called from many nodes, mostly stay calls that take
 *       their shapes as arguments (docs/design.md).
 *   llmc_region_R(step, bufs...)      one per region, exported: fills env
 *       (the step and each buffer the region touches) and hands each node's
 *       function to the runtime's parallel_for in order.
 *   llmc_step(step)                   runs the regions in order.
 *   llmc_abi                          the ABI record the runtime reads first.
 *
 * Activation buffers live in one scratch area planned per token: a buffer
 * of C floats takes C*4 bytes per token (64-byte aligned) at a per-token
 * offset o, i.e. at scratch + o * token_capacity. Buffers are reused once
 * their last user has run (linear scan over the node order).
 *
 * A matmul whose weight is stored in groups of 16 rows (a quantized weight
 * on a CPU with AVX2 or AVX512-VNNI; targets/cpu/kernels_int8.h) is two
 * calls:
 * llmc_node_V_quantize quantizes its input into a buffer of its own, live
 * only while the node runs, and llmc_node_V multiplies.
 *
 * Then the module is optimised (LLVM's O3 pipeline, for the chosen CPU) and
 * written as an object file; compiler/compile.c links it. */
#include "codegen.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/kernels.h"
#include "cpu/kernels_int8.h"
#include "llmc/abi.h"

typedef struct {
  const llmc_ir_module_t *m;
  const llmc_weight_plan_t *plan;
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i32, i64, f32, ptr, void_t, task_fn_t;
  int64_t *buf_offset;      /* [n_nodes] per-token byte offset of the node's buffer; -1 = none */
  int64_t *act_offset;      /* [n_nodes] per-token byte offset of a matmul's quantized input; -1 = none */
  uint64_t per_token_bytes; /* scratch bytes per token of capacity */
  int32_t *slot;            /* [n_nodes] env slot in the region being generated; -1 = none */
  int32_t *act_slot;        /* [n_nodes] env slot of the node's quantized input; -1 = none */
  int n_layers, kv_dim;
  llmc_int8_isa_t int8_isa; /* which integer kernels grouped weights use */
} codegen_t;

/* ---- buffers ---- */

static int64_t cols(const codegen_t *cg, llmc_ir_value_t v) { return cg->m->nodes[v].shape.dims[1]; }

static bool has_buffer(const llmc_ir_node_t *n) {
  return !n->dead && n->region >= 0 && n->dtype == LLMC_DTYPE_F32 && n->shape.rank == 2;
}

/* Per-token bytes of node v's buffer: its C floats, 64-byte aligned. */
static int64_t buffer_bytes(const codegen_t *cg, uint32_t v) { return (cg->m->nodes[v].shape.dims[1] * 4 + 63) / 64 * 64; }

/* Does node v multiply by a weight stored in groups of 16 rows, and so
 * quantize its input first? Then *k_quant says whether to q8_K (for q4_K
 * and q6_K weights) rather than q8_0. */
static bool quantizes_input(const codegen_t *cg, uint32_t v, bool *k_quant) {
  const llmc_ir_node_t *n = &cg->m->nodes[v], *w = n->op == LLMC_OP_MATMUL ? &cg->m->nodes[n->args[1]] : NULL;
  if (!w || w->op != LLMC_OP_WEIGHT || !llmc_weight_plan_grouped(cg->plan, w->weight)) return false;
  llmc_dtype_t t = llmc_weight_plan_dtype(cg->plan, w->weight);
  *k_quant = t == LLMC_DTYPE_Q4_K || t == LLMC_DTYPE_Q6_K;
  return true;
}

/* The lowest per-token offset where `size` bytes meet none of the n_live
 * buffers in live, and grows the scratch area to hold them there. */
static int64_t place_buffer(codegen_t *cg, const uint32_t *live, uint32_t n_live, int64_t size) {
  int64_t at = 0;
  for (bool moved = true; moved;) {
    moved = false;
    for (uint32_t i = 0; i < n_live; i++) {
      int64_t o = cg->buf_offset[live[i]], e = o + buffer_bytes(cg, live[i]);
      if (at < e && o < at + size) {
        at = e;
        moved = true;
      }
    }
  }
  if ((uint64_t)(at + size) > cg->per_token_bytes) cg->per_token_bytes = (uint64_t)(at + size);
  return at;
}

/* Linear-scan assignment of per-token offsets; a buffer is free again once
 * the last node reading it has run. A quantized input is placed beside
 * its node's arguments and result, and is free again at once. */
static void plan_buffers(codegen_t *cg) {
  const llmc_ir_module_t *m = cg->m;
  uint32_t *last_use = calloc(m->n_nodes, sizeof *last_use);
  uint32_t *live = calloc(m->n_nodes, sizeof *live);
  cg->buf_offset = malloc(m->n_nodes * sizeof *cg->buf_offset);
  cg->act_offset = malloc(m->n_nodes * sizeof *cg->act_offset);
  if (!last_use || !live || !cg->buf_offset || !cg->act_offset) abort();
  for (uint32_t v = 1; v < m->n_nodes; v++)
    for (int a = 0; a < m->nodes[v].n_args; a++) last_use[m->nodes[v].args[a]] = v;
  uint32_t n_live = 0;
  for (uint32_t v = 0; v < m->n_nodes; v++) {
    cg->buf_offset[v] = cg->act_offset[v] = -1;
    if (v == 0 || !has_buffer(&m->nodes[v])) continue;
    for (uint32_t i = 0; i < n_live;) /* release buffers whose readers have all run */
      if (last_use[live[i]] < v) live[i] = live[--n_live];
      else i++;
    cg->buf_offset[v] = place_buffer(cg, live, n_live, buffer_bytes(cg, v));
    live[n_live++] = v;
    bool k_quant;
    if (quantizes_input(cg, v, &k_quant)) {
      int64_t K = cols(cg, m->nodes[v].args[0]);
      cg->act_offset[v] = place_buffer(cg, live, n_live, k_quant ? llmc_act_q8_K_row_bytes(K) : llmc_act_q8_row_bytes(K));
    }
  }
  free(last_use);
  free(live);
}

/* ---- small builders ---- */

static LLVMValueRef ci32(codegen_t *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
static LLVMValueRef ci64(codegen_t *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }
static LLVMValueRef cf32(codegen_t *cg, double v) { return LLVMConstReal(cg->f32, v); }

static LLVMValueRef function(codegen_t *cg, const char *name) {
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  if (!fn) {
    fprintf(stderr, "llmc: internal error: the kernel library has no %s\n", name);
    abort();
  }
  return fn;
}

/* Calls a library function, converting integer arguments to the widths its
 * parameters have (the library is the authority on its own signatures). */
static LLVMValueRef call(codegen_t *cg, const char *name, LLVMValueRef *args, unsigned n) {
  LLVMValueRef fn = function(cg, name);
  LLVMTypeRef ty = LLVMGlobalGetValueType(fn);
  unsigned n_params = LLVMCountParamTypes(ty);
  if (n_params != n) {
    fprintf(stderr, "llmc: internal error: %s takes %u arguments, codegen passes %u\n", name, n_params, n);
    abort();
  }
  LLVMTypeRef params[32];
  LLVMGetParamTypes(ty, params);
  for (unsigned i = 0; i < n; i++) {
    LLVMTypeRef have = LLVMTypeOf(args[i]);
    if (have != params[i] && LLVMGetTypeKind(have) == LLVMIntegerTypeKind &&
        LLVMGetTypeKind(params[i]) == LLVMIntegerTypeKind)
      args[i] = LLVMBuildSExt(cg->b, args[i], params[i], "");
  }
  return LLVMBuildCall2(cg->b, ty, fn, args, n, "");
}

static LLVMValueRef env_load(codegen_t *cg, LLVMValueRef env, int32_t slot) {
  LLVMValueRef idx = ci64(cg, slot);
  LLVMValueRef p = LLVMBuildGEP2(cg->b, cg->ptr, env, &idx, 1, "");
  return LLVMBuildLoad2(cg->b, cg->ptr, p, "");
}

static void env_store(codegen_t *cg, LLVMValueRef env, int32_t slot, LLVMValueRef value) {
  LLVMValueRef idx = ci64(cg, slot);
  LLVMBuildStore(cg->b, value, LLVMBuildGEP2(cg->b, cg->ptr, env, &idx, 1, ""));
}

/* ---- node functions ---- */

typedef struct {
  codegen_t *cg;
  const llmc_ir_node_t *n;
  LLVMValueRef env, step, task, n_tasks;
} node_ctx_t;

/* Address of argument i's data. */
static LLVMValueRef arg_ptr(node_ctx_t *c, int i) {
  codegen_t *cg = c->cg;
  llmc_ir_value_t a = c->n->args[i];
  const llmc_ir_node_t *an = &cg->m->nodes[a];
  switch (an->op) {
  case LLMC_OP_WEIGHT: {
    LLVMValueRef base = call(cg, "llmc_glue_weights", &c->step, 1);
    LLVMValueRef off = ci64(cg, (int64_t)cg->plan->offset[cg->plan->slot[an->weight]]);
    return LLVMBuildGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &off, 1, an->name ? an->name : "w");
  }
  case LLMC_OP_TOKENS: return call(cg, "llmc_glue_tokens", &c->step, 1);
  case LLMC_OP_POSITIONS: return call(cg, "llmc_glue_positions", &c->step, 1);
  default: return env_load(cg, c->env, cg->slot[a]);
  }
}

/* Rows of node v at run time: T or L. */
static LLVMValueRef rows_of(node_ctx_t *c, llmc_ir_value_t v) {
  LLVMValueRef args[2] = {c->step, ci32(c->cg, c->cg->m->nodes[v].shape.dims[0] == LLMC_DIM_L)};
  return call(c->cg, "llmc_glue_rows", args, 2);
}

/* The kernel for `base` (llmc_k_matmul, llmc_k_embed) over the weight node
 * w: the f32 kernel, or its variant for the weight's stored quantized type
 * ("llmc_k_matmul_q4_K"), and for rows stored in groups of 16 the
 * integer kernel of the target's instruction set
 * ("llmc_k_matmul_q8_0_r16_vnni"). Returns a name in buf. */
static const char *weight_kernel(const codegen_t *cg, const char *base, llmc_ir_value_t w, char *buf, size_t size) {
  const llmc_ir_node_t *n = &cg->m->nodes[w];
  llmc_dtype_t t = n->op == LLMC_OP_WEIGHT ? llmc_weight_plan_dtype(cg->plan, n->weight) : LLMC_DTYPE_F32;
  if (t == LLMC_DTYPE_F32) return base;
  bool grouped = n->op == LLMC_OP_WEIGHT && llmc_weight_plan_grouped(cg->plan, n->weight);
  snprintf(buf, size, "%s_%s%s", base, llmc_dtype_name(t),
           !grouped                             ? ""
           : cg->int8_isa == LLMC_INT8_VNNI    ? "_r16_vnni"
           : cg->int8_isa == LLMC_INT8_AVXVNNI ? "_r16_avxvnni"
                                               : "_r16_avx2");
  return buf;
}

static int act_code(const char *act) {
  if (!act) return LLMC_ACT_NONE;
  return !strcmp(act, "gelu_tanh") ? LLMC_ACT_GELU_TANH : LLMC_ACT_SILU;
}

static void emit_kernel_call(node_ctx_t *c, llmc_ir_value_t v) {
  codegen_t *cg = c->cg;
  const llmc_ir_node_t *n = c->n;
  LLVMValueRef out = cg->slot[v] >= 0 ? env_load(cg, c->env, cg->slot[v]) : NULL;
  LLVMValueRef null = LLVMConstPointerNull(cg->ptr);
  LLVMValueRef t = c->task, nt = c->n_tasks;
  char kernel[64];
  switch (n->op) {
  case LLMC_OP_EMBED: {
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), out, rows_of(c, v), ci32(cg, cols(cg, v)),
                        ci32(cg, cg->m->nodes[n->args[0]].shape.dims[0]),
                        cf32(cg, llmc_ir_get_float(n, "scale", 1.0)), t, nt};
    call(cg, weight_kernel(cg, "llmc_k_embed", n->args[0], kernel, sizeof kernel), a, 9);
    break;
  }
  case LLMC_OP_RMS_NORM: {
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), out, rows_of(c, v), ci32(cg, cols(cg, v)),
                        ci32(cg, cg->m->nodes[n->args[1]].shape.dims[0]),
                        cf32(cg, llmc_ir_get_float(n, "eps", 1e-6)), t, nt};
    call(cg, "llmc_k_rms_norm", a, 9);
    break;
  }
  case LLMC_OP_MATMUL: {
    int next = 2;
    LLVMValueRef bias = llmc_ir_get_int(n, "bias", 0) ? arg_ptr(c, next++) : null;
    LLVMValueRef residual = llmc_ir_get_int(n, "residual", 0) ? arg_ptr(c, next++) : null;
    LLVMValueRef x = cg->act_slot[v] >= 0 ? env_load(cg, c->env, cg->act_slot[v]) : arg_ptr(c, 0);
    LLVMValueRef a[] = {x, arg_ptr(c, 1), bias, residual, out, rows_of(c, v),
                        ci32(cg, cols(cg, n->args[0])), ci32(cg, cols(cg, v)),
                        ci32(cg, act_code(llmc_ir_get_string(n, "glu", NULL))), t, nt};
    call(cg, weight_kernel(cg, "llmc_k_matmul", n->args[1], kernel, sizeof kernel), a, 11);
    break;
  }
  case LLMC_OP_ADD:
  case LLMC_OP_MUL: {
    bool row = cg->m->nodes[n->args[1]].shape.rank == 1;
    LLVMValueRef r = rows_of(c, v);
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), out, r, ci32(cg, cols(cg, v)), row ? ci32(cg, 1) : r,
                        ci32(cg, n->op == LLMC_OP_ADD ? LLMC_BINARY_ADD : LLMC_BINARY_MUL), t, nt};
    call(cg, "llmc_k_binary", a, 9);
    break;
  }
  case LLMC_OP_ADD_SCALAR:
  case LLMC_OP_MUL_SCALAR:
  case LLMC_OP_SOFTCAP: {
    int op = n->op == LLMC_OP_ADD_SCALAR   ? LLMC_UNARY_ADD_SCALAR
             : n->op == LLMC_OP_MUL_SCALAR ? LLMC_UNARY_MUL_SCALAR
                                           : LLMC_UNARY_SOFTCAP;
    double value = llmc_ir_get_float(n, n->op == LLMC_OP_SOFTCAP ? "cap" : "value", 0);
    LLVMValueRef count = LLVMBuildMul(cg->b, LLVMBuildSExt(cg->b, rows_of(c, v), cg->i64, ""),
                                      ci64(cg, cols(cg, v)), "");
    LLVMValueRef a[] = {arg_ptr(c, 0), out, count, ci32(cg, op), cf32(cg, value), t, nt};
    call(cg, "llmc_k_unary", a, 7);
    break;
  }
  case LLMC_OP_GLU: {
    LLVMValueRef count = LLVMBuildMul(cg->b, LLVMBuildSExt(cg->b, rows_of(c, v), cg->i64, ""),
                                      ci64(cg, cols(cg, v)), "");
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), out, count,
                        ci32(cg, act_code(llmc_ir_get_string(n, "act", "silu"))), t, nt};
    call(cg, "llmc_k_glu", a, 7);
    break;
  }
  case LLMC_OP_SLICE: {
    LLVMValueRef a[] = {arg_ptr(c, 0), out, rows_of(c, v), ci32(cg, cols(cg, n->args[0])),
                        ci32(cg, llmc_ir_get_int(n, "begin", 0)), ci32(cg, llmc_ir_get_int(n, "end", 0)), t, nt};
    call(cg, "llmc_k_slice", a, 8);
    break;
  }
  case LLMC_OP_ROPE: {
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), arg_ptr(c, 2), out, rows_of(c, v),
                        ci32(cg, llmc_ir_get_int(n, "heads", 0)), ci32(cg, llmc_ir_get_int(n, "head_dim", 0)),
                        ci32(cg, 2 * cg->m->nodes[n->args[2]].shape.dims[0]),
                        ci32(cg, llmc_ir_get_int(n, "interleaved", 0)), t, nt};
    call(cg, "llmc_k_rope", a, 11);
    break;
  }
  case LLMC_OP_KV_STORE: {
    LLVMValueRef a[] = {c->step, arg_ptr(c, 0), arg_ptr(c, 1), ci32(cg, llmc_ir_get_int(n, "layer", 0)),
                        ci32(cg, cols(cg, n->args[0])), t, nt};
    call(cg, "llmc_k_kv_store", a, 7);
    break;
  }
  case LLMC_OP_ATTENTION: {
    LLVMValueRef a[] = {c->step, arg_ptr(c, 0), out, ci32(cg, llmc_ir_get_int(n, "layer", 0)),
                        ci32(cg, llmc_ir_get_int(n, "heads", 0)), ci32(cg, llmc_ir_get_int(n, "kv_heads", 0)),
                        ci32(cg, llmc_ir_get_int(n, "head_dim", 0)), ci32(cg, cg->kv_dim),
                        cf32(cg, llmc_ir_get_float(n, "scale", 1)), cf32(cg, llmc_ir_get_float(n, "softcap", 0)),
                        ci32(cg, llmc_ir_get_int(n, "window", 0)), t, nt};
    call(cg, "llmc_k_attention", a, 13);
    break;
  }
  case LLMC_OP_SELECT_ROWS: {
    LLVMValueRef a[] = {c->step, arg_ptr(c, 0), out, ci32(cg, cols(cg, v)), t, nt};
    call(cg, "llmc_k_select_rows", a, 6);
    break;
  }
  case LLMC_OP_OUTPUT: {
    LLVMValueRef a[] = {c->step, arg_ptr(c, 0), ci32(cg, cols(cg, n->args[0])), t, nt};
    call(cg, "llmc_k_output", a, 5);
    break;
  }
  case LLMC_OP_MOE: {
    const llmc_ir_shape_t *router = &cg->m->nodes[n->args[1]].shape, *down = &cg->m->nodes[n->args[3]].shape;
    LLVMValueRef a[] = {arg_ptr(c, 0), arg_ptr(c, 1), arg_ptr(c, 2), arg_ptr(c, 3), out, rows_of(c, v),
                        ci32(cg, cols(cg, v)), ci32(cg, down->dims[1]), ci32(cg, router->dims[0]),
                        ci32(cg, llmc_ir_get_int(n, "top_k", 2)),
                        ci32(cg, act_code(llmc_ir_get_string(n, "act", "silu"))), t, nt};
    call(cg, "llmc_k_moe", a, 13);
    break;
  }
  default:
    fprintf(stderr, "llmc: internal error: no lowering for %s\n", llmc_ir_op_name(n->op));
    abort();
  }
}

/* llmc_node_V, or with quantize llmc_node_V_quantize: the quantization of
 * matmul V's input into its buffer (kernels_int8.h). */
static LLVMValueRef emit_node_function(codegen_t *cg, llmc_ir_value_t v, bool quantize) {
  char name[64];
  snprintf(name, sizeof name, quantize ? "llmc_node_%u_quantize" : "llmc_node_%u", v);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, cg->task_fn_t);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  node_ctx_t c = {cg, &cg->m->nodes[v], LLVMGetParam(fn, 0), NULL, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
  c.step = env_load(cg, c.env, 0);
  bool k_quant;
  if (quantize && quantizes_input(cg, v, &k_quant)) {
    LLVMValueRef a[] = {arg_ptr(&c, 0), env_load(cg, c.env, cg->act_slot[v]), rows_of(&c, v),
                        ci32(cg, cols(cg, c.n->args[0])), c.task, c.n_tasks};
    call(cg, k_quant ? "llmc_k_quantize_act_q8_K" : "llmc_k_quantize_act_q8", a, 6);
  } else {
    emit_kernel_call(&c, v);
  }
  LLVMBuildRetVoid(cg->b);
  return fn;
}

/* ---- regions and the step ---- */

/* The buffers region r reads or writes that are also touched outside it,
 * in value order: they are the region function's parameters. */
static int region_params(const codegen_t *cg, int32_t r, llmc_ir_value_t *out, bool *is_out) {
  const llmc_ir_module_t *m = cg->m;
  bool *in_param = calloc(m->n_nodes, sizeof *in_param), *out_param = calloc(m->n_nodes, sizeof *out_param);
  if (!in_param || !out_param) abort();
  for (uint32_t u = 1; u < m->n_nodes; u++) {
    const llmc_ir_node_t *n = &m->nodes[u];
    if (n->region < 0) continue;
    for (int a = 0; a < n->n_args; a++) {
      llmc_ir_value_t x = n->args[a];
      if (!has_buffer(&m->nodes[x])) continue;
      if (n->region == r && m->nodes[x].region != r) in_param[x] = true;
      if (n->region != r && m->nodes[x].region == r) out_param[x] = true;
    }
  }
  int count = 0;
  for (uint32_t x = 1; x < m->n_nodes; x++)
    if (in_param[x] || out_param[x]) {
      is_out[count] = out_param[x];
      out[count++] = x;
    }
  free(in_param);
  free(out_param);
  return count;
}

static cJSON *shape_json(const llmc_ir_shape_t *s) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < s->rank; i++)
    cJSON_AddItemToArray(a, s->dims[i] == LLMC_DIM_T   ? cJSON_CreateString("T")
                            : s->dims[i] == LLMC_DIM_L ? cJSON_CreateString("L")
                                                       : cJSON_CreateNumber((double)s->dims[i]));
  return a;
}

static cJSON *step_arg_json(void) {
  cJSON *arg = cJSON_CreateObject();
  cJSON_AddStringToObject(arg, "name", "step");
  cJSON_AddStringToObject(arg, "type", "step");
  return arg;
}

/* Emits llmc_region_r and describes it in entry_points. */
static LLVMValueRef emit_region(codegen_t *cg, int32_t r, cJSON *entry_points) {
  const llmc_ir_module_t *m = cg->m;
  llmc_ir_value_t *params = malloc(m->n_nodes * sizeof *params);
  bool *is_out = malloc(m->n_nodes * sizeof *is_out);
  if (!params || !is_out) abort();
  int n_params = region_params(cg, r, params, is_out);
  LLVMTypeRef *types = malloc(((size_t)n_params + 1) * sizeof *types);
  for (int i = 0; i <= n_params; i++) types[i] = cg->ptr;
  char name[64];
  snprintf(name, sizeof name, "llmc_region_%d", r);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->void_t, types, (unsigned)n_params + 1, 0));
  free(types);

  /* Slots: 0 = step, then every buffer the region touches. */
  int32_t n_slots = 1;
  for (uint32_t v = 0; v < m->n_nodes; v++) cg->slot[v] = cg->act_slot[v] = -1;
  for (uint32_t u = 1; u < m->n_nodes; u++) {
    const llmc_ir_node_t *n = &m->nodes[u];
    if (n->region != r) continue;
    for (int a = 0; a < n->n_args; a++)
      if (has_buffer(&m->nodes[n->args[a]]) && cg->slot[n->args[a]] < 0) cg->slot[n->args[a]] = n_slots++;
    if (has_buffer(n) && cg->slot[u] < 0) cg->slot[u] = n_slots++;
    if (cg->act_offset[u] >= 0) cg->act_slot[u] = n_slots++;
  }
  /* Node functions first: they read cg->slot, which is per region. */
  LLVMValueRef *node_fns = calloc(m->n_nodes, sizeof *node_fns), *quantize_fns = calloc(m->n_nodes, sizeof *quantize_fns);
  if (!node_fns || !quantize_fns) abort();
  for (uint32_t u = 1; u < m->n_nodes; u++)
    if (m->nodes[u].region == r) {
      node_fns[u] = emit_node_function(cg, u, false);
      if (cg->act_slot[u] >= 0) quantize_fns[u] = emit_node_function(cg, u, true);
    }

  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef step = LLVMGetParam(fn, 0);
  LLVMValueRef env = LLVMBuildArrayAlloca(cg->b, cg->ptr, ci32(cg, n_slots), "env");
  env_store(cg, env, 0, step);
  bool *is_param = calloc(m->n_nodes, sizeof *is_param);
  cJSON *entry = cJSON_CreateObject(), *args = cJSON_CreateArray();
  cJSON_AddStringToObject(entry, "name", name);
  cJSON_AddItemToArray(args, step_arg_json());
  for (int i = 0; i < n_params; i++) {
    llmc_ir_value_t x = params[i];
    is_param[x] = true;
    env_store(cg, env, cg->slot[x], LLVMGetParam(fn, (unsigned)i + 1));
    cJSON *arg = cJSON_CreateObject();
    char vname[32];
    snprintf(vname, sizeof vname, "%%%u", x);
    cJSON_AddStringToObject(arg, "name", vname);
    if (m->nodes[x].name) cJSON_AddStringToObject(arg, "node", m->nodes[x].name);
    cJSON_AddStringToObject(arg, "type", "tensor");
    cJSON_AddStringToObject(arg, "dtype", llmc_dtype_name(m->nodes[x].dtype));
    cJSON_AddItemToObject(arg, "shape", shape_json(&m->nodes[x].shape));
    cJSON_AddStringToObject(arg, "dir", is_out[i] ? "out" : "in");
    cJSON_AddItemToArray(args, arg);
  }
  for (uint32_t x = 1; x < m->n_nodes; x++) {
    if (cg->slot[x] > 0 && !is_param[x]) {
      LLVMValueRef a[2] = {step, ci64(cg, cg->buf_offset[x])};
      env_store(cg, env, cg->slot[x], call(cg, "llmc_glue_scratch", a, 2));
    }
    if (cg->act_slot[x] > 0) {
      LLVMValueRef a[2] = {step, ci64(cg, cg->act_offset[x])};
      env_store(cg, env, cg->act_slot[x], call(cg, "llmc_glue_scratch", a, 2));
    }
  }
  bool batchless = false;
  for (uint32_t u = 1; u < m->n_nodes; u++)
    if (m->nodes[u].region == r) {
      batchless |= (llmc_ir_op_flags(m->nodes[u].op) & LLMC_OPF_BATCHLESS) != 0;
      if (quantize_fns[u]) {
        LLVMValueRef q[3] = {step, quantize_fns[u], env};
        call(cg, "llmc_glue_parallel_for", q, 3);
      }
      LLVMValueRef a[3] = {step, node_fns[u], env};
      call(cg, "llmc_glue_parallel_for", a, 3);
    }
  LLVMBuildRetVoid(cg->b);
  cJSON_AddStringToObject(entry, "kind", batchless ? "batchless" : "batchful");
  cJSON_AddItemToObject(entry, "args", args);
  cJSON_AddItemToArray(entry_points, entry);
  free(params);
  free(is_out);
  free(node_fns);
  free(quantize_fns);
  free(is_param);
  return fn;
}

static LLVMValueRef emit_step(codegen_t *cg, LLVMValueRef *regions) {
  const llmc_ir_module_t *m = cg->m;
  LLVMValueRef fn = LLVMAddFunction(cg->mod, "llmc_step", LLVMFunctionType(cg->void_t, &cg->ptr, 1, 0));
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef step = LLVMGetParam(fn, 0);
  llmc_ir_value_t *params = malloc(m->n_nodes * sizeof *params);
  bool *is_out = malloc(m->n_nodes * sizeof *is_out);
  LLVMValueRef *args = malloc((m->n_nodes + 1) * sizeof *args);
  if (!params || !is_out || !args) abort();
  for (int32_t r = 0; r < m->n_regions; r++) {
    int n = region_params(cg, r, params, is_out);
    args[0] = step;
    for (int i = 0; i < n; i++) {
      LLVMValueRef a[2] = {step, ci64(cg, cg->buf_offset[params[i]])};
      args[i + 1] = call(cg, "llmc_glue_scratch", a, 2);
    }
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(regions[r]), regions[r], args, (unsigned)n + 1, "");
  }
  LLVMBuildRetVoid(cg->b);
  free(params);
  free(is_out);
  free(args);
  return fn;
}

/* uint64_t scratch_bytes(int32_t capacity) = per_token_bytes * capacity + 64 */
static LLVMValueRef emit_scratch_bytes(codegen_t *cg) {
  LLVMValueRef fn = LLVMAddFunction(cg->mod, "llmc_scratch_bytes", LLVMFunctionType(cg->i64, &cg->i32, 1, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef cap = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 0), cg->i64, "");
  LLVMBuildRet(cg->b, LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, cap, ci64(cg, (int64_t)cg->per_token_bytes), ""),
                                   ci64(cg, 64), ""));
  return fn;
}

/* The llmc_abi record, laid out as llmc_abi_record_t in abi.h (glue.c
 * asserts the offsets this layout gives). */
static void emit_abi_record(codegen_t *cg, const char *metadata, uint64_t weights_bytes, int vocab,
                            int max_context, LLVMValueRef scratch_fn, LLVMValueRef step_fn) {
  LLVMTypeRef fields[] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->ptr, cg->i64,
                          cg->i32, cg->i32, cg->i32, cg->i32, cg->ptr, cg->ptr};
  LLVMTypeRef rec = LLVMStructTypeInContext(cg->ctx, fields, 12, 0);
  LLVMValueRef text = LLVMConstStringInContext(cg->ctx, metadata, (unsigned)strlen(metadata), 0);
  LLVMValueRef meta = LLVMAddGlobal(cg->mod, LLVMTypeOf(text), "llmc_metadata");
  LLVMSetInitializer(meta, text);
  LLVMSetGlobalConstant(meta, 1);
  LLVMSetLinkage(meta, LLVMPrivateLinkage);
  LLVMValueRef values[] = {ci32(cg, LLMC_ABI_MAGIC), ci32(cg, LLMC_ABI_VERSION), ci32(cg, sizeof(llmc_abi_record_t)),
                           ci32(cg, 0), meta, ci64(cg, (int64_t)weights_bytes), ci32(cg, vocab),
                           ci32(cg, cg->n_layers), ci32(cg, cg->kv_dim), ci32(cg, max_context), scratch_fn, step_fn};
  LLVMValueRef g = LLVMAddGlobal(cg->mod, rec, LLMC_ABI_SYMBOL);
  LLVMSetInitializer(g, LLVMConstStructInContext(cg->ctx, values, 12, 0));
  LLVMSetGlobalConstant(g, 1);
}

/* ---- driver ---- */

static llmc_status_t load_kernels(codegen_t *cg, const llmc_target_t *target) {
  LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange(
      (const char *)target->kernel_bc, target->kernel_bc_size, "kernels", 0);
  if (LLVMParseBitcodeInContext2(cg->ctx, buf, &cg->mod)) {
    LLVMDisposeMemoryBuffer(buf);
    return LLMC_ERROR(INTERNAL, "the embedded kernel library for %s does not parse", target->name);
  }
  LLVMDisposeMemoryBuffer(buf);
  return LLMC_OK;
}

/* Every function gets the chosen CPU and features, so kernels compiled for
 * a generic CPU are specialised (and can be inlined into their callers). */
static void set_cpu(codegen_t *cg, const char *cpu, const char *features) {
  LLVMAttributeRef a_cpu = LLVMCreateStringAttribute(cg->ctx, "target-cpu", 10, cpu, (unsigned)strlen(cpu));
  LLVMAttributeRef a_feat =
      LLVMCreateStringAttribute(cg->ctx, "target-features", 15, features, (unsigned)strlen(features));
  for (LLVMValueRef fn = LLVMGetFirstFunction(cg->mod); fn; fn = LLVMGetNextFunction(fn)) {
    if (LLVMIsDeclaration(fn)) continue;
    LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, "tune-cpu", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a_cpu);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a_feat);
    const char *name = LLVMGetValueName(fn);
    if (strncmp(name, "llmc_region_", 12) && strcmp(name, "llmc_step")) LLVMSetLinkage(fn, LLVMInternalLinkage);
  }
}

static void kv_shape(codegen_t *cg) {
  for (uint32_t v = 1; v < cg->m->n_nodes; v++) {
    const llmc_ir_node_t *n = &cg->m->nodes[v];
    if (n->op != LLMC_OP_KV_STORE) continue;
    int layer = (int)llmc_ir_get_int(n, "layer", 0);
    if (layer + 1 > cg->n_layers) cg->n_layers = layer + 1;
    cg->kv_dim = (int)cg->m->nodes[n->args[0]].shape.dims[1];
  }
}

static llmc_status_t check_kv(const codegen_t *cg) {
  for (uint32_t v = 1; v < cg->m->n_nodes; v++) {
    const llmc_ir_node_t *n = &cg->m->nodes[v];
    if (n->op == LLMC_OP_KV_STORE && cg->m->nodes[n->args[0]].shape.dims[1] != cg->kv_dim)
      return LLMC_ERROR(UNIMPLEMENTED, "layers with different KV widths (%lld vs %d) are not supported yet",
                        (long long)cg->m->nodes[n->args[0]].shape.dims[1], cg->kv_dim);
  }
  return LLMC_OK;
}

static llmc_status_t emit(codegen_t *cg, cJSON *meta, const llmc_codegen_options_t *opts,
                          LLVMTargetMachineRef tm, const char *cpu, const char *features) {
  const llmc_ir_module_t *m = cg->m;
  kv_shape(cg);
  LLMC_PROPAGATE(check_kv(cg));
  plan_buffers(cg);
  cg->slot = malloc(m->n_nodes * sizeof *cg->slot);
  cg->act_slot = malloc(m->n_nodes * sizeof *cg->act_slot);
  if (!cg->slot || !cg->act_slot) abort();

  cJSON *entry_points = cJSON_CreateArray();
  cJSON *step_entry = cJSON_CreateObject(), *step_args = cJSON_CreateArray();
  cJSON_AddStringToObject(step_entry, "name", "llmc_step");
  cJSON_AddStringToObject(step_entry, "kind", "step");
  cJSON_AddItemToArray(step_args, step_arg_json());
  cJSON_AddItemToObject(step_entry, "args", step_args);
  cJSON_AddItemToArray(entry_points, step_entry);
  LLVMValueRef *regions = malloc(((size_t)m->n_regions + 1) * sizeof *regions);
  for (int32_t r = 0; r < m->n_regions; r++) regions[r] = emit_region(cg, r, entry_points);
  LLVMValueRef step_fn = emit_step(cg, regions);
  free(regions);
  LLVMValueRef scratch_fn = emit_scratch_bytes(cg);

  cJSON *target = cJSON_CreateObject();
  cJSON_AddStringToObject(target, "triple", opts->target->triple);
  cJSON_AddStringToObject(target, "cpu", cpu);
  cJSON_AddStringToObject(target, "features", features);
  cJSON_AddItemToObject(meta, "target", target);
  cJSON *kv = cJSON_CreateObject();
  cJSON_AddNumberToObject(kv, "layers", cg->n_layers);
  cJSON_AddNumberToObject(kv, "kv_dim", cg->kv_dim);
  cJSON_AddItemToObject(meta, "kv", kv);
  cJSON_AddNumberToObject(meta, "scratch_bytes_per_token", (double)cg->per_token_bytes);
  cJSON_AddItemToObject(meta, "entry_points", entry_points);

  int vocab = 0, max_context = 4096;
  for (uint32_t v = 1; v < m->n_nodes; v++)
    if (m->nodes[v].op == LLMC_OP_OUTPUT) vocab = (int)m->nodes[m->nodes[v].args[0]].shape.dims[1];
  const cJSON *mc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(meta, "config"), "max_context");
  if (cJSON_IsNumber(mc) && mc->valueint > 0) max_context = mc->valueint;
  char *metadata = cJSON_PrintUnformatted(meta);
  emit_abi_record(cg, metadata, cg->plan->total, vocab, max_context, scratch_fn, step_fn);
  cJSON_free(metadata);

  set_cpu(cg, cpu, features);
  char *err = NULL;
  if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &err)) {
    llmc_status_t s = LLMC_ERROR(INTERNAL, "generated LLVM IR does not verify: %s", err);
    LLVMDisposeMessage(err);
    return s;
  }
  LLVMDisposeMessage(err);
  LLVMPassBuilderOptionsRef pb = LLVMCreatePassBuilderOptions();
  LLVMErrorRef perr = LLVMRunPasses(cg->mod, "default<O3>", tm, pb);
  LLVMDisposePassBuilderOptions(pb);
  if (perr) {
    char *msg = LLVMGetErrorMessage(perr);
    llmc_status_t s = LLMC_ERROR(INTERNAL, "LLVM optimisation failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return s;
  }
  if (opts->llvm_ir_path && LLVMPrintModuleToFile(cg->mod, opts->llvm_ir_path, &err)) {
    llmc_status_t s = LLMC_ERROR(IO, "writing %s: %s", opts->llvm_ir_path, err);
    LLVMDisposeMessage(err);
    return s;
  }
  if (LLVMTargetMachineEmitToFile(tm, cg->mod, opts->object_path, LLVMObjectFile, &err)) {
    llmc_status_t s = LLMC_ERROR(IO, "writing %s: %s", opts->object_path, err);
    LLVMDisposeMessage(err);
    return s;
  }
  return LLMC_OK;
}

/* LLVM's C API cannot ask whether a CPU name is valid, and an unknown name
 * only prints a warning when a target machine is created for it (and later
 * aborts code generation for some names). So a target machine is created
 * with stderr captured, and the warning, if any, becomes an error. */
static llmc_status_t check_cpu(LLVMTargetRef target, const char *triple, const char *cpu) {
  FILE *capture = tmpfile();
  int saved = dup(STDERR_FILENO);
  bool unknown = false;
  if (capture && saved >= 0) {
    fflush(stderr);
    dup2(fileno(capture), STDERR_FILENO);
    LLVMDisposeTargetMachine(LLVMCreateTargetMachine(target, triple, cpu, "", LLVMCodeGenLevelNone, LLVMRelocPIC,
                                                     LLVMCodeModelDefault));
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    char text[512];
    rewind(capture);
    text[fread(text, 1, sizeof text - 1, capture)] = 0;
    unknown = strstr(text, "not a recognized processor") != NULL;
  }
  if (saved >= 0) close(saved);
  if (capture) fclose(capture);
  if (unknown)
    return LLMC_ERROR(INVALID_ARGUMENT, "--cpu: \"%s\" is not a CPU LLVM knows for %s (e.g. x86-64-v3, x86-64-v4, "
                      "znver4, sapphirerapids; `llc-19 -mtriple=%s -mcpu=help` lists them)", cpu, triple, triple);
  return LLMC_OK;
}

/* LLVM's names for x86-64 CPUs by the integer kernels their feature sets
 * allow: AVX512-VNNI, AVX-VNNI, or AVX2 (with FMA and F16C). */
static const char *const vnni_cpus[] = {
    "cascadelake",    "cooperlake",     "icelake-client", "icelake-server", "tigerlake",
    "rocketlake",     "sapphirerapids", "emeraldrapids",  "graniterapids",  "graniterapids-d",
    "diamondrapids",  "znver4",         "znver5",
};
static const char *const avxvnni_cpus[] = {
    "alderlake",  "raptorlake",   "meteorlake", "arrowlake",  "arrowlake-s",      "lunarlake",
    "pantherlake", "gracemont",   "sierraforest", "grandridge", "clearwaterforest",
};
static const char *const avx2_cpus[] = {
    "x86-64-v3", "x86-64-v4", "haswell", "broadwell", "skylake", "skylake-avx512", "cannonlake",
    "znver1",    "znver2",    "znver3",  "bdver4",
};

static bool listed(const char *cpu, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(cpu, names[i])) return true;
  return false;
}

llmc_int8_isa_t llmc_codegen_int8_isa(const llmc_codegen_options_t *opts) {
  if (strcmp(opts->target->name, "x86_64")) return LLMC_INT8_NONE;
  if (!opts->cpu && opts->target == llmc_target_find(NULL)) {
    char *features = LLVMGetHostCPUFeatures();
    bool avx2 = strstr(features, "+avx2") && strstr(features, "+fma") && strstr(features, "+f16c");
    llmc_int8_isa_t isa = strstr(features, "+avx512vnni")      ? LLMC_INT8_VNNI
                          : avx2 && strstr(features, "+avxvnni") ? LLMC_INT8_AVXVNNI
                          : avx2                                 ? LLMC_INT8_AVX2
                                                                 : LLMC_INT8_NONE;
    LLVMDisposeMessage(features);
    return isa;
  }
  const char *cpu = opts->cpu ? opts->cpu : opts->target->baseline_cpu;
  if (listed(cpu, vnni_cpus, sizeof vnni_cpus / sizeof *vnni_cpus)) return LLMC_INT8_VNNI;
  if (listed(cpu, avxvnni_cpus, sizeof avxvnni_cpus / sizeof *avxvnni_cpus)) return LLMC_INT8_AVXVNNI;
  if (listed(cpu, avx2_cpus, sizeof avx2_cpus / sizeof *avx2_cpus)) return LLMC_INT8_AVX2;
  return LLMC_INT8_NONE;
}

llmc_status_t llmc_codegen(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, cJSON *meta,
                           const llmc_codegen_options_t *opts) {
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(opts->target->triple, &target, &err)) {
    llmc_status_t s = LLMC_ERROR(UNIMPLEMENTED, "LLVM has no target %s: %s", opts->target->triple, err);
    LLVMDisposeMessage(err);
    return s;
  }
  /* The host CPU and its exact features when compiling for this machine;
   * otherwise the named CPU with the features LLVM knows it has. */
  bool host = !opts->cpu && opts->target == llmc_target_find(NULL);
  char *host_cpu = host ? LLVMGetHostCPUName() : NULL, *host_features = host ? LLVMGetHostCPUFeatures() : NULL;
  const char *cpu = host ? host_cpu : opts->cpu ? opts->cpu : opts->target->baseline_cpu;
  const char *features = host ? host_features : "";
  if (opts->cpu) {
    llmc_status_t s = check_cpu(target, opts->target->triple, cpu);
    if (s) {
      LLVMDisposeMessage(host_cpu);
      LLVMDisposeMessage(host_features);
      return s;
    }
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, opts->target->triple, cpu, features,
                                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault);
  codegen_t cg = {.m = m, .plan = plan, .ctx = LLVMContextCreate(), .int8_isa = llmc_codegen_int8_isa(opts)};
  cg.b = LLVMCreateBuilderInContext(cg.ctx);
  cg.i32 = LLVMInt32TypeInContext(cg.ctx);
  cg.i64 = LLVMInt64TypeInContext(cg.ctx);
  cg.f32 = LLVMFloatTypeInContext(cg.ctx);
  cg.ptr = LLVMPointerTypeInContext(cg.ctx, 0);
  cg.void_t = LLVMVoidTypeInContext(cg.ctx);
  LLVMTypeRef task_params[3] = {cg.ptr, cg.i32, cg.i32};
  cg.task_fn_t = LLVMFunctionType(cg.void_t, task_params, 3, 0);
  llmc_status_t s = load_kernels(&cg, opts->target);
  if (!s) {
    LLVMSetTarget(cg.mod, opts->target->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(cg.mod, dl);
    LLVMDisposeTargetData(dl);
    s = emit(&cg, meta, opts, tm, cpu, features);
  }
  if (cg.mod) LLVMDisposeModule(cg.mod);
  LLVMDisposeBuilder(cg.b);
  LLVMContextDispose(cg.ctx);
  LLVMDisposeTargetMachine(tm);
  LLVMDisposeMessage(host_cpu);
  LLVMDisposeMessage(host_features);
  free(cg.buf_offset);
  free(cg.act_offset);
  free(cg.slot);
  free(cg.act_slot);
  return s;
}
