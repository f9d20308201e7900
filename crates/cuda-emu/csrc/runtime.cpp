// runtime.cpp — the C++ half of the emulator's execution (the Rust half is src/exec.rs):
//   - tri_emu_cur, the emulated thread running on this OS thread (read by threadIdx & co.);
//   - memcheck: the hooks that gcc's -fsanitize=kernel-address instrumentation calls before every load
//     and store of a checked kernel build (--param asan-instrumentation-with-call-threshold=0 turns
//     every access into a call; no ASan runtime is linked, these functions are the runtime). Device
//     memory and shared-memory arenas live in one reserved range with a byte-exact shadow (ASan's
//     encoding: per 8-byte granule, 0 = addressable, k = only the first k bytes, >= 0xf0 = not
//     addressable, the value says why), written by src/memory.rs;
//   - cp.async: each emulated thread's copies in flight, landing at the wait that covers them;
//   - the loop that runs the threads of a block one after the other when the kernel has no barrier or
//     warp collective (no fiber needed), with a longjmp escape for a faulting thread.
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "tri_emu_abi.h"

thread_local TriEmuThread* tri_emu_cur = nullptr;
// Set while tri_emu_run_plain runs a thread: where a fault jumps to.
static thread_local jmp_buf* tri_emu_escape = nullptr;

namespace {
struct MemoryMap {
    uintptr_t base = 0;
    uintptr_t size = 0;
    const uint8_t* shadow = nullptr;
    uintptr_t heap_size = 0;
    const uintptr_t* heap_marked = nullptr;  // heap offsets at or past this were never allocated
};
MemoryMap g_map;
}  // namespace

