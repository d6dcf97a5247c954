;; reentrant_v2.wat - an ABI v2 guest whose `wasmgate_alloc` itself calls a host function
;; (`wasmgate.var_get`) once `wasmgate_handle` is running: each hand-back would nest another call
;; into the guest, one more fiber stack each, without end. The host refuses the nested host call as
;; the guest's bug (500 `trap`), so no guest can drain the stacks other plugins need. Needs a
;; `[plugins.NAME.vars]` table with `v`.
(module
  (import "wasmgate" "var_get" (func $var_get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 200 | 0 headers | empty body (12 bytes at 16); the variable's name "v" at 64.
  (data (i32.const 16) "\c8\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 64) "v")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  (global $handling (mut i32) (i32.const 0))
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (if (global.get $handling)
      (then (drop (call $var_get (i32.const 64) (i32.const 1) (i32.const 96)))))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (global.set $handling (i32.const 1))
    (drop (call $var_get (i32.const 64) (i32.const 1) (i32.const 96)))
    (i64.const 0x000000100000000c))   ;; (16 << 32) | 12
)
