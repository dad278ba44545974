//! A contact's bookings, invoices or tasks by id, in one vector sorted by id.
//!
//! A hash table per contact and kind cost more than the facts it held: its slots are a key and a
//! whole fact (about 200 bytes), it starts at four and doubles, so a contact with five bookings
//! paid for eight. Sorted, the facts take what they hold plus at most half a growth step, a
//! lookup is a binary search over a handful of ids, and the engine's inputs read them in id
//! order without sorting. A new id costs a shift of the ids after it, which stays small for
//! the facts one contact has within its window.

/// Facts by id, sorted by id; each id once.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts<T> {
    items: Vec<(Box<str>, T)>,
}

impl<T> Default for Facts<T> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T> Facts<T> {
    /// The fact with this id, created with its default when new.
    pub fn entry(&mut self, id: &str) -> &mut T
    where
        T: Default,
    {
        let at = match self.items.binary_search_by(|(k, _)| (**k).cmp(id)) {
            Ok(at) => at,
            Err(at) => {
                if self.items.len() == self.items.capacity() {
                    // Grow by half (the standard growth doubles and starts at four).
                    self.items.reserve_exact((self.items.len() / 2).max(1));
                }
                self.items.insert(at, (id.into(), T::default()));
                at
            }
        };
        &mut self.items[at].1
    }

    /// Every fact with its id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.items.iter().map(|(k, v)| (&**k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.items = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_once_in_order_whatever_order_they_come_in() {
        let mut f: Facts<u32> = Facts::default();
        for id in ["b2", "b10", "a", "b2", "c", "a"] {
            *f.entry(id) += 1;
        }
        let all: Vec<(&str, u32)> = f.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(all, [("a", 2), ("b10", 1), ("b2", 2), ("c", 1)]);
        let mut g: Facts<u32> = Facts::default();
        for id in ["c", "b2", "a", "b10", "a", "b2"] {
            *g.entry(id) += 1;
        }
        assert_eq!(f, g, "equal whatever the order of arrival");
        f.clear();
        assert!(f.is_empty() && f.iter().next().is_none());
    }

    #[test]
    fn the_vector_grows_by_half_not_by_doubling() {
        let mut f: Facts<u64> = Facts::default();
        for i in 0..100 {
            f.entry(&format!("{i:03}"));
            assert!(f.items.capacity() <= (f.len() * 3).div_ceil(2).max(1));
        }
    }
}
