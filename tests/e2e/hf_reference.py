#!/usr/bin/env python3
"""An independent float64 reference forward pass for Hugging Face decoder LLMs.

usage: hf_reference.py MODEL_DIR --tokens 1,2,3 [-o OUT.f32]
       hf_reference.py --validate MODEL_DIR...

Reads a Hugging Face checkpoint folder (config.json + model.safetensors, f32)
and computes the prefill logits of a token list: causal, eager attention, no
cache, every value a Python float (float64). `-o` writes them as float32
little-endian [n_tokens x vocab]; without it the last row's argmax is printed.
`--validate` compares each folder's logits with the ones Hugging Face
transformers computed (reference.json, as in tests/data/hf/*/) and fails if any
value differs by more than 1e-4.

Why it exists: transformers cannot run here (no PyPI, no torch), yet llmc's
Qwen3, Phi-3, Gemma 2 and Mixtral graphs need a reference llmc did not
produce. This file is written from transformers 5's modeling_<arch>.py and
configuration_<arch>.py, not from llmc's importer, and the --validate run on
the transformers-made checkpoints proves the shared parts faithful.

Families: llama, mistral, qwen2, qwen3, phi3, gemma, gemma2, mixtral. What
sets each apart from Llama is one row of ARCHS; the forward pass below is one
function per feature, shared by all of them. Where Hugging Face rounds a
constant to float32 (RoPE frequencies, Gemma's embedding scale) this file
rounds it too; everything else is float64. Standard library only.
"""
import argparse
import array
import json
import math
import operator
import os
import struct
import sys

VALIDATE_TOLERANCE = 1e-4


# ---------------------------------------------------------------- utilities

def f32(x):
    """x rounded to the nearest float32 (as a torch float32 tensor holds it)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def dot(a, b):
    return sum(map(operator.mul, a, b))


def linear(x, weight, bias=None):
    """x · W^T (+ b): nn.Linear. x is one vector, weight a list of rows [out][in]."""
    y = [dot(row, x) for row in weight]
    return [v + b for v, b in zip(y, bias)] if bias is not None else y


def add(a, b):
    return [u + v for u, v in zip(a, b)]


def softmax(xs):
    m = max(xs)
    e = [math.exp(v - m) for v in xs]
    s = sum(e)
    return [v / s for v in e]


def softcap(x, cap):
    """Gemma 2's tanh soft capping: cap * tanh(x / cap)."""
    return cap * math.tanh(x / cap)


def silu(x):
    return x / (1.0 + math.exp(-x)) if x > -700 else 0.0


def gelu_tanh(x):
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


ACT2FN = {"silu": silu, "swish": silu, "gelu_pytorch_tanh": gelu_tanh, "gelu_new": gelu_tanh,
          "gelu": gelu_erf}


# ---------------------------------------------------------------- checkpoint

