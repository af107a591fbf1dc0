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
        raw.phi4.force(np.zeros((2, 4, 4), np.int64), 0.1, 0.1, np.zeros((2, 4, 4), np.int64))
    with pytest.raises(ValueError, match="alias"):
        a = np.zeros((2, 4, 4))
        raw.phi4.md_integrate(a, a, 0.1, 0.1, 0.1, 1, "leapfrog")
    with pytest.raises(ValueError, match="integrator"):
        raw.phi4.md_integrate(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), 0.1, 0.1, 0.1, 1, "euler")
    with pytest.raises(TypeError, match="DLPack"):
        raw.phi4.force(object(), 0.1, 0.1, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"need batch >= 1, L0 >= 2, L1 >= 2"):
        raw.phi4.force(np.zeros((2, 1, 4)), 0.1, 0.1, np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match=r"dH: expected shape \(2, 3\)"):
        raw.phi4.hmc_trajectories(np.zeros((2, 4, 4)), 0.1, 0.1, 1, 0.5, "leapfrog", 1, 0, 0, 3,
                                  np.zeros((2, 2)), np.zeros((2, 3), np.uint8))
    if not K.cuda_built():
        pytest.skip("built without CUDA")
    cuda_mod = pytest.importorskip("qcdhpc._qcdhpc_cuda")
    with pytest.raises(ValueError, match="device 'cpu'"):
        cuda_mod.phi4.force(np.zeros((2, 4, 4)), 0.1, 0.1, np.zeros((2, 4, 4)))


# ---------------------------------------------------------------- dtypes ----

@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_fields_refused_clearly(dtype):
    phi = np.zeros((2, 4, 4), dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=f"phi: dtype must be float32 or float64, got {name}"):
        K.force(phi, kappa=0.1, lam=0.1)
    with pytest.raises(TypeError, match=f"phi: dtype must be float32 or float64, got {name}"):
        raw.phi4.force(phi, 0.1, 0.1, np.zeros((2, 4, 4)))


WALKERS = dict(name="z", dims=["batch", "N"], dtypes=["complex64", "complex128"], min_extent=[1, 1])


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_view_spec_accepted(dtype):
    """A complex (B, N) walker array is one TensorSpec (csrc/python/array_view.h): DLPack kDLComplex."""
    z = (np.arange(12) * (1 + 2j)).astype(dtype).reshape(3, 4)
    info = raw._check_view(z, **WALKERS)
    assert info == {"shape": (3, 4), "dtype": np.dtype(dtype).name, "device": ("cpu", 0)}


@pytest.mark.parametrize("array,exc,match", [
    (np.zeros((3, 4)), TypeError, "z: dtype must be complex64 or complex128, got float64"),
    (np.zeros((3, 4), np.int32), TypeError, "got int32"),
    (np.zeros(3, np.complex128), ValueError, r"z: expected shape \(batch, N\), got \(3,\)"),
    (np.zeros((0, 4), np.complex128), ValueError, "z: need batch >= 1, N >= 1"),
    (np.zeros((3, 8), np.complex128)[:, ::2], ValueError, "C-contiguous"),
    ([1j, 2j], TypeError, "DLPack"),
])
def test_complex_view_spec_refused(array, exc, match):
    with pytest.raises(exc, match=match):
        raw._check_view(array, **WALKERS)


def test_view_spec_torch_complex():
    torch = pytest.importorskip("torch")
    info = raw._check_view(torch.zeros(2, 5, dtype=torch.complex64), **WALKERS)
    assert info["dtype"] == "complex64" and info["shape"] == (2, 5)
    with pytest.raises(TypeError, match="got float32"):
        raw._check_view(torch.zeros(2, 5), **WALKERS)


# ---------------------------------------------------------------- devices ---

class FakeCuda1(FakeCudaArray):
    """The same on GPU 1."""

    def __dlpack_device__(self):
        return (2, 1)


