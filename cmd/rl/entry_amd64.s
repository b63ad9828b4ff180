#include "textflag.h"

// fastEntry is rl's entry point (the Makefile links it with
// -E main.fastEntry), run before Go's runtime: rl run's fast path
// (userns/fastpath.go). For `rl run ...` with $XDG_RUNTIME_DIR set and none
// of rl's own variables in the environment, it reads the record
// $XDG_RUNTIME_DIR/rl/fast/<FNV-1a of argv[1:] and of rl's file's device
// and inode>, and when all it depends on holds it does what the host rl
// would: the keeper's user namespace at fd 100, the keeper's record marked
// used, every other descriptor from 3 on close-on-exec, and an exec of
// rl-core with the environment plus the recorded variables (rl-core's own
// entry point enters the namespace). Otherwise, and after any failure, it
// goes on to Go's entry as if it were not there: what it opened it closes.
// It calls nothing and uses 40 KiB of the stack below the arguments (Go's
// own start takes the 64 KiB there for its first stack).
//
// At entry 0(SP) is argc, then argv[0..argc-1], NULL, the environment,
// NULL. R15 is that SP, R14 argc, R13 the work area (below):
//   0(R13)  $XDG_RUNTIME_DIR's value     8  environment entries
//   16      the environment               24  the namespace fd
//   40      the record's fd              48  the record's length
//   56      end of "/proc/PID/"          64  length of the XDG value
//   72-112  rl's file: device, inode, mtime (s, ns), size
//   200-232 digits of the pid             256-400 a struct stat
//   512     the record's path, then the keeper's record's (3.5 KiB)
//   4096    /proc/PID/... (512)           4608 /proc/PID/stat (1 KiB)
//   5632    the record (16 KiB)           22016 the new environment

#define SYS_read 0
#define SYS_close 3
#define SYS_fstat 5
#define SYS_execve 59
#define SYS_fcntl 72
#define SYS_getuid 102
#define SYS_openat 257
#define SYS_newfstatat 262
#define SYS_utimensat 280
#define SYS_dup3 292
#define SYS_close_range 436
#define AT_FDCWD $-100
#define O_RDONLY_CLOEXEC $0x80000
#define O_RDONLY_CLOEXEC_NOFOLLOW $0xa0000
#define MAXENV 2048
#define MAXVARS 31

#define BUF 5632
#define PATH 512
#define PROCPATH 4096
#define STB 256
#define PROC 4608
#define ENVP 22016

// Calls, their result in AX: openat(AT_FDCWD, path, flags), read(fd,
// buf, n), close(fd), and newfstatat(AT_FDCWD, path) into the struct stat
// at STB.
#define OPENAT(path, flags) \
	MOVQ	$SYS_openat, AX \
	MOVQ	AT_FDCWD, DI \
	LEAQ	path, SI \
	MOVQ	flags, DX \
	XORQ	R10, R10 \
	SYSCALL
#define READ(fd, buf, n) \
	MOVQ	$SYS_read, AX \
	MOVQ	fd, DI \
	LEAQ	buf, SI \
	MOVQ	n, DX \
	SYSCALL
#define CLOSE(fd) \
	MOVQ	$SYS_close, AX \
	MOVQ	fd, DI \
	SYSCALL
#define STAT(path) \
	MOVQ	$SYS_newfstatat, AX \
	MOVQ	AT_FDCWD, DI \
	LEAQ	path, SI \
	LEAQ	STB(R13), DX \
	XORQ	R10, R10 \
	SYSCALL

// MTIME(path, off) leaves for start unless path's mtime (seconds and
// nanoseconds; zero and zero when it cannot be stat'ed) is the record's at
// off and off+8.
#define MTIME(path, off) \
	STAT(path) \
	XORQ	R8, R8 \
	XORQ	R9, R9 \
	TESTQ	AX, AX \
	CMOVQEQ	STB+88(R13), R8 \
	CMOVQEQ	STB+96(R13), R9 \
	LEAQ	BUF(R13), BX \
	CMPQ	R8, off(BX) \
	JNE	start \
	CMPQ	R9, off+8(BX) \
	JNE	start

