;; secret.wat - proves no state leaks between requests.
;; Every request first looks for what a previous request might have left behind (a mutable
;; global and a word of linear memory), then leaves its own "secret" in both. With a fresh
;; instance per request it always answers 200 with body "clean\n"; if anything survived from an
;; earlier request it answers 200 with body "leaked\n".
(module
  (memory (export "memory") 1)
  (data (i32.const 16)
    "\c8\00\00\00" "\00\00\00\00" "\06\00\00\00" "clean\n")        ;; 18 bytes at 16
  (data (i32.const 64)
    "\c8\00\00\00" "\00\00\00\00" "\07\00\00\00" "leaked\n")       ;; 19 bytes at 64

  (global $secret (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $seen i32)
    (local.set $seen (i32.or (global.get $secret) (i32.load (i32.const 512))))
    (global.set $secret (i32.const 0x5ec2e7))
    (i32.store (i32.const 512) (i32.const 0x5ec2e7))
    (if (result i64) (local.get $seen)
      (then (i64.const 0x0000004000000013))     ;; (64 << 32) | 19  "leaked"
      (else (i64.const 0x0000001000000012))))   ;; (16 << 32) | 18  "clean"
)
