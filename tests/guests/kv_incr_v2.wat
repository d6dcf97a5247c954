;; kv_incr_v2.wat - an ABI v2 guest that adds 1 to the key "n" of the store "snippets" with
;; `wasmgate.kv_incr` and answers 200 with the new value as an 8-byte little-endian body; when the
;; call fails it answers 500 with one body byte, '0' + the error code (e.g. '3' for denied). So a
;; test sees both that a store is bound and that its data survived (the count goes on). Used by
;; the reload tests of stores (tests/it/reload_services.rs, reload::tests). Needs
;; `kv = ["snippets"]`.
(module
  (import "wasmgate" "kv_incr"
    (func $kv_incr (param i32 i32 i32 i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The store's name (8 bytes) at 64, the key at 80; `ret` of kv_incr at 96 (8 bytes).
  (data (i32.const 64) "snippets")
  (data (i32.const 80) "n")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; A bump allocator from 1024: a fresh instance serves one request.
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.const 65536))
      (then (return (i32.const 0))))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $code i32)
    (local.set $code
      (call $kv_incr (i32.const 64) (i32.const 8) (i32.const 80) (i32.const 1)
        (i64.const 1) (i32.const 96)))
    ;; The response at 16: status | 0 headers | body length | body at 28.
    (i32.store (i32.const 20) (i32.const 0))
    (if (i32.eqz (local.get $code))
      (then
        (i32.store (i32.const 16) (i32.const 200))
        (i32.store (i32.const 24) (i32.const 8))
        (i64.store (i32.const 28) (i64.load (i32.load (i32.const 96))))
        (return (i64.const 0x0000001000000014))))   ;; (16 << 32) | 20
    (i32.store (i32.const 16) (i32.const 500))
    (i32.store (i32.const 24) (i32.const 1))
    (i32.store8 (i32.const 28) (i32.add (i32.const 48) (local.get $code)))
    (i64.const 0x000000100000000d))   ;; (16 << 32) | 13
)
