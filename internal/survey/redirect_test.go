package survey

import "testing"

func TestRedirectURL(t *testing.T) {
	t.Parallel()
	target := RedirectTarget{UserID: "u1", Username: "a b&c", AuthToken: "tok",
		CustomFields: []CustomField{{Name: "pid", Value: "P/42"}}}
	cases := []struct{ tmpl, ident, want string }{
		{"", "username", ""},
		{"https://x.org/done?pid={identifier}", "username", "https://x.org/done?pid=a+b%26c"},
		{"https://x.org/done?pid={identifier}", "userId", "https://x.org/done?pid=u1"},
		{"https://x.org/done?t={identifier}", "urlAuthToken", "https://x.org/done?t=tok"},
		{"https://x.org/done?p={identifier}", "pid", "https://x.org/done?p=P%2F42"},
		{"https://x.org/done?p={identifier}", "missing", "https://x.org/done?p="},
		{"https://x.org/done", "username", "https://x.org/done"},
	}
	for _, c := range cases {
		if got := RedirectURL(c.tmpl, c.ident, target); got != c.want {
			t.Errorf("RedirectURL(%q, %q) = %q, want %q", c.tmpl, c.ident, got, c.want)
		}
	}
}
