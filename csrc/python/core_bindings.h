// pybind11 bindings every backend module has, whatever the families:
// devices, threads, the scratch cache, Philox, the families' numerics versions,
// and a view-inspection hook for the tests of array_view.h.
//
// The including module file defines `namespace backend = qcdhpc::<cpu|cuda>;`
// and `constexpr int32_t kBackendDevice = dlpack::kCPU | dlpack::kCUDA;`, then:
//
//   PYBIND11_MODULE(_qcdhpc_cpu, m) {
//     bind_core(m);
//     add_family(m, "phi4", qcdhpc::phi4::kNumericsVersion, bind_phi4, "...");   // one line per family
//   }
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "array_view.h"
#include "qcdhpc/core/philox.h"
#include "qcdhpc/core/runtime.h"
#include "qcdhpc/mc/metropolis.h"

inline void bind_core(pybind11::module_& m) {
  namespace py = pybind11;
  using namespace qcdhpc;

  m.attr("numerics_versions") = py::dict();  // filled by add_family
  m.def("device_count", &backend::device_count, "Number of usable devices of this backend.");
  m.def("set_num_threads", &backend::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &backend::get_num_threads);
  m.def("empty_cache", &backend::empty_cache,
        "Give every cached scratch block back to the device (CUDA; nothing is cached on the CPU).");
  m.def("cache_stats", []() {
    const CacheStats s = backend::cache_stats();
    py::dict d;
    d["cached_bytes"] = s.cached_bytes;
    d["in_use_bytes"] = s.in_use_bytes;
    d["device_allocs"] = s.device_allocs;
    d["reuses"] = s.reuses;
    return d;
  }, "What the scratch-memory cache holds: cached_bytes, in_use_bytes, device_allocs, reuses.");
  // Cached blocks go back to the driver while the CUDA runtime is certainly up.
  py::module_::import("atexit").attr("register")(py::cpp_function(&backend::empty_cache));

  m.def(
      "philox4x64_10",
      [](uint64_t c0, uint64_t c1, uint64_t c2, uint64_t c3, uint64_t k0, uint64_t k1) {
        const Philox4x64 w = philox4x64_10(Philox4x64{{c0, c1, c2, c3}}, k0, k1);
        return py::make_tuple(w.v[0], w.v[1], w.v[2], w.v[3]);
      },
      "One Philox4x64-10 block (host copy of the device function), for known-answer tests.",
      py::arg("c0"), py::arg("c1"), py::arg("c2"), py::arg("c3"), py::arg("k0"), py::arg("k1"));

  // The view checks of array_view.h with a spec given from Python: what a family's
  // entry point would accept or refuse (tests/test_kernel_errors.py).
  m.def(
      "_check_view",
      [](py::handle obj, const std::string& name, const std::vector<std::string>& dims,
         const std::vector<std::string>& dtype_names, const std::vector<int64_t>& min_extent) {
        TensorSpec spec{name, dims, {}, min_extent};
        for (const auto& n : dtype_names) {
          bool found = false;
          for (const DType& d : dtypes::kAll)
            if (n == d.name) spec.dtypes.push_back(d), found = true;
          if (!found) throw py::value_error("unknown dtype name '" + n + "'");
        }
        if (!spec.min_extent.empty() && spec.min_extent.size() != spec.dims.size())
          throw py::value_error("min_extent must have one entry per dim");
        const CallDevice dev = call_device(obj, name, kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        const ArrayView v = view(obj, spec, dev);
        py::dict d;
        d["shape"] = py::tuple(py::cast(v.shape));
        d["dtype"] = dtype_name(v.dtype);
        d["device"] = py::make_tuple(std::string(device_type_name(v.device_type)), v.device_id);
        return d;
      },
      "Check an array against a TensorSpec (name, dims, dtypes, min_extent); returns its "
      "shape, dtype and device, or raises what an entry point would.",
      py::arg("array"), py::arg("name"), py::arg("dims"), py::arg("dtypes"),
      py::arg("min_extent") = std::vector<int64_t>{});
}

// Shared Monte Carlo math on host arrays (CPU module only): the Metropolis rule
// and qcdhpc's log, elementwise on float64 vectors, for tests against numpy.
inline void bind_host_mc(pybind11::module_ m) {
  namespace py = pybind11;
  using namespace qcdhpc;
  auto vec = [](const char* name) { return TensorSpec{name, {"n"}, {dtypes::kFloat64}, {}}; };
  const CallDevice cpu{dlpack::kCPU, 0};
  m.def(
      "metropolis_accept",
      [vec, cpu](py::handle dH, py::handle u, py::handle out) {
        ArrayView d = view(dH, vec("dH"), cpu), w = view(u, vec("u"), cpu);
        ArrayView o = view(out, TensorSpec{"out", {"n"}, {dtypes::kUInt8, dtypes::kBool}, {}}, cpu);
        expect_shape(w, d.shape, "u");
        expect_shape(o, d.shape, "out");
        const double *pd = d.ptr<double>(), *pu = w.ptr<double>();
        uint8_t* po = o.ptr<uint8_t>();
        for (int64_t i = 0; i < d.numel(); ++i) {
          if (!(pu[i] > 0.0 && pu[i] < 1.0)) throw py::value_error("u must lie in (0, 1)");
          po[i] = mc::metropolis_accept(pd[i], pu[i]) ? 1 : 0;
        }
      },
      "out[i] = Metropolis decision for (dH[i], u[i]): dH <= 0 or log_positive(u) < -dH.",
      py::arg("dH"), py::arg("u"), py::arg("out"));
  m.def(
      "log_positive",
      [vec, cpu](py::handle x, py::handle out) {
        ArrayView a = view(x, vec("x"), cpu), o = view(out, vec("out"), cpu);
        expect_shape(o, a.shape, "out");
        for (int64_t i = 0; i < a.numel(); ++i) {
          const double v = a.ptr<double>()[i];
          if (!(v >= 2.2250738585072014e-308 && v <= 1.7976931348623157e308))
            throw py::value_error("x must be positive, normal and finite");
          o.ptr<double>()[i] = log_positive(v);
        }
      },
      "qcdhpc's own natural log (core/philox.h), the one Box-Muller and Metropolis use.",
      py::arg("x"), py::arg("out"));
  m.def("accept_uniform", &mc::accept_uniform,
        "The Metropolis uniform of trajectory traj of chain `chain` (mc/streams.h).",
        py::arg("seed"), py::arg("chain"), py::arg("traj"));
}

// A family's submodule: m.<name>, with its numerics version as
// m.<name>.numerics_version and in m.numerics_versions[name]; bind(sub) adds
// the family's functions.
template <class Bind>
inline pybind11::module_ add_family(pybind11::module_& m, const char* name, int numerics_version,
                                    Bind&& bind, const char* doc) {
  pybind11::module_ sub = m.def_submodule(name, doc);
  sub.attr("numerics_version") = numerics_version;
  m.attr("numerics_versions")[name] = numerics_version;
  bind(sub);
  return sub;
}
