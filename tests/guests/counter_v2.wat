;; counter_v2.wat - an ABI v2 guest that declares itself reusable (`wasmgate_reusable` returns 1)
;; and keeps a request counter in a global, so a test can see whether an instance served earlier
;; requests. Answers 200 with the counter as a 4-byte little-endian body; a DELETE request traps
;; (after counting), so a test can check that a broken instance is never reused.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
  (func (export "wasmgate_reusable") (result i32) (i32.const 1))

  ;; One request buffer, reused by every request: nothing accumulates across requests.
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 60000)) (then (return (i32.const 0))))
    (i32.const 1024))

  (global $count (mut i32) (i32.const 0))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    ;; The request starts with the method's length: 6 is DELETE.
    (if (i32.eq (i32.load align=1 (local.get $ptr)) (i32.const 6)) (then (unreachable)))
    ;; Response at 16: status 200, no headers, a 4-byte body holding the counter.
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 4))
    (i32.store (i32.const 28) (global.get $count))
    (i64.const 0x0000001000000010))
)
