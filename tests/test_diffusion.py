"""qcdhpc.diffusion: SDE kernels, loss, samplers with exact scores, U-Net symmetry, model files,
resume, CLI.  Small and CPU-only (the whole file runs in well under a minute)."""
import math

import h5py
import numpy as np
import pytest
import torch

from qcdhpc.diffusion.losses import dsm_loss, random_roll
from qcdhpc.diffusion.model_io import build_model, load_model, save_model
from qcdhpc.diffusion.networks import GaussianScore, UNet
from qcdhpc.diffusion.sampling import sample
from qcdhpc.diffusion.sde import VESDE, VPSDE, get_sde
from qcdhpc.diffusion.toy import cumulants, exact_cumulants, sample_double_gaussian
from qcdhpc.diffusion.train import TrainConfig, train


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead (and we share the CPU)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- SDEs

def test_marginal_prob_closed_forms():
    t = torch.tensor([1e-5, 0.1, 0.5, 1.0], dtype=torch.float64)
    x0 = torch.full((4,), 0.7, dtype=torch.float64)
    mean, std = VESDE(sigma=25.0).marginal_prob(x0, t)
    # the seeds' p_ξ(φ_ξ|φ_0) = N(φ_0, (σ^{2ξ} − 1)/(2 log σ))
    torch.testing.assert_close(std ** 2, (25.0 ** (2 * t) - 1) / (2 * math.log(25.0)))
    torch.testing.assert_close(mean, x0)
    mean, std = VPSDE(0.1, 20.0).marginal_prob(x0, t)
    B = 0.1 * t + 0.5 * t ** 2 * 19.9
    torch.testing.assert_close(mean, torch.exp(-0.5 * B) * x0)
    torch.testing.assert_close(std ** 2, 1 - torch.exp(-B))
    # Song's σ_min(σ_max/σ_min)^t form as a special case
    ve = VESDE.from_sigma_range(0.01, 50.0)
    torch.testing.assert_close(ve.marginal_coeffs(t)[1] ** 2, 0.01 ** 2 * ((5000.0) ** (2 * t) - 1))
    with pytest.raises(ValueError, match="unknown SDE"):
        get_sde("subvp")


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_marginal_prob_matches_forward_simulation(name):
    """Euler–Maruyama of dx = f dt + g dW from a fixed x0 reproduces the kernel's mean and variance."""
    sde = get_sde(name)
    g = torch.Generator().manual_seed(1)
    n, steps, t_end, x0 = 20000, 400, 0.6, 1.5
    x = torch.full((n,), x0, dtype=torch.float64)
    dt = t_end / steps
    for i in range(steps):
        t = torch.full((n,), (i + 0.5) * dt, dtype=torch.float64)  # midpoint g: O(dt²) variance error
        f, gt = sde.sde(x, t)
        x = x + f * dt + gt * math.sqrt(dt) * torch.randn(n, generator=g, dtype=torch.float64)
    mean, std = sde.marginal_prob(torch.tensor([x0], dtype=torch.float64),
                                  torch.tensor([t_end], dtype=torch.float64))
    var = float(std) ** 2
    assert abs(float(x.mean()) - float(mean)) < 5 * math.sqrt(var / n) + 0.01 * abs(float(mean))
    assert abs(float(x.var()) / var - 1) < 5 * math.sqrt(2 / n) + 0.01


# ---------------------------------------------------------------- samplers with the exact score

@pytest.mark.parametrize("name", ["ve", "vp"])
@pytest.mark.parametrize("sampler,kw", [("em", {}), ("pc", {"snr": 0.16}), ("ode", {}),
                                        ("ode", {"method": "rk45"})])
def test_samplers_with_exact_gaussian_score(name, sampler, kw):
    """Data N(m, s²) ⇒ p_t = N(α m, α² s² + σ_t²) and ∇log p_t = −(x − α m)/(α² s² + σ_t²) exactly."""
    m, s, n = 0.3, 0.7, 20000
    sde = get_sde(name)

    def score(x, t):
        a, sd = (c.to(x.dtype) for c in sde.marginal_coeffs(t))
        return -(x - a * m) / (a ** 2 * s ** 2 + sd ** 2)

    x = sample(score, sde, n, (), sampler, steps=200, seed=5, **kw).double()
    exp_mean = m
    if sampler == "ode":
        # the flow is deterministic, so the prior's mismatch with p_T (mean 0 instead of α_T m, std
        # prior_std instead of √(α_T² s² + σ_T²)) maps to x_0 exactly: x_0 − m = (x_T − α_T m)·s/√var_T
        a, sd = (float(c) for c in sde.marginal_coeffs(torch.tensor([sde.T], dtype=torch.float64)))
        var_T = a ** 2 * s ** 2 + sd ** 2
        exp_mean = m - a * m * s / math.sqrt(var_T)
        s_exp = s * sde.prior_std() / math.sqrt(var_T)
    else:
        s_exp = s
    assert abs(float(x.mean()) - exp_mean) < 5 * s / math.sqrt(n)
    assert abs(float(x.var()) / s_exp ** 2 - 1) < 5 * math.sqrt(2 / n) + 0.01  # + O(1/steps) bias


