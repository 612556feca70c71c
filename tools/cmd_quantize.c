/* cmd_quantize.c — `llmc quantize IN.gguf OUT.gguf TYPE`: a GGUF model with
 * its weight matrices quantized to q8_0, q4_0, q4_K or q6_K.
 *
 * The policy is llama-quantize's for a pure type (llama.cpp c392e509,
 * `llama-quantize --pure`, src/llama-quant.cpp): the same tensors are
 * quantized, with the same reference quantizers bit for bit
 * (formats/quant.h), the same metadata changes and the same tensor order,
 * so where llama-quantize succeeds the two files are identical. Where a
 * row does not fit TYPE's block llama-quantize --pure gives up; llmc falls
 * back as llama-quantize's mixes do (llama_tensor_get_type), restricted to
 * the types llmc reads, and names each such tensor on stderr.
 *
 * The input is mapped, the output streamed one row at a time through
 * formats/gguf_write.h (written as OUT.tmp, renamed when complete): memory
 * stays at two rows whatever the model's size. */
#include <getopt.h>
#include <stdlib.h>
#include <strings.h>

#include "cli.h"
#include "commands.h"
#include "formats/gguf.h"
#include "formats/gguf_write.h"
#include "formats/quant.h"

static const char usage[] =
    "usage: llmc quantize IN.gguf OUT.gguf TYPE\n"
    "\n"
    "Writes OUT.gguf: the model IN.gguf (f32, f16 or bf16 weights) with its weight\n"
    "matrices quantized to TYPE, one of q8_0, q4_0, q4_K, q6_K (any case). The file\n"
    "is what llama.cpp's `llama-quantize --pure IN OUT TYPE` writes (TYPE Q4_K_S for\n"
    "q4_K), with the same bytes, where that succeeds.\n"
    "\n"
    "Quantized: every tensor of 2 or more dimensions whose name ends in \"weight\",\n"
    "token_embd.weight and output.weight included, except norms (*_norm.weight) and\n"
    "the few tensors llama-quantize always keeps (ffn_gate_inp, position_embd,\n"
    "token_types, ssm_conv1d, time_mix_*, attn_rel_b). Everything else is copied\n"
    "as it is. general.file_type and general.quantization_version are set.\n"
    "\n"
    "A tensor whose rows are not a multiple of TYPE's block (32 elements for q8_0\n"
    "and q4_0, 256 for q4_K and q6_K) gets, and is named on stderr:\n"
    "  q6_K -> q8_0, q4_K -> q4_0 (llama.cpp would use q5_0, which llmc does not\n"
    "  read), and f16 when its rows are not a multiple of 32 either.\n"
    "A model whose weights are already quantized is refused.\n"
    "\n"
    "  -h, --help     this text\n";

/* A TYPE argument and what it implies. */
typedef struct {
  const char *name;          /* as ggml names it; matched case-insensitively */
  llmc_ggml_type_t type;
  uint32_t file_type;        /* llama_ftype for general.file_type: LLAMA_FTYPE_MOSTLY_<TYPE>,
                                Q4_K_S for q4_K */
  llmc_ggml_type_t fallback; /* for rows that are not a multiple of the block, when they are
                                of this type's (f16 when nothing fits) */
  const char *note;          /* where the fallback is not llama.cpp's, why; or NULL */
} quant_type_t;

static const quant_type_t quant_types[] = {
    {"q8_0", LLMC_GGML_Q8_0, 7, LLMC_GGML_F16, "llama-quantize stops at such a tensor"},
    {"q4_0", LLMC_GGML_Q4_0, 2, LLMC_GGML_F16, "llama-quantize stops at such a tensor"},
    {"q4_K", LLMC_GGML_Q4_K, 14, LLMC_GGML_Q4_0, "llama.cpp would use q5_0, which llmc does not read"},
    {"q6_K", LLMC_GGML_Q6_K, 18, LLMC_GGML_Q8_0, NULL},
};

/* GGML_QNT_VERSION, which llama-quantize writes to general.quantization_version. */
#define QUANTIZATION_VERSION 2

/* Keys llama-quantize drops: its output is never one shard of a split model. */
static const char *const split_keys[] = {"split.no", "split.count", "split.tensors.count"};

