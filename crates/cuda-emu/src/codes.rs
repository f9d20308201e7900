//! The CUDA 13.0 result codes the emulator returns (cudarc's `CUresult` is a Rust enum: a code CUDA 13.0
//! does not define would be undefined behaviour there, so only these are ever returned).

pub const SUCCESS: i32 = 0;
pub const INVALID_VALUE: i32 = 1;
pub const OUT_OF_MEMORY: i32 = 2;
pub const NOT_INITIALIZED: i32 = 3;
pub const INVALID_DEVICE: i32 = 101;
pub const INVALID_IMAGE: i32 = 200;
pub const INVALID_CONTEXT: i32 = 201;
pub const INVALID_HANDLE: i32 = 400;
pub const NOT_FOUND: i32 = 500;
pub const NOT_READY: i32 = 600;
pub const ILLEGAL_ADDRESS: i32 = 700;
pub const LAUNCH_OUT_OF_RESOURCES: i32 = 701;
pub const ILLEGAL_INSTRUCTION: i32 = 715;
pub const MISALIGNED_ADDRESS: i32 = 716;
pub const LAUNCH_FAILED: i32 = 719;
pub const NOT_SUPPORTED: i32 = 801;
pub const ILLEGAL_STATE: i32 = 401;
pub const STREAM_CAPTURE_UNSUPPORTED: i32 = 900;
pub const STREAM_CAPTURE_INVALIDATED: i32 = 901;
pub const STREAM_CAPTURE_IMPLICIT: i32 = 906;
pub const STREAM_CAPTURE_WRONG_THREAD: i32 = 908;

/// The name of a code this emulator returns (`CUDA_ERROR_ILLEGAL_ADDRESS`), or None.
pub fn error_name(code: i32) -> Option<&'static str> {
    let (name, _) = c_strings(code)?;
    std::str::from_utf8(&name[..name.len() - 1]).ok()
}

/// NUL-terminated name and description, for cuGetErrorName / cuGetErrorString.
pub fn c_strings(code: i32) -> Option<(&'static [u8], &'static [u8])> {
    const C: &[(i32, &[u8], &[u8])] = &[
        (SUCCESS, b"CUDA_SUCCESS\0", b"no error\0"),
        (
            INVALID_VALUE,
            b"CUDA_ERROR_INVALID_VALUE\0",
            b"invalid argument\0",
        ),
        (
            OUT_OF_MEMORY,
            b"CUDA_ERROR_OUT_OF_MEMORY\0",
            b"out of memory\0",
        ),
        (
            NOT_INITIALIZED,
            b"CUDA_ERROR_NOT_INITIALIZED\0",
            b"initialization error\0",
        ),
        (
            INVALID_DEVICE,
            b"CUDA_ERROR_INVALID_DEVICE\0",
            b"invalid device ordinal\0",
        ),
        (
            INVALID_IMAGE,
            b"CUDA_ERROR_INVALID_IMAGE\0",
            b"device kernel image is invalid\0",
        ),
        (
            INVALID_CONTEXT,
            b"CUDA_ERROR_INVALID_CONTEXT\0",
            b"invalid device context\0",
        ),
        (
            INVALID_HANDLE,
            b"CUDA_ERROR_INVALID_HANDLE\0",
            b"invalid resource handle\0",
        ),
        (
            NOT_FOUND,
            b"CUDA_ERROR_NOT_FOUND\0",
            b"named symbol not found\0",
        ),
        (NOT_READY, b"CUDA_ERROR_NOT_READY\0", b"device not ready\0"),
        (
            ILLEGAL_ADDRESS,
            b"CUDA_ERROR_ILLEGAL_ADDRESS\0",
            b"an illegal memory access was encountered\0",
        ),
        (
            LAUNCH_OUT_OF_RESOURCES,
            b"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES\0",
            b"too many resources requested for launch\0",
        ),
        (
            ILLEGAL_INSTRUCTION,
            b"CUDA_ERROR_ILLEGAL_INSTRUCTION\0",
            b"an illegal instruction was encountered\0",
        ),
        (
            MISALIGNED_ADDRESS,
            b"CUDA_ERROR_MISALIGNED_ADDRESS\0",
            b"misaligned address\0",
        ),
        (
            LAUNCH_FAILED,
            b"CUDA_ERROR_LAUNCH_FAILED\0",
            b"unspecified launch failure\0",
        ),
        (
            ILLEGAL_STATE,
            b"CUDA_ERROR_ILLEGAL_STATE\0",
            b"the operation cannot be performed in the present state\0",
        ),
        (
            STREAM_CAPTURE_UNSUPPORTED,
            b"CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED\0",
            b"operation not permitted when stream is capturing\0",
        ),
        (
            STREAM_CAPTURE_INVALIDATED,
            b"CUDA_ERROR_STREAM_CAPTURE_INVALIDATED\0",
            b"operation failed due to a previous error during capture\0",
        ),
        (
            STREAM_CAPTURE_IMPLICIT,
            b"CUDA_ERROR_STREAM_CAPTURE_IMPLICIT\0",
            b"operation would make the legacy stream depend on a capturing blocking stream\0",
        ),
        (
            STREAM_CAPTURE_WRONG_THREAD,
            b"CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD\0",
            b"attempt to terminate a thread-local capture sequence from another thread\0",
        ),
        (
            NOT_SUPPORTED,
            b"CUDA_ERROR_NOT_SUPPORTED\0",
            b"operation not supported\0",
        ),
    ];
    C.iter().find(|e| e.0 == code).map(|e| (e.1, e.2))
}
