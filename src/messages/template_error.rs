//! Why a template was refused: the error both the check at save ([`super::bounds`])
//! and rendering ([`super::template`]) give, with the line it is on.

/// Why a template was refused, with the line the problem is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Line {}: {}", self.line, self.message)
    }
}

/// A template that does not parse, with the line minijinja names.
pub fn unreadable(e: minijinja::Error) -> TemplateError {
    TemplateError {
        line: e.line().unwrap_or(1),
        message: e
            .detail()
            .unwrap_or("the template cannot be read")
            .to_string(),
    }
}
