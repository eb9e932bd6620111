//! Forms as submitted: every field with all its values, and the messages to show
//! next to the fields that were wrong. Shared by every page with a form.

use std::collections::BTreeMap;

/// Field name → message, for the form.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Reads a form's URL-encoded pairs into a map of field → values.
pub fn form_map(pairs: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map
}

/// A submitted form: one value per field (the first), or several.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, Vec<String>>);

impl Fields {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(form_map(pairs))
    }
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map_or("", String::as_str)
    }
    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_string(), vec![value.into()]);
    }
}
