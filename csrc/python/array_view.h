// DLPack views: arrays from Python (numpy, torch, cupy -- anything with
// __dlpack__) used in place, with every property a kernel relies on checked
// first, so that bad input is a Python exception naming the argument, never a
// crash.  Shared by every family's binding header.
//
// An entry point describes each array argument once, as a TensorSpec, and gets
// a checked view in one line:
//
//   const TensorSpec kWalkers{"z", {"batch", "N"}, {dtypes::kComplex64, dtypes::kComplex128}, {1, 1}};
//   const CallDevice dev = call_device(z_obj, "z", kBackendDevice);  // the first array's device
//   backend::DeviceGuard guard(dev.id);                             // run on that GPU
//   ArrayView z = view(z_obj, kWalkers, dev);                       // checked: device, dtype, rank, extents, layout
//
// Real and complex dtypes (DLPack type codes kFloat = 2, kComplex = 5) are
// supported; the device index is honoured: all arrays of one call must be on the
// device of its first array (call_device), which the binding makes current with
// a DeviceGuard for the whole call.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "dlpack.h"

namespace qcdhpc {
namespace py = pybind11;

// An element type a spec accepts: DLPack (code, bits) and its numpy/torch name.
struct DType {
  uint8_t code;
  uint8_t bits;
  const char* name;
};

namespace dtypes {
constexpr DType kFloat32{dlpack::kFloat, 32, "float32"};
constexpr DType kFloat64{dlpack::kFloat, 64, "float64"};
constexpr DType kComplex64{dlpack::kComplex, 64, "complex64"};
constexpr DType kComplex128{dlpack::kComplex, 128, "complex128"};
constexpr DType kUInt8{dlpack::kUInt, 8, "uint8"};
constexpr DType kBool{dlpack::kBool, 8, "bool"};
constexpr DType kInt32{dlpack::kInt, 32, "int32"};
constexpr DType kInt64{dlpack::kInt, 64, "int64"};
constexpr DType kAll[] = {kFloat32, kFloat64, kComplex64, kComplex128, kUInt8, kBool, kInt32, kInt64,
                          DType{dlpack::kFloat, 16, "float16"}, DType{dlpack::kBfloat, 16, "bfloat16"},
                          DType{dlpack::kInt, 8, "int8"}, DType{dlpack::kInt, 16, "int16"},
                          DType{dlpack::kUInt, 16, "uint16"}, DType{dlpack::kUInt, 32, "uint32"},
                          DType{dlpack::kUInt, 64, "uint64"}, DType{dlpack::kComplex, 32, "complex32"}};
}  // namespace dtypes

inline std::string dtype_name(const dlpack::DataType& t) {
  for (const DType& d : dtypes::kAll)
    if (d.code == t.code && d.bits == t.bits) return d.name;
  return "dlpack(code=" + std::to_string(t.code) + ", bits=" + std::to_string(t.bits) + ")";
}

// What an entry point accepts for one array argument.
struct TensorSpec {
  std::string name;                // the argument's name, in every message
  std::vector<std::string> dims;   // names of the axes, e.g. {"batch", "L0", "L1"}: the rank
  std::vector<DType> dtypes;       // allowed element types
  std::vector<int64_t> min_extent; // per axis; empty: no minimum
};

// A borrowed view of a DLPack tensor.  The capsule is held (not consumed) for
// the duration of the call; the array it came from is the caller's argument,
// so the memory outlives the view.
struct ArrayView {
  py::object capsule;
  void* data = nullptr;
  std::vector<int64_t> shape;
  dlpack::DataType dtype{};
  int32_t device_type = 0;
  int32_t device_id = 0;

