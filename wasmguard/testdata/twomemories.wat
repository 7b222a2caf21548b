;; twomemories: a second linear memory (multi-memory proposal).
(module
  (memory (export "memory") 1)
  (memory $second 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024)))
