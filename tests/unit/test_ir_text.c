/* test_ir_text.c — the IR text form and verifier.
 *
 * Builds a small llama-like module that uses every op, every weight kind
 * and every attribute kind, then checks: it verifies; print → parse →
 * print gives identical text and bit-identical values; dead nodes leave
 * gaps that the parser closes; broken texts fail with file:line:col
 * messages; broken modules fail verification with messages naming the
 * node; and a few thousand mutated texts never crash the parser, verifier
 * or printer (run it under -fsanitize=address,undefined). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ir.h"

#define S1(a) ((llmc_ir_shape_t){1, {a}})
#define S2(a, b) ((llmc_ir_shape_t){2, {a, b}})
#define T LLMC_DIM_T
#define L LLMC_DIM_L

/* The module printed into a malloc'ed string. */
static char *print_to_string(const llmc_ir_module_t *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  llmc_ir_print(m, f);
  fclose(f);
  return buf;
}

/* A node with its type set; args follow as unsigned values. */
static llmc_ir_value_t node(llmc_ir_module_t *m, llmc_ir_op_t op, llmc_dtype_t dtype,
                            llmc_ir_shape_t shape, int n_args, ...) {
  llmc_ir_value_t args[LLMC_IR_MAX_ARGS];
  va_list ap;
  va_start(ap, n_args);
  for (int i = 0; i < n_args; i++) args[i] = va_arg(ap, unsigned);
  va_end(ap);
  llmc_ir_value_t v = llmc_ir_add_node(m, op, n_args, args);
  m->nodes[v].dtype = dtype;
  m->nodes[v].shape = shape;
  return v;
}

static uint32_t file_weight(llmc_ir_module_t *m, const char *name, llmc_dtype_t dtype,
                            llmc_ir_shape_t shape, uint64_t offset) {
  uint32_t w = llmc_ir_add_weight(m, name, dtype, shape);
  m->weights[w].kind = LLMC_WEIGHT_FILE;
  m->weights[w].file = "model dir/model-00001.safetensors";
  m->weights[w].offset = offset;
  return w;
}

static uint32_t derived_weight(llmc_ir_module_t *m, const char *name, llmc_dtype_t dtype,
                               llmc_ir_shape_t shape, llmc_ir_op_t op, int n_args,
                               const uint32_t *args, double value) {
  uint32_t w = llmc_ir_add_weight(m, name, dtype, shape);
  llmc_ir_weight_t *p = &m->weights[w];
  p->kind = LLMC_WEIGHT_DERIVED;
  p->op = op;
  p->n_args = n_args;
  memcpy(p->args, args, (size_t)n_args * sizeof *args);
  p->value = value;
  return w;
}

static llmc_ir_value_t weight_node(llmc_ir_module_t *m, uint32_t w) {
  llmc_ir_value_t v = node(m, LLMC_OP_WEIGHT, m->weights[w].dtype, m->weights[w].shape, 0);
  m->nodes[v].weight = w;
  return v;
}

/* One llama-like layer (hidden 256, 4 heads of 64, 2 KV heads) plus a MoE
 * block, a tied LM head and a few oddities: every op appears. */
