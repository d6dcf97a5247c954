;; mirror_v2.wat - an ABI v2 guest that answers 200 with the whole encoded request as its body, so
;; a test can decode exactly what the host sent (the v1 layout, then the tagged fields). It
;; imports nothing: metadata needs no grant.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; Bump allocator from 1024. Every buffer gets 12 spare bytes in front of it, so that the
  ;; response head (u32 status, u32 header_count, u32 body length) can be written just before the
  ;; request and the request itself becomes the body without a copy.
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
    (local.set $out (i32.sub (local.get $ptr) (i32.const 12)))
    (i32.store align=1 (local.get $out) (i32.const 200))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 4)) (i32.const 0))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 8)) (local.get $len))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $len) (i32.const 12)))))
)
