;; big_memory.wat - ADVERSARIAL guest: declares an initial memory of 1,000 pages (62.5 MiB), so it
;; needs no `memory.grow` to exceed a small `max_memory_bytes`: the cap must hold before any
;; request, not only on growth. The host refuses it when it loads (`kind="limits"`, naming both
;; sizes), so its route answers 503 `not_loaded` instead of failing every request.
(module
  (memory (export "memory") 1000)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (i64.const 0))
)
