#!/usr/bin/env python3
"""Converts a Hugging Face checkpoint folder to GGUF as llama.cpp's
convert_hf_to_gguf.py does (test-only; standard library only).

usage: make_gguf_arch.py HF_DIR OUT.gguf [--outtype f32|f16] [--vocab GGUF] [--model-name NAME]

Written from llama.cpp c392e509's convert_hf_to_gguf.py and gguf-py (tensor
names, metadata keys and their types, which tensors stay f32, Q/K row
permutation, merged experts, Gemma's 1 + w, Llama 3.1's rope_freqs), not
from llmc. Supported: LlamaForCausalLM, MistralForCausalLM,
MixtralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM,
GemmaForCausalLM, Gemma2ForCausalLM. Where that converter is older than the
checkpoints here, it follows llama.cpp's later converter (docs/gguf.md):

* transformers 5 configs keep rope_theta, rope_type/factor/... and
  partial_rotary_factor in "rope_parameters"; they are read from there as
  the converter reads them from the older top-level keys;
* Llama 3.1's rope_freqs use the rope parameters'
  original_max_position_embeddings (c392e509 reads a top-level key, default
  8192, which is the value of every released Llama 3.x);
* Phi-3's rope.dimension_count is int(partial_rotary_factor * D) / H;
* Qwen3 (after c392e509) is Qwen2's conversion under its own architecture
  name, with attn_q_norm / attn_k_norm.

The checkpoints here carry no tokenizer; --vocab copies every tokenizer.*
key of another GGUF file (its vocabulary must be as large as the model's),
so that llama.cpp's tools, which need one, can load the result. general.name
is the folder's name unless --model-name says otherwise (as in the
converter); llama.cpp and llmc give a vocabulary special treatment when it
contains "phi3" or "phi-3", which a borrowed vocabulary cannot take.
"""
import argparse
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_reference import f32, read_safetensors  # noqa: E402

# ---------------------------------------------------------------- GGUF values

# gguf-py's GGUFValueType and GGMLQuantizationType numbers.
UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64 = 4, 5, 6, 7, 8, 9, 10
GGML_F32, GGML_F16 = 0, 1
FILE_TYPE = {"f32": 0, "f16": 1}  # LlamaFileType ALL_F32, MOSTLY_F16
ALIGNMENT = 32


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, vtype, value):
    """One metadata pair, as GGUFWriter writes it."""
    body = {UINT32: lambda v: struct.pack("<I", v), FLOAT32: lambda v: struct.pack("<f", v),
            STRING: gguf_string, BOOL: lambda v: struct.pack("<?", v)}[vtype](value)
    return gguf_string(key) + struct.pack("<I", vtype) + body


def tokenizer_kvs(path, n_vocab):
    """The raw bytes of every tokenizer.* pair of GGUF file `path`, and how many."""
    with open(path, "rb") as f:
        data = f.read()
    magic, version, _, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    if magic != b"GGUF" or version not in (2, 3):
        raise ValueError(f"{path}: not a GGUF v2/v3 file")
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, UINT32: 4, INT32: 4, FLOAT32: 4, BOOL: 1, 10: 8, 11: 8, 12: 8}

    def skip(pos, vtype):
        if vtype == STRING:
            return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
        if vtype == ARRAY:
            etype, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if etype != STRING:
                return pos + n * sizes[etype]
            for _ in range(n):
                pos = skip(pos, STRING)
            return pos
        return pos + sizes[vtype]

    pos, out, count = 24, b"", 0
    for _ in range(n_kv):
        start = pos
        key_len = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8:pos + 8 + key_len].decode()
        vtype = struct.unpack_from("<I", data, pos + 8 + key_len)[0]
        pos = skip(pos + 12 + key_len, vtype)
        if key == "tokenizer.ggml.tokens":
            tokens = struct.unpack_from("<Q", data, start + 12 + key_len + 4)[0]
            if tokens != n_vocab:
                raise ValueError(f"{path}: {tokens} tokens, the model has {n_vocab}")
        if key.startswith("tokenizer."):
            out += data[start:pos]
            count += 1
    return out, count


