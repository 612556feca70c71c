/* kernels_int8_body.h — the integer matmul kernels of kernels_int8.c,
 * written once against a SIMD layer and included once per instruction set.
 *
 * Before including, kernels_int8.c defines ISA (vnni, avx2 or avxvnni),
 * ISA_TARGET (the function attribute that enables it) and, under the names
 * SIMD(name) = ISA_name, the layer: vi and vf, 16 int32 and 16 f32 lanes
 * (one per row of a weight group); vi_* and vf_* lane-wise operations;
 * dot4(acc, w, x), which adds to each lane the dot product of its 4
 * unsigned level bytes in w with the 4 signed activation bytes in x;
 * dot4_q8, the same for q8_0 level vectors, which leaves Q8_0_OFFSET
 * times the activations' sum in each lane; and the blocking TOKEN_BLOCK,
 * W_BLOCK, W_ONE. Every layer computes the same integers and the same f32
 * operations in each lane, so every instruction set gives the same bits.
 * The exported kernels are llmc_k_matmul_<type>_r16_<ISA>. */

/* sub[i * R + r] += the dot products of the level vectors w[i] with the
 * activation quad at x[r].q + k, for every group i < W and token r < R. */
INLINE ISA_TARGET void SIMD(dot_quads)(int q8, const SIMD(vi) *w, int W, const act_row *x, int R, int64_t k,
                                       SIMD(vi) *sub) {
  for (int r = 0; r < R; r++) {
    int32_t quad;
    __builtin_memcpy(&quad, x[r].q + k, sizeof quad);
    SIMD(vi) xv = SIMD(vi_set1)(quad);
    for (int i = 0; i < W; i++)
      sub[i * R + r] = q8 ? SIMD(dot4_q8)(sub[i * R + r], w[i], xv) : SIMD(dot4)(sub[i * R + r], w[i], xv);
  }
}

/* acc[i * R + r] += the dot products of weight group wg[i] (i < W) with
 * token x[r] (r < R) over all K columns, block by block as kernels_int8.h
 * says. W and R are constants where this is inlined, and
 * W * R <= MAX_ACC, so the accumulators live in registers. */
