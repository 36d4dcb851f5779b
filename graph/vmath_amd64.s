//go:build amd64

#include "textflag.h"

// AVX2 + FMA kernels of vmath_amd64.go, eight float32 lanes at a time. The
// callers pass a multiple of 8 elements and finish any tail in Go.

// Each constant below is one float32 (or int32) repeated in 8 lanes.
// -104.0: below it e^x rounds to 0 in float32
#define EXP_LO vconst<>+0(SB)
// 89.0: above it e^x overflows to +Inf
#define EXP_HI vconst<>+32(SB)
// log2(e)
#define LOG2E vconst<>+64(SB)
// 0.693359375 and -2.12194440e-4: ln 2 split in two (Cody-Waite)
#define LN2_HI vconst<>+96(SB)
#define LN2_LO vconst<>+128(SB)
// Cephes expf: e^r = 1 + r + r^2*(P5 + r*(P4 + r*(P3 + r*(P2 + r*(P1 + r*P0)))))
#define EXP_P0 vconst<>+160(SB)
#define EXP_P1 vconst<>+192(SB)
#define EXP_P2 vconst<>+224(SB)
#define EXP_P3 vconst<>+256(SB)
#define EXP_P4 vconst<>+288(SB)
#define EXP_P5 vconst<>+320(SB)
// 127, the float32 exponent bias (int32 lanes)
#define BIAS127 vconst<>+352(SB)
// 1.0 and 0.5
#define ONE vconst<>+384(SB)
#define HALF vconst<>+416(SB)
// GELU: 0.044715, -2*sqrt(2/pi), 3*0.044715 and sqrt(2/pi)/2
#define GELU_A vconst<>+448(SB)
#define GELU_M2C vconst<>+480(SB)
#define GELU_3A vconst<>+512(SB)
#define GELU_HC vconst<>+544(SB)