def write_gguf(path, kvs, tensors):
    """kvs: [(key, type, value)] or raw bytes (pairs, count); tensors: [(name,
    shape outermost first, ggml type, flat values)], written as GGUFWriter
    writes a GGUF v3 file: header, pairs, tensor infos (dims innermost
    first), data at 32-byte aligned offsets."""
    pairs, n_kv = b"", 0
    for kv in kvs:
        if isinstance(kv[0], bytes):
            pairs += kv[0]
            n_kv += kv[1]
        else:
            pairs += gguf_kv(*kv)
            n_kv += 1
    infos, blobs, offset = b"", [], 0
    for name, shape, gtype, values in tensors:
        blob = struct.pack("<%d%s" % (len(values), "e" if gtype == GGML_F16 else "f"), *values)
        infos += gguf_string(name) + struct.pack("<I", len(shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        infos += struct.pack("<IQ", gtype, offset)
        blob += b"\0" * (-len(blob) % ALIGNMENT)
        blobs.append(blob)
        offset += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), n_kv) + pairs + infos
    head += b"\0" * (-len(head) % ALIGNMENT)
    with open(path, "wb") as f:
        f.write(head)
        for blob in blobs:
            f.write(blob)


# ---------------------------------------------------------------- hparams

def v4_config(cfg):
    """cfg with transformers 5's "rope_parameters" spread into the keys the
    converter reads (rope_theta, partial_rotary_factor, rope_scaling)."""
    cfg = dict(cfg)
    rp = dict(cfg.pop("rope_parameters", None) or {})
    for key in ("rope_theta", "partial_rotary_factor"):
        if key in rp:
            cfg[key] = rp.pop(key)
    if rp.get("rope_type", "default") != "default":
        rp["type"] = rp["rope_type"]
        cfg["rope_scaling"] = rp
    return cfg


def head_dim(hp):
    return hp.get("head_dim") or hp["hidden_size"] // hp["num_attention_heads"]


def base_params(arch, hp):
    """Model.set_gguf_parameters (the base class)."""
    kv = [("block_count", UINT32, hp["num_hidden_layers"]),
          ("context_length", UINT32, hp["max_position_embeddings"]),
          ("embedding_length", UINT32, hp["hidden_size"]),
          ("feed_forward_length", UINT32, hp["intermediate_size"]),
          ("attention.head_count", UINT32, hp["num_attention_heads"])]
    if hp.get("num_key_value_heads") is not None:
        kv.append(("attention.head_count_kv", UINT32, hp["num_key_value_heads"]))
    if hp.get("rope_theta") is not None:
        kv.append(("rope.freq_base", FLOAT32, hp["rope_theta"]))
    kv.append(("attention.layer_norm_rms_epsilon", FLOAT32, hp["rms_norm_eps"]))
    if hp.get("num_local_experts") is not None:
        kv.append(("expert_count", UINT32, hp["num_local_experts"]))
    if hp.get("num_experts_per_tok") is not None:
        kv.append(("expert_used_count", UINT32, hp["num_experts_per_tok"]))
    if hp.get("head_dim") is not None:
        kv += [("attention.key_length", UINT32, hp["head_dim"]),
               ("attention.value_length", UINT32, hp["head_dim"])]
    return kv


def llama_params(arch, hp):
    """LlamaModel.set_gguf_parameters."""
    kv = base_params(arch, hp) + [("vocab_size", UINT32, hp["vocab_size"]),
                                  ("rope.dimension_count", UINT32, head_dim(hp))]
    rs = hp.get("rope_scaling") or {}
    if "factor" in rs and rs.get("type") == "linear":
        kv += [("rope.scaling.type", STRING, "linear"), ("rope.scaling.factor", FLOAT32, rs["factor"])]
    return kv


