;; fillbomb: a loop of 16 MiB memory.fill calls; each is one instruction,
;; so only charging bulk operations by their length bounds it.
(module
  (memory (export "memory") 256 256)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (loop $l
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 16777216))
      (br $l))
    (i32.const 0)))
