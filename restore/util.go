package restore

import (
	"bytes"
	"encoding/json"
	"strconv"
)

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func jsonUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