DATA fastXDG<>+0(SB)/8, $"XDG_RUNT"
DATA fastXDG<>+8(SB)/8, $"IME_DIR="
GLOBL fastXDG<>(SB), RODATA, $16
DATA fastCont<>+0(SB)/8, $"_CONTAIN"
DATA fastCont<>+8(SB)/4, $"ERS_"
GLOBL fastCont<>(SB), RODATA, $16
DATA fastDir<>+0(SB)/8, $"/rl/fast"
DATA fastDir<>+8(SB)/1, $"/"
GLOBL fastDir<>(SB), RODATA, $16
DATA fastKeeper<>+0(SB)/8, $"/rl/keep"
DATA fastKeeper<>+8(SB)/2, $"er"
GLOBL fastKeeper<>(SB), RODATA, $16
DATA fastExe<>+0(SB)/8, $"/proc/se"
DATA fastExe<>+8(SB)/6, $"lf/exe"
GLOBL fastExe<>(SB), RODATA, $16
DATA fastSubuid<>+0(SB)/8, $"/etc/sub"
DATA fastSubuid<>+8(SB)/3, $"uid"
GLOBL fastSubuid<>(SB), RODATA, $16
DATA fastSubgid<>+0(SB)/8, $"/etc/sub"
DATA fastSubgid<>+8(SB)/3, $"gid"
GLOBL fastSubgid<>(SB), RODATA, $16
DATA fastProc<>+0(SB)/6, $"/proc/"
GLOBL fastProc<>(SB), RODATA, $8
DATA fastNS<>+0(SB)/7, $"ns/user"
GLOBL fastNS<>(SB), RODATA, $8
DATA fastStat<>+0(SB)/4, $"stat"
GLOBL fastStat<>(SB), RODATA, $8
DATA fastMagic<>+0(SB)/8, $"RLFAST01"
GLOBL fastMagic<>(SB), RODATA, $8
DATA fastHex<>+0(SB)/8, $"01234567"
DATA fastHex<>+8(SB)/8, $"89abcdef"
GLOBL fastHex<>(SB), RODATA, $16

TEXT ·fastEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SP, R15
	MOVQ	0(R15), R14
	CMPQ	R14, $2
	JLT	start
	MOVQ	16(R15), DX	// argv[1] must be "run"
	CMPL	0(DX), $0x006e7572
	JNE	start
	MOVQ	R15, R13
	SUBQ	$40960, R13

	// The environment: $XDG_RUNTIME_DIR, and none of _RL_*, _CONTAINERS_*.
	LEAQ	16(R15)(R14*8), BX
	MOVQ	BX, 16(R13)
	MOVQ	$0, 0(R13)
	XORQ	R12, R12
envscan:
	MOVQ	(BX)(R12*8), DX
	TESTQ	DX, DX
	JZ	envdone
	// Prefixes are compared a word at a time: an entry shorter than one
	// differs at its NUL, and what is read past it is the next string's.
	CMPL	0(DX), $0x5f4c525f	// "_RL_"
	JEQ	start
	MOVQ	fastCont<>+0(SB), AX
	CMPQ	0(DX), AX
	JNE	notcont
	MOVL	fastCont<>+8(SB), AX
	CMPL	8(DX), AX
	JEQ	start
notcont:
	MOVQ	fastXDG<>+0(SB), AX
	CMPQ	0(DX), AX
	JNE	nextenv
	MOVQ	fastXDG<>+8(SB), AX
	CMPQ	8(DX), AX
	JNE	nextenv
	CMPQ	0(R13), $0	// the first one counts, as for Go's Getenv
	JNE	nextenv
	LEAQ	16(DX), AX
	MOVQ	AX, 0(R13)
nextenv:
	INCQ	R12
	CMPQ	R12, $MAXENV
	JGE	start
	JMP	envscan
