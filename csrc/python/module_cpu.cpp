// _qcdhpc_cpu: the CPU (OpenMP) kernels as a Python extension.
#include "dlpack.h"
#include "qcdhpc/backend_api.h"

namespace backend = qcdhpc::cpu;
constexpr int32_t kBackendDevice = qcdhpc::dlpack::kCPU;

#include "bindings.h"

PYBIND11_MODULE(_qcdhpc_cpu, m) {
  m.doc() = "qcdhpc CPU kernels (OpenMP); see qcdhpc._kernels for the checked Python API";
  bind_backend(m);
#if defined(_OPENMP)
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
