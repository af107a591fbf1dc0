"""Score networks.  A backbone F_θ(x_in, t) predicts −ε (the normalised noise); `ScoreModel` wraps it
with EDM-style preconditioning (Karras et al. 2022, Table 1) kept separate from the backbone:

    x_in = x_t / √(α(t)² σ_data² + s(t)²)     (c_in: unit-variance input at every t)
    score(x_t, t) = F_θ(x_in, t) / s(t)       (score_sde's `scale_by_sigma`: ∇log p_t(x_t|x_0) = −ε/s)

so the σ²-weighted denoising loss ||s·score + ε||² (losses.py) is an O(1) regression at every t.

Optionally (`baseline="gaussian"`) the score is the exact score of the Gaussian field with the
training data's two-point function plus the learned part (`GaussianScore`): the network then learns
only the connected higher-point (interaction) structure, and the two-point function — χ₂ is its
k = 0 value — is carried exactly by the baseline instead of by ~1/V of the loss.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class GaussianFourierEmbedding(nn.Module):
    """Random Fourier features [sin 2πWt, cos 2πWt], W ~ N(0, scale²) fixed (Tancik et al. 2020;
    score_sde `GaussianFourierProjection`).  t ∈ [0, 1]; scale 16 resolves the fast change of s(t)."""

    def __init__(self, dim: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, t):
        proj = 2 * math.pi * t[:, None] * self.W[None, :]
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def _groups(ch: int) -> int:
    return math.gcd(ch, 8)


def _conv(cin, cout, k=3, stride=1):
    # circular padding: the lattice is periodic, so every site sees the same neighbourhood (zero
    # padding, as in the seeds' notebook, would make the boundary special and break translations)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode="circular")


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + time embedding, GroupNorm → SiLU → conv, residual (DDPM/NCSN++)."""

    def __init__(self, cin, cout, temb_dim):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(cin), cin), _conv(cin, cout)
        self.temb = nn.Linear(temb_dim, cout)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(cout), cout), _conv(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """Small U-Net for (B, L0, L1) periodic lattice fields; predicts −ε with the input's shape.

    `depth` stride-2 down/up-samplings (circular convs, nearest-neighbour upsampling), channel
    multipliers `mults` per level, `n_res` residual blocks per level, skip connections by concat.
    Periodic translations commute with the network exactly for shifts that are multiples of
    2**depth (stride-2 sampling aliases odd shifts); training with random-roll augmentation makes
    the learned score (approximately) invariant under all shifts.
    """

    def __init__(self, channels: int = 32, depth: int = 2, mults=None, n_res: int = 1,
                 temb_dim: int | None = None, fourier_scale: float = 16.0):
        super().__init__()
        self.depth = int(depth)
        mults = list(mults) if mults is not None else [min(2 ** i, 4) for i in range(self.depth + 1)]
        if len(mults) != self.depth + 1:
            raise ValueError(f"mults needs depth+1 = {self.depth + 1} entries, got {mults}")
        temb_dim = temb_dim or 4 * channels
        self.embed = nn.Sequential(GaussianFourierEmbedding(temb_dim, fourier_scale),
                                   nn.Linear(temb_dim, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        chs = [channels * m for m in mults]
        self.conv_in = _conv(1, chs[0])
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skip_chs, cur = [], chs[0]
        for lvl in range(self.depth + 1):
            blocks = nn.ModuleList()
            for _ in range(n_res):
                blocks.append(ResBlock(cur, chs[lvl], temb_dim))
                cur = chs[lvl]
            self.down.append(blocks)
            skip_chs.append(cur)
            if lvl < self.depth:
                self.downsample.append(_conv(cur, cur, stride=2))
        self.mid = ResBlock(cur, cur, temb_dim)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for lvl in reversed(range(self.depth + 1)):
            blocks = nn.ModuleList()
            for i in range(n_res):
                blocks.append(ResBlock(cur + (skip_chs[lvl] if i == 0 else 0), chs[lvl], temb_dim))
                cur = chs[lvl]
            self.up.append(blocks)
            if lvl > 0:
                self.upsample.append(_conv(cur, cur))
        self.norm_out = nn.GroupNorm(_groups(cur), cur)
        self.conv_out = _conv(cur, 1)
        nn.init.zeros_(self.conv_out.weight)  # start as the zero predictor (the loss then starts at 1)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):
        if x.dim() != 3:
            raise ValueError(f"UNet expects fields of shape (B, L0, L1), got {tuple(x.shape)}")
        m = 2 ** self.depth
        if x.shape[1] % m or x.shape[2] % m:
            raise ValueError(f"lattice {tuple(x.shape[1:])} is not divisible by 2**depth = {m}; "
                             f"use a smaller depth or a lattice extent that is a multiple of {m}")
        temb = self.embed(t)
        h = self.conv_in(x[:, None])
        skips = []
        for lvl, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, temb)
            skips.append(h)
            if lvl < self.depth:
                h = self.downsample[lvl](h)
        h = self.mid(h, temb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, temb)
            if i < self.depth:
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))[:, 0]


