package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/trainers"
)

// checkResume compares the run about to start (flags t, configuration tc,
// total steps) with the checkpoint's run meta, and refuses, naming the flag,
// a resume that would not continue that run: fewer steps than it has done,
// another seed, batch, accumulation or context, or other training data.
// --force skips the check.
func checkResume(t *trainFlags, tc trainers.Config, total int, meta trainers.CheckpointMeta) error {
	if t.force {
		return nil
	}
	const how = "; give the checkpoint's value to continue its run, or --force to resume anyway"
	old := meta.Config
	stepsFlag := fmt.Sprintf("--steps %d", t.steps)
	if t.steps == 0 {
		stepsFlag = fmt.Sprintf("--epochs %d (%d steps)", t.epochs, total)
	}
	switch {
	case total < meta.Step:
		return usagef("%s: the checkpoint %s has already done %d steps; give --steps %d or more to train on (or --force to write its state as it is)", stepsFlag, t.resume, meta.Step, meta.Step)
	case old.Seed != tc.Seed:
		return usagef("--seed %d: the checkpoint's run used --seed %d, and another seed changes the data order and dropout%s", tc.Seed, old.Seed, how)
	case old.Context != tc.Context:
		return usagef("--context %d: the checkpoint's run used --context %d, which cuts the data into other windows%s", tc.Context, old.Context, how)
	case old.Batch != tc.Batch:
		return usagef("--batch %d: the checkpoint's run used --batch %d%s", tc.Batch, old.Batch, how)
	case old.Accumulate != tc.Accumulate:
		return usagef("--accumulate %d: the checkpoint's run used --accumulate %d%s", tc.Accumulate, old.Accumulate, how)
	case old.DataID != "" && old.DataID != tc.DataID:
		return usagef("--data %s: the checkpoint was trained on other data (another file, --format, --valid or --valid-fraction gives other training examples); give the options of that run, or --force to resume anyway", t.data)
	}
	return nil
}

// mergeMetrics returns the metrics file for a run resumed at step: the lines
// of the existing file at path that belong to steps up to step (later ones
// are trained again), followed by the lines of fresh after step (a resumed
// run validates the checkpoint's step again when it has nothing left to
// train). Without a file it returns fresh.
func mergeMetrics(path string, step int, fresh []byte) ([]byte, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := eachMetric(old, func(line []byte, s int) {
		if s <= step {
			out.Write(line)
			out.WriteByte('\n')
		}
	}); err != nil {
		return nil, err
	}
	err = eachMetric(fresh, func(line []byte, s int) {
		if s > step {
			out.Write(line)
			out.WriteByte('\n')
		}
	})
	return out.Bytes(), err
}

// eachMetric calls fn with each non-blank line of a metrics file and its
// step.
func eachMetric(b []byte, fn func(line []byte, step int)) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var v struct {
			Step *int `json:"step"`
		}
		if err := json.Unmarshal(line, &v); err != nil || v.Step == nil {
			return fmt.Errorf("line %d is not a metrics line (JSON with a \"step\"); move the file away to start a new history", n)
		}
		fn(line, *v.Step)
	}
	return sc.Err()
}

// removeStale deletes the temporary files and folders an interrupted run
// left next to each path, saying so on the progress output.
func removeStale(bar *progress, label string, paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		removed, err := atomicfile.RemoveStale(p)
		for _, r := range removed {
			bar.message("%s: removed %s, a temporary file an interrupted run left", label, r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
