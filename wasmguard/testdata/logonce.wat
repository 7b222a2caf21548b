;; logonce: logs the whole event n times, where n is the event's last
;; byte (the payload's last), then allows: a guest that logs a lot in one
;; call and returns.
(module
  (import "mqttguard" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param $len i32) (result i32)
    (local $n i32)
    ;; the event is at 1024; its last byte is the payload's last
    (local.set $n (i32.load8_u (i32.sub (i32.add (i32.const 1024) (local.get $len)) (i32.const 1))))
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (call $log (i32.const 0) (i32.const 1024) (local.get $len))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))
    (i32.const 0)))
