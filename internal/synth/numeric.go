package synth

import (
	"encoding/binary"
	"math"
)

// F32ToF16 converts to IEEE 754 half precision, rounding to nearest with
// ties to even, as ggml's converter does. Values too large become ±Inf,
// values too small for a subnormal become ±0, and NaN stays a (quiet) NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // rebias
	if e >= 31 {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half: value = m × 2^-24, so shift the 24-bit
		// significand (implicit bit restored) right by 14-e.
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++ // may carry into the smallest normal, which is right
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // a carry out of the mantissa bumps the exponent, up to Inf
	}
	return sign | uint16(half)
}

// F16ToF32 converts half precision back to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: m × 2^-24, exact in float32.
	v := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		v = -v
	}
	return v
}

// Q8_0 layout: per block of 32 values, an fp16 scale d then 32 int8 q with
// x ≈ d·q.
const (
	q8Block     = 32
	q8BlockSize = 2 + q8Block
)

// QuantizeQ8_0 appends the Q8_0 encoding of x (len a multiple of 32) to dst,
// following ggml's quantize_row_q8_0_ref: d = max|x|/127, q = round(x/d)
// with ties away from zero, computed in float32.
func QuantizeQ8_0(dst []byte, x []float32) []byte {
	for len(x) >= q8Block {
		blk := x[:q8Block]
		x = x[q8Block:]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		for _, v := range blk {
			dst = append(dst, byte(int8(math.Round(float64(v*id)))))
		}
	}
	return dst
}

// DequantizeQ8_0 decodes Q8_0 blocks; it exists for tests and checks.
func DequantizeQ8_0(src []byte) []float32 {
	out := make([]float32, 0, len(src)/q8BlockSize*q8Block)
	for len(src) >= q8BlockSize {
		d := F16ToF32(binary.LittleEndian.Uint16(src))
		for _, q := range src[2:q8BlockSize] {
			out = append(out, d*float32(int8(q)))
		}
		src = src[q8BlockSize:]
	}
	return out
}
