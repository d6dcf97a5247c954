;; ok.wat - the smallest valid wasmgate ABI v1 guest (docs/ABI.md), written by hand.
;; Answers every request with:
;;   200, header `X-Guest: ok`, body "hello from ok.wat\n".
(module
  (memory (export "memory") 1)

  ;; The encoded response, laid out as docs/ABI.md "Response" (all u32 little-endian):
  ;;   status 200 | header_count 1 | "X-Guest" (7) | "ok" (2) | body (18 bytes)  = 47 bytes
  (data (i32.const 16)
    "\c8\00\00\00"
    "\01\00\00\00"
    "\07\00\00\00" "X-Guest"
    "\02\00\00\00" "ok"
    "\12\00\00\00" "hello from ok.wat\n")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  ;; Bump allocator starting at 1024 (never returns 0 unless memory cannot grow).
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

  ;; (resp_ptr << 32) | resp_len = (16 << 32) | 47
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0x000000100000002f))
)