  bool is(const DType& d) const { return dtype.code == d.code && dtype.bits == d.bits; }
  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
};

inline const char* device_type_name(int32_t t) {
  switch (t) {
    case dlpack::kCPU: return "cpu";
    case dlpack::kCUDA: return "cuda";
    case dlpack::kCUDAHost: return "cuda_host";
    case dlpack::kCUDAManaged: return "cuda_managed";
    default: return "unknown";
  }
}

inline std::string device_str(int32_t type, int32_t id) {
  return type == dlpack::kCPU ? std::string("cpu")
                              : std::string(device_type_name(type)) + ":" + std::to_string(id);
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

inline std::string dims_str(const std::vector<std::string>& d) {
  std::string r = "(";
  for (size_t i = 0; i < d.size(); ++i) r += (i ? ", " : "") + d[i];
  return r + (d.size() == 1 ? ",)" : ")");
}

// The device all arrays of one call must be on: that of its first array
// (`first`, whose device call_device has already read).
struct CallDevice {
  int32_t type;
  int32_t id;
  PyObject* first = nullptr;
};

inline void require_dlpack(py::handle obj, const std::string& name) {
  if (!py::hasattr(obj, "__dlpack__"))
    throw py::type_error(name + ": expected an array with DLPack support (numpy, torch, cupy), got " +
                         std::string(py::str(py::type::handle_of(obj))));
}

inline void check_device(int32_t type, int32_t id, const CallDevice& want, const std::string& name) {
  if (type != want.type)
    throw py::value_error(name + ": array is on device '" + device_type_name(type) +
                          "' but this kernel runs on '" + device_type_name(want.type) + "'");
  if (type != dlpack::kCPU && id != want.id)
    throw py::value_error(name + ": array is on " + device_str(type, id) +
                          " but the call's first array is on " + device_str(want.type, want.id) +
                          "; all arrays of one call must be on one device");
}

// The device of `first` (read from __dlpack_device__, before anything is
// exported: a CPU producer refuses the CUDA stream argument, and torch exports a
// CUDA tensor only while its GPU is current, which the caller's DeviceGuard makes
// it).  want_type: the backend's DLPack device type.
inline CallDevice call_device(py::handle first, const std::string& name, int32_t want_type) {
  require_dlpack(first, name);
  CallDevice d{want_type, 0, first.ptr()};
  if (py::hasattr(first, "__dlpack_device__")) {
    const auto dev = first.attr("__dlpack_device__")().cast<py::tuple>();
    const int32_t t = dev[0].cast<int32_t>(), id = dev[1].cast<int32_t>();
    check_device(t, id, CallDevice{want_type, id}, name);
    d.id = want_type == dlpack::kCPU ? 0 : id;
  }
  return d;
}

// A checked view of `obj` as described by `spec`, on the call's device.
inline ArrayView view(py::handle obj, const TensorSpec& spec, const CallDevice& dev) {
  const std::string& name = spec.name;
  if (obj.ptr() != dev.first) require_dlpack(obj, name);
  if (obj.ptr() != dev.first && py::hasattr(obj, "__dlpack_device__")) {
    const auto d = obj.attr("__dlpack_device__")().cast<py::tuple>();
    check_device(d[0].cast<int32_t>(), d[1].cast<int32_t>(), dev, name);
  }
  ArrayView v;
  // For CUDA, stream=1 asks the producer to order its work before the legacy
  // default stream, on which our kernels run (DLPack __dlpack__ protocol).
  v.capsule = dev.type == dlpack::kCUDA ? obj.attr("__dlpack__")(py::arg("stream") = 1)
                                        : obj.attr("__dlpack__")();
  PyObject* cap = v.capsule.ptr();
  if (!PyCapsule_IsValid(cap, "dltensor"))
    throw py::type_error(name + ": __dlpack__ did not return an unconsumed 'dltensor' capsule");
  auto* m = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  const dlpack::Tensor& t = m->dl_tensor;
  v.device_type = t.device.device_type;
  v.device_id = t.device.device_id;
  check_device(v.device_type, v.device_id, dev, name);
  if (t.dtype.lanes != 1) throw py::type_error(name + ": vector dtypes are not supported");
  v.dtype = t.dtype;
  v.shape.assign(t.shape, t.shape + t.ndim);

  bool dtype_ok = false;
  for (const DType& d : spec.dtypes) dtype_ok = dtype_ok || v.is(d);
  if (!dtype_ok) {
    std::string allowed;
    for (size_t i = 0; i < spec.dtypes.size(); ++i)
      allowed += (i == 0 ? "" : i + 1 == spec.dtypes.size() ? " or " : ", ") + std::string(spec.dtypes[i].name);
    throw py::type_error(name + ": dtype must be " + allowed + ", got " + dtype_name(v.dtype));
  }
  if (v.shape.size() != spec.dims.size())
    throw py::value_error(name + ": expected shape " + dims_str(spec.dims) + ", got " + shape_str(v.shape));
  bool extents_ok = true;
  for (size_t i = 0; i < spec.min_extent.size(); ++i) extents_ok = extents_ok && v.shape[i] >= spec.min_extent[i];
  if (!extents_ok) {
    std::string need;
    for (size_t i = 0; i < spec.dims.size(); ++i)
      need += (i ? ", " : "") + spec.dims[i] + " >= " + std::to_string(spec.min_extent[i]);
    throw py::value_error(name + ": need " + need + ", got " + shape_str(v.shape));
  }
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

// ----------------------------------------------------------- relations ------

inline void expect_shape(const ArrayView& a, const std::vector<int64_t>& shape, const std::string& name) {
  if (a.shape != shape)
    throw py::value_error(name + ": expected shape " + shape_str(shape) + ", got " + shape_str(a.shape));
}

// Same shape and dtype as `ref`, and not the same memory.
inline void expect_like(const ArrayView& a, const ArrayView& ref, const std::string& name,
                        const std::string& ref_name) {
  if (a.shape != ref.shape || a.dtype.code != ref.dtype.code || a.dtype.bits != ref.dtype.bits)
    throw py::value_error(name + ": must have the shape and dtype of " + ref_name + " " +
                          shape_str(ref.shape) + " " + dtype_name(ref.dtype));
  if (a.data == ref.data) throw py::value_error(name + ": must not alias " + ref_name);
}

// Calls f(Real{}) with Real matching a float32/float64 view's dtype.
template <class F>
void dispatch_real(const ArrayView& v, F&& f) {
  if (v.is(dtypes::kFloat64))
    f(double{});
  else
    f(float{});
}

}  // namespace qcdhpc
