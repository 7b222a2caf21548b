;; trap: traps on every call.
(module
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32) unreachable))