def read_safetensors(folder):
    """name -> (shape, flat list of floats) for every tensor of the folder's
    model.safetensors (or the shards of model.safetensors.index.json)."""
    files = ["model.safetensors"]
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    tensors = {}
    for name in files:
        with open(os.path.join(folder, name), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        for key, t in header.items():
            if key == "__metadata__":
                continue
            if t["dtype"] != "F32":
                raise ValueError(f"{name}: {key}: dtype {t['dtype']} (only F32 is read)")
            begin, end = t["data_offsets"]
            a = array.array("f")
            a.frombytes(data[begin:end])
            if sys.byteorder != "little":
                a.byteswap()
            tensors[key] = (t["shape"], a.tolist())
    return tensors


def as_rows(shape, flat):
    """A 2-D tensor as a list of rows."""
    rows, cols = shape
    return [flat[r * cols:(r + 1) * cols] for r in range(rows)]


# ---------------------------------------------------------------- architectures

# What sets each family apart from Llama, read from modeling_<arch>.py, with
# the defaults of configuration_<arch>.py that the forward pass depends on.
#   qkv_bias      q/k/v projections always have biases, o_proj never (Qwen2)
#   cfg_bias      q/k/v/o biases follow config "attention_bias" (Llama, Qwen3, Gemma 1/2)
#   mlp_bias      gate/up/down biases follow config "mlp_bias" (Llama)
#   qk_norm       per-head RMSNorm of q and k before RoPE (Qwen3)
#   fused         qkv_proj and gate_up_proj (Phi-3)
#   gemma         (1 + w) norms, embedding * sqrt(hidden), act key "hidden_activation"
#   sandwich      post-attention / pre- and post-feedforward norms, softcaps,
#                 query_pre_attn_scalar (Gemma 2)
#   moe           sparse mixture of experts MLP (Mixtral)
#   window        "none": no sliding window; "all": every layer slides when
#                 sliding_window is set; "layer_types": the layers marked
#                 "sliding_attention" (default list: default_layer_types)
ARCHS = {
    "llama": dict(cls="LlamaForCausalLM", cfg_bias=True, mlp_bias=True, window="none",
                  defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=10000.0)),
    "mistral": dict(cls="MistralForCausalLM", window="all",
                    defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=10000.0,
                                  sliding_window=4096)),
    "qwen2": dict(cls="Qwen2ForCausalLM", qkv_bias=True, window="layer_types",
                  defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=10000.0,
                                use_sliding_window=False, sliding_window=4096, max_window_layers=28)),
    "qwen3": dict(cls="Qwen3ForCausalLM", cfg_bias=True, qk_norm=True, window="layer_types",
                  defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=False, rope_theta=10000.0,
                                head_dim=128, use_sliding_window=False, sliding_window=4096,
                                max_window_layers=28)),
    "phi3": dict(cls="Phi3ForCausalLM", fused=True, window="all",
                 defaults=dict(rms_norm_eps=1e-5, tie_word_embeddings=False, rope_theta=10000.0,
                               sliding_window=None)),
    "gemma": dict(cls="GemmaForCausalLM", cfg_bias=True, gemma=True, window="none",
                  defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=True, rope_theta=10000.0,
                                head_dim=256)),
    "gemma2": dict(cls="Gemma2ForCausalLM", cfg_bias=True, gemma=True, sandwich=True,
                   window="layer_types",
                   defaults=dict(rms_norm_eps=1e-6, tie_word_embeddings=True, rope_theta=10000.0,
                                 head_dim=256, query_pre_attn_scalar=256, sliding_window=4096,
                                 final_logit_softcapping=30.0, attn_logit_softcapping=50.0)),
    "mixtral": dict(cls="MixtralForCausalLM", moe=True, window="all",
                    defaults=dict(rms_norm_eps=1e-5, tie_word_embeddings=False, rope_theta=1e6,
                                  sliding_window=None, num_local_experts=8, num_experts_per_tok=2)),
}


def default_layer_types(arch, cfg):
    """The layer_types list HF's config __post_init__ makes when config.json has none."""
    n = cfg["num_hidden_layers"]
    if arch == "gemma2":  # Gemma2Config: sliding on even layers
        return ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    # Qwen2Config / Qwen3Config: sliding from max_window_layers on, when there is a window
    return ["sliding_attention" if cfg["sliding_window"] is not None and i >= cfg["max_window_layers"]
            else "full_attention" for i in range(n)]


class Config:
    """config.json with the family's HF defaults filled in and the derived sizes."""

    def __init__(self, folder):
        raw = json.load(open(os.path.join(folder, "config.json")))
        cls = (raw.get("architectures") or [None])[0]
        names = [k for k, v in ARCHS.items() if v["cls"] == cls] or \
            [k for k in ARCHS if k == raw.get("model_type")]
        if not names:
            raise ValueError(f"{folder}: unsupported architecture {cls or raw.get('model_type')}")
        self.arch = names[0]
        self.traits = ARCHS[self.arch]
        cfg = dict(self.traits["defaults"])
        cfg.update({k: v for k, v in raw.items() if v is not None or k == "sliding_window"})
        self.cfg = cfg
        self.hidden = cfg["hidden_size"]
        self.vocab = cfg["vocab_size"]
        self.n_layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        # Phi-3 and Mixtral: getattr(config, "head_dim", None) or hidden // heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.heads
        self.ffn = cfg["intermediate_size"]
        self.eps = cfg["rms_norm_eps"]
        act = cfg.get("hidden_activation" if self.traits.get("gemma") else "hidden_act")
        self.act = ACT2FN[act or ("gelu_pytorch_tanh" if self.traits.get("gemma") else "silu")]
        self.attn_bias = self.traits.get("cfg_bias") and cfg.get("attention_bias", False)
        self.mlp_bias = self.traits.get("mlp_bias") and cfg.get("mlp_bias", False)
        self.windows = self._windows()

    def _windows(self):
        """Per layer: the sliding window (HF's sliding_window), or None."""
        cfg, rule = self.cfg, self.traits["window"]
        window = cfg.get("sliding_window")
        if rule == "none":
            return [None] * self.n_layers
        if rule == "all":
            return [window] * self.n_layers
        if self.arch in ("qwen2", "qwen3") and not cfg.get("use_sliding_window", False):
            window = None  # Qwen2Config/Qwen3Config.__post_init__
        types = cfg.get("layer_types") or default_layer_types(self.arch, dict(cfg, sliding_window=window))
        return [window if t == "sliding_attention" else None for t in types]


