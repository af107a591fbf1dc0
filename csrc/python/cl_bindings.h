// pybind11 bindings of the complex Langevin (cl) family, expanded once per
// backend into the submodule _qcdhpc_<backend>.cl (see core_bindings.h, add_family).
//
// The including module file defines `backend` and kBackendDevice.  Every property
// the kernels rely on -- device and device index, dtype, rank, shape, contiguity,
// parameter ranges -- is checked here, so bad input is a Python exception, never a
// crash; qcdhpc/kernels/cl.py repeats the checks with friendlier messages (and the
// models' convergence conditions, qcdhpc/cl/models.py).  Each call runs on the
// device of its first array (DeviceGuard) and releases the GIL while the kernels run.
#pragma once

#include <pybind11/complex.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <complex>
#include <limits>
#include <string>

#include "array_view.h"
#include "qcdhpc/cl/backend_api.h"
#include "qcdhpc/core/runtime.h"

namespace qcdhpc {
namespace cl_bind {

inline const TensorSpec kZ{"z", {"walkers"}, {dtypes::kComplex128}, {1}};
inline const TensorSpec kPhi{"phi", {"batch", "field", "sites"}, {dtypes::kComplex128}, {1, 2, 2}};
inline const TensorSpec kDriftOut{"out", {"batch", "field", "sites"}, {dtypes::kComplex128}, {1, 2, 2}};
inline TensorSpec per_item(const char* name, DType d) { return TensorSpec{name, {"batch"}, {d}, {}}; }
inline TensorSpec per_record(const char* name, DType d) {
  return TensorSpec{name, {"batch", "nrec"}, {d}, {}};
}
inline const TensorSpec kFrozen{"runaway", {"batch"}, {dtypes::kUInt8, dtypes::kBool}, {}};
inline const TensorSpec kNoise{"out", {"batch", "n"}, {dtypes::kFloat64}, {1, 1}};

inline void expect_finite(double x, const char* name) {
  if (!std::isfinite(x)) throw py::value_error(std::string(name) + " must be finite");
}

inline int parse_scheme(const std::string& s) {
  if (s == "euler") return cl::kEuler;
  if (s == "heun") return cl::kHeun;
  throw py::value_error("scheme must be 'euler' or 'heun', got '" + s + "'");
}

// The step parameters shared by both models, checked.
inline cl::StepParams step_params(double dt, double n_y, double bound, int64_t nsteps, int64_t every) {
  if (!(std::isfinite(dt) && dt > 0)) throw py::value_error("dt must be finite and > 0");
  if (!(std::isfinite(n_y) && n_y >= 0)) throw py::value_error("n_y must be finite and >= 0");
  if (!(bound > 0) || std::isnan(bound)) throw py::value_error("bound must be > 0");
  if (nsteps < 1) throw py::value_error("nsteps must be >= 1");
  if (every < 1) throw py::value_error("every must be >= 1");
  cl::StepParams p;
  p.dt = dt;
  p.two_nx = 2.0 * (1.0 + n_y);
  p.two_ny = 2.0 * n_y;
  p.bound2 = bound * bound;
  p.sx = cl::noise_scale(dt, p.two_nx);
  p.sy = cl::noise_scale(dt, p.two_ny);
  return p;
}

inline cl::QuarticCoeffs quartic_coeffs(std::complex<double> sigma, double lam) {
  expect_finite(sigma.real(), "sigma");
  expect_finite(sigma.imag(), "sigma");
  expect_finite(lam, "lam");
  if (lam < 0) throw py::value_error("lam must be >= 0");
  if (lam == 0 && !(sigma.real() > 0)) throw py::value_error("lam = 0 needs Re sigma > 0");
  return cl::QuarticCoeffs{cl::C128{sigma.real(), sigma.imag()}, lam};
}

// Coefficients of the Bose gas, and the lattice checked against phi (B, 2, N^d).
inline cl::BoseCoeffs bose_coeffs(const ArrayView& phi, int64_t N, int d, double m, double lam, double mu) {
  if (d < 1 || d > 4) throw py::value_error("d must be in 1..4");
  if (N < 2) throw py::value_error("N must be >= 2");
  double v = 1;
  for (int i = 0; i < d; ++i) v *= double(N);
  if (v > double(std::numeric_limits<int32_t>::max()))
    throw py::value_error("N^d must be below 2^31 sites");
  if (phi.shape[1] != 2 || phi.shape[2] != cl::lattice_volume(N, d))
    throw py::value_error("phi: expected shape (batch, 2, N^d) = (batch, 2, " +
                          std::to_string(cl::lattice_volume(N, d)) + "), got " + shape_str(phi.shape));
  expect_finite(m, "m");
  expect_finite(lam, "lam");
  expect_finite(mu, "mu");
  if (lam < 0) throw py::value_error("lam must be >= 0");
  return cl::BoseCoeffs{2.0 * d + m * m, lam, std::cosh(mu), std::sinh(mu)};
}

}  // namespace cl_bind
}  // namespace qcdhpc

