;; wrong_abi_version.wat - refused at load time: everything is in place but
;; `wasmgate_abi_version()` returns 2, and this host implements ABI version 1.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0))
)
