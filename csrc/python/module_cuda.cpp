// _qcdhpc_cuda: the CUDA kernels as a Python extension.  Compiled by the host
// compiler; the kernels come from csrc/cuda/<family>_cuda.cu, the runtime
// (devices, guard, scratch pool) from csrc/cuda/runtime_cuda.cpp.
#include "dlpack.h"
#include "qcdhpc/core/runtime.h"

namespace backend = qcdhpc::cuda;
constexpr int32_t kBackendDevice = qcdhpc::dlpack::kCUDA;

#include "core_bindings.h"
#include "phi4_bindings.h"
#include "cl_bindings.h"

PYBIND11_MODULE(_qcdhpc_cuda, m) {
  m.doc() = "qcdhpc CUDA kernels; see qcdhpc.kernels for the checked Python API";
  bind_core(m);
  add_family(m, "phi4", qcdhpc::phi4::kNumericsVersion, bind_phi4, "2D lattice phi^4 theory: HMC");
  add_family(m, "cl", qcdhpc::cl::kNumericsVersion, bind_cl, "Complex Langevin: quartic model, Bose gas");
}
