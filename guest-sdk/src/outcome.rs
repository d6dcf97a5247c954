//! [`Outcome`]: what one host function answered, as the ABI puts it: an error code and the bytes
//! stored at `ret` (docs/ABI.md, "Host functions").
//!
//! It is the one vocabulary shared by the three parties of a host call: `sys` (the real imports,
//! on wasm32) and `standin` (the native stand-ins) produce it, `host` turns it into a `Result`.
//! It sits below all three so that none of them depends on another. It must not interpret the
//! bytes, nor know which function produced them.

use crate::wire::Errno;

/// A host function's error code (0 = `ok`) and the bytes it stored at `ret`: the result on
/// success, a UTF-8 message on failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) code: i32,
    pub(crate) bytes: Vec<u8>,
}

impl Outcome {
    /// Success with `bytes` as the result.
    pub(crate) fn ok(bytes: Vec<u8>) -> Self {
        Outcome { code: 0, bytes }
    }

    /// Failure with `errno` and a message.
    pub(crate) fn fail(errno: Errno, message: impl Into<String>) -> Self {
        Outcome {
            code: errno.code(),
            bytes: message.into().into_bytes(),
        }
    }
}
