//! PowerShell's default **table** view of any object (`Get-Queue`, `Select-Object a,b`,
//! `Format-Table`), read back into [`PsObject`]s so the typed readers serve it like a listing.
//!
//! Shape (Windows PowerShell 5.1 and PowerShell 7, console or `Out-File`):
//! ```text
//!
//! Identity     DeliveryType Status MessageCount NextHopDomain
//! --------     ------------ ------ ------------ -------------
//! EXCH01\3     SmartHost... Retry            12 contoso-mail-onmicrosoft-com.mail.protecti...
//!
//! ```
//! - a header row of property names, then a row of dashes under each name: each dash group gives
//!   a column's start; a column runs to the next column's start (the last to the end of the line);
//! - numbers are right-aligned, text left-aligned, one space between columns;
//! - a value wider than its column is cut and ends with `...` (5.1) or `…` (7): kept as printed;
//! - with `-Wrap`, the rest of a value continues on the next lines, blank in the other columns;
//!   such a line (its first column blank) is joined to the row above;
//! - a blank line (or any line that is not a row) ends the table; a file may hold several tables.
//!
//! [`find_tables`] returns the objects and every line a table used, so a file mixing a table with
//! `Format-List` output (a pasted console session) is read by both readers.

use super::ps::{PsObject, PsProperty, PsValue};
use super::text::{Evidence, split_lines};

/// The tables of a text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tables {
    /// One object per row, in order.
    pub objects: Vec<PsObject>,
    /// 1-based numbers of the lines the tables used (headers, dashes, rows), ascending.
    pub lines: Vec<usize>,
}

/// The dash groups of a separator line: (start, end) char columns; `None` unless the line is only
/// dashes and spaces with at least one group of three or more dashes.
fn dash_groups(line: &str) -> Option<Vec<(usize, usize)>> {
    let t = line.trim_end();
    if t.is_empty() || !t.chars().all(|c| c == '-' || c == ' ') {
        return None;
    }
    let mut groups = Vec::new();
    let mut start = None;
    for (i, c) in t.chars().enumerate() {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                groups.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        groups.push((s, t.chars().count()));
    }
    groups.iter().any(|(s, e)| e - s >= 3).then_some(groups)
}

/// Whether `header` names the columns `groups` mark: every group has a non-blank header text, and
/// the header does not read as a `Name : value` line.
fn header_fits(header: &str, groups: &[(usize, usize)]) -> bool {
    if header.trim().is_empty() || header.contains(" : ") {
        return false;
    }
    let cells = cut(header, groups);
    cells.iter().all(|c| !c.trim().is_empty())
}

/// The cells of a line at the columns: column i runs from its start to the next column's start.
fn cut(line: &str, groups: &[(usize, usize)]) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    groups
        .iter()
        .enumerate()
        .map(|(i, (s, _))| {
            let end = groups.get(i + 1).map_or(chars.len(), |(n, _)| *n);
            let s = (*s).min(chars.len());
            let e = end.min(chars.len()).max(s);
            chars[s..e].iter().collect::<String>().trim().to_string()
        })
        .collect()
}

/// Whether `line` can be a row of the table: not blank, and no text sits in the single space
/// between two columns unless the left cell is cut there (right-aligned numbers and left-aligned
/// text leave the column gap blank; a wider last value runs on freely).
fn row_fits(line: &str, groups: &[(usize, usize)]) -> bool {
    if line.trim().is_empty() || dash_groups(line).is_some() {
        return false;
    }
    let chars: Vec<char> = line.chars().collect();
    let gaps_ok = groups.windows(2).all(|w| {
        let gap = w[1].0.saturating_sub(1);
        chars.get(gap).is_none_or(|c| *c == ' ') || chars.get(w[1].0).is_none_or(|c| *c == ' ')
    });
    gaps_ok && !line.starts_with("PS ") && !line.starts_with("[PS]")
}

/// Every table in `text`. `file` names the source in evidence.
pub fn find_tables(file: &str, text: &str) -> Tables {
    let lines: Vec<&str> = split_lines(text).collect();
    let mut out = Tables::default();
    let mut i = 1;
    while i < lines.len() {
        let Some(groups) = dash_groups(lines[i]) else {
            i += 1;
            continue;
        };
        let header = lines[i - 1];
        if !header_fits(header, &groups) {
            i += 1;
            continue;
        }
        let names = cut(header, &groups);
        out.lines.push(i);
        out.lines.push(i + 1);
        let mut j = i + 1;
        let mut current: Option<PsObject> = None;
        while j < lines.len() && row_fits(lines[j], &groups) {
            // The next table's header: a line followed by its own dash row.
            if lines.get(j + 1).and_then(|l| dash_groups(l)).is_some() {
                break;
            }
            let cells = cut(lines[j], &groups);
            let ev = Evidence::new(file, j + 1, lines[j]);
            let continuation = cells[0].is_empty() && current.is_some();
            if continuation {
                if let Some(obj) = current.as_mut() {
                    for (p, c) in obj.props.iter_mut().zip(&cells) {
                        if c.is_empty() {
                            continue;
                        }
                        let joined = match &p.value {
                            PsValue::Text(t) => format!("{t} {c}"),
                            _ => c.clone(),
                        };
                        p.value = PsValue::text(joined);
                    }
                }
            } else {
                if let Some(o) = current.take() {
                    out.objects.push(o);
                }
                current = Some(PsObject {
                    props: names
                        .iter()
                        .zip(cells)
                        .map(|(n, c)| PsProperty {
                            name: n.clone(),
                            value: PsValue::text(c),
                            evidence: ev.clone(),
                        })
                        .collect(),
                });
            }
            out.lines.push(j + 1);
            j += 1;
        }
        if let Some(o) = current.take() {
            out.objects.push(o);
        }
        i = j.max(i + 1);
    }
    out
}

/// Whether a value was cut by the table view (`...` or `…` at its end).
pub fn is_cut(value: &str) -> bool {
    value.ends_with("...") || value.ends_with('…')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_queue_table_with_cut_values() {
        let text = "\r\nIdentity     DeliveryType Status MessageCount NextHopDomain\r\n--------     ------------ ------ ------------ -------------\r\nEXCH01\\3     SmartHost... Retry            12 contoso-mail-onmicrosoft-com.mail.protecti...\r\nEXCH01\\Sub.. Undefined    Ready             0 Submission\r\n\r\n";
        let t = find_tables("q.txt", text);
        assert_eq!(t.objects.len(), 2);
        let q = &t.objects[0];
        assert_eq!(q.text("Identity").as_deref(), Some("EXCH01\\3"));
        assert_eq!(q.text("Status").as_deref(), Some("Retry"));
        assert_eq!(q.text("MessageCount").as_deref(), Some("12"));
        assert!(is_cut(&q.text("NextHopDomain").unwrap()));
        assert_eq!(q.get("Status").unwrap().evidence.line, 4);
        assert_eq!(t.lines, vec![2, 3, 4, 5]);
    }

    #[test]
    fn wrapped_rows_join_and_format_list_is_not_a_table() {
        let text = "Name  Value\n----  -----\nA     first part\n      second part\nB     x\n";
        let t = find_tables("w", text);
        assert_eq!(t.objects.len(), 2);
        assert_eq!(
            t.objects[0].text("Value").as_deref(),
            Some("first part second part")
        );
        assert!(
            find_tables("f", "Status : Ready\n-----\n")
                .objects
                .is_empty()
        );
        assert!(find_tables("e", "").objects.is_empty());
    }
}
