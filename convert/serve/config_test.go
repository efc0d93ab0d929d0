package serve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{
		"rules": [{"name": "r", "repositories": ["library/*"], "tags": ["v*"], "types": ["nydus", "erofs"],
		           "suffix": "-{type}", "targetRepository": "{repo}", "link": "referrer",
		           "options": ["-z", "lz4hc"], "cache": "rafs-cache", "registry": "localhost:*"}],
		"registries": {"localhost:5000": {"plainHTTP": true, "username": "u", "password": "p"}},
		"plainHTTP": true,
		"dockerConfig": "/x"
	}`))
	mustNoErr(t, err)
	wantEqual(t, c, &Config{
		Rules: []Rule{{Name: "r", Registry: "localhost:*", Repositories: []string{"library/*"}, Tags: []string{"v*"},
			Types: []string{"nydus", "erofs"}, Suffix: ptr("-{type}"), TargetRepository: "{repo}", Link: "referrer",
			Options: []string{"-z", "lz4hc"}, Cache: "rafs-cache"}},
		Registries:   map[string]Registry{"localhost:5000": {PlainHTTP: true, Username: "u", Password: "p"}},
		AllPlainHTTP: true,
		DockerConfig: "/x",
	})

	for body, want := range map[string]string{
		``:                                  "empty body",
		`{"rules":[{"name":"a","typo":1}]}`: `json: unknown field "typo"`,
		`{"rules":[]`:                       "offset 11: unexpected EOF",
		`{"rules":{}}`:                      "offset 10: rules: json: cannot unmarshal object",
		`{"rules":[]} x`:                    "offset 13: data after the JSON object",
		`{"rules":[{"suffix":1}]}`:          "rules.suffix: json: cannot unmarshal number",
	} {
		_, err := ParseConfig([]byte(body))
		wantErrContains(t, err, want, body)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	mustNoErr(t, os.WriteFile(secret, []byte("pw\n"), 0o600))
	valid := []*Config{
		{Rules: []Rule{{}}},
		{Rules: []Rule{{Types: []string{"nydus", "erofs"}, Link: "merge-index"}}},
		{Rules: []Rule{{Types: []string{"nydus", "erofs"}, Suffix: ptr(""), TargetRepository: "{type}/{repo}"}}},
		{Rules: []Rule{{Types: []string{"erofs"}, Suffix: ptr(""), TargetRepository: "mirror/{repo}"}}},
		{Rules: []Rule{{Suffix: ptr("_rafs.{type}"), Cache: "cache", Options: []string{"-z", "zstd", "--tar-index"}}}},
		// Disjoint sources may share a naming.
		{Rules: []Rule{{Repositories: []string{"a/*"}}, {Repositories: []string{"b/*"}, Options: []string{"-z", "lz4"}}}},
		{Rules: []Rule{{Tags: []string{"v[0-4]*"}}, {Tags: []string{"v[5-9]*"}}}},
		{Rules: []Rule{{Registry: "a:5000"}, {Registry: "b:*"}}},
		// Overlapping sources with different namings.
		{Rules: []Rule{{Name: "x"}, {Name: "y", Suffix: ptr("-fast")}}},
		{Rules: []Rule{{}}, Registries: map[string]Registry{
			"localhost:5000":  {PlainHTTP: true},
			"docker.io":       {Username: "u", PasswordFile: secret},
			"ghcr.io":         {Username: "u", IdentityToken: "t"},
			"quay.io":         {IdentityToken: "t"},
			"r.example.com":   {DockerConfig: secret},
			"127.0.0.1:15000": {Username: "u", Password: "p"},
		}},
	}
	for i, c := range valid {
		if err := c.Validate(); err != nil {
			t.Errorf("valid config #%d: %v", i, err)
		}
	}
	for want, c := range map[string]*Config{
		"no rules":                                          {},
		`rule "a" (#2): the name of rule #1 too`:            {Rules: []Rule{{Name: "a"}, {Name: "a", Suffix: ptr("-x")}}},
		`rule "rule-1": unknown type "rafs"`:                {Rules: []Rule{{Types: []string{"rafs"}}}},
		`rule "rule-1": type "nydus" twice`:                 {Rules: []Rule{{Types: []string{"nydus", "nydus"}}}},
		`rule "r": unknown link "subject"`:                  {Rules: []Rule{{Name: "r", Link: "subject"}}},
		`rule "r": repository glob "lib/[": syntax error`:   {Rules: []Rule{{Name: "r", Repositories: []string{"lib/["}}}},
		`rule "r": repository glob "": empty`:               {Rules: []Rule{{Name: "r", Repositories: []string{""}}}},
		`rule "r": tag glob "v\\": syntax error`:            {Rules: []Rule{{Name: "r", Tags: []string{`v\`}}}},
		`rule "r": registry glob "[a": syntax error`:        {Rules: []Rule{{Name: "r", Registry: "[a"}}},
		`rule "r": suffix "-{kind}": unknown placeholder`:   {Rules: []Rule{{Name: "r", Suffix: ptr("-{kind}")}}},
		`rule "r": suffix "/{type}": "/nydus" is not`:       {Rules: []Rule{{Name: "r", Suffix: ptr("/{type}")}}},
		`rule "r": targetRepository "{repo}/{repo}"`:        {Rules: []Rule{{Name: "r", TargetRepository: "{repo}/{repo}"}}},
		`rule "r": targetRepository "{name}-x": unknown`:    {Rules: []Rule{{Name: "r", TargetRepository: "{name}-x"}}},
		`rule "r": targetRepository "Up/{repo}": "Up/libr`:  {Rules: []Rule{{Name: "r", TargetRepository: "Up/{repo}"}}},
		`rule "r": type nydus: suffix "" and the source`:    {Rules: []Rule{{Name: "r", Suffix: ptr("")}}},
		`rule "r": types nydus and erofs would be pushed`:   {Rules: []Rule{{Name: "r", Types: []string{"nydus", "erofs"}, Suffix: ptr("-rafs")}}},
		`rule "r": cache "a b": not a valid tag`:            {Rules: []Rule{{Name: "r", Cache: "a b"}}},
		`rule "r": cache "c-nydus": a tag the nydus target`: {Rules: []Rule{{Name: "r", Cache: "c-nydus"}}},
		`rule "r": options: --type=erofs is the rule's`:     {Rules: []Rule{{Name: "r", Options: []string{"-z", "lz4", "--type=erofs"}}}},
		`rule "r": options: -referrer is the rule's`:        {Rules: []Rule{{Name: "r", Options: []string{"-referrer"}}}},
		`rules "a" and "b": a push both match would have its nydus and nydus targets pushed to the same place, {repo}:TAG-nydus`: {
			Rules: []Rule{{Name: "a", Repositories: []string{"library/*"}}, {Name: "b", Repositories: []string{"*/debian"}, Options: []string{"-z", "lz4"}}}},
		`rules "a" and "b": a push both match would have its erofs and nydus targets pushed to the same place, x/{repo}:TAG`: {
			Rules: []Rule{{Name: "a", Types: []string{"erofs"}, Suffix: ptr(""), TargetRepository: "x/{repo}"}, {Name: "b", Suffix: ptr(""), TargetRepository: "x/{repo}", Tags: []string{"v1"}}}},
		`registry "a/b": "a/b" is not a host`:                          {Rules: []Rule{{}}, Registries: map[string]Registry{"a/b": {}}},
		`registry "index.docker.io": the same registry as "docker.io"`: {Rules: []Rule{{}}, Registries: map[string]Registry{"index.docker.io": {}, "docker.io": {}}},
		`registry "h": password and passwordFile both set`:             {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {Username: "u", Password: "p", PasswordFile: secret}}},
		`registry "h": a password without a username`:                  {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {Password: "p"}}},
		`registry "h": username "u" without a password`:                {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {Username: "u"}}},
		`registry "h": identityToken and a password both set`:          {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {Username: "u", Password: "p", IdentityToken: "t"}}},
		`registry "h": inline credentials and dockerConfig both set`:   {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {IdentityToken: "t", DockerConfig: secret}}},
		`registry "h": passwordFile: open /nonexistent`:                {Rules: []Rule{{}}, Registries: map[string]Registry{"h": {Username: "u", PasswordFile: "/nonexistent"}}},
		`dockerConfig: ` + dir + ` is a directory`:                     {Rules: []Rule{{}}, DockerConfig: dir},
	} {
		wantErrContains(t, c.Validate(), want, want)
	}

	// Every problem is reported, each naming its rule.
	err := (&Config{Rules: []Rule{{Name: "a", Types: []string{"x"}}, {Name: "b", Link: "y"}}}).Validate()
	wantErrContains(t, err, `rule "a": unknown type "x"`)
	wantErrContains(t, err, `rule "b": unknown link "y"`)
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	mustNoErr(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o755))
	mustNoErr(t, os.WriteFile(filepath.Join(dir, "secrets", "pw"), []byte("pw"), 0o600))
	mustNoErr(t, os.WriteFile(filepath.Join(dir, "docker.json"), []byte(`{}`), 0o600))
	cfg := filepath.Join(dir, "rafs-serve.json")
	mustNoErr(t, os.WriteFile(cfg, []byte(`{"rules":[{"name":"all"}],"dockerConfig":"docker.json",
		"registries":{"h":{"username":"u","passwordFile":"secrets/pw"}}}`), 0o600))
	c, err := LoadConfig(cfg)
	mustNoErr(t, err)
	wantEqual(t, c.DockerConfig, filepath.Join(dir, "docker.json"))
	wantEqual(t, c.Registries["h"].PasswordFile, filepath.Join(dir, "secrets", "pw"))

	mustNoErr(t, os.WriteFile(cfg, []byte(`{"rules":[{"name":"all","types":["rafs"]}]}`), 0o600))
	_, err = LoadConfig(cfg)
	wantErrContains(t, err, "config "+cfg+`: rule "all": unknown type "rafs"`)
	mustNoErr(t, os.WriteFile(cfg, []byte(`{"rules":[{"name":"all",}]}`), 0o600))
	_, err = LoadConfig(cfg)
	wantErrContains(t, err, "config "+cfg+`: offset 25: invalid character '}'`)
	_, err = LoadConfig(filepath.Join(dir, "none.json"))
	wantErrContains(t, err, "no such file")
}

func TestConfigExampleInDoc(t *testing.T) {
	// The commented example in Config's documentation, comments taken
	// out, is a valid configuration (its files aside).
	src, err := os.ReadFile("config.go")
	mustNoErr(t, err)
	var b strings.Builder
	in := false
	for line := range strings.SplitSeq(string(src), "\n") {
		switch {
		case line == "//\t{":
			in = true
		case !in:
			continue
		}
		l := strings.TrimPrefix(line, "//\t")
		if strings.HasPrefix(strings.TrimSpace(l), "//") {
			continue
		}
		b.WriteString(l + "\n")
		if line == "//\t}" {
			break
		}
	}
	c, err := ParseConfig([]byte(b.String()))
	mustNoErr(t, err, b.String())
	c.DockerConfig = ""
	r := c.Registries["registry.example.com"]
	r.PasswordFile = ""
	r.Password = "x"
	c.Registries["registry.example.com"] = r
	mustNoErr(t, c.Validate())
	wantEqual(t, len(c.Rules), 2)
}
