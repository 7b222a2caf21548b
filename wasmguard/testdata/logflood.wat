;; logflood: asks the host to log 64 KiB, again and again, until it is
;; stopped. Each call is one instruction of the guest's and a round trip
;; into the host: only charging host calls by their cost bounds it.
(module
  (import "mqttguard" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "on_publish") (param i32) (result i32)
    (loop $l
      (call $log (i32.const 0) (i32.const 0) (i32.const 65536))
      (br $l))
    (i32.const 0)))
