package synth

import (
	"bytes"
	"math"
	"testing"
)

func TestF32ToF16(t *testing.T) {
	pow2 := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	tests := []struct {
		name string
		have float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"half", 0.5, 0x3800},
		{"0.1 rounds to nearest", 0.1, 0x2e66},
		{"largest finite", 65504, 0x7bff},
		{"just below overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to even (Inf)", 65520, 0x7c00},
		{"huge", 1e9, 0x7c00},
		{"minus huge", -1e9, 0xfc00},
		{"Inf", float32(math.Inf(1)), 0x7c00},
		{"NaN", float32(math.NaN()), 0x7e00},
		{"smallest normal", pow2(-14), 0x0400},
		{"largest subnormal", pow2(-14) - pow2(-24), 0x03ff},
		{"smallest subnormal", pow2(-24), 0x0001},
		{"half smallest subnormal ties to zero", pow2(-25), 0x0000},
		{"above half smallest subnormal", 1.5 * pow2(-25), 0x0001},
		{"1.5 subnormal units ties to even 2", 3 * pow2(-25), 0x0002},
		{"far below subnormal", pow2(-40), 0x0000},
		{"float32 subnormal", pow2(-140), 0x0000},
		{"tie rounds down to even", 1 + pow2(-11), 0x3c00},
		{"tie rounds up to even", 1 + 3*pow2(-11), 0x3c02},
		{"above tie rounds up", 1 + pow2(-11) + pow2(-20), 0x3c01},
		{"mantissa carry into exponent", 2 - pow2(-12), 0x4000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if have := F32ToF16(tt.have); have != tt.want {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tt.have, have, tt.want)
			}
		})
	}
}

// Every finite or infinite half survives a round trip through float32, so
// the two converters agree bit for bit.
func TestF16RoundTripAllValues(t *testing.T) {
	for h := range 1 << 16 {
		h := uint16(h)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN payloads are not preserved
		}
		if have := F32ToF16(F16ToF32(h)); have != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, F16ToF32(h), have)
		}
	}
}

func TestQuantizeQ8_0(t *testing.T) {
	block := func(vals ...float32) []float32 {
		x := make([]float32, 32)
		copy(x, vals)
		return x
	}
	tests := []struct {
		name  string
		have  []float32
		wantD uint16 // fp16 scale
		wantQ []int8 // first quants; the rest must be 0
	}{
		// d = 127/127 = 1; -63.5 and 0.5 round half away from zero.
		{"unit scale", block(127, -63.5, 0.5, 1, -1), 0x3c00, []int8{127, -64, 1, 1, -1}},
		// d = 2.54/127 = 0.02 (fp16 0x251f); q = x/0.02.
		{"scale 0.02", block(2.54, -1.27, 0.02, 0.009), 0x251f, []int8{127, -64, 1, 0}},
		// Negative extreme sets the scale too.
		{"negative max", block(-254, 127), 0x4000, []int8{-127, 64}},
		{"all zero", block(), 0x0000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := QuantizeQ8_0(nil, tt.have)
			if len(out) != 34 {
				t.Fatalf("have %d bytes, want 34", len(out))
			}
			if d := uint16(out[0]) | uint16(out[1])<<8; d != tt.wantD {
				t.Errorf("scale: have %#04x, want %#04x", d, tt.wantD)
			}
			for i := range 32 {
				var want int8
				if i < len(tt.wantQ) {
					want = tt.wantQ[i]
				}
				if have := int8(out[2+i]); have != want {
					t.Errorf("q[%d]: have %d, want %d", i, have, want)
				}
			}
		})
	}
}

func TestQ8_0RoundTripError(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(math.Sin(float64(i))) * 0.05
	}
	q := QuantizeQ8_0(nil, x)
	if want := 2 * 34; len(q) != want {
		t.Fatalf("have %d bytes, want %d", len(q), want)
	}
	y := DequantizeQ8_0(q)
	for i := range x {
		// Half a quantisation step plus fp16 rounding of the scale.
		if d := math.Abs(float64(x[i] - y[i])); d > 0.05/127*0.51+1e-4 {
			t.Errorf("x[%d]=%g dequantised to %g", i, x[i], y[i])
		}
	}
	if !bytes.Equal(QuantizeQ8_0(nil, y), q) {
		t.Errorf("requantising dequantised values changed the bytes")
	}
}
