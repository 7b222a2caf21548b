;; growbomb: grows memory a page at a time until the host refuses, then
;; does what a Go guest does when out of memory: traps.
(module
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
