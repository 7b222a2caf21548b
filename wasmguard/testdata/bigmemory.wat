;; bigmemory: declares a 64 MiB memory up front.
(module
  (memory (export "memory") 1024)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024)))
