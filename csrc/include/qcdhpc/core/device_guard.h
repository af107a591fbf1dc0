// DeviceGuard: run a kernel call on the device its arrays live on.
//
// A DLPack tensor names its device (type, index); a torch tensor on cuda:1 has
// to be worked on with GPU 1 current.  The binding reads the index of the
// call's first array, refuses other arrays on another device, and holds a guard
// for the rest of the call:
//
//   backend::DeviceGuard guard(device_id);   // cudaGetDevice, cudaSetDevice(device_id)
//   ...views, kernels, synchronize...        // all on that device
//   // ~DeviceGuard: cudaSetDevice(previous)  (also when an exception unwinds)
//
// The current device is per host thread, so concurrent calls from Python
// threads (the GIL is released in kernels) do not disturb each other.  The
// CUDA guard is defined in csrc/cuda/runtime_cuda.cpp, so this header (and the
// binding code that includes it) needs no CUDA headers; the CPU one does nothing.
#pragma once

namespace qcdhpc {

namespace cpu {
class DeviceGuard {
 public:
  explicit DeviceGuard(int) {}
};
}  // namespace cpu

namespace cuda {
class DeviceGuard {
 public:
  // Throws std::invalid_argument (Python ValueError) when `device` is not a
  // visible CUDA device, std::runtime_error on other CUDA errors.
  explicit DeviceGuard(int device);
  ~DeviceGuard();  // restores the previous device; never throws
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1, dev_ = -1;
};
}  // namespace cuda

}  // namespace qcdhpc
