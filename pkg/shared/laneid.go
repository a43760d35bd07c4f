package shared

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// LaneInfo identifies a lane across processes. Processes share a lane when BaseURL, Model and the
// hash of APIKey match. The key itself never leaves the process: only its SHA-256 is used, and only
// the first 8 hex digits of that are stored, for display.
type LaneInfo struct {
	Name     string // "provider/model", for messages (may differ between processes)
	Provider string
	BaseURL  string
	Model    string
	APIKey   string // "" for providers without a key
}

// ID returns the lane's identity: 20 hex digits of SHA-256 over the normalised base URL, the model
// and the SHA-256 of the API key.
func (li LaneInfo) ID() string {
	kh := sha256.Sum256([]byte(li.APIKey))
	h := sha256.New()
	h.Write([]byte(normalizeBase(li.BaseURL)))
	h.Write([]byte{0})
	h.Write([]byte(li.Model))
	h.Write([]byte{0})
	h.Write(kh[:])
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// KeyFingerprint returns the first 8 hex digits of the API key's SHA-256 ("" without a key): enough
// to tell keys apart in `llmbatch limits`, useless for recovering the key.
func (li LaneInfo) KeyFingerprint() string {
	if li.APIKey == "" {
		return ""
	}
	kh := sha256.Sum256([]byte(li.APIKey))
	return hex.EncodeToString(kh[:4])
}

// normalizeBase keeps scheme, host and path of a base URL, lower-cases the host and drops a trailing
// slash; user info, query and fragment are dropped because some gateways carry secrets there.
func normalizeBase(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return strings.TrimRight(strings.TrimSpace(raw), "/")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}
