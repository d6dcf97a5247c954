;; wrong_abi_version.wat - refused at load time: everything is in place but
;; `wasmgate_abi_version()` returns 3, and this host implements ABI versions 1 and 2.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 3))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0))
)
