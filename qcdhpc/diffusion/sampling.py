"""Samplers for score-based models (Song et al., ICLR 2021), after score_sde's `sampling.py`.

All integrate from t = T down to t = eps (sde.eps_sample by default) on a uniform time grid of
`steps` steps, start from the prior N(0, prior_std² I), run under torch.no_grad, and return a CPU
tensor of shape (n, *shape).  `score_fn(x, t)` takes x (B, ...) and t (B,).

- "em":  Euler–Maruyama on the reverse SDE  dx = [f − g² ∇log p_t] dt + g dW̄.
- "pc":  predictor–corrector (Song et al. 2021, Alg. 4 VE / Alg. 5 VP): per step `n_corrector`
         Langevin corrector steps with signal-to-noise ratio `snr`, then one EM predictor step.
- "ode": probability-flow ODE dx/dt = f − ½ g² ∇log p_t, deterministic given the prior draw;
         fixed-step Heun (2nd order, EDM Alg. 1) with the state in float64, or method="rk45":
         scipy.integrate.solve_ivp adaptive RK45 (rtol = atol = 1e-5 as in score_sde).

`denoise=True` ends with Tweedie's formula E[x_0|x_eps] = (x + s² ∇log p)/α (Efron 2011),
which removes the residual noise s(eps)² that would otherwise inflate the sample variance.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .sde import _bcast


TIME_GRIDS = ("t", "log-s")


def _time_grid(sde, steps, eps, device, time_grid="t"):
    """steps + 1 times from T down to eps: uniform in t ("t", score_sde's), or uniform in ln(s/α)
    ("log-s": every step shrinks the noise level by the same factor, EDM-like; with VE σ = 25 and 300
    steps from t = 1 to 0.0025, "t" takes its last step from s = 0.076 to 0.05 and only ~10 steps
    below s = 0.2, where the complex-Langevin y-marginal (|y| < 0.29) is resolved)."""
    if time_grid == "t":
        return torch.linspace(sde.T, eps, steps + 1, device=device, dtype=torch.float64)
    if time_grid != "log-s":
        raise ValueError(f"unknown time grid {time_grid!r}; choose t or log-s")
    ends = torch.tensor([sde.T, eps], dtype=torch.float64)
    alpha, std = sde.marginal_coeffs(ends)
    rel = torch.exp(torch.linspace(float(torch.log(std[0] / alpha[0])), float(torch.log(std[1] / alpha[1])),
                                   steps + 1, dtype=torch.float64))
    ts = sde.t_of_rel_std(rel)
    ts[0], ts[-1] = sde.T, eps
    return ts.to(device)


def _vec(t, B, dtype):
    return torch.full((B,), float(t), dtype=dtype, device=t.device)


def _denoise(sde, score_fn, x, t_end):
    t = _vec(t_end, x.shape[0], x.dtype)
    alpha, std = sde.marginal_coeffs(t)
    return (x + _bcast(std ** 2, x) * score_fn(x, t)) / _bcast(alpha, x)


def _em_step(rsde, x, t, dt, generator):
    drift, g = rsde.sde(x, t)
    x_mean = x + drift * dt
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x_mean + _bcast(g, x) * math.sqrt(-dt) * noise


def em_sampler(score_fn, sde, x, steps, eps, generator, time_grid="t", **_):
    rsde = sde.reverse(score_fn)
    ts = _time_grid(sde, steps, eps, x.device, time_grid)
    for i in range(steps):
        dt = float(ts[i + 1] - ts[i])  # negative: time runs backwards
        x = _em_step(rsde, x, _vec(ts[i], x.shape[0], x.dtype), dt, generator)
    return x


def langevin_corrector(score_fn, sde, x, t, generator, snr, n_corrector, steps):
    """Song et al. 2021 Alg. 4/5: step ε = 2 α (snr ||z|| / ||∇log p||)² with batch-mean norms."""
    alpha = sde.corrector_alpha(t, steps)
    for _ in range(n_corrector):
        grad = score_fn(x, t)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        grad_norm = torch.linalg.vector_norm(grad.reshape(x.shape[0], -1), dim=-1).mean()
        noise_norm = torch.linalg.vector_norm(noise.reshape(x.shape[0], -1), dim=-1).mean()
        step = 2 * alpha * (snr * noise_norm / grad_norm) ** 2
        x = x + _bcast(step, x) * grad + _bcast(torch.sqrt(2 * step), x) * noise
    return x


def pc_sampler(score_fn, sde, x, steps, eps, generator, snr=0.16, n_corrector=1, time_grid="t", **_):
    rsde = sde.reverse(score_fn)
    ts = _time_grid(sde, steps, eps, x.device, time_grid)
    for i in range(steps):
        t = _vec(ts[i], x.shape[0], x.dtype)
        x = langevin_corrector(score_fn, sde, x, t, generator, snr, n_corrector, steps)
        x = _em_step(rsde, x, t, float(ts[i + 1] - ts[i]), generator)
    return x


def ode_sampler(score_fn, sde, x, steps, eps, generator, method="heun", rtol=1e-5, atol=1e-5, time_grid="t", **_):
    model_dtype = x.dtype
    rsde = sde.reverse(lambda y, t: score_fn(y.to(model_dtype), t.to(model_dtype)).double(),
                       probability_flow=True)

    def f(y, t):
        return rsde.sde(y, _vec(t, y.shape[0], torch.float64))[0]

    y = x.double()
    if method == "heun":
        ts = _time_grid(sde, steps, eps, x.device, time_grid)
        for i in range(steps):
            dt = ts[i + 1] - ts[i]
            d0 = f(y, ts[i])
            y_pred = y + dt * d0
            y = y + 0.5 * dt * (d0 + f(y_pred, ts[i + 1]))  # Heun / trapezoidal corrector
        return y.to(model_dtype)
    if method == "rk45":
        from scipy.integrate import solve_ivp

        shape = y.shape

        def rhs(t, flat):
            yt = torch.from_numpy(flat).reshape(shape).to(x.device)
            return f(yt, torch.tensor(t, dtype=torch.float64, device=x.device)).cpu().numpy().ravel()

        sol = solve_ivp(rhs, (sde.T, eps), y.cpu().numpy().ravel(), rtol=rtol, atol=atol, method="RK45")
        if not sol.success:
            raise RuntimeError(f"probability-flow ODE integration failed: {sol.message}")
        return torch.from_numpy(sol.y[:, -1]).reshape(shape).to(device=x.device, dtype=model_dtype)
    raise ValueError(f"unknown ODE method {method!r}; choose heun or rk45")


SAMPLERS = {"em": em_sampler, "pc": pc_sampler, "ode": ode_sampler}


def iter_samples(score_fn, sde, n: int, shape, sampler: str = "em", steps: int = 500,
                 eps: float | None = None, batch_size: int | None = None, denoise: bool = True, seed: int = 0,
                 device="cpu", dtype=torch.float32, progress: bool = False, first_batch: int = 0, **kwargs):
    """Yield batches (CPU tensors (B, *shape)) of n samples in total with the named sampler
    ("em", "pc", "ode"); see `sample`.  Lets a caller write samples to disk with bounded memory.
    first_batch: skip the batches before it (a resumed run: batch b's draws depend on (seed, b) only)."""
    try:
        fn = SAMPLERS[sampler]
    except KeyError:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}") from None
    if steps < 1 or n < 1:
        raise ValueError(f"need n >= 1 and steps >= 1 (got n={n}, steps={steps})")
    eps = sde.eps_sample if eps is None else float(eps)
    batch_size = batch_size or n
    shape = tuple(shape)
    starts = range(first_batch * batch_size, n, batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc=f"sampling ({sampler}, {steps} steps)", unit="batch")
    for start in starts:
        b = start // batch_size
        with torch.no_grad():
            B = min(batch_size, n - start)
            gen = torch.Generator(device=device)
            gen.manual_seed(int(np.random.SeedSequence([seed, b]).generate_state(1)[0]))
            x = sde.prior_sampling((B, *shape), generator=gen, device=device, dtype=dtype)
            x = fn(score_fn, sde, x, steps, eps, gen, **kwargs)
            if denoise:
                x = _denoise(sde, score_fn, x, torch.tensor(eps, device=device))
        yield x.cpu()


def sample(score_fn, sde, n: int, shape, sampler: str = "em", steps: int = 500, **kwargs) -> torch.Tensor:
    """Draw n samples of per-sample `shape` with the named sampler ("em", "pc", "ode").

    kwargs: eps (end time, default sde.eps_sample), batch_size, denoise (Tweedie step, True), seed,
    device, dtype, progress, time_grid ("t" uniform in t, default; "log-s" uniform in ln(s/α): em, pc,
    ode-heun), and the sampler's own options (snr, n_corrector; method, rtol, atol).
    Batch b uses a torch.Generator seeded with SeedSequence([seed, b]), so results depend only on
    (seed, batch_size, steps, model), not on what ran before."""
    return torch.cat(list(iter_samples(score_fn, sde, n, shape, sampler, steps, **kwargs)))
