;; garbage: returns a verdict with an unknown action.
(module
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32) (i32.const 0x12345678)))
