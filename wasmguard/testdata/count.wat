;; count: loops n times (for the fuel accounting tests), recurses n deep,
;; and fills n bytes.
(module
  (memory (export "memory") 1)
  (func (export "mqttguard_abi_v1"))
  (func (export "mqttguard_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "count") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))
  (func $deep (export "deep") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (call $deep (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "fill") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 7) (local.get $n))))