/* Weights llama-quantize never quantizes: names containing one of these... */
static const char *const kept_fragments[] = {
    "_norm.weight",          "ffn_gate_inp.weight",      "ssm_conv1d.weight",
    "time_mix_first.weight", "time_mix_w1.weight",       "time_mix_w2.weight",
    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
};
/* ... and these names. */
static const char *const kept_names[] = {"position_embd.weight", "token_types.weight"};

/* One tensor of the output: where its data comes from and what it becomes. */
typedef struct {
  const llmc_gguf_tensor_t *src;
  uint32_t type;   /* its ggml type in the output */
  uint64_t nbytes; /* its size in the output */
} plan_t;

typedef struct {
  int quantized, fallbacks, copied;
} counts_t;

#define SHOW(s) (int)(s).len, (s).data

/* ---- the policy ---- */

/* llama-quantize's test: 2 or more dims, not counting trailing 1s
 * (ggml_n_dims), a name ending in "weight" and none of the kept ones. */
static bool wants_quantizing(const llmc_gguf_tensor_t *t) {
  char name[65]; /* the reader allows names of up to 64 bytes */
  snprintf(name, sizeof name, "%.*s", SHOW(t->name));
  size_t len = strlen(name);
  bool matrix = false;
  for (uint32_t d = 1; d < t->n_dims; d++) matrix |= t->dims[d] > 1;
  if (!matrix || len < 6 || strcmp(name + len - 6, "weight") != 0) return false;
  for (size_t i = 0; i < sizeof kept_fragments / sizeof kept_fragments[0]; i++)
    if (strstr(name, kept_fragments[i])) return false;
  for (size_t i = 0; i < sizeof kept_names / sizeof kept_names[0]; i++)
    if (strcmp(name, kept_names[i]) == 0) return false;
  return true;
}

/* Rows of tensor t: the product of its dims after the first. */
static uint64_t rows_of(const llmc_gguf_tensor_t *t) {
  uint64_t rows = 1;
  for (uint32_t d = 1; d < t->n_dims; d++) rows *= t->dims[d];
  return rows;
}

/* Whether rows of `row` elements are whole blocks of quantized type `type`. */
static bool fits(llmc_ggml_type_t type, int64_t row) {
  return row % llmc_quant_block_elems(type) == 0;
}

/* The output type of tensor t (one wants_quantizing accepts) for qt, with
 * the fallback for rows TYPE's block does not divide, said on stderr. */
static llmc_ggml_type_t choose_type(const quant_type_t *qt, const llmc_gguf_tensor_t *t) {
  int64_t row = (int64_t)t->dims[0];
  if (fits(qt->type, row)) return qt->type;
  llmc_ggml_type_t type = qt->fallback != LLMC_GGML_F16 && fits(qt->fallback, row) ? qt->fallback
                                                                                    : LLMC_GGML_F16;
  const char *note = type == qt->fallback ? qt->note : NULL;
  fprintf(stderr,
          "llmc quantize: %.*s: rows of %lld elements are not a multiple of %s's block of %lld: "
          "using %s%s%s%s\n",
          SHOW(t->name), (long long)row, qt->name, (long long)llmc_quant_block_elems(qt->type),
          llmc_ggml_type_name(type), note ? " (" : "", note ? note : "", note ? ")" : "");
  return type;
}

/* Decides tensor t's output. */
static llmc_status_t plan_tensor(const llmc_gguf_t *g, const quant_type_t *qt,
                                 const llmc_gguf_tensor_t *t, plan_t *p, counts_t *counts) {
  const uint8_t *data = NULL;
  LLMC_PROPAGATE(llmc_gguf_tensor_data(g, t, &data)); /* a type the reader cannot size */
  p->src = t;
  p->type = t->type;
  p->nbytes = t->nbytes;
  if (!wants_quantizing(t)) {
    counts->copied++;
    return LLMC_OK;
  }
  if (t->type != LLMC_GGML_F32 && t->type != LLMC_GGML_F16 && t->type != LLMC_GGML_BF16)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %.*s is %s: llmc quantize takes f32, f16 and "
                      "bf16 weights (requantizing is not supported)", g->path, SHOW(t->name),
                      llmc_ggml_type_name(t->type));
  p->type = choose_type(qt, t);
  if (p->type == qt->type) counts->quantized++;
  else counts->fallbacks++;
  p->nbytes = rows_of(t) * (p->type == LLMC_GGML_F16 ? 2 * t->dims[0]
                            : (uint64_t)llmc_quant_row_bytes((llmc_ggml_type_t)p->type, (int64_t)t->dims[0]));
  return LLMC_OK;
}

