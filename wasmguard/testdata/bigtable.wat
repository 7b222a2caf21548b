;; bigtable: declares a table of 10 million elements (76 MiB of host heap
;; in wazero, outside the memory limit).
(module
  (table 10000000 funcref)
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024)))
