//! `/etc/subuid` and `/etc/subgid` (shadow-utils' `NAME_OR_ID:START:COUNT` lines): which
//! subordinate ranges belong to a user. Pure: the caller reads the files.

/// One subordinate range: ids `start .. start + count` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `text` that belong to the user named `name` or numbered `id`, in file order.
/// Blank lines, `#` comments, malformed lines and empty ranges are skipped (as shadow-utils'
/// `newuidmap` does), so one bad line elsewhere does not lock a user out.
pub fn ranges_for(text: &str, name: &str, id: u32) -> Vec<SubRange> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut f = line.split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() {
                return None;
            }
            let owned = (!name.is_empty() && owner == name) || owner.parse::<u32>() == Ok(id);
            let r = SubRange {
                start: start.trim().parse().ok()?,
                count: count.trim().parse().ok()?,
            };
            // A range that wraps past 2^32 is not a range.
            (owned && r.count > 0 && r.start.checked_add(r.count - 1).is_some()).then_some(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_users_lines_by_name_or_id() {
        let text = "# comment\n\nalice:100000:65536\nbob:165536:65536\n1000:300000:10\n";
        assert_eq!(
            ranges_for(text, "alice", 1000),
            vec![
                SubRange {
                    start: 100000,
                    count: 65536
                },
                SubRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert_eq!(
            ranges_for(text, "bob", 1001),
            vec![SubRange {
                start: 165536,
                count: 65536
            }]
        );
        assert!(ranges_for(text, "carol", 1002).is_empty());
    }

    #[test]
    fn skips_malformed_empty_and_wrapping_ranges() {
        let text = "alice:x:1\nalice:1\nalice:1:2:3\nalice:5:0\nalice:4294967295:2\nalice:7:3\n";
        assert_eq!(
            ranges_for(text, "alice", 1),
            vec![SubRange { start: 7, count: 3 }]
        );
        // A user without a name (no passwd entry) is found by id only.
        assert!(ranges_for(":1:2\n", "", 5).is_empty());
    }
}
