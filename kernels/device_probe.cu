// device_probe.cu — the plugin's first entry point: how many CUDA devices are usable.
// Any error (no driver: cudaErrorInsufficientDriver; no device: cudaErrorNoDevice) means none.
#include <cuda_runtime.h>

extern "C" int meft_cuda_device_count() {
    int count = 0;  // cudaGetDeviceCount leaves this untouched on error
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error state
        return 0;
    }
    return count;
}
