;; logged_v2.wat - mirror_v2.wat plus one log line: an ABI v2 guest that writes
;; `logged_v2: answered one request` to stdout (which the host logs as one event tagged with the
;; plugin and the request id), then answers 200 with the whole encoded request as its body. A test
;; can then compare the request id the guest was given (tag 4 in the body), the response's
;; `x-request-id` header and the `request_id` of the log line.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The line, 32 bytes at 64, and its iovec (ptr = 64, len = 32) at 16; nwritten goes to 24.
  (data (i32.const 64) "logged_v2: answered one request\n")
  (data (i32.const 16) "\40\00\00\00" "\20\00\00\00")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; As in mirror_v2.wat: a bump allocator from 1024 that leaves 12 spare bytes in front of every
  ;; buffer, so the response head can be written just before the request.
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local $end i32)
    (local.set $p (i32.add (global.get $bump) (i32.const 12)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add (i32.const 1)
                  (i32.shr_u
                    (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 16))))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $bump (local.get $end))
    (local.get $p))

  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    ;; fd_write(stdout, iovs = 16, iovs_len = 1, nwritten = 24)
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
    (local.set $out (i32.sub (local.get $ptr) (i32.const 12)))
    (i32.store align=1 (local.get $out) (i32.const 200))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 4)) (i32.const 0))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 8)) (local.get $len))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $len) (i32.const 12)))))
)
