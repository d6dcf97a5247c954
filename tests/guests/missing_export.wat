;; missing_export.wat - refused at load time: no `wasmgate_handle` export.
;; The load error must name the missing export and the type ABI v1 expects ((i32, i32) -> i64).
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
)
