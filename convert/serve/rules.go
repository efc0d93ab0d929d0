package serve

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Tasks returns the tasks the rules make of p: one per matching rule, in
// the rules' order, with Source p.Ref(), SourceTag, Targets (one per
// type, REGISTRY/REPO:TAG on p's registry), Types, Rule, Link and
// Options set, and ID set by TaskID; Status and times are left for the
// queue. Options are the rule's, followed by --cache TAG when the rule
// keeps a cache.
//
// When p is ignored, tasks is empty and ignored says why: p has no tag
// (nothing to name targets after); p is a converted image, because its
// tag ends in a rule's suffix (one that targets the source repository)
// or its repository is a rule's target repository; p is a rule's layer
// cache; or no rule matches. When a rule matches but cannot name a valid
// target (the tag with the suffix is too long, say), that rule makes no
// task, and ignored says so even if other rules made tasks.
//
// c must be valid (Validate).
func (c *Config) Tasks(p Push) (tasks []queue.Task, ignored string) {
	if p.Tag == "" {
		return nil, "pushed by digest, with no tag to name the targets after"
	}
	if why := c.converted(p); why != "" {
		return nil, why
	}
	var skipped []string
	for i := range c.Rules {
		r := &c.Rules[i]
		if !r.matches(p) {
			continue
		}
		t := queue.Task{
			Source:    p.Ref(),
			SourceTag: p.Tag,
			Types:     slices.Clone(r.types()),
			Rule:      c.ruleName(i),
			Link:      r.link(),
			Options:   slices.Clone(r.Options),
		}
		if r.Cache != "" {
			t.Options = append(t.Options, "--cache", r.Cache)
		}
		var bad string
		for _, typ := range t.Types {
			repo, tag := render(r.targetRepository(), p.Repository, typ), p.Tag+render(r.suffix(), "", typ)
			ref := p.Registry + "/" + repo + ":" + tag
			if err := checkRepoTag(repo, tag); err != nil {
				bad = fmt.Sprintf("rule %q: target %s: %v", t.Rule, ref, err)
				break
			}
			if r.Cache != "" && tag == r.Cache {
				bad = fmt.Sprintf("rule %q: target %s would overwrite the layer cache", t.Rule, ref)
				break
			}
			t.Targets = append(t.Targets, ref)
		}
		if bad != "" {
			skipped = append(skipped, bad)
			continue
		}
		t.ID = TaskID(t)
		tasks = append(tasks, t)
	}
	if len(tasks) == 0 && len(skipped) == 0 {
		return nil, "no rule matches"
	}
	return tasks, strings.Join(skipped, "; ")
}

// checkRepoTag checks a repository name and a tag. (The registry, a
// host[:port] a push named, is not parsed with them: go-containerregistry
// would take a host without a dot or a port, such as a Compose service
// name, for the first component of a Docker Hub repository.)
func checkRepoTag(repo, tag string) error {
	if !tagPattern.MatchString(tag) {
		return fmt.Errorf("%q is not a valid tag (at most 128 letters, digits, '_', '.', '-')", tag)
	}
	_, err := name.NewRepository("registry.invalid/"+repo, name.StrictValidation)
	return err
}

// converted says why p is a converted image or a layer cache by the
// rules' naming, or "".
func (c *Config) converted(p Push) string {
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Cache != "" && p.Tag == r.Cache {
			return fmt.Sprintf("a layer cache: tag %s is rule %q's cache", p.Tag, c.ruleName(i))
		}
		for _, typ := range r.types() {
			tr := render(r.targetRepository(), "{repo}", typ)
			if s := render(r.suffix(), "", typ); s != "" && tr == "{repo}" && strings.HasSuffix(p.Tag, s) {
				return fmt.Sprintf("a converted image: tag %s ends in %s, rule %q's suffix", p.Tag, s, c.ruleName(i))
			}
			if tr == "{repo}" {
				continue
			}
			pre, post, hasRepo := strings.Cut(tr, "{repo}")
			switch {
			case !hasRepo && p.Repository == tr:
			case hasRepo && len(p.Repository) > len(pre)+len(post) &&
				strings.HasPrefix(p.Repository, pre) && strings.HasSuffix(p.Repository, post) &&
				r.matchesRepository(p.Repository[len(pre):len(p.Repository)-len(post)]):
			default:
				continue
			}
			return fmt.Sprintf("a converted image: repository %s is a target repository of rule %q", p.Repository, c.ruleName(i))
		}
	}
	return ""
}

// matches reports whether p's registry, repository and tag match r.
func (r *Rule) matches(p Push) bool {
	if r.Registry != "" && !globMatch(r.Registry, p.Registry) {
		return false
	}
	if !r.matchesRepository(p.Repository) {
		return false
	}
	if len(r.Tags) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Tags, func(g string) bool { return globMatch(g, p.Tag) })
}

