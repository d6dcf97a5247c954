;; echo.wat - a valid ABI v1 guest that parses the request (docs/ABI.md "Request") and answers
;;   200, header `X-Method: <request method>`, body = the request body.
;; Proves the host's request encoding end to end.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "X-Method")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  (global $bump (mut i32) (i32.const 1024))
  (func $alloc (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local $end i32)
    (local.set $p (global.get $bump))
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

  ;; Address just past the `str` (u32 length + bytes) at $q.
  (func $skip (param $q i32) (result i32)
    (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $q i32) (local $i i32) (local $mlen i32) (local $blen i32) (local $bptr i32)
    (local $out i32) (local $o i32) (local $total i32)
    (local.set $mlen (i32.load (local.get $p)))
    ;; skip method, target, path, query, version
    (local.set $q (call $skip (call $skip (call $skip (call $skip (call $skip (local.get $p)))))))
    ;; skip headers, then params: count x (name, value)
    (local.set $i (i32.load (local.get $q)))
    (local.set $q (i32.add (local.get $q) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $q (call $skip (call $skip (local.get $q))))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.load (local.get $q)))
    (local.set $q (i32.add (local.get $q) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $q (call $skip (call $skip (local.get $q))))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $blen (i32.load (local.get $q)))
    (local.set $bptr (i32.add (local.get $q) (i32.const 4)))

    ;; response: 200 | 1 header | "X-Method" | method | body
    (local.set $total
      (i32.add (i32.const 28) (i32.add (local.get $mlen) (local.get $blen))))
    (local.set $out (call $alloc (local.get $total)))
    (if (i32.eqz (local.get $out)) (then unreachable))
    (i32.store (local.get $out) (i32.const 200))
    (i32.store offset=4 (local.get $out) (i32.const 1))
    (i32.store offset=8 (local.get $out) (i32.const 8))
    (memory.copy (i32.add (local.get $out) (i32.const 12)) (i32.const 16) (i32.const 8))
    (i32.store offset=20 (local.get $out) (local.get $mlen))
    (memory.copy (i32.add (local.get $out) (i32.const 24))
                 (i32.add (local.get $p) (i32.const 4)) (local.get $mlen))
    (local.set $o (i32.add (i32.add (local.get $out) (i32.const 24)) (local.get $mlen)))
    (i32.store (local.get $o) (local.get $blen))
    (memory.copy (i32.add (local.get $o) (i32.const 4)) (local.get $bptr) (local.get $blen))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (local.get $total))))
)
