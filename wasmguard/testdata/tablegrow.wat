;; tablegrow: grows its table by ten million elements (reference types).
(module
  (table 1 funcref)
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (drop (table.grow 0 (ref.null func) (i32.const 10000000)))
    (i32.const 0)))