def phi3_params(arch, hp):
    """Phi3MiniModel.set_gguf_parameters."""
    n_embd, n_head = hp["hidden_size"], hp["num_attention_heads"]
    orig = hp.get("original_max_position_embeddings", (hp.get("rope_scaling") or {}).get(
        "original_max_position_embeddings"))
    return [("context_length", UINT32, hp["max_position_embeddings"]),
            ("rope.scaling.original_context_length", UINT32, orig),
            ("embedding_length", UINT32, n_embd),
            ("feed_forward_length", UINT32, hp["intermediate_size"]),
            ("block_count", UINT32, hp["num_hidden_layers"]),
            ("attention.head_count", UINT32, n_head),
            ("attention.head_count_kv", UINT32, hp["num_key_value_heads"]),
            ("attention.layer_norm_rms_epsilon", FLOAT32, hp["rms_norm_eps"]),
            ("rope.dimension_count", UINT32,
             int(hp.get("partial_rotary_factor", 1.0) * n_embd) // n_head),
            ("rope.freq_base", FLOAT32, hp["rope_theta"]),
            ("attention.sliding_window", UINT32, hp.get("sliding_window") or 0)]


def gemma_params(arch, hp):
    """GemmaModel.set_gguf_parameters (no rope.freq_base: llama.cpp's 10000)."""
    return [("context_length", UINT32, hp["max_position_embeddings"]),
            ("embedding_length", UINT32, hp["hidden_size"]),
            ("block_count", UINT32, hp["num_hidden_layers"]),
            ("feed_forward_length", UINT32, hp["intermediate_size"]),
            ("attention.head_count", UINT32, hp["num_attention_heads"]),
            ("attention.head_count_kv", UINT32,
             hp.get("num_key_value_heads", hp["num_attention_heads"])),
            ("attention.layer_norm_rms_epsilon", FLOAT32, hp["rms_norm_eps"]),
            ("attention.key_length", UINT32, hp["head_dim"]),
            ("attention.value_length", UINT32, hp["head_dim"])]


def gemma2_params(arch, hp):
    """Gemma2Model.set_gguf_parameters."""
    return gemma_params(arch, hp) + [
        ("attn_logit_softcapping", FLOAT32, hp["attn_logit_softcapping"]),
        ("final_logit_softcapping", FLOAT32, hp["final_logit_softcapping"]),
        ("attention.sliding_window", UINT32, hp["sliding_window"])]


# ---------------------------------------------------------------- tensors

# Hugging Face module -> GGUF name (gguf-py's tensor_mapping.py), for the
# modules of these families; "{bid}" is the layer.
TENSOR_MAP = {
    "model.embed_tokens": "token_embd",
    "model.norm": "output_norm",
    "lm_head": "output",
    "model.layers.{bid}.input_layernorm": "blk.{bid}.attn_norm",
    "model.layers.{bid}.self_attn.q_proj": "blk.{bid}.attn_q",
    "model.layers.{bid}.self_attn.k_proj": "blk.{bid}.attn_k",
    "model.layers.{bid}.self_attn.v_proj": "blk.{bid}.attn_v",
    "model.layers.{bid}.self_attn.o_proj": "blk.{bid}.attn_output",
    "model.layers.{bid}.self_attn.qkv_proj": "blk.{bid}.attn_qkv",
    "model.layers.{bid}.self_attn.q_norm": "blk.{bid}.attn_q_norm",
    "model.layers.{bid}.self_attn.k_norm": "blk.{bid}.attn_k_norm",
    "model.layers.{bid}.post_attention_layernorm": "blk.{bid}.ffn_norm",
    "model.layers.{bid}.pre_feedforward_layernorm": "blk.{bid}.ffn_norm",
    "model.layers.{bid}.post_feedforward_layernorm": "blk.{bid}.post_ffw_norm",
    "model.layers.{bid}.mlp.gate_proj": "blk.{bid}.ffn_gate",
    "model.layers.{bid}.mlp.up_proj": "blk.{bid}.ffn_up",
    "model.layers.{bid}.mlp.gate_up_proj": "blk.{bid}.ffn_up",
    "model.layers.{bid}.mlp.down_proj": "blk.{bid}.ffn_down",
    "model.layers.{bid}.block_sparse_moe.gate": "blk.{bid}.ffn_gate_inp",
    "layers.{bid}.feed_forward.experts.w1": "blk.{bid}.ffn_gate_exps",
    "layers.{bid}.feed_forward.experts.w2": "blk.{bid}.ffn_down_exps",
    "layers.{bid}.feed_forward.experts.w3": "blk.{bid}.ffn_up_exps",
}
# Gemma 2's MODEL_TENSORS list has ATTN_POST_NORM, not FFN_NORM, so its
# post_attention_layernorm maps to post_attention_norm.
GEMMA2_MAP = dict(TENSOR_MAP, **{
    "model.layers.{bid}.post_attention_layernorm": "blk.{bid}.post_attention_norm"})


def map_name(name, table):
    """GGUF name of HF tensor `name` (module + ".weight"/".bias")."""
    module, _, suffix = name.rpartition(".")
    parts = module.split(".")
    bid = next((p for p in parts if p.isdecimal()), None)
    key = ".".join("{bid}" if p == bid else p for p in parts)
    if key not in table:
        raise KeyError(f"cannot map tensor {name!r}")
    return table[key].format(bid=bid) + "." + suffix


def permute(shape, values, n_head, n_head_kv):
    """LlamaModel.permute: each head's rows (or bias values) from halves
    order (i, i + hd/2) to pairs order (2i, 2i + 1)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    rows, cols = shape[0], (shape[1] if len(shape) > 1 else 1)
    half = rows // n_head // 2
    out = [0.0] * len(values)
    for h in range(n_head):
        for part in range(2):
            for i in range(half):
                src = (h * 2 * half + part * half + i) * cols
                dst = (h * 2 * half + 2 * i + part) * cols
                out[dst:dst + cols] = values[src:src + cols]
    return out


def llama_tensors(hp, tensors):
    """LlamaModel.modify_tensors: Q/K permuted, Mixtral's experts stacked
    (layers.N.feed_forward.experts.wK [E, ...]); generate_extra_tensors:
    Llama 3.1's rope_freqs first."""
    out = llama3_rope_freqs(hp)
    n_head, n_kv = hp["num_attention_heads"], hp.get("num_key_value_heads")
    experts = {}
    for name, (shape, values) in tensors:
        if name.endswith(("q_proj.weight", "q_proj.bias")):
            values = permute(shape, values, n_head, n_head)
        if name.endswith(("k_proj.weight", "k_proj.bias")):
            values = permute(shape, values, n_head, n_kv)
        if "block_sparse_moe.experts" in name:
            experts[name] = (shape, values)
            continue
        out.append((name, shape, values))
    for bid in range(hp["num_hidden_layers"]):
        for wid in ("w1", "w2", "w3"):
            parts = [experts.pop(f"model.layers.{bid}.block_sparse_moe.experts.{x}.{wid}.weight")
                     for x in range(hp.get("num_local_experts") or 0)]
            if parts:
                out.append((f"layers.{bid}.feed_forward.experts.{wid}.weight",
                            [len(parts)] + parts[0][0], [v for _, p in parts for v in p]))
    if experts:
        raise ValueError(f"unprocessed experts: {sorted(experts)}")
    return out


def llama3_rope_freqs(hp):
    """The rope_freqs tensor for rope_type llama3, in the converter's
    float32 torch steps."""
    rs = hp.get("rope_scaling") or {}
    if rs.get("rope_type", "").lower() != "llama3":
        return []
    base, dim = hp.get("rope_theta", 10000.0), head_dim(hp)
    freqs = [f32(1.0 / f32(f32(base) ** f32(i / dim))) for i in range(0, dim, 2)]
    factor, low = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0)
    high, old = rs.get("high_freq_factor", 4.0), rs.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old / low, old / high
    factors = []
    for freq in freqs:
        wavelen = f32(f32(2 * math.pi) / freq)
        if wavelen < f32(high_wavelen):
            factors.append(1.0)
        elif wavelen > f32(low_wavelen):
            factors.append(factor)
        else:
            smooth = f32(f32(f32(f32(old) / wavelen) - f32(low)) / f32(high - low))
            factors.append(f32(1.0 / f32(f32(f32(1.0 - smooth) / f32(factor)) + smooth)))
    return [("rope_freqs.weight", [len(factors)], factors)]


