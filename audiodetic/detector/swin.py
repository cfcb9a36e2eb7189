"""Swin Transformer bottom-up backbone as used by Detic's ``SwinB_896`` configs (inference only).

Numerics follow the detection variant of Swin that CenterNet2/Detic ship:

* patch embedding: zero-pad the image right/bottom to a multiple of the patch size, strided conv,
  LayerNorm over channels;
* block: ``x + WindowAttention(LN1(x))`` then ``x + MLP(LN2(x))``; the map is zero-padded right/bottom to
  a multiple of the window *after* LN1 and cropped after attention; odd blocks roll the map by
  ``-window // 2`` and add ``-100.0`` to logits between tokens of different shifted regions (the mask is
  computed on the padded size); every logit gets a learned relative-position bias;
* patch merging: zero-pad odd sizes, concatenate ``[x(0::2,0::2), x(1::2,0::2), x(0::2,1::2),
  x(1::2,1::2)]``, LayerNorm(4C), Linear(4C -> 2C, no bias);
* outputs of stages 1, 2, 3 (before merging) pass through ``norm1``/``norm2``/``norm3``.

Parameter names equal the upstream ones below the ``backbone.bottom_up.`` prefix. Attention runs through
``F.scaled_dot_product_attention`` with the bias (and, for the windows the shift cuts, the -100 mask) as additive
mask, which is the same softmax(q k^T * scale + bias + mask) v up to float rounding. Linear layers go through
``kernels.linear`` (oneDNN on CPU, with GELU and the residual sums fused; see ``kernels``); the attention output
projection is applied after scattering tokens back to the map (it is per token, so only the padding is skipped).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiodetic.errors import InputError
from audiodetic.kernels import linear

__all__ = ["SwinBackbone", "masked_windows", "relative_position_index", "shift_window_mask", "window_layout"]

MASK_VALUE = -100.0


def relative_position_index(window_size: int) -> Tensor:
    """``(N, N)`` int64 index into the ``((2w-1)**2, heads)`` bias table, ``N = window_size**2``.

    Token ``n`` of a window sits at row ``n // w``, column ``n % w``; the pair ``(i, j)`` looks up
    ``(dy + w - 1) * (2w - 1) + (dx + w - 1)`` with ``dy = row_i - row_j``, ``dx = col_i - col_j``.
    """
    steps = torch.arange(window_size, device="cpu")  # a real tensor even under torch.device("meta") (convert.py)
    rows, cols = torch.meshgrid(steps, steps, indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    dy = rows[:, None] - rows[None, :] + window_size - 1
    dx = cols[:, None] - cols[None, :] + window_size - 1
    return dy * (2 * window_size - 1) + dx


def shift_window_mask(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Additive ``(num_windows, N, N)`` float32 mask for shifted windows on a padded ``height x width`` map.

    The padded map is split into 3 x 3 regions by the cuts ``-window`` and ``-shift`` along each axis;
    pairs of tokens from different regions get ``-100.0``, others ``0.0``. Windows are row-major.
    """
    region = torch.zeros(height, width)
    cuts = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    label = 0
    for rows in cuts:
        for cols in cuts:
            region[rows, cols] = label
            label += 1
    windows = _partition(region[None, :, :, None], window_size).reshape(-1, window_size * window_size)
    different = windows[:, None, :] != windows[:, :, None]
    return torch.zeros(different.shape).masked_fill_(different, MASK_VALUE)