static llmc_ir_module_t *build_module(void) {
  llmc_ir_module_t *m = llmc_ir_module_create();
  m->arch = "llama";
  m->meta_json = "{\"vocab_size\":512,\n  \"note\":\"a;b \\\"c\\\"\"}";

  uint32_t w_embd =
      file_weight(m, "model.embed_tokens.weight", LLMC_DTYPE_F32, S2(512, 256), 262144);
  uint32_t w_freq = llmc_ir_add_weight(m, "rope.inv_freq", LLMC_DTYPE_F32, S1(32));
  m->weights[w_freq].kind = LLMC_WEIGHT_DATA;
  m->weights[w_freq].data = llmc_arena_alloc(m->arena, 32 * sizeof(float));
  for (int i = 0; i < 32; i++) m->weights[w_freq].data[i] = powf(10000.0f, -(float)i / 32.0f);
  m->weights[w_freq].data[1] = 0.1f;
  m->weights[w_freq].data[2] = 1e-5f;
  m->weights[w_freq].data[3] = -0.0f;
  m->weights[w_freq].data[4] = 1e-40f; /* a denormal */
  uint32_t w_norm = file_weight(m, "blk.0.attn_norm.weight", LLMC_DTYPE_F16, S1(256), 1024);
  uint32_t w_q = file_weight(m, "blk.0.attn_q.weight", LLMC_DTYPE_Q8_0, S2(256, 256), 4096);
  uint32_t w_k = file_weight(m, "blk.0.attn_k.weight", LLMC_DTYPE_Q8_0, S2(128, 256), 1u << 20);
  uint32_t w_v = file_weight(m, "blk.0.attn_v.weight", LLMC_DTYPE_Q8_0, S2(128, 256), 1u << 21);
  uint32_t w_qkv = derived_weight(m, "blk.0.attn_qkv", LLMC_DTYPE_Q8_0, S2(512, 256),
                                  LLMC_OP_CONCAT, 3, (uint32_t[]){w_q, w_k, w_v}, 0);
  uint32_t w_norm1 = derived_weight(m, "blk.0.attn_norm.1p", LLMC_DTYPE_F32, S1(256),
                                    LLMC_OP_ADD_SCALAR, 1, (uint32_t[]){w_norm}, 1.0);
  uint32_t w_o =
      file_weight(m, "blk.0.attn_output.weight", LLMC_DTYPE_BF16, S2(256, 256), 1u << 22);
  uint32_t w_bo = file_weight(m, "blk.0.attn_output.bias", LLMC_DTYPE_F32, S1(256), 1u << 23);
  uint32_t w_gu = file_weight(m, "blk.0.ffn_gate_up", LLMC_DTYPE_Q4_K, S2(1024, 256), 1u << 24);
  uint32_t w_down = file_weight(m, "blk.0.ffn_down", LLMC_DTYPE_Q6_K, S2(256, 512), 1u << 25);
  uint32_t w_router = file_weight(m, "moe.router", LLMC_DTYPE_F32, S2(4, 256), 1u << 26);
  uint32_t w_mgu = file_weight(m, "moe.gate_up", LLMC_DTYPE_Q4_0, S2(1024, 256), 1u << 27);
  uint32_t w_mdown = file_weight(m, "moe.down", LLMC_DTYPE_Q8_0, S2(1024, 128), 1u << 28);
  uint32_t w_head = derived_weight(m, "lm head \"tied\"; x", LLMC_DTYPE_F32, S2(512, 256),
                                   LLMC_OP_MUL_SCALAR, 1, (uint32_t[]){w_embd}, 0.1);

  llmc_ir_value_t tok = node(m, LLMC_OP_TOKENS, LLMC_DTYPE_I32, S1(T), 0);
  llmc_ir_set_string(m, tok, "note", "tab\there \"quoted\" back\\slash\nnew line \x01 caf\xc3\xa9");
  llmc_ir_set_float(m, tok, "tiny", 5e-324);
  llmc_ir_set_float(m, tok, "neg_zero", -0.0);
  llmc_ir_set_float(m, tok, "huge", 1e300);
  llmc_ir_set_float(m, tok, "one", 1.0);
  llmc_ir_set_int(m, tok, "min", INT64_MIN);
  llmc_ir_set_int(m, tok, "odd key!", 7);
  llmc_ir_value_t pos = node(m, LLMC_OP_POSITIONS, LLMC_DTYPE_I32, S1(T), 0);
  llmc_ir_value_t embd = weight_node(m, w_embd);
  llmc_ir_value_t x = node(m, LLMC_OP_EMBED, LLMC_DTYPE_F32, S2(T, 256), 2, embd, tok);
  llmc_ir_set_float(m, x, "scale", 16.0);
  llmc_ir_value_t norm = weight_node(m, w_norm1);
  llmc_ir_value_t h = node(m, LLMC_OP_RMS_NORM, LLMC_DTYPE_F32, S2(T, 256), 2, x, norm);
  llmc_ir_set_float(m, h, "eps", 1e-5);
  llmc_ir_value_t qkv =
      node(m, LLMC_OP_MATMUL, LLMC_DTYPE_F32, S2(T, 512), 2, h, weight_node(m, w_qkv));
  llmc_ir_value_t q = node(m, LLMC_OP_SLICE, LLMC_DTYPE_F32, S2(T, 256), 1, qkv);
  llmc_ir_set_int(m, q, "begin", 0);
  llmc_ir_set_int(m, q, "end", 256);
  llmc_ir_value_t k = node(m, LLMC_OP_SLICE, LLMC_DTYPE_F32, S2(T, 128), 1, qkv);
  llmc_ir_set_int(m, k, "begin", 256);
  llmc_ir_set_int(m, k, "end", 384);
  llmc_ir_value_t v = node(m, LLMC_OP_SLICE, LLMC_DTYPE_F32, S2(T, 128), 1, qkv);
  llmc_ir_set_int(m, v, "begin", 384);
  llmc_ir_set_int(m, v, "end", 512);
  llmc_ir_value_t freq = weight_node(m, w_freq);
  llmc_ir_value_t qr = node(m, LLMC_OP_ROPE, LLMC_DTYPE_F32, S2(T, 256), 3, q, pos, freq);
  llmc_ir_set_int(m, qr, "heads", 4);
  llmc_ir_set_int(m, qr, "head_dim", 64);
  llmc_ir_value_t kr = node(m, LLMC_OP_ROPE, LLMC_DTYPE_F32, S2(T, 128), 3, k, pos, freq);
  llmc_ir_set_int(m, kr, "heads", 2);
  llmc_ir_set_int(m, kr, "head_dim", 64);
  llmc_ir_value_t kv =
      node(m, LLMC_OP_KV_STORE, LLMC_DTYPE_NONE, (llmc_ir_shape_t){.rank = -1}, 2, kr, v);
  llmc_ir_set_int(m, kv, "layer", 0);
  llmc_ir_value_t att = node(m, LLMC_OP_ATTENTION, LLMC_DTYPE_F32, S2(T, 256), 2, qr, kv);
  llmc_ir_set_int(m, att, "layer", 0);
  llmc_ir_set_int(m, att, "heads", 4);
  llmc_ir_set_int(m, att, "kv_heads", 2);
  llmc_ir_set_int(m, att, "head_dim", 64);
  llmc_ir_set_float(m, att, "scale", 0.125);
  llmc_ir_set_float(m, att, "softcap", 0.0);
  llmc_ir_set_int(m, att, "window", 0);
  m->nodes[att].region = 1;
  llmc_ir_value_t wo = weight_node(m, w_o), bo = weight_node(m, w_bo);
  llmc_ir_value_t o = node(m, LLMC_OP_MATMUL, LLMC_DTYPE_F32, S2(T, 256), 4, att, wo, bo, x);
  llmc_ir_set_int(m, o, "bias", 1);
  llmc_ir_set_int(m, o, "residual", 1);
  llmc_ir_value_t h2 = node(m, LLMC_OP_RMS_NORM, LLMC_DTYPE_F32, S2(T, 256), 2, o, norm);
  llmc_ir_set_float(m, h2, "eps", 0.1);
  llmc_ir_value_t ff =
      node(m, LLMC_OP_MATMUL, LLMC_DTYPE_F32, S2(T, 512), 2, h2, weight_node(m, w_gu));
  llmc_ir_set_string(m, ff, "glu", "silu");
  llmc_ir_value_t fd =
      node(m, LLMC_OP_MATMUL, LLMC_DTYPE_F32, S2(T, 256), 2, ff, weight_node(m, w_down));
  llmc_ir_value_t r = node(m, LLMC_OP_ADD, LLMC_DTYPE_F32, S2(T, 256), 2, fd, o);
  llmc_ir_value_t g = node(m, LLMC_OP_GLU, LLMC_DTYPE_F32, S2(T, 256), 2, fd, r);
  llmc_ir_set_string(m, g, "act", "gelu_tanh");
  llmc_ir_value_t mu = node(m, LLMC_OP_MUL, LLMC_DTYPE_F32, S2(T, 256), 2, g, norm);
  llmc_ir_value_t as = node(m, LLMC_OP_ADD_SCALAR, LLMC_DTYPE_F32, S2(T, 256), 1, mu);
  llmc_ir_set_float(m, as, "value", -0.5);
  llmc_ir_value_t ms = node(m, LLMC_OP_MUL_SCALAR, LLMC_DTYPE_F32, S2(T, 256), 1, as);
  llmc_ir_set_int(m, ms, "value", 2);
  llmc_ir_value_t router = weight_node(m, w_router), mgu = weight_node(m, w_mgu),
                  mdown = weight_node(m, w_mdown);
  llmc_ir_value_t moe = node(m, LLMC_OP_MOE, LLMC_DTYPE_F32, S2(T, 256), 4, ms, router, mgu, mdown);
  llmc_ir_set_int(m, moe, "top_k", 2);
  llmc_ir_set_string(m, moe, "act", "silu");
  llmc_ir_value_t wo2 = weight_node(m, w_o);
  node(m, LLMC_OP_CONCAT, LLMC_DTYPE_BF16, S2(512, 256), 2, wo2, wo2);
  llmc_ir_value_t sel = node(m, LLMC_OP_SELECT_ROWS, LLMC_DTYPE_F32, S2(L, 256), 1, moe);
  llmc_ir_value_t logits =
      node(m, LLMC_OP_MATMUL, LLMC_DTYPE_F32, S2(L, 512), 2, sel, weight_node(m, w_head));
  llmc_ir_value_t cap = node(m, LLMC_OP_SOFTCAP, LLMC_DTYPE_F32, S2(L, 512), 1, logits);
  llmc_ir_set_float(m, cap, "cap", 30.0);
  node(m, LLMC_OP_OUTPUT, LLMC_DTYPE_NONE, (llmc_ir_shape_t){.rank = -1}, 1, cap);
  for (llmc_ir_value_t i = 1; i < m->n_nodes; i++)
    if (m->nodes[i].region < 0) m->nodes[i].region = 0;
  m->n_regions = 2;
  return m;
}

