;; echo: the test workhorse. The buffer is at 1024 in one 64 KiB page.
;; on_publish returns the event's last four bytes (the end of the payload)
;; as its verdict, except for a few magic values that misbehave on purpose:
;; 0xDEAD traps, 0xF00D spins forever, 0xB0B0 recurses forever, 0x510
;; counts to 100 million (slowly, but it finishes) and allows.
;; on_connect logs the client ID and allows; on_subscribe allows.
(module
  (import "mqttguard" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64512)) (then (return (i32.const 0))))
    (i32.const 1024))
  (func $recurse (param i32) (result i32)
    (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (func (export "on_publish") (param $len i32) (result i32)
    (local $v i32)
    (local.set $v (i32.load (i32.add (i32.const 1020) (local.get $len))))
    (if (i32.eq (local.get $v) (i32.const 0xDEAD)) (then unreachable))
    (if (i32.eq (local.get $v) (i32.const 0xF00D)) (then (loop $spin (br $spin))))
    (if (i32.eq (local.get $v) (i32.const 0xB0B0)) (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get $v) (i32.const 0x510)) (then
      (local.set $v (i32.const 100000000))
      (loop $count (br_if $count (local.tee $v (i32.sub (local.get $v) (i32.const 1)))))))
    (local.get $v))
  (func (export "on_connect") (param $len i32) (result i32)
    ;; the client ID: a u32 length at 1024+16, the bytes after it
    (call $log (i32.const 0) (i32.const 1044) (i32.load (i32.const 1040)))
    (i32.const 0))
  (func (export "on_subscribe") (param i32) (result i32) (i32.const 0)))
