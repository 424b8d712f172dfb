//! Key ranges: the half-open byte range `[prefix, prefix_end)` that a prefix covers, as etcd
//! defines it, shared by both backends.

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (empty prefix or all `0xff`), which means "no upper bound".
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The first key strictly after `key` in byte order.
pub(crate) fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Whether `key` lies under `prefix`.
pub(crate) fn has_prefix(key: &str, prefix: &str) -> bool {
    key.as_bytes().starts_with(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(
            prefix_end(b"/registry/pods/"),
            Some(b"/registry/pods0".to_vec())
        );
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    }

    #[test]
    fn prefix_end_of_empty_or_max_is_unbounded() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn key_after_sorts_right_after_key() {
        let next = key_after(b"/a");
        assert!(next.as_slice() > b"/a".as_slice());
        assert!(next.as_slice() < b"/a\x01".as_slice());
    }
}
