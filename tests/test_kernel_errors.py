"""Bad input to the kernels is a clear Python exception naming the argument, never a crash."""
import numpy as np
import pytest

from qcdhpc import _kernels as K
from qcdhpc import _qcdhpc_cpu as raw

KW = dict(kappa=0.2, lam=0.1, nmd=2, tau=0.5, seed=1, ntraj=1)


@pytest.mark.parametrize("phi,exc,match", [
    (np.zeros((2, 4, 4), dtype=np.int32), TypeError, "phi: dtype"),
    (np.zeros((4, 4)), ValueError, r"phi: expected shape \(batch, L0, L1\)"),
    (np.zeros((2, 1, 4)), ValueError, "L0, L1 >= 2"),
    (np.zeros((2, 4, 8))[:, :, ::2], ValueError, "C-contiguous"),
    ([[0.0]], TypeError, "phi: expected a numpy array or torch tensor"),
])
def test_bad_field(phi, exc, match):
    with pytest.raises(exc, match=match):
        K.hmc_trajectories(phi, **KW)


def test_read_only_array():
    phi = np.zeros((2, 4, 4))
    phi.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        K.force(phi, kappa=0.1, lam=0.1)


@pytest.mark.parametrize("bad,match", [
    (dict(kappa=float("nan")), "kappa must be finite"),
    (dict(lam=float("inf")), "lam must be finite"),
    (dict(nmd=0), "nmd must be >= 1"),
    (dict(tau=0.0), "tau must be > 0"),
    (dict(tau=float("nan")), "tau must be finite"),
    (dict(integrator="rk4"), "integrator must be one of"),
    (dict(ntraj=0), "ntraj must be >= 1"),
    (dict(seed=-1), "seed must be in"),
])
def test_bad_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        K.hmc_trajectories(np.zeros((2, 4, 4)), **{**KW, **bad})


def test_output_mismatch():
    phi = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="out: must match"):
        K.force(phi, kappa=0.1, lam=0.1, out=np.zeros((2, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="dH: expected shape"):
        K.hmc_trajectories(phi, dH=np.zeros((2, 3)), **KW)
    with pytest.raises(ValueError, match="mom: must match"):
        K.md_integrate(phi, np.zeros((3, 4, 4)), kappa=0.1, lam=0.1, eps=0.1, nmd=1)


def test_torch_checks():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="requires_grad"):
        K.force(torch.zeros(2, 4, 4, dtype=torch.float64, requires_grad=True), kappa=0.1, lam=0.1)
    with pytest.raises(ValueError, match="contiguous"):
        K.force(torch.zeros(2, 4, 4, dtype=torch.float64).transpose(1, 2), kappa=0.1, lam=0.1)


class FakeCudaArray:
    """Claims to live on a CUDA device (DLPack device type 2)."""
    shape, dtype = (2, 4, 4), "float64"

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, stream=None):  # pragma: no cover - must not be reached
        raise AssertionError("kernel must refuse before touching the data")


def test_cuda_array_without_cuda_device():
    if "cuda" in K.available_devices():
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        K.force(FakeCudaArray(), kappa=0.1, lam=0.1)


def test_native_layer_checks_too():
    """Bypassing the Python wrapper still gives exceptions, not crashes."""
    with pytest.raises(TypeError, match="dtype"):
        raw.force(np.zeros((2, 4, 4), np.int64), 0.1, 0.1, np.zeros((2, 4, 4), np.int64))
    with pytest.raises(ValueError, match="alias"):
        a = np.zeros((2, 4, 4))
        raw.md_integrate(a, a, 0.1, 0.1, 0.1, 1, "leapfrog")
    with pytest.raises(ValueError, match="integrator"):
        raw.md_integrate(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), 0.1, 0.1, 0.1, 1, "euler")
    with pytest.raises(TypeError, match="DLPack"):
        raw.force(object(), 0.1, 0.1, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="device 'cpu'"):
        import qcdhpc._qcdhpc_cuda as cuda_mod  # noqa: F401 -- built here (nvcc present)
        cuda_mod.force(np.zeros((2, 4, 4)), 0.1, 0.1, np.zeros((2, 4, 4)))
