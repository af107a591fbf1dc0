"""CUDA backend against the CPU backend (skipped without a CUDA device).

Both compile the same stage functions from csrc/include/qcdhpc; with --fmad=false
arithmetic rounds identically, and only libm's log/sin/cos in Box-Muller may
differ by an ulp between host and device.
"""
import numpy as np
import pytest

from qcdhpc import _kernels as K

pytestmark = pytest.mark.gpu


def test_cuda_module_is_built():
    assert K.cuda_built()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu(dtype):
    torch = pytest.importorskip("torch")
    kw = dict(kappa=0.21, lam=0.022, nmd=10, tau=1.0, seed=3, ntraj=5)
    cpu = torch.zeros(8, 16, 16, dtype=getattr(torch, dtype))
    gpu = cpu.cuda()
    dHc, accc = K.hmc_trajectories(cpu, **kw)
    dHg, accg = K.hmc_trajectories(gpu, **kw)
    tol = 1e-10 if dtype == "float64" else 1e-4
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu.numpy(), atol=tol)
    np.testing.assert_array_equal(accg.cpu().numpy(), accc.numpy())
    mom_c = K.fill_normal(torch.empty(2, 8, 8, dtype=torch.float64), seed=1, traj=2)
    mom_g = K.fill_normal(torch.empty(2, 8, 8, dtype=torch.float64, device="cuda"), seed=1, traj=2)
    np.testing.assert_allclose(mom_g.cpu().numpy(), mom_c.numpy(), rtol=1e-14, atol=1e-14)


def test_cpu_array_refused_by_cuda_module():
    from qcdhpc import _qcdhpc_cuda as cuda_mod

    with pytest.raises(ValueError, match="device 'cpu'"):
        cuda_mod.force(np.zeros((2, 4, 4)), 0.1, 0.1, np.zeros((2, 4, 4)))
