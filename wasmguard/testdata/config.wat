;; config: reads its configuration and answers with its first four bytes.
(module
  (import "mqttguard" "config" (func $config (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (if (i32.ne (call $config (i32.const 512) (i32.const 4)) (i32.const 4)) (then unreachable))
    (i32.load (i32.const 512))))
