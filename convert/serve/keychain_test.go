package serve

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func resolve(t *testing.T, kc authn.Keychain, ref string) (*authn.AuthConfig, error) {
	t.Helper()
	r, err := name.ParseReference(ref)
	mustNoErr(t, err, ref)
	a, err := kc.Resolve(r.Context())
	if err != nil {
		return nil, err
	}
	return a.Authorization()
}

func dockerConfigFile(t *testing.T, dir string, auths map[string][2]string) string {
	t.Helper()
	s := `{"auths":{`
	first := true
	for k, v := range auths {
		if !first {
			s += ","
		}
		first = false
		s += `"` + k + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(v[0]+":"+v[1])) + `"}`
	}
	s += "}}"
	mustNoErr(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, "config.json")
	mustNoErr(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func TestKeychain(t *testing.T) {
	dir := t.TempDir()
	// The default keychain reads this user's Docker config.
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("DOCKER_CONFIG", "")
	dockerConfigFile(t, filepath.Join(dir, "home", ".docker"), map[string][2]string{"default.example.com": {"du", "dp"}})

	named := dockerConfigFile(t, filepath.Join(dir, "named"), map[string][2]string{
		"named.example.com":           {"nu", "np"},
		"https://index.docker.io/v1/": {"hub", "hp"},
	})
	perHost := dockerConfigFile(t, filepath.Join(dir, "perhost"), map[string][2]string{"own.example.com:5000": {"ou", "op"}})
	secret := filepath.Join(dir, "secret")
	mustNoErr(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))

	c := &Config{
		Rules: []Rule{{}},
		Registries: map[string]Registry{
			"localhost:5000":       {Username: "u", Password: "p", PlainHTTP: true},
			"file.example.com":     {Username: "fu", PasswordFile: secret},
			"token.example.com":    {Username: "tu", IdentityToken: "tok"},
			"own.example.com:5000": {DockerConfig: perHost},
			"gone.example.com":     {Username: "g", PasswordFile: filepath.Join(dir, "gone")},
		},
	}
	kc := c.Keychain()
	for ref, want := range map[string]authn.AuthConfig{
		"localhost:5000/a/b:v1":           {Username: "u", Password: "p"},
		"file.example.com/x":              {Username: "fu", Password: "s3cret"},
		"token.example.com/x":             {Username: "tu", IdentityToken: "tok"},
		"own.example.com:5000/x":          {Username: "ou", Password: "op"},
		"default.example.com/x":           {Username: "du", Password: "dp"},
		"named.example.com/x":             {},
		"index.docker.io/library/debian":  {},
		"other.example.com/library/x:tag": {},
	} {
		got, err := resolve(t, kc, ref)
		mustNoErr(t, err, ref)
		wantEqual(t, *got, want, ref)
	}
	_, err := resolve(t, kc, "gone.example.com/x")
	wantErrContains(t, err, "registry gone.example.com: passwordFile: open ")

	// A rotated secret is picked up.
	mustNoErr(t, os.WriteFile(secret, []byte("rotated"), 0o600))
	got, err := resolve(t, kc, "file.example.com/x")
	mustNoErr(t, err)
	wantEqual(t, got.Password, "rotated")

	// A named Docker config replaces the default one; what it does not
	// name is anonymous.
	c.DockerConfig = named
	for ref, want := range map[string]authn.AuthConfig{
		"named.example.com/x":            {Username: "nu", Password: "np"},
		"docker.io/library/debian":       {Username: "hub", Password: "hp"},
		"default.example.com/x":          {},
		"own.example.com:5000/x":         {Username: "ou", Password: "op"},
		"localhost:5000/a/b@" + dgstA[:]: {Username: "u", Password: "p"},
	} {
		got, err := resolve(t, kc, ref)
		mustNoErr(t, err, ref)
		wantEqual(t, *got, want, ref)
	}
	mustNoErr(t, os.WriteFile(named, []byte("{"), 0o600))
	_, err = resolve(t, kc, "named.example.com/x")
	wantErrContains(t, err, "docker config "+named)
}

func TestPlainHTTP(t *testing.T) {
	c := &Config{Registries: map[string]Registry{
		"localhost:5000": {PlainHTTP: true},
		"docker.io":      {PlainHTTP: true},
		"r.example.com":  {Username: "u", Password: "p"},
	}}
	for host, want := range map[string]bool{
		"localhost:5000":  true,
		"localhost:5001":  false,
		"index.docker.io": true,
		"docker.io":       true,
		"r.example.com":   false,
		"":                false,
	} {
		wantEqual(t, c.PlainHTTP(host), want, host)
	}
	c.AllPlainHTTP = true
	wantEqual(t, c.PlainHTTP("r.example.com"), true)
	wantEqual(t, (&Config{}).PlainHTTP("x"), false)
}
