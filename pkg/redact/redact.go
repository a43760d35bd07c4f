// Package redact masks secrets in text meant for people and files: the userinfo of URLs
// (user:key@host) and the values of credential-looking query parameters (?key=…, &token=…). Every
// place that prints a URL or an error that may contain one (messages, logs, `models`, result lines)
// passes it through String or URL, so a key written into a base_url never reaches an output.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces each secret.
const Mask = "REDACTED"

// urlPattern finds URLs in free text: a scheme, "://", and everything up to a space, a quote or an
// angle bracket (how Go's url.Error and most messages delimit them).
var urlPattern = regexp.MustCompile(`(?i)\b[a-z][a-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)

// String returns s with every URL in it masked as URL does. Text without "://" is returned as is.
func String(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlPattern.ReplaceAllStringFunc(s, URL)
}

// URL returns raw with its userinfo (the part before '@' in the authority) and the values of its
// credential-looking query parameters replaced by Mask; everything else is kept byte for byte.
// raw need not parse as a URL.
func URL(raw string) string {
	out, _ := mask(raw)
	return out
}

// HasSecret reports whether raw carries userinfo or a credential-looking query parameter, i.e.
// whether URL would change it.
func HasSecret(raw string) bool {
	_, changed := mask(raw)
	return changed
}

func mask(raw string) (string, bool) {
	changed := false
	rest, frag, hasFrag := strings.Cut(raw, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	// Userinfo: between "://" and the first '@' of the authority.
	if i := strings.Index(rest, "://"); i >= 0 {
		auth := rest[i+3:]
		end := strings.IndexByte(auth, '/')
		if end < 0 {
			end = len(auth)
		}
		if at := strings.LastIndexByte(auth[:end], '@'); at >= 0 {
			rest = rest[:i+3] + Mask + auth[at:]
			changed = true
		}
	}
	if hasQuery {
		params := strings.Split(query, "&")
		for j, p := range params {
			name, _, ok := strings.Cut(p, "=")
			if ok && Credential(name) {
				params[j] = name + "=" + Mask
				changed = true
			}
		}
		rest += "?" + strings.Join(params, "&")
	}
	if hasFrag {
		rest += "#" + frag
	}
	return rest, changed
}

// Credential reports whether a query parameter (or header) name looks like it carries a secret:
// key, api_key, apikey, token, access_token, sig, signature, password, secret and their variants.
func Credential(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.NewReplacer("-", "_", "%5f", "_").Replace(n)
	switch n {
	case "sig", "signature", "auth", "authorization", "code", "pass", "pwd", "x_amz_signature", "x_goog_signature":
		return true
	}
	for _, part := range []string{"key", "token", "secret", "password", "passwd", "credential", "session"} {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// envName is what a variable name looks like; anything else in api_key_env may be the key itself.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// EnvName returns name when it looks like an environment variable name ([A-Z_][A-Z0-9_]*) and a
// mask with a hint otherwise: an api_key_env that is not a variable name is most likely the key
// itself, pasted in by mistake, and must not be printed. "" (no key needed) stays "".
func EnvName(name string) string {
	if name == "" || envName.MatchString(name) {
		return name
	}
	return Mask + " (api_key_env does not look like a variable name; it must name the variable that holds the key, not the key)"
}

// IsEnvName reports whether name looks like an environment variable name (see EnvName).
func IsEnvName(name string) bool { return envName.MatchString(name) }