def test_sampler_registry_errors():
    sde = get_sde("ve")
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(lambda x, t: -x, sde, 4, (), "ddim", steps=2)


# ---------------------------------------------------------------- loss and training

def test_loss_decreases_on_tiny_set():
    torch.manual_seed(0)
    data = 0.5 + 0.3 * torch.randn(64, 8, 8)
    model, sde = build_model({"sde": "ve", "net": "unet", "channels": 8, "depth": 1, "n_res": 1}, (8, 8),
                             sigma_data=float(data.pow(2).mean().sqrt()))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def eval_loss():  # fixed noise: a deterministic estimate to compare before and after
        return float(dsm_loss(model, sde, data, generator=torch.Generator().manual_seed(123)))

    before = eval_loss()
    for _ in range(40):
        loss = dsm_loss(model, sde, data[torch.randint(0, 64, (16,), generator=g)], z2=False, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)


def test_zero_mode_weight_is_a_fourier_weighting():
    """L_w = mean over samples of (1/V²)[Σ_k |r̃(k)|² + (w − 1)|r̃(0)|²] (Parseval), r = s·score + ε."""
    torch.manual_seed(0)
    x0 = 1.0 + 0.3 * torch.randn(6, 8, 4, dtype=torch.float64)
    sde = get_sde("ve")

    def score(x, t):  # any fixed function: the identity is about the loss, not the model
        return -torch.tanh(x) - 0.1 * x.mean(dim=(1, 2), keepdim=True)

    def loss(w):
        return float(dsm_loss(score, sde, x0, generator=torch.Generator().manual_seed(5), zero_mode_weight=w))

    g = torch.Generator().manual_seed(5)  # replay the loss's draws: t, then ε
    t = sde.eps_train + (sde.T - sde.eps_train) * torch.rand(6, generator=g, dtype=torch.float64)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    mean, std = sde.marginal_prob(x0, t)
    r = score(mean + std * z, t) * std + z
    rk, V = torch.fft.fft2(r), 32
    for w in (1.0, 7.0, 32.0):
        expect = float(((rk.abs() ** 2).sum(dim=(1, 2)) + (w - 1) * rk[:, 0, 0].abs() ** 2).mean()) / V ** 2
        assert loss(w) == pytest.approx(expect, rel=1e-6)
    assert loss(32.0) > loss(1.0)


def test_trained_dm_reproduces_gaussian_variance(tmp_path):
    """A full train → save → load → sample round trip on 1-D N(0, 0.7²): variance within 5%."""
    data = np.random.default_rng(0).normal(0.0, 0.7, size=8192).astype(np.float32)
    cfg = TrainConfig(sde="ve", net="mlp", hidden=64, n_layers=2, epochs=32, batch=256, lr=3e-3, warmup=20,
                      ema_decay=0.99, checkpoint_every=100, device="cpu")
    train(data, cfg, tmp_path, progress=False)
    net, sde, _ = load_model(tmp_path / "model.pt")
    x = sample(net, sde, 20000, (), "em", steps=100, seed=1).double()
    assert abs(float(x.var()) / 0.49 - 1) < 0.05
    assert abs(float(x.mean())) < 0.05
    assert (tmp_path / "loss.png").stat().st_size > 0
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 32


def test_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(24, 4, 4)).astype(np.float32)
    base = dict(sde="vp", net="unet", channels=8, depth=1, batch=8, lr=1e-3, warmup=3, z2=True, translate=True,
                seed=3, device="cpu")
    train(data, TrainConfig(epochs=4, **base), tmp_path / "a", progress=False)
    train(data, TrainConfig(epochs=2, **base), tmp_path / "b", progress=False)
    with pytest.raises(FileExistsError):
        train(data, TrainConfig(epochs=4, **base), tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(data, TrainConfig(epochs=4, **{**base, "lr": 2e-3}), tmp_path / "b", resume=True, progress=False)
    train(data, TrainConfig(epochs=4, **base), tmp_path / "b", resume=True, progress=False)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ma = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["model"]
    mb = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert [r["loss"] for r in a["log"]] == [r["loss"] for r in b["log"]]
    assert len((tmp_path / "b" / "log.jsonl").read_text().splitlines()) == 4
    # other data of the same shape: refused too, unless the stale checkpoint may be set aside
    other = data[::-1].copy() * 1.5
    with pytest.raises(ValueError, match="data statistics"):
        train(other, TrainConfig(epochs=5, **base), tmp_path / "b", resume=True, progress=False)
    with pytest.warns(UserWarning, match="checkpoint.stale.pt"):
        train(other, TrainConfig(epochs=1, **{**base, "lr": 2e-3}), tmp_path / "b", resume=True,
              restart_stale=True, progress=False)
    assert (tmp_path / "b" / "checkpoint.stale.pt").exists()
    c = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert c["epoch"] == 1 and c["config"]["lr"] == 2e-3  # started over
    assert len((tmp_path / "b" / "log.jsonl").read_text().splitlines()) == 1


# ---------------------------------------------------------------- network and model files

def test_unet_commutes_with_periodic_translations():
    torch.manual_seed(0)
    net = UNet(channels=8, depth=2).double()
    for p in net.parameters():  # the output conv starts at zero: randomise so the test can fail
        torch.nn.init.normal_(p, std=0.2)
    x, t = torch.randn(2, 16, 12, dtype=torch.float64), torch.tensor([0.3, 0.8], dtype=torch.float64)
    y = net(x, t)
    for shift in [(4, 0), (0, 8), (12, 4)]:  # multiples of 2**depth: exact symmetry of the design
        torch.testing.assert_close(net(torch.roll(x, shift, (1, 2)), t), torch.roll(y, shift, (1, 2)))
    # the wrap-around is real: a zero-padded conv net would break this at the boundary
    zero_padded = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    rolled = zero_padded(torch.roll(x, (4, 0), (1, 2))[:, None])
    assert not torch.allclose(rolled, torch.roll(zero_padded(x[:, None]), (4, 0), (2, 3)))
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 10, 12, dtype=torch.float64), t[:1])


