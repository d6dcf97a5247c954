;; kv_after_sleep_v2.wat - an ABI v2 guest that waits 5 ms in a host call (WASI poll_oneoff on the
;; monotonic clock), then reads key "k" from the store "kv" with `wasmgate.kv_get` (as many times
;; as the query's one digit says, `GET /p?3`; once without one), and answers 200 with one body
;; byte: '0' + the last call's error code ('0' ok, '1' not_found, '5' limit_reached, ...).
;; It never traps by itself, so any trap or quarantine under load is the host's doing. The value
;; and any failure message are handed back through `wasmgate_alloc` *during* `kv_get`: the nested
;; call (a second fiber stack) that issue 20 item 1 is about. Used by the saturation tests and
;; bench/saturation.sh. Needs `kv = ["kv"]`.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_get"
    (func $kv_get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 200 | 0 headers | 1-byte body at 28 (13 bytes at 16).
  (data (i32.const 16) "\c8\00\00\00" "\00\00\00\00" "\01\00\00\00" "?")
  ;; The store's name at 64, the key at 72; `ret` of kv_get at 96 (8 bytes).
  (data (i32.const 64) "kv")
  (data (i32.const 72) "k")
  ;; One clock subscription at 256 (48 bytes): userdata 0 | tag 0 | id 1 (monotonic) at 272 |
  ;; timeout 5 ms (5,000,000 ns) at 280 | precision 0 | flags 0 (relative).
  (data (i32.const 272) "\01\00\00\00")
  (data (i32.const 280) "\40\4b\4c\00\00\00\00\00")

  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))

  ;; A bump allocator from 1024: a fresh instance serves one request.
  (global $bump (mut i32) (i32.const 1024))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.const 65536))
      (then (return (i32.const 0))))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $q i32)
    (local $calls i32)
    ;; The query: skip method, target and path (each a u32 length and its bytes).
    (local.set $q (local.get $p))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $calls (i32.const 1))
    (if (i32.ne (i32.load (local.get $q)) (i32.const 0))
      (then (local.set $calls
        (i32.sub (i32.load8_u (i32.add (local.get $q) (i32.const 4))) (i32.const 48)))))
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (block $done
      (loop $again
        (br_if $done (i32.le_s (local.get $calls) (i32.const 0)))
        (i32.store8 (i32.const 28)
          (i32.add (i32.const 48)
            (call $kv_get (i32.const 64) (i32.const 2) (i32.const 72) (i32.const 1) (i32.const 96))))
        (local.set $calls (i32.sub (local.get $calls) (i32.const 1)))
        (br $again)))
    (i64.const 0x000000100000000d))   ;; (16 << 32) | 13
)