def plain_tensors(hp, tensors):
    """Model.modify_tensors: names mapped, values as they are."""
    return [(name, shape, values) for name, (shape, values) in tensors]


def gemma_tensors(hp, tensors):
    """GemmaModel / Gemma2Model.modify_tensors: lm_head dropped (llama.cpp
    ties it), every norm weight stored as 1 + w."""
    out = []
    for name, (shape, values) in tensors:
        if name == "lm_head.weight":
            continue
        if name.endswith("norm.weight"):
            values = [f32(v + 1.0) for v in values]
        out.append((name, shape, values))
    return out


# HF class -> (GGUF architecture, set_gguf_parameters, modify_tensors, tensor map).
ARCHS = {
    "LlamaForCausalLM": ("llama", llama_params, llama_tensors, TENSOR_MAP),
    "MistralForCausalLM": ("llama", llama_params, llama_tensors, TENSOR_MAP),
    "MixtralForCausalLM": ("llama", llama_params, llama_tensors, TENSOR_MAP),
    "Qwen2ForCausalLM": ("qwen2", base_params, plain_tensors, TENSOR_MAP),
    "Qwen3ForCausalLM": ("qwen3", base_params, plain_tensors, TENSOR_MAP),
    "Phi3ForCausalLM": ("phi3", phi3_params, plain_tensors, TENSOR_MAP),
    "GemmaForCausalLM": ("gemma", gemma_params, gemma_tensors, TENSOR_MAP),
    "Gemma2ForCausalLM": ("gemma2", gemma2_params, gemma_tensors, GEMMA2_MAP),
}