# ---------------------------------------------------------------- RoPE

def rope_inv_freq(c):
    """HF's inv_freq: ROPE_INIT_FUNCTIONS[rope_type] (modeling_rope_utils), each
    step rounded to float32 as torch computes it."""
    cfg = c.cfg
    params = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = params.get("rope_theta", cfg.get("rope_theta"))
    partial = params.get("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
    dim = int(c.head_dim * partial)
    base = f32(theta)
    # 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
    inv = [f32(1.0 / f32(base ** f32(i / dim))) for i in range(0, dim, 2)]
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in ("default", "dynamic"):  # dynamic only rescales beyond max_position_embeddings
        return inv
    factor = f32(params["factor"])
    if kind == "linear":
        return [f32(v / factor) for v in inv]
    if kind == "llama3":
        return [llama3_freq(v, factor, params) for v in inv]
    raise NotImplementedError(f"rope_type {kind!r}")


def llama3_freq(inv, factor, params):
    """_compute_llama3_parameters for one frequency, in float32 steps."""
    low, high = params["low_freq_factor"], params["high_freq_factor"]
    old = params["original_max_position_embeddings"]
    low_wavelen, high_wavelen = f32(old / low), f32(old / high)
    wavelen = f32(f32(1.0 / inv) * f32(2 * math.pi))  # 2 * math.pi / inv_freq
    scaled = f32(inv / factor) if wavelen > low_wavelen else inv
    if wavelen < high_wavelen or wavelen > low_wavelen:
        return scaled
    smooth = f32(f32(f32(f32(1.0 / wavelen) * old) - low) / (high - low))
    return f32(f32(f32(1.0 - smooth) * scaled / factor) + f32(smooth * scaled))


def rope_tables(inv_freq, n):
    """cos and sin of emb = cat(freqs, freqs) for positions 0..n-1 (freqs in float32)."""
    cos, sin = [], []
    for p in range(n):
        freqs = [f32(v * p) for v in inv_freq]
        cos.append([math.cos(f) for f in freqs] * 2)
        sin.append([math.sin(f) for f in freqs] * 2)
    return cos, sin


def apply_rope(v, cos, sin):
    """q * cos + rotate_half(q) * sin on the first len(cos) dims of one head
    (Phi-3's partial rotary passes the rest through)."""
    r = len(cos)
    half = r // 2
    out = list(v)
    for i in range(half):
        a, b = v[i], v[i + half]
        out[i] = a * cos[i] - b * sin[i]
        out[i + half] = b * cos[i + half] + a * sin[i + half]
    return out


# ---------------------------------------------------------------- layers

def rms_norm(x, w, eps, one_plus):
    """LlamaRMSNorm (w * x / rms), or GemmaRMSNorm ((1 + w) * x / rms)."""
    scale = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    if one_plus:
        return [v * scale * (1.0 + g) for v, g in zip(x, w)]
    return [v * scale * g for v, g in zip(x, w)]


def heads_of(v, n, hd):
    return [v[h * hd:(h + 1) * hd] for h in range(n)]


def attention(q, k, v, n_kv_rep, scale, cap, window):
    """eager_attention_forward for one layer. q: [T][H][hd], k/v: [T][KV][hd].
    Query head h reads kv head h // n_kv_rep (repeat_kv). Position t sees
    positions s <= t with s > t - window (masking_utils' sliding_window_overlay)."""
    T, H = len(q), len(q[0])
    out = []
    for t in range(T):
        first = max(0, t - window + 1) if window else 0
        row = []
        for h in range(H):
            kvh = h // n_kv_rep
            scores = [dot(q[t][h], k[s][kvh]) * scale for s in range(first, t + 1)]
            if cap:
                scores = [softcap(s, cap) for s in scores]
            p = softmax(scores)
            hd = len(v[0][kvh])
            acc = [0.0] * hd
            for w, s in zip(p, range(first, t + 1)):
                vs = v[s][kvh]
                for i in range(hd):
                    acc[i] += w * vs[i]
            row.extend(acc)
        out.append(row)
    return out


class Reference:
    """A checkpoint loaded for the reference forward pass."""

    def __init__(self, folder):
        self.c = Config(folder)
        self.t = read_safetensors(folder)
        self.rows = {}  # name -> the 2-D tensor as a list of rows, made on first use
        self.inv_freq = rope_inv_freq(self.c)

    # -- weights
    def vec(self, name):
        return self.t[name][1]

    def mat(self, name):
        if name not in self.rows:
            self.rows[name] = as_rows(*self.t[name])
        return self.rows[name]

    def proj(self, x, module, bias=False):
        """nn.Linear `module` (its .weight, and its .bias when `bias`) applied to x."""
        return linear(x, self.mat(module + ".weight"), self.vec(module + ".bias") if bias else None)

    def norm(self, x, name):
        return rms_norm(x, self.vec(name), self.c.eps, self.c.traits.get("gemma"))

    # -- blocks
    def qkv(self, p, h):
        """q, k, v of one token: separate projections, or Phi-3's fused qkv_proj."""
        c = self.c
        if c.traits.get("fused"):
            y = self.proj(h, p + "self_attn.qkv_proj")
            nq, nk = c.heads * c.head_dim, c.kv_heads * c.head_dim
            return y[:nq], y[nq:nq + nk], y[nq + nk:]
        bias = c.traits.get("qkv_bias") or c.attn_bias
        return tuple(self.proj(h, f"{p}self_attn.{n}_proj", bias) for n in "qkv")

    def attention_block(self, i, hs, cos, sin):
        c, p = self.c, f"model.layers.{i}."
        hd = c.head_dim
        qs, ks, vs = [], [], []
        for t, h in enumerate(hs):
            q, k, v = self.qkv(p, h)
            q, k = heads_of(q, c.heads, hd), heads_of(k, c.kv_heads, hd)
            if c.traits.get("qk_norm"):  # Qwen3: q_norm / k_norm over each head, before RoPE
                q = [rms_norm(x, self.vec(p + "self_attn.q_norm.weight"), c.eps, False) for x in q]
                k = [rms_norm(x, self.vec(p + "self_attn.k_norm.weight"), c.eps, False) for x in k]
            qs.append([apply_rope(x, cos[t], sin[t]) for x in q])
            ks.append([apply_rope(x, cos[t], sin[t]) for x in k])
            vs.append(heads_of(v, c.kv_heads, hd))
        scale, cap = hd ** -0.5, None
        if c.traits.get("sandwich"):
            scale = c.cfg["query_pre_attn_scalar"] ** -0.5
            cap = c.cfg.get("attn_logit_softcapping")
        a = attention(qs, ks, vs, c.heads // c.kv_heads, scale, cap, c.windows[i])
        return [self.proj(x, p + "self_attn.o_proj", c.attn_bias) for x in a]

    def dense_mlp(self, p, h):
        """down(act(gate(h)) * up(h)); Phi-3's gate_up_proj holds gate then up."""
        c = self.c
        if c.traits.get("fused"):
            gu = self.proj(h, p + "mlp.gate_up_proj")
            gate, up = gu[:c.ffn], gu[c.ffn:]
        else:
            gate = self.proj(h, p + "mlp.gate_proj", c.mlp_bias)
            up = self.proj(h, p + "mlp.up_proj", c.mlp_bias)
        m = [c.act(g) * u for g, u in zip(gate, up)]
        return self.proj(m, p + "mlp.down_proj", c.mlp_bias)

    def experts(self, p):
        """Mixtral's router [E][D] and per expert (gate [F][D], up [F][D], down [D][F]),
        from transformers 5's fused tensors or the per-expert w1/w3/w2 layout."""
        c, E, F = self.c, self.c.cfg["num_local_experts"], self.c.ffn
        if p + "mlp.experts.gate_up_proj" in self.t:
            gu = as_rows([E * 2 * F, c.hidden], self.vec(p + "mlp.experts.gate_up_proj"))
            down = as_rows([E * c.hidden, F], self.vec(p + "mlp.experts.down_proj"))
            ex = [(gu[e * 2 * F:e * 2 * F + F], gu[e * 2 * F + F:(e + 1) * 2 * F],
                   down[e * c.hidden:(e + 1) * c.hidden]) for e in range(E)]
            return self.mat(p + "mlp.gate.weight"), ex
        m = p + "block_sparse_moe."
        ex = [(self.mat(f"{m}experts.{e}.w1.weight"), self.mat(f"{m}experts.{e}.w3.weight"),
               self.mat(f"{m}experts.{e}.w2.weight")) for e in range(E)]
        return self.mat(m + "gate.weight"), ex

    def moe_mlp(self, router, experts, h):
        """MixtralTopKRouter + MixtralExperts: softmax over all experts, top-k,
        renormalise the k weights, sum weight * down(act(gate) * up)."""
        c = self.c
        probs = softmax(linear(h, router))
        top = sorted(range(len(probs)), key=lambda e: -probs[e])[:c.cfg["num_experts_per_tok"]]
        total = sum(probs[e] for e in top)
        out = [0.0] * c.hidden
        for e in top:
            gate_w, up_w, down_w = experts[e]
            m = [c.act(g) * u for g, u in zip(linear(h, gate_w), linear(h, up_w))]
            out = add(out, [probs[e] / total * v for v in linear(m, down_w)])
        return out

    def mlp_block(self, i, hs):
        p = f"model.layers.{i}."
        if self.c.traits.get("moe"):
            router, experts = self.experts(p)
            return [self.moe_mlp(router, experts, h) for h in hs]
        return [self.dense_mlp(p, h) for h in hs]

    def decoder_layer(self, i, xs, cos, sin):
        p, sandwich = f"model.layers.{i}.", self.c.traits.get("sandwich")
        hs = [self.norm(x, p + "input_layernorm.weight") for x in xs]
        a = self.attention_block(i, hs, cos, sin)
        if sandwich:
            a = [self.norm(x, p + "post_attention_layernorm.weight") for x in a]
        xs = [add(x, y) for x, y in zip(xs, a)]
        pre = "pre_feedforward_layernorm" if sandwich else "post_attention_layernorm"
        hs = [self.norm(x, f"{p}{pre}.weight") for x in xs]
        m = self.mlp_block(i, hs)
        if sandwich:
            m = [self.norm(x, p + "post_feedforward_layernorm.weight") for x in m]
        return [add(x, y) for x, y in zip(xs, m)]

    def logits(self, tokens):
        """Prefill logits, one row of vocab values per token."""
        c = self.c
        embed = self.mat("model.embed_tokens.weight")
        xs = [list(embed[t]) for t in tokens]
        if c.traits.get("gemma"):  # torch.tensor(hidden_size ** 0.5, dtype=float32)
            s = f32(c.hidden ** 0.5)
            xs = [[v * s for v in x] for x in xs]
        cos, sin = rope_tables(self.inv_freq, len(tokens))
        for i in range(c.n_layers):
            xs = self.decoder_layer(i, xs, cos, sin)
        xs = [self.norm(x, "model.norm.weight") for x in xs]
        if c.cfg["tie_word_embeddings"]:
            head = embed
        elif "lm_head.weight" in self.t:
            head = self.mat("lm_head.weight")
        else:
            raise ValueError("tie_word_embeddings is false but there is no lm_head.weight")
        out = [linear(x, head) for x in xs]
        cap = c.cfg.get("final_logit_softcapping") if c.traits.get("sandwich") else None
        if cap:
            out = [[softcap(v, cap) for v in row] for row in out]
        return out


# ---------------------------------------------------------------- driver

def read_f32(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def write_f32(path, rows):
    a = array.array("f", [v for row in rows for v in row])
    if sys.byteorder != "little":
        a.byteswap()
    with open(path, "wb") as f:
        a.tofile(f)


def max_abs_diff(got, want):
    if len(got) != len(want):
        return float("inf")
    return max(abs(g - w) for g, w in zip(got, want))


def validate(folder, tolerance=VALIDATE_TOLERANCE, log=print):
    """Compares the reference prefill logits of every prompt in
    folder/reference.json with the file transformers wrote. Returns the number
    of failing prompts."""
    ref = Reference(folder)
    spec = json.load(open(os.path.join(folder, "reference.json")))
    name = os.path.basename(os.path.normpath(folder))
    failures = 0
    for i, p in enumerate(spec["prompts"]):
        got = [v for row in ref.logits(p["input_ids"]) for v in row]
        diff = max_abs_diff(got, read_f32(os.path.join(folder, p["prefill_logits"])))
        ok = diff <= tolerance
        failures += not ok
        log(f"reference vs transformers: {name} ({ref.c.arch}) prompt {i} ({len(p['input_ids'])} tokens) "
            f"max |diff| = {diff:.3g} {'ok' if ok else 'FAIL (tolerance %g)' % tolerance}")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", metavar="MODEL_DIR")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("-o", dest="out", help="write float32 LE logits [n_tokens x vocab] here")
    ap.add_argument("--validate", action="store_true",
                    help="compare with each folder's reference.json (transformers' logits)")
    args = ap.parse_args()
    if args.validate:
        return 1 if sum(validate(f) for f in args.folders) else 0
    if not args.tokens or len(args.folders) != 1:
        ap.error("give one MODEL_DIR and --tokens (or --validate)")
    rows = Reference(args.folders[0]).logits([int(t) for t in args.tokens.split(",")])
    if args.out:
        write_f32(args.out, rows)
    else:
        last = rows[-1]
        print(f"{len(rows)} x {len(last)} logits; last row argmax {last.index(max(last))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
