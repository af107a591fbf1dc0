// _qcdhpc_cpu: the CPU (OpenMP) kernels as a Python extension.  One submodule
// per family (_qcdhpc_cpu.phi4, ...), the shared runtime at the top level.
// See qcdhpc/kernels/ for the checked Python API.
#include "dlpack.h"
#include "qcdhpc/core/runtime.h"

namespace backend = qcdhpc::cpu;
constexpr int32_t kBackendDevice = qcdhpc::dlpack::kCPU;

#include "core_bindings.h"
#include "phi4_bindings.h"
#include "cl_bindings.h"

PYBIND11_MODULE(_qcdhpc_cpu, m) {
  m.doc() = "qcdhpc CPU kernels (OpenMP); see qcdhpc.kernels for the checked Python API";
  bind_core(m);
  bind_host_mc(m.def_submodule("mc", "Shared Monte Carlo math on host arrays (tests)"));
  add_family(m, "phi4", qcdhpc::phi4::kNumericsVersion, bind_phi4, "2D lattice phi^4 theory: HMC");
  add_family(m, "cl", qcdhpc::cl::kNumericsVersion, bind_cl, "Complex Langevin: quartic model, Bose gas");
#if defined(_OPENMP)
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
}
