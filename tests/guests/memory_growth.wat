;; memory_growth.wat - ADVERSARIAL guest (valid ABI v1 exports).
;; Grows its memory one page at a time until the host denies it, then traps the way a Rust
;; guest aborts on allocation failure (-> `memory_limit`, not `trap`).
;; Like every runtime-failure guest here, a request with query exactly `ok` (e.g. GET /x?ok) gets a
;; normal 200 (`X-Guest: ok`, body "ok\n"): proof that the same plugin works right after a failure.
(module
  (memory (export "memory") 1)

  ;; The "?ok" answer: 200 | 1 header | "X-Guest: ok" | body "ok\n"  (32 bytes at address 16)
  (data (i32.const 16)
    "\c8\00\00\00" "\01\00\00\00"
    "\07\00\00\00" "X-Guest" "\02\00\00\00" "ok"
    "\03\00\00\00" "ok\n")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  ;; Bump allocator from 1024 inside the first page (tests send small requests).
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  ;; 1 when the request's query (4th `str` of the request) is exactly "ok".
  (func $query_is_ok (param $q i32) (result i32)
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (i32.and
      (i32.eq (i32.load (local.get $q)) (i32.const 2))
      (i32.eq (i32.load16_u offset=4 (local.get $q)) (i32.const 0x6b6f))))  ;; "ok"

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (if (call $query_is_ok (local.get $p))
      (then (return (i64.const 0x0000001000000020))))
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (unreachable))
)
