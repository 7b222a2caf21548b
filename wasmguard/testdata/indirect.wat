;; indirect: reaches its hooks through the table (call_indirect), as Go's
;; compiled code does; the instrumented table must hold the wrappers.
(module
  (type $hook (func (param i32) (result i32)))
  (table 2 2 funcref)
  (elem (i32.const 0) $allow $deny)
  (memory (export "memory") 1)
  (func $allow (param i32) (result i32) (i32.const 0))
  (func $deny (param i32) (result i32) (i32.const 0x9701))
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  ;; the topic's first byte picks the table entry: '0' allow, '1' deny
  (func (export "on_publish") (param i32) (result i32)
    (call_indirect (type $hook) (local.get 0)
      (i32.sub (i32.load8_u (i32.const 1052)) (i32.const 48)))))
