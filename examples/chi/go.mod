module github.com/keygate/apikey/examples/chi

go 1.26.0

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/keygate/apikey v0.0.0
)

require github.com/google/uuid v1.6.0 // indirect

replace github.com/keygate/apikey => ../../
