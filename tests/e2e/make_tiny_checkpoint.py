#!/usr/bin/env python3
"""Writes a tiny random-weight Hugging Face checkpoint folder.

usage: make_tiny_checkpoint.py VARIANT OUT_DIR
       make_tiny_checkpoint.py --list

The folder has what transformers 5's save_pretrained writes: config.json (the
family's transformers-5 keys: "rope_parameters", "dtype", "layer_types" where
the family has them, sorted, indent 2), generation_config.json and
model.safetensors (F32, the tensor names Hugging Face uses, sorted, metadata
{"format": "pt"}). Weights come from a PRNG seeded with the variant's name, so
a variant's bytes never change. They are larger than HF's initialisation
(std 0.1; norm weights 1 + N(0, 0.1), or N(0, 0.1) for Gemma's 1 + w norms)
so that attention, routing and logits are far from uniform.

Variants: the families with no transformers-made reference here (qwen3, phi3,
gemma2, mixtral), each with a second variant for the options the first leaves
out, and two variants of families that do have references, for options those
references do not use (Mistral's sliding window; Llama's biases and linear
RoPE scaling). Every model is small enough for the pure-Python reference
(hf_reference.py) to run in well under a second.
"""
import array
import json
import os
import random
import struct
import sys

# Sizes shared by every variant: hidden 64, 4 heads of 16, 2 kv heads,
# intermediate 96, vocab 128.
COMMON = {
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "dtype": "float32",
    "eos_token_id": 2,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 96,
    "max_position_embeddings": 512,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "pad_token_id": 0,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "transformers_version": "5.17.0",
    "use_cache": True,
    "vocab_size": 128,
}


def rope(theta, **extra):
    return dict({"rope_theta": theta, "rope_type": "default"}, **extra)


def family(**keys):
    """A config.json maker for one family: COMMON, then keys, then the caller's overrides."""
    return lambda **over: {**COMMON, **keys, **over}


qwen3 = family(architectures=["Qwen3ForCausalLM"], model_type="qwen3", attention_bias=False, head_dim=32,
               hidden_act="silu", layer_types=["full_attention"] * 2, max_window_layers=28,
               rms_norm_eps=1e-06, rope_parameters=rope(1000000.0), sliding_window=None,
               tie_word_embeddings=True, use_sliding_window=False)
phi3 = family(architectures=["Phi3ForCausalLM"], model_type="phi3", embd_pdrop=0.0, hidden_act="silu",
              original_max_position_embeddings=512, resid_pdrop=0.0,
              rope_parameters=rope(10000.0, partial_rotary_factor=1.0), sliding_window=None)
gemma2 = family(architectures=["Gemma2ForCausalLM"], model_type="gemma2", attention_bias=False, head_dim=32,
                hidden_activation="gelu_pytorch_tanh", num_hidden_layers=4,
                layer_types=["sliding_attention", "full_attention"] * 2, rms_norm_eps=1e-06,
                rope_parameters=rope(10000.0), tie_word_embeddings=True, use_bidirectional_attention=None)
mixtral = family(architectures=["MixtralForCausalLM"], model_type="mixtral", head_dim=None, hidden_act="silu",
                 num_experts_per_tok=2, num_local_experts=4, output_router_logits=False,
                 rope_parameters=rope(1000000.0), router_aux_loss_coef=0.001, router_jitter_noise=0.0,
                 sliding_window=None)
mistral = family(architectures=["MistralForCausalLM"], model_type="mistral", head_dim=16, hidden_act="silu",
                 rope_parameters=rope(10000.0), sliding_window=None)
llama = family(architectures=["LlamaForCausalLM"], model_type="llama", attention_bias=False, head_dim=16,
               hidden_act="silu", mlp_bias=False, pretraining_tp=1, rope_parameters=rope(10000.0))


# name -> (config.json, Mixtral expert layout). The prompts of the check have 9
# and 23 tokens, so every window below is crossed. Gemma 2: "gemma2" has 4
# layers and softcaps far below the real 50/30 so that they change the logits
# measurably; "gemma2_defaults" has Gemma2Config's caps. Mixtral: "per_expert"
# is what transformers 5's save_pretrained writes (it reverts the fused
# in-memory layout to block_sparse_moe.experts.E.w1/w2/w3 and
# block_sparse_moe.gate, see conversion_mapping.py); "fused" is that in-memory
# layout (mlp.gate, mlp.experts.gate_up_proj / down_proj), here with top-1.
VARIANTS = {
    "qwen3": (qwen3(), None),
    "qwen3_swa_bias": (qwen3(attention_bias=True, use_sliding_window=True, sliding_window=4,
                             max_window_layers=1, layer_types=["full_attention", "sliding_attention"],
                             tie_word_embeddings=False), None),
    "phi3": (phi3(), None),
    "phi3_partial_swa": (phi3(rope_parameters=rope(10000.0, partial_rotary_factor=0.5), sliding_window=6),
                         None),
    "gemma2": (gemma2(attn_logit_softcapping=3.0, final_logit_softcapping=5.0, query_pre_attn_scalar=24,
                      sliding_window=4), None),
    "gemma2_defaults": (gemma2(attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                               query_pre_attn_scalar=32, sliding_window=6, num_hidden_layers=2,
                               layer_types=["sliding_attention", "full_attention"]), None),
    "mixtral": (mixtral(), "per_expert"),
    "mixtral_fused": (mixtral(num_experts_per_tok=1), "fused"),
    "mistral_swa": (mistral(sliding_window=5), None),
    "llama_bias_linear": (llama(attention_bias=True, mlp_bias=True,
                                rope_parameters=dict(rope(10000.0, factor=4.0), rope_type="linear")), None),
}