envdone:
	MOVQ	R12, 8(R13)
	MOVQ	0(R13), SI
	TESTQ	SI, SI
	JZ	start

	// rl's own file: its device and inode name the record with the
	// words; it is checked against the record below.
	STAT(fastExe<>(SB))
	TESTQ	AX, AX
	JNZ	start
	MOVQ	STB+0(R13), AX
	MOVQ	AX, 72(R13)	// st_dev
	MOVQ	STB+8(R13), AX
	MOVQ	AX, 80(R13)	// st_ino
	MOVQ	STB+88(R13), AX
	MOVQ	AX, 88(R13)	// st_mtim
	MOVQ	STB+96(R13), AX
	MOVQ	AX, 96(R13)
	MOVQ	STB+48(R13), AX
	MOVQ	AX, 104(R13)	// st_size
	MOVQ	0(R13), SI

	// The record's path: $XDG_RUNTIME_DIR/rl/fast/ and the hash.
	LEAQ	PATH(R13), DI
	XORQ	CX, CX
cpxdg:
	MOVB	(SI)(CX*1), AX
	TESTB	AL, AL
	JZ	cpxdgdone
	MOVB	AX, (DI)(CX*1)
	INCQ	CX
	CMPQ	CX, $3500
	JGE	start
	JMP	cpxdg
cpxdgdone:
	TESTQ	CX, CX
	JZ	start
	MOVQ	CX, 64(R13)
	ADDQ	CX, DI
	MOVQ	fastDir<>+0(SB), AX
	MOVQ	AX, 0(DI)
	MOVB	fastDir<>+8(SB), AX
	MOVB	AX, 8(DI)
	ADDQ	$9, DI
	// FNV-1a (64 bits) of argv[1:], each word with its NUL.
	MOVQ	$0xcbf29ce484222325, R8
	MOVQ	$0x100000001b3, R9
	MOVQ	$1, R10
hashargs:
	CMPQ	R10, R14
	JGE	hashdone
	MOVQ	8(R15)(R10*8), SI
hashbytes:
	MOVBQZX	(SI), AX
	XORQ	AX, R8
	IMULQ	R9, R8
	INCQ	SI
	TESTQ	AX, AX
	JNZ	hashbytes
	INCQ	R10
	JMP	hashargs
hashdone:
	// then rl's device and inode (72 and 80), 8 little-endian bytes each
	XORQ	CX, CX
hashdevino:
	MOVBQZX	72(R13)(CX*1), AX
	XORQ	AX, R8
	IMULQ	R9, R8
	INCQ	CX
	CMPQ	CX, $16
	JLT	hashdevino
	LEAQ	fastHex<>(SB), SI
	MOVQ	$60, CX
hexloop:
	MOVQ	R8, AX
	SHRQ	CX, AX
	ANDQ	$15, AX
	MOVB	(SI)(AX*1), DX
	MOVB	DX, 0(DI)
	INCQ	DI
	SUBQ	$4, CX
	JGE	hexloop
	MOVB	$0, 0(DI)

	// Read the record: the user's, not writable by others, one read.
	OPENAT(PATH(R13), O_RDONLY_CLOEXEC_NOFOLLOW)
	CMPQ	AX, $0
	JLT	start
	MOVQ	AX, 40(R13)
	MOVQ	$SYS_fstat, AX
	MOVQ	40(R13), DI
	LEAQ	STB(R13), SI
	SYSCALL
	TESTQ	AX, AX
	JNZ	closerecord
	MOVQ	$SYS_getuid, AX
	SYSCALL
	MOVL	STB+28(R13), DX	// st_uid
	CMPL	AX, DX
	JNE	closerecord
	MOVL	STB+24(R13), DX	// st_mode
	TESTL	$0x12, DX	// group or other may write
	JNZ	closerecord
	READ(40(R13), BUF(R13), $16384)
	MOVQ	AX, 48(R13)
	CLOSE(40(R13))
	MOVQ	48(R13), AX
	CMPQ	AX, $120
	JLT	start
	CMPQ	AX, $16384
	JGE	start
	LEAQ	BUF(R13), BX
	MOVQ	fastMagic<>(SB), AX
	CMPQ	0(BX), AX
	JNE	start
	MOVQ	96(BX), R8	// words
	MOVQ	104(BX), R9	// variables
	MOVQ	112(BX), R10	// rl-core's path
	CMPQ	R8, $16384
	JCC	start
	CMPQ	R9, $16384
	JCC	start
	CMPQ	R10, $2
	JLT	start
	CMPQ	R10, $4096
	JCC	start
	LEAQ	120(R8)(R9*1), AX
	ADDQ	R10, AX
	CMPQ	AX, 48(R13)
	JNE	start
	MOVQ	48(R13), CX	// the path ends with its NUL
	MOVBQZX	-1(BX)(CX*1), AX
	TESTQ	AX, AX
	JNZ	start

	// The same words.
	LEAQ	120(BX), SI
	LEAQ	120(BX)(R8*1), DX
	MOVQ	$1, CX
