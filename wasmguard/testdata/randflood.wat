;; randflood: asks WASI for 64 KiB of randomness, again and again: one
;; guest instruction, and the host reads the system's random source.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (loop $l
      (drop (call $random (i32.const 0) (i32.const 65536)))
      (br $l))
    (i32.const 0)))
