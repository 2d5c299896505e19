// gemm_precision.h — how float32 GEMMs are computed (see blas.h).
#pragma once

namespace meft::cuda {

enum class GemmPrecision {
    Float32,  // exact float32, as the CPU (cuBLAS default math, no TF32)
    TF32,     // float32 GEMMs may use TF32 tensor cores
    BF16,     // linear layers' GEMM operands rounded to bf16, float32 accumulation and result
};

}  // namespace meft::cuda