extern "C" {

// Implemented in Rust (src/exec.rs): records the fault with the running thread's coordinates. On a
// fiber it does not return (the thread is abandoned); in the plain loop it returns and we jump out.
void tri_emu_report(int kind, uint64_t addr, uint64_t bytes, int is_write);

void tri_emu_set_current(TriEmuThread* t) { tri_emu_cur = t; }

void tri_emu_set_memory_map(uintptr_t base, uintptr_t size, const uint8_t* shadow, uintptr_t heap_size,
                            const uintptr_t* heap_marked) {
    g_map.base = base;
    g_map.size = size;
    g_map.shadow = shadow;
    g_map.heap_size = heap_size;
    g_map.heap_marked = heap_marked;
}

// Fault kinds, shared with src/exec.rs (`FaultKind`).
enum {
    TRI_FAULT_OUT_OF_BOUNDS = 1,
    TRI_FAULT_USE_AFTER_FREE = 2,
    TRI_FAULT_MISALIGNED = 3,
    TRI_FAULT_NULL = 4,
    TRI_FAULT_TRAP = 6,
};

__attribute__((noinline, cold)) void tri_emu_fault_here(int kind, uint64_t addr, uint64_t bytes, int is_write) {
    tri_emu_report(kind, addr, bytes, is_write);
    if (tri_emu_escape) longjmp(*tri_emu_escape, 1);
    __builtin_trap();  // unreachable: tri_emu_report does not return on a fiber
}

// Shadow values (src/memory.rs `Shadow`): 0xfd freed; every other value >= 8 is "not addressable".
static inline int shadow_fault(uint8_t s) { return s == 0xfd ? TRI_FAULT_USE_AFTER_FREE : TRI_FAULT_OUT_OF_BOUNDS; }

// ---- racecheck: shared-memory hazards between warps within one barrier interval ---------------------
// Per 4-byte word of this OS thread's shared arena: the barrier interval (epoch) and thread of the last
// write, and of the reads since. Epochs only grow (a new block or a released barrier starts a new one),
// so nothing is ever cleared. A hazard is two accesses to one word in the same interval by threads of
// different warps, at least one a write (lanes of one warp are ordered by their warp collectives, which
// this does not track, so they are not compared).
static int g_racecheck = 0;
static uintptr_t g_arena_bytes = 0;
struct RaceWord {
    uint32_t w_epoch, r_epoch;
    uint16_t w_thread, r_thread;
    uint16_t r_many_warps, pad;
};
static thread_local std::unique_ptr<RaceWord[]> race_words;
static thread_local uint32_t race_epoch = 0;

void tri_emu_set_racecheck(int on, uintptr_t arena_bytes) {
    __atomic_store_n(&g_arena_bytes, arena_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&g_racecheck, on, __ATOMIC_RELAXED);
}
// A new block, or a barrier released: a new interval on this OS thread.
void tri_emu_race_epoch(void) { ++race_epoch; }

enum { TRI_RACE_RAW = 7, TRI_RACE_WAR = 8, TRI_RACE_WAW = 9 };

__attribute__((noinline)) static void race_access(uintptr_t shared_off, uintptr_t a, uintptr_t n, int is_write) {
    if (!race_words) {
        race_words.reset(new RaceWord[g_arena_bytes / 4]());
    }
    const uint32_t e = race_epoch;
    const unsigned t = tri_emu_cur->linear, warp = t >> 5;
    const uintptr_t in_arena = shared_off % g_arena_bytes;
    for (uintptr_t w = in_arena / 4; w <= (in_arena + n - 1) / 4 && w < g_arena_bytes / 4; ++w) {
        RaceWord& r = race_words[w];
        if (is_write) {
            if (r.w_epoch == e && (r.w_thread >> 5) != warp)
                tri_emu_fault_here(TRI_RACE_WAW, a, r.w_thread, is_write);
            if (r.r_epoch == e && (r.r_many_warps || (r.r_thread >> 5) != warp))
                tri_emu_fault_here(TRI_RACE_WAR, a, r.r_thread, is_write);
            r.w_epoch = e;
            r.w_thread = (uint16_t)t;
        } else {
            if (r.w_epoch == e && (r.w_thread >> 5) != warp)
                tri_emu_fault_here(TRI_RACE_RAW, a, r.w_thread, is_write);
            if (r.r_epoch != e) {
                r.r_epoch = e;
                r.r_thread = (uint16_t)t;
                r.r_many_warps = 0;
            } else if ((r.r_thread >> 5) != warp) {
                r.r_many_warps = 1;
            }
        }
    }
}

__attribute__((noinline)) static void check_slow(uintptr_t a, uintptr_t n, int is_write) {
    const uintptr_t off = a - g_map.base;
    // The GPU requires natural alignment for 2-, 4-, 8- and 16-byte accesses.
    if ((n == 2 || n == 4 || n == 8 || n == 16) && (a & (n - 1)) != 0)
        tri_emu_fault_here(TRI_FAULT_MISALIGNED, a, n, is_write);
    const uintptr_t end = off + n;
    if (end > g_map.size) tri_emu_fault_here(TRI_FAULT_OUT_OF_BOUNDS, a, n, is_write);
    if (off < g_map.heap_size && end > __atomic_load_n(g_map.heap_marked, __ATOMIC_RELAXED))
        tri_emu_fault_here(TRI_FAULT_OUT_OF_BOUNDS, a, n, is_write);
    for (uintptr_t p = off; p < end; p = (p | 7) + 1) {
        const uint8_t s = __atomic_load_n(&g_map.shadow[p >> 3], __ATOMIC_RELAXED);
        if (s == 0) continue;
        const uintptr_t last = ((p | 7) + 1 < end ? (p | 7) : end - 1) & 7;
        if (s >= 8 || last >= s) tri_emu_fault_here(shadow_fault(s), a, n, is_write);
    }
}

// Fast path: an aligned access of at most 8 bytes (one granule) or of 16 (two) that is fully addressable
// in memory that was marked (below the heap's marked limit, or in a shared arena). Everything else takes the slow path,
// which finds the fault if there is one.
static inline __attribute__((always_inline)) void check(uintptr_t a, uintptr_t n, int is_write) {
    const uintptr_t off = a - g_map.base;
    if (__builtin_expect(off >= g_map.size, 1)) {
        if (__builtin_expect(a < 4096, 0)) tri_emu_fault_here(TRI_FAULT_NULL, a, n, is_write);
        return;  // host memory: the thread's stack, the emulator's thread context
    }
    if (off >= g_map.heap_size && __atomic_load_n(&g_racecheck, __ATOMIC_RELAXED) && tri_emu_cur)
        race_access(off - g_map.heap_size, a, n, is_write);
    const bool marked = off >= g_map.heap_size || off + n <= __atomic_load_n(g_map.heap_marked, __ATOMIC_RELAXED);
    if (n <= 8 && (a & (n - 1)) == 0 && __atomic_load_n(&g_map.shadow[off >> 3], __ATOMIC_RELAXED) == 0 && marked)
        return;
    // A 16-byte vector access: two granules.
    if (n == 16 && (a & 15) == 0 && __atomic_load_n(&g_map.shadow[off >> 3], __ATOMIC_RELAXED) == 0 &&
        __atomic_load_n(&g_map.shadow[(off >> 3) + 1], __ATOMIC_RELAXED) == 0 && marked)
        return;
    check_slow(a, n, is_write);
}

void tri_emu_check_access(const void* addr, uint64_t bytes, int is_write) {
    check((uintptr_t)addr, (uintptr_t)bytes, is_write);
}

// ---- cp.async ---------------------------------------------------------------------------------------
// A thread's copies in flight, by group; they land (are written to shared memory) only at the wait that
// covers them, so a kernel that reads before waiting reads what was there (the arena's NaN fill, or
// stale data), as it could on a GPU. Fibers of one block run on one OS thread: a thread-local map keyed
// by the block and the thread's index serves them.
namespace {
struct PendingCopy {
    uint8_t* dst;
    uint8_t data[16];
    unsigned bytes;
    unsigned group;  // the number of commits before its issue
};
struct CopyQueue {
    std::vector<PendingCopy> pending;
    unsigned commits = 0;
};
thread_local std::map<std::pair<const void*, unsigned>, CopyQueue> copy_queues;
CopyQueue& copy_queue() { return copy_queues[std::make_pair((const void*)tri_emu_cur->block, tri_emu_cur->linear)]; }
}  // namespace

void tri_emu_cp_async(void* dst, const void* src, unsigned bytes, unsigned src_bytes) {
    const uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if ((bytes != 4 && bytes != 8 && bytes != 16) || src_bytes > bytes)
        tri_emu_fault_here(TRI_FAULT_TRAP, d, bytes, 1);
    if ((d | s) & (bytes - 1)) tri_emu_fault_here(TRI_FAULT_MISALIGNED, (d & (bytes - 1)) ? d : s, bytes, 1);
    PendingCopy c;
    c.dst = (uint8_t*)dst;
    c.bytes = bytes;
    memset(c.data, 0, sizeof c.data);
    if (src_bytes > 0) {
        check(s, src_bytes, 0);
        memcpy(c.data, src, src_bytes);
    }
    CopyQueue& q = copy_queue();
    c.group = q.commits;
    q.pending.push_back(c);
}

void tri_emu_cp_async_commit(void) { copy_queue().commits += 1; }

void tri_emu_cp_async_wait(unsigned in_flight) {
    const auto key = std::make_pair((const void*)tri_emu_cur->block, tri_emu_cur->linear);
    const auto it = copy_queues.find(key);
    if (it == copy_queues.end()) return;
    CopyQueue& q = it->second;
    const unsigned landed = q.commits > in_flight ? q.commits - in_flight : 0;
    std::vector<PendingCopy> still;
    for (const PendingCopy& c : q.pending) {
        if (c.group < landed) {
            check((uintptr_t)c.dst, c.bytes, 1);
            memcpy(c.dst, c.data, c.bytes);
        } else {
            still.push_back(c);
        }
    }
    q.pending.swap(still);
    if (q.pending.empty()) copy_queues.erase(it);
}

#define TRI_EMU_HOOKS(N)                                                       \
    void __asan_load##N##_noabort(uintptr_t a) { check(a, N, 0); }             \
    void __asan_store##N##_noabort(uintptr_t a) { check(a, N, 1); }            \
    void __asan_load##N(uintptr_t a) { check(a, N, 0); }                       \
    void __asan_store##N(uintptr_t a) { check(a, N, 1); }
TRI_EMU_HOOKS(1)
TRI_EMU_HOOKS(2)
TRI_EMU_HOOKS(4)
TRI_EMU_HOOKS(8)
TRI_EMU_HOOKS(16)
#undef TRI_EMU_HOOKS
void __asan_loadN_noabort(uintptr_t a, uintptr_t n) { check(a, n, 0); }
void __asan_storeN_noabort(uintptr_t a, uintptr_t n) { check(a, n, 1); }
void __asan_loadN(uintptr_t a, uintptr_t n) { check(a, n, 0); }
void __asan_storeN(uintptr_t a, uintptr_t n) { check(a, n, 1); }
void __asan_handle_no_return(void) {}

// The collectives and shared-memory lookups the kernels call (tri_emu_abi.h) are the Rust scheduler's
// (src/exec.rs). In the plain loop, where a fault cannot abandon a fiber, a fault they record makes the
// thread jump out here, in C++ frames only, instead of running on.
void tri_emu_rs_syncthreads(const char* file, int line);
uint64_t tri_emu_rs_warp_op(int op, unsigned mask, uint64_t value, int arg, int width, const char* file, int line);
void* tri_emu_rs_shared(const void* tag, size_t bytes, size_t align);
int tri_emu_rs_plain_faulted(void);

static inline void escape_if_faulted() {
    if (tri_emu_escape && tri_emu_rs_plain_faulted()) longjmp(*tri_emu_escape, 1);
}
void tri_emu_syncthreads(const char* file, int line) {
    tri_emu_rs_syncthreads(file, line);
    escape_if_faulted();
}
uint64_t tri_emu_warp_op(int op, unsigned mask, uint64_t value, int arg, int width, const char* file, int line) {
    const uint64_t r = tri_emu_rs_warp_op(op, mask, value, arg, width, file, line);
    escape_if_faulted();
    return r;
}
void* tri_emu_shared(const void* tag, size_t bytes, size_t align) {
    void* p = tri_emu_rs_shared(tag, bytes, align);
    escape_if_faulted();
    return p;
}

// Runs threads order[0..n) of one block, each to completion, on this OS thread's stack. `t` holds the
// block's coordinates; the thread's own fields are filled here. Returns the index in `order` of the
// thread that faulted, or n when none did.
unsigned tri_emu_run_plain(TriEmuLaunchFn launch, void** params, TriEmuThread* t, const unsigned* order, unsigned n) {
    const unsigned bx = t->block_dim.x, by = t->block_dim.y;
    jmp_buf escape;
    volatile unsigned i = 0;
    tri_emu_cur = t;
    if (setjmp(escape) != 0) {
        tri_emu_escape = nullptr;
        return i;
    }
    tri_emu_escape = &escape;
    for (; i < n; ++i) {
        const unsigned lin = order[i];
        t->linear = lin;
        t->lane = lin & 31;
        t->warp = lin >> 5;
        t->thread_idx.x = lin % bx;
        t->thread_idx.y = (lin / bx) % by;
        t->thread_idx.z = lin / (bx * by);
        launch(params);
    }
    tri_emu_escape = nullptr;
    return n;
}
}