def ggml_type(name, n_dims, outtype):
    """Model.prepare_tensors' choice: vectors, norms, the MoE router and
    anything but a .weight stay f32; the rest takes --outtype."""
    if (n_dims <= 1 or name.endswith("_norm.weight") or ".ffn_gate_inp." in name
            or not name.endswith(".weight")):
        return GGML_F32
    return GGML_F16 if outtype == "f16" else GGML_F32


def convert(folder, out, outtype="f32", vocab=None, name=None):
    """Writes the GGUF file of checkpoint `folder` to `out`; returns its architecture."""
    with open(os.path.join(folder, "config.json")) as f:
        hp = v4_config(json.load(f))
    cls = hp["architectures"][0]
    if cls not in ARCHS:
        raise ValueError(f"{folder}: {cls} is not one of {', '.join(ARCHS)}")
    arch, params, modify, table = ARCHS[cls]
    kvs = [("general.architecture", STRING, arch), ("general.type", STRING, "model"),
           ("general.name", STRING, name or os.path.basename(os.path.normpath(folder)))]
    kvs += [(f"{arch}.{key}", t, v) for key, t, v in params(arch, hp)]
    kvs += [("general.file_type", UINT32, FILE_TYPE[outtype]),
            ("general.quantization_version", UINT32, 2)]
    if vocab:
        kvs.append(tokenizer_kvs(vocab, hp["vocab_size"]))
    tensors = sorted(read_safetensors(folder).items())
    gguf = []
    for name, shape, values in modify(hp, tensors):
        if not name.startswith("rope_freqs"):
            name = map_name(name, table)
        gguf.append((name, shape, ggml_type(name, len(shape), outtype), values))
    write_gguf(out, kvs, gguf)
    return arch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--outtype", choices=["f32", "f16"], default="f32")
    ap.add_argument("--vocab", help="a GGUF file whose tokenizer.* keys to copy")
    ap.add_argument("--model-name", help="general.name (default: the folder's name)")
    args = ap.parse_args()
    convert(args.folder, args.out, args.outtype, args.vocab, args.model_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
