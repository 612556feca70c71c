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

/* dst = src, n_rows rows of n elements of `type` as ggml lays them out,
 * regrouped for the AVX512-VNNI kernels: rows in groups of 16, each block
 * laid out as llmc/row_groups.h draws it. n_rows must be a multiple of 16
 * and n of the type's block; dst holds llmc_quant_grouped_bytes of them.
 * Errors: INVALID_ARGUMENT for another type or shapes that do not fit. */
llmc_status_t llmc_quant_group_rows(llmc_ggml_type_t type, const void *src, void *dst, int64_t n_rows,
                                    int64_t n);

/* Bytes of n_rows x n elements of `type` grouped by llmc_quant_group_rows
 * (the same as in ggml's layout for q8_0, q4_0 and q6_K; q4_K's unpacked
 * scales take 64 bytes more per 16 rows and block). */
int64_t llmc_quant_grouped_bytes(llmc_ggml_type_t type, int64_t n_rows, int64_t n);

/* f as IEEE binary16 bits, rounded to nearest even; overflow gives +-inf,
 * a NaN gives the quiet NaN 0x7e00 with f's sign (as ggml's portable
 * conversion, which its reference quantizers use on x86-64). */
uint16_t llmc_quant_f32_to_f16(float f);

/* The binary16 value h as f32 (exact; a NaN comes back quiet, as ggml's). */
float llmc_quant_f16_to_f32(uint16_t h);

#endif
