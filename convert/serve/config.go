package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Config is rafs serve's configuration file (JSON): the rules saying
// which pushes are converted to what, per-registry credentials and
// plain HTTP. Unknown fields are errors (a misspelt setting is not
// silently ignored). A commented example:
//
//	{
//	  // Every tag of library/* and team/*/* on any registry, to Nydus
//	  // and EROFS images tagged TAG-nydus and TAG-erofs beside the
//	  // source, each a referrer of its source, amd64 only, with a layer
//	  // cache under the tag rafs-cache in the source repository.
//	  "rules": [{
//	    "name": "base-images",
//	    "repositories": ["library/*", "team/*/*"],
//	    "types": ["nydus", "erofs"],
//	    "link": "referrer",
//	    "options": ["--platform", "linux/amd64"],
//	    "cache": "rafs-cache"
//	  }, {
//	    // Release tags of apps/* on registry.example.com only, to Nydus
//	    // images in the repository nydus/REPO, tags unchanged.
//	    "name": "apps",
//	    "registry": "registry.example.com",
//	    "repositories": ["apps/*"],
//	    "tags": ["v*"],
//	    "suffix": "",
//	    "targetRepository": "nydus/{repo}"
//	  }],
//	  "registries": {
//	    "registry.example.com": {"username": "rafs", "passwordFile": "/run/secrets/registry"},
//	    "localhost:5000": {"plainHTTP": true}
//	  },
//	  // Other registries' credentials: this Docker config file
//	  // (default: the Docker config of the user running rafs serve).
//	  "dockerConfig": "/etc/rafs/docker-config.json"
//	}
//
// (JSON has no comments: leave them out of the file.)
type Config struct {
	// Rules are the conversion rules. A push gets one task from each
	// rule that matches it (Tasks). At least one is needed.
	Rules []Rule `json:"rules"`

	// Registries holds settings per registry host, keyed by host[:port]
	// as pushes name it ("localhost:5000", "registry.example.com";
	// "docker.io" and "index.docker.io" are the same).
	Registries map[string]Registry `json:"registries,omitempty"`

	// AllPlainHTTP reaches every registry over plain HTTP instead of
	// HTTPS (rafs serve --plain-http). Registries[host].PlainHTTP does
	// it for one host.
	AllPlainHTTP bool `json:"plainHTTP,omitempty"`

	// DockerConfig is the path of a Docker config file (config.json,
	// with its "auths", "credsStore" and "credHelpers") giving the
	// credentials of registries that Registries gives none for. Empty:
	// the default Docker config ($DOCKER_CONFIG/config.json or
	// ~/.docker/config.json, then Podman's auth.json) and its
	// credential helpers, as rafs convert uses. LoadConfig makes a
	// relative path relative to the config file's directory.
	DockerConfig string `json:"dockerConfig,omitempty"`
}

// Registry is the settings of one registry host.
type Registry struct {
	// PlainHTTP reaches the registry over plain HTTP instead of HTTPS.
	PlainHTTP bool `json:"plainHTTP,omitempty"`

	// Username and Password are inline credentials (basic auth, or the
	// token service's credentials). Password and PasswordFile exclude
	// each other.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// PasswordFile is the path of a file holding the password (a
	// mounted secret; a trailing newline is dropped). It is read each
	// time credentials are needed, so a rotated secret is picked up.
	// LoadConfig makes a relative path relative to the config file's
	// directory.
	PasswordFile string `json:"passwordFile,omitempty"`
	// IdentityToken is an OAuth2 refresh token for the registry's token
	// service (Docker config's "identitytoken"), used instead of a
	// password.
	IdentityToken string `json:"identityToken,omitempty"`

	// DockerConfig is the path of a Docker config file giving this
	// registry's credentials, when none are inline. Empty: the
	// Config's DockerConfig (or the default).
	DockerConfig string `json:"dockerConfig,omitempty"`
}

