# A 16-bit ones' complement checksum (as in IP headers) over the memory
# given in r1 (address) and r2 (length), one byte pair at a time, at most
# 1500 bytes (an Ethernet MTU: a bound the verifier can see).
    mov %r0, 0
    mov %r3, 0
    jle %r2, 1500, loop
    mov %r2, 1500
loop:
    jge %r3, %r2, fold
    mov %r4, %r1
    add %r4, %r3
    ldxh %r5, [%r4+0]
    be16 %r5
    add %r0, %r5
    add %r3, 2
    ja loop
fold:
    mov %r5, %r0
    rsh %r5, 16
    and %r0, 0xffff
    add %r0, %r5
    jgt %r0, 0xffff, fold
    xor %r0, 0xffff
    exit
