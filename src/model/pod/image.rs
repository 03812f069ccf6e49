//! Image references, just enough of `distribution/reference` (`ParseNormalizedNamed`) and the
//! kubelet's `ParseImageName` to default `imagePullPolicy` like upstream.

/// The `imagePullPolicy` upstream defaults for `image`: `Always` when the reference has the tag
/// `latest`, or no tag and no digest; `IfNotPresent` otherwise, including for references that
/// do not parse (upstream ignores the parse error there).
pub fn default_image_pull_policy(image: &str) -> &'static str {
    match parse_tag_and_digest(image) {
        Some((tag, digest)) => {
            let tag = match (tag, digest) {
                (None, None) => Some("latest"),
                (tag, _) => tag,
            };
            if tag == Some("latest") {
                "Always"
            } else {
                "IfNotPresent"
            }
        }
        None => "IfNotPresent",
    }
}

/// The tag and digest of a normalized reference, or `None` if it is not a valid reference.
fn parse_tag_and_digest(image: &str) -> Option<(Option<&str>, Option<&str>)> {
    // A bare 64-character hex string is an image ID, not a repository name.
    if image.len() == 64
        && image
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (domain, remainder) = split_docker_domain(image);
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.to_lowercase() != remote_name {
        return None;
    }
    // `domain/remainder` must match `name(:tag)?(@digest)?`.
    let (name_and_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_and_tag.rfind(':') {
        Some(i) if !name_and_tag[i..].contains('/') => {
            (&name_and_tag[..i], Some(&name_and_tag[i + 1..]))
        }
        _ => (name_and_tag, None),
    };
    if !is_domain(domain) || !path.split('/').all(is_path_component) {
        return None;
    }
    if domain.len() + 1 + path.len() > 255 {
        return None;
    }
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return None;
    }
    if let Some(digest) = digest
        && !is_digest(digest)
    {
        return None;
    }
    Some((tag, digest))
}

/// Upstream `splitDockerDomain`, without the `docker.io`/`library/` normalization (it does not
/// change the tag or the validity).
fn split_docker_domain(name: &str) -> (&str, &str) {
    match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                ("docker.io", name)
            } else {
                (first, &name[i + 1..])
            }
        }
        None => ("docker.io", name),
    }
}

/// `host[:port]`, where host is dot-separated domain components or a bracketed IPv6 address.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty()
                    || !ip
                        .bytes()
                        .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
                {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("[]", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    host == "[]"
        || host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or a run of `-`.
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex` with a registered algorithm and the right length of lowercase hex.
fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}
