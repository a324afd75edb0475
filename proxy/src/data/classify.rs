//! What a request is, from its method and path alone (the body is never read for this).

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /api/v1/namespaces/{ns}/actions/[{pkg}/]{action}`
    Invoke,
    /// `/api/v1/web/{ns}/{pkg}/{action}[.ext][/rest]`, any method
    WebAction,
    /// `POST /api/v1/namespaces/{ns}/triggers/{trigger}`
    TriggerFire,
    /// Any other `/api/...` call: entity CRUD, activations, namespaces.
    Api,
    /// Everything else (`/ping`, unknown paths): passed to the default pool unchanged.
    Other,
}

impl RequestKind {
    pub const ALL: [RequestKind; 5] =
        [RequestKind::Invoke, RequestKind::WebAction, RequestKind::TriggerFire, RequestKind::Api, RequestKind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Invoke => "invoke",
            RequestKind::WebAction => "web_action",
            RequestKind::TriggerFire => "trigger_fire",
            RequestKind::Api => "api",
            RequestKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the rules route it (it runs an action); the rest go to the default pool.
    pub fn is_invocation(self) -> bool {
        matches!(self, RequestKind::Invoke | RequestKind::WebAction | RequestKind::TriggerFire)
    }
}

/// A classified request. For invocations, the entity names (percent-decoded) that routing keys on;
/// a trigger fire carries the trigger's name in `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified<'a> {
    pub kind: RequestKind,
    pub namespace: Cow<'a, str>,
    pub package: Cow<'a, str>,
    pub action: Cow<'a, str>,
}

impl<'a> Classified<'a> {
    fn only(kind: RequestKind) -> Self {
        Classified { kind, namespace: Cow::Borrowed(""), package: Cow::Borrowed(""), action: Cow::Borrowed("") }
    }
}

const WEB_EXTENSIONS: [&str; 5] = [".http", ".json", ".html", ".svg", ".text"];

pub fn classify<'a>(method: &str, path: &'a str) -> Classified<'a> {
    let Some(rest) = path.strip_prefix("/api/") else {
        return Classified::only(RequestKind::Other);
    };
    let mut parts = rest.split('/');
    let (Some("v1"), Some(area)) = (parts.next(), parts.next()) else {
        return Classified::only(RequestKind::Api);
    };
    // At most five segments matter (namespace, collection, up to three names); a fixed array keeps
    // classification allocation-free.
    let mut buf = [""; 6];
    let mut n = 0;
    for seg in parts.by_ref().take(buf.len()) {
        buf[n] = seg;
        n += 1;
    }
    let segs: &[&'a str] = if parts.next().is_some() { &buf[..] } else { &buf[..n] };
    match (area, segs) {
        ("namespaces", [ns, "actions", action]) if method == "POST" && !action.is_empty() => {
            invocation(RequestKind::Invoke, ns, "", action)
        }
        ("namespaces", [ns, "actions", pkg, action]) if method == "POST" && !action.is_empty() => {
            invocation(RequestKind::Invoke, ns, pkg, action)
        }
        ("namespaces", [ns, "triggers", trigger]) if method == "POST" && !trigger.is_empty() => {
            invocation(RequestKind::TriggerFire, ns, "", trigger)
        }
        ("web", [ns, pkg, action, ..]) if !action.is_empty() => {
            let action = WEB_EXTENSIONS.iter().find_map(|ext| action.strip_suffix(ext)).unwrap_or(action);
            let pkg = if *pkg == "default" { "" } else { pkg };
            invocation(RequestKind::WebAction, ns, pkg, action)
        }
        _ => Classified::only(RequestKind::Api),
    }
}

fn invocation<'a>(kind: RequestKind, ns: &'a str, pkg: &'a str, action: &'a str) -> Classified<'a> {
    Classified { kind, namespace: decode(ns), package: decode(pkg), action: decode(action) }
}

/// Percent-decodes a path segment; borrows when there is nothing to decode (the common case).
fn decode(segment: &str) -> Cow<'_, str> {
    if !segment.contains('%') {
        return Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: &str, path: &str) -> (RequestKind, String, String, String) {
        let x = classify(method, path);
        (x.kind, x.namespace.into_owned(), x.package.into_owned(), x.action.into_owned())
    }

    fn inv(kind: RequestKind, ns: &str, pkg: &str, action: &str) -> (RequestKind, String, String, String) {
        (kind, ns.into(), pkg.into(), action.into())
    }

    #[test]
    fn invocations() {
        use RequestKind::*;
        assert_eq!(c("POST", "/api/v1/namespaces/guest/actions/hello"), inv(Invoke, "guest", "", "hello"));
        assert_eq!(c("POST", "/api/v1/namespaces/_/actions/img/resize"), inv(Invoke, "_", "img", "resize"));
        assert_eq!(c("POST", "/api/v1/namespaces/guest/actions/my%20action"), inv(Invoke, "guest", "", "my action"));
        assert_eq!(c("POST", "/api/v1/namespaces/guest/triggers/tick"), inv(TriggerFire, "guest", "", "tick"));
        assert_eq!(c("GET", "/api/v1/web/guest/default/hello.json"), inv(WebAction, "guest", "", "hello"));
        assert_eq!(c("DELETE", "/api/v1/web/guest/pkg/hello/some/path"), inv(WebAction, "guest", "pkg", "hello"));
        assert_eq!(c("POST", "/api/v1/web/guest/pkg/hello.html"), inv(WebAction, "guest", "pkg", "hello"));
    }

    #[test]
    fn everything_else() {
        use RequestKind::*;
        assert_eq!(classify("GET", "/api/v1/namespaces/guest/actions/hello").kind, Api);
        assert_eq!(classify("PUT", "/api/v1/namespaces/guest/actions/hello").kind, Api);
        assert_eq!(classify("PUT", "/api/v1/namespaces/guest/triggers/t").kind, Api);
        assert_eq!(classify("GET", "/api/v1/namespaces/guest/activations/abc").kind, Api);
        assert_eq!(classify("POST", "/api/v1/namespaces/guest/actions/").kind, Api);
        assert_eq!(classify("POST", "/api/v1/namespaces/guest/actions/a/b/c").kind, Api);
        assert_eq!(classify("GET", "/api/v1").kind, Api);
        assert_eq!(classify("GET", "/ping").kind, Other);
        assert_eq!(classify("GET", "/").kind, Other);
    }

    #[test]
    fn decoding_borrows_when_it_can() {
        assert!(matches!(decode("plain"), Cow::Borrowed(_)));
        assert_eq!(decode("a%2Fb"), "a/b");
        assert_eq!(decode("100%"), "100%");
    }
}
