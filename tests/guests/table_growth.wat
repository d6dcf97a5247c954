;; table_growth.wat - ADVERSARIAL guest: memory the memory cap does not count. Grows its funcref
;; table by 1,000 entries at a time until the host refuses (the pool's per-instance table
;; limit), then answers 200 with the final table size as the body ("table=N\n"): the test checks
;; the refusal came, and came early.
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (data (i32.const 28) "table=")   ;; the body; the response head is at 16..28

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $size i32)
    (local $at i32)
    (local $div i32)
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
        (br $grow)))
    (local.set $size (table.size $t))
    ;; "<size>\n" after the label
    (local.set $at (i32.const 34))
    (local.set $div (i32.const 1))
    (block $done
      (loop $up
        (br_if $done (i32.lt_u (i32.div_u (local.get $size) (local.get $div)) (i32.const 10)))
        (local.set $div (i32.mul (local.get $div) (i32.const 10)))
        (br $up)))
    (loop $digits
      (i32.store8 (local.get $at) (i32.add (i32.const 48)
        (i32.rem_u (i32.div_u (local.get $size) (local.get $div)) (i32.const 10))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $div (i32.div_u (local.get $div) (i32.const 10)))
      (br_if $digits (local.get $div)))
    (i32.store8 (local.get $at) (i32.const 10))
    (local.set $at (i32.add (local.get $at) (i32.const 1)))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.sub (local.get $at) (i32.const 28)))
    (i64.or (i64.shl (i64.const 16) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $at) (i32.const 16)))))
)
