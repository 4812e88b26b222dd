#include <cuda_runtime.h>

#include <string>

#include "engine/kernels/cuda/dequant_cuda.h"

namespace v4agent::engine::cuda {
namespace {

__device__ float E4M3(uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 7;
  float v;
  if (exp == 0xF && man == 7) {
    v = __int_as_float(0x7fc00000);
  } else if (exp == 0) {
    v = ldexpf(man / 8.0f, -6);
  } else {
    v = ldexpf(1.0f + man / 8.0f, exp - 7);
  }
  return sign ? -v : v;
}

__device__ float E2M1(uint8_t code) {
  const float kValues[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float v = kValues[code & 7];
  return (code & 8) ? -v : v;
}

__device__ float Ue8m0(uint8_t b) {
  return b == 0xFF ? __int_as_float(0x7fc00000) : ldexpf(1.0f, static_cast<int>(b) - 127);
}

__global__ void DequantFp8Kernel(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols,
                                 float* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols, scols = (cols + 127) / 128;
  out[i] = E4M3(w[i]) * Ue8m0(s[(r / 128) * scols + c / 128]);
}

__global__ void DequantFp4Kernel(const uint8_t* p, const uint8_t* s, int64_t rows, int64_t cols,
                                 float* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * cols) return;
  const int64_t r = i / cols, c = i % cols;
  const uint8_t byte = p[r * (cols / 2) + c / 2];
  const uint8_t code = (c % 2 == 0) ? (byte & 0xF) : (byte >> 4);
  out[i] = E2M1(code) * Ue8m0(s[r * (cols / 32) + c / 32]);
}

// One block per output row; threads stride over the row, then a shared-memory tree reduction.
__global__ void MatVecFp8Kernel(const uint8_t* w, const uint8_t* s, int64_t rows, int64_t cols,
                                const float* x, float* y) {
  extern __shared__ float partial[];
  const int64_t r = blockIdx.x;
  const int64_t scols = (cols + 127) / 128;
  float acc = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    acc += E4M3(w[r * cols + c]) * Ue8m0(s[(r / 128) * scols + c / 128]) * x[c];
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int step = blockDim.x / 2; step > 0; step /= 2) {
    if (threadIdx.x < step) partial[threadIdx.x] += partial[threadIdx.x + step];
    __syncthreads();
  }
  if (threadIdx.x == 0) y[r] = partial[0];
}

Status CudaError(cudaError_t e, const char* what) {
  return InternalError(std::string(what) + ": " + cudaGetErrorString(e));
}

// Device buffer released on scope exit.
struct DeviceBuffer {
  void* ptr = nullptr;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

Status Upload(const void* host, size_t bytes, DeviceBuffer* dev) {
  cudaError_t e = cudaMalloc(&dev->ptr, bytes);
  if (e != cudaSuccess) return CudaError(e, "cudaMalloc");
  e = cudaMemcpy(dev->ptr, host, bytes, cudaMemcpyHostToDevice);
  return e == cudaSuccess ? Status::Ok() : CudaError(e, "cudaMemcpy to device");
}

Status NeedDevice() {
  if (DeviceCount() == 0) return UnavailableError("no CUDA device is available");
  return Status::Ok();
}

}  // namespace

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

Result<std::vector<float>> DequantFp8(const uint8_t* weight, const uint8_t* scale, int64_t rows,
                                      int64_t cols) {
  V4_RETURN_IF_ERROR(NeedDevice());
  const size_t n = static_cast<size_t>(rows * cols);
  const size_t ns = static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128));
  DeviceBuffer w, s, out;
  V4_RETURN_IF_ERROR(Upload(weight, n, &w));
  V4_RETURN_IF_ERROR(Upload(scale, ns, &s));
  cudaError_t e = cudaMalloc(&out.ptr, n * sizeof(float));
  if (e != cudaSuccess) return CudaError(e, "cudaMalloc");
  const int threads = 256;
  DequantFp8Kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(
      static_cast<uint8_t*>(w.ptr), static_cast<uint8_t*>(s.ptr), rows, cols,
      static_cast<float*>(out.ptr));
  std::vector<float> host(n);
  e = cudaMemcpy(host.data(), out.ptr, n * sizeof(float), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return CudaError(e, "DequantFp8");
  return host;
}

Result<std::vector<float>> DequantFp4(const uint8_t* packed, const uint8_t* scale, int64_t rows,
                                      int64_t cols) {
  V4_RETURN_IF_ERROR(NeedDevice());
  const size_t n = static_cast<size_t>(rows * cols);
  DeviceBuffer p, s, out;
  V4_RETURN_IF_ERROR(Upload(packed, n / 2, &p));
  V4_RETURN_IF_ERROR(Upload(scale, n / 32, &s));
  cudaError_t e = cudaMalloc(&out.ptr, n * sizeof(float));
  if (e != cudaSuccess) return CudaError(e, "cudaMalloc");
  const int threads = 256;
  DequantFp4Kernel<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(
      static_cast<uint8_t*>(p.ptr), static_cast<uint8_t*>(s.ptr), rows, cols,
      static_cast<float*>(out.ptr));
  std::vector<float> host(n);
  e = cudaMemcpy(host.data(), out.ptr, n * sizeof(float), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return CudaError(e, "DequantFp4");
  return host;
}

Result<std::vector<float>> MatVecFp8(const uint8_t* weight, const uint8_t* scale, int64_t rows,
                                     int64_t cols, const std::vector<float>& x) {
  V4_RETURN_IF_ERROR(NeedDevice());
  if (static_cast<int64_t>(x.size()) != cols)
    return InvalidArgumentError("MatVecFp8: x has the wrong size");
  const size_t n = static_cast<size_t>(rows * cols);
  const size_t ns = static_cast<size_t>(((rows + 127) / 128) * ((cols + 127) / 128));
  DeviceBuffer w, s, dx, dy;
  V4_RETURN_IF_ERROR(Upload(weight, n, &w));
  V4_RETURN_IF_ERROR(Upload(scale, ns, &s));
  V4_RETURN_IF_ERROR(Upload(x.data(), x.size() * sizeof(float), &dx));
  cudaError_t e = cudaMalloc(&dy.ptr, static_cast<size_t>(rows) * sizeof(float));
  if (e != cudaSuccess) return CudaError(e, "cudaMalloc");
  const int threads = 256;
  MatVecFp8Kernel<<<static_cast<unsigned>(rows), threads, threads * sizeof(float)>>>(
      static_cast<uint8_t*>(w.ptr), static_cast<uint8_t*>(s.ptr), rows, cols,
      static_cast<float*>(dx.ptr), static_cast<float*>(dy.ptr));
  std::vector<float> y(static_cast<size_t>(rows));
  e = cudaMemcpy(y.data(), dy.ptr, y.size() * sizeof(float), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return CudaError(e, "MatVecFp8");
  return y;
}

}  // namespace v4agent::engine::cuda
