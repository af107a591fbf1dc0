"""CUDA backend against the CPU backend (gpu-marked: skipped without a CUDA device).

Both compile the same stage functions from csrc/include/qcdhpc; with --fmad=false / -ffp-contract=off
the only fused multiply-adds are the explicit, exactly specified qcdhpc::fmadd, Box-Muller and the
Metropolis test use qcdhpc's own log/sincos, and every sum has a fixed order -- so a chain's field,
dH and decisions must be the same bits on both, and these tests compare with array_equal, not
allclose.
"""
import numpy as np
import pytest

from qcdhpc import _kernels as K
from qcdhpc import kernels

pytestmark = pytest.mark.gpu


def _torch():
    return pytest.importorskip("torch")


def test_cuda_module_is_built():
    assert K.cuda_built()
    assert kernels.cuda_device_count() >= 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
# B = 35 is not a multiple of the CPU lane width (8 doubles / 16 floats); 16 x 12 is not square
@pytest.mark.parametrize("B,L0,L1", [(35, 16, 16), (8, 16, 12)])
@pytest.mark.parametrize("kappa", [0.21, 0.5])  # symmetric and broken phase
def test_cuda_equals_cpu_bit_for_bit(dtype, integrator, B, L0, L1, kappa):
    torch = _torch()
    kw = dict(kappa=kappa, lam=0.022, nmd=6, tau=1.0, integrator=integrator, seed=3, chain_offset=5,
              traj_offset=11, ntraj=12)
    start = (torch.randn(B, L0, L1, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.5)
    cpu = start.to(getattr(torch, dtype)).contiguous()
    gpu = cpu.cuda()
    dHc, accc = K.hmc_trajectories(cpu, **kw)
    dHg, accg = K.hmc_trajectories(gpu, **kw)
    assert dHg.device == gpu.device and accg.device == gpu.device
    assert np.array_equal(gpu.cpu().numpy(), cpu.numpy())
    assert np.array_equal(dHg.cpu().numpy(), dHc.numpy())
    assert np.array_equal(accg.cpu().numpy(), accc.numpy())
    assert 0 < float(accc.double().mean()) <= 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_other_entry_points_bit_for_bit(dtype):
    torch = _torch()
    td = getattr(torch, dtype)
    for shape in [(2, 8, 8), (3, 5, 7)]:  # V = 35: a partial Philox block
        mc = K.fill_normal(torch.empty(shape, dtype=td), seed=1, chain_offset=4, traj=2)
        mg = K.fill_normal(torch.empty(shape, dtype=td, device="cuda"), seed=1, chain_offset=4, traj=2)
        assert np.array_equal(mg.cpu().numpy(), mc.numpy())
    phi = K.fill_normal(torch.empty(4, 9, 6, dtype=td), seed=2)
    phig = phi.cuda()
    assert np.array_equal(K.action(phig, kappa=0.3, lam=0.1).cpu().numpy(), K.action(phi, kappa=0.3, lam=0.1).numpy())
    assert np.array_equal(K.force(phig, kappa=0.3, lam=0.1).cpu().numpy(), K.force(phi, kappa=0.3, lam=0.1).numpy())
    mom = K.fill_normal(torch.empty_like(phi), seed=3)
    momg = mom.cuda()
    K.md_integrate(phi, mom, kappa=0.3, lam=0.1, eps=0.1, nmd=7, integrator="omelyan")
    K.md_integrate(phig, momg, kappa=0.3, lam=0.1, eps=0.1, nmd=7, integrator="omelyan")
    assert np.array_equal(phig.cpu().numpy(), phi.numpy())
    assert np.array_equal(momg.cpu().numpy(), mom.numpy())


def test_scratch_pool_reuses_and_empties():
    torch = _torch()
    kw = dict(kappa=0.21, lam=0.022, nmd=4, tau=1.0, seed=1, ntraj=2)
    phi = torch.zeros(16, 32, 32, dtype=torch.float64, device="cuda")
    K.hmc_trajectories(phi, **kw)
    before = kernels.cache_stats()
    assert before["cached_bytes"] > 0 and before["in_use_bytes"] == 0
    K.hmc_trajectories(phi, **kw)  # same shapes: every scratch buffer comes from the cache
    after = kernels.cache_stats()
    assert after["device_allocs"] == before["device_allocs"]
    assert after["reuses"] >= before["reuses"] + 7
    kernels.empty_cache()
    assert kernels.cache_stats()["cached_bytes"] == 0
    ref = phi.clone()
    K.hmc_trajectories(phi, **kw)  # and works after emptying
    K.hmc_trajectories(ref, **kw)
    assert np.array_equal(phi.cpu().numpy(), ref.cpu().numpy())


def test_outputs_on_another_device_refused():
    torch = _torch()
    phi = torch.zeros(2, 8, 8, dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match="dH: must be on the same device as phi"):
        K.hmc_trajectories(phi, kappa=0.2, lam=0.1, nmd=2, tau=0.5, seed=1, ntraj=1,
                           dH=torch.zeros(2, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="out: must be on the same device as phi"):
        K.force(phi, kappa=0.1, lam=0.1, out=torch.zeros(2, 8, 8, dtype=torch.float64))
    from qcdhpc import _qcdhpc_cuda as cuda_mod

    with pytest.raises(ValueError, match="device 'cpu'"):  # the native layer checks too
        cuda_mod.phi4.force(phi, 0.1, 0.1, torch.zeros(2, 8, 8, dtype=torch.float64))


def test_cpu_array_refused_by_cuda_module():
    from qcdhpc import _qcdhpc_cuda as cuda_mod

    with pytest.raises(ValueError, match="device 'cpu'"):
        cuda_mod.phi4.force(np.zeros((2, 4, 4)), 0.1, 0.1, np.zeros((2, 4, 4)))


def test_device_index_honoured():
    torch = _torch()
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    kw = dict(kappa=0.21, lam=0.022, nmd=5, tau=1.0, seed=7, ntraj=4)
    torch.cuda.set_device(0)
    on0 = torch.zeros(8, 16, 16, dtype=torch.float64, device="cuda:0")
    on1 = torch.zeros(8, 16, 16, dtype=torch.float64, device="cuda:1")
    dH0, acc0 = K.hmc_trajectories(on0, **kw)
    dH1, acc1 = K.hmc_trajectories(on1, **kw)
    assert dH1.device == on1.device and acc1.device == on1.device
    assert torch.cuda.current_device() == 0  # the guard restored the current device
    assert np.array_equal(on1.cpu().numpy(), on0.cpu().numpy())
    assert np.array_equal(dH1.cpu().numpy(), dH0.cpu().numpy())
    with pytest.raises(ValueError, match="dH: is on cuda:0 but phi is on cuda:1"):
        K.hmc_trajectories(on1, dH=torch.zeros(8, 1, dtype=torch.float64, device="cuda:0"),
                           **{**kw, "ntraj": 1})
    from qcdhpc import _qcdhpc_cuda as cuda_mod

    with pytest.raises(ValueError, match="all arrays of one call must be on one device"):
        with torch.cuda.device(1):
            cuda_mod.phi4.force(on1, 0.1, 0.1, torch.zeros_like(on0))
    assert kernels.local_device_index(environ={"SLURM_LOCALID": "3"}) == 3 % torch.cuda.device_count()
