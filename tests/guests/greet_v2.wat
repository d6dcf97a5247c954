;; greet_v2.wat - an ABI v2 guest written from docs/ABI.md ("Version 2") alone. It imports the host
;; function `wasmgate.var_get`, reads the variable `greeting`, and answers:
;;   200 with the greeting as the body when the call succeeds,
;;   404 with the host's message when there is no such variable (error code 1, not_found),
;;   500 with the host's message for any other error code.
;; Its configuration must grant variables (`[plugins.NAME.vars]`), or the host refuses to load it.
(module
  (import "wasmgate" "var_get" (func $var_get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The variable's name, 8 bytes at 16. `ret` (8 bytes for result_ptr, result_len) is at 32.
  (data (i32.const 16) "greeting")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; Bump allocator from 1024, growing memory as needed; 0 when memory cannot grow. The host calls
  ;; it for the request, and again inside `var_get` for the value (or the error message).
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

  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (local $errno i32)
    (local $val i32)
    (local $vlen i32)
    (local $out i32)
    (local $status i32)
    ;; errno = var_get("greeting", ret = 32); then (val, vlen) = the 8 bytes at 32.
    (local.set $errno (call $var_get (i32.const 16) (i32.const 8) (i32.const 32)))
    (local.set $val (i32.load align=1 (i32.const 32)))
    (local.set $vlen (i32.load align=1 (i32.const 36)))
    (local.set $status
      (if (result i32) (i32.eqz (local.get $errno))
        (then (i32.const 200))
        (else (if (result i32) (i32.eq (local.get $errno) (i32.const 1))
          (then (i32.const 404))
          (else (i32.const 500))))))
    ;; The response: u32 status, u32 header_count = 0, str body = the bytes at (val, vlen).
    (local.set $out (call $alloc (i32.add (local.get $vlen) (i32.const 12))))
    (i32.store align=1 (local.get $out) (local.get $status))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 4)) (i32.const 0))
    (i32.store align=1 (i32.add (local.get $out) (i32.const 8)) (local.get $vlen))
    (memory.copy (i32.add (local.get $out) (i32.const 12)) (local.get $val) (local.get $vlen))
    ;; (resp_ptr << 32) | resp_len
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.add (local.get $vlen) (i32.const 12)))))
)
