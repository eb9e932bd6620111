//! Forms as submitted: every field with all its values, and the messages to show
//! next to the fields that were wrong. Shared by every page with a form.

use std::collections::BTreeMap;

/// Field name → message, for the form.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Why input was not taken: it is wrong (a message per field, shown next to the
/// fields), or something underneath broke (`E`: an error page, a log line).
#[derive(Debug)]
pub enum Refused<E = crate::web::AppError> {
    Invalid(FieldErrors),
    Broken(E),
}

/// What checking or saving input gives: the value, or why it was refused.
pub type Checked<T, E = crate::web::AppError> = Result<T, Refused<E>>;

impl<E> Refused<E> {
    /// The messages to show, or — when something broke — the error to pass on:
    /// `Err(r) => return invalid(ctx, r.fields()?)`.
    pub fn fields(self) -> Result<FieldErrors, E> {
        match self {
            Refused::Invalid(errors) => Ok(errors),
            Refused::Broken(e) => Err(e),
        }
    }
}

impl<E> From<FieldErrors> for Refused<E> {
    fn from(errors: FieldErrors) -> Self {
        Refused::Invalid(errors)
    }
}

impl From<sqlx::Error> for Refused<sqlx::Error> {
    fn from(e: sqlx::Error) -> Self {
        Refused::Broken(e)
    }
}

impl From<sqlx::Error> for Refused<crate::web::AppError> {
    fn from(e: sqlx::Error) -> Self {
        Refused::Broken(e.into())
    }
}

impl From<crate::web::AppError> for Refused<crate::web::AppError> {
    fn from(e: crate::web::AppError) -> Self {
        Refused::Broken(e)
    }
}

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

/// 200 for a fresh form, 422 for one sent back with messages.
pub fn form_status(errors: &FieldErrors) -> actix_web::http::StatusCode {
    if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// A page that shows a form: its fields as entered and their messages. Templates
/// call `v`, `checked` and `error`.
pub trait FormPage {
    fn form_fields(&self) -> &Fields;
    fn form_errors(&self) -> &FieldErrors;

    /// The value entered in `name` (the first, for a field sent several times).
    fn v(&self, name: &str) -> &str {
        self.form_fields().get(name)
    }
    /// Whether the checkbox `name` was ticked.
    fn checked(&self, name: &str) -> bool {
        self.form_fields().has(name)
    }
    /// The message for `field`, if it was wrong.
    fn error(&self, field: &str) -> Option<&String> {
        self.form_errors().get(field)
    }
}

/// Implements [`FormPage`] for page structs with fields `f` and `errors`.
#[macro_export]
macro_rules! form_page {
    ($($page:ty),+) => {
        $(
            impl $crate::web::form::FormPage for $page {
                fn form_fields(&self) -> &$crate::web::form::Fields {
                    &self.f
                }
                fn form_errors(&self) -> &$crate::web::form::FieldErrors {
                    &self.errors
                }
            }
        )+
    };
}