def test_arrays_on_different_devices_refused():
    from qcdhpc import kernels

    phi = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match="dH: must be on the same device as phi"):
        K.hmc_trajectories(phi, dH=FakeCudaArray(), **KW)
    with pytest.raises(ValueError, match="out: must be on the same device as phi"):
        K.action(phi, kappa=0.1, lam=0.1, out=FakeCudaArray())
    with pytest.raises(ValueError, match="dH: is on cuda:1 but phi is on cuda:0"):
        kernels.check_same_device(FakeCuda1(), FakeCudaArray(), "dH")
    # the native layer refuses before touching the data, too
    with pytest.raises(ValueError, match="dH: array is on device 'cuda' but this kernel runs on 'cpu'"):
        raw.phi4.hmc_trajectories(phi, 0.1, 0.1, 1, 0.5, "leapfrog", 1, 0, 0, 1, FakeCudaArray(),
                                  np.zeros((2, 1), np.uint8))


def test_cuda_module_refuses_invisible_device():
    if not K.cuda_built():
        pytest.skip("built without CUDA")
    from qcdhpc import _qcdhpc_cuda as cuda_mod
    from qcdhpc import kernels

    n = cuda_mod.device_count()
    fake = type("FakeCudaN", (FakeCudaArray,), {"__dlpack_device__": lambda self: (2, n)})()
    with pytest.raises(ValueError, match=f"CUDA device {n} is not visible"):
        cuda_mod.phi4.force(fake, 0.1, 0.1, fake)
    if n > 0:
        with pytest.raises(ValueError, match=f"is on cuda:{n} but only {n} CUDA device"):
            kernels.phi4.force(fake, kappa=0.1, lam=0.1)


@pytest.mark.parametrize("env,n,expect", [
    ({}, 4, None),
    ({"SLURM_LOCALID": "5"}, 4, 1),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "2"}, 4, 2),
    ({"MPI_LOCALRANKID": "3"}, 2, 1),
    ({"PMI_LOCAL_RANK": "7"}, 8, 7),
    ({"PMIX_LOCAL_RANK": "9"}, 8, 1),
    ({"SLURM_LOCALID": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "0"}, 4, 1),  # Slurm's first
    ({"SLURM_LOCALID": "", "PMIX_LOCAL_RANK": "3"}, 4, 3),  # empty values skipped
    ({"SLURM_LOCALID": "3"}, 0, None),  # no CUDA device
])
def test_local_device_index(env, n, expect):
    from qcdhpc import kernels

    assert kernels.local_device_index(n, environ=env) == expect


def test_local_device_index_reads_environment(monkeypatch):
    from qcdhpc import kernels

    for var in kernels.LOCAL_RANK_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    assert kernels.local_rank() is None and kernels.local_device_index() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3")
    assert kernels.local_rank() == 3
    assert kernels.local_device_index(2) == 1
    n = kernels.cuda_device_count()
    assert kernels.local_device_index() == (3 % n if n else None)


def test_empty_cache_and_stats_without_gpu():
    from qcdhpc import kernels

    kernels.empty_cache()
    stats = kernels.cache_stats()
    assert set(stats) == {"cached_bytes", "in_use_bytes", "device_allocs", "reuses"}
    if not kernels.available_devices()[1:]:
        assert stats["in_use_bytes"] == 0


# ----------------------------------------------------------- Python faces ---

def test_backwards_compatible_face():
    """qcdhpc._kernels keeps the names other code uses; they are the family faces' objects."""
    from qcdhpc import kernels
    from qcdhpc.kernels import phi4

    for name in ("hmc_trajectories", "fill_normal", "action", "force", "md_integrate", "NUMERICS_VERSION",
                 "INTEGRATORS"):
        assert getattr(K, name) is getattr(phi4, name)
    for name in ("available_devices", "set_num_threads", "get_num_threads", "cuda_built", "philox4x64_10",
                 "empty_cache", "local_device_index"):
        assert getattr(K, name) is getattr(kernels, name)
    assert K.NUMERICS_VERSION == phi4.NUMERICS_VERSION == raw.phi4.numerics_version == 3
    assert kernels.NUMERICS_VERSIONS == {"phi4": 3, "cl": 3} == dict(raw.numerics_versions)
    assert not hasattr(raw, "numerics_version")  # no global version: one per family


def test_import_is_light():
    """Importing the faces does not import torch (heavy imports stay lazy)."""
    import subprocess
    import sys

    code = "import sys, qcdhpc._kernels, qcdhpc.kernels.phi4; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
