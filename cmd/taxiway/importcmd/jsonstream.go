package importcmd

import (
	"encoding/json"
	"fmt"
)

// jsonStream walks a JSON document token by token, so that no more of it
// than one value at a time is in memory.
type jsonStream struct {
	dec *json.Decoder
	// what names the document in errors.
	what string
}

func (j *jsonStream) fail(err error) error {
	return fmt.Errorf("parsing %s: %w", j.what, err)
}

// close reads the closing delimiter of what members or elements walked.
func (j *jsonStream) close() error {
	if _, err := j.dec.Token(); err != nil {
		return j.fail(err)
	}
	return nil
}

// open reads the opening delimiter of an object ('{') or array ('[').
func (j *jsonStream) open(want json.Delim) error {
	tok, err := j.dec.Token()
	if err != nil {
		return j.fail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return j.fail(fmt.Errorf("at byte %d: %v where %v was expected", j.dec.InputOffset(), tok, want))
	}
	return nil
}

// members calls each with every member name of the object that starts
// here; each reads the value. It reads the closing '}'.
func (j *jsonStream) members(each func(name string) error) error {
	if err := j.open('{'); err != nil {
		return err
	}
	for j.dec.More() {
		tok, err := j.dec.Token()
		if err != nil {
			return j.fail(err)
		}
		if err := each(tok.(string)); err != nil {
			return err
		}
	}
	return j.close()
}

// elements calls each for every element of the array that starts here; it
// reads the closing ']'.
func (j *jsonStream) elements(each func(i int) error) error {
	if err := j.open('['); err != nil {
		return err
	}
	for i := 0; j.dec.More(); i++ {
		if err := each(i); err != nil {
			return err
		}
	}
	return j.close()
}

// skip reads a value and drops it.
func (j *jsonStream) skip() error {
	var v json.RawMessage
	if err := j.dec.Decode(&v); err != nil {
		return j.fail(err)
	}
	return nil
}

// skipRest reads to the end of the array whose '[' was just read.
func (j *jsonStream) skipRest() error {
	for j.dec.More() {
		if err := j.skip(); err != nil {
			return err
		}
	}
	return j.close()
}
