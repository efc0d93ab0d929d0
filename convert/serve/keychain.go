package serve

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain gives credentials per registry: the inline ones of
// Registries[host] (Username with Password, PasswordFile or
// IdentityToken), else the Docker config file Registries[host].
// DockerConfig names, else the Docker config file DockerConfig names,
// else the default keychain (the user's Docker config and its credential
// helpers, as rafs convert uses). A registry a named Docker config file
// has nothing for is reached anonymously. Files are read on each
// resolution, so rotated secrets are picked up; an unreadable one is an
// error.
func (c *Config) Keychain() authn.Keychain {
	return keychain{c}
}

type keychain struct{ c *Config }

// Resolve implements authn.Keychain.
func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

// ResolveContext implements authn.ContextKeychain.
func (k keychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	r, _ := k.c.registry(host)
	switch {
	case r.inline():
		cfg := authn.AuthConfig{Username: r.Username, Password: r.Password, IdentityToken: r.IdentityToken}
		if r.PasswordFile != "" {
			b, err := os.ReadFile(r.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("registry %s: passwordFile: %w", host, err)
			}
			cfg.Password = strings.TrimRight(string(b), "\r\n")
		}
		return authn.FromConfig(cfg), nil
	case r.DockerConfig != "":
		return fromDockerConfig(r.DockerConfig, target)
	case k.c.DockerConfig != "":
		return fromDockerConfig(k.c.DockerConfig, target)
	}
	return authn.Resolve(ctx, authn.DefaultKeychain, target)
}

// registry returns the settings of host (compared as
// go-containerregistry names registries, so "docker.io" is
// "index.docker.io").
func (c *Config) registry(host string) (Registry, bool) {
	if r, ok := c.Registries[host]; ok {
		return r, true
	}
	want := canonicalHost(host)
	for h, r := range c.Registries {
		if canonicalHost(h) == want {
			return r, true
		}
	}
	return Registry{}, false
}

// PlainHTTP reports whether host (host[:port]) is reached over plain
// HTTP: AllPlainHTTP, or Registries[host].PlainHTTP.
func (c *Config) PlainHTTP(host string) bool {
	if c.AllPlainHTTP {
		return true
	}
	r, _ := c.registry(host)
	return r.PlainHTTP
}

// fromDockerConfig resolves target's credentials in the Docker config
// file at path, as go-containerregistry's default keychain does in the
// user's: by the resource's full name, then its registry (Docker Hub
// under its historical key), through the file's credential helpers.
func fromDockerConfig(path string, target authn.Resource) (authn.Authenticator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("docker config %s: %w", path, err)
	}
	cf.Filename = path
	var empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey
		}
		cfg, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("docker config %s: %s: %w", path, key, err)
		}
		cfg.ServerAddress = ""
		if cfg != empty {
			return authn.FromConfig(authn.AuthConfig{
				Username:      cfg.Username,
				Password:      cfg.Password,
				Auth:          cfg.Auth,
				IdentityToken: cfg.IdentityToken,
				RegistryToken: cfg.RegistryToken,
			}), nil
		}
	}
	return authn.Anonymous, nil
}
