//! Named scalars: loss terms and diagnostics travel with their names (`{"value_loss": 0.12}`),
//! as CleanRL's `writer.add_scalar` and JaxMARL's `loss_info` do, so a new term is one edit
//! where it is computed and reaches the metrics files by its name.
//!
//! Order is the order of first insertion, so columns built from it are stable.

/// An ordered set of named values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scalars {
    entries: Vec<(&'static str, f64)>,
}

impl Scalars {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (appended if new).
    pub fn set(&mut self, name: &'static str, value: f64) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Adds `value` to `name` (starting from 0 if new).
    pub fn add(&mut self, name: &'static str, value: f64) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += value,
            None => self.entries.push((name, value)),
        }
    }

    /// Adds every value of `other` to this set's value of the same name.
    pub fn add_all(&mut self, other: &Scalars) {
        for &(name, value) in &other.entries {
            self.add(name, value);
        }
    }

    /// Divides every value by `by`.
    pub fn scale(&mut self, by: f64) {
        for e in &mut self.entries {
            e.1 /= by;
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.entries.iter().find(|(n, _)| *n == name).map(|e| e.1)
    }

    /// Names and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.entries.iter().copied()
    }

    /// The first entry whose value is not finite, if any.
    pub fn first_non_finite(&self) -> Option<(&'static str, f64)> {
        self.iter().find(|(_, v)| !v.is_finite())
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Display for Scalars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.iter().map(|(n, v)| format!("{n} {v}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_names_and_first_insertion_order() {
        let mut s = Scalars::new();
        s.set("value_loss", 2.0);
        s.add("policy_loss", 1.0);
        s.add("value_loss", 4.0);
        let mut t = Scalars::new();
        t.set("policy_loss", 3.0);
        s.add_all(&t);
        s.scale(2.0);
        let names: Vec<_> = s.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["value_loss", "policy_loss"]);
        assert_eq!(s.get("value_loss"), Some(3.0));
        assert_eq!(s.get("policy_loss"), Some(2.0));
        assert_eq!(s.get("entropy"), None);
        s.set("entropy", f64::NAN);
        assert_eq!(s.first_non_finite().map(|e| e.0), Some("entropy"));
    }
}
