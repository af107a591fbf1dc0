// pybind11 layer shared by the CPU and CUDA extension modules.
//
// The including file defines `namespace backend = qcdhpc::<cpu|cuda>;` and
// `constexpr int32_t kBackendDevice = dlpack::kCPU | dlpack::kCUDA;` and calls
// bind_backend(m).  Arrays arrive as any object with __dlpack__ (numpy, torch,
// cupy) and are used in place.  Every property the kernels rely on -- device,
// dtype, rank, shape, contiguity, parameter ranges -- is checked here, so bad
// input is a Python exception, never a crash.  qcdhpc/_kernels.py repeats the
// common checks with friendlier messages before it gets here.
#pragma once

#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "dlpack.h"
#include "qcdhpc/backend_api.h"
#include "qcdhpc/philox.h"

namespace qcdhpc {
namespace py = pybind11;

// A borrowed view of a DLPack tensor.  The capsule is held (not consumed) for
// the duration of the call; the array it came from is the caller's argument,
// so the memory outlives the view.
struct ArrayView {
  py::object capsule;
  void* data = nullptr;
  std::vector<int64_t> shape;
  dlpack::DataType dtype{};
  int32_t device_type = 0;

  bool is(uint8_t code, uint8_t bits) const { return dtype.code == code && dtype.bits == bits; }
  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
};

inline const char* device_name(int32_t t) {
  switch (t) {
    case dlpack::kCPU: return "cpu";
    case dlpack::kCUDA: return "cuda";
    case dlpack::kCUDAHost: return "cuda_host";
    case dlpack::kCUDAManaged: return "cuda_managed";
    default: return "unknown";
  }
}

inline ArrayView view_array(py::handle obj, const std::string& name, int32_t want_device) {
  if (!py::hasattr(obj, "__dlpack__"))
    throw py::type_error(name + ": expected an array with DLPack support (numpy, torch, cupy), got " +
                         std::string(py::str(py::type::handle_of(obj))));
  // Ask where the data lives before exporting it: a CPU producer (numpy)
  // refuses the CUDA stream argument, and a wrong device must be reported as such.
  if (py::hasattr(obj, "__dlpack_device__")) {
    const auto dev = obj.attr("__dlpack_device__")().cast<py::tuple>();
    const int32_t t = dev[0].cast<int32_t>();
    if (t != want_device)
      throw py::value_error(name + ": array is on device '" + device_name(t) +
                            "' but this kernel runs on '" + device_name(want_device) + "'");
  }
  ArrayView v;
  // For CUDA, stream=1 asks the producer to order its work before the legacy
  // default stream, on which our kernels run (DLPack __dlpack__ protocol).
  v.capsule = want_device == dlpack::kCUDA ? obj.attr("__dlpack__")(py::arg("stream") = 1)
                                           : obj.attr("__dlpack__")();
  PyObject* cap = v.capsule.ptr();
  if (!PyCapsule_IsValid(cap, "dltensor"))
    throw py::type_error(name + ": __dlpack__ did not return an unconsumed 'dltensor' capsule");
  auto* m = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  const dlpack::Tensor& t = m->dl_tensor;
  v.device_type = t.device.device_type;
  if (v.device_type != want_device)
    throw py::value_error(name + ": array is on device '" + device_name(v.device_type) +
                          "' but this kernel runs on '" + device_name(want_device) + "'");
  if (t.dtype.lanes != 1) throw py::type_error(name + ": vector dtypes are not supported");
  v.dtype = t.dtype;
  v.shape.assign(t.shape, t.shape + t.ndim);
  // Contiguity: strides must be row-major (dimensions of extent 1 are free).
  if (t.strides) {
    int64_t expect = 1;
    for (int d = t.ndim - 1; d >= 0; --d) {
      if (t.shape[d] != 1 && t.strides[d] != expect)
        throw py::value_error(name + ": array must be C-contiguous (use np.ascontiguousarray / "
                                     ".contiguous())");
      expect *= t.shape[d];
    }
  }
  v.data = static_cast<char*>(t.data) + t.byte_offset;
  return v;
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// A field: (B, L0, L1), float32 or float64, L0, L1 >= 2.
inline ArrayView view_field(py::handle obj, const std::string& name, int32_t dev) {
  ArrayView v = view_array(obj, name, dev);
  if (v.shape.size() != 3)
    throw py::value_error(name + ": expected shape (batch, L0, L1), got " + shape_str(v.shape));
  if (v.shape[0] < 1 || v.shape[1] < 2 || v.shape[2] < 2)
    throw py::value_error(name + ": need batch >= 1 and L0, L1 >= 2, got " + shape_str(v.shape));
  if (!v.is(dlpack::kFloat, 32) && !v.is(dlpack::kFloat, 64))
    throw py::type_error(name + ": dtype must be float32 or float64");
  return v;
}

inline void expect_like(const ArrayView& a, const ArrayView& ref, const std::string& name) {
  if (a.shape != ref.shape || a.dtype.code != ref.dtype.code || a.dtype.bits != ref.dtype.bits)
    throw py::value_error(name + ": must have the shape and dtype of the field " +
                          shape_str(ref.shape));
  if (a.data == ref.data) throw py::value_error(name + ": must not alias the field");
}

inline void expect_out(const ArrayView& a, const std::vector<int64_t>& shape, uint8_t code,
                       uint8_t bits, const std::string& name, const std::string& dtype_name) {
  if (a.shape != shape) throw py::value_error(name + ": expected shape " + shape_str(shape));
  if (!a.is(code, bits)) throw py::type_error(name + ": dtype must be " + dtype_name);
}

inline void expect_finite(double x, const char* name) {
  if (!std::isfinite(x)) throw py::value_error(std::string(name) + " must be finite");
}

inline int parse_integrator(const std::string& s) {
  if (s == "leapfrog") return 0;
  if (s == "omelyan") return 1;
  throw py::value_error("integrator must be 'leapfrog' or 'omelyan', got '" + s + "'");
}

inline phi4::Lattice lattice_of(const ArrayView& v) { return phi4::Lattice{v.shape[1], v.shape[2]}; }

// Calls f.template operator()<Real>() with Real matching the field's dtype.
template <class F>
void dispatch_real(const ArrayView& v, F&& f) {
  if (v.dtype.bits == 64)
    f(double{});
  else
    f(float{});
}

}  // namespace qcdhpc

// The module body, expanded once per backend.  `backend` and kBackendDevice
// come from the including file.
inline void bind_backend(pybind11::module_& m) {
  namespace py = pybind11;
  using namespace qcdhpc;
  const int32_t dev = kBackendDevice;

  m.attr("numerics_version") = kNumericsVersion;  // config.h
  m.def("device_count", &backend::device_count, "Number of usable devices of this backend.");
  m.def("set_num_threads", &backend::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &backend::get_num_threads);

  m.def(
      "fill_normal",
      [dev](py::handle out, uint64_t seed, uint64_t chain_offset, uint64_t traj, uint64_t purpose) {
        ArrayView o = view_field(out, "out", dev);
        py::gil_scoped_release nogil;
        dispatch_real(o, [&](auto r) {
          using Real = decltype(r);
          backend::fill_normal<Real>(static_cast<Real*>(o.data), o.shape[0], o.shape[1] * o.shape[2],
                                     seed, chain_offset, traj, purpose);
        });
        backend::device_synchronize();
      },
      py::arg("out"), py::arg("seed"), py::arg("chain_offset"), py::arg("traj"),
      py::arg("purpose"));

  m.def(
      "action",
      [dev](py::handle phi, double kappa, double lam, py::handle out) {
        ArrayView f = view_field(phi, "phi", dev);
        ArrayView o = view_array(out, "out", dev);
        expect_out(o, {f.shape[0]}, dlpack::kFloat, 64, "out", "float64");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::action<Real>(static_cast<const Real*>(f.data), f.shape[0], lattice_of(f), kappa,
                                lam, static_cast<double*>(o.data));
        });
        backend::device_synchronize();
      },
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("out"));

  m.def(
      "force",
      [dev](py::handle phi, double kappa, double lam, py::handle out) {
        ArrayView f = view_field(phi, "phi", dev);
        ArrayView o = view_field(out, "out", dev);
        expect_like(o, f, "out");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::force<Real>(static_cast<const Real*>(f.data), static_cast<Real*>(o.data),
                               f.shape[0], lattice_of(f), kappa, lam);
        });
        backend::device_synchronize();
      },
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("out"));

  m.def(
      "md_integrate",
      [dev](py::handle phi, py::handle mom, double kappa, double lam, double eps, int64_t nmd,
            const std::string& integrator) {
        ArrayView f = view_field(phi, "phi", dev);
        ArrayView p = view_field(mom, "mom", dev);
        expect_like(p, f, "mom");
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        expect_finite(eps, "eps");
        if (nmd < 0) throw py::value_error("nmd must be >= 0");
        const int integ = parse_integrator(integrator);
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::md_integrate<Real>(static_cast<Real*>(f.data), static_cast<Real*>(p.data),
                                      f.shape[0], lattice_of(f), kappa, lam, eps, nmd, integ);
        });
        backend::device_synchronize();
      },
      py::arg("phi"), py::arg("mom"), py::arg("kappa"), py::arg("lam"), py::arg("eps"),
      py::arg("nmd"), py::arg("integrator"));

  m.def(
      "hmc_trajectories",
      [dev](py::handle phi, double kappa, double lam, int64_t nmd, double tau,
            const std::string& integrator, uint64_t seed, uint64_t chain_offset,
            uint64_t traj_offset, int64_t ntraj, py::handle dH, py::handle acc) {
        ArrayView f = view_field(phi, "phi", dev);
        if (ntraj < 1) throw py::value_error("ntraj must be >= 1");
        ArrayView d = view_array(dH, "dH", dev);
        ArrayView a = view_array(acc, "acc", dev);
        expect_out(d, {f.shape[0], ntraj}, dlpack::kFloat, 64, "dH", "float64");
        if (a.shape != std::vector<int64_t>{f.shape[0], ntraj} ||
            !(a.is(dlpack::kUInt, 8) || a.is(dlpack::kBool, 8)))
          throw py::value_error("acc: expected uint8 or bool array of shape " +
                                shape_str({f.shape[0], ntraj}));
        expect_finite(kappa, "kappa");
        expect_finite(lam, "lam");
        if (!(std::isfinite(tau) && tau > 0)) throw py::value_error("tau must be finite and > 0");
        if (nmd < 1) throw py::value_error("nmd must be >= 1");
        const int integ = parse_integrator(integrator);
        py::gil_scoped_release nogil;
        dispatch_real(f, [&](auto r) {
          using Real = decltype(r);
          backend::hmc_trajectories<Real>(static_cast<Real*>(f.data), f.shape[0], lattice_of(f),
                                          kappa, lam, nmd, tau, integ, seed, chain_offset,
                                          traj_offset, ntraj, static_cast<double*>(d.data),
                                          static_cast<uint8_t*>(a.data));
        });
        backend::device_synchronize();
      },
      py::arg("phi"), py::arg("kappa"), py::arg("lam"), py::arg("nmd"), py::arg("tau"),
      py::arg("integrator"), py::arg("seed"), py::arg("chain_offset"), py::arg("traj_offset"),
      py::arg("ntraj"), py::arg("dH"), py::arg("acc"));

  m.def(
      "philox4x64_10",
      [](uint64_t c0, uint64_t c1, uint64_t c2, uint64_t c3, uint64_t k0, uint64_t k1) {
        const Philox4x64 w = philox4x64_10(Philox4x64{{c0, c1, c2, c3}}, k0, k1);
        return py::make_tuple(w.v[0], w.v[1], w.v[2], w.v[3]);
      },
      "One Philox4x64-10 block (host copy of the device function), for known-answer tests.",
      py::arg("c0"), py::arg("c1"), py::arg("c2"), py::arg("c3"), py::arg("k0"), py::arg("k1"));
}
