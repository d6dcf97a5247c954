;; password_v2.wat - an ABI v2 guest that guards its route with a secret variable. It reads the
;; variable `password` with the host function `wasmgate.var_get` and answers:
;;   200 "ok\n"     when the request body is exactly the variable's value,
;;   403 "denied\n" when it is anything else,
;;   500 "error\n"  when var_get fails (e.g. not_found: the plugin has no such variable).
;; It never writes the value anywhere (no stdout, no stderr, not in a response), so a test can
;; rotate the secret, see which value opens the route, and check that the value appears in no log
;; and no metric. Its configuration must grant variables (`[plugins.NAME.vars]`).
(module
  (import "wasmgate" "var_get" (func $var_get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; The variable's name, 8 bytes at 16. `ret` (result_ptr, result_len) is at 32.
  (data (i32.const 16) "password")
  ;; The three answers, encoded (u32 status, u32 header_count = 0, str body).
  (data (i32.const 64) "\c8\00\00\00" "\00\00\00\00" "\03\00\00\00" "ok\n")      ;; 15 bytes
  (data (i32.const 96) "\93\01\00\00" "\00\00\00\00" "\07\00\00\00" "denied\n")  ;; 19 bytes
  (data (i32.const 128) "\f4\01\00\00" "\00\00\00\00" "\06\00\00\00" "error\n")  ;; 18 bytes

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; Bump allocator from 1024, growing memory as needed; 0 when memory cannot grow. The host calls
  ;; it for the request, and again inside `var_get` for the value (or the error message).
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
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

  ;; The address just past the `str` at $o (a u32 length, then that many bytes). The host writes
  ;; exactly one well-formed request, so the walk needs no bounds checks.
  (func $skip_str (param $o i32) (result i32)
    (i32.add (i32.add (local.get $o) (i32.const 4)) (i32.load align=1 (local.get $o))))

  ;; The address just past a u32 count of (str name, str value) pairs at $o.
  (func $skip_pairs (param $o i32) (result i32)
    (local $n i32)
    (local.set $n (i32.load align=1 (local.get $o)))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $o (call $skip_str (call $skip_str (local.get $o))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $o))

  ;; 1 when the $n bytes at $a and at $b are equal.
  (func $equal (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (local $o i32)
    (local $val i32)
    (local $vlen i32)
    ;; var_get("password", ret = 32); any error code -> the 500 at 128 (18 bytes).
    (if (call $var_get (i32.const 16) (i32.const 8) (i32.const 32))
      (then (return (i64.const 0x80_0000_0012))))
    (local.set $val (i32.load align=1 (i32.const 32)))
    (local.set $vlen (i32.load align=1 (i32.const 36)))
    ;; The body: after method, target, path, query, version, the headers and the params.
    (local.set $o
      (call $skip_str (call $skip_str (call $skip_str (call $skip_str (call $skip_str
        (local.get $ptr)))))))
    (local.set $o (call $skip_pairs (call $skip_pairs (local.get $o))))
    (if (i32.and
          (i32.eq (i32.load align=1 (local.get $o)) (local.get $vlen))
          (call $equal (i32.add (local.get $o) (i32.const 4)) (local.get $val) (local.get $vlen)))
      (then (return (i64.const 0x40_0000_000f))))   ;; the 200 at 64, 15 bytes
    (i64.const 0x60_0000_0013))                      ;; the 403 at 96, 19 bytes
)