// Rule says which pushes to convert and how. A push matches a rule when
// its registry, repository and tag all match the rule's globs.
type Rule struct {
	// Name names the rule in tasks, logs and errors. Empty: "rule-N",
	// N being the rule's 1-based position. Names are unique.
	Name string `json:"name,omitempty"`

	// Registry is a glob (path.Match) over the pushes' host[:port];
	// empty matches every registry.
	Registry string `json:"registry,omitempty"`

	// Repositories are globs (path.Match) over the pushed repository,
	// such as "library/debian", "library/*" or "*/*". As in path.Match,
	// "*" does not cross a "/": "*" matches "debian" but not
	// "library/debian". Empty matches every repository.
	Repositories []string `json:"repositories,omitempty"`

	// Tags are globs (path.Match) over the pushed tag; empty matches
	// every tag. A push by digest alone, with no tag, is never
	// converted: there is no tag to name the target after.
	Tags []string `json:"tags,omitempty"`

	// Types are the conversion types, "nydus" and "erofs"; one target
	// per type. Empty: nydus.
	Types []string `json:"types,omitempty"`

	// Suffix is appended to the source tag to make the target tag;
	// "{type}" in it stands for the type. Absent (nil): "-{type}", so
	// tag v1 converts to v1-nydus and v1-erofs. "" keeps the tag, which
	// needs a TargetRepository other than the source's. With several
	// types, the suffix or TargetRepository must hold "{type}", or the
	// types' targets would be the same. Characters: those of a tag.
	Suffix *string `json:"suffix,omitempty"`

	// TargetRepository is the repository the targets are pushed to, on
	// the source's registry; "{repo}" in it stands for the source
	// repository (at most once), "{type}" for the type. Empty: "{repo}",
	// the source repository.
	TargetRepository string `json:"targetRepository,omitempty"`

	// Link is how a target links to its source: "none" (or empty), no
	// link; "referrer", the target manifest names the source as its OCI
	// subject; "merge-index", the target is an index listing the source
	// manifests and then the converted ones (rafs convert --referrer and
	// --merge-index).
	Link string `json:"link,omitempty"`

	// Options are rafs convert's conversion flags, such as
	// ["-z", "lz4hc", "--tar-index"], passed through as the tasks'
	// Options, for every type of the rule: a rule with both types takes
	// only flags both accept (put EROFS-only flags such as -z in a rule
	// of type erofs). --type, --referrer, --merge-index and --cache are
	// not among them: Types, Link and Cache say those.
	Options []string `json:"options,omitempty"`

	// Cache, when not empty, is a tag under which a layer cache is kept
	// in each target repository (rafs convert --cache), so that layers
	// shared by images are converted once. Pushes of this tag are never
	// converted.
	Cache string `json:"cache,omitempty"`
}

// The conversion types and link modes a rule may name.
var (
	ruleTypes = []string{"nydus", "erofs"}
	ruleLinks = []string{"none", "referrer", "merge-index"}
)

// defaultSuffix is the suffix of a rule that sets none.
const defaultSuffix = "-{type}"

// LoadConfig reads, parses and validates the configuration file at path
// (ParseConfig, Validate). Relative file paths in it (DockerConfig,
// PasswordFile) are made relative to path's directory.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&c.DockerConfig)
	for h, r := range c.Registries {
		rel(&r.PasswordFile)
		rel(&r.DockerConfig)
		c.Registries[h] = r
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a configuration from JSON, refusing unknown fields
// and trailing data; errors name the offset. It does not validate the
// configuration: see Validate.
func ParseConfig(data []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, jsonError(err, int64(len(data)))
	}
	if err := checkTrailing(data, dec.InputOffset()); err != nil {
		return nil, err
	}
	return &c, nil
}

// tagChars is what a tag may hold, and so a suffix once "{type}" in it is
// replaced; tagPattern is a whole tag (OCI distribution spec).
var (
	tagChars   = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)
	tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// Validate checks c and returns every problem found, each naming its
