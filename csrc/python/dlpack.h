// The DLPack C ABI (https://dmlc.github.io/dlpack/latest/c_api.html), the few
// structs qcdhpc reads.  The layout is fixed by the standard; we declare it here
// rather than depend on a framework's copy of the header.
#pragma once

#include <cstdint>

namespace qcdhpc {
namespace dlpack {

enum DeviceType : int32_t { kCPU = 1, kCUDA = 2, kCUDAHost = 3, kCUDAManaged = 13 };
// kComplex: two floats of bits/2 each, real part first (complex64: bits 64, complex128: 128).
enum TypeCode : uint8_t { kInt = 0, kUInt = 1, kFloat = 2, kBfloat = 4, kComplex = 5, kBool = 6 };

struct Device {
  int32_t device_type;
  int32_t device_id;  // e.g. the GPU index of a tensor on cuda:1
};

struct DataType {
  uint8_t code;
  uint8_t bits;  // of one element (one lane); a complex element counts both parts
  uint16_t lanes;
};

struct Tensor {
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL means compact row-major
  uint64_t byte_offset;
};

struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor* self);
};

}  // namespace dlpack
}  // namespace qcdhpc
