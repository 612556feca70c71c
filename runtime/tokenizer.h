/* tokenizer.h — text to token ids and back, as Hugging Face tokenizers and
 * llama.cpp do it for the model families llmc serves.
 *
 * Two models cover them:
 *   - BPE over merge ranks: byte-level BPE (GPT-2, Llama 3, Qwen2, Falcon,
 *     StarCoder, DeepSeek-coder: text mapped byte by byte to printable
 *     stand-ins, pre-split by the family's regexes) and Hugging Face's BPE
 *     with byte fallback (Llama 2, Mistral, Phi-3 in tokenizer.json form);
 *   - SentencePiece-style BPE over token scores with byte fallback, as
 *     llama.cpp runs GGUF files whose tokenizer.ggml.model is "llama".
 * A tokenizer comes from a tokenizer.json (its normalizer, pre-tokenizer,
 * model, added tokens, decoder and post-processor are read) or from a
 * GGUF's tokenizer.ggml.* metadata (the pre-tokenizer family named by
 * tokenizer.ggml.pre). docs/tokenizers.md has the details and what is not
 * supported.
 *
 * A loaded tokenizer is immutable: encode and decode may run on several
 * threads at once. Text is bytes: invalid UTF-8 is tokenized rather than
 * refused (byte-level models map every byte, SentencePiece-style ones fall
 * back to byte tokens), so decode(encode(x)) gives x back byte for byte
 * wherever the tokenizer itself does not change text (normalizers, the
 * SentencePiece dummy prefix). */
#ifndef LLMC_RUNTIME_TOKENIZER_H
#define LLMC_RUNTIME_TOKENIZER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/gguf.h"
#include "llmc/runtime.h"
#include "support/status.h"

/* Opaque: owns its vocabulary, merge table, compiled regexes and the
 * decoded text of every token. */
typedef struct llmc_tokenizer llmc_tokenizer_t;

/* Flags for llmc_tokenizer_encode. */
enum {
  /* Add what the tokenizer adds around a text: BOS (and EOS) as the GGUF's
   * add_bos_token / add_eos_token or tokenizer.json's post-processor say. */
  LLMC_TOKENIZE_ADD_SPECIAL = 1u << 0,
  /* Special tokens written in the text ("<|eot_id|>", "<s>") become their
   * ids. Without it they are tokenized as plain text. Added tokens that are
   * not special (tokenizer.json "special": false, GGUF user-defined tokens)
   * are always matched, as in Hugging Face and llama.cpp. */
  LLMC_TOKENIZE_PARSE_SPECIAL = 1u << 1,
};

/* Flags for llmc_tokenizer_decode and the streaming decoder. */
enum {
  /* Leave out special tokens (tokenizer.json "special": true, GGUF control
   * and unknown tokens) as skip_special_tokens does. */
  LLMC_DETOKENIZE_SKIP_SPECIAL = 1u << 0,
};

/* Loads a tokenizer.json or a GGUF file, told apart by the GGUF magic.
 * Errors name the file and what is wrong or unsupported in it. */
llmc_status_t llmc_tokenizer_load_file(const char *path, llmc_tokenizer_t **out);

/* Loads a Hugging Face tokenizer.json. */
llmc_status_t llmc_tokenizer_load_hf_json(const char *path, llmc_tokenizer_t **out);

/* Parses len bytes of tokenizer.json text (need not be NUL-terminated);
 * `name` is used in messages. For tests and fuzzing. */
llmc_status_t llmc_tokenizer_parse_hf_json(const char *json, size_t len, const char *name,
                                           llmc_tokenizer_t **out);

/* Loads the tokenizer of the GGUF file at path (tokenizer.ggml.*). */
llmc_status_t llmc_tokenizer_load_gguf(const char *path, llmc_tokenizer_t **out);

/* Builds the tokenizer described by an opened GGUF's metadata. Nothing in
 * the result points into g: it may be closed afterwards. */
llmc_status_t llmc_tokenizer_from_gguf(const llmc_gguf_t *g, llmc_tokenizer_t **out);

/* Whether llmc_tokenizer_from_gguf reads the metadata key `key`
 * (tokenizer.ggml.*, general.name): a GGUF holding only those keys of
 * another, and no tensors, gives the same tokenizer. The compiler embeds
 * such a GGUF in a model.so (docs/model-so.md). */
bool llmc_tokenizer_gguf_reads_key(llmc_gguf_str_t key);

/* Loads the tokenizer a model.json names: spec is its "tokenizer" member,
 * {"file": "tokenizer.json"} or {"gguf": "m.gguf"}; relative paths are
 * taken from base_dir (NULL: the working directory). A NULL or JSON-null
 * spec is NOT_FOUND ("the model has no tokenizer"). */
llmc_status_t llmc_tokenizer_load_from_spec(const cJSON *spec, const char *base_dir,
                                            llmc_tokenizer_t **out);

