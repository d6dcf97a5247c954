;; secret_grow.wat - ADVERSARIAL guest: looks for what an earlier request left in memory it had to
;; grow (pool slots are reused between requests, so pages past the initial size must come back
;; zeroed) and in the request buffer area, then leaves its own secret there: in the last word of
;; 4 freshly grown pages, in the middle of them, in a mutable global and over the request it was
;; given. Answers 200 "clean\n" if it found nothing, 200 "leaked\n" otherwise.
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
    (local $top i32)
    (if (i32.eq (memory.grow (i32.const 4)) (i32.const -1)) (then (unreachable)))
    (local.set $top (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))
    (local.set $seen (i32.or (global.get $secret)
      (i32.or (i32.load (local.get $top)) (i32.load (i32.const 196608)))))
    ;; Anything but our own request between 512 and 1024 would have come from someone else.
    (local.set $seen (i32.or (local.get $seen) (i32.load (i32.const 700))))
    (global.set $secret (i32.const 0x5ec2e7))
    (i32.store (local.get $top) (i32.const 0x5ec2e7))
    (i32.store (i32.const 196608) (i32.const 0x5ec2e7))
    (i32.store (i32.const 700) (i32.const 0x5ec2e7))
    (memory.fill (local.get $p) (i32.const 0x5e) (local.get $n))
    (if (result i64) (local.get $seen)
      (then (i64.const 0x0000004000000013))     ;; (64 << 32) | 19  "leaked"
      (else (i64.const 0x0000001000000012))))   ;; (16 << 32) | 18  "clean"
)
