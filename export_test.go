package apikey

// Describe names a format with the entropy of its random part, for the
// tests of package apikey_test.
func Describe(f *Format) string { return f.describe() }