static void expect_ok(llmc_status_t s, const char *what) {
  CHECK_MSG(s == LLMC_OK, "%s: %s", what, llmc_status_message(s));
  llmc_status_free(s);
}

static void test_round_trip(void) {
  llmc_ir_module_t *m = build_module();
  expect_ok(llmc_ir_verify(m), "verify built module");
  char *text = print_to_string(m);

  llmc_status_t s;
  llmc_ir_module_t *p = llmc_ir_parse(text, "built.ir", &s);
  expect_ok(s, "parse printed text");
  if (!p) {
    fprintf(stderr, "text was:\n%s", text);
    free(text);
    llmc_ir_module_destroy(m);
    return;
  }
  expect_ok(llmc_ir_verify(p), "verify parsed module");
  char *again = print_to_string(p);
  CHECK_MSG(!strcmp(text, again), "texts differ:\n--- first\n%s--- second\n%s", text, again);

  /* Spot checks of the exact form. */
  static const char *lines[] = {
      "module \"llama\"\n",
      "meta {\"vocab_size\":512,   \"note\":\"a;b \\\"c\\\"\"}\n",
      "tensor @model.embed_tokens.weight : f32[512,256] = file "
      "\"model dir/model-00001.safetensors\" offset 262144\n",
      "tensor @rope.inv_freq : f32[32] = data [1, 0.1, 1e-05, -0, 1e-40, ",
      "tensor @blk.0.attn_qkv : q8_0[512,256] = concat(@blk.0.attn_q.weight, "
      "@blk.0.attn_k.weight, @blk.0.attn_v.weight)\n",
      "tensor @blk.0.attn_norm.1p : f32[256] = add_scalar(@blk.0.attn_norm.weight) {value=1.0}\n",
      "tensor @\"lm head \\\"tied\\\"; x\" : f32[512,256] = mul_scalar(@model.embed_tokens.weight) "
      "{value=0.1}\n",
      "%1 = tokens {note=\"tab\\there \\\"quoted\\\" back\\\\slash\\nnew line \\u0001 "
      "caf\xc3\xa9\", "
      "tiny=5e-324, neg_zero=-0.0, huge=1e+300, one=1.0, min=-9223372036854775808, \"odd key!\"=7} "
      ": i32[T]  ; region 0\n",
      "%3 = weight @model.embed_tokens.weight : f32[512,256]  ; region 0\n",
      "%6 = rms_norm %4, %5 {eps=1e-05} : f32[T,256]  ; region 0\n",
      "= kv_store %14, %11 {layer=0} : none  ; region 0\n",
      "{layer=0, heads=4, kv_heads=2, head_dim=64, scale=0.125, softcap=0.0, window=0} : "
      "f32[T,256]  "
      "; region 1\n",
      "{bias=1, residual=1} : f32[T,256]",
      "{glu=\"silu\"} : f32[T,512]",
      "mul_scalar %28 {value=2} : f32[T,256]",
      "select_rows %33 : f32[L,256]",
      "softcap %38 {cap=30.0} : f32[L,512]",
      "= output %39 : none  ; region 0\n",
  };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    CHECK_MSG(strstr(text, lines[i]), "missing line %s", lines[i]);

  /* Values survive bit for bit. */
  CHECK_MSG(p->n_nodes == m->n_nodes && p->n_weights == m->n_weights && p->n_regions == 2,
            "sizes %u/%u %u/%u %d", p->n_nodes, m->n_nodes, p->n_weights, m->n_weights,
            p->n_regions);
  const llmc_ir_node_t *t = &p->nodes[1];
  CHECK_MSG(
      !strcmp(llmc_ir_get_string(t, "note", ""), llmc_ir_get_string(&m->nodes[1], "note", "x")),
      "note %s", llmc_ir_get_string(t, "note", ""));
  CHECK_MSG(llmc_ir_get_float(t, "tiny", 0) == 5e-324, "tiny %g", llmc_ir_get_float(t, "tiny", 0));
  CHECK_MSG(signbit(llmc_ir_get_float(t, "neg_zero", 1)), "neg_zero lost its sign");
  CHECK_MSG(llmc_ir_attr(t, "one")->kind == LLMC_ATTR_FLOAT, "one= kind %d",
            llmc_ir_attr(t, "one")->kind);
  CHECK_MSG(llmc_ir_get_int(t, "min", 0) == INT64_MIN, "min %lld",
            (long long)llmc_ir_get_int(t, "min", 0));
  CHECK_MSG(llmc_ir_get_float(&p->nodes[6], "eps", 0) == 1e-5, "eps %.17g",
            llmc_ir_get_float(&p->nodes[6], "eps", 0));
  const llmc_ir_weight_t *freq = &p->weights[1];
  CHECK_MSG(
      freq->kind == LLMC_WEIGHT_DATA && !memcmp(freq->data, m->weights[1].data, 32 * sizeof(float)),
      "inline data differs");
  CHECK_MSG(p->weights[0].offset == 262144 && !strcmp(p->weights[0].file, m->weights[0].file),
            "file weight %s @%llu", p->weights[0].file, (unsigned long long)p->weights[0].offset);
  CHECK_MSG(p->weights[15].value == 0.1 && p->weights[15].args[0] == 0, "derived value %.17g",
            p->weights[15].value);
  CHECK_MSG(!strcmp(p->arch, "llama"), "arch %s", p->arch);

  free(again);
  free(text);
  llmc_ir_module_destroy(p);
  llmc_ir_module_destroy(m);
}

