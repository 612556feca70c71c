/* row_groups.h — quantized weights stored in groups of 16 rows, the layout
 * the compiler writes (llmc_quant_group_rows, runtime/formats/quant.c) for
 * the integer kernels (targets/cpu/kernels_int8.c) to read.
 *
 * A group holds 16 consecutive rows; within it come the blocks (32 columns
 * for q8_0 and q4_0, 256 for q4_K and q6_K) in order, each laid out as
 * below. "Levels" are the unsigned bytes VPDPBUSD multiplies: q8_0's int8
 * plus 128, q4_0's and q4_K's nibbles, q6_K's six-bit values. A "quad
 * vector" is 64 bytes holding four consecutive levels of each of the 16
 * rows, row r's at byte 4r, so that each 32-bit lane is one row; a nibble
 * vector holds two quads of levels, one in the low and one in the high
 * nibbles.
 *
 *   q8_0  16 f16 d | 8 quad vectors (columns 4j .. 4j+3)
 *   q4_0  16 f16 d | 4 nibble vectors j: low = columns 4j + c, high =
 *         columns 16 + 4j + c (q4_0's own byte order, regrouped)
 *   q4_K  16 f16 d | 16 f16 dmin | 8 x 16 u8 scales (sub-block j, row r at
 *         16j + r) | 8 x 16 u8 mins | for each pair p of 32-column
 *         sub-blocks, 8 nibble vectors q: low = column 64p + 4q + c
 *         (sub-block 2p), high = column 64p + 32 + 4q + c (sub-block 2p+1)
 *   q6_K  16 f16 d | 16 x 16 int8 scales (sub-block s of 16 columns, row r
 *         at 16s + r) | for each pair p of sub-blocks (columns 32p ..
 *         32p+31): 4 nibble vectors k holding the low 4 bits, low = column
 *         32p + 4k + c, high = column 32p + 16 + 4k + c; then 2 vectors m
 *         holding the top 2 bits, bits 2i..2i+1 of row r's byte c = column
 *         32p + 16m + 4i + c
 */
#ifndef LLMC_ROW_GROUPS_H
#define LLMC_ROW_GROUPS_H

enum {
  LLMC_ROW_GROUP = 16,                                   /* rows stored together */
  LLMC_RG_Q8_0_BYTES = 32 + 8 * 64,                      /* per block of 32 columns: 544 */
  LLMC_RG_Q4_0_BYTES = 32 + 4 * 64,                      /* 288 */
  LLMC_RG_Q4_K_BYTES = 32 + 32 + 128 + 128 + 4 * 8 * 64, /* per block of 256: 2368 */
  LLMC_RG_Q6_K_BYTES = 32 + 256 + 8 * 6 * 64,            /* 3360 */
};

#endif /* LLMC_ROW_GROUPS_H */
