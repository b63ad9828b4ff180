#include "textflag.h"

// joinEntry is rl-core's entry point (the Makefile links it with
// -E main.joinEntry), run before Go's runtime: the one moment this
// process has a single thread, as setns(2) into a user namespace needs.
// When the environment holds _RL_USERNS=exec (userns.ExecJoin: the host
// rl exec'd us in place of a fork), it enters the user namespace open at
// fd 100 (userns.ExecJoinFD) and a mount namespace of its own, closes fd
// 100, and records what happened in joinState and joinErrno (entry.go);
// then, in any case, it goes on to Go's own entry.
//
// At entry 0(SP) is argc, then argv[0..argc-1], NULL, the environment,
// NULL.

// The entry asked for, NUL included (the 16th byte, zero).
DATA joinKey<>+0(SB)/8, $"_RL_USER"
DATA joinKey<>+8(SB)/7, $"NS=exec"
GLOBL joinKey<>(SB), RODATA, $16

TEXT ·joinEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	0(SP), CX
	LEAQ	16(SP)(CX*8), BX	// the environment: past argv's NULL
	LEAQ	joinKey<>(SB), R10
env:
	MOVQ	0(BX), DX
	TESTQ	DX, DX
	JZ	start	// not asked
	XORQ	R8, R8
cmp:
	// Byte by byte: a shorter entry differs at its NUL, so nothing past
	// it is read.
	MOVBLZX	(DX)(R8*1), R9
	MOVBLZX	(R10)(R8*1), R11
	CMPL	R9, R11
	JNE	next
	INCQ	R8
	CMPQ	R8, $16
	JLT	cmp
	JMP	join
next:
	ADDQ	$8, BX
	JMP	env
join:
	MOVQ	$308, AX	// setns(100, CLONE_NEWUSER)
	MOVQ	$100, DI
	MOVQ	$0x10000000, SI
	SYSCALL
	CMPQ	AX, $0
	JNE	setnsFailed
	MOVQ	$272, AX	// unshare(CLONE_NEWNS)
	MOVQ	$0x20000, DI
	SYSCALL
	CMPQ	AX, $0
	JNE	unshareFailed
	MOVQ	$3, AX	// close(100)
	MOVQ	$100, DI
	SYSCALL
	MOVQ	$1, ·joinState(SB)
	JMP	start
setnsFailed:
	NEGQ	AX
	MOVQ	AX, ·joinErrno(SB)
	MOVQ	$2, ·joinState(SB)
	JMP	start
unshareFailed:
	NEGQ	AX
	MOVQ	AX, ·joinErrno(SB)
	MOVQ	$3, ·joinState(SB)
start:
	JMP	_rt0_amd64_linux(SB)
