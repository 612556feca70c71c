#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (tests/fuzz/corpus/*), small files that
reach deep into each reader. Run from the repository root; the output is
checked in, so this only needs running again to change the seeds.

fuzz_gguf:
  tiny-llama.gguf   a complete llama model (hidden 8, ffn 8, 1 layer, 2 heads, 1 KV
                    head, vocabulary of 8) that llmc_import_gguf accepts:
                    every metadata type, a string array, f32 and q8_0
                    tensors, general.alignment 32
  stories260K-vocab.gguf  the metadata of tests/data/models/stories260K.gguf
                    (512-token SentencePiece vocabulary) with no tensors
fuzz_safetensors:
  small.safetensors two tensors (F32 [2,2], BF16 [3]) and __metadata__
"""
import json
import struct

GGUF_STRING, GGUF_ARRAY = 8, 9
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
          10: "<Q", 11: "<q", 12: "<d"}


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == GGUF_STRING:
        return gstr(v)
    if t == GGUF_ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, align=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, ggml type, bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + value(t, v)
    data, offsets = b"", []
    for name, dims, ty, payload in tensors:
        data += b"\0" * (-len(data) % align)
        offsets.append(len(data))
        data += payload
    for (name, dims, ty, _), off in zip(tensors, offsets):
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
    if tensors:
        out += b"\0" * (-len(out) % align)
    return out + data


def f32(n, scale=0.01):
    return b"".join(struct.pack("<f", ((i * 7) % 13 - 6) * scale) for i in range(n))


def tiny_llama():
    D, F, V, H, KV, hd = 8, 8, 8, 2, 1, 4
    tokens = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "c", "<0x0A>", "\u2581"]
    kvs = [
        ("general.architecture", GGUF_STRING, "llama"),
        ("general.alignment", 4, 32),
        ("general.name", GGUF_STRING, "tiny"),
        ("llama.context_length", 4, 64),
        ("llama.embedding_length", 4, D),
        ("llama.block_count", 4, 1),
        ("llama.feed_forward_length", 4, F),
        ("llama.attention.head_count", 4, H),
        ("llama.attention.head_count_kv", 4, KV),
        ("llama.rope.dimension_count", 4, hd),
        ("llama.rope.freq_base", 6, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
        ("tokenizer.ggml.model", GGUF_STRING, "llama"),
        ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, tokens)),
        ("tokenizer.ggml.scores", GGUF_ARRAY, (6, [0.0, 0.0, 0.0, -1.0, -2.0, -3.0, 0.0, -4.0])),
        ("tokenizer.ggml.token_type", GGUF_ARRAY, (5, [2, 3, 3, 1, 1, 1, 6, 1])),
        ("tokenizer.ggml.bos_token_id", 4, 1),
        ("tokenizer.ggml.eos_token_id", 4, 2),
        ("tokenizer.ggml.add_bos_token", 7, True),
        ("t.int8", 1, -3), ("t.uint16", 2, 7), ("t.int16", 3, -7), ("t.uint8", 0, 255),
        ("t.uint64", 10, 2**64 - 1), ("t.int64", 11, -2**63), ("t.float64", 12, 0.5),
    ]
    q8_block = struct.pack("<e", 0.01) + bytes(range(32))  # one q8_0 block: d, then 32 int8
    tensors = [
        ("token_embd.weight", [D, V], 0, f32(D * V)),
        ("blk.0.attn_norm.weight", [D], 0, f32(D, 0.1)),
        ("blk.0.attn_q.weight", [D, H * hd], 0, f32(D * H * hd)),
        ("blk.0.attn_k.weight", [D, KV * hd], 0, f32(D * KV * hd)),
        ("blk.0.attn_v.weight", [D, KV * hd], 0, f32(D * KV * hd)),
        ("blk.0.attn_output.weight", [H * hd, D], 0, f32(H * hd * D)),
        ("blk.0.ffn_norm.weight", [D], 0, f32(D, 0.1)),
        ("blk.0.ffn_gate.weight", [D, F], 0, f32(D * F)),
        ("blk.0.ffn_up.weight", [D, F], 0, f32(D * F)),
        ("blk.0.ffn_down.weight", [F, D], 0, f32(F * D)),
        ("output_norm.weight", [D], 0, f32(D, 0.1)),
        ("extra.q8_0", [32, 1], 8, q8_block),
    ]
    return gguf(kvs, tensors)


def stories_vocab():
    """stories260K.gguf's metadata section, declared with no tensors."""
    raw = open("tests/data/models/stories260K.gguf", "rb").read()
    n_kv = struct.unpack_from("<Q", raw, 16)[0]
    pos = 24
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", raw, pos)
        pos += 8 + klen
        (t,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        pos = skip(raw, pos, t)
    return raw[:8] + struct.pack("<Q", 0) + raw[16:pos]


def skip(raw, pos, t):
    if t == GGUF_STRING:
        return pos + 8 + struct.unpack_from("<Q", raw, pos)[0]
    if t == GGUF_ARRAY:
        et, n = struct.unpack_from("<IQ", raw, pos)
        pos += 12
        for _ in range(n):
            pos = skip(raw, pos, et)
        return pos
    return pos + struct.calcsize(SCALAR[t])


def small_safetensors():
    header = {
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
        "__metadata__": {"format": "pt"},
    }
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + f32(4) + b"\x80\x3f\x00\x40\x40\x40"


def main():
    for path, data in [
        ("tests/fuzz/corpus/fuzz_gguf/tiny-llama.gguf", tiny_llama()),
        ("tests/fuzz/corpus/fuzz_gguf/stories260K-vocab.gguf", stories_vocab()),
        ("tests/fuzz/corpus/fuzz_safetensors/small.safetensors", small_safetensors()),
    ]:
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: {len(data)} bytes")


if __name__ == "__main__":
    main()