// rule or registry (errors.Join): no rules, duplicate rule names, an
// unknown type or link, a bad glob, a suffix, target repository or cache
// tag that cannot make a valid reference, options that Types, Link or
// Cache set, a rule whose types' targets are the same (a suffix
// collision), two rules that would write the same target for the same
// push, a rule whose targets would be its own sources (suffix "" with the
// source repository: a loop that would overwrite the pushed tag), and
// registry credentials that are incomplete or contradictory.
//
// Loops through other rules cannot happen: Tasks ignores any push that
// any rule's targets could be (by suffix or by target repository) and
// pushes of cache tags.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("no rules: nothing would be converted"))
	}
	seen := map[string]int{}
	for i := range c.Rules {
		n := c.ruleName(i)
		if j, ok := seen[n]; ok {
			errs = append(errs, fmt.Errorf("rule %q (#%d): the name of rule #%d too", n, i+1, j+1))
		}
		seen[n] = i
		for _, err := range c.Rules[i].validate() {
			errs = append(errs, fmt.Errorf("rule %q: %w", n, err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.collisions()...)
	}
	hosts := slices.Sorted(func(yield func(string) bool) {
		for h := range c.Registries {
			if !yield(h) {
				return
			}
		}
	})
	canon := map[string]string{}
	for _, h := range hosts {
		if err := checkRegistryKey(h); err != nil {
			errs = append(errs, fmt.Errorf("registry %q: %w", h, err))
			continue
		}
		k := canonicalHost(h)
		if o, ok := canon[k]; ok {
			errs = append(errs, fmt.Errorf("registry %q: the same registry as %q", h, o))
		}
		canon[k] = h
		for _, err := range c.Registries[h].validate() {
			errs = append(errs, fmt.Errorf("registry %q: %w", h, err))
		}
	}
	if c.DockerConfig != "" {
		if err := checkReadable(c.DockerConfig); err != nil {
			errs = append(errs, fmt.Errorf("dockerConfig: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ruleName is rule i's name, or its default.
func (c *Config) ruleName(i int) string {
	if n := c.Rules[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("rule-%d", i+1)
}

func (r *Rule) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if r.Registry != "" {
		if _, err := path.Match(r.Registry, ""); err != nil {
			add("registry glob %q: %w", r.Registry, err)
		}
	}
	for _, g := range r.Repositories {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			add("repository glob %q: %v", g, orEmpty(err))
		}
	}
	for _, g := range r.Tags {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			add("tag glob %q: %v", g, orEmpty(err))
		}
	}
	types := r.types()
	for i, t := range types {
		if !slices.Contains(ruleTypes, t) {
			add("unknown type %q (want nydus or erofs)", t)
		} else if slices.Contains(types[:i], t) {
			add("type %q twice", t)
		}
	}
	if r.Link != "" && !slices.Contains(ruleLinks, r.Link) {
		add("unknown link %q (want none, referrer or merge-index)", r.Link)
	}
	suffix := r.suffix()
	if err := checkTemplate(suffix, false); err != nil {
		add("suffix %q: %w", suffix, err)
	} else {
		for _, t := range types {
			if s := render(suffix, "", t); !tagChars.MatchString(s) || len(s) > 127 {
				add("suffix %q: %q is not the end of a tag (letters, digits, '_', '.', '-'; at most 127)", suffix, s)
				break
			}
		}
	}
	tr := r.targetRepository()
	if err := checkTemplate(tr, true); err != nil {
		add("targetRepository %q: %w", tr, err)
	} else {
		for _, t := range types {
			s := render(tr, "library/debian", t)
			if _, err := name.NewRepository("example.com/"+s, name.StrictValidation); err != nil {
				add("targetRepository %q: %q (for library/debian) is not a repository name", tr, s)
				break
			}
		}
	}
	if len(errs) == 0 {
		for i, t := range types {
			if tr == "{repo}" && render(suffix, "", t) == "" {
				add("type %s: suffix %q and the source repository: each target would be its own source (a loop overwriting the pushed tag)", t, suffix)
			}
			for _, u := range types[:i] {
				if render(suffix, "", t) == render(suffix, "", u) && render(tr, "{repo}", t) == render(tr, "{repo}", u) {
					add("types %s and %s would be pushed to the same target: put {type} in the suffix or the targetRepository", u, t)
				}
			}
		}
	}
	if r.Cache != "" {
		if !tagPattern.MatchString(r.Cache) {
			add("cache %q: not a valid tag", r.Cache)
		} else if t, ok := r.taggedBy(r.Cache); ok {
			add("cache %q: a tag the %s target of a source could have", r.Cache, t)
		}
	}
	for _, o := range r.Options {
		flag, _, _ := strings.Cut(strings.TrimLeft(o, "-"), "=")
		if strings.HasPrefix(o, "-") && slices.Contains([]string{"type", "referrer", "merge-index", "cache"}, flag) {
			add("options: %s is the rule's to set (types, link, cache)", o)
		}
	}
	return errs
}

// taggedBy reports whether tag could be a target tag of r (ends in a
// non-empty suffix), and for which type.
func (r *Rule) taggedBy(tag string) (string, bool) {
	for _, t := range r.types() {
		s := render(r.suffix(), "", t)
		if s != "" && strings.HasSuffix(tag, s) {
			return t, true
		}
	}
	return "", false
}

func orEmpty(err error) error {
	if err == nil {
		return errors.New("empty")
	}
	return err
}

// types is r's types or their default.
func (r *Rule) types() []string {
	if len(r.Types) == 0 {
		return []string{"nydus"}
	}
	return r.Types
}

// suffix is r's suffix or its default.
func (r *Rule) suffix() string {
	if r.Suffix == nil {
		return defaultSuffix
	}
	return *r.Suffix
}

// targetRepository is r's target repository template or its default.
func (r *Rule) targetRepository() string {
	if r.TargetRepository == "" {
		return "{repo}"
	}
	return r.TargetRepository
}

// link is r's link mode, "none" when empty.
func (r *Rule) link() string {
	if r.Link == "" {
		return "none"
	}
	return r.Link
}

// checkTemplate refuses placeholders other than {type} (and {repo} when
// repo is true, at most once).
func checkTemplate(s string, repo bool) error {
	rest := strings.ReplaceAll(s, "{type}", "")
	if repo {
		if strings.Count(rest, "{repo}") > 1 {
			return errors.New("{repo} more than once")
		}
		rest = strings.ReplaceAll(rest, "{repo}", "")
	}
	if strings.ContainsAny(rest, "{}") {
		if repo {
			return errors.New("unknown placeholder (want {repo} or {type})")
		}
		return errors.New("unknown placeholder (want {type})")
	}
	return nil
}

// render replaces {repo} and {type} in s.
func render(s, repo, typ string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "{type}", typ), "{repo}", repo)
}

// collisions returns an error for each pair of rules that would push
// the same target for the same push: rules whose registry, repository
// and tag globs can all match one push, and that have a type each whose
// rendered suffix and target repository are the same.
func (c *Config) collisions() []error {
	var errs []error
	for i := range c.Rules {
		for j := range i {
			a, b := &c.Rules[j], &c.Rules[i]
			if !globsMeet(oneGlob(a.Registry), oneGlob(b.Registry)) ||
				!globsMeet(a.Repositories, b.Repositories) || !globsMeet(a.Tags, b.Tags) {
				continue
			}
		types:
			for _, ta := range a.types() {
				for _, tb := range b.types() {
					if render(a.suffix(), "", ta) == render(b.suffix(), "", tb) &&
						render(a.targetRepository(), "{repo}", ta) == render(b.targetRepository(), "{repo}", tb) {
						errs = append(errs, fmt.Errorf("rules %q and %q: a push both match would have its %s and %s targets pushed to the same place, %s:TAG%s (change a suffix or targetRepository, or make the globs disjoint)",
							c.ruleName(j), c.ruleName(i), ta, tb, render(a.targetRepository(), "{repo}", ta), render(a.suffix(), "", ta)))
						break types
					}
				}
			}
		}
	}
	return errs
}

func oneGlob(g string) []string {
	if g == "" {
		return nil
	}
	return []string{g}
}

func (r Registry) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case r.Password != "" && r.PasswordFile != "":
		add("password and passwordFile both set")
	case (r.Password != "" || r.PasswordFile != "") && r.Username == "":
		add("a password without a username")
	case r.Username != "" && r.Password == "" && r.PasswordFile == "" && r.IdentityToken == "":
		add("username %q without a password, passwordFile or identityToken", r.Username)
	case r.IdentityToken != "" && (r.Password != "" || r.PasswordFile != ""):
		add("identityToken and a password both set")
	}
	if r.inline() && r.DockerConfig != "" {
		add("inline credentials and dockerConfig both set")
	}
	if r.PasswordFile != "" {
		if err := checkReadable(r.PasswordFile); err != nil {
			add("passwordFile: %w", err)
		}
	}
	if r.DockerConfig != "" {
		if err := checkReadable(r.DockerConfig); err != nil {
			add("dockerConfig: %w", err)
		}
	}
	return errs
}

// inline reports whether r has credentials of its own.
func (r Registry) inline() bool {
	return r.Username != "" || r.Password != "" || r.PasswordFile != "" || r.IdentityToken != ""
}

// checkReadable checks that a file named in the config can be read now.
func checkReadable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	return nil
}

// checkRegistryKey refuses a Registries key that is not a host[:port].
func checkRegistryKey(h string) error {
	if err := checkHost(h); err != nil {
		return err
	}
	if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
		return err
	}
	return nil
}

// canonicalHost is h as go-containerregistry names the registry (so
// "docker.io" is "index.docker.io"), h itself if it does not parse or
// is empty (which go-containerregistry would take for Docker Hub).
func canonicalHost(h string) string {
	if h == "" {
		return h
	}
	r, err := name.NewRegistry(h)
	if err != nil {
		return h
	}
	return r.RegistryStr()
}