def test_unet_global_context():
    """The global path starts as a no-op (same output as the plain U-Net with the same weights), keeps
    translation equivariance, and reads the lattice averages of the input and the bottleneck features."""
    torch.manual_seed(1)
    x, t = torch.randn(2, 16, 16, dtype=torch.float64), torch.tensor([0.3, 0.7], dtype=torch.float64)
    torch.manual_seed(2)
    plain = UNet(channels=8, depth=1).double()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.2)
    glob = UNet(channels=8, depth=1, global_context=True).double()
    glob.load_state_dict(plain.state_dict(), strict=False)  # global MLP keeps its zero output layer
    torch.testing.assert_close(glob(x, t), plain(x, t))
    for p in glob.global_mlp.parameters():
        torch.nn.init.normal_(p, std=0.2)
    y = glob(x, t)
    assert not torch.allclose(y, plain(x, t))
    torch.testing.assert_close(glob(torch.roll(x, (2, 6), (1, 2)), t), torch.roll(y, (2, 6), (1, 2)))
    # the path's input: lattice averages (captured by hooks)
    seen = {}
    glob.global_mlp.register_forward_hook(lambda m, inp, out: seen.update(inp=inp[0]))
    glob.mid.register_forward_pre_hook(lambda m, inp: seen.update(h=inp[0]))
    glob(x, t)
    C = seen["h"].shape[1]
    torch.testing.assert_close(seen["inp"][:, :C], seen["h"].mean(dim=(2, 3)))
    torch.testing.assert_close(seen["inp"][:, C], x.mean(dim=(1, 2)))
    # its last output is a uniform shift of the output field: the network's k = 0 mode
    with torch.no_grad():
        glob.global_mlp[-1].bias[-1] += 0.5
    torch.testing.assert_close(glob(x, t), y + 0.5)
    # model files written before the option existed build the plain U-Net
    cfg = {"sde": "ve", "net": "unet", "channels": 8, "depth": 1, "n_res": 1}
    assert build_model(cfg, (8, 8))[0].backbone.global_mlp is None
    assert build_model({**cfg, "global_context": True}, (8, 8))[0].backbone.global_mlp is not None


def test_z2_equivariant_score_is_exactly_odd(tmp_path):
    """z2_equivariant: score(−x, t) = −score(x, t) to rounding for any weights (the backbone averaged
    over φ → −φ), with the gaussian+m baseline fitted Z₂-symmetrically; without the option a random
    network has an even part.  The option survives the model file; old files load without it."""
    L, n = 8, 64
    rng = np.random.default_rng(4)
    vac = np.where(rng.random(n) < 0.7, 1.0, -1.0)  # an unbalanced broken-phase-like set
    data = (vac[:, None, None] * 0.3 + 0.1 * rng.standard_normal((n, L, L))).astype(np.float32)
    cfg = TrainConfig(channels=8, depth=1, epochs=1, batch=32, global_context=True, baseline="gaussian+m",
                      z2_equivariant=True, device="cpu")
    train(data, cfg, tmp_path / "run", progress=False)
    net, sde, config = load_model(tmp_path / "run" / "model.pt")
    net = net.double()
    assert config["z2_equivariant"] and net.odd and float(net.baseline.mean) == 0.0
    for p in net.backbone.parameters():  # generic weights, so an even part would show
        torch.nn.init.normal_(p, std=0.2)
    x = torch.from_numpy(data[:4]).double() + torch.randn(4, L, L, dtype=torch.float64)
    t = torch.tensor([0.05, 0.3, 0.6, 0.95], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(-x, t), -net(x, t), rtol=1e-12, atol=1e-12)
        net.odd = False
        even = net(x, t) + net(-x, t)
    assert even.abs().max() > 1e-3
    blob = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    del blob["config"]["z2_equivariant"]
    torch.save(blob, tmp_path / "old.pt")
    assert not load_model(tmp_path / "old.pt")[0].odd