/* The N of a "blk.N." name, or -1. */
static long layer_of(llmc_gguf_str_t name) {
  if (name.len < 5 || memcmp(name.data, "blk.", 4) != 0) return -1;
  long n = 0;
  uint64_t i = 4;
  for (; i < name.len && i < 13 && name.data[i] >= '0' && name.data[i] <= '9'; i++)
    n = n * 10 + (name.data[i] - '0');
  return i > 4 ? n : -1;
}

/* llama-quantize's tensor order (llama_model_loader's weight_name_comparer):
 * by layer, tensors outside the blocks first, then by name. */
static int by_layer_then_name(const void *pa, const void *pb) {
  const llmc_gguf_str_t a = ((const plan_t *)pa)->src->name, b = ((const plan_t *)pb)->src->name;
  long la = layer_of(a), lb = layer_of(b);
  if (la != lb) return la < lb ? -1 : 1;
  int c = memcmp(a.data, b.data, a.len < b.len ? a.len : b.len);
  return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* ---- writing ---- */

/* dst [n] = the row at src of type f32, f16 or bf16 (exactly, as f32). */
static void load_row(uint32_t type, const uint8_t *src, float *dst, int64_t n) {
  if (type == LLMC_GGML_F32) {
    memcpy(dst, src, (size_t)n * sizeof *dst);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
    if (type == LLMC_GGML_F16) {
      dst[i] = llmc_quant_f16_to_f32(h);
    } else {
      uint32_t bits = (uint32_t)h << 16; /* bf16: the top half of an f32 */
      memcpy(&dst[i], &bits, sizeof bits);
    }
  }
}

/* dst = the row src [n] as `type`: f16 or one of the quantized types. */
static llmc_status_t store_row(uint32_t type, const float *src, uint8_t *dst, int64_t n) {
  if (type != LLMC_GGML_F16) return llmc_quant_quantize_row((llmc_ggml_type_t)type, src, dst, n);
  for (int64_t i = 0; i < n; i++) {
    uint16_t h = llmc_quant_f32_to_f16(src[i]);
    dst[2 * i] = (uint8_t)h;
    dst[2 * i + 1] = (uint8_t)(h >> 8);
  }
  return LLMC_OK;
}

/* Streams the data of p's tensor to w: as it is, or row by row through
 * row [dims[0]] floats and out [4 * dims[0]] bytes. */
static llmc_status_t write_tensor(llmc_gguf_writer_t *w, const llmc_gguf_t *g, const plan_t *p,
                                  float *row, uint8_t *out) {
  const uint8_t *src = NULL;
  LLMC_PROPAGATE(llmc_gguf_tensor_data(g, p->src, &src));
  if (p->type == p->src->type) return llmc_gguf_writer_write(w, src, p->src->nbytes);
  int64_t n = (int64_t)p->src->dims[0];
  uint64_t rows = rows_of(p->src);
  uint64_t in_bytes = p->src->nbytes / rows, out_bytes = p->nbytes / rows;
  for (uint64_t r = 0; r < rows; r++) {
    load_row(p->src->type, src + r * in_bytes, row, n);
    LLMC_PROPAGATE(store_row(p->type, row, out, n));
    LLMC_PROPAGATE(llmc_gguf_writer_write(w, out, out_bytes));
  }
  return LLMC_OK;
}

static bool is_split_key(llmc_gguf_str_t key) {
  for (size_t i = 0; i < sizeof split_keys / sizeof split_keys[0]; i++)
    if (key.len == strlen(split_keys[i]) && memcmp(key.data, split_keys[i], key.len) == 0) return true;
  return false;
}

/* The output file, from the plans (in file order). */
static llmc_status_t write_model(const char *path, const llmc_gguf_t *g, const quant_type_t *qt,
                                 const plan_t *plans) {
  uint64_t max_row = 1;
  for (uint64_t i = 0; i < g->n_tensors; i++)
    if (plans[i].type != plans[i].src->type && plans[i].src->dims[0] > max_row)
      max_row = plans[i].src->dims[0];
  float *row = malloc(max_row * sizeof *row);
  uint8_t *out = malloc(max_row * 4);
  llmc_gguf_writer_t *w = NULL;
  llmc_status_t s = row && out ? LLMC_OK
                               : LLMC_ERROR(OUT_OF_MEMORY, "rows of %llu elements",
                                            (unsigned long long)max_row);
  if (!s) s = llmc_gguf_writer_create(path, &w);
  for (uint64_t i = 0; !s && i < g->n_kv; i++)
    if (!is_split_key(g->kv[i].key)) s = llmc_gguf_writer_copy_kv(w, &g->kv[i]);
  if (!s) s = llmc_gguf_writer_set_u32(w, "general.quantization_version", QUANTIZATION_VERSION);
  if (!s) s = llmc_gguf_writer_set_u32(w, "general.file_type", qt->file_type);
  for (uint64_t i = 0; !s && i < g->n_tensors; i++) {
    const llmc_gguf_tensor_t *t = plans[i].src;
    s = llmc_gguf_writer_add_tensor(w, t->name, t->n_dims, t->dims, plans[i].type, plans[i].nbytes);
  }
  for (uint64_t i = 0; !s && i < g->n_tensors; i++) {
    s = write_tensor(w, g, &plans[i], row, out);
    if (s) s = llmc_status_annotate(s, "tensor %.*s", SHOW(plans[i].src->name));
  }
  if (!s) s = llmc_gguf_writer_finish(w);
  llmc_gguf_writer_destroy(w);
  free(row);
  free(out);
  return s;
}

static llmc_status_t run_quantize(const char *in, const char *out, const quant_type_t *qt) {
  llmc_gguf_t *g = NULL;
  LLMC_PROPAGATE(llmc_gguf_open(in, &g));
  int64_t splits = 0;
  llmc_status_t s = LLMC_OK;
  if (llmc_gguf_get_int(g, "split.count", &splits) && splits > 1)
    s = LLMC_ERROR(UNIMPLEMENTED, "%s is one of %lld shards of a split model; merge them first "
                   "(llama-gguf-split --merge)", in, (long long)splits);
  plan_t *plans = calloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *plans);
  if (!s && !plans)
    s = LLMC_ERROR(OUT_OF_MEMORY, "%s: %llu tensors", in, (unsigned long long)g->n_tensors);
  counts_t counts = {0};
  for (uint64_t i = 0; !s && i < g->n_tensors; i++)
    s = plan_tensor(g, qt, &g->tensors[i], &plans[i], &counts);
  if (!s) {
    qsort(plans, (size_t)g->n_tensors, sizeof *plans, by_layer_then_name);
    s = write_model(out, g, qt, plans);
  }
  if (!s) {
    uint64_t before = 0, after = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
      before += plans[i].src->nbytes;
      after += plans[i].nbytes;
    }
    printf("wrote %s: %d tensors %s, %d fallbacks, %d copied; tensor data %.2f MiB -> %.2f MiB\n",
           out, counts.quantized, qt->name, counts.fallbacks, counts.copied, before / 1048576.0,
           after / 1048576.0);
  }
  free(plans);
  llmc_gguf_close(g);
  return s;
}

int llmc_cmd_quantize(int argc, char **argv) {
  static const struct option long_options[] = {
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
    if (opt != 'h') return llmc_cli_bad_option("quantize", usage, opt, argv);
    fputs(usage, stdout);
    return 0;
  }
  if (argc - optind != 3)
    return llmc_cli_usage_error("quantize", usage, "expected IN.gguf OUT.gguf TYPE, got %d arguments",
                                argc - optind);
  const char *in = argv[optind], *out = argv[optind + 1], *type = argv[optind + 2];
  const quant_type_t *qt = NULL;
  for (size_t i = 0; i < sizeof quant_types / sizeof quant_types[0]; i++)
    if (strcasecmp(type, quant_types[i].name) == 0) qt = &quant_types[i];
  if (!qt)
    return llmc_cli_usage_error("quantize", usage,
                                "unknown TYPE %s (expected q8_0, q4_0, q4_K or q6_K)", type);
  llmc_status_t s = run_quantize(in, out, qt);
  return s ? llmc_status_report(s, stderr) : 0;
}
