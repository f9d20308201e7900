// tri_emu_abi.h — what the host-compiled kernels, the emulator's C++ runtime (csrc/runtime.cpp) and its
// Rust side (src/exec.rs `ThreadCtx`, src/registry.rs) share. No CUDA header needed.
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {

struct TriEmuDim3 {
    unsigned x, y, z;
};

// The emulated thread that is running on this OS thread; the scheduler sets it before it runs a thread.
struct TriEmuThread {
    TriEmuDim3 thread_idx;
    TriEmuDim3 block_idx;
    TriEmuDim3 block_dim;
    TriEmuDim3 grid_dim;
    unsigned linear;  // x + y·bx + z·bx·by
    unsigned lane;    // linear % 32
    unsigned warp;    // linear / 32
    unsigned on_fiber;
    void* block;  // the emulator's per-block state
    unsigned char* dynamic_shared;
};

// Implemented by the emulator (csrc/runtime.cpp over src/exec.rs). Collectives suspend the calling fiber
// until the other participants arrive.
void tri_emu_syncthreads(const char* file, int line);
uint64_t tri_emu_warp_op(int op, unsigned mask, uint64_t value, int arg, int width, const char* file, int line);
void* tri_emu_shared(const void* tag, size_t bytes, size_t align);
// Implemented in csrc/runtime.cpp: records a fault of the running thread and abandons it.
void tri_emu_fault_here(int kind, uint64_t addr, uint64_t bytes, int is_write);
void tri_emu_check_access(const void* addr, uint64_t bytes, int is_write);
// cp.async (csrc/runtime.cpp): `bytes` (4, 8 or 16) from global `src` to shared `dst`, the first
// `src_bytes` read at issue and the rest zero; the copy lands when the issuing thread's
// tri_emu_cp_async_wait covers its group (the copies since its previous commit).
void tri_emu_cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes);
void tri_emu_cp_async_commit(void);
// Lands every copy of the calling thread except those of its newest `in_flight` committed groups.
void tri_emu_cp_async_wait(unsigned in_flight);

typedef void (*TriEmuLaunchFn)(void** params);
struct TriEmuKernelEntry {
    const char* name;
    TriEmuLaunchFn launch;
    unsigned num_params;
    const unsigned* param_sizes;     // sizeof of each parameter in the host C++ signature
    const unsigned char* param_ptr;  // 1 where the parameter is a pointer (a device address)
};
struct TriEmuModuleTable {
    const char* module;
    unsigned num_kernels;
    const TriEmuKernelEntry* kernels;
};
}

extern thread_local TriEmuThread* tri_emu_cur;
