// host_device.h — MEFT_HD marks functions that the CUDA kernels (kernels/) call on the device and
// the CPU backend calls on the host, so both backends share one definition (Philox, the dropout
// rule, the fixed-point conversion) and agree bit for bit by construction.
#pragma once

#if defined(__CUDACC__)
#define MEFT_HD __host__ __device__
#else
#define MEFT_HD
#endif
