"""Build qcdhpc: setuptools drives CMake (CMakeLists.txt) for the native kernels.

Environment:
  QCDHPC_CUDA=AUTO|ON|OFF     build the CUDA extension (default AUTO: when nvcc is found)
  QCDHPC_CUDA_ARCHS="80;90"   GPU architectures
  QCDHPC_BUILD_JOBS=N         parallel compile jobs (default: CPU count)
  QCDHPC_ARCH_FLAGS="..."     CPU ISA flags (default -march=native; "" for the compiler default)
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


def cuda_requested() -> bool:
    """Whether the CUDA extension is part of this build (CMake makes the same decision)."""
    mode = os.environ.get("QCDHPC_CUDA", "AUTO").upper()
    if mode == "OFF":
        return False
    return mode == "ON" or bool(os.environ.get("CUDACXX") or shutil.which("nvcc"))


class CMakeBuild(build_ext):
    """One CMake configure+build produces every extension module at once."""

    _built = False

    def build_extension(self, ext):
        if CMakeBuild._built:
            return
        CMakeBuild._built = True
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = [
            f"-DQCDHPC_OUTPUT_DIR={out_dir}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DQCDHPC_CUDA={os.environ.get('QCDHPC_CUDA', 'AUTO')}",
            f"-DQCDHPC_CUDA_ARCHITECTURES={os.environ.get('QCDHPC_CUDA_ARCHS', '80;90')}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if "QCDHPC_ARCH_FLAGS" in os.environ:
            cfg.append(f"-DQCDHPC_ARCH_FLAGS={os.environ['QCDHPC_ARCH_FLAGS']}")
        jobs = os.environ.get("QCDHPC_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *cfg], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", jobs], check=True)


setup(
    name="qcdhpc",
    version=(ROOT / "qcdhpc" / "_version.py").read_text().split('"')[1],
    description="HPC toolkit for machine learning in QCD matter: kernels, ensembles, generative models",
    packages=find_packages(include=["qcdhpc", "qcdhpc.*"]),
    package_data={"qcdhpc": ["data/*"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24", "h5py>=3.8", "tqdm", "pyerrors>=2.9", "scipy", "matplotlib", "mpmath>=1.3"],
    # torch is an extra so that pip does not pull a multi-GB CUDA wheel for users who only run the
    # kernels; `qcdhpc[all]` is what the Makefile's requirements.txt installs (docs/dependencies.md).
    extras_require={
        "torch": ["torch"],
        "mpi": ["mpi4py>=3.1"],
        "workflow": ["snakemake>=8.0", "snakemake-executor-plugin-slurm>=1.0"],
        "test": ["pytest>=7", "hypothesis>=6"],
        "all": ["torch", "mpi4py>=3.1", "snakemake>=8.0", "snakemake-executor-plugin-slurm>=1.0",
                "pytest>=7", "hypothesis>=6"],
    },
    ext_modules=[CMakeExtension("qcdhpc._qcdhpc_cpu")]
    + ([CMakeExtension("qcdhpc._qcdhpc_cuda")] if cuda_requested() else []),
    cmdclass={"build_ext": CMakeBuild},
    entry_points={"console_scripts": ["qcdhpc = qcdhpc.cli.main:main"]},
    zip_safe=False,
)