func (r *Rule) matchesRepository(repo string) bool {
	if len(r.Repositories) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Repositories, func(g string) bool { return globMatch(g, repo) })
}

func globMatch(glob, s string) bool {
	ok, err := path.Match(glob, s)
	return ok && err == nil
}

// TaskID derives a task's ID from what it converts and how: the digest
// of its Source (so the same image pushed to two tags, or notified
// twice, is one task per rule and the registry name used does not
// matter), its Targets, Types, Link ("" counting as "none") and Options,
// each field length-prefixed. It is the first 32 hex digits of their
// SHA-256: the same on any machine and in any version of rafs that keeps
// this encoding.
func TaskID(t queue.Task) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	list := func(l []string) {
		field(fmt.Sprint(len(l)))
		for _, s := range l {
			field(s)
		}
	}
	field("rafs-serve-task-v1")
	dgst := t.Source
	if i := strings.LastIndexByte(dgst, '@'); i >= 0 {
		dgst = dgst[i+1:]
	}
	field(dgst)
	list(t.Targets)
	list(t.Types)
	link := t.Link
	if link == "" {
		link = "none"
	}
	field(link)
	list(t.Options)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// globsMeet reports whether some string matches a glob of a and a glob
// of b (path.Match globs; an empty list matches everything).
func globsMeet(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if globsIntersect(x, y) {
				return true
			}
		}
	}
	return false
}

// globTok is a token of a path.Match glob: a star, or a pattern matching
// one character (a literal, escaped or not, '?' or a class).
type globTok struct {
	star bool
	pat  string
}

// globTokens splits a valid glob into tokens, runs of stars as one.
func globTokens(g string) []globTok {
	var toks []globTok
	for i := 0; i < len(g); {
		switch g[i] {
		case '*':
			if len(toks) == 0 || !toks[len(toks)-1].star {
				toks = append(toks, globTok{star: true})
			}
			i++
		case '[':
			j := i + 1
			if j < len(g) && g[j] == '^' {
				j++
			}
			for first := true; j < len(g) && (first || g[j] != ']'); first = false {
				if g[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(g))
			toks = append(toks, globTok{pat: g[i:j]})
			i = j
		case '\\':
			_, n := utf8.DecodeRuneInString(g[min(i+1, len(g)):])
			j := min(i+1+n, len(g))
			toks = append(toks, globTok{pat: g[i:j]})
			i = j
		default:
			_, n := utf8.DecodeRuneInString(g[i:])
			toks = append(toks, globTok{pat: g[i : i+n]})
			i += n
		}
	}
	return toks
}

// globsIntersect reports whether some string matches both globs x and y
// (valid path.Match globs), by a search over pairs of positions in
// both: a common string exists if the ends can be reached together.
func globsIntersect(x, y string) bool {
	a, b := globTokens(x), globTokens(y)
	seen := make([]bool, (len(a)+1)*(len(b)+1))
	var reach func(i, j int) bool
	reach = func(i, j int) bool {
		k := i*(len(b)+1) + j
		if seen[k] {
			return false
		}
		seen[k] = true
		if i == len(a) && j == len(b) {
			return true
		}
		if i < len(a) && a[i].star && reach(i+1, j) {
			return true
		}
		if j < len(b) && b[j].star && reach(i, j+1) {
			return true
		}
		if i == len(a) || j == len(b) {
			return false
		}
		switch {
		case a[i].star && b[j].star:
			return false
		case a[i].star:
			return charMeet(globTok{pat: "?"}, b[j]) && reach(i, j+1)
		case b[j].star:
			return charMeet(a[i], globTok{pat: "?"}) && reach(i+1, j)
		}
		return charMeet(a[i], b[j]) && reach(i+1, j+1)
	}
	return reach(0, 0)
}

// charMeet reports whether one character matches both single-character
// patterns. Each matches a union of ranges or its complement, so if they
// share a character they share one at a range's end, next to one, or 0:
// those candidates are the runes of both patterns and their neighbours.
func charMeet(p, q globTok) bool {
	try := func(r rune) bool {
		if r < 0 || r > utf8.MaxRune || !utf8.ValidRune(r) {
			return false
		}
		s := string(r)
		return globMatch(p.pat, s) && globMatch(q.pat, s)
	}
	if try(0) {
		return true
	}
	for _, s := range []string{p.pat, q.pat, "/"} {
		for _, r := range s {
			if try(r-1) || try(r) || try(r+1) {
				return true
			}
		}
	}
	return false
}
