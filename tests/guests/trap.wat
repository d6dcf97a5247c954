;; trap.wat - ADVERSARIAL guest (valid ABI v1 exports), the cheapest possible failure: `unreachable`
;; on every request, no output (-> 500 `trap`). Used where a test needs very many failures fast
;; (100,000 traps leave memory and descriptors flat; the circuit breaker). A request with query
;; exactly `ok` gets 200 (`X-Guest: ok`, body "ok\n"), as with the other failure guests.
(module
  (memory (export "memory") 1)
  (data (i32.const 16)
    "\c8\00\00\00" "\01\00\00\00"
    "\07\00\00\00" "X-Guest" "\02\00\00\00" "ok"
    "\03\00\00\00" "ok\n")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

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
    (unreachable))
)
