"""Score networks.  A backbone F_θ(x_in, t) predicts −ε (the normalised noise); `ScoreModel` wraps it
with EDM-style preconditioning (Karras et al. 2022, Table 1) kept separate from the backbone:

    x_in = x_t / √(α(t)² σ_data² + s(t)²)     (c_in: unit-variance input at every t)
    score(x_t, t) = F_θ(x_in, t) / s(t)       (score_sde's `scale_by_sigma`: ∇log p_t(x_t|x_0) = −ε/s)

so the σ²-weighted denoising loss ||s·score + ε||² (losses.py) is an O(1) regression at every t.

`precond="edm"` (the default of `qcdhpc train` for point data; off for lattice fields and old model
files) is EDM's full preconditioning (Karras et al. 2022, Table 1, with x̂ = x/α, ŝ = s/α): the
denoiser D(x̂; ŝ) = c_skip x̂ + c_out F_θ(c_in x, t), c_skip = σ_d²/(ŝ² + σ_d²), c_out = ŝσ_d/√(ŝ² + σ_d²),
score = (αD − x)/s², i.e. with c_in = 1/√(α²σ_d² + s²) as above

    score(x_t, t) = −c_in² x_t + α σ_d c_in F_θ(c_in x_t, t) / s(t),

the exact score of N(0, σ_d²) (the skip part) plus the network, which is conditioned on
c_noise = (ln(s/α) − ln ŝ_min)/(ln ŝ_max − ln ŝ_min) ∈ [0, 1] instead of t (`noise_condition`).  With "eps" the network's output F/s
must itself carry the −x/(s² + σ_d²) that dominates at large s, and the small, data-dependent
remainder is a relative O(σ_d²/s²) of what it regresses: a 2% error of the score's magnitude at
s ≳ 2 made the complex-Langevin samples ≈ 2–3% too wide (docs/diffusion.md).  With "edm" the
network's contribution to the score is suppressed by ασ_d c_in ≈ σ_d/s there and the DSM loss gets
EDM's weight λ = 1/c_out² (`loss_weight`), so F_θ is an O(1) unit-variance regression at every s.

Optionally (`baseline="gaussian"`) the score is the exact score of the Gaussian field with the
training data's two-point function plus the learned part (`GaussianScore`): the network then learns
only the connected higher-point (interaction) structure, and the two-point function — χ₂ is its
k = 0 value — is carried exactly by the baseline instead of by ~1/V of the loss.  `baseline=
"gaussian+m"` also gives the k = 0 mode (the magnetisation) the data's own, possibly bimodal,
distribution: the broken phase's two vacua.
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

    `global_context`: a zero-mode path.  An MLP reads the lattice averages of the input (the noisy
    magnetisation) and of the bottleneck features, with the time embedding, and returns (i) a shift
    of the time embedding of the middle and up-path blocks (global pooling, cf. squeeze-and-excitation,
    Hu et al. 2018) and (ii) a uniform term added to the output, i.e. the network's k = 0 mode
    directly.  Why: convolutions see a few sites, and every GroupNorm removes per-sample averages, so
    a plain U-Net can hardly emit a sample-dependent uniform output.  But the order parameter
    M is a sum over all V sites, and in the broken phase its score at noise s ~ √V⟨|M|⟩ decides which
    vacuum a sample falls into: the score along k = 0 is ≈ (√V⟨|M|⟩ tanh(√V⟨|M|⟩ a/s²) − a)/s² for the
    mode amplitude a (docs/diffusion.md).
    """

    def __init__(self, channels: int = 32, depth: int = 2, mults=None, n_res: int = 1,
                 temb_dim: int | None = None, fourier_scale: float = 16.0, global_context: bool = False):
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
        self.global_mlp = None
        if global_context:
            self.global_mlp = nn.Sequential(nn.Linear(cur + 1 + temb_dim, temb_dim), nn.SiLU(),
                                            nn.Linear(temb_dim, temb_dim), nn.SiLU(),
                                            nn.Linear(temb_dim, temb_dim + 1))
            nn.init.zeros_(self.global_mlp[-1].weight)  # starts as the plain U-Net
            nn.init.zeros_(self.global_mlp[-1].bias)
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
        uniform = None
        if self.global_mlp is not None:
            g = self.global_mlp(torch.cat([h.mean(dim=(2, 3)), x.mean(dim=(1, 2))[:, None], temb], dim=1))
            temb, uniform = temb + g[:, :-1], g[:, -1]
        h = self.mid(h, temb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, temb)
            if i < self.depth:
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h)))[:, 0]
        return out if uniform is None else out + uniform[:, None, None]


