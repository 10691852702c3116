"""glide-text2im's attention through torch's fused ``scaled_dot_product_attention``.

glide-text2im computes attention by hand (two einsums and a float32 softmax), which
materialises every attention matrix. The modules here compute the same function with
``torch.nn.functional.scaled_dot_product_attention`` (flash or memory-efficient kernels
on CUDA) and are swapped in for the original instances after a model is built;
glide-text2im itself is not changed. Imported only when a 'glide' generator is built.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SdpaQKVAttention(nn.Module):
    """Replaces ``glide_text2im.unet.QKVAttention`` (UNet self- and text cross-attention)."""

    def __init__(self, n_heads: int):
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv: torch.Tensor, encoder_kv: torch.Tensor | None = None) -> torch.Tensor:
        bs, width, length = qkv.shape
        heads = self.n_heads
        ch = width // (3 * heads)
        # Per head the channels hold [q, k, v] (and [k, v] in encoder_kv), as in the original.
        q, k, v = qkv.reshape(bs, heads, 3 * ch, length).split(ch, dim=2)
        if encoder_kv is not None:
            ek, ev = encoder_kv.reshape(bs, heads, 2 * ch, -1).split(ch, dim=2)
            k = torch.cat([ek, k], dim=-1)
            v = torch.cat([ev, v], dim=-1)
        # (batch, heads, tokens, channels); the default scale 1/sqrt(ch) is the original's.
        out = F.scaled_dot_product_attention(q.transpose(2, 3), k.transpose(2, 3),
                                             v.transpose(2, 3))
        return out.transpose(2, 3).reshape(bs, heads * ch, length)


class SdpaQKVMultiheadAttention(nn.Module):
    """Replaces ``glide_text2im.xf.QKVMultiheadAttention`` (the text transformer's)."""

    def __init__(self, n_heads: int, n_ctx: int):
        super().__init__()
        self.n_heads = n_heads
        self.n_ctx = n_ctx

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        bs, n_ctx, width = qkv.shape
        attn_ch = width // self.n_heads // 3
        q, k, v = qkv.view(bs, n_ctx, self.n_heads, 3 * attn_ch).transpose(1, 2).split(
            attn_ch, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v)
        return out.transpose(1, 2).reshape(bs, n_ctx, -1)


def _clip_attention_forward(self, m: torch.Tensor) -> torch.Tensor:
    """``glide_text2im.clip.encoders.AttentionResblock.forward`` with the fused kernel.

    Same padding to whole blocks and the same additive mask as the original.
    """
    n_context = m.shape[1]
    n_query_pad = self.attn_fn.ctx_blks_q * self.attn_fn.block_size - n_context
    n_key_pad = self.attn_fn.ctx_blks_k * self.attn_fn.block_size - n_context
    r = self.ln(m)
    q, k, v = self.f_q(r), self.f_k(r), self.f_v(r)
    if n_query_pad:
        q = F.pad(q, (0, 0, 0, n_query_pad))
    if n_key_pad:
        k = F.pad(k, (0, 0, 0, n_key_pad))
        v = F.pad(v, (0, 0, 0, n_key_pad))
    heads = self.attn_fn.n_heads
    q, k, v = (t.view(t.shape[0], -1, heads, self.n_head_state).transpose(1, 2)
               for t in (q, k, v))
    bias = getattr(self.attn_fn, "pytorch_attn_bias", None)
    if bias is not None:
        bias = (bias[None, None] if bias.dim() == 2 else bias[None]).to(q.dtype)
    r = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=float(self.qk_scale))
    r = r.transpose(1, 2).reshape(r.shape[0], -1, self.n_state)
    if n_query_pad:
        r = r[:, :-n_query_pad]
    return m + self.f_c(r)


def use_sdpa(module: nn.Module) -> int:
    """Swap every glide-text2im attention inside ``module`` for its fused twin; the count.

    The replacements hold no weights, so state dicts and checkpoints are unaffected.
    """
    from glide_text2im.clip.encoders import AttentionResblock
    from glide_text2im.unet import QKVAttention
    from glide_text2im.xf import QKVMultiheadAttention

    swapped = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is QKVAttention:
                setattr(parent, name, SdpaQKVAttention(child.n_heads))
                swapped += 1
            elif type(child) is QKVMultiheadAttention:
                setattr(parent, name, SdpaQKVMultiheadAttention(child.n_heads, child.n_ctx))
                swapped += 1
        if type(parent) is AttentionResblock and "forward" not in vars(parent):
            parent.forward = _clip_attention_forward.__get__(parent)
            swapped += 1
    return swapped