class MLPScore(nn.Module):
    """MLP backbone for (B,) or (B, D) toy data: [x, emb(t)] → hidden×n_layers (SiLU) → −ε."""

    def __init__(self, dim: int = 1, hidden: int = 128, n_layers: int = 3, temb_dim: int = 32,
                 fourier_scale: float = 16.0):
        super().__init__()
        self.dim = int(dim)
        self.embed = GaussianFourierEmbedding(temb_dim, fourier_scale)
        layers, cin = [], self.dim + temb_dim
        for _ in range(n_layers):
            layers += [nn.Linear(cin, hidden), nn.SiLU()]
            cin = hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, self.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, t):
        shape = x.shape
        h = torch.cat([x.reshape(shape[0], self.dim), self.embed(t)], dim=-1)
        return self.out(self.body(h)).reshape(shape)


class GaussianScore(nn.Module):
    """Exact score of a stationary Gaussian field on a periodic (L0, L1) lattice, perturbed by the SDE.

    For data with mean μ and covariance C(x − y), whose Fourier transform is the power spectrum
    P(k) = ⟨|φ̃(k) − μ̃(k)|²⟩ / V (φ̃ = Σ_x e^{−ik·x} φ(x), so P(0) = χ₂ for μ = 0), the perturbed
    field x_t = α x_0 + s ε is Gaussian with covariance α²C + s² I, diagonal in k:

        ∇ log p_t(x) = −F⁻¹[ F(x − αμ)(k) / (α² P(k) + s²) ]          (the Wiener filter's score)

    This is the free-field (Gaussian) part of any ensemble's score; for a free field it is exact.
    `fit` estimates μ and P(k) from data (float64)."""

    def __init__(self, site_shape):
        super().__init__()
        if len(site_shape) != 2:
            raise ValueError(f"the Gaussian baseline needs 2D lattice fields, got site shape {tuple(site_shape)}")
        L0, L1 = (int(s) for s in site_shape)
        self.register_buffer("power", torch.ones(L0, L1 // 2 + 1, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def fit(self, data: torch.Tensor, zero_mean: bool = False, chunk: int = 1024) -> "GaussianScore":
        """μ (0 if `zero_mean`, e.g. for Z₂-symmetrised training) and P(k) from (n, L0, L1) data."""
        n, L0, L1 = data.shape
        if (L0, L1 // 2 + 1) != tuple(self.power.shape):
            raise ValueError(f"data lattice {(L0, L1)} does not match the baseline's {tuple(self.power.shape)}")
        mu = 0.0 if zero_mean else float(data.double().mean())
        acc = torch.zeros(L0, L1 // 2 + 1, dtype=torch.float64)
        for start in range(0, n, chunk):
            ft = torch.fft.rfft2(data[start:start + chunk].double().cpu() - mu)
            acc += (ft.real ** 2 + ft.imag ** 2).sum(0)
        self.power.copy_(acc / (n * L0 * L1))
        self.mean.fill_(mu)
        return self

    def forward(self, x, alpha, std):
        """x (B, L0, L1); alpha, std (B,) of the perturbation kernel at the batch's times."""
        a, s = alpha.reshape(-1, 1, 1).to(x.dtype), std.reshape(-1, 1, 1).to(x.dtype)
        ft = torch.fft.rfft2(x - a * self.mean.to(x.dtype))
        return -torch.fft.irfft2(ft / (a ** 2 * self.power.to(x.dtype) + s ** 2), s=x.shape[-2:])


class ScoreModel(nn.Module):
    """score(x_t, t) = backbone(c_in x_t, t) / s(t) [+ GaussianScore(x_t, t)], see the module
    docstring.  `sigma_data` is the RMS of the training data (stored with the model, so sampling uses
    the same c_in); `baseline` is None or a GaussianScore (its μ and P(k) are stored with the model)."""

    def __init__(self, backbone: nn.Module, sde, sigma_data: float = 1.0, baseline: nn.Module | None = None):
        super().__init__()
        self.backbone, self.sde, self.baseline = backbone, sde, baseline
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    def forward(self, x, t):
        alpha, std = self.sde.marginal_coeffs(t)
        shape = (-1,) + (1,) * (x.dim() - 1)
        c_in = torch.rsqrt(alpha ** 2 * self.sigma_data ** 2 + std ** 2).reshape(shape)
        score = self.backbone(x * c_in.to(x.dtype), t) / std.reshape(shape).to(x.dtype)
        if self.baseline is not None:
            score = score + self.baseline(x, alpha, std)
        return score


def build_backbone(kind: str, **kw) -> nn.Module:
    if kind == "unet":
        return UNet(**kw)
    if kind == "mlp":
        return MLPScore(**kw)
    raise ValueError(f"unknown network {kind!r}; choose unet or mlp")
