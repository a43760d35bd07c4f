package shared

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// EnvURL is the environment variable that names the shared Redis when neither --shared nor the
// config's shared.url does; EnvPassword supplies a password that the URL leaves out.
const (
	EnvURL      = "LLMBATCH_REDIS_URL"
	EnvPassword = "LLMBATCH_REDIS_PASSWORD"
)

// Resolve picks the Redis URL of a run: the --shared flag, else the config's shared.url, else
// $LLMBATCH_REDIS_URL ("" when none is set: the run does not share). getenv reads the environment.
// A password written into the config file is refused (config files get committed and shared): it
// belongs in the flag's URL or the environment. The returned error never contains a password.
func Resolve(flag, configURL string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if configURL != "" {
		if u, err := url.Parse(configURL); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return "", fmt.Errorf("config shared.url %s holds a password: remove it from the file and set $%s (or $%s with the whole URL, without shared.url)",
					Redact(configURL), EnvPassword, EnvURL)
			}
		}
		return configURL, nil
	}
	return getenv(EnvURL), nil
}

// Redact returns the URL with its password replaced by "xxxxx", for every message that names the
// server. A string that does not parse as a URL is replaced entirely, since it may hold a secret.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<unparsable redis url>"
	}
	return u.Redacted()
}

// parseURL turns a redis:// or rediss:// (TLS) URL into client options; a password missing from the
// URL comes from $LLMBATCH_REDIS_PASSWORD via getenv.
func parseURL(raw string, getenv func(string) string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.New("shared: the Redis URL does not parse: write it as redis://[:password@]host:6379/0 (rediss:// for TLS)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("shared: %s: the scheme must be redis:// or rediss:// (TLS)", Redact(raw))
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis errors quote only the part they reject, never the password, but be sure.
		msg := err.Error()
		if u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "xxxxx")
			}
		}
		return nil, fmt.Errorf("shared: %s: %s", Redact(raw), msg)
	}
	if opts.Password == "" && getenv != nil {
		opts.Password = getenv(EnvPassword)
	}
	return opts, nil
}
