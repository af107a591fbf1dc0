import pytest


def _has_cuda_device() -> bool:
    try:
        from qcdhpc import _kernels as K
    except ImportError:
        return False
    return "cuda" in K.available_devices()


def pytest_collection_modifyitems(config, items):
    if _has_cuda_device():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none here)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