inline void bind_cl(pybind11::module_& m) {
  namespace py = pybind11;
  using namespace qcdhpc;
  using namespace qcdhpc::cl_bind;

  m.attr("RNG_LANGEVIN") = int(mc::kRngLangevin);
  m.attr("RNG_LANGEVIN_WALKER") = int(mc::kRngLangevinWalker);

  m.def(
      "quartic_langevin",
      [](py::handle z, std::complex<double> sigma, double lam, double dt, int64_t nsteps,
         int64_t every, const std::string& scheme, uint64_t seed, uint64_t walker_offset,
         uint64_t step_offset, double n_y, py::handle kbar, py::handle t, py::handle runaway,
         py::handle records, py::handle weights, double bound) {
        const CallDevice dev = call_device(z, "z", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView zv = view(z, kZ, dev);
        const int64_t W = zv.shape[0];
        const cl::QuarticCoeffs c = quartic_coeffs(sigma, lam);
        const cl::StepParams p = step_params(dt, n_y, bound, nsteps, every);
        const int sch = parse_scheme(scheme);
        const int64_t nrec = (nsteps + every - 1) / every;
        ArrayView tv = view(t, per_item("t", dtypes::kFloat64), dev);
        ArrayView fv = view(runaway, kFrozen, dev);
        ArrayView rv = view(records, per_record("records", dtypes::kComplex128), dev);
        ArrayView wv = view(weights, per_record("weights", dtypes::kFloat64), dev);
        expect_shape(tv, {W}, "t");
        expect_shape(fv, {W}, "runaway");
        expect_shape(rv, {W, nrec}, "records");
        expect_shape(wv, {W, nrec}, "weights");
        const double* kb = nullptr;
        ArrayView kv;
        if (!kbar.is_none()) {
          kv = view(kbar, per_item("kbar", dtypes::kFloat64), dev);
          expect_shape(kv, {W}, "kbar");
          kb = kv.ptr<const double>();
        }
        py::gil_scoped_release nogil;
        backend::quartic_langevin(zv.ptr<cl::C128>(), W, c, p, sch, n_y > 0, kb, tv.ptr<double>(),
                                  fv.ptr<uint8_t>(), seed, walker_offset, step_offset, nsteps, every,
                                  rv.ptr<cl::C128>(), wv.ptr<double>());
        backend::device_synchronize();
      },
      "nsteps complex Langevin steps of the quartic walkers z (complex128, (W,)) in place; t "
      "(float64) and runaway (uint8/bool), (W,), in/out; records (complex128) and weights "
      "(float64), (W, ceil(nsteps/every)), out; kbar (float64 (W,)) or None (fixed step).",
      py::arg("z"), py::arg("sigma"), py::arg("lam"), py::arg("dt"), py::arg("nsteps"),
      py::arg("every"), py::arg("scheme"), py::arg("seed"), py::arg("walker_offset"),
      py::arg("step_offset"), py::arg("n_y"), py::arg("kbar"), py::arg("t"), py::arg("runaway"),
      py::arg("records"), py::arg("weights"), py::arg("bound"));

  m.def(
      "quartic_kmax",
      [](py::handle z, std::complex<double> sigma, double lam, py::handle out) {
        const CallDevice dev = call_device(z, "z", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView zv = view(z, kZ, dev);
        ArrayView o = view(out, per_item("out", dtypes::kFloat64), dev);
        expect_shape(o, {zv.shape[0]}, "out");
        const cl::QuarticCoeffs c = quartic_coeffs(sigma, lam);
        py::gil_scoped_release nogil;
        backend::quartic_kmax(zv.ptr<const cl::C128>(), zv.shape[0], c, o.ptr<double>());
        backend::device_synchronize();
      },
      "|K(z)| = |sigma z + lam z^3| per walker into out (float64, (W,)).",
      py::arg("z"), py::arg("sigma"), py::arg("lam"), py::arg("out"));

  m.def(
      "bose_langevin",
      [](py::handle phi, int64_t N, int d, double mass, double lam, double mu, double dt,
         int64_t nsteps, int64_t every, const std::string& scheme, uint64_t seed,
         uint64_t field_offset, uint64_t step_offset, double n_y, py::handle kbar, py::handle t,
         py::handle runaway, py::handle density, py::handle phi2, py::handle kmax,
         py::handle weights, double bound) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        const int64_t B = f.shape[0];
        const cl::BoseCoeffs c = bose_coeffs(f, N, d, mass, lam, mu);
        const cl::StepParams p = step_params(dt, n_y, bound, nsteps, every);
        const int sch = parse_scheme(scheme);
        const int64_t nrec = (nsteps + every - 1) / every;
        ArrayView tv = view(t, per_item("t", dtypes::kFloat64), dev);
        ArrayView fv = view(runaway, kFrozen, dev);
        ArrayView dv = view(density, per_record("density", dtypes::kComplex128), dev);
        ArrayView pv = view(phi2, per_record("phi2", dtypes::kComplex128), dev);
        ArrayView kv = view(kmax, per_record("kmax", dtypes::kFloat64), dev);
        ArrayView wv = view(weights, per_record("weights", dtypes::kFloat64), dev);
        expect_shape(tv, {B}, "t");
        expect_shape(fv, {B}, "runaway");
        expect_shape(dv, {B, nrec}, "density");
        expect_shape(pv, {B, nrec}, "phi2");
        expect_shape(kv, {B, nrec}, "kmax");
        expect_shape(wv, {B, nrec}, "weights");
        const double* kb = nullptr;
        ArrayView kbv;
        if (!kbar.is_none()) {
          kbv = view(kbar, per_item("kbar", dtypes::kFloat64), dev);
          expect_shape(kbv, {B}, "kbar");
          kb = kbv.ptr<const double>();
        }
        py::gil_scoped_release nogil;
        backend::bose_langevin(f.ptr<cl::C128>(), B, N, d, c, p, sch, n_y > 0, kb, tv.ptr<double>(),
                               fv.ptr<uint8_t>(), seed, field_offset, step_offset, nsteps, every,
                               dv.ptr<cl::C128>(), pv.ptr<cl::C128>(), kv.ptr<double>(),
                               wv.ptr<double>());
        backend::device_synchronize();
      },
      "nsteps complex Langevin steps of the Bose-gas configurations phi (complex128, "
      "(B, 2, N^d)) in place; t, runaway (B,) in/out; per record (B, ceil(nsteps/every)): "
      "density, phi2 (complex128), kmax, weights (float64).",
      py::arg("phi"), py::arg("N"), py::arg("d"), py::arg("m"), py::arg("lam"), py::arg("mu"),
      py::arg("dt"), py::arg("nsteps"), py::arg("every"), py::arg("scheme"), py::arg("seed"),
      py::arg("field_offset"), py::arg("step_offset"), py::arg("n_y"), py::arg("kbar"),
      py::arg("t"), py::arg("runaway"), py::arg("density"), py::arg("phi2"), py::arg("kmax"),
      py::arg("weights"), py::arg("bound"));

  m.def(
      "bose_drift",
      [](py::handle phi, int64_t N, int d, double mass, double lam, double mu, py::handle out) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView o = view(out, kDriftOut, dev);
        expect_like(o, f, "out", "phi");
        const cl::BoseCoeffs c = bose_coeffs(f, N, d, mass, lam, mu);
        py::gil_scoped_release nogil;
        backend::bose_drift(f.ptr<const cl::C128>(), f.shape[0], N, d, c, o.ptr<cl::C128>());
        backend::device_synchronize();
      },
      "The drift K_a(x) = -dS/dphi_a(x) of each configuration into out (shape of phi).",
      py::arg("phi"), py::arg("N"), py::arg("d"), py::arg("m"), py::arg("lam"), py::arg("mu"),
      py::arg("out"));

  m.def(
      "bose_kmax",
      [](py::handle phi, int64_t N, int d, double mass, double lam, double mu, py::handle out) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView o = view(out, per_item("out", dtypes::kFloat64), dev);
        expect_shape(o, {f.shape[0]}, "out");
        const cl::BoseCoeffs c = bose_coeffs(f, N, d, mass, lam, mu);
        py::gil_scoped_release nogil;
        backend::bose_kmax(f.ptr<const cl::C128>(), f.shape[0], N, d, c, o.ptr<double>());
        backend::device_synchronize();
      },
      "K_max = max over (a, x) of |K_a(x)| per configuration into out (float64, (B,)).",
      py::arg("phi"), py::arg("N"), py::arg("d"), py::arg("m"), py::arg("lam"), py::arg("mu"),
      py::arg("out"));

  m.def(
      "bose_observables",
      [](py::handle phi, int64_t N, int d, double mu, py::handle density, py::handle phi2) {
        const CallDevice dev = call_device(phi, "phi", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView f = view(phi, kPhi, dev);
        ArrayView dv = view(density, per_item("density", dtypes::kComplex128), dev);
        ArrayView pv = view(phi2, per_item("phi2", dtypes::kComplex128), dev);
        expect_shape(dv, {f.shape[0]}, "density");
        expect_shape(pv, {f.shape[0]}, "phi2");
        const cl::BoseCoeffs c = bose_coeffs(f, N, d, 0.0, 0.0, mu);
        py::gil_scoped_release nogil;
        backend::bose_observables(f.ptr<const cl::C128>(), f.shape[0], N, d, c,
                                  dv.ptr<cl::C128>(), pv.ptr<cl::C128>());
        backend::device_synchronize();
      },
      "Density n (B4) and <phi* phi> (B5) of each configuration into density, phi2 "
      "(complex128, (B,)).",
      py::arg("phi"), py::arg("N"), py::arg("d"), py::arg("mu"), py::arg("density"),
      py::arg("phi2"));

  m.def(
      "langevin_noise",
      [](py::handle out, uint64_t seed, uint64_t offset, uint64_t step) {
        const CallDevice dev = call_device(out, "out", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView o = view(out, kNoise, dev);
        py::gil_scoped_release nogil;
        backend::langevin_noise(o.ptr<double>(), o.shape[0], o.shape[1], seed, offset, step);
        backend::device_synchronize();
      },
      "The Langevin noise of a step: out (B, n) float64, row b from key (seed, offset + b) and "
      "counters (blk, step, RNG_LANGEVIN, 0) (mc::fill_normal's layout).",
      py::arg("out"), py::arg("seed"), py::arg("offset"), py::arg("step"));

  m.def(
      "quartic_noise",
      [](py::handle out, uint64_t seed, uint64_t offset, uint64_t step) {
        const CallDevice dev = call_device(out, "out", kBackendDevice);
        backend::DeviceGuard guard(dev.id);
        ArrayView o = view(out, kNoise, dev);
        py::gil_scoped_release nogil;
        backend::quartic_noise(o.ptr<double>(), o.shape[0], o.shape[1], seed, offset, step);
        backend::device_synchronize();
      },
      "The quartic walkers' noise of a step: out (W, n) float64, out[w, i] = entry n step + i of "
      "walker offset + w's stream of normals (four per Philox block, counters "
      "(0, j div 4, RNG_LANGEVIN_WALKER, 0); cl/site.h).",
      py::arg("out"), py::arg("seed"), py::arg("offset"), py::arg("step"));
}
