;; slow_init.wat - a guest whose start-up work (`_initialize`) burns about 3 million instructions'
;; worth of fuel and then writes the response it will answer: 200, body "ready\n". With
;; pre-initialization (the default) that work runs once, at load; with `preinitialize = false` it
;; runs in every request, where a plugin `fuel` below it makes every request fail 504.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize")
    (local $i i32)
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 1000000))))
    ;; status 200 | 0 headers | body "ready\n" (6 bytes), at 16
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 6))
    (i32.store (i32.const 28) (i32.const 0x64616572))   ;; "read"
    (i32.store16 (i32.const 32) (i32.const 0x0a79)))     ;; "y\n"
  ;; (16 << 32) | 18
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (i64.const 0x0000001000000012))
)
