;; bad_import.wat - refused at load time: imports `env.foo`. ABI v1 allows imports only from
;; `wasi_snapshot_preview1`, so the load error must name `env.foo`.
(module
  (import "env" "foo" (func $foo (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (i64.extend_i32_u (call $foo (local.get $n))))
)