def tensor_shapes(cfg, moe_layout):
    """name -> shape of every tensor the family's HF model saves for cfg."""
    arch = cfg["model_type"]
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H
    shapes = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = [V, D]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        norms = ["input_layernorm", "post_attention_layernorm"]
        if arch == "gemma2":
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for n in norms:
            shapes[f"{p}{n}.weight"] = [D]
        # attention
        if arch == "phi3":
            shapes[p + "self_attn.qkv_proj.weight"] = [(H + 2 * KV) * hd, D]
        else:
            for n, rows in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
                shapes[f"{p}self_attn.{n}_proj.weight"] = [rows, D]
                if arch == "qwen2" or cfg.get("attention_bias"):
                    shapes[f"{p}self_attn.{n}_proj.bias"] = [rows]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * hd]
        if cfg.get("attention_bias") and arch != "qwen2":
            shapes[p + "self_attn.o_proj.bias"] = [D]
        if arch == "qwen3":
            shapes[p + "self_attn.q_norm.weight"] = [hd]
            shapes[p + "self_attn.k_norm.weight"] = [hd]
        # MLP
        if arch == "phi3":
            shapes[p + "mlp.gate_up_proj.weight"] = [2 * F, D]
            shapes[p + "mlp.down_proj.weight"] = [D, F]
        elif arch == "mixtral" and moe_layout == "fused":
            E = cfg["num_local_experts"]
            shapes[p + "mlp.gate.weight"] = [E, D]
            shapes[p + "mlp.experts.gate_up_proj"] = [E, 2 * F, D]
            shapes[p + "mlp.experts.down_proj"] = [E, D, F]
        elif arch == "mixtral":
            shapes[p + "block_sparse_moe.gate.weight"] = [cfg["num_local_experts"], D]
            for e in range(cfg["num_local_experts"]):
                m = f"{p}block_sparse_moe.experts.{e}."
                shapes[m + "w1.weight"] = [F, D]
                shapes[m + "w2.weight"] = [D, F]
                shapes[m + "w3.weight"] = [F, D]
        else:
            for n, shape in (("gate", [F, D]), ("up", [F, D]), ("down", [D, F])):
                shapes[f"{p}mlp.{n}_proj.weight"] = shape
                if cfg.get("mlp_bias"):
                    shapes[f"{p}mlp.{n}_proj.bias"] = shape[:1]
    return shapes


def random_values(name, shape, one_plus_norms, rng):
    n = 1
    for d in shape:
        n *= d
    if name.endswith("norm.weight"):
        center = 0.0 if one_plus_norms else 1.0
        return [center + rng.gauss(0.0, 0.1) for _ in range(n)]
    return [rng.gauss(0.0, 0.1) for _ in range(n)]


def write_safetensors(path, tensors):
    """tensors: name -> (shape, values); written F32 in name order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = array.array("f", values)
        if sys.byteorder != "little":
            blob.byteswap()
        blob = blob.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def make(variant, folder):
    """Writes checkpoint `variant` into folder (created if needed); returns its config."""
    cfg, moe_layout = VARIANTS[variant]
    os.makedirs(folder, exist_ok=True)
    rng = random.Random("llmc-tiny-" + variant)
    one_plus = cfg["model_type"] in ("gemma", "gemma2")
    tensors = {name: (shape, random_values(name, shape, one_plus, rng))
               for name, shape in sorted(tensor_shapes(cfg, moe_layout).items())}
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    write_json(os.path.join(folder, "config.json"), cfg)
    write_json(os.path.join(folder, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"],
                "eos_token_id": cfg["eos_token_id"], "pad_token_id": cfg["pad_token_id"],
                "transformers_version": cfg["transformers_version"], "use_cache": True})
    return cfg


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(VARIANTS))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] not in VARIANTS:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        print("variants: " + ", ".join(VARIANTS), file=sys.stderr)
        return 2
    make(sys.argv[1], sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
