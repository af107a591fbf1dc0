// pybind11 bindings of the phi^4 family, expanded once per backend into the
// submodule _qcdhpc_<backend>.phi4 (see core_bindings.h, add_family).
//
// The including module file defines `backend` and kBackendDevice.  Every
// property the kernels rely on -- device and device index, dtype, rank, shape,
// contiguity, parameter ranges -- is checked here, so bad input is a Python
// exception, never a crash; qcdhpc/kernels/phi4.py repeats the common checks
// with friendlier messages before it gets here.  Each call runs on the device
// of its field (DeviceGuard) and releases the GIL while the kernels run.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "array_view.h"
#include "qcdhpc/core/runtime.h"
#include "qcdhpc/phi4/backend_api.h"

namespace qcdhpc {
namespace phi4_bind {

// A batch of fields: (batch, L0, L1), float32 or float64, L0, L1 >= 2.
inline TensorSpec field(const char* name) {
  return TensorSpec{name, {"batch", "L0", "L1"}, {dtypes::kFloat32, dtypes::kFloat64}, {1, 2, 2}};
}

// The specs of the entry points' arrays, built once.
inline const TensorSpec kPhi = field("phi"), kMom = field("mom"), kOutField = field("out");
inline const TensorSpec kOutAction{"out", {"batch"}, {dtypes::kFloat64}, {}};
inline const TensorSpec kDH{"dH", {"batch", "ntraj"}, {dtypes::kFloat64}, {}};
inline const TensorSpec kAcc{"acc", {"batch", "ntraj"}, {dtypes::kUInt8, dtypes::kBool}, {}};

inline void expect_finite(double x, const char* name) {
  if (!std::isfinite(x)) throw py::value_error(std::string(name) + " must be finite");
}

inline int parse_integrator(const std::string& s) {
  if (s == "leapfrog") return 0;
  if (s == "omelyan") return 1;
  throw py::value_error("integrator must be 'leapfrog' or 'omelyan', got '" + s + "'");
}

inline phi4::Lattice lattice_of(const ArrayView& v) { return phi4::Lattice{v.shape[1], v.shape[2]}; }

}  // namespace phi4_bind
}  // namespace qcdhpc

inline void bind_phi4(pybind11::module_& m) {
  namespace py = pybind11;
  using namespace qcdhpc;
  using namespace qcdhpc::phi4_bind;

  m.def(
      "fill_normal",
      [](py::handle out, uint64_t seed, uint64_t chain_offset, uint64_t traj, uint64_t purpose) {
        const CallDevice dev = call_device(out, "out", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView o = view(out, kOutField, dev);
        py::gil_scoped_release nogil;
        dispatch_real(o, [&](auto r) {
          using Real = decltype(r);
          backend::fill_normal<Real>(o.ptr<Real>(), o.shape[0], o.shape[1] * o.shape[2], seed,
                                     chain_offset, traj, purpose);
        });
        backend::device_synchronize();
      },
      "Fill a (batch, L0, L1) field with N(0,1) Philox draws: chain b uses key (seed, "
      "chain_offset + b), counters (block, traj, purpose, 0).",
      py::arg("out"), py::arg("seed"), py::arg("chain_offset"), py::arg("traj"),
      py::arg("purpose"));

  m.def(
      "action",
      [](py::handle phi, double kappa, double lam, py::handle out) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView o = view(out, kOutAction, dev);
        expect_shape(o, {f.shape[0]}, "out");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::action<Real>(f.ptr<const Real>(), f.shape[0], lattice_of(f), kappa, lam,
                                o.ptr<double>());
        });
        backend::device_synchronize();
      },
      "The action S of each chain into out (float64, shape (batch,)).",
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("out"));

  m.def(
      "force",
      [](py::handle phi, double kappa, double lam, py::handle out) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView o = view(out, kOutField, dev);
        expect_like(o, f, "out", "the field");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::force<Real>(f.ptr<const Real>(), o.ptr<Real>(), f.shape[0], lattice_of(f), kappa,
                               lam);
        });
        backend::device_synchronize();
      },
      "The force F = -dS/dphi into out (shape and dtype of phi).",
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("out"));

  m.def(
      "md_integrate",
      [](py::handle phi, py::handle mom, double kappa, double lam, double eps, int64_t nmd,
         const std::string& integrator) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView p = view(mom, kMom, dev);
        expect_like(p, f, "mom", "the field");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        expect_finite(eps, "eps");
        if (nmd < 0) throw py::value_error("nmd must be >= 0");
        const int integ = parse_integrator(integrator);
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::md_integrate<Real>(f.ptr<Real>(), p.ptr<Real>(), f.shape[0], lattice_of(f), kappa,
                                      lam, eps, nmd, integ);
        });
        backend::device_synchronize();
      },
      "nmd molecular-dynamics steps of size eps on (phi, mom), in place.",
      py::arg("phi"), py::arg("mom"), py::arg("kappa"), py::arg("lam"), py::arg("eps"),
      py::arg("nmd"), py::arg("integrator"));

  m.def(
      "hmc_trajectories",
      [](py::handle phi, double kappa, double lam, int64_t nmd, double tau,
         const std::string& integrator, uint64_t seed, uint64_t chain_offset, uint64_t traj_offset,
         int64_t ntraj, py::handle dH, py::handle acc) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        if (ntraj < 1) throw py::value_error("ntraj must be >= 1");
        ArrayView d = view(dH, kDH, dev);
        ArrayView a = view(acc, kAcc, dev);
        expect_shape(d, {f.shape[0], ntraj}, "dH");
        expect_shape(a, {f.shape[0], ntraj}, "acc");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        if (!(std::isfinite(tau) && tau > 0)) throw py::value_error("tau must be finite and > 0");
        if (nmd < 1) throw py::value_error("nmd must be >= 1");
        const int integ = parse_integrator(integrator);
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::hmc_trajectories<Real>(f.ptr<Real>(), f.shape[0], lattice_of(f), kappa, lam, nmd,
                                          tau, integ, seed, chain_offset, traj_offset, ntraj,
                                          d.ptr<double>(), a.ptr<uint8_t>());
        });
        backend::device_synchronize();
      },
      "ntraj HMC trajectories on each chain of phi, in place; dH (float64) and acc (uint8 or "
      "bool), both (batch, ntraj), receive the energy violations and the decisions.",
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("nmd"), py::arg("tau"),
      py::arg("integrator"), py::arg("seed"), py::arg("chain_offset"), py::arg("traj_offset"),
      py::arg("ntraj"), py::arg("dH"), py::arg("acc"));
}