def _partition(x: Tensor, window_size: int) -> Tensor:
    """``(B, H, W, C)`` -> ``(B, nH * nW, window_size**2, C)`` with row-major windows."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, (h // window_size) * (w // window_size), -1, c)


@dataclass(frozen=True)
class WindowLayout:
    """Token permutations of one block on an unpadded ``height x width`` map.

    ``gather`` (``Hp * Wp`` int64) lists, window by window (row-major windows, row-major tokens), the flat
    ``y * width + x`` source token of the zero-padded map rolled by ``-shift``; padding points at index
    ``height * width`` (a zero row appended to the map). ``scatter`` (``height * width``) is its inverse: where each
    map token sits in the window sequence. Gathering replaces pad + roll + partition, scattering replaces
    reverse + roll back + crop: the same values, moved once.
    """

    gather: Tensor
    scatter: Tensor
    num_windows: int


def window_layout(height: int, width: int, window_size: int, shift: int) -> WindowLayout:
    ws = window_size
    hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
    rows = (torch.arange(hp) + shift) % hp
    cols = (torch.arange(wp) + shift) % wp
    source = rows[:, None] * width + cols[None, :]
    source[(rows >= height)[:, None] | (cols >= width)[None, :]] = height * width
    gather = source.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1)
    position = torch.empty(height * width + 1, dtype=torch.long)
    valid = gather < height * width
    position[gather[valid]] = torch.arange(hp * wp)[valid]
    return WindowLayout(gather, position[: height * width].clone(), (hp // ws) * (wp // ws))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias: its parameters, and
    :meth:`attend`; the block applies ``proj`` itself, after the tokens are scattered back (see :class:`SwinBlock`)."""

    def __init__(self, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise InputError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> Tensor:
        """``(heads, N, N)`` bias added to every window's logits."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def attend(self, windows: Tensor, shift_mask: Tensor | None, masked: Tensor | None = None) -> Tensor:
        """Attention before the output projection: ``(B, nW, N, C)`` -> ``(B, nW, N, C)``.

        Every window first attends with the position bias alone; the windows ``masked`` (int64 indices, by default
        those where ``shift_mask`` is non-zero: the last row and column of windows) are then recomputed with bias
        plus mask. Interior windows' mask is ``bias + 0.0 == bias``, so the values are those of one call with the
        full ``(nW, heads, N, N)`` mask, without building that mask (43 MB for Swin-B's first stage) for every block.
        """
        b, nw, n, c = windows.shape
        heads = self.num_heads
        qkv = linear(self.qkv, windows).view(b * nw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B * nW, heads, N, head_dim)
        bias = self.position_bias().unsqueeze(0).to(q.dtype)  # (1, heads, N, N)
        # 4-D inputs keep PyTorch on its fused CPU attention kernel (5-D falls back to the math path).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        if shift_mask is not None:
            masked = masked_windows(shift_mask) if masked is None else masked
            if masked.numel():
                rows = (torch.arange(b, device=masked.device)[:, None] * nw + masked).reshape(-1)
                mask = (bias + shift_mask.index_select(0, masked).unsqueeze(1).to(q.dtype)).repeat(b, 1, 1, 1)
                border = F.scaled_dot_product_attention(q[rows], k[rows], v[rows], attn_mask=mask, scale=self.scale)
                out = out.index_copy_(0, rows, border)
        return out.transpose(1, 2).reshape(b, nw, n, c)


def masked_windows(shift_mask: Tensor) -> Tensor:
    """int64 indices of the windows whose ``(nW, N, N)`` shift mask is not all zero."""
    return torch.nonzero((shift_mask != 0).flatten(1).any(dim=1)).squeeze(1)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """``fc2(gelu(fc1(x)))`` (``+ residual``, summed in the same pass); GELU in place, no second 4C-wide map."""
        return linear(self.fc2, linear(self.fc1, x, activation="gelu"), residual=residual)


class SwinBlock(nn.Module):
    """One (shifted-)window transformer block on a ``(B, H, W, C)`` map."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, x: Tensor, layout: WindowLayout, shift_mask: Tensor | None, masked: Tensor | None = None
    ) -> Tensor:
        """``x``: ``(B, H, W, C)``; ``layout``: :func:`window_layout` of this block's shift; ``shift_mask`` for odd
        blocks with ``masked`` its :func:`masked_windows` (computed when not given)."""
        b, h, w, c = x.shape
        y = F.pad(self.norm1(x).view(b, h * w, c), (0, 0, 0, 1))  # zero row = padding after LN1
        windows = y.index_select(1, layout.gather).view(b, layout.num_windows, -1, c)
        attended = self.attn.attend(windows, shift_mask if self.shift else None, masked).view(b, -1, c)
        # the projection is per token: applied after scattering back, it skips the padding tokens and takes the
        # residual sum in the same pass
        x = linear(self.attn.proj, attended.index_select(1, layout.scatter), residual=x.reshape(b, h * w, c))
        x = x.view(b, h, w, c)
        return self.mlp(self.norm2(x), residual=x)


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat -> LayerNorm(4C) -> Linear(4C, 2C); ``(B, H, W, C)`` -> ``(B, ceil(H/2), ceil(W/2), 2C)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        _, h, w, _ = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return linear(self.reduction, self.norm(x))


class SwinStage(nn.Module):
    def __init__(
        self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float, downsample: bool
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift = window_size // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift, mlp_ratio) for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None
        self._cache: OrderedDict[tuple[int, int, str], tuple[WindowLayout, WindowLayout, Tensor, Tensor]] = OrderedDict()
        self._cache_lock = Lock()

    def windows_for(
        self, height: int, width: int, device: torch.device
    ) -> tuple[WindowLayout, WindowLayout, Tensor, Tensor]:
        """Cached (plain layout, shifted layout, :func:`shift_window_mask`, its :func:`masked_windows`) for an
        unpadded map (last 8 sizes)."""
        key = (height, width, str(device))
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
                return entry
        ws = self.window_size
        plain, shifted = (window_layout(height, width, ws, shift) for shift in (0, self.shift))
        hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
        mask = shift_window_mask(hp, wp, ws, self.shift)
        entry = (
            WindowLayout(plain.gather.to(device), plain.scatter.to(device), plain.num_windows),
            WindowLayout(shifted.gather.to(device), shifted.scatter.to(device), shifted.num_windows),
            mask.to(device),
            masked_windows(mask).to(device),
        )
        with self._cache_lock:
            self._cache[key] = entry
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return entry

    def forward(self, x: Tensor) -> Tensor:
        plain, shifted, mask, masked = self.windows_for(x.shape[1], x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, shifted if block.shift else plain, mask, masked)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, ceil(H/p), ceil(W/p), embed_dim)`` (channels last)."""
        p = self.patch_size
        h, w = x.shape[-2:]
        if h % p or w % p:
            x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinBackbone(nn.Module):
    """Swin Transformer returning stages 1..3 (0-based) through ``norm1..norm3``.

    Args:
        embed_dim: channels after patch embedding (128 for Swin-B); stage ``i`` has ``embed_dim * 2**i``.
        depths: blocks per stage, ``(2, 2, 18, 2)`` for Swin-B.
        num_heads: attention heads per stage, ``(4, 8, 16, 32)`` for Swin-B.
        window_size: attention window side (7).
        mlp_ratio: MLP hidden width / channels (4.0).
        patch_size: patch embedding stride (4).

    ``forward(x)``: ``x`` is a ``(B, 3, H, W)`` float32 normalised batch of any size. Returns
    ``[S1, S2, S3]`` as ``(B, C, h, w)`` maps with strides 8/16/32 and ``out_channels``
    ``(2e, 4e, 8e)`` channels (256, 512, 1024 for Swin-B).
    """

    strides: tuple[int, int, int] = (8, 16, 32)

    def __init__(
        self,
        *,
        embed_dim: int = 128,
        depths: tuple[int, int, int, int] = (2, 2, 18, 2),
        num_heads: tuple[int, int, int, int] = (4, 8, 16, 32),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        patch_size: int = 4,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise InputError(f"depths and num_heads need 4 stages each, got {depths!r} and {num_heads!r}")
        if window_size < 2:
            raise InputError(f"window_size must be >= 2, got {window_size!r}")
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.layers = nn.ModuleList(
            SwinStage(embed_dim * 2**i, depths[i], num_heads[i], window_size, mlp_ratio, downsample=i < 3)
            for i in range(4)
        )
        dims = [embed_dim * 2**i for i in range(4)]
        self.norm1 = nn.LayerNorm(dims[1])
        self.norm2 = nn.LayerNorm(dims[2])
        self.norm3 = nn.LayerNorm(dims[3])
        self.out_channels: tuple[int, int, int] = (dims[1], dims[2], dims[3])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.patch_embed(x)
        outputs = []
        for index, stage in enumerate(self.layers):
            x = stage(x)
            if index > 0:
                norm = getattr(self, f"norm{index}")
                outputs.append(norm(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = stage.downsample(x)
        return outputs