argcmp:
	CMPQ	CX, R14
	JGE	argcmpdone
	MOVQ	8(R15)(CX*8), DI
argbytes:
	CMPQ	SI, DX
	JCC	start
	MOVB	(DI), AX
	CMPB	AL, (SI)
	JNE	start
	INCQ	DI
	INCQ	SI
	TESTB	AL, AL
	JNZ	argbytes
	INCQ	CX
	JMP	argcmp
argcmpdone:
	CMPQ	SI, DX
	JNE	start

	// rl's own file as recorded (device, inode, mtime, size).
	LEAQ	BUF(R13), BX
	MOVQ	72(R13), AX
	CMPQ	AX, 24(BX)
	JNE	start
	MOVQ	80(R13), AX
	CMPQ	AX, 32(BX)
	JNE	start
	MOVQ	88(R13), AX
	CMPQ	AX, 40(BX)
	JNE	start
	MOVQ	96(R13), AX
	CMPQ	AX, 48(BX)
	JNE	start
	MOVQ	104(R13), AX
	CMPQ	AX, 56(BX)
	JNE	start

	// /etc/subuid and /etc/subgid as recorded (mtime; zero: missing).
	MTIME(fastSubuid<>(SB), 64)
	MTIME(fastSubgid<>(SB), 80)

	// "/proc/PID/" of the keeper.
	MOVQ	8(BX), AX
	TESTQ	AX, AX
	JLE	start
	CMPQ	AX, $0x7fffffff
	JGT	start
	LEAQ	PROCPATH(R13), DI
	MOVQ	fastProc<>(SB), DX
	MOVQ	DX, 0(DI)
	ADDQ	$6, DI
	LEAQ	232(R13), R8
	MOVQ	R8, R9
	MOVQ	$10, CX
itoa:
	XORQ	DX, DX
	DIVQ	CX
	ADDQ	$48, DX
	DECQ	R9
	MOVB	DX, (R9)
	TESTQ	AX, AX
	JNZ	itoa
cpdigits:
	CMPQ	R9, R8
	JCC	cpdigitsdone
	MOVB	(R9), AX
	MOVB	AX, (DI)
	INCQ	R9
	INCQ	DI
	JMP	cpdigits
cpdigitsdone:
	MOVB	$47, (DI)	// '/'
	INCQ	DI
	MOVQ	DI, 56(R13)

	// Its namespace first, then whether the pid is still that keeper.
	MOVQ	fastNS<>(SB), AX
	MOVQ	AX, 0(DI)
	OPENAT(PROCPATH(R13), O_RDONLY_CLOEXEC)
	CMPQ	AX, $0
	JLT	start
	MOVQ	AX, 24(R13)
	MOVQ	56(R13), DI
	MOVQ	fastStat<>(SB), AX
	MOVQ	AX, 0(DI)
	OPENAT(PROCPATH(R13), O_RDONLY_CLOEXEC)
	CMPQ	AX, $0
	JLT	closens
	MOVQ	AX, 40(R13)
	READ(40(R13), PROC(R13), $1024)
	MOVQ	AX, 48(R13)
	CLOSE(40(R13))
	MOVQ	48(R13), CX
	CMPQ	CX, $1
	JLT	closens
	CMPQ	CX, $1024
	JGE	closens
	LEAQ	PROC(R13), SI
	MOVQ	CX, DX
findparen:	// the last ')': the command before it may hold anything
	DECQ	DX
	JLT	closens
	CMPB	(SI)(DX*1), $41
	JNE	findparen
	LEAQ	2(SI)(DX*1), DI	// field 3, the state
	LEAQ	(SI)(CX*1), R8
	CMPQ	DI, R8
	JCC	closens
	MOVB	(DI), AX
	CMPB	AL, $90	// 'Z'
	JEQ	closens
	CMPB	AL, $88	// 'X'
	JEQ	closens
	MOVQ	$19, R9
