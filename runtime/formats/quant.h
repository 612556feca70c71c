/* quant.h — ggml's block-quantized weight formats: q8_0, q4_0, q4_K, q6_K.
 *
 * A quantized row of n elements is n / block_elems blocks laid out exactly
 * as ggml lays them out (ggml-common.h; docs/quantization.md draws them), so
 * a tensor read from a GGUF file is used as it is, and a tensor quantized
 * here can be written to one. Quantization reproduces ggml's reference
 * quantizers (quantize_row_*_ref, no importance matrix) bit for bit: the
 * same float operations in the same order, the same f16 rounding of scales.
 *
 * Used by `llmc quantize` and `llmc compile --quant` (quantize), and
 * wherever a quantized tensor must be read as f32 (dequantize). The CPU
 * kernels that compute with these blocks are targets/cpu/kernels_quant.c.
 *
 * Types are ggml's type numbers (llmc_ggml_type_t of gguf.h), as in a GGUF
 * tensor descriptor. */
#ifndef LLMC_FORMATS_QUANT_H
#define LLMC_FORMATS_QUANT_H

#include <stdint.h>

#include "formats/gguf.h"
#include "support/status.h"

/* Elements per block of `type` (32 for q8_0 and q4_0, 256 for q4_K and
 * q6_K); 0 for a type that is not one of the four quantized types. */
int64_t llmc_quant_block_elems(llmc_ggml_type_t type);

/* Bytes per block of `type` (34, 18, 144, 210); 0 for any other type. */
int64_t llmc_quant_block_bytes(llmc_ggml_type_t type);

/* OK when `type` is one of the four quantized types and n a positive
 * multiple of its block; otherwise an INVALID_ARGUMENT error naming both
 * ("rows of 100 elements are not a multiple of q4_K's block of 256"). The
 * kernels assume this of every row (K) they are given: callers check here. */
llmc_status_t llmc_quant_check_row(llmc_ggml_type_t type, int64_t n);

/* Bytes of one row of n elements of `type`; n must pass
 * llmc_quant_check_row (0 is returned otherwise). */
int64_t llmc_quant_row_bytes(llmc_ggml_type_t type, int64_t n);

/* dst [row_bytes] = src [n] quantized to `type`, bit-identical to ggml's
 * quantize_row_<type>_ref. Errors as llmc_quant_check_row; nothing is
 * written then. Non-finite inputs give what ggml's code gives on x86-64. */
llmc_status_t llmc_quant_quantize_row(llmc_ggml_type_t type, const float *src, void *dst,
                                      int64_t n);

/* dst [n] = src [row_bytes] of `type` as f32, as ggml's dequantize_row_<type>
 * computes it. Errors as llmc_quant_check_row; nothing is written then. */
llmc_status_t llmc_quant_dequantize_row(llmc_ggml_type_t type, const void *src, float *dst,
                                        int64_t n);

/* Rows stored together by llmc_quant_group_rows. */
enum { LLMC_QUANT_ROW_GROUP = 16 };

/* dst = src, n_rows rows of n elements of `type` (q8_0 or q4_0) laid out as
 * ggml lays them out, regrouped for the kernels of
 * targets/cpu/kernels_vnni.h; the same number of bytes. n_rows must be a
 * multiple of 16 and n of 32. For each group of 16 rows, for each block of
 * 32 columns:
 *   32 bytes   the 16 rows' f16 scales, row by row;
 *   then       quads of levels, 64 bytes each, row r's at 4r within it:
 *     q8_0:    8 quads; quad j holds columns 4j .. 4j+3, each level plus
 *              128 as an unsigned byte;
 *     q4_0:    4 quads; quad j holds bytes 4j .. 4j+3 of the row's 16
 *              nibble bytes (low nibbles: columns 4j + c, high nibbles:
 *              columns 16 + 4j + c), as they are.
 * Errors: INVALID_ARGUMENT for another type or shapes that do not fit. */
llmc_status_t llmc_quant_group_rows(llmc_ggml_type_t type, const void *src, void *dst, int64_t n_rows,
                                    int64_t n);

/* f as IEEE binary16 bits, rounded to nearest even; overflow gives +-inf,
 * a NaN gives the quiet NaN 0x7e00 with f's sign (as ggml's portable
 * conversion, which its reference quantizers use on x86-64). */
uint16_t llmc_quant_f32_to_f16(float f);

/* The binary16 value h as f32 (exact; a NaN comes back quiet, as ggml's). */
float llmc_quant_f16_to_f32(uint16_t h);

#endif
