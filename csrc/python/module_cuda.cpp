// _qcdhpc_cuda: the CUDA kernels as a Python extension.  Compiled by the host
// compiler; the kernels themselves come from csrc/cuda/phi4_cuda.cu.
#include "dlpack.h"
#include "qcdhpc/backend_api.h"

namespace backend = qcdhpc::cuda;
constexpr int32_t kBackendDevice = qcdhpc::dlpack::kCUDA;

#include "bindings.h"

PYBIND11_MODULE(_qcdhpc_cuda, m) {
  m.doc() = "qcdhpc CUDA kernels; see qcdhpc._kernels for the checked Python API";
  bind_backend(m);
}