def test_random_roll_is_a_translation():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    y = random_roll(x, torch.Generator().manual_seed(0))
    for b in range(2):
        assert any(torch.equal(y[b], torch.roll(x[b], (i, j), (0, 1))) for i in range(3) for j in range(4))


def test_model_roundtrip_weights_only(tmp_path):
    cfg = {"sde": "vp", "sde_params": {"beta_min": 0.1, "beta_max": 20.0}, "net": "unet", "channels": 8,
           "depth": 1, "n_res": 1}
    model, _ = build_model(cfg, (8, 8), sigma_data=0.9)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_model(tmp_path / "m.pt", model, cfg, [10, 8, 8], {"rms": 0.9, "mean": 0.0, "std": 0.9, "n": 10},
               {"training_ensemble": {"kappa": 0.21, "lam": 0.022}})
    net, sde, config = load_model(tmp_path / "m.pt")
    assert isinstance(sde, VPSDE) and config["meta"]["training_ensemble"]["kappa"] == 0.21
    x, t = torch.randn(3, 8, 8), torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(net(x, t), model(x, t))
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a qcdhpc.diffusion"):
        load_model(tmp_path / "other.pt")
    torch.save({"format": "qcdhpc.diffusion", "x": np.zeros(2)}, tmp_path / "pickled.pt")  # numpy: refused
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "pickled.pt")


# ---------------------------------------------------------------- Gaussian (two-point) baseline

def _free_field_covariance(L0, L1, kappa):
    """Dense propagator C = K⁻¹ of S = Σ_x[−2κ Σ_μ φ(x)φ(x+μ) + φ(x)²] (λ = 0): K = 2·1 − 2κ·(hops)."""
    V = L0 * L1
    K = np.zeros((V, V))
    for x0 in range(L0):
        for x1 in range(L1):
            i = x0 * L1 + x1
            K[i, i] += 2.0
            for j in (((x0 + 1) % L0) * L1 + x1, x0 * L1 + (x1 + 1) % L1):
                K[i, j] -= 2 * kappa
                K[j, i] -= 2 * kappa
    return np.linalg.inv(K)


def _free_field_power(L0, L1, kappa):
    k0, k1 = 2 * np.pi * np.fft.fftfreq(L0), 2 * np.pi * np.fft.rfftfreq(L1)
    return 1.0 / (2 - 4 * kappa * (np.cos(k0)[:, None] + np.cos(k1)[None, :]))


