;; sleep.wat - a guest that waits in a host call (WASI poll_oneoff on the monotonic clock) for the
;; number of milliseconds given as the request's query (GET /x?250), 10 s without one, then answers
;; 200 "slept\n". Idle time, not CPU: it holds its instance (and its place under the plugin's
;; `max_concurrency`) without burning fuel. Used for the concurrency cap, graceful shutdown under
;; load, and the deadline of a guest blocked in the host.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 200 | 0 headers | body "slept\n"  (18 bytes at 16)
  (data (i32.const 16) "\c8\00\00\00" "\00\00\00\00" "\06\00\00\00" "slept\n")
  ;; One clock subscription at 256 (48 bytes): userdata 0 | tag 0 | id 1 (monotonic) at 272 |
  ;; timeout (ns, u64) at 280 | precision 0 | flags 0 (relative).
  (data (i32.const 272) "\01\00\00\00")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $q i32)
    (local $end i32)
    (local $ms i64)
    ;; The query: skip method, target and path.
    (local.set $q (local.get $p))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $end (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (local.get $q) (i32.const 4)))
    (local.set $ms (i64.const 10000))
    (if (i32.lt_u (local.get $q) (local.get $end))
      (then
        (local.set $ms (i64.const 0))
        (block $done
          (loop $digit
            (br_if $done (i32.ge_u (local.get $q) (local.get $end)))
            (local.set $ms (i64.add (i64.mul (local.get $ms) (i64.const 10))
              (i64.extend_i32_u (i32.sub (i32.load8_u (local.get $q)) (i32.const 48)))))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $digit)))))
    (i64.store (i32.const 280) (i64.mul (local.get $ms) (i64.const 1000000)))
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (i64.const 0x0000001000000012))   ;; (16 << 32) | 18
)