INLINE ISA_TARGET void SIMD(dot_groups)(int type, const uint8_t *const *wg, int W, const act_row *x, int R,
                                        int64_t K, SIMD(vf) *acc) {
  const int64_t be = block_elems(type), bb = group_block_bytes(type);
  for (int64_t b = 0; b < K / be; b++) {
    const uint8_t *g[MAX_ACC]; /* [W] this block of each group */
    for (int i = 0; i < W; i++)
      g[i] = wg[i] + b * bb;
    int64_t k0 = b * be; /* first column of the block */
    SIMD(vi) isum[MAX_ACC]; /* [W * R] */
    for (int i = 0; i < W * R; i++)
      isum[i] = SIMD(vi_set1)(0);
    if (type == Q8_0 || type == Q4_0) {
      for (int j = 0; j < (type == Q8_0 ? 8 : 4); j++) {
        SIMD(vi) w[MAX_ACC], hi[MAX_ACC]; /* [W] */
        for (int i = 0; i < W; i++) {
          SIMD(vi) raw = SIMD(vi_load)(g[i] + HALVES_BYTES + 64 * j);
          w[i] = type == Q8_0 ? raw : SIMD(nibbles)(raw, 0);
          if (type == Q4_0)
            hi[i] = SIMD(nibbles)(raw, 1);
        }
        SIMD(dot_quads)(type == Q8_0, w, W, x, R, k0 + 4 * j, isum);
        if (type == Q4_0)
          SIMD(dot_quads)(0, hi, W, x, R, k0 + 16 + 4 * j, isum);
      }
    } else if (type == Q4_K) {
      for (int j = 0; j < LLMC_Q8_K_BLOCK / Q4_K_SUB; j++) { /* sub-blocks: pair j / 2, nibble j % 2 */
        SIMD(vi) sub[MAX_ACC];
        for (int i = 0; i < W * R; i++)
          sub[i] = SIMD(vi_set1)(0);
        for (int q = 0; q < 8; q++) {
          SIMD(vi) w[MAX_ACC];
          for (int i = 0; i < W; i++)
            w[i] = SIMD(nibbles)(SIMD(vi_load)(g[i] + 2 * HALVES_BYTES + 256 + 512 * (j / 2) + 64 * q), j % 2);
          SIMD(dot_quads)(0, w, W, x, R, k0 + Q4_K_SUB * j + 4 * q, sub);
        }
        for (int i = 0; i < W; i++) {
          SIMD(vi) scale = SIMD(vi_factors)(g[i] + 2 * HALVES_BYTES + 16 * j, 0);
          for (int r = 0; r < R; r++)
            isum[i * R + r] = SIMD(vi_add)(isum[i * R + r], SIMD(vi_mullo)(sub[i * R + r], scale));
        }
      }
    } else {
      for (int p = 0; p < LLMC_Q8_K_BLOCK / 32; p++) /* pairs of sub-blocks of 16 */
        for (int h = 0; h < 2; h++) {                 /* sub-block s = 2p + h */
          int64_t s = 2 * p + h;
          const int64_t at = HALVES_BYTES + 256 + 384 * p; /* the pair's 6 vectors */
          SIMD(vi) sub[MAX_ACC];
          for (int i = 0; i < W * R; i++)
            sub[i] = SIMD(vi_set1)(0);
          for (int k = 0; k < 4; k++) {
            SIMD(vi) w[MAX_ACC];
            for (int i = 0; i < W; i++)
              w[i] = SIMD(six_bits)(SIMD(vi_load)(g[i] + at + 64 * k), h, SIMD(vi_load)(g[i] + at + 256 + 64 * h), 2 * k);
            SIMD(dot_quads)(0, w, W, x, R, k0 + Q6_K_SUB * s + 4 * k, sub);
          }
          for (int r = 0; r < R; r++) {
            /* The levels' offset 32 times the sub-block's activation sum. */
            SIMD(vi) offset = SIMD(vi_set1)(32 * x[r].sum[b * (LLMC_Q8_K_BLOCK / Q6_K_SUB) + s]);
            for (int i = 0; i < W; i++) {
              SIMD(vi) scale = SIMD(vi_factors)(g[i] + HALVES_BYTES + 16 * s, 1);
              SIMD(vi) dot = SIMD(vi_sub)(sub[i * R + r], offset);
              isum[i * R + r] = SIMD(vi_add)(isum[i * R + r], SIMD(vi_mullo)(dot, scale));
            }
          }
        }
    }
    for (int r = 0; r < R; r++) {
      SIMD(vf) dx = SIMD(vf_set1)(x[r].d[b]);
      /* q8_0 and q4_0: the weights' offset (128 or 8) times the block's
       * activation sum. */
      SIMD(vi) offset = SIMD(vi_set1)(k_type(type) ? 0 : x[r].sum[b] * (type == Q8_0 ? SIMD(Q8_0_OFFSET) : 8));
      for (int i = 0; i < W; i++) {
        SIMD(vf) isum_f = SIMD(vf_from_vi)(SIMD(vi_sub)(isum[i * R + r], offset));
        acc[i * R + r] = SIMD(vf_fmadd)(isum_f, SIMD(vf_mul)(SIMD(vf_halves)(g[i]), dx), acc[i * R + r]);
        if (type == Q4_K) {
          SIMD(vi) msum = SIMD(vi_set1)(0);
          for (int j = 0; j < LLMC_Q8_K_BLOCK / Q4_K_SUB; j++) {
            const int32_t *xs = x[r].sum + b * (LLMC_Q8_K_BLOCK / Q6_K_SUB) + 2 * j; /* [2] */
            SIMD(vi) mins = SIMD(vi_factors)(g[i] + 2 * HALVES_BYTES + 128 + 16 * j, 0);
            msum = SIMD(vi_add)(msum, SIMD(vi_mullo)(mins, SIMD(vi_set1)(xs[0] + xs[1])));
          }
          SIMD(vf) dmin_dx = SIMD(vf_mul)(SIMD(vf_halves)(g[i] + HALVES_BYTES), dx);
          acc[i * R + r] = SIMD(vf_fnmadd)(SIMD(vf_from_vi)(msum), dmin_dx, acc[i * R + r]);
        }
      }
    }
  }
}

/* out rows [t, t + R) x the columns of groups [g, g + nc): R, nc and
 * gated (m->glu != LLMC_ACT_NONE) are constants where this is inlined.
 * Under glu each group brings its gate and its up rows, so 2 * nc weight
 * groups are read. */