DATA vconst<>+0(SB)/8, $0xc2d00000c2d00000
DATA vconst<>+8(SB)/8, $0xc2d00000c2d00000
DATA vconst<>+16(SB)/8, $0xc2d00000c2d00000
DATA vconst<>+24(SB)/8, $0xc2d00000c2d00000
DATA vconst<>+32(SB)/8, $0x42b2000042b20000
DATA vconst<>+40(SB)/8, $0x42b2000042b20000
DATA vconst<>+48(SB)/8, $0x42b2000042b20000
DATA vconst<>+56(SB)/8, $0x42b2000042b20000
DATA vconst<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vconst<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vconst<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vconst<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA vconst<>+96(SB)/8, $0x3f3180003f318000
DATA vconst<>+104(SB)/8, $0x3f3180003f318000
DATA vconst<>+112(SB)/8, $0x3f3180003f318000
DATA vconst<>+120(SB)/8, $0x3f3180003f318000
DATA vconst<>+128(SB)/8, $0xb95e8083b95e8083
DATA vconst<>+136(SB)/8, $0xb95e8083b95e8083
DATA vconst<>+144(SB)/8, $0xb95e8083b95e8083
DATA vconst<>+152(SB)/8, $0xb95e8083b95e8083
DATA vconst<>+160(SB)/8, $0x3950696739506967
DATA vconst<>+168(SB)/8, $0x3950696739506967
DATA vconst<>+176(SB)/8, $0x3950696739506967
DATA vconst<>+184(SB)/8, $0x3950696739506967
DATA vconst<>+192(SB)/8, $0x3ab743ce3ab743ce
DATA vconst<>+200(SB)/8, $0x3ab743ce3ab743ce
DATA vconst<>+208(SB)/8, $0x3ab743ce3ab743ce
DATA vconst<>+216(SB)/8, $0x3ab743ce3ab743ce
DATA vconst<>+224(SB)/8, $0x3c0889083c088908
DATA vconst<>+232(SB)/8, $0x3c0889083c088908
DATA vconst<>+240(SB)/8, $0x3c0889083c088908
DATA vconst<>+248(SB)/8, $0x3c0889083c088908
DATA vconst<>+256(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vconst<>+264(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vconst<>+272(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vconst<>+280(SB)/8, $0x3d2aa9c13d2aa9c1
DATA vconst<>+288(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vconst<>+296(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vconst<>+304(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vconst<>+312(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA vconst<>+320(SB)/8, $0x3f0000003f000000
DATA vconst<>+328(SB)/8, $0x3f0000003f000000
DATA vconst<>+336(SB)/8, $0x3f0000003f000000
DATA vconst<>+344(SB)/8, $0x3f0000003f000000
DATA vconst<>+352(SB)/8, $0x0000007f0000007f
DATA vconst<>+360(SB)/8, $0x0000007f0000007f
DATA vconst<>+368(SB)/8, $0x0000007f0000007f
DATA vconst<>+376(SB)/8, $0x0000007f0000007f
DATA vconst<>+384(SB)/8, $0x3f8000003f800000
DATA vconst<>+392(SB)/8, $0x3f8000003f800000
DATA vconst<>+400(SB)/8, $0x3f8000003f800000
DATA vconst<>+408(SB)/8, $0x3f8000003f800000
DATA vconst<>+416(SB)/8, $0x3f0000003f000000
DATA vconst<>+424(SB)/8, $0x3f0000003f000000
DATA vconst<>+432(SB)/8, $0x3f0000003f000000
DATA vconst<>+440(SB)/8, $0x3f0000003f000000
DATA vconst<>+448(SB)/8, $0x3d3727133d372713
DATA vconst<>+456(SB)/8, $0x3d3727133d372713
DATA vconst<>+464(SB)/8, $0x3d3727133d372713
DATA vconst<>+472(SB)/8, $0x3d3727133d372713
DATA vconst<>+480(SB)/8, $0xbfcc422abfcc422a
DATA vconst<>+488(SB)/8, $0xbfcc422abfcc422a
DATA vconst<>+496(SB)/8, $0xbfcc422abfcc422a
DATA vconst<>+504(SB)/8, $0xbfcc422abfcc422a
DATA vconst<>+512(SB)/8, $0x3e095d4f3e095d4f
DATA vconst<>+520(SB)/8, $0x3e095d4f3e095d4f
DATA vconst<>+528(SB)/8, $0x3e095d4f3e095d4f
DATA vconst<>+536(SB)/8, $0x3e095d4f3e095d4f
DATA vconst<>+544(SB)/8, $0x3ecc422a3ecc422a
DATA vconst<>+552(SB)/8, $0x3ecc422a3ecc422a
DATA vconst<>+560(SB)/8, $0x3ecc422a3ecc422a
DATA vconst<>+568(SB)/8, $0x3ecc422a3ecc422a
GLOBL vconst<>(SB), RODATA|NOPTR, $576

// EXP8 replaces the 8 lanes of X by e^X, within 2 ulp, using K, R and T as
// scratch; Y14 and Y15 must hold EXP_LO and EXP_HI. With X clamped to
// [-104, 89] (a NaN stays NaN: MAXPS and MINPS return their second source
// when either is NaN), k = round(X*log2 e), r = X - k*ln 2 (|r| <= ln2/2),
// and e^X = e^r * 2^k1 * 2^k2 with k1 = k>>1, k2 = k - k1: two normal
// scale factors, so results near overflow and subnormal results come out
// right without building 2^k directly.
// BLOCKS8 turns the element count n in CX into the number of 8-lane blocks
// and jumps to done when there is none.
#define BLOCKS8(done) \
	SHRQ $3, CX; \
	JZ   done

#define EXP8(X, K, R, T) \
	VMAXPS       X, Y14, X;    \
	VMINPS       X, Y15, X;    \
	VMULPS       LOG2E, X, K;  \
	VROUNDPS     $0, K, K;     \
	VMOVAPS      X, R;         \
	VFNMADD231PS LN2_HI, K, R; \
	VFNMADD231PS LN2_LO, K, R; \
	VMOVUPS      EXP_P0, X;    \
	VFMADD213PS  EXP_P1, R, X; \
	VFMADD213PS  EXP_P2, R, X; \
	VFMADD213PS  EXP_P3, R, X; \
	VFMADD213PS  EXP_P4, R, X; \
	VFMADD213PS  EXP_P5, R, X; \
	VMULPS       R, R, T;      \
	VFMADD213PS  R, T, X;      \
	VADDPS       ONE, X, X;    \
	VCVTPS2DQ    K, K;         \
	VPSRAD       $1, K, T;     \
	VPSUBD       T, K, K;      \
	VPADDD       BIAS127, T, T; \
	VPSLLD       $23, T, T;    \
	VPADDD       BIAS127, K, K; \
	VPSLLD       $23, K, K;    \
	VMULPS       T, X, X;      \
	VMULPS       K, X, X

// func expSumAVX2(dst, src *float32, n int, m float32) float64
// dst[i] = e^(src[i] - m) for i < n (a multiple of 8); returns the sum of
// the dst values, accumulated in float64.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS m+24(FP), Y13
	VMOVUPS      EXP_LO, Y14
	VMOVUPS      EXP_HI, Y15
	VXORPD       Y8, Y8, Y8
	VXORPD       Y9, Y9, Y9
	SHRQ         $3, CX
	JZ           expsum_done

expsum_loop:
	VMOVUPS      (SI), Y0
	VSUBPS       Y13, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VMOVUPS      Y0, (DI)
	VCVTPS2PD    X0, Y1
	VEXTRACTF128 $1, Y0, X2
	VCVTPS2PD    X2, Y2
	VADDPD       Y1, Y8, Y8
	VADDPD       Y2, Y9, Y9
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNZ          expsum_loop

expsum_done:
	VADDPD       Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPD       X9, X8, X8
	VHADDPD      X8, X8, X8
	VZEROUPPER
	MOVSD        X8, ret+32(FP)
	RET

// func geluAVX2(y, t, x *float32, n int)
// For i < n (a multiple of 8), with u = sqrt(2/pi)*(x + 0.044715*x^3) and
// s = 1/(1 + e^(-2u)) (the logistic function of 2u):
// y[i] = x*s = x*(1 + tanh u)/2 and t[i] = 2s - 1 = tanh u.
TEXT ·geluAVX2(SB), NOSPLIT, $0-32
	MOVQ    y+0(FP), DI
	MOVQ    t+8(FP), DX
	MOVQ    x+16(FP), SI
	MOVQ    n+24(FP), CX
	VMOVUPS EXP_LO, Y14
	VMOVUPS EXP_HI, Y15
	VMOVUPS ONE, Y13
	BLOCKS8(gelu_done)

gelu_loop:
	VMOVUPS (SI), Y4
	VMULPS  Y4, Y4, Y0
	VMULPS  GELU_A, Y0, Y0
	VADDPS  Y13, Y0, Y0
	VMULPS  Y4, Y0, Y0
	VMULPS  GELU_M2C, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS  Y13, Y0, Y0
	VDIVPS  Y0, Y13, Y1
	VMULPS  Y1, Y4, Y4
	VMOVUPS Y4, (DI)
	VADDPS  Y1, Y1, Y1
	VSUBPS  Y13, Y1, Y1
	VMOVUPS Y1, (DX)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     gelu_loop

gelu_done:
	VZEROUPPER
	RET

// func siluAVX2(y, s, x *float32, n int)
// For i < n (a multiple of 8), with s = 1/(1 + e^(-x)) (the logistic
// function): y[i] = x*s and s[i] = s. Where e^(-x) overflows (x < -89),
// s = 0 and y = -0, the limit.
TEXT ·siluAVX2(SB), NOSPLIT, $0-32
	MOVQ    y+0(FP), DI
	MOVQ    s+8(FP), DX
	MOVQ    x+16(FP), SI
	MOVQ    n+24(FP), CX
	VMOVUPS EXP_LO, Y14
	VMOVUPS EXP_HI, Y15
	VMOVUPS ONE, Y13
	BLOCKS8(silu_done)
	VXORPS  Y12, Y12, Y12 // 0, for -x

silu_loop:
	VMOVUPS (SI), Y4
	VSUBPS  Y4, Y12, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VADDPS  Y13, Y0, Y0
	VDIVPS  Y0, Y13, Y1
	VMULPS  Y1, Y4, Y4
	VMOVUPS Y4, (DI)
	VMOVUPS Y1, (DX)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     silu_loop

silu_done:
	VZEROUPPER
	RET

// func geluGradAVX2(dx, x, t, dy *float32, n int)
// For i < n (a multiple of 8), with t = tanh u from the forward pass and
// s = 1 - t^2: dx[i] = dy*(1/2 + t/2 + x*s*sqrt(2/pi)/2*(1 + 3*0.044715*x^2)),
// the second term taken as 0 where s = 0 (tanh saturated), so that a huge x
// whose x^2 overflows gives 0 and not 0*Inf = NaN.
TEXT ·geluGradAVX2(SB), NOSPLIT, $0-40
	MOVQ    dx+0(FP), DI
	MOVQ    x+8(FP), SI
	MOVQ    t+16(FP), DX
	MOVQ    dy+24(FP), BX
	MOVQ    n+32(FP), CX
	VMOVUPS ONE, Y15
	VMOVUPS HALF, Y14
	VMOVUPS GELU_3A, Y13
	VXORPS  Y12, Y12, Y12
	BLOCKS8(geluGrad_done)

geluGrad_loop:
	VMOVUPS      (SI), Y0
	VMOVUPS      (DX), Y1
	VMOVAPS      Y1, Y2
	VFNMADD213PS Y15, Y1, Y2
	VMULPS       Y0, Y0, Y3
	VFMADD213PS  Y15, Y13, Y3
	VMULPS       Y2, Y0, Y4
	VMULPS       Y3, Y4, Y4
	VMULPS       GELU_HC, Y4, Y4
	VCMPPS       $0, Y12, Y2, Y5
	VANDNPS      Y4, Y5, Y4
	VFMADD213PS  Y14, Y14, Y1
	VADDPS       Y4, Y1, Y1
	VMULPS       (BX), Y1, Y1
	VMOVUPS      Y1, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $32, BX
	ADDQ         $32, DI
	DECQ         CX
	JNZ          geluGrad_loop

geluGrad_done:
	VZEROUPPER
	RET

// func lnRowFwdAVX2(y, x, gm, b *float32, d int, eps float64) (mu, r float64)
// LayerNorm of one row of d elements (a multiple of 8): mu = mean(x) and
// r = 1/sqrt(mean((x - mu)^2) + eps), both summed in float64 (two passes),
// then y = (x - mu)*r*g + b in float32.
TEXT ·lnRowFwdAVX2(SB), NOSPLIT, $0-64
	MOVQ      x+8(FP), SI
	MOVQ      d+32(FP), CX
	SHRQ      $3, CX
	MOVQ      CX, DX
	VXORPD    Y8, Y8, Y8
	VXORPD    Y9, Y9, Y9
	MOVQ      SI, AX

lnf_sum:
	VCVTPS2PD (AX), Y0
	VCVTPS2PD 16(AX), Y1
	VADDPD    Y0, Y8, Y8
	VADDPD    Y1, Y9, Y9
	ADDQ      $32, AX
	DECQ      DX
	JNZ       lnf_sum
	VADDPD    Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPD    X9, X8, X8
	VHADDPD   X8, X8, X8
	CVTSQ2SD  d+32(FP), X10
	VDIVSD    X10, X8, X8
	VMOVSD    X8, mu+48(FP)
	VBROADCASTSD X8, Y7
	VXORPD    Y8, Y8, Y8
	VXORPD    Y9, Y9, Y9
	MOVQ      SI, AX
	MOVQ      CX, DX

lnf_sq:
	VCVTPS2PD (AX), Y0
	VCVTPS2PD 16(AX), Y1
	VSUBPD    Y7, Y0, Y0
	VSUBPD    Y7, Y1, Y1
	VFMADD231PD Y0, Y0, Y8
	VFMADD231PD Y1, Y1, Y9
	ADDQ      $32, AX
	DECQ      DX
	JNZ       lnf_sq
	VADDPD    Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPD    X9, X8, X8
	VHADDPD   X8, X8, X8
	VDIVSD    X10, X8, X8
	VADDSD    eps+40(FP), X8, X8
	VSQRTSD   X8, X8, X8
	VMOVSD    ONE, X11
	VCVTSS2SD X11, X11, X11
	VDIVSD    X8, X11, X8
	VMOVSD    X8, r+56(FP)
	VCVTSD2SS X8, X8, X8
	VBROADCASTSS X8, Y6
	VCVTSD2SS X7, X7, X7
	VBROADCASTSS X7, Y7
	MOVQ      y+0(FP), DI
	MOVQ      gm+16(FP), BX
	MOVQ      b+24(FP), R8

lnf_apply:
	VMOVUPS   (SI), Y0
	VSUBPS    Y7, Y0, Y0
	VMULPS    Y6, Y0, Y0
	VMOVUPS   (BX), Y1
	VFMADD213PS (R8), Y1, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $32, BX
	ADDQ      $32, R8
	ADDQ      $32, DI
	DECQ      CX
	JNZ       lnf_apply
	VZEROUPPER
	RET

// func lnRowBwdAVX2(dx, x, gm, dy *float32, d int, mu, r float32, dg, db *float64)
// LayerNorm's backward pass for one row of d elements (a multiple of 8),
// with xh = (x - mu)*r: s1 = sum(g*dy), s2 = sum(g*dy*xh) in float64;
// dg += dy*xh and db += dy (float64 accumulators, one per column); then
// dx = r*(g*dy - s1/d - xh*s2/d).
TEXT ·lnRowBwdAVX2(SB), NOSPLIT, $0-64
	MOVQ      x+8(FP), SI
	MOVQ      gm+16(FP), BX
	MOVQ      dy+24(FP), DX
	MOVQ      d+32(FP), CX
	SHRQ      $3, CX
	VBROADCASTSS mu+40(FP), Y14
	VBROADCASTSS r+44(FP), Y15
	MOVQ      dg+48(FP), R8
	MOVQ      db+56(FP), R9
	VXORPD    Y10, Y10, Y10
	VXORPD    Y11, Y11, Y11
	MOVQ      CX, R10
	MOVQ      SI, R11
	MOVQ      BX, R12
	MOVQ      DX, R13

lnb_sums:
	VMOVUPS   (R11), Y0
	VSUBPS    Y14, Y0, Y0
	VMULPS    Y15, Y0, Y0
	VMOVUPS   (R13), Y1
	VMULPS    (R12), Y1, Y2
	VCVTPS2PD X2, Y3
	VADDPD    Y3, Y10, Y10
	VEXTRACTF128 $1, Y2, X4
	VCVTPS2PD X4, Y4
	VADDPD    Y4, Y10, Y10
	VMULPS    Y0, Y2, Y2
	VCVTPS2PD X2, Y3
	VADDPD    Y3, Y11, Y11
	VEXTRACTF128 $1, Y2, X4
	VCVTPS2PD X4, Y4
	VADDPD    Y4, Y11, Y11
	VMULPS    Y0, Y1, Y2
	VCVTPS2PD X2, Y3
	VADDPD    (R8), Y3, Y3
	VMOVUPD   Y3, (R8)
	VEXTRACTF128 $1, Y2, X4
	VCVTPS2PD X4, Y4
	VADDPD    32(R8), Y4, Y4
	VMOVUPD   Y4, 32(R8)
	VCVTPS2PD X1, Y3
	VADDPD    (R9), Y3, Y3
	VMOVUPD   Y3, (R9)
	VEXTRACTF128 $1, Y1, X4
	VCVTPS2PD X4, Y4
	VADDPD    32(R9), Y4, Y4
	VMOVUPD   Y4, 32(R9)
	ADDQ      $32, R11
	ADDQ      $32, R12
	ADDQ      $32, R13
	ADDQ      $64, R8
	ADDQ      $64, R9
	DECQ      R10
	JNZ       lnb_sums
	CVTSQ2SD  d+32(FP), X9
	VEXTRACTF128 $1, Y10, X4
	VADDPD    X4, X10, X10
	VHADDPD   X10, X10, X10
	VDIVSD    X9, X10, X10
	VCVTSD2SS X10, X10, X10
	VBROADCASTSS X10, Y12
	VEXTRACTF128 $1, Y11, X4
	VADDPD    X4, X11, X11
	VHADDPD   X11, X11, X11
	VDIVSD    X9, X11, X11
	VCVTSD2SS X11, X11, X11
	VBROADCASTSS X11, Y13
	MOVQ      dx+0(FP), DI

lnb_dx:
	VMOVUPS   (SI), Y0
	VSUBPS    Y14, Y0, Y0
	VMULPS    Y15, Y0, Y0
	VMOVUPS   (DX), Y1
	VMULPS    (BX), Y1, Y1
	VSUBPS    Y12, Y1, Y1
	VFNMADD231PS Y13, Y0, Y1
	VMULPS    Y15, Y1, Y1
	VMOVUPS   Y1, (DI)
	ADDQ      $32, SI
	ADDQ      $32, BX
	ADDQ      $32, DX
	ADDQ      $32, DI
	DECQ      CX
	JNZ       lnb_dx
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) (m float32, nan bool)
// m = the largest of x[0:n] (n a positive multiple of 8); nan reports
// whether any element is NaN (MAXPS itself does not propagate NaN reliably).
TEXT ·maxAVX2(SB), NOSPLIT, $0-21
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	SHRQ    $3, CX
	VMOVUPS (SI), Y0
	VXORPS  Y2, Y2, Y2

max_loop:
	VMOVUPS (SI), Y3
	VMAXPS  Y3, Y0, Y0
	VCMPPS  $3, Y3, Y3, Y4
	VORPS   Y4, Y2, Y2
	ADDQ    $32, SI
	DECQ    CX
	JNZ     max_loop
	VEXTRACTF128 $1, Y0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS  X1, X0, X0
	VMOVSS  X0, m+16(FP)
	VMOVMSKPS Y2, AX
	TESTL   AX, AX
	SETNE   nan+20(FP)
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float64
// sum of a[i]*b[i] for i < n (a multiple of 8), in float64.
TEXT ·dotAVX2(SB), NOSPLIT, $0-32
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   n+16(FP), CX
	SHRQ   $3, CX
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	JZ     dot_done

dot_loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD (DX), Y2
	VCVTPS2PD 16(DX), Y3
	VFMADD231PD Y2, Y0, Y8
	VFMADD231PD Y3, Y1, Y9
	ADDQ   $32, SI
	ADDQ   $32, DX
	DECQ   CX
	JNZ    dot_loop

dot_done:
	VADDPD Y9, Y8, Y8
	VEXTRACTF128 $1, Y8, X9
	VADDPD X9, X8, X8
	VHADDPD X8, X8, X8
	VZEROUPPER
	MOVSD  X8, ret+24(FP)
	RET

// func dsoftmaxAVX2(out, a, p, gr *float32, n int, d float32)
// out[i] = a[i]*gr[i] - p[i]*d for i < n (a multiple of 8); out may be gr.
TEXT ·dsoftmaxAVX2(SB), NOSPLIT, $0-44
	MOVQ    out+0(FP), DI
	MOVQ    a+8(FP), SI
	MOVQ    p+16(FP), BX
	MOVQ    gr+24(FP), DX
	MOVQ    n+32(FP), CX
	VBROADCASTSS d+40(FP), Y7
	BLOCKS8(dsm_done)

dsm_loop:
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS (BX), Y1
	VFNMADD231PS Y7, Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, BX
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     dsm_loop

dsm_done:
	VZEROUPPER
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv0() (a, d uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-8
	MOVL   $0, CX
	XGETBV
	MOVL   AX, a+0(FP)
	MOVL   DX, d+4(FP)
	RET
