;; out_of_bounds.wat - ADVERSARIAL guest: answers with a response that lies past the end of its
;; memory (resp_ptr = 0xffff0000, resp_len = 4096), hoping the host reads whatever is there
;; (-> 502 `invalid_response`: out of bounds, nothing read).
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (i64.const 0xffff000000001000))
)