@pytest.mark.parametrize("name", ["ve", "vp"])
def test_gaussian_score_is_the_dense_gaussian_score(name):
    # independent check of the Fourier-diagonal formula: −(α²C + s²)⁻¹ (x − αμ) with the dense C
    L0, L1, kappa, mu = 4, 6, 0.2, 0.3
    C = _free_field_covariance(L0, L1, kappa)
    g = GaussianScore((L0, L1))
    g.power.copy_(torch.from_numpy(_free_field_power(L0, L1, kappa)))
    g.mean.fill_(mu)
    sde = get_sde(name)
    t = torch.tensor([0.05, 0.4, 0.9], dtype=torch.float64)
    alpha, std = sde.marginal_coeffs(t)
    x = torch.randn(3, L0, L1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = g(x, alpha, std)
    for b in range(3):
        a, s = float(alpha[b]), float(std[b])
        want = -np.linalg.solve(a ** 2 * C + s ** 2 * np.eye(L0 * L1), x[b].numpy().ravel() - a * mu)
        np.testing.assert_allclose(got[b].numpy().ravel(), want, rtol=1e-10, atol=1e-12)


def test_gaussian_score_fit_recovers_the_propagator():
    L0, L1, kappa, n = 6, 8, 0.2, 20000
    C = _free_field_covariance(L0, L1, kappa)
    rng = np.random.default_rng(3)
    phi = 0.5 + rng.standard_normal((n, L0 * L1)) @ np.linalg.cholesky(C).T
    g = GaussianScore((L0, L1)).fit(torch.from_numpy(phi.reshape(n, L0, L1)))
    assert float(g.mean) == pytest.approx(0.5, abs=4 * np.sqrt(2.5 / (n * L0 * L1)) * 3)
    exact = _free_field_power(L0, L1, kappa)
    # each |φ̃(k)|²/V is exponential-like (χ²₂/2 or χ²₁): relative error ≤ √2/√n per mode
    np.testing.assert_allclose(g.power.numpy(), exact, rtol=5 * np.sqrt(2 / n))
    assert g.power[0, 0] == pytest.approx(1 / (2 - 8 * kappa), rel=5 * np.sqrt(2 / n))  # P(0) = χ₂
    with pytest.raises(ValueError, match="does not match"):
        g.fit(torch.zeros(4, L0, L1 + 2))
    with pytest.raises(ValueError, match="2D lattice"):
        GaussianScore((8,))


def test_baseline_only_model_samples_the_free_field():
    # the untrained network outputs 0 (zero-initialised last layer), so a model with the Gaussian
    # baseline fitted to exact free-field P(k) is the exact score: EM must give χ = 1/(2 − 8κ)
    L, kappa, n = 8, 0.2, 2000
    cfg = {"sde": "ve", "net": "unet", "channels": 8, "depth": 1, "n_res": 1, "baseline": "gaussian"}
    model, sde = build_model(cfg, (L, L), sigma_data=0.8)
    model.baseline.power.copy_(torch.from_numpy(_free_field_power(L, L, kappa)))
    model.eval()
    x = sample(model, sde, n, (L, L), "em", steps=200, batch_size=1000, seed=5)
    chi = L * L * x.double().mean((1, 2)) ** 2
    err = float(chi.std()) / math.sqrt(n)
    assert abs(float(chi.mean()) - 1 / (2 - 8 * kappa)) < 3 * err, (float(chi.mean()), err)


def test_train_with_gaussian_baseline_fits_and_roundtrips(tmp_path):
    L, kappa, n = 8, 0.2, 256
    C = _free_field_covariance(L, L, kappa)
    rng = np.random.default_rng(7)
    data = (rng.standard_normal((n, L * L)) @ np.linalg.cholesky(C).T).reshape(n, L, L).astype(np.float32)
    cfg = TrainConfig(channels=8, depth=1, epochs=1, batch=64, z2=True, baseline="gaussian", device="cpu")
    train(data, cfg, tmp_path / "run", progress=False)
    net, sde, config = load_model(tmp_path / "run" / "model.pt")
    assert config["baseline"] == "gaussian" and float(net.baseline.mean) == 0.0  # z2 ⇒ μ = 0
    want = GaussianScore((L, L)).fit(torch.from_numpy(data), zero_mean=True).power
    torch.testing.assert_close(net.baseline.power, want)
    # a file from before the option (no "baseline" key) still loads, without a baseline
    blob = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    del blob["config"]["baseline"]
    blob["model"] = {k: v for k, v in blob["model"].items() if not k.startswith("baseline.")}
    torch.save(blob, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt")[0].baseline is None
    with pytest.raises(ValueError, match="unknown score baseline"):
        build_model({**cfg.to_dict(), "baseline": "wiener"}, (L, L))


def test_zero_mode_baseline_score_is_exact():
    """gaussian+m: modes k ≠ 0 as the Gaussian baseline; along k = 0 the derivative of the perturbed
    kernel density log (1/K) Σ_j N(A; α c_j, α²h² + s²) (autograd), as a uniform field / √V."""
    torch.manual_seed(3)
    L0, L1 = 6, 8
    V = L0 * L1
    gauss, zm = GaussianScore((L0, L1)).double(), GaussianScore((L0, L1), zero_mode=True).double()
    power = 0.5 + torch.rand(L0, L1 // 2 + 1, dtype=torch.float64)
    for b in (gauss, zm):
        b.power.copy_(power)
        b.mean.fill_(0.3)
    zm.m_centres.copy_(5 * torch.randn(GaussianScore.N_CENTRES, dtype=torch.float64))
    zm.m_bandwidth.fill_(0.7)
    x = 2 * torch.randn(4, L0, L1, dtype=torch.float64)
    alpha = torch.tensor([1.0, 0.9, 0.5, 0.2], dtype=torch.float64)
    std = torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=torch.float64)
    out_g, out_z = gauss(x, alpha, std), zm(x, alpha, std)
    torch.testing.assert_close(out_z - out_z.mean((1, 2), keepdim=True), out_g - out_g.mean((1, 2), keepdim=True))
    A = ((x - alpha[:, None, None] * 0.3).sum((1, 2)) / math.sqrt(V)).requires_grad_(True)
    var = (alpha * 0.7) ** 2 + std ** 2
    logp = torch.logsumexp(-(A[:, None] - alpha[:, None] * zm.m_centres) ** 2 / (2 * var[:, None]), dim=1)
    (dlogp,) = torch.autograd.grad(logp.sum(), A)
    torch.testing.assert_close(out_z.mean((1, 2)), dlogp / math.sqrt(V))


def test_zero_mode_baseline_samples_a_bimodal_magnetisation(tmp_path):
    """Broken-phase-like data (φ = ±m₀ + white noise): the Gaussian baseline alone smears M over
    N(0, ⟨M²⟩) (U_L = 0), the gaussian+m baseline alone gives the data's ⟨|M|⟩ and U_L ≈ 2/3."""
    L, n, m0 = 8, 2000, 2.0
    g = torch.Generator().manual_seed(11)
    sign = torch.randint(0, 2, (n, 1, 1), generator=g) * 2 - 1
    data = (sign * m0 + 0.3 * torch.randn(n, L, L, generator=g)).float()
    cfg = {"sde": "ve", "sde_params": VESDE.from_sigma_range(0.01, 60.0).params(), "net": "unet", "channels": 8,
           "depth": 1, "n_res": 1}
    M_data = data.double().mean((1, 2))
    ul = lambda M: float(1 - (M ** 4).mean() / (3 * (M ** 2).mean() ** 2))  # noqa: E731
    result = {}
    for kind in ("gaussian", "gaussian+m"):
        model, sde = build_model({**cfg, "baseline": kind}, (L, L), sigma_data=float(data.pow(2).mean().sqrt()))
        model.baseline.fit(data, zero_mean=True)
        model.eval()
        M = sample(model, sde, 500, (L, L), "em", steps=200, batch_size=500, seed=2).double().mean((1, 2))
        result[kind] = (float(M.abs().mean()), ul(M))
    zm = model.baseline
    A = data.double().sum((1, 2)) / L
    assert float((zm.m_centres ** 2).mean() + zm.m_bandwidth ** 2) == pytest.approx(float((A ** 2).mean()), rel=1e-12)
    assert 0 < float(zm.m_bandwidth) < 0.3  # a peak's width, not the distance between the vacua
    se = float(M_data.abs().std()) / math.sqrt(500) + 0.3 / L / math.sqrt(500)
    assert abs(result["gaussian+m"][0] - float(M_data.abs().mean())) < 4 * se + 0.01, result
    assert result["gaussian+m"][1] == pytest.approx(ul(M_data), abs=0.01), result
    assert result["gaussian"][1] < 0.2 and result["gaussian"][0] < 0.9 * m0, result  # the failure it fixes
    save_model(tmp_path / "m.pt", model, {**cfg, "baseline": "gaussian+m"}, [n, L, L], {"rms": 2.0})
    net = load_model(tmp_path / "m.pt")[0]
    torch.testing.assert_close(net.baseline.m_centres, zm.m_centres)
    torch.testing.assert_close(net.baseline.m_bandwidth, zm.m_bandwidth)


# ---------------------------------------------------------------- toy cumulants

def test_double_gaussian_cumulants():
    assert exact_cumulants() == pytest.approx({"kappa2": 1.0625, "kappa4": -2.0, "kappa6": 16.0, "kappa8": -272.0})
    c = cumulants(sample_double_gaussian(200_000, seed=4), n_boot=30)
    for k, v in exact_cumulants().items():
        assert abs(c[k]["value"] - v) < 5 * c[k]["error"], (k, c[k], v)
    g = cumulants(np.random.default_rng(0).normal(size=200_000), n_boot=30)  # Gaussian: κ_{n>2} = 0
    assert abs(g["kappa4"]["value"]) < 5 * g["kappa4"]["error"]


# ---------------------------------------------------------------- CLI

def _cli(argv):
    import argparse

    from qcdhpc.cli import sample as cli_sample
    from qcdhpc.cli import train as cli_train

    parser = argparse.ArgumentParser(prog="qcdhpc")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_train.add_parser(sub)
    cli_sample.add_parser(sub)
    args = parser.parse_args(argv)
    args.argv = list(argv)
    return args.func(args, parser)


def _write_fields(path, configs, chain, traj, nchains, ntraj, attrs):
    """A `fields` container with an HMC history (ΔH = 0, all accepted) holding `configs`."""
    from qcdhpc.io.containers import create_fields, create_history, write_rows

    with h5py.File(path, "w") as f:
        create_fields(f, n=len(configs), site_shape=configs.shape[1:], dtype=configs.dtype, nchains=nchains,
                      theory="phi4", attrs={"L": list(configs.shape[1:]), **attrs})
        write_rows(f, 0, configs, chain, traj)
        h = create_history(f, "hmc", {"dH": ((nchains, ntraj), np.float64),
                                      "accepted": ((nchains, ntraj), np.uint8)}, {"n_therm": 0})
        h["dH"][:] = 0.0
        h["accepted"][:] = 1


def test_cli_train_sample_smoke(tmp_path):
    from qcdhpc.io.containers import open_container

    n, L = 16, 8
    ens = tmp_path / "ens.h5"
    _write_fields(ens, np.random.default_rng(0).normal(size=(n, L, L)), np.arange(n) % 2, np.arange(n) // 2 + 2,
                  nchains=2, ntraj=10, attrs={"kappa": 0.21, "lam": 0.022})
    model = tmp_path / "model.pt"
    assert _cli(["train", str(ens), "--out", str(model), "--epochs", "1", "--batch", "8", "--channels", "8",
                 "--depth", "1", "--device", "cpu", "--quiet"]) == 0
    assert (tmp_path / "model.run" / "loss.png").exists() and (tmp_path / "model.run" / "checkpoint.pt").exists()
    out = tmp_path / "samples.h5"
    for sampler in ("em", "pc", "ode"):
        assert _cli(["sample", str(model), "--n", "6", "--steps", "3", "--sampler", sampler, "--batch", "4",
                     "--out", str(out), "--device", "cpu", "--quiet", "--overwrite"]) == 0
        with open_container(out) as s:
            assert s.configs.shape == (6, L, L) and np.isfinite(s.configs[()]).all()
            assert s.kind == "samples" and s.theory == "phi4" and s.history["sampler"].attrs["sampler"] == sampler
            assert s.attrs["kappa"] == 0.21 and s.attrs["lam"] == 0.022 and s.attrs["L"] == [L, L]
            assert (s.chain == 0).all() and (s.traj == np.arange(6)).all()
            assert "hmc" not in s.history and "hmc" not in s._f  # no placeholder Monte Carlo history
    assert _cli(["sample", str(model), "--n", "2", "--out", str(out), "--quiet"]) == 2  # exists: refused
    assert _cli(["sample", str(ens), "--n", "2", "--out", str(tmp_path / "x.h5"), "--quiet"]) == 2  # not a model
    assert _cli(["train", str(model), "--out", str(tmp_path / "r"), "--quiet"]) == 2  # not an ensemble


def test_cli_sample_sigterm_exit_75_and_resumes_bit_identically(tmp_path):
    """`qcdhpc sample` checkpoints every batch: SIGTERM stops it after the current batch (exit 75),
    --resume finishes it, and the file equals an unbroken run's; stale partial runs are refused."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from qcdhpc.run.signals import EXIT_INTERRUPTED

    ens = tmp_path / "ens.h5"
    _tiny_ensemble(ens)
    model = tmp_path / "model.pt"
    assert _cli(["train", str(ens), "--out", str(model), "--epochs", "1", "--batch", "8", "--channels", "8",
                 "--depth", "1", "--device", "cpu", "--quiet"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = ["sample", str(model), "--n", "60", "--batch", "4", "--steps", "400", "--device", "cpu", "--quiet"]
    run, ref = tmp_path / "run.h5", tmp_path / "ref.h5"
    proc = subprocess.Popen([sys.executable, "-m", "qcdhpc", *args, "--out", str(run)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = tmp_path / "run.h5.partial"
    deadline = time.monotonic() + 120
    while not (partial / "rank0000" / "seg000000.h5").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no batch after 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "SIGTERM received" in err and "--resume" in err
    done = len(list(partial.glob("rank0000/seg*.h5")))
    assert 1 <= done < 15 and not run.exists()
    assert _cli([*args, "--out", str(run)]) == 2  # a partial run is there: --resume or --overwrite
    assert _cli([*args, "--out", str(model), "--overwrite"]) == 2  # the output is the input model
    assert _cli([*args, "--out", str(run), "--resume", "--seed", "9"]) == 2  # other options: refused
    assert _cli([*args, "--out", str(run), "--resume"]) == 0
    assert not partial.exists()
    r = subprocess.run([sys.executable, "-m", "qcdhpc", *args, "--out", str(ref)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with h5py.File(run) as a, h5py.File(ref) as b:
        assert a["configs"].shape == (60, 8, 8)
        np.testing.assert_array_equal(a["configs"][()], b["configs"][()])


def test_prior_width_warning_and_sigma_max(tmp_path):
    """Broken-phase-like data (constant fields ±10 on 8×8: √P(0) = 80) are out of reach of the seeds'
    VE prior (s(1) = 9.84): training warns; a geometric VE schedule with σ_max = 300 does not."""
    import warnings

    n, L = 32, 8
    x = np.where(np.arange(n) % 2 == 0, 10.0, -10.0)[:, None, None] * np.ones((n, L, L))
    x = (x + 0.1 * np.random.default_rng(0).standard_normal(x.shape)).astype(np.float32)
    cfg = dict(channels=8, depth=1, epochs=1, batch=16, device="cpu")
    with pytest.warns(UserWarning, match="prior N.*too narrow.*--sigma-max"):
        train(x, TrainConfig(**cfg), tmp_path / "a", progress=False)
    wide = VESDE.from_sigma_range(0.01, 300.0)
    assert wide.prior_std() == pytest.approx(300.0, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(x, TrainConfig(sde_params=wide.params(), **cfg), tmp_path / "b", progress=False)
    _, sde, _ = load_model(tmp_path / "b" / "model.pt")
    assert sde.prior_std() == pytest.approx(300.0, rel=1e-6)
    ens = tmp_path / "ens.h5"
    _tiny_ensemble(ens)
    assert _cli(["train", str(ens), "--out", str(tmp_path / "c"), "--sde", "vp", "--sigma-max", "50",
                 "--quiet"]) == 2
    assert _cli(["train", str(ens), "--out", str(tmp_path / "c"), "--sigma-max", "0.001", "--quiet"]) == 2


def test_python_m_qcdhpc_train_sample(tmp_path):
    """End to end through `python -m qcdhpc` (cli/main.py dispatch), as a user runs it."""
    import subprocess
    import sys

    from qcdhpc.io.containers import open_container

    ens = tmp_path / "ens.h5"
    _write_fields(ens, np.ones((8, 4, 4), np.float32), np.zeros(8), np.arange(8), nchains=1, ntraj=8,
                  attrs={"kappa": 0.2, "lam": 0.01})
    run = lambda *a: subprocess.run([sys.executable, "-m", "qcdhpc", *a], capture_output=True, text=True)  # noqa: E731
    r = run("train", str(ens), "--out", str(tmp_path / "run"), "--epochs", "1", "--channels", "8", "--depth", "1",
            "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("sample", str(tmp_path / "run" / "model.pt"), "--n", "5", "--steps", "2", "--out",
            str(tmp_path / "s.h5"), "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr
    with open_container(tmp_path / "s.h5") as s:
        assert s.configs.shape == (5, 4, 4) and "qcdhpc sample" in s.attrs["command"]


def _tiny_ensemble(path, n=64, L=8):
    _write_fields(path, np.random.default_rng(0).normal(size=(n, L, L)), np.arange(n) % 2, np.arange(n) // 2,
                  nchains=2, ntraj=n // 2, attrs={"kappa": 0.21, "lam": 0.022})


def test_cli_train_sigterm_checkpoints_exit_75_and_resumes(tmp_path):
    """SIGTERM (scancel, Slurm's hard time limit) stops `qcdhpc train` after the current epoch with
    checkpoint.pt written and exit 75; `--resume` finishes with the weights of an unbroken run."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from qcdhpc.run.signals import EXIT_INTERRUPTED

    signame = "SIGTERM"

    ens = tmp_path / "ens.h5"
    _tiny_ensemble(ens)
    # 1 thread: the same float summation order in every process, so runs compare bit for bit
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    epochs = 40

    def cmd(out, *extra):
        return [sys.executable, "-m", "qcdhpc", "train", str(ens), "--out", str(out), "--epochs", str(epochs),
                "--batch", "8", "--channels", "8", "--depth", "1", "--device", "cpu", "--seed", "5", "--quiet",
                *extra]

    # the unbroken reference runs alongside the broken one (wall time)
    ref = subprocess.Popen(cmd(tmp_path / "ref"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    proc = subprocess.Popen(cmd(tmp_path / "run"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.01)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert f"{signame} received: checkpoint written after epoch" in err and "--resume" in err, err
    stopped = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= stopped < epochs, stopped  # really cut short, not finished before the signal
    assert not (tmp_path / "run" / "model.pt").exists()
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == stopped

    r = subprocess.run(cmd(tmp_path / "run", "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err

    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["loss"] for r in a["log"]] == [r["loss"] for r in b["log"]]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, epochs + 1))


def test_train_sigusr1_in_process_stops_after_epoch_and_resumes(tmp_path):
    """SIGUSR1 (what the sbatch templates forward before the time limit) through the library: train()
    raises Interrupted after the epoch with checkpoint.pt written, restores the previous handler, and
    resume=True ends bit-identical to an unbroken run.  In-process: no interpreter start-up to pay."""
    import os
    import signal
    import threading
    import time

    from qcdhpc.diffusion.train import Interrupted

    data = np.random.default_rng(2).normal(size=(64, 4, 4)).astype(np.float32)
    cfg = TrainConfig(sde="ve", net="unet", channels=4, depth=1, epochs=20, batch=8, lr=1e-3, warmup=3,
                      seed=7, device="cpu", checkpoint_every=5)
    train(data, cfg, tmp_path / "ref", progress=False)

    ckpt = tmp_path / "run" / "checkpoint.pt"
    done = threading.Event()

    def signal_after_first_checkpoint():
        while not ckpt.exists() and not done.is_set():
            time.sleep(0.005)
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGUSR1)  # handled in the main thread, inside train()

    # pytest leaves SIGUSR1 at its default (terminate): a signal arriving late, after train() restored
    # the handler, must not kill the test session.
    def ignore(signum, frame):
        pass

    before = signal.signal(signal.SIGUSR1, ignore)
    sender = threading.Thread(target=signal_after_first_checkpoint, daemon=True)
    sender.start()
    try:
        with pytest.raises(Interrupted, match="SIGUSR1 received: checkpoint written after epoch"):
            train(data, cfg, tmp_path / "run", progress=False)
        assert signal.getsignal(signal.SIGUSR1) is ignore  # train() restored the previous handler
    finally:
        done.set()
        sender.join()  # no signal after the default action is back
        signal.signal(signal.SIGUSR1, before)
    stopped = torch.load(ckpt, weights_only=True)["epoch"]
    # checkpoint_every=5: a stop in between still writes one, at the epoch it stopped after
    assert 5 <= stopped < cfg.epochs and not (tmp_path / "run" / "model.pt").exists()
    train(data, cfg, tmp_path / "run", resume=True, progress=False)
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
