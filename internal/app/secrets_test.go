package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/secret"
)

// TestSecretsKeyring: embedded mode generates DATA_DIR/secrets_key once (mode 0600) and keeps
// it; a damaged file stops the start instead of replacing the key (which would lose every
// stored secret); SECRETS_KEY, when given, is used and nothing is written.
func TestSecretsKeyring(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := &config.Config{DataDir: dir}
	first, err := secretsKeyring(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "secrets_key")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	again, err := secretsKeyring(cfg)
	if err != nil || again.KeyID() != first.KeyID() {
		t.Fatalf("second start: key %v, %v; want the same key", again, err)
	}

	if err := os.WriteFile(path, []byte("truncated-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = secretsKeyring(cfg)
	if err == nil || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "truncated-key") {
		t.Fatalf("damaged key file: %v; want an error naming the file, not its content", err)
	}

	key, previous := secret.GenerateKey(), secret.GenerateKey()
	other := &config.Config{DataDir: filepath.Join(t.TempDir(), "other"), SecretsKey: key, SecretsKeyPrevious: [][]byte{previous}}
	k, err := secretsKeyring(other)
	if err != nil || k.KeyID() != secret.KeyID(key) || len(k.PreviousKeyIDs()) != 1 || k.PreviousKeyIDs()[0] != secret.KeyID(previous) {
		t.Fatalf("SECRETS_KEY given: %v, %v", k, err)
	}
	if _, err := os.Stat(other.DataDir); !os.IsNotExist(err) {
		t.Fatalf("with SECRETS_KEY a key file was written: %v", err)
	}
}
