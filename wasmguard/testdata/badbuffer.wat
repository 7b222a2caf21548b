;; badbuffer: hands the host a buffer pointer far outside its memory.
(module
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 0x7FFFFF00))
  (func (export "on_publish") (param i32) (result i32) (i32.const 0)))
