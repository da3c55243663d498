package perf

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuByLabel sums the CPU time of a runtime/pprof CPU profile by the value
// of one goroutine label (samples without it go to ""). It decodes just
// the fields it needs of profile.proto (sample_type = 1, sample = 2,
// string_table = 6) so that no profile library is needed.
func cpuByLabel(profile []byte, key string) (map[string]float64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(profile))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	type label struct{ key, str int64 }
	type sample struct {
		values []int64
		labels []label
	}
	var (
		strs        []string
		sampleTypes []int64 // string index of each value's type
		samples     []sample
	)
	b := raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1: // ValueType{type = 1, unit = 2}
			fields, err := varintFields(msg)
			if err != nil {
				return nil, err
			}
			sampleTypes = append(sampleTypes, first(fields[1]))
		case 2: // Sample{location_id = 1, value = 2, label = 3}
			var s sample
			m := msg
			for len(m) > 0 {
				fnum, ftyp, n := protowire.ConsumeTag(m)
				if n < 0 {
					return nil, protowire.ParseError(n)
				}
				m = m[n:]
				switch {
				case fnum == 2 && ftyp == protowire.BytesType: // packed values
					packed, n := protowire.ConsumeBytes(m)
					if n < 0 {
						return nil, protowire.ParseError(n)
					}
					m = m[n:]
					for len(packed) > 0 {
						v, n := protowire.ConsumeVarint(packed)
						if n < 0 {
							return nil, protowire.ParseError(n)
						}
						packed = packed[n:]
						s.values = append(s.values, int64(v))
					}
				case fnum == 2 && ftyp == protowire.VarintType:
					v, n := protowire.ConsumeVarint(m)
					if n < 0 {
						return nil, protowire.ParseError(n)
					}
					m = m[n:]
					s.values = append(s.values, int64(v))
				case fnum == 3 && ftyp == protowire.BytesType:
					lb, n := protowire.ConsumeBytes(m)
					if n < 0 {
						return nil, protowire.ParseError(n)
					}
					m = m[n:]
					fields, err := varintFields(lb)
					if err != nil {
						return nil, err
					}
					s.labels = append(s.labels, label{key: first(fields[1]), str: first(fields[2])})
				default:
					n := protowire.ConsumeFieldValue(fnum, ftyp, m)
					if n < 0 {
						return nil, protowire.ParseError(n)
					}
					m = m[n:]
				}
			}
			samples = append(samples, s)
		case 6:
			strs = append(strs, string(msg))
		}
	}
	str := func(i int64) string {
		if i < 0 || int(i) >= len(strs) {
			return ""
		}
		return strs[i]
	}
	cpuIdx := -1
	for i, t := range sampleTypes {
		if str(t) == "cpu" {
			cpuIdx = i
		}
	}
	if cpuIdx < 0 {
		return nil, fmt.Errorf("not a CPU profile (sample types %v)", sampleTypes)
	}
	out := map[string]float64{}
	for _, s := range samples {
		if cpuIdx >= len(s.values) {
			continue
		}
		value := ""
		for _, l := range s.labels {
			if str(l.key) == key {
				value = str(l.str)
			}
		}
		out[value] += float64(s.values[cpuIdx]) / 1e9
	}
	return out, nil
}

// varintFields decodes a message whose interesting fields are varints.
func varintFields(msg []byte) (map[protowire.Number][]int64, error) {
	out := map[protowire.Number][]int64{}
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		msg = msg[n:]
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(msg)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			msg = msg[n:]
			out[num] = append(out[num], int64(v))
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		msg = msg[n:]
	}
	return out, nil
}

func first(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
