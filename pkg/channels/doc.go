// Package channels owns the channel policy of an app: which channel names
// are valid, which namespace a channel falls in, and whether a browser may
// join it. It decides; it holds no memberships (package hub keeps which
// connection is in which channel) and serves no HTTP (package web asks it
// on connect and on subscribe.do; the server API subscribes without it).
//
// # Names
//
// A channel name is 1 to MaxNameLength bytes (default 128) of UTF-8
// without control characters (no CR, LF, NUL, DEL or C1): ValidName, and
// Policy.CheckName under a policy's limit.
//
// # Namespaces
//
// A Policy is an ordered list of Namespace rules. A channel falls in the
// first namespace whose Prefix it starts with or whose Match pattern it
// matches; a channel in no namespace cannot be joined from a browser. A
// pattern is literal text, "*" (any run of characters, possibly empty),
// "{tenant}" and "{user}" (one or more characters other than "/"). For a
// join, the placeholders must equal the identity's TenantID and ID, in
// every mode: "tenant/{tenant}/*" holds each tenant's own channels, and a
// browser asking for another tenant's gets "another tenant's channel". A
// placeholder must be followed by "/" or end the pattern and come after
// no "*", so that no name can be read as two tenants' channels. Lookup
// finds a channel's namespace with the placeholders matching anything
// (for its presence options).
//
// A namespace's Join mode says who may join from a browser:
//
//   - Public: anyone authenticated for the app;
//   - Identity: only channels the identity grants — an entry of
//     hub.User.Channels (a JWT claim, the auth webhook's answer) equal to
//     the name, or a pattern (an entry with "*", "{" or "}", same syntax,
//     placeholders bound to the identity) matching it; a malformed
//     pattern grants nothing;
//   - Webhook: the backend is asked (an Asker; WebhookAsker is the
//     standard one), its answers kept briefly;
//   - Server: never; only the server API subscribes.
//
// The seed server's behaviour, every channel open to the browser, is one
// namespace: Namespace{Match: "*", Join: Public}.
//
// # Errors
//
// Authorize returns a *JoinError for the first channel that may not be
// joined, with a Reason safe to show the browser. It wraps ErrInvalidName
// (answer 400), ErrForbidden (403) or, when the backend of a Webhook
// namespace gave no answer, ErrUnavailable (503: retry later; the backend's
// error is wrapped too, for the log, not for the browser).
//
// # The join webhook
//
// WebhookAsker POSTs an Ask (JSON: app, channel, userId, tenantId, name,
// connectionId) to the backend, signed as package upstream signs the calls
// it forwards: the X-Pushd-App, -User-Id, -Tenant-Id and -Connection-Id
// headers, and the package signature scheme with those four values as the
// extra lines, so a Go backend verifies an ask with upstream.Verify. The
// backend answers 2xx with {"allow": true} or {"allow": false}, or 403 to
// deny. Allows are kept 30 s, denials 5 s, per app, tenant, user and
// channel; concurrent identical asks share one call.
//
// # Concurrency
//
// A Policy is immutable once built and a WebhookAsker safe for concurrent
// use; Authorize asks the backend about up to 8 channels at a time.
package channels
