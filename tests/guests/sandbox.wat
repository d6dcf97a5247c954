;; sandbox.wat - ADVERSARIAL guest (valid ABI v1 exports): tries every way out of the sandbox that
;; WASI preview 1 offers and reports what the host answered, one `name=value` line each, as a 200
;; text body (the errno numbers are WASI's: 0 success, 8 badf, 44 noent, 57 notsock,
;; 76 notcapable; see tests/it/sandbox.rs).
;;
;;   prestat3=E       fd_prestat_get(3): is there a pre-opened directory at all?
;;   open=E           path_open(3, follow symlinks, <query>, read): open a host path given as the
;;                    request's query (e.g. GET /x?/etc/passwd)
;;   data=...         only when open succeeded: the first bytes of the file (proves the positive
;;                    control really reads, so the refusals above are not a broken probe)
;;   create=E         path_open(3, "wasmgate-created", O_CREAT, write): write into a grant
;;   unlink=E         path_unlink_file(3, "sub/hello.txt"): delete from a grant
;;   open_stdin=E     path_open on fd 0 (stdin is not a directory)
;;   environ=N/S      environ_sizes_get: how many variables, how many bytes
;;   args=N           args_sizes_get
;;   accept3=E        sock_accept(3): a pre-opened socket, if any
;;   accept1=E        sock_accept(1): stdout as a socket
;;   recv0=E          sock_recv(0)
;;   send1=E          sock_send(1)
;;   shutdown1=E      sock_shutdown(1)
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown"
    (func $sock_shutdown (param i32 i32) (result i32)))

  (memory (export "memory") 2)

  ;; Labels (address, length).
  (data (i32.const 16) "prestat3=")      ;; 16, 9
  (data (i32.const 32) "open=")          ;; 32, 5
  (data (i32.const 48) "data=")          ;; 48, 5
  (data (i32.const 64) "open_stdin=")    ;; 64, 11
  (data (i32.const 80) "environ=")       ;; 80, 8
  (data (i32.const 96) "args=")          ;; 96, 5
  (data (i32.const 112) "accept3=")      ;; 112, 8
  (data (i32.const 128) "accept1=")      ;; 128, 8
  (data (i32.const 144) "recv0=")        ;; 144, 6
  (data (i32.const 160) "send1=")        ;; 160, 6
  (data (i32.const 176) "shutdown1=")    ;; 176, 10
  (data (i32.const 192) "etc/passwd")    ;; 192, 10
  (data (i32.const 208) "create=")       ;; 208, 7
  (data (i32.const 224) "wasmgate-created")  ;; 224, 16
  (data (i32.const 240) "unlink=")       ;; 240, 7
  (data (i32.const 256) "sub/hello.txt")  ;; 256, 13

  ;; Scratch: 1024.. results of host calls; 1100 an iovec; 3000 a 32-byte read buffer.
  ;; The response is built at 4096: status | header_count 0 | body_len | body from 4108.
  (global $cur (mut i32) (i32.const 4108))

  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))

  ;; Bump allocator in the second page (requests here are small).
  (global $bump (mut i32) (i32.const 65536))
  (func (export "wasmgate_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p) (local.get $n)))
    (local.get $p))

  ;; Appends `len` bytes at `src` to the body.
  (func $put (param $src i32) (param $len i32)
    (memory.copy (global.get $cur) (local.get $src) (local.get $len))
    (global.set $cur (i32.add (global.get $cur) (local.get $len))))

  (func $byte (param $b i32)
    (i32.store8 (global.get $cur) (local.get $b))
    (global.set $cur (i32.add (global.get $cur) (i32.const 1))))

  ;; Appends `n` in decimal.
  (func $num (param $n i32)
    (local $div i32)
    (local.set $div (i32.const 1))
    (block $done
      (loop $up
        (br_if $done (i32.lt_u (i32.div_u (local.get $n) (local.get $div)) (i32.const 10)))
        (local.set $div (i32.mul (local.get $div) (i32.const 10)))
        (br $up)))
    (loop $digits
      (call $byte (i32.add (i32.const 48)
        (i32.rem_u (i32.div_u (local.get $n) (local.get $div)) (i32.const 10))))
      (local.set $div (i32.div_u (local.get $div) (i32.const 10)))
      (br_if $digits (local.get $div))))

  ;; label, number, newline
  (func $line (param $label i32) (param $len i32) (param $n i32)
    (call $put (local.get $label) (local.get $len))
    (call $num (local.get $n))
    (call $byte (i32.const 10)))

  (func (export "wasmgate_handle") (param $p i32) (param $n i32) (result i64)
    (local $q i32)
    (local $e i32)
    ;; The query: skip method, target and path (each a u32 length then bytes).
    (local.set $q (local.get $p))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))
    (local.set $q (i32.add (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))))

    (call $line (i32.const 16) (i32.const 9)
      (call $fd_prestat_get (i32.const 3) (i32.const 1024)))

    (i32.store (i32.const 1032) (i32.const -1))
    (local.set $e (call $path_open (i32.const 3) (i32.const 1)
      (i32.add (local.get $q) (i32.const 4)) (i32.load (local.get $q))
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 1032)))
    (call $line (i32.const 32) (i32.const 5) (local.get $e))
    (if (i32.eqz (local.get $e))
      (then
        (i32.store (i32.const 1100) (i32.const 3000))
        (i32.store (i32.const 1104) (i32.const 32))
        (i32.store (i32.const 1108) (i32.const 0))
        (drop (call $fd_read (i32.load (i32.const 1032)) (i32.const 1100) (i32.const 1)
          (i32.const 1108)))
        (call $put (i32.const 48) (i32.const 5))
        (call $put (i32.const 3000) (i32.load (i32.const 1108)))
        (call $byte (i32.const 10))))

    ;; O_CREAT (1), rights fd_write (1 << 6)
    (call $line (i32.const 208) (i32.const 7)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 224) (i32.const 16)
        (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 1036)))
    (call $line (i32.const 240) (i32.const 7)
      (call $path_unlink_file (i32.const 3) (i32.const 256) (i32.const 13)))

    (call $line (i32.const 64) (i32.const 11)
      (call $path_open (i32.const 0) (i32.const 1) (i32.const 192) (i32.const 10)
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 1036)))

    (i32.store (i32.const 1040) (i32.const 0))
    (i32.store (i32.const 1044) (i32.const 0))
    (drop (call $environ_sizes_get (i32.const 1040) (i32.const 1044)))
    (call $put (i32.const 80) (i32.const 8))
    (call $num (i32.load (i32.const 1040)))
    (call $byte (i32.const 47))
    (call $num (i32.load (i32.const 1044)))
    (call $byte (i32.const 10))

    (i32.store (i32.const 1048) (i32.const 0))
    (drop (call $args_sizes_get (i32.const 1048) (i32.const 1052)))
    (call $line (i32.const 96) (i32.const 5) (i32.load (i32.const 1048)))

    (call $line (i32.const 112) (i32.const 8)
      (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 1056)))
    (call $line (i32.const 128) (i32.const 8)
      (call $sock_accept (i32.const 1) (i32.const 0) (i32.const 1056)))
    ;; iovec at 1100 over the read buffer, for recv/send.
    (i32.store (i32.const 1100) (i32.const 3000))
    (i32.store (i32.const 1104) (i32.const 32))
    (call $line (i32.const 144) (i32.const 6)
      (call $sock_recv (i32.const 0) (i32.const 1100) (i32.const 1) (i32.const 0)
        (i32.const 1060) (i32.const 1064)))
    (call $line (i32.const 160) (i32.const 6)
      (call $sock_send (i32.const 1) (i32.const 1100) (i32.const 1) (i32.const 0)
        (i32.const 1068)))
    (call $line (i32.const 176) (i32.const 10)
      (call $sock_shutdown (i32.const 1) (i32.const 2)))

    ;; 200, no headers, the body written so far.
    (i32.store (i32.const 4096) (i32.const 200))
    (i32.store (i32.const 4100) (i32.const 0))
    (i32.store (i32.const 4104) (i32.sub (global.get $cur) (i32.const 4108)))
    (i64.or
      (i64.shl (i64.const 4096) (i64.const 32))
      (i64.extend_i32_u (i32.sub (global.get $cur) (i32.const 4096)))))
)