INLINE ISA_TARGET void SIMD(matmul_tile)(const imatmul_args *m, int gated, int64_t t, int R, int64_t g, int nc) {
  int W = gated ? 2 * nc : nc;
  const uint8_t *wg[MAX_ACC]; /* [W]: the nc groups, then under glu their up groups */
  for (int c = 0; c < nc; c++) {
    wg[c] = m->w + (g + c) * m->group_bytes;
    if (gated)
      wg[nc + c] = m->w + (m->N / LLMC_ROW_GROUP + g + c) * m->group_bytes;
  }
  act_row x[SIMD(TOKEN_BLOCK)]; /* [R] */
  for (int r = 0; r < R; r++)
    x[r] = act_row_at(m->xq, m->K, k_type(m->type), t + r);
  SIMD(vf) acc[MAX_ACC]; /* [W * R] */
  for (int i = 0; i < W * R; i++)
    acc[i] = SIMD(vf_set1)(0.0f);
  SIMD(dot_groups)(m->type, wg, W, x, R, m->K, acc);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < nc; c++) {
      int64_t j0 = (g + c) * LLMC_ROW_GROUP; /* first column */
      float *o = m->out + (t + r) * m->N + j0; /* [16] */
      float v[LLMC_ROW_GROUP];
      SIMD(vf_store)(v, acc[c * R + r]);
      if (gated) {
        float up[LLMC_ROW_GROUP];
        SIMD(vf_store)(up, acc[(nc + c) * R + r]);
        llmc_k_glu(v, up, o, LLMC_ROW_GROUP, m->glu, 0, 1);
        continue;
      }
      for (int l = 0; l < LLMC_ROW_GROUP; l++) {
        float s = v[l];
        if (m->bias)
          s += m->bias[j0 + l];
        if (m->residual)
          s += m->residual[(t + r) * m->N + j0 + l];
        o[l] = s;
      }
    }
}

/* The tiles of this task's share of m, gated a constant (as in
 * matmul_tile). */
INLINE ISA_TARGET void SIMD(matmul_tiles)(const imatmul_args *m, int gated, int64_t T, int32_t task,
                                          int32_t n_tasks) {
  /* Weight groups per tile call: W_BLOCK for a block of TOKEN_BLOCK
   * tokens, W_ONE for a single token; under glu a column group brings two. */
  const int token_block = SIMD(TOKEN_BLOCK), nc_block = SIMD(W_BLOCK) / (gated ? 2 : 1),
            nc_one = SIMD(W_ONE) / (gated ? 2 : 1);
  int64_t g0, g1;
  task_range(m->N / LLMC_ROW_GROUP, task, n_tasks, &g0, &g1);
  for (int64_t gt = g0; gt < g1; gt += TILE_GROUPS) {
    int64_t ge = g1 - gt < TILE_GROUPS ? g1 : gt + TILE_GROUPS, t = 0;
    for (; t + token_block <= T; t += token_block) {
      int64_t g = gt;
      for (; g + nc_block <= ge; g += nc_block)
        SIMD(matmul_tile)(m, gated, t, token_block, g, nc_block);
      for (; g < ge; g++)
        SIMD(matmul_tile)(m, gated, t, token_block, g, 1);
    }
    for (; t < T; t++) {
      int64_t g = gt;
      for (; g + nc_one <= ge; g += nc_one)
        SIMD(matmul_tile)(m, gated, t, 1, g, nc_one);
      for (; g < ge; g++)
        SIMD(matmul_tile)(m, gated, t, 1, g, 1);
    }
  }
}

#define DEFINE_MATMUL(name, TYPE)                                                          \
  ISA_TARGET void ISA_EXPORT(llmc_k_matmul_##name)(                                        \
      const void *xq, const void *w, const float *bias, const float *residual, float *out, \
      int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task, int32_t n_tasks) {       \
    imatmul_args m = imatmul_args_of(TYPE, xq, w, bias, residual, out, K, N, glu);         \
    if (glu != LLMC_ACT_NONE)                                                              \
      SIMD(matmul_tiles)(&m, 1, T, task, n_tasks);                                         \
    else                                                                                   \
      SIMD(matmul_tiles)(&m, 0, T, task, n_tasks);                                         \
  }
DEFINE_MATMUL(q8_0, Q8_0)
DEFINE_MATMUL(q4_0, Q4_0)
DEFINE_MATMUL(q4_K, Q4_K)
DEFINE_MATMUL(q6_K, Q6_K)
#undef DEFINE_MATMUL
