//! What a request is, from its method and path alone (the body is never read for this).

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::EnumCount, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Dense index for per-kind arrays. The kinds that run an action are declared first, so their
    /// index is also their position among the invocations (the invocations metric keeps only those).
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

/// Classifies by the path's canonical form: empty segments (`//`, a trailing `/`) and `.` are
/// dropped and `..` removes the segment before it, as a normalising front (the usual ingress)
/// hands the path to the controller; names are percent-decoded as the controller decodes them. So
/// no spelling of a pinned invocation routes differently from its canonical form. The path itself
/// is forwarded unchanged.
pub fn classify<'a>(method: &str, path: &'a str) -> Classified<'a> {
    // At most eight canonical segments matter (api, v1, area, namespace, collection, up to three
    // names); a fixed array keeps classification allocation-free. `depth` counts all of them, so
    // `..` past the eighth still removes the right ones.
    let mut buf = [""; 8];
    let mut depth = 0usize;
    // Split at each `/` byte (ASCII, so every piece is whole UTF-8): `str::split` with a char
    // pattern costs about three times as much on every invocation's path.
    let ends = path.bytes().enumerate().filter(|&(_, b)| b == b'/').map(|(i, _)| i).chain([path.len()]);
    let mut start = 0;
    for end in ends {
        let seg = &path[start..end];
        start = end + 1;
        match seg {
            "" | "." => {}
            ".." => depth = depth.saturating_sub(1),
            s => {
                if let Some(slot) = buf.get_mut(depth) {
                    *slot = s;
                }
                depth += 1;
            }
        }
    }
    let segs: &[&'a str] = &buf[..depth.min(buf.len())];
    let longer = depth > buf.len();
    let ["api", rest @ ..] = segs else {
        return Classified::only(RequestKind::Other);
    };
    let ["v1", area, segs @ ..] = rest else {
        return Classified::only(RequestKind::Api);
    };
    match (*area, segs, longer) {
        ("namespaces", [ns, "actions", action], false) if method == "POST" => {
            invocation(RequestKind::Invoke, ns, "", action)
        }
        ("namespaces", [ns, "actions", pkg, action], false) if method == "POST" => {
            invocation(RequestKind::Invoke, ns, pkg, action)
        }
        ("namespaces", [ns, "triggers", trigger], false) if method == "POST" => {
            invocation(RequestKind::TriggerFire, ns, "", trigger)
        }
        ("web", [ns, pkg, action, ..], _) => {
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
        assert_eq!(classify("POST", "/api/v1/namespaces/guest/actions/").kind, Api, "the collection, not an action");
        assert_eq!(classify("POST", "/api/v1/namespaces/guest/actions/a/b/c").kind, Api);
        assert_eq!(classify("GET", "/api/v1").kind, Api);
        assert_eq!(classify("GET", "/ping").kind, Other);
        assert_eq!(classify("GET", "/").kind, Other);
    }

    /// Every spelling of one invocation classifies as its canonical form (the README's table).
    #[test]
    fn spellings_classify_as_their_canonical_form() {
        use RequestKind::*;
        let pay = inv(Invoke, "billing", "", "pay");
        for path in [
            "/api/v1/namespaces/billing/actions/pay",
            "/api/v1/namespaces/billing/actions/pay/",
            "/api/v1/namespaces/billing//actions/pay",
            "/api/v1//namespaces/billing/actions/pay",
            "//api/v1/namespaces/billing/actions/pay",
            "/api/v1/namespaces/billing/actions/./pay",
            "/api/v1/namespaces/billing/actions/pkg/../pay",
            "/api/v1/namespaces/billing/actions/x/y/z/../../../pay",
            "/api/v1/namespaces/bill%69ng/actions/pay",
        ] {
            assert_eq!(c("POST", path), pay, "{path}");
        }
        assert_eq!(c("POST", "/api/v1/namespaces/guest/triggers/t/"), inv(TriggerFire, "guest", "", "t"));
        assert_eq!(c("GET", "/api/v1/web/guest/default/hello.json/"), inv(WebAction, "guest", "", "hello"));
        let long = "/api/v1/web/guest/pkg/hello/a/b/c/d/e/f/g/h/../../../../../../../..";
        assert_eq!(c("GET", long), inv(WebAction, "guest", "pkg", "hello"));
        // `..` past the start cannot climb out; what is left decides.
        assert_eq!(classify("POST", "/../../api/v1/namespaces/billing/actions/pay").kind, Invoke);
        assert_eq!(classify("POST", "/api/v1/namespaces/billing/actions/pay/..").kind, Api, "the collection");
    }

    #[test]
    fn decoding_borrows_when_it_can() {
        assert!(matches!(decode("plain"), Cow::Borrowed(_)));
        assert_eq!(decode("a%2Fb"), "a/b");
        assert_eq!(decode("100%"), "100%");
    }
}