/* Loads the tokenizer of a compiled model. Its metadata's "tokenizer"
 * member is {"embedded": "tokenizer.json" | "gguf", "offset": N, "bytes":
 * M}: the tokenizer is bytes [N, N + M) of the model's weights section
 * (docs/model-so.md); an offset or size that is not a non-negative
 * integer, or a range outside the section, is INVALID_ARGUMENT, and the
 * bytes are checked as any file is. A model compiled before tokenizers
 * were embedded names a file as llmc_tokenizer_load_from_spec reads it,
 * relative paths taken from the folder of the .so. Nothing in the result
 * points into the model: it may be destroyed first. Errors name the
 * model. */
llmc_status_t llmc_tokenizer_load_for_model(const llmc_model_t *model, llmc_tokenizer_t **out);

/* Parses the bytes of an embedded tokenizer (data [bytes]) of the given
 * kind: "tokenizer.json" (its text) or "gguf" (a tokenizer-only GGUF). The
 * compiler checks what it embeds with this, so that a tokenizer this
 * runtime cannot use stops `llmc compile` rather than `llmc run`. */
llmc_status_t llmc_tokenizer_parse_embedded(const char *kind, const uint8_t *data, uint64_t bytes,
                                            llmc_tokenizer_t **out);

/* Frees the tokenizer. NULL is fine. */
void llmc_tokenizer_destroy(llmc_tokenizer_t *tok);

/* Number of token ids: every id in [0, vocab_size) is valid (an id the
 * file left unassigned decodes to nothing and is never produced). */
int32_t llmc_tokenizer_vocab_size(const llmc_tokenizer_t *tok);

/* The BOS / EOS ids the file names, or -1. */
int32_t llmc_tokenizer_bos_id(const llmc_tokenizer_t *tok);
int32_t llmc_tokenizer_eos_id(const llmc_tokenizer_t *tok);

/* The id of the vocabulary entry spelled exactly text[0, len) (as the file
 * writes it: "Ġthe", "▁the", "<|eot_id|>"), or -1. */
int32_t llmc_tokenizer_token_find(const llmc_tokenizer_t *tok, const char *text, size_t len);

/* The vocabulary entry of id as the file writes it (*out_len bytes, not
 * NUL-terminated), or NULL for an id out of range or unassigned. */
const char *llmc_tokenizer_token_text(const llmc_tokenizer_t *tok, int32_t id, size_t *out_len);

/* Whether id is a special token (see LLMC_DETOKENIZE_SKIP_SPECIAL). */
bool llmc_tokenizer_token_is_special(const llmc_tokenizer_t *tok, int32_t id);

/* Tokenizes len bytes of text with LLMC_TOKENIZE_* flags. On success
 * *out_ids (malloc'ed, the caller frees it; NULL when *out_n is 0) holds
 * *out_n ids. Fails only on resources (memory, a regex engine limit). */
llmc_status_t llmc_tokenizer_encode(const llmc_tokenizer_t *tok, const char *text, size_t len,
                                    uint32_t flags, int32_t **out_ids, size_t *out_n);

/* The bytes the ids stand for, concatenated, with LLMC_DETOKENIZE_*
 * flags; the leading space a SentencePiece-style tokenizer added is
 * removed as its decoder says. The result is raw bytes (a cut in the
 * middle of a character stays cut); *out_text is malloc'ed with a NUL
 * after *out_len bytes. An id out of range is INVALID_ARGUMENT. */
llmc_status_t llmc_tokenizer_decode(const llmc_tokenizer_t *tok, const int32_t *ids, size_t n,
                                    uint32_t flags, char **out_text, size_t *out_len);

/* Streaming detokenisation: tokens go in one at a time, text comes out as
 * soon as it is whole. Output is always valid UTF-8: an incomplete
 * character at the end is held back until the next token completes it,
 * and bytes that can never form a character come out as U+FFFD, as
 * Hugging Face's lossy decoding writes them. Concatenating every output
 * equals decode()'s text with the same replacement. */
typedef struct llmc_tokenizer_stream {
  const llmc_tokenizer_t *tok; /* not owned */
  uint32_t flags;              /* LLMC_DETOKENIZE_* */
  bool started;                /* some text was produced (the leading-space rule is spent) */
  uint8_t held[4];             /* an incomplete UTF-8 character waiting for its next bytes */
  size_t n_held;
  char *out; /* owned: the text returned by the last push / finish */
  size_t out_cap;
} llmc_tokenizer_stream_t;

/* Starts a stream over tok (which must outlive it). */
void llmc_tokenizer_stream_init(llmc_tokenizer_stream_t *s, const llmc_tokenizer_t *tok,
                                uint32_t flags);

/* Feeds one token; *out_text / *out_len is the text it completed (maybe
 * none), owned by the stream and valid until the next call. */
llmc_status_t llmc_tokenizer_stream_push(llmc_tokenizer_stream_t *s, int32_t id,
                                         const char **out_text, size_t *out_len);

/* Ends the stream: an incomplete character still held comes out as
 * U+FFFD. The stream may then be pushed to again as a new one. */
llmc_status_t llmc_tokenizer_stream_finish(llmc_tokenizer_stream_t *s, const char **out_text,
                                           size_t *out_len);

/* Frees the stream's buffer. */
void llmc_tokenizer_stream_deinit(llmc_tokenizer_stream_t *s);

#endif /* LLMC_RUNTIME_TOKENIZER_H */