skipfield:
	CMPQ	DI, R8
	JCC	closens
	MOVB	(DI), AX
	INCQ	DI
	CMPB	AL, $32
	JNE	skipfield
	DECQ	R9
	JNZ	skipfield
	XORQ	AX, AX	// field 22, the start time
	XORQ	R9, R9
parsenum:
	CMPQ	DI, R8
	JCC	numdone
	MOVBQZX	(DI), DX
	SUBQ	$48, DX
	CMPQ	DX, $9
	JHI	numdone
	IMULQ	$10, AX
	ADDQ	DX, AX
	INCQ	DI
	INCQ	R9
	JMP	parsenum
numdone:
	TESTQ	R9, R9
	JZ	closens
	LEAQ	BUF(R13), BX
	CMPQ	AX, 16(BX)
	JNE	closens

	// fd 100, as the host rl puts it (refused when taken).
	MOVQ	$SYS_fcntl, AX
	MOVQ	$100, DI
	MOVQ	$1, SI	// F_GETFD
	SYSCALL
	CMPQ	AX, $-9	// EBADF
	JNE	closens
	MOVQ	$SYS_dup3, AX
	MOVQ	24(R13), DI
	MOVQ	$100, SI
	XORQ	DX, DX
	SYSCALL
	CMPQ	AX, $100
	JNE	closens
	CLOSE(24(R13))

	// The keeper's record used (it leaves when it is not for a while).
	LEAQ	PATH(R13), DI
	ADDQ	64(R13), DI
	MOVQ	fastKeeper<>+0(SB), AX
	MOVQ	AX, 0(DI)
	MOVQ	fastKeeper<>+8(SB), AX
	MOVQ	AX, 8(DI)
	MOVQ	$SYS_utimensat, AX
	MOVQ	AT_FDCWD, DI
	LEAQ	PATH(R13), SI
	XORQ	DX, DX
	XORQ	R10, R10
	SYSCALL

	// Descriptors from 3 on but 100 close at exec.
	MOVQ	$SYS_close_range, AX
	MOVQ	$3, DI
	MOVQ	$99, SI
	MOVQ	$4, DX	// CLOSE_RANGE_CLOEXEC
	SYSCALL
	TESTQ	AX, AX
	JNZ	close100
	MOVQ	$SYS_close_range, AX
	MOVQ	$101, DI
	MOVQ	$0xffffffff, SI
	MOVQ	$4, DX
	SYSCALL
	TESTQ	AX, AX
	JNZ	close100

	// The environment, then the recorded variables.
	LEAQ	ENVP(R13), DI
	MOVQ	16(R13), SI
	MOVQ	8(R13), CX
	XORQ	AX, AX
cpenv:
	CMPQ	AX, CX
	JGE	cpenvdone
	MOVQ	(SI)(AX*8), DX
	MOVQ	DX, (DI)(AX*8)
	INCQ	AX
	JMP	cpenv
cpenvdone:
	LEAQ	BUF(R13), BX
	MOVQ	96(BX), R8
	MOVQ	104(BX), R9
	LEAQ	120(BX)(R8*1), SI
	LEAQ	(SI)(R9*1), DX	// their end, and rl-core's path
	XORQ	R12, R12
addvar:
	CMPQ	SI, DX
	JCC	addvardone
	INCQ	R12
	CMPQ	R12, $MAXVARS
	JGT	close100
	MOVQ	SI, (DI)(AX*8)
	INCQ	AX
skipvar:
	CMPQ	SI, DX
	JCC	close100	// one without its NUL
	MOVBQZX	(SI), R8
	INCQ	SI
	TESTQ	R8, R8
	JNZ	skipvar
	JMP	addvar
addvardone:
	MOVQ	$0, (DI)(AX*8)
	MOVQ	DI, R10
	MOVQ	$SYS_execve, AX
	MOVQ	DX, DI
	LEAQ	8(R15), SI
	MOVQ	R10, DX
	SYSCALL
close100:	// the exec failed: as if none of this had happened
	CLOSE($100)
	JMP	start
closens:
	CLOSE(24(R13))
	JMP	start
closerecord:
	CLOSE(40(R13))
start:
	JMP	_rt0_amd64_linux(SB)