def time_mlp(dim: int, hidden: int, n_layers: int, temb_dim: int, fourier_scale: float):
    """(embed, body, out) of the point-data networks (MLPScore, energy.EnergyMLP): [x, emb(t)] →
    hidden×n_layers (SiLU, smooth: the energy model differentiates it twice) → R^dim."""
    embed = GaussianFourierEmbedding(temb_dim, fourier_scale)
    layers, cin = [], dim + temb_dim
    for _ in range(n_layers):
        layers += [nn.Linear(cin, hidden), nn.SiLU()]
        cin = hidden
    return embed, nn.Sequential(*layers), nn.Linear(hidden, dim)


class MLPScore(nn.Module):
    """MLP backbone for (B,) or (B, D) toy data: [x, emb(t)] → hidden×n_layers (SiLU) → −ε."""

    def __init__(self, dim: int = 1, hidden: int = 128, n_layers: int = 3, temb_dim: int = 32,
                 fourier_scale: float = 16.0):
        super().__init__()
        self.dim = int(dim)
        self.embed, self.body, self.out = time_mlp(self.dim, hidden, n_layers, temb_dim, fourier_scale)
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
    `fit` estimates μ and P(k) from data (float64).

    `zero_mode=True` (baseline "gaussian+m"): the k = 0 mode — the amplitude A = √V (M − μ) of the
    magnetisation — gets the data's own distribution instead of a Gaussian: a kernel density with
    K centres c_j (quantiles of the data's A) and bandwidth h, which the SDE perturbs exactly into
    the mixture p_t(A) = (1/K) Σ_j N(A; α c_j, α²h² + s²), so along k = 0

        ∂_A log p_t(A) = Σ_j w_j(A) (α c_j − A) / (α²h² + s²),   w_j ∝ exp(−(A − α c_j)²/(2(α²h² + s²))).

    In the broken phase A is bimodal (±√V⟨|M|⟩ with a width of O(1)): a Gaussian there puts the
    samples' M anywhere between the vacua, and a network has to learn the vacuum position to a
    relative precision ~1/√(V P(0)) from 1/V of the loss, which it does not (docs/diffusion.md).
    The centres are rescaled so that ⟨c²⟩ + h² = ⟨A²⟩ exactly: χ₂ is carried exactly, as by the
    Gaussian baseline.  Modes k ≠ 0 stay Gaussian; the network learns how they couple to M."""

    N_CENTRES = 512

    def __init__(self, site_shape, zero_mode: bool = False):
        super().__init__()
        if len(site_shape) != 2:
            raise ValueError(f"the Gaussian baseline needs 2D lattice fields, got site shape {tuple(site_shape)}")
        L0, L1 = (int(s) for s in site_shape)
        self.register_buffer("power", torch.ones(L0, L1 // 2 + 1, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros((), dtype=torch.float64))
        self.zero_mode = bool(zero_mode)
        if self.zero_mode:  # only then: files of the plain Gaussian baseline keep loading strictly
            self.register_buffer("m_centres", torch.zeros(self.N_CENTRES, dtype=torch.float64))
            self.register_buffer("m_bandwidth", torch.ones((), dtype=torch.float64))

    @torch.no_grad()
    def fit(self, data: torch.Tensor, zero_mean: bool = False, chunk: int = 1024) -> "GaussianScore":
        """μ (0 if `zero_mean`, e.g. for Z₂-symmetrised training) and P(k) from (n, L0, L1) data; with
        `zero_mode`, also the kernel density of A (symmetrised under A → −A if `zero_mean`)."""
        n, L0, L1 = data.shape
        if (L0, L1 // 2 + 1) != tuple(self.power.shape):
            raise ValueError(f"data lattice {(L0, L1)} does not match the baseline's {tuple(self.power.shape)}")
        mu = 0.0 if zero_mean else float(data.double().mean())
        acc = torch.zeros(L0, L1 // 2 + 1, dtype=torch.float64)
        amps = []
        for start in range(0, n, chunk):
            ft = torch.fft.rfft2(data[start:start + chunk].double().cpu() - mu)
            acc += (ft.real ** 2 + ft.imag ** 2).sum(0)
            amps.append(ft[:, 0, 0].real / math.sqrt(L0 * L1))
        self.power.copy_(acc / (n * L0 * L1))
        self.mean.fill_(mu)
        if self.zero_mode:
            self.m_centres.copy_(_kde_centres(torch.cat(amps), self.N_CENTRES, symmetric=zero_mean, out=self.m_bandwidth))
        return self

    def _zero_mode_score(self, A, a, s):
        """∂_A log p_t(A) of the kernel-density zero mode; A, a, s (B,) float64."""
        var = (a * self.m_bandwidth) ** 2 + s ** 2
        mu = a[:, None] * self.m_centres[None, :]
        w = torch.softmax(-(A[:, None] - mu) ** 2 / (2 * var[:, None]), dim=1)
        return ((w * mu).sum(1) - A) / var

    def forward(self, x, alpha, std):
        """x (B, L0, L1); alpha, std (B,) of the perturbation kernel at the batch's times."""
        a, s = alpha.reshape(-1, 1, 1).to(x.dtype), std.reshape(-1, 1, 1).to(x.dtype)
        ft = torch.fft.rfft2(x - a * self.mean.to(x.dtype))
        out = ft / (a ** 2 * self.power.to(x.dtype) + s ** 2)
        if self.zero_mode:
            sqrt_v = math.sqrt(x.shape[-2] * x.shape[-1])
            A = ft[:, 0, 0].real.double() / sqrt_v
            d = self._zero_mode_score(A, alpha.reshape(-1).double(), std.reshape(-1).double())
            out = out.clone()
            out[:, 0, 0] = (-sqrt_v * d).to(out.dtype)  # F(score)(0) = √V ∂_A log p
        return -torch.fft.irfft2(out, s=x.shape[-2:])


class PointGaussianScore(nn.Module):
    """Exact score of the Gaussian with the training data's mean μ and covariance C, for flat point
    data (B, D) (e.g. the (x, y) of complex-Langevin walkers), perturbed by the SDE:

        Σ_t = α² C + s² I,   ∇ log p_t(x) = −Σ_t⁻¹ (x − α μ),   energy ½ (x − αμ)ᵀ Σ_t⁻¹ (x − αμ)

    (C = U diag(λ) Uᵀ is stored, Σ_t⁻¹ = U diag(1/(α²λ + s²)) Uᵀ).  As a baseline the network learns
    only the non-Gaussian rest: the second moments are then carried exactly and the network's few-%
    errors apply to the small remainder (docs/diffusion.md, "SBM/EBM for complex Langevin")."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(int(dim), dtype=torch.float64))
        self.register_buffer("evals", torch.ones(int(dim), dtype=torch.float64))
        self.register_buffer("evecs", torch.eye(int(dim), dtype=torch.float64))

    @torch.no_grad()
    def fit(self, data: torch.Tensor, zero_mean: bool = False) -> "PointGaussianScore":
        x = data.reshape(data.shape[0], -1).double().cpu()
        mu = torch.zeros(x.shape[1], dtype=torch.float64) if zero_mean else x.mean(0)
        d = x - mu
        cov = d.T @ d / max(1, x.shape[0] - (0 if zero_mean else 1))
        evals, evecs = torch.linalg.eigh(cov)
        self.mean.copy_(mu)
        self.evals.copy_(evals.clamp_min(0))
        self.evecs.copy_(evecs)
        return self

    def _whiten(self, x, alpha, std):
        a, s = alpha.reshape(-1, 1).to(x.dtype), std.reshape(-1, 1).to(x.dtype)
        U = self.evecs.to(x.dtype)
        d = (x.reshape(x.shape[0], -1) - a * self.mean.to(x.dtype)) @ U  # eigen-coordinates
        return d, 1.0 / (a ** 2 * self.evals.to(x.dtype) + s ** 2), U

    def forward(self, x, alpha, std):
        d, inv, U = self._whiten(x, alpha, std)
        return (-(d * inv) @ U.T).reshape(x.shape)

    def energy(self, x, alpha, std):
        d, inv, _ = self._whiten(x, alpha, std)
        return 0.5 * (d * d * inv).sum(-1)


def _kde_centres(amps: torch.Tensor, k: int, symmetric: bool, out: torch.Tensor) -> torch.Tensor:
    """K kernel centres (quantiles of `amps`, mirrored if `symmetric`) and the bandwidth (into `out`).

    Bandwidth: Silverman's rule 0.9 min(sd, IQR/1.34) n^(−1/5) on |A| when symmetric — folding
    makes the broken phase's two peaks one, so the width of a peak, not the distance between the
    vacua, sets h — and on A otherwise.  Centres are then scaled so that ⟨c²⟩ + h² = ⟨A²⟩ (with μ
    subtracted, the second moment is what χ₂ measures)."""
    a = amps.double()
    m2 = float((a ** 2).mean())
    x = a.abs() if symmetric else a
    q = torch.quantile(x, torch.tensor([0.25, 0.75], dtype=torch.float64))
    spread = min(float(x.std()) if x.numel() > 1 else 0.0, float(q[1] - q[0]) / 1.34)
    h = 0.9 * spread * x.numel() ** -0.2
    half = k // 2 if symmetric else k
    c = torch.quantile(x, (torch.arange(half, dtype=torch.float64) + 0.5) / half)
    if symmetric:
        c = torch.cat([-c.flip(0), c])
    cm2 = float((c ** 2).mean())
    if not (m2 > 0 and cm2 > 0) or h * h >= m2:  # degenerate (constant) data: no smoothing
        h = 0.0
    if cm2 > 0:
        c = c * math.sqrt((m2 - h * h) / cm2)
    out.fill_(max(h, 1e-12))
    return c


class ScoreModel(nn.Module):
    """score(x_t, t) = backbone(c_in x_t, t) / s(t) [+ GaussianScore(x_t, t)], see the module
    docstring.  `sigma_data` is the RMS of the training data (stored with the model, so sampling uses
    the same c_in); `baseline` is None or a GaussianScore (its μ and P(k) are stored with the model).

    `odd=True` makes the score exactly Z₂-equivariant, score(−x, t) = −score(x, t), by averaging the
    backbone over the group (frame averaging, Puny et al. 2022): F(x) → ½[F(x) − F(−x)], one forward
    pass on the batch [x, −x].  The φ⁴ action is even in φ, so its score is odd; with the symmetric
    prior the reverse SDE then samples an exactly Z₂-symmetric law (⟨M⟩ = 0 in distribution, not
    only approximately as with φ → −φ augmentation, which leaves the network free to learn a small
    even part: in the broken phase that part picks one vacuum).  Costs twice the network evaluations."""

    def __init__(self, backbone: nn.Module, sde, sigma_data: float = 1.0, baseline: nn.Module | None = None,
                 odd: bool = False, precond: str = "eps"):
        super().__init__()
        self.backbone, self.sde, self.baseline, self.odd = backbone, sde, baseline, bool(odd)
        self.precond = check_precond(precond, baseline)
        self.register_buffer("sigma_data", torch.tensor(float(sigma_data)))

    def forward(self, x, t):
        alpha, std = self.sde.marginal_coeffs(t)
        shape = (-1,) + (1,) * (x.dim() - 1)
        c_in = torch.rsqrt(alpha ** 2 * self.sigma_data ** 2 + std ** 2).reshape(shape)
        x_in = x * c_in.to(x.dtype)
        tc = noise_condition(self, t, alpha, std)
        if self.odd:
            f = self.backbone(torch.cat([x_in, -x_in]), torch.cat([tc, tc]))
            f = 0.5 * (f[: x.shape[0]] - f[x.shape[0]:])
        else:
            f = self.backbone(x_in, tc)
        score = f / std.reshape(shape).to(x.dtype)
        if self.precond == "edm":  # score = −c_in² x + α σ_d c_in F / s  (precond_coeffs)
            a = alpha.reshape(shape).to(x.dtype)
            score = score * (a * self.sigma_data * c_in).to(x.dtype) - x * (c_in ** 2).to(x.dtype)
        if self.baseline is not None:
            score = score + self.baseline(x, alpha, std)
        return score

    def loss_weight(self, t):
        """Per-sample weight of the residual ‖s·score + ε‖² in the DSM loss: 1 ("eps"), or EDM's
        λ = 1/c_out², i.e. (α²σ_d² + s²)/(α²σ_d²), which makes it ‖F_θ − F_target‖² ("edm")."""
        return precond_loss_weight(self, t)


PRECONDS = ("eps", "edm")


def check_precond(precond: str, baseline=None) -> str:
    if precond not in PRECONDS:
        raise ValueError(f"unknown preconditioning {precond!r}; choose {' or '.join(PRECONDS)}")
    if precond == "edm" and baseline is not None:
        raise ValueError("precond edm already carries a Gaussian prior part (c_skip); it does not take a "
                         "Gaussian baseline as well")
    return precond


def noise_condition(model, t, alpha, std):
    """What the backbone is conditioned on: t ("eps"), or for "edm" EDM's c_noise ∝ ln(s/α), mapped
    affinely onto [0, 1] between the noise levels of t = 1e-5 and t = T (τ = 0, 1), so that the
    backbone's Fourier embedding of [0, 1] spreads evenly over the decades of s.  (With t itself, VE
    σ = 25 puts s = 0.003 … 0.2 — the scales of the CL y-marginal, |y| < 0.29 — into t < 0.036,
    about one period of the embedding's typical frequency.)"""
    if model.precond != "edm":
        return t
    ends = torch.tensor([1e-5, model.sde.T], dtype=torch.float64)
    a_e, s_e = model.sde.marginal_coeffs(ends)
    lo, hi = (float(v) for v in torch.log(s_e / a_e))
    return ((torch.log(std / alpha) - lo) / (hi - lo)).to(t.dtype)


def precond_loss_weight(model, t):
    """(B,) DSM weights of a ScoreModel/EnergyScoreModel at times t (None for "eps": weight 1)."""
    if model.precond != "edm":
        return None
    alpha, std = model.sde.marginal_coeffs(t)
    a2 = alpha ** 2 * model.sigma_data ** 2
    return (a2 + std ** 2) / a2


def build_backbone(kind: str, **kw) -> nn.Module:
    if kind == "unet":
        return UNet(**kw)
    if kind == "mlp":
        return MLPScore(**kw)
    if kind == "energy":  # the EBM's v_θ (energy.py); model_io wraps it in EnergyScoreModel
        from .energy import EnergyMLP

        return EnergyMLP(**kw)
    raise ValueError(f"unknown network {kind!r}; choose unet, mlp or energy")
