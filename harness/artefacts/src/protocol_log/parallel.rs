//! Grouping the records of many files into sessions, and reading big inputs on several threads:
//! files in parallel, then chunks of sessions in parallel, merged in a fixed order so the result
//! does not depend on the thread count.

use std::collections::HashMap;

use super::read::RawLine;

/// Below this much text, [`super::ProtocolLogReader::finish`] uses one thread by default.
const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// At most this many threads by default.
const MAX_THREADS: usize = 8;

/// The default thread count for `bytes` of logs: one below a few megabytes, else the machine's
/// parallelism (at most [`MAX_THREADS`]).
pub(super) fn default_threads(bytes: usize) -> usize {
    if bytes < PARALLEL_MIN_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(MAX_THREADS)
    }
}

/// `f` over `items` on up to `threads` scoped threads (items taken in turn), results in item
/// order.
pub(super) fn par_map<'a, T: Sync, R: Send>(
    items: &'a [T],
    threads: usize,
    f: impl Fn(usize, &'a T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(t) = items.get(i) else { break };
            out.push((i, f(i, t)));
        }
        out
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in handles {
            match h.join() {
                Ok(v) => all.extend(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Line indices grouped by (session id, connector) in order of first appearance, each group in
/// sequence-number order (lines with the same number in the order read), and where each group
/// starts (plus the end).
pub(super) fn group_lines(lines: &[RawLine], distinct: usize) -> (Vec<u32>, Vec<usize>) {
    // Session ids are interned, so the usual case (one connector per session id) is an array
    // lookup.
    const NONE: u32 = u32::MAX;
    let mut by_session = vec![NONE; distinct];
    let mut other: HashMap<(u32, u32), u32> = HashMap::new();
    let mut connector_of: Vec<u32> = Vec::new();
    let mut group_of = Vec::with_capacity(lines.len());
    for l in lines {
        let first = by_session.get(l.session as usize).copied().unwrap_or(NONE);
        let g = if first != NONE && connector_of[first as usize] == l.connector {
            first
        } else {
            let new = u32::try_from(connector_of.len()).unwrap_or(NONE);
            let g = if first == NONE {
                if let Some(slot) = by_session.get_mut(l.session as usize) {
                    *slot = new;
                }
                new
            } else {
                *other.entry((l.session, l.connector)).or_insert(new)
            };
            if g == new {
                connector_of.push(l.connector);
            }
            g
        };
        group_of.push(g);
    }
    // Counting sort by group keeps the read order within a group; then by sequence number.
    let mut bounds = vec![0usize; connector_of.len() + 1];
    for g in &group_of {
        bounds[*g as usize + 1] += 1;
    }
    for i in 1..bounds.len() {
        bounds[i] += bounds[i - 1];
    }
    let mut fill = bounds.clone();
    let mut order = vec![0u32; lines.len()];
    for (i, g) in group_of.iter().enumerate() {
        let at = &mut fill[*g as usize];
        order[*at] = u32::try_from(i).unwrap_or(u32::MAX);
        *at += 1;
    }
    for w in bounds.windows(2) {
        order[w[0]..w[1]].sort_by_key(|i| lines[*i as usize].seq);
    }
    (order, bounds)
}

/// Groups `0..bounds.len() - 1` cut into about `n` runs of similar line counts.
pub(super) fn chunk_groups(bounds: &[usize], n: usize) -> Vec<std::ops::Range<usize>> {
    let groups = bounds.len().saturating_sub(1);
    let total = bounds.last().copied().unwrap_or(0);
    let per = total.div_ceil(n.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for g in 0..groups {
        if bounds[g + 1] - bounds[start] >= per {
            out.push(start..g + 1);
            start = g + 1;
        }
    }
    if start < groups {
        out.push(start..groups);
    }
    out
}
