//! Path helpers shared by every module: Go's `path.Clean`, which bake, the Dockerfile
//! front end and the engine all need to match buildx and BuildKit exactly.

/// Go's `path.Clean` for `/`-separated paths: removes `.`, resolves `..` (never above the
/// root of a rooted path), drops repeated and trailing slashes; `""` becomes `"."`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn like_go() {
        assert_eq!(clean("./a/../b/"), "b");
        assert_eq!(clean("../../x"), "../../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(clean("//a//b/./c/"), "/a/b/c");
    }
}
