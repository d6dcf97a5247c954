;; log_flood.wat - ADVERSARIAL guest: writes 60 KiB to stdout and stderr in a loop that never ends,
;; to make the host buffer its output without bound. The host keeps at most 64 KiB of a request's
;; output (the rest is dropped, with one warning), and the deadline or fuel ends the loop.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; iovec at 512: { buf = 4096, len = 61440 }
  (data (i32.const 512) "\00\10\00\00" "\00\f0\00\00")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (global $bump (mut i32) (i32.const 65536))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))
  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (memory.fill (i32.const 4096) (i32.const 0x41) (i32.const 61440))
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))
      (drop (call $fd_write (i32.const 2) (i32.const 512) (i32.const 1) (i32.const 520)))
      (br $forever))
    (unreachable))
)