/* A dead node leaves a gap in the printed numbers; the parser closes it,
 * giving what the compacted module prints. */
static void test_gaps(void) {
  llmc_ir_module_t *m = build_module();
  llmc_ir_value_t concat = 0;
  for (llmc_ir_value_t i = 1; i < m->n_nodes; i++)
    if (m->nodes[i].op == LLMC_OP_CONCAT) concat = i;
  m->nodes[concat].dead = true;
  char *text = print_to_string(m);
  char line[32];
  snprintf(line, sizeof line, "\n%%%u = ", concat);
  CHECK_MSG(!strstr(text, line), "dead node %u printed", concat);
  llmc_status_t s;
  llmc_ir_module_t *p = llmc_ir_parse(text, "gaps.ir", &s);
  expect_ok(s, "parse text with a gap");
  llmc_ir_compact(m);
  char *compacted = print_to_string(m);
  char *reparsed = p ? print_to_string(p) : NULL;
  CHECK_MSG(reparsed && !strcmp(compacted, reparsed), "gap not closed:\n%s",
            reparsed ? reparsed : "");
  free(reparsed);
  free(compacted);
  free(text);
  llmc_ir_module_destroy(p);
  llmc_ir_module_destroy(m);
}

static void test_parse_errors(void) {
  static const struct {
    const char *text, *error;
  } cases[] = {
      {"%1 = frobnicate : f32[T]\n", "bad.ir:1:6: unknown op 'frobnicate'"},
      {"%1 = tokens : i32[T]\n%2 = embed %1, %7 : f32[T,4]\n", "bad.ir:2:16: undefined value %7"},
      {"tensor @a : f32[2] = file \"x\" offset 0\n%1 = weight @b : f32[2]\n",
       "bad.ir:2:13: unknown tensor @b"},
      {"%1 = tokens : i33[T]\n", "bad.ir:1:15: unknown dtype 'i33'"},
      {"%1 = tokens\n%2 = matmul %1 : f32[T,4]\n",
       "bad.ir:2:6: matmul takes 2 to 4 arguments, got 1"},
      {"%1 = tokens %1\n", "undefined value %1"},
      {"%1 = tokens\n%1 = positions\n", "bad.ir:2:1: %1 defined twice"},
      {"%0 = tokens\n", "value number out of range: 0"},
      {"module \"abc\n", "bad.ir:1:8: unterminated string"},
      {"module \"a\\qb\"\n", "bad escape in string"},
      {"module \"a\\ud800\"\n", "unpaired surrogate"},
      {"module \"a\\u0000\"\n", "\\u0000 is not allowed"},
      {"module \"a\"\nmodule \"b\"\n", "second module line"},
      {"tensor @d : f32[3] = data [1, 2]\n", "2 values for a shape of 3"},
      {"tensor @d : f32[3] = data [1, 2, 3, 4]\n", "more values than the shape's 3"},
      {"tensor @d : f32[2147483647,2147483647] = data [1]\n", "fewer values than the shape's"},
      {"tensor @d : f32[2] = data [1, x]\n", "bad number 'x'"},
      {"tensor @d : f32[T] = data [1]\n", "a data tensor needs a constant shape"},
      {"tensor @x : f32[2] = concat(@y)\n", "unknown tensor @y"},
      {"tensor @x : f32[2] = matmul(@x)\n",
       "expected file, data, concat, add_scalar or mul_scalar"},
      {"tensor @a : f32[2] = file \"x\" offset 0\ntensor @b : f32[2] = add_scalar(@a)\n",
       "add_scalar needs {value=number}"},
      {"tensor @a : f32[2] = file \"x\" offset 0\ntensor @a : f32[2] = file \"x\" offset 0\n",
       "bad.ir:2:8: tensor @a defined twice"},
      {"tensor @a : f32[2] = file \"x\" offset -1\n", "an offset out of range: -1"},
      {"meta {\"a\":}\n", "bad.ir:1:11: meta: invalid JSON"},
      {"meta {} {}\n", "meta: invalid JSON"},
      {"%1 = tokens {a=1, a=2}\n", "attribute 'a' given twice"},
      {"%1 = tokens {a=silu}\n", "bad number 'silu'"},
      {"%1 = tokens {a=99999999999999999999}\n", "an integer out of range"},
      {"%1 = tokens : i32[T,0]\n", "out of range: 0"},
      {"%1 = tokens : i32[1,2,3,4,5]\n", "more than 4 dims"},
      {"%1 = tokens : i32[T junk\n", "expected ']' to close the shape"},
      {"%1 = tokens : i32[T] junk\n", "bad.ir:1:22: unexpected 'j'"},
      {"%1 = tokens ; region x\n", "expected a region number, got 'x'"},
      {"%1 = tokens ; region 1 2\n", "unexpected '2'"},
      {"%1 = embed @x\n", "only weight takes a tensor"},
      {"%1 = tokens\n%2 = add %1 %1\n", "bad.ir:2:6: add takes 2 arguments, got 1"},
      {"banana\n", "bad.ir:1:1: expected module, meta, tensor or a %N node, got 'banana'"},
      {"  \t\n; comment\n\n%1 = tokens\n\x01\n", "bad.ir:5:1: expected module, meta, tensor"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    llmc_status_t s;
    llmc_ir_module_t *m = llmc_ir_parse(cases[i].text, "bad.ir", &s);
    CHECK_MSG(!m && s && strstr(llmc_status_message(s), cases[i].error),
              "text %s\n  expected error: %s\n  got: %s", cases[i].text, cases[i].error,
              llmc_status_message(s));
    llmc_status_free(s);
    llmc_ir_module_destroy(m);
  }
}

/* Header shared by the verifier cases: x = embed(tokens) : f32[T,8]. */
#define VERIFY_PRELUDE                                                          \
  "tensor @e : f32[16,8] = file \"w\" offset 0\n"                               \
  "tensor @w6 : f32[4,6] = file \"w\" offset 0\n"                               \
  "tensor @g3 : f32[3] = file \"w\" offset 0\n"                                 \
  "%1 = tokens : i32[T]\n%2 = positions : i32[T]\n%3 = weight @e : f32[16,8]\n" \
  "%4 = embed %3, %1 : f32[T,8]\n"

static void test_verify_errors(void) {
  static const struct {
    const char *text, *error;
  } cases[] = {
      {VERIFY_PRELUDE "%5 = weight @w6 : f32[4,6]\n%6 = matmul %4, %5 : f32[T,4]\n",
       "%6 matmul: inner dims 8 vs 6"},
      {VERIFY_PRELUDE "%5 = weight @g3 : f32[3]\n%6 = rms_norm %4, %5 {eps=1e-06} : f32[T,8]\n",
       "%6 rms_norm: row of 8 is not a multiple of the weight's 3"},
      {VERIFY_PRELUDE "%5 = weight @g3 : f32[3]\n%6 = rms_norm %4, %5 : f32[T,8]\n",
       "%6 rms_norm: needs attribute eps"},
      {VERIFY_PRELUDE "%5 = rope %4, %2, %2 {heads=2, head_dim=3} : f32[T,8]\n",
       "%5 rope: x is [T,8], but heads*head_dim = 6"},
      {VERIFY_PRELUDE "%5 = rope %4, %2, %2 {heads=2} : f32[T,8]\n",
       "%5 rope: needs attribute head_dim"},
      {VERIFY_PRELUDE "%5 = rope %4, %2, %2 {heads=2.0, head_dim=4} : f32[T,8]\n",
       "attribute heads must be an integer"},
      {VERIFY_PRELUDE "%5 = kv_store %4, %4 : none\n", "%5 kv_store: needs attribute layer"},
      {VERIFY_PRELUDE
       "%5 = kv_store %4, %4 {layer=0} : none\n"
       "%6 = attention %4, %5 {layer=0, heads=2, kv_heads=2, head_dim=4} : f32[T,8]\n",
       "%6 attention: needs attribute scale"},
      {VERIFY_PRELUDE
       "%5 = kv_store %4, %4 {layer=0} : none\n"
       "%6 = attention %4, %5 {layer=0, heads=3, kv_heads=2, head_dim=4, scale=0.5} : f32[T,8]\n",
       "%6 attention: heads 3 is not a multiple of kv_heads 2"},
      {VERIFY_PRELUDE
       "%5 = kv_store %4, %4 {layer=1} : none\n"
       "%6 = attention %4, %5 {layer=0, heads=2, kv_heads=2, head_dim=4, scale=0.5} : f32[T,8]\n",
       "layer 0 reads kv_store of layer 1"},
      {VERIFY_PRELUDE
       "%5 = attention %4, %4 {layer=0, heads=2, kv_heads=2, head_dim=4, scale=0.5}\n",
       "second argument %4 is embed, not kv_store"},
      {VERIFY_PRELUDE "%5 = kv_store %4, %4 {layer=0} : f32[T,8]\n",
       "has no result, but is typed f32"},
      {VERIFY_PRELUDE "%5 = slice %4 {begin=4, end=9} : f32[T,5]\n",
       "%5 slice: slice [4, 9) of [T,8]"},
      {VERIFY_PRELUDE "%5 = slice %4 {begin=4, end=4}\n", "empty slice [4, 4)"},
      {VERIFY_PRELUDE "%5 = slice %4 {begin=2, end=6} : f32[T,5]\n",
       "result is [T,5], expected [T,4]"},
      {VERIFY_PRELUDE "%5 = embed %3, %4 : f32[T,8]\n", "token ids must be i32[T], are f32[T,8]"},
      {VERIFY_PRELUDE "%5 = matmul %4, %3 {bias=1} : f32[T,16]\n",
       "2 arguments, but bias=1 residual=0"},
      {VERIFY_PRELUDE "%5 = glu %4, %4 {act=\"relu\"}\n", "act must be \"silu\" or \"gelu_tanh\""},
      {VERIFY_PRELUDE "%5 = add %4, %1\n", "%5 add: shapes [T,8] and [T] do not broadcast"},
      {VERIFY_PRELUDE "%5 = select_rows %4 : f32[T,8]\n", "result is [T,8], expected [L,8]"},
      {VERIFY_PRELUDE "%5 = tokens : f32[T]\n", "result is f32, expected i32"},
      {VERIFY_PRELUDE "%5 = weight @e : f32[16,9]\n", "result is [16,9], expected [16,8]"},
      {"tensor @q : q4_K[4,100] = file \"w\" offset 0\n",
       "tensor @q: q4_K rows need a multiple of 256"},
      {"tensor @d : i32[1] = data [1]\n", "tensor @d: inline data must be f32"},
      {"tensor @a : f32[2,4] = file \"w\" offset 0\ntensor @b : f32[5,4] = concat(@a, @a)\n",
       "tensor @b: concat parts have 4 rows, the result 5"},
      {"tensor @a : f32[2,4] = file \"w\" offset 0\ntensor @b : f32[2,4] = mul_scalar(@a) "
       "{value=2}\n"
       "tensor @c : f32[2,3] = add_scalar(@b) {value=2}\n",
       "tensor @c: shape [2,3] differs from @b's [2,4]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    llmc_status_t s;
    llmc_ir_module_t *m = llmc_ir_parse(cases[i].text, "verify.ir", &s);
    CHECK_MSG(m, "case %zu does not parse: %s", i, llmc_status_message(s));
    if (!m) {
      llmc_status_free(s);
      continue;
    }
    s = llmc_ir_verify(m);
    CHECK_MSG(s && strstr(llmc_status_message(s), cases[i].error),
              "text %s\n  expected: %s\n  got: %s", cases[i].text, cases[i].error,
              llmc_status_message(s));
    llmc_status_free(s);
    llmc_ir_module_destroy(m);
  }
}

/* Errors only a module built in memory can have, and the node naming. */
static void test_verify_built(void) {
  llmc_ir_module_t *m = build_module();
  llmc_ir_value_t h = 6; /* rms_norm %4, %5 */
  m->nodes[h].args[0] = 20;
  llmc_status_t s = llmc_ir_verify(m);
  CHECK_MSG(s && strstr(llmc_status_message(s),
                        "%6 rms_norm: argument 1 is %20, which is not defined before it"),
            "got %s", llmc_status_message(s));
  llmc_status_free(s);
  m->nodes[h].args[0] = 4;
  m->nodes[4].dead = true;
  s = llmc_ir_verify(m);
  CHECK_MSG(s && strstr(llmc_status_message(s), "%6 rms_norm: argument 1 is %4, which is dead"),
            "got %s", llmc_status_message(s));
  llmc_status_free(s);
  m->nodes[4].dead = false;
  m->nodes[3].weight = 99;
  s = llmc_ir_verify(m);
  CHECK_MSG(s && strstr(llmc_status_message(s), "%3 weight: tensor 99 is not in the weight table"),
            "got %s", llmc_status_message(s));
  llmc_status_free(s);
  m->nodes[3].weight = 0;
  expect_ok(llmc_ir_verify(m), "repaired module");

  m->nodes[5].region = 2;
  s = llmc_ir_verify(m);
  CHECK_MSG(s && strstr(llmc_status_message(s), "%5 weight: region 2, but the module has 2"),
            "got %s", llmc_status_message(s));
  llmc_status_free(s);
  m->nodes[5].region = 0;

  /* The printer survives what the verifier rejects. */
  m->nodes[8].op = LLMC_OP_COUNT;
  m->nodes[8].dtype = (llmc_dtype_t)77;
  m->nodes[9].weight = 99;
  m->nodes[9].op = LLMC_OP_WEIGHT;
  char *text = print_to_string(m);
  CHECK_MSG(strstr(text, "%8 = <bad op> %6, %7 : <bad dtype>[T,512]"), "printed %s", text);
  CHECK_MSG(strstr(text, "%9 = weight @\"<bad weight 99>\" %8 {begin=0, end=256}"), "printed %s",
            text);
  free(text);
  llmc_ir_module_destroy(m);

  /* The node's name and source location lead the message. */
  m = llmc_ir_parse(VERIFY_PRELUDE "%5 = weight @w6 : f32[4,6]\n%6 = matmul %4, %5 : f32[T,4]\n",
                    "named.ir", &s);
  expect_ok(s, "parse named case");
  if (!m) return;
  m->nodes[6].name = "l3.q";
  m->nodes[6].loc = "model.json:/graph/12";
  s = llmc_ir_verify(m);
  CHECK_MSG(s && !strcmp(llmc_status_message(s),
                         "model.json:/graph/12: %6 (l3.q) matmul: inner dims 8 vs 6"),
            "got %s", llmc_status_message(s));
  llmc_status_free(s);
  llmc_ir_module_destroy(m);
}

/* Mutated texts: each parse gives a module or an error, never a crash;
 * modules that parse are verified and printed too. */
static void test_mutations(void) {
  llmc_ir_module_t *m = build_module();
  char *text = print_to_string(m);
  llmc_ir_module_destroy(m);
  size_t len = strlen(text);
  static const char specials[] = "%@\"\\{}[](),:=;\n T L0123456789-.e?";
  uint64_t rng = 0x9e3779b97f4a7c15u;
  int parsed = 0;
  char *buf = malloc(2 * len + 2);
  for (int iter = 0; iter < 2000; iter++) {
    memcpy(buf, text, len + 1);
    size_t n = len;
    int edits = 1 + iter % 4;
    for (int e = 0; e < edits; e++) {
      rng = rng * 6364136223846793005u + 1442695040888963407u;
      uint32_t r = (uint32_t)(rng >> 33);
      size_t at = r % (n + 1);
      switch ((r >> 24) % 5) {
      case 0: /* truncate */ n = at; break;
      case 1: /* random byte */
        if (at < n) buf[at] = (char)(1 + (r >> 8) % 255);
        break;
      case 2: /* special character */
        if (at < n) buf[at] = specials[(r >> 8) % (sizeof specials - 1)];
        break;
      case 3: { /* delete a short range */
        size_t k = (r >> 8) % 16;
        if (at + k > n) k = n - at;
        memmove(buf + at, buf + at + k, n - at - k);
        n -= k;
        break;
      }
      case 4: { /* duplicate a short range (the buffer has room for one copy) */
        size_t k = (r >> 8) % 16;
        if (at + k > n) k = n - at;
        if (n + k > 2 * len) break;
        memmove(buf + at + k, buf + at, n - at);
        n += k;
        break;
      }
      }
      buf[n] = '\0';
    }
    llmc_status_t s;
    llmc_ir_module_t *p = llmc_ir_parse(buf, "mutant.ir", &s);
    CHECK_MSG((p != NULL) != (s != NULL), "iteration %d: module %p with status %s", iter, (void *)p,
              llmc_status_message(s));
    if (p) {
      parsed++;
      llmc_status_free(llmc_ir_verify(p));
      char *out = print_to_string(p);
      free(out);
    }
    llmc_status_free(s);
    llmc_ir_module_destroy(p);
  }
  CHECK_MSG(parsed > 50 && parsed < 1950, "%d of 2000 mutants parsed: the mutations look wrong",
            parsed);
  free(buf);
  free(text);
}

static void test_types(void) {
  CHECK_MSG(llmc_ir_op_from_name("rms_norm") == LLMC_OP_RMS_NORM, "rms_norm");
  CHECK_MSG(llmc_ir_op_from_name("nope") == LLMC_OP_COUNT, "nope");
  CHECK_MSG(llmc_ir_op_flags(LLMC_OP_KV_STORE) == LLMC_OPF_SIDEEFFECT, "kv_store flags");
  CHECK_MSG(llmc_ir_op_flags(LLMC_OP_ATTENTION) == LLMC_OPF_BATCHLESS, "attention flags");
  CHECK_MSG(llmc_ir_op_flags(LLMC_OP_MATMUL) == LLMC_OPF_ROWLOCAL, "matmul flags");
  CHECK_MSG(llmc_ir_op_min_args(LLMC_OP_MATMUL) == 2 && llmc_ir_op_max_args(LLMC_OP_MATMUL) == 4,
            "matmul");
  CHECK_MSG(llmc_dtype_from_name("q4_K") == LLMC_DTYPE_Q4_K, "q4_K");
  CHECK_MSG(llmc_dtype_from_name("q4_k") == LLMC_DTYPE_COUNT, "q4_k");
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_Q4_K, 4096) == 16 * 144, "q4_K bytes %llu",
            (unsigned long long)llmc_dtype_nbytes(LLMC_DTYPE_Q4_K, 4096));
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_Q6_K, 256) == 210, "q6_K");
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_Q8_0, 64) == 68, "q8_0");
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_Q4_0, 32) == 18, "q4_0");
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_BF16, 3) == 6, "bf16");
  CHECK_MSG(llmc_dtype_nbytes(LLMC_DTYPE_I32, 3) == 12, "i32");
  char buf[64];
  llmc_shape_format(&S2(T, 128), buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "[T,128]"), "%s", buf);
  llmc_shape_format(&(llmc_ir_shape_t){.rank = 0}, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "[]"), "%s", buf);
  llmc_shape_format(&(llmc_ir_shape_t){.rank = -1}, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, "?"), "%s", buf);
  llmc_shape_format(&S2(L, 7), buf, 4);
  CHECK_MSG(!strcmp(buf, "[L,"), "truncated %s", buf);
  CHECK_MSG(llmc_shape_numel(&S2(3, 5)) == 15 && llmc_shape_numel(&S2(T, 5)) == -1, "numel");
  CHECK_MSG(llmc_shape_numel(&((llmc_ir_shape_t){3, {INT64_MAX, 2, 2}})) == -1, "numel overflow");
}

int main(void) {
  test_types();
  test_round_trip();
  test_gaps();
  test_parse_errors();
  test_verify_errors();
  test_verify_built();
  test_mutations();
  return check_report("test_ir_text");
}
