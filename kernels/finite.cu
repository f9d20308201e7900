// finite.cu — the sampler's non-finite watch: records in device memory the first step at which a
// state tensor held a NaN or an infinity (atomicMin over the step), so a sampling loop never waits
// for the host to scan its state; the host reads the word once, after the run. CPU twin: the
// immediate scan of `FiniteWatch::check` (src/ops/finite.rs).
// Launch: 1-D grid-stride over n elements, 256 threads per CTA. Read-only over x: memory-bound.
#include "common/storage.cuh"

extern "C" __global__ void watch_nonfinite_f32(const float* __restrict__ x, unsigned int* first_bad,
                                               const unsigned long long n, const unsigned int step) {
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        if (!isfinite(x[i])) {
            atomicMin(first_bad, step);
            return;
        }
    }
}
