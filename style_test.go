package apikey_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keygate/apikey"
)

// A body's request_id is the id in the response header, whatever the
// messages hold: a message with the text of the template's placeholder,
// quotes or backslashes never takes the id's place.
func TestErrorStyleMessagesCannotTakeTheRequestID(t *testing.T) {
	f := newFixture(t)
	for _, msg := range []string{`bad \u0000 key`, `"\u0000"`, `\"\u0000\"`, `\\`, `"`} {
		for _, shape := range []apikey.Shape{apikey.ShapeProblem, apikey.ShapeFlat, apikey.ShapeNestedMeta} {
			style, err := apikey.NewErrorStyle(shape, apikey.Messages{Unauthorized: msg})
			require.NoError(t, err)
			rr := call(f.handler(t, func(c *apikey.Config) { c.Style = style }), "GET", "/", "")
			require.Equal(t, http.StatusUnauthorized, rr.Code)
			body := decode(t, rr)
			id := rr.Header().Get("X-Request-Id")
			require.NotEmpty(t, id)
			switch shape {
			case apikey.ShapeProblem:
				assert.Equal(t, id, body["request_id"], "%q", msg)
				assert.Equal(t, msg, body["detail"])
			case apikey.ShapeFlat:
				assert.Equal(t, id, body["request_id"], "%q", msg)
				assert.Equal(t, msg, body["message"])
			case apikey.ShapeNestedMeta:
				assert.Equal(t, map[string]any{"request_id": id}, body["meta"], "%q", msg)
				assert.Equal(t, msg, body["error"].(map[string]any)["message"])
			}
		}
	}
}
