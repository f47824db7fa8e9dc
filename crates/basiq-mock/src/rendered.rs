//! Answers rendered once and served again, as bytes, while what they were rendered from is
//! unchanged.
//!
//! A large answer (a user embeds the account summaries of every connection: ~25 KB for 16
//! connections) costs far more to render than to send. So each one is kept with the *view* it
//! was rendered from: everything the rendering reads, copied out of the database at request time
//! with every clock-derived status (a job's progress, a connection's status, an auth link's
//! expiry) already derived. A request whose own view is equal gets the kept bytes; any other
//! renders afresh and replaces them. Rendering is a pure function of the view, so a hit is
//! byte for byte what rendering again would give: there is no invalidation to forget, since a
//! mutation or a step of virtual time that changes the answer changes the view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;

/// Answers kept at most (one per user or connection id).
const MAX_ENTRIES: usize = 1024;
/// Bytes of answers kept at most.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The last answer rendered for each id, with its view.
#[derive(Debug)]
pub(crate) struct Rendered<V> {
    entries: Mutex<Entries<V>>,
}

#[derive(Debug)]
struct Entries<V> {
    by_id: HashMap<String, Entry<V>>,
    /// The sum of the kept bodies' lengths.
    bytes: usize,
    /// Counts lookups, to find the least recently used entry.
    tick: u64,
}

#[derive(Debug)]
struct Entry<V> {
    answer: Arc<Answer<V>>,
    last_used: u64,
}

#[derive(Debug)]
struct Answer<V> {
    view: V,
    body: Bytes,
}

impl<V> Default for Rendered<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Entries {
                by_id: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
        }
    }
}

impl<V: PartialEq> Rendered<V> {
    /// The answer for `view`: the kept bytes when they were rendered from an equal view, else
    /// `render(&view)`, kept for the next request.
    pub(crate) fn get_or_render<E>(
        &self,
        id: &str,
        view: V,
        render: impl FnOnce(&V) -> Result<Vec<u8>, E>,
    ) -> Result<Bytes, E> {
        if let Some(kept) = self.kept(id) {
            // Compared outside the lock: requests for other ids never wait on it.
            if kept.view == view {
                return Ok(kept.body.clone());
            }
        }
        let body = Bytes::from(render(&view)?);
        self.keep(
            id,
            Answer {
                view,
                body: body.clone(),
            },
        );
        Ok(body)
    }

    fn kept(&self, id: &str) -> Option<Arc<Answer<V>>> {
        let mut entries = self.lock();
        entries.tick += 1;
        let tick = entries.tick;
        let entry = entries.by_id.get_mut(id)?;
        entry.last_used = tick;
        Some(entry.answer.clone())
    }

    fn keep(&self, id: &str, answer: Answer<V>) {
        let mut entries = self.lock();
        entries.tick += 1;
        let entry = Entry {
            last_used: entries.tick,
            answer: Arc::new(answer),
        };
        entries.bytes += entry.answer.body.len();
        if let Some(old) = entries.by_id.insert(id.to_owned(), entry) {
            entries.bytes -= old.answer.body.len();
        }
        while entries.by_id.len() > MAX_ENTRIES || entries.bytes > MAX_BYTES {
            let oldest = entries
                .by_id
                .iter()
                .filter(|(kept, _)| kept.as_str() != id)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(kept, _)| kept.clone());
            let Some(oldest) = oldest.and_then(|k| entries.by_id.remove(&k)) else {
                break;
            };
            entries.bytes -= oldest.answer.body.len();
        }
    }
}

impl<V> Rendered<V> {
    /// Forgets every answer (memory only: a kept answer is never served to a different view).
    pub(crate) fn clear(&self) {
        let mut entries = self.lock();
        entries.by_id.clear();
        entries.bytes = 0;
    }

    fn lock(&self) -> MutexGuard<'_, Entries<V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(view: &u32) -> Result<Vec<u8>, ()> {
        Ok(view.to_string().into_bytes())
    }

    #[test]
    fn serves_the_kept_answer_only_to_an_equal_view() {
        let cache = Rendered::<u32>::default();
        let renders = std::cell::Cell::new(0);
        let counted = |v: &u32| {
            renders.set(renders.get() + 1);
            render(v)
        };
        assert_eq!(cache.get_or_render("a", 1, counted), Ok(Bytes::from("1")));
        assert_eq!(cache.get_or_render("a", 1, counted), Ok(Bytes::from("1")));
        assert_eq!(renders.get(), 1, "an equal view is served the kept bytes");
        assert_eq!(cache.get_or_render("a", 2, counted), Ok(Bytes::from("2")));
        assert_eq!(renders.get(), 2, "a changed view is rendered afresh");
        assert_eq!(cache.get_or_render("b", 2, counted), Ok(Bytes::from("2")));
        assert_eq!(renders.get(), 3, "ids never share answers");
        // A failed rendering keeps nothing.
        assert_eq!(cache.get_or_render("a", 3, |_| Err(())), Err(()));
        assert_eq!(cache.get_or_render("a", 2, counted), Ok(Bytes::from("2")));
        assert_eq!(renders.get(), 3);
    }

    #[test]
    fn stays_within_its_bounds_dropping_the_least_recently_used() {
        let cache = Rendered::<u32>::default();
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            let _ = cache.get_or_render(&i.to_string(), i, render);
            // "0" stays in use, so it is never the one dropped.
            let _ = cache.get_or_render("0", 0, render);
        }
        let entries = cache.lock();
        assert_eq!(entries.by_id.len(), MAX_ENTRIES);
        assert!(entries.by_id.contains_key("0"));
        assert!(!entries.by_id.contains_key("1"));
        let bytes: usize = entries.by_id.values().map(|e| e.answer.body.len()).sum();
        assert_eq!(entries.bytes, bytes);
    }
}
