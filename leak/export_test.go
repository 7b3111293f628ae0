package leak

import (
	"net/http"
	"time"
)

// NewGitHubKeysAt is GitHubKeys fetching from url, on the clock now.
func NewGitHubKeysAt(client *http.Client, url string, now func() time.Time) KeySource {
	g := GitHubKeys(client).(*githubKeys)
	g.url, g.now = url, now
	return g
}
