package store

import (
	"fmt"
	"log/slog"
	"os"
)

// TempIfEmpty makes a temporary store directory when *dir is empty, sets
// *dir to it and returns it (to be removed when its owner stops); it
// returns "" when *dir was set. Nothing kept there survives a restart,
// which the owner is warned about.
func TempIfEmpty(dir *string, prefix string, log *slog.Logger) (string, error) {
	if *dir != "" {
		return "", nil
	}
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("store dir: %w", err)
	}
	log.Warn("no store-dir set: identity and keys are kept in a temporary directory and lost on restart", "dir", tmp)
	*dir = tmp
	return tmp, nil
}

// RemoveTempOnError removes the temporary store directory tmp (if any)
// when *err is set: the constructor that made it failed, so no run will
// remove it.
func RemoveTempOnError(tmp string, err *error) {
	if tmp != "" && *err != nil {
		_ = os.RemoveAll(tmp)
	}
}
